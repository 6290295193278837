/* Counts and capacity right after SIGKILLs (issue 15), as a plain System V
 * program: producers and consumers are forked, killed with SIGKILL at random
 * moments and restarted, hundreds of times; then every one is gone (waitpid
 * returned) and, with no other call in between and nobody asleep:
 *
 *   - IPC_STAT's msg_qnum / msg_cbytes equal what a drain with IPC_NOWAIT
 *     then receives (the counts are exact before the drain too);
 *   - after the drain IPC_STAT shows 0 and 0, and MSG_INFO shows no message
 *     and no byte (shmq runs only: the kernel's MSG_INFO counts every queue
 *     of the machine);
 *   - IPC_NOWAIT sends of 40 bytes fill exactly qbytes / 40 messages.
 *
 * Consumers are also killed while asleep: a few of their receives wait for a
 * type that nobody sends. Two rounds: one producer and one consumer with
 * 40-byte messages of one type; four of each with mixed types and sizes and
 * every kind of selector.
 *
 * Usage: kill_recovery KEYBASE [KILLS]. Prints a transcript that must be the
 * same on the kernel and on shmq. */
#include "harness.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define MAX_PROCS 8

struct kmsg {
    long mtype;
    char mtext[4096];
};

static unsigned long rng_state;

static unsigned long next_rand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A message buffer whose pages are dropped before each call, so that the
 * library's copy of the text page-faults: the calls then spend a few
 * microseconds between taking (or reserving) and finishing, which is where
 * a kill leaves work for recovery, instead of a few tens of nanoseconds. */
static struct kmsg *cold_buffer(void)
{
    void *p = mmap(NULL, sizeof(struct kmsg), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        _exit(5);
    return p;
}

static void chill(struct kmsg *m)
{
    madvise(m, sizeof *m, MADV_DONTNEED);
}

static void producer(int id, int mixed)
{
    struct kmsg *m = cold_buffer();
    for (unsigned long seq = 0;; seq++) {
        chill(m);
        m->mtype = mixed ? 1 + (long)(seq % 5) : 1;
        size_t size = mixed ? 8 + (seq * 997) % 4000 : 40;
        if (msgsnd(id, m, size, 0) < 0 && errno != EINTR)
            _exit(3);
    }
}

static void consumer(int id, int mixed)
{
    struct kmsg *mp = cold_buffer();
    rng_state = 0x9e3779b97f4a7c15ul ^ (unsigned long)getpid();
    for (;;) {
        unsigned long r = next_rand() % 256;
        long type = 0;
        int flags = 0;
        if (r == 0) {
            type = 999; /* nobody sends it: asleep until killed */
        } else if (mixed) {
            switch (r % 4) {
            case 0: type = 0; break;
            case 1: type = 1 + (long)(r % 5); break;
            case 2: type = -3; break;
            default: type = 2; flags = MSG_EXCEPT; break;
            }
        }
        chill(mp);
        if (msgrcv(id, mp, sizeof mp->mtext, type, flags) < 0 && errno != EINTR)
            _exit(4);
    }
}

static pid_t start(int id, int is_producer, int mixed)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        if (is_producer)
            producer(id, mixed);
        else
            consumer(id, mixed);
        _exit(0);
    }
    return pid;
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    int status;
    if (waitpid(pid, &status, 0) != pid) {
        perror("waitpid");
        exit(1);
    }
    if (!WIFSIGNALED(status)) {
        printf("a child ended by itself (status %d)\n", status);
        exit(1);
    }
}

static void round_of_kills(key_t key, int procs, int mixed, int kills)
{
    int id = get(key, IPC_CREAT | 0600);
    if (id < 0) {
        report_value("msgget", id, errno);
        exit(1);
    }
    printf("# %d producer(s) x %d consumer(s), %s\n", procs, procs,
           mixed ? "mixed types and sizes" : "40-byte messages of one type");
    pid_t pids[MAX_PROCS];
    int n = 2 * procs;
    for (int i = 0; i < n; i++)
        pids[i] = start(id, i < procs, mixed);
    for (int k = 0; k < kills; k++) {
        usleep((useconds_t)(next_rand() % 3000));
        int victim = (int)(next_rand() % (unsigned long)n);
        reap(pids[victim]);
        pids[victim] = start(id, victim < procs, mixed);
    }
    for (int i = 0; i < n; i++)
        reap(pids[i]);
    printf("kills: %d, every process reaped\n", kills + n);

    /* Right after the reaping: no other call in between. */
    struct msqid_ds ds;
    if (msgctl(id, IPC_STAT, &ds) < 0) {
        report_value("IPC_STAT", -1, errno);
        exit(1);
    }
    unsigned long qnum = ds.msg_qnum, cbytes = ds.__msg_cbytes;
    unsigned long drained = 0, bytes = 0;
    struct kmsg m;
    for (;;) {
        ssize_t r = msgrcv(id, &m, sizeof m.mtext, 0, IPC_NOWAIT);
        if (r < 0)
            break;
        drained++;
        bytes += (unsigned long)r;
    }
    printf("drain ended with %s\n", ename(errno));
    /* Differs from run to run: stderr, not the transcript. */
    fprintf(stderr, "qnum %lu cbytes %lu, drained %lu messages, %lu bytes\n",
            qnum, cbytes, drained, bytes);
    printf("IPC_STAT before the drain counted what it drained: %s\n",
           qnum == drained && cbytes == bytes ? "yes" : "no");
    if (msgctl(id, IPC_STAT, &ds) < 0) {
        report_value("IPC_STAT", -1, errno);
        exit(1);
    }
    printf("after the drain: qnum %lu cbytes %lu\n",
           (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes);
    if (getenv("SHMQ_DIR") != NULL) {
        /* shmq: this queue is the namespace's only one. */
        struct msginfo info;
        msgctl(0, MSG_INFO, (struct msqid_ds *)(void *)&info);
        printf("MSG_INFO messages and bytes are zero: %s\n",
               info.msgmap == 0 && info.msgtql == 0 ? "yes" : "no");
    } else {
        printf("MSG_INFO messages and bytes are zero: yes\n");
    }
    unsigned long filled = 0;
    memset(m.mtext, 'f', 40);
    m.mtype = 1;
    while (msgsnd(id, &m, 40, IPC_NOWAIT) == 0)
        filled++;
    printf("fill ended with %s\n", ename(errno));
    printf("IPC_NOWAIT sends of 40 bytes accepted: %lu (qbytes / 40 = %lu)\n",
           filled, (unsigned long)ds.msg_qbytes / 40);
    msgctl(id, IPC_RMID, NULL);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s KEYBASE [KILLS]\n", argv[0]);
        return 2;
    }
    key_t base = (key_t)strtol(argv[1], NULL, 0);
    int kills = argc > 2 ? atoi(argv[2]) : 300;
    setvbuf(stdout, NULL, _IOLBF, 0);
    rng_state = 0x2545f4914f6cdd1dul;
    round_of_kills(base, 1, 0, kills);
    round_of_kills(base + 1, 4, 1, kills);
    printf("# end\n");
    return 0;
}
