//! The `mq_notify` registration record (`engine/src/notify.rs`): the
//! owner's registration and unregistration (`mq_notify(NULL)`, its close)
//! racing with two sends that both decided to fire it, and a second
//! process registering meanwhile.
//!
//! Invariants: an arming is used up exactly once, by one delivery or by the
//! owner's unregistration, never both; no notification is delivered after
//! the unregistration returned; a second registration succeeds only while
//! no other is armed.
//!
//! Mutant: a firing send frees the record before it delivers
//! (`NotifyFreedBeforeDelivery`): the owner's unregistration then returns
//! with a notification still on its way.
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use loom::sync::Arc;
use shmq::model::{self, Notify};
use shmq_loom_tests::{check, expect_caught, Mutant};

#[derive(Default)]
struct World {
    record: Notify,
    /// Notifications delivered to the owner (pid 1).
    delivered: AtomicU32,
    /// Notifications delivered to the other registrar (pid 4).
    delivered_other: AtomicU32,
    /// The owner's unregistration returned.
    unregistered: AtomicBool,
}

/// A send that found generation `gen` armed and decided to fire.
fn sender(w: &World, pid: u32, gen: Option<u32>) {
    model::set_pid(pid);
    if let Some(gen) = gen {
        w.record.fire(gen, |owner| {
            if owner == 1 {
                assert!(
                    !w.unregistered.load(SeqCst),
                    "delivered after the unregistration returned"
                );
                w.delivered.fetch_add(1, SeqCst);
            } else {
                assert_eq!(owner, 4);
                w.delivered_other.fetch_add(1, SeqCst);
            }
        });
    }
}

/// `senders` sends race with the owner's unregistration, and with another
/// process's registration if `other`.
fn model_with(senders: &'static [u32], other: bool) {
    let w = Arc::new(World::default());
    model::set_pid(1);
    let gen = w.record.register().expect("the record starts free");
    let senders: Vec<_> = senders
        .iter()
        .copied()
        .map(|pid| {
            let w = w.clone();
            loom::thread::spawn(move || {
                // The owner's arming, or pid 4's once that one is used up.
                let armed = w.record.armed();
                sender(&w, pid, armed);
            })
        })
        .collect();
    // Another process tries to register meanwhile: it may only succeed once
    // the arming is used up (then it holds the record).
    let other = other.then(|| {
        let w = w.clone();
        loom::thread::spawn(move || {
            model::set_pid(4);
            // Registered over the owner's armed registration, it would
            // take the arming's use away: the count at the end sees it.
            w.record.register().inspect(|&g| {
                assert_ne!(g, gen, "a second live registration");
            })
        })
    });
    let removed = w.record.unregister();
    w.unregistered.store(true, SeqCst);
    for s in senders {
        s.join().unwrap();
    }
    if let Some(o) = other {
        let _ = o.join().unwrap();
    }
    assert!(w.delivered_other.load(SeqCst) <= 1, "fired twice");
    let delivered = w.delivered.load(SeqCst);
    assert!(delivered <= 1, "fired twice");
    assert_eq!(
        delivered + u32::from(removed.is_some()),
        1,
        "the arming was used up {delivered} times by delivery, removed: {removed:?}"
    );
}

/// Two firing sends against the owner's unregistration.
fn model() {
    model_with(&[2, 3], false);
}

/// One firing send, the owner's unregistration and a second registrar.
fn model_second_registrar() {
    model_with(&[2], true);
}

#[test]
fn one_notification_per_arming_and_none_after_unregistration() {
    check(model);
}

#[test]
fn a_second_registration_waits_for_the_arming_to_be_used_up() {
    check(model_second_registrar);
}

#[test]
fn notify_mutant_freeing_before_delivery_is_caught() {
    expect_caught(Mutant::NotifyFreedBeforeDelivery, model);
}
