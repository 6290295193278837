//! POSIX message queues (`mq_open`, `mq_send`, `mq_receive`, ...) on the
//! same engine as the System V queues.
//!
//! # Names
//! A name `/x` is the file `mq/x` of the namespace directory, beside (not
//! inside) the System V id table: the file is a queue file like `msq.<id>`,
//! made with the queue's mode and its creator's ownership. It is created
//! with no name (`O_TMPFILE`), initialised, then linked into place in one
//! step, so nobody ever opens a half-made queue and a creator killed on the
//! way leaves nothing behind; `O_EXCL` is the link's own `EEXIST`.
//! `mq_unlink` removes the name at once; processes that have the queue open
//! keep it (their mappings keep the file) until the last one lets it go, as
//! with the kernel's queues.
//!
//! # Priorities
//! A message of priority `p` (0 to `MQ_PRIO_MAX - 1`) is sent as System V
//! type `MQ_PRIO_MAX - p`, and a receive takes the oldest message of the
//! lowest type `<= MQ_PRIO_MAX` (System V's `msgtyp = -MQ_PRIO_MAX`): the
//! oldest message of the highest priority, which the lowest-type trie
//! (`lowest_type`) answers in O(1).
//!
//! # Limits
//! `mq_maxmsg` is the queue's message-count limit (`Control::qnum_max`) and
//! `mq_msgsize` its `msgmax`; its `qbytes` is their product, which the count
//! limit makes unreachable, so only the count decides when it is full.
//! Defaults and ceilings come from `/proc/sys/fs/mqueue/*` (see
//! [`MqLimits`]).
//!
//! # Descriptors
//! A [`MessageQueue`] is an open description: its access (read, write) and
//! its `O_NONBLOCK`, which its clones share, and so does a forked child
//! (see `description`).
//!
//! # Signals
//! A blocked send or receive sleeps with `futex_waitv` and an absolute
//! deadline (`wait::Futex::RESTARTING`), so that the kernel restarts it
//! after a signal handler installed with `SA_RESTART` and ends it with
//! [`MqRecvError::Interrupted`] / [`MqSendError::Interrupted`] after any
//! other, as it does `mq_send` and `mq_receive`.
//!
//! # Notification
//! [`MessageQueue::notify`] is `mq_notify`: one registration per queue, in
//! the queue header (`crate::notify`), fired by the send that makes the
//! queue non-empty when no receiver waits, and delivered by that sender
//! (a signal, or a helper thread of the owner woken; see `notify`).

#[allow(unsafe_code)]
mod description;
mod limits;
#[allow(unsafe_code)]
mod notify;

