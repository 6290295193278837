//! Cell pool: fixed-size cells owned by CAS on a per-cell state word, found
//! through a two-level bitmap that is only a hint.
//!
//! # Why not a Treiber stack
//! The classic lock-free free list (Treiber 1986, with an ABA tag) has a window
//! between popping a cell and recording who holds it: a process killed there
//! leaves a cell that is neither on the list nor owned by anyone, and nothing
//! can tell it apart from a cell that a live process is about to record. Here
//! the single atomic step that takes a cell also records its owner:
//!
//! ```text
//! state: gen << 32 | owner      owner == 0  <=>  the cell is free
//! take:  CAS (gen, 0) -> (gen, owner)          (Acquire)
//! free:  CAS (gen, owner) -> (gen + 1, 0)      (Release)
//! ```
//!
//! so ownership is always decidable from the cell itself, which is what crash
//! recovery needs (`recovery` frees cells whose owner is dead).
//!
//! # The bitmap hint
//! To find a free cell in O(1) expected time, each cell has a bit (1 = taken,
//! 0 = maybe free; zero-filled pages of a new sparse file thus read as "all
//! free" without being touched), and each bitmap word a summary bit (1 = word
//! full). An allocator first claims a cell's bit with `fetch_or`, so allocators
//! do not race for the same cell, then CASes the state. The bits can be stale
//! in both directions after a crash or a race; neither is harmful:
//! - bit set but cell free: the cell is invisible to the fast path until
//!   [`Pool::heal`] (run by recovery) or the slow full scan clears it;
//! - bit clear but cell taken: the allocator's CAS fails and it leaves the bit
//!   set, which repairs the hint.
//!
//! Lowest free cell first (first fit), so the touched part of a sparse file
//! stays as small as the queue's peak occupancy; magazines (below) move on
//! through up to [`REUSE_WORDS`] words past the lowest, so that a cell is not
//! handed out again while its last user still works on its lines.
//!
//! # Magazines
//! A sender that took one cell per send from the shared bitmap would write
//! the bitmap word its receiver's frees write too, so the word's line would
//! cross between them twice per message. Instead it claims every free bit of
//! one word at once (one `fetch_or`) into a [`Magazine`] in its own slot
//! record, and takes those cells one by one (each still by the state CAS)
//! until the magazine is empty: one shared bitmap write per up to 64 cells,
//! after the per-CPU magazines of Bonwick and Adams ("Magazines and Vmem",
//! USENIX 2001). A claimed bit is only a hint like any other: a cell in a
//! magazine stays `FREE` in its state until its taker's CAS, so a magazine
//! lost with its process (or raced by [`Pool::heal`]) hides its cells only
//! until the next heal, and never hands a cell out twice. (Fetching the next
//! cell's lines for writing one send ahead was measured: it slowed the
//! two-CPU round trip and did not speed up streams.)
//!
//! # Free batches
//! The receiver that frees a node writes the bitmap word its senders' claims
//! write, and another receiver's frees: one locked clear per message on a line
//! every party writes. A receiver instead frees the node's state as ever (that
//! CAS alone makes the node free) and leaves its bit set in a [`FreeBatch`] in
//! its own slot record, clearing the bits of up to [`FREE_BATCH`] nodes of one
//! bitmap word with one `fetch_and` when the batch is full, when the next node
//! it frees is in another word, and when its slot is released. A set bit over
//! a free cell is the stale hint that a heal repairs, so a batch lost with its
//! process (or raced by a heal) hides at most `FREE_BATCH` nodes until the
//! next heal, and a clear that lands after a heal let someone take the node is
//! the other stale hint, which that allocator's failed CAS repairs.
//!
//! # Reuse by the freer
//! A slot that allocates takes first the cells of its own free batch, then
//! those of its magazine ([`Pool::alloc_reusing`]): a batched cell is free
//! in its state and still claimed by its bit, exactly what a magazine's cell
//! is, so it is taken the same way (the state CAS, dropped from the batch
//! first). The cells a process freed last were written last by that process
//! (its take, finish and free of each), so a process that both receives and
//! sends (a round trip, a request and its reply) fills lines that are in its
//! own cache rather than lines its peer freed: a two-CPU round trip of two
//! processes pinned apart went from 1.06-1.15 us to 0.96-1.03 us (p50 of
//! 300 000 round trips, 5 alternating runs each). This is not
//! what [`REUSE_WORDS`] avoids: that is about cells another party freed and
//! still works on. A process that only sends has an empty batch, and one
//! that only receives never allocates, so streams are unchanged.

use crate::sync::{AtomicU64, Ordering};

