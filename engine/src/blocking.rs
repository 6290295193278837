//! Blocking `msgsnd` / `msgrcv` on a [`QueueState`]: retry the lock-free data
//! path (`transfer`), and between tries spin, then sleep on the right futex
//! word (`wait`), until the operation succeeds, the queue is removed
//! (IPC_RMID), a signal handler runs, or the deadline passes.
//!
//! Written against `&QueueState` and its [`Park`] strategy only, so that the
//! loom models run this very code on a heap state with a modelled futex.
//!
//! # Which word a sleeper waits on
//! A sender waits for space on `space_word`; a receiver of one type on that
//! type's `arrived` word (home position of the type in the directory); any
//! other receiver on `any_word`. A sleeper records its word in its slot
//! (`SlotRecord::waiting_on`) so that IPC_RMID can wake exactly the words
//! somebody sleeps on, without waking every per-type word.

use crate::error::{RecvError, SendError};
use crate::message::Selector;
use crate::state::QueueState;
use crate::sync::{AtomicU32, Ordering};
use crate::transfer::{PathError, Taken};
use crate::wait::{self, Park, Woke};
use std::time::Instant;

/// `SlotRecord::waiting_on` values: which futex word a sleeper waits on.
pub(crate) const WORD_SPACE: u64 = 1;
/// Receivers of type 0, negative types and MSG_EXCEPT.
pub(crate) const WORD_ANY: u64 = 2;
/// `WORD_ARRIVED + home` for receivers of one type.
pub(crate) const WORD_ARRIVED: u64 = 3;

/// How a wait ended without its condition becoming true.
pub(crate) enum WaitEnd {
    Removed,
    Interrupted,
    TimedOut,
}

impl From<WaitEnd> for SendError {
    fn from(e: WaitEnd) -> Self {
        match e {
            WaitEnd::Removed => SendError::Removed,
            WaitEnd::Interrupted => SendError::Interrupted,
            WaitEnd::TimedOut => SendError::TimedOut,
        }
    }
}

impl From<WaitEnd> for RecvError {
    fn from(e: WaitEnd) -> Self {
        match e {
            WaitEnd::Removed => RecvError::Removed,
            WaitEnd::Interrupted => RecvError::Interrupted,
            WaitEnd::TimedOut => RecvError::TimedOut,
        }
    }
}

/// How long a blocking call may wait, and what it does after each long
/// sleep.
#[derive(Clone, Copy)]
pub(crate) struct Patience<'f> {
    /// Give up with a timeout at this instant (`None`: never).
    pub(crate) deadline: Option<Instant>,
    /// Runs after each sleep that lasted a whole slice (about half a
    /// second): the caller's chance to finish what a dead process left half
    /// done outside this queue (see `Namespace::finish_half_done`).
    pub(crate) long_sleep: &'f dyn Fn(),
}

impl Patience<'_> {
    /// Waits until `deadline` with nothing to do on long sleeps (the loom
    /// models, which have no namespace).
    #[cfg(loom)]
    pub(crate) fn until(deadline: Option<Instant>) -> Patience<'static> {
        Patience {
            deadline,
            long_sleep: &|| {},
        }
    }
}

