//! One-way throughput: producers send as fast as the channel takes messages,
//! consumers receive; the time runs from the first producer's start to the
//! arrival of the last consumer's stop message (the clock is shared by all
//! processes). The stops are sent once every producer has said it is done,
//! and each is queued behind its consumer's data, so the time includes the
//! consumers' drain and, if they drained first, the parent's round trip to
//! the producer that sends the stops (tens of microseconds, against the
//! 100 ms a quick run measures), for every mechanism alike. Consumers once
//! read the clock after every message instead, to time the last one: that
//! read (20 ns) was work enough to make shmq's consumers lag, which changed
//! how the stream ran (see `BENCHMARKS.md`).
//!
//! With typed mechanisms and several consumers, consumer `c` receives type
//! `c + 1` only and producers cycle through the types (System V's way of
//! routing); otherwise consumers take whatever comes next. After the data,
//! one stop message per consumer ends the run; every message is counted.

use super::{scale, Contender, ANSWER_TIMEOUT};
use crate::mechanism::{ChannelConfig, End};
use crate::session::{ChildSpec, Session, Spawner};
use std::io;
use std::time::Duration;

/// How many messages.
#[derive(Clone, Copy, Debug)]
pub struct Opts {
    /// Aim for about this much work (after a calibration batch).
    pub target: Duration,
    /// Messages per producer in the calibration batch (also the minimum).
    pub calibrate: u64,
    /// At most this many messages per producer.
    pub max: u64,
    /// Pin a single producer and a single consumer to CPUs 0 and 1
    /// (several producers or consumers are never pinned).
    pub pin: bool,
}

/// A measured throughput.
#[derive(Clone, Debug)]
pub struct Throughput {
    /// Mechanism name.
    pub mech: String,
    /// Producer processes.
    pub producers: usize,
    /// Consumer processes.
    pub consumers: usize,
    /// Message size in bytes.
    pub size: usize,
    /// Consumers received by type (typed mechanism, several consumers).
    pub typed: bool,
    /// The producer and the consumer were pinned to CPUs 0 and 1.
    pub pinned: bool,
    /// Messages received (= sent).
    pub messages: u64,
    /// From the first send to the last stop received, nanoseconds.
    pub elapsed_ns: u64,
}

impl Throughput {
    /// Messages per second.
    pub fn msg_per_s(&self) -> f64 {
        self.messages as f64 * 1e9 / self.elapsed_ns.max(1) as f64
    }

    /// Bytes of message text per second.
    pub fn bytes_per_s(&self) -> f64 {
        self.msg_per_s() * self.size as f64
    }
}

/// Producers and consumers on one channel, for repeated batches.
pub struct Flow {
    session: Session,
    producers: usize,
    consumers: usize,
    size: usize,
    send_types: Vec<i64>,
    recv_types: Vec<i64>,
}

impl Flow {
    /// Starts `producers` + `consumers` processes of `who` for messages of
    /// `size` bytes.
    pub fn start(
        spawner: &Spawner,
        who: Contender<'_>,
        size: usize,
        producers: usize,
        consumers: usize,
        pin: bool,
    ) -> io::Result<Flow> {
        let shared = producers > 1 || consumers > 1;
        if shared && !who.mech.shared_ends(size) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{} cannot share an end between processes with {size}-byte messages",
                    who.mech.name()
                ),
            ));
        }
        let env = who.env();
        let [cp, cc] = super::pair_cpus(pin && !shared);
        let mut kids = vec![ChildSpec::new(End::A).with_env(&env).on_cpu(cp); producers];
        kids.extend(vec![
            ChildSpec::new(End::B).with_env(&env).on_cpu(cc);
            consumers
        ]);
        let cfg = ChannelConfig {
            msg_size: size,
            capacity: None,
            a_ends: producers,
            b_ends: consumers,
        };
        let session = Session::start(spawner, who.mech, &cfg, &kids, ANSWER_TIMEOUT)?;
        let typed = who.mech.typed() && consumers > 1;
        let (send_types, recv_types) = if typed {
            let t: Vec<i64> = (1..=consumers as i64).collect();
            (t.clone(), t)
        } else {
            (vec![1], vec![0; consumers])
        };
        Ok(Flow {
            session,
            producers,
            consumers,
            size,
            send_types,
            recv_types,
        })
    }

    /// Whether consumers receive by type.
    pub fn typed(&self) -> bool {
        self.recv_types.iter().any(|&t| t != 0)
    }

    /// Sends `n` messages from each producer; returns the messages received
    /// (checked to be all of them) and the elapsed time in nanoseconds.
    pub fn batch(&mut self, n: u64) -> io::Result<(u64, u64)> {
        let (p, size) = (self.producers, self.size);
        let s = &mut self.session;
        for (c, t) in self.recv_types.iter().enumerate() {
            s.command(p + c, &format!("consume size={size} mtype={t}"))?;
        }
        let types = join(&self.send_types);
        for i in 0..p {
            s.command(i, &format!("produce n={n} size={size} types={types}"))?;
        }
        let mut start = u64::MAX;
        for i in 0..p {
            start = start.min(s.answer(i)?.u64("start")?);
        }
        let stops: Vec<i64> = self.recv_types.iter().map(|&t| t.max(1)).collect();
        s.ask(0, &format!("stop size={size} types={}", join(&stops)))?;
        let (mut got, mut last) = (0, 0);
        for c in 0..self.consumers {
            let f = s.answer(p + c)?;
            got += f.u64("n")?;
            last = last.max(f.u64("stopped")?);
        }
        let sent = n * p as u64;
        if got != sent {
            return Err(io::Error::other(format!(
                "{sent} messages sent, {got} received"
            )));
        }
        Ok((got, last.saturating_sub(start)))
    }
}

fn join(v: &[i64]) -> String {
    v.iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Measures the throughput of `who` with `producers` × `consumers`
/// processes and messages of `size` bytes.
pub fn run(
    spawner: &Spawner,
    who: Contender<'_>,
    size: usize,
    producers: usize,
    consumers: usize,
    opts: Opts,
) -> io::Result<Throughput> {
    let mut flow = Flow::start(spawner, who, size, producers, consumers, opts.pin)?;
    let (got, took) = flow.batch(opts.calibrate)?;
    let n = scale(
        opts.target,
        got,
        took * producers as u64,
        opts.calibrate,
        opts.max,
    );
    let (messages, elapsed_ns) = flow.batch(n)?;
    Ok(Throughput {
        mech: who.mech.name().to_string(),
        producers,
        consumers,
        size,
        typed: flow.typed(),
        pinned: opts.pin && producers == 1 && consumers == 1 && super::pair_cpus(true)[0].is_some(),
        messages,
        elapsed_ns,
    })
}