/// The cells that the set bits of word `word` of a bitmap stand for, read
/// from a slot record's pair of words (its owner's own, or a dead or idle
/// owner's: Relaxed).
fn cells_of(word: &AtomicU64, bits: &AtomicU64) -> impl Iterator<Item = usize> {
    let w = word.load(Ordering::Relaxed) as usize;
    let mut bits = bits.load(Ordering::Relaxed);
    std::iter::from_fn(move || {
        (bits != 0).then(|| {
            let b = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            w.saturating_mul(64).saturating_add(b)
        })
    })
}

/// Every cell of the bitmap word that a slot record's `word` names
/// (Relaxed, as in [`cells_of`]).
fn cells_of_word(word: &AtomicU64) -> std::ops::Range<usize> {
    let start = (word.load(Ordering::Relaxed) as usize).saturating_mul(64);
    start..start.saturating_add(64)
}

/// How many bitmap words past the lowest one with a free bit a magazine's
/// refills move on to before they start from the lowest again (see
/// [`Pool::refill`]): a cell is handed out again only some `64 *
/// REUSE_WORDS` allocations after it was, not as soon as it is freed. Taken
/// first-fit, the nodes a sender got were the ones its receiver had freed
/// microseconds before, whose lines the receiver still held and was still
/// writing (its take, finish and free of each): a 1 -> 1 stream of 64 B
/// messages whose consumer kept up moved 2.2-2.8 M msg/s; with 16 words
/// 5.5-7.3 M when receiving type 0 but 2.8-3.6 M by type, with 64 words
/// 6.4-7.5 M and 5.8-8.2 M (scratch harness, pinned to two CPUs). The cost
/// is memory: a busy queue touches up to this many words' nodes (512 KiB
/// of 128-byte nodes) whatever it holds, and a fresh queue's first 4 096
/// messages each may fault in a page.
pub(crate) const REUSE_WORDS: usize = 64;

/// How many freed cells a [`FreeBatch`] holds before it clears their bits.
/// (A sender's magazine refill claims what a flush cleared: 16 keeps the
/// shared words written once per 16 messages on each side, and hides at
/// most 16 nodes per slot from the others.)
pub(crate) const FREE_BATCH: u32 = 16;

/// The `owner` half of a free cell's state.
pub(crate) const FREE: u32 = 0;

/// A cell's state word: `gen << 32 | owner`, the owner half 0 when free. The
/// node pool's owners spell more in their half (see `type_fifo::NodeState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CellState(pub(crate) u64);

impl CellState {
    /// The state of a cell of generation `gen` held by `owner` (`FREE`: none).
    pub(crate) const fn new(gen: u32, owner: u32) -> CellState {
        CellState((gen as u64) << 32 | owner as u64)
    }

    /// The cell's generation: bumped by every free.
    pub(crate) const fn gen(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Who holds the cell (`FREE` when nobody does).
    pub(crate) const fn owner(self) -> u32 {
        self.0 as u32
    }

    /// Whether nobody holds the cell.
    pub(crate) const fn is_free(self) -> bool {
        self.owner() == FREE
    }
}

/// Cells of one bitmap word that their freer freed (their states free) and
/// whose bits it has not cleared yet: see "Free batches" above; its owner's
/// next allocations take them first ("Reuse by the freer"). Lives in the
/// freer's slot record; written by its owner only (and cleared by whoever
/// releases or recovers the slot). `bits == 0`: empty.
#[repr(C)]
pub(crate) struct FreeBatch {
    /// Index of the bitmap word the bits belong to.
    pub(crate) word: AtomicU64,
    /// The bits of freed cells still set in that word.
    pub(crate) bits: AtomicU64,
}

impl FreeBatch {
    /// The freed cells whose bits are still set, for the doctor (which must
    /// not report them as hidden while their owner lives).
    pub(crate) fn cells(&self) -> impl Iterator<Item = usize> {
        cells_of(&self.word, &self.bits)
    }

    /// Every cell of the bitmap word the batch last held cells of: where
    /// its owner's last takes from it came from (see
    /// [`Magazine::word_cells`]).
    pub(crate) fn word_cells(&self) -> std::ops::Range<usize> {
        cells_of_word(&self.word)
    }

    /// Forgets the batch (a dead owner's: a heal clears what it held).
    pub(crate) fn clear(&self) {
        // Relaxed: hints, like the bits themselves.
        self.bits.store(0, Ordering::Relaxed);
    }
}

/// Cells of one bitmap word that an allocator claimed for itself (their bits
/// set by it, their states still free): see "Magazines" above. Lives in the
/// allocator's slot record; written by its owner only (and cleared by
/// whoever releases or recovers the slot).
#[repr(C)]
pub(crate) struct Magazine {
    /// Index of the bitmap word the claimed bits belong to.
    pub(crate) word: AtomicU64,
    /// The claimed bits of that word not taken yet.
    pub(crate) bits: AtomicU64,
}

impl Magazine {
    /// The cells the magazine holds, for the doctor (which must not report
    /// them as hidden) and for returning them.
    pub(crate) fn cells(&self) -> impl Iterator<Item = usize> {
        cells_of(&self.word, &self.bits)
    }

