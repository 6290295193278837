//! A queue handle: `msgsnd`, `msgrcv` and `msgctl` semantics on top of the
//! data path (`transfer`) and the sleep protocol (`wait`); what it needs of
//! the namespace that lists it goes through [`Registry`].
//!
//! Reads top to bottom like Linux's `ipc/msg.c`: the public types, the small
//! helpers (permissions, statistics, waiting), then send, receive, control.

use crate::blocking::Patience;
use crate::error::{CtlError, RecvError, SendError};
use crate::message::{Received, Selector};
use crate::perms::{Access, Perms};
use crate::shm::{my_slot, Mapped};
use crate::state::QueueState;
use crate::sync::Ordering;
use crate::transfer::{PathError, Taken};
use crate::wait;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A handle on one queue of a namespace ([`crate::Namespace::get`]). Cheap
/// to clone; usable from any thread.
///
/// | | never waits | waits | gives up after a `Duration` | at an `Instant` |
/// | --- | --- | --- | --- | --- |
/// | send | [`try_send`](Queue::try_send) | [`send`](Queue::send) | [`send_timeout`](Queue::send_timeout) | [`send_deadline`](Queue::send_deadline) |
/// | receive (copy) | [`try_recv`](Queue::try_recv) | [`recv`](Queue::recv) | [`recv_timeout`](Queue::recv_timeout) | [`recv_deadline`](Queue::recv_deadline) |
/// | receive (loan) | [`try_recv_lend`](Queue::try_recv_lend) | [`recv_lend`](Queue::recv_lend) | [`recv_lend_timeout`](Queue::recv_lend_timeout) | [`recv_lend_deadline`](Queue::recv_lend_deadline) |
/// | copy, leave queued (`MSG_COPY`) | [`try_recv_copy`](Queue::try_recv_copy) | | | |
///
/// The `try_` forms are System V's `IPC_NOWAIT` ([`SendError::Again`],
/// [`RecvError::NoMessage`]); the timed forms fail with `TimedOut`.
/// [`stat`](Queue::stat), [`set`](Queue::set) and [`remove`](Queue::remove)
/// are `msgctl`'s `IPC_STAT`, `IPC_SET` and `IPC_RMID`.
#[derive(Clone)]
pub struct Queue {
    home: Arc<dyn Registry>,
    map: Arc<Mapped>,
    id: i32,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("id", &self.id).finish()
    }
}

/// What a receive asks for: which message ([`Selector`], which also
/// expresses `MSG_EXCEPT`) and what to do with a message longer than the
/// buffer (`MSG_NOERROR`: [`RecvOptions::truncate`]).
///
/// A bare [`Selector`] converts into options with no truncation, so the
/// common case reads `q.recv(&mut buf, Selector::Any)`.
///
/// ```
/// use shmq::{RecvOptions, Selector};
/// let opts = RecvOptions::new(Selector::Type(5)).truncate();
/// assert_eq!(opts.selector(), Selector::Type(5));
/// assert!(opts.truncates());
/// let plain: RecvOptions = Selector::Except(5).into();
/// assert!(!plain.truncates());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvOptions {
    selector: Selector,
    truncate: bool,
}

impl RecvOptions {
    /// Receives the message `selector` picks; a message longer than the
    /// buffer fails with [`RecvError::TooBig`] and stays queued.
    pub const fn new(selector: Selector) -> RecvOptions {
        RecvOptions {
            selector,
            truncate: false,
        }
    }

    /// `MSG_NOERROR`: a message longer than the buffer is truncated to it
    /// (and removed) instead of failing with [`RecvError::TooBig`].
    /// Meaningless for a loan, which lends the whole text.
    #[must_use]
    pub const fn truncate(mut self) -> RecvOptions {
        self.truncate = true;
        self
    }

    /// Which message the receive wants.
    pub const fn selector(&self) -> Selector {
        self.selector
    }

    /// Whether a long message is truncated ([`RecvOptions::truncate`]).
    pub const fn truncates(&self) -> bool {
        self.truncate
    }
}

