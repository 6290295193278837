//! Recovery: finishing or undoing what a dead process held, without a daemon.
//!
//! Whoever notices a slot whose owner is dead (every call that counts or
//! refuses for lack of space or messages, through `QueueState::recover_dead`:
//! IPC_STAT, MSG_STAT, MSG_INFO, EAGAIN, ENOMSG, the start of a sleep; a
//! sleeper every `wait::MAX_SLEEP`; a thread that finds no free slot;
//! `Queue::recover`; `shmq doctor`) takes its liveness lock and claims it as
//! `RECOVERING` (`slots::claim_if_dead`), so that exactly one live process
//! recovers it, and then acts *as that slot*:
//!
//! | recorded phase | what the dead owner may have done | recovery |
//! | --- | --- | --- |
//! | `SEND(k)` | reserved op `k` on the sent word (or not); took a node and data cell; linked it (or not) | if `k` was applied and the node is not linked: take the node back, record `UNRESERVE(k')`, unreserve; free every node still `HELD` by the slot |
//! | `RECV(k, x)` | took `x` (or not), copied, freed the text, released it as op `k` on the received word | if `x` is still `TAKEN` by the slot: free its text, release `k` unless applied, mark it `DONE` (the message is lost, as when a process dies as `msgrcv` returns) |
//! | `UNRESERVE(k)` | an unreservation that may not have happened | apply it unless applied |
//!
//! "Was op `k` applied" is decided by `accounting::Counter::was_applied`, on
//! the word the phase names. A
//! `QUEUED` node of a dead sender is linked iff it is reachable from its
//! entry's head: `head` only moves past consumed nodes, so a queued node once
//! linked stays reachable until taken, and a dead sender links nothing more.
//! The entries the dead slot reserved (found in the entry pool by their
//! `RESERVED` state naming the slot) are published or given back, and the
//! entry its hazard names gets its non-empty bit again if it holds a
//! message. Every step is idempotent, so a recoverer that dies is recovered
//! in turn. Finally the slot's node magazine is cleared, the pools' bitmaps
//! are healed (which frees what the magazine held) and the slot is freed.

use crate::accounting::{Delta, Side};
use crate::layout::NodeRef;
use crate::slots::{self, phase};
use crate::state::QueueState;
use crate::sync::Ordering;
use crate::transfer::EntryOps;
use crate::type_dir::{estatus, EntryFifo, EntryRef, EntryState};
use crate::type_fifo::{status, NodeState};

