//! Byte and message accounting: `cbytes` and `qnum` as the difference of two
//! running sums, one written only by senders and one only by receivers, each
//! tagged with its last writer so that a process killed mid-update can be
//! recovered.
//!
//! # Two sums
//! The *sent* word sums `(bytes, messages)` over every reservation a sender
//! made (minus the reservations undone for messages that were never linked);
//! the *received* word sums them over every message a receiver released.
//! `cbytes = sent - received` and `qnum` likewise, modulo the fields' widths
//! (the true counts are below them, so the difference is exact). A sender
//! reserves `(msgsz, 1)` with a CAS on the sent word, admitted only if
//! Linux's `msg_fits_inqueue` holds (`cbytes + msgsz <= qbytes` and
//! `qnum + 1 <= qbytes`); a receiver adds its message to the received word.
//! So senders and receivers never write the same word, and a stream from one
//! sender to one receiver moves no accounting line between them per message.
//!
//! A sender checks the fit against the received sum it last read (kept in its
//! own slot record): received only grows, so a stale value can only make the
//! queue look fuller than it is. Only when the message does not fit that way
//! does it read the received word again, after its read of the sent word, so
//! that a refusal ("queue full") is exact at that read, and an admission,
//! exact at the CAS.
//!
//! # Last-writer tagging with helping (per word)
//! Each word is `bytes:26 | msgs:25 | slot:12 | parity:1` (low to high). Each
//! slot numbers its operations on each word `k = 1, 2, ...` in its record
//! (`seq`), and an operation writes its word exactly once, tagged
//! `(slot, k & 1)`; `seq` moves to `k + 1` only after `k` was applied, so a
//! refused reservation does not use up a number. Before anyone overwrites a
//! word tagged `(t, p)` it *flushes* it: if slot `t`'s `seq` for that word has
//! parity `p` and the word is unchanged, that operation is applied, so it
//! raises `t`'s `done` to it. Hence for every slot and word:
//!
//! > operation `k` was applied  <=>  `done >= k`, or the word is tagged
//! > `(slot, k & 1)`.
//!
//! which is what [`Counter::was_applied`] evaluates for a dead slot. This is the
//! "announce, then help the previous operation complete" pattern of wait-free
//! universal constructions (Herlihy 1991), cut down to one word.
//!
//! A flush reads the writer's slot record, a line its owner writes on every
//! operation. So that two processes taking turns on a word (both sides of a
//! round trip send) do not pass that line back and forth per message, a
//! writer that has raised its own `done` says so beside the word, on the
//! word's line ([`Completed`]), and a flush that finds the word's tag marked
//! there reads nothing else.
//!
//! The widths cap `qbytes` at 2^25 - 1 and a queue at 4095 slots; `layout`
//! enforces both.

use crate::layout::{AcctRecord, SlotRecord};
use crate::sync::{AtomicU64, Ordering};

const BYTES_BITS: u32 = 26;
const MSGS_BITS: u32 = 25;
const SLOT_BITS: u32 = 12;
const BYTES_MASK: u64 = (1 << BYTES_BITS) - 1;
const MSGS_MASK: u64 = (1 << MSGS_BITS) - 1;
const MSGS_SHIFT: u32 = BYTES_BITS;
const SLOT_SHIFT: u32 = BYTES_BITS + MSGS_BITS;
const PARITY_SHIFT: u32 = SLOT_SHIFT + SLOT_BITS;
/// Message counts in the words are running sums modulo this.
pub(crate) const MSGS_MODULUS: u64 = 1 << MSGS_BITS;
/// The tag of a word no slot has written yet.
const NO_SLOT: u32 = (1 << SLOT_BITS) - 1;

/// The initial value of both of a queue's accounting words.
pub(crate) const INITIAL: u64 = (NO_SLOT as u64) << SLOT_SHIFT;

/// The fields of one accounting word: running sums and the last writer's tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sum {
    bytes: u64,
    msgs: u64,
    slot: u32,
    parity: u64,
}

