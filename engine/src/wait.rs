//! Sleeping and waking: spin briefly, then park on a futex word in the mapping.
//!
//! # Protocol (a counter with a waiter bit)
//! A futex word is `count << 1 | waiters`. A sleeper
//! 1. sets the waiter bit (`fetch_or`, SeqCst) and remembers the word's value,
//! 2. re-checks its condition (the message it wants, space in the queue, the
//!    removed flag) — *after* step 1, or a wake-up could fall between them —,
//! 3. `FUTEX_WAIT`s for the word to differ from the remembered value.
//!
//! A waker, after it made the change (linked a message, released space),
//! issues a SeqCst fence and loads the word: if the waiter bit is clear, no one
//! can be between steps 1 and 3 without seeing its change, so it makes no
//! system call at all; if it is set, it bumps the count, clearing the bit, and
//! `FUTEX_WAKE`s everyone on the word. This is the "waiter count raised before
//! the last re-check" rule of DESIGN.md §4, with a one-bit count (a stale set
//! bit costs one spurious wake, never a lost one).
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
#[cfg(not(loom))]
pub(crate) struct Futex;

#[cfg(not(loom))]
impl Park for Futex {
    fn park(&self, word: &AtomicU32, expected: u32, timeout: Duration) -> Woke {
        use rustix::thread::futex;
        let ts = rustix::time::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        match futex::wait(word.as_std(), futex::Flags::empty(), expected, Some(&ts)) {
            Err(rustix::io::Errno::INTR) => Woke::Interrupted,
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
/// Timeouts are not modelled: a model sleeper sleeps until woken, so a lost
/// wake-up shows as a deadlock, which loom reports.
#[cfg(loom)]
#[derive(Default)]
pub(crate) struct ModelFutex {
    lock: loom::sync::Mutex<()>,
    woken: loom::sync::Condvar,
}

#[cfg(loom)]
impl Park for ModelFutex {
    fn park(&self, word: &AtomicU32, expected: u32, _timeout: Duration) -> Woke {
        let guard = self.lock.lock().unwrap();
        // Relaxed would do for the kernel's compare; SeqCst keeps the model no
        // weaker than the futex's full barrier.
        if word.load(Ordering::SeqCst) != expected {
            return Woke::Recheck;
        }
        drop(self.woken.wait(guard).unwrap());
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

/// How long to spin before parking, in polls of the condition. Loom models
/// park at once (spinning only multiplies the interleavings).
#[cfg(loom)]
pub(crate) fn spin_budget() -> u32 {
    0
}

/// How long to spin before parking, in polls of the condition.
#[cfg(not(loom))]
pub(crate) fn spin_budget() -> u32 {
    use crate::sync::local::AtomicU32 as Local;
    static BUDGET: Local = Local::new(u32::MAX);
    let b = BUDGET.load(std::sync::atomic::Ordering::Relaxed);
    if b != u32::MAX {
        return b;
    }
    let b = std::env::var("SHMQ_SPIN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SPIN);
    BUDGET.store(b, std::sync::atomic::Ordering::Relaxed);
    b
}

/// Default polls before parking. A poll is a full look for the message (or
/// for space), 60-120 ns here, so 64 polls are a few microseconds: enough to
/// catch a ping-pong partner running on another CPU (a round trip is about
/// 1.2 µs), short enough that a spinner sharing a CPU with its partner gives
/// the CPU up soon. The first default, 2000 polls, spun 120-250 µs, and
/// `shmq bench` measured a 243 µs round trip for two processes on one CPU
/// (BENCHMARKS.md); `SHMQ_SPIN` overrides it.
pub(crate) const DEFAULT_SPIN: u32 = 64;

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
