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
//! 6. Every POSIX queue (a file of the `mq` directory): the same checks as a
//!    System V queue's file (a damaged one is advised to be unlinked with
//!    `shmq rm --mq`), and an `mq_notify` registration whose owner is gone
//!    is freed. Names come and go without a lock (they are files); a queue
//!    unlinked meanwhile is skipped.
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
mod files;
mod report;
#[cfg(test)]
mod tests;

pub use report::*;

use crate::ids::rstate;
use crate::namespace::Namespace;
use crate::shm::FileError;
use crate::sync::Ordering;
use files::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const IDS_HEADER: usize = std::mem::size_of::<crate::ids::IdsHeader>();
const IDS_RECORD: usize = std::mem::size_of::<crate::ids::IdRecord>();

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
        if names.iter().any(|n| classify(n) == FileKind::PosixQueues) {
            let mq = d.dir.join("mq");
            for name in list_dir(&mq).unwrap_or_default() {
                let path = mq.join(&name);
                if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
                    check::posix_queue(&mut d, &path, &format!("/{name}"), self.stamp());
                }
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
            if !q.access().may_control() {
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
