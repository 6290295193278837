//! The data path: `msgsnd` and `msgrcv` on a [`QueueState`], lock-free.
//!
//! # Send
//! 1. record `SEND(k)` in the slot, then reserve `(msgsz, 1)` in the
//!    senders' accounting word (`accounting`; a refused reservation is
//!    Linux's "queue full": wait or EAGAIN);
//! 2. take a node (`HELD` by our slot) and, for texts longer than
//!    [`INLINE_BYTES`], a data cell of the smallest class that holds it (owned
//!    by the node); copy the text;
//! 3. find or create the type's entry (`type_dir`, which leaves our hazard on
//!    it), stamp the queue-wide sequence number, mark the node `QUEUED` and link
//!    it at the tail of the type's FIFO (`type_fifo`);
//! 4. record the message's position in the arrival index (`arrivals`); one
//!    SeqCst fence; set the entry's bits in the non-empty and lowest-type
//!    indexes if clear, record `IDLE` (the hazard stays on the entry for the
//!    next operation on the type), and wake sleepers only if the futex words
//!    say someone sleeps.
//!
//! # Receive
//! Find a candidate (`msgtyp > 0`: the type's entry, O(1); `msgtyp == 0`:
//! the arrival index, O(1) amortised; `msgtyp < 0`: the lowest-type index,
//! O(1); MSG_EXCEPT, or an index in doubt: a scan of the non-empty index,
//! O(types holding messages)), check E2BIG, record `RECV(k, node)`, take it
//! with one CAS on the node's state, copy the text, free the data cell,
//! add it to the receivers' accounting word, mark the node `DONE`, move the FIFO's head past
//! consumed nodes, record `IDLE`, wake senders if any sleep. A failed take
//! means another receiver won: look again.
//!
//! Each step that another party cannot undo is preceded by a record in the
//! slot, which is what `recovery` reads when the process dies.

use crate::accounting::{Delta, Side};
use crate::arrivals::Oldest;
use crate::layout::{data_ref, NodeRef, INLINE_BYTES, NIL};
#[cfg(not(loom))]
use crate::message::Received;
use crate::message::Selector;
use crate::slots::{self, phase};
use crate::state::QueueState;
use crate::sync::Ordering;
use crate::type_dir::{EntryFifo, EntryRef, InsertError};
use crate::type_fifo::{nil_next, status, Candidate, Corrupt, Fifo, NodeState};

/// Why a step of the data path could not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PathError {
    /// The queue cannot hold the message now.
    Full,
    /// No matching message now.
    Empty,
    /// The message is longer than the buffer (and truncation was not allowed).
    TooBig,
    /// Shared memory exhausted or inconsistent (ENOMEM).
    NoMemory,
    /// MSG_COPY with MSG_NOERROR and a short buffer (Linux: EINVAL).
    Invalid,
}

impl From<Corrupt> for PathError {
    fn from(_: Corrupt) -> Self {
        PathError::NoMemory
    }
}

/// The FIFO and dummy-node operations the directory needs, for one slot.
pub(crate) struct EntryOps<'s, 'a> {
    pub(crate) st: &'s QueueState<'a>,
    pub(crate) slot: usize,
}

impl<'s, 'a> EntryOps<'s, 'a> {
    pub(crate) fn fifo(&self, e: EntryRef) -> Result<Fifo<'s>, Corrupt> {
        let entry = self.st.entries.get(e.index as usize).ok_or(Corrupt)?;
        Ok(Fifo {
            nodes: self.st.nodes,
            pool: &self.st.node_pool,
            entry,
            freed: None,
        })
    }
}

impl EntryFifo for EntryOps<'_, '_> {
    fn init_entry(&self, e: EntryRef) -> Option<NodeRef> {
        let rec = &self.st.slots[self.slot];
        let t = self.st.node_pool.alloc_reusing(
            &rec.freed_nodes,
            &rec.node_magazine,
            NodeState::owner(status::HELD, self.slot),
        )?;
        let n = &self.st.nodes[t.index as usize];
        let dummy = NodeRef::new(t.index, t.gen);
        // Relaxed: published with the entry (SYNC(publish) in type_dir).
        n.next.store(nil_next(t.gen), Ordering::Relaxed);
        n.entry.store(e.pack(), Ordering::Relaxed);
        n.data.store(NIL, Ordering::Relaxed);
        n.size.store(0, Ordering::Relaxed);
        self.fifo(e).ok()?.init(dummy);
        // Relaxed: the node becomes reachable only through the entry's publish.
        n.state
            .store(NodeState::new(t.gen, status::DONE, 0).0, Ordering::Relaxed);
        Some(dummy)
    }

