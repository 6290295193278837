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
//! sleep/wake), `slots` and `recovery` (crash safety), `transfer` (the data
//! path), `queue` (msgsnd/msgrcv/msgctl semantics), `namespace` and `ids`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod accounting;
mod cell_pool;
mod error;
mod ftok;
mod ids;
mod layout;
mod namespace;
mod params;
mod process;
mod queue;
mod recovery;
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

pub use error::{CtlError, GetError, OpenError, RecvError, SendError};
pub use ftok::ftok;
pub use namespace::{GetFlags, Namespace, NamespaceError, NamespaceInfo, DEFAULT_DIR, IPC_PRIVATE};
pub use params::Limits;
pub use process::{refresh_credentials, Credentials};
pub use queue::{
    Loan, Perms, Queue, QueueFigures, QueueSet, QueueStat, Received, RecvFlags, SendFlags,
};
pub use transfer::Selector;
