//! Leases: attachment slots held by the calling thread beyond its own, for
//! a waiter that acts on behalf of others (an async runtime's waiter thread,
//! `shmq-async`), and [`park_any`], which sleeps on several queues at once.
//!
//! A blocking caller sleeps in `blocking::wait_until` with the protocols of
//! `wait`: a receiver publishes its selector in its slot and sleeps on its
//! slot's word, a sender announces itself on the queue's `space_word`. An
//! async runtime cannot sleep in a task, so one thread sleeps for all the
//! tasks of a process: for each distinct thing awaited (a queue and a
//! selector, or a queue and space for `len` bytes) it holds a [`Lease`], a
//! slot of that queue, and runs the very same protocol on it:
//!
//! 1. [`Lease::park`]: `wait::begin_park` (selector published, receiver
//!    counted in `recv_sleepers`, fence) or, for space, `wait::announce` on
//!    `space_word`; this is step 1 of the sleepers in `wait`;
//! 2. [`Lease::ready`]: the re-check, *after* step 1 (a message the selector
//!    takes, space for `len` bytes, or the queue removed);
//! 3. [`park_any`]: `futex_waitv` on every parked lease's word (and one
//!    process-local [`WakeWord`] that says "the set of waits changed");
//! 4. [`Lease::unpark`]: `wait::end_park`, which says whether a sender chose
//!    this lease for its wake-up.
//!
//! Senders and receivers elsewhere cannot tell a lease from a blocked
//! thread: a send wakes at most one parked receiver whose selector takes its
//! message, and that may be the lease. Whoever holds the lease must then
//! hand the wake-up to a task that takes the message, or pass it on
//! ([`Lease::pass_on`]) when none is left to take it, as a blocking receiver
//! that leaves does (`blocking::leave_park`).
//!
//! A lease is also a slot to take a message on and keep it taken: a
//! [`LeasedLoan`] is a zero-copy receive that owns its lease, so that the
//! loan can live in a task that moves between threads while other tasks use
//! those threads' own slots (a slot records one operation at a time).
//!
//! A slot's liveness lock belongs to the thread that claimed it (a robust
//! lock sits in its thread's robust list), so a lease is given back only on
//! the thread that took it; dropped on another thread, it stays held until
//! that thread exits, after which any process recovers it as a dead owner's.

use crate::error::RecvError;
use crate::message::Selector;
use crate::queue::{record_stats, Queue, RecvOptions, Wait};
use crate::sync::{AtomicU32, Ordering};
use crate::transfer::Taken;
use crate::wait;
use std::time::Duration;

/// What a lease waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Awaited {
    /// Room for a message of this many bytes of text (a sender).
    Space(usize),
    /// A message this selector takes (a receiver).
    Message(Selector),
}

impl Awaited {
    /// Whether it is there now, looked at from `slot`: a message the
    /// selector takes, or room for the length.
    fn is_there(self, st: &crate::state::QueueState<'_>, slot: usize) -> bool {
        match self {
            Awaited::Space(len) => {
                // As `blocking::send_blocking`'s re-check (a POSIX queue's
                // count limit included).
                st.counter().load().fits(len as u64, st.capacity())
            }
            Awaited::Message(sel) => st.peek(slot, sel),
        }
    }

    /// The sleeper kind and argument that `wait` records.
    fn kind_arg(self) -> (u32, i64) {
        match self {
            Awaited::Space(_) => (wait::KIND_SPACE, 0),
            Awaited::Message(Selector::Type(t)) => (wait::KIND_TYPE, t),
            Awaited::Message(Selector::Any) => (wait::KIND_ANY, 0),
            Awaited::Message(Selector::Except(t)) => (wait::KIND_EXCEPT, t),
            Awaited::Message(Selector::AtMost(n)) => (wait::KIND_AT_MOST, n),
        }
    }
}

