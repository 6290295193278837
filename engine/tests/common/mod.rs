//! Shared helpers of the engine's integration tests: a private namespace per
//! test (removed afterwards), a watchdog, and child processes.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A namespace directory of the test's own, removed when dropped.
pub struct TempNamespace {
    pub dir: PathBuf,
    pub ns: shmq::Namespace,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TempNamespace {
    pub fn new() -> TempNamespace {
        Self::with_config("")
    }

    /// A namespace whose `config` file holds `config` (e.g. "msgmni = 50").
    pub fn with_config(config: &str) -> TempNamespace {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(format!("/dev/shm/shmq-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config"), config).unwrap();
        let ns = shmq::Namespace::open(&dir).unwrap();
        TempNamespace { dir, ns }
    }
}

impl Drop for TempNamespace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Aborts the whole test process if the test runs longer than `secs`: a hang
/// becomes a failure instead of a stuck CI run.
pub fn watchdog(secs: u64) -> Watchdog {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(secs)) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
            eprintln!("watchdog: test still running after {secs} s; aborting");
            std::process::abort();
        }
    });
    Watchdog(tx)
}

pub struct Watchdog(std::sync::mpsc::Sender<()>);

/// Default flags for creating a queue.
pub fn create(mode: u32) -> shmq::GetFlags {
    shmq::GetFlags { create: true, exclusive: false, mode }
}
