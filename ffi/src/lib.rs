//! C ABI for shmq: `libshmq.so` and `libshmq.a`, with the header
//! `include/shmq.h` that `build.rs` generates from this file with cbindgen
//! (the doc comments below are the header's).
//!
//! Each `shmq_*` function has the prototype of its `<sys/msg.h>` /
//! `<sys/ipc.h>` namesake, takes glibc's own `struct msqid_ds`, `key_t`,
//! flags and constants, and returns -1 with `errno` set exactly as the
//! kernel's would for the same call. The work is done by the crate
//! `shmq-ffi-common`, which `libshmq_preload.so` exports under the System V
//! names.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use libc::{
    c_char, c_int, c_long, c_uint, c_void, key_t, mode_t, mq_attr, mqd_t, msqid_ds, sigevent,
    size_t, ssize_t, timespec,
};
use shmq_ffi_common as common;

/// Returns the identifier of the queue of `key`, creating it if asked: the
/// shmq counterpart of `msgget(2)`.
///
/// Arguments: `key` is a key from `shmq_ftok`, any integer, or `IPC_PRIVATE`
/// (always a new queue that no key finds); `msgflg` is `IPC_CREAT`,
/// `IPC_EXCL` and the low 9 bits of a mode (of the new queue, and the access
/// asked of an existing one).
///
/// Returns the queue's identifier (`>= 0`), or -1 with `errno`:
/// `ENOENT` no queue for `key` and no `IPC_CREAT`; `EEXIST` `IPC_CREAT |
/// IPC_EXCL` and `key` has a queue; `EACCES` the queue's mode refuses the
/// access asked, or the namespace directory is not accessible; `ENOSPC`
/// `msgmni` queues exist; `ENOMEM` the queue's shared memory could not be
/// created, or the namespace ($SHMQ_DIR, default /dev/shm/shmq) is unusable
/// (one line on stderr says why); `EIO` a bug in shmq (a caught panic).
///
/// # Safety
/// None needed; any arguments are accepted.
#[no_mangle]
pub extern "C" fn shmq_msgget(key: key_t, msgflg: c_int) -> c_int {
    common::msgget(key, msgflg)
}

/// Sends a message: the shmq counterpart of `msgsnd(2)`.
///
/// Arguments: `msqid` from `shmq_msgget`; `msgp` points to
/// `struct { long mtype; char mtext[msgsz]; }` with `mtype >= 1`; `msgsz` is
/// the text's length (0 allowed, at most `msgmax`); `msgflg` may hold
/// `IPC_NOWAIT`. Without it a full queue makes the caller wait (a brief spin,
/// then asleep on a futex) until the message fits.
///
/// Returns 0, or -1 with `errno`: `EFAULT` `msgp` is NULL; `EINVAL` `msqid`
/// names no queue (or a removed one), `mtype < 1`, `msgsz > msgmax` or
/// negative as `ssize_t`; `EACCES` no write permission; `EAGAIN` the queue is
/// full and `IPC_NOWAIT` was given; `EIDRM` the queue was removed while the
/// caller waited; `EINTR` a signal handler ran while it waited (never
/// restarted, even with `SA_RESTART`); `ENOMEM` the queue's shared memory is
/// exhausted or inconsistent, or all its attachment slots are held by live
/// threads; `EIO` a bug in shmq (a caught panic).
///
/// # Safety
/// `msgp` must be NULL or point to a `long` followed by `msgsz`
/// readable bytes. Other invalid pointers are not detected.
#[no_mangle]
pub unsafe extern "C" fn shmq_msgsnd(
    msqid: c_int,
    msgp: *const c_void,
    msgsz: size_t,
    msgflg: c_int,
) -> c_int {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::msgsnd(msqid, msgp, msgsz, msgflg, std::ptr::null()) }
}

/// `shmq_msgsnd` that waits at most `*timeout` (relative) for room in the
/// queue; System V has no such call.
///
/// Arguments: as `shmq_msgsnd`, plus `timeout`: NULL waits without limit;
/// ignored with `IPC_NOWAIT`.
///
/// Returns 0, or -1 with `errno`: as `shmq_msgsnd`, and `ETIMEDOUT` the
/// timeout passed before the message fitted; `EINVAL` `tv_sec < 0` or
/// `tv_nsec` outside `[0, 1e9)` (checked before anything else).
///
/// # Safety
/// As `shmq_msgsnd`; `timeout` must be NULL or point to a
/// `struct timespec`.
#[no_mangle]
pub unsafe extern "C" fn shmq_msgsnd_timed(
    msqid: c_int,
    msgp: *const c_void,
    msgsz: size_t,
    msgflg: c_int,
    timeout: *const timespec,
) -> c_int {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::msgsnd(msqid, msgp, msgsz, msgflg, timeout) }
}

