//! Runs the loom models from the workspace's ordinary test command
//! (`cargo test --workspace --release`).
//!
//! The models need the engine compiled with `--cfg loom` (loom's atomics, the
//! modelled futex), which an ordinary build cannot provide: so this test runs
//! cargo again for this crate alone, with `RUSTFLAGS=--cfg loom`, in its own
//! target directory (`target/loom`, so the two builds never invalidate each
//! other), at `LOOM_MAX_PREEMPTIONS=2` unless the environment says otherwise.
//! The inner run's output goes straight to the terminal (it is not captured),
//! so its progress shows. `SHMQ_SKIP_LOOM=1` skips it.
#![cfg(not(loom))]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Far above the models' few minutes; only a runaway exploration hits it.
const WATCHDOG: Duration = Duration::from_secs(40 * 60);

#[test]
fn loom_models_pass_and_every_mutant_is_caught() {
    if std::env::var_os("SHMQ_SKIP_LOOM").is_some() {
        eprintln!("loom models skipped (SHMQ_SKIP_LOOM is set)");
        return;
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = crate_dir
        .parent()
        .expect("loom-tests sits in the workspace");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut rustflags = std::env::var("RUSTFLAGS").unwrap_or_default();
    rustflags.push_str(" --cfg loom");
    let preemptions = std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| "2".into());
    eprintln!("loom models: cargo test -p shmq-loom-tests --release with --cfg loom, LOOM_MAX_PREEMPTIONS={preemptions}");
    let started = Instant::now();
    let mut child = Command::new(cargo)
        .current_dir(workspace)
        .args(["test", "--release", "-p", "shmq-loom-tests", "--target-dir"])
        .arg(workspace.join("target").join("loom"))
        .env("RUSTFLAGS", rustflags.trim())
        .env("LOOM_MAX_PREEMPTIONS", &preemptions)
        .spawn()
        .expect("run cargo for the loom models");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for cargo") {
            break status;
        }
        if started.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("loom models still running after {WATCHDOG:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("loom models took {:.0?}", started.elapsed());
    assert!(status.success(), "loom models failed: {status}");
}
