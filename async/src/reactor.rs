//! The waiter threads: they sleep on the futex words of every queue that
//! a task of this process awaits, and wake the tasks' wakers.
//!
//! A task that cannot go on (queue full, no message) registers a [`Ticket`]
//! under its key, `(queue handle, what it awaits)`, and returns `Pending`.
//! A waiter thread holds one engine [`Lease`] per key it serves and runs on
//! it the engine's sleeper protocol (`shmq::Lease`: park, re-check, sleep,
//! unpark): for every other process the lease is one more blocked thread
//! with that selector. When a lease is woken or its re-check holds, every
//! ticket of its key fires: the tasks run again and retry their operation;
//! those that lose the race register again.
//!
//! # The protocol between tasks and a waiter thread
//! The waiter reads its [`WakeWord`] *before* it looks at the registrations,
//! and sleeps only while the word still holds that value; a task changes
//! the word (and wakes the waiter) *after* it registered. So a registration
//! made after the waiter looked makes its sleep return at once, and the
//! waiter's next round parks the new key and re-checks it: a message or
//! space that came between the task's failed try and its registration is
//! seen by that re-check. The word's SeqCst increment and load, and the
//! futex's compare under its own lock, are the two sides (`SYNC(wake_word)`
//! in the engine). loom-tests/tests/async_wake.rs models this protocol.
//!
//! A waiter serves at most [`shmq::PARK_ANY_MAX`] keys (what one
//! `futex_waitv` takes); more keys start another waiter thread. Waiter
//! threads live as long as the process (a lease must be given back by the
//! thread that took it).

use shmq::{park_any, Awaited, Lease, ParkEnd, Queue, RecvError, Selector, WakeWord};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::Waker;
use std::time::{Duration, Instant};

/// What a task waits for, without the length of a send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Want {
    Space,
    Message(Selector),
}

/// A registration key: a handle (`crate::AsyncQueue` instance) and a want.
pub(crate) type Key = (u64, Want);

/// How a ticket ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fired {
    /// Retry the operation.
    Retry,
    /// The waiter could not sleep for it (no slot for a lease).
    Failed(RecvError),
}

/// One waiting task's registration.
#[derive(Debug, Default)]
pub(crate) struct Ticket {
    state: Mutex<TicketState>,
}

#[derive(Debug, Default)]
struct TicketState {
    waker: Option<Waker>,
    fired: Option<Fired>,
    /// For a send: its text's length.
    len: usize,
}

impl Ticket {
    fn lock(&self) -> MutexGuard<'_, TicketState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether it fired (and how); otherwise records `waker` for the fire.
    pub(crate) fn poll_fired(&self, waker: &Waker) -> Option<Fired> {
        let mut s = self.lock();
        if s.fired.is_none() {
            match &s.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => s.waker = Some(waker.clone()),
            }
        }
        s.fired
    }

    fn fire(&self, how: Fired) {
        let w = {
            let mut s = self.lock();
            s.fired = Some(how);
            s.waker.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }
}

struct KeyState {
    q: Queue,
    tickets: Vec<Arc<Ticket>>,
    waiter: usize,
    /// Since when no task waits: the lease is kept (not parked) for
    /// [`KEEP_IDLE`], so that a stream of short waits does not claim and
    /// give back a slot each time.
    idle_since: Option<Instant>,
}

/// How long a waiter keeps the lease of a key nobody waits on.
const KEEP_IDLE: Duration = Duration::from_secs(1);

struct Waiter {
    wake: Arc<WakeWord>,
    keys: usize,
}

