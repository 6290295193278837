//! shmq: System V message queues in user space, over files mapped into every
//! process that uses them.
//!
//! A [`Namespace`] is a directory (by default `/dev/shm/shmq`, or
//! `$SHMQ_DIR`) holding an id table and one file per queue; [`Namespace::get`]
//! is `msgget`, and the [`Queue`] it returns sends and receives in the style
//! of `crossbeam-channel`: [`Queue::try_send`] / [`Queue::try_recv`] never
//! wait, [`Queue::send`] / [`Queue::recv`] wait as long as needed, and the
//! `_timeout` / `_deadline` forms give up with `TimedOut`. A receive selects
//! a message by type ([`Selector`]) and may truncate a long one
//! ([`RecvOptions::truncate`]); [`Queue::recv_lend`] lends the text in place
//! instead of copying it.
//!
//! ```
//! # let dir = std::path::Path::new("/dev/shm").join(format!("shmq-doc-crate-{}", std::process::id()));
//! # struct Cleanup(std::path::PathBuf);
//! # impl Drop for Cleanup { fn drop(&mut self) { let _ = std::fs::remove_dir_all(&self.0); } }
//! # let _cleanup = Cleanup(dir.clone());
//! use shmq::{GetOptions, Namespace, Selector};
//! let ns = Namespace::open(&dir)?; // or Namespace::open_default()
//! let q = ns.get(0x1234, GetOptions::new().create(true).mode(0o660))?;
//! q.send(1, b"hello")?;
//! let mut buf = [0u8; 64];
//! let m = q.recv(&mut buf, Selector::Type(1))?;
//! assert_eq!(&buf[..m.len], b"hello");
//! q.remove()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Each operation has its own error type ([`GetError`], [`SendError`],
//! [`RecvError`], [`CtlError`], [`OpenError`]), whose `errno()` is what the
//! kernel's call returns for the same failure.
//!
//! Layers, bottom up: `sync` (the only module naming atomics), `layout` and
//! `shm` (the file format and mappings), `cell_pool`, `accounting`,
//! `type_fifo`, `type_dir` (the lock-free structures), `wait` (futex
//! sleep/wake, as a strategy), `slots` and `recovery` (crash safety),
//! `transfer` (the data path), `blocking` (waiting between tries), `queue`
//! (msgsnd/msgrcv/msgctl semantics), `namespace` and `ids`, and `mq`
//! (POSIX queues, [`MessageQueue`], on the same queue files). Under
//! `--cfg loom`, `model` runs the same algorithms on heap memory for the
//! loom models in `loom-tests/`.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
// loom builds compile the algorithms only; production-only items go unused there.
#![cfg_attr(loom, allow(dead_code))]

// Under `cfg(loom)` (the `loom-tests` crate) only the algorithms are built,
// on heap-backed state, with `model` as their entry point; the modules that
// map files and manage namespaces are production-only.
//
// `unsafe` is denied but in the modules that map memory (`shm`, `state`,
// `namespace`), reach into cells of the mapping (`sync`, `transfer`), call
// the futex, libc or the robust mutexes (`wait`, `liveness`, `process`,
// `kill_points`), and `mq::description` (a shared anonymous page per open
// POSIX queue description); and `ftok`'s test, which calls glibc's to compare.
mod accounting;
mod arrivals;
mod blocking;
mod cell_pool;
#[cfg(not(loom))]
pub mod doctor;
mod error;
#[cfg(not(loom))]
mod ftok;
#[cfg(not(loom))]
mod ids;
#[cfg(not(loom))]
#[allow(unsafe_code)]
mod kill_points;
mod layout;
#[cfg(not(loom))]
mod lease;
#[allow(unsafe_code)]
mod liveness;
mod lowest_type;
mod message;
#[cfg(loom)]
pub mod model;
#[cfg(not(loom))]
mod mq;
#[cfg(not(loom))]
#[allow(unsafe_code)]
mod namespace;
mod notify;
#[cfg(not(loom))]
mod params;
#[cfg(not(loom))]
mod perms;
#[allow(unsafe_code)]
#[cfg_attr(loom, path = "process_model.rs")]
mod process;
#[cfg(not(loom))]
mod queue;
mod recovery;
#[cfg(not(loom))]
#[allow(unsafe_code)]
mod shm;
mod slots;
#[allow(unsafe_code)]
mod state;
#[allow(unsafe_code)]
mod sync;
#[allow(unsafe_code)]
mod transfer;
#[cfg(not(loom))]
mod turns;
mod type_dir;
mod type_fifo;
#[allow(unsafe_code)]
mod wait;

#[cfg(not(loom))]
#[doc(hidden)]
pub mod test_hooks;
#[cfg(test)]
mod test_support;

pub use error::{
    CtlError, GetError, MqNotifyError, MqOpenError, MqRecvError, MqSendError, MqUnlinkError,
    OpenError, OpenErrorKind, RecvError, SendError,
};
#[cfg(not(loom))]
pub use ftok::ftok;
#[cfg(not(loom))]
pub use lease::{park_any, Awaited, Lease, LeasedLoan, ParkEnd, Peeked, WakeWord, PARK_ANY_MAX};
pub use message::{Received, Selector};
#[cfg(not(loom))]
pub use mq::{MessageQueue, MqAttr, MqInfo, MqLimits, MqNotify, MqOpenOptions, MQ_PRIO_MAX};
#[cfg(not(loom))]
pub use namespace::{GetOptions, Namespace, NamespaceInfo, DEFAULT_DIR, IPC_PRIVATE};
#[cfg(not(loom))]
pub use params::Limits;
#[cfg(not(loom))]
pub use perms::Perms;
#[cfg(not(loom))]
pub use process::{refresh_credentials, Credentials};
#[cfg(not(loom))]
pub use queue::{Loan, Queue, QueueFigures, QueueSet, QueueStat, RecvOptions};
