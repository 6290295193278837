//! The per-type FIFO (`engine/src/type_fifo.rs`) on the whole data path:
//! exactly-once delivery and per-sender order, with the text published to the
//! receiver before it reads it (loom checks every byte's access).
#![cfg(loom)]

use loom::sync::Arc;
use shmq::model::{Config, Queue, Selector};
use shmq_loom_tests::{become_process, check, expect_caught, spawn_process, text, Mutant};

const T: i64 = 1;

/// Two processes, each a sender and then a receiver of the type: two
/// senders and two blocking receivers racing on one FIFO. Each message is
/// received exactly once. (Two threads rather than four: the models run the
/// whole data path, and four threads at two preemptions do not finish in
/// CI's budget.)
fn two_by_two() {
    let q = Arc::new(Queue::new(Config::default()));
    let other = spawn_process(&q, 2, move |q, slot| {
        q.send(slot, T, &text(2, 0), false).unwrap();
        q.recv(slot, Selector::Type(T), false).unwrap()
    });
    let slot = become_process(&q, 1);
    q.send(slot, T, &text(1, 0), false).unwrap();
    let mine = q.recv(slot, Selector::Type(T), false).unwrap();
    let theirs = other.join().unwrap();
    let mut got = vec![mine.1, theirs.1];
    got.sort();
    assert_eq!(
        got,
        vec![text(1, 0), text(2, 0)],
        "each message exactly once"
    );
    assert_eq!((mine.0, theirs.0), (T, T));
    let f = q.figures();
    assert_eq!((f.qnum, f.cbytes), (0, 0));
}

/// One sender sends two messages; one receiver takes two: in order.
fn per_sender_order() {
    let q = Arc::new(Queue::new(Config::default()));
    let sender = spawn_process(&q, 2, move |q, slot| {
        q.send(slot, T, &text(1, 0), false).unwrap();
        q.send(slot, T, &text(1, 1), false).unwrap();
    });
    let slot = become_process(&q, 3);
    let first = q.recv(slot, Selector::Type(T), false).unwrap();
    let second = q.recv(slot, Selector::Type(T), false).unwrap();
    sender.join().unwrap();
    assert_eq!(first.1, text(1, 0), "FIFO order within a type");
    assert_eq!(second.1, text(1, 1));
}

/// One queued message, two receivers racing for it: exactly one gets it.
fn racing_receivers() {
    let q = Arc::new(Queue::new(Config::default()));
    let slot = become_process(&q, 1);
    q.send(slot, T, &text(1, 0), false).unwrap();
    let other = spawn_process(&q, 2, move |q, slot| {
        q.recv(slot, Selector::Type(T), true).ok()
    });
    let mine = q.recv(slot, Selector::Type(T), true).ok();
    let theirs = other.join().unwrap();
    let got: Vec<_> = mine.into_iter().chain(theirs).collect();
    assert_eq!(got, vec![(T, text(1, 0))], "taken exactly once");
}

#[test]
fn fifo_one_message_is_taken_once() {
    check(racing_receivers);
}

#[test]
fn fifo_two_senders_two_receivers_exactly_once() {
    check(two_by_two);
}

#[test]
fn fifo_keeps_per_sender_order() {
    check(per_sender_order);
}

#[test]
fn fifo_mutant_take_without_cas_is_caught() {
    expect_caught(Mutant::FifoTakeWithoutCas, racing_receivers);
}
