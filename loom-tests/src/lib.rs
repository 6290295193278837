//! Helpers shared by the loom models in `tests/` (built only with
//! `--cfg loom`; see `tests/run_models.rs` for how the test command runs them).
//!
//! Every model checks an invariant of one algorithm of the engine, on the
//! engine's own code (`shmq::model`), and comes with a mutant: a deliberate bug
//! in that algorithm that the model must catch (`expect_caught`).
#![cfg(loom)]

use loom::sync::Arc;
use shmq::model::Queue;
pub use shmq::model::{self, Mutant};

/// Explores `f` with loom (bounds from `LOOM_MAX_PREEMPTIONS` and friends).
pub fn check(f: impl Fn() + Sync + Send + 'static) {
    model::set_mutant(Mutant::None);
    builder().check(f);
}

/// loom's builder with the preemption bound from `LOOM_MAX_PREEMPTIONS`
/// (default 2) and room for the data path's atomic steps: one send or receive
/// is a few hundred loom operations on the directory, FIFO and accounting,
/// above loom's default of 1000 branches per execution.
fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(2);
    }
    b.max_branches = b.max_branches.max(20_000);
    b
}

/// Explores `f` with mutant `m` switched on and asserts that loom reports a
/// failure (a failed assertion, a deadlock or a data race). A model that
/// passes with the bug in place proves nothing.
///
/// The mutant runs in a child process (this test binary re-invoked for the
/// calling test alone): when loom finds a deadlock it panics with the other
/// model threads still blocked, and unwinding them can abort the process,
/// which no `catch_unwind` survives.
pub fn expect_caught(m: Mutant, f: impl Fn() + Sync + Send + 'static) {
    const CHILD: &str = "SHMQ_LOOM_MUTANT_CHILD";
    if std::env::var_os(CHILD).is_some() {
        model::set_mutant(m);
        builder().check(f);
        model::set_mutant(Mutant::None);
        println!("MUTANT-NOT-CAUGHT");
        return;
    }
    let test = std::thread::current()
        .name()
        .expect("libtest names each test's thread")
        .to_owned();
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("re-run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains("running 0 tests"),
        "the child did not find test {test}"
    );
    assert!(
        !out.status.success() && !stdout.contains("MUTANT-NOT-CAUGHT"),
        "mutant {m:?} was not caught: the model cannot see this bug"
    );
    // The line after loom's "panicked at ..." says what it found.
    let reason = stderr
        .lines()
        .skip_while(|l| !l.contains("panicked at"))
        .nth(1)
        .unwrap_or("the model process died");
    println!("mutant {m:?} caught: {reason}");
}

/// A message text that names its sender and sequence number.
pub fn text(sender: u8, seq: u8) -> Vec<u8> {
    vec![sender, seq, sender ^ seq ^ 0x5a]
}

/// Makes the calling model thread process `pid` and attaches it to `q`: the
/// slot it uses.
pub fn become_process(q: &Queue, pid: u32) -> usize {
    model::set_pid(pid);
    q.attach()
}

/// Starts model process `pid` on a loom thread of its own, which attaches to
/// `q` and runs `f` with the queue and its slot.
pub fn spawn_process<R: Send + 'static>(
    q: &Arc<Queue>,
    pid: u32,
    f: impl FnOnce(&Queue, usize) -> R + Send + 'static,
) -> loom::thread::JoinHandle<R> {
    let q = q.clone();
    loom::thread::spawn(move || {
        let slot = become_process(&q, pid);
        f(&q, slot)
    })
}
