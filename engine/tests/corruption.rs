//! Corruption under load: while senders and receivers (real processes) use a
//! queue, another process writes random bytes at random offsets of the live
//! queue file and of the namespace's id table. The innocent processes may see
//! errors or damaged messages, but each must end on its own, in time, with
//! exit status 0: no crash (a panic counts), no signal, no hang. Then
//! `Namespace::doctor`, in a process of its own, must end in time too, and
//! across the rounds it must have reported damage.
//!
//! Every call the innocent processes make has a time limit (IPC_NOWAIT or a
//! timeout), so "in time" means no walk over shared links runs away.
//!
//! `SHMQ_CORRUPTION_SEED` and `SHMQ_CORRUPTION_ROUNDS` reproduce or lengthen
//! a run; a failing round keeps its corrupter's write log in /tmp.

mod common;
use common::*;
use shmq::doctor::*;
use shmq::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

const KEY: i32 = 0xc0de;
/// How long the traffic and the corrupter run in one round.
const ROUND: Duration = Duration::from_millis(1200);
/// How long a process may take past the end of its round before it counts
/// as hung (its calls are limited to 20 ms each; this is generous for a
/// loaded 2-core machine).
const GRACE: Duration = Duration::from_secs(20);

/// splitmix64: the test's random numbers, reproducible from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Entry point of child processes; a no-op in a normal run.
#[test]
fn child_main() {
    let Some((role, args)) = my_role() else {
        return;
    };
    let dir = PathBuf::from(std::env::var("SHMQ_DIR").unwrap());
    let seed: u64 = args[0].parse().unwrap();
    let until = Instant::now() + ROUND;
    let tally = match role.as_str() {
        "sender" => sender(&dir, seed, until),
        "receiver" => receiver(&dir, seed, until),
        "corrupter" => corrupter(&dir, seed, until, Path::new(&args[1])),
        "doctor" => doctor(&dir),
        "locked-get" => locked_get(&dir, &args[1]),
        other => panic!("unknown role {other}"),
    };
    let line: Vec<String> = tally.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("tally {}", line.join(" "));
}

type Tally = BTreeMap<String, u64>;

fn add(into: &mut Tally, t: Tally) {
    t.into_iter()
        .for_each(|(k, v)| *into.entry(k).or_default() += v);
}

/// Counts one `what` (one word on the tally line: blanks become `_`).
fn count(t: &mut Tally, what: impl Into<String>) {
    let what: String = what.into();
    let word: String = what.split_whitespace().collect::<Vec<_>>().join("_");
    *t.entry(word.chars().take(60).collect()).or_default() += 1;
}

/// Opens the namespace and the queue; a failure is an outcome, not a crash
/// (the id table may already be damaged).
fn open(dir: &Path, t: &mut Tally) -> Option<Queue> {
    match Namespace::open(dir) {
        Ok(ns) => match ns.get(KEY, GetOptions::new()) {
            Ok(q) => Some(q),
            Err(e) => {
                count(t, format!("open:{e:?}"));
                None
            }
        },
        Err(e) => {
            count(t, format!("namespace:{:?}", e.kind));
            None
        }
    }
}

fn sender(dir: &Path, seed: u64, until: Instant) -> Tally {
    let mut t = Tally::new();
    let mut rng = Rng(seed);
    while Instant::now() < until {
        // Re-open now and then: the id table is corrupted too.
        let Some(q) = open(dir, &mut t) else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        for seq in 0..200u64 {
            let mtype = 1 + rng.below(5) as i64;
            let text = encode_message(std::process::id(), seq, mtype, rng.below(300) as usize);
            match q.send_timeout(mtype, &text, Duration::from_millis(20)) {
                Ok(()) => count(&mut t, "sent"),
                Err(e) => count(&mut t, format!("send:{e:?}")),
            }
        }
        let _ = q.stat();
    }
    t
}