impl Default for RecvOptions {
    /// The oldest message, not truncated.
    fn default() -> RecvOptions {
        RecvOptions::new(Selector::Any)
    }
}

impl From<Selector> for RecvOptions {
    fn from(selector: Selector) -> RecvOptions {
        RecvOptions::new(selector)
    }
}

/// How long a call may wait: not at all, until a deadline, or for ever.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    Never,
    Until(Option<Instant>),
}

impl Wait {
    /// Until `timeout` from now (for ever if that is beyond `Instant`'s range).
    fn timeout(timeout: Duration) -> Wait {
        Wait::Until(Instant::now().checked_add(timeout))
    }
}

/// Everything `IPC_STAT` reports (`struct msqid_ds`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueStat {
    /// Ownership and permissions.
    pub perm: Perms,
    /// Time of the last send (seconds since the epoch), 0 if none.
    pub stime: i64,
    /// Time of the last receive, 0 if none.
    pub rtime: i64,
    /// Time of creation or the last IPC_SET.
    pub ctime: i64,
    /// Bytes of text queued.
    pub cbytes: u64,
    /// Messages queued.
    pub qnum: u64,
    /// Capacity in bytes (also caps `qnum`).
    pub qbytes: u64,
    /// Pid of the last sender.
    pub lspid: u32,
    /// Pid of the last receiver.
    pub lrpid: u32,
}

/// The fields IPC_SET changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSet {
    /// New owner's user id.
    pub uid: u32,
    /// New owner's group id.
    pub gid: u32,
    /// New mode (low 9 bits used).
    pub mode: u32,
    /// New capacity in bytes.
    pub qbytes: u64,
}

/// shmq's own figures about a queue, beyond `msqid_ds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueFigures {
    /// Message nodes in use (messages, entry dummies, in-flight operations).
    pub nodes_in_use: usize,
    /// Message nodes in the pool.
    pub nodes_total: usize,
    /// Attachment slots in use (threads attached, or dead ones not yet recovered).
    pub slots_in_use: usize,
    /// Attachment slots in the table.
    pub slots_total: usize,
    /// Slots currently asleep in a blocking call.
    pub sleepers: usize,
    /// Types that hold messages.
    pub live_types: usize,
    /// Size of the queue file in bytes (sparse: most of it costs nothing).
    pub file_size: usize,
}

/// What a queue asks of the namespace whose id table lists it: the table's
/// side of `IPC_SET` and `IPC_RMID`, its size, and the repair of an
/// operation a dead process left half done there. A trait, so that this
/// module does not depend on `namespace` (which depends on it).
pub(crate) trait Registry: Send + Sync {
    /// Slots of the id table (`msgmni`), which ids are taken modulo.
    fn msgmni(&self) -> usize;
    /// Finishes or undoes what a dead process left half done on queue `id`'s
    /// table record.
    fn finish_half_done(&self, id: i32);
    /// `IPC_SET` of `q`, under the table's lock.
    fn set(&self, q: &Queue, set: QueueSet) -> Result<(), CtlError>;
    /// `IPC_RMID` of `q`, under the table's lock.
    fn remove(&self, q: &Queue) -> Result<(), CtlError>;
}

impl Queue {
    pub(crate) fn new(home: Arc<dyn Registry>, map: Arc<Mapped>, id: i32) -> Queue {
        Queue { home, map, id }
    }

    pub(crate) fn mapped(&self) -> &Mapped {
        &self.map
    }

    pub(crate) fn mapped_arc(&self) -> &Arc<Mapped> {
        &self.map
    }

