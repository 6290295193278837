//! The sleep/wake protocols (`engine/src/wait.rs`, `engine/src/blocking.rs`)
//! with the futex modelled: a receiver, asleep on its own slot's word with its
//! selector published, never sleeps forever while a message it can take is
//! queued (a send wakes one parked receiver, one that takes the message); a
//! sender, asleep on `space_word`, never sleeps while space is free. A lost
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

/// Two receivers of different types block while B sends one message of
/// each type, type 1 first: the send of type 1 must wake the receiver of
/// type 1, not the other one (which was spawned first, so it has the lower
/// slot, where the waker's search starts).
fn right_receiver_wakes() {
    let q = Arc::new(Queue::new(Config::default()));
    let other = spawn_process(&q, 2, move |q, slot| {
        q.recv(slot, Selector::Type(2), false).unwrap()
    });
    let wanted = spawn_process(&q, 3, move |q, slot| {
        q.recv(slot, Selector::Type(1), false).unwrap()
    });
    let slot = become_process(&q, 4);
    q.send(slot, 1, &text(1, 0), false).unwrap();
    assert_eq!(wanted.join().unwrap(), (1, text(1, 0)));
    q.send(slot, 2, &text(1, 1), false).unwrap();
    assert_eq!(other.join().unwrap(), (2, text(1, 1)));
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
fn a_send_wakes_a_receiver_that_takes_it() {
    check(right_receiver_wakes);
}

#[test]
fn sleep_mutant_without_recheck_is_caught() {
    expect_caught(Mutant::SleepWithoutRecheck, receiver_wakes);
}

#[test]
fn sleep_mutant_not_counted_is_caught() {
    expect_caught(Mutant::SleeperNotCounted, receiver_wakes);
}

#[test]
fn wake_mutant_ignoring_the_selector_is_caught() {
    expect_caught(Mutant::WakeIgnoresSelector, right_receiver_wakes);
}
