//! shmq-async: `send(...).await` and `recv(...).await` on shmq queues.
//!
//! [`AsyncQueue`] wraps a [`shmq::Queue`]. Its futures try the operation
//! without waiting (`try_send`, `try_recv`, ...) and, when it would block,
//! poll briefly while a peer runs on another CPU ([`Queue::spin_briefly`],
//! as a blocking call spins, without yielding the thread), then register
//! with a waiter thread of this process and return `Pending`. The
//! waiter thread sleeps on the futex words of every awaited queue at once
//! (`futex_waitv`) as a blocked thread of the engine would, so a sleeping
//! future costs no CPU and a sender anywhere wakes it as it would wake a
//! blocked `msgrcv` (see `reactor`). Works with any executor (the crate
//! itself depends on no runtime; its tests and the `shmq bridge` use tokio).
//!
//! Cancellation: dropping a future never loses or duplicates a message.
//! A message is taken only inside one `poll` (the engine's `try_` calls
//! are atomic: a message is taken and copied, or not taken), so a future
//! dropped between two polls holds nothing; a future that was woken for a
//! message and is dropped before it took it passes the wake-up on to the
//! queue's other sleepers, as a blocked receiver that leaves does.
//!
//! ```
//! # let dir = std::path::Path::new("/dev/shm").join(format!("shmq-doc-async-{}", std::process::id()));
//! # struct Cleanup(std::path::PathBuf);
//! # impl Drop for Cleanup { fn drop(&mut self) { let _ = std::fs::remove_dir_all(&self.0); } }
//! # let _cleanup = Cleanup(dir.clone());
//! use shmq::{GetOptions, Namespace, Selector, IPC_PRIVATE};
//! use shmq_async::AsyncQueue;
//! let ns = Namespace::open(&dir)?;
//! let q = AsyncQueue::new(ns.get(IPC_PRIVATE, GetOptions::new().create(true).mode(0o600))?);
//! let rt = tokio::runtime::Builder::new_current_thread().build()?;
//! rt.block_on(async {
//!     let receiver = {
//!         let q = q.clone();
//!         async move {
//!             let mut buf = [0u8; 16];
//!             let m = q.recv(&mut buf, Selector::Type(7)).await?;
//!             Ok::<_, shmq::RecvError>(buf[..m.len].to_vec())
//!         }
//!     };
//!     let sender = async { q.send(7, b"later").await };
//!     let (got, sent) = tokio::join!(receiver, sender);
//!     sent?;
//!     assert_eq!(got?, b"later");
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! q.queue().remove()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod reactor;

use reactor::{Fired, Key, Ticket, Want};
use shmq::{
    Awaited, Lease, LeasedLoan, Peeked, Queue, Received, RecvError, RecvOptions, Selector,
    SendError,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// A queue with async send and receive. Cheap to clone (clones share their
/// waits and their loan slots).
#[derive(Clone, Debug)]
pub struct AsyncQueue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    q: Queue,
    /// Tells this handle's waits apart from other handles' in the waiter.
    id: u64,
    /// Slots to take loans on, each held by waiter 0 (see
    /// [`AsyncQueue::recv_lend`]).
    loan_leases: Mutex<Vec<Lease>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let leases = std::mem::take(
            self.loan_leases
                .get_mut()
                .unwrap_or_else(|e| e.into_inner()),
        );
        reactor::retire(leases);
    }
}

