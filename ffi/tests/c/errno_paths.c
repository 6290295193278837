/* errno_paths KEYBASE: every error path of msgget, msgsnd, msgrcv, msgctl
 * and ftok that the kernel and shmq share, plus their successes, as a
 * transcript. Run on the kernel, through libshmq (-DSHMQ_LINK) and under the
 * preload library; the three transcripts must be equal.
 *
 * As root, a child that drops to uid/gid 65534 checks the permission paths
 * (EACCES, EPERM) and that shmq stays usable after setuid. */
#include "harness.h"

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* An id that names no queue on either side: index 32766 on the kernel
 * (unused on a test machine), a wrong sequence number on shmq. */
#define UNUSED_ID 0x7ffffffe

static struct msg *m;

static void section_msgget(key_t base)
{
    puts("# msgget");
    OK("get absent key", get(base + 1, 0));
    OK("get absent key, mode only", get(base + 1, 0600));
    OK("create exclusive", get(base + 1, IPC_CREAT | IPC_EXCL | 0640));
    OK("create exclusive again", get(base + 1, IPC_CREAT | IPC_EXCL | 0640));
    OK("create existing", get(base + 1, IPC_CREAT | 0600));
    OK("open existing", get(base + 1, 0));
    OK("open existing asking rwx for all (root)", get(base + 1, 0777));
    int a = get(base + 1, 0), b = get(base + 1, IPC_CREAT);
    FACT("same key, same id", a == b && a >= 0);
    int p1 = get(IPC_PRIVATE, 0600), p2 = get(IPC_PRIVATE, IPC_CREAT | IPC_EXCL | 0600);
    FACT("IPC_PRIVATE twice, two queues", p1 >= 0 && p2 >= 0 && p1 != p2);
    MUST(msgctl(p1, IPC_RMID, NULL) == 0 && msgctl(p2, IPC_RMID, NULL) == 0);
    VALUE("rmid keyed", msgctl(a, IPC_RMID, NULL));
    OK("key free again", get(base + 1, 0));
    OK("key reusable at once", get(base + 1, IPC_CREAT | IPC_EXCL | 0600));
    MUST(msgctl(get(base + 1, 0), IPC_RMID, NULL) == 0);
}

