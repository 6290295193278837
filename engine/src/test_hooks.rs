//! Hooks for shmq's own tests, fuzz harness and loom-free diagnostics: not
//! part of the API, hidden from the documentation, and free to change.
//!
//! Kill points cut a management operation at a named place (see
//! `engine/tests/kill_management.rs`); the others expose what a test checks
//! and a user never needs (recovery runs by itself on the next call).

use crate::queue::Queue;

pub use crate::kill_points::{arm_kill_point, disarm_kill_point, KillAction, KillPoint};
pub use crate::wait::futex_wake_ups;

/// Recovers what dead processes hold in `q` now; returns how many
/// attachment slots were recovered.
pub fn recover(q: &Queue) -> usize {
    q.recover()
}

/// A human-readable dump of `q`'s counter, type entries, FIFOs and
/// attachment slots. Bounded walks; never fails.
pub fn debug_dump(q: &Queue) -> String {
    q.debug_dump()
}