/// Receives a message: the shmq counterpart of `msgrcv(2)`.
///
/// Arguments: `msqid` from `shmq_msgget`; `msgp` points to
/// `struct { long mtype; char mtext[msgsz]; }`; `msgtyp` 0 takes the oldest
/// message, `> 0` the oldest of that type (of any other type with
/// `MSG_EXCEPT`), `< 0` the oldest of the lowest type `<= -msgtyp`;
/// `msgflg` may hold `IPC_NOWAIT`, `MSG_NOERROR` (truncate a long message),
/// `MSG_EXCEPT`, `MSG_COPY` (copy the message at position `msgtyp`, leave it
/// queued; needs `IPC_NOWAIT`). Without `IPC_NOWAIT` the caller waits (a
/// brief spin, then asleep on a futex) for a matching message.
///
/// Returns the number of text bytes copied into `mtext` (`mtype` is stored
/// too), or -1 with `errno`: `EINVAL` `msqid` names no queue (or a removed
/// one), `msgsz` negative as `ssize_t`, `MSG_COPY` without `IPC_NOWAIT` or
/// with `MSG_EXCEPT`, or `MSG_COPY | MSG_NOERROR` with a short buffer;
/// `EACCES` no read permission; `E2BIG` the message is longer than `msgsz`
/// and no `MSG_NOERROR` (it stays queued); `ENOMSG` nothing matches and
/// `IPC_NOWAIT` was given; `EIDRM` the queue was removed while the caller
/// waited; `EINTR` a signal handler ran while it waited (never restarted);
/// `EFAULT` `msgp` is NULL: as in the kernel, the message was found and
/// dequeued first, and is lost (with `MSG_COPY` and `msgsz > 0`, `EFAULT`
/// before anything else); `ENOMEM` the queue's memory is inconsistent or all
/// its attachment slots are held by live threads; `EIO` a bug in shmq (a
/// caught panic).
///
/// # Safety
/// `msgp` must be NULL or point to a `long` followed by `msgsz`
/// writable bytes. Other invalid pointers are not detected.
#[no_mangle]
pub unsafe extern "C" fn shmq_msgrcv(
    msqid: c_int,
    msgp: *mut c_void,
    msgsz: size_t,
    msgtyp: c_long,
    msgflg: c_int,
) -> ssize_t {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::msgrcv(msqid, msgp, msgsz, msgtyp, msgflg, std::ptr::null()) }
}

/// `shmq_msgrcv` that waits at most `*timeout` (relative) for a matching
/// message; System V has no such call.
///
/// Arguments: as `shmq_msgrcv`, plus `timeout`: NULL waits without limit;
/// ignored with `IPC_NOWAIT`.
///
/// Returns as `shmq_msgrcv`; also -1 with `errno` `ETIMEDOUT` when the
/// timeout passed with no matching message, and `EINVAL` for `tv_sec < 0` or
/// `tv_nsec` outside `[0, 1e9)` (checked before anything else).
///
/// # Safety
/// As `shmq_msgrcv`; `timeout` must be NULL or point to a
/// `struct timespec`.
#[no_mangle]
pub unsafe extern "C" fn shmq_msgrcv_timed(
    msqid: c_int,
    msgp: *mut c_void,
    msgsz: size_t,
    msgtyp: c_long,
    msgflg: c_int,
    timeout: *const timespec,
) -> ssize_t {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::msgrcv(msqid, msgp, msgsz, msgtyp, msgflg, timeout) }
}

