//! Per-type FIFO: a Michael–Scott queue of message nodes in which taking a
//! message is a CAS on the message's own state word.
//!
//! Based on M. M. Michael and M. L. Scott, "Simple, Fast, and Practical
//! Non-Blocking and Blocking Concurrent Queue Algorithms", PODC 1996: a singly
//! linked list with a dummy node, `head` and `tail` as tagged references, and
//! an enqueue that CASes the last node's `next` from nil to the new node, then
//! swings `tail` (helped by anyone who finds it lagging). Two changes make it
//! fit shared memory and crash recovery:
//!
//! 1. **Take by state, unlink later.** A receiver takes message `x` with one CAS
//!    `QUEUED -> TAKEN(slot)` on `x.state` (logical deletion as in Harris's
//!    list). The CAS is the linearisation point and also records who holds the
//!    message, in the message itself, so recovery knows what a dead receiver
//!    held. Unlinking is separate: anyone moves `head` past consumed nodes, and
//!    the node left at `head` is the dummy. A node is freed by whichever of two
//!    parties comes second: its taker (who marks it `DONE` once it has copied
//!    the text) and the unlinker (who marks it `UNLINKED` once `head` has moved
//!    past it); both marks are bits of the same state word, so exactly one CAS
//!    sees both and frees it.
//! 2. **Indices tagged with generations** (see `layout::NodeRef`). `head`,
//!    `tail` and `next` hold `gen << 32 | index`; even a nil `next` carries the
//!    generation of the node it belongs to, so an enqueuer whose CAS targets a
//!    node that has since been freed and reused fails instead of linking into a
//!    stranger's list (the ABA problem of the original, solved there by
//!    counted pointers).
//!
//! Invariants (`E` an entry, nodes reachable from `E.head`):
//! - `E.head` is never past `E.tail`: `advance` swings a lagging tail first.
//! - The node at `E.head` is consumed (`TAKEN` or `DONE`), never `QUEUED`.
//! - A `HELD` node is never reachable: senders mark their node `QUEUED` before
//!   they link it.
//! - Fields other than `state` and `next` do not change while a node is
//!   reachable; a reader validates what it read with a CAS that includes the
//!   generation.
//!
//! Every walk is bounded by the number of nodes, so a corrupted or hostile
//! mapping yields [`Corrupt`] instead of a hang.

use crate::cell_pool::{CellState, FreeBatch, Pool};
use crate::layout::{Entry, Node, NodeRef, NIL};
use crate::sync::{Ordering, RETRY_LIMIT};

/// Node statuses (bits 16..24 of the owner half of `state`).
pub(crate) mod status {
    /// In the pool.
    pub(crate) const FREE: u32 = 0;
    /// Taken from the pool by the slot in the low 16 bits, not yet queued.
    pub(crate) const HELD: u32 = 1;
    /// A message waiting to be received (or being linked).
    pub(crate) const QUEUED: u32 = 2;
    /// Taken by the receiver in the low 16 bits, which is copying its text.
    pub(crate) const TAKEN: u32 = 3;
    /// Consumed: its text is released; it is a dummy or awaiting unlink.
    pub(crate) const DONE: u32 = 4;
}

/// Set in a node's state once `head` has moved past it.
const UNLINKED: u32 = 1 << 24;

/// A node's state word: the node pool's [`CellState`] (`gen << 32 | owner`),
/// whose owner half is `UNLINKED | status << 16 | slot` (the slot of a `HELD`
/// or `TAKEN` node's holder, 0 otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NodeState(pub(crate) u64);

impl NodeState {
    /// The state of a node of generation `gen` in `status`, held by `slot`.
    pub(crate) fn new(gen: u32, status: u32, slot: usize) -> NodeState {
        NodeState(CellState::new(gen, Self::owner(status, slot)).0)
    }

    /// The owner half the node pool stores for `status` and `slot` (what
    /// `Pool::alloc` is given).
    pub(crate) fn owner(status: u32, slot: usize) -> u32 {
        status << 16 | (slot as u32 & 0xffff)
    }

