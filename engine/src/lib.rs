//! shmq: System V message queues in user space, over files mapped into every
//! process that uses them.
//!
//! ```no_run
//! use shmq::{GetFlags, Namespace, RecvFlags, Selector, SendFlags};
//! let ns = Namespace::open_default()?;
//! let q = ns.get(0x1234, GetFlags { create: true, exclusive: false, mode: 0o660 })?;
//! q.send(1, b"hello", SendFlags::default())?;
//! let mut buf = [0u8; 64];
//! let m = q.recv(&mut buf, Selector::Type(1), RecvFlags::default())?;
//! assert_eq!(&buf[..m.len], b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Layers, bottom up: `sync` (the only module naming atomics), `layout` and
//! `shm` (the file format and mappings), `cell_pool`, `accounting`,
//! `type_fifo`, `type_dir` (the lock-free structures), `wait` (futex
//! sleep/wake, as a strategy), `slots` and `recovery` (crash safety),
//! `transfer` (the data path), `blocking` (waiting between tries), `queue`
//! (msgsnd/msgrcv/msgctl semantics), `namespace` and `ids`. Under
//! `--cfg loom`, `model` runs the same algorithms on heap memory for the
//! loom models in `loom-tests/`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
// loom builds compile the algorithms only; production-only items go unused there.
#![cfg_attr(loom, allow(dead_code))]

// Under `cfg(loom)` (the `loom-tests` crate) only the algorithms are built,
// on heap-backed state, with `model` as their entry point; the modules that
// map files and manage namespaces are production-only.
mod accounting;
mod arrivals;
mod blocking;
mod cell_pool;
#[cfg(not(loom))]
mod doctor;
mod error;
#[cfg(not(loom))]
mod ftok;
#[cfg(not(loom))]
mod ids;
#[cfg(not(loom))]
mod kill_points;
mod layout;
mod liveness;
mod lowest_type;
mod message;
#[cfg(loom)]
pub mod model;
#[cfg(not(loom))]
mod namespace;
#[cfg(not(loom))]
mod params;
#[cfg_attr(loom, path = "process_model.rs")]
mod process;
#[cfg(not(loom))]
mod queue;
mod recovery;
#[cfg(not(loom))]
mod shm;
mod slots;
mod state;
mod sync;
mod transfer;
mod type_dir;
mod type_fifo;
mod wait;

#[cfg(test)]
mod test_support;

#[cfg(not(loom))]
pub use doctor::{
    Activity, Advice, DoctorOptions, DoctorReport, FifoFault, FileDamage, Finding, Health, Outcome,
    Place, PoolKind, Problem, RemoveError, SeqFix, Stuck, Subject,
};
pub use error::{CtlError, GetError, OpenError, RecvError, SendError};
#[cfg(not(loom))]
pub use ftok::ftok;
/// For tests of crash recovery: see `engine/src/kill_points.rs`.
#[cfg(not(loom))]
#[doc(hidden)]
pub use kill_points::{arm_kill_point, disarm_kill_point, KillAction, KillPoint};
pub use message::{Received, Selector};
#[cfg(not(loom))]
pub use namespace::{GetFlags, Namespace, NamespaceError, NamespaceInfo, DEFAULT_DIR, IPC_PRIVATE};
#[cfg(not(loom))]
pub use params::Limits;
#[cfg(not(loom))]
pub use process::{refresh_credentials, Credentials};
#[cfg(not(loom))]
pub use queue::{Loan, Perms, Queue, QueueFigures, QueueSet, QueueStat, RecvFlags, SendFlags};
#[cfg(not(loom))]
#[doc(hidden)]
pub use wait::futex_wake_ups;
