//! Single-process behaviour of the public API.

mod common;
use common::*;
use shmq::*;

#[test]
fn send_then_receive_round_trips_every_size() {
    let _w = watchdog(60);
    let t = TempNamespace::new();
    let q = t.ns.get(IPC_PRIVATE, create(0o600)).unwrap();
    for len in [0usize, 1, 15, 16, 17, 64, 65, 1000, 8192] {
        let text: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        q.send(3, &text).unwrap();
        let mut buf = vec![0u8; 8192];
        let m = q.recv(&mut buf, Selector::Type(3)).unwrap();
        assert_eq!((m.mtype, m.len), (3, len));
        assert_eq!(&buf[..len], &text[..]);
    }
    let s = q.stat().unwrap();
    assert_eq!((s.qnum, s.cbytes), (0, 0));
}

#[test]
fn msgtyp_table_of_design() {
    let _w = watchdog(60);
    let t = TempNamespace::new();
    let q = t.ns.get(IPC_PRIVATE, create(0o600)).unwrap();
    let cases: [(i64, i64); 7] = [
        (0, 100),
        (100, 100),
        (200, 200),
        (300, 300),
        (-100, 100),
        (-200, 100),
        (-300, 100),
    ];
    for (msgtyp, want) in cases {
        for ty in [100, 200, 300] {
            q.send(ty, &ty.to_le_bytes()).unwrap();
        }
        let mut buf = [0u8; 8];
        let m = q
            .try_recv(&mut buf, Selector::from_msgtyp(msgtyp, false))
            .unwrap();
        assert_eq!(m.mtype, want, "msgtyp {msgtyp}");
        // drain
        while q.try_recv(&mut buf, Selector::Any).is_ok() {}
    }
}

#[test]
fn full_queue_and_empty_queue_errors() {
    let _w = watchdog(60);
    let t = TempNamespace::new();
    let q = t.ns.get(IPC_PRIVATE, create(0o600)).unwrap();
    q.try_send(1, &[0u8; 8192]).unwrap();
    q.try_send(1, &[0u8; 8192]).unwrap();
    assert_eq!(q.try_send(1, &[0u8; 1]), Err(SendError::Again));
    let mut small = [0u8; 10];
    assert_eq!(q.recv(&mut small, Selector::Any), Err(RecvError::TooBig));
    let m = q
        .try_recv(&mut small, RecvOptions::new(Selector::Any).truncate())
        .unwrap();
    assert_eq!(m.len, 10);
    assert_eq!(
        q.try_recv(&mut small, Selector::Type(2)),
        Err(RecvError::NoMessage)
    );
    assert_eq!(q.stat().unwrap().qnum, 1);
}

#[test]
fn ids_advance_by_msgmni_and_enospc_past_it() {
    let _w = watchdog(60);
    let t = TempNamespace::with_config("msgmni = 50\nqbytes_max = 16384\n");
    let flags = GetOptions::new().create(true).exclusive(true).mode(0o600);
    let ids: Vec<i32> = (0..10)
        .map(|_| {
            let q = t.ns.get(0x77, flags).unwrap();
            q.remove().unwrap();
            q.id()
        })
        .collect();
    assert_eq!(ids, (0..10).map(|i| i * 50).collect::<Vec<_>>());
    let queues: Vec<_> = (0..50)
        .map(|_| t.ns.get(IPC_PRIVATE, flags).unwrap())
        .collect();
    assert_eq!(t.ns.get(IPC_PRIVATE, flags).unwrap_err(), GetError::NoSpace);
    assert_eq!(t.ns.info().queues, 50);
    for q in queues {
        q.remove().unwrap();
    }
    assert_eq!(t.ns.queue(0).unwrap_err(), CtlError::Invalid, "stale id");
}

