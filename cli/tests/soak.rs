//! `shmq soak`, small: 20 000 messages with `--kill`, in a namespace of its
//! own under /dev/shm. The run must report zero errors in a well-formed JSON
//! summary and leave nothing behind. Figures are never checked.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A run that takes longer than this is killed and fails.
const RUN_LIMIT: Duration = Duration::from_secs(180);

#[test]
fn small_soak_with_kills_has_no_errors() {
    let dir = PathBuf::from(format!("/dev/shm/shmq-clitest-{}-soak", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let child = Command::new(env!("CARGO_BIN_EXE_shmq"))
        .arg("--dir")
        .arg(&dir)
        .args([
            "soak",
            "--messages",
            "20000",
            "--kill",
            "--kill-every",
            "20ms",
        ])
        .args(["--interval", "500ms", "--json"])
        .env_remove("SHMQ_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shmq soak");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(RUN_LIMIT) {
        Ok(out) => out.expect("wait for shmq soak"),
        Err(_) => {
            // SIGINT: the run's own cleanup kills its children and removes
            // the queue and directories; give it a moment.
            // SAFETY: kill(2) on the pid of the child this test started.
            unsafe { libc::kill(pid as i32, libc::SIGINT) };
            std::thread::sleep(Duration::from_secs(2));
            let _ = std::fs::remove_dir_all(&dir);
            panic!("shmq soak still running after {RUN_LIMIT:?}");
        }
    };
    let left = dir.exists();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "shmq soak failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(!left, "shmq soak left its namespace {}", dir.display());
    let v: Value = serde_json::from_str(stdout.trim()).expect("summary is JSON");
    for field in [
        "messages_sent",
        "messages_received",
        "errors",
        "corrupt",
        "duplicates",
        "order_violations",
        "unexpected_errno",
        "lost",
        "lost_allowed",
        "processes_started",
        "processes_killed",
    ] {
        assert!(v[field].is_u64(), "{field} missing in {v}");
    }
    assert_eq!(v["errors"], 0, "{v}");
    assert!(v["lost"].as_u64() <= v["lost_allowed"].as_u64(), "{v}");
    assert!(v["messages_received"].as_u64().unwrap() > 0, "{v}");
    let tally = PathBuf::from(format!("/dev/shm/shmq-soak-{pid}-tally"));
    assert!(!tally.exists(), "tally directory left behind");
}
