//! Byte and message accounting: `cbytes` and `qnum` in one atomic word, tagged
//! with its last writer so that a process killed mid-update can be recovered.
//!
//! # The problem
//! A sender reserves `(msgsz, 1)` with a CAS before it allocates (so that the
//! full check `cbytes + msgsz <= qbytes && qnum + 1 <= qbytes` of Linux's
//! `msg_fits_inqueue` is exact), and a receiver releases the same amount when it
//! is done. A process killed right after its CAS, before it could note that the
//! CAS happened, leaves recovery unable to tell whether to undo it.
//!
//! # Last-writer tagging with helping
//! The word is `cbytes:26 | qnum:25 | slot:12 | parity:1` (low to high). Each
//! slot numbers its accounting operations `k = 1, 2, ...` in its record
//! (`acct_seq`), and an operation writes the word exactly once, tagged
//! `(slot, k & 1)`; `acct_seq` moves to `k + 1` only after `k` was applied, so a
//! refused reservation (queue full) does not use up a number. Before anyone
//! overwrites a word tagged `(t, p)` it *flushes* it: if slot `t`'s `acct_seq`
//! has parity `p` and the word is unchanged, that operation is applied, so it
//! raises `t`'s `acct_done` to it. Hence for every slot:
//!
//! > operation `k` was applied  <=>  `acct_done >= k`, or the word is tagged
//! > `(slot, k & 1)`.
//!
//! which is what [`Counter::was_applied`] evaluates for a dead slot. This is the
//! "announce, then help the previous operation complete" pattern of wait-free
//! universal constructions (Herlihy 1991), cut down to one word.
//!
//! The widths cap `qbytes` at 2^25 - 1 and a queue at 4095 slots; `layout`
//! enforces both.

use crate::layout::SlotRecord;
use crate::sync::{AtomicU64, Ordering};

const CBYTES_BITS: u32 = 26;
const QNUM_BITS: u32 = 25;
const SLOT_BITS: u32 = 12;
const QNUM_SHIFT: u32 = CBYTES_BITS;
const SLOT_SHIFT: u32 = CBYTES_BITS + QNUM_BITS;
const PARITY_SHIFT: u32 = SLOT_SHIFT + SLOT_BITS;
/// The tag of a word no slot has written yet.
pub(crate) const NO_SLOT: u32 = (1 << SLOT_BITS) - 1;

/// The initial value of a queue's accounting word.
pub(crate) const INITIAL: u64 = (NO_SLOT as u64) << SLOT_SHIFT;

/// The fields of an accounting word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) cbytes: u64,
    pub(crate) qnum: u64,
    pub(crate) slot: u32,
    pub(crate) parity: u64,
}

impl Tally {
    pub(crate) fn unpack(v: u64) -> Tally {
        Tally {
            cbytes: v & ((1 << CBYTES_BITS) - 1),
            qnum: (v >> QNUM_SHIFT) & ((1 << QNUM_BITS) - 1),
            slot: ((v >> SLOT_SHIFT) & ((1 << SLOT_BITS) - 1)) as u32,
            parity: v >> PARITY_SHIFT,
        }
    }

    /// Whether one more message of `len` bytes fits a capacity of `qbytes`
    /// (Linux's `msg_fits_inqueue`: bytes and message count both bounded).
    pub(crate) fn fits(self, len: u64, qbytes: u64) -> bool {
        self.cbytes + len <= qbytes && self.qnum < qbytes
    }

    fn pack(self) -> u64 {
        self.cbytes
            | self.qnum << QNUM_SHIFT
            | (self.slot as u64) << SLOT_SHIFT
            | (self.parity & 1) << PARITY_SHIFT
    }
}

/// What an accounting operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delta {
    /// Add one message of this many bytes, if it fits `qbytes`.
    Reserve(u64),
    /// Remove one message of this many bytes.
    Release(u64),
}

/// The reservation does not fit the queue's capacity now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Full;

/// A queue's accounting word and the slot records that tag it.
pub(crate) struct Counter<'a> {
    pub(crate) word: &'a AtomicU64,
    pub(crate) slots: &'a [SlotRecord],
}

