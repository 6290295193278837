//! The arrival index: a ring of positions in send order, so that a type-0
//! receive (`msgtyp == 0`, the oldest message) finds its message in O(1)
//! amortised, whatever the number of types queued.
//!
//! # Shape
//! Every send claims a *position* `p` from the queue-wide counter
//! (`QueueHeader::next_seq`, the stamp its node already carries as `seq`).
//! After linking its node into its type's FIFO, the sender records
//! `(lap(p), node)` in ring slot `p mod R` (one CAS on that slot). `head`
//! is the lowest position that may still hold a queued message; a type-0
//! receiver reads positions from `head` on and takes the first one whose
//! node is still queued with `seq == p`; it moves `head` past each leading
//! position that is settled (consumed). Typed receivers never touch the ring:
//! they take from their FIFO, and the position they consumed is seen as
//! settled by the next type-0 receiver that passes it. This is the ticketed
//! ring of bounded MPMC queues (D. Vyukov, "Bounded MPMC queue", 2010, and
//! the lap-tagged cells of `crossbeam`'s `ArrayQueue`), used as an index
//! beside the per-type FIFOs rather than as the queue itself, so a message
//! nobody takes never blocks the ring.
//!
//! # What a position looks like from the ring (`lap` = `p / R`)
//! - the slot holds a record of an *earlier* lap (or none): the position was
//!   claimed and its sender has not recorded it yet: *in flight*. It is
//!   passed over without moving `head` (its message is not sent yet);
//! - the slot holds a record of a *later* lap: *settled*;
//! - the slot holds this lap's record: *queued* if its node is still queued
//!   with `seq == p`, else settled. The node's own state word and stamp
//!   decide; the record is only a pointer to check.
//!
//! # Stragglers and doubt: a message the ring lets go
//! A message still queued when its slot is needed again `R` positions later
//! (a type nobody reads), or whose sender was so slow that a later lap
//! already took its slot, leaves the ring. The sender that takes the slot
//! first keeps it among the *stragglers* (a few entries in the header,
//! counted before they are filled), which every lookup reads after the ring
//! and which lookups free once their message is gone. Only when the
//! stragglers are all in use is a *doubt* raised instead (`doubts`, SeqCst,
//! before the CAS that drops the record): type-0 receivers then scan the
//! type heads while `doubts != cleared`, and `cleared` catches up with
//! `doubts` when a receiver sees the queue empty (no message counted) after
//! reading `doubts`, since every message that caused a doubt is gone then.

//! # Invariants
//! - Every position below `head` is settled, or its message is a straggler
//!   or caused a doubt.
//! - A sender records a position at most once; a record is replaced only by
//!   a record of a later lap.
//!
//! Every loop is bounded (a corrupted ring or counter yields a doubt or an
//! empty answer, never a hang or an out-of-bounds access).

use crate::sync::{AtomicU64, Ordering};

/// What a ring slot holds: `(lap + 1) << 32 | node`; 0 when never written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Record(u64);

impl Record {
    const NONE: Record = Record(0);

    fn new(lap: u32, node: u32) -> Record {
        Record((lap as u64) << 32 | node as u64)
    }
    /// `lap + 1` of the position recorded (wrapping), 0 for none.
    fn lap(self) -> u32 {
        (self.0 >> 32) as u32
    }
    fn node(self) -> u32 {
        self.0 as u32
    }
}

/// `lap + 1` of position `p` in a ring of `1 << shift` slots (wrapping; 0 is
/// reserved for "never written", which a wrap reaches after 2^32 laps).
fn lap_of(p: u64, shift: u32) -> u32 {
    ((p >> shift) as u32).wrapping_add(1)
}

/// Slots of the ring on one cache line.
const SLOTS_PER_LINE: usize = 64 / std::mem::size_of::<u64>();

/// Slots of the ring in one block of [`spread`] (512 KiB of them): the
/// default namespace's rings (65 536 slots) are one block.
const SLOTS_PER_BLOCK: usize = 1 << 16;

