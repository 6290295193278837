//! Attachment slots: who is using a queue, and what each one is doing.
//!
//! Each thread that operates on a queue owns one slot of the queue's table
//! (claimed on its first operation, released when the thread exits or the
//! queue is gone). The slot's `state` word names the owner:
//!
//! ```text
//! state = pid | status << 32 | gen << 40
//! FREE --claim--> ACTIVE(pid) --release--> FREE(gen + 1)
//!                   \--owner dead--> RECOVERING(helper pid) --done--> FREE(gen + 1)
//! ```
//!
//! Before each step that nobody else could undo on its behalf, the owner writes
//! in its record what it is doing (`phase`, `op_node`, `op_bytes`); if it dies,
//! whoever finds the slot with a dead owner finishes or undoes that step
//! (`recovery`).
//!
//! Who is alive is the slot's robust lock (`liveness`): the owner takes it
//! right after its claim and gives it back right after its release; the
//! kernel marks it when the owner dies. A recoverer takes the dead owner's
//! lock (so that exactly one process recovers a slot, and a recoverer that
//! dies is noticed the same way), then marks the slot `RECOVERING`, recovers
//! it, frees it and gives the lock back. The windows between a claim and its
//! lock, and between a release and its unlock, are covered as follows: a
//! `FREE` slot needs no recovery whatever its lock says (the next claimer
//! takes a dead releaser's lock over), and an `ACTIVE` slot whose lock is
//! free (its claimer died before it locked) falls back to the pid and start
//! time (`process::is_alive`, which reads `/proc`: only in that window).

use crate::layout::{NodeRef, QueueHeader, SlotRecord};
use crate::liveness::{Owner, Take};
use crate::process;
use crate::sync::Ordering;

/// Slot statuses (bits 32..40 of `state`).
pub(crate) const FREE: u64 = 0;
pub(crate) const ACTIVE: u64 = 1;
pub(crate) const RECOVERING: u64 = 2;

pub(crate) fn pid_of(s: u64) -> u32 {
    s as u32
}
pub(crate) fn status_of(s: u64) -> u64 {
    (s >> 32) & 0xff
}
fn gen_of(s: u64) -> u64 {
    s >> 40
}
fn make(pid: u32, status: u64, gen: u64) -> u64 {
    pid as u64 | status << 32 | (gen & 0xff_ffff) << 40
}

/// What a slot's owner is doing: `kind | acct_seq << 8` in `phase`.
pub(crate) mod phase {
    /// Between operations.
    pub(crate) const IDLE: u64 = 0;
    /// Sending: reserving op `k` on the sent word, then filling and linking
    /// `op_node`.
    pub(crate) const SEND: u64 = 1;
    /// Receiving `op_node`: taking it, then releasing it as op `k` on the
    /// received word.
    pub(crate) const RECV: u64 = 2;
    /// Taking back reservation op `k` (on the sent word) for a message that
    /// never got linked: its sender after a failed allocation, or recovery.
    pub(crate) const UNRESERVE: u64 = 3;

    pub(crate) fn make(kind: u64, k: u64) -> u64 {
        kind | k << 8
    }
    pub(crate) fn kind(p: u64) -> u64 {
        p & 0xff
    }
    pub(crate) fn seq(p: u64) -> u64 {
        p >> 8
    }
}

/// Records the start of an operation in `rec`. Release stores: recovery reads
/// them only after the owner is dead, and must see them in this order.
pub(crate) fn begin(rec: &SlotRecord, kind: u64, k: u64, bytes: u64, node: NodeRef) {
    rec.op_bytes.store(bytes, Ordering::Relaxed);
    rec.op_node.store(node.0, Ordering::Relaxed);
    // SYNC(phase): Release, so that whoever reads the phase with Acquire
    // (recovery) sees the fields it governs.
    rec.phase.store(phase::make(kind, k), Ordering::Release);
}

/// Records the node the current operation holds.
pub(crate) fn hold(rec: &SlotRecord, node: NodeRef) {
    // SYNC(phase): Release, read by recovery with Acquire.
    rec.op_node.store(node.0, Ordering::Release);
}

/// The operation is over.
pub(crate) fn end(rec: &SlotRecord) {
    // SYNC(phase)
    rec.phase.store(phase::IDLE, Ordering::Release);
}