impl Sum {
    fn unpack(v: u64) -> Sum {
        Sum {
            bytes: v & BYTES_MASK,
            msgs: (v >> MSGS_SHIFT) & MSGS_MASK,
            slot: ((v >> SLOT_SHIFT) & ((1 << SLOT_BITS) - 1)) as u32,
            parity: v >> PARITY_SHIFT,
        }
    }

    fn pack(self) -> u64 {
        (self.bytes & BYTES_MASK)
            | (self.msgs & MSGS_MASK) << MSGS_SHIFT
            | (self.slot as u64) << SLOT_SHIFT
            | (self.parity & 1) << PARITY_SHIFT
    }

    /// The counts queued when `self` is the sent word and `received` the
    /// received word.
    fn minus(self, received: Sum) -> Tally {
        Tally {
            cbytes: self.bytes.wrapping_sub(received.bytes) & BYTES_MASK,
            qnum: self.msgs.wrapping_sub(received.msgs) & MSGS_MASK,
        }
    }
}

/// A queue's counts: `cbytes` and `qnum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) cbytes: u64,
    pub(crate) qnum: u64,
}

impl Tally {
    /// Whether one more message of `len` bytes fits `cap` (a plain `qbytes`
    /// is Linux's `msg_fits_inqueue`: bytes and message count both bounded
    /// by it).
    pub(crate) fn fits(self, len: u64, cap: impl Into<Capacity>) -> bool {
        let cap = cap.into();
        self.cbytes + len <= cap.bytes && self.qnum < cap.msgs
    }
}

/// What a queue holds at most: bytes of text and messages. A System V queue
/// caps both with `qbytes` (`From<u64>`); a POSIX queue's count is its
/// `mq_maxmsg` (see `QueueState::capacity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Capacity {
    pub(crate) bytes: u64,
    pub(crate) msgs: u64,
}

impl From<u64> for Capacity {
    fn from(qbytes: u64) -> Capacity {
        Capacity {
            bytes: qbytes,
            msgs: qbytes,
        }
    }
}

/// Which of the two words an operation writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// The senders' word.
    Sent,
    /// The receivers' word.
    Received,
}

/// What an accounting operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delta {
    /// A sender adds one message of this many bytes, if it fits `qbytes`.
    Reserve(u64),
    /// A sender takes back a reservation whose message was never linked.
    Unreserve(u64),
    /// A receiver removes one message of this many bytes.
    Release(u64),
}

impl Delta {
    /// The word this operation writes.
    pub(crate) fn side(self) -> Side {
        match self {
            Delta::Reserve(_) | Delta::Unreserve(_) => Side::Sent,
            Delta::Release(_) => Side::Received,
        }
    }
}

/// The reservation does not fit the queue's capacity now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Full;

/// A queue's accounting words and the slot records that tag them.
pub(crate) struct Counter<'a> {
    pub(crate) sent: &'a AtomicU64,
    pub(crate) received: &'a AtomicU64,
    /// The sent word's completion mark (on the word's line: see
    /// [`Completed`]).
    pub(crate) sent_completed: &'a AtomicU64,
    /// The received word's completion mark.
    pub(crate) received_completed: &'a AtomicU64,
    pub(crate) slots: &'a [SlotRecord],
}

/// The mark a writer leaves beside a word once it has recorded its
/// operation as applied in its own `done`: its slot and the operation's
/// parity (the word's tag), so that the next writer, finding the word still
/// tagged so, knows without a flush that nothing is left to record.
///
/// A mark names one operation, not just a tag. Whoever reads the word
/// tagged `(t, p)` by `t`'s operation `k` (Acquire, against the CAS's
/// Release) reads the mark as `t` left it before that CAS or later: `t`
/// marked its operation `k - 1`, of the other parity, before it began `k`,
/// and any later mark of another slot does not match. The one stale mark of
/// the same parity is `k - 2`'s, left when `t`'s process died between its
/// CAS of `k - 1` and its mark (recovery records `k - 1` in `done`, and the
/// slot's next owner numbers on from there): so before its CAS a writer
/// clears a mark equal to the one it will leave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Completed(u64);

