//! `shmq doctor`: checks every file of a namespace, recovers what dead
//! processes still hold, removes stale files, and reports the damage it cannot
//! repair together with what to do about it.
//!
//! # What is checked, in order
//! 1. The directory: a real directory (not a symlink); world-writable only
//!    with the sticky bit.
//! 2. Temporary id tables `.ids.PID.PID` that a creator of the namespace left
//!    when it died (`namespace::create_table` writes the table under that name
//!    and links it into place).
//! 3. The id table `ids`, as every opener checks it (magic, layout version,
//!    size against `msgmni`, limits). If it cannot be opened, nothing else can
//!    be judged (which file is an orphan?) and the doctor stops there.
//! 4. Under the namespace's management lock (waited for at most
//!    [`DoctorOptions::lock_timeout`]; a dead holder is taken over): records
//!    left `CREATING` / `REMOVING` (rolled back / finished, as a process that
//!    takes the lock over from a dead holder does), records with an invalid
//!    state or sequence, the `highest` mark; then the files: a queue file
//!    `msq.ID` that no `LIVE` record points at is an orphan and is removed
//!    (nothing can reach it: a new queue in its record would replace it);
//!    other files are noted and left alone. With the lock held, no queue is
//!    being created or removed, so none of this races with `msgget` or
//!    `IPC_RMID`.
//! 5. Every `LIVE` queue (see `check`): its file as an opener validates it
//!    ([`FileDamage`]), its identity, its header fields, its attachment slots
//!    (a dead process caught mid-operation is recovered by the engine's own
//!    recovery, as a sleeper would after half a second; one that died between
//!    operations held only its slot, which every exited process leaves and
//!    the engine reclaims when slots run short, so it is no finding), and
//!    every index read from its type entries, nodes and data cells; FIFO
//!    walks are bounded by the number of nodes.
//!    When the queue is quiet (nobody mid-operation, before and after the
//!    walk), the accounting word is compared with what the FIFOs hold (and
//!    corrected), and nodes and cells that nobody holds (what a dead process
//!    held that recovery missed) are freed.
//!
//! # Never trusting the files
//! Nothing is mapped before it is validated the way [`Namespace::open`] and
//! `Mapped::open` validate, and every index read from a mapping is checked
//! against the geometry computed from validated limits. Walks are bounded.
//! Regions are scanned only where the file has data (`SEEK_DATA` /
//! `SEEK_HOLE`): holes read as zeros, which is every structure's free state,
//! and touching them through a shared mapping would allocate tmpfs pages for
//! nothing. The limit every shmq process shares remains: a file truncated
//! *while* it is mapped raises SIGBUS on the next access past its new end (see
//! the README).
//!
//! # Dry run
//! With [`DoctorOptions::dry_run`] nothing is written: no lock is taken, no
//! file removed, no slot recovered. Findings that a run would repair are
//! reported as such; checks that need a repair first (the accounting of a
//! queue that a dead process was using) are skipped until then.

mod check;
#[cfg(test)]
mod tests;

use crate::ids::rstate;
use crate::namespace::Namespace;
use crate::shm::FileError;
use crate::sync::Ordering;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use crate::shm::FileDamage;

const IDS_HEADER: usize = std::mem::size_of::<crate::ids::IdsHeader>();
const IDS_RECORD: usize = std::mem::size_of::<crate::ids::IdRecord>();

/// The reason of a [`Problem::NotChecked`] for a file the caller may not open.
const PERMISSION_DENIED: &str = "permission denied";

/// How [`Namespace::doctor`] runs.
#[derive(Clone, Debug)]
pub struct DoctorOptions {
    /// Report only: take no lock, remove no file, repair nothing.
    pub dry_run: bool,
    /// How long to wait for the namespace's management lock while a live
    /// process holds it (a dead holder is taken over at once).
    pub lock_timeout: Duration,
}

impl Default for DoctorOptions {
    fn default() -> Self {
        DoctorOptions {
            dry_run: false,
            lock_timeout: Duration::from_secs(2),
        }
    }
}

/// What a finding is about.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Subject {
    /// The namespace directory.
    Directory,
    /// The id table (`ids`).
    IdTable,
    /// Record `index` of the id table.
    Record {
        /// The record's index (`id % msgmni`).
        index: usize,
    },
    /// A file of the namespace directory.
    File {
        /// Its name in the directory.
        name: String,
    },
    /// A queue listed in the id table.
    Queue {
        /// The queue's id.
        id: i32,
        /// The queue's key, as its record has it.
        key: i32,
    },
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Directory => f.write_str("directory"),
            Subject::IdTable => f.write_str("id table"),
            Subject::Record { index } => write!(f, "record {index}"),
            Subject::File { name } => write!(f, "file {name}"),
            Subject::Queue { id, key } => write!(f, "queue {id} (key 0x{:08x})", *key as u32),
        }
    }
}

/// Where in a queue file a bad value was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Place {
    /// The header page.
    Header,
    /// Attachment slot `n`.
    Slot(usize),
    /// Type entry `n`.
    Entry(u32),
    /// Message node `n`.
    Node(u32),
    /// Data cell `index` of data class `class`.
    Cell {
        /// The data class.
        class: usize,
        /// The cell's index in its class.
        index: u32,
    },
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Header => f.write_str("header"),
            Place::Slot(n) => write!(f, "slot {n}"),
            Place::Entry(n) => write!(f, "entry {n}"),
            Place::Node(n) => write!(f, "node {n}"),
            Place::Cell { class, index } => write!(f, "cell {index} of class {class}"),
        }
    }
}

/// What a dead slot holder was doing, from its slot's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Activity {
    /// Between operations (it held only the slot).
    Idle,
    /// Sending a message of this many bytes.
    Sending {
        /// Text length.
        bytes: u64,
    },
    /// Receiving a message of this many bytes (which is lost, as when a
    /// process dies as `msgrcv` returns).
    Receiving {
        /// Text length.
        bytes: u64,
    },
    /// Giving back the accounting of a message that was never linked.
    Unreserving {
        /// Text length.
        bytes: u64,
    },
    /// Recovering the slot of another dead process.
    Recovering,
    /// A phase value no build writes.
    Unknown {
        /// The raw phase word.
        phase: u64,
    },
}

