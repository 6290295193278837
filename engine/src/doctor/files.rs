//! The namespace-level checks: the directory, temporary id tables, the
//! management lock, the id table's records and the files beside them.

use super::*;

/// What a directory entry is, by its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum FileKind {
    IdTable,
    Config,
    /// The directory of POSIX queues (`mq`): each file is checked as a
    /// queue (see `check::posix_queue`).
    PosixQueues,
    Queue(i32),
    TempTable(u32),
    Unknown,
}

pub(super) fn classify(name: &str) -> FileKind {
    fn decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
        let canonical = !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'));
        canonical.then(|| s.parse().ok()).flatten()
    }
    match name {
        "ids" => FileKind::IdTable,
        "config" => FileKind::Config,
        "mq" => FileKind::PosixQueues,
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
pub(super) fn list_dir(dir: &Path) -> Result<Vec<String>, std::io::Error> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

pub(super) fn unlink(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err("permission denied (run as its owner or root)".into())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Under a lock taken over from a dead holder, outside a doctor run: what
/// `Namespace::lock` does.
pub(super) fn repair_records_silently(ns: &Namespace) {
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

/// Reports the directory as unreadable (nothing more can be checked).
fn unreadable(d: &mut Doctor<'_>, e: std::io::Error) -> Option<Vec<String>> {
    d.push(
        Subject::Directory,
        Problem::Unreadable {
            error: e.to_string(),
        },
        Outcome::Fatal(Advice::RunAsOwnerOrRoot),
    );
    None
}

/// The directory: returns its names, or `None` when nothing more can be checked.
pub(super) fn check_directory(d: &mut Doctor<'_>) -> Option<Vec<String>> {
    use std::os::unix::fs::PermissionsExt;
    let dir = d.dir.clone();
    let meta = match std::fs::symlink_metadata(&dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            d.push(Subject::Directory, Problem::NoNamespace, Outcome::Note);
            return None;
        }
        Err(e) => return unreadable(d, e),
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
        Err(e) => unreadable(d, e),
    }
}

/// A temporary id table `.ids.PID.PID`: stale once its maker is dead.
pub(super) fn check_temp_file(d: &mut Doctor<'_>, name: &str, pid: u32) {
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
pub(super) fn check_lock_dry(d: &mut Doctor<'_>, ns: &Namespace) {
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
pub(super) fn lock_free_or_dead(ns: &Namespace) -> bool {
    let holder = ns.table().header.lock.load(Ordering::Acquire);
    holder == 0 || !ns.table().holder_alive(holder)
}

/// The valid queue file among `names` that belongs to record `idx` with key
/// `key`, if any: its id.
pub(super) fn file_of_record(
    ns: &Namespace,
    names: &[String],
    idx: usize,
    key: u32,
) -> Option<i32> {
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
pub(super) fn check_records(d: &mut Doctor<'_>, ns: &Namespace, names: &[String]) {
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
pub(super) fn check_files(d: &mut Doctor<'_>, ns: &Namespace, names: &[String]) {
    let t = ns.table();
    let n = t.records.len();
    let judge = !d.opts.dry_run || lock_free_or_dead(ns);
    for name in names {
        let subject = Subject::File { name: name.clone() };
        match classify(name) {
            FileKind::IdTable
            | FileKind::Config
            | FileKind::TempTable(_)
            | FileKind::PosixQueues => {}
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
pub(super) fn open_queue(
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
