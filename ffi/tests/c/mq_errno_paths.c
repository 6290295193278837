/* mq_errno_paths BASE: every errno of the POSIX queue calls, in the kernel's
 * order of checks (measured on Linux 6.x: an invalid timespec is EINVAL even
 * with a message ready; a bad priority comes before the descriptor's
 * direction; EBADF for the wrong direction before EMSGSIZE; a receive buffer
 * shorter than mq_msgsize is EMSGSIZE even on an empty queue; O_NONBLOCK
 * wins over a deadline), priority order, mq_setattr, unlink while open,
 * persistence after the creator exits, and another user's permissions.
 *
 * Run on the kernel (plain binary), through libshmq (-DSHMQ_LINK) and under
 * the preload library; the transcripts must be equal. */
#include "mq_harness.h"

#include <sys/resource.h>

#include <sys/wait.h>

static char buf[65536];
/* NULL, hidden from the compiler's nonnull checks. */
static char *volatile null_text;
static struct mq_attr *volatile null_attr;

static void send_orders(mqd_t q, mqd_t w, mqd_t r)
{
    char big[64];
    memset(big, 'b', sizeof big);
    struct timespec bad = {0, 1000000000L}, neg = {-1, 0};
    OK("send prio 32768 on read-only", mq_send(r, "x", 1, 32768));
    OK("send too long on read-only", mq_send(r, big, 17, 1));
    OK("send too long", mq_send(w, big, 17, 1));
    OK("send prio 32768 too long", mq_send(w, big, 17, 32768));
    OK("send bad timespec", mq_timedsend(w, "x", 1, 1, &bad));
    OK("send negative timespec", mq_timedsend(w, "x", 1, 1, &neg));
    OK("send bad timespec on read-only", mq_timedsend(r, "x", 1, 1, &bad));
    OK("send NULL text, length 1", mq_send(w, null_text, 1, 1));
    OK("send to bad descriptor", mq_send((mqd_t)1000, "x", 1, 1));
    OK("send to stdin", mq_send((mqd_t)0, "x", 1, 1));
    OK("receive on write-only", mq_receive(w, buf, 16, NULL));
    OK("receive on write-only, short buffer", mq_receive(w, buf, 4, NULL));
    OK("receive short buffer, empty", mq_receive(r, buf, 15, NULL));
    OK("receive bad timespec, empty", mq_timedreceive(r, buf, 16, NULL, &bad));
    OK("receive from bad descriptor", mq_receive((mqd_t)1000, buf, 16, NULL));
    OK("send empty text", mq_send(q, "", 0, 2));
    OK("receive bad timespec, ready", mq_timedreceive(r, buf, 16, NULL, &bad));
    OK("receive short buffer, ready", mq_receive(r, buf, 15, NULL));
    show_attr("still queued", q);
    unsigned prio = 99;
    VALUE("receive empty text", mq_receive(r, buf, 16, &prio));
    printf("its priority: %u\n", prio);
}

static void priorities(mqd_t q)
{
    static const unsigned prios[] = {1, 5, 0, 5, 32767, 1, 0, 5};
    char text[16];
    struct mq_attr a;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 4; i++) {
            int k = round * 4 + i;
            snprintf(text, sizeof text, "m%d", k);
            MUST(mq_send(q, text, strlen(text), prios[k]) == 0);
        }
        MUST(mq_getattr(q, &a) == 0);
        while (a.mq_curmsgs > 0) {
            unsigned p;
            ssize_t n = mq_receive(q, buf, sizeof buf, &p);
            MUST(n >= 0);
            printf("received %.*s prio %u\n", (int)n, buf, p);
            MUST(mq_getattr(q, &a) == 0);
        }
    }
}