/// The ring index of position `p` in a ring of `1 << shift` slots. The ring
/// is cut into blocks of [`SLOTS_PER_BLOCK`] positions (or is one block when
/// smaller); within a block, consecutive positions go to consecutive cache
/// lines, and positions on the same line are `block / SLOTS_PER_LINE` apart.
/// Without this spread a sender recording position `p + 1` would take back
/// the line a receiver is reading position `p` from, once per message (a
/// 64 B stream ran at half speed when lines were shared at its depth); with
/// it, the two share a line only when the queue is a multiple of
/// `block / SLOTS_PER_LINE` positions deep (8 192 for a whole block). The
/// spread stays within a block so that each end of a deep queue revisits a
/// line within half a MiB: spread over a whole ring of 2^20 slots (a
/// namespace allowing 800 000 messages), each position was a line last
/// touched 8 MiB ago, and every send missed on it. A bijection of
/// `p mod r`, so the ring holds what it did. Shifts and masks only: `%` and
/// `/` by the run-time size compiled to a division, some 25 cycles on each
/// of the four to six calls a type-0 receive makes.
fn spread(p: u64, shift: u32) -> usize {
    const LINE_SHIFT: u32 = SLOTS_PER_LINE.trailing_zeros();
    let mask = (1usize << shift) - 1;
    let p = (p as usize) & mask;
    if shift < 2 * LINE_SHIFT {
        return p; // too small to spread (loom models)
    }
    let block_shift = shift.min(SLOTS_PER_BLOCK.trailing_zeros());
    let within = p & ((1 << block_shift) - 1);
    let lines_shift = block_shift - LINE_SHIFT;
    (p - within) | (within & ((1 << lines_shift) - 1)) << LINE_SHIFT | within >> lines_shift
}

/// Laps compared as distances on a circle of 2^32 laps.
fn lap_cmp(a: u32, b: u32) -> std::cmp::Ordering {
    (a.wrapping_sub(b) as i32).cmp(&0)
}

/// A type-0 lookup's answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Oldest<C> {
    /// The oldest queued message.
    Found(C),
    /// No message is queued (positions in flight are sends not yet done).
    Empty,
    /// The index may miss a message: scan the types instead.
    Unsure,
}

/// The doubt counters of a queue's arrival index (see the module doc).
#[repr(C)]
pub(crate) struct Doubts {
    /// Doubts raised so far.
    pub(crate) raised: AtomicU64,
    /// The value of `raised` up to which doubts are known resolved.
    pub(crate) cleared: AtomicU64,
}

/// Messages that gave their ring slot up while still queued, kept aside
/// (see the module doc): `count` (a hint, never below the entries in use),
/// then the entries.
#[repr(C)]
pub(crate) struct Stragglers {
    pub(crate) count: AtomicU64,
    pub(crate) slots: [AtomicU64; STRAGGLERS],
}

/// Entries of [`Stragglers`]; a message left behind beyond these raises a
/// doubt (loom models use one, to reach that path).
pub(crate) const STRAGGLERS: usize = if cfg!(loom) { 1 } else { 64 };

/// A straggler entry: `(node + 1) << 32 | low 32 bits of its stamp`, 0 for
/// a free entry. The node's own stamp (checked when it is probed) supplies
/// the rest.
#[derive(Clone, Copy)]
struct Straggler(u64);

impl Straggler {
    fn new(node: u32, p: u64) -> Straggler {
        Straggler(((node as u64) + 1) << 32 | (p as u32) as u64)
    }
    fn node(self) -> u32 {
        ((self.0 >> 32) as u32).wrapping_sub(1)
    }
    fn is_at(self, p: u64) -> bool {
        self.0 as u32 == p as u32
    }
}

/// Positions one lookup reads beyond `R` before it gives up (senders that
/// claimed a position and have not recorded it yet are passed over).
const LOOKUP_SLACK: u64 = 4096;

/// A queue's arrival index.
pub(crate) struct Arrivals<'a> {
    /// `R` slots, `R` a power of two.
    pub(crate) ring: &'a [AtomicU64],
    /// The lowest position that may still be queued.
    ///
    /// SYNC(arrivals_head): moved forward with Release only past positions
    /// found settled (after an Acquire read of their slot); read with Acquire
    /// by lookups, so a doubt raised before a record that settled a position
    /// below `head` is visible to whoever starts from `head`.
    pub(crate) head: &'a AtomicU64,
    /// The position counter (`next_seq`): positions below it are claimed.
    pub(crate) claimed: &'a AtomicU64,
    pub(crate) doubts: &'a Doubts,
    pub(crate) stragglers: &'a Stragglers,
}

