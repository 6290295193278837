/* sender KEY TYPE TEXT: sends TEXT (with its NUL) as a message of type TYPE
 * to the queue of the integer KEY, creating the queue if needed.
 *
 * Plain System V C: it knows nothing of shmq. Run it on the kernel as it is,
 * or on shmq with LD_PRELOAD=/abs/path/libshmq_preload.so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>

struct message {
    long mtype;
    char mtext[8192];
};

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s KEY TYPE TEXT\n", argv[0]);
        return 2;
    }
    key_t key = (key_t)strtol(argv[1], NULL, 0);
    struct message m;
    m.mtype = strtol(argv[2], NULL, 0);
    size_t len = strlen(argv[3]) + 1;
    if (len > sizeof m.mtext) {
        fprintf(stderr, "sender: text longer than %zu bytes\n", sizeof m.mtext);
        return 2;
    }
    memcpy(m.mtext, argv[3], len);

    int id = msgget(key, IPC_CREAT | 0660);
    if (id < 0) {
        perror("sender: msgget");
        return 1;
    }
    if (msgsnd(id, &m, len, 0) < 0) {
        perror("sender: msgsnd");
        return 1;
    }
    return 0;
}
