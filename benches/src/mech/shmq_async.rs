//! shmq through its async API (`shmq-async`): the same queue as [`Shmq`]'s
//! (type 1 forward, type 2 back), each call `send(..).await` or
//! `recv(..).await` on a current-thread tokio runtime of the process's own.
//! A wait goes through the process's waiter thread (one `futex_waitv` for
//! every awaited queue) instead of the caller's own spin and futex, so its
//! round trip beside [`Shmq`]'s is what the async API costs.
//!
//! Measured in the round trips only: once a message is there an await takes
//! the blocking call's fast path, so the throughput and depth parts would
//! measure [`Shmq`] again.

use crate::mech::Shmq;
use crate::mechanism::{Channel, ChannelConfig, End, Endpoint, Mechanism};
use shmq::Selector;
use shmq_async::AsyncQueue;
use std::io;

/// shmq's async API, in the namespace of the [`Shmq`] it wraps.
#[derive(Debug, Clone, Default)]
pub struct ShmqAsync {
    blocking: Shmq,
}

impl ShmqAsync {
    /// Async calls on the queues `blocking` creates.
    pub fn new(blocking: Shmq) -> ShmqAsync {
        ShmqAsync { blocking }
    }
}

impl Mechanism for ShmqAsync {
    fn name(&self) -> &'static str {
        "shmq-async"
    }

    fn describe(&self) -> &'static str {
        "shmq through shmq-async: send(..).await / recv(..).await on a current-thread tokio runtime; waits in the waiter thread"
    }

    fn typed(&self) -> bool {
        true
    }

    fn shared_ends(&self, _msg_size: usize) -> bool {
        true
    }

    fn round_trip_only(&self) -> bool {
        true
    }

    fn create(&self, cfg: &ChannelConfig) -> io::Result<Channel> {
        self.blocking.create(cfg)
    }

    fn open(&self, spec: &str, _end: End, cfg: &ChannelConfig) -> io::Result<Box<dyn Endpoint>> {
        let q = Shmq::open_queue(spec)?;
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        Ok(Box::new(AsyncEnd {
            q: AsyncQueue::new(q),
            runtime,
            buf: vec![0; cfg.msg_size.max(1)],
        }))
    }
}

/// An open queue, the runtime its calls are awaited on, and the buffer
/// receives copy into.
struct AsyncEnd {
    q: AsyncQueue,
    runtime: tokio::runtime::Runtime,
    buf: Vec<u8>,
}

impl Endpoint for AsyncEnd {
    fn send(&mut self, mtype: i64, msg: &[u8]) -> io::Result<()> {
        Ok(self.runtime.block_on(self.q.send(mtype, msg))?)
    }

    fn recv(&mut self, mtype: i64) -> io::Result<&[u8]> {
        let sel = Selector::from_msgtyp(mtype, false);
        let m = self.runtime.block_on(self.q.recv(&mut self.buf, sel))?;
        Ok(&self.buf[..m.len])
    }
}
