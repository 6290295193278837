//! The notification registration of a POSIX queue (`mq_notify`): one record
//! in the queue header, armed by one process and used up by the send that
//! fires it.
//!
//! # The record
//! [`NotifyRecord::state`] is `gen << 32 | status` ([`RegState`]):
//!
//! ```text
//! FREE(g) --register--> ARMING(g) --fields written--> ARMED(g)
//! ARMED(g) --fire--> FIRING(g) --delivered--> FREE(g + 1)
//! ARMED(g) --unregister, close, owner found dead--> FREE(g + 1)
//! ```
//!
//! Every transition out of `ARMED(g)` is a CAS, so a registration is used
//! up by exactly one of: one firing send, its owner's unregistration, or
//! someone finding its owner dead. The other fields (owner, kind, signal,
//! value) are written only in `ARMING(g)` by the registering process and read
//! by a firer between its load of `ARMED(g)` and its CAS from it: the CAS
//! validates the read (the kernel serialises the same steps with the queue's
//! spinlock).
//!
//! `FIRING` keeps a registration in place while its notification is
//! delivered (a signal queued, a helper thread woken), so an unregistration
//! that returns has either removed the registration or waited for its
//! notification to be out: nothing is delivered after `mq_notify(NULL)` or
//! `mq_close` returns, as with the kernel, which notifies under the lock.
//! A firer killed in `FIRING` would hold the record for ever; whoever waits
//! for it gives up after a bounded time ([`NotifyRecord::settle`]'s `patience`) and frees
//! it.
//!
//! # When a send fires
//! The kernel notifies when an insert makes `mq_curmsgs` 1, and not when the
//! message goes straight to a receiver blocked in `mq_receive`. The sent and
//! received counts are two words here (see `accounting`), so a send reads
//! the sent count `S1` before it reserves, and the received count `R2` after
//! its link and its fence ([`should_fire`]): `R2 == S1` (every message queued
//! before this one was gone when it was linked, and none after it was taken
//! yet) with no receiver parked fires; `R2 < S1` (older messages remain) does
//! not; `R2 > S1`, or a receiver parked, means a receiver waiting in the
//! call took or will take it: no notification, the registration stays.
//! A queue drained and refilled by other processes during one send can make
//! the rule see a non-empty moment as empty or the other way; it never fires
//! twice for one arming, and a send into a queue that stays empty until the
//! send returns (no receiver waiting) always fires.

use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// What a registration asks for (`sigev_notify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `SIGEV_NONE`: registered, never notified.
    None = 0,
    /// `SIGEV_SIGNAL`: a signal to the owner process.
    Signal = 1,
    /// `SIGEV_THREAD`: a helper thread of the owner runs a function.
    Thread = 2,
}

impl Kind {
    fn from_u32(v: u32) -> Kind {
        match v {
            1 => Kind::Signal,
            2 => Kind::Thread,
            _ => Kind::None,
        }
    }
}

/// One registration's fields, as written in the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Registration {
    /// The owner process.
    pub(crate) pid: u32,
    /// The owner's start time (0: unknown).
    pub(crate) start_time: u64,
    /// What to do when it fires.
    pub(crate) kind: Kind,
    /// `sigev_signo` (for [`Kind::Signal`]).
    pub(crate) signo: u32,
    /// `sigev_value` (an `int` or a pointer, as the owner gave it).
    pub(crate) value: u64,
}

/// The registration record in a queue header (zero: free, generation 0).
#[repr(C)]
pub(crate) struct NotifyRecord {
    /// `gen << 32 | status`, see [`RegState`].
    ///
    /// SYNC(notify_state): the registrar's Release store of `ARMED(g)` after
    /// it wrote the fields pairs with a firer's Acquire load, which then
    /// reads the fields; a firer's AcqRel CAS out of `ARMED(g)` pairs with
    /// the Acquire CAS of the next registrar, so the firer's reads of the
    /// fields happen before the next registration writes them.
    pub(crate) state: AtomicU64,
    /// The owner's pid (written in `ARMING`).
    pub(crate) pid: AtomicU32,
    /// [`Kind`] as a number (written in `ARMING`).
    pub(crate) kind: AtomicU32,
    /// The owner's start time (written in `ARMING`).
    pub(crate) start_time: AtomicU64,
    /// `sigev_value` (written in `ARMING`).
    pub(crate) value: AtomicU64,
    /// `sigev_signo` (written in `ARMING`).
    pub(crate) signo: AtomicU32,
    /// The futex word an owner's `SIGEV_THREAD` helper sleeps on: bumped by
    /// the firer and by the owner's unregistration, each after its CAS on
    /// `state` (SYNC(notify_word): Release bump, Acquire load by the helper
    /// before it reads `state`).
    pub(crate) thread_word: AtomicU32,
}

