//! Typed receive against depth: the queue holds `D` messages of types
//! `1..=D`, one each; each receive is timed alone (one clock read on each
//! side, included), and the message taken is sent again untimed, so the depth
//! stays `D`.
//!
//! - `msgtyp = D`: types sent in ascending order, so type `D` is the newest
//!   (the kernel walks its whole list to find it);
//! - `msgtyp = 0`: the oldest message, same queue;
//! - `msgtyp = -D`: types sent in descending order, so the lowest type, 1, is
//!   the newest (the kernel walks the whole list, keeping the lowest).

use super::ANSWER_TIMEOUT;
use crate::mechanism::{ChannelConfig, End, Mechanism};
use crate::session::{ChildSpec, Session, Spawner};
use crate::stats::Summary;
use std::io;
use std::time::Duration;

/// Which receive is timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sel {
    /// `msgtyp = D`: the one message of the newest type.
    Exact,
    /// `msgtyp = -D`: the lowest type, which is the newest message.
    AtMost,
    /// `msgtyp = 0`: the oldest message.
    Oldest,
}

impl Sel {
    /// All three, in report order.
    pub const ALL: [Sel; 3] = [Sel::Exact, Sel::AtMost, Sel::Oldest];

    /// `D`, `-D` or `0`.
    pub fn label(self) -> &'static str {
        match self {
            Sel::Exact => "D",
            Sel::AtMost => "-D",
            Sel::Oldest => "0",
        }
    }

    fn msgtyp(self, d: usize) -> i64 {
        match self {
            Sel::Exact => d as i64,
            Sel::AtMost => -(d as i64),
            Sel::Oldest => 0,
        }
    }
}

/// How much to measure.
#[derive(Clone, Copy, Debug)]
pub struct Opts {
    /// Message size (the text; the type is extra).
    pub size: usize,
    /// At most this many timed receives per depth and selector.
    pub max_reps: u64,
    /// At most about this long per depth and selector (at least 3 receives).
    pub budget: Duration,
}

/// One measured point.
#[derive(Clone, Debug)]
pub struct Point {
    /// Mechanism name.
    pub mech: String,
    /// Messages (and types) queued.
    pub depth: usize,
    /// The receive timed.
    pub sel: Sel,
    /// Receive times, nanoseconds.
    pub summary: Summary,
}

/// A deep queue held by one child, for repeated measurements.
pub struct Deep {
    session: Session,
    size: usize,
    depth: Option<(usize, bool)>,
}

impl Deep {
    /// Creates a queue of `mech` able to hold `capacity` messages of `size`
    /// bytes, and a child holding it.
    pub fn start(
        spawner: &Spawner,
        mech: &dyn Mechanism,
        capacity: usize,
        size: usize,
    ) -> io::Result<Deep> {
        if !mech.typed() {
            return Err(io::ErrorKind::Unsupported.into());
        }
        let cfg = ChannelConfig {
            msg_size: size,
            capacity: Some(capacity),
            a_ends: 1,
            b_ends: 0,
        };
        let kids = [ChildSpec::new(End::A)];
        let session = Session::start(spawner, mech, &cfg, &kids, ANSWER_TIMEOUT)?;
        Ok(Deep {
            session,
            size,
            depth: None,
        })
    }

    /// The channel's remark (a capacity that could not be had).
    pub fn note(&self) -> Option<&str> {
        self.session.note()
    }

    /// Fills the queue to depth `d` in the order `sel` needs; returns how
    /// many messages fit (less than `d` when the queue is too small).
    pub fn fill(&mut self, d: usize, sel: Sel) -> io::Result<usize> {
        let desc = sel == Sel::AtMost;
        if self.depth == Some((d, desc)) {
            return Ok(d);
        }
        self.session.ask(0, "drain")?;
        self.depth = None;
        let order = if desc { "desc" } else { "asc" };
        let sent = self
            .session
            .ask(0, &format!("fill d={d} order={order} size={}", self.size))?
            .usize("sent")?;
        if sent == d {
            self.depth = Some((d, desc));
        } else {
            self.session.ask(0, "drain")?;
        }
        Ok(sent)
    }

    /// Times `max` receives of `sel` at the current depth (at most about
    /// `budget`, zero for no limit); returns the summary and the total time.
    pub fn time(&mut self, sel: Sel, max: u64, budget: Duration) -> io::Result<(Summary, u64)> {
        let (d, _) = self
            .depth
            .ok_or_else(|| io::Error::other("queue not filled"))?;
        let f = self.session.ask(
            0,
            &format!(
                "time sel={} max={max} budget_ms={} size={}",
                sel.msgtyp(d),
                budget.as_millis(),
                self.size
            ),
        )?;
        if sel == Sel::Oldest {
            // The queue rotated: type D is no longer the newest.
            self.depth = None;
        }
        Ok((Summary::from_fields(&f)?, f.u64("total")?))
    }
}
