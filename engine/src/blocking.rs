//! Blocking `msgsnd` / `msgrcv` on a [`QueueState`]: retry the lock-free data
//! path (`transfer`), and between tries spin, then sleep on the right futex
//! word (`wait`), until the operation succeeds, the queue is removed
//! (IPC_RMID), a signal handler runs, or the deadline passes.
//!
//! Written against `&QueueState` and its [`Park`] strategy only, so that the
//! loom models run this very code on a heap state with a modelled futex.
//!
//! # Where a sleeper sleeps
//! A sender waits for space on `space_word` (freed space wakes every such
//! sender, each re-checks); a receiver on its own slot's `wait_state`, after
//! publishing its selector there, so that a send wakes one receiver that can
//! take the message (see `wait`). Before either sleeps it spins or yields
//! while that can pay ([`QueueState::spin_while_it_pays`]).

use crate::error::{RecvError, SendError};
use crate::message::Selector;
use crate::state::QueueState;
use crate::sync::Ordering;
use crate::transfer::{PathError, Taken};
use crate::wait::{self, Park, Woke};
use std::time::Instant;

/// How long a look at the peers stays good (see `peers_recently`).
#[cfg(not(loom))]
const PEERS_FRESH: std::time::Duration = std::time::Duration::from_micros(20);

/// The latest look at the peers of this thread: `(queue header, slot,
/// CPU)`, when, and what it saw.
type PeersSeen = Option<((usize, usize, u32), Instant, wait::Peers)>;

#[cfg(not(loom))]
std::thread_local! {
    static PEERS_SEEN: std::cell::Cell<PeersSeen> = const { std::cell::Cell::new(None) };
}

/// The share of the capacity a run of sends waits for (`spin_for_room`),
/// and that a receiver waiting beside a running sender wants free before it
/// expects that sender to feed it (`spin_while_it_pays`).
#[cfg(not(loom))]
const ROOM_SHARE: u64 = 4;

/// What a caller waits for.
#[derive(Clone, Copy)]
enum Want {
    /// Space for a message (a sender).
    Space,
    /// A message that this selector takes (a receiver).
    Message(Selector),
}

