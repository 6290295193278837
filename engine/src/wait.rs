//! Sleeping and waking: the waiting policy (spin, hand the CPU over, or
//! sleep) and the two futex protocols that sleepers use.
//!
//! # Senders: a counter with a waiter bit (`space_word`)
//! A futex word is `count << 1 | waiters`. A sleeper
//! 1. sets the waiter bit (`fetch_or`, SeqCst) and remembers the word's value,
//! 2. re-checks its condition (space in the queue, the removed flag) —
//!    *after* step 1, or a wake-up could fall between them —,
//! 3. `FUTEX_WAIT`s for the word to differ from the remembered value.
//!
//! A waker, after it released space, issues a SeqCst fence and loads the
//! word: if the waiter bit is clear, no one can be between steps 1 and 3
//! without seeing its change, so it makes no system call at all; if it is set,
//! it bumps the count, clearing the bit, and `FUTEX_WAKE`s everyone on the
//! word (freed space may let several senders in; each re-checks). This is the
//! "waiter count raised before the last re-check" rule (`docs/design.md`), with
//! a one-bit count (a stale set bit costs one spurious wake, never a lost one).
//!
//! # Receivers: a word per sleeper, woken one at a time ([`SlotWait`])
//! One message can be taken by one receiver, so a send wakes at most one
//! sleeper, and only one whose selector takes the message (as the kernel's
//! `pipelined_send` does). Each receiver sleeps on its own slot's
//! `wait_state`, where it has published what it waits for:
//! 1. stores its `msgtyp` in `waiting_on` and its parked state (selector kind,
//!    a new generation) in `wait_state`, raises `recv_sleepers`, fence;
//! 2. re-checks (the message it wants, the removed flag);
//! 3. `FUTEX_WAIT`s on `wait_state` while it still holds the parked value;
//! 4. on the way out swaps `wait_state` back to running and lowers
//!    `recv_sleepers`.
//!
//! A sender, after it linked a message, fences and loads `recv_sleepers`:
//! zero, and it makes no system call and reads no slot. Otherwise it looks for
//! a parked receiver whose selector takes the message, moves its word from
//! parked to woken with a CAS (so two senders never spend their wake-ups on the
//! same sleeper while another sleeps on) and `FUTEX_WAKE`s it. The generation
//! in the word makes the CAS fail if the sleeper has woken and parked again
//! since the sender read its selector. A woken receiver that leaves without a
//! message (signal, timeout) while one is there for it passes the wake-up on
//! (to every parked receiver: a rare path), so no message waits beside a
//! sleeper that could take it.
//!
//! # The policy: spin only where spinning can pay
//! Before a caller sleeps it looks at the other slots: each records which CPU
//! its owner last ran on and whether it is running, spinning, parked, or just
//! woken. While a peer that could satisfy us runs on **another** CPU, we
//! poll; while one shares **our** CPU we `sched_yield` to it instead (it
//! cannot make progress while we spin); when every peer sleeps, we sleep at
//! once. Spinning lasts a time, not a count of polls: the cost of a wake-up
//! learnt on this queue ([`crate::layout::WaitTuning`], a moving average of
//! the latencies that woken receivers measure), capped at [`SPIN_CAP`] (so a
//! caller waiting for something that never comes sleeps within about 50 µs
//! and then costs no CPU), longer only while a peer we woke is on its way
//! (it will run within about one wake-up's latency, and then answer).
//!
//! # Why always a timeout
//! An untimed `FUTEX_WAIT` interrupted by a handler installed with
//! `SA_RESTART` is silently restarted by the kernel, but System V message calls
//! must return EINTR whatever the handler's flags (signal(7)); a timed wait is
//! never restarted. Sleepers therefore always pass a timeout (at most
//! [`MAX_SLEEP`]), which also lets them notice, without help, a queue removed or
//! a peer that died while it held what they wait for.
//!
//! The system calls sit behind [`Park`] so that loom can replace them.

