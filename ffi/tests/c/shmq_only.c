/* shmq_only SECTION: what only libshmq has or does (built with -DSHMQ_LINK,
 * each section run in a fresh namespace; the driver checks the transcript
 * against the expected one).
 *
 *   timed      shmq_msgsnd_timed / shmq_msgrcv_timed: ETIMEDOUT, EINVAL
 *   namespace  a namespace that cannot be opened: msgget ENOMEM / EACCES,
 *              the other calls EINVAL; a good one afterwards works
 *   msgmni     SHMQ_MSGMNI=4: the fifth queue is ENOSPC
 *   slots      SHMQ_SLOTS=1: while another live thread holds the queue's
 *              only slot, msgsnd / msgrcv are ENOMEM
 *   info       IPC_INFO / MSG_INFO figures of a fresh namespace
 */
#include "harness.h"

#include <pthread.h>
#include <time.h>

#ifndef SHMQ_LINK
#error "shmq_only.c tests libshmq's own functions: build it with -DSHMQ_LINK"
#endif

static struct msg m;

static void timed(void)
{
    int q = msgget(IPC_PRIVATE, 0600);
    MUST(q >= 0);
    struct timespec t100ms = {0, 100000000}, zero = {0, 0};
    struct timespec bad[] = {{0, 1000000000}, {0, -1}, {-1, 0}};
    for (unsigned i = 0; i < 3; i++) {
        char what[64];
        snprintf(what, sizeof what, "receive, bad timeout %u", i);
        VALUE(what, shmq_msgrcv_timed(q, &m, 64, 0, 0, &bad[i]));
        snprintf(what, sizeof what, "send, bad timeout %u", i);
        VALUE(what, shmq_msgsnd_timed(q, &m, 1, 0, &bad[i]));
    }
    VALUE("bad timeout beats a bad id", shmq_msgrcv_timed(-1, &m, 64, 0, 0, &bad[0]));
    VALUE("receive, 100 ms, nothing there", shmq_msgrcv_timed(q, &m, 64, 0, 0, &t100ms));
    VALUE("receive, zero timeout", shmq_msgrcv_timed(q, &m, 64, 0, 0, &zero));
    VALUE("receive, timeout and IPC_NOWAIT", shmq_msgrcv_timed(q, &m, 64, 0, IPC_NOWAIT, &t100ms));
    VALUE("receive, NULL timeout, IPC_NOWAIT", shmq_msgrcv_timed(q, &m, 64, 0, IPC_NOWAIT, NULL));
    m.mtype = 3;
    memcpy(m.mtext, "abc", 3);
    VALUE("send, timed, room", shmq_msgsnd_timed(q, &m, 3, 0, &t100ms));
    VALUE("receive, timed, there", shmq_msgrcv_timed(q, &m, 64, 3, 0, &t100ms));
    VALUE("NULL msgp, timed", shmq_msgsnd_timed(q, NULL, 3, 0, &t100ms));
    m.mtype = 1;
    while (msgsnd(q, &m, 8192, IPC_NOWAIT) == 0) {
    }
    VALUE("send, 100 ms, full", shmq_msgsnd_timed(q, &m, 1, 0, &t100ms));
    VALUE("send, zero timeout, full", shmq_msgsnd_timed(q, &m, 1, 0, &zero));
    VALUE("send, timeout and IPC_NOWAIT, full", shmq_msgsnd_timed(q, &m, 1, IPC_NOWAIT, &t100ms));
    struct msqid_ds ds;
    MUST(msgctl(q, IPC_STAT, &ds) == 0);
    printf("qnum %lu cbytes %lu\n", (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes);
    VALUE("rmid", msgctl(q, IPC_RMID, NULL));
    VALUE("receive, timed, removed", shmq_msgrcv_timed(q, &m, 64, 0, 0, &t100ms));
}

static void namespace(void)
{
    const char *good = getenv("SHMQ_DIR");
    MUST(good != NULL);
    char *saved = strdup(good);
    setenv("SHMQ_DIR", "/dev/null", 1); /* not a directory */
    VALUE("msgget, namespace is a file", msgget(IPC_PRIVATE, 0600));
    VALUE("msgsnd, no namespace", msgsnd(0, &m, 1, IPC_NOWAIT));
    VALUE("msgrcv, no namespace", msgrcv(0, &m, 1, 0, IPC_NOWAIT));
    VALUE("msgctl IPC_STAT, no namespace", msgctl(0, IPC_STAT, NULL));
    VALUE("msgctl IPC_INFO, no namespace", msgctl(0, IPC_INFO, NULL));
    setenv("SHMQ_DIR", "/proc/shmq-cannot-be-made", 1);
    VALUE("msgget, directory cannot be made", msgget(IPC_PRIVATE, 0600));
    setenv("SHMQ_DIR", saved, 1);
    OK("msgget, good namespace", msgget(IPC_PRIVATE, 0600));
    setenv("SHMQ_DIR", "/dev/null", 1); /* opened once, kept */
    OK("msgget, namespace kept", msgget(IPC_PRIVATE, 0600));
    free(saved);
}

static void msgmni(void)
{
    for (int i = 0; i < 5; i++) {
        int id = msgget(IPC_PRIVATE, 0600);
        if (id >= 0)
            printf("queue %d: id %d\n", i, id);
        else
            printf("queue %d: -1 %s\n", i, ename(errno));
    }
    int k = msgget(0x1234, IPC_CREAT | 0600);
    printf("keyed: %s\n", k < 0 ? ename(errno) : "ok");
    MUST(msgctl(2, IPC_RMID, NULL) == 0);
    OK("after one removal", msgget(0x1234, IPC_CREAT | 0600));
}

static int holder_q;
static int release_pipe[2];

static void *holder(void *arg)
{
    (void)arg;
    struct msg local;
    local.mtype = 1;
    long r = msgsnd(holder_q, &local, 1, 0); /* takes the only slot */
    char c;
    if (read(release_pipe[0], &c, 1) != 1)
        r = -1;
    return (void *)r;
}

static void slots(void)
{
    holder_q = msgget(IPC_PRIVATE, 0600);
    MUST(holder_q >= 0 && pipe(release_pipe) == 0);
    pthread_t t;
    MUST(pthread_create(&t, NULL, holder, NULL) == 0);
    struct msqid_ds ds;
    for (int i = 0; i < 1000; i++) { /* until the holder has sent */
        MUST(msgctl(holder_q, IPC_STAT, &ds) == 0);
        if (ds.msg_qnum == 1)
            break;
        usleep(10000);
    }
    m.mtype = 1;
    VALUE("send while a live thread holds the only slot", msgsnd(holder_q, &m, 1, IPC_NOWAIT));
    VALUE("receive while a live thread holds the only slot", msgrcv(holder_q, &m, 8, 0, IPC_NOWAIT));
    VALUE("IPC_STAT needs no slot", msgctl(holder_q, IPC_STAT, &ds));
    MUST(write(release_pipe[1], "x", 1) == 1);
    void *r;
    MUST(pthread_join(t, &r) == 0);
    VALUE("holder's send", (long)r);
    VALUE("receive once the holder is gone", msgrcv(holder_q, &m, 8, 0, IPC_NOWAIT));
}

static void info(void)
{
    struct msginfo i;
    int a = msgget(IPC_PRIVATE, 0600), b = msgget(IPC_PRIVATE, 0600);
    MUST(a >= 0 && b >= 0);
    m.mtype = 1;
    MUST(msgsnd(a, &m, 4, 0) == 0 && msgsnd(a, &m, 5, 0) == 0 && msgsnd(b, &m, 1, 0) == 0);
    VALUE("IPC_INFO", msgctl(0, IPC_INFO, (struct msqid_ds *)(void *)&i));
    printf("msgpool %d msgmap %d msgmax %d msgmnb %d msgmni %d msgssz %d msgtql %d msgseg %u\n",
           i.msgpool, i.msgmap, i.msgmax, i.msgmnb, i.msgmni, i.msgssz, i.msgtql,
           (unsigned)i.msgseg);
    VALUE("MSG_INFO", msgctl(0, MSG_INFO, (struct msqid_ds *)(void *)&i));
    printf("msgpool %d msgmap %d msgtql %d\n", i.msgpool, i.msgmap, i.msgtql);
    struct msqid_ds ds;
    VALUE("MSG_STAT 1", msgctl(1, MSG_STAT, &ds));
    printf("qnum %lu seq %u\n", (unsigned long)ds.msg_qnum, (unsigned)ds.msg_perm.__seq);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *section = argc > 1 ? argv[1] : "";
    printf("# %s\n", section);
    if (strcmp(section, "timed") == 0)
        timed();
    else if (strcmp(section, "namespace") == 0)
        namespace();
    else if (strcmp(section, "msgmni") == 0)
        msgmni();
    else if (strcmp(section, "slots") == 0)
        slots();
    else if (strcmp(section, "info") == 0)
        info();
    else {
        fprintf(stderr, "unknown section %s\n", section);
        return 2;
    }
    puts("# end");
    return 0;
}