    /// The word as the node pool sees it.
    pub(crate) fn cell(self) -> CellState {
        CellState(self.0)
    }

    /// The node's generation.
    pub(crate) fn gen(self) -> u32 {
        self.cell().gen()
    }

    /// The node's status (`status::*`).
    pub(crate) fn status(self) -> u32 {
        (self.cell().owner() >> 16) & 0xff
    }

    /// The slot recorded with a `HELD` or `TAKEN` status.
    pub(crate) fn slot(self) -> usize {
        (self.cell().owner() & 0xffff) as usize
    }

    /// Whether the node is in the pool (its owner half is zero).
    pub(crate) fn is_free(self) -> bool {
        self.cell().is_free()
    }

    /// Whether `head` has moved past the node.
    pub(crate) fn is_unlinked(self) -> bool {
        self.cell().owner() & UNLINKED != 0
    }

    /// The same state with `UNLINKED` set.
    pub(crate) fn with_unlinked(self) -> NodeState {
        NodeState(self.0 | UNLINKED as u64)
    }

    /// The same state without its `UNLINKED` flag.
    pub(crate) fn without_unlinked(self) -> NodeState {
        NodeState(self.0 & !(UNLINKED as u64))
    }

    /// Whether the owner half uses no bit above `UNLINKED` (a state no
    /// version of this code writes is damage).
    pub(crate) fn has_known_bits_only(self) -> bool {
        self.cell().owner() < UNLINKED << 1
    }
}

impl From<CellState> for NodeState {
    fn from(s: CellState) -> NodeState {
        NodeState(s.0)
    }
}

/// The shared structure was found inconsistent (a corrupted or hostile
/// mapping); the operation gives up instead of looping or going out of bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Corrupt;

/// The FIFO of one type entry.
pub(crate) struct Fifo<'a> {
    pub(crate) nodes: &'a [Node],
    pub(crate) pool: &'a Pool<'a, [Node]>,
    pub(crate) entry: &'a Entry,
    /// The caller's own free batch, if it frees nodes through one (see
    /// `cell_pool::FreeBatch`); `None`: each free clears its bit at once.
    pub(crate) freed: Option<&'a FreeBatch>,
}

/// A queued message found by [`Fifo::first_queued`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    pub(crate) node: NodeRef,
    pub(crate) seq: u64,
    pub(crate) size: u32,
    pub(crate) data: u32,
    pub(crate) mtype: i64,
    /// `EntryRef` of the node's entry, packed.
    pub(crate) entry: u64,
}

/// The message node `index` holds, if it is queued now (read as
/// `first_queued` reads a node: the fields are kept only if the state word,
/// generation included, is the same before and after).
pub(crate) fn queued_candidate(nodes: &[Node], index: u32) -> Option<Candidate> {
    let n = nodes.get(index as usize)?;
    // Acquire: the caller reached the node through SYNC(link) or
    // SYNC(arrival); this and the re-read below validate the fields.
    let s = NodeState(n.state.load(Ordering::Acquire));
    if s != NodeState::new(s.gen(), status::QUEUED, 0) {
        return None;
    }
    // Relaxed (all): validated by the re-read of the state below.
    let c = Candidate {
        node: NodeRef::new(index, s.gen()),
        seq: n.seq.load(Ordering::Relaxed),
        size: n.size.load(Ordering::Relaxed),
        data: n.data.load(Ordering::Relaxed),
        mtype: n.mtype.load(Ordering::Relaxed),
        entry: n.entry.load(Ordering::Relaxed),
    };
    (n.state.load(Ordering::Acquire) == s.0).then_some(c)
}

/// The nil `next` of a node of generation `gen`.
pub(crate) fn nil_next(gen: u32) -> u64 {
    NodeRef::new(NIL, gen).0
}