impl Arrivals<'_> {
    fn shift(&self) -> u32 {
        self.ring.len().trailing_zeros()
    }

    /// The ring slot of position `p`.
    pub(crate) fn slot(&self, p: u64) -> &AtomicU64 {
        // `ring.len()` is a power of two (`layout`), so the index is in bounds.
        &self.ring[spread(p, self.shift())]
    }

    /// Records that the message in `node` (stamped `p`) is queued. Called by
    /// its sender after linking it, and by recovery for a dead sender.
    /// `queued_seq(node)`: the stamp of the message `node` holds, if queued.
    pub(crate) fn record(&self, p: u64, node: u32, queued_seq: impl Fn(u32) -> Option<u64>) {
        let shift = self.shift();
        let lap = lap_of(p, shift);
        let mine = Record::new(lap, node);
        let slot = self.slot(p);
        // Each failed CAS below is another sender's record in our slot; past
        // a few of them the ring is too contended (or damaged) to be worth
        // fighting for, and a doubt (a scan of the types until the queue is
        // next empty) is the correct, slower answer. Not `RETRY_LIMIT`: this
        // loop has a fallback rather than an error.
        const RECORD_ATTEMPTS: usize = 64;
        for _ in 0..RECORD_ATTEMPTS {
            // Acquire: the occupant's node is then checked (SYNC(arrival)).
            let cur = Record(slot.load(Ordering::Acquire));
            if cur == mine {
                return; // recorded already (recovery after the sender)
            }
            if cur != Record::NONE {
                match lap_cmp(cur.lap(), lap) {
                    std::cmp::Ordering::Less => {
                        // An earlier lap's message still queued (a type
                        // nobody reads) gives its slot up: it is kept among
                        // the stragglers, before the CAS that drops it.
                        let back = (lap.wrapping_sub(cur.lap()) as u64) << shift;
                        match p.checked_sub(back) {
                            Some(q) if queued_seq(cur.node()) == Some(q) => {
                                self.keep_straggler(cur.node(), q)
                            }
                            Some(_) => {}
                            None => self.raise_doubt(),
                        }
                    }
                    // A later lap took the slot (we were slow): keep ours
                    // among the stragglers. A corrupted record: doubt.
                    std::cmp::Ordering::Greater => return self.keep_straggler(node, p),
                    std::cmp::Ordering::Equal => return self.raise_doubt(),
                }
            }
            // SYNC(arrival): Release publishes the record after the link
            // (and a straggler or doubt kept above); lookups read it with
            // Acquire, and read the stragglers after it.
            if slot
                .compare_exchange(cur.0, mine.0, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
        self.raise_doubt();
    }

    /// Keeps the queued message in `node`, stamped `p`, among the
    /// stragglers; a doubt if they are all in use.
    fn keep_straggler(&self, node: u32, p: u64) {
        #[cfg(loom)]
        if crate::sync::mutant(crate::sync::Mutant::ArrivalsEvictSilently) {
            return;
        }
        let entry = Straggler::new(node, p);
        // SeqCst: counted before it is stored, so that a lookup that skips
        // the stragglers on a zero count cannot miss it (SYNC(stragglers)).
        self.stragglers.count.fetch_add(1, Ordering::SeqCst);
        for s in &self.stragglers.slots {
            if s.load(Ordering::Relaxed) == 0
                // SYNC(stragglers): Release; lookups read it with Acquire.
                && s.compare_exchange(0, entry.0, Ordering::Release, Ordering::Relaxed).is_ok()
            {
                return;
            }
        }
        self.stragglers.count.fetch_sub(1, Ordering::SeqCst);
        self.raise_doubt();
    }

    /// Marks the index unreliable until the queue is next seen empty.
    pub(crate) fn raise_doubt(&self) {
        #[cfg(loom)]
        if crate::sync::mutant(crate::sync::Mutant::ArrivalsEvictSilently) {
            return;
        }
        // SeqCst: ordered before the record CAS that drops a message from
        // the index, and read (SeqCst) by lookups after they passed it.
        self.doubts.raised.fetch_add(1, Ordering::SeqCst);
    }

    fn doubtful(&self) -> bool {
        // SeqCst (both): see `raise_doubt`.
        self.doubts.raised.load(Ordering::SeqCst) != self.doubts.cleared.load(Ordering::SeqCst)
    }

    /// After a full scan found no message: if the queue holds none at all
    /// (`is_empty`, read after the doubts), every doubt so far is resolved.
    pub(crate) fn settle(&self, is_empty: impl Fn() -> bool) {
        // SeqCst: the emptiness check below must come after this read.
        let raised = self.doubts.raised.load(Ordering::SeqCst);
        if raised != self.doubts.cleared.load(Ordering::SeqCst) && is_empty() {
            self.doubts.cleared.fetch_max(raised, Ordering::SeqCst);
        }
    }

    /// The oldest queued message. `probe(node)`: the stamp and the message
    /// `node` holds, if it holds a queued one.
    #[cfg(any(test, loom))]
    pub(crate) fn oldest<C>(&self, probe: impl Fn(u32) -> Option<(u64, C)>) -> Oldest<C> {
        self.oldest_wanted(probe, |_| true, 0)
    }

    /// The oldest queued message that `wanted` accepts (MSG_EXCEPT: not of
    /// one type), passing over at most `max_unwanted` queued messages it
    /// refuses (which keep `head` where it is); [`Oldest::Unsure`] beyond.
    pub(crate) fn oldest_wanted<C>(
        &self,
        probe: impl Fn(u32) -> Option<(u64, C)>,
        wanted: impl Fn(&C) -> bool,
        max_unwanted: usize,
    ) -> Oldest<C> {
        let candidate = |node: u32, p: u64| probe(node).filter(|(s, _)| *s == p).map(|(_, c)| c);
        if let Some(found) = self.wanted_at_head(&candidate, &wanted) {
            let best = self.with_stragglers(Some(found), &probe, &wanted);
            return self.unsure_or(best.map_or(Oldest::Empty, |(_, c)| Oldest::Found(c)));
        }
        let shift = self.shift();
        let r = self.ring.len() as u64;
        // Relaxed: a bound; positions claimed later are sends not yet done.
        let end = self.claimed.load(Ordering::Relaxed);
        // Acquire: SYNC(arrivals_head).
        let mut start = self.head.load(Ordering::Acquire);
        if start > end {
            return self.unsure_or(Oldest::Empty); // corrupted head
        }
        if end - start > r {
            start = self.catch_up(end, &candidate);
        }
        let mut limit = end.min(start.saturating_add(r + LOOKUP_SLACK));
        let mut best = None;
        let mut moving = true;
        // A position passed as in flight may have been recorded by the time a
        // later one was read (by the same sender, earlier): after a candidate
        // is found behind such a position, the positions before it are read
        // again, until a pass finds nothing in flight before its candidate.
        for _ in 0..LOOKUP_SLACK {
            let mut in_flight = false;
            let mut found = None;
            let mut unwanted = 0;
            for p in start..limit {
                // Acquire: SYNC(arrival).
                let rec = Record(self.slot(p).load(Ordering::Acquire));
                let lap = lap_of(p, shift);
                if rec == Record::NONE || lap_cmp(rec.lap(), lap).is_lt() {
                    in_flight = true;
                    moving = false; // not sent yet
                    continue;
                }
                if lap_cmp(rec.lap(), lap).is_eq() {
                    if let Some(c) = candidate(rec.node(), p) {
                        if wanted(&c) {
                            found = Some((p, c));
                            break;
                        }
                        // Queued but refused: `head` stays before it.
                        unwanted += 1;
                        if unwanted > max_unwanted {
                            return Oldest::Unsure;
                        }
                        moving = false;
                        continue;
                    }
                }
                if moving {
                    // Settled. Release: SYNC(arrivals_head). A failure means
                    // another lookup moved it: fine either way.
                    let _ =
                        self.head
                            .compare_exchange(p, p + 1, Ordering::Release, Ordering::Relaxed);
                }
            }
            match found {
                Some((p, c)) => {
                    best = Some((p, c));
                    if !in_flight {
                        break;
                    }
                    limit = p; // read what was in flight before it again
                    moving = false;
                }
                None => break,
            }
        }
        let best = self.with_stragglers(best, &probe, &wanted);
        self.unsure_or(best.map_or(Oldest::Empty, |(_, c)| Oldest::Found(c)))
    }

    /// The fast path of [`Arrivals::oldest_wanted`]: the message at `head`,
    /// moving `head` over at most a few settled positions first. Needs no
    /// read of the position counter, which every sender writes: a receiver
    /// keeping up with a sender then shares only the ring's slots with it.
    /// `None` when the general lookup must decide (a position in flight or
    /// never claimed, a slot of a later lap, an unwanted message).
    ///
    /// Equivalent to the general lookup's first pass when that pass finds its
    /// candidate before any position in flight: positions below `head` are
    /// settled, so nothing older can be in flight.
    fn wanted_at_head<C>(
        &self,
        candidate: &impl Fn(u32, u64) -> Option<C>,
        wanted: &impl Fn(&C) -> bool,
    ) -> Option<(u64, C)> {
        /// Settled positions the fast path moves `head` over before it
        /// leaves the rest to the general lookup.
        const FAST_STEPS: usize = 8;
        let shift = self.shift();
        // Acquire: SYNC(arrivals_head).
        let mut p = self.head.load(Ordering::Acquire);
        for _ in 0..FAST_STEPS {
            // Acquire: SYNC(arrival).
            let rec = Record(self.slot(p).load(Ordering::Acquire));
            if rec == Record::NONE || !lap_cmp(rec.lap(), lap_of(p, shift)).is_eq() {
                return None;
            }
            if let Some(c) = candidate(rec.node(), p) {
                return wanted(&c).then_some((p, c));
            }
            // Settled. Release: SYNC(arrivals_head); a failure means another
            // lookup moved it, from where we go on.
            p = match self
                .head
                .compare_exchange(p, p + 1, Ordering::Release, Ordering::Acquire)
            {
                Ok(_) => p + 1,
                Err(now) => now,
            };
        }
        None
    }

    /// Warms the cache for the next type-0 receives, after one found its
    /// message at position `p`: a receive with a backlog of many types
    /// otherwise misses on the ring, the node and its type's entry in turn,
    /// each last touched a whole queue ago. Starts loading the ring slot four
    /// positions ahead and calls `warm(node, ahead)` for the messages one to
    /// three ahead (whose slots earlier receives started loading), so that
    /// each line is asked for a receive or more before it is read. Nothing
    /// when position `p + 1` holds no message yet (no backlog: the lines
    /// ahead are the ones senders are writing). Hints only: nothing is
    /// decided on what is read here.
    pub(crate) fn look_ahead(&self, p: u64, warm: impl Fn(u32, u64)) {
        let shift = self.shift();
        let recorded = |ahead: u64| {
            let q = p.wrapping_add(ahead);
            // Relaxed: a hint (see above).
            let rec = Record(self.slot(q).load(Ordering::Relaxed));
            (rec != Record::NONE && lap_cmp(rec.lap(), lap_of(q, shift)).is_eq())
                .then(|| rec.node())
        };
        let Some(next) = recorded(1) else { return };
        crate::sync::prefetch(self.slot(p.wrapping_add(4)) as *const AtomicU64 as *const u8);
        for ahead in [3, 2] {
            if let Some(node) = recorded(ahead) {
                warm(node, ahead);
            }
        }
        warm(next, 1);
    }

    /// `best` or an older message among the stragglers that `wanted` accepts
    /// (freeing entries whose message is gone).
    fn with_stragglers<C>(
        &self,
        mut best: Option<(u64, C)>,
        probe: &impl Fn(u32) -> Option<(u64, C)>,
        wanted: &impl Fn(&C) -> bool,
    ) -> Option<(u64, C)> {
        // Messages that gave their slot up are older than their slot's new
        // record; read after the ring (SYNC(stragglers)).
        if self.stragglers.count.load(Ordering::SeqCst) != 0 {
            for s in &self.stragglers.slots {
                // Acquire: SYNC(stragglers).
                let entry = Straggler(s.load(Ordering::Acquire));
                if entry.0 == 0 {
                    continue;
                }
                match probe(entry.node()).filter(|(p, _)| entry.is_at(*p)) {
                    Some((p, c)) => {
                        if wanted(&c) && best.as_ref().is_none_or(|(b, _)| p < *b) {
                            best = Some((p, c));
                        }
                    }
                    None => {
                        // Taken since: free the entry.
                        if s.compare_exchange(entry.0, 0, Ordering::Relaxed, Ordering::Relaxed)
                            .is_ok()
                        {
                            self.stragglers.count.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                }
            }
        }
        best
    }

    /// `answer`, unless a doubt is pending (checked after the lookup, so a
    /// doubt behind any record it read is seen).
    fn unsure_or<C>(&self, answer: Oldest<C>) -> Oldest<C> {
        if self.doubtful() {
            Oldest::Unsure
        } else {
            answer
        }
    }

    /// `head` has fallen more than a lap behind (only typed receivers ran):
    /// one pass over the ring finds the lowest position that may be queued
    /// or in flight, and moves `head` there. O(R), once per such gap.
    fn catch_up<C>(&self, end: u64, candidate: &impl Fn(u32, u64) -> Option<C>) -> u64 {
        let shift = self.shift();
        let mut low = end;
        for i in 0..self.ring.len() as u64 {
            let slot = self.slot(i);
            if i >= end {
                break; // never claimed
            }
            // The newest position of this slot that was claimed.
            let newest = i + (((end - 1 - i) >> shift) << shift);
            // Acquire: SYNC(arrival).
            let rec = Record(slot.load(Ordering::Acquire));
            if rec == Record::NONE {
                low = low.min(i); // its first position is still in flight
                continue;
            }
            let behind = (lap_of(newest, shift).wrapping_sub(rec.lap()) as i32) as i64;
            if behind < 0 {
                continue; // recorded after `end` was read: all settled below
            }
            let Some(at) = newest.checked_sub((behind as u64) << shift) else {
                continue;
            };
            if candidate(rec.node(), at).is_some() {
                low = low.min(at);
            } else if at < newest {
                low = low.min(at + (1 << shift)); // the next one is in flight
            }
        }
        // Release: SYNC(arrivals_head); never backwards.
        let mut cur = self.head.load(Ordering::Acquire);
        while cur < low {
            match self
                .head
                .compare_exchange(cur, low, Ordering::Release, Ordering::Acquire)
            {
                Ok(_) => return low,
                Err(now) => cur = now,
            }
        }
        cur
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    struct Ring {
        ring: Vec<AtomicU64>,
        head: AtomicU64,
        claimed: AtomicU64,
        doubts: Doubts,
        stragglers: Stragglers,
    }

    impl Ring {
        fn new(r: usize) -> Ring {
            Ring {
                ring: (0..r).map(|_| AtomicU64::new(0)).collect(),
                head: AtomicU64::new(0),
                claimed: AtomicU64::new(0),
                doubts: Doubts {
                    raised: AtomicU64::new(0),
                    cleared: AtomicU64::new(0),
                },
                stragglers: Stragglers {
                    count: AtomicU64::new(0),
                    slots: std::array::from_fn(|_| AtomicU64::new(0)),
                },
            }
        }
        fn view(&self) -> Arrivals<'_> {
            Arrivals {
                ring: &self.ring,
                head: &self.head,
                claimed: &self.claimed,
                doubts: &self.doubts,
                stragglers: &self.stragglers,
            }
        }
    }

    /// A toy queue: node `n` holds the message stamped `queued[n]`, if any.
    fn send(r: &Ring, queued: &mut Vec<Option<u64>>) -> u64 {
        let p = r.claimed.fetch_add(1, Ordering::Relaxed);
        queued.push(Some(p));
        let node = (queued.len() - 1) as u32;
        let q2 = queued.clone();
        r.view()
            .record(p, node, |n| q2.get(n as usize).copied().flatten());
        p
    }

    fn probe(queued: &[Option<u64>], n: u32) -> Option<(u64, u64)> {
        queued.get(n as usize).copied().flatten().map(|s| (s, s))
    }

    fn oldest(r: &Ring, queued: &[Option<u64>]) -> Oldest<u64> {
        r.view().oldest(|n| probe(queued, n))
    }

    #[test]
    fn spread_is_a_bijection_that_puts_neighbours_on_different_lines() {
        for shift in [2u32, 6, 7, 10, 17] {
            let r = 1usize << shift;
            let mut seen = vec![false; r];
            for p in 0..r as u64 {
                let i = spread(p, shift);
                assert!(!seen[i], "r = {r}: index {i} twice");
                seen[i] = true;
                assert_eq!(spread(p + r as u64, shift), i, "depends on p mod r only");
                if r >= 64 {
                    let next = spread(p + 1, shift);
                    assert_ne!(
                        i / SLOTS_PER_LINE,
                        next / SLOTS_PER_LINE,
                        "r = {r}, p = {p}"
                    );
                }
            }
        }
    }

    #[test]
    fn type_zero_order_and_head_moves() {
        let r = Ring::new(8);
        let mut q = Vec::new();
        for _ in 0..5 {
            send(&r, &mut q);
        }
        for want in 0..5u64 {
            assert_eq!(oldest(&r, &q), Oldest::Found(want));
            q[want as usize] = None;
        }
        assert_eq!(oldest(&r, &q), Oldest::Empty);
        assert_eq!(r.head.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn typed_takes_in_the_middle_are_skipped() {
        let r = Ring::new(8);
        let mut q = Vec::new();
        for _ in 0..4 {
            send(&r, &mut q);
        }
        q[0] = None;
        q[2] = None;
        assert_eq!(oldest(&r, &q), Oldest::Found(1));
        q[1] = None;
        assert_eq!(oldest(&r, &q), Oldest::Found(3));
    }

    #[test]
    fn a_message_left_behind_a_lap_is_kept_as_a_straggler() {
        let r = Ring::new(4);
        let mut q = Vec::new();
        send(&r, &mut q); // position 0 stays queued (nobody reads its type)
        for i in 1..4 {
            send(&r, &mut q);
            q[i] = None;
        }
        assert_eq!(oldest(&r, &q), Oldest::Found(0));
        send(&r, &mut q); // position 4 takes slot 0: position 0 is a straggler
        assert_eq!(r.stragglers.count.load(Ordering::Relaxed), 1);
        assert_eq!(oldest(&r, &q), Oldest::Found(0));
        q[0] = None;
        assert_eq!(oldest(&r, &q), Oldest::Found(4));
        assert_eq!(r.stragglers.count.load(Ordering::Relaxed), 0, "freed");
    }

    #[test]
    fn stragglers_beyond_the_entries_raise_a_doubt_until_the_queue_empties() {
        let r = Ring::new(2);
        let mut q = Vec::new();
        for _ in 0..STRAGGLERS + 2 {
            send(&r, &mut q); // none taken: each lap leaves the last behind
        }
        let left = STRAGGLERS + 2 - 2;
        assert_eq!(
            r.stragglers.count.load(Ordering::Relaxed) as usize,
            left.min(STRAGGLERS)
        );
        for _ in 0..2 {
            send(&r, &mut q);
        }
        assert_eq!(oldest(&r, &q), Oldest::Unsure);
        r.view().settle(|| false);
        assert_eq!(oldest(&r, &q), Oldest::Unsure);
        q.iter_mut().for_each(|m| *m = None);
        r.view().settle(|| true);
        assert_eq!(oldest(&r, &q), Oldest::Empty);
    }

    #[test]
    fn unwanted_messages_are_passed_over_up_to_a_bound() {
        let r = Ring::new(8);
        let mut q = Vec::new();
        for _ in 0..4 {
            send(&r, &mut q);
        }
        let pick = |max| r.view().oldest_wanted(|n| probe(&q, n), |&p| p >= 2, max);
        assert_eq!(pick(2), Oldest::Found(2));
        assert_eq!(pick(1), Oldest::Unsure);
        assert_eq!(
            r.head.load(Ordering::Relaxed),
            0,
            "head stays before queued messages"
        );
    }

    #[test]
    fn in_flight_positions_hold_head_but_not_the_lookup() {
        let r = Ring::new(8);
        let mut q = Vec::new();
        // Position 0 claimed, not recorded yet.
        r.claimed.fetch_add(1, Ordering::Relaxed);
        q.push(None);
        send(&r, &mut q);
        assert_eq!(oldest(&r, &q), Oldest::Found(1));
        q[1] = None;
        assert_eq!(oldest(&r, &q), Oldest::Empty);
        assert_eq!(
            r.head.load(Ordering::Relaxed),
            0,
            "head waits for position 0"
        );
    }

    #[test]
    fn head_catches_up_after_typed_receivers_ran_for_laps() {
        let r = Ring::new(4);
        let mut q = Vec::new();
        for i in 0..20 {
            send(&r, &mut q);
            if i != 17 {
                q[i] = None;
            }
        }
        assert_eq!(oldest(&r, &q), Oldest::Found(17));
        assert_eq!(r.head.load(Ordering::Relaxed), 17);
    }

    #[test]
    fn a_slow_sender_whose_slot_was_taken_keeps_its_message_as_a_straggler() {
        let r = Ring::new(2);
        let mut q = Vec::new();
        let p = r.claimed.fetch_add(1, Ordering::Relaxed); // slow: position 0
        q.push(Some(p));
        send(&r, &mut q);
        q[1] = None;
        send(&r, &mut q); // position 2 records in slot 0 first
        let q2 = q.clone();
        r.view()
            .record(p, 0, |n| q2.get(n as usize).copied().flatten());
        assert_eq!(oldest(&r, &q), Oldest::Found(0));
    }
}