/// Controls a queue: the shmq counterpart of `msgctl(2)`.
///
/// Arguments: `cmd` is `IPC_STAT` (fill `*buf`), `IPC_SET` (set owner,
/// group, mode bits and `msg_qbytes` from `*buf`; owner, creator or root
/// only; raising `msg_qbytes` above `msgmnb` needs root), `IPC_RMID` (remove
/// the queue now: blocked callers return `EIDRM`; `buf` unused), `IPC_INFO` /
/// `MSG_INFO` (fill the `struct msginfo` that `buf` points to), `MSG_STAT` /
/// `MSG_STAT_ANY` (`msqid` is an index in the namespace's table, as in
/// Linux).
///
/// Returns 0; for `MSG_STAT` / `MSG_STAT_ANY` the queue's identifier; for
/// `IPC_INFO` / `MSG_INFO` the highest index in use (0 if none). Or -1 with
/// `errno`: `EINVAL` `msqid` or `cmd` negative, unknown `cmd`, `msqid` names
/// no queue, `MSG_STAT` index unused, `IPC_SET` with owner or group -1 or
/// `msg_qbytes` above the namespace's `qbytes_max`; `EFAULT` `buf` is NULL
/// (for `IPC_SET` before anything else, for the others after the checks
/// below); `EACCES` `IPC_STAT` / `MSG_STAT` without read permission; `EPERM`
/// `IPC_SET` / `IPC_RMID` by someone other than the owner, the creator or
/// root, or raising `msg_qbytes` above `msgmnb` without root; `EIO` a bug in
/// shmq (a caught panic).
///
/// # Safety
/// `buf` must be NULL or point to a `struct msqid_ds` (to a
/// `struct msginfo` for `IPC_INFO` / `MSG_INFO`), readable for `IPC_SET`,
/// writable for the others.
#[no_mangle]
pub unsafe extern "C" fn shmq_msgctl(msqid: c_int, cmd: c_int, buf: *mut msqid_ds) -> c_int {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::msgctl(msqid, cmd, buf) }
}

/// Makes a key from a path and a project number, with glibc's algorithm:
/// `(proj_id & 0xff) << 24 | (st_dev & 0xff) << 16 | (st_ino & 0xffff)`.
///
/// Returns the key, or -1 with `stat(2)`'s `errno` when `pathname` cannot be
/// stat'ed (`ENOENT`, `EACCES`, `ENOTDIR`, ...; `EFAULT` for NULL); `EIO` a
/// bug in shmq (a caught panic).
///
/// # Safety
/// `pathname` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn shmq_ftok(pathname: *const c_char, proj_id: c_int) -> key_t {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::ftok(pathname, proj_id) }
}

/// Re-reads the caller's effective user and group ids and supplementary
/// groups, which shmq caches so that sends and receives make no system call.
/// Call it after `setuid`, `seteuid`, `setgid`, `setgroups`, ... so that
/// permission checks use the new ids.
/// (`libshmq_preload.so` does it by itself: it wraps those functions.)
///
/// # Safety
/// None needed.
#[no_mangle]
pub extern "C" fn shmq_refresh_credentials() {
    common::refresh_credentials()
}

// ----- POSIX message queues -----

/// Opens (or creates) the POSIX queue `name`: the shmq counterpart of
/// `mq_open(3)`, with `mode` and `attr` always passed (they are read only
/// with `O_CREAT`; `mq_open`'s are variadic).
///
/// Arguments: `name` is `/` followed by up to 255 bytes, none a `/`;
/// `oflag` is `O_RDONLY`, `O_WRONLY` or `O_RDWR`, with `O_CREAT`, `O_EXCL`,
/// `O_NONBLOCK`; `mode` the new queue's permission bits (less the umask);
/// `attr` NULL (the defaults, `/proc/sys/fs/mqueue/msg_default` and
/// `msgsize_default`) or the new queue's `mq_maxmsg` and `mq_msgsize`.
///
/// Returns a descriptor (a close-on-exec file descriptor, which no other
/// open file of the process shares, so it is never confused with a kernel
/// `mqd_t`), or `(mqd_t)-1` with `errno`: `EINVAL` no leading `/`, `O_ACCMODE`
/// 3 on an existing queue, or attributes out of range on creation (`<= 0`,
/// above `msg_max` / `msgsize_max` without `CAP_SYS_RESOURCE`); `ENOENT` no
/// such queue without `O_CREAT`, or the name `/`; `EEXIST` `O_CREAT |
/// O_EXCL` and the queue exists; `EACCES` the mode refuses the access asked,
/// or the name holds another `/` or is `/.` / `/..`; `ENAMETOOLONG` the name
/// is too long; `ENOSPC` `queues_max` queues exist (without
/// `CAP_SYS_RESOURCE`); `ENOMEM` the queue's memory could not be made (or
/// `mq_maxmsg * mq_msgsize` exceeds 2^25 - 1 bytes); `EFAULT` `name` is NULL;
/// `EIO` a bug in shmq (a caught panic).
///
/// # Safety
/// `name` must be NULL or a NUL-terminated string; with `O_CREAT`, `attr`
/// must be NULL or point to a `struct mq_attr`.
#[no_mangle]
pub unsafe extern "C" fn shmq_mq_open(
    name: *const c_char,
    oflag: c_int,
    mode: mode_t,
    attr: *const mq_attr,
) -> mqd_t {
    // SAFETY: the caller keeps this function's contract, which is common's;
    // glibc's struct mq_attr and common's MqAttr have one layout.
    unsafe { common::mq::mq_open(name, oflag, mode, attr.cast()) }
}

