//! Byte and message accounting (`engine/src/accounting.rs`) racing with a
//! full queue: a send is admitted only if it fits `qbytes`, no update is
//! lost, and the counts end equal to what the queue holds.
#![cfg(loom)]

use loom::sync::Arc;
use shmq::model::{Config, Queue, Selector, SendError};
use shmq_loom_tests::{become_process, check, expect_caught, spawn_process, text, Mutant};

/// `qbytes = 4`: two 3-byte sends race (at most one fits at a time) while a
/// receiver may free space.
fn model() {
    let q = Arc::new(Queue::new(Config::default()));
    let senders: Vec<_> = (1..=2u8)
        .map(|s| {
            spawn_process(&q, u32::from(s) + 1, move |q, slot| {
                match q.send(slot, 1, &text(s, 0), true) {
                    Ok(()) => 1,
                    Err(SendError::Again) => 0,
                    Err(e) => panic!("send: {e}"),
                }
            })
        })
        .collect();
    let slot = become_process(&q, 9);
    let early = q.recv(slot, Selector::Any, true).is_ok() as u64;
    let sent: u64 = senders.into_iter().map(|s| s.join().unwrap()).sum();
    let f = q.figures();
    assert!(sent >= 1, "an empty queue refused a message");
    assert!(
        sent - early <= 1,
        "two 3-byte messages admitted into 4 bytes"
    );
    assert_eq!(
        f.qnum,
        sent - early,
        "qnum disagrees with the messages queued (sent {sent}, received {early})"
    );
    assert_eq!(f.cbytes, 3 * (sent - early), "cbytes disagrees");
    let drained = q.recv(slot, Selector::Any, true).is_ok() as u64;
    assert_eq!(drained, sent - early);
    assert_eq!((q.figures().qnum, q.figures().cbytes), (0, 0));
}

#[test]
fn accounting_admits_only_what_fits_and_loses_no_update() {
    check(model);
}

#[test]
fn accounting_mutant_load_store_is_caught() {
    expect_caught(Mutant::AccountingLoadStore, model);
}
