//! Liveness of an attachment slot's owner, as the kernel keeps it: a
//! process-shared robust lock in every slot.
//!
//! The thread that owns a slot holds its lock from the claim to the release.
//! A robust lock (`pthread_mutex_t` with `PTHREAD_MUTEX_ROBUST` and
//! `PTHREAD_PROCESS_SHARED`) is a futex word that holds its owner's thread id
//! and is linked into that thread's robust list; when the thread dies, with
//! the lock held, however it dies (SIGKILL included), the kernel walks the
//! list before the process becomes a zombie and marks the word
//! `FUTEX_OWNER_DIED` with the thread id cleared (Linux's
//! `Documentation/locking/robust-futexes.rst`). So:
//!
//! - whether a slot's owner is alive is **one load** of the word, no system
//!   call and no `/proc`: a thread id means alive, `FUTEX_OWNER_DIED` dead;
//! - a reused pid cannot fool it (the word names no pid once marked);
//! - the thread that takes a dead owner's lock (`EOWNERDEAD`) is the one
//!   recoverer, and if it dies while recovering the kernel marks the word
//!   again, so the next one takes over.
//!
//! glibc owns each thread's robust list (`set_robust_list` registers one
//! head per thread), so the lock goes through pthread's own functions rather
//! than a futex of ours. Two consequences the callers respect:
//! - a held lock is linked into its thread's list through pointers stored in
//!   the mapping, so a mapping must stay mapped while any of its slot locks
//!   is held by a thread of this process (`shm` keeps the mapping alive
//!   until the thread releases its slot);
//! - unlocking follows those pointers, which live in the mapping: before it
//!   unlocks, [`LiveLock::give_back`] checks that the lock's kind and both
//!   links are what glibc left (each link names the thread's list head or
//!   another lock this thread holds, `HELD`). A lock that fails the check
//!   (a corrupted mapping) is not unlocked: it stays in the thread's list
//!   and its mapping is never unmapped ([`stuck_in`]); the kernel marks it
//!   when the thread exits. What remains: links corrupted between the check
//!   and the unlock, and a corrupted list that the kernel's walk at exit
//!   stops on (the slots after it then look alive for good).
//!
//! Under `cfg(loom)` the lock is a model word holding the owner's model pid,
//! which reads as "owner died" once that model process has died (see
//! `process_model`): the kernel's marking, as loom can see it.

#[cfg(not(loom))]
use crate::sync::AtomicU32;
use crate::sync::Ordering;

/// What the lock word says about its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// Nobody holds the lock.
    None,
    /// A live thread holds it.
    Alive,
    /// Its holder died with the lock held (`FUTEX_OWNER_DIED`).
    Died,
}

/// How an attempt to take the lock ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Take {
    /// Taken; nobody held it.
    Taken,
    /// Taken from a holder that died (the lock is consistent again).
    FromDead,
    /// A live thread holds it (or the lock is unusable).
    Busy,
}

/// A robust, process-shared lock on a cache line of its own (production:
/// a `pthread_mutex_t` in the first bytes, zero-filled until first used).
#[cfg(not(loom))]
#[repr(C, align(64))]
pub(crate) struct LiveLock {
    /// Word 0 is glibc's `__lock` (the futex word: owner tid, `FUTEX_WAITERS`,
    /// `FUTEX_OWNER_DIED`); the rest is the mutex's other fields and padding.
    words: [AtomicU32; 16],
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<libc::pthread_mutex_t>() <= 64);
#[cfg(not(loom))]
const _: () = assert!(std::mem::align_of::<libc::pthread_mutex_t>() <= 64);

/// `FUTEX_OWNER_DIED` (linux/futex.h).
#[cfg(not(loom))]
const OWNER_DIED: u32 = 0x4000_0000;
/// `FUTEX_TID_MASK` (linux/futex.h).
#[cfg(not(loom))]
const TID_MASK: u32 = 0x3fff_ffff;

/// Offsets of the robust-list links in glibc's 64-bit `pthread_mutex_t`:
/// `__list` is `{ __prev, __next }` at byte 24, and every link (and the
/// thread's list head) points at a lock's `__next` field or at the head
/// (glibc's `ENQUEUE_MUTEX_BOTH` / `DEQUEUE_MUTEX` in `nptl/descr.h`).
#[cfg(not(loom))]
const PREV_OFFSET: usize = 24;
#[cfg(not(loom))]
const NEXT_OFFSET: usize = 32;
/// Offset of `__kind` in glibc's 64-bit `pthread_mutex_t`.
#[cfg(not(loom))]
const KIND_WORD: usize = 4;