impl fmt::Display for Activity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activity::Idle => f.write_str("idle"),
            Activity::Sending { bytes } => write!(f, "sending {bytes} bytes"),
            Activity::Receiving { bytes } => write!(f, "receiving {bytes} bytes"),
            Activity::Unreserving { bytes } => {
                write!(f, "taking back a reservation of {bytes} bytes")
            }
            Activity::Recovering => f.write_str("recovering another slot"),
            Activity::Unknown { phase } => write!(f, "unknown phase {phase:#x}"),
        }
    }
}

/// How a type's FIFO is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FifoFault {
    /// A link names a node beyond the pool.
    OutOfRange {
        /// The raw link.
        link: u64,
    },
    /// The walk came back to a node it had passed: a cycle.
    Cycle {
        /// The node reached twice.
        node: u32,
    },
    /// A node is also reachable from another type's FIFO.
    Shared {
        /// The node.
        node: u32,
    },
    /// A link names an incarnation of a node that is gone (freed or reused).
    StaleLink {
        /// The node.
        node: u32,
    },
    /// A node's status cannot be where it is (e.g. a free node, or a queued
    /// dummy).
    Status {
        /// The node.
        node: u32,
        /// Its status.
        status: u32,
    },
    /// A queued node names another entry as its own.
    ForeignNode {
        /// The node.
        node: u32,
    },
    /// A queued node's type is not its entry's.
    TypeMismatch {
        /// The node.
        node: u32,
        /// The node's `mtype`.
        mtype: i64,
    },
    /// The end of the FIFO carries another node's generation (senders of
    /// this type would fail).
    BadEnd {
        /// The last node.
        node: u32,
    },
    /// The tail is not on the list from the head.
    TailUnreachable,
    /// A live entry is not listed under its type's hash: lookups by type miss it.
    Unpublished,
}

impl fmt::Display for FifoFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FifoFault::OutOfRange { link } => write!(f, "link {link:#x} beyond the node pool"),
            FifoFault::Cycle { node } => write!(f, "cycle through node {node}"),
            FifoFault::Shared { node } => write!(f, "node {node} also in another FIFO"),
            FifoFault::StaleLink { node } => write!(f, "link to a freed or reused node {node}"),
            FifoFault::Status { node, status } => {
                write!(f, "node {node} has status {status} where it cannot")
            }
            FifoFault::ForeignNode { node } => write!(f, "node {node} belongs to another entry"),
            FifoFault::TypeMismatch { node, mtype } => {
                write!(f, "node {node} has type {mtype}")
            }
            FifoFault::BadEnd { node } => {
                write!(f, "end link of node {node} has the wrong generation")
            }
            FifoFault::TailUnreachable => f.write_str("tail not reachable from head"),
            FifoFault::Unpublished => f.write_str("entry missing from its hash neighbourhood"),
        }
    }
}

/// Which pool lost capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolKind {
    /// Message nodes.
    Nodes,
    /// Data cells of this many bytes.
    Cells {
        /// Cell size in bytes.
        size: usize,
    },
}

/// How a record's out-of-range sequence number is repaired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqFix {
    /// A free record: the number is brought back in range.
    Wrap,
    /// A live record: the number is taken back from the valid queue file
    /// that names this record (`msq.ID`).
    FromFile {
        /// The id in the file.
        id: i32,
    },
    /// A live record with no valid file: the record is freed (its queue
    /// cannot be reached anyway).
    Free,
}

/// A record left half-changed by a dead lock holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stuck {
    /// A queue creation that did not finish.
    Creating,
    /// A queue removal that did not finish.
    Removing,
}