use crate::blocking::Patience;
use crate::error::{MqNotifyError, MqOpenError, MqRecvError, MqSendError, MqUnlinkError};
use crate::layout::QueueParams;
use crate::message::Selector;
use crate::namespace::Namespace;
use crate::perms::{file_mode, Access, Perms};
use crate::shm::{my_slot, FileError, Identity, Mapped};
use crate::sync::Ordering;
use description::Description;
pub use limits::MqLimits;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Priorities are `0 .. MQ_PRIO_MAX` (Linux's value).
pub const MQ_PRIO_MAX: u32 = 32768;

/// The longest name after its `/` (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// The directory of POSIX queues inside a namespace.
const MQ_DIR: &str = "mq";

/// The System V type a message of priority `prio` is stored as.
fn mtype_of(prio: u32) -> i64 {
    MQ_PRIO_MAX as i64 - prio as i64
}

/// The priority of a message stored as System V type `mtype` (a type
/// outside `1..=MQ_PRIO_MAX`, which only a damaged file holds, reads as 0).
fn prio_of(mtype: i64) -> u32 {
    u32::try_from(MQ_PRIO_MAX as i64 - mtype)
        .ok()
        .filter(|&p| p < MQ_PRIO_MAX)
        .unwrap_or(0)
}

/// A queue name that failed the kernel's checks, in the kernel's order.
enum BadName {
    /// No leading `/` (glibc's check, before the system call).
    NoSlash,
    /// `/` alone: an empty name (`getname`).
    Empty,
    /// `/.`, `/..`, or another `/` (the lookup's checks).
    Access,
    /// Longer than `NAME_MAX` after the `/`.
    TooLong,
}

/// The file of queue `name` in namespace `ns`.
fn name_path(ns: &Namespace, name: &[u8]) -> Result<PathBuf, BadName> {
    use std::os::unix::ffi::OsStrExt;
    let rest = name.strip_prefix(b"/").ok_or(BadName::NoSlash)?;
    if rest.is_empty() {
        return Err(BadName::Empty);
    }
    if rest == b"." || rest == b".." || rest.contains(&b'/') || rest.contains(&0) {
        return Err(BadName::Access);
    }
    if rest.len() > NAME_MAX {
        return Err(BadName::TooLong);
    }
    Ok(mq_dir(ns).join(std::ffi::OsStr::from_bytes(rest)))
}

fn mq_dir(ns: &Namespace) -> PathBuf {
    ns.dir().join(MQ_DIR)
}

/// Mappings of POSIX queues this process has open, by `(device, inode)`, so
/// that opening a queue again shares its mapping (and this thread's slot in
/// it). A live entry's file is open, so its inode number cannot be reused.
type OpenMaps = Mutex<HashMap<(u64, u64), Weak<Mapped>>>;

fn open_maps() -> &'static OpenMaps {
    static MAPS: std::sync::OnceLock<OpenMaps> = std::sync::OnceLock::new();
    MAPS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn remember(m: &Arc<Mapped>) {
    if let Ok(meta) = m.file.metadata() {
        let mut maps = open_maps().lock().unwrap_or_else(|e| e.into_inner());
        maps.retain(|_, w| w.strong_count() > 0);
        maps.insert((meta.dev(), meta.ino()), Arc::downgrade(m));
    }
}

/// Opens the queue file at `path`, sharing a mapping this process has.
fn open_existing(path: &Path, stamp: u64) -> Result<Arc<Mapped>, FileError> {
    let meta = std::fs::symlink_metadata(path)?;
    let cached = open_maps()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(meta.dev(), meta.ino()))
        .and_then(Weak::upgrade);
    if let Some(m) = cached {
        return Ok(m);
    }
    let mut m = Mapped::open(path, stamp)?;
    m.restart_after_handlers();
    let m = Arc::new(m);
    remember(&m);
    Ok(m)
}

/// `mq_maxmsg` and `mq_msgsize` of the queue file at `path`, if it opens.
fn attributes_at(path: &Path, stamp: u64) -> Option<(u64, u64)> {
    let m = open_existing(path, stamp).ok()?;
    let h = m.state().header;
    // Relaxed: immutable after creation (SYNC(queue_ready) on open).
    Some((
        h.control.qnum_max.load(Ordering::Relaxed),
        h.msgmax.load(Ordering::Relaxed),
    ))
}

/// How [`MqOpenOptions::open`] (`mq_open`) finds or creates a queue, in the
/// style of [`std::fs::OpenOptions`]: the access asked for (`O_RDONLY`,
/// `O_WRONLY`, `O_RDWR`), `O_CREAT`, `O_EXCL`, `O_NONBLOCK`, the mode and
/// the attributes of a new queue.
///
/// ```
/// # let dir = std::path::Path::new("/dev/shm").join(format!("shmq-doc-mq-{}", std::process::id()));
/// # struct Cleanup(std::path::PathBuf);
/// # impl Drop for Cleanup { fn drop(&mut self) { let _ = std::fs::remove_dir_all(&self.0); } }
/// # let _cleanup = Cleanup(dir.clone());
/// use shmq::{MessageQueue, MqOpenOptions, MqRecvError, Namespace};
/// let ns = Namespace::open(&dir)?;
/// let q = MqOpenOptions::new()
///     .read(true)
///     .write(true)
///     .create(true)
///     .mode(0o600)
///     .max_messages(4)
///     .message_size(64)
///     .open(&ns, "/jobs")?;
/// q.send(b"low", 1)?;
/// q.send(b"high", 9)?;
/// let mut buf = [0u8; 64];
/// let (len, prio) = q.recv(&mut buf)?; // the highest priority first
/// assert_eq!((&buf[..len], prio), (&b"high"[..], 9));
/// assert_eq!(q.attributes().current_messages, 1);
/// MessageQueue::unlink(&ns, "/jobs")?; // q still works until dropped
/// q.try_recv(&mut buf)?;
/// assert_eq!(q.try_recv(&mut buf), Err(MqRecvError::Again));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MqOpenOptions {
    read: bool,
    write: bool,
    create: bool,
    exclusive: bool,
    nonblocking: bool,
    mode: u32,
    /// `mq_maxmsg` and `mq_msgsize` of a new queue; `None`: the default.
    max_messages: Option<i64>,
    message_size: Option<i64>,
}