/// A slot of a queue held by the calling thread besides its own
/// ([`Queue::lease`]): a sleeper on behalf of others, or a place to keep a
/// message taken ([`Lease::try_recv_lend`]). See the module's description.
pub struct Lease {
    q: Queue,
    slot: usize,
    owner: std::thread::ThreadId,
    /// While parked: what for, and the futex value to sleep on.
    parked: Option<(Awaited, u32)>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("queue", &self.q.id())
            .field("slot", &self.slot)
            .field("parked", &self.parked)
            .finish()
    }
}

impl Queue {
    /// Claims a slot of this queue for the calling thread, beyond the one
    /// its own calls use. [`RecvError::NoMemory`] (ENOMEM) when every slot
    /// is held by live threads; [`RecvError::Invalid`] once the queue is
    /// removed.
    pub fn lease(&self) -> Result<Lease, RecvError> {
        let st = self.st();
        if st.is_removed() {
            return Err(RecvError::Invalid);
        }
        let slot = match crate::slots::claim(st.header, st.slots) {
            Some(s) => s,
            None => {
                st.recover_dead();
                crate::slots::claim(st.header, st.slots).ok_or(RecvError::NoMemory)?
            }
        };
        Ok(Lease {
            q: self.clone(),
            slot,
            owner: std::thread::current().id(),
            parked: None,
        })
    }
}

impl Queue {
    /// Wakes the receivers parked on this queue, if any sleeps (no system
    /// call otherwise): for a waiter on behalf of others that was woken for
    /// a message and leaves without it (a cancelled async receive), as a
    /// blocking receiver that leaves passes its wake-up on. Each of them
    /// re-checks and sleeps again if the message is not for it.
    pub fn pass_on_wake(&self) {
        let st = self.st();
        wait::pass_on(st.header, st.slots, st.park);
    }
}

impl Queue {
    /// For a caller that must not sleep (an async task before it hands its
    /// wait to a waiter thread): polls for what `awaited` waits for while a
    /// peer of the queue runs on another CPU, for at most the time a
    /// blocking call would spin there, and never yields the thread or
    /// sleeps (it returns at once when every peer sleeps or one shares this
    /// CPU, or when spinning is off: `SHMQ_SPIN=0`). `true` when the message
    /// or the room may be there now (or the queue was removed): try the
    /// operation again.
    pub fn spin_briefly(&self, awaited: Awaited) -> bool {
        let st = self.st();
        let Ok(slot) = crate::shm::my_slot(self.mapped_arc()) else {
            return false;
        };
        let for_space = matches!(awaited, Awaited::Space(_));
        let mut ready = || awaited.is_there(st, slot);
        st.spin_while_it_pays(slot, &mut ready, false, for_space)
            .is_some()
    }
}

impl Lease {
    /// The queue this lease is a slot of.
    pub fn queue(&self) -> &Queue {
        &self.q
    }

    /// Step 1: publishes this lease as a sleeper waiting for `awaited` (see
    /// the module's description). Parking again first leaves the last park.
    pub fn park(&mut self, awaited: Awaited) {
        if self.parked.is_some() {
            self.unpark();
        }
        let st = self.q.st();
        let rec = &st.slots[self.slot];
        let (kind, arg) = awaited.kind_arg();
        // SYNC(recv_sleepers), SYNC(waiter_bit): the fences of `begin_park`
        // and `announce` come before the caller's re-check (`ready`).
        let parked = wait::begin_park(rec, st.header, kind, arg);
        let expected = match awaited {
            Awaited::Space(_) => wait::announce(&st.header.space_word),
            Awaited::Message(_) => parked,
        };
        self.parked = Some((awaited, expected));
    }

    /// Step 2, the re-check: whether what the lease waits for is there (a
    /// message its selector takes, room for its length) or the queue was
    /// removed. Also true when the lease is not parked.
    pub fn ready(&self) -> bool {
        let Some((awaited, _)) = self.parked else {
            return true;
        };
        let st = self.q.st();
        st.is_removed() || awaited.is_there(st, self.slot)
    }

