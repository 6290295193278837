//! The POSIX queue entry points (`mq_open`, ...), checked in the order of
//! Linux's `ipc/mqueue.c` (glibc's own checks first: a name without a
//! leading `/` is `EINVAL` before any system call).
//!
//! # Descriptors
//! An `mqd_t` from shmq is the number of a real, close-on-exec descriptor
//! of the queue's file ([`shmq::MessageQueue`]'s), so it never equals any
//! other descriptor of the process, the kernel's queues' included. The
//! process's table maps it to its open queue; a number not in the table is
//! `EBADF` for every call but `mq_close`, which (as glibc's, a plain
//! `close`) closes whatever descriptor it is given.
//!
//! Limits: a descriptor closed with `close(2)` instead of `mq_close` stays
//! in the table (and its number may then name another file while shmq still
//! takes it for the queue); a `dup` of a descriptor is not in the table
//! (`EBADF`). Each thread keeps the description it used last (see
//! `with_queue`'s cache): after `mq_close` in another thread, the
//! descriptor's number stays open until that thread's next call on a queue
//! (or its exit), though no call uses it any more.

use crate::{guard, namespace, Errno};
use libc::{c_char, c_int, c_long, c_uint, mode_t, mqd_t, size_t, ssize_t, timespec};
use shmq::{MessageQueue, MqOpenOptions};
use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// `struct mq_attr` as glibc lays it out on Linux (four `long`s, then
/// reserved space).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MqAttr {
    /// `O_NONBLOCK` or 0.
    pub mq_flags: c_long,
    /// Most messages.
    pub mq_maxmsg: c_long,
    /// Longest message.
    pub mq_msgsize: c_long,
    /// Messages queued.
    pub mq_curmsgs: c_long,
    /// Reserved.
    pub pad: [c_long; 4],
}

/// The process's open queues, by descriptor number.
static TABLE: RwLock<Option<HashMap<c_int, MessageQueue>>> = RwLock::new(None);

/// Bumped by every change of [`TABLE`]: a thread's [`LAST`] is good while
/// it holds the current value.
static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The descriptor this thread used last, with the table's generation
    /// then: a stream of calls on one descriptor skips the table's lock and
    /// hash (about a fifth of a send and receive pair's time here).
    static LAST: RefCell<Option<(u64, mqd_t, MessageQueue)>> = const { RefCell::new(None) };
}

/// Runs `op` on the queue of descriptor `mqd` (`EBADF` if there is none).
/// The thread's cell is only borrowed shared while `op` runs (a signal
/// handler calling in meanwhile can borrow it too); a mutable borrow that
/// fails just skips the cache.
fn with_queue<T>(
    mqd: mqd_t,
    op: impl FnOnce(&MessageQueue) -> Result<T, Errno>,
) -> Result<T, Errno> {
    // Acquire: pairs with the Release bump after a table change, so that a
    // generation equal to the cached one means no change since the cache
    // was filled.
    let gen = GENERATION.load(Ordering::Acquire);
    let cached = LAST.try_with(|c| {
        let c = c.try_borrow().ok()?;
        match &*c {
            Some((g, fd, q)) if *g == gen && *fd == mqd => Some(q.clone()),
            _ => None,
        }
    });
    if let Ok(Some(q)) = cached {
        return op(&q);
    }
    let q = TABLE
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|t| t.get(&mqd).cloned())
        .ok_or(libc::EBADF)?;
    let _ = LAST.try_with(|c| {
        if let Ok(mut last) = c.try_borrow_mut() {
            *last = Some((gen, mqd, q.clone()));
        }
    });
    op(&q)
}

/// Records a change of the table (after it is made).
fn table_changed() {
    // Release: see `with_queue`.
    GENERATION.fetch_add(1, Ordering::Release);
    // This thread's own cache may hold the closed queue: let it go now.
    let _ = LAST.try_with(|c| {
        if let Ok(mut last) = c.try_borrow_mut() {
            *last = None;
        }
    });
}

