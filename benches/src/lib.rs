//! Benchmarks of shmq side by side with the kernel's IPC mechanisms, measured
//! across processes (every endpoint is a process of its own, never a thread).
//!
//! This library is what `shmq bench` runs, and what the criterion suite in
//! `benches/` drives; it has no heavy dependency (only the engine and libc),
//! so that the `shmq` command can carry it.
//!
//! - [`mechanism`]: one small trait ([`Mechanism`], [`Endpoint`]) that every
//!   contender implements: send and receive one framed message of a given
//!   size; [`mech`] holds the built-in ones (shmq, kernel System V queues,
//!   POSIX queues, a pipe, a `SOCK_SEQPACKET` socketpair).
//! - [`session`] (parent side) and [`child`] (child side): the cross-process
//!   driver. A parent creates a channel, re-executes its own program once per
//!   endpoint (with the role in the environment, see [`child::serve_if_child`])
//!   and sends each child commands on its standard input; a child answers one
//!   line per command on its standard output.
//! - [`drivers`]: the measurements (ping-pong round trip, one-way throughput,
//!   typed receive against depth, receive with 32 priorities, footprint)
//!   built on sessions;
//!   [`suite`]: the plans (`quick`, `full`, `smoke`), the report, its tables and
//!   JSON; [`stats`], [`clock`]: percentiles and a clock that processes share.
//! - [`cleanup`]: every queue, file or child a run creates is registered there
//!   and removed when its owner drops it, or by a signal thread on Ctrl-C.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod child;
pub mod cleanup;
pub mod clock;
pub mod drivers;
pub mod fields;
pub mod json;
pub mod mech;
pub mod mechanism;
pub mod report;
pub mod session;
pub mod stats;
pub mod suite;
mod sys;

pub use mechanism::{Channel, ChannelConfig, End, Endpoint, Mechanism};
pub use report::Report;
pub use session::{ChildSpec, Session, Spawner};
pub use suite::{Plan, Suite};