    fn discard_dummy(&self, dummy: NodeRef) {
        self.st.node_pool.free(
            dummy.index(),
            NodeState::new(dummy.gen(), status::DONE, 0).cell(),
        );
    }

    fn drained(&self, e: EntryRef) -> Result<bool, Corrupt> {
        let f = self.fifo(e)?;
        f.advance()?;
        f.is_drained()
    }

    fn has_queued(&self, e: EntryRef) -> Result<bool, Corrupt> {
        Ok(self.fifo(e)?.first_queued()?.is_some())
    }

    fn retire_dummy(&self, e: EntryRef, dummy: NodeRef) {
        let Ok(f) = self.fifo(e) else { return };
        // Generation-checked: a stale call for a node since reused is a no-op.
        f.mark_unlinked(dummy);
    }
}

/// A message taken by a receiver and not yet released: the text is still in
/// its node or data cell (what a zero-copy receive lends).
pub(crate) struct Taken {
    pub(crate) node: NodeRef,
    pub(crate) mtype: i64,
    pub(crate) size: usize,
    pub(crate) data: u32,
    pub(crate) entry: EntryRef,
    pub(crate) acct_seq: u64,
}

impl<'a> QueueState<'a> {
    /// Tries once to send `text` as type `mtype` from `slot`. Returns the
    /// sent count its reservation saw (see `Counter::apply`).
    pub(crate) fn try_send(&self, slot: usize, mtype: i64, text: &[u8]) -> Result<u64, PathError> {
        let rec = &self.slots[slot];
        let len = text.len() as u64;
        let counter = self.counter();
        let k = counter.next_seq(slot, Side::Sent);
        slots::begin(rec, phase::SEND, k, len, NodeRef::NIL);
        crate::sync::crash_point();
        // qbytes is a limit read at the start of the operation, as
        // Linux reads it under the queue lock; IPC_SET wakes sleepers.
        let qbytes = self.capacity();
        let Ok(sent_before) = counter.apply(slot, k, Delta::Reserve(len), qbytes) else {
            slots::end(rec);
            return Err(PathError::Full);
        };
        crate::sync::crash_point();
        match self.fill_and_link(slot, mtype, text) {
            Ok(()) => {
                slots::end(rec);
                Ok(sent_before)
            }
            Err(e) => {
                // Undo the reservation as a new accounting operation.
                let k2 = counter.next_seq(slot, Side::Sent);
                slots::begin(rec, phase::UNRESERVE, k2, len, NodeRef::NIL);
                let _ = counter.apply(slot, k2, Delta::Unreserve(len), qbytes);
                slots::end(rec);
                Err(e)
            }
        }
    }

