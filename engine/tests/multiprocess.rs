//! Real processes (this test binary re-invoked in a role) sharing queues.

mod common;
use common::*;
use shmq::*;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};

const KEY: i32 = 0x5151;

/// Entry point of child processes; a no-op in a normal test run.
#[test]
fn child_main() {
    let Some((role, args)) = my_role() else {
        return;
    };
    let ns = Namespace::open_default().unwrap();
    let num = |i: usize| args[i].parse::<u64>().unwrap();
    let out = std::io::stdout();
    let mut out = out.lock();
    match role.as_str() {
        "send_one" => {
            let q = ns.get(KEY, create(0o660)).unwrap();
            q.send(num(0) as i64, args[1].as_bytes()).unwrap();
        }
        "recv_one" => {
            let q = ns.get(KEY, GetOptions::new()).unwrap();
            let mut buf = [0u8; 8192];
            let m = q.recv(&mut buf, Selector::Type(num(0) as i64)).unwrap();
            out.write_all(b"OUT:").unwrap();
            out.write_all(&buf[..m.len]).unwrap();
            out.write_all(b"\n").unwrap();
        }
        "producer" => {
            // args: producer index, messages, types, pad
            let q = ns.get(KEY, GetOptions::new()).unwrap();
            let (p, n, types, pad) = (num(0) as u32, num(1), num(2), num(3) as usize);
            for seq in 0..n {
                let mtype = 1 + (seq % types) as i64;
                q.send(
                    mtype,
                    &encode_message(p, seq, mtype, (seq as usize * 13) % (pad + 1)),
                )
                .unwrap();
            }
        }
        "consumer" => {
            // args: selector kind (0 = any, t = type t), output file; writes
            // one line per message to the file (a pipe could fill and block us)
            let q = ns.get(KEY, GetOptions::new()).unwrap();
            let sel = match num(0) {
                0 => Selector::Any,
                t => Selector::Type(t as i64),
            };
            let mut buf = vec![0u8; 8192];
            let mut out = std::io::BufWriter::new(std::fs::File::create(&args[1]).unwrap());
            loop {
                let m = q.recv(&mut buf, sel).unwrap();
                if m.mtype == 1000 || &buf[..m.len] == b"stop" {
                    out.flush().unwrap();
                    break;
                }
                match decode_message(&buf[..m.len]) {
                    Ok((p, s, t)) => {
                        assert_eq!(t, m.mtype, "type in text matches mtype");
                        writeln!(out, "{p} {s} {t}").unwrap();
                    }
                    Err(e) => panic!("damaged message: {e}"),
                }
            }
        }
        "stream" => {
            // args: count; sends type-1 messages as fast as the queue allows
            let q = ns.get(KEY, GetOptions::new()).unwrap();
            for seq in 0..num(0) {
                q.send(1, &seq.to_le_bytes()).unwrap();
            }
        }
        "drain_stream" => {
            let q = ns.get(KEY, GetOptions::new()).unwrap();
            let mut buf = [0u8; 8];
            for seq in 0..num(0) {
                let m = q.recv(&mut buf, Selector::Type(1)).unwrap();
                assert_eq!(u64::from_le_bytes(buf), seq, "type-1 order");
                assert_eq!(m.len, 8);
            }
            writeln!(out, "OUT:done").unwrap();
        }
        other => panic!("unknown role {other}"),
    }
    out.flush().unwrap();
}

/// Waits for `child` and returns what it reported on lines starting with
/// `OUT:` (the test harness prints its own lines too).
fn output(child: std::process::Child) -> String {
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "child failed: {:?}", o.status);
    let text = String::from_utf8(o.stdout).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("OUT:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn sender_exits_before_receiver_starts() {
    let _w = watchdog(60);
    let t = TempNamespace::new();
    output(spawn_role(
        "send_one",
        &t.dir,
        &["7".into(), "left-behind".into()],
    ));
    let got = output(spawn_role("recv_one", &t.dir, &["7".into()]));
    assert_eq!(got, "left-behind");
}

