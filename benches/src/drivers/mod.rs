//! The measurements, each built on [`crate::Session`]s; every figure comes
//! from processes that are not the caller.
//!
//! - [`pingpong`]: round trip, p50 and p99, spinning allowed or always parked;
//! - [`throughput`]: one-way messages per second, any number of producers and
//!   consumers;
//! - [`depth`]: typed receive with `D` messages of `D` types queued;
//! - [`prio`]: receive from a POSIX queue with 32 priorities in use;
//! - [`footprint`]: shared memory of a queue, resident memory of a process.

pub mod depth;
pub mod footprint;
pub mod pingpong;
pub mod prio;
pub mod throughput;

use crate::mechanism::Mechanism;
use std::time::Duration;

/// How long a child may take to answer one command before it is killed.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// A mechanism as measured: its mode and the environment of its processes.
#[derive(Clone, Copy)]
pub struct Contender<'a> {
    /// The mechanism.
    pub mech: &'a dyn Mechanism,
    /// Parked mode: every message is sent to a receiver asleep in the kernel
    /// (and, for shmq, with spinning off: `SHMQ_SPIN=0`).
    pub parked: bool,
}

impl std::fmt::Debug for Contender<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.label())
    }
}

impl<'a> Contender<'a> {
    /// `mech` in its default mode.
    pub fn new(mech: &'a dyn Mechanism) -> Contender<'a> {
        Contender {
            mech,
            parked: false,
        }
    }

    /// `mech` in parked mode.
    pub fn parked(mech: &'a dyn Mechanism) -> Contender<'a> {
        Contender { mech, parked: true }
    }

    /// `name` or `name (parked)`.
    pub fn label(&self) -> String {
        if self.parked {
            format!("{} (parked)", self.mech.name())
        } else {
            self.mech.name().to_string()
        }
    }

    /// Environment changes for its children: shmq's spinning is off in parked
    /// mode (`SHMQ_SPIN=0`) and at its built-in policy otherwise (a user's
    /// `SHMQ_SPIN` is not inherited; `SHMQ_BENCH_SPIN`, if set, is passed as
    /// `SHMQ_SPIN`, a spin cap in microseconds, for experiments).
    pub fn env(&self) -> Vec<(String, Option<String>)> {
        let spin = if self.parked {
            Some("0".to_string())
        } else {
            std::env::var("SHMQ_BENCH_SPIN").ok()
        };
        vec![("SHMQ_SPIN".to_string(), spin)]
    }
}

/// Where the two processes of a round trip run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Wherever the scheduler puts them.
    Unpinned,
    /// Both pinned to CPU 0: they take turns on one CPU.
    OneCpu,
    /// Pinned to CPUs 0 and 1 (on a one-CPU machine: unpinned).
    TwoCpus,
}

impl Placement {
    /// Every placement, in the order the reports show them.
    pub const ALL: [Placement; 3] = [Placement::Unpinned, Placement::OneCpu, Placement::TwoCpus];

    /// `pin` as the throughput runs mean it: pinned to CPUs 0 and 1, or not.
    pub fn from_pin(pin: bool) -> Placement {
        if pin {
            Placement::TwoCpus
        } else {
            Placement::Unpinned
        }
    }

    /// The CPUs to pin the two processes to.
    pub fn cpus(self) -> [Option<usize>; 2] {
        match self {
            Placement::Unpinned => [None, None],
            Placement::OneCpu => [Some(0), Some(0)],
            Placement::TwoCpus => pair_cpus(true),
        }
    }

    /// What actually happens on this machine (two CPUs on a one-CPU
    /// machine are no pinning at all).
    pub fn effective(self) -> Placement {
        match self {
            Placement::TwoCpus if pair_cpus(true)[0].is_none() => Placement::Unpinned,
            p => p,
        }
    }

    /// `unpinned`, `one CPU`, `two CPUs`.
    pub fn label(self) -> &'static str {
        match self {
            Placement::Unpinned => "unpinned",
            Placement::OneCpu => "one CPU",
            Placement::TwoCpus => "two CPUs",
        }
    }

    /// `unpinned`, `one-cpu`, `two-cpus` (JSON, command lines).
    pub fn key(self) -> &'static str {
        match self {
            Placement::Unpinned => "unpinned",
            Placement::OneCpu => "one-cpu",
            Placement::TwoCpus => "two-cpus",
        }
    }
}

/// The CPUs to pin the two ends of a pair to, when `pin` is asked for and
/// the machine has two CPUs or more: 0 and 1.
pub fn pair_cpus(pin: bool) -> [Option<usize>; 2] {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    if pin && n >= 2 {
        [Some(0), Some(1)]
    } else {
        [None, None]
    }
}

/// Number of operations to run for about `target`, given that `sample`
/// operations took `took_ns`; within `[min, max]`.
pub(crate) fn scale(target: Duration, sample: u64, took_ns: u64, min: u64, max: u64) -> u64 {
    let per = (took_ns / sample.max(1)).max(1);
    (target.as_nanos() as u64 / per).clamp(min, max)
}