impl MqOpenOptions {
    /// No access, no creation (call [`read`](Self::read) and / or
    /// [`write`](Self::write)). Neither access on an existing queue is
    /// `EINVAL`, as `O_ACCMODE` 3 is to the kernel.
    pub const fn new() -> MqOpenOptions {
        MqOpenOptions {
            read: false,
            write: false,
            create: false,
            exclusive: false,
            nonblocking: false,
            mode: 0,
            max_messages: None,
            message_size: None,
        }
    }

    /// Decodes `mq_open`'s `oflag` (`O_ACCMODE`, `O_CREAT`, `O_EXCL`,
    /// `O_NONBLOCK`; other bits are ignored, as by the kernel).
    pub fn from_oflag(oflag: i32) -> MqOpenOptions {
        let acc = oflag & libc::O_ACCMODE;
        MqOpenOptions {
            read: acc == libc::O_RDONLY || acc == libc::O_RDWR,
            write: acc == libc::O_WRONLY || acc == libc::O_RDWR,
            create: oflag & libc::O_CREAT != 0,
            exclusive: oflag & libc::O_EXCL != 0,
            nonblocking: oflag & libc::O_NONBLOCK != 0,
            ..MqOpenOptions::new()
        }
    }

    /// Asks for receiving.
    #[must_use]
    pub const fn read(mut self, on: bool) -> MqOpenOptions {
        self.read = on;
        self
    }

    /// Asks for sending.
    #[must_use]
    pub const fn write(mut self, on: bool) -> MqOpenOptions {
        self.write = on;
        self
    }

    /// `O_CREAT`: creates the queue if the name has none.
    #[must_use]
    pub const fn create(mut self, on: bool) -> MqOpenOptions {
        self.create = on;
        self
    }

    /// `O_EXCL`: with [`create`](Self::create), an existing queue is
    /// [`MqOpenError::Exists`].
    #[must_use]
    pub const fn exclusive(mut self, on: bool) -> MqOpenOptions {
        self.exclusive = on;
        self
    }

    /// `O_NONBLOCK`: sends and receives of this description never wait.
    #[must_use]
    pub const fn nonblocking(mut self, on: bool) -> MqOpenOptions {
        self.nonblocking = on;
        self
    }

    /// The mode of a new queue (low 9 bits, less the process's umask).
    #[must_use]
    pub const fn mode(mut self, mode: u32) -> MqOpenOptions {
        self.mode = mode & 0o777;
        self
    }

    /// `mq_maxmsg` of a new queue (default: `msg_default`, capped by
    /// `msg_max`).
    #[must_use]
    pub const fn max_messages(mut self, n: i64) -> MqOpenOptions {
        self.max_messages = Some(n);
        self
    }

    /// `mq_msgsize` of a new queue (default: `msgsize_default`, capped by
    /// `msgsize_max`).
    #[must_use]
    pub const fn message_size(mut self, n: i64) -> MqOpenOptions {
        self.message_size = Some(n);
        self
    }

    /// Both attributes of a new queue, as `mq_open`'s `attr` gives them.
    #[must_use]
    pub const fn attributes(self, max_messages: i64, message_size: i64) -> MqOpenOptions {
        self.max_messages(max_messages).message_size(message_size)
    }

