//! The doctor's checks of one live queue: identity, header, attachment slots
//! (dead holders recovered), then every type entry, node and data cell.
//!
//! Two kinds of finding come out of a pass over the regions:
//! - values that are wrong whatever other processes are doing (an index
//!   beyond its region, a status no code writes): reported at once;
//! - cross-checks that hold only between operations (a FIFO walk that meets a
//!   recycled node, the accounting word against the FIFOs, nodes nobody
//!   reaches): reported only from a *quiet* pass, one before and after which
//!   no slot was mid-operation and neither the accounting word nor the send
//!   stamp moved. A queue that is never quiet gets a note instead.

use super::{
    open_queue, Activity, Advice, Doctor, FifoFault, Outcome, Place, PoolKind, Problem, Subject,
};
use crate::accounting::{Counter, Side};
use crate::cell_pool::CellState;
use crate::ids::rstate;
use crate::layout::{data_ref, NodeRef, INLINE_BYTES, NIL, PAGE};
use crate::namespace::Namespace;
use crate::slots::{self, phase};
use crate::state::QueueState;
use crate::sync::Ordering;
use crate::type_dir::{estatus, EntryRef, EntryState};
use crate::type_fifo::{status, NodeState};
use std::time::{Duration, Instant};

/// How many passes may find the queue busy before the cross-checks give up.
const QUIET_ATTEMPTS: u32 = 3;

/// The byte ranges of a file that hold data rather than holes
/// (`SEEK_DATA` / `SEEK_HOLE`); everything else reads as zeros.
pub(super) struct DataMap {
    ranges: Vec<(u64, u64)>,
}

impl DataMap {
    /// The data ranges of the first `len` bytes of `file`; the whole of it if
    /// the file system cannot say.
    pub(super) fn of_file(file: &std::fs::File, len: u64) -> DataMap {
        use rustix::fs::{seek, SeekFrom};
        let mut ranges = Vec::new();
        let mut off = 0u64;
        // Each round moves past at least one page of data and one hole.
        for _ in 0..=len / PAGE as u64 + 1 {
            if off >= len {
                break;
            }
            let start = match seek(file, SeekFrom::Data(off)) {
                Ok(p) => p,
                Err(rustix::io::Errno::NXIO) => break, // only holes from here
                Err(_) => return DataMap::all(len),
            };
            if start >= len {
                break;
            }
            let end = seek(file, SeekFrom::Hole(start)).unwrap_or(len).min(len);
            if end <= start {
                return DataMap::all(len);
            }
            ranges.push((start, end));
            off = end;
        }
        DataMap { ranges }
    }

    /// The data ranges of the file at `path` (opened without following a
    /// symlink); the whole of it if that fails.
    pub(super) fn of_path(path: &std::path::Path) -> DataMap {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path);
        match file.and_then(|f| Ok((f.metadata()?.len(), f))) {
            Ok((len, f)) => DataMap::of_file(&f, len),
            Err(_) => DataMap::all(u64::MAX),
        }
    }

    fn all(len: u64) -> DataMap {
        DataMap {
            ranges: vec![(0, len)],
        }
    }

    /// The indices of the elements of a region (`count` elements of `size`
    /// bytes from byte `off`) that lie at least in part in data, ascending.
    pub(super) fn indices(&self, off: usize, size: usize, count: usize) -> Vec<usize> {
        let (off, size) = (off as u64, size as u64);
        let end = off + size * count as u64;
        let mut out = Vec::new();
        let mut next = 0u64; // first index not yet listed
        for &(s, e) in &self.ranges {
            if e <= off || s >= end {
                continue;
            }
            let first = ((s.max(off) - off) / size).max(next);
            let last = (e.min(end) - off).div_ceil(size);
            out.extend((first..last).map(|i| i as usize));
            next = next.max(last);
        }
        out
    }
}

/// What decides whether a pass saw the queue between operations.
#[derive(Debug, PartialEq, Eq)]
struct Signature {
    /// The accounting words `(sent, received)`.
    counter: (u64, u64),
    next_seq: u64,
    /// `(state, phase)` of every slot in use.
    slots: Vec<(usize, u64, u64)>,
    /// Every slot in use is between operations (or dead between operations).
    quiet: bool,
}

