//! The one module that names atomic types and `UnsafeCell`.
//!
//! Every concurrent algorithm in the engine is written against these names, so
//! that the `loom-tests` crate can build the engine with `--cfg loom` and explore
//! its interleavings with loom's types, while production builds use the standard
//! library's. (The layout of this file follows `concurrent-queue`'s `src/sync.rs`.)
//!
//! In production the atomics live inside a file mapping shared by unrelated
//! processes. `std`'s atomic integers have the same size and alignment as the
//! plain integers, and the operations compile to the same lock-prefixed
//! instructions whatever process issues them, which is what makes them usable
//! across processes.
#![allow(clippy::disallowed_types)]

pub(crate) use std::sync::atomic::Ordering;

#[cfg(not(loom))]
use std::sync::atomic as imp;

#[cfg(loom)]
use loom::sync::atomic as imp;

/// A memory fence (loom's under `cfg(loom)`).
#[inline]
pub(crate) fn fence(order: Ordering) {
    imp::fence(order)
}

/// Declares a `#[repr(transparent)]` newtype over an atomic integer that
/// forwards the operations the engine uses.
///
/// Why newtypes rather than re-exports: clippy's `disallowed-types` resolves
/// re-exports to the original type, so only distinct types let `clippy.toml`
/// forbid `std`'s and loom's atomics everywhere but here. `repr(transparent)`
/// keeps the production layout identical to the plain integer's, which the
/// file format relies on.
macro_rules! atomic_newtype {
    ($(#[$doc:meta])* $name:ident, $inner:ty, $int:ty, $($konst:ident)?) => {
        $(#[$doc])*
        #[derive(Debug, Default)]
        #[repr(transparent)]
        pub(crate) struct $name($inner);

        #[allow(dead_code)] // not every type uses every operation
        impl $name {
            /// A new atomic holding `v`.
            #[inline]
            pub(crate) $($konst)? fn new(v: $int) -> Self {
                Self(<$inner>::new(v))
            }
            #[inline]
            pub(crate) fn load(&self, order: Ordering) -> $int {
                self.0.load(order)
            }
            #[inline]
            pub(crate) fn store(&self, v: $int, order: Ordering) {
                self.0.store(v, order)
            }
            #[inline]
            pub(crate) fn swap(&self, v: $int, order: Ordering) -> $int {
                self.0.swap(v, order)
            }
            #[inline]
            pub(crate) fn compare_exchange(
                &self,
                current: $int,
                new: $int,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$int, $int> {
                self.0.compare_exchange(current, new, success, failure)
            }
            #[inline]
            pub(crate) fn compare_exchange_weak(
                &self,
                current: $int,
                new: $int,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$int, $int> {
                self.0.compare_exchange_weak(current, new, success, failure)
            }
            #[inline]
            pub(crate) fn fetch_add(&self, v: $int, order: Ordering) -> $int {
                self.0.fetch_add(v, order)
            }
            #[inline]
            pub(crate) fn fetch_sub(&self, v: $int, order: Ordering) -> $int {
                self.0.fetch_sub(v, order)
            }
            #[inline]
            pub(crate) fn fetch_or(&self, v: $int, order: Ordering) -> $int {
                self.0.fetch_or(v, order)
            }
            #[inline]
            pub(crate) fn fetch_and(&self, v: $int, order: Ordering) -> $int {
                self.0.fetch_and(v, order)
            }
            #[inline]
            pub(crate) fn fetch_max(&self, v: $int, order: Ordering) -> $int {
                self.0.fetch_max(v, order)
            }
        }
    };
}

/// An atomic newtype over `std`'s type in production, with a `const fn new`
/// (statics need it), and over loom's under `cfg(loom)` (whose `new` is not
/// const).
macro_rules! switchable_atomic {
    ($name:ident, $int:ty) => {
        #[cfg(not(loom))]
        atomic_newtype!(
            /// An atomic integer (std's in production, loom's under `cfg(loom)`).
            $name, imp::$name, $int, const
        );
        #[cfg(loom)]
        atomic_newtype!(
            /// An atomic integer (std's in production, loom's under `cfg(loom)`).
            $name, imp::$name, $int,
        );
    };
}

switchable_atomic!(AtomicU32, u32);
switchable_atomic!(AtomicU64, u64);
switchable_atomic!(AtomicI64, i64);

#[cfg(not(loom))]
impl AtomicU32 {
    /// The standard atomic inside, for the futex system calls (rustix takes
    /// `&std::sync::atomic::AtomicU32`).
    pub(crate) fn as_std(&self) -> &std::sync::atomic::AtomicU32 {
        &self.0
    }
}

/// The one bound on every retry loop over shared state. A loop retries when
/// another party changed a word it read (each retry is someone else's
/// progress), so a legitimate run never comes near it; a corrupted or hostile
/// mapping that keeps a loop failing (a candidate that can never be taken, a
/// word that never settles) ends there with the queue reported inconsistent
/// (ENOMEM) instead of a hang. Small under loom, so that a livelock shows as
/// an error in a model rather than as an endless exploration.
pub(crate) const RETRY_LIMIT: usize = if cfg!(loom) { 64 } else { 1 << 20 };

/// Asks the CPU to start loading the cache line at `addr` (a hint: it reads
/// nothing the program sees, writes nothing, and never faults, whatever the
/// address). For lines a later step will need, so that their misses overlap
/// with work instead of following one another. Nothing under loom or off
/// x86_64.
#[inline(always)]
pub(crate) fn prefetch(addr: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    // SAFETY: PREFETCHT0 belongs to SSE, which every x86_64 CPU has; it has
    // no architectural effect and does not fault on any address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8)
    };
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    let _ = addr;
}

/// Spin-loop hint; a yield under loom so that models of spinning terminate.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// An `UnsafeCell` with loom's closure-based access API in both builds.
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T: ?Sized>(
    #[cfg(not(loom))] std::cell::UnsafeCell<T>,
    #[cfg(loom)] loom::cell::UnsafeCell<T>,
);

impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    #[cfg_attr(not(loom), allow(dead_code))]
    pub(crate) fn new(value: T) -> Self {
        #[cfg(not(loom))]
        return UnsafeCell(std::cell::UnsafeCell::new(value));
        #[cfg(loom)]
        return UnsafeCell(loom::cell::UnsafeCell::new(value));
    }

    /// Runs `f` with a shared raw pointer to the contents.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        #[cfg(not(loom))]
        return f(self.0.get());
        #[cfg(loom)]
        return self.0.with(f);
    }

    /// Runs `f` with a mutable raw pointer to the contents.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(not(loom))]
        return f(self.0.get());
        #[cfg(loom)]
        return self.0.with_mut(f);
    }
}