/// Claims a free slot for this thread and takes its liveness lock; `None` if
/// every slot is in use.
pub(crate) fn claim(header: &QueueHeader, slots: &[SlotRecord]) -> Option<usize> {
    for (i, rec) in slots.iter().enumerate() {
        let s = rec.state.load(Ordering::Relaxed);
        if status_of(s) != FREE {
            continue;
        }
        // SYNC(slot_free): Acquire pairs with the Release of `release`, so the
        // previous owner's (or recoverer's) record writes happen before ours.
        if !take_over(rec, s, ACTIVE, &rec.start_time) {
            continue;
        }
        // The slot is ours; nobody takes a lock of an ACTIVE slot whose owner
        // is alive, so an unlocked lock may be (re)initialised.
        if rec.live.owner() == Owner::None {
            rec.live.prepare();
        }
        if rec.live.try_take() == Take::Busy {
            // A recoverer of the previous owner has freed the slot and not
            // yet given its lock back: leave the slot to the next claimer.
            release_state(rec);
            continue;
        }
        // SeqCst: a reclaimer that scans hazards up to `slots_high` after
        // this must include our slot (see `type_dir::slots_in_use`).
        header.slots_high.fetch_max(i as u32 + 1, Ordering::SeqCst);
        return Some(i);
    }
    None
}

/// Moves slot `rec` from state `s` to `status` owned by this process, and
/// records our start time in `start` (the field that names who holds it).
fn take_over(rec: &SlotRecord, s: u64, status: u64, start: &crate::sync::AtomicU64) -> bool {
    // SYNC(slot_free): Acquire, see `claim` and `claim_if_dead`.
    let taken = rec
        .state
        .compare_exchange(
            s,
            make(process::pid(), status, gen_of(s)),
            Ordering::Acquire,
            Ordering::Relaxed,
        )
        .is_ok();
    if taken {
        start.store(process::own_start_time(), Ordering::Relaxed);
    }
    taken
}

/// Gives slot `rec` back (its owner or recoverer is done with it; its record
/// is idle and holds no hazard), then its liveness lock.
///
/// A lock that could not be given back safely (see `liveness`) stays held,
/// and its mapping stays mapped; the kernel marks it when the thread exits.
pub(crate) fn release(rec: &SlotRecord) {
    release_state(rec);
    let _ = rec.live.give_back();
}

fn release_state(rec: &SlotRecord) {
    let s = rec.state.load(Ordering::Relaxed);
    rec.start_time.store(0, Ordering::Relaxed);
    rec.helper_start.store(0, Ordering::Relaxed);
    rec.waiting_on.store(0, Ordering::Relaxed);
    // SYNC(slot_free): Release, see `claim`.
    let _ = rec.state.compare_exchange(
        s,
        make(0, FREE, gen_of(s).wrapping_add(1)),
        Ordering::Release,
        Ordering::Relaxed,
    );
}

/// Whether slot `rec` holds a record that a dead owner (or recoverer) left:
/// its lock says so (one load), or, in the window before a claimer's lock,
/// its pid and start time do. `false` for free slots and live owners.
pub(crate) fn owner_dead(rec: &SlotRecord) -> bool {
    match rec.live.owner() {
        Owner::Alive => false,
        owner => {
            // Acquire: pairs with SYNC(slot_free) / the claim CAS.
            let s = rec.state.load(Ordering::Acquire);
            match (status_of(s), owner) {
                (FREE, _) => false,
                (_, Owner::Died) => true,
                _ => !claimer_alive(rec, s),
            }
        }
    }
}

/// For an `ACTIVE` / `RECOVERING` slot whose lock nobody holds: whether the
/// process that claimed it may still be about to take it.
fn claimer_alive(rec: &SlotRecord, s: u64) -> bool {
    let start = match status_of(s) {
        ACTIVE => rec.start_time.load(Ordering::Relaxed),
        _ => rec.helper_start.load(Ordering::Relaxed),
    };
    pid_of(s) == process::pid() || process::is_alive(pid_of(s), start)
}

/// If the owner (or recoverer) of slot `rec` is dead, takes its lock and
/// claims the slot for recovery by this process, and returns `true`; the
/// caller recovers it and then calls [`release`].
pub(crate) fn claim_if_dead(rec: &SlotRecord) -> bool {
    if !owner_dead(rec) {
        return false;
    }
    let took = rec.live.try_take();
    if took == Take::Busy {
        return false; // another recoverer was first
    }
    // We hold the lock: nobody else recovers this slot now, and a claimer
    // that takes it over meanwhile finds the lock busy and lets go. Look
    // again at what it holds (Acquire: the dead owner's record writes
    // happen before our recovery).
    let s = rec.state.load(Ordering::Acquire);
    let dead = match status_of(s) {
        // A lock taken free (no mark from the kernel) was its claimer's,
        // dead before it locked: trust the claimer's pid once more.
        ACTIVE | RECOVERING => took == Take::FromDead || !claimer_alive(rec, s),
        _ => false, // free (a dead releaser's lock), or corrupted
    };
    if !dead {
        let _ = rec.live.give_back();
        return false;
    }
    if take_over(rec, s, RECOVERING, &rec.helper_start) {
        return true;
    }
    let _ = rec.live.give_back();
    false
}

/// Whether slot `rec` is claimed by anyone (for `stat`).
pub(crate) fn in_use(rec: &SlotRecord) -> bool {
    status_of(rec.state.load(Ordering::Relaxed)) != FREE
}