    fn fill_and_link(&self, slot: usize, mtype: i64, text: &[u8]) -> Result<(), PathError> {
        let rec = &self.slots[slot];
        let held = NodeState::owner(status::HELD, slot);
        let t = self
            .node_pool
            .alloc_reusing(&rec.freed_nodes, &rec.node_magazine, held)
            .ok_or(PathError::NoMemory)?;
        let x = NodeRef::new(t.index, t.gen);
        slots::hold(rec, x);
        crate::sync::crash_point();
        let n = &self.nodes[t.index as usize];
        let mut data = NIL;
        if let Some(c) = self.geo.class_for(text.len()) {
            let class = &self.classes[c];
            let Some(cell) = class.pool.alloc(t.index + 1) else {
                self.node_pool
                    .free(t.index, NodeState::new(t.gen, status::HELD, slot).cell());
                return Err(PathError::NoMemory);
            };
            // Killed here, the cell is ours but `n.data` does not name it yet.
            crate::sync::crash_point();
            // SAFETY: we own the cell (its state names our node) until we
            // publish the node; the range is within the class's cells.
            unsafe {
                class
                    .cells
                    .write(cell.index as usize * class.cell_size, text)
            };
            data = data_ref(c, cell.index);
        } else {
            // SAFETY: the node is HELD by us: nobody reads its text until we
            // publish it with SYNC(link); `text` fits INLINE_BYTES.
            n.inline
                .with_mut(|p| unsafe { (&mut *p)[..text.len()].copy_from_slice(text) });
        }
        // Relaxed (all fields): published by the Release of SYNC(link).
        n.data.store(data, Ordering::Relaxed);
        n.size.store(text.len() as u32, Ordering::Relaxed);
        n.mtype.store(mtype, Ordering::Relaxed);
        n.next.store(nil_next(t.gen), Ordering::Relaxed);

        let ops = EntryOps { st: self, slot };
        let dir = self.directory();
        let e = match dir.lookup_or_insert(mtype, slot, &ops) {
            Ok(e) => e,
            Err(err) => {
                dir.unprotect(slot);
                self.free_held(x, slot);
                return Err(match err {
                    InsertError::Full | InsertError::NoNode | InsertError::Corrupt => {
                        PathError::NoMemory
                    }
                });
            }
        };
        crate::sync::crash_point();
        n.entry.store(e.pack(), Ordering::Relaxed);
        // Relaxed: the stamp only orders messages; uniqueness and the per-
        // location total order of the counter are all type-0 receives need.
        let seq = self.header.next_seq.fetch_add(1, Ordering::Relaxed);
        n.seq.store(seq, Ordering::Relaxed);
        // Relaxed: the node is unreachable until the link publishes it.
        n.state.store(
            NodeState::new(t.gen, status::QUEUED, 0).0,
            Ordering::Relaxed,
        );
        let linked = ops.fifo(e).and_then(|f| f.link(x, |_| {}));
        let Ok(pred) = linked else {
            dir.unprotect(slot);
            // Unreachable: take it back and free it.
            n.state.store(
                NodeState::new(t.gen, status::HELD, slot).0,
                Ordering::Relaxed,
            );
            self.free_held(x, slot);
            return Err(PathError::NoMemory);
        };
        // A receiver on another CPU reads the node we linked after and ours
        // next, and a sender there writes beside our arrival record: when we
        // take turns with it (see `turns::sent`), hand those lines to the
        // shared cache (scratch two-CPU round trip, p50, two sets of 12
        // alternating runs: median 969 -> 881 and 1012 -> 902 ns). Not when
        // a peer shares our CPU: it reads them from our caches (one-CPU
        // round trip 2.06 -> 2.5 us when every send handed over).
        #[cfg(not(loom))]
        let hand_over = crate::turns::sent(self.header, slot);
        #[cfg(loom)]
        let hand_over = false;
        if hand_over {
            if let Some(p) = self.nodes.get(pred.index() as usize) {
                crate::sync::demote(p);
            }
            crate::sync::demote(n);
        }
        crate::sync::crash_point();
        self.index_arrival(seq, t.index);
        if hand_over {
            crate::sync::demote(self.arrivals().slot(seq));
        }
        crate::sync::crash_point();
        // One fence after both publishes (the link, the arrival record) for
        // the three Dekker pairs that follow: SYNC(nonempty) and
        // SYNC(lowest_type) in `set_nonempty_fenced`, SYNC(recv_sleepers) in
        // `wake_receiver`. Each needs only our publish before a
        // SeqCst fence and its load after it.
        crate::sync::fence(Ordering::SeqCst);
        dir.set_nonempty_fenced(e.index);
        // The hazard stays on the entry (see `Directory::kept`).
        crate::wait::wake_receiver(self.header, self.slots, self.park, mtype, seq as usize);
        Ok(())
    }

    /// Records the message in `node`, stamped `seq`, in the arrival index
    /// (after its link: see `arrivals`).
    pub(crate) fn index_arrival(&self, seq: u64, node: u32) {
        self.arrivals().record(seq, node, |n| {
            crate::type_fifo::queued_candidate(self.nodes, n).map(|c| c.seq)
        });
    }