use crate::layout::{QueueHeader, SlotRecord, WaitTuning};
use crate::sync::{fence, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Longest single sleep; sleepers re-check their condition at least this often.
pub(crate) const MAX_SLEEP: Duration = Duration::from_millis(500);

/// Why a park returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Woke {
    /// Woken, value changed, or the maximum sleep passed: re-check.
    Recheck,
    /// A signal handler ran.
    Interrupted,
}

/// Blocking primitives, as a strategy (loom swaps in a model).
pub(crate) trait Park {
    /// Sleeps while `word == expected`, at most `timeout`.
    fn park(&self, word: &AtomicU32, expected: u32, timeout: Duration) -> Woke;
    /// Wakes every sleeper on `word`.
    fn unpark_all(&self, word: &AtomicU32);
}

/// The strategy this build sleeps with.
#[cfg(not(loom))]
pub(crate) type Parker = Futex;
/// The strategy this build sleeps with.
#[cfg(loom)]
pub(crate) type Parker = ModelFutex;

/// The futex, shared between processes (never `FUTEX_PRIVATE`).
///
/// Two ways to sleep, which differ only when a signal handler runs:
/// [`Futex::PLAIN`] (`FUTEX_WAIT` with a relative timeout, which the kernel
/// never restarts: `EINTR` whatever the handler's flags, System V's rule)
/// and [`Futex::RESTARTING`] (`futex_waitv` with an absolute deadline, which
/// the kernel restarts after a handler installed with `SA_RESTART`, keeping
/// the deadline, and otherwise ends with `EINTR`: POSIX queues' rule for
/// `mq_send` / `mq_receive`).
#[cfg(not(loom))]
pub(crate) struct Futex {
    restart: bool,
}

#[cfg(not(loom))]
impl Futex {
    /// Interrupted by every signal handler (System V queues).
    pub(crate) const PLAIN: Futex = Futex { restart: false };
    /// Restarted after an `SA_RESTART` handler (POSIX queues; Linux 5.16
    /// or later, `PLAIN` on older kernels).
    pub(crate) const RESTARTING: Futex = Futex { restart: true };

    /// `futex_waitv` on `word` until `timeout` from now (an absolute
    /// `CLOCK_MONOTONIC` deadline, so that a restart keeps it); `None` if
    /// the kernel has no `futex_waitv`.
    fn park_restarting(&self, word: &AtomicU32, expected: u32, timeout: Duration) -> Option<Woke> {
        use rustix::thread::futex;
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let end_ns = now.tv_nsec as u128 + timeout.as_nanos();
        let ts = rustix::time::Timespec {
            tv_sec: now.tv_sec + (end_ns / 1_000_000_000) as i64,
            tv_nsec: (end_ns % 1_000_000_000) as _,
        };
        let mut w = futex::Wait::new();
        w.val = expected as u64;
        w.uaddr = futex::WaitPtr::new(word.as_std() as *const _ as *mut std::ffi::c_void);
        w.flags = futex::WaitFlags::SIZE_U32;
        match futex::waitv(
            &[w],
            futex::WaitvFlags::empty(),
            Some(&ts),
            rustix::time::ClockId::Monotonic,
        ) {
            Err(rustix::io::Errno::NOSYS) => None,
            Err(rustix::io::Errno::INTR) => Some(Woke::Interrupted),
            Ok(_) => {
                // Relaxed: a statistic.
                WAKE_UPS.fetch_add(1, Ordering::Relaxed);
                Some(Woke::Recheck)
            }
            _ => Some(Woke::Recheck),
        }
    }
}

/// `FUTEX_WAIT`s of this process that ended because someone woke them (not
/// a timeout, a signal or a changed value): what the wake-up tests count.
#[cfg(not(loom))]
static WAKE_UPS: crate::sync::local::AtomicU64 = crate::sync::local::AtomicU64::new(0);

/// How many of this process's futex sleeps (in any queue) ended with a
/// wake-up, since it started. For tests and benchmarks that count wake-ups.
#[cfg(not(loom))]
pub fn futex_wake_ups() -> u64 {
    // Relaxed: a statistic.
    WAKE_UPS.load(Ordering::Relaxed)
}

