//! `shmq doctor`, run as a user runs it on a namespace of the test's own
//! under /dev/shm: its lines, its exit codes, `--dry-run`, `--remove` and
//! `--json`.

mod common;
use common::Out;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Kills a `shmq` run that takes longer than this, and fails the test.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// A test's own namespace directory, removed when dropped (also when the
/// test fails).
struct Ns {
    dir: PathBuf,
}

impl Ns {
    fn new(name: &str) -> Ns {
        let dir = PathBuf::from(format!(
            "/dev/shm/shmq-clitest-{}-doctor-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Ns { dir }
    }

    /// Runs `shmq --dir DIR ARGS...`, killed after [`RUN_LIMIT`].
    fn run(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shmq"));
        cmd.arg("--dir").arg(&self.dir).args(args);
        for (var, _) in std::env::vars() {
            if var.starts_with("SHMQ_") {
                cmd.env_remove(var);
            }
        }
        common::run_limited(cmd, None, RUN_LIMIT)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn summary(&self, rest: &str) -> String {
        format!("summary: {}: {rest}\n", self.dir.display())
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[track_caller]
fn ok(out: &Out) {
    assert_eq!(out.code, 0, "expected success: {out:?}");
}

/// A pid that belonged to a process that has exited.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn healthy_namespace_exits_0() {
    let ns = Ns::new("healthy");
    let got = ns.run(&["doctor"]);
    ok(&got);
    assert_eq!(
        got.stdout,
        format!(
            "note: directory: no namespace here, nothing to check\n{}",
            ns.summary("0 queues checked: healthy")
        )
    );
    assert!(!ns.dir.exists(), "doctor creates no namespace");
    ok(&ns.run(&["send", "0x1234", "1", "hello", "--create"]));
    ok(&ns.run(&["send", "0x5678", "2", "world", "--create"]));
    ok(&ns.run(&["recv", "0x1234"]));
    // The processes above are gone; what they left (their slots) is not a
    // problem.
    let got = ns.run(&["doctor"]);
    ok(&got);
    assert_eq!(got.stdout, ns.summary("2 queues checked: healthy"));
    assert_eq!(got.stderr, "");
    ok(&ns.run(&["doctor", "--dry-run"]));
    assert_eq!(ns.run(&["recv", "0x5678", "--nowait"]).stdout, "world");
}

#[test]
fn stale_files_exit_4_then_0_and_dry_run_changes_nothing() {
    let ns = Ns::new("stale");
    ok(&ns.run(&["send", "0x1234", "1", "keep me", "--create"]));
    std::fs::write(ns.path("msq.77"), b"left by a crash").unwrap();
    let pid = dead_pid();
    let temp = format!(".ids.{pid}.{pid}");
    std::fs::write(ns.path(&temp), b"").unwrap();
    std::fs::write(ns.path("README"), b"mine").unwrap();

    let got = ns.run(&["doctor", "--dry-run"]);
    assert_eq!(got.code, 4, "{got:?}");
    assert_eq!(
        got.stdout,
        format!(
            "would-fix: file {temp}: temporary id table left by dead process {pid}; would be removed\n\
             note: file README: not an shmq file; left alone\n\
             would-fix: file msq.77: queue file that no live record points at; would be removed\n{}",
            ns.summary("1 queue checked, 2 problems to repair: repairable (dry run)")
        )
    );
    assert!(ns.path("msq.77").exists() && ns.path(&temp).exists());

    let got = ns.run(&["doctor"]);
    assert_eq!(got.code, 4, "{got:?}");
    assert_eq!(
        got.stdout,
        format!(
            "fixed: file {temp}: temporary id table left by dead process {pid}; removed\n\
             note: file README: not an shmq file; left alone\n\
             fixed: file msq.77: queue file that no live record points at; removed\n{}",
            ns.summary("1 queue checked, 2 problems repaired: repaired")
        )
    );
    assert!(!ns.path("msq.77").exists() && !ns.path(&temp).exists());
    assert!(ns.path("README").exists());

    let got = ns.run(&["doctor"]);
    ok(&got);
    assert_eq!(
        got.stdout,
        format!(
            "note: file README: not an shmq file; left alone\n{}",
            ns.summary("1 queue checked: healthy")
        )
    );
    assert_eq!(ns.run(&["recv", "0x1234", "--nowait"]).stdout, "keep me");
}

#[test]
fn damaged_queue_exits_5_until_removed() {
    let ns = Ns::new("damaged");
    ok(&ns.run(&["send", "0x1234", "1", "a", "--create"]));
    ok(&ns.run(&["send", "0x5678", "1", "b", "--create"]));
    // Wrong magic in queue 1's file.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(ns.path("msq.1"))
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, b"NOT_SHMQ", 0).unwrap();
    let got = ns.run(&["doctor"]);
    assert_eq!(got.code, 5, "{got:?}");
    assert_eq!(
        got.stdout,
        format!(
            "damaged: queue 1 (key 0x00005678): file damaged: wrong magic; remove it with `shmq doctor --remove 1` (its messages are lost)\n{}",
            ns.summary("2 queues checked, 1 problem to fix by hand: damaged")
        )
    );
    // IPC_RMID cannot open it; the doctor can remove it.
    assert_eq!(ns.run(&["rm", "-q", "1"]).code, 1);
    let got = ns.run(&["doctor", "--remove", "1"]);
    ok(&got);
    assert_eq!(
        got.stdout,
        format!(
            "removed: queue 1\n{}",
            ns.summary("1 queue checked: healthy")
        )
    );
    assert!(!ns.path("msq.1").exists());
    let got = ns.run(&["doctor", "--remove", "1"]);
    assert_eq!(got.code, 1, "{got:?}");
    assert_eq!(
        got.stderr,
        "shmq: doctor --remove 1: no queue with this id (EINVAL)\n"
    );
    ok(&ns.run(&["doctor"]));
    assert_eq!(ns.run(&["recv", "0x1234", "--nowait"]).stdout, "a");
}

#[test]
fn garbage_id_table_exits_3() {
    let ns = Ns::new("garbage");
    ok(&ns.run(&["send", "0x1234", "1", "a", "--create"]));
    std::fs::write(ns.path("ids"), [0x5a; 1000]).unwrap();
    let got = ns.run(&["doctor"]);
    assert_eq!(got.code, 3, "{got:?}");
    let ids = ns.path("ids");
    assert_eq!(
        got.stdout,
        format!(
            "unusable: id table: wrong magic: not an shmq id table; move {} aside: the next use makes an empty table and `shmq doctor` then removes the old queue files (every queue is lost)\n{}",
            ids.display(),
            ns.summary("unusable")
        )
    );
    assert_eq!(ns.run(&["doctor", "--dry-run"]).code, 3);
    // Following the advice: a new table, then the old queue file goes.
    std::fs::remove_file(&ids).unwrap();
    assert_eq!(ns.run(&["doctor"]).code, 4);
    let got = ns.run(&["doctor"]);
    ok(&got);
    assert!(!ns.path("msq.0").exists());
}

#[test]
fn json_report_is_one_object_with_the_exit_code() {
    let ns = Ns::new("json");
    ok(&ns.run(&["send", "0x1234", "1", "a", "--create"]));
    std::fs::write(ns.path("msq.5"), b"orphan").unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(ns.path("msq.0"))
        .unwrap()
        .set_len(4096 * 3)
        .unwrap();
    let got = ns.run(&["doctor", "--json"]);
    assert_eq!(got.code, 5, "{got:?}");
    assert_eq!(got.stdout.lines().count(), 1, "{got:?}");
    let v: serde_json::Value = serde_json::from_str(&got.stdout).expect("valid JSON");
    assert_eq!(v["namespace"], ns.dir.to_str().unwrap());
    assert_eq!(v["dry_run"], false);
    assert_eq!(v["health"], "damaged");
    assert_eq!(v["exit_code"], 5);
    assert_eq!(v["queues_checked"], 1);
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2, "{v}");
    assert_eq!(findings[0]["status"], "fixed");
    assert_eq!(findings[0]["kind"], "orphan_file");
    assert_eq!(findings[0]["file"], "msq.5");
    assert_eq!(findings[0]["action"], "removed");
    assert_eq!(findings[1]["status"], "damaged");
    assert_eq!(findings[1]["kind"], "file_damaged");
    assert_eq!(findings[1]["queue"], 0);
    assert_eq!(findings[1]["subject"], "queue 0 (key 0x00001234)");
    assert!(findings[1]["problem"]
        .as_str()
        .unwrap()
        .starts_with("file damaged: size 12288"));

    let got = ns.run(&["doctor", "--remove", "0", "--json"]);
    ok(&got);
    let v: serde_json::Value = serde_json::from_str(&got.stdout).expect("valid JSON");
    assert_eq!(v["removed"], serde_json::json!([0]));
    assert_eq!(v["health"], "healthy");
    assert_eq!(v["findings"], serde_json::json!([]));
}

#[test]
fn usage_errors_and_help() {
    let ns = Ns::new("usage");
    let got = ns.run(&["doctor", "--dry-run", "--remove", "1"]);
    assert_eq!(got.code, 2, "{got:?}");
    let got = ns.run(&["doctor", "--help"]);
    ok(&got);
    for line in [
        "  3  the namespace is unusable",
        "  4  problems were found and all repaired",
        "  5  damage remains",
    ] {
        assert!(got.stdout.contains(line), "{line:?} missing: {got:?}");
    }
    let got = ns.run(&["--help"]);
    assert!(
        got.stdout.contains("  5  doctor: damage remains"),
        "{got:?}"
    );
}
