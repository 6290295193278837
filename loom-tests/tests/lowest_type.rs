//! The lowest-type index (`engine/src/lowest_type.rs`): a negative-type
//! receive finds the lowest type holding a message through a bitmap trie
//! that receivers clear when they empty a type and senders set after they
//! link, while the two race.
#![cfg(loom)]

use loom::sync::Arc;
use shmq::model::{Config, Queue, RecvError, Selector};
use shmq_loom_tests::{become_process, check, expect_caught, spawn_process, text, Mutant};

/// The queue holds one message of type 2. A sends another type 2 while B
/// takes one with `msgtyp = 2` (which may empty the type for a moment and
/// clear its bit). After A is done, `msgtyp = -5` must find the other.
fn emptied_while_sent_again() {
    let q = Arc::new(Queue::new(Config {
        qbytes: 16,
        ..Config::default()
    }));
    let slot = become_process(&q, 3);
    q.send(slot, 2, &text(0, 0), true).unwrap();
    let sender = spawn_process(&q, 2, move |q, slot| {
        q.send(slot, 2, &text(1, 0), true).unwrap();
    });
    let first = q.recv(slot, Selector::Type(2), true).unwrap();
    sender.join().unwrap();
    let second = q.recv(slot, Selector::AtMost(5), true);
    assert_eq!(first.0, 2);
    assert_eq!(
        second.map(|m| m.0),
        Ok(2),
        "the second type-2 message is found"
    );
    assert_eq!(
        q.recv(slot, Selector::AtMost(5), true),
        Err(RecvError::NoMessage)
    );
}

#[test]
fn negative_type_finds_a_type_emptied_and_sent_again() {
    check(emptied_while_sent_again);
}

#[test]
fn lowest_type_mutant_clearing_late_is_caught() {
    expect_caught(Mutant::LowestTypeClearsLate, emptied_while_sent_again);
}