#[cfg(not(loom))]
impl Park for Futex {
    fn park(&self, word: &AtomicU32, expected: u32, timeout: Duration) -> Woke {
        use rustix::thread::futex;
        if self.restart {
            if let Some(woke) = self.park_restarting(word, expected, timeout) {
                return woke;
            }
        }
        let ts = rustix::time::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        match futex::wait(word.as_std(), futex::Flags::empty(), expected, Some(&ts)) {
            Err(rustix::io::Errno::INTR) => Woke::Interrupted,
            Ok(_) => {
                // Relaxed: a statistic.
                WAKE_UPS.fetch_add(1, Ordering::Relaxed);
                Woke::Recheck
            }
            _ => Woke::Recheck,
        }
    }

    fn unpark_all(&self, word: &AtomicU32) {
        let _ = rustix::thread::futex::wake(
            word.as_std(),
            rustix::thread::futex::Flags::empty(),
            i32::MAX as u32,
        );
    }
}

/// The futex as loom models it: `park` compares the word and sleeps under one
/// lock, `unpark_all` wakes under the same lock, which is the atomicity the
/// kernel's futex hash-bucket lock gives `FUTEX_WAIT` against `FUTEX_WAKE`.
/// One condition variable serves every word, so a model sleeper goes back to
/// sleep until its own word has changed (every waker here changes the word
/// before it wakes it, so a real futex sleeper woken with its word unchanged
/// would only re-check and sleep again). Timeouts are not modelled: a model
/// sleeper sleeps until woken, so a lost wake-up shows as a deadlock, which
/// loom reports.
#[cfg(loom)]
#[derive(Default)]
pub(crate) struct ModelFutex {
    lock: loom::sync::Mutex<()>,
    woken: loom::sync::Condvar,
}

#[cfg(loom)]
impl Park for ModelFutex {
    fn park(&self, word: &AtomicU32, expected: u32, _timeout: Duration) -> Woke {
        let mut guard = self.lock.lock().unwrap();
        // Relaxed would do for the kernel's compare; SeqCst keeps the model no
        // weaker than the futex's full barrier.
        while word.load(Ordering::SeqCst) == expected {
            guard = self.woken.wait(guard).unwrap();
        }
        Woke::Recheck
    }

    fn unpark_all(&self, _word: &AtomicU32) {
        let _guard = self.lock.lock().unwrap();
        self.woken.notify_all();
    }
}

/// Step 1 of a sleeper: announce ourselves; returns the value to wait on.
pub(crate) fn announce(word: &AtomicU32) -> u32 {
    // SYNC(waiter_bit): SeqCst RMW then SeqCst fence before the re-check,
    // against the waker's change, SeqCst fence, load of the word (Dekker):
    // either the waker sees our bit or our re-check sees its change.
    let v = word.fetch_or(1, Ordering::SeqCst) | 1;
    fence(Ordering::SeqCst);
    v
}

/// The waker's side: after a change a sleeper may wait for.
pub(crate) fn notify(word: &AtomicU32, park: &impl Park) {
    notify_each(&[word], park)
}

/// [`notify`] for several words after one change (a send wakes its type's
/// receivers and the type-0 ones): one fence serves them all.
pub(crate) fn notify_each(words: &[&AtomicU32], park: &impl Park) {
    // SYNC(waiter_bit)
    fence(Ordering::SeqCst);
    for word in words {
        wake_if_announced(word, park);
    }
}

/// After the waker's fence: wake `word`'s sleepers if one announced itself.
fn wake_if_announced(word: &AtomicU32, park: &impl Park) {
    let mut v = word.load(Ordering::SeqCst);
    if v & 1 == 0 {
        return; // nobody sleeps: no system call
    }
    loop {
        // +1 clears the bit and carries into the count.
        match word.compare_exchange(v, v.wrapping_add(1), Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => break,
            Err(now) if now & 1 == 0 => break, // another waker did it
            Err(now) => v = now,
        }
    }
    park.unpark_all(word);
}

/// Wakes every sleeper on `word` whether or not the bit is set (IPC_RMID).
pub(crate) fn notify_always(word: &AtomicU32, park: &impl Park) {
    word.fetch_add(2, Ordering::SeqCst);
    park.unpark_all(word);
}