/// What is wrong. `Display` gives the one-line description.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// No namespace in this directory (nothing to check).
    NoNamespace,
    /// The namespace path exists but is not a directory.
    NotADirectory,
    /// The directory or id table cannot be read.
    Unreadable {
        /// The error.
        error: String,
    },
    /// The directory is world-writable without the sticky bit: any user can
    /// delete any queue's file.
    NotSticky {
        /// The directory's mode.
        mode: u32,
    },
    /// The id table cannot be opened: no queue of the namespace is usable.
    IdTableDamaged {
        /// Why.
        detail: String,
    },
    /// The management lock is held by a dead process (creations and removals
    /// wait for it until someone takes it over).
    LockHolderDead {
        /// The holder's pid.
        pid: u32,
    },
    /// A live process kept the management lock longer than the doctor waited:
    /// records and stale files were not checked.
    LockBusy {
        /// The holder's pid.
        pid: u32,
    },
    /// A record was left half-changed by a dead process.
    RecordStuck {
        /// What was being done.
        state: Stuck,
    },
    /// A record's state word holds no valid state.
    RecordInvalid {
        /// The raw state.
        state: u32,
        /// Whether a valid queue file for the record exists (the record is
        /// then restored as live; otherwise it is freed).
        restorable: bool,
    },
    /// A record's sequence number would give out-of-range ids.
    RecordSeq {
        /// The sequence number.
        seq: u32,
        /// The largest valid one.
        max: u32,
        /// How it is repaired.
        fix: SeqFix,
    },
    /// The id table's `highest` mark misses live records (or is beyond the
    /// table): lookups by key and listings skip them.
    HighestWrong {
        /// The mark.
        value: u64,
        /// What it should be.
        expected: u64,
    },
    /// A queue file that no live record points at.
    OrphanFile {
        /// Messages it still held, if it could be read.
        messages: Option<u64>,
    },
    /// A temporary id table left by a dead process.
    StaleTempFile {
        /// The process that made it.
        pid: u32,
    },
    /// A file shmq does not make (left alone).
    UnknownFile,
    /// A live queue's file is missing (the queue is gone).
    FileMissing,
    /// A live queue's file is not a valid queue file.
    FileDamaged {
        /// Why.
        damage: FileDamage,
    },
    /// The queue could not be checked.
    NotChecked {
        /// Why.
        reason: String,
    },
    /// The queue file names another queue id.
    IdMismatch {
        /// The id in the file.
        found: u64,
    },
    /// The queue file names another key than its record.
    KeyMismatch {
        /// The key in the file.
        found: i32,
    },
    /// The queue file is marked removed, but its record still lists it.
    RemovedButListed,
    /// `qbytes` is above the largest the queue was built for.
    QbytesTooLarge {
        /// The value.
        qbytes: u64,
        /// The largest the pools can hold.
        max: u64,
    },
    /// The header's mark of the highest slot in use is wrong.
    SlotsHighWrong {
        /// The mark.
        value: u64,
        /// What it should be.
        expected: u64,
    },
    /// A value read from the queue is out of range.
    BadField {
        /// Where.
        place: Place,
        /// Which field.
        field: &'static str,
        /// The value.
        value: u64,
    },
    /// An attachment slot is held by a dead process that was in the middle
    /// of an operation. (A dead process's slot between operations holds
    /// nothing else; it is reclaimed without a finding.)
    DeadHolder {
        /// The slot.
        slot: usize,
        /// The dead process.
        pid: u32,
        /// What it was doing.
        doing: Activity,
    },
    /// A type's FIFO is broken.
    FifoBroken {
        /// The type entry.
        entry: u32,
        /// The type.
        mtype: i64,
        /// How.
        fault: FifoFault,
    },
    /// A type holds messages but its non-empty bit is clear: type-0 and
    /// negative-type receivers miss them.
    NonemptyBitMissing {
        /// The type entry.
        entry: u32,
        /// The type.
        mtype: i64,
    },
    /// The accounting word disagrees with what the FIFOs hold.
    AccountingWrong {
        /// Messages it counts.
        qnum: u64,
        /// Bytes it counts.
        cbytes: u64,
        /// Messages queued.
        queued: u64,
        /// Bytes queued.
        bytes: u64,
    },
    /// Nodes or cells that nobody holds and no FIFO reaches: lost capacity
    /// (what a dead process held that recovery missed, or damage).
    Leaked {
        /// Which pool.
        pool: PoolKind,
        /// How many.
        count: usize,
    },
    /// Free cells hidden from allocators by stale bitmap bits.
    HiddenFree {
        /// How many.
        count: usize,
    },
    /// Operations were in progress on every attempt: the cross-checks that
    /// need a quiet queue (FIFOs against accounting, leaks) were skipped.
    Busy,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NoNamespace => f.write_str("no namespace here, nothing to check"),
            Problem::NotADirectory => f.write_str("not a directory"),
            Problem::Unreadable { error } => write!(f, "cannot be read: {error}"),
            Problem::NotSticky { mode } => write!(
                f,
                "mode {mode:04o}: world-writable without the sticky bit, so any user can delete any queue"
            ),
            Problem::IdTableDamaged { detail } => f.write_str(detail),
            Problem::LockHolderDead { pid } => {
                write!(f, "management lock held by dead process {pid}")
            }
            Problem::LockBusy { pid } => write!(
                f,
                "management lock held by live process {pid} all along: records and stale files not checked"
            ),
            Problem::RecordStuck { state: Stuck::Creating } => {
                f.write_str("creation left half done by a dead process")
            }
            Problem::RecordStuck { state: Stuck::Removing } => {
                f.write_str("removal left half done by a dead process")
            }
            Problem::RecordInvalid { state, .. } => write!(f, "invalid state {state:#x}"),
            Problem::RecordSeq { seq, max, .. } => {
                write!(f, "sequence number {seq} above {max} (ids would overflow)")
            }
            Problem::HighestWrong { value, expected } => {
                write!(f, "highest-record mark {value}, should be {expected}")
            }
            Problem::OrphanFile { messages } => {
                f.write_str("queue file that no live record points at")?;
                match messages {
                    Some(0) | None => Ok(()),
                    Some(n) => write!(f, " (held {n} unreachable messages)"),
                }
            }
            Problem::StaleTempFile { pid } => {
                write!(f, "temporary id table left by dead process {pid}")
            }
            Problem::UnknownFile => f.write_str("not an shmq file"),
            Problem::FileMissing => f.write_str("its file is missing (the queue is gone)"),
            Problem::FileDamaged { damage } => write!(f, "file damaged: {damage}"),
            Problem::NotChecked { reason } => write!(f, "not checked: {reason}"),
            Problem::IdMismatch { found } => write!(f, "its file says it is queue {found}"),
            Problem::KeyMismatch { found } => {
                write!(f, "its file says its key is 0x{:08x}", *found as u32)
            }
            Problem::RemovedButListed => {
                f.write_str("removed (IPC_RMID) in its file but still listed")
            }
            Problem::QbytesTooLarge { qbytes, max } => {
                write!(f, "qbytes {qbytes} above the {max} it was built for")
            }
            Problem::SlotsHighWrong { value, expected } => {
                write!(f, "highest-slot mark {value}, should be {expected}")
            }
            Problem::BadField {
                place,
                field,
                value,
            } => write!(f, "{place}: {field} {value:#x} out of range"),
            Problem::DeadHolder { slot, pid, doing } => {
                write!(f, "slot {slot} held by dead process {pid} ({doing})")
            }
            Problem::FifoBroken {
                entry,
                mtype,
                fault,
            } => write!(f, "FIFO of type {mtype} (entry {entry}) broken: {fault}"),
            Problem::NonemptyBitMissing { entry, mtype } => write!(
                f,
                "type {mtype} (entry {entry}) holds messages but is missing from the non-empty index"
            ),
            Problem::AccountingWrong {
                qnum,
                cbytes,
                queued,
                bytes,
            } => write!(
                f,
                "accounting says {qnum} messages / {cbytes} bytes, the FIFOs hold {queued} / {bytes}"
            ),
            Problem::Leaked { pool, count } => match pool {
                PoolKind::Nodes => write!(f, "{count} message nodes held by nobody"),
                PoolKind::Cells { size } => {
                    write!(f, "{count} data cells of {size} bytes held by nobody")
                }
            },
            Problem::HiddenFree { count } => {
                write!(f, "{count} free cells hidden from allocators")
            }
            Problem::Busy => f.write_str(
                "busy on every attempt: accounting and leak cross-checks skipped (run again when quiet)",
            ),
        }
    }
}