impl QueueState<'_> {
    fn word(&self, id: u64) -> Option<&AtomicU32> {
        match id {
            WORD_SPACE => Some(&self.header.space_word),
            WORD_ANY => Some(&self.header.any_word),
            i if i >= WORD_ARRIVED => self.arrived.get((i - WORD_ARRIVED) as usize),
            _ => None,
        }
    }

    /// Whether IPC_RMID removed the queue.
    pub(crate) fn is_removed(&self) -> bool {
        // SYNC(removed)
        self.header.control.removed.load(Ordering::SeqCst) != 0
    }

    /// IPC_RMID's part in the mapping: flag the queue removed and wake every
    /// sleeper (they return EIDRM).
    pub(crate) fn mark_removed(&self) {
        // SYNC(removed): store, SeqCst fence, then the loads of every slot's
        // `waiting_on`, against the sleeper's store of `waiting_on`, SeqCst
        // fence (in `wait::announce`), then load of `removed` (Dekker with
        // fences, which loom checks; it treats SeqCst accesses as AcqRel).
        self.header.control.removed.store(1, Ordering::SeqCst);
        crate::sync::fence(Ordering::SeqCst);
        wait::notify_always(&self.header.space_word, self.park);
        wait::notify_always(&self.header.any_word, self.park);
        let high = (self.header.slots_high.load(Ordering::SeqCst) as usize).min(self.slots.len());
        for rec in &self.slots[..high] {
            // SYNC(removed): after the fence above.
            #[cfg(loom)]
            if crate::sync::mutant(crate::sync::Mutant::RmidSkipsTypeWords) {
                continue;
            }
            if let Some(w) = self.word(rec.waiting_on.load(Ordering::SeqCst)) {
                wait::notify_always(w, self.park);
            }
        }
    }

    /// Spins, then sleeps on futex word `word_id` until `ready()` holds, the
    /// queue is removed, a signal arrives or the deadline passes. `ready` must be
    /// cheap and is re-checked after the sleeper announces itself.
    fn wait_until(
        &self,
        slot: usize,
        word_id: u64,
        patience: Patience<'_>,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), WaitEnd> {
        let word = self.word(word_id).expect("valid word id");
        for _ in 0..wait::spin_budget() {
            if ready() {
                return Ok(());
            }
            if self.is_removed() {
                return Err(WaitEnd::Removed);
            }
            crate::sync::spin_hint();
        }
        let rec = &self.slots[slot];
        let outcome = loop {
            // SYNC(removed): see `mark_removed`; the fence is announce's.
            rec.waiting_on.store(word_id, Ordering::SeqCst);
            let v = wait::announce(word);
            if self.is_removed() {
                break Err(WaitEnd::Removed);
            }
            #[cfg(loom)]
            let skip_recheck = crate::sync::mutant(crate::sync::Mutant::SleepWithoutRecheck);
            #[cfg(not(loom))]
            let skip_recheck = false;
            if !skip_recheck && ready() {
                break Ok(());
            }
            let Some(slice) = wait::slice(patience.deadline) else {
                break Err(WaitEnd::TimedOut);
            };
            let began = Instant::now();
            match self.park.park(word, v, slice) {
                Woke::Interrupted => break Err(WaitEnd::Interrupted),
                Woke::Recheck => {
                    if skip_recheck && ready() {
                        break Ok(());
                    }
                    if began.elapsed() >= slice {
                        // A long sleep: whoever holds what we wait for may be
                        // dead. Recover dead slots (cheap when there are none)
                        // and let the caller look for a half-done IPC_RMID.
                        self.recover_dead_slots();
                        (patience.long_sleep)();
                    }
                }
            }
        };
        rec.waiting_on.store(0, Ordering::Relaxed);
        outcome
    }

    /// `msgsnd` from `slot` once the caller has validated the arguments and
    /// permissions: retries until sent, waiting for space unless `nowait`.
    pub(crate) fn send_blocking(
        &self,
        slot: usize,
        mtype: i64,
        text: &[u8],
        nowait: bool,
        patience: Patience<'_>,
    ) -> Result<(), SendError> {
        loop {
            match self.try_send(slot, mtype, text) {
                Ok(()) => return Ok(()),
                Err(PathError::Full) if nowait => return Err(SendError::Again),
                Err(PathError::Full) => {
                    let len = text.len() as u64;
                    let fits = || {
                        let q = self.header.control.qbytes.load(Ordering::Relaxed);
                        self.counter().load().fits(len, q)
                    };
                    self.wait_until(slot, WORD_SPACE, patience, fits)?;
                }
                Err(_) => return Err(SendError::NoMemory),
            }
            if self.is_removed() {
                return Err(SendError::Removed);
            }
        }
    }

    /// The taking half of `msgrcv` from `slot`: retries until a message `sel`
    /// selects is taken (the caller then copies its text and calls
    /// `complete_receive`), waiting for one unless `nowait` (`noerror`:
    /// MSG_NOERROR, truncate rather than E2BIG).
    pub(crate) fn take_blocking(
        &self,
        slot: usize,
        sel: Selector,
        max: usize,
        nowait: bool,
        noerror: bool,
        patience: Patience<'_>,
    ) -> Result<Taken, RecvError> {
        let word_id = match sel {
            Selector::Type(t) => WORD_ARRIVED + self.directory().home(t) as u64,
            _ => WORD_ANY,
        };
        loop {
            match self.try_take(slot, sel, max, noerror) {
                Ok(t) => return Ok(t),
                Err(PathError::TooBig) => return Err(RecvError::TooBig),
                Err(PathError::Empty) if nowait => return Err(RecvError::NoMessage),
                Err(PathError::Empty) => {
                    let ready = || self.peek(slot, sel);
                    self.wait_until(slot, word_id, patience, ready)?;
                }
                Err(_) => return Err(RecvError::NoMemory),
            }
            if self.is_removed() {
                return Err(RecvError::Removed);
            }
        }
    }
}
