//! The waiting policy (issue 14): who is woken, and what a blocked caller
//! costs. The figures that depend on the machine (CPU time) are reported,
//! never asserted; what is asserted (how many sleepers a send wakes) does not
//! depend on timing.

mod common;
use common::*;
use shmq::test_hooks::*;
use shmq::*;
use std::io::{BufRead, BufReader};
use std::time::Duration;

const KEY: i32 = 0x5714;

/// Entry point of child processes; a no-op in a normal test run.
#[test]
fn child_main() {
    let Some((role, args)) = my_role() else {
        return;
    };
    match role.as_str() {
        "wake_count" => wake_count(args[0].parse().unwrap()),
        r => panic!("unknown role {r}"),
    }
}

/// This thread's kernel id.
fn gettid() -> u32 {
    // SAFETY: gettid(2) takes no arguments and cannot fail.
    unsafe { libc::gettid() as u32 }
}

/// The state letter of thread `tid` of this process (`/proc/self/task`).
fn thread_state(tid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim_start().chars().next()
}

/// Waits until every thread in `tids` is asleep (`S`) and the queue counts
/// `sleepers` sleepers; panics after about 20 s.
fn until_all_asleep(q: &Queue, tids: &[u32], sleepers: usize) {
    for _ in 0..2000 {
        if q.figures().sleepers == sleepers && tids.iter().all(|&t| thread_state(t) == Some('S')) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "the receivers never all went to sleep ({} of {sleepers} parked)",
        q.figures().sleepers
    );
}

/// Child: `n` threads block receiving type 1 and one receiving type 2; once
/// all sleep, one message of type 1 is sent. Prints how many futex sleeps of
/// this process ended with a wake-up because of that send (`WAKE_UPS k`),
/// after every receiver that did not get the message is asleep again (a
/// woken thread counts its wake-up before it can sleep again, and the wake
/// itself makes it runnable before the send returns).
fn wake_count(n: usize) {
    let ns = Namespace::open_default().unwrap();
    let q = ns.get(KEY, GetOptions::new()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<(usize, u32)>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<(usize, i64)>();
    let mut threads = Vec::new();
    for i in 0..=n {
        let (q, tx, done_tx) = (q.clone(), tx.clone(), done_tx.clone());
        threads.push(std::thread::spawn(move || {
            tx.send((i, gettid())).unwrap();
            let mtype = if i == n { 2 } else { 1 };
            let mut buf = [0u8; 64];
            let m = q.recv(&mut buf, Selector::Type(mtype)).unwrap();
            done_tx.send((i, m.mtype)).unwrap();
        }));
    }
    let mut tids: Vec<(usize, u32)> = (0..=n).map(|_| rx.recv().unwrap()).collect();
    tids.sort_unstable();
    let all: Vec<u32> = tids.iter().map(|&(_, t)| t).collect();
    until_all_asleep(&q, &all, n + 1);

    let before = futex_wake_ups();
    q.send(1, b"one").unwrap();
    let (got, mtype) = done_rx.recv().unwrap();
    assert_eq!(mtype, 1);
    let rest: Vec<u32> = tids
        .iter()
        .filter(|&&(i, _)| i != got)
        .map(|&(_, t)| t)
        .collect();
    until_all_asleep(&q, &rest, n);
    let woken = futex_wake_ups() - before;
    println!("WAKE_UPS {woken}");

    // Let everyone go.
    for _ in 1..n {
        q.send(1, b"more").unwrap();
    }
    q.send(2, b"two").unwrap();
    for t in threads {
        t.join().unwrap();
    }
}

/// 100 receivers asleep on type 1 (and one on type 2) and one send of type
/// 1: exactly one sleeper wakes (the previous protocol, one futex word per
/// type woken with FUTEX_WAKE(all), woke all 100).
#[test]
fn one_send_wakes_one_of_100_sleeping_receivers() {
    let _w = watchdog(120);
    let t = TempNamespace::new();
    let q = t.ns.get(KEY, create(0o600)).unwrap();
    let mut child = spawn_role("wake_count", &t.dir, &["100".into()]);
    let out = BufReader::new(child.stdout.take().unwrap());
    let lines: Vec<String> = out.lines().map_while(Result::ok).collect();
    assert!(child.wait().unwrap().success(), "the child failed");
    let line = lines
        .iter()
        .find(|l| l.starts_with("WAKE_UPS "))
        .expect("the child reports its wake-ups");
    let woken: u64 = line["WAKE_UPS ".len()..].trim().parse().unwrap();
    eprintln!("100 receivers of type 1 and 1 of type 2 asleep, one send of type 1: {woken} woken");
    assert_eq!(woken, 1, "one message must wake one receiver");
    q.remove().unwrap();
}

/// CPU time used by a thread (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a
    // constant the kernel knows.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A receiver blocked for 1 s on an empty queue, with a peer attached and
/// running on another thread: reports the CPU time it used (the target is
/// under 1% of a CPU: spinning stops within about 50 µs). Reports only: CPU
/// time depends on the machine; the call must end with `TimedOut`.
#[test]
fn blocked_receiver_cpu_time_is_reported() {
    let _w = watchdog(60);
    let t = TempNamespace::new();
    let q = t.ns.get(KEY, create(0o600)).unwrap();
    // A peer attached (it has sent once) and awake: the receiver may spin
    // for it, for a while.
    q.send(9, b"x").unwrap();
    let r = q.clone();
    let used = std::thread::spawn(move || {
        let mut buf = [0u8; 16];
        let wall = std::time::Instant::now();
        let cpu = thread_cpu_time();
        let e = r
            .recv_timeout(&mut buf, Selector::Type(1), Duration::from_secs(1))
            .unwrap_err();
        assert_eq!(e, RecvError::TimedOut);
        (thread_cpu_time() - cpu, wall.elapsed())
    })
    .join()
    .unwrap();
    let (cpu, wall) = used;
    eprintln!(
        "receiver blocked {:.3} s on an empty queue used {} us of CPU ({:.3}% of a CPU)",
        wall.as_secs_f64(),
        cpu.as_micros(),
        cpu.as_secs_f64() * 100.0 / wall.as_secs_f64()
    );
    q.remove().unwrap();
}
