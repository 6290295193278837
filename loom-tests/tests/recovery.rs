//! Recovery of what a killed process held (`engine/src/recovery.rs`): a
//! process killed at any crash point of a send or a receive loses at most the
//! message it was receiving, duplicates nothing, and leaves no accounting,
//! node or data cell behind once a live process has recovered its slot —
//! while another process keeps sending, recovering and receiving; and the
//! dead process is found by its slot's liveness lock (`liveness.rs`) by the
//! next call that counts or refuses, with no recovery call.
#![cfg(loom)]

use loom::sync::Arc;
use shmq::model::{crash_after, run_until_crash, set_pid, Config, Queue, RecvError, Selector};
use shmq_loom_tests::{become_process, check, expect_caught, spawn_process, text, Mutant};

/// Crash points every send passes (see `crash_point` in
/// `engine/src/transfer.rs`).
const SEND_POINTS: u32 = 8;
/// More crash points of a send that creates its type's entry (taken from the
/// pool, placed, published).
const INSERT_POINTS: u32 = 3;
/// Crash points a receive passes.
const RECV_POINTS: u32 = 6;

fn config() -> Config {
    Config {
        msgmax: 32,
        qbytes: 24,
        slots: 4,
    }
}

/// Receives everything left (as process 4, after recovering dead slots) and
/// checks that the queue is back to empty with nothing leaked.
fn drain_and_check(q: &Queue) -> Vec<Vec<u8>> {
    set_pid(4);
    q.recover();
    let slot = q.attach();
    let mut got = Vec::new();
    loop {
        match q.recv(slot, Selector::Any, true) {
            Ok((_, t)) => got.push(t),
            Err(RecvError::NoMessage) => break,
            Err(e) => panic!("drain: {e}"),
        }
    }
    let f = q.figures();
    assert_eq!((f.qnum, f.cbytes), (0, 0), "accounting leaked: {f:?}");
    assert_eq!(f.data_cells_in_use, 0, "data cells leaked: {f:?}");
    assert_eq!(
        f.nodes_in_use, f.live_types,
        "nodes leaked (one dummy per live type expected): {f:?}"
    );
    assert_eq!(
        f.placed_positions, f.live_types,
        "entries or positions leaked: {f:?}"
    );
    got
}

/// Process 2 is killed at the `n`-th crash point of a send (a 20-byte text,
/// so it holds a data cell too) while process 1 sends, recovers dead slots
/// and receives. (Two threads: a third, recovering on its own, took longer
/// than CI's budget at two preemptions.)
fn dead_sender(n: u32) {
    let q = Arc::new(Queue::new(config()));
    let dying = spawn_process(&q, 2, move |q, slot| {
        crash_after(n);
        run_until_crash(|| q.send(slot, 1, &[7u8; 20], false).unwrap())
    });
    let slot = become_process(&q, 1);
    q.send(slot, 1, &text(1, 0), false).unwrap();
    q.recover();
    let first = q.recv(slot, Selector::Type(1), false).unwrap().1;
    let completed = dying.join().unwrap().is_some();
    assert!(!completed, "crash point {n} was never reached");
    let mut all = drain_and_check(&q);
    all.push(first);
    assert_eq!(
        all.iter().filter(|t| **t == text(1, 0)).count(),
        1,
        "the live sender's message must arrive exactly once"
    );
    assert!(
        all.iter().filter(|t| **t == [7u8; 20]).count() <= 1,
        "duplicated"
    );
}

/// Process 2 sends a message, then is killed in its second send between the
/// reservation's CAS and recording it (crash point 2), while process 1
/// sends (overwriting the sent word) and recovers dead slots: the second
/// reservation must be found applied and undone. Process 2's completion
/// mark beside the word is its first operation's, of the other parity, so
/// a flush that trusted any mark of its slot would skip recording the
/// second (see `accounting::Completed`).
fn dead_sender_after_a_send() {
    let q = Arc::new(Queue::new(config()));
    let dying = spawn_process(&q, 2, move |q, slot| {
        q.send(slot, 1, &text(2, 0), false).unwrap();
        crash_after(2);
        run_until_crash(|| q.send(slot, 1, &text(2, 1), false).unwrap())
    });
    let slot = become_process(&q, 1);
    q.send(slot, 1, &text(1, 0), false).unwrap();
    let completed = dying.join().unwrap().is_some();
    assert!(!completed, "crash point 2 was never reached");
    q.recover();
    let all = drain_and_check(&q);
    assert_eq!(all.iter().filter(|t| **t == text(1, 0)).count(), 1);
    assert_eq!(all.iter().filter(|t| **t == text(2, 0)).count(), 1);
}