    /// The oldest queued message `sel` accepts (`Any`: every one; `Except`:
    /// those not of its type): from the arrival index, or by a scan of the
    /// type heads while the index is in doubt or passes over too many.
    fn find_oldest(&self, slot: usize, sel: Selector) -> Result<Option<Candidate>, PathError> {
        /// Queued messages of the excluded type a MSG_EXCEPT receive passes
        /// over in the arrival index before it scans the types instead.
        const EXCEPT_PASSES: usize = 64;
        let found = self.arrivals().oldest_wanted(
            |n| crate::type_fifo::queued_candidate(self.nodes, n).map(|c| (c.seq, c)),
            |c| sel.matches(c.mtype),
            EXCEPT_PASSES,
        );
        match found {
            Oldest::Found(c) => {
                // Only when this message is its type's last: a run of one
                // type finds its next message through the FIFO, in lines
                // that are hot already, and looking ahead there only pulled
                // lines from the senders (a 1 -> 1 stream of one type lost a
                // fifth of its throughput to it).
                #[cfg(not(loom))]
                if self.is_last_of_type(c.node) {
                    self.arrivals()
                        .look_ahead(c.seq, |n, ahead| self.warm_node(n, ahead, c.entry));
                }
                Ok(Some(c))
            }
            Oldest::Empty => Ok(None),
            Oldest::Unsure => {
                let best = self.scan_heads(slot, sel)?;
                if best.is_none() {
                    self.arrivals().settle(|| self.counter().is_empty());
                }
                Ok(best)
            }
        }
    }

    /// Starts loading what a type-0 receive of node `n`'s message will read
    /// (see `Arrivals::look_ahead`): three messages ahead, the node's lines;
    /// two ahead, its type entry's (the node is in cache by then); one
    /// ahead, the node its FIFO's head names (the entry is in cache by then).
    #[cfg(not(loom))]
    fn warm_node(&self, n: u32, ahead: u64, current_entry: u64) {
        fn lines<T>(x: &T) {
            let at = x as *const T as *const u8;
            crate::sync::prefetch(at);
            crate::sync::prefetch(at.wrapping_add(64));
        }
        let Some(node) = self.nodes.get(n as usize) else {
            return;
        };
        if ahead >= 3 {
            return lines(node);
        }
        // Relaxed: a hint; the receive validates whatever it uses.
        let packed = node.entry.load(Ordering::Relaxed);
        if packed == current_entry {
            // The entry this receive uses is in cache already, and its first
            // line holds `tail`, which senders write: asking for it again
            // would only pull that line away from them.
            return;
        }
        let e = EntryRef::unpack(packed);
        let Some(entry) = self.entries.get(e.index as usize) else {
            return;
        };
        if ahead == 2 {
            return lines(entry);
        }
        // Relaxed: a hint; the receive validates whatever it uses.
        let head = NodeRef(entry.head.load(Ordering::Relaxed));
        if let Some(dummy) = self.nodes.get(head.index() as usize) {
            lines(dummy);
        }
    }

    /// Whether node `x` has no successor in its FIFO now (a hint).
    #[cfg(not(loom))]
    fn is_last_of_type(&self, x: NodeRef) -> bool {
        self.nodes.get(x.index() as usize).is_some_and(|n| {
            // Relaxed: a hint; nothing is decided on it.
            NodeRef(n.next.load(Ordering::Relaxed)).is_nil()
        })
    }

    /// Frees a node this slot holds (`HELD`) and its data cell.
    pub(crate) fn free_held(&self, x: NodeRef, slot: usize) {
        self.free_data_of(x);
        self.node_pool.free(
            x.index(),
            NodeState::new(x.gen(), status::HELD, slot).cell(),
        );
    }

    /// Frees the data cell that node `x` owns, if it still owns one.
    pub(crate) fn free_data_of(&self, x: NodeRef) {
        let Some(n) = self.nodes.get(x.index() as usize) else {
            return;
        };
        let Some((class, i)) = self.data_cell(n.data.load(Ordering::Relaxed)) else {
            return;
        };
        if let Some(s) = class.pool.state(i) {
            if s.owner() == x.index() + 1 {
                class.pool.free(i, s);
            }
        }
    }