/// The remaining time until `deadline`, capped at [`MAX_SLEEP`]; `None` once
/// the deadline has passed.
pub(crate) fn slice(deadline: Option<Instant>) -> Option<Duration> {
    match deadline {
        None => Some(MAX_SLEEP),
        Some(d) => {
            let now = Instant::now();
            (d > now).then(|| (d - now).min(MAX_SLEEP))
        }
    }
}

/// A slot's waiting state: the value of `SlotRecord::wait_state`.
///
/// ```text
/// gen << 8 | kind << 2 | status
/// status: RUNNING 0, SPINNING 1, PARKED 2, WOKEN 3
/// kind (when PARKED): what the owner waits for, see the `KIND_*` values
/// RUNNING --spin--> SPINNING --> PARKED(gen + 1, kind) --waker's CAS--> WOKEN
///    ^----------------------owner's swap, from any of them------------------'
/// ```
/// Only the owner moves its slot out of RUNNING and back; another process
/// only moves it from PARKED to WOKEN (a waker, or IPC_RMID), or back to
/// RUNNING once the owner is dead (recovery). `gen` changes with every park,
/// so a waker's CAS from a parked value it read fails once the owner has left
/// that park, whatever it parked for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotWait(pub(crate) u32);

/// Sending: waits for space (sleeps on `space_word`, not on its slot).
pub(crate) const KIND_SPACE: u32 = 1;
/// Receiving one type (`waiting_on` = the type).
pub(crate) const KIND_TYPE: u32 = 2;
/// Receiving any type.
pub(crate) const KIND_ANY: u32 = 3;
/// Receiving any type but one (`waiting_on` = that type).
pub(crate) const KIND_EXCEPT: u32 = 4;
/// Receiving the lowest type up to a bound (`waiting_on` = the bound).
pub(crate) const KIND_AT_MOST: u32 = 5;

const RUNNING: u32 = 0;
const SPINNING: u32 = 1;
const PARKED: u32 = 2;
const WOKEN: u32 = 3;

impl SlotWait {
    fn status(self) -> u32 {
        self.0 & 3
    }
    fn kind(self) -> u32 {
        (self.0 >> 2) & 0x3f
    }
    fn gen(self) -> u32 {
        self.0 >> 8
    }
    fn with(self, status: u32) -> SlotWait {
        SlotWait(self.0 & !0xff | status)
    }
    fn parked_next(self, kind: u32) -> SlotWait {
        SlotWait((self.gen().wrapping_add(1) & 0xff_ffff) << 8 | kind << 2 | PARKED)
    }
    /// Parked, for a message (not for space).
    pub(crate) fn is_parked_receiver(self) -> bool {
        self.status() == PARKED && self.kind() != KIND_SPACE
    }
    /// Parked for anything.
    pub(crate) fn is_parked(self) -> bool {
        self.status() == PARKED
    }
    /// Woken by someone and not yet running again: it will run soon.
    pub(crate) fn is_woken(self) -> bool {
        self.status() == WOKEN
    }
    /// Running its operations: neither waiting nor asleep.
    pub(crate) fn is_running(self) -> bool {
        self.status() == RUNNING
    }
    /// Counted in `recv_sleepers` (parked for a message, or woken from it).
    fn counts_as_sleeper(self) -> bool {
        self.is_parked_receiver() || self.is_woken()
    }
}

/// Whether a receiver parked as `kind` with argument `arg` can take a message
/// of type `mtype` (the selectors of `transfer::Selector`).
fn takes(kind: u32, arg: i64, mtype: i64) -> bool {
    match kind {
        KIND_TYPE => mtype == arg,
        KIND_ANY => true,
        KIND_EXCEPT => mtype != arg,
        KIND_AT_MOST => mtype <= arg,
        _ => false,
    }
}

/// Marks the owner of `rec` as spinning (or yielding) before it sleeps.
pub(crate) fn set_spinning(rec: &SlotRecord) {
    let s = SlotWait(rec.wait_state.load(Ordering::Relaxed));
    // Relaxed: read by peers only to decide whether to spin (a heuristic);
    // the owner is the only writer while it is not parked.
    rec.wait_state.store(s.with(SPINNING).0, Ordering::Relaxed);
}

