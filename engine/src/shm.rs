//! Queue files: creating, validating and mapping them, and the per-thread
//! attachment slots of each mapping.
//!
//! An opener checks, before it trusts anything in a file: that it is a
//! regular file (opened with `O_NOFOLLOW`, so a symlink is refused), that its
//! first page carries [`QUEUE_MAGIC`] and [`QUEUE_LAYOUT_VERSION`] and is
//! marked ready, that the limits it records describe a valid geometry, and
//! that the file's size is the size that geometry needs. From then on every
//! index read from the mapping is checked against that geometry.
//!
//! Limit: a process that can write the file can also truncate it, and an
//! access past the end of a truncated mapping raises SIGBUS in every process
//! that maps it. Queue files are writable only by the users the queue's mode
//! admits, as kernel queues are; see the README.

use crate::kill_points::{kill_point, KillPoint};
use crate::layout::{
    Geometry, QueueHeader, QueueParams, PAGE, QUEUE_LAYOUT_VERSION, QUEUE_MAGIC, READY,
};
use crate::slots;
use crate::state::QueueState;
use crate::sync::Ordering;
use memmap2::{MmapOptions, MmapRaw};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What is wrong with a file that should hold a queue.
#[derive(Debug)]
pub(crate) enum FileError {
    /// The file does not exist.
    Missing,
    /// The OS refused access.
    Access,
    /// Not a valid queue file (with the reason).
    Corrupt(FileDamage),
    /// Another I/O error.
    Io(std::io::Error),
}

impl From<std::io::Error> for FileError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => FileError::Missing,
            std::io::ErrorKind::PermissionDenied => FileError::Access,
            _ if e.raw_os_error() == Some(libc::ELOOP) => FileError::Corrupt(FileDamage::Symlink),
            _ if e.raw_os_error() == Some(libc::EISDIR) => {
                FileError::Corrupt(FileDamage::NotRegular)
            }
            _ => FileError::Io(e),
        }
    }
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileError::Missing => f.write_str("no such file"),
            FileError::Access => f.write_str("permission denied"),
            FileError::Corrupt(why) => write!(f, "not a valid shmq queue file: {why}"),
            FileError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Why a file is not a valid queue file: what `Mapped::open` checks, in order,
/// before it trusts a byte of it (and what `shmq doctor` reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileDamage {
    /// A symbolic link (never followed).
    Symlink,
    /// Not a regular file.
    NotRegular,
    /// Shorter than the header page.
    TooShort {
        /// The file's size in bytes.
        size: u64,
    },
    /// The first eight bytes are not `SHMQ_QUE`.
    WrongMagic,
    /// A layout version this build does not read.
    WrongVersion {
        /// The version the file records.
        found: u32,
    },
    /// The limits in the header describe no valid queue.
    BadLimits,
    /// The file's size is not the size its limits need.
    WrongSize {
        /// The file's size in bytes.
        size: u64,
        /// The size the header records.
        recorded: u64,
        /// The size its limits need.
        expected: u64,
    },
    /// The creator never finished writing the header.
    NotInitialised,
    /// The header names another namespace.
    ForeignNamespace,
    /// The mapping is not page aligned (never seen on Linux).
    Unaligned,
}

impl std::fmt::Display for FileDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileDamage::Symlink => f.write_str("is a symbolic link"),
            FileDamage::NotRegular => f.write_str("not a regular file"),
            FileDamage::TooShort { size } => {
                write!(f, "{size} bytes, shorter than a header")
            }
            FileDamage::WrongMagic => f.write_str("wrong magic"),
            FileDamage::WrongVersion { found } => write!(
                f,
                "layout version {found} (this build reads {QUEUE_LAYOUT_VERSION})"
            ),
            FileDamage::BadLimits => f.write_str("limits out of range"),
            FileDamage::WrongSize {
                size,
                recorded,
                expected,
            } => {
                if size == recorded {
                    write!(f, "size {size} but its limits need {expected}")
                } else {
                    write!(
                        f,
                        "size {size} (header says {recorded}) but its limits need {expected}"
                    )
                }
            }
            FileDamage::NotInitialised => f.write_str("not initialised"),
            FileDamage::ForeignNamespace => f.write_str("belongs to another namespace"),
            FileDamage::Unaligned => f.write_str("mapping not page aligned"),
        }
    }
}

