//! The id table of a namespace: the file `ids`, one record per possible queue
//! (`msgmni`), and the management lock that guards changes to it.
//!
//! ```text
//! record.state: FREE --msgget--> CREATING --file ready--> LIVE --IPC_RMID--> REMOVING --> FREE (seq + 1)
//! ```
//! Creation, removal and IPC_SET are rare and take the lock (a word holding
//! the holder's pid, plus its start time). A waiter that finds the holder dead
//! takes the lock over and repairs what it left: the record state is the
//! intent record — a `CREATING` record is rolled back (its half-made file
//! removed), a `REMOVING` record is rolled forward. A process that may not
//! remove the file (another user's, in the sticky directory) leaves the
//! record as it is; every holder of the lock finishes such records when it
//! may (`Namespace::lock`). Lookups by id read a record without the lock
//! (state and seq, Acquire).

use crate::kill_points::{kill_point, KillPoint};
use crate::params::Limits;
use crate::sync::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `b"SHMQ_IDS"`.
pub(crate) const IDS_MAGIC: u64 = u64::from_le_bytes(*b"SHMQ_IDS");
/// Bumped whenever the meaning of a byte of the id table changes.
pub(crate) const IDS_LAYOUT_VERSION: u64 = 1;

/// Header of the id table.
#[repr(C, align(128))]
pub(crate) struct IdsHeader {
    pub(crate) magic: AtomicU64,
    pub(crate) version: AtomicU64,
    /// Random identity of this namespace, copied into each queue's header.
    pub(crate) stamp: AtomicU64,
    pub(crate) msgmax: AtomicU64,
    pub(crate) msgmnb: AtomicU64,
    pub(crate) msgmni: AtomicU64,
    pub(crate) msgtql: AtomicU64,
    pub(crate) qbytes_max: AtomicU64,
    pub(crate) slots: AtomicU64,
    /// Pid of the lock holder (low 32 bits), 0 when free; with
    /// [`LOCK_TAKING_OVER`] while a new holder that took the lock over from a
    /// dead one has not yet written `lock_start`.
    pub(crate) lock: AtomicU64,
    /// Start time of the lock holder (0 while it is being written).
    pub(crate) lock_start: AtomicU64,
    /// One more than the highest record index ever used.
    pub(crate) highest: AtomicU64,
}

/// Set in `IdsHeader::lock` by a process taking the lock over from a dead
/// holder, until it has written its own start time: `lock_start` still holds
/// the dead holder's meanwhile, so a waiter must judge the new holder by its
/// pid alone (comparing its start time with the dead one's would call it dead
/// and take the lock from a live process).
pub(crate) const LOCK_TAKING_OVER: u64 = 1 << 32;

/// How long a live-looking lock holder may show no sign of holding the lock
/// before it is taken over (see `IdTable::holder_stuck`). Longer than
/// `shmq doctor`'s default wait, so that the doctor reports such a holder
/// busy rather than taking the lock from it.
const STUCK: Duration = Duration::from_secs(10);

/// Threads of this process holding the management lock (0 or 1): tells a
/// lock word naming our pid from a corrupted one.
static HELD_HERE: crate::sync::local::AtomicU32 = crate::sync::local::AtomicU32::new(0);

/// Record states.
pub(crate) mod rstate {
    pub(crate) const FREE: u32 = 0;
    pub(crate) const CREATING: u32 = 1;
    pub(crate) const LIVE: u32 = 2;
    pub(crate) const REMOVING: u32 = 3;
}

/// One id-table record.
#[repr(C)]
pub(crate) struct IdRecord {
    /// One of [`rstate`].
    pub(crate) state: AtomicU32,
    /// Bumped when the record is freed: the `seq` part of queue ids.
    pub(crate) seq: AtomicU32,
    /// The queue's key (`i32` as `u32`).
    pub(crate) key: AtomicU32,
    /// Non-zero for `IPC_PRIVATE` queues (which no key finds).
    pub(crate) private: AtomicU32,
}

