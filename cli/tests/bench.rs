//! `shmq bench`, run as a user runs it (the built binary, its children the
//! same binary re-executed), in a namespace of its own under /dev/shm: a
//! smoke run of every part must report every mechanism, count every message,
//! and leave no queue behind, neither shmq's nor the kernel's. Figures are
//! never checked (timing assertions fail on a busy machine).

mod common;
use common::Out;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A `shmq bench` run that takes longer than this is killed and fails.
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// The test's namespace directory, removed when dropped (also on failure).
struct Ns(PathBuf);

impl Ns {
    fn new(name: &str) -> Ns {
        let dir =
            PathBuf::from("/dev/shm").join(format!("shmq-clitest-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // Linux's default limits, which the test's figures assume, whatever
        // the host's kernel.msg* say.
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config"),
            "msgmax = 8192\nmsgmnb = 16384\nmsgmni = 32000\n",
        )
        .unwrap();
        Ns(dir)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `shmq --dir DIR ARGS...` under a watchdog.
fn shmq(ns: &Ns, args: &[&str]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shmq"));
    cmd.arg("--dir").arg(&ns.0).args(args);
    for var in ["SHMQ_DIR", "SHMQ_SPIN", "SHMQ_BENCH_LOG", "SHMQ_BENCH_SPIN"] {
        cmd.env_remove(var);
    }
    common::run_limited(cmd, None, RUN_LIMIT)
}

/// Whether kernel queue `id` still exists.
fn kernel_queue_exists(id: i32) -> bool {
    // SAFETY: all-zero bytes are a valid `msqid_ds`.
    let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a live, writable `msqid_ds`; IPC_STAT only fills it.
    unsafe { libc::msgctl(id, libc::IPC_STAT, &mut ds) == 0 }
}

const MECHS: [&str; 8] = [
    "shmq",
    "bare-ring",
    "shmq-async",
    "sysv",
    "posix-mq",
    "shmq-mq",
    "pipe",
    "seqpacket",
];

fn rows<'a>(report: &'a Value, part: &str) -> &'a Vec<Value> {
    report[part]
        .as_array()
        .unwrap_or_else(|| panic!("no {part} array"))
}

#[test]
fn smoke_run_reports_every_mechanism_and_cleans_up() {
    let ns = Ns::new("bench");
    let out = shmq(&ns, &["bench", "--smoke", "--json"]);
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).expect("one JSON object");
    assert_eq!(report["plan"], "smoke");
    assert_eq!(rows(&report, "errors").len(), 0, "{}", report["errors"]);