    /// Finds the message `sel` wants. For `Selector::Type` and `AtMost`,
    /// leaves `slot`'s hazard on the entry of the candidate's type.
    fn find(&self, slot: usize, sel: Selector) -> Result<Option<Candidate>, PathError> {
        match sel {
            Selector::Type(t) => {
                let ops = EntryOps { st: self, slot };
                let Some(e) = self.directory().lookup(t, slot, &ops)? else {
                    return Ok(None);
                };
                Ok(ops.fifo(e)?.first_queued()?)
            }
            // The selection mutant is a bug of the scan: its models go there.
            #[cfg(loom)]
            _ if crate::sync::mutant(crate::sync::Mutant::SelectFirstFound) => {
                self.scan_heads(slot, sel)
            }
            Selector::Any | Selector::Except(_) => self.find_oldest(slot, sel),
            Selector::AtMost(d) => match self.find_lowest(slot, d)? {
                Some(found) => Ok(found),
                None => self.scan_heads(slot, sel),
            },
        }
    }

    /// The oldest message of the lowest type `<= d` through the lowest-type
    /// index; `None` when the index cannot say (no indexed type holds a
    /// message but `d` reaches past the indexed types). Leaves `slot`'s
    /// hazard on the entry of a candidate it returns.
    fn find_lowest(&self, slot: usize, d: i64) -> Result<Option<Option<Candidate>>, PathError> {
        let ops = EntryOps { st: self, slot };
        let dir = self.directory();
        // Each round clears one stale bit; a corrupted index runs out of them.
        for _ in 0..crate::sync::RETRY_LIMIT {
            let Some(t) = dir.lowest.lowest() else {
                let covered = d < crate::lowest_type::INDEXED_TYPES as i64;
                return Ok(covered.then_some(None));
            };
            if t > d {
                return Ok(Some(None));
            }
            if let Some(e) = dir.lookup(t, slot, &ops)? {
                if let Some(c) = ops.fifo(e)?.first_queued()? {
                    return Ok(Some(Some(c)));
                }
            }
            // Stale: type `t` holds nothing. Clear its bit, then look again
            // (SYNC(lowest_type): clear, fence, re-check, against a sender's
            // link, fence, look at the bit).
            #[cfg(loom)]
            let late = crate::sync::mutant(crate::sync::Mutant::LowestTypeClearsLate);
            #[cfg(not(loom))]
            let late = false;
            if !late {
                dir.lowest.unmark(t);
            }
            crate::sync::fence(Ordering::SeqCst);
            if let Some(e) = dir.lookup(t, slot, &ops)? {
                if ops.fifo(e)?.first_queued()?.is_some() {
                    dir.lowest.mark(t);
                }
            }
            if late {
                dir.lowest.unmark(t);
            }
            dir.unprotect(slot);
        }
        Ok(None)
    }

    /// The message `sel` wants, by a scan of every type's first queued
    /// message: O(types holding messages).
    fn scan_heads(&self, slot: usize, sel: Selector) -> Result<Option<Candidate>, PathError> {
        let ops = EntryOps { st: self, slot };
        let dir = self.directory();
        let mut best: Option<Candidate> = None;
        for p in dir.nonempty_positions() {
            let e = EntryRef { index: p, gen: 0 };
            let Ok(f) = ops.fifo(e) else { continue };
            // Not protected: the walk is bounds- and generation-checked, and
            // the take below validates the node; no hazard is needed to read.
            let Some(c) = f.first_queued()? else {
                let entry = &self.entries[p as usize];
                let live = EntryRef {
                    index: p,
                    gen: crate::type_dir::EntryState(entry.state.load(Ordering::Acquire)).gen(),
                };
                dir.clear_nonempty_if_empty(live, &ops);
                continue;
            };
            if !sel.matches(c.mtype) {
                continue;
            }
            #[cfg(loom)]
            if crate::sync::mutant(crate::sync::Mutant::SelectFirstFound) && best.is_some() {
                continue;
            }
            let better = match (best, sel) {
                (None, _) => true,
                (Some(b), Selector::AtMost(_)) => {
                    c.mtype < b.mtype || (c.mtype == b.mtype && c.seq < b.seq)
                }
                (Some(b), _) => c.seq < b.seq,
            };
            if better {
                best = Some(c);
            }
        }
        Ok(best)
    }