    /// `mq_open(name, ...)` in namespace `ns`, with the kernel's errors in
    /// the kernel's order: the name's (`EINVAL` without a leading `/`,
    /// `ENOENT` for `/` alone, `EACCES` for another `/`, `ENAMETOOLONG`),
    /// then an existing queue's (`EEXIST` with `O_EXCL`, `EINVAL` for no
    /// access, `EACCES`) or a missing one's (`ENOENT` without `O_CREAT`,
    /// `EINVAL` for attributes out of range, `ENOSPC` past `queues_max`,
    /// `EMFILE` past the caller's `RLIMIT_MSGQUEUE`).
    pub fn open(
        &self,
        ns: &Namespace,
        name: impl AsRef<[u8]>,
    ) -> Result<MessageQueue, MqOpenError> {
        let path = name_path(ns, name.as_ref()).map_err(|e| match e {
            BadName::NoSlash => MqOpenError::Invalid,
            BadName::Empty => MqOpenError::NotFound,
            BadName::Access => MqOpenError::Access,
            BadName::TooLong => MqOpenError::NameTooLong,
        })?;
        // A name that appears and disappears under us (another process
        // creating and unlinking it) is looked at again, a bounded number
        // of times.
        for _ in 0..64 {
            match open_existing(&path, ns.stamp()) {
                Ok(m) => return self.open_found(m),
                Err(FileError::Missing) => {}
                Err(_) if self.create && self.exclusive => return Err(MqOpenError::Exists),
                Err(FileError::Access) => return Err(MqOpenError::Access),
                Err(_) => return Err(MqOpenError::NoMemory),
            }
            if !self.create {
                return Err(MqOpenError::NotFound);
            }
            match self.create_new(ns, &path)? {
                Some(m) => return self.describe(m),
                None if self.exclusive => return Err(MqOpenError::Exists),
                None => continue, // made meanwhile by another process
            }
        }
        Err(MqOpenError::NoMemory)
    }

    /// The kernel's checks on opening an existing queue.
    fn open_found(&self, m: Arc<Mapped>) -> Result<MessageQueue, MqOpenError> {
        if self.create && self.exclusive {
            return Err(MqOpenError::Exists);
        }
        if !self.read && !self.write {
            return Err(MqOpenError::Invalid);
        }
        let want = if self.read { 0o4 } else { 0 } | if self.write { 0o2 } else { 0 };
        let p = perms_of(&m);
        let access = Access {
            uid: p.uid,
            gid: p.gid,
            cuid: p.cuid,
            cgid: p.cgid,
            mode: p.mode,
        };
        if !access.allows(want) {
            return Err(MqOpenError::Access);
        }
        self.describe(m)
    }

    /// Creates the queue at `path`; `None` if a queue got that name first.
    fn create_new(&self, ns: &Namespace, path: &Path) -> Result<Option<Arc<Mapped>>, MqOpenError> {
        let limits = MqLimits::for_namespace(ns.dir());
        let privileged = limits::has_cap_sys_resource();
        let (default_max, default_size) = limits.defaults();
        let (maxmsg, msgsize) = match (self.max_messages, self.message_size) {
            (None, None) => (default_max, default_size),
            (m, s) => {
                let m = m.unwrap_or(default_max as i64);
                let s = s.unwrap_or(default_size as i64);
                if !limits.accepts(m, s, privileged) {
                    return Err(MqOpenError::Invalid);
                }
                (m as u64, s as u64)
            }
        };
        let dir = mq_dir(ns);
        if !dir.is_dir() {
            crate::namespace::create_dir_1777(&dir).map_err(|_| MqOpenError::Access)?;
        }
        if !privileged {
            let queues = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
            if queues as u64 >= limits.queues_max {
                return Err(MqOpenError::NoSpace);
            }
        }
        let creds = crate::process::credentials();
        if !limits::fits_rlimit(&dir, ns.stamp(), creds.uid, maxmsg, msgsize) {
            return Err(MqOpenError::TooManyFiles);
        }
        let mode = self.mode & !limits::umask() & 0o777;
        let who = Identity {
            key: 0,
            id: 0,
            namespace_stamp: ns.stamp(),
            uid: creds.uid,
            gid: creds.gid,
            mode,
            qbytes: maxmsg * msgsize,
            qnum_max: maxmsg,
        };
        let params = QueueParams {
            msgmax: msgsize,
            qbytes_max: maxmsg.checked_mul(msgsize).ok_or(MqOpenError::NoMemory)?,
            n_slots: ns.limits().slots,
        };
        let mut m = Mapped::create_unnamed(&dir, params, file_mode(mode), who)
            .map_err(|_| MqOpenError::NoMemory)?;
        m.restart_after_handlers();
        match m.link_at(path) {
            Ok(()) => {
                let m = Arc::new(m);
                remember(&m);
                Ok(Some(m))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(MqOpenError::Access),
            Err(_) => Err(MqOpenError::NoMemory),
        }
    }

    fn describe(&self, m: Arc<Mapped>) -> Result<MessageQueue, MqOpenError> {
        let fd = m.file.try_clone().map_err(|_| MqOpenError::NoMemory)?;
        let desc =
            Description::new(fd.into(), self.nonblocking).map_err(|_| MqOpenError::NoMemory)?;
        Ok(MessageQueue {
            desc: Arc::new(Open {
                desc,
                map: m.clone(),
            }),
            map: m,
            read: self.read,
            write: self.write,
        })
    }
}

/// Owner and mode of the queue mapped at `m`.
fn perms_of(m: &Mapped) -> Perms {
    let h = m.state().header;
    let r = Ordering::Relaxed;
    Perms {
        key: 0,
        uid: h.perm.uid.load(r),
        gid: h.perm.gid.load(r),
        cuid: h.perm.cuid.load(r),
        cgid: h.perm.cgid.load(r),
        mode: h.perm.mode.load(r) & 0o777,
        seq: 0,
    }
}

/// A queue's attributes (`struct mq_attr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MqAttr {
    /// `O_NONBLOCK` of this description (`mq_flags`).
    pub nonblocking: bool,
    /// The most messages the queue holds (`mq_maxmsg`).
    pub max_messages: u64,
    /// The longest message (`mq_msgsize`).
    pub message_size: u64,
    /// Messages queued now (`mq_curmsgs`).
    pub current_messages: u64,
}

