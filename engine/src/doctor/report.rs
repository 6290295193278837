//! What the doctor reports: its options, its findings (what was found
//! where, what was done about it, what to do next) and the report as a
//! whole.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::shm::FileDamage;

/// The reason of a [`Problem::NotChecked`] for a file the caller may not open.
pub(crate) const PERMISSION_DENIED: &str = "permission denied";

/// How [`Namespace::doctor`](crate::Namespace::doctor) runs.
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
    /// A POSIX queue (a file of the `mq` directory).
    PosixQueue {
        /// Its name, with the leading `/`.
        name: String,
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
            Subject::PosixQueue { name } => write!(f, "POSIX queue {name}"),
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
    /// A POSIX queue's `mq_notify` registration belongs to a process that
    /// is gone (freed, so that another process may register).
    DeadNotifyOwner {
        /// The registered process.
        pid: u32,
    },
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
    /// Positions of the type directory's hash table that name an entry not
    /// placed there (damage): no new type can be placed at them.
    StalePositions {
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
            Problem::DeadNotifyOwner { pid } => {
                write!(f, "notification registration of process {pid}, which is gone")
            }
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
            Problem::StalePositions { count } => write!(
                f,
                "{count} type-directory positions name an entry that is not there"
            ),
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
            Problem::DeadNotifyOwner { .. } => "dead_notify_owner",
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
            Problem::StalePositions { .. } => "stale_positions",
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
            Problem::DeadNotifyOwner { .. } => "freed",
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
    /// A POSIX queue is unusable: unlink it.
    UnlinkPosixQueue {
        /// The queue's name.
        name: String,
    },
    /// A POSIX queue still works but is inconsistent: receive what is
    /// needed, then unlink it.
    DrainAndUnlink {
        /// The queue's name.
        name: String,
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
            Advice::UnlinkPosixQueue { name } => write!(
                f,
                "remove it with `shmq rm --mq {name}` (its messages are lost)"
            ),
            Advice::DrainAndUnlink { name } => write!(
                f,
                "receive what you still need from it, then `shmq rm --mq {name}` (the rest is lost)"
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

/// Why [`Namespace::remove_damaged`](crate::Namespace::remove_damaged) failed.
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