impl Counter<'_> {
    /// Current `(cbytes, qnum)`.
    pub(crate) fn load(&self) -> Tally {
        // Relaxed: a statistic; no memory is published through it.
        Tally::unpack(self.word.load(Ordering::Relaxed))
    }

    /// Whether no message is counted (`qnum == 0`). SeqCst: `arrivals`
    /// orders this read after its read of the doubt counter.
    pub(crate) fn is_empty(&self) -> bool {
        Tally::unpack(self.word.load(Ordering::SeqCst)).qnum == 0
    }

    /// The sequence number `slot`'s next operation will use. The caller writes
    /// its record (what the operation is for) and then calls [`Counter::apply`].
    pub(crate) fn next_seq(&self, slot: usize) -> u64 {
        // Relaxed: `acct_done` of our own slot is only raised to values of ours.
        // Wrapping: a corrupted mapping may hold any value here (it then
        // miscounts, but must not panic).
        self.slots[slot]
            .acct_done
            .load(Ordering::Relaxed)
            .wrapping_add(1)
    }

    /// Applies `delta` as `slot`'s operation `seq` (from [`Counter::next_seq`]).
    ///
    /// A reservation that does not fit `qbytes` is refused with [`Full`] and
    /// leaves no trace; the same `seq` is then used by the slot's next attempt.
    pub(crate) fn apply(
        &self,
        slot: usize,
        seq: u64,
        delta: Delta,
        qbytes: u64,
    ) -> Result<Tally, Full> {
        let rec = &self.slots[slot];
        // SYNC(acct_seq): Release store before our CAS, so that a flusher who
        // reads the word we write also reads this sequence (it reads the word
        // first, with Acquire, then `acct_seq`); and a flusher that reads this
        // sequence (Acquire) then sees the word our previous op wrote, or a
        // later one, never an older tag of ours. (Release is enough for both:
        // the chain is store -> load -> load, with no store-load pair.)
        rec.acct_seq.store(seq, Ordering::Release);
        let parity = seq & 1;
        loop {
            // Acquire: pairs with the AcqRel CAS of the previous writer.
            let cur = self.word.load(Ordering::Acquire);
            self.flush(cur);
            let t = Tally::unpack(cur);
            let (cbytes, qnum) = match delta {
                Delta::Reserve(n) => {
                    if !t.fits(n, qbytes) {
                        return Err(Full);
                    }
                    (t.cbytes + n, t.qnum + 1)
                }
                // Saturate: only a corrupted mapping could make these negative.
                Delta::Release(n) => (t.cbytes.saturating_sub(n), t.qnum.saturating_sub(1)),
            };
            let next = Tally {
                cbytes,
                qnum,
                slot: slot as u32,
                parity,
            };
            #[cfg(loom)]
            if crate::sync::mutant(crate::sync::Mutant::AccountingLoadStore) {
                self.word.store(next.pack(), Ordering::Release);
                rec.acct_done.fetch_max(seq, Ordering::Release);
                return Ok(next);
            }
            // SYNC(acct_word): AcqRel pairs with the Acquire loads of the next
            // writer and of flushers.
            if self
                .word
                .compare_exchange_weak(cur, next.pack(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                // A plain store, not an RMW: every value a flusher can have
                // raised `acct_done` to by now is at most `seq` (a flusher
                // raises it to our `acct_seq`, which moves past `seq` only
                // after this store), so nothing larger is overwritten.
                rec.acct_done.store(seq, Ordering::Release);
                return Ok(next);
            }
        }
    }

    /// Records, in the slot that wrote `cur`, that its operation was applied,
    /// if `cur` is still the word's value.
    fn flush(&self, cur: u64) {
        let t = Tally::unpack(cur);
        let Some(rec) = self.slots.get(t.slot as usize) else {
            return; // NO_SLOT, or a corrupted tag: nothing to record
        };
        // SYNC(acct_seq): this load follows our Acquire load of the word.
        let seq = rec.acct_seq.load(Ordering::Acquire);
        if seq & 1 == t.parity && self.word.load(Ordering::SeqCst) == cur {
            // `cur` is the writer's latest write and its parity is that of its
            // current sequence, so that operation is applied. Its writer
            // records that itself right after its CAS: look before writing,
            // so that the line is not taken from its owner for nothing.
            // Acquire: as `was_applied` reads it.
            if rec.acct_done.load(Ordering::Acquire) < seq {
                rec.acct_done.fetch_max(seq, Ordering::Release);
            }
        }
    }

    /// Records that `slot`'s operation `seq` was applied (as a flush does),
    /// for recovery acting as a dead slot that applied it but did not say so.
    pub(crate) fn record_applied(&self, slot: usize, seq: u64) {
        if let Some(rec) = self.slots.get(slot) {
            // Release: as the owner's store after its CAS (read by
            // `was_applied` with Acquire).
            rec.acct_done.fetch_max(seq, Ordering::Release);
        }
    }

    /// Whether `slot`'s operation `seq` has been applied. Meaningful when the
    /// slot's owner is dead (nobody else writes with its tag).
    pub(crate) fn was_applied(&self, slot: usize, seq: u64) -> bool {
        let rec = &self.slots[slot];
        if rec.acct_done.load(Ordering::Acquire) >= seq {
            return true;
        }
        let t = Tally::unpack(self.word.load(Ordering::SeqCst));
        t.slot as usize == slot && t.parity == seq & 1
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::test_support::slot_records;

    #[test]
    fn pack_round_trips() {
        let t = Tally {
            cbytes: (1 << 26) - 1,
            qnum: (1 << 25) - 1,
            slot: 4094,
            parity: 1,
        };
        assert_eq!(Tally::unpack(t.pack()), t);
        assert_eq!(Tally::unpack(INITIAL).slot, NO_SLOT);
    }

    #[test]
    fn reserve_respects_qbytes_like_linux() {
        let slots = slot_records(2);
        let word = AtomicU64::new(INITIAL);
        let c = Counter {
            word: &word,
            slots: &slots,
        };
        let s = c.next_seq(0);
        assert!(c.apply(0, s, Delta::Reserve(10), 16).is_ok());
        let s = c.next_seq(0);
        assert_eq!(c.apply(0, s, Delta::Reserve(7), 16), Err(Full));
        assert_eq!(c.next_seq(0), s, "a refused reservation keeps its number");
        assert!(c.apply(0, s, Delta::Reserve(6), 16).is_ok());
        assert_eq!((c.load().cbytes, c.load().qnum), (16, 2));
        // Zero-length messages are limited by qnum + 1 <= qbytes.
        let word = AtomicU64::new(INITIAL);
        let c = Counter {
            word: &word,
            slots: &slots,
        };
        for _ in 0..3 {
            let s = c.next_seq(1);
            c.apply(1, s, Delta::Reserve(0), 3).unwrap();
        }
        let s = c.next_seq(1);
        assert_eq!(c.apply(1, s, Delta::Reserve(0), 3), Err(Full));
    }

    #[test]
    fn applied_is_decidable_after_the_fact() {
        let slots = slot_records(3);
        let word = AtomicU64::new(INITIAL);
        let c = Counter {
            word: &word,
            slots: &slots,
        };
        // Slot 0 applies op 1 and "dies" before acknowledging it.
        slots[0].acct_seq.store(1, Ordering::SeqCst);
        word.store(
            Tally {
                cbytes: 5,
                qnum: 1,
                slot: 0,
                parity: 1,
            }
            .pack(),
            Ordering::SeqCst,
        );
        assert!(c.was_applied(0, 1));
        // Slot 1 overwrites the word: it must flush slot 0's op first.
        let s = c.next_seq(1);
        c.apply(1, s, Delta::Reserve(1), 100).unwrap();
        assert!(c.was_applied(0, 1), "flushed into acct_done");
        // Slot 2 announced op 1 but died before its CAS: not applied.
        slots[2].acct_seq.store(1, Ordering::SeqCst);
        assert!(!c.was_applied(2, 1));
    }
}