/// Marks the owner of `rec` as running again after a spin that ended without
/// parking.
pub(crate) fn set_running(rec: &SlotRecord) {
    let s = SlotWait(rec.wait_state.load(Ordering::Relaxed));
    // Relaxed: as in `set_spinning`.
    rec.wait_state.store(s.with(RUNNING).0, Ordering::Relaxed);
}

/// Step 1 of a parking receiver (or of a sender, `KIND_SPACE`, which only
/// says so here and sleeps on `space_word`): publishes what it waits for and
/// returns the value its slot's word holds while it sleeps. The caller then
/// re-checks its condition and parks on `rec.wait_state` with that value
/// (receivers), and calls [`end_park`] on the way out, whatever happens.
pub(crate) fn begin_park(rec: &SlotRecord, header: &QueueHeader, kind: u32, arg: i64) -> u32 {
    // SYNC(wait_sel): Release, so that a waker that reads this selector also
    // sees our previous park's end (see `wake_receiver`).
    rec.waiting_on.store(arg as u64, Ordering::Release);
    let s = SlotWait(rec.wait_state.load(Ordering::Relaxed)).parked_next(kind);
    // SYNC(recv_sleepers): the parked state before the count, both SeqCst,
    // then the fence before the re-check.
    rec.wait_state.store(s.0, Ordering::SeqCst);
    if kind != KIND_SPACE {
        #[cfg(loom)]
        let skip = crate::sync::mutant(crate::sync::Mutant::SleeperNotCounted);
        #[cfg(not(loom))]
        let skip = false;
        if !skip {
            header.recv_sleepers.fetch_add(1, Ordering::SeqCst);
        }
    }
    fence(Ordering::SeqCst);
    s.0
}

/// Step 4: the owner of `rec` leaves its park; returns the state it left
/// (woken by someone, or still parked).
pub(crate) fn end_park(rec: &SlotRecord, header: &QueueHeader) -> SlotWait {
    let s = SlotWait(rec.wait_state.load(Ordering::Relaxed));
    // SeqCst RMW: a waker's CAS and this swap are ordered; exactly one of
    // the owner and recovery sees the parked (or woken) value and lowers the
    // count.
    let prev = SlotWait(rec.wait_state.swap(s.with(RUNNING).0, Ordering::SeqCst));
    if prev.counts_as_sleeper() {
        header.recv_sleepers.fetch_sub(1, Ordering::SeqCst);
    }
    prev
}

/// Recovery of a dead owner's slot: takes it out of the sleepers as
/// [`end_park`] would; if a wake-up was spent on it, passes it on.
pub(crate) fn forget_dead_sleeper(
    rec: &SlotRecord,
    header: &QueueHeader,
    slots: &[SlotRecord],
    park: &impl Park,
) {
    let prev = end_park(rec, header);
    if prev.is_woken() {
        wake_all_receivers(header, slots, park);
    }
}

/// Moves slot `rec` from parked (as a receiver) to woken and wakes it, if it
/// is parked and `wanted` accepts its selector; returns whether it did.
fn wake_slot(rec: &SlotRecord, park: &impl Park, wanted: impl Fn(u32, i64) -> bool) -> bool {
    loop {
        // SYNC(recv_sleepers): after the waker's fence.
        let s = SlotWait(rec.wait_state.load(Ordering::SeqCst));
        if !s.is_parked_receiver() {
            return false;
        }
        // SYNC(wait_sel): Acquire; a selector newer than `s` means the owner
        // left the park `s` names, so the CAS below fails and we read again.
        let arg = rec.waiting_on.load(Ordering::Acquire) as i64;
        if !wanted(s.kind(), arg) {
            return false;
        }
        if rec
            .wait_state
            .compare_exchange(s.0, s.with(WOKEN).0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            park.unpark_all(&rec.wait_state);
            return true;
        }
    }
}

