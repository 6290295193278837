//! A namespace: a directory holding an id table (`ids`) and one file per
//! queue (`msq.<id>`). The counterpart of the kernel's IPC namespace.
//!
//! The directory is created on first use with mode `01777` (sticky, like
//! `/dev/shm`), so that every user can create queues in it and nobody can
//! delete another user's files. Queue files are created with the queue's
//! mode and the creator's ownership, so the operating system enforces who may
//! map them.

use crate::error::{CtlError, GetError, OpenError, OpenErrorKind};
use crate::ids::{rstate, table_size, IdRecord, IdTable, IdsHeader, IDS_LAYOUT_VERSION, IDS_MAGIC};
use crate::kill_points::{kill_point, KillPoint};
use crate::layout::QueueParams;
use crate::params::Limits;
use crate::perms::file_mode;
use crate::queue::{Queue, QueueSet, Registry};
use crate::shm::{FileError, Identity, Mapped};
use crate::sync::Ordering;
use memmap2::{MmapOptions, MmapRaw};
use std::collections::HashMap;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The key of `IPC_PRIVATE`.
pub const IPC_PRIVATE: i32 = 0;

/// Default namespace directory.
pub const DEFAULT_DIR: &str = "/dev/shm/shmq";

fn ns_error(path: &Path, kind: OpenErrorKind, detail: impl Into<String>) -> OpenError {
    OpenError::new(path, kind, detail)
}

/// How [`Namespace::get`] (`msgget`) finds or creates a queue: `IPC_CREAT`,
/// `IPC_EXCL` and the mode bits, as a builder in the style of
/// [`std::fs::OpenOptions`].
///
/// ```
/// use shmq::GetOptions;
/// // msgget(key, IPC_CREAT | IPC_EXCL | 0o660)
/// let opts = GetOptions::new().create(true).exclusive(true).mode(0o660);
/// assert_eq!(opts, GetOptions::from_msgflg(libc::IPC_CREAT | libc::IPC_EXCL | 0o660));
/// // msgget(key, 0): the existing queue, asking for no particular access.
/// assert_eq!(GetOptions::new(), GetOptions::default());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GetOptions {
    create: bool,
    exclusive: bool,
    mode: u32,
}

impl GetOptions {
    /// Finds an existing queue (a missing one is [`GetError::NotFound`]),
    /// asking for no particular access.
    pub const fn new() -> GetOptions {
        GetOptions {
            create: false,
            exclusive: false,
            mode: 0,
        }
    }

    /// `IPC_CREAT`: creates the queue if the key has none.
    #[must_use]
    pub const fn create(mut self, create: bool) -> GetOptions {
        self.create = create;
        self
    }

    /// `IPC_EXCL`: with [`GetOptions::create`], fails with
    /// [`GetError::Exists`] if the key has a queue.
    #[must_use]
    pub const fn exclusive(mut self, exclusive: bool) -> GetOptions {
        self.exclusive = exclusive;
        self
    }

    /// The low 9 bits: the mode of a new queue, and the access asked for when
    /// opening an existing one ([`GetError::Access`] if not granted).
    #[must_use]
    pub const fn mode(mut self, mode: u32) -> GetOptions {
        self.mode = mode & 0o777;
        self
    }

    /// Decodes `msgget`'s `msgflg` (`IPC_CREAT`, `IPC_EXCL`, mode bits).
    pub fn from_msgflg(msgflg: i32) -> GetOptions {
        GetOptions::new()
            .create(msgflg & libc::IPC_CREAT != 0)
            .exclusive(msgflg & libc::IPC_EXCL != 0)
            .mode(msgflg as u32)
    }
}

/// Namespace-wide figures (`IPC_INFO` / `MSG_INFO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespaceInfo {
    /// The namespace's limits.
    pub limits: Limits,
    /// Queues in use.
    pub queues: u32,
    /// Messages queued in all queues.
    pub messages: u64,
    /// Bytes queued in all queues.
    pub bytes: u64,
    /// Highest record index in use, or -1 when none.
    pub highest_index: i32,
}