impl Signature {
    fn read(st: &QueueState<'_>, data: &DataMap) -> Signature {
        // Acquire (all): what a pass reads after this signature is at least
        // as new as it; two equal signatures around a pass mean that no
        // operation started, ended or moved the counts in between.
        let counter = st.counter().raw();
        let next_seq = st.header.next_seq.load(Ordering::Acquire);
        let mut slots = Vec::new();
        let mut quiet = true;
        for i in data.indices(st.geo.slots_off, SLOT_SIZE, st.slots.len()) {
            let rec = &st.slots[i];
            let s = rec.state.load(Ordering::Acquire);
            if slots::status_of(s) == slots::FREE {
                continue;
            }
            let p = rec.phase.load(Ordering::Acquire);
            if slots::status_of(s) != slots::ACTIVE || phase::kind(p) != phase::IDLE {
                quiet = false;
            }
            slots.push((i, s, p));
        }
        Signature {
            counter,
            next_seq,
            slots,
            quiet,
        }
    }
}

const SLOT_SIZE: usize = std::mem::size_of::<crate::layout::SlotRecord>();
const ENTRY_SIZE: usize = std::mem::size_of::<crate::layout::Entry>();
const NODE_SIZE: usize = std::mem::size_of::<crate::layout::Node>();

/// What one pass over the entries, nodes and cells found.
#[derive(Default)]
struct Pass {
    /// Wrong whatever anyone is doing.
    always: Vec<Problem>,
    /// Wrong only if the pass was quiet.
    quiet: Vec<Problem>,
    /// Entries holding messages whose non-empty bit is clear: `(entry, type)`.
    missing_bits: Vec<(u32, i64)>,
    /// Messages and bytes the FIFOs hold.
    queued: u64,
    bytes: u64,
    /// A FIFO is broken: counts are incomplete.
    broken: bool,
    /// `(node, state)` of taken nodes that no FIFO reaches.
    leaked_nodes: Vec<(u32, NodeState)>,
    /// Per data class, `(cell, state)` of cells no node holds.
    leaked_cells: Vec<Vec<(u32, CellState)>>,
    /// Free cells whose bitmap bit says taken: in the node pool, then per
    /// data class, then in the entry pool.
    hidden_nodes: usize,
    hidden_cells: Vec<usize>,
    hidden_entries: usize,
    /// `(position, value)` of directory positions that name an entry not
    /// placed there.
    stale_positions: Vec<(usize, u64)>,
}

/// Checks live queue `id` (record `idx`, key `key`) and repairs what it can.
pub(super) fn queue(d: &mut Doctor<'_>, ns: &Namespace, idx: usize, id: i32, key: i32) {
    d.queues_checked += 1;
    let Some(m) = open_queue(d, ns, idx, id, key) else {
        return;
    };
    let subject = Subject::Queue { id, key };
    let st = m.state();
    let h = st.header;
    let found = h.id.load(Ordering::Relaxed);
    if found as u32 as i32 != id {
        // `Namespace::queue` refuses it: nobody can use it.
        d.push(
            subject,
            Problem::IdMismatch { found },
            Outcome::NeedsAction(Advice::RemoveQueue { id }),
        );
        return;
    }
    let file_key = h.key.load(Ordering::Relaxed) as u32 as i32;
    if file_key != key {
        d.push(
            subject.clone(),
            Problem::KeyMismatch { found: file_key },
            Outcome::NeedsAction(Advice::DrainAndRemove { id }),
        );
    }
    if st.is_removed() {
        // IPC_RMID marked it, but the record stayed: finish the removal.
        let deadline = Instant::now() + d.opts.lock_timeout;
        d.repair(subject, Problem::RemovedButListed, || {
            let (_guard, _) = ns
                .lock_until(deadline)
                .ok_or_else(|| "the namespace lock is busy".to_string())?;
            let t = ns.table();
            if t.live_index(id) != Some(idx) {
                return Err("its record changed meanwhile".into());
            }
            t.records[idx]
                .state
                .store(rstate::REMOVING, Ordering::Release);
            ns.finish_remove(idx);
            Ok(())
        });
        return;
    }
    check_contents(d, &subject, &m);
}