#[cfg(not(loom))]
std::thread_local! {
    /// List addresses (`__next` fields) of the locks this thread holds, and
    /// the fork generation they belong to (a forked child holds none of
    /// them). A plain pointer, so that it has no destructor: slots are given
    /// back from other thread-local destructors (`shm`), which may run after
    /// a destructor of this one would have. Freed when it empties.
    static HELD: std::cell::Cell<*mut (u64, Vec<usize>)> =
        const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// Addresses of locks this process could not give back safely: the
/// mappings holding them must stay mapped (see [`stuck_in`]).
#[cfg(not(loom))]
static STUCK: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

/// Whether `[base, base + len)` holds a lock this process could not give
/// back: such a mapping must never be unmapped (the lock is still linked
/// into a thread's robust list through it).
#[cfg(not(loom))]
pub(crate) fn stuck_in(base: usize, len: usize) -> bool {
    STUCK
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|&a| a >= base && a < base + len)
}

/// Runs `f` on this thread's list of held locks (cleared after a fork).
#[cfg(not(loom))]
fn with_held<R>(f: impl FnOnce(&mut Vec<usize>) -> R) -> Option<R> {
    let gen = crate::process::fork_generation();
    HELD.try_with(|h| {
        if h.get().is_null() {
            h.set(Box::into_raw(Box::new((gen, Vec::new()))));
        }
        // SAFETY: the pointer came from `Box::into_raw` above, is only ever
        // used by this thread, and is freed only below, after its last use.
        let held = unsafe { &mut *h.get() };
        if held.0 != gen {
            *held = (gen, Vec::new());
        }
        let r = f(&mut held.1);
        if held.1.is_empty() {
            // SAFETY: as above; `held` is not used after this.
            drop(unsafe { Box::from_raw(h.replace(std::ptr::null_mut())) });
        }
        r
    })
    .ok()
}

/// The `__kind` glibc gives a robust, process-shared mutex.
#[cfg(not(loom))]
fn robust_kind() -> u32 {
    static KIND: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *KIND.get_or_init(|| {
        let lock = LiveLock {
            words: std::array::from_fn(|_| AtomicU32::new(0)),
        };
        lock.prepare();
        lock.words[KIND_WORD].load(Ordering::Relaxed)
    })
}

/// The calling thread's robust list head, as the kernel has it registered.
#[cfg(not(loom))]
fn robust_head() -> usize {
    let mut head: usize = 0;
    let mut len: libc::size_t = 0;
    // SAFETY: get_robust_list(2) for the calling thread (pid 0) writes one
    // pointer and one length into the two locals it is given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            0,
            &mut head as *mut usize,
            &mut len as *mut libc::size_t,
        )
    };
    if r == 0 {
        head
    } else {
        0
    }
}