    /// Tries once to take the message `sel` wants, for a buffer of `max` bytes
    /// (`noerror`: truncate instead of E2BIG), starting from `seen` if the
    /// caller's last look found one (see [`QueueState::peek_keeping_hazard`];
    /// taken by someone else since, it is looked for again). The caller
    /// copies the text and then calls [`QueueState::complete_receive`].
    #[inline]
    pub(crate) fn try_take(
        &self,
        slot: usize,
        sel: Selector,
        max: usize,
        noerror: bool,
        mut seen: Option<Candidate>,
    ) -> Result<Taken, PathError> {
        let rec = &self.slots[slot];
        let dir = self.directory();
        // Each lost race below is another receiver's win, so a legitimate run
        // never comes near the bound; it ends a corrupted mapping's livelock
        // (a candidate that `find` offers and `take` can never win).
        for _ in 0..crate::sync::RETRY_LIMIT {
            let found = match seen.take() {
                Some(c) => Ok(Some(c)),
                None => self.find(slot, sel),
            };
            let c = match found {
                Ok(Some(c)) => c,
                Ok(None) => {
                    dir.unprotect(slot);
                    return Err(PathError::Empty);
                }
                Err(e) => {
                    dir.unprotect(slot);
                    return Err(e);
                }
            };
            if c.size as usize > max && !noerror {
                dir.unprotect(slot);
                return Err(PathError::TooBig);
            }
            let k = self.counter().next_seq(slot, Side::Received);
            slots::begin(rec, phase::RECV, k, c.size as u64, c.node);
            crate::sync::crash_point();
            let entry = EntryRef::unpack(c.entry);
            let ops = EntryOps { st: self, slot };
            match ops.fifo(entry).and_then(|f| f.take(c.node, slot)) {
                Ok(true) => {
                    crate::sync::crash_point();
                    return Ok(Taken {
                        node: c.node,
                        mtype: c.mtype,
                        size: c.size as usize,
                        data: c.data,
                        entry,
                        acct_seq: k,
                    });
                }
                Ok(false) => slots::end(rec), // another receiver won: look again
                Err(Corrupt) => {
                    slots::end(rec);
                    dir.unprotect(slot);
                    return Err(PathError::NoMemory);
                }
            }
        }
        dir.unprotect(slot);
        Err(PathError::NoMemory)
    }

    /// Copies the text of a taken message into `buf` (as much as fits).
    #[cfg(not(loom))]
    pub(crate) fn copy_text(&self, m: &Taken, buf: &mut [u8]) -> usize {
        // The text may be shorter than `m.size` (a corrupted size: see
        // `with_text`), so count what it holds.
        self.with_text(m, |text| {
            let n = text.len().min(buf.len());
            buf[..n].copy_from_slice(&text[..n]);
            n
        })
    }

    /// Copies the text of a taken message into `buf` (as much as fits); loom
    /// builds copy byte by byte through loom's cells, which check the access.
    #[cfg(loom)]
    pub(crate) fn copy_text(&self, m: &Taken, buf: &mut [u8]) -> usize {
        let n = m.size.min(buf.len());
        match self.data_cell(m.data) {
            Some((class, i)) if m.size <= class.cell_size => {
                // SAFETY: as in the production `with_text`: the message is
                // TAKEN by our slot, nobody writes its text; in bounds.
                unsafe {
                    class
                        .cells
                        .read(i as usize * class.cell_size, &mut buf[..n])
                }
                n
            }
            Some(_) => 0,
            None => {
                let n = n.min(INLINE_BYTES);
                let node = &self.nodes[m.node.index() as usize];
                // SAFETY: as above, the node is TAKEN by us: nobody writes it.
                node.inline
                    .with(|p| buf[..n].copy_from_slice(unsafe { &(&*p)[..n] }));
                n
            }
        }
    }

