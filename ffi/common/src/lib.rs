//! The C entry points of shmq, written once and exported twice: by
//! `libshmq.so` / `libshmq.a` as `shmq_msgget`, ... (crate `shmq-ffi`) and by
//! `libshmq_preload.so` as `msgget`, ... (crate `shmq-ffi-preload`).
//!
//! Each function checks its arguments in the order Linux's `ipc/msg.c` does,
//! so that a call with several faults fails with the errno the kernel would
//! pick, converts C's types to the engine's, and on failure sets `errno` and
//! returns -1. Nothing here is exported to C by itself.
//!
//! # Panics
//! Every body runs under [`std::panic::catch_unwind`]: a panic (a bug in shmq)
//! never unwinds into C; the call returns -1 with `errno` = [`PANIC_ERRNO`]
//! (`EIO`, which no System V message call returns otherwise), after the
//! standard panic hook has printed the message on stderr.
//!
//! # The namespace
//! The first call opens the namespace named by `$SHMQ_DIR` (default
//! `/dev/shm/shmq`, created if needed) and keeps it for the life of the
//! process (a failure is not kept: the next call tries again). A namespace
//! that cannot be opened makes `msgget` fail with `EACCES` (permission) or
//! `ENOMEM` (anything else) and the other calls with `EINVAL` (no queue can
//! exist), and prints one line saying why on stderr, once per process.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod ctl;
pub mod mq;
mod user;

use libc::{c_char, c_int, c_long, c_void, key_t, msqid_ds, size_t, ssize_t, timespec};
use shmq::{GetOptions, Namespace, OpenError, Queue, RecvOptions, Selector};
use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

/// The errno of a call that panicked inside shmq (a bug): `EIO`.
pub const PANIC_ERRNO: c_int = libc::EIO;

/// `MSG_STAT_ANY` (Linux 4.17), missing from the `libc` crate.
pub const MSG_STAT_ANY: c_int = 13;

/// An errno value, the error of every internal step.
type Errno = c_int;

/// Runs `body`; on `Err(e)` sets `errno = e` and returns `fail`; on a panic
/// sets `errno = PANIC_ERRNO` and returns `fail`. `errno` is left alone on
/// success, as the kernel's wrappers do.
fn guard<T>(fail: T, body: impl FnOnce() -> Result<T, Errno>) -> T {
    let e = match std::panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => return v,
        Ok(Err(e)) => e,
        Err(payload) => {
            // Dropping the payload could itself panic; leak it instead.
            std::mem::forget(payload);
            PANIC_ERRNO
        }
    };
    user::set_errno(e);
    fail
}

static NAMESPACE: OnceLock<Namespace> = OnceLock::new();

/// The process's namespace, opened on first use (see the crate docs).
fn namespace() -> Result<&'static Namespace, OpenError> {
    if let Some(ns) = NAMESPACE.get() {
        return Ok(ns);
    }
    match Namespace::open_default() {
        // Two threads may open it at once: both handles are equivalent, the
        // first one stored wins.
        Ok(ns) => Ok(NAMESPACE.get_or_init(|| ns)),
        Err(e) => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| eprintln!("shmq: cannot open the namespace: {e}"));
            Err(e)
        }
    }
}

/// The namespace, for calls other than `msgget`: without one, no id names a
/// queue (EINVAL).
fn namespace_or_einval() -> Result<&'static Namespace, Errno> {
    namespace().map_err(|_| libc::EINVAL)
}

thread_local! {
    /// The queue this thread used last: a stream of sends or receives on one
    /// id skips the namespace's lookup (a lock and a hash map). Holding it
    /// keeps that queue's mapping until the thread uses another id.
    static LAST_QUEUE: RefCell<Option<Queue>> = const { RefCell::new(None) };
}

/// Runs `op` on the queue `msqid`, found through [`LAST_QUEUE`] when it is
/// the same id. A queue removed since answers `EINVAL` before it does
/// anything (the engine checks), and so does an id that now names a newer
/// queue: on `EINVAL` from the remembered queue, `op` runs once more on the
/// namespace's answer. (`op`'s other `EINVAL`, MSG_COPY with MSG_NOERROR and
/// a short buffer, has no effect either, so running it twice is harmless.)
///
/// The remembered queue is used in place, borrowed for the length of `op`,
/// not cloned: a clone is two reference counts incremented and decremented,
/// four atomic read-modify-writes per call on lines that every thread of the
/// process using the queue writes. A signal handler that calls in during
/// `op` borrows it too (a shared borrow); only the update after a miss needs
/// the cell free, and skips caching when it is not.
fn with_queue<T>(
    ns: &Namespace,
    msqid: c_int,
    mut op: impl FnMut(&Queue) -> Result<T, Errno>,
) -> Result<T, Errno> {
    let remembered = LAST_QUEUE
        .try_with(|c| {
            let last = c.try_borrow().ok()?;
            let q = last.as_ref().filter(|q| q.id() == msqid)?;
            Some(op(q))
        })
        .ok()
        .flatten();
    match remembered {
        Some(Err(libc::EINVAL)) | None => {}
        Some(done) => return done,
    }
    let q = ns.queue(msqid).map_err(|e| e.errno())?;
    let result = op(&q);
    let _ = LAST_QUEUE.try_with(|c| {
        if let Ok(mut last) = c.try_borrow_mut() {
            *last = Some(q);
        }
    });
    result
}