// SAFETY: the cells live in shared memory and are accessed only under the
// ownership protocol of the algorithm that holds them (a cell's bytes are written
// by the one process that owns it and read only after ownership is handed over
// with Release/Acquire); see `cell_pool` and `type_fifo`.
unsafe impl<T: ?Sized + Send> Sync for UnsafeCell<T> {}

/// Bytes in shared memory (message texts), read and written only by the party
/// that owns them under the protocol of `cell_pool` / `type_fifo`.
pub(crate) struct SharedBytes<'a> {
    cells: &'a [UnsafeCell<u8>],
}

impl<'a> SharedBytes<'a> {
    /// Wraps a region of bytes.
    pub(crate) fn new(cells: &'a [UnsafeCell<u8>]) -> Self {
        SharedBytes { cells }
    }

    /// Copies `src` to `off..off + src.len()`.
    ///
    /// # Safety
    /// The caller owns that range: nobody else reads or writes it until the
    /// caller hands it over with a Release store. The range must be in bounds.
    pub(crate) unsafe fn write(&self, off: usize, src: &[u8]) {
        let range = &self.cells[off..off + src.len()];
        #[cfg(not(loom))]
        // SAFETY: `UnsafeCell<u8>` is `repr(transparent)` over `u8`, so the
        // slice is `src.len()` contiguous bytes; the caller owns them (above),
        // and `src` is private memory that cannot overlap the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), range.as_ptr() as *mut u8, src.len())
        };
        #[cfg(loom)]
        for (c, b) in range.iter().zip(src) {
            // SAFETY: as above; loom checks the claim of exclusive access.
            c.with_mut(|p| unsafe { *p = *b });
        }
    }

    /// Copies `off..off + dst.len()` into `dst` (loom builds, where texts
    /// cannot be borrowed in place).
    ///
    /// # Safety
    /// The caller owns that range (nobody writes it meanwhile). In bounds.
    #[cfg(loom)]
    pub(crate) unsafe fn read(&self, off: usize, dst: &mut [u8]) {
        let range = &self.cells[off..off + dst.len()];
        #[cfg(not(loom))]
        // SAFETY: contiguous bytes as in `write`; the owner has exclusive
        // access, so nobody writes them while we copy.
        unsafe {
            std::ptr::copy_nonoverlapping(range.as_ptr() as *const u8, dst.as_mut_ptr(), dst.len())
        };
        #[cfg(loom)]
        for (c, b) in range.iter().zip(dst) {
            // SAFETY: as above; loom checks it.
            *b = c.with(|p| unsafe { *p });
        }
    }

    /// Copies `off..off + dst.len()` into `dst` while another party may be
    /// writing it: a seqlock-style read whose result the caller validates
    /// afterwards (and discards if the owner changed), as crossbeam's
    /// `AtomicCell` does with volatile reads. In bounds.
    ///
    /// # Safety
    /// The range is in bounds; the caller discards `dst` unless it proves,
    /// after the copy, that nobody wrote the range meanwhile.
    #[cfg(not(loom))]
    pub(crate) unsafe fn read_racy(&self, off: usize, dst: &mut [u8]) {
        let range = &self.cells[off..off + dst.len()];
        for (c, d) in range.iter().zip(dst.iter_mut()) {
            // SAFETY: in bounds (slicing above); a volatile read of a byte
            // that may be concurrently written yields some byte value, which
            // the caller validates.
            *d = unsafe { std::ptr::read_volatile(c.0.get() as *const u8) };
        }
    }

    /// Borrows `off..off + len` in place (zero-copy receive).
    ///
    /// # Safety
    /// The caller owns the range for all of `'b` and nobody writes it.
    #[cfg(not(loom))]
    pub(crate) unsafe fn borrow(&self, off: usize, len: usize) -> &[u8] {
        let range = &self.cells[off..off + len];
        // SAFETY: contiguous initialised bytes, nobody writes them for `'b`.
        unsafe { std::slice::from_raw_parts(range.as_ptr() as *const u8, len) }
    }
}

