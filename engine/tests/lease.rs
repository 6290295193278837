//! Leases (`Queue::lease`, `park_any`), `try_peek` and `sent_count`: the
//! engine's calls for a waiter acting for others (`shmq-async`) and for
//! `shmq bridge`.

mod common;

use common::{create, watchdog, TempNamespace};
use shmq::{park_any, Awaited, ParkEnd, RecvError, Selector, WakeWord, IPC_PRIVATE};
use std::time::Duration;

/// A lease parked for type 3 is woken by a send of type 3 from another
/// thread, and not by a send of type 4; its re-check sees the message.
#[test]
fn a_parked_lease_is_woken_by_a_matching_send_only() {
    let _w = watchdog(60);
    let t = TempNamespace::new();
    let q = t.ns.get(IPC_PRIVATE, create(0o600)).unwrap();
    let mut lease = q.lease().unwrap();
    let wake = WakeWord::new();
    lease.park(Awaited::Message(Selector::Type(3)));
    assert!(!lease.ready());
    let seen = wake.value();
    {
        let q = q.clone();
        std::thread::spawn(move || q.send(4, b"not for it").unwrap())
            .join()
            .unwrap();
    }
    assert_eq!(
        park_any(&[&lease], &wake, seen, Duration::from_millis(200)),
        ParkEnd::TimedOut
    );
    assert!(!lease.ready());
    let sender = {
        let q = q.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            q.send(3, b"for it").unwrap()
        })
    };
    // Woken (or the send came before the sleep: the word changed).
    while !lease.ready() {
        park_any(&[&lease], &wake, seen, Duration::from_millis(500));
    }
    sender.join().unwrap();
    // The lease was the only sleeper, parked since before the send.
    assert!(lease.unpark(), "the send did not choose the lease");
    let mut buf = [0u8; 16];
    let m = q.try_recv(&mut buf, Selector::Type(3)).unwrap();
    assert_eq!(&buf[..m.len], b"for it");
}

/// A lease waiting for space: a receive that frees enough wakes it.
#[test]
fn a_space_lease_is_woken_by_freed_space() {
    let _w = watchdog(60);
    let t = TempNamespace::new();
    let q = t.ns.get(IPC_PRIVATE, create(0o600)).unwrap();
    let qbytes = q.stat().unwrap().qbytes as usize;
    let mut left = qbytes - 10;
    while left > 0 {
        let n = left.min(8000);
        q.try_send(1, &vec![0u8; n]).unwrap();
        left -= n;
    }
    let mut lease = q.lease().unwrap();
    lease.park(Awaited::Space(100));
    assert!(!lease.ready());
    let wake = WakeWord::new();
    let seen = wake.value();
    let receiver = {
        let q = q.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 8192];
            q.recv(&mut buf, Selector::Any).unwrap();
        })
    };
    while !lease.ready() {
        park_any(&[&lease], &wake, seen, Duration::from_millis(500));
    }
    lease.unpark();
    receiver.join().unwrap();
    q.try_send(2, &[1u8; 100]).unwrap();
}

/// The wake word ends a sleep at once when it changed since it was read.
#[test]
fn a_changed_wake_word_ends_the_sleep() {
    let _w = watchdog(60);
    let t = TempNamespace::new();
    let q = t.ns.get(IPC_PRIVATE, create(0o600)).unwrap();
    let mut lease = q.lease().unwrap();
    lease.park(Awaited::Message(Selector::Any));
    let wake = WakeWord::new();
    let seen = wake.value();
    wake.notify();
    assert_eq!(
        park_any(&[&lease], &wake, seen, Duration::from_secs(30)),
        ParkEnd::Woken
    );
    assert!(!lease.unpark());
}