const FREE: u32 = 0;
const ARMING: u32 = 1;
const ARMED: u32 = 2;
const FIRING: u32 = 3;

/// The record's state word: `gen << 32 | status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RegState(u64);

impl RegState {
    fn new(gen: u32, status: u32) -> RegState {
        RegState((gen as u64) << 32 | status as u64)
    }
    /// The registration's generation.
    pub(crate) fn gen(self) -> u32 {
        (self.0 >> 32) as u32
    }
    fn status(self) -> u32 {
        self.0 as u32
    }
    /// Whether a registration is armed (for the doctor and the send path).
    pub(crate) fn is_armed(self) -> bool {
        self.status() == ARMED
    }
    /// The free state that follows this generation.
    fn next_free(self) -> RegState {
        RegState::new(self.gen().wrapping_add(1), FREE)
    }
}

/// Another live registration holds the record (`EBUSY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Busy;

/// A registration a firer won: what to deliver, and the generation to
/// settle with [`NotifyRecord::delivered`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Firing {
    pub(crate) gen: u32,
    pub(crate) reg: Registration,
}

/// Whether a send that read sent count `s1` before it reserved, and
/// received count `r2` and `sleepers` parked receivers after its link and
/// fence, fires the registration (see the module's doc). Counts are running
/// sums modulo `modulus` (a power of two).
pub(crate) fn should_fire(s1: u64, r2: u64, sleepers: u32, modulus: u64) -> bool {
    r2.wrapping_sub(s1) & (modulus - 1) == 0 && sleepers == 0
}

impl NotifyRecord {
    /// The current state (Acquire: SYNC(notify_state)).
    pub(crate) fn load(&self) -> RegState {
        RegState(self.state.load(Ordering::Acquire))
    }

    fn fields(&self) -> Registration {
        // Relaxed (all): ordered by SYNC(notify_state); validated by the
        // caller's CAS on `state`.
        Registration {
            pid: self.pid.load(Ordering::Relaxed),
            start_time: self.start_time.load(Ordering::Relaxed),
            kind: Kind::from_u32(self.kind.load(Ordering::Relaxed)),
            signo: self.signo.load(Ordering::Relaxed),
            value: self.value.load(Ordering::Relaxed),
        }
    }

    /// Who holds the record in state `s` (`ARMING` and `ARMED`), if anyone.
    fn holder(&self, s: RegState) -> Option<(u32, u64)> {
        matches!(s.status(), ARMING | ARMED).then(|| {
            let r = self.fields();
            (r.pid, r.start_time)
        })
    }

    /// Registers `reg`, unless another registration whose owner
    /// `alive` says lives holds the record ([`Busy`]). A dead owner's
    /// registration is freed first; one being fired is waited for
    /// (`patience`: see [`settle`](Self::settle)). Returns the generation.
    pub(crate) fn register(
        &self,
        reg: Registration,
        alive: impl Fn(u32, u64) -> bool,
        mut patience: impl FnMut() -> bool,
    ) -> Result<u32, Busy> {
        loop {
            let s = self.load();
            match s.status() {
                FREE => {
                    // SYNC(notify_state): Acquire, after the firer's AcqRel
                    // CAS or Release store that freed the record.
                    if self
                        .state
                        .compare_exchange(
                            s.0,
                            RegState::new(s.gen(), ARMING).0,
                            Ordering::Acquire,
                            Ordering::Relaxed,
                        )
                        .is_err()
                    {
                        continue;
                    }
                    // Relaxed (all): published by the Release store below.
                    self.pid.store(reg.pid, Ordering::Relaxed);
                    self.start_time.store(reg.start_time, Ordering::Relaxed);
                    self.kind.store(reg.kind as u32, Ordering::Relaxed);
                    self.signo.store(reg.signo, Ordering::Relaxed);
                    self.value.store(reg.value, Ordering::Relaxed);
                    crate::sync::crash_point();
                    // SYNC(notify_state): Release, the fields before ARMED.
                    self.state
                        .store(RegState::new(s.gen(), ARMED).0, Ordering::Release);
                    return Ok(s.gen());
                }
                FIRING => {
                    if !patience() {
                        self.give_up_firing(s);
                    }
                }
                _ => {
                    let (pid, start) = self.holder(s).unwrap_or((0, 0));
                    if alive(pid, start) {
                        // The fields may be a half-written registration's
                        // (ARMING): read again if the state moved meanwhile.
                        if self.load() == s {
                            return Err(Busy);
                        }
                        continue;
                    }
                    // A dead owner's registration is free.
                    self.retire(s);
                }
            }
        }
    }

