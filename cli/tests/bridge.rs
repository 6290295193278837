//! `shmq bridge` against a real `nats-server` (JetStream, a temporary
//! store, a free loopback port), started and stopped by each test; the
//! bridges are real `shmq` processes. A queue A feeds an exporting bridge,
//! an importing bridge feeds a queue B, in two namespaces (two "machines").
//!
//! `nats-server` must be installed (`.ci/run` installs Debian's package);
//! without it these tests fail, unless `SHMQ_SKIP_NATS=1`.

use shmq::{GetOptions, Namespace, Queue, QueueSet, RecvError, Selector};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY_A: i32 = 0xa1;
const KEY_B: i32 = 0xb1;

/// The tests run one at a time: a server restarted on its port must not
/// find it taken by another test's new server, and the 2-core machine
/// runs each faster alone.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn skip() -> bool {
    if std::env::var_os("SHMQ_SKIP_NATS").is_some() {
        eprintln!("SHMQ_SKIP_NATS set: skipped");
        return true;
    }
    false
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = PathBuf::from(format!(
            "/dev/shm/shmq-test-{}-bridge-{tag}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let mut state = self.0.clone().into_os_string();
        state.push(".bridge");
        let _ = std::fs::remove_dir_all(state);
    }
}

fn nats_server_bin() -> PathBuf {
    for p in ["/usr/sbin/nats-server", "/usr/bin/nats-server"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    // Anywhere on PATH.
    PathBuf::from("nats-server")
}

/// A `nats-server` with JetStream on a free loopback port, stopped and its
/// store removed on drop.
struct Server {
    port: u16,
    store: PathBuf,
    child: Option<Child>,
}

impl Server {
    fn start(tag: &str) -> Server {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let store =
            std::env::temp_dir().join(format!("shmq-test-{}-nats-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&store);
        let mut s = Server {
            port,
            store,
            child: None,
        };
        s.restart();
        s
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        self.stop();
        let child = Command::new(nats_server_bin())
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start nats-server (install Debian's nats-server, or SHMQ_SKIP_NATS=1)");
        self.child = Some(child);
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        while !answers_like_nats(&addr) {
            assert!(Instant::now() < until, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM, so it closes its store cleanly.
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let until = Instant::now() + Duration::from_secs(10);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > until {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Whether a NATS server listens at `addr`: it greets every connection with
/// an `INFO` line. (A bare connect is not proof: connecting again and again
/// to a free port of the ephemeral range can connect the socket to itself,
/// TCP's simultaneous open.)
fn answers_like_nats(addr: &SocketAddr) -> bool {
    use std::io::Read;
    let Ok(mut s) = TcpStream::connect_timeout(addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut greeting = [0u8; 4];
    s.read_exact(&mut greeting).is_ok() && &greeting == b"INFO"
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// A `shmq bridge` process, SIGKILLed on drop.
struct Bridge(Child);

impl Bridge {
    /// Its stderr goes to the test's (shown when a test fails).
    fn start(ns: &Path, args: &[String]) -> Bridge {
        Bridge::spawn(ns, args, Stdio::inherit())
    }

    /// Its stderr kept for [`Bridge::take_output`].
    fn start_captured(ns: &Path, args: &[String]) -> Bridge {
        Bridge::spawn(ns, args, Stdio::piped())
    }

    fn spawn(ns: &Path, args: &[String], stderr: Stdio) -> Bridge {
        let c = Command::new(env!("CARGO_BIN_EXE_shmq"))
            .arg("--dir")
            .arg(ns)
            .arg("bridge")
            .args(args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Bridge(c)
    }

    fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    fn is_running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }

    /// SIGTERM, then the exit status and stderr.
    fn terminate(mut self) -> (i32, String) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        self.take_output()
    }

    fn take_output(&mut self) -> (i32, String) {
        let mut err = String::new();
        use std::io::Read;
        if let Some(mut e) = self.0.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let st = self.0.wait().unwrap();
        (st.code().unwrap_or(-1), err)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn queue(ns: &Namespace, key: i32, qbytes: Option<u64>) -> Queue {
    let q = ns
        .get(key, GetOptions::new().create(true).mode(0o600))
        .unwrap();
    if let Some(qbytes) = qbytes {
        let st = q.stat().unwrap();
        q.set(QueueSet {
            uid: st.perm.uid,
            gid: st.perm.gid,
            mode: st.perm.mode,
            qbytes,
        })
        .unwrap();
    }
    q
}

/// Message `n`: its type (1..=5) and text (the number, then filler; 8 to
/// 300 bytes).
fn message(n: u32) -> (i64, Vec<u8>) {
    let mtype = (n % 5 + 1) as i64;
    let len = 8 + (n as usize * 37) % 293;
    let mut t = n.to_le_bytes().to_vec();
    t.extend_from_slice(&(!n).to_le_bytes());
    t.resize(len, (n % 251) as u8);
    (mtype, t)
}

/// Sends messages `0..n` into `q` (blocking: waits while A is full).
fn produce(q: Queue, n: u32) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for i in 0..n {
            let (t, text) = message(i);
            q.send(t, &text).unwrap();
        }
    })
}

/// What B received: every number once, in order per type, its text intact.
#[derive(Default)]
struct Tally {
    seen: Vec<u32>,
    last_per_type: HashMap<i64, u32>,
    errors: Vec<String>,
}

impl Tally {
    fn take(&mut self, mtype: i64, text: &[u8]) {
        let n = u32::from_le_bytes(text[..4].try_into().unwrap());
        let (t, want) = message(n);
        if t != mtype || want != text {
            self.errors.push(format!("message {n}: wrong type or text"));
        }
        if let Some(&prev) = self.last_per_type.get(&mtype) {
            if n <= prev {
                self.errors.push(format!("type {mtype}: {n} after {prev}"));
            }
        }
        self.last_per_type.insert(mtype, n);
        if self.seen[n as usize] > 0 {
            self.errors.push(format!("message {n} received twice"));
        }
        self.seen[n as usize] += 1;
    }
}

/// Receives from B until `n` distinct messages came, or `limit` passes
/// (then fails saying what is missing); then checks for stragglers.
fn consume(b: &Queue, n: u32, limit: Duration, mut during: impl FnMut(usize)) -> Tally {
    let mut tally = Tally {
        seen: vec![0; n as usize],
        ..Default::default()
    };
    let mut buf = vec![0u8; 8192];
    let mut distinct = 0usize;
    let until = Instant::now() + limit;
    while distinct < n as usize {
        match b.recv_timeout(&mut buf, Selector::Any, Duration::from_millis(100)) {
            Ok(m) => {
                let before = tally.seen.iter().filter(|&&c| c > 0).count();
                tally.take(m.mtype, &buf[..m.len]);
                if tally.seen.iter().filter(|&&c| c > 0).count() > before {
                    distinct += 1;
                }
            }
            Err(RecvError::TimedOut) => {}
            Err(e) => panic!("recv from B: {e}"),
        }
        during(distinct);
        if Instant::now() > until {
            let missing: Vec<u32> = (0..n)
                .filter(|&i| tally.seen[i as usize] == 0)
                .take(20)
                .collect();
            panic!(
                "watchdog: {distinct} of {n} received; first missing {missing:?}; errors {:?}",
                &tally.errors[..tally.errors.len().min(20)]
            );
        }
    }
    // Anything more would be a duplicate.
    while let Ok(m) = b.recv_timeout(&mut buf, Selector::Any, Duration::from_millis(300)) {
        tally.take(m.mtype, &buf[..m.len]);
    }
    tally
}

fn export_args(url: &str, subject: &str) -> Vec<String> {
    vec![
        "--nats".into(),
        url.into(),
        "--export".into(),
        format!("{KEY_A:#x}={subject}"),
    ]
}

fn import_args(url: &str, subject: &str) -> Vec<String> {
    vec![
        "--nats".into(),
        url.into(),
        "--import".into(),
        format!("{subject}={KEY_B:#x}"),
    ]
}

fn assert_clean(t: &Tally) {
    assert!(
        t.errors.is_empty(),
        "{:?}",
        &t.errors[..t.errors.len().min(20)]
    );
    assert!(t.seen.iter().all(|&c| c == 1));
}

#[test]
fn a_hundred_thousand_messages_a_to_nats_to_b_exactly_once_in_order_per_type() {
    if skip() {
        return;
    }
    let _serial = one_at_a_time();
    let (da, db) = (TempDir::new("big-a"), TempDir::new("big-b"));
    let (nsa, nsb) = (
        Namespace::open(&da.0).unwrap(),
        Namespace::open(&db.0).unwrap(),
    );
    let (a, b) = (queue(&nsa, KEY_A, None), queue(&nsb, KEY_B, None));
    let server = Server::start("big");
    let _export = Bridge::start(&da.0, &export_args(&server.url(), "shmq.big"));
    let _import = Bridge::start(&db.0, &import_args(&server.url(), "shmq.big"));
    const N: u32 = 100_000;
    let p = produce(a.clone(), N);
    let t = consume(&b, N, Duration::from_secs(240), |_| {});
    p.join().unwrap();
    assert_clean(&t);
    assert_eq!(a.stat().unwrap().qnum, 0);
}

/// Dozens of SIGKILLs of the exporting and the importing bridge at random
/// moments, each restarted at once: B still gets every message exactly once.
#[test]
fn bridges_killed_at_random_lose_and_duplicate_nothing() {
    if skip() {
        return;
    }
    let _serial = one_at_a_time();
    let (da, db) = (TempDir::new("kill-a"), TempDir::new("kill-b"));
    let (nsa, nsb) = (
        Namespace::open(&da.0).unwrap(),
        Namespace::open(&db.0).unwrap(),
    );
    let (a, b) = (queue(&nsa, KEY_A, None), queue(&nsb, KEY_B, None));
    let server = Server::start("kill");
    let (ea, ia) = (
        export_args(&server.url(), "shmq.kill"),
        import_args(&server.url(), "shmq.kill"),
    );
    let mut export = Some(Bridge::start(&da.0, &ea));
    let mut import = Some(Bridge::start(&db.0, &ia));
    const N: u32 = 20_000;
    const KILLS: u32 = 40;
    let p = produce(a.clone(), N);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut kills = 0;
    let mut next_kill = Instant::now() + Duration::from_millis(100);
    let t = consume(&b, N, Duration::from_secs(180), |_| {
        if kills < KILLS && Instant::now() >= next_kill {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if rng & 1 == 0 {
                export.take().unwrap().kill();
                export = Some(Bridge::start(&da.0, &ea));
            } else {
                import.take().unwrap().kill();
                import = Some(Bridge::start(&db.0, &ia));
            }
            kills += 1;
            next_kill = Instant::now() + Duration::from_millis(20 + rng % 150);
        }
    });
    p.join().unwrap();
    assert_clean(&t);
    assert!(kills >= 10, "only {kills} kills happened");
    eprintln!("{kills} bridges killed");
}

/// nats-server stopped for a few seconds and started again (same store)
/// mid-stream: nothing lost, nothing twice.
#[test]
fn server_restart_mid_stream_loses_nothing() {
    if skip() {
        return;
    }
    let _serial = one_at_a_time();
    let (da, db) = (TempDir::new("restart-a"), TempDir::new("restart-b"));
    let (nsa, nsb) = (
        Namespace::open(&da.0).unwrap(),
        Namespace::open(&db.0).unwrap(),
    );
    let (a, b) = (queue(&nsa, KEY_A, None), queue(&nsb, KEY_B, None));
    let mut server = Server::start("restart");
    let _export = Bridge::start(&da.0, &export_args(&server.url(), "shmq.restart"));
    let _import = Bridge::start(&db.0, &import_args(&server.url(), "shmq.restart"));
    const N: u32 = 20_000;
    let p = produce(a.clone(), N);
    let mut restarted = false;
    let t = consume(&b, N, Duration::from_secs(180), |got| {
        if !restarted && got >= N as usize / 3 {
            server.stop();
            std::thread::sleep(Duration::from_secs(3));
            server.restart();
            restarted = true;
        }
    });
    p.join().unwrap();
    assert!(restarted);
    assert_clean(&t);
}

/// B kept full for a while: the import waits (B never holds more than it
/// may), nothing is dropped, and everything arrives once B is read again.
#[test]
fn a_full_local_queue_holds_the_import_back() {
    if skip() {
        return;
    }
    let _serial = one_at_a_time();
    let (da, db) = (TempDir::new("full-a"), TempDir::new("full-b"));
    let (nsa, nsb) = (
        Namespace::open(&da.0).unwrap(),
        Namespace::open(&db.0).unwrap(),
    );
    let (a, b) = (queue(&nsa, KEY_A, None), queue(&nsb, KEY_B, Some(2000)));
    let server = Server::start("full");
    let _export = Bridge::start(&da.0, &export_args(&server.url(), "shmq.full"));
    let mut import = Bridge::start(&db.0, &import_args(&server.url(), "shmq.full"));
    const N: u32 = 3000;
    let p = produce(a.clone(), N);
    // Nobody reads B for a while: it fills and stays full (a message of
    // at most 300 bytes does not fit once it holds more than 1700).
    let until = Instant::now() + Duration::from_secs(60);
    while b.stat().unwrap().cbytes <= 1700 {
        assert!(Instant::now() < until, "B never filled");
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        let st = b.stat().unwrap();
        assert!(st.cbytes <= 2000, "B holds {} bytes", st.cbytes);
        assert!(import.is_running(), "the importing bridge stopped");
    }
    let t = consume(&b, N, Duration::from_secs(120), |_| {});
    p.join().unwrap();
    assert_clean(&t);
}

/// Bad input: a clear error and the right exit code; nothing lost.
#[test]
fn bad_input_is_refused_clearly() {
    if skip() {
        return;
    }
    let _serial = one_at_a_time();
    let (da, db) = (TempDir::new("bad-a"), TempDir::new("bad-b"));
    let nsa = Namespace::open(&da.0).unwrap();
    // B's namespace takes messages of at most 100 bytes.
    std::fs::create_dir_all(&db.0).unwrap();
    std::fs::write(db.0.join("config"), "msgmax = 100\n").unwrap();
    let nsb = Namespace::open(&db.0).unwrap();
    let a = queue(&nsa, KEY_A, None);
    let _b = queue(&nsb, KEY_B, None);
    let run = |ns: &Path, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_shmq"))
            .arg("--dir")
            .arg(ns)
            .arg("bridge")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Usage errors (exit 2).
    let (c, e) = run(
        &da.0,
        &["--nats", "nats://127.0.0.1:1", "--export", "0xa1=a..b"],
    );
    assert_eq!(c, 2, "{e}");
    assert!(e.contains("malformed subject \"a..b\""), "{e}");
    let (c, e) = run(
        &da.0,
        &["--nats", "nats://127.0.0.1:1", "--export", "0xa1=a.*"],
    );
    assert_eq!(c, 2, "{e}");
    assert!(e.contains("wildcards"), "{e}");
    let (c, e) = run(
        &da.0,
        &["--nats", "nats://127.0.0.1:1", "--import", "a.b=0xzz"],
    );
    assert_eq!(c, 2, "{e}");
    assert!(e.contains("invalid key \"0xzz\""), "{e}");
    let (c, e) = run(
        &da.0,
        &["--nats", "nats://127.0.0.1:1", "--export", "0xa1:x=a.b"],
    );
    assert_eq!(c, 2, "{e}");
    assert!(e.contains("invalid MSGTYP"), "{e}");
    let (c, e) = run(&da.0, &["--nats", "nats://127.0.0.1:1"]);
    assert_eq!(c, 2, "{e}");
    assert!(e.contains("nothing to do"), "{e}");
    // A key with no queue (no --create): msgget's ENOENT.
    let (c, e) = run(
        &da.0,
        &["--nats", "nats://127.0.0.1:1", "--export", "0x777=a.b"],
    );
    assert_eq!(c, 1, "{e}");
    assert!(e.contains("ENOENT"), "{e}");
    // A URL that is not one, and a server nobody runs.
    let (c, e) = run(
        &da.0,
        &[
            "--nats",
            "http//nowhere:x",
            "--export",
            "0xa1=a.b",
            "--connect-timeout",
            "2s",
        ],
    );
    assert_eq!(c, 1, "{e}");
    assert!(e.contains("cannot connect to http//nowhere:x"), "{e}");
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{free}");
    let (c, e) = run(
        &da.0,
        &[
            "--nats",
            &url,
            "--export",
            "0xa1=a.b",
            "--connect-timeout",
            "2s",
        ],
    );
    assert_eq!(c, 1, "{e}");
    assert!(e.contains(&format!("cannot connect to {url}")), "{e}");
    // A message too large for B: the import stops saying so, and the
    // message stays on the server (a bridge into a roomier B gets it).
    let server = Server::start("bad");
    a.send(3, &[7u8; 500]).unwrap();
    a.send(4, b"small").unwrap();
    let export = Bridge::start_captured(&da.0, &export_args(&server.url(), "shmq.bad"));
    let mut import = Bridge::start_captured(&db.0, &import_args(&server.url(), "shmq.bad"));
    let (c, e) = import.take_output();
    assert_eq!(c, 1, "{e}");
    assert!(
        e.contains("msgsnd of stream message 1 (500 bytes)") && e.contains("EINVAL"),
        "{e}"
    );
    drop(import);
    let dc = TempDir::new("bad-c");
    let nsc = Namespace::open(&dc.0).unwrap();
    let c_queue = queue(&nsc, KEY_B, None);
    let _import = Bridge::start(&dc.0, &import_args(&server.url(), "shmq.bad"));
    let mut buf = [0u8; 1000];
    let m = c_queue
        .recv_timeout(&mut buf, Selector::Any, Duration::from_secs(60))
        .unwrap();
    assert_eq!((m.mtype, m.len), (3, 500));
    let m = c_queue
        .recv_timeout(&mut buf, Selector::Any, Duration::from_secs(60))
        .unwrap();
    assert_eq!((m.mtype, &buf[..m.len]), (4, &b"small"[..]));
    let (c, e) = export.terminate();
    assert_eq!(c, 0, "{e}");
    assert!(e.contains("exported 2"), "{e}");
}

/// Not a test: the figures for BENCHMARKS.md, in one run. The path
/// A -> bridge -> NATS (JetStream) -> bridge -> B beside NATS alone (a
/// plain async-nats publisher and subscriber, core NATS; and JetStream
/// publishes awaited one by one, consumed by a pull consumer), 64-byte
/// messages: throughput over 20 000 messages, and the latency of one
/// message at a time (200 samples: median, 99th percentile).
///
/// `cargo test --release -p shmq-cli --test bridge -- --ignored --nocapture measure`
#[test]
#[ignore]
fn measure_bridge_beside_plain_nats() {
    let _serial = one_at_a_time();
    const N: u32 = 20_000;
    const SAMPLES: usize = 200;
    let text = [7u8; 64];
    let pct = |mut v: Vec<Duration>| {
        v.sort();
        (v[v.len() / 2], v[v.len() * 99 / 100])
    };
    // The bridge path.
    let (da, db) = (TempDir::new("m-a"), TempDir::new("m-b"));
    let (nsa, nsb) = (
        Namespace::open(&da.0).unwrap(),
        Namespace::open(&db.0).unwrap(),
    );
    let (a, b) = (queue(&nsa, KEY_A, None), queue(&nsb, KEY_B, None));
    let server = Server::start("measure");
    let _export = Bridge::start(&da.0, &export_args(&server.url(), "shmq.m"));
    let _import = Bridge::start(&db.0, &import_args(&server.url(), "shmq.m"));
    let mut buf = [0u8; 128];
    // Warm up (the bridges connect, the stream and consumer exist).
    a.send(1, &text).unwrap();
    b.recv_timeout(&mut buf, Selector::Any, Duration::from_secs(30))
        .unwrap();
    let started = Instant::now();
    let p = {
        let a = a.clone();
        std::thread::spawn(move || {
            for _ in 0..N {
                a.send(1, &text).unwrap();
            }
        })
    };
    for _ in 0..N {
        b.recv_timeout(&mut buf, Selector::Any, Duration::from_secs(60))
            .unwrap();
    }
    let bridge_tp = N as f64 / started.elapsed().as_secs_f64();
    p.join().unwrap();
    let mut lat = Vec::new();
    for _ in 0..SAMPLES {
        let t = Instant::now();
        a.send(1, &text).unwrap();
        b.recv_timeout(&mut buf, Selector::Any, Duration::from_secs(30))
            .unwrap();
        lat.push(t.elapsed());
    }
    let (bridge_p50, bridge_p99) = pct(lat);
    // NATS alone.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = server.url();
    let (core_tp, core_p50, core_p99, js_tp, js_p50, js_p99) = rt.block_on(async move {
        use futures_util::StreamExt;
        let client = async_nats::connect(url.as_str()).await.unwrap();
        let mut sub = client.subscribe("plain.m").await.unwrap();
        client.flush().await.unwrap();
        let payload = bytes::Bytes::copy_from_slice(&text);
        let started = Instant::now();
        let publisher = {
            let client = client.clone();
            let payload = payload.clone();
            tokio::spawn(async move {
                for _ in 0..N {
                    client.publish("plain.m", payload.clone()).await.unwrap();
                }
                client.flush().await.unwrap();
            })
        };
        for _ in 0..N {
            sub.next().await.unwrap();
        }
        let core_tp = N as f64 / started.elapsed().as_secs_f64();
        publisher.await.unwrap();
        let mut lat = Vec::new();
        for _ in 0..SAMPLES {
            let t = Instant::now();
            client.publish("plain.m", payload.clone()).await.unwrap();
            client.flush().await.unwrap();
            sub.next().await.unwrap();
            lat.push(t.elapsed());
        }
        let (core_p50, core_p99) = pct(lat);
        // JetStream: publish awaited one by one, a pull consumer.
        let js = async_nats::jetstream::new(client.clone());
        let stream = js
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: "PLAIN_JS".into(),
                subjects: vec!["plainjs.m".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        let consumer: async_nats::jetstream::consumer::PullConsumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                durable_name: Some("plain".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut msgs = consumer.messages().await.unwrap();
        let started = Instant::now();
        let publisher = {
            let js = js.clone();
            let payload = payload.clone();
            tokio::spawn(async move {
                for _ in 0..N {
                    js.publish("plainjs.m", payload.clone())
                        .await
                        .unwrap()
                        .await
                        .unwrap();
                }
            })
        };
        for _ in 0..N {
            msgs.next().await.unwrap().unwrap().ack().await.unwrap();
        }
        let js_tp = N as f64 / started.elapsed().as_secs_f64();
        publisher.await.unwrap();
        let mut lat = Vec::new();
        for _ in 0..SAMPLES {
            let t = Instant::now();
            js.publish("plainjs.m", payload.clone())
                .await
                .unwrap()
                .await
                .unwrap();
            msgs.next().await.unwrap().unwrap().ack().await.unwrap();
            lat.push(t.elapsed());
        }
        let (js_p50, js_p99) = pct(lat);
        (core_tp, core_p50, core_p99, js_tp, js_p50, js_p99)
    });
    println!("| path (64 B) | msg/s | latency median | p99 |");
    println!("| --- | --- | --- | --- |");
    println!("| A -> shmq bridge -> NATS JetStream -> shmq bridge -> B | {bridge_tp:.0} | {bridge_p50:.0?} | {bridge_p99:.0?} |");
    println!("| NATS core, async-nats publisher -> subscriber | {core_tp:.0} | {core_p50:.0?} | {core_p99:.0?} |");
    println!("| NATS JetStream, publish (ack awaited) -> pull consumer (ack) | {js_tp:.0} | {js_p50:.0?} | {js_p99:.0?} |");
}

/// An export with a negative MSGTYP (`-3`: the lowest type up to 3) carries
/// types 1 to 3, each message once and in order per type, and leaves types
/// 4 and 5 in A.
#[test]
fn an_export_by_selector_leaves_the_other_types() {
    if skip() {
        return;
    }
    let _serial = one_at_a_time();
    let (da, db) = (TempDir::new("sel-a"), TempDir::new("sel-b"));
    let (nsa, nsb) = (
        Namespace::open(&da.0).unwrap(),
        Namespace::open(&db.0).unwrap(),
    );
    let (a, b) = (queue(&nsa, KEY_A, None), queue(&nsb, KEY_B, None));
    let server = Server::start("sel");
    let export = vec![
        "--nats".to_string(),
        server.url(),
        "--export".to_string(),
        format!("{KEY_A:#x}:-3=shmq.sel"),
    ];
    let _export = Bridge::start(&da.0, &export);
    let _import = Bridge::start(&db.0, &import_args(&server.url(), "shmq.sel"));
    // Few enough that types 4 and 5, which stay, fit in A (16 KiB).
    const N: u32 = 150;
    produce(a.clone(), N).join().unwrap();
    let wanted: Vec<u32> = (0..N).filter(|&n| message(n).0 <= 3).collect();
    let mut last: HashMap<i64, u32> = HashMap::new();
    let mut got = vec![0u32; N as usize];
    let mut buf = [0u8; 512];
    for _ in 0..wanted.len() {
        let m = b
            .recv_timeout(&mut buf, Selector::Any, Duration::from_secs(60))
            .unwrap();
        let n = u32::from_le_bytes(buf[..4].try_into().unwrap());
        assert_eq!(message(n), (m.mtype, buf[..m.len].to_vec()));
        assert!(m.mtype <= 3);
        if let Some(&p) = last.get(&m.mtype) {
            assert!(n > p, "type {}: {n} after {p}", m.mtype);
        }
        last.insert(m.mtype, n);
        got[n as usize] += 1;
    }
    assert_eq!(
        b.recv_timeout(&mut buf, Selector::Any, Duration::from_millis(300)),
        Err(RecvError::TimedOut)
    );
    assert!(wanted.iter().all(|&n| got[n as usize] == 1));
    assert_eq!(a.stat().unwrap().qnum as usize, N as usize - wanted.len());
}
