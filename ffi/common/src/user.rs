//! The caller's memory: every read or write through a pointer that C handed
//! in happens here (the counterpart of the kernel's `get_user` /
//! `copy_to_user`). A NULL pointer is `EFAULT`; any other pointer is trusted
//! to be what the function's contract says, as any C library must.
//!
//! A System V message buffer is `struct { long mtype; char mtext[]; }`: the
//! text starts `size_of::<c_long>()` bytes after the buffer. C guarantees no
//! alignment beyond that, so `mtype` is read and written unaligned.

use crate::Errno;
use libc::{c_long, c_void, timespec};
use std::time::Duration;

/// Sets the calling thread's `errno`.
pub(crate) fn set_errno(e: Errno) {
    // SAFETY: `__errno_location` returns the calling thread's errno slot,
    // valid for the life of the thread.
    unsafe { *libc::__errno_location() = e };
}

/// `mtype` of the message buffer at `msgp`.
///
/// # Safety
/// `msgp` is non-NULL and points to a readable `long`.
pub(crate) unsafe fn read_mtype(msgp: *const c_void) -> i64 {
    // SAFETY: see the function's contract; unaligned reads are allowed.
    unsafe { msgp.cast::<c_long>().read_unaligned() }
}

/// Stores `mtype` in the message buffer at `msgp`.
///
/// # Safety
/// `msgp` is non-NULL and points to a writable `long`.
pub(crate) unsafe fn write_mtype(msgp: *mut c_void, mtype: i64) {
    // SAFETY: see the function's contract; unaligned writes are allowed.
    unsafe { msgp.cast::<c_long>().write_unaligned(mtype) }
}

/// The `len` text bytes of the message buffer at `msgp`.
///
/// # Safety
/// `msgp` is non-NULL and followed by `size_of::<c_long>() + len` readable
/// bytes that nobody writes during the returned borrow; `len <= isize::MAX`.
pub(crate) unsafe fn text<'a>(msgp: *const c_void, len: usize) -> &'a [u8] {
    // SAFETY: [1] the text lies inside the caller's buffer, right after
    // `mtype`; [2] u8 has no alignment or validity requirement; [3] the
    // contract excludes concurrent writes and bounds `len`.
    unsafe { std::slice::from_raw_parts(msgp.cast::<u8>().add(std::mem::size_of::<c_long>()), len) }
}

/// The first `len` text bytes of the message buffer at `msgp`, writable.
///
/// # Safety
/// `msgp` is non-NULL and followed by `size_of::<c_long>() + len` writable
/// bytes that nobody else accesses during the returned borrow;
/// `len <= isize::MAX`.
pub(crate) unsafe fn text_mut<'a>(msgp: *mut c_void, len: usize) -> &'a mut [u8] {
    // SAFETY: as in `text`, with exclusive access (contract). C may hand in
    // uninitialised bytes: shmq only ever writes them, never reads them.
    unsafe {
        std::slice::from_raw_parts_mut(msgp.cast::<u8>().add(std::mem::size_of::<c_long>()), len)
    }
}

/// `*out = value`, or `EFAULT` if `out` is NULL.
///
/// # Safety
/// `out` is NULL or points to `size_of::<T>()` writable bytes.
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T) -> Result<(), Errno> {
    if out.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: non-NULL and writable (contract); unaligned is allowed.
    unsafe { out.write_unaligned(value) };
    Ok(())
}

/// A copy of `*src`, or `EFAULT` if `src` is NULL.
///
/// # Safety
/// `src` is NULL or points to an initialised `T`.
pub(crate) unsafe fn read_in<T>(src: *const T) -> Result<T, Errno> {
    if src.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: non-NULL and initialised (contract); unaligned is allowed.
    Ok(unsafe { src.read_unaligned() })
}

/// The relative timeout of a timed call: `None` for NULL (wait forever),
/// `EINVAL` for a negative time or `tv_nsec` outside `0..1_000_000_000`, as
/// `semtimedop(2)` decides.
///
/// # Safety
/// `ts` is NULL or points to a `struct timespec`.
pub(crate) unsafe fn read_timeout(ts: *const timespec) -> Result<Option<Duration>, Errno> {
    if ts.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and valid (contract).
    let ts = unsafe { ts.read_unaligned() };
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(libc::EINVAL);
    }
    Ok(Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)))
}