pub(crate) struct NsInner {
    /// Views into `_map`, dropped first; the `'static` never escapes.
    table: IdTable<'static>,
    _map: MmapRaw,
    pub(crate) dir: PathBuf,
    stamp: u64,
    cache: RwLock<HashMap<i32, Arc<Mapped>>>,
}

/// A handle on a namespace: the directory, its id table and its limits (the
/// counterpart of the kernel's IPC namespace). Cheap to clone; usable from
/// any thread.
///
/// ```
/// # let dir = std::path::Path::new("/dev/shm").join(format!("shmq-doc-namespace-{}", std::process::id()));
/// # struct Cleanup(std::path::PathBuf);
/// # impl Drop for Cleanup { fn drop(&mut self) { let _ = std::fs::remove_dir_all(&self.0); } }
/// # let _cleanup = Cleanup(dir.clone());
/// use shmq::{GetError, GetOptions, Namespace};
/// let ns = Namespace::open(&dir)?; // created on first use
/// let create = GetOptions::new().create(true).exclusive(true).mode(0o640);
/// let q = ns.get(0x5eed, create)?;
/// assert_eq!(ns.get(0x5eed, create).unwrap_err(), GetError::Exists);
/// assert_eq!(ns.get(0x5eed, GetOptions::new())?.id(), q.id());
/// assert_eq!(ns.id_of_key(0x5eed), Some(q.id()));
/// assert_eq!(ns.ids(), [q.id()]);
/// q.remove()?;
/// assert_eq!(ns.get(0x5eed, GetOptions::new()).unwrap_err(), GetError::NotFound);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Namespace {
    pub(crate) inner: Arc<NsInner>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

/// Holds the management lock; releases it when dropped (also on panic).
pub(crate) struct Locked<'a>(&'a IdTable<'static>);

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

