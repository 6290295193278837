/* ids [KEY]: creates and removes a keyed queue ten times, printing each id.
 *
 * On shmq an id is seq * msgmni + slot, and seq is bumped when a slot is
 * freed, so with SHMQ_MSGMNI=50 (in a new namespace) and the preload library
 * it prints 0, 50, 100, ..., 450; the kernel's ids follow its own rule
 * (seq * 32768 + slot). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/msg.h>

int main(int argc, char **argv)
{
    key_t key = argc > 1 ? (key_t)strtol(argv[1], NULL, 0) : 0x1d5;
    for (int i = 0; i < 10; i++) {
        int id = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
        if (id < 0) {
            perror("ids: msgget");
            return 1;
        }
        printf("%d\n", id);
        if (msgctl(id, IPC_RMID, NULL) < 0) {
            perror("ids: msgctl(IPC_RMID)");
            return 1;
        }
    }
    return 0;
}