/// What one POSIX queue of a namespace is, as `/dev/mqueue/NAME` reads
/// (for `shmq ls`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqInfo {
    /// The name, with its leading `/`.
    pub name: String,
    /// Owner and mode.
    pub perms: Perms,
    /// `mq_maxmsg`, `mq_msgsize` and `mq_curmsgs` (`nonblocking` false).
    pub attr: MqAttr,
}

/// How long a call may wait.
#[derive(Clone, Copy)]
enum Wait {
    Never,
    Until(Option<Instant>),
}

impl Wait {
    fn timeout(d: Duration) -> Wait {
        Wait::Until(Instant::now().checked_add(d))
    }
}

/// An open POSIX queue: an open description ([`MqOpenOptions::open`]).
/// Clones share the description (its `O_NONBLOCK`), as `dup` does; so does
/// a child after `fork`.
///
/// | | per the description's `O_NONBLOCK` | never waits | gives up after a `Duration` | at an `Instant` |
/// | --- | --- | --- | --- | --- |
/// | send | [`send`](Self::send) | [`try_send`](Self::try_send) | [`send_timeout`](Self::send_timeout) | [`send_deadline`](Self::send_deadline) |
/// | receive | [`recv`](Self::recv) | [`try_recv`](Self::try_recv) | [`recv_timeout`](Self::recv_timeout) | [`recv_deadline`](Self::recv_deadline) |
///
/// A non-blocking description never waits, whatever the form (`EAGAIN`
/// wins over a deadline, as with the kernel).
#[derive(Clone)]
pub struct MessageQueue {
    map: Arc<Mapped>,
    desc: Arc<Open>,
    read: bool,
    write: bool,
}

/// An open description and the mapping it is of: dropping the last clone
/// is the close of the descriptor, which removes this process's
/// notification registration (the kernel's `mqueue_flush_file`).
struct Open {
    desc: Description,
    map: Arc<Mapped>,
}

impl std::ops::Deref for Open {
    type Target = Description;
    fn deref(&self) -> &Description {
        &self.desc
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        notify::unregister(&self.map);
    }
}