fn receiver(dir: &Path, seed: u64, until: Instant) -> Tally {
    let mut t = Tally::new();
    let mut rng = Rng(seed);
    let mut buf = vec![0u8; 8192];
    while Instant::now() < until {
        let Some(q) = open(dir, &mut t) else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        for _ in 0..200 {
            let k = 1 + rng.below(5) as i64;
            let sel = match rng.below(4) {
                0 => Selector::Any,
                1 => Selector::Type(k),
                2 => Selector::Except(k),
                _ => Selector::AtMost(k),
            };
            let nowait = rng.below(2) == 0;
            let noerror = rng.below(2) == 0;
            let opts = if noerror {
                RecvOptions::new(sel).truncate()
            } else {
                RecvOptions::new(sel)
            };
            let len = [8192, 64, 0][rng.below(3) as usize];
            let lend = rng.below(8) == 0;
            let truncating = !lend && noerror && len < 8192;
            let r = if lend {
                q.recv_lend_timeout(opts, Duration::from_millis(20))
                    .map(|loan| (loan.mtype(), loan.with_text(|s| s.to_vec())))
            } else if nowait {
                q.try_recv(&mut buf[..len], opts)
                    .map(|m| (m.mtype, buf[..m.len].to_vec()))
            } else {
                q.recv_timeout(&mut buf[..len], opts, Duration::from_millis(20))
                    .map(|m| (m.mtype, buf[..m.len].to_vec()))
            };
            match r {
                // A short buffer with MSG_NOERROR truncates: nothing to check.
                Ok(_) if truncating => count(&mut t, "truncated"),
                Ok((_, text)) => match decode_message(&text) {
                    Ok(_) => count(&mut t, "intact"),
                    Err(_) => count(&mut t, "damaged"),
                },
                Err(e) => count(&mut t, format!("recv:{e:?}")),
            }
        }
        let _ = q.stat();
        if rng.below(4) == 0 {
            shmq::test_hooks::recover(&q);
        }
    }
    t
}

/// Writes random bytes into the live files until `until`, logging each write
/// (file, offset, bytes) to `log` so that a failure can be replayed.
fn corrupter(dir: &Path, seed: u64, until: Instant, log: &Path) -> Tally {
    let mut t = Tally::new();
    let mut rng = Rng(seed);
    let mut log = std::fs::File::create(log).unwrap();
    let queue_file = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("msq."))
        .expect("the queue's file");
    let files = [
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&queue_file)
            .unwrap(),
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join("ids"))
            .unwrap(),
    ];
    let sizes = files.each_ref().map(|f| f.metadata().unwrap().len());
    let mut live = [Vec::new(), Vec::new()];
    let mut n = 0u64;
    while Instant::now() < until {
        if n % 64 == 0 {
            live = [0, 1].map(|i| live_pages(&files[i], sizes[i]));
        }
        n += 1;
        std::thread::sleep(Duration::from_micros(500 + rng.below(3000)));
        // Mostly the queue; now and then the id table.
        let which = usize::from(rng.below(8) == 0);
        let size = sizes[which];
        // Half the writes land in pages that hold something (headers, slot
        // records, the type directory, nodes and cells in use, bitmaps), a
        // quarter in the first 64 KiB, the rest anywhere in the sparse file.
        let pages = &live[which];
        let off = match rng.below(4) {
            0 | 1 if !pages.is_empty() => {
                pages[rng.below(pages.len() as u64) as usize] + rng.below(PAGE)
            }
            2 => rng.below(size.min(64 << 10)),
            _ => rng.below(size),
        }
        .min(size - 1);
        let len = (1 + rng.below(8)).min(size - off) as usize;
        let v = rng.next();
        let bytes: Vec<u8> = match rng.below(4) {
            0 => v.to_le_bytes().to_vec(),        // anything
            1 => vec![0xff; len],                 // all ones: huge indexes, -1
            2 => vec![0; len],                    // zero: nil links, empty counts
            _ => (v % 64).to_le_bytes().to_vec(), // small, plausible indexes
        };
        let bytes = &bytes[..len];
        files[which].write_all_at(bytes, off).unwrap();
        writeln!(log, "{which} {off} {bytes:02x?}").unwrap();
        count(&mut t, ["queue-writes", "ids-writes"][which]);
    }
    t
}

const PAGE: u64 = 4096;

