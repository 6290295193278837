/* host_limits KEYBASE PHASE: a new namespace obeys the host's limits.
 *
 * Each run first moves into a private IPC namespace (unshare(CLONE_NEWIPC))
 * and sets kernel.msgmax / msgmnb / msgmni there, by writing
 * /proc/sys/kernel/msg* (which are per IPC namespace), so the host's own
 * settings are never touched. Only then does it make its first System V
 * call: on the kernel that call sees the new settings; on shmq it creates the
 * namespace (the driver gives a fresh SHMQ_DIR and no SHMQ_* limits), which
 * takes its limits from /proc/sys/kernel/msg* as this process sees them.
 * Kernel queues made here vanish with the private IPC namespace when the
 * program exits.
 *
 *   info    msgmax 2048, msgmnb 4096, msgmni 100: IPC_INFO and MSG_INFO in
 *           full, a new queue's qbytes, msgmax enforced
 *   msgmni  msgmni 32 (msgmax and msgmnb as the namespace had them): 32
 *           msgget(IPC_CREAT|IPC_EXCL) succeed, the 33rd is ENOSPC, and
 *           succeeds once one queue is removed
 *
 * Prints "# skip: WHY" and exits 0 when the IPC namespace cannot be made or
 * its settings cannot be written (not root, a locked-down container).
 */
#include "harness.h"

#include <sched.h>

static struct msg m;

/* Writes /proc/sys/kernel/NAME; 0 on success. */
static int set_sysctl(const char *name, const char *value)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/sys/kernel/%s", name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    int bad = fputs(value, f) < 0;
    bad |= fclose(f) != 0;
    return bad ? -1 : 0;
}

static void print_info(const char *what, int cmd)
{
    struct msginfo i;
    memset(&i, 0, sizeof i);
    VALUE(what, msgctl(0, cmd, (struct msqid_ds *)(void *)&i));
    printf("  msgpool %d msgmap %d msgmax %d msgmnb %d msgmni %d msgssz %d "
           "msgtql %d msgseg %u\n",
           i.msgpool, i.msgmap, i.msgmax, i.msgmnb, i.msgmni, i.msgssz,
           i.msgtql, (unsigned)i.msgseg);
}

static void info(key_t base)
{
    print_info("IPC_INFO", IPC_INFO);
    print_info("MSG_INFO, no queues", MSG_INFO);
    int q = msgget(base, IPC_CREAT | IPC_EXCL | 0600);
    MUST(q >= 0);
    struct msqid_ds ds;
    MUST(msgctl(q, IPC_STAT, &ds) == 0);
    printf("new queue's qbytes: %lu\n", (unsigned long)ds.msg_qbytes);
    m.mtype = 1;
    memset(m.mtext, 'x', 4096);
    VALUE("send msgmax (2048) bytes", msgsnd(q, &m, 2048, IPC_NOWAIT));
    VALUE("send msgmax + 1 bytes", msgsnd(q, &m, 2049, IPC_NOWAIT));
    VALUE("send 2048 more", msgsnd(q, &m, 2048, IPC_NOWAIT));
    VALUE("send 1 more, queue full", msgsnd(q, &m, 1, IPC_NOWAIT));
    print_info("MSG_INFO, one queue", MSG_INFO);
    VALUE("rmid", msgctl(q, IPC_RMID, NULL));
}

static void msgmni(key_t base)
{
    int ids[33], made = 0;
    for (int i = 0; i < 33; i++) {
        errno = 0;
        ids[i] = msgget(base + i, IPC_CREAT | IPC_EXCL | 0600);
        if (ids[i] >= 0)
            made++;
        else
            printf("create %d: -1 %s\n", i + 1, ename(errno));
    }
    printf("created: %d\n", made);
    OK("private queue too", msgget(IPC_PRIVATE, 0600));
    struct msginfo i;
    MUST(msgctl(0, MSG_INFO, (struct msqid_ds *)(void *)&i) >= 0);
    printf("MSG_INFO queues in use: %d\n", i.msgpool);
    MUST(ids[0] >= 0);
    VALUE("rmid one", msgctl(ids[0], IPC_RMID, NULL));
    OK("create after the removal", msgget(base + 40, IPC_CREAT | IPC_EXCL | 0600));
}

int main(int argc, char **argv)
{
    key_t base = key_base(argc, argv);
    const char *phase = argc > 2 ? argv[2] : "";
    int is_info = strcmp(phase, "info") == 0;
    if (!is_info && strcmp(phase, "msgmni") != 0) {
        fprintf(stderr, "usage: %s KEYBASE info|msgmni\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (unshare(CLONE_NEWIPC) != 0) {
        printf("# skip: unshare(CLONE_NEWIPC): %s\n", ename(errno));
        return 0;
    }
    const char *mni = is_info ? "100" : "32";
    if (set_sysctl("msgmax", "2048") != 0 || set_sysctl("msgmnb", "4096") != 0 ||
        set_sysctl("msgmni", mni) != 0) {
        printf("# skip: cannot write /proc/sys/kernel/msg*: %s\n", ename(errno));
        return 0;
    }
    printf("# %s\n", phase);
    if (is_info)
        info(base);
    else
        msgmni(base);
    printf("# end\n");
    return 0;
}