    /// Step 4: leaves the park; `true` if a sender (or IPC_RMID, or a
    /// passed-on wake-up) chose this lease, which its holder must then
    /// honour: hand it to a task that takes the message, or
    /// [`Lease::pass_on`]. Nothing when not parked.
    pub fn unpark(&mut self) -> bool {
        if self.parked.take().is_none() {
            return false;
        }
        let st = self.q.st();
        let prev = wait::end_park(&st.slots[self.slot], st.header);
        if prev.is_woken() {
            wait::learn_wake(&st.header.wait_tuning);
            return true;
        }
        false
    }

    /// Whether the lease is parked, and for what.
    pub fn parked_for(&self) -> Option<Awaited> {
        self.parked.map(|(a, _)| a)
    }

    /// Wakes the receivers parked on this queue, if any sleeps: for a lease
    /// woken for a message that nobody it sleeps for will take (as a
    /// blocking receiver leaving without its message does).
    pub fn pass_on(&self) {
        self.q.pass_on_wake();
    }

    /// What a blocking sleeper does after each long sleep: finishes what
    /// dead processes left in this queue (and wakes the sleepers if there was
    /// any) and what a dead process left half done on its table record.
    pub fn after_long_sleep(&self) {
        self.q.st().recover_dead();
        self.q.repair();
    }

    /// Zero-copy [`Queue::try_recv_lend`] on this lease's slot: the loan
    /// owns the lease (so it may move to another thread) and gives it back
    /// from [`LeasedLoan::finish`]. On an error the lease comes back with it.
    pub fn try_recv_lend(
        mut self,
        opts: impl Into<RecvOptions>,
    ) -> Result<LeasedLoan, (Lease, RecvError)> {
        self.unpark();
        let opts = opts.into();
        if self.q.st().is_removed() {
            return Err((self, RecvError::Invalid));
        }
        if !self.q.access().allows(0o4) {
            return Err((self, RecvError::Access));
        }
        match self.q.take_on(self.slot, opts, usize::MAX, Wait::Never) {
            Ok((_, taken)) => {
                record_stats(&self.q.st().header.recv_stats);
                Ok(LeasedLoan {
                    lease: Some(self),
                    taken,
                })
            }
            Err(e) => Err((self, e)),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.unpark();
        let st = self.q.st();
        if std::thread::current().id() != self.owner {
            // Its lock is in the owner thread's robust list: only that thread
            // may give it back. Held until that thread exits, then recovered
            // as a dead owner's; the mapping must stay mapped until then.
            std::mem::forget(self.q.clone());
            return;
        }
        st.release_slot(self.slot);
    }
}

/// A message taken on a [`Lease`] ([`Lease::try_recv_lend`]), its text lent
/// in place. [`LeasedLoan::finish`] (or dropping it) completes the receive.
pub struct LeasedLoan {
    lease: Option<Lease>,
    taken: Taken,
}

impl std::fmt::Debug for LeasedLoan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeasedLoan")
            .field("mtype", &self.taken.mtype)
            .field("len", &self.taken.size)
            .finish()
    }
}

impl LeasedLoan {
    fn lease(&self) -> &Lease {
        self.lease
            .as_ref()
            .expect("a loan holds its lease until finished")
    }

    /// The message's type.
    pub fn mtype(&self) -> i64 {
        self.taken.mtype
    }

    /// Length of the text.
    pub fn len(&self) -> usize {
        self.taken.size
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.taken.size == 0
    }

    /// Runs `f` on the text, in place in the shared mapping.
    pub fn with_text<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        self.lease().q.st().with_text(&self.taken, f)
    }

    /// Completes the receive (the message stops counting in `qnum` /
    /// `cbytes`) and gives the lease back.
    pub fn finish(mut self) -> Lease {
        self.complete();
        self.lease
            .take()
            .expect("a loan holds its lease until finished")
    }

    fn complete(&mut self) {
        if let Some(l) = &self.lease {
            l.q.st().complete_receive(l.slot, &self.taken);
        }
    }
}

impl Drop for LeasedLoan {
    fn drop(&mut self) {
        if self.lease.is_some() {
            self.complete();
        }
    }
}

/// A process-local futex word that tells a thread sleeping in [`park_any`]
/// that the set of things it should wait for changed.
pub struct WakeWord(AtomicU32);