/// The name at `name`, or `EFAULT` for NULL.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
unsafe fn read_name<'a>(name: *const c_char) -> Result<&'a [u8], Errno> {
    if name.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: non-NULL and NUL-terminated (contract).
    Ok(unsafe { std::ffi::CStr::from_ptr(name) }.to_bytes())
}

/// The deadline of a timed call from its absolute `CLOCK_REALTIME` time:
/// `None` for NULL; `EINVAL` for a negative time or `tv_nsec` outside
/// `0..1_000_000_000` (checked first, as the kernel does, even when the
/// call would not wait). The remaining time is measured once, now, and
/// waited on the monotonic clock (a later change of the wall clock does not
/// move it).
///
/// # Safety
/// `ts` is NULL or points to a `struct timespec`.
unsafe fn read_deadline(ts: *const timespec) -> Result<Option<Instant>, Errno> {
    if ts.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and valid (contract).
    let ts = unsafe { ts.read_unaligned() };
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(libc::EINVAL);
    }
    let at = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let now_mono = Instant::now();
    Ok(Some(
        now_mono
            .checked_add(at.saturating_sub(now))
            .unwrap_or(now_mono + Duration::from_secs(86400 * 365 * 100)),
    ))
}

/// `mq_open(name, oflag, mode, attr)`; `mode` and `attr` are read only with
/// `O_CREAT`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; with `O_CREAT`, `attr` is
/// NULL or points to a `struct mq_attr`.
pub unsafe fn mq_open(
    name: *const c_char,
    oflag: c_int,
    mode: mode_t,
    attr: *const MqAttr,
) -> mqd_t {
    guard(-1, || {
        // SAFETY: contract.
        let name = unsafe { read_name(name) }?;
        if name.first() != Some(&b'/') {
            return Err(libc::EINVAL); // glibc's check
        }
        let mut opts = MqOpenOptions::from_oflag(oflag);
        if oflag & libc::O_CREAT != 0 {
            opts = opts.mode(mode);
            if !attr.is_null() {
                // SAFETY: non-NULL and valid with O_CREAT (contract).
                let a = unsafe { attr.read_unaligned() };
                opts = opts.attributes(a.mq_maxmsg, a.mq_msgsize);
            }
        }
        let ns = namespace().map_err(|e| e.errno())?;
        let q = opts.open(ns, name).map_err(|e| e.errno())?;
        let fd = q.as_raw_fd();
        TABLE
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(HashMap::new)
            .insert(fd, q);
        table_changed();
        Ok(fd)
    })
}

/// `mq_close(mqd)`: forgets the queue and closes its descriptor; any other
/// descriptor is closed as `close(2)` would (glibc's `mq_close` is `close`).
pub fn mq_close(mqd: mqd_t) -> c_int {
    guard(-1, || {
        let q = TABLE
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(|t| t.remove(&mqd));
        if q.is_some() {
            table_changed();
        }
        match q {
            // Dropping the last handle closes the descriptor (a thread's
            // cache may still hold a clone: the close's removal of our
            // notification registration is made here).
            Some(q) => {
                q.close_notification();
                drop(q);
                Ok(0)
            }
            None => {
                // SAFETY: close(2) on a number the caller chose, as glibc's
                // mq_close does; no memory is involved.
                if unsafe { libc::close(mqd) } == 0 {
                    Ok(0)
                } else {
                    Err(std::io::Error::last_os_error()
                        .raw_os_error()
                        .unwrap_or(libc::EBADF))
                }
            }
        }
    })
}

/// `mq_unlink(name)`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
pub unsafe fn mq_unlink(name: *const c_char) -> c_int {
    guard(-1, || {
        // SAFETY: contract.
        let name = unsafe { read_name(name) }?;
        if name.first() != Some(&b'/') {
            return Err(libc::EINVAL);
        }
        let ns = namespace().map_err(|_| libc::ENOENT)?;
        MessageQueue::unlink(ns, name)
            .map(|()| 0)
            .map_err(|e| e.errno())
    })
}