/// Offsets of the pages of `file` that are not all zero (the parts of a
/// sparse queue file in use).
fn live_pages(file: &std::fs::File, size: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < size {
        let n = file.read_at(&mut chunk, at).unwrap_or(0);
        if n == 0 {
            break;
        }
        for (i, page) in chunk[..n].chunks(PAGE as usize).enumerate() {
            if page.iter().any(|&b| b != 0) {
                out.push(at + i as u64 * PAGE);
            }
        }
        at += n as u64;
    }
    out
}

/// Runs the doctor (repairing) and reports its verdict and finding kinds.
fn doctor(dir: &Path) -> Tally {
    let mut t = Tally::new();
    let report = Namespace::doctor_dir(dir, &DoctorOptions::default());
    count(&mut t, format!("health:{:?}", report.health()));
    for f in &report.findings {
        if f.status() != "note" {
            count(&mut t, format!("{}:{}", f.status(), f.problem.kind()));
        }
    }
    t
}

/// Offsets of the management lock's words in the id table (`IdsHeader`:
/// nine u64 fields before them).
const LOCK_OFFSET: u64 = 72;
const LOCK_START_OFFSET: u64 = 80;

/// Writes `lock` and `start` into the id table's lock words, as a corrupter
/// would.
fn forge_lock(dir: &Path, lock: u64, start: u64) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("ids"))
        .unwrap();
    f.write_all_at(&lock.to_le_bytes(), LOCK_OFFSET).unwrap();
    f.write_all_at(&start.to_le_bytes(), LOCK_START_OFFSET)
        .unwrap();
}

/// msgget behind a forged lock word: `other` (set by the parent: its live
/// pid, no start time) or `self` (this process's own pid, any start time).
fn locked_get(dir: &Path, how: &str) -> Tally {
    if how == "self" {
        forge_lock(dir, std::process::id() as u64, 12345);
    }
    let mut t = Tally::new();
    let ns = Namespace::open(dir).unwrap();
    match ns.get(KEY, GetOptions::new()) {
        Ok(_) => count(&mut t, "got"),
        Err(e) => count(&mut t, format!("get:{e:?}")),
    }
    t
}

