//! shmq-async: many tasks on few queues, every selector, cancellation,
//! loans held across awaits and threads, IPC_RMID, and real processes on
//! the other side (the test binary re-executed with SHMQ_ASYNC_CHILD).

use shmq::{GetOptions, Namespace, Queue, QueueSet, RecvError, RecvOptions, Selector, IPC_PRIVATE};
use shmq_async::AsyncQueue;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every test's watchdog: a hang fails instead of blocking CI.
const WATCHDOG: Duration = Duration::from_secs(120);

struct NsDir(PathBuf);

impl NsDir {
    fn new(tag: &str) -> NsDir {
        let p = PathBuf::from(format!(
            "/dev/shm/shmq-test-{}-async-{tag}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        NsDir(p)
    }
}

impl Drop for NsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn private_queue(ns: &Namespace, qbytes: u64) -> Queue {
    let q = ns
        .get(IPC_PRIVATE, GetOptions::new().create(true).mode(0o600))
        .unwrap();
    let st = q.stat().unwrap();
    q.set(QueueSet {
        uid: st.perm.uid,
        gid: st.perm.gid,
        mode: st.perm.mode,
        qbytes,
    })
    .unwrap();
    q
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_time()
        .build()
        .unwrap()
}

/// A message's text: sender, sequence number, then filler up to `len`.
fn text(sender: u32, seq: u32, len: usize) -> Vec<u8> {
    let mut t = Vec::with_capacity(len.max(8));
    t.extend_from_slice(&sender.to_le_bytes());
    t.extend_from_slice(&seq.to_le_bytes());
    t.resize(len.max(8), (seq % 251) as u8);
    t
}

fn parse(t: &[u8]) -> (u32, u32) {
    (
        u32::from_le_bytes(t[0..4].try_into().unwrap()),
        u32::from_le_bytes(t[4..8].try_into().unwrap()),
    )
}

/// 8 senders and 20 receivers with every kind of selector (and loans) on
/// two small queues (senders block on space, receivers on messages): every
/// message received exactly once, per (sender, type) in order for the
/// receivers of one type. Receivers still waiting at the end are dropped
/// (cancelled) and the queues must then be empty.
#[test]
fn many_tasks_few_queues_every_selector() {
    let dir = NsDir::new("many");
    let ns = Namespace::open(&dir.0).unwrap();
    let queues: Vec<AsyncQueue> = (0..2)
        .map(|_| AsyncQueue::new(private_queue(&ns, 600)))
        .collect();
    const SENDERS: u32 = 8;
    const PER_SENDER: u32 = 1500;
    // (queue, sender, seq) -> type received
    type Got = HashMap<(usize, u32, u32), i64>;
    let got: Arc<Mutex<Got>> = Arc::default();
    let order_bad: Arc<Mutex<Vec<String>>> = Arc::default();
    let rt = runtime(2);
    rt.block_on(async {
        tokio::time::timeout(WATCHDOG, async {
            let mut receivers = Vec::new();
            for (qi, q) in queues.iter().enumerate() {
                let selectors = [
                    Selector::Type(1),
                    Selector::Type(1),
                    Selector::Type(2),
                    Selector::Type(3),
                    Selector::AtMost(2),
                    Selector::AtMost(4),
                    Selector::Except(1),
                    Selector::Except(3),
                    Selector::Any,
                    Selector::Any,
                ];
                for (ri, sel) in selectors.into_iter().enumerate() {
                    let q = q.clone();
                    let got = got.clone();
                    let order_bad = order_bad.clone();
                    let lend = ri % 3 == 0;
                    receivers.push(tokio::spawn(async move {
                        let mut last: HashMap<(u32, i64), u32> = HashMap::new();
                        let mut buf = vec![0u8; 512];
                        loop {
                            let (mtype, s, n) = if lend {
                                let loan = q.recv_lend(sel).await.unwrap();
                                // Held across an await (and maybe a thread).
                                tokio::task::yield_now().await;
                                let (s, n) = loan.with_text(parse);
                                (loan.mtype(), s, n)
                            } else {
                                let m = q.recv(&mut buf, sel).await.unwrap();
                                let (s, n) = parse(&buf[..m.len]);
                                (m.mtype, s, n)
                            };
                            if let Selector::Type(_) = sel {
                                if let Some(&prev) = last.get(&(s, mtype)) {
                                    if n <= prev {
                                        order_bad.lock().unwrap().push(format!(
                                            "queue {qi} sender {s} type {mtype}: {n} after {prev}"
                                        ));
                                    }
                                }
                                last.insert((s, mtype), n);
                            }
                            let dup = got.lock().unwrap().insert((qi, s, n), mtype);
                            assert!(dup.is_none(), "duplicate: queue {qi} sender {s} seq {n}");
                        }
                    }));
                }
            }
            let mut senders = Vec::new();
            for s in 0..SENDERS {
                let q = queues[s as usize % 2].clone();
                senders.push(tokio::spawn(async move {
                    for n in 0..PER_SENDER {
                        let mtype = (n % 4 + 1) as i64;
                        q.send(mtype, &text(s, n, 8 + (n as usize * 7) % 120))
                            .await
                            .unwrap();
                    }
                }));
            }
            for s in senders {
                s.await.unwrap();
            }
            while got.lock().unwrap().len() < (SENDERS * PER_SENDER) as usize {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            for r in &receivers {
                r.abort();
            }
            for r in receivers {
                let e = r.await.unwrap_err();
                assert!(e.is_cancelled(), "{e}");
            }
        })
        .await
        .expect("watchdog: the tasks did not finish");
    });
    let got = got.lock().unwrap();
    assert_eq!(got.len(), (SENDERS * PER_SENDER) as usize);
    for ((_, _, n), mtype) in got.iter() {
        assert_eq!(*mtype, (n % 4 + 1) as i64);
    }
    assert!(
        order_bad.lock().unwrap().is_empty(),
        "{:?}",
        order_bad.lock().unwrap()
    );
    for q in &queues {
        assert_eq!(q.queue().stat().unwrap().qnum, 0);
        q.queue().remove().unwrap();
    }
}

/// Receives raced by timeouts (futures dropped at random points while a
/// sender streams): what the receives got plus what is left is exactly what
/// was sent, nothing twice.
#[test]
fn dropped_futures_lose_and_duplicate_nothing() {
    let dir = NsDir::new("cancel");
    let ns = Namespace::open(&dir.0).unwrap();
    let q = AsyncQueue::new(private_queue(&ns, 400));
    const N: u32 = 3000;
    let rt = runtime(2);
    let received: Vec<u32> = rt.block_on(async {
        tokio::time::timeout(WATCHDOG, async {
            let sender = {
                let q = q.clone();
                tokio::spawn(async move {
                    for n in 0..N {
                        // Space waits cancelled too, then redone.
                        loop {
                            let t = text(0, n, 16);
                            let f = q.send(1 + (n % 3) as i64, &t);
                            if tokio::time::timeout(
                                Duration::from_micros(50 + (n % 7) as u64 * 30),
                                f,
                            )
                            .await
                            .is_ok()
                            {
                                break;
                            }
                        }
                    }
                })
            };
            let mut tasks = Vec::new();
            for r in 0..4u64 {
                let q = q.clone();
                tasks.push(tokio::spawn(async move {
                    let mut mine = Vec::new();
                    let mut buf = [0u8; 64];
                    let mut i = 0u64;
                    let sel = [
                        Selector::Any,
                        Selector::Type(2),
                        Selector::AtMost(2),
                        Selector::Except(2),
                    ][r as usize];
                    for _ in 0..2_500 {
                        i += 1;
                        let f = q.recv(&mut buf, sel);
                        match tokio::time::timeout(Duration::from_micros(20 + (i * 37 % 300)), f)
                            .await
                        {
                            Ok(Ok(m)) => mine.push(parse(&buf[..m.len]).1),
                            Ok(Err(e)) => panic!("{e}"),
                            Err(_) => {}
                        }
                        if i % 5 == 0 {
                            // A loan future dropped too.
                            let f = q.recv_lend(sel);
                            if let Ok(Ok(l)) =
                                tokio::time::timeout(Duration::from_micros(40), f).await
                            {
                                mine.push(l.with_text(parse).1);
                            }
                        }
                    }
                    mine
                }));
            }
            sender.await.unwrap();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all
        })
        .await
        .expect("watchdog")
    });
    let mut all = received;
    let mut buf = [0u8; 64];
    loop {
        match q.queue().try_recv(&mut buf, Selector::Any) {
            Ok(m) => all.push(parse(&buf[..m.len]).1),
            Err(RecvError::NoMessage) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let set: HashSet<u32> = all.iter().copied().collect();
    assert_eq!(set.len(), all.len(), "a message was received twice");
    assert_eq!(set, (0..N).collect::<HashSet<u32>>(), "a message was lost");
    q.queue().remove().unwrap();
}

/// A loan counts in qnum until finished, moves between tasks, and two loans
/// at once on one queue do not disturb the receives of other tasks.
#[test]
fn loans_held_across_awaits() {
    let dir = NsDir::new("loan");
    let ns = Namespace::open(&dir.0).unwrap();
    let q = AsyncQueue::new(private_queue(&ns, 16384));
    let rt = runtime(2);
    rt.block_on(async {
        for i in 0..4 {
            q.send(5, &text(0, i, 32)).await.unwrap();
        }
        let a = q.recv_lend(Selector::Type(5)).await.unwrap();
        let b = q.recv_lend(RecvOptions::new(Selector::Any)).await.unwrap();
        assert_eq!(q.queue().stat().unwrap().qnum, 4);
        let q2 = q.clone();
        // Another task receives the rest on its worker's own slot.
        let other = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let m1 = q2.recv(&mut buf, Selector::Any).await.unwrap();
            let n1 = parse(&buf[..m1.len]).1;
            let m2 = q2.recv(&mut buf, Selector::Any).await.unwrap();
            (n1, parse(&buf[..m2.len]).1)
        });
        let moved = tokio::spawn(async move {
            tokio::task::yield_now().await;
            let n = b.with_text(parse).1;
            b.finish();
            n
        });
        assert_eq!(other.await.unwrap(), (2, 3));
        assert_eq!(moved.await.unwrap(), 1);
        assert_eq!(a.with_text(parse).1, 0);
        assert_eq!(q.queue().stat().unwrap().qnum, 1);
        drop(a);
        assert_eq!(q.queue().stat().unwrap().qnum, 0);
        assert_eq!(q.queue().stat().unwrap().cbytes, 0);
    });
    q.queue().remove().unwrap();
}

/// IPC_RMID while futures wait: receives and sends end with EIDRM.
#[test]
fn removal_ends_waiting_futures_with_eidrm() {
    let dir = NsDir::new("rmid");
    let ns = Namespace::open(&dir.0).unwrap();
    let q = AsyncQueue::new(private_queue(&ns, 100));
    let rt = runtime(2);
    rt.block_on(async {
        tokio::time::timeout(WATCHDOG, async {
            q.send(1, &[0u8; 100]).await.unwrap();
            let r = {
                let q = q.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 8];
                    q.recv(&mut buf, Selector::Type(9)).await
                })
            };
            let l = {
                let q = q.clone();
                tokio::spawn(async move { q.recv_lend(Selector::Type(9)).await.map(|_| ()) })
            };
            let s = {
                let q = q.clone();
                tokio::spawn(async move { q.send(2, &[1u8; 50]).await })
            };
            tokio::time::sleep(Duration::from_millis(50)).await;
            q.queue().remove().unwrap();
            assert_eq!(r.await.unwrap(), Err(RecvError::Removed));
            assert_eq!(l.await.unwrap(), Err(RecvError::Removed));
            assert_eq!(s.await.unwrap(), Err(shmq::SendError::Removed));
        })
        .await
        .expect("watchdog");
    });
}

