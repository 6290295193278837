/* layout: prints the size and field offsets of glibc's struct msqid_ds,
 * struct ipc_perm and struct msginfo (the driver compares them with the
 * `libc` crate's, which shmq fills), and checks at compile time, with
 * -Werror, that every shmq_* function has exactly the type of its System V
 * namesake. Built with -DSHMQ_LINK. */
#include <stddef.h>
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/msg.h>

#include <shmq.h>

#define OFF(type, field) printf(#type "." #field " %zu\n", offsetof(struct type, field))

int main(void)
{
    /* An incompatible pointer type is an error under -Werror. */
    __typeof__(msgget) *get = shmq_msgget;
    __typeof__(msgsnd) *snd = shmq_msgsnd;
    __typeof__(msgrcv) *rcv = shmq_msgrcv;
    __typeof__(msgctl) *ctl = shmq_msgctl;
    __typeof__(ftok) *key = shmq_ftok;
    int (*snd_timed)(int, const void *, size_t, int, const struct timespec *) = shmq_msgsnd_timed;
    ssize_t (*rcv_timed)(int, void *, size_t, long, int, const struct timespec *) =
        shmq_msgrcv_timed;
    void (*refresh)(void) = shmq_refresh_credentials;
    printf("prototypes %d\n", get && snd && rcv && ctl && key && snd_timed && rcv_timed && refresh);

    printf("msqid_ds.size %zu\n", sizeof(struct msqid_ds));
    OFF(msqid_ds, msg_perm);
    OFF(msqid_ds, msg_stime);
    OFF(msqid_ds, msg_rtime);
    OFF(msqid_ds, msg_ctime);
    OFF(msqid_ds, __msg_cbytes);
    OFF(msqid_ds, msg_qnum);
    OFF(msqid_ds, msg_qbytes);
    OFF(msqid_ds, msg_lspid);
    OFF(msqid_ds, msg_lrpid);
    printf("ipc_perm.size %zu\n", sizeof(struct ipc_perm));
    OFF(ipc_perm, __key);
    OFF(ipc_perm, uid);
    OFF(ipc_perm, gid);
    OFF(ipc_perm, cuid);
    OFF(ipc_perm, cgid);
    OFF(ipc_perm, mode);
    OFF(ipc_perm, __seq);
    printf("msginfo.size %zu\n", sizeof(struct msginfo));
    OFF(msginfo, msgpool);
    OFF(msginfo, msgmap);
    OFF(msginfo, msgmax);
    OFF(msginfo, msgmnb);
    OFF(msginfo, msgmni);
    OFF(msginfo, msgssz);
    OFF(msginfo, msgtql);
    OFF(msginfo, msgseg);
    return 0;
}
