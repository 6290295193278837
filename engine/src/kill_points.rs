//! Kill points: named places inside the namespace's management operations
//! (creating the id table, taking over the management lock, creating and
//! removing a queue, `IPC_SET`) where a test can make the calling process
//! die (`SIGKILL`) or stop (`SIGSTOP`), to check that what it leaves half
//! done is detected and repaired without a daemon (`engine/tests/kill_management.rs`).
//!
//! None is on the data path (`msgsnd` / `msgrcv` never reach one). A point
//! costs one relaxed load of a process-local word, which is 0 unless a test
//! armed a point in this process with [`arm_kill_point`]; nothing else arms
//! one (no environment variable, no file).

use crate::sync::local::AtomicU32;
use std::sync::atomic::Ordering;

/// Where a management operation can be cut (in the order an operation
/// reaches them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
#[non_exhaustive]
pub enum KillPoint {
    /// Creating the namespace directory: it exists (under a temporary name
    /// beside its own), its mode not yet set to `01777`.
    DirMade = 17,
    /// Creating the id table: its temporary file `.ids.PID.PID` is written in
    /// full, not yet linked into place as `ids`.
    TableWritten = 1,
    /// The management lock was just taken (`lock` holds our pid; its start
    /// time is not written yet).
    LockTaken,
    /// The management lock was just taken over from a dead holder (`lock`
    /// holds our pid marked as being taken over; its start time is not
    /// written yet).
    LockTakenOver,
    /// `msgget` creating: the record is `CREATING` (key written), no file yet.
    CreateRecorded,
    /// The queue file exists (`O_CREAT | O_EXCL`), empty, mode not yet set.
    CreateFileOpened,
    /// The queue file has its full size, header not written.
    CreateFileSized,
    /// The header is written but not marked ready.
    CreateHeaderWritten,
    /// The file is ready; the record still says `CREATING`.
    CreateFileReady,
    /// The record is `LIVE`; the lock is still held.
    CreateLive,
    /// `IPC_RMID`: the record is `REMOVING`; the queue not yet marked removed.
    RemoveRecorded,
    /// The queue is marked removed (sleepers woken); its file still exists.
    RemoveMarked,
    /// The file is unlinked; the record still says `REMOVING`.
    RemoveUnlinked,
    /// Freeing a record (end of a removal or of a rolled-back creation): its
    /// sequence number is bumped, its state not yet `FREE`.
    RecordSeqBumped,
    /// The record is `FREE`; the lock is still held.
    RemoveFreed,
    /// Repairing a dead holder's creation: its file is removed, the record
    /// not yet freed.
    RollbackUnlinked,
    /// `IPC_SET`: the lock is held, nothing changed yet.
    SetLocked,
}

impl KillPoint {
    /// Every point, in order.
    pub const ALL: [KillPoint; 17] = [
        KillPoint::DirMade,
        KillPoint::TableWritten,
        KillPoint::LockTaken,
        KillPoint::LockTakenOver,
        KillPoint::CreateRecorded,
        KillPoint::CreateFileOpened,
        KillPoint::CreateFileSized,
        KillPoint::CreateHeaderWritten,
        KillPoint::CreateFileReady,
        KillPoint::CreateLive,
        KillPoint::RemoveRecorded,
        KillPoint::RemoveMarked,
        KillPoint::RemoveUnlinked,
        KillPoint::RecordSeqBumped,
        KillPoint::RemoveFreed,
        KillPoint::RollbackUnlinked,
        KillPoint::SetLocked,
    ];
}

/// What happens to the process when it reaches the armed point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum KillAction {
    /// `SIGKILL` to itself: it dies there.
    Kill = 1,
    /// `SIGSTOP` to itself, once: it waits there (alive, holding what it
    /// holds) until someone sends `SIGCONT` or `SIGKILL`.
    Stop = 2,
}

/// The armed point (low 16 bits) and action (high 16 bits); 0: none.
static ARMED: AtomicU32 = AtomicU32::new(0);

/// For tests: arms `point` in this process; the first thread that reaches it
/// suffers `action`. Replaces any point armed before.
pub fn arm_kill_point(point: KillPoint, action: KillAction) {
    ARMED.store(point as u32 | (action as u32) << 16, Ordering::Relaxed);
}

/// Disarms the point armed in this process, if any.
pub fn disarm_kill_point() {
    ARMED.store(0, Ordering::Relaxed);
}

/// A kill point: nothing unless a test armed `point` in this process.
#[inline]
pub(crate) fn kill_point(point: KillPoint) {
    // Relaxed: a process-local switch set before the operation starts.
    let armed = ARMED.load(Ordering::Relaxed);
    if armed != 0 && armed & 0xffff == point as u32 {
        fire(armed >> 16);
    }
}

#[cold]
fn fire(action: u32) {
    if action == KillAction::Stop as u32 {
        disarm_kill_point();
        // To this thread (tgkill), not the process: a process-directed
        // SIGSTOP may be taken by another thread, and this one would run on
        // past the point until the group stop reaches it.
        // SAFETY: raise(3) has no memory-safety preconditions.
        unsafe { libc::raise(libc::SIGSTOP) };
        return;
    }
    // A process-directed SIGKILL ends every thread before kill(2) returns.
    let me = rustix::process::getpid();
    let _ = rustix::process::kill_process(me, rustix::process::Signal::KILL);
    // SIGKILL to oneself is delivered before kill(2) returns; never go on.
    std::process::abort();
}