#[derive(Default)]
struct Registry {
    keys: HashMap<Key, KeyState>,
    waiters: Vec<Waiter>,
    /// Leases to claim for loans, served by waiter 0: the queue and where to
    /// send the lease.
    lease_requests: Vec<(Queue, std::sync::mpsc::Sender<Result<Lease, RecvError>>)>,
    /// Leases to give back (they must be dropped on the thread that took
    /// them, waiter 0).
    retired: Vec<Lease>,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REG: OnceLock<Mutex<Registry>> = OnceLock::new();
    REG.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Registers a ticket for `key` (a send's text length `len`) and wakes the
/// key's waiter thread, starting one if needed.
pub(crate) fn register(key: Key, q: &Queue, len: usize, waker: &Waker) -> Arc<Ticket> {
    let t = Arc::new(Ticket::default());
    {
        let mut s = t.lock();
        s.waker = Some(waker.clone());
        s.len = len;
    }
    let wake = {
        let mut reg = registry();
        let waiter = match reg.keys.get(&key) {
            Some(k) => k.waiter,
            None => {
                let w = pick_waiter(&mut reg);
                reg.waiters[w].keys += 1;
                reg.keys.insert(
                    key,
                    KeyState {
                        q: q.clone(),
                        tickets: Vec::new(),
                        waiter: w,
                        idle_since: None,
                    },
                );
                w
            }
        };
        reg.keys
            .get_mut(&key)
            .expect("inserted above")
            .tickets
            .push(t.clone());
        reg.waiters[waiter].wake.clone()
    };
    // SYNC(wake_word): after the registration (see the module's description).
    wake.notify();
    t
}

/// Takes `t` out of `key`'s tickets (a future dropped before it fired).
pub(crate) fn cancel(key: Key, t: &Arc<Ticket>) {
    let wake = {
        let mut reg = registry();
        let Some(k) = reg.keys.get_mut(&key) else {
            return;
        };
        k.tickets.retain(|x| !Arc::ptr_eq(x, t));
        if !k.tickets.is_empty() {
            return;
        }
        let w = k.waiter;
        reg.waiters[w].wake.clone()
    };
    // The key has no ticket left: let its waiter unpark its lease.
    wake.notify();
}

/// A lease of `q` for a loan, claimed by waiter 0 (which will also give it
/// back, [`retire`]).
pub(crate) fn lease_for(q: &Queue) -> Result<Lease, RecvError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let wake = {
        let mut reg = registry();
        if reg.waiters.is_empty() {
            pick_waiter(&mut reg);
        }
        reg.lease_requests.push((q.clone(), tx));
        reg.waiters[0].wake.clone()
    };
    wake.notify();
    rx.recv().unwrap_or(Err(RecvError::NoMemory))
}

/// Gives `leases` back, on the thread that took them.
pub(crate) fn retire(leases: Vec<Lease>) {
    if leases.is_empty() {
        return;
    }
    let wake = {
        let mut reg = registry();
        reg.retired.extend(leases);
        reg.waiters.first().map(|w| w.wake.clone())
    };
    if let Some(w) = wake {
        w.notify();
    }
}

/// A waiter with room for one more key, started if none has.
fn pick_waiter(reg: &mut Registry) -> usize {
    if let Some(i) = reg.waiters.iter().position(|w| w.keys < shmq::PARK_ANY_MAX) {
        return i;
    }
    let i = reg.waiters.len();
    let wake = Arc::new(WakeWord::new());
    reg.waiters.push(Waiter {
        wake: wake.clone(),
        keys: 0,
    });
    std::thread::Builder::new()
        .name(format!("shmq-async-waiter-{i}"))
        .spawn(move || run(i, &wake))
        .expect("shmq-async: cannot start a waiter thread");
    i
}

/// Longest sleep of a waiter: then it does what a blocking sleeper does
/// after a long sleep (recover dead processes' leftovers).
const SLICE: Duration = Duration::from_millis(500);

/// What a waiter does for one key this round.
struct Round {
    key: Key,
    q: Queue,
    awaited: Awaited,
}

/// Waiter thread `me`.
fn run(me: usize, wake: &WakeWord) {
    let mut leases: HashMap<Key, Lease> = HashMap::new();
    loop {
        // SYNC(wake_word): read before the registrations are looked at.
        let seen = wake.value();
        let (rounds, kept, requests, retired) = {
            let mut reg = registry();
            let mut idle = Vec::new();
            let mut rounds = Vec::new();
            let mut kept = Vec::new();
            let now = Instant::now();
            for (key, k) in reg.keys.iter_mut() {
                if k.waiter != me {
                    continue;
                }
                if k.tickets.is_empty() {
                    let since = *k.idle_since.get_or_insert(now);
                    if now.duration_since(since) >= KEEP_IDLE {
                        idle.push(*key);
                    } else {
                        kept.push(*key);
                    }
                    continue;
                }
                k.idle_since = None;
                kept.push(*key);
                let awaited = match key.1 {
                    Want::Space => {
                        Awaited::Space(k.tickets.iter().map(|t| t.lock().len).min().unwrap_or(0))
                    }
                    Want::Message(sel) => Awaited::Message(sel),
                };
                rounds.push(Round {
                    key: *key,
                    q: k.q.clone(),
                    awaited,
                });
            }
            for key in idle {
                reg.keys.remove(&key);
                reg.waiters[me].keys -= 1;
            }
            let (requests, retired) = if me == 0 {
                (
                    std::mem::take(&mut reg.lease_requests),
                    std::mem::take(&mut reg.retired),
                )
            } else {
                (Vec::new(), Vec::new())
            };
            (rounds, kept, requests, retired)
        };
        drop(retired); // given back on this thread, which took them
        for (q, tx) in requests {
            let _ = tx.send(q.lease());
        }
        // Leases of the keys still kept: the others go back.
        leases.retain(|key, _| kept.contains(key));
        let mut failed = Vec::new();
        for r in &rounds {
            if leases.contains_key(&r.key) {
                continue;
            }
            match r.q.lease() {
                Ok(l) => {
                    leases.insert(r.key, l);
                }
                Err(e) => failed.push((r.key, e)),
            }
        }
        // Steps 1 and 2 of the sleeper protocol on every lease.
        let mut ready = Vec::new();
        for r in &rounds {
            if let Some(l) = leases.get_mut(&r.key) {
                l.park(r.awaited);
                if l.ready() {
                    ready.push(r.key);
                }
            }
        }
        if ready.is_empty() && failed.is_empty() {
            // Step 3 (leases of idle keys are not parked and are skipped).
            let parked: Vec<&Lease> = leases.values().collect();
            if park_any(&parked, wake, seen, SLICE) == ParkEnd::TimedOut {
                for l in &parked {
                    l.after_long_sleep();
                }
            }
        }
        // Step 4, and the tickets of every key whose lease was woken or
        // whose condition holds.
        let mut fire = Vec::new();
        for r in &rounds {
            let Some(l) = leases.get_mut(&r.key) else {
                continue;
            };
            let holds = ready.contains(&r.key) || l.ready();
            let woken = l.unpark();
            if holds || woken {
                fire.push((r.key, woken));
            }
        }
        let mut pass_on = Vec::new();
        let mut to_fire = Vec::new();
        {
            let mut reg = registry();
            for (key, woken) in fire {
                let tickets = reg
                    .keys
                    .get_mut(&key)
                    .map(|k| std::mem::take(&mut k.tickets))
                    .unwrap_or_default();
                if woken && tickets.is_empty() {
                    pass_on.push(key);
                }
                to_fire.extend(tickets.into_iter().map(|t| (t, Fired::Retry)));
            }
            for (key, e) in failed {
                if let Some(k) = reg.keys.get_mut(&key) {
                    to_fire.extend(
                        std::mem::take(&mut k.tickets)
                            .into_iter()
                            .map(|t| (t, Fired::Failed(e))),
                    );
                }
            }
        }
        for key in pass_on {
            // Woken for a message and nobody here wants it any more.
            if let Some(l) = leases.get(&key) {
                l.pass_on();
            }
        }
        for (t, how) in to_fire {
            t.fire(how);
        }
    }
}
