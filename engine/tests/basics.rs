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