impl Want {
    /// The selector's kind and argument as `wait` records them.
    fn kind_arg(self) -> (u32, i64) {
        match self {
            Want::Space => (wait::KIND_SPACE, 0),
            Want::Message(Selector::Type(t)) => (wait::KIND_TYPE, t),
            Want::Message(Selector::Any) => (wait::KIND_ANY, 0),
            Want::Message(Selector::Except(t)) => (wait::KIND_EXCEPT, t),
            Want::Message(Selector::AtMost(n)) => (wait::KIND_AT_MOST, n),
        }
    }
}

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
    /// Whether IPC_RMID removed the queue.
    pub(crate) fn is_removed(&self) -> bool {
        // SYNC(removed)
        self.header.control.removed.load(Ordering::SeqCst) != 0
    }

    /// IPC_RMID's part in the mapping: flag the queue removed and wake every
    /// sleeper (they return EIDRM).
    pub(crate) fn mark_removed(&self) {
        // SYNC(removed): store, SeqCst fence, then the loads of every slot's
        // `wait_state`, against the sleeper's store of `wait_state`, SeqCst
        // fence (in `wait::begin_park` / `wait::announce`), then load of
        // `removed` (Dekker with fences, which loom checks; it treats SeqCst
        // accesses as AcqRel).
        self.header.control.removed.store(1, Ordering::SeqCst);
        crate::sync::fence(Ordering::SeqCst);
        wait::notify_always(&self.header.space_word, self.park);
        #[cfg(loom)]
        if crate::sync::mutant(crate::sync::Mutant::RmidSkipsSlotWords) {
            return;
        }
        wait::wake_all_receivers(self.header, self.slots, self.park);
    }

    /// Finishes what dead processes left in this queue (their reservations,
    /// the messages they were taking, the cells they held) and wakes every
    /// sleeper if there was any, so that they see the space or messages it
    /// gave back; returns how many slots were recovered.
    ///
    /// Every call that reports counts or refuses for lack of space or
    /// messages runs this first. When nobody died it is a scan of the
    /// attached slots' liveness locks (`slots_high` of them; one load each
    /// of a cache line that changes only when a slot changes hands, so it
    /// stays in the caller's cache), no system call and no `/proc`.
    pub(crate) fn recover_dead(&self) -> usize {
        let n = self.recover_dead_slots();
        if n > 0 {
            wait::notify_always(&self.header.space_word, self.park);
            wait::wake_all_receivers(self.header, self.slots, self.park);
        }
        n
    }

    /// A dead owner's slot `d`, under recovery: out of the sleepers, and any
    /// wake-up spent on it passed on.
    pub(crate) fn forget_dead_sleeper(&self, d: usize) {
        wait::forget_dead_sleeper(&self.slots[d], self.header, self.slots, self.park);
    }

    /// Before sleeping: polls `ready` while a peer runs on another CPU, yields
    /// the CPU while one shares ours (if `may_yield`; else it stops there),
    /// for at most the learnt spin time (see `wait`). `Some` when the wait is
    /// over (`ready` held, or the queue was removed); `None`: sleep.
    ///
    /// A receiver (`for_space` false) polls rather than yields while a sender
    /// runs on another CPU: yielding would let our CPU's peer, a sender too
    /// as often as not, run beside it. With two producers and two consumers
    /// on two CPUs, each CPU running one of each, every consumer otherwise
    /// yielded as soon as it had drained what it takes, every producer as
    /// soon as the queue was full, and the two CPUs ran the two producers
    /// together, then the two consumers together, each pair fighting over
    /// the same lines: 2.8-3.0 M msg/s, against 5.5 M when the producers
    /// shared one CPU and the consumers the other (scratch 2 x 2 stream,
    /// pinned with taskset). It polls only while that sender keeps sending
    /// (the sent count moved since its last look): a sender's state says
    /// running while it waits for a CPU too, and with each producer feeding
    /// the consumer on the other CPU, consumers that polled for preempted
    /// producers kept them from running (unpinned, 2.7-3.7 M msg/s against
    /// 3.3-3.8 M when yielding, 4.1-5.7 M now).
    #[cfg(not(loom))]
    pub(crate) fn spin_while_it_pays(
        &self,
        slot: usize,
        ready: &mut impl FnMut() -> bool,
        may_yield: bool,
        for_space: bool,
    ) -> Option<Result<(), WaitEnd>> {
        /// Polls between two looks at the peers (a poll is a full look for
        /// the message or the space, 60-120 ns).
        const POLLS: u32 = 16;
        let (plain, woken) = self.spin_limits()?;
        let rec = &self.slots[slot];
        let cpu = wait::current_cpu() + 1;
        // Relaxed: read by peers for a heuristic only.
        rec.wait_cpu
            .store(wait::wait_cpu_word(cpu, for_space), Ordering::Relaxed);
        wait::set_spinning(rec);
        let began = Instant::now();
        // The sent word at our last look at it, for `fed` below.
        let mut last_sent = None;
        let outcome = loop {
            if ready() {
                break Some(Ok(()));
            }
            if self.is_removed() {
                break Some(Err(WaitEnd::Removed));
            }
            let peers = self.peers_recently(slot, cpu);
            crate::turns::waited(
                self.header,
                slot,
                !for_space && peers.other_cpu && !peers.same_cpu,
            );
            let limit = if peers.waking { woken } else { plain };
            if began.elapsed() >= limit {
                break None;
            }
            // A full queue feeds nobody: yield then, to whoever would drain
            // it. Nor does a sender that has sent nothing since our last
            // look: it is waiting for a CPU itself (its state says running
            // until it waits), and polling for it keeps it from the one
            // we hold, when it shares ours.
            let fed = !for_space && peers.sender_elsewhere && peers.same_cpu && {
                let counter = self.counter();
                let sent = counter.sent_messages();
                let sending = last_sent.replace(sent).is_none_or(|was| was != sent);
                sending && counter.load().fits(0, self.capacity_but(ROOM_SHARE))
            };
            if peers.same_cpu && may_yield && !fed {
                rustix::thread::sched_yield();
            } else if peers.other_cpu && (!peers.same_cpu || fed) {
                // What a poll finds is the answer: looking again at the top
                // of the loop only delayed the take that follows by a poll.
                if (0..POLLS).any(|_| {
                    let found = ready();
                    if !found {
                        crate::sync::spin_hint();
                    }
                    found
                }) {
                    break Some(Ok(()));
                }
            } else {
                break None; // every peer sleeps: nobody comes soon
            }
        };
        wait::set_running(rec);
        outcome
    }

    /// A sender refused for lack of space, before it waits as usual: while
    /// receivers on other CPUs keep taking messages, spins until the queue
    /// has room for a run of sends rather than for one. Every look at the
    /// counts takes the received word's line from the receiver, which writes
    /// it again on its next message: a sender that sends as soon as one
    /// message fits looks once per message in a full queue, and every
    /// receive's release then misses in its cache.
    ///
    /// Looks are spaced by a doubling number of pauses, up to `LONG_LOOK`.
    /// Returns, for `wait_until` to decide as usual, once `len` bytes fit
    /// with `1 / ROOM_SHARE` of the capacity to spare, once a look
    /// `LONG_LOOK` pauses after the previous one finds the counts unchanged
    /// (nobody is receiving: send now if it fits, else wait), after the
    /// learnt spin time (see `wait::spin_limits`), or at once if no peer
    /// runs on another CPU or a receiver may share ours (waiting as usual
    /// yields to it). Senders sharing our CPU do not stop it: yielding to
    /// one that waits for room too only handed the CPU back and forth, each
    /// turn sending the one message that had room (two producers on one CPU
    /// feeding two consumers on the other: 45 000 `sched_yield` calls per
    /// million messages, 3 300 now).
    #[cfg(not(loom))]
    fn spin_for_room(&self, slot: usize, len: u64) {
        /// Pauses between two looks once they are spaced out (1.5 us on a
        /// machine whose pause takes 23 ns): a receiver that has released
        /// nothing for this long is not streaming.
        const LONG_LOOK: u32 = 64;
        let Some((limit, _)) = self.spin_limits() else {
            return;
        };
        let peers = self.peers_recently(slot, wait::current_cpu() + 1);
        if !peers.other_cpu || peers.receiver_here {
            return;
        }
        let spare = self.capacity_but(ROOM_SHARE);
        let began = Instant::now();
        let mut last = self.counter().load();
        let mut pauses = 1;
        while began.elapsed() < limit {
            for _ in 0..pauses {
                crate::sync::spin_hint();
            }
            let now = self.counter().load();
            if now.fits(len, spare) || (pauses == LONG_LOOK && now == last) {
                return;
            }
            last = now;
            pauses = (pauses * 2).min(LONG_LOOK);
        }
    }

    /// The queue's capacity less `1 / share` of it.
    #[cfg(not(loom))]
    fn capacity_but(&self, share: u64) -> crate::accounting::Capacity {
        let room = self.capacity();
        crate::accounting::Capacity {
            bytes: room.bytes - room.bytes / share,
            msgs: room.msgs - room.msgs / share,
        }
    }

    /// How long a wait may spin on this queue, `(plain, woken)` (see
    /// `wait::spin_limits`); `None` when spinning is off (`SHMQ_SPIN=0`).
    #[cfg(not(loom))]
    fn spin_limits(&self) -> Option<(std::time::Duration, std::time::Duration)> {
        let cap = wait::spin_cap();
        (!cap.is_zero()).then(|| wait::spin_limits(&self.header.wait_tuning, cap))
    }

    /// [`Self::peers`], looked at again only after [`PEERS_FRESH`]: reading
    /// a busy peer's slot takes its cache lines away from it (it writes them
    /// on every operation), which cost a stream of short waits between two
    /// CPUs about a fifth of its messages per second when every wait looked.
    #[cfg(not(loom))]
    fn peers_recently(&self, slot: usize, cpu: u32) -> wait::Peers {
        let key = (self.header as *const _ as usize, slot, cpu);
        let seen = PEERS_SEEN.with(|c| c.get());
        if let Some((k, at, p)) = seen {
            if k == key && at.elapsed() < PEERS_FRESH {
                return p;
            }
        }
        let p = self.peers(slot, cpu);
        PEERS_SEEN.with(|c| c.set(Some((key, Instant::now(), p))));
        p
    }

    /// What the owners of the other claimed slots are doing, seen from `slot`
    /// on CPU `cpu` (plus one).
    #[cfg(not(loom))]
    fn peers(&self, slot: usize, cpu: u32) -> wait::Peers {
        let high = (self.header.slots_high.load(Ordering::Relaxed) as usize).min(self.slots.len());
        let mut peers = wait::Peers::default();
        for (i, rec) in self.slots[..high].iter().enumerate() {
            if i == slot || !crate::slots::in_use(rec) {
                continue;
            }
            // Relaxed: a heuristic; the protocol never depends on it.
            let s = wait::SlotWait(rec.wait_state.load(Ordering::Relaxed));
            peers.add(s, rec.wait_cpu.load(Ordering::Relaxed), cpu);
        }
        peers
    }

    /// Spins while it pays, then sleeps (on `space_word` for `Want::Space`,
    /// on the slot's own word for a message) until `ready()` holds, the queue
    /// is removed, a signal arrives or the deadline passes. `ready` must be
    /// cheap and is re-checked after the sleeper announces itself.
    fn wait_until(
        &self,
        slot: usize,
        want: Want,
        patience: Patience<'_>,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), WaitEnd> {
        #[cfg(not(loom))]
        if let Some(outcome) =
            self.spin_while_it_pays(slot, &mut ready, true, matches!(want, Want::Space))
        {
            return outcome;
        }
        let rec = &self.slots[slot];
        let (kind, arg) = want.kind_arg();
        let outcome = loop {
            let parked = wait::begin_park(rec, self.header, kind, arg);
            let (word, expected) = match want {
                Want::Space => (
                    &*self.header.space_word,
                    wait::announce(&self.header.space_word),
                ),
                Want::Message(_) => (&rec.wait_state, parked),
            };
            if self.is_removed() {
                break self.leave_park(rec, Err(WaitEnd::Removed), &mut ready);
            }
            #[cfg(loom)]
            let skip_recheck = crate::sync::mutant(crate::sync::Mutant::SleepWithoutRecheck);
            #[cfg(not(loom))]
            let skip_recheck = false;
            if !skip_recheck && ready() {
                break self.leave_park(rec, Ok(()), &mut ready);
            }
            let Some(slice) = wait::slice(patience.deadline) else {
                break self.leave_park(rec, Err(WaitEnd::TimedOut), &mut ready);
            };
            // No hazard while asleep: it would keep a drained type's entry
            // from being reclaimed for as long as we sleep.
            self.directory().unprotect(slot);
            let began = Instant::now();
            match self.park.park(word, expected, slice) {
                Woke::Interrupted => {
                    break self.leave_park(rec, Err(WaitEnd::Interrupted), &mut ready)
                }
                Woke::Recheck => {
                    let _ = self.leave_park(rec, Ok(()), &mut ready);
                    if skip_recheck && ready() {
                        break Ok(());
                    }
                    if began.elapsed() >= slice {
                        // A long sleep: whoever holds what we wait for may be
                        // dead. Recover dead slots (cheap when there are none)
                        // and let the caller look for a half-done IPC_RMID.
                        self.recover_dead();
                        (patience.long_sleep)();
                    }
                }
            }
        };
        #[cfg(not(loom))]
        // Relaxed: read by peers for a heuristic only.
        rec.wait_cpu.store(
            wait::wait_cpu_word(wait::current_cpu() + 1, matches!(want, Want::Space)),
            Ordering::Relaxed,
        );
        outcome
    }

    /// Step 4 of a sleeper (see `wait`), whatever ended its park: out of the
    /// sleepers; if it was woken, the wake-up's cost is learnt and, should it
    /// leave with `end` an error while what it waited for is there, passed on.
    fn leave_park(
        &self,
        rec: &crate::layout::SlotRecord,
        end: Result<(), WaitEnd>,
        ready: &mut impl FnMut() -> bool,
    ) -> Result<(), WaitEnd> {
        let prev = wait::end_park(rec, self.header);
        if prev.is_woken() {
            wait::learn_wake(&self.header.wait_tuning);
            if end.is_err() && ready() {
                wait::wake_all_receivers(self.header, self.slots, self.park);
            }
        }
        end
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
    ) -> Result<u64, SendError> {
        loop {
            match self.try_send(slot, mtype, text) {
                Ok(sent_before) => return Ok(sent_before),
                // Full because of what a dead process held: try again.
                Err(PathError::Full) if self.recover_dead() > 0 => continue,
                Err(PathError::Full) if nowait => return Err(SendError::Again),
                Err(PathError::Full) => {
                    let len = text.len() as u64;
                    #[cfg(not(loom))]
                    self.spin_for_room(slot, len);
                    let fits = || self.counter().load().fits(len, self.capacity());
                    self.wait_until(slot, Want::Space, patience, fits)?;
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
    #[inline]
    pub(crate) fn take_blocking(
        &self,
        slot: usize,
        sel: Selector,
        max: usize,
        nowait: bool,
        noerror: bool,
        patience: Patience<'_>,
    ) -> Result<Taken, RecvError> {
        // What the wait's last look found: the take starts from it rather
        // than looking again (after a wait, a look costs a poll's time).
        let mut seen = None;
        loop {
            match self.try_take(slot, sel, max, noerror, seen.take()) {
                Ok(t) => return Ok(t),
                Err(PathError::TooBig) => {
                    // The message stays: if a send woke us for it, another
                    // sleeper with a larger buffer may take it (the kernel's
                    // pipelined_send goes on to the next receiver too).
                    wait::pass_on(self.header, self.slots, self.park);
                    return Err(RecvError::TooBig);
                }
                // Empty but for what a dead process held: look again.
                Err(PathError::Empty) if self.recover_dead() > 0 => continue,
                Err(PathError::Empty) if nowait => return Err(RecvError::NoMessage),
                Err(PathError::Empty) => {
                    let ready = || {
                        seen = self.peek_keeping_hazard(slot, sel);
                        seen.is_some()
                    };
                    self.wait_until(slot, Want::Message(sel), patience, ready)?;
                }
                Err(_) => return Err(RecvError::NoMemory),
            }
            if self.is_removed() {
                return Err(RecvError::Removed);
            }
        }
    }
}
