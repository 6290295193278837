//! Type-0 and negative-type selection (`find` in `engine/src/transfer.rs`):
//! the oldest message across types, and the lowest type first, while senders
//! and other receivers run.
#![cfg(loom)]

use loom::sync::Arc;
use shmq::model::{Config, Queue, Selector};
use shmq_loom_tests::{become_process, check, expect_caught, spawn_process, text, Mutant};

/// A sends type `a` then type `b`; B receives twice with `msgtyp = 0`: it must
/// get them in send order whatever order the directory lists the types in.
/// Entries are taken lowest index first, so B first creates type `b`'s (one
/// message sent and received by type): the directory then lists `b` before
/// `a`, the opposite of their messages' order.
fn oldest_first(a: i64, b: i64) {
    let q = Arc::new(Queue::new(Config {
        qbytes: 16,
        ..Config::default()
    }));
    let slot = become_process(&q, 3);
    q.send(slot, b, &text(0, 0), false).unwrap();
    q.recv(slot, Selector::Type(b), true).unwrap();
    let sender = spawn_process(&q, 2, move |q, slot| {
        q.send(slot, a, &text(1, 0), false).unwrap();
        q.send(slot, b, &text(1, 1), false).unwrap();
    });
    let first = q.recv(slot, Selector::Any, false).unwrap();
    let second = q.recv(slot, Selector::Any, false).unwrap();
    sender.join().unwrap();
    assert_eq!(first, (a, text(1, 0)), "type 0 takes the oldest message");
    assert_eq!(second, (b, text(1, 1)));
}

/// The queue holds types 3 and 2 (in that order); A sends type 1 while B
/// receives with `msgtyp = -2`: B gets type 2 or, if type 1 is already there,
/// type 1 — never type 3, never nothing.
fn lowest_type() {
    let q = Arc::new(Queue::new(Config {
        qbytes: 16,
        ..Config::default()
    }));
    let slot = become_process(&q, 3);
    q.send(slot, 3, &text(0, 3), false).unwrap();
    q.send(slot, 2, &text(0, 2), false).unwrap();
    let sender = spawn_process(&q, 2, move |q, slot| {
        q.send(slot, 1, &text(1, 1), false).unwrap();
    });
    let got = q.recv(slot, Selector::AtMost(2), true).unwrap();
    sender.join().unwrap();
    let rest = q.recv(slot, Selector::AtMost(2), true).unwrap();
    let mut both = [got.0, rest.0];
    both.sort();
    assert_eq!(both, [1, 2], "msgtyp -2 takes types 1 and 2 only");
    let last = q.recv(slot, Selector::Any, true).unwrap();
    assert_eq!(last.0, 3);
}

#[test]
fn type_zero_takes_the_oldest_across_types() {
    check(|| oldest_first(5, 9));
    check(|| oldest_first(9, 5));
}

#[test]
fn negative_type_takes_the_lowest_type() {
    check(lowest_type);
}

#[test]
fn selection_mutant_first_found_is_caught() {
    // The directory lists the younger message's type first (see
    // `oldest_first`): a receiver that takes the first candidate found
    // takes it.
    expect_caught(Mutant::SelectFirstFound, || {
        oldest_first(5, 9);
        oldest_first(9, 5);
    });
}