/// A message is queued; process 2 is killed at the `n`-th crash point of its
/// receive while process 1 sends another, recovers dead slots and receives.
fn dead_receiver(n: u32) {
    let q = Arc::new(Queue::new(config()));
    let slot = become_process(&q, 1);
    q.send(slot, 1, &[9u8; 20], false).unwrap();
    let dying = spawn_process(&q, 2, move |q, slot| {
        crash_after(n);
        run_until_crash(|| q.recv(slot, Selector::Type(1), false).unwrap())
    });
    q.send(slot, 2, &text(1, 0), false).unwrap();
    q.recover();
    let first = q.recv(slot, Selector::Type(2), false).unwrap().1;
    let completed = dying.join().unwrap().is_some();
    assert!(!completed, "crash point {n} was never reached");
    let all = drain_and_check(&q);
    assert_eq!(first, text(1, 0));
    assert!(
        all.iter().filter(|t| **t == [9u8; 20]).count() <= 1,
        "the message being received was duplicated"
    );
}

/// Issue 15 in miniature: process 2 is killed at the `n`-th crash point of
/// a send (its slot's liveness lock then reads "owner died") while process 1
/// sends and asks for the counts. Afterwards, with no recovery call, the
/// counts process 1 gets are exactly what a drain with IPC_NOWAIT finds, and
/// IPC_NOWAIT sends fill the queue exactly: every refusing or counting call
/// finished what the dead process left, having found it by its lock.
fn counts_exact_after_death(n: u32) {
    let q = Arc::new(Queue::new(config()));
    let dying = spawn_process(&q, 2, move |q, slot| {
        crash_after(n);
        run_until_crash(|| q.send(slot, 1, &[7u8; 20], false).unwrap())
    });
    let slot = become_process(&q, 1);
    q.send(slot, 2, &text(1, 0), false).unwrap();
    // While process 2 is alive, dying or dead: must not recover a live slot.
    let _ = q.stat();
    let completed = dying.join().unwrap().is_some();
    assert!(!completed, "crash point {n} was never reached");
    let (qnum, cbytes) = q.stat();
    let (mut got, mut bytes) = (0, 0);
    loop {
        match q.recv(slot, Selector::Any, true) {
            Ok((_, t)) => {
                got += 1;
                bytes += t.len() as u64;
            }
            Err(RecvError::NoMessage) => break,
            Err(e) => panic!("drain: {e}"),
        }
    }
    assert_eq!(
        (qnum, cbytes),
        (got, bytes),
        "IPC_STAT after the death counted what a drain did not find"
    );
    assert_eq!(q.stat(), (0, 0), "counts after the drain");
    // Capacity: 24 bytes take exactly eight 3-byte messages.
    let mut filled = 0;
    while q.send(slot, 3, &text(1, filled), true).is_ok() {
        filled += 1;
    }
    assert_eq!(filled, 8, "IPC_NOWAIT sends into the drained queue");
    // Whatever entry the dead sender had taken is either in use (published,
    // placed) or back in the pool, and nodes are the messages and one dummy
    // per live type.
    let f = q.figures();
    assert_eq!(
        f.placed_positions, f.live_types,
        "entries and positions: {f:?}"
    );
    assert_eq!(
        f.nodes_in_use,
        f.live_types + filled as usize,
        "nodes: {f:?}"
    );
}

#[test]
fn counts_are_exact_right_after_a_sender_dies_at_every_crash_point() {
    // The dying sender creates type 1's entry: its send has every point.
    for n in first_point()..=SEND_POINTS + INSERT_POINTS {
        eprintln!("sender killed at crash point {n}, no recovery call");
        check(move || counts_exact_after_death(n));
    }
}

#[test]
fn liveness_mutant_ignoring_owner_died_is_caught() {
    // Killed holding a reservation: only a call that sees the lock's
    // "owner died" can give the bytes back.
    expect_caught(Mutant::DeadOwnerLooksAlive, || counts_exact_after_death(2));
}

#[test]
fn killed_sender_is_recovered_at_every_crash_point() {
    for n in first_point()..=SEND_POINTS {
        eprintln!("sender killed at crash point {n}");
        check(move || dead_sender(n));
    }
}

#[test]
fn killed_receiver_is_recovered_at_every_crash_point() {
    for n in first_point()..=RECV_POINTS {
        eprintln!("receiver killed at crash point {n}");
        check(move || dead_receiver(n));
    }
}

#[test]
fn recovery_mutant_keeping_the_reservation_is_caught() {
    // Killed after reserving and before linking: only recovery can give the
    // bytes back.
    expect_caught(Mutant::RecoveryKeepsReservation, || dead_sender(2));
}

#[test]
fn recovery_mutant_forgetting_a_reservation_applied_by_tag_is_caught() {
    // Crash point 2 is right after the reservation's CAS, before the sender
    // records it: only the word's tag says it was applied.
    expect_caught(Mutant::RecoveryForgetsTagApplied, || dead_sender(2));
}

/// `SHMQ_LOOM_CRASH_POINT=n` runs crash point `n` alone (for a deeper bound).
fn first_point() -> u32 {
    std::env::var("SHMQ_LOOM_CRASH_POINT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

#[test]
fn killed_sender_after_a_completed_send_is_recovered() {
    check(dead_sender_after_a_send);
}

#[test]
fn accounting_mutant_trusting_a_mark_of_the_other_parity_is_caught() {
    expect_caught(Mutant::AccountingMarkSlotOnly, dead_sender_after_a_send);
}
