/* Helpers of the C test programs (driven by ffi/tests/c_suite.rs).
 *
 * A program is written once against the System V names and built two ways:
 * plainly (it then runs on the kernel, or on shmq under LD_PRELOAD) and with
 * -DSHMQ_LINK, where the names below become shmq_msgget, ... from libshmq.
 * The three runs print transcripts that the driver compares line by line.
 *
 * Transcript lines never show what differs by design between the kernel and
 * shmq (queue ids, table indexes): only results, errno names and facts
 * ("yes"/"no").
 */
#ifndef SHMQ_TEST_HARNESS_H
#define SHMQ_TEST_HARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/types.h>
#include <unistd.h>

#ifdef SHMQ_LINK
#include <shmq.h>
#define msgget shmq_msgget
#define msgsnd shmq_msgsnd
#define msgrcv shmq_msgrcv
#define msgctl shmq_msgctl
#define ftok shmq_ftok
/* libshmq caches the credentials; the preload library refreshes them in its
 * setuid wrappers, a linked program says so itself. */
#define REFRESH_CREDENTIALS() shmq_refresh_credentials()
#else
#define REFRESH_CREDENTIALS() ((void)0)
#endif

#ifndef MSG_STAT_ANY
#define MSG_STAT_ANY 13
#endif
#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

static inline const char *ename(int e)
{
    switch (e) {
    case E2BIG: return "E2BIG";
    case EACCES: return "EACCES";
    case EAGAIN: return "EAGAIN";
    case EEXIST: return "EEXIST";
    case EFAULT: return "EFAULT";
    case EIDRM: return "EIDRM";
    case EINTR: return "EINTR";
    case EINVAL: return "EINVAL";
    case EIO: return "EIO";
    case ENOENT: return "ENOENT";
    case ENOMEM: return "ENOMEM";
    case ENOMSG: return "ENOMSG";
    case ENOSPC: return "ENOSPC";
    case ENOSYS: return "ENOSYS";
    case ENOTDIR: return "ENOTDIR";
    case EPERM: return "EPERM";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EBADF: return "EBADF";
    case EMSGSIZE: return "EMSGSIZE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EMFILE: return "EMFILE";
    case EBUSY: return "EBUSY";
    case 0: return "0";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "E#%d", e);
        return buf;
    }
    }
}

/* "what: VALUE" or "what: -1 ENAME". */
static inline void report_value(const char *what, long r, int err)
{
    if (r < 0)
        printf("%s: -1 %s\n", what, ename(err));
    else
        printf("%s: %ld\n", what, r);
}

/* "what: ok" or "what: -1 ENAME" (for results that differ between
 * implementations, such as ids). */
static inline void report_ok(const char *what, long r, int err)
{
    if (r < 0)
        printf("%s: -1 %s\n", what, ename(err));
    else
        printf("%s: ok\n", what);
}

#define VALUE(what, expr)                                                      \
    do {                                                                       \
        errno = 0;                                                             \
        long r_ = (long)(expr);                                                \
        report_value(what, r_, errno);                                         \
    } while (0)

#define OK(what, expr)                                                         \
    do {                                                                       \
        errno = 0;                                                             \
        long r_ = (long)(expr);                                                \
        report_ok(what, r_, errno);                                            \
    } while (0)

#define FACT(what, cond) printf("%s: %s\n", what, (cond) ? "yes" : "no")

/* Stops the program: the driver sees the line and a non-zero status. */
#define MUST(expr)                                                             \
    do {                                                                       \
        if (!(expr)) {                                                         \
            printf("FAILED at %s:%d: %s (errno %s)\n", __FILE__, __LINE__,     \
                   #expr, ename(errno));                                       \
            fflush(stdout);                                                    \
            _exit(99);                                                         \
        }                                                                      \
    } while (0)

/* msgget that appends every id it returns to $SHMQ_CTEST_IDS (set by the
 * driver for runs on the kernel), so that the driver removes them even if
 * the program dies half-way. */
static inline int get(key_t key, int flg)
{
    int saved, id = msgget(key, flg);
    saved = errno;
    const char *path = getenv("SHMQ_CTEST_IDS");
    if (id >= 0 && path != NULL) {
        int fd = open(path, O_WRONLY | O_APPEND);
        if (fd >= 0) {
            char line[32];
            int n = snprintf(line, sizeof line, "%d\n", id);
            if (write(fd, line, (size_t)n) != n)
                perror("record id");
            close(fd);
        }
    }
    errno = saved;
    return id;
}

/* The key base the driver hands in (argv[1]), distinct per run. */
static inline key_t key_base(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s KEYBASE\n", argv[0]);
        exit(2);
    }
    return (key_t)strtol(argv[1], NULL, 0);
}

/* A message buffer big enough for any text of these tests. */
struct msg {
    long mtype;
    char mtext[65536];
};

/* The limits, from IPC_INFO (the driver gives shmq the kernel's). */
static inline struct msginfo limits(void)
{
    struct msginfo info;
    memset(&info, 0, sizeof info);
    MUST(msgctl(0, IPC_INFO, (struct msqid_ds *)(void *)&info) >= 0);
    return info;
}

/* The table index of queue `id`, found by MSG_STAT_ANY, or -1. */
static inline int index_of(int id)
{
    struct msqid_ds ds;
    struct msginfo info;
    int max = msgctl(0, IPC_INFO, (struct msqid_ds *)(void *)&info);
    for (int i = 0; i <= max; i++)
        if (msgctl(i, MSG_STAT_ANY, &ds) == id)
            return i;
    return -1;
}

/* Waits until process `pid` sleeps (state S in /proc/PID/stat), then a
 * little more, so that a blocking call it makes has surely begun. */
static inline int wait_asleep(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    for (int i = 0; i < 1000; i++) {
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = '\0';
            char *p = strrchr(buf, ')');
            if (p != NULL && p[1] == ' ' && p[2] == 'S') {
                usleep(100000);
                return 1;
            }
        }
        usleep(10000);
    }
    return 0;
}

#endif