/// `msgget(key, msgflg)`.
///
/// Errors: `ENOENT`, `EEXIST`, `EACCES`, `ENOSPC` as the kernel; `ENOMEM` when
/// the queue's shared memory cannot be made; `EACCES` / `ENOMEM` when the
/// namespace cannot be opened.
pub fn msgget(key: key_t, msgflg: c_int) -> c_int {
    guard(-1, || {
        let ns = namespace().map_err(|e| e.errno())?;
        ns.get(key, GetOptions::from_msgflg(msgflg))
            .map(|q| q.id())
            .map_err(|e| e.errno())
    })
}

/// `msgsnd(msqid, msgp, msgsz, msgflg)`, and with a non-NULL `timeout` the
/// timed variant (`ETIMEDOUT` when it passes; ignored with `IPC_NOWAIT`).
///
/// # Safety
/// `msgp` is NULL or points to a `long` followed by `msgsz` readable bytes;
/// `timeout` is NULL or points to a `struct timespec`.
pub unsafe fn msgsnd(
    msqid: c_int,
    msgp: *const c_void,
    msgsz: size_t,
    msgflg: c_int,
    timeout: *const timespec,
) -> c_int {
    guard(-1, || {
        // SAFETY: `timeout` is NULL or valid (this function's contract).
        let timeout = unsafe { user::read_timeout(timeout) }?;
        // The kernel reads mtype first (EFAULT), then checks the size, the
        // id's sign and mtype (EINVAL), then looks the id up.
        if msgp.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: `msgp` is non-NULL and points to a `long` (contract).
        let mtype = unsafe { user::read_mtype(msgp) };
        if msgsz > isize::MAX as usize || msqid < 0 || mtype < 1 {
            return Err(libc::EINVAL);
        }
        let ns = namespace_or_einval()?;
        if msgsz as u64 > ns.limits().msgmax {
            return Err(libc::EINVAL);
        }
        // SAFETY: `msgp` is followed by `msgsz` readable bytes (contract),
        // and `msgsz` fits in an isize (checked above).
        let text = unsafe { user::text(msgp, msgsz) };
        let nowait = msgflg & libc::IPC_NOWAIT != 0;
        with_queue(ns, msqid, |q| {
            match timeout {
                _ if nowait => q.try_send(mtype, text),
                Some(t) => q.send_timeout(mtype, text, t),
                None => q.send(mtype, text),
            }
            .map(|()| 0)
            .map_err(|e| e.errno())
        })
    })
}

/// `msgrcv(msqid, msgp, msgsz, msgtyp, msgflg)`, and with a non-NULL
/// `timeout` the timed variant (`ETIMEDOUT`; ignored with `IPC_NOWAIT`).
///
/// A NULL `msgp` behaves as in the kernel, which finds and dequeues the
/// message before it fails to store it: `EFAULT`, and the message is gone
/// (but `E2BIG`, `ENOMSG`, ... are reported first, and the call may block).
///
/// # Safety
/// `msgp` is NULL or points to a `long` followed by `msgsz` writable bytes;
/// `timeout` is NULL or points to a `struct timespec`.
pub unsafe fn msgrcv(
    msqid: c_int,
    msgp: *mut c_void,
    msgsz: size_t,
    msgtyp: c_long,
    msgflg: c_int,
    timeout: *const timespec,
) -> ssize_t {
    guard(-1, || {
        // SAFETY: `timeout` is NULL or valid (contract).
        let timeout = unsafe { user::read_timeout(timeout) }?;
        if msqid < 0 || msgsz > isize::MAX as usize {
            return Err(libc::EINVAL);
        }
        let copy = msgflg & libc::MSG_COPY != 0;
        let nowait = msgflg & libc::IPC_NOWAIT != 0;
        let noerror = msgflg & libc::MSG_NOERROR != 0;
        if copy && (msgflg & libc::MSG_EXCEPT != 0 || !nowait) {
            return Err(libc::EINVAL);
        }
        let ns = namespace_or_einval()?;
        // No message is longer than msgmax: the receive never writes past
        // `cap` bytes, and only those are borrowed.
        let cap = (msgsz as u64).min(ns.limits().msgmax) as usize;
        if copy && msgp.is_null() && cap > 0 {
            // Linux's MSG_COPY reads the caller's buffer before anything else.
            return Err(libc::EFAULT);
        }
        let mut scratch = Vec::new();
        let buf: &mut [u8] = if msgp.is_null() {
            scratch.resize(cap, 0);
            &mut scratch
        } else {
            // SAFETY: `msgp` is followed by `msgsz >= cap` writable bytes
            // (contract), and nothing else borrows them during this call.
            unsafe { user::text_mut(msgp, cap) }
        };
        let sel = Selector::from_msgtyp(msgtyp, msgflg & libc::MSG_EXCEPT != 0);
        let opts = if noerror {
            RecvOptions::new(sel).truncate()
        } else {
            RecvOptions::new(sel)
        };
        let got = with_queue(ns, msqid, |q| {
            if copy {
                // A negative position finds no message (ENOMSG), as Linux.
                let index = usize::try_from(msgtyp).unwrap_or(usize::MAX);
                q.try_recv_copy(buf, index, opts)
            } else {
                match timeout {
                    _ if nowait => q.try_recv(buf, opts),
                    Some(t) => q.recv_timeout(buf, opts, t),
                    None => q.recv(buf, opts),
                }
            }
            .map_err(|e| e.errno())
        })?;
        if msgp.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: `msgp` is non-NULL and points to a writable `long`.
        unsafe { user::write_mtype(msgp, got.mtype) };
        Ok(got.len as ssize_t)
    })
}