#[test]
fn corrupted_or_foreign_queue_files_are_refused_by_name() {
    let _w = watchdog(60);
    let t = TempNamespace::new();
    let q = t.ns.get(IPC_PRIVATE, create(0o600)).unwrap();
    let id = q.id();
    drop(q);
    // A fresh handle in a fresh process would open the file: simulate with a
    // new namespace handle and a damaged file.
    let path = t.dir.join(format!("msq.{id}"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let ns2 = Namespace::open(&t.dir).unwrap();
    assert_eq!(ns2.queue(id).unwrap_err(), CtlError::Invalid);
    std::fs::write(t.dir.join("ids"), b"garbage").unwrap();
    let e = Namespace::open(&t.dir).unwrap_err();
    assert!(e.to_string().contains("ids"), "{e}");
}

#[test]
fn timeouts_and_zero_copy_loans() {
    let _w = watchdog(60);
    let t = TempNamespace::new();
    let q = t.ns.get(IPC_PRIVATE, create(0o600)).unwrap();
    let mut buf = [0u8; 64];
    let e = q.recv_timeout(
        &mut buf,
        Selector::Type(9),
        std::time::Duration::from_millis(50),
    );
    assert_eq!(e, Err(RecvError::TimedOut));
    q.send(1, &[1; 8192]).unwrap();
    q.send(1, &[2; 8192]).unwrap();
    assert_eq!(
        q.send_timeout(1, b"x", std::time::Duration::from_millis(50)),
        Err(SendError::TimedOut)
    );
    {
        let loan = q.recv_lend(Selector::Any).unwrap();
        assert_eq!((loan.mtype(), loan.len()), (1, 8192));
        assert!(loan.with_text(|t| t.iter().all(|&b| b == 1)));
        // Lent bytes still count against qbytes.
        assert_eq!(q.try_send(1, b"x"), Err(SendError::Again));
        assert_eq!(q.stat().unwrap().qnum, 2, "a lent message is still counted");
        let mut b = [0u8; 8192];
        let next = q.try_recv(&mut b, Selector::Any).unwrap();
        assert_eq!(b[0], 2, "but no other receiver gets it: {next:?}");
    }
    assert_eq!(q.stat().unwrap().qnum, 0);
    q.try_send(1, b"x").unwrap();
}

/// Every form of send and receive: `try_` never waits, `_timeout` and
/// `_deadline` give up with `TimedOut` (a deadline already past at once, a
/// `Duration` beyond `Instant`'s range means "for ever"), and the loan has
/// the same four forms; options truncate and select as `msgrcv`'s flags.
#[test]
fn the_try_timeout_and_deadline_forms() {
    use std::time::{Duration, Instant};
    let _w = watchdog(60);
    let t = TempNamespace::with_config("msgmax = 8192\nmsgmnb = 16384\n");
    let q = t.ns.get(IPC_PRIVATE, create(0o600)).unwrap();
    let mut buf = [0u8; 64];
    let past = Instant::now();
    let soon = || Instant::now() + Duration::from_millis(20);
    // Empty queue.
    assert_eq!(
        q.try_recv(&mut buf, Selector::Any),
        Err(RecvError::NoMessage)
    );
    assert_eq!(
        q.recv_deadline(&mut buf, Selector::Any, past),
        Err(RecvError::TimedOut)
    );
    assert_eq!(
        q.recv_deadline(&mut buf, Selector::Any, soon()),
        Err(RecvError::TimedOut)
    );
    assert_eq!(
        q.try_recv_lend(Selector::Any).map(|l| l.mtype()),
        Err(RecvError::NoMessage)
    );
    assert_eq!(
        q.recv_lend_timeout(Selector::Any, Duration::from_millis(20))
            .map(|l| l.mtype()),
        Err(RecvError::TimedOut)
    );
    assert_eq!(
        q.recv_lend_deadline(Selector::Any, soon())
            .map(|l| l.mtype()),
        Err(RecvError::TimedOut)
    );
    // Full queue (16384 bytes).
    q.send_deadline(5, &[5; 8192], soon()).unwrap();
    q.send_timeout(6, &[6; 8192], Duration::MAX).unwrap();
    assert_eq!(q.try_send(7, b"x"), Err(SendError::Again));
    assert_eq!(q.send_deadline(7, b"x", past), Err(SendError::TimedOut));
    assert_eq!(q.send_deadline(7, b"x", soon()), Err(SendError::TimedOut));
    // A message there: every form takes it at once.
    let mut big = [0u8; 8192];
    let m = q
        .recv_timeout(&mut big, Selector::Except(5), Duration::MAX)
        .unwrap();
    assert_eq!((m.mtype, m.len), (6, 8192));
    let loan = q.recv_lend_deadline(Selector::AtMost(5), past).unwrap();
    assert_eq!((loan.mtype(), loan.len()), (5, 8192));
    drop(loan);
    q.try_send(8, b"eight").unwrap();
    let mut small = [0u8; 3];
    assert_eq!(
        q.recv_deadline(&mut small, Selector::Type(8), past),
        Err(RecvError::TooBig)
    );
    let m = q
        .recv(&mut small, RecvOptions::new(Selector::Type(8)).truncate())
        .unwrap();
    assert_eq!((m.mtype, m.len, &small), (8, 3, b"eig"));
    assert_eq!(q.stat().unwrap().qnum, 0);
    // Errors are the operation's own, with the kernel's errno.
    assert_eq!(q.try_send(0, b"type 0").unwrap_err().errno(), libc::EINVAL);
    q.remove().unwrap();
    assert_eq!(q.try_send(1, b"gone"), Err(SendError::Invalid));
    assert_eq!(q.try_recv(&mut buf, Selector::Any), Err(RecvError::Invalid));
}
