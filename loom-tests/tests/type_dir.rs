//! The type directory (`engine/src/type_dir.rs`): an entry that a sender or
//! receiver has looked up is never reclaimed under it, so no message is
//! enqueued into a removed (or reused) entry; and two senders that both find
//! a type missing give it one entry, placed at one position.
#![cfg(loom)]

use loom::sync::Arc;
use shmq::model::{Config, Queue, Selector};
use shmq_loom_tests::{become_process, check, expect_caught, spawn_process, text, Mutant};

/// A sends two messages of type 1. B receives one, then (as a sender that
/// found its neighbourhood full would) reclaims the drained entries near
/// type 1's home, while A may be between looking the entry up and linking
/// its second message. The second message must still be receivable, and the
/// queue's counts must agree with what is in it.
fn model() {
    let q = Arc::new(Queue::new(Config::default()));
    let sender = spawn_process(&q, 2, move |q, slot| {
        q.send(slot, 1, &text(1, 0), false).unwrap();
        q.send(slot, 1, &text(1, 1), false).unwrap();
        // An operation leaves its hazard on its type's entry (the next one
        // on that type skips the protect): until A uses another type or
        // idles, the entry stays.
        q.idle(slot);
    });
    let slot = become_process(&q, 3);
    let first = q.recv(slot, Selector::Type(1), false).unwrap();
    q.reclaim_near(slot, 1);
    sender.join().unwrap();
    let second = q
        .recv(slot, Selector::Type(1), true)
        .expect("the second message was lost in a reclaimed entry");
    assert_eq!((first.1, second.1), (text(1, 0), text(1, 1)));
    // Reclaim again with nobody inside: the drained entry goes, and with it
    // every node (no dummy is left behind).
    q.reclaim_near(slot, 1);
    let f = q.figures();
    assert_eq!((f.qnum, f.cbytes), (0, 0));
    assert_eq!(f.live_types, 0, "a drained entry survived a quiet reclaim");
    assert_eq!(f.placed_positions, 0, "a removed entry kept its position");
    assert_eq!(f.nodes_in_use, 0, "nodes leaked");
}

/// A and B each send the first message of type 5: both find no entry, both
/// take one from the pool and place it, and one of them publishes first;
/// the other must then use that entry and give its own back. Both messages
/// are then found by their type, in one entry at one position.
fn first_sends_model() {
    let q = Arc::new(Queue::new(Config {
        qbytes: 8, // both messages fit
        ..Config::default()
    }));
    let a = spawn_process(&q, 2, move |q, slot| {
        q.send(slot, 5, &text(5, 0), false).unwrap();
        q.idle(slot);
    });
    let slot = become_process(&q, 3);
    q.send(slot, 5, &text(5, 1), false).unwrap();
    q.idle(slot);
    a.join().unwrap();
    let f = q.figures();
    assert_eq!(f.live_types, 1, "one type, one entry");
    assert_eq!(f.placed_positions, 1, "one entry, one position");
    let mut got = [
        q.recv(slot, Selector::Type(5), true)
            .expect("a message of type 5 lost")
            .1,
        q.recv(slot, Selector::Type(5), true)
            .expect("a message of type 5 lost")
            .1,
    ];
    got.sort();
    let mut sent = [text(5, 0), text(5, 1)];
    sent.sort();
    assert_eq!(got, sent);
    q.reclaim_near(slot, 5);
    let f = q.figures();
    assert_eq!(
        (f.live_types, f.placed_positions, f.nodes_in_use),
        (0, 0, 0)
    );
}

#[test]
fn directory_never_reclaims_an_entry_in_use() {
    check(model);
}

#[test]
fn directory_mutant_ignoring_hazards_is_caught() {
    expect_caught(Mutant::DirIgnoresHazards, model);
}

#[test]
fn directory_gives_a_type_one_entry_when_two_senders_insert_it() {
    check(first_sends_model);
}

#[test]
fn directory_mutant_placing_without_cas_is_caught() {
    expect_caught(Mutant::DirPlacesWithoutCas, first_sends_model);
}
