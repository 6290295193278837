//! Receive with 32 priorities in use (POSIX queues): one child fills a
//! queue with `depth` messages over the priorities `0..prios` and times
//! receives, each taking the oldest message of the highest priority,
//! re-sending it untimed with its priority so that the queue keeps its depth
//! and its spread (one clock read on each side of a receive, included).

use super::ANSWER_TIMEOUT;
use crate::mechanism::{ChannelConfig, End, Mechanism};
use crate::session::{ChildSpec, Session, Spawner};
use crate::stats::Summary;
use std::io;
use std::time::Duration;

/// How much to measure.
#[derive(Clone, Copy, Debug)]
pub struct Opts {
    /// Priorities in use.
    pub prios: u32,
    /// Messages queued.
    pub depth: usize,
    /// Message size.
    pub size: usize,
    /// At most this many timed receives.
    pub max_reps: u64,
    /// At most about this long (at least 3 receives).
    pub budget: Duration,
}

/// One measured point.
#[derive(Clone, Debug)]
pub struct PrioPoint {
    /// Mechanism name.
    pub mech: String,
    /// Priorities in use.
    pub prios: u32,
    /// Messages queued.
    pub depth: usize,
    /// Receive times, nanoseconds.
    pub summary: Summary,
}

/// Measures `mech` (one with priorities) as `opts` says.
pub fn run(spawner: &Spawner, mech: &dyn Mechanism, opts: Opts) -> io::Result<PrioPoint> {
    if !mech.priorities() {
        return Err(io::ErrorKind::Unsupported.into());
    }
    let cfg = ChannelConfig {
        msg_size: opts.size,
        capacity: Some(opts.depth),
        a_ends: 1,
        b_ends: 0,
    };
    let kids = [ChildSpec::new(End::A)];
    let mut session = Session::start(spawner, mech, &cfg, &kids, ANSWER_TIMEOUT)?;
    let f = session.ask(
        0,
        &format!(
            "prio prios={} depth={} max={} budget_ms={} size={}",
            opts.prios,
            opts.depth,
            opts.max_reps,
            opts.budget.as_millis(),
            opts.size
        ),
    )?;
    Ok(PrioPoint {
        mech: mech.name().to_string(),
        prios: opts.prios,
        depth: opts.depth,
        summary: Summary::from_fields(&f)?,
    })
}