impl<'a> Fifo<'a> {
    /// The node `r` names, if its index is in range.
    pub(crate) fn node(&self, r: NodeRef) -> Result<&'a Node, Corrupt> {
        self.nodes.get(r.index() as usize).ok_or(Corrupt)
    }

    /// Starts an empty FIFO whose dummy is `dummy` (a node this caller holds,
    /// already `DONE` with a nil `next`). Before the entry is published.
    pub(crate) fn init(&self, dummy: NodeRef) {
        // SYNC(entry_incarnation): Release, so that a late finisher of the
        // entry's previous incarnation that reads this head also sees the
        // entry's new state, and knows the head is not its own (see
        // `type_dir::Directory::finish_removal`). Lookups reach the FIFO
        // through the publish of the entry (SYNC(publish)).
        self.entry.head.store(dummy.0, Ordering::Release);
        self.entry.tail.store(dummy.0, Ordering::Relaxed);
    }

    /// Appends node `h` (which the caller holds, `QUEUED`, nil `next`);
    /// returns the node it was linked after.
    ///
    /// `before_cas(pred)` runs before every attempt to link after `pred`, so the
    /// caller can record it for recovery (see `recovery`: whether a dead
    /// sender's node got linked is decided from the last `pred` it recorded).
    pub(crate) fn link(
        &self,
        h: NodeRef,
        mut before_cas: impl FnMut(NodeRef),
    ) -> Result<NodeRef, Corrupt> {
        for _ in 0..RETRY_LIMIT {
            // Acquire: pairs with the Release of whoever linked or swung to it.
            let t = NodeRef(self.entry.tail.load(Ordering::Acquire));
            let tn = self.node(t)?;
            let next = NodeRef(tn.next.load(Ordering::Acquire));
            if self.entry.tail.load(Ordering::Acquire) != t.0 {
                crate::sync::spin_hint();
                continue;
            }
            if next.is_nil() {
                if next.gen() != t.gen() {
                    return Err(Corrupt); // a live tail's nil carries its own gen
                }
                before_cas(t);
                // SYNC(link): Release publishes the node's fields and text to
                // receivers, who reach it with Acquire loads of `next`.
                if tn
                    .next
                    .compare_exchange(next.0, h.0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    // Release: see SYNC(link). Failure means someone helped.
                    let _ = self.entry.tail.compare_exchange(
                        t.0,
                        h.0,
                        Ordering::Release,
                        Ordering::Relaxed,
                    );
                    return Ok(t);
                }
            } else {
                // Help a lagging tail. Release: see SYNC(link).
                let _ = self.entry.tail.compare_exchange(
                    t.0,
                    next.0,
                    Ordering::Release,
                    Ordering::Relaxed,
                );
            }
        }
        Err(Corrupt)
    }

    /// The oldest message not yet taken, if any.
    pub(crate) fn first_queued(&self) -> Result<Option<Candidate>, Corrupt> {
        'restart: for _ in 0..RETRY_LIMIT {
            // Acquire: SYNC(head).
            let h = NodeRef(self.entry.head.load(Ordering::Acquire));
            let mut cur = h;
            for _ in 0..=self.nodes.len() {
                let cn = self.node(cur)?;
                let next = NodeRef(cn.next.load(Ordering::Acquire));
                // The node may have been freed under us: its state must still
                // carry the generation we reached it by.
                let cs = NodeState(cn.state.load(Ordering::Acquire));
                if cs.gen() != cur.gen() {
                    // Only nodes `head` has moved past are ever freed, so with
                    // `head` unchanged this is a corrupted link or state, not
                    // a race: retrying would walk into it forever.
                    if self.entry.head.load(Ordering::Acquire) == h.0 {
                        return Err(Corrupt);
                    }
                    crate::sync::spin_hint();
                    continue 'restart;
                }
                if cur != h && cs.status() == status::QUEUED {
                    let c = Candidate {
                        node: cur,
                        seq: cn.seq.load(Ordering::Relaxed),
                        size: cn.size.load(Ordering::Relaxed),
                        data: cn.data.load(Ordering::Relaxed),
                        mtype: cn.mtype.load(Ordering::Relaxed),
                        entry: cn.entry.load(Ordering::Relaxed),
                    };
                    // The fields are valid only if the node is still the
                    // same incarnation and still queued.
                    if cn.state.load(Ordering::Acquire) != cs.0 {
                        crate::sync::spin_hint();
                        continue 'restart;
                    }
                    return Ok(Some(c));
                }
                if next.is_nil() {
                    return Ok(None);
                }
                cur = next;
            }
            return Err(Corrupt); // longer than the pool: a cycle
        }
        Err(Corrupt)
    }

    /// Takes the queued message `x` for `slot`; `false` if another receiver
    /// took it first or it is no longer this incarnation.
    pub(crate) fn take(&self, x: NodeRef, slot: usize) -> Result<bool, Corrupt> {
        let xn = self.node(x)?;
        let queued = NodeState::new(x.gen(), status::QUEUED, 0).0;
        let taken = NodeState::new(x.gen(), status::TAKEN, slot).0;
        #[cfg(loom)]
        if crate::sync::mutant(crate::sync::Mutant::FifoTakeWithoutCas) {
            let won = xn.state.load(Ordering::Acquire) == queued;
            if won {
                xn.state.store(taken, Ordering::Relaxed);
            }
            return Ok(won);
        }
        // SYNC(link): Acquire (the take) pairs with the link's Release, so the
        // text is visible.
        match xn
            .state
            .compare_exchange(queued, taken, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => Ok(true),
            // Still this incarnation and queued, yet not the state a sender
            // writes: stray bits from a corrupted mapping. Nobody can take it,
            // so say so rather than let the caller retry forever.
            Err(now)
                if NodeState(now).gen() == x.gen() && NodeState(now).status() == status::QUEUED =>
            {
                Err(Corrupt)
            }
            Err(_) => Ok(false),
        }
    }

    /// Moves `head` past consumed nodes, as far as it can, and frees what it
    /// unlinks once its taker is done with it. Safe for anyone to call.
    pub(crate) fn advance(&self) -> Result<(), Corrupt> {
        for _ in 0..RETRY_LIMIT {
            // Acquire: SYNC(head).
            let h = NodeRef(self.entry.head.load(Ordering::Acquire));
            let hn = self.node(h)?;
            let next = NodeRef(hn.next.load(Ordering::Acquire));
            if self.entry.head.load(Ordering::Acquire) != h.0 {
                crate::sync::spin_hint();
                continue;
            }
            if next.is_nil() {
                return Ok(());
            }
            let nn = self.node(next)?;
            let ns = NodeState(nn.state.load(Ordering::Acquire));
            if ns.gen() != next.gen() {
                // `head` moved on and `next` was recycled: re-read
                crate::sync::spin_hint();
                continue;
            }
            let st = ns.status();
            if st != status::TAKEN && st != status::DONE {
                return Ok(()); // the next node still holds a message
            }
            // Never let head pass tail. `tail` is the last node or the one
            // before it (an enqueue links only at a node whose `next` is nil,
            // after helping `tail` there), so while `next` has a successor
            // `tail` cannot be `h`, and the senders' line need not be read.
            // `next` is not freed while `head` is `h` (only nodes `head` has
            // passed are), so its `next` is what the CAS below relies on.
            let has_successor = !NodeRef(nn.next.load(Ordering::Acquire)).is_nil();
            if !has_successor && self.entry.tail.load(Ordering::Acquire) == h.0 {
                let t = h.0;
                // Release: see SYNC(link).
                let _ = self.entry.tail.compare_exchange(
                    t,
                    next.0,
                    Ordering::Release,
                    Ordering::Relaxed,
                );
            }
            // SYNC(head): AcqRel; readers of `head` Acquire it.
            if self
                .entry
                .head
                .compare_exchange(h.0, next.0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                self.mark_unlinked(h);
            }
        }
        Err(Corrupt)
    }

    /// Frees node `x` (in state `s`), through the caller's free batch if it
    /// has one; whether this call freed it.
    fn free_node(&self, x: NodeRef, s: NodeState) -> bool {
        match self.freed {
            Some(batch) => self.pool.free_into(x.index(), s.cell(), batch),
            None => self.pool.free(x.index(), s.cell()),
        }
    }

    /// `head` has moved past `x`: flag it, or free it if its taker is done.
    pub(crate) fn mark_unlinked(&self, x: NodeRef) {
        let Ok(xn) = self.node(x) else { return };
        for _ in 0..RETRY_LIMIT {
            let s = NodeState(xn.state.load(Ordering::Acquire));
            if s.gen() != x.gen() || s.is_unlinked() {
                return;
            }
            if s.status() == status::DONE {
                if self.free_node(x, s) {
                    return;
                }
                continue;
            }
            // SYNC(node_state): AcqRel, against the taker's DONE CAS.
            if xn
                .state
                .compare_exchange(
                    s.0,
                    s.with_unlinked().0,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                return;
            }
        }
    }

    /// The taker of `x` is done with it (its text is copied and its data cell
    /// freed): mark it `DONE`, or free it if `head` has already moved past it.
    /// Returns `false` if `x` was not taken by `slot` (e.g. recovery finished it).
    pub(crate) fn finish(&self, x: NodeRef, slot: usize) -> Result<bool, Corrupt> {
        let xn = self.node(x)?;
        let taken = NodeState::new(x.gen(), status::TAKEN, slot);
        for _ in 0..RETRY_LIMIT {
            let s = NodeState(xn.state.load(Ordering::Acquire));
            if s == taken.with_unlinked() {
                if self.free_node(x, s) {
                    return Ok(true);
                }
                continue;
            }
            if s != taken {
                return Ok(false);
            }
            let done = NodeState::new(x.gen(), status::DONE, 0);
            // SYNC(node_state): Release so that our reads of the text happen
            // before whoever frees the node and reuses it.
            if xn
                .state
                .compare_exchange(s.0, done.0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(true);
            }
        }
        Err(Corrupt)
    }

    /// Whether the FIFO holds no node after its dummy (messages taken but not
    /// yet unlinked count as "not empty" until `advance` removes them).
    pub(crate) fn is_drained(&self) -> Result<bool, Corrupt> {
        // Acquire: SYNC(head).
        let h = NodeRef(self.entry.head.load(Ordering::Acquire));
        let hn = self.node(h)?;
        Ok(NodeRef(hn.next.load(Ordering::Acquire)).is_nil())
    }

    /// Every node reachable from `head`, head first, as a consistent-enough
    /// snapshot: the walk restarts if a node it stands on is recycled. Used by
    /// MSG_COPY and recovery, never on the fast path. Bounded.
    pub(crate) fn snapshot(&self) -> Result<Vec<(NodeRef, NodeState)>, Corrupt> {
        'restart: for _ in 0..RETRY_LIMIT {
            let mut out = Vec::new();
            // Acquire: SYNC(head).
            let h = NodeRef(self.entry.head.load(Ordering::Acquire));
            let mut cur = h;
            for _ in 0..=self.nodes.len() {
                let cn = self.node(cur)?;
                let s = NodeState(cn.state.load(Ordering::Acquire));
                let next = NodeRef(cn.next.load(Ordering::Acquire));
                let again = NodeState(cn.state.load(Ordering::Acquire));
                if again.gen() != cur.gen() || s.gen() != cur.gen() {
                    // As in `first_queued`: with `head` unchanged this is a
                    // corrupted link or state, which no retry gets past.
                    if self.entry.head.load(Ordering::Acquire) == h.0 {
                        return Err(Corrupt);
                    }
                    crate::sync::spin_hint();
                    continue 'restart;
                }
                out.push((cur, s));
                if next.is_nil() {
                    return Ok(out);
                }
                cur = next;
            }
            return Err(Corrupt);
        }
        Err(Corrupt)
    }
}