/// Closes a queue descriptor: the counterpart of `mq_close(3)`. A number
/// that is not a shmq queue descriptor is closed as `close(2)` would
/// (glibc's `mq_close` is `close`).
///
/// Returns 0, or -1 with `errno` `EBADF` (not an open descriptor).
///
/// # Safety
/// None needed.
#[no_mangle]
pub extern "C" fn shmq_mq_close(mqdes: mqd_t) -> c_int {
    common::mq::mq_close(mqdes)
}

/// Removes the name of a POSIX queue: the counterpart of `mq_unlink(3)`.
/// Descriptors open on the queue keep it until the last is closed.
///
/// Returns 0, or -1 with `errno`: `EINVAL` no leading `/`; `ENOENT` no such
/// queue (or the name `/`); `EACCES` another user's queue (the caller is not
/// its owner or root), or the name holds another `/`; `ENAMETOOLONG`;
/// `EFAULT` `name` is NULL.
///
/// # Safety
/// `name` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn shmq_mq_unlink(name: *const c_char) -> c_int {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::mq::mq_unlink(name) }
}

/// Sends a message of priority `msg_prio`: the counterpart of
/// `mq_send(3)`. Waits while the queue is full, unless the descriptor is
/// `O_NONBLOCK`.
///
/// Returns 0, or -1 with `errno`, checked in this order: `EINVAL`
/// `msg_prio >= MQ_PRIO_MAX` (32768); `EBADF` not a queue descriptor, or not
/// open for writing; `EMSGSIZE` `msg_len > mq_msgsize`; `EFAULT` `msg_ptr`
/// NULL with `msg_len > 0`; `EAGAIN` full and `O_NONBLOCK`; `EINTR` a signal
/// handler installed without `SA_RESTART` ran while it waited (with
/// `SA_RESTART` the call goes on waiting, as the kernel restarts it);
/// `ENOMEM` every
/// attachment slot of the queue is held by live threads, or it is damaged;
/// `EIO` a bug in shmq.
///
/// # Safety
/// `msg_ptr` must be NULL or point to `msg_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn shmq_mq_send(
    mqdes: mqd_t,
    msg_ptr: *const c_char,
    msg_len: size_t,
    msg_prio: c_uint,
) -> c_int {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::mq::mq_timedsend(mqdes, msg_ptr, msg_len, msg_prio, std::ptr::null()) }
}

/// `shmq_mq_send` that gives up at `*abs_timeout` (`CLOCK_REALTIME`): the
/// counterpart of `mq_timedsend(3)`.
///
/// Returns as `shmq_mq_send`, and `ETIMEDOUT` the time passed with the queue
/// still full; `EINVAL` (before anything else) `abs_timeout` has a negative
/// `tv_sec` or `tv_nsec` outside `[0, 1e9)`. `O_NONBLOCK` wins over the
/// timeout (`EAGAIN`).
///
/// # Safety
/// `msg_ptr` as for `shmq_mq_send`; `abs_timeout` must be NULL (no limit)
/// or point to a `struct timespec`.
#[no_mangle]
pub unsafe extern "C" fn shmq_mq_timedsend(
    mqdes: mqd_t,
    msg_ptr: *const c_char,
    msg_len: size_t,
    msg_prio: c_uint,
    abs_timeout: *const timespec,
) -> c_int {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::mq::mq_timedsend(mqdes, msg_ptr, msg_len, msg_prio, abs_timeout) }
}

/// Receives the oldest message of the highest priority: the counterpart of
/// `mq_receive(3)`. Waits while the queue is empty, unless the descriptor
/// is `O_NONBLOCK`.
///
/// Returns the message's length (its priority in `*msg_prio` unless NULL),
/// or -1 with `errno`, checked in this order: `EBADF` not a queue
/// descriptor, or not open for reading; `EMSGSIZE` `msg_len < mq_msgsize`
/// (even when the queue is empty); `EAGAIN` empty and `O_NONBLOCK`; `EINTR`
/// a signal handler installed without `SA_RESTART` ran while it waited
/// (with it, the call goes on waiting); `EFAULT`
/// `msg_ptr` NULL (the message is taken, as by the kernel); `ENOMEM`, `EIO`
/// as `shmq_mq_send`.
///
/// # Safety
/// `msg_ptr` must be NULL or point to `msg_len` writable bytes; `msg_prio`
/// NULL or a writable `unsigned int`.
#[no_mangle]
pub unsafe extern "C" fn shmq_mq_receive(
    mqdes: mqd_t,
    msg_ptr: *mut c_char,
    msg_len: size_t,
    msg_prio: *mut c_uint,
) -> ssize_t {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::mq::mq_timedreceive(mqdes, msg_ptr, msg_len, msg_prio, std::ptr::null()) }
}