    /// Frees `s` (a dead holder's registration) if it is still the state.
    fn retire(&self, s: RegState) {
        // SYNC(notify_state): AcqRel as a firer's CAS.
        let _ =
            self.state
                .compare_exchange(s.0, s.next_free().0, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// A firer held `FIRING(g)` longer than anyone waits: taken to be dead.
    fn give_up_firing(&self, s: RegState) {
        self.retire(s);
    }

    /// Removes the registration if `(pid, start_time)` owns it
    /// (`mq_notify(NULL)`, the owner's close). Returns the generation
    /// removed, or `None` if the caller owned none (then nothing changes,
    /// as with the kernel). A registration of the caller that is being
    /// fired is waited for (`patience`), so nothing is delivered after this
    /// returns.
    pub(crate) fn unregister(
        &self,
        pid: u32,
        start_time: u64,
        mut patience: impl FnMut() -> bool,
    ) -> Option<u32> {
        loop {
            let s = self.load();
            match s.status() {
                ARMED => {
                    let r = self.fields();
                    if r.pid != pid || r.start_time != start_time {
                        return None;
                    }
                    // SYNC(notify_state): AcqRel, as a firer's CAS.
                    if self
                        .state
                        .compare_exchange(s.0, s.next_free().0, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                    {
                        return Some(s.gen());
                    }
                }
                FIRING => {
                    let r = self.fields();
                    if r.pid != pid || r.start_time != start_time {
                        return None;
                    }
                    if !patience() {
                        self.give_up_firing(s);
                    }
                }
                _ => return None,
            }
        }
    }

    /// Frees the registration if its owner is dead by `alive` (the
    /// doctor's repair; a registrar does the same on its way). Returns
    /// whether it freed one.
    pub(crate) fn free_if_owner_dead(&self, alive: impl Fn(u32, u64) -> bool) -> bool {
        let s = self.load();
        match self.holder(s) {
            Some((pid, start)) if !alive(pid, start) => {
                self.retire(s);
                self.load() != s
            }
            _ => false,
        }
    }

    /// The armed registration's generation, if one is armed now (a send
    /// reads this before it reserves).
    pub(crate) fn armed(&self) -> Option<u32> {
        let s = self.load();
        s.is_armed().then_some(s.gen())
    }

    /// Wins registration `gen` for delivery (`ARMED(gen) -> FIRING(gen)`):
    /// `None` if it was used up or replaced meanwhile. The caller delivers,
    /// then calls [`delivered`](Self::delivered).
    pub(crate) fn fire(&self, gen: u32) -> Option<Firing> {
        let s = self.load();
        if s != RegState::new(gen, ARMED) {
            return None;
        }
        let reg = self.fields();
        #[cfg(loom)]
        if crate::sync::mutant(crate::sync::Mutant::NotifyFreedBeforeDelivery) {
            return self
                .state
                .compare_exchange(s.0, s.next_free().0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
                .then_some(Firing { gen, reg });
        }
        // SYNC(notify_state): AcqRel: Acquire for the fields read above
        // (with the load), Release so that those reads happen before the
        // next registrar's writes.
        self.state
            .compare_exchange(
                s.0,
                RegState::new(gen, FIRING).0,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .ok()
            .map(|_| Firing { gen, reg })
    }

    /// Ends the firing of `gen` (`FIRING(gen) -> FREE(gen + 1)`), after its
    /// notification was delivered.
    pub(crate) fn delivered(&self, gen: u32) {
        let firing = RegState::new(gen, FIRING);
        // SYNC(notify_state): Release, the delivery before the record is
        // free (an unregistration waiting on FIRING returns after it).
        let _ = self.state.compare_exchange(
            firing.0,
            firing.next_free().0,
            Ordering::Release,
            Ordering::Relaxed,
        );
    }

    /// Bumps the `SIGEV_THREAD` helper's word (the caller then wakes it).
    pub(crate) fn bump_thread_word(&self) {
        // SYNC(notify_word): Release, after the CAS on `state`.
        self.thread_word.fetch_add(1, Ordering::Release);
    }

    /// The helper's word (Acquire: SYNC(notify_word)), read before it looks
    /// at `state`.
    pub(crate) fn thread_word(&self) -> u32 {
        self.thread_word.load(Ordering::Acquire)
    }

    /// Whether registration `gen` is still armed and not being fired.
    pub(crate) fn still_armed(&self, gen: u32) -> bool {
        self.load() == RegState::new(gen, ARMED)
    }

    /// The current registration, if one is armed or firing (for the doctor
    /// and tests).
    pub(crate) fn current(&self) -> Option<Registration> {
        let s = self.load();
        matches!(s.status(), ARMED | FIRING).then(|| self.fields())
    }

    /// Waits a moment for a firer in `FIRING` to finish: the default
    /// `patience` of [`register`](Self::register) and
    /// [`unregister`](Self::unregister). Returns `false` once about 100 ms
    /// have passed since `started` (the firer is taken to be dead).
    #[cfg(not(loom))]
    pub(crate) fn settle(started: std::time::Instant) -> bool {
        std::thread::yield_now();
        started.elapsed() < std::time::Duration::from_millis(100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> NotifyRecord {
        NotifyRecord {
            state: AtomicU64::new(0),
            pid: AtomicU32::new(0),
            kind: AtomicU32::new(0),
            start_time: AtomicU64::new(0),
            value: AtomicU64::new(0),
            signo: AtomicU32::new(0),
            thread_word: AtomicU32::new(0),
        }
    }

    fn reg(pid: u32) -> Registration {
        Registration {
            pid,
            start_time: 7,
            kind: Kind::Signal,
            signo: 10,
            value: 42,
        }
    }

    #[test]
    fn one_registration_then_busy_until_fired() {
        let r = record();
        let g = r.register(reg(1), |_, _| true, || true).unwrap();
        assert_eq!(r.register(reg(2), |_, _| true, || true), Err(Busy));
        assert_eq!(r.armed(), Some(g));
        let f = r.fire(g).unwrap();
        assert_eq!(f.reg, reg(1));
        assert_eq!(r.fire(g), None, "fired once only");
        r.delivered(g);
        assert_eq!(r.armed(), None);
        let g2 = r.register(reg(2), |_, _| true, || true).unwrap();
        assert_ne!(g, g2);
        assert_eq!(r.fire(g), None, "an old generation never fires");
    }

    #[test]
    fn only_the_owner_unregisters_and_a_dead_owner_is_free() {
        let r = record();
        let g = r.register(reg(1), |_, _| true, || true).unwrap();
        assert_eq!(r.unregister(2, 7, || true), None);
        assert_eq!(r.unregister(1, 8, || true), None, "another start time");
        assert_eq!(r.unregister(1, 7, || true), Some(g));
        assert_eq!(r.current(), None);
        r.register(reg(1), |_, _| true, || true).unwrap();
        let g3 = r.register(reg(2), |_, _| false, || true).unwrap();
        assert_eq!(r.current().map(|c| c.pid), Some(2));
        assert!(r.still_armed(g3));
    }

    #[test]
    fn a_firer_that_never_finishes_is_given_up() {
        let r = record();
        let g = r.register(reg(1), |_, _| true, || true).unwrap();
        r.fire(g).unwrap();
        assert_eq!(r.unregister(1, 7, || false), None);
        assert!(r.register(reg(2), |_, _| true, || false).is_ok());
    }

    #[test]
    fn the_firing_rule() {
        let m = 1 << 25;
        assert!(should_fire(5, 5, 0, m), "all older gone, ours not taken");
        assert!(!should_fire(5, 4, 0, m), "an older message remains");
        assert!(
            !should_fire(5, 6, 0, m),
            "a receiver took it during the send"
        );
        assert!(!should_fire(5, 5, 1, m), "a receiver is parked");
        assert!(should_fire(m - 1, m - 1, 0, m));
        assert!(!should_fire(m - 1, 0, 0, m), "wrapping");
    }
}