    /// Runs `f` on the text of a message this caller has taken.
    #[cfg(not(loom))]
    pub(crate) fn with_text<R>(&self, m: &Taken, f: impl FnOnce(&[u8]) -> R) -> R {
        match self.data_cell(m.data) {
            Some((class, i)) if m.size <= class.cell_size => {
                // SAFETY: the message is TAKEN by our slot; the data cell is
                // owned by its node, which nobody frees while it is TAKEN, and
                // nobody writes a queued text. The range lies within the class.
                let text = unsafe { class.cells.borrow(i as usize * class.cell_size, m.size) };
                f(text)
            }
            Some(_) => f(&[]), // corrupted size: give nothing rather than overrun
            None => {
                let len = m.size.min(INLINE_BYTES);
                let n = &self.nodes[m.node.index() as usize];
                // SAFETY: as above, the node is TAKEN by us: nobody writes it.
                n.inline.with(|p| f(unsafe { &(&*p)[..len] }))
            }
        }
    }

    /// Releases a taken message: frees its text, releases its accounting,
    /// marks it consumed, tidies its FIFO and wakes waiting senders.
    pub(crate) fn complete_receive(&self, slot: usize, m: &Taken) {
        // A thread taking turns sends next (see `turns`): start fetching
        // the senders' lines its send writes first, behind this receive's
        // own misses (scratch two-CPU round trip, p50, 10 alternating runs:
        // median 895 -> 869 ns; `shmq bench` two-CPU 8 B, two runs each:
        // 986/993 -> 881/867 ns).
        #[cfg(not(loom))]
        if crate::turns::received(self.header, slot) {
            crate::sync::prefetch_for_write(&*self.header.sent_sum);
            crate::sync::prefetch_for_write(&*self.header.next_seq);
        }
        let rec = &self.slots[slot];
        self.free_data_of(m.node);
        crate::sync::crash_point();
        let qbytes = self.header.control.qbytes.load(Ordering::Relaxed);
        let _ = self
            .counter()
            .apply(slot, m.acct_seq, Delta::Release(m.size as u64), qbytes);
        crate::sync::crash_point();
        let ops = EntryOps { st: self, slot };
        let dir = self.directory();
        if let Ok(mut f) = ops.fifo(m.entry) {
            // The nodes this receive frees (its own, or those before it that
            // its advance passes) leave their bits to our batch.
            f.freed = Some(&rec.freed_nodes);
            let _ = f.finish(m.node, slot);
            crate::sync::crash_point();
            // Tidy the FIFO under our hazard (a typed receive still holds the
            // one its lookup set). The entry's non-empty bits are left set:
            // whoever next relies on them (a scan, a negative-type lookup)
            // clears a stale one, with the re-check, so that a stream of one
            // type pays no index update per message.
            if dir.holds(slot, m.entry)
                || dir.protect(m.entry, slot, &ops) == crate::type_dir::Protect::Held
            {
                let _ = f.advance();
            }
        }
        // The hazard stays on the entry (see `Directory::kept`).
        slots::end(rec);
        crate::wait::notify(&self.header.space_word, self.park);
    }
}

impl QueueState<'_> {
    /// Whether a message `sel` wants is queued now (leaves no hazard).
    pub(crate) fn peek(&self, slot: usize, sel: Selector) -> bool {
        let found = self.peek_keeping_hazard(slot, sel).is_some();
        self.directory().unprotect(slot);
        found
    }

    /// [`QueueState::peek`] that leaves `slot`'s hazard where the look put
    /// it, as an operation does (see `Directory::kept`): a waiter that polls
    /// for a type then finds its entry protected already, without the
    /// protect's store and SeqCst fence on every poll and on the take that
    /// follows. The caller clears the hazard before it sleeps. Returns what
    /// it found, for [`QueueState::try_take`] to start from.
    pub(crate) fn peek_keeping_hazard(&self, slot: usize, sel: Selector) -> Option<Candidate> {
        self.find(slot, sel).ok().flatten()
    }

    /// MSG_COPY: copies the message at position `index` in send order into
    /// `buf` without taking it. The text is read optimistically and kept only
    /// if the node is still the same queued message afterwards.
    #[cfg(not(loom))]
    pub(crate) fn copy_nth(
        &self,
        index: i64,
        buf: &mut [u8],
        noerror: bool,
    ) -> Result<Received, PathError> {
        let ops = EntryOps { st: self, slot: 0 };
        for _ in 0..crate::sync::RETRY_LIMIT {
            let mut queued: Vec<(u64, NodeRef)> = Vec::new();
            for p in self.directory().nonempty_positions() {
                let Ok(f) = ops.fifo(EntryRef { index: p, gen: 0 }) else {
                    continue;
                };
                // `snapshot` retries its own races; an error is damage.
                let nodes = f.snapshot()?;
                for &(r, s) in nodes.iter().skip(1) {
                    if s.status() == status::QUEUED {
                        queued.push((
                            self.nodes[r.index() as usize].seq.load(Ordering::Relaxed),
                            r,
                        ));
                    }
                }
            }
            queued.sort_unstable_by_key(|&(seq, _)| seq);
            let Some(&(_, x)) = usize::try_from(index).ok().and_then(|i| queued.get(i)) else {
                return Err(PathError::Empty);
            };
            let n = &self.nodes[x.index() as usize];
            let expect = NodeState::new(x.gen(), status::QUEUED, 0).0;
            let size = n.size.load(Ordering::Relaxed) as usize;
            let mtype = n.mtype.load(Ordering::Relaxed);
            let data = n.data.load(Ordering::Relaxed);
            if n.state.load(Ordering::Acquire) != expect {
                continue;
            }
            if size > buf.len() {
                return Err(if noerror {
                    PathError::Invalid
                } else {
                    PathError::TooBig
                });
            }
            if self.copy_if_still_queued(x, data, &mut buf[..size])? {
                return Ok(Received { mtype, len: size });
            }
        }
        Err(PathError::NoMemory)
    }
}