/// `shmq_mq_receive` that gives up at `*abs_timeout` (`CLOCK_REALTIME`):
/// the counterpart of `mq_timedreceive(3)`.
///
/// Returns as `shmq_mq_receive`, and `ETIMEDOUT`; `EINVAL` (before anything
/// else, even with a message ready) for an invalid `abs_timeout`.
///
/// # Safety
/// As `shmq_mq_receive`; `abs_timeout` must be NULL or point to a
/// `struct timespec`.
#[no_mangle]
pub unsafe extern "C" fn shmq_mq_timedreceive(
    mqdes: mqd_t,
    msg_ptr: *mut c_char,
    msg_len: size_t,
    msg_prio: *mut c_uint,
    abs_timeout: *const timespec,
) -> ssize_t {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::mq::mq_timedreceive(mqdes, msg_ptr, msg_len, msg_prio, abs_timeout) }
}

/// Reads a queue's attributes: the counterpart of `mq_getattr(3)`
/// (`mq_flags` is the descriptor's `O_NONBLOCK`).
///
/// Returns 0, or -1 with `errno` `EBADF` (not a queue descriptor).
///
/// # Safety
/// `mqstat` must be NULL (nothing is stored) or point to a writable
/// `struct mq_attr`.
#[no_mangle]
pub unsafe extern "C" fn shmq_mq_getattr(mqdes: mqd_t, mqstat: *mut mq_attr) -> c_int {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::mq::mq_setattr(mqdes, std::ptr::null(), mqstat.cast()) }
}

/// Sets a descriptor's `O_NONBLOCK` (the only attribute that changes;
/// shared by every process holding the descriptor, a forked child's
/// included): the counterpart of `mq_setattr(3)`. The old attributes go to
/// `*omqstat` unless NULL.
///
/// Returns 0, or -1 with `errno`: `EINVAL` (checked first) `mq_flags` has a
/// bit other than `O_NONBLOCK`; `EBADF` not a queue descriptor.
///
/// # Safety
/// `mqstat` must be NULL or point to a `struct mq_attr`; `omqstat` NULL or
/// a writable one.
#[no_mangle]
pub unsafe extern "C" fn shmq_mq_setattr(
    mqdes: mqd_t,
    mqstat: *const mq_attr,
    omqstat: *mut mq_attr,
) -> c_int {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::mq::mq_setattr(mqdes, mqstat.cast(), omqstat.cast()) }
}

/// Registers the calling process for notification when a message arrives
/// in the empty queue, or removes its registration: the counterpart of
/// `mq_notify(3)`.
///
/// Arguments: `mqdes` any descriptor of the queue (its access does not
/// matter); `sevp` NULL removes the caller's registration (nothing happens
/// if it has none), otherwise `sigev_notify` is `SIGEV_SIGNAL` (the signal
/// `sigev_signo` is queued to the process with `si_code == SI_MESGQ`,
/// `si_value == sigev_value` and the sender's pid and uid; signal 0
/// registers and sends nothing), `SIGEV_THREAD` (`sigev_notify_function` is
/// called with `sigev_value` on a thread of this process;
/// `sigev_notify_attributes` is not used) or `SIGEV_NONE`. A registration
/// is used up when it fires: when a send makes the empty queue non-empty
/// and no receiver is waiting in `shmq_mq_receive` (a message taken by a
/// waiting receiver neither notifies nor uses it up). The owner's
/// `shmq_mq_close` of any descriptor of the queue, or its death, removes it.
///
/// Returns 0, or -1 with `errno`, in this order: `EINVAL` an unknown
/// `sigev_notify`, a `SIGEV_SIGNAL` number above 64, or a `SIGEV_THREAD`
/// without a function; `EBADF` not a queue descriptor; `EBUSY` another
/// process is registered; `ENOMEM` the helper thread could not start;
/// `EIO` a bug in shmq.
///
/// # Safety
/// `sevp` must be NULL or point to a `struct sigevent`; a `SIGEV_THREAD`
/// function must be safe to call once from another thread with its value.
#[no_mangle]
pub unsafe extern "C" fn shmq_mq_notify(mqdes: mqd_t, sevp: *const sigevent) -> c_int {
    // SAFETY: the caller keeps this function's contract, which is common's;
    // glibc's struct sigevent and common's SigEvent have one layout.
    unsafe { common::mq::mq_notify(mqdes, sevp.cast()) }
}
