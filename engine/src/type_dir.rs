//! Type directory: maps a message type to its entry (and FIFO), lock-free, with
//! reclamation of empty entries that nobody can be inside.
//!
//! # Placement
//! A type hashes to a *home* position `h` of a hash table of positions; its
//! entry is placed at some position in `[h, h + 48)` (wrapping). The home's
//! *neighbourhood word* holds a 48-bit map of which of those positions belong
//! to types of this home, and a 16-bit version bumped by every change. This is
//! the neighbourhood of hopscotch hashing (Herlihy, Shavit, Tzafrir,
//! "Hopscotch Hashing", DISC 2008), without displacement: every insertion or
//! removal for home `h` is a CAS on that one word, so an inserter that scanned
//! the neighbourhood at version `v` and found no entry for its type publishes
//! only if the version is still `v`, which rules out two entries for one type.
//! The directory is sized at four times the most types that can be wanted at
//! once (see `layout`), where a full neighbourhood has probability below
//! 1e-12 per type; if one still fills, the inserter reclaims empty entries
//! there, and failing that reports `Full` (msgsnd's ENOMEM).
//!
//! # Positions name entries from a pool
//! A position holds no entry itself, only the name of one (`gen << 32 |
//! index + 1`, a hazard value; 0 for none). Entries are taken from a pool,
//! lowest index first (`cell_pool`), so the entries of the types in use sit
//! together however their types hash: a receive that reaches an entry through
//! its message's node (every type-0 receive) touches a few dense pages, not a
//! page per type. (Entries at their hash positions, 10 000 types queued one
//! message each and a type-0 receive after the fill: 200-330 ns and 55 MiB of
//! the file touched; pooled: 130 ns and 34 MiB, see `BENCHMARKS.md`.)
//!
//! An inserter takes an entry (`RESERVED` by its slot), writes its key and
//! the position it is about to take in the entry (`pos`), and claims that
//! position with a CAS from 0 (SYNC(place)); then publishes the position's
//! bit in the home word. A removal clears the bit, then the position (with
//! a CAS from the entry's name, so a late finisher never clears a later
//! entry's), then gives the entry back to the pool (generation + 1). A
//! lookup reads a position and checks the entry's generation, status and
//! key, so a stale name is passed over. Recovery finds a dead inserter's
//! entries in the pool by their `RESERVED` state (it may die before its
//! hazard names one); the doctor clears a position that names an entry not
//! placed there.
//!
//! # Entry states (`gen << 32 | status << 16 | slot`)
//! ```text
//! FREE --take(slot)--> RESERVED --publish--> LIVE --> RECLAIMING(slot) --> DOOMED --> FREE(gen+1)
//!                          \--abandon--> FREE(gen+1)        \--abort--> LIVE
//! ```
//! `FREE` and the generation are the entry pool's (`cell_pool`: owner 0 is
//! free); taking an entry and giving it back are the pool's CASes. A
//! RESERVED entry is usable once its bit is in its home word (the inserter
//! may die before it marks it LIVE).
//!
//! # Protection (hazard slots)
//! Before it touches an entry's FIFO, an operation writes `(index, gen)` in its
//! slot's `hazard` and re-reads the entry's state (Michael, "Hazard Pointers",
//! IEEE TPDS 2004). A reclaimer moves LIVE to RECLAIMING, then scans every
//! slot's hazard; if it finds one, or the FIFO is not drained, it gives up.
//! Any user that finds RECLAIMING moves it back to LIVE itself, so a reclaim
//! never blocks anyone; the reclaimer commits only with a CAS
//! RECLAIMING -> DOOMED, after which anybody can finish the removal (all of its
//! steps are idempotent CASes). An operation leaves its hazard in place when
//! it ends (`Directory::kept`): the next operation of that slot on the same
//! type skips the protect and its fence (and, through the key its slot
//! remembers for that hazard value, any read of the entry), and each slot
//! pins at most one entry that way, within the `n_slots` the directory is
//! sized for. A receiver polling for a type while it spins keeps its hazard
//! between polls too (`QueueState::peek_keeping_hazard`); a waiter clears it
//! before it parks, so no sleeper pins an entry.
//!
//! # The non-empty index
//! A bitmap with one bit per entry, plus a summary bit per word, says which
//! entries may hold a queued message; type-0, negative-type and MSG_EXCEPT
//! receives scan it, so their cost follows the number of types that hold
//! messages, not the directory's size. Senders set the bit after they link
//! (and the type's bit in `lowest_type`); receivers leave it set when they
//! empty a FIFO, and a scan that finds a bit stale clears it and then
//! re-checks the FIFO, so a stream of one type pays no index update.

