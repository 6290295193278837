/* mq_blocking BASE: POSIX queue callers that wait. A message from another
 * process wakes a blocked receiver; a receive in another process wakes a
 * blocked sender; mq_timedreceive / mq_timedsend give up with ETIMEDOUT
 * after waiting; a handler installed without SA_RESTART makes a blocked call
 * fail with EINTR, one with SA_RESTART has it restarted (a timed one keeps
 * its deadline); O_NONBLOCK belongs to the open description, so a forked
 * child's mq_setattr changes its parent's descriptor.
 *
 * Run on the kernel, through libshmq (-DSHMQ_LINK) and under the preload
 * library; the transcripts must be equal. */
#include "mq_harness.h"

#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>

static char buf[8192];
static volatile sig_atomic_t handled;

static void on_alarm(int sig)
{
    (void)sig;
    handled++;
}

static double wall_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void reap(const char *what, pid_t pid)
{
    int st;
    MUST(waitpid(pid, &st, 0) == pid);
    FACT(what, WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(int argc, char **argv)
{
    mq_setup(argc, argv);
    umask(0);
    struct mq_attr a = {.mq_maxmsg = 2, .mq_msgsize = 64};
    const char *n = qname("a");
    mqd_t q = mq_open(n, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
    MUST(q != (mqd_t)-1);

    /* A blocked receiver, woken by another process's send. */
    pid_t parent = getpid(), pid = fork();
    MUST(pid >= 0);
    if (pid == 0) {
        if (!wait_asleep(parent))
            _exit(2);
        mqd_t w = mq_open(n, O_WRONLY);
        _exit(w != (mqd_t)-1 && mq_send(w, "wake up", 7, 9) == 0 ? 0 : 1);
    }
    unsigned p = 0;
    ssize_t len = mq_receive(q, buf, sizeof buf, &p);
    printf("blocked receiver got %.*s prio %u\n", (int)len, buf, p);
    reap("sender child exited 0", pid);

    /* A blocked sender (queue full), woken by a receive in the parent. */
    MUST(mq_send(q, "one", 3, 1) == 0 && mq_send(q, "two", 3, 2) == 0);
    pid = fork();
    MUST(pid >= 0);
    if (pid == 0) {
        _exit(mq_send(q, "three", 5, 3) == 0 ? 0 : 1);
    }
    FACT("sender child asleep", wait_asleep(pid));
    len = mq_receive(q, buf, sizeof buf, &p);
    printf("received %.*s prio %u\n", (int)len, buf, p);
    reap("blocked sender child exited 0", pid);
    for (int i = 0; i < 2; i++) {
        len = mq_receive(q, buf, sizeof buf, &p);
        printf("then %.*s prio %u\n", (int)len, buf, p);
    }

    /* Timeouts after waiting. */
    double t0 = wall_seconds();
    struct timespec at = in_ms(200);
    OK("timed receive on empty", mq_timedreceive(q, buf, sizeof buf, NULL, &at));
    FACT("waited 200 ms", wall_seconds() - t0 >= 0.19);
    MUST(mq_send(q, "x", 1, 0) == 0 && mq_send(q, "y", 1, 0) == 0);
    t0 = wall_seconds();
    at = in_ms(200);
    OK("timed send on full", mq_timedsend(q, "z", 1, 0, &at));
    FACT("waited 200 ms", wall_seconds() - t0 >= 0.19);

    /* A signal handler without SA_RESTART: EINTR. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    MUST(sigaction(SIGALRM, &sa, NULL) == 0);
    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_value.tv_usec = 300000;
    MUST(setitimer(ITIMER_REAL, &it, NULL) == 0);
    OK("blocked send, signal", mq_send(q, "z", 1, 0));
    FACT("handler ran", handled == 1);
    MUST(mq_receive(q, buf, sizeof buf, NULL) == 1 && mq_receive(q, buf, sizeof buf, NULL) == 1);
    MUST(setitimer(ITIMER_REAL, &it, NULL) == 0);
    OK("blocked receive, signal", mq_receive(q, buf, sizeof buf, NULL));
    FACT("handler ran again", handled == 2);

    /* With SA_RESTART the kernel restarts a blocked mq_receive / mq_send
     * after the handler (not System V's calls), and a timed one keeps its
     * deadline. */
    sa.sa_flags = SA_RESTART;
    MUST(sigaction(SIGALRM, &sa, NULL) == 0);
    it.it_value.tv_usec = 100000;
    pid = fork();
    MUST(pid >= 0);
    if (pid == 0) {
        usleep(400000);
        mqd_t w = mq_open(n, O_WRONLY);
        _exit(w != (mqd_t)-1 && mq_send(w, "after the handler", 17, 4) == 0 ? 0 : 1);
    }
    MUST(setitimer(ITIMER_REAL, &it, NULL) == 0);
    len = mq_receive(q, buf, sizeof buf, &p);
    printf("SA_RESTART, blocked receive: %.*s prio %u\n", len < 0 ? 0 : (int)len, buf, p);
    FACT("handler ran during it", handled == 3);
    reap("late sender child exited 0", pid);
    MUST(setitimer(ITIMER_REAL, &it, NULL) == 0);
    t0 = wall_seconds();
    at = in_ms(400);
    OK("SA_RESTART, timed receive", mq_timedreceive(q, buf, sizeof buf, NULL, &at));
    FACT("handler ran, deadline kept", handled == 4 && wall_seconds() - t0 >= 0.39 &&
                                           wall_seconds() - t0 < 2.0);
    MUST(mq_send(q, "x", 1, 0) == 0 && mq_send(q, "y", 1, 0) == 0);
    pid = fork();
    MUST(pid >= 0);
    if (pid == 0) {
        usleep(400000);
        char b[64];
        _exit(mq_receive(q, b, sizeof b, NULL) == 1 ? 0 : 1);
    }
    MUST(setitimer(ITIMER_REAL, &it, NULL) == 0);
    OK("SA_RESTART, blocked send", mq_send(q, "z", 1, 0));
    FACT("handler ran during it", handled == 5);
    reap("late receiver child exited 0", pid);
    for (int i = 0; i < 2; i++)
        MUST(mq_receive(q, buf, sizeof buf, NULL) == 1);

    /* O_NONBLOCK is the description's: a forked child's mq_setattr. */
    pid = fork();
    MUST(pid >= 0);
    if (pid == 0) {
        struct mq_attr na;
        memset(&na, 0, sizeof na);
        na.mq_flags = O_NONBLOCK;
        _exit(mq_setattr(q, &na, NULL) == 0 ? 0 : 1);
    }
    reap("setattr child exited 0", pid);
    show_attr("parent's descriptor", q);
    OK("parent's receive", mq_receive(q, buf, sizeof buf, NULL));
    mqd_t other = mq_open(n, O_RDONLY);
    show_attr("another description", other);

    MUST(mq_close(q) == 0 && mq_close(other) == 0);
    MUST(mq_unlink(n) == 0);
    printf("# end\n");
    return 0;
}
