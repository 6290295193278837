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
        q.send(3, &text, SendFlags::default()).unwrap();
        let mut buf = vec![0u8; 8192];
        let m = q
            .recv(&mut buf, Selector::Type(3), RecvFlags::default())
            .unwrap();
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
            q.send(ty, &ty.to_le_bytes(), SendFlags::default()).unwrap();
        }
        let mut buf = [0u8; 8];
        let m = q
            .recv(
                &mut buf,
                Selector::from_msgtyp(msgtyp, false),
                RecvFlags {
                    nowait: true,
                    noerror: false,
                },
            )
            .unwrap();
        assert_eq!(m.mtype, want, "msgtyp {msgtyp}");
        // drain
        while q
            .recv(
                &mut buf,
                Selector::Any,
                RecvFlags {
                    nowait: true,
                    noerror: false,
                },
            )
            .is_ok()
        {}
    }
}

#[test]
fn full_queue_and_empty_queue_errors() {
    let _w = watchdog(60);
    let t = TempNamespace::new();
    let q = t.ns.get(IPC_PRIVATE, create(0o600)).unwrap();
    let nowait = SendFlags { nowait: true };
    q.send(1, &[0u8; 8192], nowait).unwrap();
    q.send(1, &[0u8; 8192], nowait).unwrap();
    assert_eq!(q.send(1, &[0u8; 1], nowait), Err(SendError::Again));
    let mut small = [0u8; 10];
    assert_eq!(
        q.recv(&mut small, Selector::Any, RecvFlags::default()),
        Err(RecvError::TooBig)
    );
    let m = q
        .recv(
            &mut small,
            Selector::Any,
            RecvFlags {
                nowait: true,
                noerror: true,
            },
        )
        .unwrap();
    assert_eq!(m.len, 10);
    assert_eq!(
        q.recv(
            &mut small,
            Selector::Type(2),
            RecvFlags {
                nowait: true,
                noerror: false
            }
        ),
        Err(RecvError::NoMessage)
    );
    assert_eq!(q.stat().unwrap().qnum, 1);
}