/// The sender's side, after it linked a message of type `mtype`: wakes one
/// parked receiver that can take it, if any sleeps. `start` spreads the
/// wake-ups over the slots (any number; the message's stamp will do).
///
/// SYNC(recv_sleepers): the caller has issued a SeqCst fence after its link
/// and its arrival record (the data path shares that fence with the
/// non-empty index); then the count is read here (Dekker with the sleeper's
/// parked state, count, fence, re-check).
pub(crate) fn wake_receiver(
    header: &QueueHeader,
    slots: &[SlotRecord],
    park: &impl Park,
    mtype: i64,
    start: usize,
) {
    if header.recv_sleepers.load(Ordering::SeqCst) == 0 {
        return; // nobody sleeps: no system call, no slot read
    }
    let high = (header.slots_high.load(Ordering::SeqCst) as usize).min(slots.len());
    if high == 0 {
        return;
    }
    let start = start % high;
    for i in (start..high).chain(0..start) {
        #[cfg(loom)]
        if crate::sync::mutant(crate::sync::Mutant::WakeIgnoresSelector) {
            if wake_slot(&slots[i], park, |_, _| true) {
                return;
            }
            continue;
        }
        if wake_slot(&slots[i], park, |kind, arg| takes(kind, arg, mtype)) {
            stamp_wake(&header.wait_tuning);
            return;
        }
    }
}

/// Wakes every parked receiver (IPC_RMID, and a wake-up passed on).
pub(crate) fn wake_all_receivers(header: &QueueHeader, slots: &[SlotRecord], park: &impl Park) {
    let high = (header.slots_high.load(Ordering::SeqCst) as usize).min(slots.len());
    for rec in &slots[..high] {
        wake_slot(rec, park, |_, _| true);
    }
}

/// A receiver that leaves a message it was maybe woken for (E2BIG): wakes
/// the parked receivers, if any, so that one that can take it does.
pub(crate) fn pass_on(header: &QueueHeader, slots: &[SlotRecord], park: &impl Park) {
    // SYNC(recv_sleepers): a plain look; this is a courtesy on top of the
    // protocol (the sender's own wake-up), not a part of it.
    if header.recv_sleepers.load(Ordering::SeqCst) != 0 {
        wake_all_receivers(header, slots, park);
    }
}

/// Default for the spin cap, in microseconds (`SHMQ_SPIN` overrides it).
pub(crate) const SPIN_CAP: Duration = Duration::from_micros(50);
/// The wake-up cost assumed until one has been measured on a queue.
const DEFAULT_WAKE: Duration = Duration::from_micros(30);
/// Shortest spin that the policy allows while a peer runs on another CPU.
const MIN_SPIN: Duration = Duration::from_micros(2);

/// The spin cap of this process: `SHMQ_SPIN` microseconds (0: never spin,
/// always sleep at once), [`SPIN_CAP`] by default.
#[cfg(not(loom))]
pub(crate) fn spin_cap() -> Duration {
    use crate::sync::local::AtomicU64 as Local;
    static CAP_NS: Local = Local::new(u64::MAX);
    // Relaxed: a process-local cache of an environment variable.
    let c = CAP_NS.load(Ordering::Relaxed);
    if c != u64::MAX {
        return Duration::from_nanos(c);
    }
    let cap = std::env::var("SHMQ_SPIN")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(SPIN_CAP, Duration::from_micros);
    CAP_NS.store(cap.as_nanos() as u64, Ordering::Relaxed);
    cap
}

/// How long to spin: `(plain, woken)`. `plain` while peers run on other CPUs
/// (the learnt cost of a wake-up, within `[MIN_SPIN, cap]`); `woken`, longer,
/// while a peer we woke is on its way (twice the learnt cost, within
/// `[plain, 4 * cap]`).
pub(crate) fn spin_limits(t: &WaitTuning, cap: Duration) -> (Duration, Duration) {
    // Relaxed: a heuristic figure (see `WaitTuning`).
    let learnt = match t.wake_ns.load(Ordering::Relaxed) {
        0 => DEFAULT_WAKE,
        ns => Duration::from_nanos(ns as u64),
    };
    let plain = learnt.clamp(MIN_SPIN.min(cap), cap);
    let woken = (learnt * 2).clamp(plain, cap * 4);
    (plain, woken)
}

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process.
#[cfg(not(loom))]
fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Records when a receiver was woken, for it to measure what waking cost.
fn stamp_wake(t: &WaitTuning) {
    #[cfg(not(loom))]
    // Relaxed: a heuristic figure (see `WaitTuning`).
    t.wake_stamp.store(now_ns(), Ordering::Relaxed);
    #[cfg(loom)]
    let _ = t;
}

