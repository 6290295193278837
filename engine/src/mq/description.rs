//! An open queue description: what `mq_open` returns a descriptor to, and
//! what `dup` and `fork` share (the kernel keeps a POSIX queue's
//! `O_NONBLOCK` in its `struct file`, so a forked child's `mq_setattr`
//! changes its parent's descriptor too).
//!
//! The flags live in a page of their own, mapped `MAP_SHARED |
//! MAP_ANONYMOUS`: a forked child inherits the very page, as it inherits the
//! open file description, and `exec` drops it, as it closes the descriptor
//! (POSIX queue descriptors are close-on-exec on Linux). One page per
//! description, never recycled while any process may still hold it: an
//! arena shared by several descriptions would hand a slot the parent freed
//! to a new description while a child still used it.

use crate::sync::{AtomicU32, Ordering};
use std::os::fd::OwnedFd;
use std::ptr::NonNull;

/// `O_NONBLOCK` in [`Description`]'s flag word.
const NONBLOCK: u32 = 1;

/// The shared page holding a description's flags.
pub(crate) struct Description {
    page: NonNull<AtomicU32>,
    /// A descriptor of the queue's file (close-on-exec): the number a C
    /// caller gets as its `mqd_t`, so that it never equals any other
    /// descriptor of the process, the kernel's queues' included.
    pub(crate) fd: OwnedFd,
}

// SAFETY: the page is only accessed through an atomic, and unmapped only
// when the last owner drops the description.
unsafe impl Send for Description {}
// SAFETY: as above: shared access is atomic.
unsafe impl Sync for Description {}

impl Description {
    /// A new description holding `fd`, `nonblocking` or not.
    pub(crate) fn new(fd: OwnedFd, nonblocking: bool) -> std::io::Result<Description> {
        let len = rustix::param::page_size();
        // SAFETY: a fresh anonymous mapping: no existing memory is aliased;
        // the kernel picks the address.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
            )
        }?;
        let page = NonNull::new(ptr.cast::<AtomicU32>()).ok_or(std::io::ErrorKind::Other)?;
        let d = Description { page, fd };
        d.set_nonblocking(nonblocking);
        Ok(d)
    }

    fn word(&self) -> &AtomicU32 {
        // SAFETY: the page is mapped, zero-filled, page aligned and ours
        // until `drop`; an `AtomicU32` is valid for any bit pattern.
        unsafe { self.page.as_ref() }
    }

    /// Whether `O_NONBLOCK` is set.
    pub(crate) fn nonblocking(&self) -> bool {
        // Relaxed: a flag read at the start of a call, as the kernel reads
        // f_flags without ordering; nothing else is published through it.
        self.word().load(Ordering::Relaxed) & NONBLOCK != 0
    }

    /// Sets or clears `O_NONBLOCK` (for every holder of the description).
    pub(crate) fn set_nonblocking(&self, on: bool) {
        // Relaxed: see `nonblocking`.
        self.word()
            .store(if on { NONBLOCK } else { 0 }, Ordering::Relaxed);
    }
}

impl Drop for Description {
    fn drop(&mut self) {
        // SAFETY: mapped in `new` with this length; no reference into it
        // outlives `self`.
        let _ =
            unsafe { rustix::mm::munmap(self.page.as_ptr().cast(), rustix::param::page_size()) };
    }
}
