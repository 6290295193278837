//! Process identity as the loom models see it (`cfg(loom)` replaces
//! `process.rs` with this file).
//!
//! In a model, each loom thread plays a process: [`set_pid`] gives it a pid,
//! and [`die`] ends its life as SIGKILL would (it makes no further step). The
//! set of dead pids lives in a loom-modelled word, written with Release by the
//! dying thread and read with Acquire by liveness checks: in a real system a
//! process's stores are all visible once the kernel reports it dead, which is
//! what the Release/Acquire pair stands for.

use crate::sync::{AtomicU64, Ordering};
use std::cell::Cell;

loom::lazy_static! {
    /// Bit `pid` set: that model process is dead.
    static ref DEAD: AtomicU64 = AtomicU64::new(0);
}

loom::thread_local! {
    static PID: Cell<u32> = Cell::new(1);
}

/// Makes the calling model thread process `pid` (1..=63).
pub(crate) fn set_pid(pid: u32) {
    assert!((1..64).contains(&pid), "model pids are 1..=63");
    PID.with(|p| p.set(pid));
}

/// The calling model thread's pid.
pub(crate) fn pid() -> u32 {
    PID.with(|p| p.get())
}

/// Model processes never start twice: a constant start time.
pub(crate) fn own_start_time() -> u64 {
    1
}

/// Whether model process `pid` is alive.
pub(crate) fn is_alive(pid: u32, _start_time: u64) -> bool {
    // SYNC(model_death): Acquire, pairs with the Release in `die`.
    pid >= 64 || DEAD.load(Ordering::Acquire) & (1 << pid) == 0
}

/// The calling model thread's process dies.
pub(crate) fn die() {
    // SYNC(model_death): Release, see `is_alive`.
    DEAD.fetch_or(1 << pid(), Ordering::Release);
}