impl Default for WakeWord {
    fn default() -> WakeWord {
        WakeWord::new()
    }
}

impl std::fmt::Debug for WakeWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("WakeWord").field(&self.value()).finish()
    }
}

impl WakeWord {
    /// A new word.
    pub fn new() -> WakeWord {
        WakeWord(AtomicU32::new(0))
    }

    /// The current value: read it *before* looking at what to wait for, and
    /// pass it to [`park_any`], which returns at once if it changed since.
    pub fn value(&self) -> u32 {
        // SYNC(wake_word): SeqCst, against the SeqCst increment of `notify`
        // (the futex compares the value under its own lock).
        self.0.load(Ordering::SeqCst)
    }

    /// Changes the value and wakes the thread sleeping on it, if any.
    pub fn notify(&self) {
        // SYNC(wake_word)
        self.0.fetch_add(1, Ordering::SeqCst);
        let _ =
            rustix::thread::futex::wake(self.0.as_std(), rustix::thread::futex::Flags::empty(), 1);
    }
}

/// How [`park_any`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParkEnd {
    /// Woken, or a word had changed already: re-check.
    Woken,
    /// The whole timeout passed (time for [`Lease::after_long_sleep`]).
    TimedOut,
    /// A signal handler ran.
    Interrupted,
}

/// Most leases [`park_any`] sleeps on at once (the kernel's
/// `futex_waitv` takes 128 words; one is the [`WakeWord`]).
pub const PARK_ANY_MAX: usize = 127;

/// Step 3: sleeps until one of `leases` (each parked, see [`Lease::park`])
/// is woken, `wake` differs from `wake_seen`, or `timeout` passes
/// (`futex_waitv`, Linux 5.16 or later; shared futexes, never private).
/// Leases not parked are skipped; more than [`PARK_ANY_MAX`] is a
/// programming error (panics).
pub fn park_any(leases: &[&Lease], wake: &WakeWord, wake_seen: u32, timeout: Duration) -> ParkEnd {
    use rustix::thread::futex;
    assert!(
        leases.len() <= PARK_ANY_MAX,
        "park_any: at most {PARK_ANY_MAX} leases"
    );
    let entry = |word: &AtomicU32, val: u32| {
        let mut w = futex::Wait::new();
        w.val = val as u64;
        w.uaddr = futex::WaitPtr::new(word.as_std() as *const _ as *mut std::ffi::c_void);
        w.flags = futex::WaitFlags::SIZE_U32;
        w
    };
    let mut waits = Vec::with_capacity(leases.len() + 1);
    waits.push(entry(&wake.0, wake_seen));
    for l in leases {
        let Some((awaited, expected)) = l.parked else {
            continue;
        };
        let st = l.q.st();
        let word = match awaited {
            Awaited::Space(_) => &*st.header.space_word,
            Awaited::Message(_) => &st.slots[l.slot].wait_state,
        };
        waits.push(entry(word, expected));
    }
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let end_ns = now.tv_nsec as u128 + timeout.as_nanos();
    let ts = rustix::time::Timespec {
        tv_sec: now.tv_sec + (end_ns / 1_000_000_000) as i64,
        tv_nsec: (end_ns % 1_000_000_000) as _,
    };
    match futex::waitv(
        &waits,
        futex::WaitvFlags::empty(),
        Some(&ts),
        rustix::time::ClockId::Monotonic,
    ) {
        Err(rustix::io::Errno::TIMEDOUT) => ParkEnd::TimedOut,
        Err(rustix::io::Errno::INTR) => ParkEnd::Interrupted,
        Err(rustix::io::Errno::NOSYS) => {
            // A kernel before 5.16: no futex_waitv. Sleep on the wake word
            // alone for at most a millisecond, so the caller polls its
            // leases' re-checks: slower, never stuck.
            let short = rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: timeout.min(Duration::from_millis(1)).subsec_nanos() as _,
            };
            let _ = futex::wait(
                wake.0.as_std(),
                futex::Flags::empty(),
                wake_seen,
                Some(&short),
            );
            ParkEnd::Woken
        }
        _ => ParkEnd::Woken,
    }
}