/// The waiter threads sleep while futures wait: sampled several times, each
/// is in state S (a busy-polling waiter would be R). In a process of its own
/// (the test binary re-executed), where no other test's tasks keep the
/// waiter busy.
#[test]
fn a_waiting_future_costs_no_cpu() {
    if std::env::var_os("SHMQ_ASYNC_IDLE_CHILD").is_none() {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_waiting_future_costs_no_cpu",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("SHMQ_ASYNC_IDLE_CHILD", "1")
            .status()
            .unwrap();
        assert!(status.success(), "child: {status}");
        return;
    }
    let dir = NsDir::new("idle");
    let ns = Namespace::open(&dir.0).unwrap();
    let q = AsyncQueue::new(private_queue(&ns, 16384));
    let rt = runtime(1);
    rt.block_on(async {
        let waiting = {
            let q = q.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 8];
                q.recv(&mut buf, Selector::Type(3)).await.map(|m| m.mtype)
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut samples = 0;
        for _ in 0..10 {
            for (name, state) in waiter_threads() {
                assert_eq!(state, 'S', "{name} is not asleep");
                samples += 1;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(samples >= 10, "no waiter thread found");
        q.send(3, b"x").await.unwrap();
        assert_eq!(waiting.await.unwrap(), Ok(3));
    });
    q.queue().remove().unwrap();
}

/// (name, state) of this process's waiter threads.
fn waiter_threads() -> Vec<(String, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        if name.starts_with("shmq-async-wait") {
            let state = stat[close + 2..].chars().next().unwrap();
            out.push((name.to_string(), state));
        }
    }
    out
}

/// Real processes: a child sends with blocking calls into a queue that
/// async receivers here wait on (types 1..=3, each to its own task), and
/// receives with blocking calls what async senders here push through a
/// queue too small to hold it all.
#[test]
fn cross_process_blocking_peers() {
    if let Ok(role) = std::env::var("SHMQ_ASYNC_CHILD") {
        return child(&role);
    }
    let dir = NsDir::new("xproc");
    let ns = Namespace::open(&dir.0).unwrap();
    let to_async = ns
        .get(0x5a1, GetOptions::new().create(true).mode(0o600))
        .unwrap();
    let from_async = ns
        .get(0x5a2, GetOptions::new().create(true).mode(0o600))
        .unwrap();
    let st = from_async.stat().unwrap();
    from_async
        .set(QueueSet {
            uid: st.perm.uid,
            gid: st.perm.gid,
            mode: st.perm.mode,
            qbytes: 256,
        })
        .unwrap();
    const N: u32 = 3000;
    let exe = std::env::current_exe().unwrap();
    let mut kid = std::process::Command::new(exe)
        .args([
            "--exact",
            "cross_process_blocking_peers",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SHMQ_ASYNC_CHILD", format!("{}", dir.0.display()))
        .spawn()
        .unwrap();
    let a_in = AsyncQueue::new(to_async);
    let a_out = AsyncQueue::new(from_async);
    let rt = runtime(2);
    rt.block_on(async {
        tokio::time::timeout(WATCHDOG, async {
            let mut recvs = Vec::new();
            for t in 1..=3i64 {
                let q = a_in.clone();
                recvs.push(tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    let mut next = 0;
                    let want = (0..N).filter(|n| (n % 3 + 1) as i64 == t).count();
                    for _ in 0..want {
                        let m = q.recv(&mut buf, Selector::Type(t)).await.unwrap();
                        let n = parse(&buf[..m.len]).1;
                        assert!(n >= next, "type {t}: {n} after {next}");
                        assert_eq!((n % 3 + 1) as i64, t);
                        next = n + 1;
                    }
                }));
            }
            for n in 0..N {
                a_out.send(1, &text(1, n, 40)).await.unwrap();
            }
            for r in recvs {
                r.await.unwrap();
            }
        })
        .await
        .expect("watchdog");
    });
    let status = kid.wait().unwrap();
    assert!(status.success(), "child: {status}");
    a_in.queue().remove().unwrap();
    a_out.queue().remove().unwrap();
}

fn child(dir: &str) {
    let ns = Namespace::open(dir).unwrap();
    let to_async = ns.get(0x5a1, GetOptions::new()).unwrap();
    let from_async = ns.get(0x5a2, GetOptions::new()).unwrap();
    const N: u32 = 3000;
    let sender = std::thread::spawn(move || {
        for n in 0..N {
            to_async.send((n % 3 + 1) as i64, &text(2, n, 24)).unwrap();
            if n % 500 == 0 {
                // Let the async side fall asleep now and then.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    let mut buf = [0u8; 64];
    for n in 0..N {
        let m = from_async.recv(&mut buf, Selector::Any).unwrap();
        assert_eq!(parse(&buf[..m.len]), (1, n));
        if n % 700 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    sender.join().unwrap();
}

/// More distinct waits than one `futex_waitv` takes (200 types awaited on
/// one queue, 127 per waiter thread): a second waiter thread serves the
/// rest, and every task gets its message.
#[test]
fn more_waits_than_one_waiter_serves() {
    let dir = NsDir::new("wide");
    let ns = Namespace::open(&dir.0).unwrap();
    let q = AsyncQueue::new(private_queue(&ns, 16384));
    let rt = runtime(2);
    rt.block_on(async {
        tokio::time::timeout(WATCHDOG, async {
            let mut tasks = Vec::new();
            for t in 1..=200i64 {
                let q = q.clone();
                tasks.push(tokio::spawn(async move {
                    let mut buf = [0u8; 8];
                    let m = q.recv(&mut buf, Selector::Type(t)).await.unwrap();
                    assert_eq!(m.mtype, t);
                    assert_eq!(&buf[..m.len], &t.to_le_bytes());
                }));
            }
            // Once they all registered a second waiter thread serves the
            // keys past 127; then send in reverse order.
            while waiter_threads().len() < 2 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            for t in (1..=200i64).rev() {
                q.send(t, &t.to_le_bytes()).await.unwrap();
            }
            for t in tasks {
                t.await.unwrap();
            }
        })
        .await
        .expect("watchdog");
    });
    assert_eq!(q.queue().stat().unwrap().qnum, 0);
    q.queue().remove().unwrap();
}

/// Not a test: a round trip async against blocking, for BENCHMARKS.md. A
/// child process echoes type 1 back as type 2 with blocking calls; this
/// process sends and waits for the echo, first with blocking calls, then
/// with `send(..).await` / `recv(..).await` on a current-thread tokio
/// runtime (each wait through the waiter thread). 64-byte messages, 20 000
/// round trips each, after 2 000 to warm up; median and 99th percentile.
///
/// `cargo test --release -p shmq-async --test async_queue -- --ignored --nocapture round_trip`
#[test]
#[ignore]
fn round_trip_async_against_blocking() {
    if std::env::var_os("SHMQ_ASYNC_ECHO").is_some() {
        let ns = Namespace::open(std::env::var("SHMQ_ASYNC_ECHO").unwrap()).unwrap();
        let q = ns.get(0x5e1, GetOptions::new()).unwrap();
        let mut buf = [0u8; 64];
        loop {
            let m = q.recv(&mut buf, Selector::Type(1)).unwrap();
            if m.len == 0 {
                return;
            }
            q.send(2, &buf[..m.len]).unwrap();
        }
    }
    let dir = NsDir::new("rt");
    let ns = Namespace::open(&dir.0).unwrap();
    let q = ns
        .get(0x5e1, GetOptions::new().create(true).mode(0o600))
        .unwrap();
    let mut kid = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "round_trip_async_against_blocking",
            "--ignored",
            "--nocapture",
        ])
        .env("SHMQ_ASYNC_ECHO", &dir.0)
        .spawn()
        .unwrap();
    const N: usize = 20_000;
    let msg = [5u8; 64];
    let mut buf = [0u8; 64];
    let pct = |mut v: Vec<Duration>| {
        v.sort();
        (v[v.len() / 2], v[v.len() * 99 / 100])
    };
    let mut blocking = Vec::with_capacity(N);
    for i in 0..N + 2000 {
        let t = std::time::Instant::now();
        q.send(1, &msg).unwrap();
        q.recv(&mut buf, Selector::Type(2)).unwrap();
        if i >= 2000 {
            blocking.push(t.elapsed());
        }
    }
    let aq = AsyncQueue::new(q.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let asynch = rt.block_on(async {
        let mut v = Vec::with_capacity(N);
        let mut buf = [0u8; 64];
        for i in 0..N + 2000 {
            let t = std::time::Instant::now();
            aq.send(1, &msg).await.unwrap();
            aq.recv(&mut buf, Selector::Type(2)).await.unwrap();
            if i >= 2000 {
                v.push(t.elapsed());
            }
        }
        v
    });
    q.send(1, &[]).unwrap();
    assert!(kid.wait().unwrap().success());
    let (b50, b99) = pct(blocking);
    let (a50, a99) = pct(asynch);
    println!("| round trip, 64 B, 2 processes | median | p99 |");
    println!("| --- | --- | --- |");
    println!("| blocking send + recv | {b50:.1?} | {b99:.1?} |");
    println!(
        "| shmq-async send.await + recv.await (current-thread tokio) | {a50:.1?} | {a99:.1?} |"
    );
    q.remove().unwrap();
}