    pub(crate) fn st(&self) -> &QueueState<'_> {
        self.map.state()
    }

    /// The queue id (`seq * msgmni + index`).
    pub fn id(&self) -> i32 {
        self.id
    }

    /// Owner and mode, as of now.
    pub fn perms(&self) -> Perms {
        let a = self.access();
        let msgmni = self.home.msgmni() as i64;
        Perms {
            // Relaxed: as the fields `access` reads.
            key: self.st().header.key.load(Ordering::Relaxed) as u32 as i32,
            uid: a.uid,
            gid: a.gid,
            cuid: a.cuid,
            cgid: a.cgid,
            mode: a.mode,
            seq: (self.id as i64 / msgmni) as u32,
        }
    }

    /// Owners and mode, as of now: what a permission check needs, read
    /// without the rest of [`Queue::perms`] (on every send and receive).
    pub(crate) fn access(&self) -> Access {
        let h = self.st().header;
        let r = Ordering::Relaxed;
        Access {
            uid: h.perm.uid.load(r),
            gid: h.perm.gid.load(r),
            cuid: h.perm.cuid.load(r),
            cgid: h.perm.cgid.load(r),
            mode: h.perm.mode.load(r) & 0o777,
        }
    }

    // ----- msgsnd -----

    /// `msgsnd` with `IPC_NOWAIT`: sends `text` as a message of type `mtype`
    /// if it fits now, else fails with [`SendError::Again`].
    ///
    /// ```
    /// # let dir = std::path::Path::new("/dev/shm").join(format!("shmq-doc-try-send-{}", std::process::id()));
    /// # struct Cleanup(std::path::PathBuf);
    /// # impl Drop for Cleanup { fn drop(&mut self) { let _ = std::fs::remove_dir_all(&self.0); } }
    /// # let _cleanup = Cleanup(dir.clone());
    /// use shmq::{GetOptions, Namespace, SendError, IPC_PRIVATE};
    /// let ns = Namespace::open(&dir)?;
    /// let q = ns.get(IPC_PRIVATE, GetOptions::new().create(true).mode(0o600))?;
    /// q.try_send(1, b"hello")?;
    /// assert_eq!(q.stat()?.qnum, 1);
    /// assert_eq!(q.try_send(0, b"no type 0"), Err(SendError::Invalid));
    /// q.remove()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_send(&self, mtype: i64, text: &[u8]) -> Result<(), SendError> {
        self.send_waiting(mtype, text, Wait::Never)
    }

    /// `msgsnd`: sends `text` as a message of type `mtype`, waiting as long
    /// as the queue is full (until a receiver makes room, the queue is
    /// removed, [`SendError::Removed`], or a signal handler runs,
    /// [`SendError::Interrupted`]).
    pub fn send(&self, mtype: i64, text: &[u8]) -> Result<(), SendError> {
        self.send_waiting(mtype, text, Wait::Until(None))
    }

    /// [`Queue::send`] that gives up with [`SendError::TimedOut`] after
    /// `timeout` (beyond System V).
    pub fn send_timeout(
        &self,
        mtype: i64,
        text: &[u8],
        timeout: Duration,
    ) -> Result<(), SendError> {
        self.send_waiting(mtype, text, Wait::timeout(timeout))
    }

    /// [`Queue::send`] that gives up with [`SendError::TimedOut`] at
    /// `deadline` (beyond System V).
    pub fn send_deadline(
        &self,
        mtype: i64,
        text: &[u8],
        deadline: Instant,
    ) -> Result<(), SendError> {
        self.send_waiting(mtype, text, Wait::Until(Some(deadline)))
    }

    fn send_waiting(&self, mtype: i64, text: &[u8], wait: Wait) -> Result<(), SendError> {
        let st = self.st();
        // Linux's order: size, type, then the id, then permissions.
        if text.len() as u64 > st.header.msgmax.load(Ordering::Relaxed) || mtype < 1 {
            return Err(SendError::Invalid);
        }
        if st.is_removed() {
            return Err(SendError::Invalid);
        }
        if !self.access().allows(0o2) {
            return Err(SendError::Access);
        }
        let slot = my_slot(&self.map).map_err(|_| SendError::NoMemory)?;
        let repair = || self.home.finish_half_done(self.id);
        let (nowait, deadline) = match wait {
            Wait::Never => (true, None),
            Wait::Until(d) => (false, d),
        };
        let patience = Patience {
            deadline,
            long_sleep: &repair,
        };
        st.send_blocking(slot, mtype, text, nowait, patience)?;
        record_stats(&st.header.send_stats);
        Ok(())
    }

    // ----- msgrcv -----

    /// `msgrcv` with `IPC_NOWAIT`: receives the message `opts` selects into
    /// `buf` if there is one, else fails with [`RecvError::NoMessage`].
    ///
    /// ```
    /// # let dir = std::path::Path::new("/dev/shm").join(format!("shmq-doc-try-recv-{}", std::process::id()));
    /// # struct Cleanup(std::path::PathBuf);
    /// # impl Drop for Cleanup { fn drop(&mut self) { let _ = std::fs::remove_dir_all(&self.0); } }
    /// # let _cleanup = Cleanup(dir.clone());
    /// use shmq::{GetOptions, Namespace, RecvError, RecvOptions, Selector, IPC_PRIVATE};
    /// let ns = Namespace::open(&dir)?;
    /// let q = ns.get(IPC_PRIVATE, GetOptions::new().create(true).mode(0o600))?;
    /// q.try_send(7, b"seven")?;
    /// q.try_send(3, b"three")?;
    /// let mut buf = [0u8; 16];
    /// // The lowest type <= 5 first (msgtyp -5).
    /// let m = q.try_recv(&mut buf, Selector::AtMost(5))?;
    /// assert_eq!((m.mtype, &buf[..m.len]), (3, &b"three"[..]));
    /// // Too long for a 2-byte buffer: fails, unless truncation is asked for.
    /// let mut small = [0u8; 2];
    /// assert_eq!(q.try_recv(&mut small, Selector::Any), Err(RecvError::TooBig));
    /// let m = q.try_recv(&mut small, RecvOptions::new(Selector::Any).truncate())?;
    /// assert_eq!((m.mtype, m.len, &small), (7, 2, b"se"));
    /// assert_eq!(q.try_recv(&mut buf, Selector::Any), Err(RecvError::NoMessage));
    /// q.remove()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv(
        &self,
        buf: &mut [u8],
        opts: impl Into<RecvOptions>,
    ) -> Result<Received, RecvError> {
        self.recv_waiting(buf, opts.into(), Wait::Never)
    }

    /// `msgrcv`: receives the message `opts` selects into `buf`, waiting as
    /// long as there is none (until one is sent, the queue is removed,
    /// [`RecvError::Removed`], or a signal handler runs,
    /// [`RecvError::Interrupted`]).
    ///
    /// ```
    /// # let dir = std::path::Path::new("/dev/shm").join(format!("shmq-doc-recv-{}", std::process::id()));
    /// # struct Cleanup(std::path::PathBuf);
    /// # impl Drop for Cleanup { fn drop(&mut self) { let _ = std::fs::remove_dir_all(&self.0); } }
    /// # let _cleanup = Cleanup(dir.clone());
    /// use shmq::{GetOptions, Namespace, RecvError, Selector, IPC_PRIVATE};
    /// use std::time::Duration;
    /// let ns = Namespace::open(&dir)?;
    /// let q = ns.get(IPC_PRIVATE, GetOptions::new().create(true).mode(0o600))?;
    /// let sender = q.clone();
    /// let t = std::thread::spawn(move || sender.send(4, b"later"));
    /// let mut buf = [0u8; 16];
    /// let m = q.recv(&mut buf, Selector::Type(4))?; // waits for the thread
    /// assert_eq!(&buf[..m.len], b"later");
    /// t.join().unwrap()?;
    /// let none = q.recv_timeout(&mut buf, Selector::Any, Duration::from_millis(10));
    /// assert_eq!(none, Err(RecvError::TimedOut));
    /// q.remove()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv(
        &self,
        buf: &mut [u8],
        opts: impl Into<RecvOptions>,
    ) -> Result<Received, RecvError> {
        self.recv_waiting(buf, opts.into(), Wait::Until(None))
    }

    /// [`Queue::recv`] that gives up with [`RecvError::TimedOut`] after
    /// `timeout` (beyond System V).
    pub fn recv_timeout(
        &self,
        buf: &mut [u8],
        opts: impl Into<RecvOptions>,
        timeout: Duration,
    ) -> Result<Received, RecvError> {
        self.recv_waiting(buf, opts.into(), Wait::timeout(timeout))
    }

    /// [`Queue::recv`] that gives up with [`RecvError::TimedOut`] at
    /// `deadline` (beyond System V).
    pub fn recv_deadline(
        &self,
        buf: &mut [u8],
        opts: impl Into<RecvOptions>,
        deadline: Instant,
    ) -> Result<Received, RecvError> {
        self.recv_waiting(buf, opts.into(), Wait::Until(Some(deadline)))
    }

    fn recv_waiting(
        &self,
        buf: &mut [u8],
        opts: RecvOptions,
        wait: Wait,
    ) -> Result<Received, RecvError> {
        let (slot, taken) = self.take(opts, buf.len(), wait)?;
        let st = self.st();
        let len = st.copy_text(&taken, buf);
        st.complete_receive(slot, &taken);
        record_stats(&st.header.recv_stats);
        Ok(Received {
            mtype: taken.mtype,
            len,
        })
    }

    /// Zero-copy [`Queue::try_recv`]: takes the message `opts` selects, if
    /// there is one, and lends its text in place. No other receiver can get
    /// the message from now on, but it still counts in `qnum` / `cbytes` (and
    /// against `qbytes`) until the [`Loan`] is dropped.
    ///
    /// ```
    /// # let dir = std::path::Path::new("/dev/shm").join(format!("shmq-doc-lend-{}", std::process::id()));
    /// # struct Cleanup(std::path::PathBuf);
    /// # impl Drop for Cleanup { fn drop(&mut self) { let _ = std::fs::remove_dir_all(&self.0); } }
    /// # let _cleanup = Cleanup(dir.clone());
    /// use shmq::{GetOptions, Namespace, Selector, IPC_PRIVATE};
    /// let ns = Namespace::open(&dir)?;
    /// let q = ns.get(IPC_PRIVATE, GetOptions::new().create(true).mode(0o600))?;
    /// q.try_send(2, b"in place")?;
    /// let loan = q.try_recv_lend(Selector::Type(2))?;
    /// assert_eq!(loan.mtype(), 2);
    /// assert_eq!(loan.with_text(|t| t.to_vec()), b"in place");
    /// assert_eq!(q.stat()?.qnum, 1); // counted until the loan is dropped
    /// drop(loan);
    /// assert_eq!(q.stat()?.qnum, 0);
    /// q.remove()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv_lend(&self, opts: impl Into<RecvOptions>) -> Result<Loan<'_>, RecvError> {
        self.lend_waiting(opts.into(), Wait::Never)
    }

    /// Zero-copy [`Queue::recv`]: as [`Queue::try_recv_lend`], waiting as
    /// long as there is no message.
    pub fn recv_lend(&self, opts: impl Into<RecvOptions>) -> Result<Loan<'_>, RecvError> {
        self.lend_waiting(opts.into(), Wait::Until(None))
    }

    /// [`Queue::recv_lend`] that gives up with [`RecvError::TimedOut`] after
    /// `timeout`.
    pub fn recv_lend_timeout(
        &self,
        opts: impl Into<RecvOptions>,
        timeout: Duration,
    ) -> Result<Loan<'_>, RecvError> {
        self.lend_waiting(opts.into(), Wait::timeout(timeout))
    }

    /// [`Queue::recv_lend`] that gives up with [`RecvError::TimedOut`] at
    /// `deadline`.
    pub fn recv_lend_deadline(
        &self,
        opts: impl Into<RecvOptions>,
        deadline: Instant,
    ) -> Result<Loan<'_>, RecvError> {
        self.lend_waiting(opts.into(), Wait::Until(Some(deadline)))
    }

    fn lend_waiting(&self, opts: RecvOptions, wait: Wait) -> Result<Loan<'_>, RecvError> {
        let (slot, taken) = self.take(opts, usize::MAX, wait)?;
        record_stats(&self.st().header.recv_stats);
        Ok(Loan {
            q: self,
            slot,
            taken,
        })
    }

    pub(crate) fn take(
        &self,
        opts: RecvOptions,
        max: usize,
        wait: Wait,
    ) -> Result<(usize, Taken), RecvError> {
        let st = self.st();
        if st.is_removed() {
            return Err(RecvError::Invalid);
        }
        if !self.access().allows(0o4) {
            return Err(RecvError::Access);
        }
        let slot = my_slot(&self.map).map_err(|_| RecvError::NoMemory)?;
        self.take_on(slot, opts, max, wait)
    }

    /// [`Queue::take`] on a slot the caller holds (its own, or a
    /// [`crate::Lease`]'s), with the queue and permissions already checked.
    pub(crate) fn take_on(
        &self,
        slot: usize,
        opts: RecvOptions,
        max: usize,
        wait: Wait,
    ) -> Result<(usize, Taken), RecvError> {
        let st = self.st();
        let repair = || self.home.finish_half_done(self.id);
        let (nowait, deadline) = match wait {
            Wait::Never => (true, None),
            Wait::Until(d) => (false, d),
        };
        let patience = Patience {
            deadline,
            long_sleep: &repair,
        };
        let taken = st.take_blocking(slot, opts.selector, max, nowait, opts.truncate, patience)?;
        Ok((slot, taken))
    }

    /// `msgrcv` with `MSG_COPY`: copies the message at position `index`
    /// (0 = the oldest, in send order) into `buf` without removing it.
    /// Never waits (Linux requires `IPC_NOWAIT` with `MSG_COPY`): no message
    /// at `index` is [`RecvError::NoMessage`]. `opts.truncate()` applies as
    /// for a receive; the selector is ignored (the position selects).
    ///
    /// ```
    /// # let dir = std::path::Path::new("/dev/shm").join(format!("shmq-doc-copy-{}", std::process::id()));
    /// # struct Cleanup(std::path::PathBuf);
    /// # impl Drop for Cleanup { fn drop(&mut self) { let _ = std::fs::remove_dir_all(&self.0); } }
    /// # let _cleanup = Cleanup(dir.clone());
    /// use shmq::{GetOptions, Namespace, RecvError, RecvOptions, IPC_PRIVATE};
    /// let ns = Namespace::open(&dir)?;
    /// let q = ns.get(IPC_PRIVATE, GetOptions::new().create(true).mode(0o600))?;
    /// q.try_send(1, b"first")?;
    /// q.try_send(2, b"second")?;
    /// let mut buf = [0u8; 16];
    /// let m = q.try_recv_copy(&mut buf, 1, RecvOptions::default())?;
    /// assert_eq!((m.mtype, &buf[..m.len]), (2, &b"second"[..]));
    /// assert_eq!(q.stat()?.qnum, 2); // still queued
    /// assert_eq!(q.try_recv_copy(&mut buf, 2, RecvOptions::default()), Err(RecvError::NoMessage));
    /// q.remove()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv_copy(
        &self,
        buf: &mut [u8],
        index: usize,
        opts: RecvOptions,
    ) -> Result<Received, RecvError> {
        let st = self.st();
        if st.is_removed() {
            return Err(RecvError::Invalid);
        }
        if !self.access().allows(0o4) {
            return Err(RecvError::Access);
        }
        let index = i64::try_from(index).unwrap_or(i64::MAX);
        let mut copied = st.copy_nth(index, buf, opts.truncate);
        if matches!(copied, Err(PathError::Empty)) && st.recover_dead() > 0 {
            copied = st.copy_nth(index, buf, opts.truncate);
        }
        match copied {
            Ok(r) => Ok(r),
            Err(PathError::TooBig) => Err(RecvError::TooBig),
            Err(PathError::Empty) => Err(RecvError::NoMessage),
            Err(PathError::Invalid) => Err(RecvError::Invalid),
            Err(_) => Err(RecvError::NoMemory),
        }
    }

    // ----- msgctl -----

    /// `IPC_STAT`.
    pub fn stat(&self) -> Result<QueueStat, CtlError> {
        if self.st().is_removed() {
            return Err(CtlError::Invalid);
        }
        if !self.access().allows(0o4) {
            return Err(CtlError::Access);
        }
        Ok(self.stat_any())
    }

    /// `IPC_STAT` without the read-permission check, as Linux's
    /// `MSG_STAT_ANY` (what `ipcs` shows every user). Never fails: a handle
    /// on a removed queue reports its last figures.
    pub fn stat_any(&self) -> QueueStat {
        let st = self.st();
        // Exact counts: first finish what dead processes left.
        st.recover_dead();
        let h = st.header;
        let r = Ordering::Relaxed;
        let t = st.counter().load();
        QueueStat {
            perm: self.perms(),
            stime: h.send_stats.time.load(r),
            rtime: h.recv_stats.time.load(r),
            ctime: h.control.ctime.load(r),
            cbytes: t.cbytes,
            qnum: t.qnum,
            qbytes: h.control.qbytes.load(r),
            lspid: h.send_stats.pid.load(r),
            lrpid: h.recv_stats.pid.load(r),
        }
    }

    /// `IPC_SET`: owner, creator or root; raising `qbytes` above `msgmnb`
    /// needs root; `qbytes` above the namespace's `qbytes_max` is EINVAL even
    /// for root (the queue's memory was sized at creation).
    pub fn set(&self, set: QueueSet) -> Result<(), CtlError> {
        self.home.set(self, set)
    }

    pub(crate) fn apply_set(
        &self,
        set: QueueSet,
        limits: &crate::params::Limits,
    ) -> Result<(), CtlError> {
        let st = self.st();
        if st.is_removed() {
            return Err(CtlError::Invalid);
        }
        if !self.access().may_control() {
            return Err(CtlError::Permission);
        }
        if set.qbytes > limits.msgmnb && crate::process::credentials().uid != 0 {
            return Err(CtlError::Permission);
        }
        if set.qbytes > limits.qbytes_max {
            return Err(CtlError::Invalid);
        }
        let h = st.header;
        let r = Ordering::Relaxed;
        h.perm.uid.store(set.uid, r);
        h.perm.gid.store(set.gid, r);
        h.perm.mode.store(set.mode & 0o777, r);
        h.control.qbytes.store(set.qbytes, r);
        h.control.ctime.store(crate::process::now_secs(), r);
        // Keep the file's own permissions in step, so the OS admits the users
        // the new mode admits (chown works only for root; see the README).
        let f = &self.map.file;
        let _ = rustix::fs::fchmod(
            f,
            rustix::fs::Mode::from_raw_mode(crate::perms::file_mode(set.mode)),
        );
        let _ = rustix::fs::fchown(
            f,
            Some(rustix::fs::Uid::from_raw(set.uid)),
            Some(rustix::fs::Gid::from_raw(set.gid)),
        );
        // Senders re-check against the new qbytes.
        wait::notify_always(&h.space_word, st.park);
        Ok(())
    }

    /// `IPC_RMID`: removes the queue; every blocked caller gets `Removed`.
    pub fn remove(&self) -> Result<(), CtlError> {
        if self.st().is_removed() {
            return Err(CtlError::Invalid);
        }
        self.home.remove(self)
    }

    /// Recovers what dead processes hold in this queue; returns how many
    /// attachment slots were recovered. (Runs by itself when needed; tests
    /// call it through `test_hooks::recover`.)
    pub(crate) fn recover(&self) -> usize {
        self.st().recover_dead()
    }

    /// Finishes what a dead process left half done on this queue's table
    /// record (what a sleeper does after each long sleep).
    pub(crate) fn repair(&self) {
        self.home.finish_half_done(self.id)
    }

    /// shmq's own figures, beyond `msqid_ds` (what `shmq stat` prints).
    /// Finishes first what dead processes left, so the counts are exact.
    pub fn figures(&self) -> QueueFigures {
        let st = self.st();
        st.recover_dead();
        let high = (st.header.slots_high.load(Ordering::Relaxed) as usize).min(st.slots.len());
        QueueFigures {
            nodes_in_use: st.node_pool.count_taken(),
            nodes_total: st.nodes.len(),
            slots_in_use: st.slots[..high]
                .iter()
                .filter(|r| crate::slots::in_use(r))
                .count(),
            slots_total: st.slots.len(),
            sleepers: st.slots[..high]
                .iter()
                .filter(|r| crate::wait::SlotWait(r.wait_state.load(Ordering::Relaxed)).is_parked())
                .count(),
            live_types: st.directory().nonempty_positions().count(),
            file_size: st.geo.file_size,
        }
    }
}