/// A woken receiver, running again: folds the latency since its waker's
/// stamp into the queue's learnt wake-up cost (a moving average over about
/// eight wake-ups; outliers above 2 ms, a sleeper descheduled or a stamp of
/// another wake-up, are left out).
pub(crate) fn learn_wake(t: &WaitTuning) {
    #[cfg(not(loom))]
    {
        // Relaxed: heuristic figures (see `WaitTuning`).
        let stamp = t.wake_stamp.load(Ordering::Relaxed);
        let lat = now_ns().saturating_sub(stamp);
        if stamp == 0 || lat == 0 || lat > 2_000_000 {
            return;
        }
        let old = t.wake_ns.load(Ordering::Relaxed) as u64;
        let new = if old == 0 {
            lat
        } else {
            old - old / 8 + lat / 8
        };
        t.wake_ns.store(new as u32, Ordering::Relaxed);
    }
    #[cfg(loom)]
    let _ = t;
}

/// The CPU this thread runs on now (0 if unknown).
#[cfg(not(loom))]
pub(crate) fn current_cpu() -> u32 {
    // SAFETY: `sched_getcpu` takes no arguments and only reads the calling
    // thread's CPU number (glibc: from its rseq area or the vDSO).
    let c = unsafe { libc::sched_getcpu() };
    c.max(0) as u32
}

/// What the other slots' owners are doing, as seen from a caller about to
/// wait on CPU `cpu`: whether spinning could pay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Peers {
    /// A peer runs (or spins) on another CPU, or on one we do not know.
    pub(crate) other_cpu: bool,
    /// A peer runs (or spins, or was just woken) on our CPU.
    pub(crate) same_cpu: bool,
    /// A peer was woken and has not run since.
    pub(crate) waking: bool,
    /// A peer that last waited as a sender (for space) runs, not waiting, on
    /// another CPU: a receiver can expect messages from it.
    pub(crate) sender_elsewhere: bool,
    /// A peer on our CPU that did not last wait as a sender: one that may
    /// drain the queue if we give it the CPU.
    pub(crate) receiver_here: bool,
}

/// The flag of a slot's `wait_cpu` word saying that its owner last waited
/// for space (a sender); the rest of the word is its CPU plus one.
const WAITED_FOR_SPACE: u32 = 1 << 31;

/// A slot's `wait_cpu` word for an owner on `cpu` (plus one; 0: unknown)
/// that waits, or last waited, for space (`for_space`) or for a message:
/// what [`Peers::add`] reads.
#[cfg(not(loom))]
pub(crate) fn wait_cpu_word(cpu: u32, for_space: bool) -> u32 {
    if for_space {
        cpu | WAITED_FOR_SPACE
    } else {
        cpu
    }
}

impl Peers {
    /// Folds in a peer in state `s` whose `wait_cpu` word is `peer_cpu`
    /// (its CPU plus one, 0: unknown, and [`WAITED_FOR_SPACE`]), as seen from
    /// `cpu` (plus one).
    pub(crate) fn add(&mut self, s: SlotWait, peer_cpu: u32, cpu: u32) {
        if s.is_parked() {
            return;
        }
        if s.is_woken() {
            self.waking = true;
        }
        let sender = peer_cpu & WAITED_FOR_SPACE != 0;
        let peer_cpu = peer_cpu & !WAITED_FOR_SPACE;
        if peer_cpu != 0 && peer_cpu == cpu {
            self.same_cpu = true;
            self.receiver_here |= !sender;
        } else {
            self.other_cpu = true;
            self.sender_elsewhere |= sender && s.is_running();
        }
    }
}