use crate::cell_pool::{CellState, Pool};
use crate::layout::{Entry, NodeRef, SlotRecord, NEIGHBOURHOOD};
use crate::sync::{fence, AtomicU32, AtomicU64, Ordering, RETRY_LIMIT};
use crate::type_fifo::Corrupt;

/// Entry statuses (bits 16..24 of `state`).
pub(crate) mod estatus {
    pub(crate) const FREE: u32 = 0;
    pub(crate) const RESERVED: u32 = 1;
    pub(crate) const LIVE: u32 = 2;
    pub(crate) const RECLAIMING: u32 = 3;
    pub(crate) const DOOMED: u32 = 4;
}
use estatus::*;

/// No hazard (so that a zero-filled slot protects nothing).
pub(crate) const NO_HAZARD: u64 = 0;
const MAP_MASK: u64 = (1 << NEIGHBOURHOOD) - 1;

/// An entry's state word: `gen << 32 | status << 16 | slot` (the slot of a
/// `RESERVED` or `RECLAIMING` entry's holder, 0 otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntryState(pub(crate) u64);

impl EntryState {
    /// The state of an entry of generation `gen` in `status`, held by `slot`.
    pub(crate) const fn new(gen: u32, status: u32, slot: usize) -> EntryState {
        EntryState((gen as u64) << 32 | (status as u64) << 16 | (slot as u64 & 0xffff))
    }

    /// The entry's status (`estatus::*`).
    pub(crate) const fn status(self) -> u32 {
        ((self.0 >> 16) & 0xff) as u32
    }

    /// The slot recorded with a `RESERVED` or `RECLAIMING` status.
    pub(crate) const fn slot(self) -> usize {
        (self.0 & 0xffff) as usize
    }

    /// The entry's generation: bumped each time its position is freed.
    pub(crate) const fn gen(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// An entry as of one generation: what hazards and nodes record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntryRef {
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

impl EntryRef {
    pub(crate) fn pack(self) -> u64 {
        (self.gen as u64) << 32 | self.index as u64
    }
    pub(crate) fn unpack(v: u64) -> EntryRef {
        EntryRef {
            index: v as u32,
            gen: (v >> 32) as u32,
        }
    }
    /// The value of a hazard on this entry: never [`NO_HAZARD`], because
    /// indices are below `u32::MAX - 1`.
    pub(crate) fn hazard(self) -> u64 {
        (self.gen as u64) << 32 | (self.index as u64 + 1)
    }
    /// The entry a hazard value names.
    pub(crate) fn from_hazard(v: u64) -> Option<EntryRef> {
        (v != NO_HAZARD).then(|| EntryRef {
            index: (v as u32).wrapping_sub(1),
            gen: (v >> 32) as u32,
        })
    }
}

/// Why a type could not be given an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InsertError {
    /// Every position of the type's neighbourhood holds a type that is in use.
    Full,
    /// No node for the entry's dummy (cannot happen while accounting holds).
    NoNode,
    Corrupt,
}

impl From<Corrupt> for InsertError {
    fn from(_: Corrupt) -> Self {
        InsertError::Corrupt
    }
}

/// The outcome of [`Directory::protect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protect {
    /// The entry is ours to use until the hazard is cleared.
    Held,
    /// It was reclaimed or reused; look again.
    Gone,
}

/// What a directory needs from the FIFO layer, supplied by the caller so that
/// this module stays about placement and protection.
pub(crate) trait EntryFifo {
    /// Allocates and prepares a dummy node for a new entry (`DONE`, nil next,
    /// its `entry` field set to `e`) and points the entry's head and tail at it.
    fn init_entry(&self, e: EntryRef) -> Option<NodeRef>;
    /// Frees the dummy of an entry that was never published.
    fn discard_dummy(&self, dummy: NodeRef);
    /// Moves the entry's head past consumed nodes; `true` if no node follows it.
    fn drained(&self, e: EntryRef) -> Result<bool, Corrupt>;
    /// Whether a message is queued in the entry.
    fn has_queued(&self, e: EntryRef) -> Result<bool, Corrupt>;
    /// Entry `e` is being removed: free its dummy `dummy` (generation-checked,
    /// so a late call for a node since reused does nothing).
    fn retire_dummy(&self, e: EntryRef, dummy: NodeRef);
}