    /// Every cell of the bitmap word the magazine last claimed from, whatever
    /// its bits say now: where its owner's last takes came from. A heal may
    /// clear the bit of a cell still in a magazine; once its owner has taken
    /// that cell, only its state says it is held (recovery of a dead owner
    /// looks here as well as at the set bits).
    pub(crate) fn word_cells(&self) -> std::ops::Range<usize> {
        cells_of_word(&self.word)
    }

    /// Forgets the claimed cells (after returning them, or before a heal).
    pub(crate) fn clear(&self) {
        // Relaxed: hints; see `Pool::alloc_from`.
        self.bits.store(0, Ordering::Relaxed);
    }
}

/// Access to the state words of a pool's cells, wherever they are stored.
pub(crate) trait StateWords {
    /// The state word of cell `i` (`i < len()`).
    fn state(&self, i: usize) -> &AtomicU64;
    /// Number of cells.
    fn len(&self) -> usize;
}

impl StateWords for [AtomicU64] {
    fn state(&self, i: usize) -> &AtomicU64 {
        &self[i]
    }
    fn len(&self) -> usize {
        <[AtomicU64]>::len(self)
    }
}

/// Number of `u64` words a pool of `cells` cells needs for its bitmap: one bit
/// per cell, then one summary bit per bitmap word.
pub(crate) fn bitmap_len(cells: usize) -> usize {
    let words = cells.div_ceil(64);
    words + words.div_ceil(64)
}

/// A pool of cells.
pub(crate) struct Pool<'a, S: StateWords + ?Sized> {
    states: &'a S,
    /// Bit `i` of word `i / 64`: cell `i` is taken (hint).
    words: &'a [AtomicU64],
    /// Bit `w` of summary word `w / 64`: bitmap word `w` is full (hint).
    summary: &'a [AtomicU64],
}

/// A cell that an allocation handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Taken {
    pub(crate) index: u32,
    /// Generation of the cell while this owner holds it.
    pub(crate) gen: u32,
}

impl<'a, S: StateWords + ?Sized> Pool<'a, S> {
    /// A pool over `states` whose bitmap is `bitmap` (of [`bitmap_len`] words).
    pub(crate) fn new(states: &'a S, bitmap: &'a [AtomicU64]) -> Self {
        let words = states.len().div_ceil(64);
        debug_assert_eq!(bitmap.len(), bitmap_len(states.len()));
        let (words, summary) = bitmap.split_at(words);
        Pool {
            states,
            words,
            summary,
        }
    }

    /// Number of cells.
    pub(crate) fn len(&self) -> usize {
        self.states.len()
    }

    /// Takes a free cell for `owner` (non-zero), lowest index first.
    ///
    /// Lock-free: a failed step means another allocator took a cell. Returns
    /// `None` only when no cell is free (a full scan found none).
    pub(crate) fn alloc(&self, owner: u32) -> Option<Taken> {
        debug_assert_ne!(owner, FREE);
        self.find_in_words_not_full(|w| self.alloc_in_word(w, owner))
            // The summary can be stale after a race or a crash: look at every
            // word.
            .or_else(|| (0..self.words.len()).find_map(|w| self.alloc_in_word(w, owner)))
    }

    /// The first `Some` that `f` gives for a bitmap word the summary does
    /// not mark full, lowest word first.
    fn find_in_words_not_full<T>(&self, mut f: impl FnMut(usize) -> Option<T>) -> Option<T> {
        for (si, sword) in self.summary.iter().enumerate() {
            // Relaxed: the summary is a hint; the state CAS decides.
            let mut full = sword.load(Ordering::Relaxed);
            while full != u64::MAX {
                let w = si * 64 + (!full).trailing_zeros() as usize;
                if w >= self.words.len() {
                    return None;
                }
                if let Some(t) = f(w) {
                    return Some(t);
                }
                full |= 1 << (w % 64);
            }
        }
        None
    }

    /// Takes a free cell for `owner` (non-zero): one its caller freed into
    /// `freed` and has not cleared the bit of yet (see "Reuse by the freer"
    /// above), else as [`Pool::alloc_from`].
    pub(crate) fn alloc_reusing(
        &self,
        freed: &FreeBatch,
        mag: &Magazine,
        owner: u32,
    ) -> Option<Taken> {
        debug_assert_ne!(owner, FREE);
        #[cfg(loom)]
        let without_cas = crate::sync::mutant(crate::sync::Mutant::FreeBatchReuseWithoutCas);
        #[cfg(not(loom))]
        let without_cas = false;
        self.take_claimed(&freed.word, &freed.bits, owner, without_cas)
            .or_else(|| self.alloc_from(mag, owner))
    }