#[test]
fn producers_by_consumers_by_types_exactly_once_in_order() {
    let _w = watchdog(240);
    let t = TempNamespace::new();
    let q = t.ns.get(KEY, create(0o660)).unwrap();
    let (producers, per_producer, types) = (3u32, 20_000u64, 4u64);
    // Two consumers of any type and one consumer per type.
    let file = |i: usize| {
        t.dir
            .join(format!("consumer.{i}"))
            .to_string_lossy()
            .into_owned()
    };
    let kinds: Vec<u64> = [0, 0].into_iter().chain(1..=types).collect();
    let consumers: Vec<_> = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| spawn_role("consumer", &t.dir, &[k.to_string(), file(i)]))
        .collect();
    let prods: Vec<_> = (0..producers)
        .map(|p| {
            spawn_role(
                "producer",
                &t.dir,
                &[
                    p.to_string(),
                    per_producer.to_string(),
                    types.to_string(),
                    "200".into(),
                ],
            )
        })
        .collect();
    for p in prods {
        output(p);
    }
    // Stop the any-type consumers first (type 1000, which no typed consumer
    // wants), and only once they are gone the typed ones (a `stop` text of
    // their own type): an any-type consumer would otherwise take a typed
    // consumer's stop and leave it waiting forever.
    for _ in 0..2 {
        q.send(1000, b"stop").unwrap();
    }
    let mut consumers = consumers.into_iter();
    let mut finished: Vec<_> = consumers
        .by_ref()
        .take(2)
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for ty in 1..=types {
        q.send(ty as i64, b"stop").unwrap();
    }
    finished.extend(consumers.map(|c| c.wait_with_output().unwrap()));
    let mut seen = HashSet::new();
    let mut total = 0;
    for (i, o) in finished.into_iter().enumerate() {
        assert!(o.status.success(), "consumer {i} failed: {:?}", o.status);
        let mut last: HashMap<(u32, i64), u64> = HashMap::new();
        for line in BufReader::new(std::fs::File::open(file(i)).unwrap()).lines() {
            let line = line.unwrap();
            let v: Vec<u64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
            let (p, s, ty) = (v[0] as u32, v[1], v[2] as i64);
            assert!(seen.insert((p, s)), "message ({p}, {s}) received twice");
            if let Some(&prev) = last.get(&(p, ty)) {
                assert!(
                    s > prev,
                    "order of producer {p} type {ty} broken: {prev} then {s}"
                );
            }
            last.insert((p, ty), s);
            total += 1;
        }
    }
    assert_eq!(
        total,
        producers as u64 * per_producer,
        "every message received once"
    );
    let st = q.stat().unwrap();
    assert_eq!((st.qnum, st.cbytes), (0, 0));
    q.remove().unwrap();
}

#[test]
fn unread_type_999_never_blocks_a_million_messages() {
    let _w = watchdog(300);
    let t = TempNamespace::new();
    let q = t.ns.get(KEY, create(0o660)).unwrap();
    assert_eq!(q.stat().unwrap().qbytes, 16384);
    q.send(999, b"nobody reads me").unwrap();
    let n = if cfg!(debug_assertions) {
        100_000
    } else {
        1_000_000
    };
    let consumer = spawn_role("drain_stream", &t.dir, &[n.to_string()]);
    let producer = spawn_role("stream", &t.dir, &[n.to_string()]);
    output(producer);
    assert_eq!(output(consumer).trim(), "done");
    let st = q.stat().unwrap();
    assert_eq!((st.qnum, st.cbytes), (1, 15));
    let mut buf = [0u8; 64];
    let m = q.try_recv(&mut buf, Selector::Any).unwrap();
    assert_eq!((m.mtype, &buf[..m.len]), (999, &b"nobody reads me"[..]));
    q.remove().unwrap();
}

#[test]
#[ignore = "debugging aid: SHMQ_DUMP_DIR=<namespace> dumps queue 0"]
fn dump_queue() {
    let dir = std::env::var("SHMQ_DUMP_DIR").unwrap();
    let ns = Namespace::open(dir).unwrap();
    for id in ns.ids() {
        println!("{}", shmq::test_hooks::debug_dump(&ns.queue(id).unwrap()));
    }
}