/// Identity of a queue recorded in its header at creation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Identity {
    pub(crate) key: i32,
    pub(crate) id: i32,
    pub(crate) namespace_stamp: u64,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mode: u32,
    pub(crate) qbytes: u64,
    /// The most messages (a POSIX queue's `mq_maxmsg`); 0 for System V.
    pub(crate) qnum_max: u64,
}

/// A mapped queue file.
pub(crate) struct Mapped {
    /// Views into `map`. Declared first so it is dropped first; the `'static`
    /// is confined to this struct: [`Mapped::state`] hands out `&self`-bound
    /// views only.
    state: QueueState<'static>,
    /// Unmapped on drop unless a liveness lock in it could not be given
    /// back (`liveness::stuck_in`): it is then still linked into a thread's
    /// robust list, and stays mapped for the life of the process.
    map: std::mem::ManuallyDrop<MmapRaw>,
    #[allow(dead_code)] // for error messages and doctor
    pub(crate) path: PathBuf,
    pub(crate) file: File,
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if crate::liveness::stuck_in(self.map.as_ptr() as usize, self.map.len()) {
            return; // leaked on purpose, see `map`
        }
        // SAFETY: dropped once, here; nothing uses `map` after (the views
        // in `state` are not used by a `Drop` of theirs).
        unsafe { std::mem::ManuallyDrop::drop(&mut self.map) };
    }
}

