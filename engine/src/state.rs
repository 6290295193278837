//! `QueueState`: typed views of every region of a queue, over a file mapping
//! in production or over heap memory in tests (and loom models).
//!
//! All the concurrent algorithms take `&QueueState`, never raw memory. Every
//! view is sized from the [`Geometry`] this process computed itself, so an
//! index read from shared memory can be bounds-checked against it.

use crate::cell_pool::{bitmap_len, Pool};
use crate::layout::{Entry, Geometry, Node, QueueHeader, SlotRecord};
use crate::sync::{AtomicU64, SharedBytes, UnsafeCell};
use crate::type_dir::Directory;

/// One data class: cells of `cell_size` bytes.
pub(crate) struct DataClass<'a> {
    pub(crate) cell_size: usize,
    pub(crate) pool: Pool<'a, [AtomicU64]>,
    pub(crate) cells: SharedBytes<'a>,
}

/// Every region of one queue.
pub(crate) struct QueueState<'a> {
    pub(crate) geo: Geometry,
    pub(crate) header: &'a QueueHeader,
    pub(crate) slots: &'a [SlotRecord],
    pub(crate) entries: &'a [Entry],
    /// The entries' free bitmap (entries are allocated as a pool: see
    /// `type_dir`).
    pub(crate) entry_pool: Pool<'a, [Entry]>,
    pub(crate) homes: &'a [AtomicU64],
    pub(crate) positions: &'a [AtomicU64],
    pub(crate) nonempty: &'a [AtomicU64],
    pub(crate) summary: &'a [AtomicU64],
    pub(crate) arrival_ring: &'a [AtomicU64],
    pub(crate) lowest_type: &'a [AtomicU64],
    pub(crate) nodes: &'a [Node],
    pub(crate) node_pool: Pool<'a, [Node]>,
    pub(crate) classes: Vec<DataClass<'a>>,
    /// How sleepers sleep and wakers wake: the futex in production, a model
    /// under loom (see `wait`).
    pub(crate) park: &'a crate::wait::Parker,
}

