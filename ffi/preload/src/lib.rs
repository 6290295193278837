//! `libshmq_preload.so`: System V message queues on shmq for unmodified
//! programs.
//!
//! ```sh
//! LD_PRELOAD=/abs/path/target/release/libshmq_preload.so ./app
//! ```
//!
//! Exports `msgget`, `msgsnd`, `msgrcv`, `msgctl` and `ftok`, and the POSIX
//! queue functions `mq_open` (and glibc's fortified `__mq_open_2`),
//! `mq_close`, `mq_unlink`, `mq_send`, `mq_timedsend`, `mq_receive`,
//! `mq_timedreceive`, `mq_getattr`, `mq_setattr` and `mq_notify` themselves, so
//! that the dynamic linker binds a program's calls here instead of to glibc
//! (and so to shmq instead of the kernel). They are `shmq-ffi-common`'s entry
//! points, the same code as `libshmq.so`'s `shmq_*` functions: the kernel's
//! errno for every failure, and no panic crosses into C (`EIO`).
//!
//! It also wraps `setuid`, `setgid`, `seteuid`, `setegid`, `setreuid`,
//! `setregid`, `setresuid`, `setresgid` and `setgroups`: each calls the C library's
//! function, then has shmq re-read the credentials it caches (so that a
//! program that drops privileges is checked as its new self, as the kernel
//! would), leaving `errno` as the C library set it.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use libc::{c_char, c_int, c_long, c_void, key_t, msqid_ds, size_t, ssize_t};
use shmq_ffi_common as common;

/// `msgget(2)` on shmq.
#[no_mangle]
pub extern "C" fn msgget(key: key_t, msgflg: c_int) -> c_int {
    common::msgget(key, msgflg)
}

/// `msgsnd(2)` on shmq.
///
/// # Safety
/// `msgp` is NULL or points to a `long` followed by `msgsz` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn msgsnd(
    msqid: c_int,
    msgp: *const c_void,
    msgsz: size_t,
    msgflg: c_int,
) -> c_int {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::msgsnd(msqid, msgp, msgsz, msgflg, std::ptr::null()) }
}

/// `msgrcv(2)` on shmq.
///
/// # Safety
/// `msgp` is NULL or points to a `long` followed by `msgsz` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn msgrcv(
    msqid: c_int,
    msgp: *mut c_void,
    msgsz: size_t,
    msgtyp: c_long,
    msgflg: c_int,
) -> ssize_t {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::msgrcv(msqid, msgp, msgsz, msgtyp, msgflg, std::ptr::null()) }
}

/// `msgctl(2)` on shmq.
///
/// # Safety
/// `buf` is NULL or points to a `struct msqid_ds` (a `struct msginfo` for
/// `IPC_INFO` / `MSG_INFO`).
#[no_mangle]
pub unsafe extern "C" fn msgctl(msqid: c_int, cmd: c_int, buf: *mut msqid_ds) -> c_int {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::msgctl(msqid, cmd, buf) }
}

/// `ftok(3)`, glibc's algorithm.
///
/// # Safety
/// `pathname` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ftok(pathname: *const c_char, proj_id: c_int) -> key_t {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::ftok(pathname, proj_id) }
}

// ----- POSIX message queues -----

/// `mq_open(3)` on shmq. C declares it variadic (`mode` and `attr` follow
/// only with `O_CREAT`); on the Linux ABIs this library is built for
/// (x86-64, AArch64), the first variadic arguments of a call travel in the
/// same registers as named ones would, so this definition reads them where
/// the caller put them, and reads them only with `O_CREAT`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; with `O_CREAT`, `attr` is NULL
/// or points to a `struct mq_attr`.
#[no_mangle]
pub unsafe extern "C" fn mq_open(
    name: *const c_char,
    oflag: c_int,
    mode: libc::mode_t,
    attr: *const libc::mq_attr,
) -> libc::mqd_t {
    // SAFETY: the caller keeps this function's contract, which is common's;
    // glibc's struct mq_attr and common's MqAttr have one layout.
    unsafe { common::mq::mq_open(name, oflag, mode, attr.cast()) }
}

/// glibc's `_FORTIFY_SOURCE` form of a two-argument `mq_open`: as glibc's,
/// `O_CREAT` without a mode is a fatal error; otherwise `mq_open`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn __mq_open_2(name: *const c_char, oflag: c_int) -> libc::mqd_t {
    if oflag & libc::O_CREAT != 0 {
        eprintln!("invalid mq_open call: O_CREAT without mode and attr");
        std::process::abort();
    }
    // SAFETY: without O_CREAT, `mode` and `attr` are not read.
    unsafe { common::mq::mq_open(name, oflag, 0, std::ptr::null()) }
}

/// `mq_close(3)` on shmq (any other descriptor: `close`).
#[no_mangle]
pub extern "C" fn mq_close(mqdes: libc::mqd_t) -> c_int {
    common::mq::mq_close(mqdes)
}

/// `mq_unlink(3)` on shmq.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn mq_unlink(name: *const c_char) -> c_int {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::mq::mq_unlink(name) }
}

/// `mq_send(3)` on shmq.
///
/// # Safety
/// `msg_ptr` is NULL or points to `msg_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn mq_send(
    mqdes: libc::mqd_t,
    msg_ptr: *const c_char,
    msg_len: size_t,
    msg_prio: libc::c_uint,
) -> c_int {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::mq::mq_timedsend(mqdes, msg_ptr, msg_len, msg_prio, std::ptr::null()) }
}