    /// Takes a free cell for `owner` (non-zero) from the magazine `mag`,
    /// refilled from the lowest bitmap word with a free bit when empty; when
    /// no word has one, [`Pool::alloc`]'s full scan, then a heal (other
    /// magazines' cells) and that scan again. `None` only when no cell is free.
    pub(crate) fn alloc_from(&self, mag: &Magazine, owner: u32) -> Option<Taken> {
        debug_assert_ne!(owner, FREE);
        #[cfg(loom)]
        let without_cas = crate::sync::mutant(crate::sync::Mutant::MagazineTakeWithoutCas);
        #[cfg(not(loom))]
        let without_cas = false;
        loop {
            if let Some(t) = self.take_claimed(&mag.word, &mag.bits, owner, without_cas) {
                return Some(t);
            }
            if !self.refill(mag) {
                break;
            }
        }
        self.alloc(owner)
            .or_else(|| (self.heal() > 0).then(|| self.alloc(owner)).flatten())
    }

    /// Takes one of the cells of bitmap word `word` whose bits the caller
    /// holds set in `bits` (a magazine's or a free batch's pair of words in
    /// its own slot record), dropping each from `bits` as it tries it;
    /// `None` once none is left that is free. (`without_cas`: a mutant of
    /// the loom models, always false otherwise.)
    #[inline]
    fn take_claimed(
        &self,
        word: &AtomicU64,
        bits: &AtomicU64,
        owner: u32,
        without_cas: bool,
    ) -> Option<Taken> {
        loop {
            // Relaxed (both): our own record; a stale or lost one only hides
            // cells until a heal.
            let held = bits.load(Ordering::Relaxed);
            if held == 0 {
                return None;
            }
            let w = word.load(Ordering::Relaxed) as usize;
            bits.store(held & (held - 1), Ordering::Relaxed);
            let i = w.saturating_mul(64) + held.trailing_zeros() as usize;
            if i >= self.states.len() {
                bits.store(0, Ordering::Relaxed); // a corrupted record: drop it
                return None;
            }
            if without_cas {
                let s = CellState(self.states.state(i).load(Ordering::Relaxed));
                if s.is_free() {
                    let held = CellState::new(s.gen(), owner);
                    self.states.state(i).store(held.0, Ordering::Relaxed);
                    return Some(Taken {
                        index: i as u32,
                        gen: s.gen(),
                    });
                }
                continue;
            }
            if let Some(t) = self.take(i, owner) {
                return Some(t);
            }
            // Taken meanwhile (after a heal): its bit is right; go on.
        }
    }

    /// Claims every free bit of a bitmap word into `mag`: of the first word
    /// with a free bit after the one it last claimed from, while that is
    /// fewer than [`REUSE_WORDS`] words past the lowest word with a free
    /// bit; else of the lowest. `false` if the summary shows no word with a
    /// free bit. (Measured against preferring a word whose cells are all
    /// free, which reads more words: the lowest word was faster, 1 -> 1 and
    /// 2 x 2, with consumers that lagged.)
    fn refill(&self, mag: &Magazine) -> bool {
        let Some(low) = self.find_in_words_not_full(Some) else {
            return false;
        };
        // Relaxed: our own record (a corrupted one only picks another word).
        let next = (mag.word.load(Ordering::Relaxed) as usize).wrapping_add(1);
        if next > low {
            for w in next..low.saturating_add(REUSE_WORDS).min(self.words.len()) {
                if !self.marked_full(w) && self.claim_word(w, mag) {
                    return true;
                }
            }
        }
        self.find_in_words_not_full(|w| self.claim_word(w, mag).then_some(()))
            .is_some()
    }

    /// Whether the summary marks bitmap word `w` full (a hint).
    fn marked_full(&self, w: usize) -> bool {
        // Relaxed: the summary is a hint; the state CAS decides.
        self.summary[w / 64].load(Ordering::Relaxed) >> (w % 64) & 1 == 1
    }

    /// The bits of bitmap word `w` that stand for cells of the pool.
    fn valid_bits(&self, w: usize) -> u64 {
        match self.states.len().saturating_sub(w * 64) {
            n if n >= 64 => u64::MAX,
            n => (1u64 << n) - 1,
        }
    }

