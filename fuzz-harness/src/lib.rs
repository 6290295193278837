//! The logic of shmq's fuzz targets, one public function per target, each
//! taking the fuzzer's bytes. The `cargo-fuzz` project in `fuzz/` only calls
//! these; the replay test (`tests/replay.rs`) runs every committed corpus and
//! regression input through them on the stable toolchain.
//!
//! - [`queue_file`]: a valid queue file, made through the API, then damaged
//!   (patches at words that hold data, raw bytes, a new length, or the whole
//!   file from the input) before anything maps it again; then opened and
//!   used through the normal API and the doctor.
//! - [`id_table`]: the same for the namespace's `ids` file.
//! - [`api_sequence`]: a sequence of API calls with arbitrary arguments on a
//!   fresh namespace, checked against a model of the queues.
//!
//! "Never trust the mapping" (`docs/design.md`): whatever the bytes, nothing may
//! panic, hang or crash; errors are fine. Each call runs on a thread of its
//! own (so its per-thread attachment slots are released when it ends) in a
//! namespace directory of its own, `/dev/shm/shmq-fuzz-<pid>-<n>`, removed
//! afterwards.

mod api_sequence;
mod id_table;
mod input;
mod patch;
mod queue_file;

pub use api_sequence::api_sequence;
pub use id_table::id_table;
pub use queue_file::queue_file;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Limits of every namespace the harness makes: small, so that a queue file
/// is about 150 KiB and an execution takes well under a millisecond, with
/// three data classes (texts up to 64, 128 and 256 bytes) besides inline ones.
const CONFIG: &str = "msgmax = 200\nmsgmnb = 256\nqbytes_max = 512\nmsgmni = 4\nslots = 4\n";
/// `msgmax` of [`CONFIG`].
const MSGMAX: usize = 200;
/// `msgmnb` of [`CONFIG`].
const MSGMNB: u64 = 256;
/// `qbytes_max` of [`CONFIG`].
const QBYTES_MAX: u64 = 512;
/// `msgmni` of [`CONFIG`].
const MSGMNI: usize = 4;

/// A namespace directory of this execution's own, removed when dropped.
struct TempDir {
    path: PathBuf,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TempDir {
    fn new() -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(format!("/dev/shm/shmq-fuzz-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the namespace directory");
        std::fs::write(path.join("config"), CONFIG).expect("write the config file");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Runs `f` on a thread of its own and waits until that thread has exited
/// (its thread-local attachment slots released); a panic in `f` is re-raised
/// here.
fn isolated<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        // `join` waits for the OS thread to end, thread-local destructors
        // included (the scope alone would not).
        match s.spawn(f).join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Doctor options with a short lock timeout: no fuzz input may make an
/// execution wait seconds.
fn doctor_options(dry_run: bool) -> shmq::doctor::DoctorOptions {
    shmq::doctor::DoctorOptions {
        dry_run,
        lock_timeout: Duration::from_millis(100),
    }
}

/// Runs the doctor on `dir` and looks at everything it reports (its text
/// forms included, which `shmq doctor` prints).
fn run_doctor(dir: &std::path::Path, dry_run: bool) -> shmq::doctor::Health {
    let report = shmq::Namespace::doctor_dir(dir, &doctor_options(dry_run));
    for f in &report.findings {
        let _ = (f.status(), f.action(), f.problem.kind(), f.to_string());
    }
    report.health()
}