/// What every queue file gets checked for, System V or POSIX: its header,
/// its slots and its regions.
fn check_contents(d: &mut Doctor<'_>, subject: &Subject, m: &crate::shm::Mapped) {
    let st = m.state();
    let data = DataMap::of_file(&m.file, st.geo.file_size as u64);
    let findings_before = d.findings.len();
    check_header(d, subject, st);
    check_slots(d, subject, st, &data);
    check_regions(d, subject, st, &data, &m.file);
    if !d.opts.dry_run && d.findings.len() > findings_before {
        // A repair may have moved messages behind the arrival index's back:
        // type-0 receives scan the types until the queue is next empty.
        st.arrivals().raise_doubt();
    }
}

/// What to do about a queue that works but is inconsistent.
fn drain_advice(subject: &Subject) -> Advice {
    match subject {
        Subject::PosixQueue { name } => Advice::DrainAndUnlink { name: name.clone() },
        Subject::Queue { id, .. } => Advice::DrainAndRemove { id: *id },
        _ => Advice::DrainAndRemove { id: 0 },
    }
}

/// Checks the POSIX queue `name` whose file is `path` (in a namespace
/// stamped `stamp`) as a System V queue's file is checked, and frees an
/// `mq_notify` registration whose owner is gone.
pub(super) fn posix_queue(d: &mut Doctor<'_>, path: &std::path::Path, name: &str, stamp: u64) {
    use crate::shm::FileError;
    d.queues_checked += 1;
    let subject = Subject::PosixQueue {
        name: name.to_string(),
    };
    let m = match crate::shm::Mapped::open(path, stamp) {
        Ok(m) => m,
        Err(FileError::Missing) => return, // unlinked meanwhile
        Err(FileError::Access) => {
            d.push(
                subject,
                Problem::NotChecked {
                    reason: super::PERMISSION_DENIED.into(),
                },
                Outcome::Note,
            );
            return;
        }
        Err(FileError::Corrupt(damage)) => {
            d.push(
                subject,
                Problem::FileDamaged { damage },
                Outcome::NeedsAction(Advice::UnlinkPosixQueue {
                    name: name.to_string(),
                }),
            );
            return;
        }
        Err(FileError::Io(e)) => {
            d.push(
                subject,
                Problem::NotChecked {
                    reason: e.to_string(),
                },
                Outcome::Note,
            );
            return;
        }
    };
    check_contents(d, &subject, &m);
    let st = m.state();
    let rec = &st.header.notify;
    if let Some(reg) = rec.current() {
        if !crate::process::is_alive(reg.pid, reg.start_time) {
            d.repair(subject, Problem::DeadNotifyOwner { pid: reg.pid }, || {
                rec.free_if_owner_dead(crate::process::is_alive);
                Ok(())
            });
        }
    }
}

fn check_header(d: &mut Doctor<'_>, subject: &Subject, st: &QueueState<'_>) {
    let qmax = st.geo.params.qbytes_max;
    let qbytes = st.header.control.qbytes.load(Ordering::Relaxed);
    if qbytes > qmax {
        let word = &st.header.control.qbytes;
        d.repair(
            subject.clone(),
            Problem::QbytesTooLarge { qbytes, max: qmax },
            || {
                // Relaxed: a limit, as IPC_SET writes it; a concurrent IPC_SET wins.
                let _ = word.compare_exchange(qbytes, qmax, Ordering::Relaxed, Ordering::Relaxed);
                Ok(())
            },
        );
    }
}

