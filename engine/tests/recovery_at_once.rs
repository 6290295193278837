//! Issue 15, "Recovery at once": producers and consumers are killed with
//! SIGKILL at random moments (consumers also while asleep, and while they
//! hold a zero-copy loan) and restarted, hundreds of times; right after the
//! last one is reaped, with no explicit recovery call and nobody asleep:
//!
//! - `stat()` (IPC_STAT) counts exactly what a drain with IPC_NOWAIT then
//!   receives, and `Namespace::info()` (MSG_INFO) agrees;
//! - after the drain, `qnum == 0` and `cbytes == 0`;
//! - IPC_NOWAIT sends fill exactly `qbytes / size` messages.
//!
//! Before the liveness locks, the dead processes' in-flight reservations
//! stayed counted until a sleeper's long sleep, a full slot table or the
//! doctor recovered them, so each of these failed.

mod common;
use common::*;
use shmq::*;
use std::io::{BufRead, Write};
use std::time::Duration;

const KEY: i32 = 0x15a7;
/// Text size of the one-type round (the 40 B messages).
const SIZE: usize = 40;
/// A type nobody sends: consumers wait for it to be killed while asleep.
const NOBODY: i64 = 999;

/// Entry point of child processes; a no-op in a normal run.
#[test]
fn child_main() {
    let Some((role, args)) = my_role() else {
        return;
    };
    let ns = Namespace::open_default().unwrap();
    let q = ns.get(KEY, GetOptions::new()).unwrap();
    let mixed = args[0] == "mixed";
    // Tell the parent we are at work: it kills only children that are.
    let mut out = std::io::stdout();
    out.write_all(b"ready\n").unwrap();
    out.flush().unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ std::process::id() as u64);
    match role.as_str() {
        "producer" => {
            let text = [b'p'; 256];
            for seq in 0u64.. {
                let (mtype, len) = if mixed {
                    (1 + (seq % 5) as i64, 8 + (seq * 37 % 120) as usize)
                } else {
                    (1, SIZE)
                };
                q.send(mtype, &text[..len]).unwrap();
            }
        }
        _ => {
            let mut buf = [0u8; 256];
            loop {
                let r = rng.below(16);
                let sel = match r {
                    0 => Selector::Type(NOBODY), // asleep until killed
                    _ if !mixed => Selector::Any,
                    _ => match r % 4 {
                        0 => Selector::Any,
                        1 => Selector::Type(1 + (r % 5) as i64),
                        2 => Selector::AtMost(3),
                        _ => Selector::Except(2),
                    },
                };
                if r % 3 == 1 {
                    // A zero-copy loan, held a while: killed holding it.
                    let loan = q.recv_lend(sel).unwrap();
                    let sum: u64 = loan.with_text(|t| t.iter().map(|&b| b as u64).sum());
                    std::hint::black_box(sum);
                    std::thread::sleep(Duration::from_micros(200));
                    drop(loan);
                } else {
                    q.recv(&mut buf, sel).unwrap();
                }
            }
        }
    }
}

/// Child processes, killed and reaped when dropped (also when a check
/// fails, so that none outlives the test).
struct Children(Vec<std::process::Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Runs `producers` x `consumers` with random SIGKILLs, `kills` in all, then
/// checks counts and capacity right after the reaping.
fn kill_round(producers: usize, consumers: usize, mixed: bool, kills: usize) {
    let _w = watchdog(300);
    let t = TempNamespace::with_config("msgmnb = 16384\n");
    let q = t.ns.get(KEY, create(0o600)).unwrap();
    let arg = if mixed { "mixed" } else { "one" }.to_string();
    let spawn = |i: usize| {
        let role = if i < producers {
            "producer"
        } else {
            "consumer"
        };
        spawn_role(role, &t.dir, std::slice::from_ref(&arg))
    };
    let n = producers + consumers;
    let mut running = Children((0..n).map(spawn).collect());
    let mut ready = vec![false; n];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..kills {
        let victim = rng.below(n as u64) as usize;
        if !ready[victim] {
            // Wait until it has opened the queue (a start-up takes longer
            // than the gaps between kills), then give it a moment to work.
            // (libtest prints its own lines first.)
            let out = running.0[victim].stdout.as_mut().unwrap();
            let mut out = std::io::BufReader::new(out);
            let mut line = String::new();
            while line != "ready\n" {
                line.clear();
                let n = out.read_line(&mut line).unwrap();
                assert!(n > 0, "a child ended before it was ready");
            }
        }
        std::thread::sleep(Duration::from_micros(rng.below(4000)));
        kill_and_reap(&mut running.0[victim], "a producer or consumer");
        running.0[victim] = spawn(victim);
        ready[victim] = false;
    }
    for mut child in std::mem::take(&mut running.0) {
        kill_and_reap(&mut child, "a producer or consumer");
    }

    // Right after the reaping: no recovery call, nobody asleep.
    let before = q.stat().unwrap();
    let info = t.ns.info();
    let mut buf = [0u8; 256];
    let (mut drained, mut bytes) = (0u64, 0u64);
    let end = loop {
        match q.try_recv(&mut buf, Selector::Any) {
            Ok(m) => {
                drained += 1;
                bytes += m.len as u64;
            }
            Err(e) => break e,
        }
    };
    assert_eq!(end, RecvError::NoMessage);
    assert_eq!(
        (before.qnum, before.cbytes),
        (drained, bytes),
        "IPC_STAT right after the kills counted messages that a drain did not find"
    );
    assert_eq!(
        (info.messages, info.bytes),
        (drained, bytes),
        "MSG_INFO right after the kills"
    );
    let after = q.stat().unwrap();
    assert_eq!(
        (after.qnum, after.cbytes),
        (0, 0),
        "IPC_STAT after the drain"
    );
    let mut filled = 0u64;
    let end = loop {
        match q.try_send(1, &[b'f'; SIZE]) {
            Ok(()) => filled += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(end, SendError::Again);
    assert_eq!(
        filled,
        after.qbytes / SIZE as u64,
        "IPC_NOWAIT sends into the drained queue"
    );
    eprintln!("{kills} kills; {drained} messages left; filled {filled}");
    q.remove().unwrap();
}

#[test]
fn one_producer_one_consumer_killed_at_random_counts_and_capacity_exact_at_once() {
    kill_round(1, 1, false, 300);
}

#[test]
fn four_producers_four_consumers_mixed_types_killed_at_random_counts_exact_at_once() {
    kill_round(4, 4, true, 300);
}