    let names: Vec<&str> = rows(&report, "mechanisms")
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, MECHS);

    let rt = rows(&report, "round_trip");
    for m in MECHS {
        for size in [8, 1024] {
            for (parked, placement) in [
                (false, "unpinned"),
                (false, "one-cpu"),
                (false, "two-cpus"),
                (true, "unpinned"),
            ] {
                if parked && m == "bare-ring" {
                    continue; // the floor never sleeps: no parked round trip
                }
                let r = rt
                    .iter()
                    .find(|r| {
                        r["mechanism"] == m
                            && r["size"] == size
                            && r["parked"] == parked
                            && r["placement"] == placement
                    })
                    .unwrap_or_else(|| {
                        panic!("no round trip {m} {size} parked={parked} placement={placement}")
                    });
                assert!(r["n"].as_u64().unwrap() > 0);
                assert!(r["p50_ns"].as_u64().unwrap() <= r["p99_ns"].as_u64().unwrap());
                if m == "shmq" {
                    assert!(r["shmq_ratio"].is_null());
                } else {
                    assert!(r["shmq_ratio"].as_f64().unwrap() > 0.0);
                }
            }
        }
    }

    let tp = rows(&report, "throughput");
    assert!(
        !tp.iter().any(|t| t["mechanism"] == "shmq-async"),
        "shmq-async is measured in the round trips only"
    );
    for m in MECHS.into_iter().filter(|&m| m != "shmq-async") {
        for (size, p, c) in [(8, 1, 1), (1024, 1, 1), (64, 2, 2)] {
            let t = tp
                .iter()
                .find(|t| {
                    t["mechanism"] == m
                        && t["size"] == size
                        && t["producers"] == p
                        && t["consumers"] == c
                })
                .unwrap_or_else(|| panic!("no throughput {m} {size} {p}x{c}"));
            // Every message sent was received (the run checks the counts and
            // fails the step otherwise); each producer sent the same number.
            let n = t["messages"].as_u64().unwrap();
            assert!(n >= 100 * p, "{m}: {n} messages");
            assert_eq!(n % p, 0, "{m}: {n} messages from {p} producers");
            assert_eq!(
                t["typed"].as_bool().unwrap(),
                c > 1 && (m == "shmq" || m == "sysv")
            );
        }
    }

    let depth = rows(&report, "typed_receive");
    assert!(!depth.iter().any(|p| p["mechanism"] == "shmq-async"));
    for m in ["shmq", "sysv"] {
        for d in [10, 100] {
            for sel in ["D", "-D", "0"] {
                assert!(
                    depth
                        .iter()
                        .any(|p| p["mechanism"] == m && p["depth"] == d && p["msgtyp"] == sel),
                    "no typed receive {m} depth {d} msgtyp {sel}"
                );
            }
        }
    }

    // Receive with 32 priorities: shmq's POSIX queues at the plan's depth,
    // the kernel's there or (without CAP_SYS_RESOURCE and with a small
    // fs.mqueue.msg_max) at msg_max, and shmq's beside it.
    let prio = rows(&report, "priority_receive");
    assert!(
        prio.iter()
            .any(|p| p["mechanism"] == "shmq-mq" && p["priorities"] == 32 && p["depth"] == 64),
        "{prio:?}"
    );
    for p in prio {
        assert!(p["n"].as_u64().unwrap() >= 3, "{p:?}");
        let (m, d, n) = (&p["mechanism"], &p["depth"], &p["priorities"]);
        if m == "posix-mq" {
            assert!(
                prio.iter().any(|s| s["mechanism"] == "shmq-mq"
                    && &s["depth"] == d
                    && &s["priorities"] == n),
                "no shmq-mq point beside {p:?}"
            );
        }
    }
    assert!(
        prio.iter().any(|p| p["mechanism"] == "posix-mq"),
        "{prio:?}"
    );

    let f = &report["footprint"];
    assert!(f["file_size"].as_u64().unwrap() > 0);
    assert!(f["allocated_fresh"].as_u64().unwrap() <= f["file_size"].as_u64().unwrap());
    assert_eq!(f["small_messages"].as_u64().unwrap(), 16384 / 64);

    // Nothing left behind: no kernel queue, no shmq queue, no temporary
    // namespace, no child process.
    let kernel = rows(&report, "kernel_queues");
    assert!(!kernel.is_empty());
    for id in kernel {
        let id = id.as_i64().unwrap() as i32;
        assert!(!kernel_queue_exists(id), "kernel queue {id} left behind");
    }
    let ls = shmq(&ns, &["ls"]);
    assert_eq!(ls.code, 0, "{}", ls.stderr);
    assert_eq!(
        ls.stdout.lines().filter(|l| l.starts_with("0x")).count(),
        0,
        "{}",
        ls.stdout
    );
    let prefix = format!("shmq-bench-{}-", out.pid);
    let left: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "temporary namespaces left: {left:?}");
}

#[test]
fn text_report_and_usage_errors() {
    let ns = Ns::new("benchtext");
    let out = shmq(
        &ns,
        &["bench", "--smoke", "--only", "pipe", "--parts", "rt,tp"],
    );
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert!(
        out.stdout.contains("Ping-pong round trip"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("One-way throughput"), "{}", out.stdout);
    assert!(out.stdout.contains("pipe"));
    assert!(!out.stdout.contains("seqpacket"));
    assert!(!out.stdout.contains("Receive with D messages"));

    let bad = shmq(&ns, &["bench", "--only", "carrier-pigeon"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("unknown mechanism"), "{}", bad.stderr);
    let bad = shmq(&ns, &["bench", "--parts", "everything"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("unknown part"), "{}", bad.stderr);
}
