//! The one small trait every contender implements.
//!
//! A [`Mechanism`] creates a *channel* in the parent process
//! ([`Mechanism::create`]) and opens one of its *ends* in any process from a
//! textual description of it ([`Mechanism::open`]); an [`Endpoint`] sends and
//! receives framed messages of a given size. A channel is duplex: end
//! [`End::A`] sends "forward" and receives "back", [`End::B`] the reverse.
//! Mechanisms with message types (System V queues, shmq) carry both
//! directions in one queue and tell them apart by type; the others use one
//! kernel object per direction (two pipes, two POSIX queues) or a
//! bidirectional one (a socketpair) and ignore the types.

use std::io;
use std::os::fd::RawFd;

/// Which end of a channel a process holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Sends forward, receives back (the ping side, producers).
    A,
    /// Receives forward, sends back (the pong side, consumers).
    B,
}

impl End {
    /// `"A"` or `"B"`.
    pub fn as_str(self) -> &'static str {
        match self {
            End::A => "A",
            End::B => "B",
        }
    }

    /// Parses [`End::as_str`]'s output.
    pub fn parse(s: &str) -> Option<End> {
        match s {
            "A" => Some(End::A),
            "B" => Some(End::B),
            _ => None,
        }
    }
}

/// What a channel must be able to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Size of every message, in bytes (the largest for typed queues; the
    /// exact record size for byte streams, which frame by size).
    pub msg_size: usize,
    /// Messages the channel must hold at once; `None`: the mechanism's
    /// default capacity (what a user gets without tuning).
    pub capacity: Option<usize>,
    /// Processes that will hold end A at once (producers).
    pub a_ends: usize,
    /// Processes that will hold end B at once (consumers).
    pub b_ends: usize,
}

impl ChannelConfig {
    /// One process at each end, default capacity.
    pub fn pair(msg_size: usize) -> ChannelConfig {
        ChannelConfig {
            msg_size,
            capacity: None,
            a_ends: 1,
            b_ends: 1,
        }
    }
}

/// A channel created by a parent: what its children need to open it, and the
/// resources behind it, released when it is dropped.
pub struct Channel {
    /// Opaque description that [`Mechanism::open`] understands (passed to
    /// children in their environment).
    pub spec: String,
    /// Descriptors the children must inherit (their numbers are in `spec`).
    pub inherit: Vec<RawFd>,
    /// A remark for the report (e.g. a capacity that could not be raised).
    pub note: Option<String>,
    /// Owns the resources; their removal runs when this is dropped.
    pub keep: Box<dyn Send>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("spec", &self.spec)
            .field("inherit", &self.inherit)
            .field("note", &self.note)
            .finish()
    }
}

/// One process's end of a channel. Receives land in the endpoint's own
/// buffer (at least the channel's message size), lent to the caller until the
/// next call: no copy beyond the mechanism's own.
pub trait Endpoint {
    /// Sends `msg` (of type `mtype` where the mechanism has types), waiting
    /// while the channel is full.
    fn send(&mut self, mtype: i64, msg: &[u8]) -> io::Result<()>;

    /// Receives one message (of type `mtype` as `msgrcv` selects it, where
    /// the mechanism has types), waiting while there is none.
    fn recv(&mut self, mtype: i64) -> io::Result<&[u8]>;

    /// Sends without waiting; `Ok(false)` when the channel is full. Typed
    /// queues only.
    fn try_send(&mut self, _mtype: i64, _msg: &[u8]) -> io::Result<bool> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Receives without waiting: `Ok(Some((type, text)))`, or `Ok(None)`
    /// when nothing matches. Typed queues only.
    fn try_recv(&mut self, _mtype: i64) -> io::Result<Option<(i64, &[u8])>> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Sends `msg` with priority `prio` to the queue this end receives
    /// from (so that one process can keep a queue of priorities busy).
    /// Queues with priorities only.
    fn send_to_self(&mut self, _prio: u32, _msg: &[u8]) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Receives the oldest message of the highest priority; returns the
    /// priority. Queues with priorities only.
    fn recv_prio(&mut self) -> io::Result<u32> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// A contender: an IPC mechanism that can carry framed messages between
/// processes.
pub trait Mechanism: Sync {
    /// Short name used in tables, JSON and the child protocol (`shmq`,
    /// `sysv`, `posix-mq`, `pipe`, `seqpacket`, ...).
    fn name(&self) -> &'static str;

    /// One line saying what exactly is measured.
    fn describe(&self) -> &'static str;

    /// Whether it has message types and receive by type (`msgrcv`'s msgtyp).
    fn typed(&self) -> bool {
        false
    }

    /// Whether its messages have priorities (POSIX queues:
    /// [`Endpoint::send_to_self`] and [`Endpoint::recv_prio`]).
    fn priorities(&self) -> bool {
        false
    }

    /// Whether several processes may share one end with messages of
    /// `msg_size` bytes staying whole (several producers and consumers).
    fn shared_ends(&self, msg_size: usize) -> bool;

    /// Whether a receiver sleeps in the kernel when nothing is there (so
    /// that the always-parked round trip means something).
    fn can_park(&self) -> bool {
        true
    }

    /// Whether it is measured in the round trips only (a variant whose
    /// difference is in how it waits, such as shmq's async API).
    fn round_trip_only(&self) -> bool {
        false
    }

    /// Creates a channel (parent side).
    fn create(&self, cfg: &ChannelConfig) -> io::Result<Channel>;

    /// Opens end `end` of the channel `spec` describes (any process).
    fn open(&self, spec: &str, end: End, cfg: &ChannelConfig) -> io::Result<Box<dyn Endpoint>>;
}