impl Problem {
    /// A stable snake_case name for scripts (`--json`'s `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::NoNamespace => "no_namespace",
            Problem::NotADirectory => "not_a_directory",
            Problem::Unreadable { .. } => "unreadable",
            Problem::NotSticky { .. } => "not_sticky",
            Problem::IdTableDamaged { .. } => "id_table_damaged",
            Problem::LockHolderDead { .. } => "lock_holder_dead",
            Problem::LockBusy { .. } => "lock_busy",
            Problem::RecordStuck { .. } => "record_stuck",
            Problem::RecordInvalid { .. } => "record_invalid",
            Problem::RecordSeq { .. } => "record_seq",
            Problem::HighestWrong { .. } => "highest_wrong",
            Problem::OrphanFile { .. } => "orphan_file",
            Problem::StaleTempFile { .. } => "stale_temp_file",
            Problem::UnknownFile => "unknown_file",
            Problem::FileMissing => "file_missing",
            Problem::FileDamaged { .. } => "file_damaged",
            Problem::NotChecked { .. } => "not_checked",
            Problem::IdMismatch { .. } => "id_mismatch",
            Problem::KeyMismatch { .. } => "key_mismatch",
            Problem::RemovedButListed => "removed_but_listed",
            Problem::QbytesTooLarge { .. } => "qbytes_too_large",
            Problem::SlotsHighWrong { .. } => "slots_high_wrong",
            Problem::BadField { .. } => "bad_field",
            Problem::DeadHolder { .. } => "dead_holder",
            Problem::FifoBroken { .. } => "fifo_broken",
            Problem::NonemptyBitMissing { .. } => "nonempty_bit_missing",
            Problem::AccountingWrong { .. } => "accounting_wrong",
            Problem::Leaked { .. } => "leaked",
            Problem::HiddenFree { .. } => "hidden_free",
            Problem::Busy => "busy",
        }
    }

    /// What a repair of this problem does, as a past participle.
    fn remedy(&self) -> &'static str {
        match self {
            Problem::LockHolderDead { .. } => "taken over",
            Problem::RecordStuck {
                state: Stuck::Creating,
            } => "rolled back",
            Problem::RecordStuck {
                state: Stuck::Removing,
            }
            | Problem::RemovedButListed => "removal finished",
            Problem::RecordInvalid {
                restorable: true, ..
            } => "restored as live (its file is a valid queue)",
            Problem::RecordInvalid { .. } => "freed",
            Problem::RecordSeq {
                fix: SeqFix::FromFile { .. },
                ..
            } => "corrected from its file",
            Problem::RecordSeq {
                fix: SeqFix::Free, ..
            } => "freed (no valid file holds its queue)",
            Problem::FileMissing => "record freed",
            Problem::OrphanFile { .. } | Problem::StaleTempFile { .. } => "removed",
            Problem::DeadHolder { .. } => "recovered",
            Problem::Leaked { .. } => "freed",
            Problem::NonemptyBitMissing { .. } => "set",
            Problem::QbytesTooLarge { .. } => "lowered to the maximum",
            Problem::HiddenFree { .. } => "made visible",
            _ => "corrected",
        }
    }
}

/// What to do about a problem the doctor does not repair.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Advice {
    /// The queue is unusable: remove it with `shmq doctor --remove ID`.
    RemoveQueue {
        /// The queue id.
        id: i32,
    },
    /// The queue still works but is inconsistent: receive what is needed,
    /// then remove it.
    DrainAndRemove {
        /// The queue id.
        id: i32,
    },
    /// The id table is unusable: move it aside.
    ResetIdTable {
        /// The table's path.
        path: PathBuf,
    },
    /// Give the directory the sticky bit.
    SetSticky {
        /// The directory.
        dir: PathBuf,
    },
    /// The path is not a namespace directory: move it aside.
    MoveAside {
        /// The path.
        path: PathBuf,
    },
    /// Run the doctor as the file's owner or root.
    RunAsOwnerOrRoot,
    /// A live process holds the management lock.
    CheckLockHolder {
        /// Its pid.
        pid: u32,
    },
}

impl fmt::Display for Advice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Advice::RemoveQueue { id } => write!(
                f,
                "remove it with `shmq doctor --remove {id}` (its messages are lost)"
            ),
            Advice::DrainAndRemove { id } => write!(
                f,
                "receive what you still need from it, then `shmq rm -q {id}` (the rest is lost)"
            ),
            Advice::ResetIdTable { path } => write!(
                f,
                "move {} aside: the next use makes an empty table and `shmq doctor` then removes the old queue files (every queue is lost)",
                path.display()
            ),
            Advice::SetSticky { dir } => write!(f, "`chmod +t {}`", dir.display()),
            Advice::MoveAside { path } => write!(
                f,
                "move {} aside; shmq makes a fresh namespace on next use",
                path.display()
            ),
            Advice::RunAsOwnerOrRoot => f.write_str("run `shmq doctor` as its owner or root"),
            Advice::CheckLockHolder { pid } => write!(
                f,
                "let process {pid} finish (is it stopped? `ps -o stat= -p {pid}`) or kill it, then run `shmq doctor` again"
            ),
        }
    }
}

/// What became of a finding.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// For information; nothing is wrong.
    Note,
    /// Repaired.
    Repaired,
    /// Would be repaired (dry run).
    WouldRepair,
    /// Not repaired automatically: what to do.
    NeedsAction(Advice),
    /// A repair was attempted and failed (why).
    RepairFailed(String),
    /// The namespace is unusable until this is fixed; nothing else was checked.
    Fatal(Advice),
}

/// One finding: what it is about, what is wrong, what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What it is about.
    pub subject: Subject,
    /// What is wrong.
    pub problem: Problem,
    /// What was done, or is to be done.
    pub outcome: Outcome,
}