/// Records `(pid, time)` of a send or receive, writing only what changed so
/// that a steady stream does not bounce the cache line between processes.
pub(crate) fn record_stats(stats: &crate::layout::Stats) {
    let pid = crate::process::pid();
    let now = crate::process::now_secs();
    // Relaxed: statistics, read by IPC_STAT without ordering (as Linux's
    // lockless reads of these fields).
    if stats.pid.load(Ordering::Relaxed) != pid {
        stats.pid.store(pid, Ordering::Relaxed);
    }
    if stats.time.load(Ordering::Relaxed) != now {
        stats.time.store(now, Ordering::Relaxed);
    }
}

/// A message taken by [`Queue::recv_lend`] (or its `try_` / timed forms),
/// its text lent in place in the shared mapping. Dropping it completes the
/// receive: the message stops counting in `qnum` / `cbytes`.
pub struct Loan<'q> {
    q: &'q Queue,
    slot: usize,
    taken: Taken,
}

impl std::fmt::Debug for Loan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loan")
            .field("queue", &self.q.id)
            .field("mtype", &self.taken.mtype)
            .field("len", &self.taken.size)
            .finish()
    }
}

impl Loan<'_> {
    /// The message's type.
    pub fn mtype(&self) -> i64 {
        self.taken.mtype
    }

    /// Runs `f` on the text, in place in the shared mapping.
    pub fn with_text<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        self.q.st().with_text(&self.taken, f)
    }

    /// Length of the text.
    pub fn len(&self) -> usize {
        self.taken.size
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.taken.size == 0
    }
}

