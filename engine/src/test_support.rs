//! Helpers for unit tests: heap-allocated pieces of a queue's shared state.

use crate::layout::{zeroed, SlotRecord};

/// `n` zero-filled slot records.
pub(crate) fn slot_records(n: usize) -> Vec<SlotRecord> {
    (0..n).map(|_| zeroed::slot()).collect()
}