/// `mq_send` / `mq_timedsend` (`abs_timeout` NULL: no limit).
///
/// # Safety
/// `msg` is NULL or points to `len` readable bytes; `abs_timeout` is NULL
/// or points to a `struct timespec`.
pub unsafe fn mq_timedsend(
    mqd: mqd_t,
    msg: *const c_char,
    len: size_t,
    prio: c_uint,
    abs_timeout: *const timespec,
) -> c_int {
    guard(-1, || {
        // SAFETY: contract.
        let deadline = unsafe { read_deadline(abs_timeout) }?;
        if prio >= shmq::MQ_PRIO_MAX {
            return Err(libc::EINVAL);
        }
        with_queue(mqd, |q| {
            let (_, write) = q.access();
            if !write {
                return Err(libc::EBADF);
            }
            if len as u64 > q.message_size() {
                return Err(libc::EMSGSIZE);
            }
            if msg.is_null() && len > 0 {
                return Err(libc::EFAULT);
            }
            let text: &[u8] = if len == 0 {
                &[]
            } else {
                // SAFETY: non-NULL, `len` readable bytes (contract); `len`
                // is at most mq_msgsize, far below isize::MAX.
                unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) }
            };
            match deadline {
                Some(d) => q.send_deadline(text, prio, d),
                None => q.send(text, prio),
            }
            .map(|()| 0)
            .map_err(|e| e.errno())
        })
    })
}

/// `mq_receive` / `mq_timedreceive` (`abs_timeout` NULL: no limit). A NULL
/// `msg` takes the message and fails with `EFAULT`, as the kernel (which
/// dequeues before it copies out).
///
/// # Safety
/// `msg` is NULL or points to `len` writable bytes; `prio` is NULL or
/// points to a writable `unsigned int`; `abs_timeout` is NULL or points to
/// a `struct timespec`.
pub unsafe fn mq_timedreceive(
    mqd: mqd_t,
    msg: *mut c_char,
    len: size_t,
    prio: *mut c_uint,
    abs_timeout: *const timespec,
) -> ssize_t {
    guard(-1, || {
        // SAFETY: contract.
        let deadline = unsafe { read_deadline(abs_timeout) }?;
        with_queue(mqd, |q| {
            let (read, _) = q.access();
            if !read {
                return Err(libc::EBADF);
            }
            let msgsize = q.message_size();
            if (len as u64) < msgsize {
                return Err(libc::EMSGSIZE);
            }
            let mut scratch;
            let buf: &mut [u8] = if msg.is_null() {
                scratch = vec![0u8; msgsize as usize];
                &mut scratch
            } else {
                // SAFETY: non-NULL, `len` writable bytes nobody else uses
                // (contract); shmq only writes them. Only the first mq_msgsize
                // bytes are lent, enough for any message.
                unsafe { std::slice::from_raw_parts_mut(msg.cast::<u8>(), msgsize as usize) }
            };
            let (n, p) = match deadline {
                Some(d) => q.recv_deadline(buf, d),
                None => q.recv(buf),
            }
            .map_err(|e| e.errno())?;
            if msg.is_null() {
                return Err(libc::EFAULT);
            }
            if !prio.is_null() {
                // SAFETY: non-NULL and writable (contract).
                unsafe { prio.write_unaligned(p) };
            }
            Ok(n as ssize_t)
        })
    })
}

/// `mq_getattr` / `mq_setattr` (glibc's `mq_getattr` is `mq_setattr` with
/// no new attributes): new flags other than `O_NONBLOCK` are `EINVAL`
/// before the descriptor is looked at, as the kernel checks; only
/// `O_NONBLOCK` changes.
///
/// # Safety
/// `new` is NULL or points to a `struct mq_attr`; `old` is NULL or points
/// to a writable one.
pub unsafe fn mq_setattr(mqd: mqd_t, new: *const MqAttr, old: *mut MqAttr) -> c_int {
    guard(-1, || {
        let new = if new.is_null() {
            None
        } else {
            // SAFETY: non-NULL and valid (contract).
            let n = unsafe { new.read_unaligned() };
            if n.mq_flags & !(libc::O_NONBLOCK as c_long) != 0 {
                return Err(libc::EINVAL);
            }
            Some(n)
        };
        let q = with_queue(mqd, |q| Ok(q.clone()))?;
        let a = q.attributes();
        if !old.is_null() {
            let out = MqAttr {
                mq_flags: if a.nonblocking {
                    libc::O_NONBLOCK as c_long
                } else {
                    0
                },
                mq_maxmsg: a.max_messages as c_long,
                mq_msgsize: a.message_size as c_long,
                mq_curmsgs: a.current_messages as c_long,
                pad: [0; 4],
            };
            // SAFETY: non-NULL and writable (contract).
            unsafe { old.write_unaligned(out) };
        }
        if let Some(n) = new {
            q.set_nonblocking(n.mq_flags != 0);
        }
        Ok(0)
    })
}