/// Deliberate bugs that the loom models must catch (loom builds only).
///
/// A model that cannot fail proves nothing: each model in `loom-tests` is run
/// once more with one of these switched on, and must then report a failure.
/// The switch is a thread-local of the thread that runs `loom::model` (loom
/// runs every model thread on it), so tests running in parallel do not see
/// each other's mutants.
#[cfg(loom)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutant {
    /// No mutant: the engine as shipped.
    None,
    /// `cell_pool` frees a cell without advancing its generation (no ABA tag).
    PoolNoGeneration,
    /// `type_fifo` takes a message with a load and a store instead of a CAS.
    FifoTakeWithoutCas,
    /// `type_dir` reclaims an entry without looking at the hazards.
    DirIgnoresHazards,
    /// `type_dir` places an entry at a free position with a load and a store
    /// instead of a CAS.
    DirPlacesWithoutCas,
    /// Type-0 and negative receives take the first candidate found instead
    /// of the oldest / lowest.
    SelectFirstFound,
    /// `accounting` reserves with a plain load and store instead of a CAS.
    AccountingLoadStore,
    /// `accounting`'s flush trusts a completion mark of the word's writer's
    /// slot whatever its parity, so a mark of the writer's previous
    /// operation passes for the one that tags the word.
    AccountingMarkSlotOnly,
    /// A sleeper parks without re-checking its condition after announcing
    /// itself.
    SleepWithoutRecheck,
    /// IPC_RMID wakes the senders' word but not the receivers parked on
    /// their own slots' words.
    RmidSkipsSlotWords,
    /// Recovery frees a dead sender's slot without undoing its reservation.
    RecoveryKeepsReservation,
    /// Recovery numbers a dead sender's unreservation without first
    /// recording a reservation applied by the word's tag alone (the sender
    /// killed between its CAS and recording it), so both get the same number.
    RecoveryForgetsTagApplied,
    /// `arrivals` drops a queued message from the index without raising a
    /// doubt, so type-0 receives trust an index that misses it.
    ArrivalsEvictSilently,
    /// A negative-type lookup that finds a stale bit in the lowest-type index
    /// clears it after its re-check of the type instead of before it.
    LowestTypeClearsLate,
    /// A parking receiver publishes its parked state but does not raise the
    /// queue's sleeper count, so senders do not look for it.
    SleeperNotCounted,
    /// A sender wakes the first parked receiver it finds, whatever that
    /// receiver's selector, instead of one that can take its message.
    WakeIgnoresSelector,
    /// The liveness lock of a slot whose owner died reads as held by a live
    /// owner (the kernel's `FUTEX_OWNER_DIED` mark is ignored).
    DeadOwnerLooksAlive,
    /// A firing send frees the `mq_notify` registration before it delivers
    /// the notification (no `FIRING` state), so an unregistration can
    /// return before a notification still on its way.
    NotifyFreedBeforeDelivery,
    /// `cell_pool` takes a cell out of a magazine with a load and a store
    /// instead of a CAS, trusting that its claimed bit keeps others away.
    MagazineTakeWithoutCas,
    /// `cell_pool` takes a cell back out of its owner's free batch with a
    /// load and a store instead of a CAS, trusting that its set bit keeps
    /// others away.
    FreeBatchReuseWithoutCas,
    /// `cell_pool` empties a free batch without clearing its cells' bits.
    FreeBatchFlushKeepsBits,
}