impl<'a> QueueState<'a> {
    /// Views of a queue laid out as `geo` starting at `base`.
    ///
    /// # Safety
    /// `base` points at `geo.file_size` bytes, aligned to a page, that stay
    /// mapped for `'a` and are only ever accessed through atomics and
    /// `UnsafeCell`s (every region is a shared mapping of a queue file, whose
    /// zero-filled initial contents are valid values of every type here).
    #[cfg(not(loom))]
    pub(crate) unsafe fn from_raw(base: *const u8, geo: Geometry) -> QueueState<'a> {
        /// # Safety
        /// As for `from_raw`: `off + n * size_of::<T>()` lies in the mapping,
        /// `off` is aligned for `T`, and all-zero bytes are a valid `T`.
        unsafe fn region<'b, T>(base: *const u8, off: usize, n: usize) -> &'b [T] {
            debug_assert_eq!(off % std::mem::align_of::<T>(), 0);
            // SAFETY: guaranteed by the caller (see above).
            unsafe { std::slice::from_raw_parts(base.add(off) as *const T, n) }
        }
        // SAFETY: (for every `region` call below) `Geometry::compute` places
        // each region inside `file_size`, aligned for its element type
        // (checked by `layout`'s tests), and the caller guarantees the mapping.
        unsafe {
            let header = &*(base as *const QueueHeader);
            let nodes: &[Node] = region(base, geo.nodes_off, geo.n_nodes);
            let entries: &[Entry] = region(base, geo.entries_off, geo.n_entries);
            let entry_bitmap = region(base, geo.entry_bitmap_off, bitmap_len(geo.n_entries));
            let node_bitmap = region(base, geo.node_bitmap_off, bitmap_len(geo.n_nodes));
            let classes = geo
                .classes
                .iter()
                .map(|c| {
                    let states: &[AtomicU64] = region(base, c.states_off, c.count);
                    DataClass {
                        cell_size: c.cell_size,
                        pool: Pool::new(states, region(base, c.bitmap_off, bitmap_len(c.count))),
                        cells: SharedBytes::new(region::<UnsafeCell<u8>>(
                            base,
                            c.cells_off,
                            c.count * c.cell_size,
                        )),
                    }
                })
                .collect();
            QueueState {
                header,
                slots: region(base, geo.slots_off, geo.n_slots),
                entries,
                entry_pool: Pool::new(entries, entry_bitmap),
                homes: region(base, geo.homes_off, geo.n_entries),
                positions: region(base, geo.positions_off, geo.n_entries),
                nonempty: region(base, geo.nonempty_off, geo.nonempty_words),
                summary: region(base, geo.summary_off, geo.summary_words),
                arrival_ring: region(base, geo.arrivals_off, geo.n_arrivals),
                lowest_type: region(base, geo.lowest_type_off, crate::lowest_type::WORDS),
                nodes,
                node_pool: Pool::new(nodes, node_bitmap),
                classes,
                park: &crate::wait::Futex::PLAIN,
                geo,
            }
        }
    }

    /// Views of the regions of a heap-backed queue (loom models).
    #[cfg(loom)]
    pub(crate) fn from_heap(heap: &'a HeapRegions) -> QueueState<'a> {
        QueueState {
            geo: heap.geo.clone(),
            header: &heap.header,
            slots: &heap.slots,
            entries: &heap.entries,
            entry_pool: Pool::new(&heap.entries, &heap.entry_bitmap),
            homes: &heap.homes,
            positions: &heap.positions,
            nonempty: &heap.nonempty,
            summary: &heap.summary,
            arrival_ring: &heap.arrivals,
            lowest_type: &heap.lowest_type,
            nodes: &heap.nodes,
            node_pool: Pool::new(&heap.nodes, &heap.node_bitmap),
            classes: heap
                .classes
                .iter()
                .zip(&heap.geo.classes)
                .map(|((states, bitmap, cells), c)| DataClass {
                    cell_size: c.cell_size,
                    pool: Pool::new(states, bitmap),
                    cells: SharedBytes::new(cells),
                })
                .collect(),
            park: &heap.park,
        }
    }

    /// The type directory.
    pub(crate) fn directory(&self) -> Directory<'_> {
        Directory {
            entries: self.entries,
            entry_pool: &self.entry_pool,
            homes: self.homes,
            positions: self.positions,
            nonempty: self.nonempty,
            summary: self.summary,
            slots: self.slots,
            slots_high: &self.header.slots_high,
            // Relaxed: immutable after creation (published by SYNC(queue_ready)).
            seed: self.header.hash_seed.load(crate::sync::Ordering::Relaxed),
            lowest: crate::lowest_type::LowestType {
                words: self.lowest_type,
            },
        }
    }

    /// Gives `slot` back when its owner is done with the queue: its hazard,
    /// the nodes its magazine still holds and those its free batch hides,
    /// then the slot itself.
    pub(crate) fn release_slot(&self, slot: usize) {
        self.directory().unprotect(slot);
        self.node_pool.give_back(&self.slots[slot].node_magazine);
        self.node_pool.flush(&self.slots[slot].freed_nodes);
        crate::slots::release(&self.slots[slot]);
    }

    /// The arrival index (type-0 receives).
    pub(crate) fn arrivals(&self) -> crate::arrivals::Arrivals<'_> {
        crate::arrivals::Arrivals {
            ring: self.arrival_ring,
            head: &self.header.arrivals_head,
            claimed: &self.header.next_seq,
            doubts: &self.header.arrival_doubts,
            stragglers: &self.header.arrival_stragglers,
        }
    }

    /// What the queue holds at most: `qbytes` bytes, and `qbytes` messages
    /// or, for a POSIX queue, `qnum_max` (its `mq_maxmsg`).
    pub(crate) fn capacity(&self) -> crate::accounting::Capacity {
        let c = &self.header.control;
        // Relaxed: limits read at the start of an operation (qbytes changes
        // only by IPC_SET, which wakes sleepers; qnum_max never changes).
        let bytes = c.qbytes.load(crate::sync::Ordering::Relaxed);
        let msgs = match c.qnum_max.load(crate::sync::Ordering::Relaxed) {
            0 => bytes,
            n => n.min(bytes),
        };
        crate::accounting::Capacity { bytes, msgs }
    }

    /// The accounting words.
    pub(crate) fn counter(&self) -> crate::accounting::Counter<'_> {
        crate::accounting::Counter {
            sent: &self.header.sent_sum.sum,
            received: &self.header.received_sum.sum,
            sent_completed: &self.header.sent_sum.completed,
            received_completed: &self.header.received_sum.completed,
            slots: self.slots,
        }
    }

    /// The data class and cell that a node's `data` field names, bounds-checked.
    pub(crate) fn data_cell(&self, data: u32) -> Option<(&DataClass<'a>, u32)> {
        let (c, i) = crate::layout::data_unref(data)?;
        let class = self.classes.get(c)?;
        ((i as usize) < class.pool.len()).then_some((class, i))
    }
}

