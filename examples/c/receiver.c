/* receiver KEY TYPE: receives one message of type TYPE (0: the oldest) from
 * the existing queue of the integer KEY, waiting for it, and prints its text.
 *
 * Plain System V C: it knows nothing of shmq. Run it on the kernel as it is,
 * or on shmq with LD_PRELOAD=/abs/path/libshmq_preload.so. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/types.h>

struct message {
    long mtype;
    char mtext[8192];
};

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s KEY TYPE\n", argv[0]);
        return 2;
    }
    key_t key = (key_t)strtol(argv[1], NULL, 0);
    long type = strtol(argv[2], NULL, 0);

    int id = msgget(key, 0);
    if (id < 0) {
        perror("receiver: msgget");
        return 1;
    }
    struct message m;
    ssize_t n = msgrcv(id, &m, sizeof m.mtext - 1, type, 0);
    if (n < 0) {
        perror("receiver: msgrcv");
        return 1;
    }
    m.mtext[n] = '\0';
    printf("%s\n", m.mtext);
    return 0;
}