static void section_msgsnd(int q, int msgmax)
{
    puts("# msgsnd");
    m->mtype = 1;
    memset(m->mtext, 'x', sizeof m->mtext);
    VALUE("NULL msgp", msgsnd(q, NULL, 1, IPC_NOWAIT));
    VALUE("NULL msgp, bad id (EFAULT first)", msgsnd(-1, NULL, 1, IPC_NOWAIT));
    VALUE("msgsz msgmax+1", msgsnd(q, m, (size_t)msgmax + 1, IPC_NOWAIT));
    VALUE("msgsz -1", msgsnd(q, m, (size_t)-1, IPC_NOWAIT));
    m->mtype = 0;
    VALUE("mtype 0", msgsnd(q, m, 1, IPC_NOWAIT));
    m->mtype = -5;
    VALUE("mtype -5", msgsnd(q, m, 1, IPC_NOWAIT));
    VALUE("mtype -5, bad id (EINVAL either way)", msgsnd(UNUSED_ID, m, 1, IPC_NOWAIT));
    m->mtype = 1;
    VALUE("msqid -1", msgsnd(-1, m, 1, IPC_NOWAIT));
    VALUE("unused id", msgsnd(UNUSED_ID, m, 1, IPC_NOWAIT));
    int r = get(IPC_PRIVATE, 0600);
    MUST(msgctl(r, IPC_RMID, NULL) == 0);
    VALUE("removed id", msgsnd(r, m, 1, IPC_NOWAIT));
    VALUE("empty text", msgsnd(q, m, 0, IPC_NOWAIT));
    VALUE("msgmax bytes", msgsnd(q, m, (size_t)msgmax, IPC_NOWAIT));
    m->mtype = 2;
    VALUE("msgmax bytes again", msgsnd(q, m, (size_t)msgmax, IPC_NOWAIT));
    VALUE("full, IPC_NOWAIT", msgsnd(q, m, 1, IPC_NOWAIT));
    VALUE("full, empty text, IPC_NOWAIT", msgsnd(q, m, 0, IPC_NOWAIT));
    struct msqid_ds ds;
    MUST(msgctl(q, IPC_STAT, &ds) == 0);
    printf("qnum %lu cbytes %lu\n", (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes);
}

static void section_msgrcv(int q, int msgmax)
{
    puts("# msgrcv");
    VALUE("msqid -1", msgrcv(-1, m, 16, 0, IPC_NOWAIT));
    VALUE("msqid -1, NULL msgp", msgrcv(-1, NULL, 16, 0, IPC_NOWAIT));
    VALUE("msgsz -1", msgrcv(q, m, (size_t)-1, 0, IPC_NOWAIT));
    VALUE("unused id", msgrcv(UNUSED_ID, m, 16, 0, IPC_NOWAIT));
    int r = get(IPC_PRIVATE, 0600);
    MUST(msgctl(r, IPC_RMID, NULL) == 0);
    VALUE("removed id", msgrcv(r, m, 16, 0, IPC_NOWAIT));
    /* q holds, oldest first: type 1 "", type 1 msgmax x, type 2 msgmax x,
     * type 2 "". */
    VALUE("type 3 absent", msgrcv(q, m, 16, 3, IPC_NOWAIT));
    VALUE("oldest, empty text", msgrcv(q, m, 16, 0, IPC_NOWAIT));
    printf("mtype %ld\n", m->mtype);
    VALUE("too big", msgrcv(q, m, 16, 0, IPC_NOWAIT));
    VALUE("too big, bigger buffer still short", msgrcv(q, m, (size_t)msgmax - 1, 1, IPC_NOWAIT));
    VALUE("MSG_COPY without IPC_NOWAIT", msgrcv(q, m, 16, 0, MSG_COPY));
    VALUE("MSG_COPY with MSG_EXCEPT", msgrcv(q, m, 16, 0, MSG_COPY | MSG_EXCEPT | IPC_NOWAIT));
    VALUE("MSG_COPY, NULL msgp", msgrcv(q, NULL, 16, 0, MSG_COPY | IPC_NOWAIT));
    VALUE("MSG_COPY, position 2", msgrcv(q, m, 65536, 1, MSG_COPY | IPC_NOWAIT));
    printf("mtype %ld\n", m->mtype);
    VALUE("MSG_COPY, position 3", msgrcv(q, m, 65536, 2, MSG_COPY | IPC_NOWAIT));
    VALUE("MSG_COPY, position 4 (none)", msgrcv(q, m, 65536, 3, MSG_COPY | IPC_NOWAIT));
    VALUE("MSG_COPY, position -1 (none)", msgrcv(q, m, 65536, -1, MSG_COPY | IPC_NOWAIT));
    VALUE("MSG_COPY, short buffer", msgrcv(q, m, 16, 0, MSG_COPY | IPC_NOWAIT));
    VALUE("MSG_COPY, short buffer, MSG_NOERROR",
          msgrcv(q, m, 16, 0, MSG_COPY | MSG_NOERROR | IPC_NOWAIT));
    VALUE("MSG_NOERROR truncates", msgrcv(q, m, 16, 1, MSG_NOERROR | IPC_NOWAIT));
    printf("mtype %ld text %.4s\n", m->mtype, m->mtext);
    VALUE("MSG_EXCEPT 2, none left", msgrcv(q, m, 65536, 2, MSG_EXCEPT | IPC_NOWAIT));
    VALUE("NULL msgp, message there (lost, as the kernel)", msgrcv(q, NULL, 65536, 0, IPC_NOWAIT));
    VALUE("the last one", msgrcv(q, m, 65536, 0, IPC_NOWAIT));
    VALUE("NULL msgp, empty", msgrcv(q, NULL, 65536, 0, IPC_NOWAIT));
    m->mtype = 9;
    memcpy(m->mtext, "0123456789", 10);
    MUST(msgsnd(q, m, 10, 0) == 0);
    VALUE("NULL msgp, too big (E2BIG before EFAULT)", msgrcv(q, NULL, 4, 0, IPC_NOWAIT));
    VALUE("NULL msgp, zero size, MSG_COPY", msgrcv(q, NULL, 0, 0, MSG_COPY | IPC_NOWAIT));
    VALUE("zero-size buffer", msgrcv(q, m, 0, 0, IPC_NOWAIT));
    VALUE("exact size", msgrcv(q, m, 10, 9, IPC_NOWAIT));
    printf("text %.10s\n", m->mtext);

    /* The msgtyp table of docs/semantics.md, and MSG_EXCEPT. */
    long types[] = {0, 100, 200, 300, -100, -200, -300, 150, -50, -1000};
    for (unsigned i = 0; i < sizeof types / sizeof types[0]; i++) {
        for (int except = 0; except < 2; except++) {
            for (long t = 100; t <= 300; t += 100) {
                m->mtype = t;
                MUST(msgsnd(q, m, 1, 0) == 0);
            }
            char what[64];
            snprintf(what, sizeof what, "msgtyp %ld%s", types[i], except ? " MSG_EXCEPT" : "");
            errno = 0;
            long n = msgrcv(q, m, 16, types[i], IPC_NOWAIT | (except ? MSG_EXCEPT : 0));
            if (n < 0)
                printf("%s: -1 %s\n", what, ename(errno));
            else
                printf("%s: type %ld\n", what, m->mtype);
            while (msgrcv(q, m, 16, 0, IPC_NOWAIT) >= 0) {
            }
        }
    }
    /* FIFO within a type, oldest across types. */
    for (long i = 0; i < 12; i++) {
        m->mtype = 1 + i % 3;
        m->mtext[0] = (char)('a' + i);
        MUST(msgsnd(q, m, 1, 0) == 0);
    }
    printf("order:");
    long seq[] = {2, 0, -2, 3, 0, 0, -3, 1, 0, 0, 0, 0};
    for (unsigned i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        if (msgrcv(q, m, 16, seq[i], IPC_NOWAIT) >= 0)
            printf(" %ld%c", m->mtype, m->mtext[0]);
        else
            printf(" %s", ename(errno));
    }
    printf("\n");
}

static void section_msgctl(key_t base, int msgmnb)
{
    puts("# msgctl");
    struct msqid_ds ds;
    struct msginfo info;
    int q = get(base + 2, IPC_CREAT | IPC_EXCL | 0640);
    MUST(q >= 0);
    VALUE("msqid -1", msgctl(-1, IPC_STAT, &ds));
    VALUE("cmd -1", msgctl(q, -1, &ds));
    VALUE("unknown cmd 99", msgctl(q, 99, &ds));
    VALUE("unknown cmd 99, msqid -1", msgctl(-1, 99, &ds));
    VALUE("IPC_STAT unused id", msgctl(UNUSED_ID, IPC_STAT, &ds));
    VALUE("IPC_STAT NULL buf", msgctl(q, IPC_STAT, NULL));
    VALUE("IPC_STAT NULL buf, unused id (EINVAL first)", msgctl(UNUSED_ID, IPC_STAT, NULL));
    VALUE("IPC_SET NULL buf", msgctl(q, IPC_SET, NULL));
    VALUE("IPC_SET NULL buf, unused id (EFAULT first)", msgctl(UNUSED_ID, IPC_SET, NULL));
    VALUE("IPC_INFO NULL buf", msgctl(0, IPC_INFO, NULL));
    VALUE("MSG_INFO NULL buf", msgctl(0, MSG_INFO, NULL));

    m->mtype = 4;
    MUST(msgsnd(q, m, 5, 0) == 0);
    MUST(msgsnd(q, m, 7, 0) == 0);
    VALUE("IPC_STAT", msgctl(q, IPC_STAT, &ds));
    printf("key %#x uid %u gid %u cuid %u cgid %u mode %o\n", (unsigned)ds.msg_perm.__key,
           (unsigned)ds.msg_perm.uid, (unsigned)ds.msg_perm.gid, (unsigned)ds.msg_perm.cuid,
           (unsigned)ds.msg_perm.cgid, (unsigned)ds.msg_perm.mode);
    printf("qnum %lu cbytes %lu qbytes %lu lspid is me %s lrpid %d stime set %s rtime %ld "
           "ctime set %s\n",
           (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes,
           (unsigned long)ds.msg_qbytes, ds.msg_lspid == getpid() ? "yes" : "no",
           (int)ds.msg_lrpid, ds.msg_stime != 0 ? "yes" : "no", (long)ds.msg_rtime,
           ds.msg_ctime != 0 ? "yes" : "no");
    MUST(msgrcv(q, m, 64, 0, IPC_NOWAIT) == 5);
    MUST(msgctl(q, IPC_STAT, &ds) == 0);
    printf("after a receive: qnum %lu cbytes %lu lrpid is me %s rtime set %s\n",
           (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes,
           ds.msg_lrpid == getpid() ? "yes" : "no", ds.msg_rtime != 0 ? "yes" : "no");

    ds.msg_perm.mode = 0600 | 01000; /* bits above 0777 are ignored */
    ds.msg_qbytes = 100;
    VALUE("IPC_SET mode 0600 qbytes 100", msgctl(q, IPC_SET, &ds));
    MUST(msgctl(q, IPC_STAT, &ds) == 0);
    printf("mode %o qbytes %lu\n", (unsigned)ds.msg_perm.mode, (unsigned long)ds.msg_qbytes);
    VALUE("send 94 bytes into 7 of 100", msgsnd(q, m, 94, IPC_NOWAIT));
    VALUE("send 93 bytes into 7 of 100", msgsnd(q, m, 93, IPC_NOWAIT));
    while (msgrcv(q, m, 65536, 0, IPC_NOWAIT) >= 0) {
    }
    ds.msg_qbytes = 2;
    MUST(msgctl(q, IPC_SET, &ds) == 0);
    VALUE("qbytes 2: empty message 1", msgsnd(q, m, 0, IPC_NOWAIT));
    VALUE("qbytes 2: empty message 2", msgsnd(q, m, 0, IPC_NOWAIT));
    VALUE("qbytes 2: empty message 3 (qnum counts too)", msgsnd(q, m, 0, IPC_NOWAIT));
    while (msgrcv(q, m, 65536, 0, IPC_NOWAIT) >= 0) {
    }
    ds.msg_qbytes = (msglen_t)msgmnb * 2;
    VALUE("IPC_SET qbytes 2*msgmnb as root", msgctl(q, IPC_SET, &ds));
    ds.msg_qbytes = (msglen_t)msgmnb;
    ds.msg_perm.uid = (uid_t)-1;
    VALUE("IPC_SET uid -1", msgctl(q, IPC_SET, &ds));
    ds.msg_perm.uid = 0;
    ds.msg_perm.gid = (gid_t)-1;
    VALUE("IPC_SET gid -1", msgctl(q, IPC_SET, &ds));
    ds.msg_perm.gid = 0;
    VALUE("IPC_SET unused id", msgctl(UNUSED_ID, IPC_SET, &ds));

    int idx = index_of(q);
    FACT("MSG_STAT_ANY finds the queue", idx >= 0);
    VALUE("MSG_STAT returns the id", msgctl(idx, MSG_STAT, &ds) == q);
    VALUE("MSG_STAT NULL buf", msgctl(idx, MSG_STAT, NULL));
    int max = msgctl(0, IPC_INFO, (struct msqid_ds *)(void *)&info);
    FACT("IPC_INFO returns the highest index in use", max >= idx);
    /* Index msgmni is never used (an index above the highest is racy on the
     * kernel: another test may take it meanwhile). */
    VALUE("MSG_STAT at index msgmni", msgctl(info.msgmni, MSG_STAT, &ds));
    VALUE("MSG_STAT_ANY at index msgmni", msgctl(info.msgmni, MSG_STAT_ANY, &ds));
    printf("IPC_INFO: msgmax %d msgmnb %d msgmni %d msgssz %d msgseg %u\n", info.msgmax,
           info.msgmnb, info.msgmni, info.msgssz, (unsigned)info.msgseg);
    MUST(msgctl(0, MSG_INFO, (struct msqid_ds *)(void *)&info) >= 0);
    FACT("MSG_INFO counts queues in msgpool", info.msgpool >= 1);

    VALUE("IPC_RMID", msgctl(q, IPC_RMID, NULL));
    VALUE("IPC_RMID again", msgctl(q, IPC_RMID, NULL));
    VALUE("IPC_STAT removed", msgctl(q, IPC_STAT, &ds));
    VALUE("IPC_SET removed", msgctl(q, IPC_SET, &ds));
    VALUE("IPC_RMID unused id", msgctl(UNUSED_ID, IPC_RMID, NULL));
}

static void section_ftok(void)
{
    puts("# ftok");
    struct stat st;
    MUST(stat("/", &st) == 0);
    key_t want = (key_t)(((unsigned)'x' & 0xff) << 24 | ((unsigned)st.st_dev & 0xff) << 16 |
                         ((unsigned)st.st_ino & 0xffff));
    FACT("ftok(\"/\", 'x') is glibc's formula", ftok("/", 'x') == want);
    FACT("proj_id keeps its low 8 bits", ftok("/", 0x178) == ftok("/", 0x78));
    VALUE("NULL path", ftok(NULL, 1));
    VALUE("missing path", ftok("/no/such/path", 1));
    VALUE("not a directory", ftok("/dev/null/x", 1));
    VALUE("empty path", ftok("", 1));
}

/* As uid/gid 65534 (in a child), against queues root made: qr grants others
 * read only, qw write only. */
static void section_permissions(key_t base, int msgmnb)
{
    puts("# permissions");
    if (geteuid() != 0) {
        puts("skipped: not root");
        return;
    }
    int qr = get(base + 3, IPC_CREAT | IPC_EXCL | 0604);
    int qw = get(base + 4, IPC_CREAT | IPC_EXCL | 0602);
    MUST(qr >= 0 && qw >= 0);
    m->mtype = 1;
    MUST(msgsnd(qr, m, 3, 0) == 0 && msgsnd(qw, m, 3, 0) == 0);
    int iw = index_of(qw);
    MUST(iw >= 0);
    fflush(stdout);
    pid_t pid = fork();
    MUST(pid >= 0);
    if (pid == 0) {
        struct msqid_ds ds;
        /* Use the queues as root first: shmq caches the credentials then,
         * and must notice the change below. */
        MUST(msgctl(qw, IPC_STAT, &ds) == 0);
        MUST(setgroups(0, NULL) == 0);
        MUST(setgid(65534) == 0);
        MUST(setuid(65534) == 0);
        REFRESH_CREDENTIALS();
        OK("get read-only queue, no access asked", get(base + 3, 0));
        OK("get read-only queue, read asked", get(base + 3, 0444));
        OK("get read-only queue, write asked", get(base + 3, 0200));
        OK("get read-only queue, rw asked", get(base + 3, 0666));
        OK("create on existing, mode rw", get(base + 3, IPC_CREAT | 0666));
        VALUE("send to read-only", msgsnd(qr, m, 3, IPC_NOWAIT));
        VALUE("receive from read-only", msgrcv(qr, m, 16, 0, IPC_NOWAIT));
        VALUE("IPC_STAT read-only", msgctl(qr, IPC_STAT, &ds));
        VALUE("IPC_SET not owner", msgctl(qr, IPC_SET, &ds));
        VALUE("IPC_RMID not owner", msgctl(qr, IPC_RMID, NULL));
        ds.msg_perm.uid = (uid_t)-1;
        VALUE("IPC_SET not owner, uid -1 (EPERM first)", msgctl(qr, IPC_SET, &ds));
        VALUE("send to write-only", msgsnd(qw, m, 3, IPC_NOWAIT));
        VALUE("receive from write-only", msgrcv(qw, m, 16, 0, IPC_NOWAIT));
        VALUE("MSG_COPY from write-only", msgrcv(qw, m, 16, 0, IPC_NOWAIT | MSG_COPY));
        VALUE("IPC_STAT write-only", msgctl(qw, IPC_STAT, &ds));
        VALUE("MSG_STAT write-only", msgctl(iw, MSG_STAT, &ds));
        VALUE("MSG_STAT_ANY write-only is its id", msgctl(iw, MSG_STAT_ANY, &ds) == qw);

        /* State stays usable: a queue of our own. */
        int qn = get(IPC_PRIVATE, 0600);
        OK("create as nobody", qn);
        VALUE("IPC_STAT own", msgctl(qn, IPC_STAT, &ds));
        printf("uid %u cuid %u gid %u mode %o\n", (unsigned)ds.msg_perm.uid,
               (unsigned)ds.msg_perm.cuid, (unsigned)ds.msg_perm.gid,
               (unsigned)ds.msg_perm.mode);
        VALUE("send own", msgsnd(qn, m, 3, IPC_NOWAIT));
        VALUE("receive own", msgrcv(qn, m, 16, 0, IPC_NOWAIT));
        ds.msg_qbytes = (msglen_t)msgmnb + 1;
        VALUE("raise qbytes above msgmnb, not root", msgctl(qn, IPC_SET, &ds));
        ds.msg_qbytes = (msglen_t)msgmnb - 1;
        ds.msg_perm.uid = (uid_t)-1;
        VALUE("IPC_SET own, uid -1", msgctl(qn, IPC_SET, &ds));
        ds.msg_perm.uid = 65534;
        VALUE("lower qbytes", msgctl(qn, IPC_SET, &ds));
        ds.msg_perm.uid = 0;
        VALUE("give the queue to root", msgctl(qn, IPC_SET, &ds));
        VALUE("still the creator: IPC_STAT", msgctl(qn, IPC_STAT, &ds));
        printf("uid %u cuid %u qbytes %lu\n", (unsigned)ds.msg_perm.uid,
               (unsigned)ds.msg_perm.cuid, (unsigned long)ds.msg_qbytes);
        VALUE("still the creator: IPC_RMID", msgctl(qn, IPC_RMID, NULL));
        fflush(stdout);
        _exit(0);
    }
    int status;
    MUST(waitpid(pid, &status, 0) == pid);
    FACT("child exited 0", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct msqid_ds ds;
    MUST(msgctl(qr, IPC_STAT, &ds) == 0);
    printf("root sees read-only queue: qnum %lu lrpid is the child %s\n",
           (unsigned long)ds.msg_qnum, ds.msg_lrpid == pid ? "yes" : "no");
    MUST(msgctl(qw, IPC_STAT, &ds) == 0);
    printf("root sees write-only queue: qnum %lu lspid is the child %s\n",
           (unsigned long)ds.msg_qnum, ds.msg_lspid == pid ? "yes" : "no");
    MUST(msgctl(qr, IPC_RMID, NULL) == 0 && msgctl(qw, IPC_RMID, NULL) == 0);
}

/* Group access through a supplementary group: as uid/gid 65534 with
 * supplementary group 4242 only (in a child), against queues root made and
 * gave to group 4242 (qg) and 4343 (qh), mode 0660. */
static void section_group_permissions(key_t base)
{
    puts("# group permissions");
    if (geteuid() != 0) {
        puts("skipped: not root");
        return;
    }
    int qg = get(base + 5, IPC_CREAT | IPC_EXCL | 0660);
    int qh = get(base + 6, IPC_CREAT | IPC_EXCL | 0660);
    MUST(qg >= 0 && qh >= 0);
    struct msqid_ds ds;
    MUST(msgctl(qg, IPC_STAT, &ds) == 0);
    ds.msg_perm.gid = 4242;
    MUST(msgctl(qg, IPC_SET, &ds) == 0);
    MUST(msgctl(qh, IPC_STAT, &ds) == 0);
    ds.msg_perm.gid = 4343;
    MUST(msgctl(qh, IPC_SET, &ds) == 0);
    fflush(stdout);
    pid_t pid = fork();
    MUST(pid >= 0);
    if (pid == 0) {
        /* Checked once as root first, so that a cache of the groups (shmq
         * keeps one with the credentials) must notice the change. */
        MUST(msgctl(qg, IPC_STAT, &ds) == 0);
        gid_t groups[1] = {4242};
        MUST(setgroups(1, groups) == 0);
        MUST(setgid(65534) == 0);
        MUST(setuid(65534) == 0);
        REFRESH_CREDENTIALS();
        m->mtype = 1;
        VALUE("send, queue of a supplementary group", msgsnd(qg, m, 3, IPC_NOWAIT));
        VALUE("receive, queue of a supplementary group", msgrcv(qg, m, 16, 0, IPC_NOWAIT));
        VALUE("send again, same group", msgsnd(qg, m, 3, IPC_NOWAIT));
        VALUE("send, queue of another group", msgsnd(qh, m, 3, IPC_NOWAIT));
        VALUE("receive, queue of another group", msgrcv(qh, m, 16, 0, IPC_NOWAIT));
        VALUE("IPC_STAT, queue of another group", msgctl(qh, IPC_STAT, &ds));
        OK("get, queue of a supplementary group, rw", get(base + 5, 0660));
        OK("get, queue of another group, read", get(base + 6, 0440));
        fflush(stdout);
        _exit(0);
    }
    int status;
    MUST(waitpid(pid, &status, 0) == pid);
    FACT("child exited 0", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    MUST(msgctl(qg, IPC_STAT, &ds) == 0);
    printf("root sees the group's queue: qnum %lu\n", (unsigned long)ds.msg_qnum);
    MUST(msgctl(qg, IPC_RMID, NULL) == 0 && msgctl(qh, IPC_RMID, NULL) == 0);
}

int main(int argc, char **argv)
{
    key_t base = key_base(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    m = calloc(1, sizeof *m);
    MUST(m != NULL);
    struct msginfo info = limits();
    printf("limits: msgmax %d msgmnb %d\n", info.msgmax, info.msgmnb);
    section_msgget(base);
    int q = get(IPC_PRIVATE, 0600);
    MUST(q >= 0);
    section_msgsnd(q, info.msgmax);
    section_msgrcv(q, info.msgmax);
    MUST(msgctl(q, IPC_RMID, NULL) == 0);
    m->mtype = 1;
    VALUE("send to the queue just used and removed", msgsnd(q, m, 1, IPC_NOWAIT));
    VALUE("receive from it", msgrcv(q, m, 16, 0, IPC_NOWAIT));
    section_msgctl(base, info.msgmnb);
    section_ftok();
    section_permissions(base, info.msgmnb);
    section_group_permissions(base);
    puts("# end");
    return 0;
}