/// The attachment slots: bad fields, the highest-slot mark, dead holders.
fn check_slots(d: &mut Doctor<'_>, subject: &Subject, st: &QueueState<'_>, data: &DataMap) {
    let geo = &st.geo;
    let me = crate::process::pid();
    let mut in_use_high = 0usize;
    let mut dead = Vec::new();
    for i in data.indices(geo.slots_off, SLOT_SIZE, st.slots.len()) {
        let rec = &st.slots[i];
        // Acquire: pairs with SYNC(slot_free) and SYNC(phase).
        let s = rec.state.load(Ordering::Acquire);
        let status = slots::status_of(s);
        let bad = |field, value| Problem::BadField {
            place: Place::Slot(i),
            field,
            value,
        };
        let mut problems = Vec::new();
        if status > slots::RECOVERING {
            problems.push(bad("state", s));
        }
        if status != slots::FREE {
            in_use_high = i + 1;
        }
        if status == slots::ACTIVE || status == slots::RECOVERING {
            let p = rec.phase.load(Ordering::Acquire);
            if phase::kind(p) > phase::UNRESERVE {
                problems.push(bad("phase", p));
            }
            let hazard = rec.hazard.load(Ordering::Relaxed);
            if EntryRef::from_hazard(hazard).is_some_and(|e| e.index as usize >= geo.n_entries) {
                problems.push(bad("hazard", hazard));
            }
            let op = NodeRef(rec.op_node.load(Ordering::Relaxed));
            if !op.is_nil() && op.index() as usize >= geo.n_nodes {
                problems.push(bad("op_node", op.0));
            }
            for (side, field) in [(Side::Sent, "sent_acct"), (Side::Received, "received_acct")] {
                if !Counter::record_is_consistent(rec, side) {
                    problems.push(bad(field, p));
                }
            }
            let pid = slots::pid_of(s);
            // The slot's liveness lock (or, before its claimer locked it,
            // the claimer's pid and start time).
            if pid != me && slots::owner_dead(rec) {
                let bytes = rec.op_bytes.load(Ordering::Relaxed);
                let doing = if status == slots::RECOVERING {
                    Activity::Recovering
                } else {
                    match phase::kind(p) {
                        phase::IDLE => Activity::Idle,
                        phase::SEND => Activity::Sending { bytes },
                        phase::RECV => Activity::Receiving { bytes },
                        phase::UNRESERVE => Activity::Unreserving { bytes },
                        _ => Activity::Unknown { phase: p },
                    }
                };
                dead.push((i, pid, doing));
            }
        }
        for p in problems {
            d.push(
                subject.clone(),
                p,
                Outcome::NeedsAction(drain_advice(subject)),
            );
        }
    }
    // The mark bounds every scan of the slots (recovery's included).
    let word = &st.header.slots_high.0;
    let high = word.load(Ordering::SeqCst) as usize;
    let expected = high.min(st.slots.len()).max(in_use_high);
    if expected != high {
        d.repair(
            subject.clone(),
            Problem::SlotsHighWrong {
                value: high as u64,
                expected: expected as u64,
            },
            || {
                // SeqCst, as claimers raise it (see `slots::claim`). Lowered
                // only from beyond the table, to the table's size.
                if expected > high {
                    word.fetch_max(expected as u32, Ordering::SeqCst);
                } else {
                    let _ = word.compare_exchange(
                        high as u32,
                        expected as u32,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                }
                Ok(())
            },
        );
    }
    // A process that used a queue keeps its slot until it exits, and its
    // main thread's slot until someone reclaims it: a dead holder between
    // operations holds nothing else, and the engine reclaims such slots when
    // it runs short. Not a finding, so that a namespace in normal use is
    // healthy; reclaimed along with the others when there are others.
    dead.retain(|&(_, _, doing)| doing != Activity::Idle);
    if dead.is_empty() {
        return;
    }
    if !d.opts.dry_run {
        st.recover_dead();
    }
    for (i, pid, doing) in dead {
        let problem = Problem::DeadHolder {
            slot: i,
            pid,
            doing,
        };
        d.repair(subject.clone(), problem, || {
            let s = st.slots[i].state.load(Ordering::Acquire);
            if slots::status_of(s) != slots::FREE && slots::pid_of(s) == pid {
                Err("still held (another process may be recovering it)".into())
            } else {
                Ok(())
            }
        });
    }
}

/// Entries, nodes and cells: a pass, repeated until one is quiet.
fn check_regions(
    d: &mut Doctor<'_>,
    subject: &Subject,
    st: &QueueState<'_>,
    data: &DataMap,
    file: &std::fs::File,
) {
    let damaged = Outcome::NeedsAction(drain_advice(subject));
    let mut last = None;
    for attempt in 0..QUIET_ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(20 << attempt));
        }
        let before = Signature::read(st, data);
        let p = pass(st, data, file);
        let after = Signature::read(st, data);
        if before == after && before.quiet {
            report_quiet_pass(d, subject, st, p, &before);
            return;
        }
        // A dry run cannot wait out a dead process's half-done operation.
        let stuck_dead = d.opts.dry_run
            && d.findings.iter().any(|f| {
                f.subject == *subject
                    && matches!(
                        f.problem,
                        Problem::DeadHolder { doing, .. } if doing != Activity::Idle
                    )
            });
        last = Some((p, stuck_dead));
        if stuck_dead {
            break;
        }
    }
    let Some((p, stuck_dead)) = last else { return };
    for problem in p.always {
        d.push(subject.clone(), problem, damaged.clone());
    }
    if !stuck_dead {
        d.push(subject.clone(), Problem::Busy, Outcome::Note);
    }
}

