//! Ping-pong: process A sends a message of type 1, process B receives it and
//! sends one of type 2 back, A receives it; the round trip is timed in A, one
//! sample per round trip.

use super::{scale, Contender, Placement, ANSWER_TIMEOUT};
use crate::mechanism::{ChannelConfig, End};
use crate::session::{ChildSpec, Session, Spawner};
use crate::stats::Summary;
use std::io;
use std::time::Duration;

/// How many round trips.
#[derive(Clone, Copy, Debug)]
pub struct Opts {
    /// Aim for about this much timed work (the count follows from a
    /// calibration run).
    pub target: Duration,
    /// At least this many timed round trips.
    pub min: u64,
    /// At most this many.
    pub max: u64,
    /// Untimed round trips first (also the calibration run).
    pub warmup: u64,
    /// Where the two processes run.
    pub placement: Placement,
    /// Rounds, each with a fresh pair of processes (which the scheduler may
    /// place differently); the figures are the medians of the rounds'.
    pub rounds: u32,
}

/// A measured round trip.
#[derive(Clone, Debug)]
pub struct RoundTrip {
    /// Mechanism name.
    pub mech: String,
    /// Parked mode.
    pub parked: bool,
    /// Where the two processes ran.
    pub placement: Placement,
    /// Message size in bytes.
    pub size: usize,
    /// Round-trip times, nanoseconds: p50 and p99 (and the others) are the
    /// medians of the rounds' figures; `n` is the total count.
    pub summary: Summary,
    /// Each round's p50, nanoseconds.
    pub round_p50s: Vec<u64>,
    /// Round trips where a side gave up waiting for its peer to sleep
    /// (parked mode only; should be 0).
    pub sleep_waits: u64,
}

/// An open ping-pong pair, for repeated batches (the criterion suite).
pub struct Pair {
    session: Session,
    parked: bool,
    size: usize,
}

impl Pair {
    /// Starts the two processes of `who` for messages of `size` bytes.
    pub fn start(
        spawner: &Spawner,
        who: Contender<'_>,
        size: usize,
        placement: Placement,
    ) -> io::Result<Pair> {
        if who.parked && size < 8 {
            return Err(io::Error::other(
                "parked mode needs messages of 8 bytes or more",
            ));
        }
        let env = who.env();
        let [ca, cb] = placement.cpus();
        let kids = [
            ChildSpec::new(End::A).with_env(&env).on_cpu(ca),
            ChildSpec::new(End::B).with_env(&env).on_cpu(cb),
        ];
        let session = Session::start(
            spawner,
            who.mech,
            &ChannelConfig::pair(size),
            &kids,
            ANSWER_TIMEOUT,
        )?;
        Ok(Pair {
            session,
            parked: who.parked,
            size,
        })
    }

    /// Runs `warmup` untimed and `n` timed round trips; returns their
    /// summary, the total time of the timed ones (the sum of the samples in
    /// parked mode), the wall time they took, and the give-ups.
    pub fn run(&mut self, n: u64, warmup: u64) -> io::Result<Batch> {
        let s = &mut self.session;
        let (a, b) = (s.pid(0), s.pid(1));
        let p = self.parked as u8;
        s.command(
            1,
            &format!(
                "pong n={} size={} parked={p} peer={a}",
                n + warmup,
                self.size
            ),
        )?;
        s.command(
            0,
            &format!(
                "ping n={n} warmup={warmup} size={} parked={p} peer={b}",
                self.size
            ),
        )?;
        let f = s.answer(0)?;
        s.answer(1)?;
        Ok(Batch {
            summary: Summary::from_fields(&f)?,
            total_ns: f.u64("total")?,
            wall_ns: f.u64("wall")?,
            sleep_waits: f.u64("sleep_waits")?,
        })
    }
}

/// The outcome of [`Pair::run`].
#[derive(Clone, Copy, Debug)]
pub struct Batch {
    /// The round trips' figures.
    pub summary: Summary,
    /// Their total time (parked: the sum of the samples, without the waits).
    pub total_ns: u64,
    /// The wall time of the batch.
    pub wall_ns: u64,
    /// Round trips where a side gave up waiting for its peer to sleep.
    pub sleep_waits: u64,
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Measures the round trip of `who` with messages of `size` bytes.
pub fn run(
    spawner: &Spawner,
    who: Contender<'_>,
    size: usize,
    opts: Opts,
) -> io::Result<RoundTrip> {
    let rounds = opts.rounds.max(1);
    let mut batches = Vec::new();
    for _ in 0..rounds {
        let mut pair = Pair::start(spawner, who, size, opts.placement)?;
        let warm = pair.run(opts.warmup.max(1), 0)?;
        let target = opts.target / rounds;
        let n = scale(target, opts.warmup.max(1), warm.wall_ns, opts.min, opts.max);
        batches.push(pair.run(n, 0)?);
    }
    let pick = |f: fn(&Summary) -> u64| median(batches.iter().map(|b| f(&b.summary)).collect());
    let summary = Summary {
        n: batches.iter().map(|b| b.summary.n).sum(),
        min: batches.iter().map(|b| b.summary.min).min().unwrap_or(0),
        p50: pick(|s| s.p50),
        p90: pick(|s| s.p90),
        p99: pick(|s| s.p99),
        max: batches.iter().map(|b| b.summary.max).max().unwrap_or(0),
        mean: pick(|s| s.mean),
    };
    let round_p50s = batches.iter().map(|b| b.summary.p50).collect();
    let sleep_waits = batches.iter().map(|b| b.sleep_waits).sum();
    Ok(RoundTrip {
        round_p50s,
        mech: who.mech.name().to_string(),
        parked: who.parked,
        placement: opts.placement.effective(),
        size,
        summary,
        sleep_waits,
    })
}