static void full_and_nonblocking(mqd_t q, mqd_t w, mqd_t r)
{
    for (int i = 0; i < 4; i++)
        MUST(mq_send(w, "f", 1, (unsigned)i) == 0);
    struct timespec past = in_ms(-1000), soon = in_ms(50), bad = {0, -1};
    OK("full, deadline past", mq_timedsend(w, "x", 1, 1, &past));
    OK("full, deadline in 50 ms", mq_timedsend(w, "x", 1, 1, &soon));
    OK("full, bad timespec", mq_timedsend(w, "x", 1, 1, &bad));
    struct mq_attr na, old;
    memset(&na, 0, sizeof na);
    memset(&old, 0x55, sizeof old);
    na.mq_flags = O_NONBLOCK;
    na.mq_maxmsg = 99;
    na.mq_msgsize = 99;
    OK("setattr O_NONBLOCK", mq_setattr(w, &na, &old));
    printf("old: flags %ld maxmsg %ld msgsize %ld curmsgs %ld\n", old.mq_flags,
           old.mq_maxmsg, old.mq_msgsize, old.mq_curmsgs);
    show_attr("write-only now", w);
    show_attr("another description", q);
    OK("full, O_NONBLOCK", mq_send(w, "x", 1, 1));
    struct timespec later = in_ms(5000);
    OK("full, O_NONBLOCK, deadline later", mq_timedsend(w, "x", 1, 1, &later));
    OK("full, O_NONBLOCK, bad timespec", mq_timedsend(w, "x", 1, 1, &bad));
    na.mq_flags = 0x12345;
    OK("setattr other flags", mq_setattr(w, &na, NULL));
    OK("setattr other flags, bad descriptor", mq_setattr((mqd_t)1000, &na, NULL));
    na.mq_flags = 0;
    OK("setattr bad descriptor", mq_setattr((mqd_t)1000, &na, NULL));
    OK("getattr bad descriptor", mq_getattr((mqd_t)1000, &old));
    OK("getattr stdin", mq_getattr((mqd_t)0, &old));
    OK("getattr NULL", mq_getattr(w, null_attr));
    OK("setattr NULL, NULL", mq_setattr(w, null_attr, NULL));
    show_attr("unchanged", w);
    OK("setattr blocking", mq_setattr(w, &na, NULL));
    show_attr("blocking again", w);
    unsigned p;
    for (int i = 0; i < 4; i++) {
        VALUE("drain", mq_receive(r, buf, 16, &p));
        printf("prio %u\n", p);
    }
    past = in_ms(-1000);
    OK("empty, deadline past", mq_timedreceive(r, buf, 16, NULL, &past));
    soon = in_ms(50);
    OK("empty, deadline in 50 ms", mq_timedreceive(r, buf, 16, NULL, &soon));
    na.mq_flags = O_NONBLOCK;
    OK("setattr read-only O_NONBLOCK", mq_setattr(r, &na, NULL));
    OK("empty, O_NONBLOCK", mq_receive(r, buf, 16, NULL));
    later = in_ms(5000);
    OK("empty, O_NONBLOCK, deadline later", mq_timedreceive(r, buf, 16, NULL, &later));
    MUST(mq_send(w, "gone", 4, 3) == 0);
    OK("receive into NULL", mq_receive(r, null_text, 16, NULL));
    show_attr("after NULL receive", q);
}

