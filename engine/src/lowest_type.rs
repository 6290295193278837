//! The lowest-type index: which small message types may hold a message, as
//! a 64-ary bitmap trie over the type value, so that a negative-type receive
//! (`msgtyp = -D`: the oldest message of the lowest type `<= D`) finds its
//! type in a few word reads, whatever the number of types queued.
//!
//! # Why only the lowest
//! The lowest type `<= D` that holds a message is the lowest type holding a
//! message overall, if that one is `<= D`; otherwise there is none. So the
//! index only ever answers "the lowest marked type", which a trie of summary
//! bitmaps gives by descending along the lowest set bit of each level (van
//! Emde Boas-style layered bitmaps, as in the Linux scheduler's priority
//! bitmap, `sched_find_first_bit`, widened to more levels).
//!
//! Types below [`INDEXED_TYPES`] (2^22, the default `pid_max`, so that types
//! that are pids are covered) have a bit; a receive for a larger `D` with no
//! indexed type marked falls back to scanning the type heads.
//!
//! # Protocol (the same as the non-empty index of `type_dir`)
//! A leaf bit may be set while its type holds nothing (stale), never clear
//! while it holds a message that its sender has finished linking:
//! - a sender links, SeqCst fence, then sets the leaf bit if clear, then
//!   every summary bit above it that is clear (always looking, so a sender
//!   killed half-way leaves nothing a later sender of any type in that
//!   branch does not repair);
//! - receivers leave the bit set when they empty a FIFO; a lookup whose
//!   type turns out empty (stale) clears the leaf bit, SeqCst fence,
//!   re-checks the type and sets the bit again if it holds a message
//!   (`transfer`'s `find_lowest`; the scan of `type_dir` does the same);
//! - a lookup that finds a summary bit over an all-zero word clears it,
//!   SeqCst fence, re-reads the word and sets the bit again if needed.
//!
//! Every descent is bounded by the number of levels, and every retry loop by
//! a constant: a corrupted mapping yields a wrong or absent type (which the
//! caller verifies against the directory), never a hang.

use crate::sync::{fence, AtomicU64, Ordering};

/// Types `1..INDEXED_TYPES` have a bit (loom models use small types and a
/// small trie, since every word is a modelled atomic there).
pub(crate) const INDEXED_TYPES: u64 = if cfg!(loom) { 1 << 12 } else { 1 << 22 };

/// Words of each level, leaves first, up to a single root word.
const fn level_words(level: usize) -> usize {
    let mut n = INDEXED_TYPES as usize / 64;
    let mut l = 0;
    while l < level {
        n = n.div_ceil(64);
        l += 1;
    }
    n
}

/// Levels of the trie (the last has one word).
const LEVELS: usize = {
    let mut l = 0;
    while level_words(l) > 1 {
        l += 1;
    }
    l + 1
};

/// Where level `l` starts in the region.
const fn level_start(level: usize) -> usize {
    let mut off = 0;
    let mut l = 0;
    while l < level {
        off += level_words(l);
        l += 1;
    }
    off
}

/// Words of the whole trie (the region `layout` reserves).
pub(crate) const WORDS: usize = level_start(LEVELS);

/// A queue's lowest-type index over its region of [`WORDS`] words.
pub(crate) struct LowestType<'a> {
    pub(crate) words: &'a [AtomicU64],
}

impl LowestType<'_> {
    /// The word and bit of `index` at `level`.
    fn at(&self, level: usize, index: usize) -> Option<(&AtomicU64, u64)> {
        let w = self.words.get(level_start(level) + index / 64)?;
        Some((w, 1u64 << (index % 64)))
    }

    /// Marks `mtype` as holding a message. The caller linked the message and
    /// issued a SeqCst fence since (SYNC(lowest_type)).
    pub(crate) fn mark(&self, mtype: i64) {
        if mtype <= 0 || mtype as u64 >= INDEXED_TYPES {
            return;
        }
        let mut index = mtype as usize;
        for level in 0..LEVELS {
            let Some((word, bit)) = self.at(level, index) else {
                return;
            };
            if word.load(Ordering::Relaxed) & bit == 0 {
                // SYNC(lowest_type): the setter's RMW, then a fence before it
                // looks one level up; paired with the clearers' fences.
                word.fetch_or(bit, Ordering::SeqCst);
                fence(Ordering::SeqCst);
            }
            index /= 64;
        }
    }

    /// Clears `mtype`'s leaf bit. The caller then issues a SeqCst fence and
    /// re-checks the type's FIFO, marking it again if it holds a message.
    pub(crate) fn unmark(&self, mtype: i64) {
        if mtype <= 0 || mtype as u64 >= INDEXED_TYPES {
            return;
        }
        if let Some((word, bit)) = self.at(0, mtype as usize) {
            // SeqCst: see the load in `mark` (SYNC(lowest_type)).
            if word.load(Ordering::SeqCst) & bit != 0 {
                word.fetch_and(!bit, Ordering::SeqCst);
            }
        }
    }

    /// The lowest marked type, or `None` when none is marked. Clears the
    /// summary bits of empty words it meets (with the re-check).
    pub(crate) fn lowest(&self) -> Option<i64> {
        'restart: for _ in 0..crate::sync::RETRY_LIMIT {
            let mut index = 0usize;
            for level in (0..LEVELS).rev() {
                let (word, _) = self.at(level, index * 64)?;
                let w = word.load(Ordering::SeqCst);
                if w == 0 {
                    if level == LEVELS - 1 {
                        return None;
                    }
                    // The parent's bit said this word had a set bit: stale.
                    self.clear_summary(level + 1, index);
                    continue 'restart;
                }
                index = index * 64 + w.trailing_zeros() as usize;
            }
            return Some(index as i64);
        }
        None
    }

    /// Clears the bit of child `child` at `level` (a summary level) unless its
    /// word has a set bit again after the fence.
    fn clear_summary(&self, level: usize, child: usize) {
        let Some((word, bit)) = self.at(level, child) else {
            return;
        };
        let Some((below, _)) = self.at(level - 1, child * 64) else {
            return;
        };
        word.fetch_and(!bit, Ordering::SeqCst);
        // SYNC(lowest_type): clear, fence, re-read the word below.
        fence(Ordering::SeqCst);
        if below.load(Ordering::SeqCst) != 0 {
            word.fetch_or(bit, Ordering::SeqCst);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn trie() -> Vec<AtomicU64> {
        (0..WORDS).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn geometry() {
        assert_eq!(LEVELS, 4);
        assert_eq!(WORDS, 65536 + 1024 + 16 + 1);
    }

    #[test]
    fn lowest_follows_marks() {
        let words = trie();
        let t = LowestType { words: &words };
        assert_eq!(t.lowest(), None);
        for m in [4_000_000, 70_000, 300, 65, 64] {
            t.mark(m);
            assert_eq!(t.lowest(), Some(m));
        }
        t.mark(INDEXED_TYPES as i64); // not indexed
        t.mark(0);
        for (m, next) in [(64, Some(65)), (65, Some(300)), (300, Some(70_000))] {
            t.unmark(m);
            assert_eq!(t.lowest(), next);
        }
        t.unmark(70_000);
        t.unmark(4_000_000);
        assert_eq!(t.lowest(), None);
        // Summary bits of emptied words were cleared on the way.
        assert!(words[level_start(1)..]
            .iter()
            .all(|w| w.load(Ordering::Relaxed) == 0));
    }
}