/// Every region of a queue, on the heap (loom models cannot run on a mapping:
/// loom's atomics are not plain integers). Filled as a new queue file is:
/// zeros, then the header fields that `shm` initialises.
#[cfg(loom)]
pub(crate) struct HeapRegions {
    geo: Geometry,
    header: QueueHeader,
    slots: Box<[SlotRecord]>,
    entries: Box<[Entry]>,
    entry_bitmap: Box<[AtomicU64]>,
    homes: Box<[AtomicU64]>,
    positions: Box<[AtomicU64]>,
    nonempty: Box<[AtomicU64]>,
    summary: Box<[AtomicU64]>,
    arrivals: Box<[AtomicU64]>,
    lowest_type: Box<[AtomicU64]>,
    nodes: Box<[Node]>,
    node_bitmap: Box<[AtomicU64]>,
    park: crate::wait::Parker,
    #[allow(clippy::type_complexity)]
    classes: Vec<(Box<[AtomicU64]>, Box<[AtomicU64]>, Box<[UnsafeCell<u8>]>)>,
}

#[cfg(loom)]
impl HeapRegions {
    /// A new, empty queue laid out as `geo`, with `qbytes` as its limit.
    pub(crate) fn new(geo: Geometry, qbytes: u64) -> HeapRegions {
        use crate::layout::zeroed;
        fn words<T>(n: usize, f: impl Fn() -> T) -> Box<[T]> {
            (0..n).map(|_| f()).collect()
        }
        let header = zeroed::header();
        let r = crate::sync::Ordering::Relaxed;
        header.msgmax.store(geo.params.msgmax, r);
        header.qbytes_max.store(geo.params.qbytes_max, r);
        header.control.qbytes.store(qbytes, r);
        header.sent_sum.sum.store(crate::accounting::INITIAL, r);
        header.received_sum.sum.store(crate::accounting::INITIAL, r);
        header.hash_seed.store(0x9e37_79b9_7f4a_7c15, r);
        header.perm.mode.store(0o666, r);
        HeapRegions {
            slots: words(geo.n_slots, zeroed::slot),
            entries: words(geo.n_entries, zeroed::entry),
            entry_bitmap: words(bitmap_len(geo.n_entries), || AtomicU64::new(0)),
            homes: words(geo.n_entries, || AtomicU64::new(0)),
            positions: words(geo.n_entries, || AtomicU64::new(0)),
            nonempty: words(geo.nonempty_words, || AtomicU64::new(0)),
            summary: words(geo.summary_words, || AtomicU64::new(0)),
            arrivals: words(geo.n_arrivals, || AtomicU64::new(0)),
            lowest_type: words(crate::lowest_type::WORDS, || AtomicU64::new(0)),
            nodes: words(geo.n_nodes, zeroed::node),
            node_bitmap: words(bitmap_len(geo.n_nodes), || AtomicU64::new(0)),
            classes: geo
                .classes
                .iter()
                .map(|c| {
                    (
                        words(c.count, || AtomicU64::new(0)),
                        words(bitmap_len(c.count), || AtomicU64::new(0)),
                        words(c.count * c.cell_size, || UnsafeCell::new(0u8)),
                    )
                })
                .collect(),
            header,
            park: crate::wait::Parker::default(),
            geo,
        }
    }
}