/// A message copied by [`Queue::try_peek`], still queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peeked {
    /// Its type and the bytes copied.
    pub received: crate::message::Received,
    /// Its send stamp: unique among the messages this queue ever held, in
    /// send order; the same message peeked twice has the same stamp.
    pub seq: u64,
}

impl Queue {
    /// Copies the message a receive with `sel` would take now into `buf`
    /// and leaves it queued (as `MSG_COPY`, but by selector), with its send
    /// stamp. Never waits: [`RecvError::NoMessage`] if there is none;
    /// [`RecvError::TooBig`] if `buf` is too short (no truncation). For a
    /// consumer that must not lose a message if it dies before what it
    /// copied is safe elsewhere: peek, store, then take (and be the only
    /// receiver of `sel`, or the take may get another message).
    ///
    /// ```
    /// # let dir = std::path::Path::new("/dev/shm").join(format!("shmq-doc-peek-{}", std::process::id()));
    /// # struct Cleanup(std::path::PathBuf);
    /// # impl Drop for Cleanup { fn drop(&mut self) { let _ = std::fs::remove_dir_all(&self.0); } }
    /// # let _cleanup = Cleanup(dir.clone());
    /// use shmq::{GetOptions, Namespace, RecvError, Selector, IPC_PRIVATE};
    /// let ns = Namespace::open(&dir)?;
    /// let q = ns.get(IPC_PRIVATE, GetOptions::new().create(true).mode(0o600))?;
    /// q.try_send(1, b"one")?;
    /// q.try_send(2, b"two")?;
    /// let mut buf = [0u8; 8];
    /// let a = q.try_peek(&mut buf, Selector::Type(2))?;
    /// assert_eq!((a.received.mtype, &buf[..a.received.len]), (2, &b"two"[..]));
    /// assert_eq!(q.try_peek(&mut buf, Selector::Type(2))?.seq, a.seq); // still there
    /// let b = q.try_peek(&mut buf, Selector::Any)?;
    /// assert!(b.seq < a.seq); // "one" was sent first
    /// assert_eq!(q.try_peek(&mut buf[..2], Selector::Any), Err(RecvError::TooBig));
    /// q.try_recv(&mut buf, Selector::Type(2))?;
    /// assert_eq!(q.try_peek(&mut buf, Selector::Type(2)), Err(RecvError::NoMessage));
    /// assert_eq!(q.stat()?.qnum, 1);
    /// q.remove()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_peek(&self, buf: &mut [u8], sel: Selector) -> Result<Peeked, RecvError> {
        let st = self.st();
        if st.is_removed() {
            return Err(RecvError::Invalid);
        }
        if !self.access().allows(0o4) {
            return Err(RecvError::Access);
        }
        let slot = crate::shm::my_slot(self.mapped_arc()).map_err(|_| RecvError::NoMemory)?;
        let mut r = st.peek_copy(slot, sel, buf);
        if matches!(r, Err(crate::transfer::PathError::Empty)) && st.recover_dead() > 0 {
            r = st.peek_copy(slot, sel, buf);
        }
        match r {
            Ok((received, seq)) => Ok(Peeked { received, seq }),
            Err(crate::transfer::PathError::Empty) => Err(RecvError::NoMessage),
            Err(crate::transfer::PathError::TooBig) => Err(RecvError::TooBig),
            Err(crate::transfer::PathError::Invalid) => Err(RecvError::Invalid),
            Err(_) => Err(RecvError::NoMemory),
        }
    }
}

impl Queue {
    /// How many messages were ever sent into this queue, modulo 2^25 (the
    /// width of the engine's running sum), once what dead processes left
    /// half done is finished or undone: a send counts from the moment it
    /// reserved its space, so a sender killed mid-send is counted only if
    /// recovery links its message. For a sole sender that must learn, after
    /// it was killed, whether its last send took place (`shmq bridge`'s
    /// import): read it before sending, compare after a restart.
    pub fn sent_count(&self) -> u64 {
        let st = self.st();
        st.recover_dead();
        st.counter().sent_messages()
    }
}