impl Namespace {
    /// Opens the namespace in `$SHMQ_DIR`, or `/dev/shm/shmq`, creating it if
    /// needed.
    pub fn open_default() -> Result<Namespace, OpenError> {
        let dir = std::env::var_os("SHMQ_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| DEFAULT_DIR.into());
        Namespace::open(dir)
    }

    /// Opens (creating if needed) the namespace in directory `dir`.
    ///
    /// A new namespace is a directory with mode `01777` (as `/dev/shm`) and
    /// an id table whose limits come from `dir/config` and `SHMQ_*`
    /// variables; an existing one is checked (magic, layout version, size)
    /// before anything in it is trusted, and [`OpenError`] says which file
    /// is at fault and why.
    pub fn open(dir: impl AsRef<Path>) -> Result<Namespace, OpenError> {
        use OpenErrorKind as K;
        let dir = dir.as_ref().to_owned();
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(ns_error(&dir, K::Corrupt, "exists and is not a directory")),
            Err(_) => {
                if let Err(e) = create_dir_1777(&dir) {
                    return Err(ns_error(
                        &dir,
                        K::Access,
                        format!("cannot create namespace directory: {e}"),
                    ));
                }
            }
        }
        let ids = dir.join("ids");
        let file = match open_rw(&ids) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_table(&dir)?,
            Err(e) => return Err(ns_error(&ids, K::Access, e.to_string())),
        };
        let meta = file
            .metadata()
            .map_err(|e| ns_error(&ids, K::Io, e.to_string()))?;
        if !meta.is_file() || meta.len() < std::mem::size_of::<IdsHeader>() as u64 {
            return Err(ns_error(
                &ids,
                K::Corrupt,
                "not an shmq id table (too short or not a file)",
            ));
        }
        let map = MmapOptions::new()
            .len(meta.len() as usize)
            .map_raw(&file)
            .map_err(|e| ns_error(&ids, K::Io, e.to_string()))?;
        // SAFETY: the mapping is at least a header long, page aligned, shared,
        // kept alive by `_map` for as long as the views (field order), and
        // every byte is accessed through atomics.
        let header = unsafe { &*(map.as_ptr() as *const IdsHeader) };
        // SYNC(ids_ready)
        if header.magic.load(Ordering::Acquire) != IDS_MAGIC {
            return Err(ns_error(
                &ids,
                K::Corrupt,
                "wrong magic: not an shmq id table",
            ));
        }
        if header.version.load(Ordering::Relaxed) != IDS_LAYOUT_VERSION {
            return Err(ns_error(
                &ids,
                K::Corrupt,
                "id table layout version not supported by this build",
            ));
        }
        let msgmni = header.msgmni.load(Ordering::Relaxed);
        if msgmni == 0 || msgmni > 1 << 20 || table_size(msgmni as u32) as u64 != meta.len() {
            return Err(ns_error(
                &ids,
                K::Corrupt,
                format!("size {} does not match msgmni {msgmni}", meta.len()),
            ));
        }
        // SAFETY: the records follow the header, `msgmni` of them, inside the
        // mapping (size checked just above); alignment 16 within a page.
        let records = unsafe {
            std::slice::from_raw_parts(
                map.as_ptr().add(std::mem::size_of::<IdsHeader>()) as *const IdRecord,
                msgmni as usize,
            )
        };
        let table = IdTable { header, records };
        let limits = table.limits();
        limits
            .validate()
            .map_err(|e| ns_error(&ids, K::Corrupt, e))?;
        let stamp = header.stamp.load(Ordering::Relaxed);
        Ok(Namespace {
            inner: Arc::new(NsInner {
                table,
                _map: map,
                dir,
                stamp,
                cache: RwLock::new(HashMap::new()),
            }),
        })
    }

    /// The namespace's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The namespace's limits.
    pub fn limits(&self) -> Limits {
        self.inner.table.limits()
    }

    /// `msgmni`: the number of id-table records (no shared-memory read).
    pub(crate) fn msgmni(&self) -> usize {
        self.inner.table.records.len()
    }

    fn lock(&self) -> Locked<'_> {
        let t = &self.inner.table;
        let took_over = t.lock();
        self.repair_after_lock(took_over);
        Locked(t)
    }

    /// Under the lock nobody is creating or removing a queue: a record left
    /// CREATING / REMOVING is a dead holder's, or one that a process could
    /// not finish (another user's file it may not open or unlink). After a
    /// takeover every record is looked at (a holder may die before it raises
    /// `highest`); otherwise those below `highest`, where an unfinished
    /// repair leaves its record (`keep_stuck`).
    fn repair_after_lock(&self, took_over: bool) {
        let t = &self.inner.table;
        let upto = if took_over {
            t.records.len()
        } else {
            (t.header.highest.load(Ordering::Relaxed) as usize).min(t.records.len())
        };
        self.repair_locked(upto);
    }

    /// Called now and then by a caller asleep on queue `id`: if the queue's
    /// record is half changed (an IPC_RMID whose process died before it
    /// marked the queue removed would leave its sleepers asleep until some
    /// other management operation came by), takes the lock, which finishes
    /// the change. A live holder is waited for briefly only (it may be the
    /// very removal, about to wake us): the sleeper looks again later.
    pub(crate) fn finish_half_done(&self, id: i32) {
        let t = &self.inner.table;
        let Ok(id) = usize::try_from(id) else { return };
        let state = t.records[id % t.records.len()]
            .state
            .load(Ordering::Acquire);
        if state != rstate::CREATING && state != rstate::REMOVING {
            return;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
        if let Some((_locked, took_over)) = self.lock_until(deadline) {
            self.repair_after_lock(took_over);
        }
    }

    /// Takes the management lock unless a live process keeps it past
    /// `deadline`; `true` with it if a dead holder was taken over. Unlike
    /// [`Namespace::lock`] it repairs nothing: `doctor` does, and reports it.
    pub(crate) fn lock_until(&self, deadline: std::time::Instant) -> Option<(Locked<'_>, bool)> {
        let t = &self.inner.table;
        let took_over = t.lock_until(Some(deadline))?;
        Some((Locked(t), took_over))
    }

    /// The id table (for `doctor`).
    pub(crate) fn table(&self) -> &IdTable<'static> {
        &self.inner.table
    }

    /// Finishes or undoes what a dead lock holder left half done, in the
    /// records below `upto`.
    fn repair_locked(&self, upto: usize) {
        let t = &self.inner.table;
        for idx in 0..upto {
            match t.records[idx].state.load(Ordering::Acquire) {
                rstate::CREATING => {
                    self.rollback_create(idx);
                }
                rstate::REMOVING => {
                    self.finish_remove(idx);
                }
                _ => {}
            }
        }
    }

    /// Undoes the creation recorded in record `idx` (CREATING): removes its
    /// half-made file and frees the record. Under the lock. `false` if the
    /// file is another user's that the caller may not remove: the record
    /// stays CREATING for a process that may (the file's owner, root).
    pub(crate) fn rollback_create(&self, idx: usize) -> bool {
        let t = &self.inner.table;
        if !self.unlink_queue_file(t.id_of(idx)) {
            self.keep_stuck(idx);
            return false;
        }
        kill_point(KillPoint::RollbackUnlinked);
        t.free_record(idx);
        true
    }

    /// Removes the file of queue `id`; `false` if it stays because the
    /// caller may not remove it (another user's file in the sticky
    /// directory). Any other failure counts as removed (nothing better can
    /// be done; `doctor` reports what is left).
    fn unlink_queue_file(&self, id: i32) -> bool {
        match std::fs::remove_file(self.queue_path(id)) {
            Err(e) => e.kind() != std::io::ErrorKind::PermissionDenied,
            Ok(()) => true,
        }
    }

    /// Leaves record `idx` CREATING / REMOVING for a process that may finish
    /// it, where every `lock` looks (below `highest`).
    fn keep_stuck(&self, idx: usize) {
        let t = &self.inner.table;
        t.header
            .highest
            .fetch_max(idx as u64 + 1, Ordering::Relaxed);
    }

    /// The namespace's identity (its id table's creation stamp), which every
    /// queue file of it records.
    pub(crate) fn stamp(&self) -> u64 {
        self.inner.stamp
    }

    pub(crate) fn queue_path(&self, id: i32) -> PathBuf {
        self.inner.dir.join(format!("msq.{id}"))
    }

    /// `msgget(key, msgflg)`: the queue of `key`, created if `opts` say so
    /// ([`GetOptions`]); [`IPC_PRIVATE`] always creates a queue no key
    /// finds. See the example on [`Namespace`].
    pub fn get(&self, key: i32, opts: GetOptions) -> Result<Queue, GetError> {
        let _locked = self.lock();
        let t = &self.inner.table;
        if key != IPC_PRIVATE {
            if let Some(id) = self.id_of_key(key) {
                if opts.create && opts.exclusive {
                    return Err(GetError::Exists);
                }
                let q = self.queue(id).map_err(|e| match e {
                    // The OS refused the file: the queue's mode grants this
                    // user nothing (see `file_mode`), which the kernel answers
                    // with EACCES when any access is asked (with none asked,
                    // it returns the id; we cannot, having no mapping).
                    CtlError::Access => GetError::Access,
                    _ => GetError::NoMemory,
                })?;
                if !q.access().allows(opts.mode) {
                    return Err(GetError::Access);
                }
                return Ok(q);
            }
            if !opts.create {
                return Err(GetError::NotFound);
            }
        }
        let idx = (0..t.records.len())
            .find(|&i| t.records[i].state.load(Ordering::Acquire) == rstate::FREE)
            .ok_or(GetError::NoSpace)?;
        let r = &t.records[idx];
        r.key.store(key as u32, Ordering::Relaxed);
        r.private
            .store((key == IPC_PRIVATE) as u32, Ordering::Relaxed);
        // Release: the key is written before anyone sees the intent.
        r.state.store(rstate::CREATING, Ordering::Release);
        t.header
            .highest
            .fetch_max(idx as u64 + 1, Ordering::Relaxed);
        kill_point(KillPoint::CreateRecorded);
        let id = t.id_of(idx);
        let path = self.queue_path(id);
        let _ = std::fs::remove_file(&path); // a stale file from a crash
        let limits = t.limits();
        let creds = crate::process::credentials();
        let who = Identity {
            key,
            id,
            namespace_stamp: self.inner.stamp,
            uid: creds.uid,
            gid: creds.gid,
            mode: opts.mode,
            qbytes: limits.msgmnb,
            qnum_max: 0,
        };
        let params = QueueParams {
            msgmax: limits.msgmax,
            qbytes_max: limits.qbytes_max,
            n_slots: limits.slots,
        };
        match Mapped::create(&path, params, file_mode(opts.mode), who) {
            Ok(m) => {
                kill_point(KillPoint::CreateFileReady);
                let m = Arc::new(m);
                self.inner
                    .cache
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id, m.clone());
                // SYNC(record_live): Release publishes the record and the file
                // to lock-free lookups (`IdTable::live_index`, Acquire).
                r.state.store(rstate::LIVE, Ordering::Release);
                kill_point(KillPoint::CreateLive);
                Ok(self.handle(m, id))
            }
            Err(_) => {
                let _ = std::fs::remove_file(&path);
                t.free_record(idx);
                Err(GetError::NoMemory)
            }
        }
    }

    /// The queue with id `id` (EINVAL if there is none).
    pub fn queue(&self, id: i32) -> Result<Queue, CtlError> {
        let t = &self.inner.table;
        if t.live_index(id).is_none() {
            return Err(CtlError::Invalid);
        }
        if let Some(m) = self
            .inner
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            // A removed queue's mapping under a reissued id (a record's ids
            // come round after `i32::MAX / msgmni` removals) is replaced
            // below by the new queue's file. (Removal marks the mapping
            // before it frees the record.)
            if !m.state().is_removed() {
                return Ok(self.handle(m.clone(), id));
            }
        }
        let m = match Mapped::open(&self.queue_path(id), self.inner.stamp) {
            Ok(m) => Arc::new(m),
            Err(FileError::Access) => return Err(CtlError::Access),
            Err(_) => return Err(CtlError::Invalid),
        };
        if m.state().header.id.load(Ordering::Relaxed) as u32 as i32 != id {
            return Err(CtlError::Invalid);
        }
        self.inner
            .cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, m.clone());
        Ok(self.handle(m, id))
    }

    /// Why the file of queue `id` cannot be used, naming the file (for the
    /// message that goes with a failed `msgget` or `msgctl`: the errno alone
    /// cannot say "this file is damaged"); `None` if it opens, or if no
    /// queue has this id.
    pub fn file_problem(&self, id: i32) -> Option<OpenError> {
        self.inner.table.live_index(id)?;
        let path = self.queue_path(id);
        match Mapped::open(&path, self.inner.stamp) {
            Ok(_) => None,
            Err(e) => {
                let kind = match e {
                    FileError::Access => OpenErrorKind::Access,
                    FileError::Io(_) => OpenErrorKind::Io,
                    FileError::Missing | FileError::Corrupt(_) => OpenErrorKind::Corrupt,
                };
                Some(OpenError::new(path, kind, e.to_string()))
            }
        }
    }

    /// The id of the live queue with `key` (not `IPC_PRIVATE`), if any,
    /// without opening its file.
    pub fn id_of_key(&self, key: i32) -> Option<i32> {
        if key == IPC_PRIVATE {
            return None;
        }
        let t = &self.inner.table;
        let high = (t.header.highest.load(Ordering::Relaxed) as usize).min(t.records.len());
        (0..high)
            .find(|&i| {
                let r = &t.records[i];
                r.state.load(Ordering::Acquire) == rstate::LIVE
                    && r.private.load(Ordering::Relaxed) == 0
                    && r.key.load(Ordering::Relaxed) as i32 == key
            })
            .map(|i| t.id_of(i))
    }

    /// Opens a queue file whatever its id-table record says (for `doctor`).
    pub(crate) fn open_file(&self, id: i32) -> Result<Mapped, FileError> {
        Mapped::open(&self.queue_path(id), self.inner.stamp)
    }

    /// The ids of every queue, in record order.
    pub fn ids(&self) -> Vec<i32> {
        let t = &self.inner.table;
        let high = (t.header.highest.load(Ordering::Relaxed) as usize).min(t.records.len());
        (0..high)
            .filter(|&i| t.records[i].state.load(Ordering::Acquire) == rstate::LIVE)
            .map(|i| t.id_of(i))
            .collect()
    }

    /// The queue in record `index` (MSG_STAT / MSG_STAT_ANY).
    pub fn queue_at(&self, index: usize) -> Result<Queue, CtlError> {
        let t = &self.inner.table;
        let r = t.records.get(index).ok_or(CtlError::Invalid)?;
        if r.state.load(Ordering::Acquire) != rstate::LIVE {
            return Err(CtlError::Invalid);
        }
        self.queue(t.id_of(index))
    }

    /// Namespace-wide figures (IPC_INFO / MSG_INFO).
    pub fn info(&self) -> NamespaceInfo {
        let mut info = NamespaceInfo {
            limits: self.limits(),
            queues: 0,
            messages: 0,
            bytes: 0,
            highest_index: -1,
        };
        let t = &self.inner.table;
        for id in self.ids() {
            info.queues += 1;
            info.highest_index = info
                .highest_index
                .max((id as usize % t.records.len()) as i32);
            if let Ok(q) = self.queue(id) {
                let st = q.mapped().state();
                // Exact counts: first finish what dead processes left.
                st.recover_dead();
                let tally = st.counter().load();
                info.messages += tally.qnum;
                info.bytes += tally.cbytes;
            }
        }
        info
    }

    /// IPC_RMID of `q` (the permission check is the caller's).
    pub(crate) fn remove(&self, q: &Queue) -> Result<(), CtlError> {
        let _locked = self.lock();
        let t = &self.inner.table;
        let idx = t.live_index(q.id()).ok_or(CtlError::Invalid)?;
        if !q.access().may_control() {
            return Err(CtlError::Permission);
        }
        t.records[idx]
            .state
            .store(rstate::REMOVING, Ordering::Release);
        kill_point(KillPoint::RemoveRecorded);
        self.finish_remove(idx);
        kill_point(KillPoint::RemoveFreed);
        Ok(())
    }

    /// Completes the removal of the queue in record `idx` (REMOVING): marks
    /// it removed (waking its sleepers), removes its file, frees the record.
    /// `false` if the file is another user's that the caller may not open
    /// or remove: the record stays REMOVING for a process that may.
    pub(crate) fn finish_remove(&self, idx: usize) -> bool {
        let t = &self.inner.table;
        let id = t.id_of(idx);
        let cached = self
            .inner
            .cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        let opened = cached
            .map(Ok)
            .unwrap_or_else(|| self.open_file(id).map(Arc::new));
        let marked = match opened {
            Ok(m) => {
                m.state().mark_removed();
                true
            }
            Err(e) => !matches!(e, FileError::Access),
        };
        kill_point(KillPoint::RemoveMarked);
        if !marked || !self.unlink_queue_file(id) {
            self.keep_stuck(idx);
            return false;
        }
        kill_point(KillPoint::RemoveUnlinked);
        t.free_record(idx);
        true
    }

    /// IPC_SET under the lock.
    pub(crate) fn set(&self, q: &Queue, set: QueueSet) -> Result<(), CtlError> {
        let _locked = self.lock();
        kill_point(KillPoint::SetLocked);
        let t = &self.inner.table;
        t.live_index(q.id()).ok_or(CtlError::Invalid)?;
        q.apply_set(set, &t.limits())
    }
}