#[cfg(loom)]
std::thread_local! {
    static MUTANT: std::cell::Cell<Mutant> = const { std::cell::Cell::new(Mutant::None) };
}

/// Switches mutant `m` on for models run by this thread (`Mutant::None`: off).
#[cfg(loom)]
pub fn set_mutant(m: Mutant) {
    MUTANT.with(|c| c.set(m));
}

/// Whether mutant `m` is switched on.
#[cfg(loom)]
pub(crate) fn mutant(m: Mutant) -> bool {
    MUTANT.with(|c| c.get()) == m
}

/// The payload of the panic that simulates SIGKILL at a crash point.
#[cfg(loom)]
#[derive(Debug)]
pub struct Crashed;

/// Arms a simulated SIGKILL: the `n`-th crash point the calling thread reaches
/// from now on panics with [`Crashed`] (0: disarmed). Loom runs every model
/// thread on one OS thread, so the countdown is a loom thread-local.
#[cfg(loom)]
pub(crate) fn crash_after(n: u32) {
    CRASH_AT.with(|c| c.set(n));
}

#[cfg(loom)]
loom::thread_local! {
    static CRASH_AT: std::cell::Cell<u32> = std::cell::Cell::new(0);
}

/// A point where a process may be killed between two steps that recovery
/// must be able to finish or undo. Nothing in production builds; under loom,
/// the armed countdown (see [`crash_after`]) may end the thread here.
#[inline(always)]
pub(crate) fn crash_point() {
    #[cfg(loom)]
    CRASH_AT.with(|c| match c.get() {
        0 => {}
        1 => {
            c.set(0);
            std::panic::panic_any(Crashed);
        }
        n => c.set(n - 1),
    });
}

/// Process-local atomics for statics that never live in shared memory and
/// that loom does not model (cached pid, fork generation).
pub(crate) mod local {
    use super::Ordering;
    use std::sync::atomic as imp;

    atomic_newtype!(
        /// A process-local atomic `u32` (never loom's).
        AtomicU32, imp::AtomicU32, u32, const
    );
    atomic_newtype!(
        /// A process-local atomic `u64` (never loom's).
        AtomicU64, imp::AtomicU64, u64, const
    );

    /// A process-local atomic flag (never loom's).
    #[derive(Debug, Default)]
    pub(crate) struct AtomicBool(imp::AtomicBool);

    impl AtomicBool {
        /// A new flag holding `v`.
        pub(crate) const fn new(v: bool) -> Self {
            Self(imp::AtomicBool::new(v))
        }
        pub(crate) fn load(&self, order: Ordering) -> bool {
            self.0.load(order)
        }
        pub(crate) fn store(&self, v: bool, order: Ordering) {
            self.0.store(v, order)
        }
    }
}

/// A cache hint: a function running one x86 instruction on the address of
/// `x`, and nothing elsewhere or under loom. Such hints read and write no
/// memory, registers or flags architecturally.
macro_rules! cache_hint {
    ($(#[$doc:meta])* $name:ident, $insn:literal) => {
        $(#[$doc])*
        #[inline(always)]
        pub(crate) fn $name<T>(x: &T) {
            #[cfg(all(not(loom), target_arch = "x86_64"))]
            // SAFETY: the instruction is a hint with no architectural
            // effect; `x` is a valid reference, so its address is mapped.
            unsafe {
                std::arch::asm!(
                    concat!($insn, " [{0}]"),
                    in(reg) x as *const T,
                    options(nostack, preserves_flags, readonly)
                );
            }
            #[cfg(not(all(not(loom), target_arch = "x86_64")))]
            let _ = x;
        }
    };
}

cache_hint!(
    /// Starts fetching the cache line holding `x` for writing (x86's
    /// `PREFETCHW`), for a line this caller is about to write after work
    /// that does not need it: the fetch overlaps that work. Processors
    /// without it run it as a NOP.
    prefetch_for_write,
    "prefetchw"
);

cache_hint!(
    /// Hints that the cache line holding `x` be moved from this core's
    /// private caches to the shared one (x86's `CLDEMOTE`), for a line this
    /// caller wrote for another core to read next and will not touch again
    /// soon: that core's read then hits the shared cache instead of snooping
    /// ours. A NOP on processors without it (its encoding is in the
    /// reserved-NOP space).
    demote,
    "cldemote"
);