#[cfg(not(loom))]
impl LiveLock {
    /// A zero-filled lock (as a new file holds; heap-backed states in tests).
    #[cfg(test)]
    pub(crate) fn zeroed() -> LiveLock {
        LiveLock {
            words: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.words.as_ptr() as *mut libc::pthread_mutex_t
    }

    /// The address this lock's neighbours in the robust list point at.
    fn list_addr(&self) -> usize {
        self.mutex() as usize + NEXT_OFFSET
    }

    /// The 64-bit word at byte `off` (two 32-bit loads; only this thread
    /// writes it while it holds the lock, so it cannot tear but by damage).
    fn word64(&self, off: usize) -> usize {
        // Relaxed: our own thread's writes (glibc's), or damage.
        let lo = self.words[off / 4].load(Ordering::Relaxed) as u64;
        let hi = self.words[off / 4 + 1].load(Ordering::Relaxed) as u64;
        (lo | hi << 32) as usize
    }

    /// Whether the held lock's kind and robust-list links are as glibc left
    /// them: each link names the list head or another lock we hold.
    fn links_intact(&self) -> bool {
        if self.words[KIND_WORD].load(Ordering::Relaxed) != robust_kind() {
            return false;
        }
        let head = robust_head();
        let me = self.list_addr();
        let next = self.word64(NEXT_OFFSET) & !1;
        let prev = self.word64(PREV_OFFSET) & !1;
        with_held(|held| {
            let known = |a: usize| a != 0 && (a == head || (a != me && held.contains(&a)));
            held.contains(&me) && known(next) && known(prev)
        })
        .unwrap_or(false)
    }

    /// What the lock word says about its holder: one load.
    pub(crate) fn owner(&self) -> Owner {
        // SYNC(owner_died): Acquire, pairs with the kernel's marking of the
        // word (a locked cmpxchg, after the dead process's last store) and
        // with glibc's lock CAS; a recoverer that sees `Died` then reads the
        // dead owner's record (it reads it again after taking the lock).
        let w = self.words[0].load(Ordering::Acquire);
        if w & TID_MASK != 0 {
            Owner::Alive
        } else if w & OWNER_DIED != 0 {
            Owner::Died
        } else {
            Owner::None
        }
    }

    /// Makes the lock a robust, process-shared one. Only while nobody holds
    /// it nor can try to (the caller has just claimed the slot, whose lock
    /// word reads `Owner::None`).
    pub(crate) fn prepare(&self) {
        // SAFETY: [1] `mutex()` points at 64 bytes of this lock, which are
        // large and aligned enough for a `pthread_mutex_t` (asserted above);
        // [2] the attribute object is initialised before use and destroyed
        // after; [3] nobody uses the mutex meanwhile (see above), and an
        // unlocked mutex is in no thread's robust list, so re-initialising
        // it breaks no list.
        unsafe {
            let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
            if libc::pthread_mutexattr_init(attr.as_mut_ptr()) != 0 {
                return;
            }
            libc::pthread_mutexattr_setpshared(attr.as_mut_ptr(), libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_mutexattr_setrobust(attr.as_mut_ptr(), libc::PTHREAD_MUTEX_ROBUST);
            libc::pthread_mutex_init(self.mutex(), attr.as_ptr());
            libc::pthread_mutexattr_destroy(attr.as_mut_ptr());
        }
    }

    /// Tries to take the lock for the calling thread, never waiting. Taken
    /// from a dead holder, it is made consistent at once: the "dead" signal
    /// is the kernel's mark on the word, which it sets again if we die.
    pub(crate) fn try_take(&self) -> Take {
        // SAFETY: the mutex lives in the mapping, which stays mapped while
        // this thread holds it (see the module doc); a zero-filled or
        // corrupted mutex makes glibc return an error, which is `Busy`.
        let took = match unsafe { libc::pthread_mutex_trylock(self.mutex()) } {
            0 => Take::Taken,
            libc::EOWNERDEAD => {
                // SAFETY: we hold the mutex (EOWNERDEAD hands it over).
                unsafe { libc::pthread_mutex_consistent(self.mutex()) };
                Take::FromDead
            }
            _ => return Take::Busy,
        };
        let me = self.list_addr();
        with_held(|held| held.push(me));
        took
    }

    /// Releases the lock the calling thread holds, if its links are intact
    /// (see the module doc); `false` if it had to stay locked (it then
    /// stays listed in [`stuck_in`], and its mapping must stay mapped).
    pub(crate) fn give_back(&self) -> bool {
        let me = self.list_addr();
        // SAFETY: as for `try_take`; the links glibc follows were checked
        // just before; glibc refuses (EPERM, without unlinking) a mutex that
        // this thread does not hold.
        let unlocked =
            self.links_intact() && unsafe { libc::pthread_mutex_unlock(self.mutex()) } == 0;
        if unlocked {
            with_held(|held| held.retain(|&a| a != me));
        } else {
            STUCK
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(self.mutex() as usize);
        }
        unlocked
    }
}

/// The model of the lock (loom builds): the holder's model pid, 0 if free.
#[cfg(loom)]
pub(crate) struct LiveLock {
    word: crate::sync::AtomicU32,
}

#[cfg(loom)]
impl LiveLock {
    /// A free lock.
    pub(crate) fn zeroed() -> LiveLock {
        LiveLock {
            word: crate::sync::AtomicU32::new(0),
        }
    }

    fn died(holder: u32) -> bool {
        if crate::sync::mutant(crate::sync::Mutant::DeadOwnerLooksAlive) {
            return false;
        }
        !crate::process::is_alive(holder, 0)
    }

    /// What the lock word says about its holder.
    pub(crate) fn owner(&self) -> Owner {
        // SYNC(owner_died): Acquire, as in production; the model's "kernel
        // mark" is the dead bit, read with Acquire in `is_alive`.
        match self.word.load(Ordering::Acquire) {
            0 => Owner::None,
            h if Self::died(h) => Owner::Died,
            _ => Owner::Alive,
        }
    }

    /// Nothing to initialise in the model.
    pub(crate) fn prepare(&self) {}

    /// Takes the lock for the calling model process, never waiting.
    pub(crate) fn try_take(&self) -> Take {
        let me = crate::process::pid();
        let w = self.word.load(Ordering::Acquire);
        let (outcome, expected) = match w {
            0 => (Take::Taken, 0),
            h if Self::died(h) => (Take::FromDead, h),
            _ => return Take::Busy,
        };
        // SYNC(owner_died): AcqRel, as glibc's lock CAS.
        match self
            .word
            .compare_exchange(expected, me, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => outcome,
            Err(_) => Take::Busy,
        }
    }

    /// Releases the lock the calling model process holds.
    pub(crate) fn give_back(&self) -> bool {
        let me = crate::process::pid();
        // SYNC(owner_died): Release, as glibc's unlock.
        self.word
            .compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn lock() -> Box<LiveLock> {
        let l = Box::new(LiveLock::zeroed());
        l.prepare();
        l
    }

    #[test]
    fn held_locks_are_given_back_in_any_order_and_read_as_owned() {
        let (a, b, c) = (lock(), lock(), lock());
        assert_eq!(a.owner(), Owner::None);
        for l in [&a, &b, &c] {
            assert_eq!(l.try_take(), Take::Taken);
            assert_eq!(l.owner(), Owner::Alive);
        }
        // The middle one first: its links name the other two.
        assert!(b.give_back(), "links of a lock between two others");
        assert!(a.give_back());
        assert!(c.give_back());
        assert_eq!(b.owner(), Owner::None);
    }

    #[test]
    fn a_lock_with_a_forged_link_is_not_unlocked_and_its_memory_is_kept() {
        let (a, b) = (lock(), lock());
        assert_eq!(a.try_take(), Take::Taken);
        assert_eq!(b.try_take(), Take::Taken);
        let base = &*a as *const LiveLock as usize;
        let saved = a.words[PREV_OFFSET / 4].load(Ordering::Relaxed);
        a.words[PREV_OFFSET / 4].store(0xdead_0000, Ordering::Relaxed);
        assert!(!a.give_back(), "a forged link is refused");
        assert_eq!(a.owner(), Owner::Alive, "still held");
        assert!(stuck_in(base, 64));
        // Repaired, it can be given back (and nothing else is disturbed).
        a.words[PREV_OFFSET / 4].store(saved, Ordering::Relaxed);
        assert!(a.give_back());
        assert!(b.give_back());
        // `STUCK` keeps the address: leak the memory, as `shm` does.
        std::mem::forget(a);
    }

    #[test]
    fn a_thread_gives_its_slot_locks_back_when_it_exits() {
        use crate::namespace::{GetOptions, Namespace};
        let dir = std::path::PathBuf::from(format!(
            "/dev/shm/shmq-test-liveness-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config"),
            "msgmnb = 2048
slots = 8
",
        )
        .unwrap();
        let ns = Namespace::open(&dir).unwrap();
        let flags = GetOptions::new().create(true).mode(0o600);
        let qs = [ns.get(1, flags).unwrap(), ns.get(2, flags).unwrap()];
        let user = qs.clone();
        std::thread::spawn(move || {
            for q in &user {
                q.send(1, b"x").unwrap();
                let mut buf = [0u8; 8];
                q.recv(&mut buf, crate::Selector::Any).unwrap();
            }
        })
        .join()
        .unwrap();
        for q in &qs {
            let st = q.mapped().state();
            let lock = &st.slots[0].live;
            assert_eq!(lock.owner(), Owner::None, "given back at thread exit");
            assert!(!stuck_in(lock as *const LiveLock as usize, 64));
            assert!(!crate::slots::in_use(&st.slots[0]));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