/// How [`MessageQueue::notify`] (`mq_notify`) notifies the registering
/// process when a message arrives in the empty queue (`struct sigevent`).
pub enum MqNotify {
    /// `SIGEV_NONE`: registered (others get `EBUSY`), never notified.
    None,
    /// `SIGEV_SIGNAL`: signal `signo` is queued to this process with
    /// `si_code == SI_MESGQ`, `si_value == value` and the sender's pid and
    /// uid. Signal 0 registers and sends nothing (as the kernel).
    Signal {
        /// `sigev_signo` (0 to 64).
        signo: i32,
        /// `sigev_value` (`sival_int` or `sival_ptr`).
        value: u64,
    },
    /// `SIGEV_THREAD`: a thread of this process runs the function once.
    Thread(Box<dyn FnOnce() + Send + 'static>),
}

impl std::fmt::Debug for MqNotify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MqNotify::None => f.write_str("None"),
            MqNotify::Signal { signo, value } => f
                .debug_struct("Signal")
                .field("signo", signo)
                .field("value", value)
                .finish(),
            MqNotify::Thread(_) => f.write_str("Thread(..)"),
        }
    }
}

impl std::fmt::Debug for MessageQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageQueue")
            .field("fd", &self.desc.fd.as_raw_fd())
            .field("read", &self.read)
            .field("write", &self.write)
            .finish()
    }
}

impl AsRawFd for MessageQueue {
    /// The descriptor a C caller gets as its `mqd_t`: a close-on-exec
    /// descriptor of the queue's file, held as long as a clone lives.
    fn as_raw_fd(&self) -> RawFd {
        self.desc.fd.as_raw_fd()
    }
}