static void names(void)
{
    struct mq_attr a = {.mq_maxmsg = 4, .mq_msgsize = 16};
    char n255[300], n256[300], nslash[400];
    snprintf(n255, sizeof n255, "/%s", name_base);
    size_t l = strlen(n255);
    memset(n255 + l, 'n', 256 - l);
    n255[256] = '\0';
    memcpy(n256, n255, 256);
    n256[256] = 'n';
    n256[257] = '\0';
    snprintf(nslash, sizeof nslash, "%s/b", n256);
    OK("no leading slash", mq_open("x", O_RDWR | O_CREAT, 0600, &a));
    OK("empty name", mq_open("", O_RDWR | O_CREAT, 0600, &a));
    OK("slash only", mq_open("/", O_RDWR | O_CREAT, 0600, &a));
    OK("slash only, no O_CREAT", mq_open("/", O_RDWR));
    OK("two slashes", mq_open(qname("a/b"), O_RDWR | O_CREAT, 0600, &a));
    OK("dot", mq_open("/.", O_RDWR | O_CREAT, 0600, &a));
    OK("dot dot", mq_open("/..", O_RDWR));
    OK("256 bytes", mq_open(n256, O_RDWR | O_CREAT, 0600, &a));
    OK("256 bytes, no O_CREAT", mq_open(n256, O_RDWR));
    OK("256 bytes and a slash", mq_open(nslash, O_RDWR | O_CREAT, 0600, &a));
    mqd_t q = mq_open(n255, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
    OK("255 bytes", q);
    if (q != (mqd_t)-1)
        MUST(mq_close(q) == 0);
    OK("unlink 255 bytes", mq_unlink(n255));
    OK("unlink no leading slash", mq_unlink("x"));
    OK("unlink slash only", mq_unlink("/"));
    OK("unlink two slashes", mq_unlink(qname("a/b")));
    OK("unlink 256 bytes", mq_unlink(n256));
    OK("unlink missing", mq_unlink(qname("missing")));
}

static void attributes(void)
{
    struct mq_attr a;
    memset(&a, 0, sizeof a);
    const char *n = qname("b");
    OK("open missing", mq_open(n, O_RDWR));
    OK("open missing, O_ACCMODE 3", mq_open(n, O_ACCMODE));
    a.mq_maxmsg = 0, a.mq_msgsize = 16;
    OK("maxmsg 0", mq_open(n, O_RDWR | O_CREAT, 0600, &a));
    a.mq_maxmsg = -1;
    OK("maxmsg -1", mq_open(n, O_RDWR | O_CREAT, 0600, &a));
    a.mq_maxmsg = 4, a.mq_msgsize = 0;
    OK("msgsize 0", mq_open(n, O_RDWR | O_CREAT, 0600, &a));
    a.mq_maxmsg = 65537, a.mq_msgsize = 16;
    OK("maxmsg 65537", mq_open(n, O_RDWR | O_CREAT, 0600, &a));
    a.mq_maxmsg = 4, a.mq_msgsize = 16 * 1024 * 1024 + 1;
    OK("msgsize 16 MiB + 1", mq_open(n, O_RDWR | O_CREAT, 0600, &a));
    /* Created with O_ACCMODE 3: neither read nor write. */
    a.mq_maxmsg = 2, a.mq_msgsize = 8;
    mqd_t none = mq_open(n, O_ACCMODE | O_CREAT | O_EXCL, 0600, &a);
    OK("create with O_ACCMODE 3", none);
    OK("send on it", mq_send(none, "x", 1, 0));
    OK("receive on it", mq_receive(none, buf, 8, NULL));
    show_attr("its attributes", none);
    OK("open it with O_ACCMODE 3", mq_open(n, O_ACCMODE));
    OK("open it exclusively", mq_open(n, O_RDWR | O_CREAT | O_EXCL, 0600, &a));
    OK("open it exclusively, O_ACCMODE 3", mq_open(n, O_ACCMODE | O_CREAT | O_EXCL, 0600, &a));
    a.mq_maxmsg = 0;
    mqd_t again = mq_open(n, O_RDWR | O_CREAT, 0600, &a);
    OK("open it with O_CREAT and bad attributes", again);
    show_attr("its attributes still", again);
    MUST(mq_close(again) == 0);
    MUST(mq_close(none) == 0);
    OK("close it again", mq_close(none));
    OK("send on closed", mq_send(none, "x", 1, 0));
    OK("close bad descriptor", mq_close((mqd_t)1000));
    MUST(mq_unlink(n) == 0);
}

static void unlink_while_open(void)
{
    struct mq_attr a = {.mq_maxmsg = 3, .mq_msgsize = 8};
    const char *n = qname("c");
    mqd_t q = mq_open(n, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
    MUST(q != (mqd_t)-1);
    MUST(mq_send(q, "before", 6, 1) == 0);
    OK("unlink", mq_unlink(n));
    OK("unlink again", mq_unlink(n));
    OK("open after unlink", mq_open(n, O_RDWR));
    OK("send after unlink", mq_send(q, "after", 5, 2));
    show_attr("unlinked queue", q);
    a.mq_maxmsg = 1;
    mqd_t fresh = mq_open(n, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
    OK("a new queue of that name", fresh);
    show_attr("the new one", fresh);
    unsigned p;
    ssize_t len = mq_receive(q, buf, 8, &p);
    printf("old queue gives %.*s prio %u\n", (int)len, buf, p);
    MUST(mq_close(q) == 0);
    MUST(mq_close(fresh) == 0);
    MUST(mq_unlink(n) == 0);
}

static void persistence(void)
{
    const char *n = qname("d");
    pid_t pid = fork();
    MUST(pid >= 0);
    if (pid == 0) {
        struct mq_attr a = {.mq_maxmsg = 2, .mq_msgsize = 32};
        mqd_t q = mq_open(n, O_WRONLY | O_CREAT | O_EXCL, 0600, &a);
        if (q == (mqd_t)-1 || mq_send(q, "left behind", 11, 7) != 0)
            _exit(1);
        _exit(0); /* no mq_close: exiting closes it */
    }
    int st;
    MUST(waitpid(pid, &st, 0) == pid);
    FACT("creator exited 0", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    mqd_t q = mq_open(n, O_RDONLY);
    OK("open after its creator exited", q);
    unsigned p;
    ssize_t len = mq_receive(q, buf, 32, &p);
    printf("received %.*s prio %u\n", (int)len, buf, p);
    MUST(mq_close(q) == 0);
    MUST(mq_unlink(n) == 0);
}

static void another_user(void)
{
    if (geteuid() != 0) {
        printf("another user: skipped (not root)\n");
        return;
    }
    struct mq_attr a = {.mq_maxmsg = 2, .mq_msgsize = 8};
    const char *priv = qname("e"), *ro = qname("f"), *all = qname("g");
    mqd_t q1 = mq_open(priv, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
    mqd_t q2 = mq_open(ro, O_RDWR | O_CREAT | O_EXCL, 0644, &a);
    mqd_t q3 = mq_open(all, O_RDWR | O_CREAT | O_EXCL, 0666, &a);
    MUST(q1 != (mqd_t)-1 && q2 != (mqd_t)-1 && q3 != (mqd_t)-1);
    pid_t pid = fork();
    MUST(pid >= 0);
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        REFRESH_CREDENTIALS();
        OK("nobody opens 0600 read-only", mq_open(priv, O_RDONLY));
        OK("nobody opens 0644 read-only", mq_open(ro, O_RDONLY));
        OK("nobody opens 0644 write-only", mq_open(ro, O_WRONLY));
        OK("nobody opens 0644 read-write", mq_open(ro, O_RDWR));
        mqd_t w = mq_open(all, O_WRONLY);
        OK("nobody opens 0666 write-only", w);
        OK("nobody sends", mq_send(w, "hi", 2, 4));
        OK("nobody unlinks 0666", mq_unlink(all));
        OK("nobody creates", mq_open(qname("h"), O_RDWR | O_CREAT | O_EXCL, 0600, &a));
        OK("nobody unlinks its own", mq_unlink(qname("h")));
        /* The root's descriptors it inherited still work. */
        OK("inherited descriptor sends", mq_send(q1, "x", 1, 0));
        _exit(0);
    }
    int st;
    MUST(waitpid(pid, &st, 0) == pid);
    FACT("nobody's child exited 0", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    show_attr("0666 queue", q3);
    show_attr("0600 queue", q1);
    MUST(mq_close(q1) == 0 && mq_close(q2) == 0 && mq_close(q3) == 0);
    MUST(mq_unlink(priv) == 0 && mq_unlink(ro) == 0 && mq_unlink(all) == 0);
}

/* RLIMIT_MSGQUEUE 0: no queue can be created (EMFILE), whatever its
 * attributes; an existing queue still opens. */
static void rlimit_zero(void)
{
    struct mq_attr a = {.mq_maxmsg = 2, .mq_msgsize = 8};
    const char *old = qname("i");
    mqd_t q = mq_open(old, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
    MUST(q != (mqd_t)-1);
    pid_t pid = fork();
    MUST(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {.rlim_cur = 0, .rlim_max = 0};
        if (setrlimit(RLIMIT_MSGQUEUE, &rl) != 0)
            _exit(3);
        OK("RLIMIT_MSGQUEUE 0, create", mq_open(qname("j"), O_RDWR | O_CREAT | O_EXCL, 0600, &a));
        OK("RLIMIT_MSGQUEUE 0, create with default attributes",
           mq_open(qname("j"), O_RDWR | O_CREAT | O_EXCL, 0600, NULL));
        OK("RLIMIT_MSGQUEUE 0, bad attributes first",
           mq_open(qname("j"), O_RDWR | O_CREAT | O_EXCL, 0600, &(struct mq_attr){.mq_maxmsg = -1, .mq_msgsize = 8}));
        OK("RLIMIT_MSGQUEUE 0, open an existing queue", mq_open(old, O_RDWR));
        _exit(0);
    }
    int st;
    MUST(waitpid(pid, &st, 0) == pid);
    FACT("rlimit child exited 0", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    MUST(mq_close(q) == 0 && mq_unlink(old) == 0);
}

int main(int argc, char **argv)
{
    mq_setup(argc, argv);
    umask(0);
    names();
    attributes();
    struct mq_attr a = {.mq_maxmsg = 4, .mq_msgsize = 16};
    const char *n = qname("a");
    mqd_t q = mq_open(n, O_RDWR | O_CREAT | O_EXCL, 0640, &a);
    OK("create", q);
    OK("create again, O_EXCL", mq_open(n, O_RDWR | O_CREAT | O_EXCL, 0640, &a));
    show_attr("attributes", q);
    mqd_t w = mq_open(n, O_WRONLY), r = mq_open(n, O_RDONLY);
    MUST(w != (mqd_t)-1 && r != (mqd_t)-1);
    send_orders(q, w, r);
    priorities(q);
    full_and_nonblocking(q, w, r);
    MUST(mq_close(q) == 0 && mq_close(w) == 0 && mq_close(r) == 0);
    MUST(mq_unlink(n) == 0);
    unlink_while_open();
    persistence();
    another_user();
    rlimit_zero();
    printf("# end\n");
    return 0;
}
