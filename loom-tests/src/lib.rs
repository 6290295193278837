//! Helpers shared by the loom models in `tests/` (built only with
//! `--cfg loom`; see `tests/run_models.rs` for how the test command runs them).
//!
//! Every model checks an invariant of one algorithm of the engine, on the
//! engine's own code (`shmq::model`), and comes with a mutant: a deliberate bug
//! in that algorithm that the model must catch ([`expect_caught`]).
#![cfg(loom)]

pub use shmq::model::{self, Mutant};
use std::panic::{catch_unwind, AssertUnwindSafe};

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
pub fn expect_caught(m: Mutant, f: impl Fn() + Sync + Send + 'static) {
    model::set_mutant(m);
    let outcome = catch_unwind(AssertUnwindSafe(|| builder().check(f)));
    model::set_mutant(Mutant::None);
    assert!(
        outcome.is_err(),
        "mutant {m:?} was not caught: the model cannot see this bug"
    );
}

/// A message text that names its sender and sequence number.
pub fn text(sender: u8, seq: u8) -> Vec<u8> {
    vec![sender, seq, sender ^ seq ^ 0x5a]
}