fn report_quiet_pass(
    d: &mut Doctor<'_>,
    subject: &Subject,
    st: &QueueState<'_>,
    p: Pass,
    sig: &Signature,
) {
    let damaged = Outcome::NeedsAction(drain_advice(subject));
    for problem in p.always.into_iter().chain(p.quiet) {
        d.push(subject.clone(), problem, damaged.clone());
    }
    for (entry, mtype) in p.missing_bits {
        d.repair(
            subject.clone(),
            Problem::NonemptyBitMissing { entry, mtype },
            || {
                st.directory().set_nonempty(entry);
                Ok(())
            },
        );
    }
    if p.broken {
        return; // the counts are partial; the FIFO findings say what to do
    }
    let t = Counter::counts_of(sig.counter);
    if (t.qnum, t.cbytes) != (p.queued, p.bytes) {
        let problem = Problem::AccountingWrong {
            qnum: t.qnum,
            cbytes: t.cbytes,
            queued: p.queued,
            bytes: p.bytes,
        };
        d.repair(subject.clone(), problem, || {
            st.counter().correct(sig.counter, p.queued, p.bytes)
        });
    }
    // Nodes and cells nobody holds: what a dead process held that recovery
    // missed (or damage). In a quiet pass nobody is mid-operation, so nobody
    // can come to own them: free each with a CAS from the state the pass saw
    // (which fails if anything changed it since).
    if !p.leaked_nodes.is_empty() {
        let problem = Problem::Leaked {
            pool: PoolKind::Nodes,
            count: p.leaked_nodes.len(),
        };
        d.repair(subject.clone(), problem, || {
            let mut all = true;
            for &(x, s) in &p.leaked_nodes {
                st.free_data_of(NodeRef::new(x, s.gen()));
                all &= st.node_pool.free(x, s.cell());
            }
            all.then_some(())
                .ok_or_else(|| "the queue changed meanwhile; run the doctor again".into())
        });
    }
    for (c, cells) in p.leaked_cells.iter().enumerate() {
        if cells.is_empty() {
            continue;
        }
        let class = &st.classes[c];
        let problem = Problem::Leaked {
            pool: PoolKind::Cells {
                size: class.cell_size,
            },
            count: cells.len(),
        };
        d.repair(subject.clone(), problem, || {
            let freed = cells
                .iter()
                .filter(|&&(i, s)| class.pool.free(i, s))
                .count();
            (freed == cells.len())
                .then_some(())
                .ok_or_else(|| "the queue changed meanwhile; run the doctor again".into())
        });
    }
    // Positions that name an entry placed elsewhere, or gone: no insertion
    // can use them. Nobody is mid-operation in a quiet pass, so each is
    // cleared with a CAS from the value the pass saw.
    if !p.stale_positions.is_empty() {
        let problem = Problem::StalePositions {
            count: p.stale_positions.len(),
        };
        d.repair(subject.clone(), problem, || {
            let dir = st.directory();
            let all = p.stale_positions.iter().all(|&(pos, v)| {
                dir.positions[pos]
                    .compare_exchange(v, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            });
            all.then_some(())
                .ok_or_else(|| "the queue changed meanwhile; run the doctor again".into())
        });
    }
    // Free cells whose bitmap bit was left set (a process killed between
    // freeing a cell and clearing its bit): invisible to allocators until
    // healed. A quiet queue has no such bit legitimately. (Healing reads the
    // whole bitmap, so only the pools that need it.)
    let hidden = p.hidden_nodes + p.hidden_cells.iter().sum::<usize>() + p.hidden_entries;
    if hidden > 0 {
        d.repair(
            subject.clone(),
            Problem::HiddenFree { count: hidden },
            || {
                if p.hidden_nodes > 0 {
                    st.node_pool.heal();
                }
                if p.hidden_entries > 0 {
                    st.entry_pool.heal();
                }
                for (c, &n) in p.hidden_cells.iter().enumerate() {
                    if n > 0 {
                        st.classes[c].pool.heal();
                    }
                }
                Ok(())
            },
        );
    }
}

/// How many free cells of a pool of `count` cells, whose bitmap starts at
/// byte `off` of `file`, have their bit set (which hides them from
/// allocators). The bitmap is read with `pread`, data pages only: bits are
/// hints that the pool re-checks, and holes hold no set bit.
fn hidden_free(
    file: &std::fs::File,
    data: &DataMap,
    off: usize,
    count: usize,
    state: impl Fn(u32) -> Option<CellState>,
) -> usize {
    use std::os::unix::fs::FileExt;
    let mut hidden = 0;
    let mut word = [0u8; 8];
    for w in data.indices(off, 8, count.div_ceil(64)) {
        if file.read_exact_at(&mut word, (off + w * 8) as u64).is_err() {
            continue;
        }
        let mut bits = u64::from_le_bytes(word);
        while bits != 0 {
            let i = w * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if i < count && state(i as u32).is_some_and(|s| s.is_free()) {
                hidden += 1;
            }
        }
    }
    hidden
}

/// Directory positions (on data pages) that name an entry which is free,
/// of another generation, or placed at another position.
fn stale_positions(st: &QueueState<'_>, data: &DataMap) -> Vec<(usize, u64)> {
    let dir = st.directory();
    data.indices(st.geo.positions_off, 8, st.geo.n_entries)
        .into_iter()
        .filter_map(|p| {
            // Acquire: SYNC(place).
            let v = dir.positions[p].load(Ordering::Acquire);
            let e = EntryRef::from_hazard(v)?;
            let placed_here = st.entries.get(e.index as usize).is_some_and(|entry| {
                let s = EntryState(entry.state.load(Ordering::Acquire));
                s.gen() == e.gen
                    && s.status() != estatus::FREE
                    && entry.pos.load(Ordering::Relaxed) == p as u64
            });
            (!placed_here).then_some((p, v))
        })
        .collect()
}

/// One pass over entries (walking their FIFOs), nodes and cells.
fn pass(st: &QueueState<'_>, data: &DataMap, file: &std::fs::File) -> Pass {
    let geo = &st.geo;
    let mut p = Pass::default();
    // Which entry's walk reached each node (`entry + 1`), 0 if none.
    let mut reached = vec![0u32; geo.n_nodes];
    for i in data.indices(geo.entries_off, ENTRY_SIZE, geo.n_entries) {
        check_entry(st, i as u32, &mut reached, &mut p);
    }
    for i in data.indices(geo.nodes_off, NODE_SIZE, geo.n_nodes) {
        check_node(st, i as u32, reached[i] != 0, &mut p);
    }
    // Free nodes whose bits the magazines of slots in use claimed are not
    // hidden: their owners will take them; nor are those in their free
    // batches: their owners will take them again or clear the bits.
    let in_magazines: std::collections::HashSet<usize> = st
        .slots
        .iter()
        .filter(|rec| crate::slots::in_use(rec))
        .flat_map(|rec| rec.node_magazine.cells().chain(rec.freed_nodes.cells()))
        .collect();
    p.hidden_entries = hidden_free(file, data, geo.entry_bitmap_off, geo.n_entries, |i| {
        st.entry_pool.state(i)
    });
    p.stale_positions = stale_positions(st, data);
    p.hidden_nodes = hidden_free(file, data, geo.node_bitmap_off, geo.n_nodes, |i| {
        st.node_pool
            .state(i)
            .filter(|_| !in_magazines.contains(&(i as usize)))
    });
    for (c, class) in geo.classes.iter().enumerate() {
        let pool = &st.classes[c].pool;
        p.hidden_cells.push(hidden_free(
            file,
            data,
            class.bitmap_off,
            class.count,
            |i| pool.state(i),
        ));
        let mut leaked = Vec::new();
        for i in data.indices(class.states_off, 8, class.count) {
            let Some(s) = st.classes[c].pool.state(i as u32) else {
                continue;
            };
            if s.is_free() {
                continue;
            }
            let node = s.owner() - 1;
            let Some(n) = st.nodes.get(node as usize) else {
                p.always.push(Problem::BadField {
                    place: Place::Cell {
                        class: c,
                        index: i as u32,
                    },
                    field: "owner",
                    value: s.0,
                });
                continue;
            };
            // The owner must be a node that still holds its text here.
            let ns = NodeState(n.state.load(Ordering::Acquire));
            let holds = !ns.is_free()
                && matches!(ns.status(), status::HELD | status::QUEUED | status::TAKEN)
                && n.data.load(Ordering::Relaxed) == data_ref(c, i as u32);
            if !holds {
                leaked.push((i as u32, s));
            }
        }
        p.leaked_cells.push(leaked);
    }
    p
}

/// Entry `i`: its fields, and a walk of its FIFO.
fn check_entry(st: &QueueState<'_>, i: u32, reached: &mut [u32], p: &mut Pass) {
    let geo = &st.geo;
    let e = &st.entries[i as usize];
    // Acquire: pairs with SYNC(publish) / SYNC(entry_free).
    let s = EntryState(e.state.load(Ordering::Acquire));
    let bad = |field, value| Problem::BadField {
        place: Place::Entry(i),
        field,
        value,
    };
    let es = s.status();
    if es > estatus::DOOMED {
        p.always.push(bad("state", s.0));
        return;
    }
    if es == estatus::FREE {
        return;
    }
    if matches!(es, estatus::RESERVED | estatus::RECLAIMING) && s.slot() >= geo.n_slots {
        p.always.push(bad("state", s.0));
    }
    let head = NodeRef(e.head.load(Ordering::Acquire));
    let tail = NodeRef(e.tail.load(Ordering::Acquire));
    let mut in_range = true;
    for (field, r) in [("head", head), ("tail", tail)] {
        if r.index() as usize >= geo.n_nodes {
            p.always.push(bad(field, r.0));
            in_range = false;
        }
    }
    if !in_range {
        p.broken = true;
        return;
    }
    let key = e.key.load(Ordering::Relaxed);
    let me = EntryRef {
        index: i,
        gen: s.gen(),
    };
    let lenient = es == estatus::DOOMED; // its removal may be half done
    let walk = walk_fifo(st, me, es, key, head, tail, reached, lenient);
    let (queued, bytes) = match walk {
        Ok(counts) => counts,
        Err(_) if lenient => (0, 0),
        Err((fault, always)) => {
            let problem = Problem::FifoBroken {
                entry: i,
                mtype: key,
                fault,
            };
            if always {
                p.always.push(problem);
            } else {
                p.quiet.push(problem);
            }
            p.broken = true;
            return;
        }
    };
    if es == estatus::LIVE && !st.directory().is_published(i as usize, key) {
        p.quiet.push(Problem::FifoBroken {
            entry: i,
            mtype: key,
            fault: FifoFault::Unpublished,
        });
    }
    if queued > 0 && !st.directory().is_listed_nonempty(i) {
        p.missing_bits.push((i, key));
    }
    p.queued += queued;
    p.bytes += bytes;
}

/// Walks entry `me`'s FIFO from `head`, at most once around the node pool.
/// Returns the messages and bytes queued, or the fault and whether it is
/// wrong whatever anyone is doing.
#[allow(clippy::too_many_arguments)]
fn walk_fifo(
    st: &QueueState<'_>,
    me: EntryRef,
    es: u32,
    key: i64,
    head: NodeRef,
    tail: NodeRef,
    reached: &mut [u32],
    lenient: bool,
) -> Result<(u64, u64), (FifoFault, bool)> {
    let geo = &st.geo;
    let mark = me.index + 1;
    let (mut queued, mut bytes) = (0u64, 0u64);
    let mut tail_seen = false;
    let mut cur = head;
    for step in 0..=geo.n_nodes {
        let idx = cur.index();
        // In range: checked for `head`, and for every link below.
        let n = &st.nodes[idx as usize];
        let s = NodeState(n.state.load(Ordering::Acquire));
        if s.gen() != cur.gen() {
            return Err((FifoFault::StaleLink { node: idx }, false));
        }
        match reached[idx as usize] {
            0 => reached[idx as usize] = mark,
            m if m == mark => return Err((FifoFault::Cycle { node: idx }, false)),
            _ => return Err((FifoFault::Shared { node: idx }, false)),
        }
        let ns = s.status();
        let fits = if s.is_free() {
            false
        } else if step == 0 {
            // The dummy: consumed, or still held by a dead publisher.
            matches!(ns, status::TAKEN | status::DONE)
                || (ns == status::HELD && es == estatus::RESERVED)
        } else {
            matches!(ns, status::QUEUED | status::TAKEN | status::DONE)
        };
        if !fits && !lenient {
            return Err((
                FifoFault::Status {
                    node: idx,
                    status: if s.is_free() { status::FREE } else { ns },
                },
                false,
            ));
        }
        if step > 0 && ns == status::QUEUED {
            if n.entry.load(Ordering::Relaxed) != me.pack() && !lenient {
                return Err((FifoFault::ForeignNode { node: idx }, false));
            }
            let mtype = n.mtype.load(Ordering::Relaxed);
            if mtype != key && !lenient {
                return Err((FifoFault::TypeMismatch { node: idx, mtype }, false));
            }
            queued += 1;
            bytes += n.size.load(Ordering::Relaxed) as u64;
        }
        tail_seen |= cur == tail;
        // Acquire: pairs with SYNC(link).
        let next = NodeRef(n.next.load(Ordering::Acquire));
        if next.is_nil() {
            if next.gen() != cur.gen() && !lenient {
                return Err((FifoFault::BadEnd { node: idx }, false));
            }
            if !tail_seen && !lenient {
                return Err((FifoFault::TailUnreachable, false));
            }
            return Ok((queued, bytes));
        }
        if next.index() as usize >= geo.n_nodes {
            return Err((FifoFault::OutOfRange { link: next.0 }, true));
        }
        cur = next;
    }
    Err((FifoFault::Cycle { node: cur.index() }, false))
}

/// Node `i`: its state and the fields every index of which must be in range;
/// counted as leaked if it is taken and no FIFO reached it.
fn check_node(st: &QueueState<'_>, i: u32, reached: bool, p: &mut Pass) {
    let geo = &st.geo;
    let n = &st.nodes[i as usize];
    // Acquire: pairs with the Release of whoever last changed the node.
    let s = NodeState(n.state.load(Ordering::Acquire));
    if s.is_free() {
        return;
    }
    let bad = |field, value| Problem::BadField {
        place: Place::Node(i),
        field,
        value,
    };
    let ns = s.status();
    let valid = s.has_known_bits_only()
        && matches!(
            ns,
            status::HELD | status::QUEUED | status::TAKEN | status::DONE
        )
        && match ns {
            status::HELD | status::TAKEN => s.slot() < geo.n_slots,
            _ => s.slot() == 0,
        };
    if !valid {
        p.always.push(bad("state", s.0));
        return;
    }
    let next = NodeRef(n.next.load(Ordering::Relaxed));
    if !next.is_nil() && next.index() as usize >= geo.n_nodes {
        p.always.push(bad("next", next.0));
    }
    let data = n.data.load(Ordering::Relaxed);
    let cell = st.data_cell(data);
    if data != NIL && cell.is_none() {
        p.always.push(bad("data", data as u64));
    } else if matches!(ns, status::QUEUED | status::TAKEN) {
        // Fixed while the node is reachable; checked in quiet passes only,
        // since a sender fills them before it publishes the node.
        let size = n.size.load(Ordering::Relaxed) as u64;
        let room = cell.map_or(INLINE_BYTES, |(class, _)| class.cell_size) as u64;
        if size > room || size > geo.params.msgmax {
            p.quiet.push(bad("size", size));
        }
    }
    if !reached {
        p.leaked_nodes.push((i, s));
    }
}