impl Mapped {
    /// The queue's shared state, for as long as `self` is borrowed.
    pub(crate) fn state(&self) -> &QueueState<'_> {
        &self.state
    }

    /// Makes this mapping's blocked calls restartable after an
    /// `SA_RESTART` signal handler (a POSIX queue's; see `wait::Futex`).
    pub(crate) fn restart_after_handlers(&mut self) {
        self.state.park = &crate::wait::Futex::RESTARTING;
    }

    fn map(file: File, path: &Path, geo: Geometry) -> Result<Mapped, FileError> {
        let map = MmapOptions::new().len(geo.file_size).map_raw(&file)?;
        if (map.as_ptr() as usize) % PAGE != 0 {
            return Err(FileError::Corrupt(FileDamage::Unaligned));
        }
        // SAFETY: the mapping is `file_size` bytes, page aligned, shared, and
        // lives as long as `map`, which `Drop` unmaps last (or never); the
        // file holds a queue laid out as `geo` (created so, or validated by
        // `open`), and all its bytes are accessed through atomics / UnsafeCell.
        let state = unsafe { QueueState::from_raw(map.as_ptr(), geo) };
        Ok(Mapped {
            state,
            map: std::mem::ManuallyDrop::new(map),
            path: path.to_owned(),
            file,
        })
    }

    /// Creates a new queue file at `path` (which must not exist).
    pub(crate) fn create(
        path: &Path,
        params: QueueParams,
        file_mode: u32,
        who: Identity,
    ) -> Result<Mapped, FileError> {
        let geo =
            Geometry::compute(params).map_err(|_| FileError::Corrupt(FileDamage::BadLimits))?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(file_mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        kill_point(KillPoint::CreateFileOpened);
        Mapped::init(file, path, geo, params, file_mode, who)
    }

    /// Creates a queue file with no name in directory `dir` (`O_TMPFILE`):
    /// nobody can find it until [`Mapped::link_at`] names it, and it
    /// vanishes with its creator if that never happens.
    pub(crate) fn create_unnamed(
        dir: &Path,
        params: QueueParams,
        file_mode: u32,
        who: Identity,
    ) -> Result<Mapped, FileError> {
        let geo =
            Geometry::compute(params).map_err(|_| FileError::Corrupt(FileDamage::BadLimits))?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .mode(file_mode)
            .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
            .open(dir)?;
        Mapped::init(file, dir, geo, params, file_mode, who)
    }

    /// Gives a file made by [`Mapped::create_unnamed`] the name `path`, in
    /// one step; an existing `path` is `AlreadyExists` and stays as it is.
    pub(crate) fn link_at(&self, path: &Path) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        // Through /proc: linkat with AT_EMPTY_PATH would need
        // CAP_DAC_READ_SEARCH.
        let proc_path = format!("/proc/self/fd/{}", self.file.as_raw_fd());
        rustix::fs::linkat(
            rustix::fs::CWD,
            proc_path.as_str(),
            rustix::fs::CWD,
            path,
            rustix::fs::AtFlags::SYMLINK_FOLLOW,
        )
        .map_err(std::io::Error::from)
    }

    /// Sizes, maps and initialises a freshly created `file`.
    fn init(
        file: File,
        path: &Path,
        geo: Geometry,
        params: QueueParams,
        file_mode: u32,
        who: Identity,
    ) -> Result<Mapped, FileError> {
        // The umask must not narrow the mode.
        rustix::fs::fchmod(&file, rustix::fs::Mode::from_raw_mode(file_mode))
            .map_err(std::io::Error::from)?;
        file.set_len(geo.file_size as u64)?;
        kill_point(KillPoint::CreateFileSized);
        let m = Mapped::map(file, path, geo)?;
        let st = m.state();
        let h = st.header;
        let relaxed = Ordering::Relaxed;
        // Relaxed (all): published by SYNC(queue_ready) below.
        h.magic.store(QUEUE_MAGIC, relaxed);
        h.version.store(
            QUEUE_LAYOUT_VERSION as u64 | (std::mem::size_of::<QueueHeader>() as u64) << 32,
            relaxed,
        );
        h.file_size.store(st.geo.file_size as u64, relaxed);
        h.msgmax.store(params.msgmax, relaxed);
        h.qbytes_max.store(params.qbytes_max, relaxed);
        h.n_slots.store(params.n_slots as u64, relaxed);
        h.key.store(who.key as u32 as u64, relaxed);
        h.id.store(who.id as u32 as u64, relaxed);
        h.hash_seed.store(random_seed(), relaxed);
        h.namespace_stamp.store(who.namespace_stamp, relaxed);
        h.perm.uid.store(who.uid, relaxed);
        h.perm.gid.store(who.gid, relaxed);
        h.perm.cuid.store(who.uid, relaxed);
        h.perm.cgid.store(who.gid, relaxed);
        h.perm.mode.store(who.mode & 0o777, relaxed);
        h.control.qbytes.store(who.qbytes, relaxed);
        h.control.qnum_max.store(who.qnum_max, relaxed);
        h.control.ctime.store(crate::process::now_secs(), relaxed);
        h.sent_sum.sum.store(crate::accounting::INITIAL, relaxed);
        h.received_sum
            .sum
            .store(crate::accounting::INITIAL, relaxed);
        kill_point(KillPoint::CreateHeaderWritten);
        // SYNC(queue_ready): Release publishes every field above.
        h.ready.store(READY, Ordering::Release);
        Ok(m)
    }

    /// Opens and validates the queue file at `path`.
    pub(crate) fn open(path: &Path, namespace_stamp: u64) -> Result<Mapped, FileError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        let meta = file.metadata()?;
        if !meta.file_type().is_file() {
            return Err(FileError::Corrupt(FileDamage::NotRegular));
        }
        if meta.size() < PAGE as u64 {
            return Err(FileError::Corrupt(FileDamage::TooShort {
                size: meta.size(),
            }));
        }
        let mut page = [0u8; PAGE];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut page, 0)?;
        let word =
            |i: usize| u64::from_le_bytes(page[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        if word(0) != QUEUE_MAGIC {
            return Err(FileError::Corrupt(FileDamage::WrongMagic));
        }
        if word(1) as u32 != QUEUE_LAYOUT_VERSION {
            return Err(FileError::Corrupt(FileDamage::WrongVersion {
                found: word(1) as u32,
            }));
        }
        let params = QueueParams {
            msgmax: word(3),
            qbytes_max: word(4),
            n_slots: u32::try_from(word(5)).unwrap_or(u32::MAX),
        };
        let geo =
            Geometry::compute(params).map_err(|_| FileError::Corrupt(FileDamage::BadLimits))?;
        if word(2) != geo.file_size as u64 || meta.size() != geo.file_size as u64 {
            return Err(FileError::Corrupt(FileDamage::WrongSize {
                size: meta.size(),
                recorded: word(2),
                expected: geo.file_size as u64,
            }));
        }
        let m = Mapped::map(file, path, geo)?;
        let h = m.state().header;
        // SYNC(queue_ready)
        if h.ready.load(Ordering::Acquire) != READY {
            return Err(FileError::Corrupt(FileDamage::NotInitialised));
        }
        if h.namespace_stamp.load(Ordering::Relaxed) != namespace_stamp {
            return Err(FileError::Corrupt(FileDamage::ForeignNamespace));
        }
        Ok(m)
    }
}