/// `msgctl(msqid, cmd, buf)`: `IPC_STAT`, `IPC_SET`, `IPC_RMID`, `IPC_INFO`,
/// `MSG_INFO`, `MSG_STAT`, `MSG_STAT_ANY`; any other `cmd` is `EINVAL`.
///
/// # Safety
/// `buf` is NULL or points to a `struct msqid_ds` (to a `struct msginfo` for
/// `IPC_INFO` / `MSG_INFO`), readable for `IPC_SET`, writable for the others.
pub unsafe fn msgctl(msqid: c_int, cmd: c_int, buf: *mut msqid_ds) -> c_int {
    guard(-1, || {
        if msqid < 0 || cmd < 0 {
            return Err(libc::EINVAL);
        }
        match cmd {
            libc::IPC_INFO | libc::MSG_INFO => {
                let ns = namespace_or_einval()?;
                let (info, highest) = ctl::info(ns, cmd == libc::MSG_INFO);
                // SAFETY: for these commands `buf` is NULL or points to a
                // writable `struct msginfo` (contract).
                unsafe { user::write_out(buf.cast::<libc::msginfo>(), info) }?;
                Ok(highest)
            }
            libc::IPC_STAT | libc::MSG_STAT | MSG_STAT_ANY => {
                let ns = namespace_or_einval()?;
                let (ds, ret) = ctl::stat(ns, msqid, cmd)?;
                // SAFETY: `buf` is NULL or a writable msqid_ds (contract).
                unsafe { user::write_out(buf, ds) }?;
                Ok(ret)
            }
            libc::IPC_SET => {
                // The kernel copies the buffer in before looking at the id.
                // SAFETY: `buf` is NULL or a readable msqid_ds (contract).
                let ds = unsafe { user::read_in(buf) }?;
                ctl::set(namespace_or_einval()?, msqid, &ds).map(|()| 0)
            }
            libc::IPC_RMID => ctl::remove(namespace_or_einval()?, msqid).map(|()| 0),
            _ => Err(libc::EINVAL),
        }
    })
}

/// `ftok(pathname, proj_id)`, glibc's algorithm; -1 with `stat(2)`'s errno
/// when the path cannot be stat'ed (`EFAULT` for NULL).
///
/// # Safety
/// `pathname` is NULL or a NUL-terminated string.
pub unsafe fn ftok(pathname: *const c_char, proj_id: c_int) -> key_t {
    guard(-1, || {
        if pathname.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: a non-NULL NUL-terminated string (contract).
        let path = unsafe { std::ffi::CStr::from_ptr(pathname) };
        let path = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(path.to_bytes());
        shmq::ftok(path, proj_id).map_err(|e| e.raw_os_error().unwrap_or(libc::EINVAL))
    })
}

/// Re-reads the process's effective uid and gid, which shmq caches so that
/// sends and receives make no system call. Call after `setuid` and friends.
pub fn refresh_credentials() {
    // Cannot fail; the guard only keeps a panic from crossing into C.
    guard((), || {
        shmq::refresh_credentials();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errno() -> c_int {
        std::io::Error::last_os_error().raw_os_error().unwrap()
    }

    #[test]
    fn a_panic_becomes_eio_and_minus_one() {
        user::set_errno(0);
        let r: c_int = guard(-1, || panic!("test panic, expected"));
        assert_eq!((r, errno()), (-1, libc::EIO));
    }

    #[test]
    fn success_leaves_errno_alone_and_failure_sets_it() {
        user::set_errno(libc::ENOENT);
        assert_eq!(guard(-1, || Ok(7)), 7);
        assert_eq!(errno(), libc::ENOENT);
        assert_eq!(guard(-1, || Err(libc::E2BIG)), -1);
        assert_eq!(errno(), libc::E2BIG);
    }

    #[test]
    fn bad_timespecs_are_einval() {
        for (sec, nsec) in [(-1, 0), (0, -1), (0, 1_000_000_000)] {
            let ts = timespec {
                tv_sec: sec,
                tv_nsec: nsec,
            };
            // SAFETY: a valid timespec; the checks come before anything else.
            let r = unsafe { msgsnd(0, std::ptr::null(), 0, 0, &ts) };
            assert_eq!((r, errno()), (-1, libc::EINVAL), "{sec} {nsec}");
        }
    }
}