impl MessageQueue {
    /// `mq_unlink`: removes the name at once; descriptors open on the queue
    /// keep it until the last is dropped. Only the queue's owner or root
    /// may remove another user's queue (the directory is sticky).
    pub fn unlink(ns: &Namespace, name: impl AsRef<[u8]>) -> Result<(), MqUnlinkError> {
        let path = name_path(ns, name.as_ref()).map_err(|e| match e {
            BadName::NoSlash => MqUnlinkError::Invalid,
            BadName::Empty => MqUnlinkError::NotFound,
            BadName::Access => MqUnlinkError::Access,
            BadName::TooLong => MqUnlinkError::NameTooLong,
        })?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(MqUnlinkError::NotFound),
            Err(_) => Err(MqUnlinkError::Access),
        }
    }

    /// Every POSIX queue of namespace `ns`, by name (queue files that
    /// cannot be opened are left out).
    pub fn list(ns: &Namespace) -> Vec<MqInfo> {
        let Ok(entries) = std::fs::read_dir(mq_dir(ns)) else {
            return Vec::new();
        };
        let mut out: Vec<MqInfo> = entries
            .flatten()
            .filter_map(|e| {
                let name = format!("/{}", e.file_name().to_string_lossy());
                let m = open_existing(&e.path(), ns.stamp()).ok()?;
                let st = m.state();
                st.recover_dead();
                Some(MqInfo {
                    name,
                    perms: perms_of(&m),
                    attr: MqAttr {
                        nonblocking: false,
                        max_messages: st.header.control.qnum_max.load(Ordering::Relaxed),
                        message_size: st.header.msgmax.load(Ordering::Relaxed),
                        current_messages: st.counter().load().qnum,
                    },
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn msgsize(&self) -> u64 {
        // Relaxed: immutable after creation (SYNC(queue_ready) on open).
        self.map.state().header.msgmax.load(Ordering::Relaxed)
    }

    /// `mq_msgsize` (fixed at creation; no recovery, unlike
    /// [`attributes`](Self::attributes)).
    pub fn message_size(&self) -> u64 {
        self.msgsize()
    }

    /// `mq_getattr`. Counts are exact: what dead processes left is
    /// recovered first.
    pub fn attributes(&self) -> MqAttr {
        let st = self.map.state();
        st.recover_dead();
        MqAttr {
            nonblocking: self.desc.nonblocking(),
            // Relaxed: immutable after creation.
            max_messages: st.header.control.qnum_max.load(Ordering::Relaxed),
            message_size: self.msgsize(),
            current_messages: st.counter().load().qnum,
        }
    }

    /// `mq_setattr`'s one effect: sets or clears `O_NONBLOCK` of the
    /// description (every clone, and a forked child's copy, see it).
    pub fn set_nonblocking(&self, on: bool) {
        self.desc.set_nonblocking(on);
    }

    /// Whether this description was opened for receiving / sending.
    pub fn access(&self) -> (bool, bool) {
        (self.read, self.write)
    }

    // ----- mq_send -----

    /// `mq_send`: sends `text` with priority `prio`, waiting while the
    /// queue is full unless the description is non-blocking
    /// ([`MqSendError::Again`]). Checks in the kernel's order: `prio`
    /// (`EINVAL`), the access (`EBADF`), the length (`EMSGSIZE`).
    pub fn send(&self, text: &[u8], prio: u32) -> Result<(), MqSendError> {
        self.send_waiting(text, prio, Wait::Until(None))
    }

    /// [`send`](Self::send) that never waits.
    pub fn try_send(&self, text: &[u8], prio: u32) -> Result<(), MqSendError> {
        self.send_waiting(text, prio, Wait::Never)
    }

    /// [`send`](Self::send) that gives up with [`MqSendError::TimedOut`]
    /// after `timeout`.
    pub fn send_timeout(
        &self,
        text: &[u8],
        prio: u32,
        timeout: Duration,
    ) -> Result<(), MqSendError> {
        self.send_waiting(text, prio, Wait::timeout(timeout))
    }

    /// [`send`](Self::send) that gives up with [`MqSendError::TimedOut`] at
    /// `deadline` (`mq_timedsend`; a deadline already past still sends if
    /// there is room).
    pub fn send_deadline(
        &self,
        text: &[u8],
        prio: u32,
        deadline: Instant,
    ) -> Result<(), MqSendError> {
        self.send_waiting(text, prio, Wait::Until(Some(deadline)))
    }

    fn send_waiting(&self, text: &[u8], prio: u32, wait: Wait) -> Result<(), MqSendError> {
        if prio >= MQ_PRIO_MAX {
            return Err(MqSendError::Invalid);
        }
        if !self.write {
            return Err(MqSendError::BadDescriptor);
        }
        if text.len() as u64 > self.msgsize() {
            return Err(MqSendError::TooBig);
        }
        let (nowait, deadline) = self.how_long(wait);
        let slot = my_slot(&self.map).map_err(|_| MqSendError::NoMemory)?;
        let patience = Patience {
            deadline,
            long_sleep: &|| {},
        };
        use crate::error::SendError as E;
        let st = self.map.state();
        let sent_before = st
            .send_blocking(slot, mtype_of(prio), text, nowait, patience)
            .map_err(|e| match e {
                E::Again => MqSendError::Again,
                E::TimedOut => MqSendError::TimedOut,
                E::Interrupted => MqSendError::Interrupted,
                _ => MqSendError::NoMemory,
            })?;
        self.maybe_notify(sent_before);
        Ok(())
    }

    /// After a send whose reservation saw `sent_before` messages: fires
    /// the notification registration if the send made the queue non-empty
    /// with no receiver waiting (`crate::notify::should_fire`).
    fn maybe_notify(&self, sent_before: u64) {
        let st = self.map.state();
        let rec = &st.header.notify;
        // After the send's link and SeqCst fence; a registration armed
        // after this look is linearised after our send.
        let Some(gen) = rec.armed() else {
            return;
        };
        let received = st.counter().received_messages();
        // SYNC(recv_sleepers): after the send's SeqCst fence, as
        // `wait::wake_receiver` reads it.
        let sleepers = st.header.recv_sleepers.load(Ordering::SeqCst);
        let modulus = crate::accounting::MSGS_MODULUS;
        if crate::notify::should_fire(sent_before, received, sleepers, modulus) {
            if let Some(f) = rec.fire(gen) {
                notify::deliver(rec, f);
            }
        }
    }

    /// `mq_notify`: registers this process for notification of a message
    /// arriving in the empty queue (`Some`), or removes its registration
    /// (`None`; nothing happens if it has none, or if another process's is
    /// in place, as with the kernel). Another live process's registration
    /// is [`MqNotifyError::Busy`]; one whose owner died is free. A
    /// registration is used up when it fires; the owner's drop of any
    /// description of the queue (`mq_close`) removes it. Any description
    /// will do, whatever its access (as the kernel).
    pub fn notify(&self, how: Option<MqNotify>) -> Result<(), MqNotifyError> {
        let (kind, signo, value, run) = match how {
            None => {
                notify::unregister(&self.map);
                return Ok(());
            }
            Some(MqNotify::None) => (crate::notify::Kind::None, 0, 0, None),
            Some(MqNotify::Signal { signo, value }) => {
                // The kernel's `valid_signal`: 0 to _NSIG (64).
                let signo = u32::try_from(signo)
                    .ok()
                    .filter(|&s| s <= 64)
                    .ok_or(MqNotifyError::Invalid)?;
                (crate::notify::Kind::Signal, signo, value, None)
            }
            Some(MqNotify::Thread(f)) => (crate::notify::Kind::Thread, 0, 0, Some(f)),
        };
        notify::register(&self.map, kind, signo, value, run).map_err(|e| match e {
            None => MqNotifyError::Busy,
            Some(()) => MqNotifyError::NoMemory,
        })
    }

    /// What a close of a descriptor of this queue does besides dropping
    /// it: removes this process's notification registration, if any (for
    /// the C layer's `mq_close`, whose clones may outlive the call).
    pub fn close_notification(&self) {
        notify::unregister(&self.map);
    }

    fn how_long(&self, wait: Wait) -> (bool, Option<Instant>) {
        match wait {
            Wait::Never => (true, None),
            Wait::Until(_) if self.desc.nonblocking() => (true, None),
            Wait::Until(d) => (false, d),
        }
    }

    // ----- mq_receive -----

    /// `mq_receive`: takes the oldest message of the highest priority into
    /// `buf`, returning its length and priority; waits while the queue is
    /// empty unless the description is non-blocking
    /// ([`MqRecvError::Again`]). Checks in the kernel's order: the access
    /// (`EBADF`), then `buf` shorter than `mq_msgsize` (`EMSGSIZE`, even
    /// when the queue is empty).
    pub fn recv(&self, buf: &mut [u8]) -> Result<(usize, u32), MqRecvError> {
        self.recv_waiting(buf, Wait::Until(None))
    }

    /// [`recv`](Self::recv) that never waits.
    pub fn try_recv(&self, buf: &mut [u8]) -> Result<(usize, u32), MqRecvError> {
        self.recv_waiting(buf, Wait::Never)
    }

    /// [`recv`](Self::recv) that gives up with [`MqRecvError::TimedOut`]
    /// after `timeout`.
    pub fn recv_timeout(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<(usize, u32), MqRecvError> {
        self.recv_waiting(buf, Wait::timeout(timeout))
    }

    /// [`recv`](Self::recv) that gives up with [`MqRecvError::TimedOut`] at
    /// `deadline` (`mq_timedreceive`).
    pub fn recv_deadline(
        &self,
        buf: &mut [u8],
        deadline: Instant,
    ) -> Result<(usize, u32), MqRecvError> {
        self.recv_waiting(buf, Wait::Until(Some(deadline)))
    }

    fn recv_waiting(&self, buf: &mut [u8], wait: Wait) -> Result<(usize, u32), MqRecvError> {
        if !self.read {
            return Err(MqRecvError::BadDescriptor);
        }
        if (buf.len() as u64) < self.msgsize() {
            return Err(MqRecvError::TooBig);
        }
        let (nowait, deadline) = self.how_long(wait);
        let slot = my_slot(&self.map).map_err(|_| MqRecvError::NoMemory)?;
        let patience = Patience {
            deadline,
            long_sleep: &|| {},
        };
        let st = self.map.state();
        let sel = Selector::AtMost(MQ_PRIO_MAX as i64);
        use crate::error::RecvError as E;
        let taken = st
            .take_blocking(slot, sel, buf.len(), nowait, false, patience)
            .map_err(|e| match e {
                E::NoMessage => MqRecvError::Again,
                E::TimedOut => MqRecvError::TimedOut,
                E::Interrupted => MqRecvError::Interrupted,
                _ => MqRecvError::NoMemory,
            })?;
        let len = st.copy_text(&taken, buf);
        st.complete_receive(slot, &taken);
        Ok((len, prio_of(taken.mtype)))
    }
}