impl Finding {
    /// The first word of its line: `note`, `fixed`, `would-fix`, `damaged`,
    /// `failed` or `unusable`.
    pub fn status(&self) -> &'static str {
        match self.outcome {
            Outcome::Note => "note",
            Outcome::Repaired => "fixed",
            Outcome::WouldRepair => "would-fix",
            Outcome::NeedsAction(_) => "damaged",
            Outcome::RepairFailed(_) => "failed",
            Outcome::Fatal(_) => "unusable",
        }
    }

    /// What was done or is to be done, in words (empty for notes without one).
    pub fn action(&self) -> String {
        match &self.outcome {
            Outcome::Note => match &self.problem {
                Problem::UnknownFile => "left alone".into(),
                Problem::NotChecked { reason } if reason == PERMISSION_DENIED => {
                    Advice::RunAsOwnerOrRoot.to_string()
                }
                _ => String::new(),
            },
            Outcome::Repaired => self.problem.remedy().into(),
            Outcome::WouldRepair => format!("would be {}", self.problem.remedy()),
            Outcome::NeedsAction(a) | Outcome::Fatal(a) => a.to_string(),
            Outcome::RepairFailed(why) => format!("not {}: {why}", self.problem.remedy()),
        }
    }
}

impl fmt::Display for Finding {
    /// One line: `STATUS: SUBJECT: PROBLEM[; ACTION]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.status(), self.subject, self.problem)?;
        let action = self.action();
        if !action.is_empty() {
            write!(f, "; {action}")?;
        }
        Ok(())
    }
}

/// The verdict on a namespace, from the worst finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    /// Nothing wrong (notes only).
    Healthy,
    /// Problems were found and all repaired (in a dry run: all repairable).
    Repaired,
    /// Damage remains that needs someone: each such finding says what to do.
    Damaged,
    /// The namespace cannot be used at all (its directory or id table).
    Unusable,
}

/// Everything a doctor run found.
#[derive(Clone, Debug)]
pub struct DoctorReport {
    /// The namespace directory.
    pub dir: PathBuf,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Live queues checked (damaged ones included).
    pub queues_checked: usize,
    /// The findings, in a stable order: directory, temporary files, id table,
    /// records, files, then queues by record.
    pub findings: Vec<Finding>,
}

impl DoctorReport {
    /// The verdict.
    pub fn health(&self) -> Health {
        self.findings
            .iter()
            .map(|f| match f.outcome {
                Outcome::Note => Health::Healthy,
                Outcome::Repaired | Outcome::WouldRepair => Health::Repaired,
                Outcome::NeedsAction(_) | Outcome::RepairFailed(_) => Health::Damaged,
                Outcome::Fatal(_) => Health::Unusable,
            })
            .max()
            .unwrap_or(Health::Healthy)
    }
}

/// Why [`Namespace::remove_damaged`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemoveError {
    /// No queue has this id (EINVAL).
    Invalid,
    /// The caller may not remove it: not its owner, creator or root, or the
    /// OS refused to delete its file (EPERM).
    Permission,
    /// A live process held the management lock all along (EBUSY).
    Busy,
    /// The file could not be deleted for another reason (EIO).
    Io,
}

impl RemoveError {
    /// The errno of this error.
    pub fn errno(self) -> i32 {
        match self {
            RemoveError::Invalid => libc::EINVAL,
            RemoveError::Permission => libc::EPERM,
            RemoveError::Busy => libc::EBUSY,
            RemoveError::Io => libc::EIO,
        }
    }
}

impl fmt::Display for RemoveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RemoveError::Invalid => "no queue with this id (EINVAL)",
            RemoveError::Permission => "operation not permitted (EPERM)",
            RemoveError::Busy => "the namespace lock is held by a live process (EBUSY)",
            RemoveError::Io => "its file could not be deleted (EIO)",
        })
    }
}

impl std::error::Error for RemoveError {}

/// The findings being gathered, and how to act on them.
struct Doctor<'o> {
    dir: PathBuf,
    opts: &'o DoctorOptions,
    findings: Vec<Finding>,
    queues_checked: usize,
}

impl Doctor<'_> {
    fn push(&mut self, subject: Subject, problem: Problem, outcome: Outcome) {
        self.findings.push(Finding {
            subject,
            problem,
            outcome,
        });
    }

    /// Runs `repair` unless this is a dry run, and records the outcome.
    fn repair(
        &mut self,
        subject: Subject,
        problem: Problem,
        repair: impl FnOnce() -> Result<(), String>,
    ) {
        let outcome = if self.opts.dry_run {
            Outcome::WouldRepair
        } else {
            match repair() {
                Ok(()) => Outcome::Repaired,
                Err(why) => Outcome::RepairFailed(why),
            }
        };
        self.push(subject, problem, outcome);
    }

    fn report(self) -> DoctorReport {
        DoctorReport {
            dir: self.dir,
            dry_run: self.opts.dry_run,
            queues_checked: self.queues_checked,
            findings: self.findings,
        }
    }
}

/// What a directory entry is, by its name.
#[derive(Clone, Debug, PartialEq, Eq)]
enum FileKind {
    IdTable,
    Config,
    Queue(i32),
    TempTable(u32),
    Unknown,
}

fn classify(name: &str) -> FileKind {
    fn decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
        let canonical = !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'));
        canonical.then(|| s.parse().ok()).flatten()
    }
    match name {
        "ids" => FileKind::IdTable,
        "config" => FileKind::Config,
        _ => {
            if let Some(id) = name.strip_prefix("msq.").and_then(decimal::<i32>) {
                return FileKind::Queue(id);
            }
            // `.ids.<pid>.<pid>` (see `namespace::create_table`).
            if let Some((a, b)) = name
                .strip_prefix(".ids.")
                .and_then(|rest| rest.split_once('.'))
            {
                if let (Some(pid), Some(_)) = (decimal::<u32>(a), decimal::<u32>(b)) {
                    return FileKind::TempTable(pid);
                }
            }
            FileKind::Unknown
        }
    }
}