impl QueueState<'_> {
    /// Copies the text of queued message `x` (its `data` reference as read
    /// from the node) into `dst`, of the message's size, without taking it:
    /// read optimistically, kept only if the node is still the same queued
    /// message afterwards (`Ok(false)`: it changed meanwhile, try again).
    /// A size the text's cell cannot hold is damage (`NoMemory`).
    #[cfg(not(loom))]
    fn copy_if_still_queued(
        &self,
        x: NodeRef,
        data: u32,
        dst: &mut [u8],
    ) -> Result<bool, PathError> {
        let n = &self.nodes[x.index() as usize];
        let expect = NodeState::new(x.gen(), status::QUEUED, 0).0;
        let size = dst.len();
        match self.data_cell(data) {
            Some((class, i)) if size <= class.cell_size => {
                // SAFETY: in bounds; validated below by the node's state.
                unsafe { class.cells.read_racy(i as usize * class.cell_size, dst) }
            }
            Some(_) => return Err(PathError::NoMemory),
            // An inline text longer than a node holds: a corrupted size.
            None if size > INLINE_BYTES => return Err(PathError::NoMemory),
            None => n.inline.with(|p| {
                // SAFETY: a volatile read of the node's inline bytes, which
                // are immutable while it stays this queued message; the
                // result is validated below.
                let bytes = unsafe { std::ptr::read_volatile(p) };
                dst.copy_from_slice(&bytes[..size]);
            }),
        }
        // Acquire: our reads of the text happen before this re-check.
        crate::sync::fence(Ordering::Acquire);
        Ok(n.state.load(Ordering::Acquire) == expect)
    }

    /// Copies the message `sel` would take now into `buf` without taking it,
    /// with its send stamp (`seq`, unique within the queue): a receive that
    /// leaves the message queued until what it copied is safe elsewhere
    /// (`shmq bridge`). Read as [`QueueState::copy_nth`] reads: the text is
    /// kept only if the node is still the same queued message afterwards.
    #[cfg(not(loom))]
    pub(crate) fn peek_copy(
        &self,
        slot: usize,
        sel: Selector,
        buf: &mut [u8],
    ) -> Result<(Received, u64), PathError> {
        for _ in 0..crate::sync::RETRY_LIMIT {
            let found = self.find(slot, sel);
            self.directory().unprotect(slot);
            let c = match found {
                Ok(Some(c)) => c,
                Ok(None) => return Err(PathError::Empty),
                Err(e) => return Err(e),
            };
            let size = c.size as usize;
            if size > buf.len() {
                return Err(PathError::TooBig);
            }
            if self.copy_if_still_queued(c.node, c.data, &mut buf[..size])? {
                let r = Received {
                    mtype: c.mtype,
                    len: size,
                };
                return Ok((r, c.seq));
            }
        }
        Err(PathError::NoMemory)
    }
}