/// `mq_timedsend(3)` on shmq.
///
/// # Safety
/// As `mq_send`; `abs_timeout` is NULL or points to a `struct timespec`.
#[no_mangle]
pub unsafe extern "C" fn mq_timedsend(
    mqdes: libc::mqd_t,
    msg_ptr: *const c_char,
    msg_len: size_t,
    msg_prio: libc::c_uint,
    abs_timeout: *const libc::timespec,
) -> c_int {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::mq::mq_timedsend(mqdes, msg_ptr, msg_len, msg_prio, abs_timeout) }
}

/// `mq_receive(3)` on shmq.
///
/// # Safety
/// `msg_ptr` is NULL or points to `msg_len` writable bytes; `msg_prio` is
/// NULL or a writable `unsigned int`.
#[no_mangle]
pub unsafe extern "C" fn mq_receive(
    mqdes: libc::mqd_t,
    msg_ptr: *mut c_char,
    msg_len: size_t,
    msg_prio: *mut libc::c_uint,
) -> ssize_t {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::mq::mq_timedreceive(mqdes, msg_ptr, msg_len, msg_prio, std::ptr::null()) }
}

/// `mq_timedreceive(3)` on shmq.
///
/// # Safety
/// As `mq_receive`; `abs_timeout` is NULL or points to a `struct timespec`.
#[no_mangle]
pub unsafe extern "C" fn mq_timedreceive(
    mqdes: libc::mqd_t,
    msg_ptr: *mut c_char,
    msg_len: size_t,
    msg_prio: *mut libc::c_uint,
    abs_timeout: *const libc::timespec,
) -> ssize_t {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::mq::mq_timedreceive(mqdes, msg_ptr, msg_len, msg_prio, abs_timeout) }
}

/// `mq_getattr(3)` on shmq.
///
/// # Safety
/// `mqstat` is NULL or points to a writable `struct mq_attr`.
#[no_mangle]
pub unsafe extern "C" fn mq_getattr(mqdes: libc::mqd_t, mqstat: *mut libc::mq_attr) -> c_int {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::mq::mq_setattr(mqdes, std::ptr::null(), mqstat.cast()) }
}

/// `mq_setattr(3)` on shmq.
///
/// # Safety
/// `mqstat` is NULL or points to a `struct mq_attr`; `omqstat` is NULL or
/// points to a writable one.
#[no_mangle]
pub unsafe extern "C" fn mq_setattr(
    mqdes: libc::mqd_t,
    mqstat: *const libc::mq_attr,
    omqstat: *mut libc::mq_attr,
) -> c_int {
    // SAFETY: the caller keeps this function's contract, which is common's.
    unsafe { common::mq::mq_setattr(mqdes, mqstat.cast(), omqstat.cast()) }
}

/// `mq_notify(3)` on shmq (`SIGEV_THREAD`'s function runs on a helper
/// thread of shmq's; `sigev_notify_attributes` is not used).
///
/// # Safety
/// `sevp` is NULL or points to a `struct sigevent`.
#[no_mangle]
pub unsafe extern "C" fn mq_notify(mqdes: libc::mqd_t, sevp: *const libc::sigevent) -> c_int {
    // SAFETY: the caller keeps this function's contract, which is common's;
    // glibc's struct sigevent and common's SigEvent have one layout.
    unsafe { common::mq::mq_notify(mqdes, sevp.cast()) }
}

/// The next definition of the C function `name` after this library (the C
/// library's), or NULL.
fn next_symbol(name: &std::ffi::CStr) -> *mut c_void {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name only looks the
    // symbol up.
    unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) }
}

/// Defines wrappers of the credential-changing functions: call the C
/// library's, then refresh shmq's cached credentials.
macro_rules! setid_wrappers {
    ($($name:ident($($arg:ident: $ty:ty),+);)*) => {$(
        #[doc = concat!("`", stringify!($name), "`: the C library's, then shmq re-reads the process's credentials.")]
        #[no_mangle]
        // A pointer argument (setgroups' list) is only passed on to the C
        // library, as a C caller gave it; nothing here reads through it.
        #[allow(clippy::not_unsafe_ptr_arg_deref)]
        pub extern "C" fn $name($($arg: $ty),+) -> c_int {
            let sym = next_symbol(
                std::ffi::CStr::from_bytes_with_nul(concat!(stringify!($name), "\0").as_bytes())
                    .expect("literal with one NUL"),
            );
            if sym.is_null() {
                // SAFETY: writes the calling thread's errno.
                unsafe { *libc::__errno_location() = libc::ENOSYS };
                return -1;
            }
            type Real = unsafe extern "C" fn($($ty),+) -> c_int;
            // SAFETY: the C library's definition of this function, which has
            // this prototype.
            let real = unsafe { std::mem::transmute::<*mut c_void, Real>(sym) };
            // SAFETY: the C library's function, called with its arguments.
            let r = unsafe { real($($arg),+) };
            // SAFETY: reads and restores the calling thread's errno around
            // the refresh, so that the caller sees the C library's.
            unsafe {
                let e = *libc::__errno_location();
                common::refresh_credentials();
                *libc::__errno_location() = e;
            }
            r
        }
    )*};
}

setid_wrappers! {
    setuid(uid: libc::uid_t);
    setgid(gid: libc::gid_t);
    seteuid(euid: libc::uid_t);
    setegid(egid: libc::gid_t);
    setreuid(ruid: libc::uid_t, euid: libc::uid_t);
    setregid(rgid: libc::gid_t, egid: libc::gid_t);
    setresuid(ruid: libc::uid_t, euid: libc::uid_t, suid: libc::uid_t);
    setresgid(rgid: libc::gid_t, egid: libc::gid_t, sgid: libc::gid_t);
    setgroups(size: size_t, list: *const libc::gid_t);
}
