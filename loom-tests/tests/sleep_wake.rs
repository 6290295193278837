//! The sleep/wake protocol (`engine/src/wait.rs`, `engine/src/blocking.rs`)
//! with the futex modelled: a receiver never sleeps forever while a matching
//! message is queued, and a sender never sleeps while space is free. A lost
//! wake-up leaves a thread asleep for good, which loom reports as a deadlock.
#![cfg(loom)]

use loom::sync::Arc;
use shmq::model::{Config, Queue, Selector};
use shmq_loom_tests::{become_process, check, expect_caught, spawn_process, text, Mutant};

/// A blocks receiving type 1 (on the type's word) while B sends it.
fn receiver_wakes() {
    let q = Arc::new(Queue::new(Config::default()));
    let receiver = spawn_process(&q, 2, move |q, slot| {
        q.recv(slot, Selector::Type(1), false).unwrap()
    });
    let slot = become_process(&q, 3);
    q.send(slot, 1, &text(1, 0), false).unwrap();
    assert_eq!(receiver.join().unwrap(), (1, text(1, 0)));
}

/// The queue is full (`qbytes = 4`, 3 bytes queued); A blocks sending 3 bytes
/// while B receives the queued message.
fn sender_wakes() {
    let q = Arc::new(Queue::new(Config::default()));
    let slot = become_process(&q, 3);
    q.send(slot, 1, &text(0, 0), false).unwrap();
    let sender = spawn_process(&q, 2, move |q, slot| {
        q.send(slot, 2, &text(1, 0), false).unwrap();
    });
    assert_eq!(
        q.recv(slot, Selector::Type(1), false).unwrap().1,
        text(0, 0)
    );
    sender.join().unwrap();
    assert_eq!(q.recv(slot, Selector::Type(2), true).unwrap().1, text(1, 0));
}

#[test]
fn receiver_is_woken_by_a_matching_send() {
    check(receiver_wakes);
}

#[test]
fn sender_is_woken_by_freed_space() {
    check(sender_wakes);
}

#[test]
fn sleep_mutant_without_recheck_is_caught() {
    expect_caught(Mutant::SleepWithoutRecheck, receiver_wakes);
}