impl AsyncQueue {
    /// Wraps `q`.
    pub fn new(q: Queue) -> AsyncQueue {
        static NEXT: Mutex<u64> = Mutex::new(0);
        let id = {
            let mut n = NEXT.lock().unwrap_or_else(|e| e.into_inner());
            *n += 1;
            *n
        };
        AsyncQueue {
            inner: Arc::new(Inner {
                q,
                id,
                loan_leases: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The queue, for its blocking calls and `msgctl`.
    pub fn queue(&self) -> &Queue {
        &self.inner.q
    }

    /// `msgsnd`: sends `text` as type `mtype`, waiting while the queue is
    /// full. Errors as [`Queue::send`] ([`SendError::Removed`] when the
    /// queue is removed while the future waits); never `Interrupted`.
    pub async fn send(&self, mtype: i64, text: &[u8]) -> Result<(), SendError> {
        let mut waited = false;
        loop {
            match self.inner.q.try_send(mtype, text) {
                Err(SendError::Again) => {}
                Err(SendError::Invalid) if waited => return Err(SendError::Removed),
                r => return r,
            }
            match self.wait(Want::Space, text.len(), !waited).await {
                Fired::Retry => {}
                // The queue went away between the try and the lease.
                Fired::Failed(RecvError::Invalid) => return Err(SendError::Removed),
                Fired::Failed(_) => return Err(SendError::NoMemory),
            }
            waited = true;
        }
    }

    /// `msgrcv`: receives the message `opts` selects into `buf`, waiting
    /// until there is one. Errors as [`Queue::recv`].
    pub async fn recv(
        &self,
        buf: &mut [u8],
        opts: impl Into<RecvOptions>,
    ) -> Result<Received, RecvError> {
        let opts = opts.into();
        let mut waited = false;
        loop {
            match self.inner.q.try_recv(buf, opts) {
                Err(RecvError::NoMessage) => {}
                Err(RecvError::Invalid) if waited => return Err(RecvError::Removed),
                r => return r,
            }
            if let Fired::Failed(e) = self.wait(Want::Message(opts.selector()), 0, !waited).await {
                return Err(after_wait(e));
            }
            waited = true;
        }
    }

    /// Zero-copy receive ([`Queue::recv_lend`]), waiting until a message
    /// `opts` selects is there. The [`AsyncLoan`] may be held across await
    /// points and moved between threads; the message counts in `qnum` /
    /// `cbytes` until it is dropped or [`AsyncLoan::finish`]ed. Each loan
    /// held at once occupies one slot of the queue.
    pub async fn recv_lend(&self, opts: impl Into<RecvOptions>) -> Result<AsyncLoan, RecvError> {
        let opts = opts.into();
        let mut waited = false;
        loop {
            let lease = self.take_lease()?;
            match lease.try_recv_lend(opts) {
                Ok(loan) => {
                    return Ok(AsyncLoan {
                        loan: Some(loan),
                        home: self.inner.clone(),
                    })
                }
                Err((lease, e)) => {
                    self.put_lease(lease);
                    match e {
                        RecvError::NoMessage => {}
                        RecvError::Invalid if waited => return Err(RecvError::Removed),
                        e => return Err(e),
                    }
                }
            }
            if let Fired::Failed(e) = self.wait(Want::Message(opts.selector()), 0, !waited).await {
                return Err(after_wait(e));
            }
            waited = true;
        }
    }

    /// Waits until a message `sel` takes is queued and copies it into `buf`
    /// without taking it ([`Queue::try_peek`]).
    pub async fn peek(&self, buf: &mut [u8], sel: Selector) -> Result<Peeked, RecvError> {
        let mut waited = false;
        loop {
            match self.inner.q.try_peek(buf, sel) {
                Err(RecvError::NoMessage) => {}
                Err(RecvError::Invalid) if waited => return Err(RecvError::Removed),
                r => return r,
            }
            if let Fired::Failed(e) = self.wait(Want::Message(sel), 0, !waited).await {
                return Err(after_wait(e));
            }
            waited = true;
        }
    }

    fn take_lease(&self) -> Result<Lease, RecvError> {
        let pooled = self
            .inner
            .loan_leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        match pooled {
            Some(l) => Ok(l),
            None => reactor::lease_for(&self.inner.q),
        }
    }

    fn put_lease(&self, l: Lease) {
        self.inner
            .loan_leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(l);
    }

    /// Waits for `want` (room for `len` bytes). `spin`: first poll for it
    /// while a peer runs on another CPU, as a blocking call would, without
    /// yielding the thread ([`Queue::spin_briefly`]); only on an
    /// operation's first wait, so that a task losing races to other
    /// receivers does not hold its executor thread again and again.
    fn wait(&self, want: Want, len: usize, spin: bool) -> WaitFor<'_> {
        WaitFor {
            q: &self.inner.q,
            key: (self.inner.id, want),
            len,
            spin,
            ticket: None,
        }
    }
}

/// A waiter's failure to sleep for a receive: the queue removed since the
/// try (no lease on it: EINVAL) is EIDRM, as for a blocked `msgrcv`.
fn after_wait(e: RecvError) -> RecvError {
    match e {
        RecvError::Invalid => RecvError::Removed,
        e => e,
    }
}

/// A message lent in place by [`AsyncQueue::recv_lend`]. Dropping it (or
/// [`AsyncLoan::finish`]) completes the receive.
#[derive(Debug)]
pub struct AsyncLoan {
    loan: Option<LeasedLoan>,
    home: Arc<Inner>,
}

impl AsyncLoan {
    fn loan(&self) -> &LeasedLoan {
        self.loan.as_ref().expect("held until dropped")
    }

    /// The message's type.
    pub fn mtype(&self) -> i64 {
        self.loan().mtype()
    }

    /// Length of the text.
    pub fn len(&self) -> usize {
        self.loan().len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.loan().is_empty()
    }

    /// Runs `f` on the text, in place in the shared mapping.
    pub fn with_text<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        self.loan().with_text(f)
    }

    /// Completes the receive: the message leaves the queue.
    pub fn finish(self) {
        drop(self)
    }
}

impl Drop for AsyncLoan {
    fn drop(&mut self) {
        if let Some(loan) = self.loan.take() {
            let lease = loan.finish();
            self.home
                .loan_leases
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(lease);
        }
    }
}

/// Waits until the waiter thread says "retry" for `key` (after a brief
/// spin, if `spin`).
struct WaitFor<'a> {
    q: &'a Queue,
    key: Key,
    len: usize,
    spin: bool,
    ticket: Option<Arc<Ticket>>,
}

impl Future for WaitFor<'_> {
    type Output = Fired;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Fired> {
        match &self.ticket {
            None => {
                if std::mem::take(&mut self.spin) {
                    let awaited = match self.key.1 {
                        Want::Space => Awaited::Space(self.len),
                        Want::Message(sel) => Awaited::Message(sel),
                    };
                    if self.q.spin_briefly(awaited) {
                        return Poll::Ready(Fired::Retry);
                    }
                }
                let t = reactor::register(self.key, self.q, self.len, cx.waker());
                self.ticket = Some(t);
                Poll::Pending
            }
            Some(t) => match t.poll_fired(cx.waker()) {
                Some(how) => {
                    self.ticket = None;
                    Poll::Ready(how)
                }
                None => Poll::Pending,
            },
        }
    }
}

impl Drop for WaitFor<'_> {
    fn drop(&mut self) {
        let Some(t) = self.ticket.take() else {
            return;
        };
        if t.poll_fired(futures_noop_waker()).is_some() {
            // Fired, and its task will not retry: a message it was woken
            // for may be left beside another sleeper; pass the wake-up on.
            if matches!(self.key.1, Want::Message(_)) {
                self.q.pass_on_wake();
            }
        } else {
            reactor::cancel(self.key, &t);
        }
    }
}

/// A waker that does nothing (for a last look at a ticket).
fn futures_noop_waker() -> &'static std::task::Waker {
    std::task::Waker::noop()
}
