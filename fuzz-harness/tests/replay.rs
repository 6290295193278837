//! Replays every committed fuzz input (`fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/`) through its harness function, on the
//! stable toolchain: what the fuzzers found stays fixed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest a target's replay may take before the test fails (in release
/// builds a corpus replays in seconds; debug builds are slower).
const LIMIT: Duration = Duration::from_secs(600);

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_file()) {
                files.push(e.path());
            }
        }
    }
    files.sort();
    files
}

/// Runs every input of `target` on `f` under a watchdog that aborts the
/// process if one run hangs.
fn replay(target: &str, f: fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no committed inputs for {target}");
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let name = target.to_string();
    std::thread::spawn(move || {
        if rx.recv_timeout(LIMIT) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
            eprintln!("replay of {name} still running after {LIMIT:?}; aborting");
            std::process::abort();
        }
    });
    let start = Instant::now();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        eprintln!("{}", file.display());
        f(&data);
    }
    drop(tx);
    eprintln!("{target}: {} inputs in {:?}", files.len(), start.elapsed());
}

#[test]
fn queue_file() {
    replay("queue_file", shmq_fuzz_harness::queue_file);
}

#[test]
fn id_table() {
    replay("id_table", shmq_fuzz_harness::id_table);
}

#[test]
fn api_sequence() {
    replay("api_sequence", shmq_fuzz_harness::api_sequence);
}

/// Runs one regression input of `target` (a file under
/// `fuzz/regressions/<target>/`), named by the bug it found.
fn regression(target: &str, name: &str, f: fn(&[u8])) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target)
        .join(name);
    f(&std::fs::read(&path).unwrap());
}

/// MSG_COPY of a node whose recorded size exceeds its inline text (data
/// index NIL) panicked in a slice copy; now ENOMEM, as for a data cell.
#[test]
fn regression_copy_nth_inline_size_overrun() {
    regression(
        "queue_file",
        "copy_nth-inline-size-overrun",
        shmq_fuzz_harness::queue_file,
    );
}

/// A slot whose `acct_done` holds `u64::MAX` made the next receive's
/// sequence number overflow (a panic in builds with overflow checks); it
/// now wraps, as release builds did.
#[test]
fn regression_next_seq_acct_done_overflow() {
    regression(
        "queue_file",
        "next_seq-acct_done-overflow",
        shmq_fuzz_harness::queue_file,
    );
}

/// A record whose `seq` is `u32::MAX`, freed by the doctor, overflowed the
/// sequence bump (a panic with overflow checks); it now wraps into range.
#[test]
fn regression_free_record_seq_overflow() {
    regression(
        "id_table",
        "free_record-seq-overflow",
        shmq_fuzz_harness::id_table,
    );
}

/// The first api_sequence crash was the model's, not the engine's: a
/// fill-and-drain of a removed queue expected its old messages (the engine
/// rightly said EINVAL). Kept so the model stays right.
#[test]
fn regression_drain_of_removed_queue() {
    regression(
        "api_sequence",
        "drain-of-removed-queue",
        shmq_fuzz_harness::api_sequence,
    );
}