/// The directory of one queue.
pub(crate) struct Directory<'a> {
    /// The entries, allocated from `entry_pool` lowest first.
    pub(crate) entries: &'a [Entry],
    pub(crate) entry_pool: &'a Pool<'a, [Entry]>,
    pub(crate) homes: &'a [AtomicU64],
    /// Position `p` of the hash table: the entry placed there, as its hazard
    /// value (`gen << 32 | index + 1`, see [`EntryRef::hazard`]), or 0.
    pub(crate) positions: &'a [AtomicU64],
    pub(crate) nonempty: &'a [AtomicU64],
    pub(crate) summary: &'a [AtomicU64],
    pub(crate) slots: &'a [SlotRecord],
    pub(crate) slots_high: &'a AtomicU32,
    pub(crate) seed: u64,
    /// Which small types hold messages, by value (negative-type receives).
    pub(crate) lowest: crate::lowest_type::LowestType<'a>,
}

/// splitmix64's finaliser: a fast, well-mixed hash of the type.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl<'a> Directory<'a> {
    fn mask(&self) -> usize {
        self.positions.len() - 1
    }

    /// The home position of type `key`.
    pub(crate) fn home(&self, key: i64) -> usize {
        mix(key as u64 ^ self.seed) as usize & self.mask()
    }

    /// The entry at `index`, bounds-checked.
    pub(crate) fn entry(&self, index: u32) -> Result<&'a Entry, Corrupt> {
        self.entries.get(index as usize).ok_or(Corrupt)
    }

    fn slots_in_use(&self) -> &'a [SlotRecord] {
        // Relaxed: a slot claimed later starts with no hazard it could have
        // set before our scan (its owner re-validates after setting one).
        let high = self.slots_high.load(Ordering::Relaxed) as usize;
        &self.slots[..high.min(self.slots.len())]
    }

    /// Whether entry `index` (of key `key`) is placed at a position that its
    /// home's neighbourhood word lists.
    pub(crate) fn is_published(&self, index: usize, key: i64) -> bool {
        let Some(entry) = self.entries.get(index) else {
            return false;
        };
        let e = EntryRef {
            index: index as u32,
            gen: EntryState(entry.state.load(Ordering::Acquire)).gen(),
        };
        // Relaxed: written before the position names the entry (SYNC(place)).
        let pos = entry.pos.load(Ordering::Relaxed) as usize;
        let placed = self
            .positions
            .get(pos)
            .is_some_and(|p| p.load(Ordering::Acquire) == e.hazard());
        let h = self.home(key);
        let d = pos.wrapping_sub(h) & self.mask();
        placed && d < NEIGHBOURHOOD && self.homes[h].load(Ordering::Acquire) & (1 << d) != 0
    }

    /// The entry placed at position `p`, if any (unchecked: the caller
    /// validates the entry's state against the generation).
    pub(crate) fn placed_at(&self, p: usize) -> Option<EntryRef> {
        // Acquire: SYNC(place).
        EntryRef::from_hazard(self.positions[p].load(Ordering::Acquire))
            .filter(|e| (e.index as usize) < self.entries.len())
    }

    /// Sets `slot`'s hazard on `e` and checks that `e` is still usable.
    ///
    /// Aborts a reclaim in progress if it finds one. On [`Protect::Gone`] the
    /// hazard is cleared again.
    pub(crate) fn protect(&self, e: EntryRef, slot: usize, ops: &impl EntryFifo) -> Protect {
        let rec = &self.slots[slot];
        // SYNC(hazard): store, SeqCst fence, then load of the state, against
        // the reclaimer's state CAS, SeqCst fence, then hazard loads (Dekker
        // with fences, as crossbeam-epoch and folly's hazard pointers do): one
        // of us sees the other. Fences rather than SeqCst accesses alone,
        // because only the fence form is checked by loom, which treats SeqCst
        // accesses as AcqRel.
        rec.hazard.store(e.hazard(), Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let Ok(entry) = self.entry(e.index) else {
            rec.hazard.store(NO_HAZARD, Ordering::Release);
            return Protect::Gone;
        };
        for _ in 0..RETRY_LIMIT {
            let s = EntryState(entry.state.load(Ordering::SeqCst));
            if s.gen() != e.gen {
                break;
            }
            match s.status() {
                LIVE => return Protect::Held,
                RESERVED
                    if self.is_published(e.index as usize, entry.key.load(Ordering::Relaxed)) =>
                {
                    return Protect::Held
                }
                RECLAIMING => {
                    // Abort the reclaim; the reclaimer's commit CAS will fail.
                    let live = EntryState::new(e.gen, LIVE, 0).0;
                    if entry
                        .state
                        .compare_exchange(s.0, live, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                    {
                        return Protect::Held;
                    }
                }
                DOOMED => {
                    self.finish_removal(e, ops);
                    break;
                }
                _ => break,
            }
        }
        rec.hazard.store(NO_HAZARD, Ordering::Release);
        Protect::Gone
    }

    /// The entry of `key` if `slot`'s hazard is on it already: an operation
    /// leaves its hazard in place when it ends, so that the next one on the
    /// same type skips the protect (and its fence). Protected and validated
    /// since, the entry cannot have been reclaimed: its key and generation
    /// are what they were.
    ///
    /// The first check of a hazard value reads the entry; the slot then
    /// remembers the value and the key (`kept_hazard`, `kept_key`), and later
    /// operations on the same key read only their own record. The entry's
    /// first line holds `tail`, which senders write: read by every
    /// operation, it moved between the sides of a stream or a round trip
    /// once per message (two-CPU round trip in `shmq bench`, 3 alternating
    /// runs: 1.13-1.20 -> 1.03-1.05 us).
    fn kept(&self, slot: usize, key: i64) -> Option<EntryRef> {
        let rec = &self.slots[slot];
        // Relaxed (all three): only this slot's owner writes them.
        let hazard = rec.hazard.load(Ordering::Relaxed);
        let e = EntryRef::from_hazard(hazard)?;
        if rec.kept_hazard.load(Ordering::Relaxed) == hazard
            && rec.kept_key.load(Ordering::Relaxed) == key
        {
            // Checked for this hazard value before: one incarnation of one
            // entry, whose key never changes.
            return Some(e);
        }
        let entry = self.entries.get(e.index as usize)?;
        // Relaxed: stable while protected (checked anyway, against damage).
        let s = EntryState(entry.state.load(Ordering::Relaxed));
        let same = entry.key.load(Ordering::Relaxed) == key
            && s.gen() == e.gen
            && matches!(s.status(), RESERVED | LIVE | RECLAIMING);
        if same {
            rec.kept_hazard.store(hazard, Ordering::Relaxed);
            rec.kept_key.store(key, Ordering::Relaxed);
        }
        same.then_some(e)
    }

    /// Whether `slot`'s hazard is on `e` already (set and validated by an
    /// earlier `protect` of ours, which keeps `e` from being reclaimed).
    pub(crate) fn holds(&self, slot: usize, e: EntryRef) -> bool {
        // Relaxed: only this slot's owner writes its hazard.
        self.slots[slot].hazard.load(Ordering::Relaxed) == e.hazard()
    }

    /// Clears `slot`'s hazard.
    pub(crate) fn unprotect(&self, slot: usize) {
        // SYNC(hazard_clear): Release, so that everything we did inside the
        // entry happens before a reclaimer that sees the hazard gone.
        self.slots[slot].hazard.store(NO_HAZARD, Ordering::Release);
    }

    /// Finds the entry of `key` and protects it with `slot`'s hazard.
    pub(crate) fn lookup(
        &self,
        key: i64,
        slot: usize,
        ops: &impl EntryFifo,
    ) -> Result<Option<EntryRef>, Corrupt> {
        if let Some(e) = self.kept(slot, key) {
            return Ok(Some(e));
        }
        let h = self.home(key);
        for _ in 0..RETRY_LIMIT {
            let w = self.homes[h].load(Ordering::Acquire);
            match self.find_in(h, w, key) {
                Some(e) => match self.protect(e, slot, ops) {
                    Protect::Held => return Ok(Some(e)),
                    Protect::Gone => continue,
                },
                None => {
                    if self.homes[h].load(Ordering::Acquire) == w {
                        return Ok(None);
                    }
                }
            }
        }
        Err(Corrupt)
    }

    /// The entry of `key` among the positions of neighbourhood word `w`.
    fn find_in(&self, h: usize, w: u64, key: i64) -> Option<EntryRef> {
        let mut map = w & MAP_MASK;
        while map != 0 {
            let d = map.trailing_zeros() as usize;
            map &= map - 1;
            let Some(e) = self.placed_at((h + d) & self.mask()) else {
                continue;
            };
            let entry = &self.entries[e.index as usize];
            let s = EntryState(entry.state.load(Ordering::Acquire));
            if s.gen() == e.gen
                && matches!(s.status(), RESERVED | LIVE | RECLAIMING)
                && entry.key.load(Ordering::Relaxed) == key
            {
                return Some(e);
            }
        }
        None
    }

    /// Finds or creates the entry of `key`, protected by `slot`'s hazard.
    pub(crate) fn lookup_or_insert(
        &self,
        key: i64,
        slot: usize,
        ops: &impl EntryFifo,
    ) -> Result<EntryRef, InsertError> {
        if let Some(e) = self.kept(slot, key) {
            return Ok(e);
        }
        let h = self.home(key);
        let mut mine: Option<(EntryRef, NodeRef)> = None;
        let mut reclaimed_once = false;
        for _ in 0..RETRY_LIMIT {
            let w = self.homes[h].load(Ordering::Acquire);
            if let Some(e) = self.find_in(h, w, key) {
                if self.protect(e, slot, ops) == Protect::Held {
                    if let Some((m, dummy)) = mine.take() {
                        self.abandon(m, dummy, ops);
                    }
                    return Ok(e);
                }
                continue;
            }
            if mine.is_none() {
                match self.reserve(h, key, slot, ops)? {
                    Some(m) => mine = Some(m),
                    None if !reclaimed_once => {
                        reclaimed_once = true;
                        self.reclaim_neighbourhood(h, slot, ops);
                        continue;
                    }
                    None => return Err(InsertError::Full),
                }
            }
            let (m, _) = mine.expect("reserved above");
            // A failed `protect` above may have cleared our hazard: it must
            // cover our entry from before it is published.
            self.slots[slot].hazard.store(m.hazard(), Ordering::SeqCst);
            // Relaxed: our own write, in `reserve`.
            let pos = self.entries[m.index as usize].pos.load(Ordering::Relaxed) as usize;
            let d = pos.wrapping_sub(h) & self.mask();
            let next = ((w >> 48).wrapping_add(1) & 0xffff) << 48 | (w & MAP_MASK) | 1 << d;
            // SYNC(publish): Release publishes the entry's key and FIFO to
            // lookups, which Acquire the neighbourhood word.
            if self.homes[h]
                .compare_exchange(w, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // Killed here, it is published and still RESERVED.
                crate::sync::crash_point();
                let entry = &self.entries[m.index as usize];
                let reserved = EntryState::new(m.gen, RESERVED, slot).0;
                // Release: see SYNC(publish). Failure is impossible (only we
                // move a RESERVED entry of ours), unless recovery thought us
                // dead; the entry is published and usable either way.
                let _ = entry.state.compare_exchange(
                    reserved,
                    EntryState::new(m.gen, LIVE, 0).0,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                );
                return Ok(m);
            }
        }
        Err(InsertError::Corrupt)
    }

    /// Takes an entry from the pool for `key` (`RESERVED` by `slot`), places
    /// it at a free position of `h`'s neighbourhood and prepares its FIFO;
    /// `None` if the neighbourhood has no free position.
    ///
    /// Kept out of line and cold: inlined into `lookup_or_insert`, its walk
    /// over the neighbourhood was hoisted ahead of the lookup, 48 positions
    /// computed and stored to the stack on every send (the disassembly shows
    /// it), and a send's lookup then waited on its entry's line about twice
    /// as long. Two-CPU round trip (scratch, 3 alternating runs): 1.34-1.40
    /// -> 1.12-1.18 us, as fast as layout 5 (1.14-1.17).
    #[cold]
    #[inline(never)]
    fn reserve(
        &self,
        h: usize,
        key: i64,
        slot: usize,
        ops: &impl EntryFifo,
    ) -> Result<Option<(EntryRef, NodeRef)>, InsertError> {
        let free_at = |p: usize| self.positions[p].load(Ordering::Relaxed) == 0;
        if !(0..NEIGHBOURHOOD).any(|d| free_at((h + d) & self.mask())) {
            return Ok(None);
        }
        // The pool has a cell for every position, so it runs dry only when
        // the positions do (or on a damaged bitmap): "no room" either way.
        // The RESERVED state names us, for recovery (which looks for such
        // entries in the pool: we may die before the hazard names it).
        let reserved = EntryState::new(0, RESERVED, slot).0 as u32;
        let Some(t) = self.entry_pool.alloc(reserved) else {
            return Ok(None);
        };
        let e = EntryRef {
            index: t.index,
            gen: t.gen,
        };
        // Protected from here on, so no reclaimer takes it once published.
        self.slots[slot].hazard.store(e.hazard(), Ordering::SeqCst);
        // Killed here, the entry is ours (RESERVED) and placed nowhere.
        crate::sync::crash_point();
        let entry = &self.entries[e.index as usize];
        // Relaxed: published by the position's CAS (SYNC(place)) and the
        // neighbourhood CAS (SYNC(publish)).
        entry.key.store(key, Ordering::Relaxed);
        let placed = (0..NEIGHBOURHOOD).map(|d| (h + d) & self.mask()).any(|p| {
            free_at(p) && {
                entry.pos.store(p as u64, Ordering::Relaxed);
                #[cfg(loom)]
                if crate::sync::mutant(crate::sync::Mutant::DirPlacesWithoutCas) {
                    let free = self.positions[p].load(Ordering::Acquire) == 0;
                    if free {
                        self.positions[p].store(e.hazard(), Ordering::Release);
                    }
                    return free;
                }
                // SYNC(place): Release publishes the entry's `key` and `pos`
                // to whoever reads the position (Acquire).
                self.positions[p]
                    .compare_exchange(0, e.hazard(), Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            }
        });
        if !placed {
            self.release_entry(e, EntryState::new(e.gen, RESERVED, slot));
            return Ok(None);
        }
        let Some(dummy) = ops.init_entry(e) else {
            self.unplace(e);
            self.release_entry(e, EntryState::new(e.gen, RESERVED, slot));
            return Err(InsertError::NoNode);
        };
        // Killed here, it is placed, with its dummy, and not published.
        crate::sync::crash_point();
        Ok(Some((e, dummy)))
    }

    /// Clears the position entry `e` is placed at, if it still names `e`.
    pub(crate) fn unplace(&self, e: EntryRef) {
        let Some(entry) = self.entries.get(e.index as usize) else {
            return;
        };
        // Relaxed: written before the position named the entry (SYNC(place)).
        let pos = entry.pos.load(Ordering::Relaxed) as usize;
        if let Some(p) = self.positions.get(pos) {
            // Generation-checked: a late call never clears a later entry's.
            let _ = p.compare_exchange(e.hazard(), 0, Ordering::Release, Ordering::Relaxed);
        }
    }

    /// Gives entry `e`, in state `s`, back to the pool (generation + 1).
    pub(crate) fn release_entry(&self, e: EntryRef, s: EntryState) {
        // SYNC(entry_free): the pool's Release CAS pairs with the Acquire
        // claim of the entry's next allocator.
        self.entry_pool.free(e.index, CellState(s.0));
    }

    /// Gives back an entry reserved but not published.
    fn abandon(&self, e: EntryRef, dummy: NodeRef, ops: &impl EntryFifo) {
        ops.discard_dummy(dummy);
        let entry = &self.entries[e.index as usize];
        let s = EntryState(entry.state.load(Ordering::Relaxed));
        if s.status() == RESERVED && s.gen() == e.gen {
            self.unplace(e);
            self.release_entry(e, s);
        }
    }

    /// Tries to reclaim every drained entry whose position lies in `h`'s
    /// neighbourhood (they may belong to other homes).
    pub(crate) fn reclaim_neighbourhood(&self, h: usize, slot: usize, ops: &impl EntryFifo) {
        for d in 0..NEIGHBOURHOOD {
            let Some(e) = self.placed_at((h + d) & self.mask()) else {
                continue;
            };
            let s = EntryState(self.entries[e.index as usize].state.load(Ordering::Acquire));
            if s.gen() == e.gen && s.status() == LIVE {
                self.try_reclaim(e, slot, ops);
            }
        }
    }

    /// Removes entry `e` if it is drained and nobody else is inside it.
    /// `slot`'s own hazard is ignored (the caller may hold it).
    pub(crate) fn try_reclaim(&self, e: EntryRef, slot: usize, ops: &impl EntryFifo) -> bool {
        let Ok(entry) = self.entry(e.index) else {
            return false;
        };
        let live = EntryState::new(e.gen, LIVE, 0).0;
        let reclaiming = EntryState::new(e.gen, RECLAIMING, slot).0;
        // SYNC(hazard): see `protect`.
        if entry
            .state
            .compare_exchange(live, reclaiming, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        // SYNC(hazard): see `protect`.
        fence(Ordering::SeqCst);
        let abort = || {
            let _ =
                entry
                    .state
                    .compare_exchange(reclaiming, live, Ordering::SeqCst, Ordering::SeqCst);
            false
        };
        #[cfg(loom)]
        let hazards = if crate::sync::mutant(crate::sync::Mutant::DirIgnoresHazards) {
            &[][..]
        } else {
            self.slots_in_use()
        };
        #[cfg(not(loom))]
        let hazards = self.slots_in_use();
        for (t, rec) in hazards.iter().enumerate() {
            // SYNC(hazard_clear): at least Acquire, so that what a slot did
            // inside the entry happens before we see its hazard gone.
            if t != slot && rec.hazard.load(Ordering::SeqCst) == e.hazard() {
                return abort();
            }
        }
        // Nobody is inside and nobody can enter without aborting us, so the
        // FIFO can no longer grow: check it is drained.
        if !matches!(ops.drained(e), Ok(true)) {
            return abort();
        }
        let doomed = EntryState::new(e.gen, DOOMED, 0).0;
        if entry
            .state
            .compare_exchange(reclaiming, doomed, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false; // a user aborted us
        }
        self.finish_removal(e, ops);
        true
    }

    /// Completes the removal of a DOOMED entry. Idempotent; anyone may call it.
    ///
    /// A finisher may be late: another one completed the removal and a new
    /// incarnation of the position (generation + 1) is already in use. So it
    /// acts only on what it read while the entry was still DOOMED at our
    /// generation (the dummy), and undoes what may have hit the new
    /// incarnation (its non-empty bit). Loom found the version of this that
    /// re-read the head at the end and freed the new incarnation's dummy.
    pub(crate) fn finish_removal(&self, e: EntryRef, ops: &impl EntryFifo) {
        let Ok(entry) = self.entry(e.index) else {
            return;
        };
        let doomed = EntryState::new(e.gen, DOOMED, 0).0;
        if entry.state.load(Ordering::Acquire) != doomed {
            return;
        }
        // SYNC(entry_incarnation): a new incarnation stores its head with
        // Release after claiming the entry, so if we read its head, the
        // Acquire re-check of the state below sees that it is no longer ours.
        let dummy = NodeRef(entry.head.load(Ordering::Acquire));
        if entry.state.load(Ordering::Acquire) != doomed {
            return;
        }
        let key = entry.key.load(Ordering::Relaxed);
        let h = self.home(key);
        // Relaxed: written before the position named the entry (SYNC(place)).
        let pos = entry.pos.load(Ordering::Relaxed) as usize;
        let d = pos.wrapping_sub(h) & self.mask();
        if d < NEIGHBOURHOOD {
            for _ in 0..RETRY_LIMIT {
                let w = self.homes[h].load(Ordering::Acquire);
                if w & (1 << d) == 0 || entry.state.load(Ordering::Acquire) != doomed {
                    break;
                }
                let next = ((w >> 48).wrapping_add(1) & 0xffff) << 48 | (w & MAP_MASK & !(1 << d));
                if self.homes[h]
                    .compare_exchange(w, next, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    break;
                }
            }
        }
        self.clear_nonempty(e.index);
        // SYNC(nonempty): clear, SeqCst fence, re-check, as a receiver that
        // empties a FIFO does: if the position has a new incarnation by now,
        // its bit may have been ours to clear by mistake, so set it again (a
        // spare bit only costs a scanner a look).
        fence(Ordering::SeqCst);
        if entry.state.load(Ordering::Relaxed) != doomed {
            self.set_nonempty(e.index);
            return;
        }
        ops.retire_dummy(e, dummy);
        // The position first: the entry's next incarnation may be placed
        // anywhere, this one's position is cleared only while it names it.
        self.unplace(e);
        self.release_entry(e, EntryState(doomed));
    }

    /// Marks entry `index` as possibly holding a message.
    pub(crate) fn set_nonempty(&self, index: u32) {
        // SYNC(nonempty): the sender links, SeqCst fence, loads the bit (and
        // sets it if clear); a receiver that empties the FIFO clears the bit,
        // SeqCst fence, re-checks the FIFO (`clear_nonempty_if_empty`). Dekker
        // with fences: either the re-check sees the message or we see the bit
        // clear and set it. (SeqCst accesses without the fences would not do:
        // the link and the re-check are not SeqCst; loom found this.)
        fence(Ordering::SeqCst);
        self.set_nonempty_fenced(index);
    }

    /// [`Directory::set_nonempty`] for a caller that has issued the SeqCst
    /// fence itself, after its link (a sender shares one fence between this
    /// and its look for sleepers).
    pub(crate) fn set_nonempty_fenced(&self, index: u32) {
        let (w, b) = (index as usize / 64, 1u64 << (index % 64));
        let Some(word) = self.nonempty.get(w) else {
            return;
        };
        if word.load(Ordering::Relaxed) & b == 0 {
            word.fetch_or(b, Ordering::SeqCst);
            // SYNC(nonempty_summary): the same pattern one level up, against
            // `nonempty_positions` clearing a summary bit and re-reading the
            // word.
            fence(Ordering::SeqCst);
        }
        // Always look at the summary bit, even when the word's bit was set
        // already: a sender killed between setting the two leaves the summary
        // clear, hiding the type from type-0 receivers for good (the doctor's
        // kill test found this after an early return here).
        let (s, sb) = (w / 64, 1u64 << (w % 64));
        if self.summary[s].load(Ordering::Relaxed) & sb == 0 {
            self.summary[s].fetch_or(sb, Ordering::SeqCst);
        }
        // SYNC(lowest_type): after the fence above, as for the entry's bit.
        // Relaxed: the key is stable while the caller holds the entry (or
        // re-checks it, as `clear_nonempty_if_empty` does).
        self.lowest
            .mark(self.entries[index as usize].key.load(Ordering::Relaxed));
    }

    /// Whether entry `index` is listed in the non-empty index at both levels
    /// (its bit, and its word's summary bit, which scanners look at first).
    pub(crate) fn is_listed_nonempty(&self, index: u32) -> bool {
        let bit = |words: &[AtomicU64], n: usize| {
            // SeqCst: as the index's readers and writers (SYNC(nonempty)).
            words
                .get(n / 64)
                .is_some_and(|x| x.load(Ordering::SeqCst) >> (n % 64) & 1 == 1)
        };
        bit(self.nonempty, index as usize) && bit(self.summary, index as usize / 64)
    }

    /// Clears entry `index`'s bit (the caller re-checks the FIFO afterwards).
    pub(crate) fn clear_nonempty(&self, index: u32) {
        let (w, b) = (index as usize / 64, 1u64 << (index % 64));
        if let Some(word) = self.nonempty.get(w) {
            if word.load(Ordering::SeqCst) & b != 0 {
                // SYNC(nonempty)
                word.fetch_and(!b, Ordering::SeqCst);
            }
        }
    }

    /// Clears entry `e`'s bit if its FIFO holds no queued message, then
    /// re-checks, so that a message linked meanwhile is never hidden.
    pub(crate) fn clear_nonempty_if_empty(&self, e: EntryRef, ops: &impl EntryFifo) {
        if matches!(ops.has_queued(e), Ok(false)) {
            let key = self
                .entries
                .get(e.index as usize)
                .map(|x| x.key.load(Ordering::Relaxed));
            self.clear_nonempty(e.index);
            #[cfg(loom)]
            let late = crate::sync::mutant(crate::sync::Mutant::LowestTypeClearsLate);
            #[cfg(not(loom))]
            let late = false;
            if let Some(key) = key.filter(|_| !late) {
                self.lowest.unmark(key);
            }
            // SYNC(nonempty), SYNC(lowest_type): see `set_nonempty`.
            fence(Ordering::SeqCst);
            if !matches!(ops.has_queued(e), Ok(false)) {
                self.set_nonempty(e.index);
            }
            if let Some(key) = key.filter(|_| late) {
                self.lowest.unmark(key);
            }
        }
    }

    /// Positions that name an entry, for checks.
    #[cfg_attr(not(loom), allow(dead_code))]
    pub(crate) fn placed_count(&self) -> usize {
        self.positions
            .iter()
            .filter(|p| p.load(Ordering::Relaxed) != 0)
            .count()
    }

    /// Entries in use (any status but FREE), for checks.
    #[cfg_attr(not(loom), allow(dead_code))]
    pub(crate) fn published_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| EntryState(e.state.load(Ordering::Relaxed)).status() != FREE)
            .count()
    }

    /// Positions whose non-empty bit is set, in index order, read lazily (no
    /// allocation: a type-0 receive walks this on every call). Summary bits
    /// of empty words are cleared on the way (with a re-check).
    pub(crate) fn nonempty_positions(&self) -> NonemptyPositions<'_, 'a> {
        NonemptyPositions {
            dir: self,
            s: 0,
            sbits: 0,
            w: 0,
            bits: 0,
        }
    }
}

/// Iterator over the set bits of the non-empty index (see
/// [`Directory::nonempty_positions`]).
pub(crate) struct NonemptyPositions<'d, 'a> {
    dir: &'d Directory<'a>,
    /// Next summary word to load.
    s: usize,
    /// Summary bits of word `s - 1` not yet visited.
    sbits: u64,
    /// Index of the bitmap word whose bits are in `bits`.
    w: usize,
    /// Bits of word `w` not yet returned.
    bits: u64,
}

impl Iterator for NonemptyPositions<'_, '_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let dir = self.dir;
        loop {
            if self.bits != 0 {
                let i = self.bits.trailing_zeros() as usize;
                self.bits &= self.bits - 1;
                let p = self.w * 64 + i;
                if p < dir.entries.len() {
                    return Some(p as u32);
                }
                continue;
            }
            if self.sbits == 0 {
                let sword = dir.summary.get(self.s)?;
                self.sbits = sword.load(Ordering::SeqCst);
                self.s += 1;
                continue;
            }
            let sword = &dir.summary[self.s - 1];
            let sb = self.sbits.trailing_zeros() as usize;
            self.sbits &= self.sbits - 1;
            let w = (self.s - 1) * 64 + sb;
            let Some(word) = dir.nonempty.get(w) else {
                self.sbits = 0;
                continue;
            };
            if word.load(Ordering::SeqCst) == 0 {
                sword.fetch_and(!(1 << sb), Ordering::SeqCst);
                // SYNC(nonempty_summary): see `set_nonempty`.
                fence(Ordering::SeqCst);
                if word.load(Ordering::Relaxed) != 0 {
                    sword.fetch_or(1 << sb, Ordering::SeqCst);
                } else {
                    continue;
                }
            }
            self.w = w;
            self.bits = word.load(Ordering::SeqCst);
        }
    }
}
