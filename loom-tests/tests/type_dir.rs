//! The type directory (`engine/src/type_dir.rs`): an entry that a sender or
//! receiver has looked up is never reclaimed under it, so no message is
//! enqueued into a removed (or reused) entry.
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
    assert_eq!(f.nodes_in_use, 0, "nodes leaked");
}

#[test]
fn directory_never_reclaims_an_entry_in_use() {
    check(model);
}

#[test]
fn directory_mutant_ignoring_hazards_is_caught() {
    expect_caught(Mutant::DirIgnoresHazards, model);
}