fn random_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (crate::process::pid() as u64).rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15
}

/// This thread's slots, one per mapping it used.
///
/// Each entry keeps its mapping alive (a strong `Arc`): the slot's liveness
/// lock is linked into this thread's robust list through the mapping, which
/// must not be unmapped while the lock is held (see `liveness`). The slot is
/// given back, and the mapping let go, when the thread exits, or on the
/// thread's next claim once the queue has been removed.
struct ThreadSlots {
    fork_gen: u64,
    held: HashMap<usize, (Arc<Mapped>, usize)>,
    /// The last `(key, slot)` found or stored, for the common case of one
    /// queue used over and over (hashing showed in profiles). Valid while
    /// `held` has the key: its `Arc` keeps the allocation, so the address
    /// cannot be reused by another mapping meanwhile.
    last: (usize, usize),
}

impl ThreadSlots {
    /// Gives back the slots of removed queues, and of mappings that nothing
    /// but this entry refers to any more (every handle and namespace that
    /// opened them dropped, no other thread holding a slot in them), and
    /// lets those mappings go. Without the second kind, a thread that opens
    /// the namespace again and again keeps a slot per opening until the
    /// queue runs out of slots (ENOMEM; the corruption test's control round
    /// found it).
    fn release_unused(&mut self) {
        self.held.retain(|_, (m, slot)| {
            let st = m.state();
            if Arc::strong_count(m) > 1 && !st.is_removed() {
                return true;
            }
            st.release_slot(*slot);
            false
        });
        if !self.held.contains_key(&self.last.0) {
            self.last = (0, 0);
        }
    }
}

impl Drop for ThreadSlots {
    fn drop(&mut self) {
        if self.fork_gen != crate::process::fork_generation() {
            // The parent's slots, not ours: the child holds none of their
            // locks (glibc gives a forked child an empty robust list).
            return;
        }
        for (m, slot) in self.held.values() {
            m.state().release_slot(*slot);
        }
    }
}

thread_local! {
    static MINE: RefCell<ThreadSlots> = RefCell::new(ThreadSlots { fork_gen: 0, held: HashMap::new(), last: (0, 0) });
}

/// Every slot of the queue is in use by live threads.
#[derive(Debug)]
pub(crate) struct NoSlot;

/// This thread's slot in `m`, claimed on first use.
pub(crate) fn my_slot(m: &Arc<Mapped>) -> Result<usize, NoSlot> {
    let key = Arc::as_ptr(m) as usize;
    let gen = crate::process::fork_generation();
    let found = MINE.try_with(|t| {
        let mut t = t.borrow_mut();
        if t.fork_gen != gen {
            // Forked: the slots belong to the parent's thread.
            t.held.clear();
            t.last = (0, 0);
            t.fork_gen = gen;
        }
        if t.last.0 == key {
            return Some(t.last.1);
        }
        let s = t.held.get(&key).map(|&(_, s)| s)?;
        t.last = (key, s);
        Some(s)
    });
    if let Ok(Some(s)) = found {
        return Ok(s);
    }
    let st = m.state();
    let slot = match slots::claim(st.header, st.slots) {
        Some(s) => s,
        None => {
            st.recover_dead();
            slots::claim(st.header, st.slots).ok_or(NoSlot)?
        }
    };
    // Where this thread runs, for its peers' spin-or-yield decision (see
    // `wait::Peers`), before it first waits here: a thread that only sends
    // on this queue and waits on another (a POSIX request / reply pair of
    // queues) otherwise stays "on an unknown CPU" here, and a receiver
    // sharing its CPU spun its whole spin time instead of yielding to it.
    // Relaxed: a heuristic, read by peers without ordering.
    st.slots[slot].wait_cpu.store(
        crate::wait::wait_cpu_word(crate::wait::current_cpu() + 1, false),
        Ordering::Relaxed,
    );
    let stored = MINE.try_with(|t| {
        let mut t = t.borrow_mut();
        t.release_unused();
        t.held.insert(key, (m.clone(), slot));
        t.last = (key, slot);
    });
    if stored.is_err() {
        // Thread is exiting: nobody would release the slot.
        slots::release(&st.slots[slot]);
        return Err(NoSlot);
    }
    Ok(slot)
}