/// Creates the namespace directory `dir` with mode `01777` (sticky and open
/// to all, like /dev/shm), in one step as other processes see it: made and
/// given its mode under a temporary name beside it (`.NAME.new.PID`), then
/// renamed into place, never over a directory made meanwhile (which is then
/// used). Made in place, it would exist for a moment with the mode the
/// creator's umask leaves (`0755`), and if the creator died then, no other
/// user could ever create a queue or the id table in it. A creator killed
/// before the rename leaves its empty temporary directory; the next creator
/// removes those of dead processes (when it may: sticky parents let only
/// their owner or root).
pub(crate) fn create_dir_1777(dir: &Path) -> std::io::Result<()> {
    let (parent, name) = match (dir.parent(), dir.file_name()) {
        (Some(p), Some(n)) => (p, n.to_string_lossy()),
        _ => return std::fs::create_dir(dir),
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let prefix = format!(".{name}.new.");
    if let Ok(entries) = std::fs::read_dir(parent) {
        for e in entries.flatten() {
            let pid = e.file_name().to_str().and_then(|n| {
                n.strip_prefix(prefix.as_str())
                    .and_then(|p| p.parse::<u32>().ok())
            });
            if pid.is_some_and(|pid| !crate::process::is_alive(pid, 0)) {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
    let tmp = parent.join(format!("{prefix}{}", crate::process::pid()));
    std::fs::create_dir(&tmp)?;
    kill_point(KillPoint::DirMade);
    let placed =
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).and_then(|()| {
            use rustix::fs::{renameat_with, RenameFlags, CWD};
            match renameat_with(CWD, &tmp, CWD, dir, RenameFlags::NOREPLACE) {
                // A file system without RENAME_NOREPLACE: a plain rename
                // replaces at worst an empty directory made meanwhile.
                Err(rustix::io::Errno::INVAL) => std::fs::rename(&tmp, dir),
                r => r.map_err(std::io::Error::from),
            }
        });
    match placed {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_dir(&tmp);
            // Made by another process meanwhile: use theirs.
            match std::fs::symlink_metadata(dir) {
                Ok(_) => Ok(()),
                Err(_) => Err(e),
            }
        }
    }
}

fn open_rw(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Creates the id table: written in full under a temporary name, then linked
/// into place, so that an opener never sees a half-made table.
fn create_table(dir: &Path) -> Result<std::fs::File, OpenError> {
    use OpenErrorKind as K;
    let limits =
        Limits::for_new_namespace(dir).map_err(|e| ns_error(&dir.join("config"), K::Invalid, e))?;
    let tmp = dir.join(format!(
        ".ids.{}.{}",
        crate::process::pid(),
        std::process::id()
    ));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o666)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(|e| ns_error(dir, K::Access, format!("cannot create id table: {e}")))?;
    let fail = |e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        ns_error(dir, K::Io, e.to_string())
    };
    let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o666));
    file.set_len(table_size(limits.msgmni) as u64)
        .map_err(fail)?;
    {
        let map = MmapOptions::new()
            .len(std::mem::size_of::<IdsHeader>())
            .map_raw(&file)
            .map_err(fail)?;
        // SAFETY: a fresh zero-filled shared mapping of a header's size; only
        // accessed through atomics, and only within this block.
        let header = unsafe { &*(map.as_ptr() as *const IdsHeader) };
        let table = IdTable {
            header,
            records: &[],
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            ^ (std::process::id() as u64) << 40;
        table.init(&limits, stamp | 1);
    }
    kill_point(KillPoint::TableWritten);
    let linked = std::fs::hard_link(&tmp, dir.join("ids"));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(file),
        // Another process made the table first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => open_rw(&dir.join("ids"))
            .map_err(|e| ns_error(&dir.join("ids"), K::Access, e.to_string())),
        Err(e) => Err(ns_error(dir, K::Io, e.to_string())),
    }
}

impl Namespace {
    /// A handle on queue `id`, mapped at `m`, that reaches back to this
    /// namespace for what the id table does.
    pub(crate) fn handle(&self, m: Arc<Mapped>, id: i32) -> Queue {
        Queue::new(Arc::new(self.clone()), m, id)
    }
}

impl Registry for Namespace {
    fn msgmni(&self) -> usize {
        Namespace::msgmni(self)
    }
    fn finish_half_done(&self, id: i32) {
        Namespace::finish_half_done(self, id)
    }
    fn set(&self, q: &Queue, set: QueueSet) -> Result<(), CtlError> {
        Namespace::set(self, q, set)
    }
    fn remove(&self, q: &Queue) -> Result<(), CtlError> {
        Namespace::remove(self, q)
    }
}
