//! IPC_RMID racing with blocked senders and receivers (`mark_removed` in
//! `engine/src/blocking.rs`): every blocked caller returns EIDRM.
#![cfg(loom)]

use loom::sync::Arc;
use shmq::model::{Config, Queue, RecvError, Selector, SendError};
use shmq_loom_tests::{become_process, check, expect_caught, spawn_process, text, Mutant};

/// A receiver of type 1 (sleeping on its own slot's word) and a sender on a
/// full queue block while the queue is removed.
fn model() {
    let q = Arc::new(Queue::new(Config::default()));
    let slot = become_process(&q, 4);
    q.send(slot, 2, &text(0, 0), false).unwrap(); // 3 of 4 bytes: full for 3 more
    let receiver = spawn_process(&q, 2, move |q, slot| q.recv(slot, Selector::Type(1), false));
    let sender = spawn_process(&q, 3, move |q, slot| q.send(slot, 1, &text(1, 0), false));
    q.remove();
    assert_eq!(receiver.join().unwrap(), Err(RecvError::Removed));
    assert_eq!(sender.join().unwrap(), Err(SendError::Removed));
}

#[test]
fn rmid_wakes_every_blocked_caller_with_eidrm() {
    check(model);
}

#[test]
fn rmid_mutant_skipping_slot_words_is_caught() {
    expect_caught(Mutant::RmidSkipsSlotWords, model);
}