/// A loan taken on a lease moves to another thread and is finished there;
/// the lease comes back.
#[test]
fn a_leased_loan_moves_between_threads() {
    let t = TempNamespace::new();
    let q = t.ns.get(IPC_PRIVATE, create(0o600)).unwrap();
    q.try_send(5, b"lent").unwrap();
    let lease = q.lease().unwrap();
    let lease = match lease.try_recv_lend(Selector::Type(6)) {
        Err((l, RecvError::NoMessage)) => l,
        other => panic!("{other:?}"),
    };
    let loan = lease.try_recv_lend(Selector::Any).unwrap();
    assert_eq!(q.stat().unwrap().qnum, 1);
    let lease = std::thread::spawn(move || {
        assert_eq!(loan.with_text(|t| t.to_vec()), b"lent");
        loan.finish()
    })
    .join()
    .unwrap();
    assert_eq!(q.stat().unwrap().qnum, 0);
    drop(lease);
}

/// A lease dropped on another thread than its owner's stays held until the
/// owner thread exits, and is then recovered as a dead owner's.
#[test]
fn a_lease_dropped_elsewhere_is_recovered_when_its_thread_ends() {
    let t = TempNamespace::new();
    let q = t.ns.get(IPC_PRIVATE, create(0o600)).unwrap();
    let base = q.figures().slots_in_use;
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let owner = {
        let q = q.clone();
        std::thread::spawn(move || {
            tx.send(q.lease().unwrap()).unwrap();
            let _ = done_rx.recv();
        })
    };
    let lease = rx.recv().unwrap();
    assert_eq!(q.figures().slots_in_use, base + 1);
    drop(lease); // not the owner thread: stays held
    assert_eq!(q.figures().slots_in_use, base + 1);
    done_tx.send(()).unwrap();
    owner.join().unwrap();
    // The owner thread is gone: its lock is marked, the next look recovers.
    assert_eq!(q.figures().slots_in_use, base);
}

/// `try_peek` leaves the message; `sent_count` counts sends, not receives.
#[test]
fn peek_and_sent_count() {
    let t = TempNamespace::new();
    let q = t.ns.get(IPC_PRIVATE, create(0o600)).unwrap();
    let before = q.sent_count();
    q.try_send(2, b"b").unwrap();
    q.try_send(1, b"a").unwrap();
    assert_eq!(q.sent_count(), before + 2);
    let mut buf = [0u8; 4];
    let p = q.try_peek(&mut buf, Selector::AtMost(5)).unwrap();
    assert_eq!((p.received.mtype, &buf[..1]), (1, &b"a"[..]));
    let p2 = q.try_peek(&mut buf, Selector::Except(1)).unwrap();
    assert_eq!(p2.received.mtype, 2);
    assert!(p2.seq < p.seq);
    q.try_recv(&mut buf, Selector::Any).unwrap();
    assert_eq!(q.sent_count(), before + 2);
    assert_eq!(q.stat().unwrap().qnum, 1);
}

/// `spin_briefly` says "try again" for what is there already and for a
/// removed queue, and returns without it (never sleeping) when nothing is
/// there and no peer runs: the async futures' look before they register.
#[test]
fn spin_briefly_sees_what_is_there_and_never_waits_for_nobody() {
    let _w = watchdog(60);
    let t = TempNamespace::new();
    let q = t.ns.get(IPC_PRIVATE, create(0o600)).unwrap();
    assert!(!q.spin_briefly(Awaited::Message(Selector::Any)));
    assert!(q.spin_briefly(Awaited::Space(10)));
    q.send(3, b"three").unwrap();
    assert!(q.spin_briefly(Awaited::Message(Selector::Type(3))));
    assert!(q.spin_briefly(Awaited::Message(Selector::Any)));
    assert!(!q.spin_briefly(Awaited::Message(Selector::Type(4))));
    // Full: no room for one more byte, and nobody to make it.
    for size in [1000, 100, 10, 1] {
        while q.try_send(5, &vec![0u8; size]).is_ok() {}
    }
    assert!(!q.spin_briefly(Awaited::Space(1)));
    let q2 = q.clone();
    q.remove().unwrap();
    assert!(q2.spin_briefly(Awaited::Message(Selector::Type(4))));
}