/// The names in the directory, sorted, or why they cannot be read.
fn list_dir(dir: &Path) -> Result<Vec<String>, std::io::Error> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

fn unlink(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err("permission denied (run as its owner or root)".into())
        }
        Err(e) => Err(e.to_string()),
    }
}

impl Namespace {
    /// Checks the namespace in `dir` without creating it: see the module
    /// documentation of `doctor` for what is checked and repaired.
    /// Never fails: what cannot be checked is itself a finding.
    pub fn doctor_dir(dir: impl AsRef<Path>, opts: &DoctorOptions) -> DoctorReport {
        let dir = dir.as_ref();
        let mut d = Doctor {
            dir: dir.to_owned(),
            opts,
            findings: Vec::new(),
            queues_checked: 0,
        };
        let Some(names) = check_directory(&mut d) else {
            return d.report();
        };
        for name in &names {
            if let FileKind::TempTable(pid) = classify(name) {
                check_temp_file(&mut d, name, pid);
            }
        }
        let has_queue_files = names
            .iter()
            .any(|n| matches!(classify(n), FileKind::Queue(_)));
        if !names.iter().any(|n| n == "ids") {
            if !has_queue_files {
                // Never used (or only by a creator that died early): fine.
                return d.report();
            }
            if opts.dry_run {
                // Every queue file is an orphan: there is no table at all.
                for name in &names {
                    if matches!(classify(name), FileKind::Queue(_)) {
                        d.push(
                            Subject::File { name: name.clone() },
                            Problem::OrphanFile { messages: None },
                            Outcome::WouldRepair,
                        );
                    }
                }
                return d.report();
            }
            // Make the table, so that orphans are removed under its lock
            // (never racing with a creator that makes it meanwhile).
        }
        if let Ok(meta) = std::fs::symlink_metadata(dir.join("ids")) {
            let wrong = if meta.file_type().is_symlink() {
                Some("is a symbolic link")
            } else if !meta.is_file() {
                Some("not a regular file")
            } else {
                None
            };
            if let Some(what) = wrong {
                d.push(
                    Subject::IdTable,
                    Problem::IdTableDamaged {
                        detail: what.into(),
                    },
                    Outcome::Fatal(Advice::ResetIdTable {
                        path: dir.join("ids"),
                    }),
                );
                return d.report();
            }
        }
        match Namespace::open(dir) {
            Ok(ns) => ns.doctor_open(d, &names),
            Err(e) => {
                let problem = if e.kind == crate::error::OpenErrorKind::Access {
                    Problem::Unreadable { error: e.detail }
                } else {
                    Problem::IdTableDamaged { detail: e.detail }
                };
                let advice = match problem {
                    Problem::Unreadable { .. } => Advice::RunAsOwnerOrRoot,
                    _ => Advice::ResetIdTable {
                        path: dir.join("ids"),
                    },
                };
                d.push(Subject::IdTable, problem, Outcome::Fatal(advice));
                d.report()
            }
        }
    }

    /// Checks this namespace: see [`Namespace::doctor_dir`].
    pub fn doctor(&self, opts: &DoctorOptions) -> DoctorReport {
        Namespace::doctor_dir(self.dir(), opts)
    }

    fn doctor_open(&self, mut d: Doctor<'_>, names: &[String]) -> DoctorReport {
        let locked = if d.opts.dry_run {
            check_lock_dry(&mut d, self);
            None
        } else {
            let deadline = Instant::now() + d.opts.lock_timeout;
            let holder = self.table().header.lock.load(Ordering::Relaxed) as u32;
            match self.lock_until(deadline) {
                Some((guard, took_over)) => {
                    if took_over {
                        d.push(
                            Subject::IdTable,
                            Problem::LockHolderDead { pid: holder },
                            Outcome::Repaired,
                        );
                    }
                    Some(guard)
                }
                None => {
                    let pid = self.table().header.lock.load(Ordering::Relaxed) as u32;
                    d.push(
                        Subject::IdTable,
                        Problem::LockBusy { pid },
                        Outcome::NeedsAction(Advice::CheckLockHolder { pid }),
                    );
                    None
                }
            }
        };
        // With the lock (or in a dry run, reporting only), the records and
        // the files; with a busy lock, neither can be judged safely.
        if locked.is_some() || d.opts.dry_run {
            check_records(&mut d, self, names);
            check_files(&mut d, self, names);
        }
        drop(locked);
        let t = self.table();
        // Only records in the file's data: the rest are zeros (free), and
        // reading them through the mapping would allocate tmpfs pages.
        let data = check::DataMap::of_path(&d.dir.join("ids"));
        for idx in data.indices(IDS_HEADER, IDS_RECORD, t.records.len()) {
            let r = &t.records[idx];
            if r.state.load(Ordering::Acquire) == rstate::LIVE {
                let (id, key) = (t.id_of(idx), r.key.load(Ordering::Relaxed) as i32);
                check::queue(&mut d, self, idx, id, key);
            }
        }
        d.report()
    }

    /// Removes queue `id` whatever the state of its file: the way out for a
    /// queue whose file is damaged (which `IPC_RMID` cannot open). A queue
    /// whose file is valid needs the rights `IPC_RMID` needs; a damaged one,
    /// the right to delete its file (its owner or root, the directory being
    /// sticky). Its messages are lost; processes blocked on it get EIDRM.
    pub fn remove_damaged(&self, id: i32, lock_timeout: Duration) -> Result<(), RemoveError> {
        let t = self.table();
        if id < 0 {
            return Err(RemoveError::Invalid);
        }
        let n = t.records.len();
        let (idx, seq) = (id as usize % n, id as usize / n);
        let (_guard, took_over) = self
            .lock_until(Instant::now() + lock_timeout)
            .ok_or(RemoveError::Busy)?;
        if took_over {
            repair_records_silently(self);
        }
        let r = &t.records[idx];
        let state = r.state.load(Ordering::Acquire);
        if state == rstate::FREE || r.seq.load(Ordering::Relaxed) as usize != seq {
            return Err(RemoveError::Invalid);
        }
        let path = self.queue_path(id);
        let mapped = self.open_file(id).ok().map(std::sync::Arc::new);
        if let Some(m) = &mapped {
            let q = self.handle(m.clone(), id);
            if !q.perms().may_control() {
                return Err(RemoveError::Permission);
            }
        }
        // A directory in a queue file's place is removed only when empty:
        // its contents are not ours to delete.
        let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        let removed = if is_dir {
            std::fs::remove_dir(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(RemoveError::Permission)
            }
            Err(_) => return Err(RemoveError::Io),
        }
        if let Some(m) = &mapped {
            m.state().mark_removed();
        }
        r.state.store(rstate::REMOVING, Ordering::Release);
        self.finish_remove(idx);
        Ok(())
    }
}