/// Waits for a child until `deadline`; its tally line, or why it failed.
fn finish(mut child: Child, role: &str, deadline: Instant) -> Result<Tally, String> {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            if !status.success() {
                return Err(format!("{role} ended with {status}; output: {out}"));
            }
            let line = out
                .lines()
                .find_map(|l| l.strip_prefix("tally"))
                .ok_or_else(|| format!("{role} printed no tally: {out}"))?;
            return Ok(line
                .split_whitespace()
                .map(|kv| {
                    let (k, v) = kv.rsplit_once('=').unwrap();
                    (k.to_string(), v.parse().unwrap())
                })
                .collect());
        }
        if Instant::now() > deadline {
            let stack = stack_of(child.id());
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{role} (pid {}) hung; its stack:\n{stack}",
                child.id()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The stack of a hung process, for the failure message (best effort: gdb
/// may be missing).
fn stack_of(pid: u32) -> String {
    std::process::Command::new("gdb")
        .args([
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
            "thread apply all bt",
        ])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.starts_with('#') && !l.contains(" std::") && !l.contains(" test::"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_else(|e| format!("(no gdb: {e})"))
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

#[test]
fn random_writes_to_live_files_never_crash_or_hang_innocent_processes() {
    if my_role().is_some() {
        return;
    }
    let seed = env_u64("SHMQ_CORRUPTION_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let rounds = env_u64("SHMQ_CORRUPTION_ROUNDS").unwrap_or(8).max(2);
    let _dog = watchdog(60 + rounds * 30);
    println!("seed {seed}, {rounds} rounds");
    let mut rng = Rng(seed);
    let mut totals = Tally::new();
    let mut rounds_with_findings = 0;
    for round in 0..rounds {
        let ns = TempNamespace::new();
        let q = ns.ns.get(KEY, create(0o600)).unwrap();
        // A backlog, so that receivers meet corrupted messages and links.
        for i in 0..50u64 {
            let mtype = 1 + (i % 5) as i64;
            q.send(mtype, &encode_message(0, i, mtype, i as usize))
                .unwrap();
        }
        drop(q);
        let log = std::env::temp_dir().join(format!(
            "shmq-corruption-{}-{round}.log",
            std::process::id()
        ));
        let mut children = Vec::new();
        // Round 0 is the control: the same traffic without the corrupter,
        // after which the doctor must find nothing (no false alarm).
        let control = round == 0;
        let roles: &[&str] = if control {
            &["sender", "sender", "receiver", "receiver"]
        } else {
            &["sender", "sender", "receiver", "receiver", "corrupter"]
        };
        for &role in roles {
            let args = [rng.next().to_string(), log.display().to_string()];
            children.push((role, spawn_role(role, &ns.dir, &args)));
        }
        let deadline = Instant::now() + ROUND + GRACE;
        let mut failures = Vec::new();
        let mut round_tally = Tally::new();
        for (role, child) in children {
            match finish(child, role, deadline) {
                Ok(t) => add(&mut round_tally, t),
                Err(why) => failures.push(why),
            }
        }
        let doc = spawn_role("doctor", &ns.dir, &["0".to_string()]);
        match finish(doc, "doctor", Instant::now() + GRACE) {
            Ok(t) => {
                let findings = t.keys().any(|k| !k.starts_with("health:Healthy"));
                rounds_with_findings += usize::from(findings && !control);
                if control && findings {
                    failures.push(format!(
                        "the doctor found damage after the control round: {t:?}"
                    ));
                }
                add(&mut round_tally, t);
            }
            Err(why) => failures.push(why),
        }
        // Without corruption, every message is intact and no call reports
        // an inconsistent queue.
        let unexpected = ["damaged", "recv:NoMemory", "send:NoMemory"];
        if control && unexpected.iter().any(|k| round_tally.contains_key(*k)) {
            failures.push(format!("damage without a corrupter: {round_tally:?}"));
        }
        add(&mut totals, round_tally);
        if !failures.is_empty() {
            let kept =
                std::env::temp_dir().join(format!("shmq-corruption-seed-{seed}-round-{round}.log"));
            let _ = std::fs::rename(&log, &kept);
            panic!(
                "round {round} (seed {seed}; writes in {}):\n{}",
                kept.display(),
                failures.join("\n")
            );
        }
        let _ = std::fs::remove_file(&log);
    }
    println!(
        "rounds with doctor findings: {rounds_with_findings} of {} corrupted",
        rounds - 1
    );
    for (k, v) in &totals {
        println!("{k:>40} {v}");
    }
    // The traffic ran and the corrupter wrote (else the test proves nothing).
    assert!(
        totals.get("sent").copied().unwrap_or(0) > 0,
        "nothing was sent"
    );
    assert!(
        totals.get("queue-writes").copied().unwrap_or(0) > 0,
        "nothing was corrupted"
    );
    assert!(
        rounds_with_findings > 0,
        "the doctor reported no damage after {rounds} rounds of random writes"
    );
}

/// A lock word that names a live process which does not hold the lock (the
/// test process itself, with no start time; or the caller's own pid) makes
/// msgget wait a while, never forever: such a holder is taken over once it
/// has shown no sign of holding the lock for 10 s.
#[test]
fn a_forged_lock_word_delays_msgget_but_never_blocks_it() {
    if my_role().is_some() {
        return;
    }
    let _dog = watchdog(120);
    let other = TempNamespace::new();
    let own = TempNamespace::new();
    for ns in [&other, &own] {
        drop(ns.ns.get(KEY, create(0o600)).unwrap());
    }
    forge_lock(&other.dir, std::process::id() as u64, 0);
    let children = [
        spawn_role("locked-get", &other.dir, &["0".into(), "other".into()]),
        spawn_role("locked-get", &own.dir, &["0".into(), "self".into()]),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    for (child, how) in children.into_iter().zip(["other", "self"]) {
        let t = finish(child, how, deadline).unwrap();
        assert_eq!(t.get("got"), Some(&1), "{how}: {t:?}");
    }
}
