/* Helpers of the POSIX queue test programs (driven by ffi/tests/c_suite.rs),
 * on top of harness.h's reporting.
 *
 * A program is written against <mqueue.h> and built plainly (it then runs on
 * the kernel's POSIX queues, or on shmq under LD_PRELOAD) and with
 * -DSHMQ_LINK, where mq_open, ... become shmq_mq_open, ... from libshmq.
 * Queue names are "/<base>-<tag>", base from argv[1], distinct per run; the
 * driver unlinks the kernel's queues of tags a..z afterwards. */
#ifndef SHMQ_MQ_HARNESS_H
#define SHMQ_MQ_HARNESS_H

#include "harness.h"

#include <mqueue.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#ifdef SHMQ_LINK
/* shmq_mq_open always takes mode and attr; mq_open is variadic. */
static inline mqd_t shmq_test_mq_open(const char *name, int oflag, ...)
{
    mode_t mode = 0;
    struct mq_attr *attr = NULL;
    if (oflag & O_CREAT) {
        va_list ap;
        va_start(ap, oflag);
        mode = (mode_t)va_arg(ap, unsigned int);
        attr = va_arg(ap, struct mq_attr *);
        va_end(ap);
    }
    return shmq_mq_open(name, oflag, mode, attr);
}
#define mq_open shmq_test_mq_open
#define mq_close shmq_mq_close
#define mq_unlink shmq_mq_unlink
#define mq_send shmq_mq_send
#define mq_timedsend shmq_mq_timedsend
#define mq_receive shmq_mq_receive
#define mq_timedreceive shmq_mq_timedreceive
#define mq_getattr shmq_mq_getattr
#define mq_setattr shmq_mq_setattr
#endif

static char name_base[64];

/* "/<base>-<tag>". */
static inline const char *qname(const char *tag)
{
    static char names[8][128];
    static int next;
    char *n = names[next++ % 8];
    snprintf(n, 128, "/%s-%s", name_base, tag);
    return n;
}

static inline void mq_setup(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s BASE\n", argv[0]);
        exit(2);
    }
    snprintf(name_base, sizeof name_base, "shmqt%s", argv[1]);
    setvbuf(stdout, NULL, _IONBF, 0);
}

/* An absolute CLOCK_REALTIME time `ms` milliseconds from now (negative:
 * in the past). */
static inline struct timespec in_ms(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    long long ns = (long long)t.tv_sec * 1000000000LL + t.tv_nsec + ms * 1000000LL;
    t.tv_sec = (time_t)(ns / 1000000000LL);
    t.tv_nsec = (long)(ns % 1000000000LL);
    return t;
}

static inline void show_attr(const char *what, mqd_t q)
{
    struct mq_attr a;
    memset(&a, 0, sizeof a);
    errno = 0;
    if (mq_getattr(q, &a) < 0) {
        printf("%s: -1 %s\n", what, ename(errno));
        return;
    }
    printf("%s: flags %s maxmsg %ld msgsize %ld curmsgs %ld\n", what,
           (a.mq_flags & O_NONBLOCK) ? "O_NONBLOCK" : "0", a.mq_maxmsg,
           a.mq_msgsize, a.mq_curmsgs);
}

#endif
