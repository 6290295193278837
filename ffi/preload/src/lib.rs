//! `libshmq_preload.so`: System V message queues on shmq for unmodified
//! programs.
//!
//! ```sh
//! LD_PRELOAD=/abs/path/target/release/libshmq_preload.so ./app
//! ```
//!
//! Exports `msgget`, `msgsnd`, `msgrcv`, `msgctl` and `ftok` themselves, so
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