    /// Claims every free bit of bitmap word `w` into `mag`; `false` if it
    /// had none.
    fn claim_word(&self, w: usize, mag: &Magazine) -> bool {
        // SeqCst: as the single-bit claim in `alloc_in_word`.
        let old = self.words[w].fetch_or(u64::MAX, Ordering::SeqCst);
        self.mark_word_full(w);
        let claimed = !old & self.valid_bits(w);
        if claimed == 0 {
            return false;
        }
        // Relaxed: see `alloc_from`; killed before these stores, the claimed
        // cells are hidden until a heal.
        mag.word.store(w as u64, Ordering::Relaxed);
        mag.bits.store(claimed, Ordering::Relaxed);
        true
    }

    /// Gives the cells of `mag` that are still free back to the bitmap, and
    /// empties it (a slot released by its owner).
    pub(crate) fn give_back(&self, mag: &Magazine) {
        for i in mag.cells() {
            if i < self.states.len()
                && CellState(self.states.state(i).load(Ordering::Relaxed)).is_free()
            {
                self.mark_maybe_free(i);
            }
        }
        mag.clear();
    }

    /// Takes cell `i`, whose bit the caller has set, if it is free.
    fn take(&self, i: usize, owner: u32) -> Option<Taken> {
        let state = self.states.state(i);
        let s = CellState(state.load(Ordering::Relaxed));
        if !s.is_free() {
            return None; // stale hint; the bit set is now right
        }
        // SYNC(cell_free): Acquire pairs with the Release of `free`, so the
        // previous owner's last reads of the cell happen before our writes.
        state
            .compare_exchange(
                s.0,
                CellState::new(s.gen(), owner).0,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
            .then_some(Taken {
                index: i as u32,
                gen: s.gen(),
            })
    }

    fn alloc_in_word(&self, w: usize, owner: u32) -> Option<Taken> {
        let word = &self.words[w];
        // Relaxed: hint only.
        let mut bits = word.load(Ordering::Relaxed);
        while bits != u64::MAX {
            let b = (!bits).trailing_zeros() as usize;
            let i = w * 64 + b;
            if i >= self.states.len() {
                break;
            }
            let mask = 1u64 << b;
            // SeqCst: pairs with the summary re-check in `mark_maybe_free`, so
            // that a word is never left marked full while one of its cells is
            // marked free (a stale mark only costs a slow scan, never safety).
            let old = word.fetch_or(mask, Ordering::SeqCst);
            bits = old | mask;
            if old & mask != 0 {
                continue; // another allocator claimed this bit first
            }
            if bits == u64::MAX {
                self.mark_word_full(w);
            }
            if let Some(t) = self.take(i, owner) {
                return Some(t);
            }
            // A stale hint (the bit we set is now right), or someone (a heal
            // racing with us) took it: keep looking.
        }
        None
    }

    fn mark_word_full(&self, w: usize) {
        let (s, b) = (w / 64, 1u64 << (w % 64));
        // SeqCst with the re-check below and with `mark_maybe_free`: either we
        // see a concurrent free and undo the mark, or the freer sees our mark.
        self.summary[s].fetch_or(b, Ordering::SeqCst);
        if self.words[w].load(Ordering::SeqCst) != u64::MAX {
            self.summary[s].fetch_and(!b, Ordering::SeqCst);
        }
    }

    fn mark_maybe_free(&self, i: usize) {
        self.mark_maybe_free_in_word(i / 64, 1u64 << (i % 64));
    }

    /// Clears `bits` of bitmap word `w` (cells freed), and the word's full
    /// mark.
    fn mark_maybe_free_in_word(&self, w: usize, bits: u64) {
        // SeqCst: see `mark_word_full`.
        self.words[w].fetch_and(!bits, Ordering::SeqCst);
        let (s, sb) = (w / 64, 1u64 << (w % 64));
        if self.summary[s].load(Ordering::SeqCst) & sb != 0 {
            self.summary[s].fetch_and(!sb, Ordering::SeqCst);
        }
    }

    /// Frees cell `index` if its state is still `expected`; returns whether this
    /// call freed it (exactly one of several racing frees succeeds).
    pub(crate) fn free(&self, index: u32, expected: CellState) -> bool {
        let ok = self.free_state(index, expected);
        if ok {
            self.mark_maybe_free(index as usize);
        }
        ok
    }

    /// [`Self::free`], leaving the cell's bit set in `batch` (see "Free
    /// batches" above) until the batch is full or moves to another word.
    pub(crate) fn free_into(&self, index: u32, expected: CellState, batch: &FreeBatch) -> bool {
        if !self.free_state(index, expected) {
            return false;
        }
        let (w, b) = (index as usize / 64, 1u64 << (index % 64));
        // Relaxed (all): the owner's own record; see `FreeBatch`.
        let bits = batch.bits.load(Ordering::Relaxed);
        if bits != 0 && batch.word.load(Ordering::Relaxed) == w as u64 {
            let all = bits | b;
            if all.count_ones() < FREE_BATCH {
                batch.bits.store(all, Ordering::Relaxed);
            } else {
                self.mark_maybe_free_in_word(w, all);
                batch.clear();
            }
            return true;
        }
        self.flush(batch);
        batch.word.store(w as u64, Ordering::Relaxed);
        batch.bits.store(b, Ordering::Relaxed);
        true
    }

    /// Clears the bits that `batch` holds and empties it.
    pub(crate) fn flush(&self, batch: &FreeBatch) {
        // Relaxed: the owner's own record (or an idle one's).
        let bits = batch.bits.load(Ordering::Relaxed);
        let w = batch.word.load(Ordering::Relaxed) as usize;
        #[cfg(loom)]
        let skip = crate::sync::mutant(crate::sync::Mutant::FreeBatchFlushKeepsBits);
        #[cfg(not(loom))]
        let skip = false;
        // A damaged record's word is out of range: its bits are dropped (the
        // heal that an allocator runs when it finds nothing repairs them).
        if bits != 0 && w < self.words.len() && !skip {
            self.mark_maybe_free_in_word(w, bits);
        }
        batch.clear();
    }

    /// The state half of a free: CAS cell `index` from `expected` to free (the
    /// next generation); whether this call freed it.
    fn free_state(&self, index: u32, expected: CellState) -> bool {
        let i = index as usize;
        if i >= self.states.len() || expected.is_free() {
            return false;
        }
        #[cfg(loom)]
        let step = u32::from(!crate::sync::mutant(crate::sync::Mutant::PoolNoGeneration));
        #[cfg(not(loom))]
        let step = 1;
        let freed = CellState::new(expected.gen().wrapping_add(step), FREE);
        // SYNC(cell_free): Release pairs with the Acquire CAS in `alloc`.
        self.states
            .state(i)
            .compare_exchange(expected.0, freed.0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
    }

    /// The current state of cell `index`, or `None` if out of range.
    pub(crate) fn state(&self, index: u32) -> Option<CellState> {
        let i = index as usize;
        // Acquire: callers go on to read fields the owner published.
        (i < self.states.len()).then(|| CellState(self.states.state(i).load(Ordering::Acquire)))
    }

    /// Makes every free cell visible to allocators again, and returns how many
    /// were hidden. Run by recovery: a process killed between freeing a cell's
    /// state and clearing its bit leaves the cell free but marked taken.
    pub(crate) fn heal(&self) -> usize {
        let mut healed = 0;
        for (w, word) in self.words.iter().enumerate() {
            let bits = word.load(Ordering::Relaxed);
            if bits == 0 {
                continue;
            }
            for b in 0..64 {
                let i = w * 64 + b;
                if i >= self.states.len() {
                    break;
                }
                if bits & (1 << b) != 0
                    && CellState(self.states.state(i).load(Ordering::Relaxed)).is_free()
                {
                    self.mark_maybe_free(i);
                    healed += 1;
                }
            }
        }
        healed
    }

    /// Indices whose bit says "taken": the cells recovery has to look at.
    /// Never-used cells (the untouched tail of a sparse file) are skipped.
    pub(crate) fn maybe_taken(&self) -> impl Iterator<Item = u32> + '_ {
        let n = self.states.len();
        self.words.iter().enumerate().flat_map(move |(w, word)| {
            let bits = word.load(Ordering::Relaxed);
            (0..64)
                .filter(move |b| bits & (1 << b) != 0)
                .map(move |b| w * 64 + b)
                .filter(move |&i| i < n)
                .map(|i| i as u32)
        })
    }

    /// Every cell index whose state is not free (a full pass, for checks).
    pub(crate) fn count_taken(&self) -> usize {
        (0..self.states.len())
            .filter(|&i| !CellState(self.states.state(i).load(Ordering::Relaxed)).is_free())
            .count()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn pool_mem(cells: usize) -> (Vec<AtomicU64>, Vec<AtomicU64>) {
        let states = (0..cells).map(|_| AtomicU64::new(0)).collect();
        let bitmap = (0..bitmap_len(cells)).map(|_| AtomicU64::new(0)).collect();
        (states, bitmap)
    }

    #[test]
    fn hands_out_every_cell_once_then_none() {
        let (states, bitmap) = pool_mem(200);
        let pool = Pool::new(&states[..], &bitmap);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let t = pool.alloc(7).expect("a free cell");
            assert!(seen.insert(t.index), "cell {} handed out twice", t.index);
        }
        assert_eq!(pool.alloc(7), None);
        assert_eq!(pool.count_taken(), 200);
    }

    #[test]
    fn first_fit_reuses_low_cells() {
        let (states, bitmap) = pool_mem(300);
        let pool = Pool::new(&states[..], &bitmap);
        let a: Vec<_> = (0..130).map(|_| pool.alloc(1).unwrap()).collect();
        assert!(pool.free(a[3].index, CellState::new(a[3].gen, 1)));
        let again = pool.alloc(2).unwrap();
        assert_eq!(again.index, 3);
        assert_eq!(again.gen, a[3].gen + 1, "generation bumps on free");
    }

    #[test]
    fn free_with_stale_expectation_fails() {
        let (states, bitmap) = pool_mem(10);
        let pool = Pool::new(&states[..], &bitmap);
        let t = pool.alloc(5).unwrap();
        assert!(!pool.free(t.index, CellState::new(t.gen, 6)));
        assert!(pool.free(t.index, CellState::new(t.gen, 5)));
        assert!(
            !pool.free(t.index, CellState::new(t.gen, 5)),
            "double free refused"
        );
    }

    #[test]
    fn heal_recovers_hidden_cells() {
        let (states, bitmap) = pool_mem(64);
        let pool = Pool::new(&states[..], &bitmap);
        for _ in 0..64 {
            pool.alloc(1).unwrap();
        }
        // Simulate a process killed after freeing a state, before its bit.
        states[10].store(CellState::new(1, FREE).0, Ordering::Relaxed);
        assert_eq!(pool.alloc(1).map(|t| t.index), None);
        assert_eq!(pool.heal(), 1);
        assert_eq!(pool.alloc(1).map(|t| t.index), Some(10));
    }

    fn magazine() -> Magazine {
        Magazine {
            word: AtomicU64::new(0),
            bits: AtomicU64::new(0),
        }
    }

    #[test]
    fn a_magazine_claims_a_word_and_hands_its_cells_out_in_order() {
        let (states, bitmap) = pool_mem(164);
        let pool = Pool::new(&states[..], &bitmap);
        let mag = magazine();
        // A new magazine's record names word 0: it moves on to word 1.
        let first: Vec<u32> = (0..64)
            .map(|_| pool.alloc_from(&mag, 3).unwrap().index)
            .collect();
        assert_eq!(first, (64..128).collect::<Vec<_>>());
        // The word was claimed whole: the next cell comes from word 2, which
        // holds only the 36 cells of the pool past 128.
        let t = pool.alloc_from(&mag, 3).unwrap();
        assert_eq!(t.index, 128);
        assert_eq!(mag.cells().count(), 35);
        assert_eq!(pool.count_taken(), 65);
        // Another allocator sees the claimed cells as taken.
        let others: Vec<u32> = (0..64).map(|_| pool.alloc(4).unwrap().index).collect();
        assert_eq!(others, (0..64).collect::<Vec<_>>());
        assert_eq!(pool.alloc(4), None);
    }

    #[test]
    fn refills_move_on_within_reuse_words_of_the_lowest_free_word() {
        let words = REUSE_WORDS + 2;
        let (states, bitmap) = pool_mem(words * 64);
        let pool = Pool::new(&states[..], &bitmap);
        let mag = magazine();
        let mut claimed = Vec::new();
        for _ in 0..words {
            let t = pool.alloc_from(&mag, 3).unwrap();
            claimed.push(t.index as usize / 64);
            for _ in 0..63 {
                pool.alloc_from(&mag, 3).unwrap();
            }
        }
        // Words 1.. while they are fewer than REUSE_WORDS past the lowest
        // word with a free bit (word 0), then word 0, then on from the
        // lowest again.
        let mut expected: Vec<usize> = (1..REUSE_WORDS).collect();
        expected.extend([0, REUSE_WORDS, REUSE_WORDS + 1]);
        assert_eq!(claimed, expected);
        // Freed cells of a low word are taken again once the refills have
        // moved on past REUSE_WORDS words.
        let cell_of_word_0 = 5u32;
        assert!(pool.free(cell_of_word_0, CellState::new(0, 3)));
        assert_eq!(pool.alloc_from(&mag, 3).unwrap().index, cell_of_word_0);
    }

    #[test]
    fn given_back_cells_are_found_again() {
        let (states, bitmap) = pool_mem(64);
        let pool = Pool::new(&states[..], &bitmap);
        let mag = magazine();
        let t = pool.alloc_from(&mag, 3).unwrap();
        assert_eq!(mag.cells().count(), 63);
        pool.give_back(&mag);
        assert_eq!(mag.cells().count(), 0);
        let others: Vec<_> = (0..63).map(|_| pool.alloc(4).unwrap().index).collect();
        assert!(!others.contains(&t.index));
        assert_eq!(pool.alloc(4), None);
    }

    #[test]
    fn another_magazine_is_healed_when_the_pool_runs_dry() {
        let (states, bitmap) = pool_mem(64);
        let pool = Pool::new(&states[..], &bitmap);
        let (a, b) = (magazine(), magazine());
        let t = pool.alloc_from(&a, 3).unwrap();
        // `a` holds the other 63 cells; `b` finds none in the bitmap, heals
        // them away from `a`, and takes one.
        let u = pool.alloc_from(&b, 4).unwrap();
        assert_ne!(u.index, t.index);
        // `a`'s takes now race with `b`'s: the state CAS keeps them apart.
        let mut held = std::collections::HashSet::from([t.index, u.index]);
        while let Some(c) = pool.alloc_from(&a, 3) {
            assert!(held.insert(c.index), "cell {} handed out twice", c.index);
            if let Some(c) = pool.alloc_from(&b, 4) {
                assert!(held.insert(c.index), "cell {} handed out twice", c.index);
            }
        }
        assert_eq!(held.len(), 64);
        assert_eq!(pool.count_taken(), 64);
    }

    fn free_batch() -> FreeBatch {
        FreeBatch {
            word: AtomicU64::new(0),
            bits: AtomicU64::new(0),
        }
    }

    #[test]
    fn a_freer_takes_back_what_its_batch_holds_first() {
        let (states, bitmap) = pool_mem(200);
        let pool = Pool::new(&states[..], &bitmap);
        let (mag, batch) = (magazine(), free_batch());
        let t = pool.alloc_reusing(&batch, &mag, 3).unwrap();
        let u = pool.alloc_reusing(&batch, &mag, 3).unwrap();
        assert!(pool.free_into(t.index, CellState::new(t.gen, 3), &batch));
        assert_eq!(batch.cells().collect::<Vec<_>>(), [t.index as usize]);
        let again = pool.alloc_reusing(&batch, &mag, 3).unwrap();
        assert_eq!((again.index, again.gen), (t.index, t.gen + 1));
        assert_eq!(batch.cells().count(), 0, "taken out of the batch");
        assert_eq!(
            bitmap[t.index as usize / 64].load(Ordering::Relaxed) >> (t.index % 64) & 1,
            1,
            "its bit stays set: it is taken"
        );
        // An empty batch: the magazine's next cell, past both.
        let next = pool.alloc_reusing(&batch, &mag, 3).unwrap();
        assert!(next.index != t.index && next.index != u.index);
    }

    #[test]
    fn a_batched_cell_that_a_heal_gave_away_is_skipped() {
        let (states, bitmap) = pool_mem(64);
        let pool = Pool::new(&states[..], &bitmap);
        let (mag, batch, other) = (magazine(), free_batch(), magazine());
        // Our magazine claims every cell; we take one and free it into our
        // batch, so no bit is clear.
        let t = pool.alloc_reusing(&batch, &mag, 3).unwrap();
        assert!(pool.free_into(t.index, CellState::new(t.gen, 3), &batch));
        // Another allocator heals (the batched cell is free) and takes it:
        // the lowest free cell.
        let u = pool.alloc_from(&other, 4).unwrap();
        assert_eq!(u.index, t.index);
        // Our take from the batch loses the state CAS and moves on.
        let v = pool.alloc_reusing(&batch, &mag, 3).unwrap();
        assert_ne!(v.index, t.index);
        assert_eq!(batch.cells().count(), 0);
        assert_eq!(
            CellState(states[t.index as usize].load(Ordering::Relaxed)).owner(),
            4
        );
    }

    #[test]
    fn stale_free_bit_is_repaired() {
        let (states, bitmap) = pool_mem(64);
        let pool = Pool::new(&states[..], &bitmap);
        let t = pool.alloc(1).unwrap();
        // Bit cleared while the cell is still taken: the allocator skips it.
        bitmap[0].fetch_and(!1, Ordering::Relaxed);
        let u = pool.alloc(2).unwrap();
        assert_ne!(u.index, t.index);
        assert_eq!(bitmap[0].load(Ordering::Relaxed) & 1, 1);
    }

    #[test]
    fn concurrent_alloc_free_is_exclusive() {
        let (states, bitmap) = pool_mem(256);
        let states = std::sync::Arc::new(states);
        let bitmap = std::sync::Arc::new(bitmap);
        let owners: Vec<_> = (0..4u32)
            .map(|t| {
                let (states, bitmap) = (states.clone(), bitmap.clone());
                std::thread::spawn(move || {
                    let pool = Pool::new(&states[..], &bitmap);
                    for _ in 0..20_000 {
                        let c = pool.alloc(t + 1).unwrap();
                        let s = states[c.index as usize].load(Ordering::Relaxed);
                        assert_eq!(CellState(s).owner(), t + 1);
                        assert!(pool.free(c.index, CellState(s)));
                    }
                })
            })
            .collect();
        for o in owners {
            o.join().unwrap();
        }
        let pool = Pool::new(&states[..], &bitmap);
        assert_eq!(pool.count_taken(), 0);
    }
}
