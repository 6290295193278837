//! SIGKILL senders and receivers at random moments; afterwards nothing is
//! duplicated, nothing is lost beyond one message per killed receiver, nothing
//! hangs, and the queue's capacity returns to full.

mod common;
use common::*;
use shmq::*;
use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

const KEY: i32 = 0x4b11;

/// Entry point of child processes; a no-op in a normal run.
#[test]
fn child_main() {
    let Some((role, args)) = my_role() else {
        return;
    };
    let ns = Namespace::open_default().unwrap();
    let q = ns.get(KEY, GetOptions::new()).unwrap();
    let me: u32 = args[0].parse().unwrap();
    // One line per completed operation, written (unbuffered, one write(2)
    // each) after the call returned: a kill between the call and the write is
    // the "one message in flight" a killed process may account for.
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&args[1])
        .unwrap();
    match role.as_str() {
        "sender" => {
            for seq in 0u64.. {
                let mtype = 1 + (seq % 3) as i64;
                q.send(mtype, &encode_message(me, seq, mtype, (seq % 100) as usize))
                    .unwrap();
                log.write_all(format!("{me} {seq}\n").as_bytes()).unwrap();
            }
        }
        _ => {
            let mut buf = vec![0u8; 8192];
            loop {
                let sel = if me % 2 == 0 {
                    Selector::Any
                } else {
                    Selector::AtMost(2)
                };
                let m = q.recv(&mut buf, sel).unwrap();
                let (p, s, t) = decode_message(&buf[..m.len]).expect("intact message");
                assert_eq!(t, m.mtype);
                log.write_all(format!("{p} {s}\n").as_bytes()).unwrap();
            }
        }
    }
}

fn read_log(path: &std::path::Path) -> Vec<(u32, u64)> {
    complete_lines(path)
        .iter()
        .filter_map(|l| {
            let mut it = l.split(' ');
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        })
        .collect()
}

#[test]
fn sigkill_at_random_moments_loses_nothing_else() {
    let _w = watchdog(600);
    let t = TempNamespace::new();
    let q = t.ns.get(KEY, create(0o600)).unwrap();
    let kills_wanted = if cfg!(debug_assertions) { 40 } else { 300 };
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut running: Vec<(std::process::Child, bool, u32)> = vec![];
    let mut logs = vec![];
    let mut killed_receivers = 0;
    let mut kills = 0;
    let mut serial = 0u32;
    while kills < kills_wanted {
        // Keep two senders and two receivers alive.
        for want_sender in [true, true, false, false] {
            let have = running.iter().filter(|r| r.1 == want_sender).count();
            if have < 2 {
                serial += 1;
                let log = t.dir.join(format!("log.{serial}"));
                let role = if want_sender { "sender" } else { "receiver" };
                let child = spawn_role(
                    role,
                    &t.dir,
                    &[serial.to_string(), log.to_string_lossy().into_owned()],
                );
                logs.push((want_sender, log));
                running.push((child, want_sender, serial));
            }
        }
        std::thread::sleep(Duration::from_micros(2000 + next(20_000)));
        let victim = next(running.len() as u64) as usize;
        let (mut child, is_sender, _) = running.swap_remove(victim);
        kill_and_reap(
            &mut child,
            if is_sender { "a sender" } else { "a receiver" },
        );
        kills += 1;
        if !is_sender {
            killed_receivers += 1;
        }
    }
    for (mut child, is_sender, _) in running.drain(..) {
        kill_and_reap(
            &mut child,
            if is_sender { "a sender" } else { "a receiver" },
        );
        if !is_sender {
            killed_receivers += 1;
        }
    }
    // Recover what the dead held, then drain what is left.
    shmq::test_hooks::recover(&q);
    let mut received: Vec<(u32, u64)> = vec![];
    let mut buf = vec![0u8; 8192];
    while let Ok(m) = q.try_recv(&mut buf, Selector::Any) {
        let (p, s, _) = decode_message(&buf[..m.len]).expect("intact message");
        received.push((p, s));
    }
    let mut sent = HashSet::new();
    for (is_sender, log) in &logs {
        let entries = read_log(log);
        if *is_sender {
            sent.extend(entries);
        } else {
            received.extend(entries);
        }
    }
    let mut seen = HashSet::new();
    for r in &received {
        assert!(seen.insert(*r), "message {r:?} received twice");
    }
    let lost: Vec<_> = sent.iter().filter(|m| !seen.contains(m)).collect();
    assert!(
        lost.len() <= killed_receivers,
        "{} messages lost, more than the {killed_receivers} killed receivers could hold: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(
        sent.len() > 1000,
        "the test moved too little traffic ({} messages)",
        sent.len()
    );
    // Capacity returns to full.
    let st = q.stat().unwrap();
    assert_eq!((st.qnum, st.cbytes), (0, 0), "accounting after recovery");
    let mut filled = 0;
    while q.try_send(1, &[7; 1000]).is_ok() {
        filled += 1000;
    }
    assert_eq!(filled, 16000, "a full queue's worth of messages fits again");
    let f = q.figures();
    assert!(
        f.nodes_in_use <= 16 + 3 + 8,
        "nodes still held after recovery: {f:?}"
    );
    eprintln!(
        "kills {kills}, killed receivers {killed_receivers}, sent {}, lost {}",
        sent.len(),
        lost.len()
    );
    q.remove().unwrap();
}
