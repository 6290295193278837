//! The lowest-type index (`engine/src/lowest_type.rs`): a negative-type
//! receive finds the lowest type holding a message through a bitmap trie
//! whose stale bits lookups clear while senders set them after they link.
#![cfg(loom)]

use loom::sync::Arc;
use shmq::model::{Config, Queue, RecvError, Selector};
use shmq_loom_tests::{become_process, check, expect_caught, spawn_process, text, Mutant};

/// Type 2 held a message that was taken, so its bit in the index is stale.
/// A sends type 2 again while B receives with `msgtyp = -5` (which may find
/// the stale bit and clear it, racing with A's link). Once A is done, a
/// `msgtyp = -5` receive must find A's message, whoever won the race.
fn stale_bit_cleared_while_sent_again() {
    let q = Arc::new(Queue::new(Config {
        qbytes: 16,
        ..Config::default()
    }));
    let slot = become_process(&q, 3);
    q.send(slot, 2, &text(0, 0), true).unwrap();
    assert_eq!(q.recv(slot, Selector::Type(2), true).unwrap().0, 2);
    let sender = spawn_process(&q, 2, move |q, slot| {
        q.send(slot, 2, &text(1, 0), true).unwrap();
    });
    let first = q.recv(slot, Selector::AtMost(5), true);
    sender.join().unwrap();
    match first {
        Ok(m) => assert_eq!(m, (2, text(1, 0))),
        Err(e) => {
            assert_eq!(e, RecvError::NoMessage);
            let second = q.recv(slot, Selector::AtMost(5), true);
            assert_eq!(second.map(|m| m.0), Ok(2), "A's message is found");
        }
    }
    assert_eq!(
        q.recv(slot, Selector::AtMost(5), true),
        Err(RecvError::NoMessage)
    );
}

#[test]
fn negative_type_finds_a_type_whose_stale_bit_is_cleared_while_sent_again() {
    check(stale_bit_cleared_while_sent_again);
}

#[test]
fn lowest_type_mutant_clearing_late_is_caught() {
    expect_caught(
        Mutant::LowestTypeClearsLate,
        stale_bit_cleared_while_sent_again,
    );
}