impl Drop for Loan<'_> {
    fn drop(&mut self) {
        self.q.st().complete_receive(self.slot, &self.taken);
    }
}

impl Queue {
    /// A human-readable dump of the queue's type entries and FIFOs, for
    /// debugging (`test_hooks::debug_dump`). Bounded walks; never fails.
    pub(crate) fn debug_dump(&self) -> String {
        use std::fmt::Write;
        let st = self.st();
        let mut out = String::new();
        let t = st.counter().load();
        let (sent, received) = st.counter().raw();
        let _ = writeln!(
            out,
            "counter: cbytes {} qnum {} (words: sent {sent:#x} received {received:#x})",
            t.cbytes, t.qnum
        );
        for (i, e) in st.entries.iter().enumerate() {
            let s = e.state.load(Ordering::Relaxed);
            if crate::type_dir::EntryState(s).status() == crate::type_dir::estatus::FREE {
                continue;
            }
            let _ = write!(
                out,
                "entry {i}: state {s:#x} key {} head {:#x} tail {:#x}:",
                e.key.load(Ordering::Relaxed),
                e.head.load(Ordering::Relaxed),
                e.tail.load(Ordering::Relaxed)
            );
            let mut cur = e.head.load(Ordering::Relaxed);
            for _ in 0..200 {
                let idx = cur as u32;
                let Some(n) = st.nodes.get(idx as usize) else {
                    let _ = write!(out, " end({cur:#x})");
                    break;
                };
                let _ = write!(
                    out,
                    " [{idx} st {:#x} seq {}]",
                    n.state.load(Ordering::Relaxed),
                    n.seq.load(Ordering::Relaxed)
                );
                cur = n.next.load(Ordering::Relaxed);
            }
            let _ = writeln!(out);
        }
        for (i, r) in st
            .slots
            .iter()
            .enumerate()
            .take(st.header.slots_high.load(Ordering::Relaxed) as usize)
        {
            let _ = writeln!(
                out,
                "slot {i}: state {:#x} hazard {:#x} phase {:#x} op_node {:#x} waiting {} wait_state {:#x}",
                r.state.load(Ordering::Relaxed),
                r.hazard.load(Ordering::Relaxed),
                r.phase.load(Ordering::Relaxed),
                r.op_node.load(Ordering::Relaxed),
                r.waiting_on.load(Ordering::Relaxed),
                r.wait_state.load(Ordering::Relaxed)
            );
        }
        out
    }
}