impl QueueState<'_> {
    /// Recovers every slot whose owner is dead; returns how many.
    pub(crate) fn recover_dead_slots(&self) -> usize {
        // Relaxed: a slot claimed after this load is claimed by a live process.
        let high = (self.header.slots_high.load(Ordering::Relaxed) as usize).min(self.slots.len());
        let mut n = 0;
        for d in 0..high {
            if slots::claim_if_dead(&self.slots[d]) {
                self.recover_slot(d);
                self.forget_dead_sleeper(d);
                slots::release(&self.slots[d]);
                n += 1;
            }
        }
        n
    }

    /// Finishes or undoes what dead slot `d` was doing. The caller has claimed
    /// `d` as `RECOVERING`.
    fn recover_slot(&self, d: usize) {
        let rec = &self.slots[d];
        let counter = self.counter();
        let qbytes = self.header.control.qbytes.load(Ordering::Relaxed);
        // Acquire: pairs with SYNC(phase).
        let p = rec.phase.load(Ordering::Acquire);
        let bytes = rec.op_bytes.load(Ordering::Relaxed);
        let x = NodeRef(rec.op_node.load(Ordering::Acquire));
        let (kind, k) = (phase::kind(p), phase::seq(p));
        let held = NodeState::new(x.gen(), status::HELD, d).0;

        if kind == phase::SEND && counter.was_applied(d, Side::Sent, k) && !self.is_linked(x) {
            // Take an unlinked queued node back, so the sweep below frees it.
            if let Some(n) = self.nodes.get(x.index() as usize) {
                let queued = NodeState::new(x.gen(), status::QUEUED, 0).0;
                let _ = n
                    .state
                    .compare_exchange(queued, held, Ordering::AcqRel, Ordering::Relaxed);
            }
            // Op `k` may be applied by the word's tag alone (the sender died
            // between its CAS and recording it): record it as a flusher
            // would, or `next_seq` would hand the unreservation the same number,
            // which `was_applied` then reports as done, and the reservation
            // would stay counted for good.
            #[cfg(loom)]
            let forget = crate::sync::mutant(crate::sync::Mutant::RecoveryForgetsTagApplied);
            #[cfg(not(loom))]
            let forget = false;
            if !forget {
                counter.record_applied(d, Side::Sent, k);
            }
            let k2 = counter.next_seq(d, Side::Sent);
            slots::begin(rec, phase::UNRESERVE, k2, bytes, x);
        }
        if kind == phase::SEND {
            // It may have died between its link and its arrival record: a
            // message in its FIFO that type-0 receives would not find.
            if let Some(c) = crate::type_fifo::queued_candidate(self.nodes, x.index()) {
                if c.node == x {
                    self.index_arrival(c.seq, x.index());
                }
            }
        }
        // Re-read: the branch above may have recorded an unreservation.
        let p = rec.phase.load(Ordering::Acquire);
        let (kind, k) = (phase::kind(p), phase::seq(p));
        match kind {
            #[cfg(loom)]
            phase::UNRESERVE
                if crate::sync::mutant(crate::sync::Mutant::RecoveryKeepsReservation) => {}
            phase::UNRESERVE if !counter.was_applied(d, Side::Sent, k) => {
                let _ = counter.apply(d, k, Delta::Unreserve(bytes), qbytes);
            }
            phase::RECV => self.recover_receive(d, x, k, bytes, qbytes),
            _ => {}
        }

        // Only a send takes entries (an unreservation follows a send that
        // failed, possibly one whose recoverer died).
        self.repair_entries(d, matches!(kind, phase::SEND | phase::UNRESERVE));
        // Nodes (and their text) the slot still holds: those whose bit says
        // taken, and those a heal may have cleared the bit of while they sat
        // in its magazine or free batch (taken since from that magazine's or
        // batch's word, or recorded as its operation's node).
        let mut held: std::collections::BTreeSet<u32> = self.node_pool.maybe_taken().collect();
        // Out-of-range indices (a damaged record) are skipped by `state`.
        held.extend(
            rec.node_magazine
                .word_cells()
                .chain(rec.freed_nodes.word_cells())
                .filter_map(|i| u32::try_from(i).ok()),
        );
        held.insert(x.index());
        for i in held {
            let Some(s) = self.node_pool.state(i).map(NodeState::from) else {
                continue;
            };
            if !s.is_free() && s.status() == status::HELD && s.slot() == d {
                self.free_cells_owned_by(i);
                self.free_held(NodeRef::new(i, s.gen()), d);
            }
        }
        // The heal makes the nodes of its magazine visible again (and those
        // of a magazine it claimed and did not record yet), and those its
        // free batch hid: only the records are left to clear.
        self.slots[d].node_magazine.clear();
        self.slots[d].freed_nodes.clear();
        self.node_pool.heal();
        for c in &self.classes {
            c.pool.heal();
        }
        // An entry it was taking (its bit claimed, its state not yet).
        self.entry_pool.heal();
        slots::end(rec);
        self.directory().unprotect(d);
    }

    fn recover_receive(&self, d: usize, x: NodeRef, k: u64, bytes: u64, qbytes: u64) {
        let Some(n) = self.nodes.get(x.index() as usize) else {
            return;
        };
        let taken = NodeState::new(x.gen(), status::TAKEN, d);
        let s = NodeState(n.state.load(Ordering::Acquire));
        let entry = EntryRef::unpack(n.entry.load(Ordering::Relaxed));
        let ops = EntryOps { st: self, slot: d };
        if s.without_unlinked() == taken {
            self.free_data_of(x);
            let counter = self.counter();
            if !counter.was_applied(d, Side::Received, k) {
                let _ = counter.apply(d, k, Delta::Release(bytes), qbytes);
            }
            if let Ok(f) = ops.fifo(entry) {
                let _ = f.finish(x, d);
            }
        } else if s.gen() != x.gen() || s.status() != status::DONE {
            return; // the take failed, or the receive completed
        }
        // The dead receiver may have finished the message without moving its
        // FIFO's head past it: do that tidy-up for it (as `complete_receive`
        // does, under the slot's hazard), or the consumed node would stay
        // allocated until the next receive of that type. Loom found this.
        let dir = self.directory();
        if dir.protect(entry, d, &ops) == crate::type_dir::Protect::Held {
            if let Ok(f) = ops.fifo(entry) {
                let _ = f.advance();
            }
            dir.clear_nonempty_if_empty(entry, &ops);
        }
        dir.unprotect(d);
        crate::wait::notify(&self.header.space_word, self.park);
    }

    /// Frees every data cell whose state names node `node` as its owner. For a
    /// node held by a dead sender: it may have died between taking a cell and
    /// recording it in the node's `data` field, which `free_data_of` reads.
    /// A full scan of the cell states (not the bitmap hint, which may be stale
    /// after a crash); recovery is rare and the classes are small.
    fn free_cells_owned_by(&self, node: u32) {
        for c in &self.classes {
            for i in 0..c.pool.len() as u32 {
                if let Some(s) = c.pool.state(i) {
                    if s.owner() == node + 1 {
                        c.pool.free(i, s);
                    }
                }
            }
        }
    }

    /// Whether node `x` of a dead sender made it into its FIFO.
    fn is_linked(&self, x: NodeRef) -> bool {
        let Some(n) = self.nodes.get(x.index() as usize) else {
            return false;
        };
        let s = NodeState(n.state.load(Ordering::Acquire));
        if s.gen() != x.gen() {
            // Freed since: only a receiver (after a take) or a recovery that
            // recorded RELEASE first frees a sender's node.
            return !x.is_nil();
        }
        match s.status() {
            status::HELD | status::FREE => false,
            status::QUEUED => {
                let entry = EntryRef::unpack(n.entry.load(Ordering::Relaxed));
                let ops = EntryOps { st: self, slot: 0 };
                match ops.fifo(entry).and_then(|f| f.snapshot()) {
                    Ok(nodes) => nodes.iter().any(|&(r, _)| r == x),
                    // Undecided: assume linked. Taking a linked node back would
                    // break its FIFO; the cost of the error is capacity only.
                    Err(_) => true,
                }
            }
            _ => true, // TAKEN or DONE: a receiver found it, so it was linked
        }
    }

    /// Repairs the entries dead slot `d` had reserved (if it died `sending`),
    /// and the one its hazard names: an entry it reserved is published (if
    /// its home already lists it) or given back to the pool; the hazard's
    /// entry gets its non-empty bit again if it holds a message. Reserved
    /// entries are looked for in the entry pool (its bitmap): the slot may
    /// have died between taking one and naming it in its hazard.
    fn repair_entries(&self, d: usize, sending: bool) {
        let dir = self.directory();
        let ops = EntryOps { st: self, slot: d };
        if sending {
            // Each taken entry is checked (RESERVED by `d`) where it is
            // repaired.
            for i in self.entry_pool.maybe_taken() {
                self.repair_reserved_entry(d, i);
            }
        }
        let Some(e) = EntryRef::from_hazard(self.slots[d].hazard.load(Ordering::Acquire)) else {
            return;
        };
        let Some(entry) = self.entries.get(e.index as usize) else {
            return;
        };
        let s = EntryState(entry.state.load(Ordering::Acquire));
        if s.gen() == e.gen
            && s.status() != estatus::FREE
            && !matches!(ops.has_queued(e), Ok(false))
        {
            dir.set_nonempty(e.index);
        }
    }

    /// Entry `i`, reserved by dead slot `d`: made LIVE if its home lists it,
    /// else unplaced and given back to the pool with its dummy.
    fn repair_reserved_entry(&self, d: usize, i: u32) {
        let entry = &self.entries[i as usize];
        let dir = self.directory();
        let s = EntryState(entry.state.load(Ordering::Acquire));
        if s.status() != estatus::RESERVED || s.slot() != d {
            return;
        }
        let e = EntryRef {
            index: i,
            gen: s.gen(),
        };
        let key = entry.key.load(Ordering::Relaxed);
        let head = NodeRef(entry.head.load(Ordering::Relaxed));
        if dir.is_published(i as usize, key) {
            // Its dummy must be DONE for the FIFO to work.
            if let Some(n) = self.nodes.get(head.index() as usize) {
                let held = NodeState::new(head.gen(), status::HELD, d).0;
                let done = NodeState::new(head.gen(), status::DONE, 0).0;
                let _ = n
                    .state
                    .compare_exchange(held, done, Ordering::AcqRel, Ordering::Relaxed);
            }
            let live = EntryState::new(e.gen, estatus::LIVE, 0);
            let _ = entry
                .state
                .compare_exchange(s.0, live.0, Ordering::SeqCst, Ordering::Relaxed);
            return;
        }
        // Not published: its dummy (if it got one) is ours to free, found
        // through the entry only while it names this entry and is DONE, as a
        // prepared dummy is (a HELD node is the sweep's below, which frees
        // its text too: the message node the sender held has no `entry`
        // yet, and a fresh entry's stale `head` can name it).
        if let Some(n) = self.nodes.get(head.index() as usize) {
            let ns = NodeState(n.state.load(Ordering::Acquire));
            if ns.gen() == head.gen()
                && ns.status() == status::DONE
                && n.entry.load(Ordering::Relaxed) == e.pack()
            {
                self.node_pool.free(head.index(), ns.cell());
            }
        }
        dir.unplace(e);
        dir.release_entry(e, s);
    }
}
