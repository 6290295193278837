/* blocking KEYBASE: callers that wait. A signal handler installed with
 * SA_RESTART still makes a blocked msgsnd / msgrcv fail with EINTR (System V
 * message calls are never restarted, signal(7)); a blocked caller costs no
 * CPU; IPC_RMID wakes blocked callers in another process with EIDRM; a
 * message from another process wakes a blocked receiver; the pids recorded
 * are the caller's at call time, also in a child after fork.
 *
 * Run on the kernel, through libshmq (-DSHMQ_LINK) and under the preload
 * library; the three transcripts must be equal. */
#include "harness.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <sys/wait.h>

static volatile sig_atomic_t handled;

static void on_alarm(int sig)
{
    (void)sig;
    handled++;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    MUST(getrusage(RUSAGE_SELF, &ru) == 0);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static double wall_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Arms a one-shot SIGALRM in 300 ms. */
static void alarm_soon(void)
{
    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_value.tv_usec = 300000;
    MUST(setitimer(ITIMER_REAL, &it, NULL) == 0);
}

static struct msg *m;

/* A blocked call interrupted by SIGALRM: its result, whether the handler
 * ran, whether it waited for the signal, and whether it slept (used less
 * than a third of the time it waited on the CPU; a spinning waiter uses all
 * of it, a sleeping one almost none). */
static void interrupted(const char *what, int q, int send)
{
    handled = 0;
    double c0 = cpu_seconds(), w0 = wall_seconds();
    alarm_soon();
    errno = 0;
    long r = send ? msgsnd(q, m, 8, 0) : msgrcv(q, m, 64, 42, 0);
    int e = errno;
    double waited = wall_seconds() - w0, cpu = cpu_seconds() - c0;
    report_value(what, r, e);
    FACT("  handler ran", handled == 1);
    FACT("  waited for the signal", waited > 0.25);
    FACT("  asleep while it waited", cpu < waited / 3);
}

/* A child blocked in msgrcv (send == 0) or msgsnd on q; the parent removes
 * the queue once the child sleeps. Prints the child's result. */
static void removed_while_blocked(const char *what, int q, int send)
{
    fflush(stdout);
    pid_t pid = fork();
    MUST(pid >= 0);
    if (pid == 0) {
        long r = send ? msgsnd(q, m, 8, 0) : msgrcv(q, m, 64, 42, 0);
        _exit(r < 0 ? errno : 0);
    }
    FACT("child asleep", wait_asleep(pid));
    MUST(msgctl(q, IPC_RMID, NULL) == 0);
    int status;
    MUST(waitpid(pid, &status, 0) == pid);
    printf("%s: %s\n", what, WIFEXITED(status) ? ename(WEXITSTATUS(status)) : "killed");
}

int main(int argc, char **argv)
{
    (void)key_base(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    m = calloc(1, sizeof *m);
    MUST(m != NULL);
    struct msginfo info = limits();

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    MUST(sigaction(SIGALRM, &sa, NULL) == 0);

    puts("# EINTR with SA_RESTART");
    int q = get(IPC_PRIVATE, 0600);
    MUST(q >= 0);
    interrupted("receive, nothing there", q, 0);
    m->mtype = 1;
    while (msgsnd(q, m, (size_t)info.msgmax, IPC_NOWAIT) == 0) {
    }
    MUST(errno == EAGAIN);
    interrupted("send, queue full", q, 1);
    struct msqid_ds ds;
    MUST(msgctl(q, IPC_STAT, &ds) == 0);
    printf("nothing written by the interrupted send: cbytes %lu\n",
           (unsigned long)ds.__msg_cbytes);

    puts("# EIDRM for callers blocked in another process");
    removed_while_blocked("blocked sender", q, 1);
    q = get(IPC_PRIVATE, 0600);
    MUST(q >= 0);
    removed_while_blocked("blocked receiver", q, 0);

    puts("# a message from another process wakes a blocked receiver");
    q = get(IPC_PRIVATE, 0600);
    MUST(q >= 0);
    m->mtype = 5;
    MUST(msgsnd(q, m, 1, 0) == 0); /* this process's pid is now cached */
    MUST(msgrcv(q, m, 64, 5, 0) == 1);
    fflush(stdout);
    pid_t pid = fork();
    MUST(pid >= 0);
    if (pid == 0) {
        /* The child waits for the parent to sleep, then sends. */
        if (!wait_asleep(getppid()))
            _exit(1);
        m->mtype = 42;
        memcpy(m->mtext, "wake up", 8);
        _exit(msgsnd(q, m, 8, 0) == 0 ? 0 : 2);
    }
    errno = 0;
    long n = msgrcv(q, m, 64, 42, 0);
    report_value("received", n, errno);
    printf("text %s\n", n > 0 ? m->mtext : "-");
    int status;
    MUST(waitpid(pid, &status, 0) == pid);
    FACT("sender exited 0", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    MUST(msgctl(q, IPC_STAT, &ds) == 0);
    FACT("lspid is the child", ds.msg_lspid == pid);
    FACT("lrpid is me", ds.msg_lrpid == getpid());

    puts("# pids after fork");
    fflush(stdout);
    pid = fork();
    MUST(pid >= 0);
    if (pid == 0) {
        m->mtype = 7;
        if (msgsnd(q, m, 1, 0) != 0 || msgrcv(q, m, 64, 7, 0) != 1)
            _exit(1);
        pid_t grandchild = fork();
        if (grandchild == 0)
            _exit(msgsnd(q, m, 1, 0) == 0 ? 0 : 1);
        int s;
        waitpid(grandchild, &s, 0);
        _exit(WIFEXITED(s) ? WEXITSTATUS(s) : 3);
    }
    MUST(waitpid(pid, &status, 0) == pid);
    FACT("child exited 0", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    MUST(msgctl(q, IPC_STAT, &ds) == 0);
    FACT("lrpid is the child", ds.msg_lrpid == pid);
    FACT("lspid is neither me nor the child (the grandchild)",
         ds.msg_lspid != getpid() && ds.msg_lspid != pid && ds.msg_lspid > 0);
    MUST(msgctl(q, IPC_RMID, NULL) == 0);
    puts("# end");
    return 0;
}