impl Completed {
    /// Set in every mark, so that the zeroed word marks nothing.
    const VALID: u64 = 1 << 32;
    /// No mark (what a zeroed word holds).
    const NONE: Completed = Completed(0);

    fn of(slot: u32, parity: u64) -> Completed {
        Completed(Self::VALID | (parity & 1) << 16 | u64::from(slot))
    }

    /// Whether this is a mark left by `slot`, of either parity.
    #[cfg(loom)]
    fn is_of_slot(self, slot: u32) -> bool {
        self != Self::NONE && self.0 & 0xffff == u64::from(slot)
    }
}

/// Reads of a consistent pair before [`Counter::load`] settles for a
/// conservative one (a receiver finishing a message between the two reads of
/// the received word is what makes a pair inconsistent).
const CONSISTENT_TRIES: usize = 64;

impl Counter<'_> {
    fn word(&self, side: Side) -> &AtomicU64 {
        match side {
            Side::Sent => self.sent,
            Side::Received => self.received,
        }
    }

    fn completed(&self, side: Side) -> &AtomicU64 {
        match side {
            Side::Sent => self.sent_completed,
            Side::Received => self.received_completed,
        }
    }

    fn record<'r>(&self, rec: &'r SlotRecord, side: Side) -> &'r AcctRecord {
        match side {
            Side::Sent => &rec.sent_acct,
            Side::Received => &rec.received_acct,
        }
    }

    /// Current `(cbytes, qnum)`: the counts at one instant, or (after many
    /// receives raced with the reads) counts that include some messages
    /// received meanwhile, never fewer than were queued.
    pub(crate) fn load(&self) -> Tally {
        // Acquire (all): the received word first, so that every message it
        // counts is counted in the sent word read after it (a receive
        // follows its message's reservation), and the difference is never
        // negative.
        let mut first = self.received.load(Ordering::Acquire);
        let mut sent = self.sent.load(Ordering::Acquire);
        for _ in 0..CONSISTENT_TRIES {
            let again = self.received.load(Ordering::Acquire);
            if again == first {
                break; // unchanged around the read of `sent`
            }
            first = again;
            sent = self.sent.load(Ordering::Acquire);
        }
        Sum::unpack(sent).minus(Sum::unpack(first))
    }

    /// Whether no message is counted (`qnum == 0`). SeqCst: `arrivals`
    /// orders these reads after its read of the doubt counter. The received
    /// word first: if the sent word read after it counts as many messages,
    /// none was queued at that second read.
    pub(crate) fn is_empty(&self) -> bool {
        let received = Sum::unpack(self.received.load(Ordering::SeqCst));
        let sent = Sum::unpack(self.sent.load(Ordering::SeqCst));
        sent.minus(received).qnum == 0
    }

    /// The sequence number `slot`'s next operation on `side` will use. The
    /// caller writes its record (what the operation is for) and then calls
    /// [`Counter::apply`].
    pub(crate) fn next_seq(&self, slot: usize, side: Side) -> u64 {
        // Relaxed: `done` of our own slot is only raised to values of ours.
        // Wrapping: a corrupted mapping may hold any value here (it then
        // miscounts, but must not panic).
        self.record(&self.slots[slot], side)
            .done
            .load(Ordering::Relaxed)
            .wrapping_add(1)
    }

    /// Applies `delta` as `slot`'s operation `seq` on its word (from
    /// [`Counter::next_seq`]).
    ///
    /// A reservation that does not fit `qbytes` (or a [`Capacity`]) is refused with [`Full`] and
    /// leaves no trace; the same `seq` is then used by the slot's next attempt.
    /// Returns the message count the word held just before this operation
    /// (a running sum modulo [`MSGS_MODULUS`]): for a reservation, the
    /// messages reserved before it (what `mq_notify`'s firing rule reads).
    pub(crate) fn apply(
        &self,
        slot: usize,
        seq: u64,
        delta: Delta,
        qbytes: impl Into<Capacity>,
    ) -> Result<u64, Full> {
        let qbytes = qbytes.into();
        let side = delta.side();
        let word = self.word(side);
        let rec = self.record(&self.slots[slot], side);
        // SYNC(acct_seq): Release store before our CAS, so that a flusher who
        // reads the word we write also reads this sequence (it reads the word
        // first, with Acquire, then `seq`); and a flusher that reads this
        // sequence (Acquire) then sees the word our previous op wrote, or a
        // later one, never an older tag of ours. (Release is enough for both:
        // the chain is store -> load -> load, with no store-load pair.)
        rec.seq.store(seq, Ordering::Release);
        let parity = seq & 1;
        let completed = self.completed(side);
        let mark = Completed::of(slot as u32, parity);
        // Relaxed (both): ordered before our CAS by its Release, which is
        // what a flusher synchronises with (see `Completed`).
        if completed.load(Ordering::Relaxed) == mark.0 {
            completed.store(Completed::NONE.0, Ordering::Relaxed);
        }
        loop {
            // Acquire: pairs with the AcqRel CAS of the previous writer.
            let cur = word.load(Ordering::Acquire);
            self.flush(side, cur);
            let s = Sum::unpack(cur);
            let (bytes, msgs) = match delta {
                Delta::Reserve(n) => {
                    if !self.fits(slot, s, n, qbytes) {
                        return Err(Full);
                    }
                    (s.bytes + n, s.msgs + 1)
                }
                // Wrapping: sums are taken modulo the fields' widths.
                Delta::Unreserve(n) => (s.bytes.wrapping_sub(n), s.msgs.wrapping_sub(1)),
                Delta::Release(n) => (s.bytes + n, s.msgs + 1),
            };
            let next = Sum {
                bytes,
                msgs,
                slot: slot as u32,
                parity,
            }
            .pack();
            #[cfg(loom)]
            if crate::sync::mutant(crate::sync::Mutant::AccountingLoadStore) {
                word.store(next, Ordering::Release);
                rec.done.fetch_max(seq, Ordering::Release);
                return Ok(s.msgs);
            }
            // SYNC(acct_word): AcqRel pairs with the Acquire loads of the next
            // writer, of flushers and of readers of the counts.
            if word
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                // Killed here, the operation is applied by the tag alone
                // (what recovery's `record_applied` is for).
                crate::sync::crash_point();
                // A plain store, not an RMW: every value a flusher can have
                // raised `done` to by now is at most `seq` (a flusher raises
                // it to our `seq`, which moves past `seq` only after this
                // store), so nothing larger is overwritten.
                rec.done.store(seq, Ordering::Release);
                // SYNC(acct_completed): Release, after `done`; a flusher that
                // reads this mark (Acquire) skips the flush of our operation.
                completed.store(mark.0, Ordering::Release);
                return Ok(s.msgs);
            }
        }
    }

    /// Whether one more message of `n` bytes fits beside what the sent word
    /// `sent` counts: against the received sum `slot` last read, and if that
    /// says no, against the received word read now.
    fn fits(&self, slot: usize, sent: Sum, n: u64, qbytes: Capacity) -> bool {
        let seen = &self.slots[slot].received_seen;
        // Relaxed: our own slot's cache of an earlier read of the word.
        if sent
            .minus(Sum::unpack(seen.load(Ordering::Relaxed)))
            .fits(n, qbytes)
        {
            return true; // received only grows: it fits now too
        }
        // Acquire: SYNC(acct_word); after our read of the sent word, so a
        // refusal is exact at this read.
        let now = self.received.load(Ordering::Acquire);
        seen.store(now, Ordering::Relaxed);
        sent.minus(Sum::unpack(now)).fits(n, qbytes)
    }

    /// Records, in the slot that wrote `cur` to `side`'s word, that its
    /// operation was applied, if `cur` is still the word's value.
    fn flush(&self, side: Side, cur: u64) {
        let s = Sum::unpack(cur);
        // SYNC(acct_completed): Acquire, after our Acquire load of `cur`:
        // the writer of `cur` has recorded its operation already. Reading
        // its slot record instead took that line from it once per message
        // whenever two processes took turns on the word (a round trip's
        // senders, 2 x 2 streams).
        let mark = Completed(self.completed(side).load(Ordering::Acquire));
        #[cfg(loom)]
        if crate::sync::mutant(crate::sync::Mutant::AccountingMarkSlotOnly)
            && mark.is_of_slot(s.slot)
        {
            return;
        }
        if mark == Completed::of(s.slot, s.parity) {
            return;
        }
        let Some(rec) = self.slots.get(s.slot as usize) else {
            return; // NO_SLOT, or a corrupted tag: nothing to record
        };
        let rec = self.record(rec, side);
        // SYNC(acct_seq): this load follows our Acquire load of the word.
        let seq = rec.seq.load(Ordering::Acquire);
        if seq & 1 == s.parity && self.word(side).load(Ordering::SeqCst) == cur {
            // `cur` is the writer's latest write and its parity is that of its
            // current sequence, so that operation is applied. Its writer
            // records that itself right after its CAS: look before writing,
            // so that the line is not taken from its owner for nothing.
            // Acquire: as `was_applied` reads it.
            if rec.done.load(Ordering::Acquire) < seq {
                rec.done.fetch_max(seq, Ordering::Release);
            }
        }
    }

    /// Records that `slot`'s operation `seq` on `side` was applied (as a
    /// flush does), for recovery acting as a dead slot that applied it but
    /// did not say so.
    pub(crate) fn record_applied(&self, slot: usize, side: Side, seq: u64) {
        if let Some(rec) = self.slots.get(slot) {
            // Release: as the owner's store after its CAS (read by
            // `was_applied` with Acquire).
            self.record(rec, side)
                .done
                .fetch_max(seq, Ordering::Release);
        }
    }

    /// Whether `slot`'s operation `seq` on `side` has been applied.
    /// Meaningful when the slot's owner is dead (nobody else writes with its
    /// tag).
    pub(crate) fn was_applied(&self, slot: usize, side: Side, seq: u64) -> bool {
        let rec = self.record(&self.slots[slot], side);
        if rec.done.load(Ordering::Acquire) >= seq {
            return true;
        }
        let s = Sum::unpack(self.word(side).load(Ordering::SeqCst));
        s.slot as usize == slot && s.parity == seq & 1
    }

    /// The raw words `(sent, received)`, for the doctor's before-and-after
    /// comparison of a pass.
    pub(crate) fn raw(&self) -> (u64, u64) {
        // Acquire: what is read after this is at least as new.
        (
            self.sent.load(Ordering::Acquire),
            self.received.load(Ordering::Acquire),
        )
    }

    /// The running count of messages on the sent word: every reservation
    /// applied minus those undone, modulo 2^25 (what `Queue::sent_count`
    /// reports).
    pub(crate) fn sent_messages(&self) -> u64 {
        // Acquire: as `raw`.
        Sum::unpack(self.sent.load(Ordering::Acquire)).msgs
    }

    /// The running count of messages on the received word, modulo
    /// [`MSGS_MODULUS`] (what `mq_notify`'s firing rule compares with the
    /// sent count a reservation saw).
    pub(crate) fn received_messages(&self) -> u64 {
        // SeqCst: read after the sender's SeqCst fence that follows its link
        // (see `notify`); nothing is published through it.
        Sum::unpack(self.received.load(Ordering::SeqCst)).msgs
    }

    /// The counts the raw words `(sent, received)` stand for.
    pub(crate) fn counts_of(raw: (u64, u64)) -> Tally {
        Sum::unpack(raw.0).minus(Sum::unpack(raw.1))
    }

    /// Whether a slot record's `done` and `seq` for `side` are consistent
    /// (`done` never passes `seq`), for the doctor.
    pub(crate) fn record_is_consistent(rec: &SlotRecord, side: Side) -> bool {
        let r = match side {
            Side::Sent => &rec.sent_acct,
            Side::Received => &rec.received_acct,
        };
        // `done` first: it never passes `seq`, which only grows.
        let done = r.done.load(Ordering::Acquire);
        done <= r.seq.load(Ordering::SeqCst)
    }

    /// Rewrites the sent word, seen as `raw.0` beside the received word
    /// `raw.1`, so that the counts are `(qnum, cbytes)`, keeping its tag (so
    /// that [`Counter::was_applied`] answers as before); fails if either word
    /// changed meanwhile. The doctor's repair of a quiet queue's counts.
    pub(crate) fn correct(&self, raw: (u64, u64), qnum: u64, cbytes: u64) -> Result<(), String> {
        if qnum > MSGS_MASK || cbytes > BYTES_MASK {
            return Err("counts do not fit the accounting word".into());
        }
        let (sent, received) = (Sum::unpack(raw.0), Sum::unpack(raw.1));
        let fixed = Sum {
            bytes: received.bytes + cbytes,
            msgs: received.msgs + qnum,
            ..sent
        }
        .pack();
        // SYNC(acct_word): AcqRel, as every writer of the word.
        self.sent
            .compare_exchange(raw.0, fixed, Ordering::AcqRel, Ordering::Relaxed)
            .map_err(|_| "the queue changed meanwhile; run the doctor again".to_string())?;
        if self.received.load(Ordering::Acquire) != raw.1 {
            return Err("the queue changed meanwhile; run the doctor again".into());
        }
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::test_support::slot_records;

    fn counter<'a>(words: &'a [AtomicU64; 4], slots: &'a [SlotRecord]) -> Counter<'a> {
        Counter {
            sent: &words[0],
            received: &words[1],
            sent_completed: &words[2],
            received_completed: &words[3],
            slots,
        }
    }

    fn fresh() -> [AtomicU64; 4] {
        [
            AtomicU64::new(INITIAL),
            AtomicU64::new(INITIAL),
            AtomicU64::new(0),
            AtomicU64::new(0),
        ]
    }

    #[test]
    fn pack_round_trips() {
        let s = Sum {
            bytes: (1 << 26) - 1,
            msgs: (1 << 25) - 1,
            slot: 4094,
            parity: 1,
        };
        assert_eq!(Sum::unpack(s.pack()), s);
        assert_eq!(Sum::unpack(INITIAL).slot, NO_SLOT);
    }

    #[test]
    fn reserve_respects_qbytes_like_linux() {
        let slots = slot_records(2);
        let words = fresh();
        let c = counter(&words, &slots);
        let s = c.next_seq(0, Side::Sent);
        assert!(c.apply(0, s, Delta::Reserve(10), 16).is_ok());
        let s = c.next_seq(0, Side::Sent);
        assert_eq!(c.apply(0, s, Delta::Reserve(7), 16), Err(Full));
        assert_eq!(
            c.next_seq(0, Side::Sent),
            s,
            "a refused reservation keeps its number"
        );
        assert!(c.apply(0, s, Delta::Reserve(6), 16).is_ok());
        assert_eq!((c.load().cbytes, c.load().qnum), (16, 2));
        // Zero-length messages are limited by qnum + 1 <= qbytes.
        let words = fresh();
        let c = counter(&words, &slots);
        for _ in 0..3 {
            let s = c.next_seq(1, Side::Sent);
            c.apply(1, s, Delta::Reserve(0), 3).unwrap();
        }
        let s = c.next_seq(1, Side::Sent);
        assert_eq!(c.apply(1, s, Delta::Reserve(0), 3), Err(Full));
    }

    #[test]
    fn a_stale_received_sum_is_read_again_before_refusing() {
        let slots = slot_records(2);
        let words = fresh();
        let c = counter(&words, &slots);
        for _ in 0..2 {
            let s = c.next_seq(0, Side::Sent);
            c.apply(0, s, Delta::Reserve(8), 16).unwrap();
        }
        let s = c.next_seq(0, Side::Sent);
        assert_eq!(c.apply(0, s, Delta::Reserve(1), 16), Err(Full));
        // Slot 1 receives one: slot 0's cached sum is now stale.
        let r = c.next_seq(1, Side::Received);
        c.apply(1, r, Delta::Release(8), 16).unwrap();
        assert!(c.apply(0, s, Delta::Reserve(8), 16).is_ok());
        assert_eq!(
            c.load(),
            Tally {
                cbytes: 16,
                qnum: 2
            }
        );
        assert!(c.next_seq(0, Side::Sent) > s);
    }

    #[test]
    fn sums_wrap_and_the_difference_stays_exact() {
        let slots = slot_records(2);
        let near = Sum {
            bytes: BYTES_MASK - 3,
            msgs: MSGS_MASK,
            slot: NO_SLOT,
            parity: 0,
        }
        .pack();
        let words = [
            AtomicU64::new(near),
            AtomicU64::new(near),
            AtomicU64::new(0),
            AtomicU64::new(0),
        ];
        let c = counter(&words, &slots);
        assert!(c.is_empty());
        let s = c.next_seq(0, Side::Sent);
        c.apply(0, s, Delta::Reserve(10), 100).unwrap();
        assert_eq!(
            c.load(),
            Tally {
                cbytes: 10,
                qnum: 1
            }
        );
        let r = c.next_seq(1, Side::Received);
        c.apply(1, r, Delta::Release(10), 100).unwrap();
        assert!(c.is_empty());
        assert_eq!(c.load(), Tally { cbytes: 0, qnum: 0 });
    }

    #[test]
    fn applied_is_decidable_after_the_fact() {
        let slots = slot_records(3);
        let words = fresh();
        let c = counter(&words, &slots);
        // Slot 0 applies sent op 1 and "dies" before acknowledging it.
        slots[0].sent_acct.seq.store(1, Ordering::SeqCst);
        words[0].store(
            Sum {
                bytes: 5,
                msgs: 1,
                slot: 0,
                parity: 1,
            }
            .pack(),
            Ordering::SeqCst,
        );
        assert!(c.was_applied(0, Side::Sent, 1));
        assert!(!c.was_applied(0, Side::Received, 1), "the other word");
        // Slot 1 overwrites the word: it must flush slot 0's op first.
        let s = c.next_seq(1, Side::Sent);
        c.apply(1, s, Delta::Reserve(1), 100).unwrap();
        assert!(c.was_applied(0, Side::Sent, 1), "flushed into done");
        // Slot 2 announced op 1 but died before its CAS: not applied.
        slots[2].sent_acct.seq.store(1, Ordering::SeqCst);
        assert!(!c.was_applied(2, Side::Sent, 1));
    }

    #[test]
    fn correct_keeps_the_tag_and_sets_the_counts() {
        let slots = slot_records(2);
        let words = fresh();
        let c = counter(&words, &slots);
        let s = c.next_seq(0, Side::Sent);
        c.apply(0, s, Delta::Reserve(10), 100).unwrap();
        let raw = c.raw();
        c.correct(raw, 3, 42).unwrap();
        assert_eq!(
            c.load(),
            Tally {
                cbytes: 42,
                qnum: 3
            }
        );
        assert!(c.was_applied(0, Side::Sent, s));
        assert!(c.correct(raw, 0, 0).is_err(), "the word changed since");
    }
}