/// `struct sigevent` as glibc lays it out on Linux (64 bytes): the value,
/// the signal, the kind, then `SIGEV_THREAD`'s function and attributes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SigEvent {
    /// `sigev_value` (`union sigval`: an `int` or a pointer).
    pub sigev_value: usize,
    /// `sigev_signo`.
    pub sigev_signo: c_int,
    /// `sigev_notify`: `SIGEV_SIGNAL`, `SIGEV_NONE`, `SIGEV_THREAD`, ...
    pub sigev_notify: c_int,
    /// `sigev_notify_function` (`SIGEV_THREAD`), called with `sigev_value`.
    pub sigev_notify_function: Option<unsafe extern "C" fn(usize)>,
    /// `sigev_notify_attributes` (`pthread_attr_t *`; not used: the
    /// function runs on shmq's helper thread).
    pub sigev_notify_attributes: *mut libc::c_void,
    /// The rest of the union.
    pub pad: [c_int; 8],
}

const _: () = assert!(std::mem::size_of::<SigEvent>() == 64);

/// A `SIGEV_THREAD` function and its argument, sent to the helper thread.
struct ThreadCall {
    f: unsafe extern "C" fn(usize),
    value: usize,
}

// SAFETY: a function pointer and an integer; what the value points to is
// the caller's business, as with glibc's helper thread.
unsafe impl Send for ThreadCall {}

/// `mq_notify(mqd, sev)`: `sev` NULL removes the caller's registration.
/// Checked in the kernel's order: `sigev_notify` other than `SIGEV_NONE`,
/// `SIGEV_SIGNAL` and `SIGEV_THREAD`, and a `SIGEV_SIGNAL` number above 64
/// (or negative), are `EINVAL`; then the descriptor (`EBADF`); then
/// another process's registration (`EBUSY`).
///
/// # Safety
/// `sev` is NULL or points to a `struct sigevent`; with `SIGEV_THREAD`,
/// its function may be called once, on another thread, with its value.
pub unsafe fn mq_notify(mqd: mqd_t, sev: *const SigEvent) -> c_int {
    guard(-1, || {
        let how = if sev.is_null() {
            None
        } else {
            // SAFETY: non-NULL and valid (contract).
            let e = unsafe { sev.read_unaligned() };
            Some(match e.sigev_notify {
                libc::SIGEV_NONE => shmq::MqNotify::None,
                libc::SIGEV_SIGNAL => {
                    if !(0..=64).contains(&e.sigev_signo) {
                        return Err(libc::EINVAL);
                    }
                    shmq::MqNotify::Signal {
                        signo: e.sigev_signo,
                        value: e.sigev_value as u64,
                    }
                }
                libc::SIGEV_THREAD => {
                    // glibc calls a NULL function and crashes; refusing it
                    // is kinder and no program relies on the crash.
                    let f = e.sigev_notify_function.ok_or(libc::EINVAL)?;
                    let call = ThreadCall {
                        f,
                        value: e.sigev_value,
                    };
                    shmq::MqNotify::Thread(Box::new(move || {
                        let call = call;
                        // SAFETY: the function the caller registered, with
                        // the value it registered (contract); a panic can
                        // not come out of a C function.
                        unsafe { (call.f)(call.value) }
                    }))
                }
                _ => return Err(libc::EINVAL),
            })
        };
        with_queue(mqd, |q| q.notify(how).map(|()| 0).map_err(|e| e.errno()))
    })
}
