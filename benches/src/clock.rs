//! A clock that every process on the machine shares: `CLOCK_MONOTONIC` in
//! nanoseconds, so that a time taken in one process can be compared with one
//! taken in another (a producer's start with a consumer's end).

use rustix::time::{clock_gettime, ClockId};

/// Nanoseconds of `CLOCK_MONOTONIC` (the same value in every process).
#[inline]
pub fn now_ns() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Median cost of one [`now_ns`] call, in nanoseconds: what a timed region
/// of one operation includes beyond the operation itself.
pub fn overhead_ns() -> u64 {
    let mut samples: Vec<u64> = (0..1001)
        .map(|_| {
            let a = now_ns();
            let b = now_ns();
            b - a
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_moves_forward() {
        let a = now_ns();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = now_ns();
        assert!(b >= a + 1_000_000, "{a} then {b}");
        assert!(overhead_ns() < 1_000_000);
    }
}
