//! The hand-over between async tasks and a waiter thread (`shmq-async`,
//! `async/src/reactor.rs`), modelled: a task that failed its try registers
//! a ticket under the registry's lock and then bumps the waiter's wake word
//! (`WakeWord::notify`); the waiter reads the wake word *before* it looks
//! at the registry, parks its lease for what the tickets want (the engine's
//! sleeper protocol: parked state, fence, re-check), and sleeps on the
//! lease's word and the wake word together (`futex_waitv`) while both hold
//! the values it read. A sender makes the condition true, fences, and wakes
//! the lease if it is parked (the engine's `wake_receiver`). The invariant:
//! the task always gets the message; a lost wake-up leaves the task or the
//! waiter asleep for good, which loom reports as a deadlock.
//!
//! This is a model of the protocol, not of the crate's code (which runs on
//! std's mutex and the real futex); the engine's half of it, the lease's
//! park and the sender's wake, is the code that `sleep_wake` checks.
//!
//! Mutant: the waiter reads the wake word after it looked at the registry
//! (`SHMQ_LOOM_ASYNC_MUTANT=1`, run in a child process): a registration
//! between the two is missed and the task sleeps for ever.
#![cfg(loom)]

use loom::sync::atomic::{fence, AtomicBool, AtomicU32, Ordering::SeqCst};
use loom::sync::{Arc, Condvar, Mutex};

/// The futex as the engine's `ModelFutex` models it: compare and sleep
/// under one lock, wake under the same lock; `waitv` sleeps while *every*
/// word still holds its value.
#[derive(Default)]
struct Futex {
    lock: Mutex<()>,
    cv: Condvar,
}

impl Futex {
    fn waitv(&self, words: &[(&AtomicU32, u32)]) {
        let mut g = self.lock.lock().unwrap();
        while words.iter().all(|(w, v)| w.load(SeqCst) == *v) {
            g = self.cv.wait(g).unwrap();
        }
    }
    fn wake(&self) {
        let _g = self.lock.lock().unwrap();
        self.cv.notify_all();
    }
}

const RUNNING: u32 = 0;
const PARKED: u32 = 1;
const WOKEN: u32 = 2;

#[derive(Default)]
struct World {
    futex: Futex,
    /// The queue's condition: a message is there.
    message: AtomicBool,
    /// The lease's wait state (the slot's `wait_state`).
    lease: AtomicU32,
    /// The waiter's wake word.
    wake: AtomicU32,
    /// The registry: (tickets registered, tickets fired).
    registry: Mutex<(u32, u32)>,
    /// The task fired its ticket's waker (the executor's wake-up, modelled
    /// on the same futex as a word).
    task_word: AtomicU32,
    done: AtomicBool,
}

fn mutant() -> bool {
    std::env::var_os("SHMQ_LOOM_ASYNC_MUTANT").is_some()
}

/// The waiter thread: rounds until the task is done.
fn waiter(w: &World) {
    let mutant = mutant();
    loop {
        let mut seen = if mutant { 0 } else { w.wake.load(SeqCst) };
        let wanted = {
            let r = w.registry.lock().unwrap();
            r.0 > r.1
        };
        if mutant {
            seen = w.wake.load(SeqCst);
        }
        if w.done.load(SeqCst) {
            return;
        }
        let mut fire = false;
        if wanted {
            // Lease::park: parked state, fence, then the re-check.
            w.lease.store(PARKED, SeqCst);
            fence(SeqCst);
            let ready = w.message.load(SeqCst);
            if !ready {
                w.futex.waitv(&[(&w.lease, PARKED), (&w.wake, seen)]);
            }
            // Lease::unpark.
            let prev = w.lease.swap(RUNNING, SeqCst);
            fire = ready || prev == WOKEN || w.message.load(SeqCst);
        } else {
            w.futex.waitv(&[(&w.wake, seen)]);
        }
        if fire {
            let mut r = w.registry.lock().unwrap();
            if r.0 > r.1 {
                r.1 = r.0;
                drop(r);
                w.task_word.fetch_add(1, SeqCst);
                w.futex.wake();
            }
        }
    }
}

/// The task: try, register, notify, wait for the fire, retry.
fn task(w: &World) {
    loop {
        // The try (one taker here, so a load and a store model the take).
        if w.message.load(SeqCst) {
            w.message.store(false, SeqCst);
            break;
        }
        let fired_before = w.task_word.load(SeqCst);
        {
            let mut r = w.registry.lock().unwrap();
            r.0 += 1;
        }
        // WakeWord::notify, after the registration.
        w.wake.fetch_add(1, SeqCst);
        w.futex.wake();
        // Pending until the waker fires (the executor parks the task).
        w.futex.waitv(&[(&w.task_word, fired_before)]);
    }
    w.done.store(true, SeqCst);
    w.wake.fetch_add(1, SeqCst);
    w.futex.wake();
}

/// The sender (the engine's send then `wake_receiver`).
fn sender(w: &World) {
    w.message.store(true, SeqCst);
    fence(SeqCst);
    if w.lease
        .compare_exchange(PARKED, WOKEN, SeqCst, SeqCst)
        .is_ok()
    {
        w.futex.wake();
    }
}

fn model() {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(2);
    }
    b.check(|| {
        let w = Arc::new(World::default());
        let t = {
            let w = w.clone();
            loom::thread::spawn(move || task(&w))
        };
        let s = {
            let w = w.clone();
            loom::thread::spawn(move || sender(&w))
        };
        waiter(&w);
        t.join().unwrap();
        s.join().unwrap();
        assert!(!w.message.load(SeqCst), "the message was not taken");
    });
}

#[test]
fn a_registered_task_is_never_left_asleep() {
    model();
}

#[test]
fn mutant_wake_word_read_after_the_registry_is_caught() {
    const CHILD: &str = "SHMQ_LOOM_ASYNC_MUTANT";
    if std::env::var_os(CHILD).is_some() {
        model();
        println!("MUTANT-NOT-CAUGHT");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "mutant_wake_word_read_after_the_registry_is_caught",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("running 0 tests"),
        "the child found no test"
    );
    assert!(
        !out.status.success() && !stdout.contains("MUTANT-NOT-CAUGHT"),
        "the mutant was not caught: {stdout}"
    );
}