/// Under a lock taken over from a dead holder, outside a doctor run: what
/// `Namespace::lock` does.
fn repair_records_silently(ns: &Namespace) {
    let t = ns.table();
    for idx in 0..t.records.len() {
        match t.records[idx].state.load(Ordering::Acquire) {
            rstate::CREATING => {
                ns.rollback_create(idx);
            }
            rstate::REMOVING => {
                ns.finish_remove(idx);
            }
            _ => {}
        }
    }
}

/// The directory: returns its names, or `None` when nothing more can be checked.
fn check_directory(d: &mut Doctor<'_>) -> Option<Vec<String>> {
    use std::os::unix::fs::PermissionsExt;
    let dir = d.dir.clone();
    let meta = match std::fs::symlink_metadata(&dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            d.push(Subject::Directory, Problem::NoNamespace, Outcome::Note);
            return None;
        }
        Err(e) => {
            d.push(
                Subject::Directory,
                Problem::Unreadable {
                    error: e.to_string(),
                },
                Outcome::Fatal(Advice::RunAsOwnerOrRoot),
            );
            return None;
        }
    };
    if !meta.is_dir() {
        d.push(
            Subject::Directory,
            Problem::NotADirectory,
            Outcome::Fatal(Advice::MoveAside { path: dir }),
        );
        return None;
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        d.push(
            Subject::Directory,
            Problem::NotSticky { mode },
            Outcome::NeedsAction(Advice::SetSticky { dir: dir.clone() }),
        );
    }
    match list_dir(&dir) {
        Ok(names) => Some(names),
        Err(e) => {
            d.push(
                Subject::Directory,
                Problem::Unreadable {
                    error: e.to_string(),
                },
                Outcome::Fatal(Advice::RunAsOwnerOrRoot),
            );
            None
        }
    }
}

/// A temporary id table `.ids.PID.PID`: stale once its maker is dead.
fn check_temp_file(d: &mut Doctor<'_>, name: &str, pid: u32) {
    if crate::process::is_alive(pid, 0) {
        return; // being written right now (or the pid was reused: next time)
    }
    let path = d.dir.join(name);
    d.repair(
        Subject::File { name: name.into() },
        Problem::StaleTempFile { pid },
        || unlink(&path),
    );
}

/// In a dry run: is the lock held by a dead process?
fn check_lock_dry(d: &mut Doctor<'_>, ns: &Namespace) {
    let h = ns.table().header;
    let holder = h.lock.load(Ordering::Acquire);
    if holder != 0 && !ns.table().holder_alive(holder) {
        d.push(
            Subject::IdTable,
            Problem::LockHolderDead { pid: holder as u32 },
            Outcome::WouldRepair,
        );
    }
}

/// Whether a dry run may judge records: no live process holds the lock (a
/// record it is changing would look stuck).
fn lock_free_or_dead(ns: &Namespace) -> bool {
    let holder = ns.table().header.lock.load(Ordering::Acquire);
    holder == 0 || !ns.table().holder_alive(holder)
}

/// The valid queue file among `names` that belongs to record `idx` with key
/// `key`, if any: its id.
fn file_of_record(ns: &Namespace, names: &[String], idx: usize, key: u32) -> Option<i32> {
    let n = ns.table().records.len();
    names.iter().find_map(|name| match classify(name) {
        FileKind::Queue(id) if id as usize % n == idx => {
            let m = ns.open_file(id).ok()?;
            let h = m.state().header;
            (h.id.load(Ordering::Relaxed) as u32 as i32 == id
                && h.key.load(Ordering::Relaxed) as u32 == key
                && !m.state().is_removed())
            .then_some(id)
        }
        _ => None,
    })
}