const _: () = assert!(std::mem::size_of::<IdsHeader>() == 128);
const _: () = assert!(std::mem::size_of::<IdRecord>() == 16);

/// Size of an id table for `msgmni` queues.
pub(crate) fn table_size(msgmni: u32) -> usize {
    std::mem::size_of::<IdsHeader>() + msgmni as usize * std::mem::size_of::<IdRecord>()
}

/// Views of a mapped id table.
pub(crate) struct IdTable<'a> {
    pub(crate) header: &'a IdsHeader,
    pub(crate) records: &'a [IdRecord],
}

impl IdTable<'_> {
    /// Writes a new table's header (the file is zero-filled).
    pub(crate) fn init(&self, l: &Limits, stamp: u64) {
        let h = self.header;
        let r = Ordering::Relaxed;
        h.stamp.store(stamp, r);
        h.msgmax.store(l.msgmax, r);
        h.msgmnb.store(l.msgmnb, r);
        h.msgmni.store(l.msgmni as u64, r);
        h.msgtql.store(l.msgtql, r);
        h.qbytes_max.store(l.qbytes_max, r);
        h.slots.store(l.slots as u64, r);
        h.version.store(IDS_LAYOUT_VERSION, r);
        // SYNC(ids_ready): Release publishes the fields above; the table is
        // linked into place only after this (so openers never see it half made).
        h.magic.store(IDS_MAGIC, Ordering::Release);
    }

    /// The limits recorded in the header.
    pub(crate) fn limits(&self) -> Limits {
        let h = self.header;
        let r = Ordering::Relaxed;
        Limits {
            msgmax: h.msgmax.load(r),
            msgmnb: h.msgmnb.load(r),
            msgmni: h.msgmni.load(r) as u32,
            msgtql: h.msgtql.load(r),
            qbytes_max: h.qbytes_max.load(r),
            slots: h.slots.load(r) as u32,
        }
    }

    /// The record of `id` if it is live with the id's sequence number.
    pub(crate) fn live_index(&self, id: i32) -> Option<usize> {
        if id < 0 {
            return None;
        }
        let n = self.records.len();
        let (idx, seq) = (id as usize % n, id as usize / n);
        let r = &self.records[idx];
        // Acquire: pairs with SYNC(record_live).
        (r.state.load(Ordering::Acquire) == rstate::LIVE
            && r.seq.load(Ordering::Relaxed) as usize == seq)
            .then_some(idx)
    }

    /// The id of the queue in record `idx`.
    pub(crate) fn id_of(&self, idx: usize) -> i32 {
        let seq = self.records[idx].seq.load(Ordering::Relaxed) as usize;
        (seq * self.records.len() + idx) as i32
    }

    /// Frees record `idx`, bumping its sequence so that stale ids fail.
    pub(crate) fn free_record(&self, idx: usize) {
        let r = &self.records[idx];
        let max_seq = (i32::MAX as usize / self.records.len()) as u32;
        // Wrapping: a corrupted table may hold any seq (brought back in range here).
        let next = r.seq.load(Ordering::Relaxed).wrapping_add(1) % max_seq.max(1);
        r.seq.store(next, Ordering::Relaxed);
        kill_point(KillPoint::RecordSeqBumped);
        // Release: see SYNC(record_live).
        r.state.store(rstate::FREE, Ordering::Release);
    }

    /// Takes the management lock. If its holder died, takes it over and
    /// returns `true`: the caller must then repair half-done changes.
    pub(crate) fn lock(&self) -> bool {
        self.lock_until(None)
            .expect("without a deadline, lock_until waits until it succeeds")
    }

    /// [`IdTable::lock`] that gives up (`None`) once `deadline` passes while a
    /// live process keeps the lock; a dead holder is still taken over. For
    /// `doctor`, which must not hang behind a stopped process.
    pub(crate) fn lock_until(&self, deadline: Option<Instant>) -> Option<bool> {
        let me = crate::process::pid() as u64;
        let h = self.header;
        let started = Instant::now();
        let mut spins = 0u32;
        // The holder `holder_stuck` is watching: (lock, lock_start, since).
        let mut watched = None;
        loop {
            // SYNC(ids_lock): Acquire pairs with the Release in `unlock`.
            match h
                .lock
                .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => {
                    HELD_HERE.fetch_add(1, Ordering::Relaxed);
                    kill_point(KillPoint::LockTaken);
                    // Until this store, `lock_start` is 0 (cleared by
                    // `unlock`): waiters judge us by our pid alone.
                    h.lock_start
                        .store(crate::process::own_start_time(), Ordering::Relaxed);
                    return Some(false);
                }
                Err(_) => {
                    spins += 1;
                    if spins < 64 {
                        std::thread::yield_now();
                        continue;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                    if started.elapsed() > Duration::from_millis(20) && spins % 16 == 0 {
                        // Read again: `holder` came from a Relaxed failure.
                        let holder = h.lock.load(Ordering::Acquire);
                        if holder != 0
                            && (!self.holder_alive(holder)
                                || self.holder_stuck(holder, &mut watched))
                            && h.lock
                                .compare_exchange(
                                    holder,
                                    me | LOCK_TAKING_OVER,
                                    Ordering::Acquire,
                                    Ordering::Relaxed,
                                )
                                .is_ok()
                        {
                            HELD_HERE.fetch_add(1, Ordering::Relaxed);
                            kill_point(KillPoint::LockTakenOver);
                            h.lock_start
                                .store(crate::process::own_start_time(), Ordering::Relaxed);
                            // SYNC(lock_start): Release publishes our start
                            // time to a waiter that reads `lock` without the
                            // mark (Acquire, in `holder_alive`'s callers).
                            h.lock.store(me, Ordering::Release);
                            return Some(true);
                        }
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return None;
                    }
                }
            }
        }
    }

    /// Whether the lock holder `holder` (a non-zero value of `lock`, read
    /// with Acquire) may be alive.
    pub(crate) fn holder_alive(&self, holder: u64) -> bool {
        let start = if holder & LOCK_TAKING_OVER != 0 {
            0 // `lock_start` is still the dead predecessor's
        } else {
            // SYNC(lock_start)
            self.header.lock_start.load(Ordering::Relaxed)
        };
        crate::process::is_alive(holder as u32, start)
    }

    /// Whether `holder`, alive by [`IdTable::holder_alive`], has shown no
    /// sign of holding the lock for [`STUCK`]: the same lock word all along,
    /// and either no start time (a holder writes its start time right after
    /// it takes the lock) or this very process's pid while none of its
    /// threads holds the lock. Only a corrupted lock word (any value a
    /// hostile or buggy writer left: a live pid, ours) looks like this, or a
    /// holder stopped (SIGSTOP, a debugger) within those few instructions
    /// for that long; without this rule, management would wait for it
    /// forever. `watched` carries what was seen between calls.
    fn holder_stuck(&self, holder: u64, watched: &mut Option<(u64, u64, Instant)>) -> bool {
        let start = self.header.lock_start.load(Ordering::Relaxed);
        let ours = holder as u32 == crate::process::pid();
        let suspect = start == 0
            || holder & LOCK_TAKING_OVER != 0
            || (ours && HELD_HERE.load(Ordering::Relaxed) == 0);
        match watched {
            Some((lock, s, since)) if suspect && *lock == holder && *s == start => {
                since.elapsed() >= STUCK
            }
            _ => {
                *watched = suspect.then(|| (holder, start, Instant::now()));
                false
            }
        }
    }

    /// Releases the management lock.
    pub(crate) fn unlock(&self) {
        HELD_HERE.fetch_sub(1, Ordering::Relaxed);
        self.header.lock_start.store(0, Ordering::Relaxed);
        // SYNC(ids_lock)
        self.header.lock.store(0, Ordering::Release);
    }
}
