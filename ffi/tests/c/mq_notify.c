/* mq_notify BASE: POSIX queue notification. EINVAL for an unknown
 * sigev_notify or signal (before the descriptor is looked at), EBADF for a
 * bad descriptor; one registration per queue (EBUSY, for the owner too and
 * from a forked child, whose NULL removes nothing); SIGEV_SIGNAL arrives
 * with si_code SI_MESGQ, the registered value and the sender's pid and uid;
 * only a send into an empty queue notifies; a registration is used up when
 * it fires; NULL unregisters; a message taken by a receiver blocked in
 * mq_receive neither notifies nor uses the registration up; SIGEV_THREAD
 * runs the function with the value; SIGEV_NONE registers and never
 * notifies; the owner's close of any descriptor of the queue removes its
 * registration, and so does its exit.
 *
 * Run on the kernel, through libshmq (-DSHMQ_LINK) and under the preload
 * library; the transcripts must be equal. */
#include "mq_harness.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#ifdef SHMQ_LINK
#define mq_notify shmq_mq_notify
#endif

static char buf[64];
static int thread_pipe[2];

static void reap(const char *what, pid_t pid)
{
    int st;
    MUST(waitpid(pid, &st, 0) == pid);
    FACT(what, WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static struct sigevent by_signal(int signo, int value)
{
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = signo;
    sev.sigev_value.sival_int = value;
    return sev;
}

/* Waits up to `ms` for SIGUSR1 (blocked) and prints what it carried. */
static void expect_signal(const char *what, int ms, pid_t from)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int sig = sigtimedwait(&set, &si, &t);
    if (sig < 0) {
        printf("%s: no signal\n", what);
        return;
    }
    printf("%s: signal %s, si_code %s, value %d, from the sender %s, uid %s\n", what,
           sig == SIGUSR1 ? "SIGUSR1" : "other",
           si.si_code == SI_MESGQ ? "SI_MESGQ" : "other", si.si_value.sival_int,
           si.si_pid == from ? "yes" : "no", si.si_uid == getuid() ? "ours" : "other");
}

static void on_thread(union sigval v)
{
    char c = (char)v.sival_int;
    (void)!write(thread_pipe[1], &c, 1);
}

/* Waits up to `ms` for the SIGEV_THREAD function to write its byte. */
static void expect_thread(const char *what, int ms)
{
    struct pollfd p = {.fd = thread_pipe[0], .events = POLLIN};
    if (poll(&p, 1, ms) != 1) {
        printf("%s: function not run\n", what);
        return;
    }
    char c = 0;
    MUST(read(thread_pipe[0], &c, 1) == 1);
    printf("%s: function ran with value %d\n", what, (int)c);
}

static void drain(mqd_t q)
{
    struct mq_attr a;
    MUST(mq_getattr(q, &a) == 0);
    for (long i = 0; i < a.mq_curmsgs; i++)
        MUST(mq_receive(q, buf, sizeof buf, NULL) >= 0);
}

int main(int argc, char **argv)
{
    mq_setup(argc, argv);
    umask(0);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    MUST(sigprocmask(SIG_BLOCK, &usr1, NULL) == 0);
    MUST(pipe(thread_pipe) == 0);

    struct mq_attr a = {.mq_maxmsg = 4, .mq_msgsize = 64};
    const char *n = qname("a");
    mqd_t q = mq_open(n, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
    MUST(q != (mqd_t)-1);

    /* Argument checks, in the kernel's order. */
    struct sigevent bad;
    memset(&bad, 0, sizeof bad);
    bad.sigev_notify = 99;
    OK("unknown sigev_notify", mq_notify(q, &bad));
    OK("unknown sigev_notify, bad descriptor", mq_notify((mqd_t)100000, &bad));
    struct sigevent sev = by_signal(65, 1);
    OK("signal 65", mq_notify(q, &sev));
    sev = by_signal(SIGUSR1, 1);
    OK("bad descriptor", mq_notify((mqd_t)100000, &sev));
    OK("NULL with nothing registered", mq_notify(q, NULL));

    /* One registration per queue; a signal from a forked child's send. */
    sev = by_signal(SIGUSR1, 42);
    OK("register SIGEV_SIGNAL", mq_notify(q, &sev));
    OK("register again, same process", mq_notify(q, &sev));
    pid_t pid = fork();
    MUST(pid >= 0);
    if (pid == 0) {
        struct sigevent mine = by_signal(SIGUSR1, 7);
        if (mq_notify(q, &mine) != -1 || errno != EBUSY)
            _exit(1);
        if (mq_notify(q, NULL) != 0) /* not the owner: removes nothing */
            _exit(2);
        _exit(mq_send(q, "from child", 10, 1) == 0 ? 0 : 3);
    }
    reap("child: EBUSY, NULL removes nothing, sent", pid);
    expect_signal("first message", 5000, pid);
    show_attr("after it", q);

    /* Used up; a send into a non-empty queue does not notify. */
    sev = by_signal(SIGUSR1, 43);
    OK("register after firing", mq_notify(q, &sev));
    MUST(mq_send(q, "second", 6, 1) == 0);
    expect_signal("send into a non-empty queue", 200, getpid());
    drain(q);
    MUST(mq_send(q, "third", 5, 1) == 0);
    expect_signal("send into the empty queue", 5000, getpid());
    drain(q);

    /* NULL unregisters. */
    sev = by_signal(SIGUSR1, 44);
    OK("register", mq_notify(q, &sev));
    OK("unregister", mq_notify(q, NULL));
    MUST(mq_send(q, "fourth", 6, 1) == 0);
    expect_signal("send after unregistering", 200, getpid());
    drain(q);

    /* A receiver blocked in mq_receive takes the message: no notification,
     * and the registration stays. */
    sev = by_signal(SIGUSR1, 45);
    OK("register", mq_notify(q, &sev));
    pid_t parent = getpid();
    pid = fork();
    MUST(pid >= 0);
    if (pid == 0) {
        char b[64];
        _exit(mq_receive(q, b, sizeof b, NULL) == 7 ? 0 : 1);
    }
    FACT("receiver child asleep", wait_asleep(pid));
    MUST(mq_send(q, "handed!", 7, 1) == 0);
    (void)parent;
    reap("receiver child got it", pid);
    expect_signal("message to a blocked receiver", 200, getpid());
    OK("registration still there", mq_notify(q, &sev));
    MUST(mq_send(q, "fifth", 5, 1) == 0);
    expect_signal("next send into the empty queue", 5000, getpid());
    drain(q);

    /* SIGEV_THREAD. */
    struct sigevent th;
    memset(&th, 0, sizeof th);
    th.sigev_notify = SIGEV_THREAD;
    th.sigev_notify_function = on_thread;
    th.sigev_value.sival_int = 46;
    OK("register SIGEV_THREAD", mq_notify(q, &th));
    OK("register again", mq_notify(q, &sev));
    MUST(mq_send(q, "sixth", 5, 1) == 0);
    expect_thread("send into the empty queue", 5000);
    expect_signal("and no signal", 100, getpid());
    drain(q);
    th.sigev_value.sival_int = 47;
    OK("register SIGEV_THREAD", mq_notify(q, &th));
    OK("unregister", mq_notify(q, NULL));
    MUST(mq_send(q, "seventh", 7, 1) == 0);
    expect_thread("send after unregistering", 200);
    drain(q);

    /* SIGEV_NONE: holds the queue, used up silently. */
    struct sigevent none;
    memset(&none, 0, sizeof none);
    none.sigev_notify = SIGEV_NONE;
    OK("register SIGEV_NONE", mq_notify(q, &none));
    OK("register SIGEV_SIGNAL over it", mq_notify(q, &sev));
    MUST(mq_send(q, "eighth", 6, 1) == 0);
    expect_signal("send into the empty queue", 200, getpid());
    OK("register after it fired", mq_notify(q, &none));
    OK("unregister", mq_notify(q, NULL));
    drain(q);

    /* The owner's close of any descriptor of the queue removes its
     * registration. */
    OK("register", mq_notify(q, &sev));
    mqd_t other = mq_open(n, O_RDONLY);
    MUST(other != (mqd_t)-1);
    OK("close another descriptor", mq_close(other));
    OK("register again", mq_notify(q, &none));
    OK("unregister", mq_notify(q, NULL));

    /* A registration dies with its owner. */
    pid = fork();
    MUST(pid >= 0);
    if (pid == 0) {
        struct sigevent mine = by_signal(SIGUSR1, 8);
        _exit(mq_notify(q, &mine) == 0 ? 0 : 1);
    }
    reap("child registered and exited", pid);
    OK("register after the owner's exit", mq_notify(q, &sev));
    MUST(mq_send(q, "ninth", 5, 1) == 0);
    expect_signal("send into the empty queue", 5000, getpid());
    drain(q);

    MUST(mq_close(q) == 0);
    MUST(mq_unlink(n) == 0);
    printf("# end\n");
    return 0;
}