/// The records, under the lock (or in a dry run, reporting only).
fn check_records(d: &mut Doctor<'_>, ns: &Namespace, names: &[String]) {
    let t = ns.table();
    let n = t.records.len();
    let judge_stuck = !d.opts.dry_run || lock_free_or_dead(ns);
    let max_seq = ((i32::MAX as usize / n) as u32).saturating_sub(1);
    let mut last_used = 0u64;
    let ids = check::DataMap::of_path(&d.dir.join("ids"));
    for idx in ids.indices(IDS_HEADER, IDS_RECORD, n) {
        let r = &t.records[idx];
        let state = r.state.load(Ordering::Acquire);
        let seq = r.seq.load(Ordering::Relaxed);
        let subject = Subject::Record { index: idx };
        match state {
            rstate::FREE => {
                if seq > max_seq {
                    let problem = Problem::RecordSeq {
                        seq,
                        max: max_seq,
                        fix: SeqFix::Wrap,
                    };
                    d.repair(subject, problem, || {
                        r.seq.store(seq % (max_seq + 1), Ordering::Relaxed);
                        Ok(())
                    });
                }
                continue;
            }
            rstate::LIVE if seq > max_seq => {
                // Its id overflows: find its file by record and key instead.
                let key = r.key.load(Ordering::Relaxed);
                let fix = match file_of_record(ns, names, idx, key) {
                    Some(id) => SeqFix::FromFile { id },
                    None => SeqFix::Free,
                };
                let problem = Problem::RecordSeq {
                    seq,
                    max: max_seq,
                    fix,
                };
                d.repair(subject, problem, || {
                    match fix {
                        SeqFix::FromFile { id } => {
                            r.seq.store((id as usize / n) as u32, Ordering::Relaxed)
                        }
                        _ => {
                            r.seq.store(seq % (max_seq + 1), Ordering::Relaxed);
                            t.free_record(idx);
                        }
                    }
                    Ok(())
                });
            }
            rstate::LIVE => {}
            rstate::CREATING if judge_stuck => {
                d.repair(
                    subject,
                    Problem::RecordStuck {
                        state: Stuck::Creating,
                    },
                    || {
                        ns.rollback_create(idx)
                            .then_some(())
                            .ok_or_else(|| "its file is another user's (permission denied)".into())
                    },
                );
            }
            rstate::REMOVING if judge_stuck => {
                d.repair(
                    subject,
                    Problem::RecordStuck {
                        state: Stuck::Removing,
                    },
                    || {
                        ns.finish_remove(idx)
                            .then_some(())
                            .ok_or_else(|| "its file is another user's (permission denied)".into())
                    },
                );
            }
            rstate::CREATING | rstate::REMOVING => {}
            _ => {
                // Garbage: restore the queue if its file says it is one of
                // ours and not removed, else free the record.
                let id = t.id_of(idx);
                let restorable = ns.open_file(id).is_ok_and(|m| {
                    let h = m.state().header;
                    h.id.load(Ordering::Relaxed) as u32 as i32 == id
                        && h.key.load(Ordering::Relaxed) as u32 == r.key.load(Ordering::Relaxed)
                        && !m.state().is_removed()
                });
                d.repair(
                    subject,
                    Problem::RecordInvalid { state, restorable },
                    || {
                        if restorable {
                            r.state.store(rstate::LIVE, Ordering::Release);
                        } else {
                            let _ = std::fs::remove_file(ns.queue_path(id));
                            t.free_record(idx);
                        }
                        Ok(())
                    },
                );
            }
        }
        if r.state.load(Ordering::Acquire) == rstate::LIVE
            || (d.opts.dry_run && state != rstate::FREE)
        {
            last_used = last_used.max(idx as u64 + 1);
        }
    }
    let highest = t.header.highest.load(Ordering::Relaxed);
    let expected = highest.min(n as u64).max(last_used);
    if expected != highest {
        d.repair(
            Subject::IdTable,
            Problem::HighestWrong {
                value: highest,
                expected,
            },
            || {
                // Raising is what creators do (fetch_max); lowering happens
                // only from beyond the table, which covers every record.
                if expected > highest {
                    t.header.highest.fetch_max(expected, Ordering::Relaxed);
                } else {
                    let _ = t.header.highest.compare_exchange(
                        highest,
                        expected,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                Ok(())
            },
        );
    }
}

/// The files of the directory: orphaned queue files, unknown files.
fn check_files(d: &mut Doctor<'_>, ns: &Namespace, names: &[String]) {
    let t = ns.table();
    let n = t.records.len();
    let judge = !d.opts.dry_run || lock_free_or_dead(ns);
    for name in names {
        let subject = Subject::File { name: name.clone() };
        match classify(name) {
            FileKind::IdTable | FileKind::Config | FileKind::TempTable(_) => {}
            FileKind::Unknown => d.push(subject, Problem::UnknownFile, Outcome::Note),
            FileKind::Queue(id) => {
                let (idx, seq) = (id as usize % n, id as usize / n);
                let r = &t.records[idx];
                let state = r.state.load(Ordering::Acquire);
                let pointed_at = r.seq.load(Ordering::Relaxed) as usize == seq
                    && (state == rstate::LIVE
                        || (d.opts.dry_run && state != rstate::FREE)
                        || !judge);
                let gone = std::fs::symlink_metadata(ns.queue_path(id)).is_err();
                if pointed_at || gone {
                    continue; // listed, or removed by a repair above
                }
                let mapped = ns.open_file(id).ok();
                let messages = mapped.as_ref().map(|m| m.state().counter().load().qnum);
                let path = ns.queue_path(id);
                d.repair(subject, Problem::OrphanFile { messages }, || {
                    unlink(&path)?;
                    // Anyone still attached through a stale handle wakes up
                    // with EIDRM rather than waiting on a file nobody reaches.
                    if let Some(m) = &mapped {
                        m.state().mark_removed();
                    }
                    Ok(())
                });
            }
        }
    }
}

/// The outcome of opening a live queue's file, as findings; the mapping if it
/// can be checked further.
fn open_queue(
    d: &mut Doctor<'_>,
    ns: &Namespace,
    idx: usize,
    id: i32,
    key: i32,
) -> Option<crate::shm::Mapped> {
    let subject = Subject::Queue { id, key };
    match ns.open_file(id) {
        Ok(m) => Some(m),
        Err(FileError::Missing) => {
            let t = ns.table();
            let deadline = Instant::now() + d.opts.lock_timeout;
            d.repair(subject, Problem::FileMissing, || {
                let (_guard, _) = ns
                    .lock_until(deadline)
                    .ok_or_else(|| "the namespace lock is busy".to_string())?;
                // Still live with the same id, and still no file?
                if t.live_index(id) != Some(idx) {
                    return Err("its record changed meanwhile".into());
                }
                if ns.queue_path(id).exists() {
                    return Err("its file is back".into());
                }
                t.records[idx]
                    .state
                    .store(rstate::REMOVING, Ordering::Release);
                ns.finish_remove(idx);
                Ok(())
            });
            None
        }
        Err(FileError::Access) => {
            d.push(
                subject,
                Problem::NotChecked {
                    reason: PERMISSION_DENIED.into(),
                },
                Outcome::Note,
            );
            None
        }
        Err(FileError::Corrupt(damage)) => {
            d.push(
                subject,
                Problem::FileDamaged { damage },
                Outcome::NeedsAction(Advice::RemoveQueue { id }),
            );
            None
        }
        Err(FileError::Io(e)) => {
            d.push(
                subject,
                Problem::NotChecked {
                    reason: e.to_string(),
                },
                Outcome::Note,
            );
            None
        }
    }
}
