//! The shape of a queue file: `#[repr(C)]` structures and where each region starts.
//!
//! A queue file is one mapping holding, in order:
//!
//! | region | element | count |
//! | --- | --- | --- |
//! | header | [`QueueHeader`] | 1 (one page) |
//! | attachment slots | [`SlotRecord`] | `n_slots` |
//! | type entries | [`Entry`] | `n_entries` (a power of two) |
//! | entry free bitmap | bitmap words | `n_entries / 64`, plus a summary |
//! | neighbourhood words | `AtomicU64` | `n_entries` |
//! | directory positions | `AtomicU64` (see `type_dir`) | `n_entries` |
//! | non-empty index | bitmap words | `n_entries / 64`, plus a summary |
//! | arrival index | `AtomicU64` records (see `arrivals`) | `n_arrivals` (a power of two) |
//! | lowest-type index | bitmap trie words (see `lowest_type`) | `lowest_type::WORDS` |
//! | nodes | [`Node`] | `n_nodes` |
//! | node free bitmap | bitmap words | `n_nodes / 64`, plus a summary |
//! | per data class: states, free bitmap, cells | | `class_counts[c]` |
//!
//! Everything shared is reached through an *index* into one of these arrays,
//! never through a pointer, and every index read from the mapping is checked
//! against the geometry that this process computed itself (from the limits it
//! validated when it opened the file), never against sizes read back later.
//!
//! The file is sparse on tmpfs: the regions are sized for the largest queue the
//! limits allow, but a page costs memory only once it is touched, and the
//! allocators hand out low indices first.

use crate::sync::{AtomicI64, AtomicU32, AtomicU64, UnsafeCell};

/// `b"SHMQ_QUE"`: first eight bytes of every queue file.
pub(crate) const QUEUE_MAGIC: u64 = u64::from_le_bytes(*b"SHMQ_QUE");
/// Bumped whenever the meaning of any byte of a queue file changes.
pub(crate) const QUEUE_LAYOUT_VERSION: u32 = 6;

/// Page size assumed for region alignment (x86_64 and aarch64 4 KiB pages).
pub(crate) const PAGE: usize = 4096;
/// Bytes of message text stored inside the node itself: a node is two cache
/// lines, so that texts up to 80 bytes (the 64-byte messages of most IPC)
/// need no data cell, and so no second allocation, free and line. The loom
/// models keep 16 (and 64-byte cells), so that their small texts (every byte
/// a modelled cell) still take the data-cell path and its crash points.
pub(crate) const INLINE_BYTES: usize = if cfg!(loom) { 16 } else { 80 };
/// Smallest data cell; class `c` holds cells of `MIN_DATA_CELL << c` bytes.
pub(crate) const MIN_DATA_CELL: usize = if cfg!(loom) { 64 } else { 128 };
/// Most data classes a queue can have (cells up to 64 << 23 = 512 MiB).
pub(crate) const MAX_CLASSES: usize = 24;
/// Positions a type may occupy away from its home (bits in a neighbourhood word).
pub(crate) const NEIGHBOURHOOD: usize = 48;
/// The largest `qbytes` a queue can be built for: the tagged accounting word
/// keeps `cbytes` in 26 bits and `qnum` in 25 (see `accounting`).
pub(crate) const QBYTES_LIMIT: u64 = (1 << 25) - 1;
/// The most attachment slots a queue can have: slot numbers are 12 bits wide in
/// the accounting word, and 4095 means "no slot".
pub(crate) const SLOTS_LIMIT: u32 = 4095;

/// "No index" in every 32-bit index field.
pub(crate) const NIL: u32 = u32::MAX;

/// A node index tagged with the node's generation: `gen << 32 | index`.
///
/// Two references compare equal only if they name the same incarnation of a
/// cell, which is what defeats ABA on every CAS of a `head`, `tail` or `next`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct NodeRef(pub(crate) u64);

impl NodeRef {
    /// The reference that names nothing.
    pub(crate) const NIL: NodeRef = NodeRef(NIL as u64);

    pub(crate) fn new(index: u32, gen: u32) -> NodeRef {
        NodeRef((gen as u64) << 32 | index as u64)
    }
    pub(crate) fn index(self) -> u32 {
        self.0 as u32
    }
    pub(crate) fn gen(self) -> u32 {
        (self.0 >> 32) as u32
    }
    pub(crate) fn is_nil(self) -> bool {
        self.index() == NIL
    }
}

/// Keeps a field on a cache line of its own, so that words written by different
/// parties (senders, receivers, sleepers) do not share a line.
#[repr(C, align(64))]
pub(crate) struct Line<T>(pub(crate) T);

impl<T> std::ops::Deref for Line<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The first page of a queue file.
///
/// Fields marked *immutable* are written once by the creator before `ready` is
/// published and only read afterwards; the others say who writes them.
#[repr(C)]
pub(crate) struct QueueHeader {
    /// Immutable: [`QUEUE_MAGIC`].
    pub(crate) magic: AtomicU64,
    /// Immutable: [`QUEUE_LAYOUT_VERSION`] in the low 32 bits, header size above.
    pub(crate) version: AtomicU64,
    /// Immutable: the file's length in bytes.
    pub(crate) file_size: AtomicU64,
    /// Immutable: `msgmax` the queue was built for.
    pub(crate) msgmax: AtomicU64,
    /// Immutable: the largest `qbytes` the pools can hold.
    pub(crate) qbytes_max: AtomicU64,
    /// Immutable: number of attachment slots.
    pub(crate) n_slots: AtomicU64,
    /// Immutable: the queue's key (`i32` as `u32`).
    pub(crate) key: AtomicU64,
    /// Immutable: the queue id (`seq * msgmni + slot`).
    pub(crate) id: AtomicU64,
    /// Immutable: seed of the type hash, random per queue.
    pub(crate) hash_seed: AtomicU64,
    /// Immutable: the namespace's identity (its id-table creation stamp), so a
    /// queue file moved into another namespace is refused.
    pub(crate) namespace_stamp: AtomicU64,
    /// 0 while the creator initialises the file, [`READY`] afterwards.
    ///
    /// SYNC(queue_ready): stored with Release after every other field is
    /// written; loaded with Acquire by openers before they read anything else.
    pub(crate) ready: AtomicU64,
    /// Permissions and owner, written under the namespace lock (IPC_SET).
    pub(crate) perm: Line<Perm>,
    /// `removed` flag and the rest of IPC_SET's fields.
    pub(crate) control: Line<Control>,
    /// The senders' accounting word: sums over reservations (see
    /// `accounting`).
    pub(crate) sent_sum: Line<AcctWord>,
    /// The receivers' accounting word: sums over released messages.
    pub(crate) received_sum: Line<AcctWord>,
    /// Queue-wide send stamp: the order that type-0 receives follow.
    pub(crate) next_seq: Line<AtomicU64>,
    /// `lspid` and `stime`, written by senders.
    pub(crate) send_stats: Line<Stats>,
    /// `lrpid` and `rtime`, written by receivers.
    pub(crate) recv_stats: Line<Stats>,
    /// Futex word senders sleep on while the queue is full.
    pub(crate) space_word: Line<AtomicU32>,
    /// One more than the highest attachment slot ever claimed.
    pub(crate) slots_high: Line<AtomicU32>,
    /// The arrival index's `head` (see `arrivals`).
    pub(crate) arrivals_head: Line<AtomicU64>,
    /// The arrival index's doubt counters (see `arrivals`).
    pub(crate) arrival_doubts: Line<crate::arrivals::Doubts>,
    /// Messages that gave their arrival-index slot up (see `arrivals`).
    pub(crate) arrival_stragglers: Line<crate::arrivals::Stragglers>,
    /// Receivers parked (or about to park) on their own slot's word; a
    /// sender looks for one to wake only while this is not zero.
    ///
    /// SYNC(recv_sleepers): raised with SeqCst by a receiver after it
    /// publishes its parked `wait_state` and before its SeqCst fence and last
    /// re-check; read with SeqCst by a sender after its link and its SeqCst
    /// fence (see `wait`).
    pub(crate) recv_sleepers: Line<AtomicU32>,
    /// What sleeping costs on this queue, learnt by its sleepers (see
    /// `wait::Tuning`).
    pub(crate) wait_tuning: Line<WaitTuning>,
    /// A POSIX queue's `mq_notify` registration (see `notify`; zero, and
    /// unused, in a System V queue). Added in layout version 4.
    pub(crate) notify: Line<crate::notify::NotifyRecord>,
}

/// The per-queue figures of the waiting policy (see `wait`). Plain heuristics:
/// every access is Relaxed, a torn or stale value only changes how long
/// someone spins.
#[repr(C)]
pub(crate) struct WaitTuning {
    /// Learnt cost of a wake-up in nanoseconds (a moving average of the
    /// latencies from a waker's stamp to the woken sleeper running), 0 until
    /// the first is measured.
    pub(crate) wake_ns: AtomicU32,
    /// `CLOCK_MONOTONIC` nanoseconds at the latest wake-up of a receiver.
    pub(crate) wake_stamp: AtomicU64,
}

/// Value of [`QueueHeader::ready`] once the file is initialised.
pub(crate) const READY: u64 = 0x5245_4144_5921; // "READY!"

/// `ipc_perm` fields that IPC_SET may change.
#[repr(C)]
pub(crate) struct Perm {
    pub(crate) uid: AtomicU32,
    pub(crate) gid: AtomicU32,
    pub(crate) cuid: AtomicU32,
    pub(crate) cgid: AtomicU32,
    /// Low 9 bits: the queue's mode.
    pub(crate) mode: AtomicU32,
}

/// Control fields of a queue.
#[repr(C)]
pub(crate) struct Control {
    /// The queue's capacity in bytes (`msg_qbytes`); also caps `qnum`.
    pub(crate) qbytes: AtomicU64,
    /// `msg_ctime`: creation or last IPC_SET.
    pub(crate) ctime: AtomicI64,
    /// Non-zero once IPC_RMID has removed the queue.
    ///
    /// SYNC(removed): stored with SeqCst by IPC_RMID before it wakes every
    /// sleeper; read with SeqCst by every sleeper after it announces itself and
    /// before it sleeps, so that either the remover sees the sleeper's waiter bit
    /// or the sleeper sees the flag.
    pub(crate) removed: AtomicU32,
    /// Immutable: the most messages the queue holds (a POSIX queue's
    /// `mq_maxmsg`, see `mq`); 0: only `qbytes` caps `qnum`, as System V.
    /// Added in the line's padding, so earlier files (zero there) read as
    /// System V queues and the layout version stays.
    pub(crate) qnum_max: AtomicU64,
}

/// `(pid, time)` of the last send or receive.
#[repr(C)]
pub(crate) struct Stats {
    pub(crate) pid: AtomicU32,
    pub(crate) time: AtomicI64,
}

/// One attachment slot: the record of what one thread of one process is doing.
///
/// A thread claims a slot before its first operation on the queue and writes
/// here, before each step that another party could not undo on its behalf, what
/// it is about to do. When its process dies, whoever finds the slot finishes or
/// undoes that step (see `recovery`). Four cache lines: the first is written by
/// the owner, the second holds the accounting sequence that others read, the
/// third the owner's liveness lock (written only when the slot changes hands,
/// so that the liveness checks of every refusing call read it from cache),
/// the fourth the owner's receive accounting, node magazine and free batch
/// (written by the owner, read by others only in recovery and the doctor).
#[repr(C, align(128))]
pub(crate) struct SlotRecord {
    /// `pid | status << 32 | gen << 40`; see `slots`.
    pub(crate) state: AtomicU64,
    /// Start time (clock ticks after boot) of the owning process, 0 if unknown.
    pub(crate) start_time: AtomicU64,
    /// The type entry this slot is inside (`gen << 32 | (index + 1)`), or 0.
    pub(crate) hazard: AtomicU64,
    /// What the owner is doing: one of the `Phase` values in `slots`.
    pub(crate) phase: AtomicU64,
    /// The node the current operation holds (a [`NodeRef`]), or nil.
    pub(crate) op_node: AtomicU64,
    /// Start time of the process recovering this slot (when `RECOVERING`).
    pub(crate) helper_start: AtomicU64,
    /// Bytes that the current accounting operation adds or removes.
    pub(crate) op_bytes: AtomicU64,
    /// The received sum this slot last read, against which it checks that a
    /// message fits before it reads the received word again (see
    /// `accounting`). Written and read by the owner only.
    pub(crate) received_seen: AtomicU64,
    /// The slot's operations on the sent word (see `accounting`); on a line
    /// apart from the first, read by other slots' flushes.
    pub(crate) sent_acct: AcctRecord,
    /// While the owner sleeps in `msgrcv` (or is about to): the `msgtyp`
    /// argument of its selector (the selector's kind is in `wait_state`), so
    /// that a sender wakes only a receiver that can take its message.
    ///
    /// SYNC(wait_sel): stored with Release by the owner before it publishes a
    /// new `wait_state`; loaded with Acquire by wakers, which then validate
    /// what they read with a CAS on `wait_state` (see `wait::SlotWait`).
    pub(crate) waiting_on: AtomicU64,
    /// The owner's waiting state and the futex word a receiver sleeps on
    /// (`wait::SlotWait`: running, spinning, parked with a selector and a
    /// generation, or woken); written by the owner, and by a waker only to
    /// move it from parked to woken.
    pub(crate) wait_state: AtomicU32,
    /// One more than the CPU the owner last ran on when it last waited (0:
    /// unknown), for the spin-or-yield decision of its peers (`wait`).
    pub(crate) wait_cpu: AtomicU32,
    /// The hazard value (see `hazard`) that the owner last checked against
    /// its entry, and the entry's key then: while `hazard` still holds that
    /// value, the entry is the same incarnation (the generation is part of
    /// the value) and so has the same key, and an operation on that key
    /// needs no read of the entry's line (`type_dir::Directory::kept`).
    /// Written and read by the owner only.
    pub(crate) kept_hazard: AtomicU64,
    /// The key that goes with `kept_hazard`.
    pub(crate) kept_key: AtomicI64,
    _pad: [u64; 2],
    /// The robust lock its owner (or recoverer) holds: whether that thread
    /// is alive is one load of it (see `liveness`).
    pub(crate) live: crate::liveness::LiveLock,
    /// The slot's operations on the received word (see `accounting`).
    pub(crate) received_acct: AcctRecord,
    /// Nodes this slot has claimed in the node pool's bitmap for its next
    /// sends (see `cell_pool::Magazine`). Written by the owner only; read by
    /// recovery and the doctor.
    pub(crate) node_magazine: crate::cell_pool::Magazine,
    /// Nodes this slot's receives freed whose bitmap bits it has not cleared
    /// yet, which its sends take first (see `cell_pool::FreeBatch`). Written by the owner only; read by
    /// the doctor, cleared by recovery. (Two words of what was spare: zero in
    /// a file made before, which is an empty batch.)
    pub(crate) freed_nodes: crate::cell_pool::FreeBatch,
    _spare: [u64; 2],
}

/// One slot's operations on one accounting word (see `accounting`).
#[repr(C)]
pub(crate) struct AcctRecord {
    /// Sequence number of the slot's latest operation on the word.
    pub(crate) seq: AtomicU64,
    /// Highest sequence known to have been applied (written by the owner
    /// and, rarely, by flushers).
    pub(crate) done: AtomicU64,
}

/// One of a queue's two accounting words (see `accounting`), with the mark
/// of the last operation on it whose writer recorded it as applied, on the
/// same line: a writer reads that mark with the word it is about to replace,
/// and finds there, without reading the previous writer's slot record, that
/// the operation it overwrites needs no flush.
#[repr(C)]
pub(crate) struct AcctWord {
    /// `bytes | msgs | slot | parity`: see `accounting`.
    pub(crate) sum: AtomicU64,
    /// `accounting::Completed`: the slot and parity of an operation whose
    /// writer recorded it in its `done`, or 0.
    pub(crate) completed: AtomicU64,
}

/// A type entry: one live message type and its FIFO.
///
/// `state` is `gen << 32 | status << 16 | slot`; see `type_dir` for the
/// protocol. `head` and `tail` are [`NodeRef`]s of the FIFO (see `type_fifo`).
///
/// Senders write `tail` and receivers `head`: each on a line of its own, so
/// that a stream of one type does not move one line between them twice per
/// message. `state` and `key` share the senders' line: an operation that
/// finds its hazard already on the entry reads neither (see the slot's
/// `kept_hazard`).
#[repr(C, align(64))]
pub(crate) struct Entry {
    pub(crate) state: AtomicU64,
    pub(crate) key: AtomicI64,
    pub(crate) tail: AtomicU64,
    /// The directory position this entry was placed at (see `type_dir`):
    /// written by its inserter before the position names it, stable until
    /// the entry is freed.
    pub(crate) pos: AtomicU64,
    pub(crate) head: Line<AtomicU64>,
}

/// A message node: header of one message, or the dummy at the front of a FIFO.
///
/// `state` is `gen << 32 | status << 16 | slot` (see `type_fifo` for statuses).
/// The other fields are written by the node's owner while it is `HELD` and are
/// read-only from the moment it is `QUEUED` until it is freed.
#[repr(C, align(64))]
pub(crate) struct Node {
    pub(crate) state: AtomicU64,
    /// [`NodeRef`] of the next node in the FIFO, or `NodeRef::NIL`.
    pub(crate) next: AtomicU64,
    /// Queue-wide send stamp.
    pub(crate) seq: AtomicU64,
    /// The entry this node belongs to: `gen << 32 | index`.
    pub(crate) entry: AtomicU64,
    /// Data cell holding the text: `class << 27 | index`, or [`NIL`] if inline.
    pub(crate) data: AtomicU32,
    /// Length of the text in bytes.
    pub(crate) size: AtomicU32,
    /// The message's type (`mtype`), so that a receiver that found the node
    /// through a scan needs no entry to know it.
    pub(crate) mtype: AtomicI64,
    /// Text of up to [`INLINE_BYTES`] bytes.
    pub(crate) inline: UnsafeCell<[u8; INLINE_BYTES]>,
}

// The file format's sizes (production atomics are plain integers; loom's are
// not, and loom builds never map a file).
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Node>() == 128);
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Entry>() == 128);
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<SlotRecord>() == 256);
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<QueueHeader>() <= PAGE);

impl crate::cell_pool::StateWords for [Entry] {
    fn state(&self, i: usize) -> &AtomicU64 {
        &self[i].state
    }
    fn len(&self) -> usize {
        <[Entry]>::len(self)
    }
}

impl crate::cell_pool::StateWords for [Node] {
    fn state(&self, i: usize) -> &AtomicU64 {
        &self[i].state
    }
    fn len(&self) -> usize {
        <[Node]>::len(self)
    }
}

/// Packs a data class and index into a node's `data` field.
pub(crate) fn data_ref(class: usize, index: u32) -> u32 {
    (class as u32) << 27 | index
}
/// Unpacks a node's `data` field; `None` for [`NIL`].
pub(crate) fn data_unref(v: u32) -> Option<(usize, u32)> {
    if v == NIL {
        None
    } else {
        Some(((v >> 27) as usize, v & ((1 << 27) - 1)))
    }
}

/// The sizes a queue is built for. All of a queue's geometry follows from these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QueueParams {
    pub(crate) msgmax: u64,
    pub(crate) qbytes_max: u64,
    pub(crate) n_slots: u32,
}

/// Where each region of a queue file starts, and how many elements it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) params: QueueParams,
    pub(crate) slots_off: usize,
    pub(crate) n_slots: usize,
    pub(crate) entries_off: usize,
    pub(crate) n_entries: usize,
    pub(crate) homes_off: usize,
    pub(crate) entry_bitmap_off: usize,
    pub(crate) positions_off: usize,
    pub(crate) nonempty_off: usize,
    pub(crate) nonempty_words: usize,
    pub(crate) summary_off: usize,
    pub(crate) summary_words: usize,
    pub(crate) arrivals_off: usize,
    pub(crate) n_arrivals: usize,
    pub(crate) lowest_type_off: usize,
    pub(crate) nodes_off: usize,
    pub(crate) n_nodes: usize,
    pub(crate) node_bitmap_off: usize,
    pub(crate) classes: Vec<ClassGeometry>,
    pub(crate) file_size: usize,
}

/// One data class: cells of `cell_size` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClassGeometry {
    pub(crate) cell_size: usize,
    pub(crate) count: usize,
    pub(crate) states_off: usize,
    pub(crate) bitmap_off: usize,
    pub(crate) cells_off: usize,
}

/// Why a set of limits cannot describe a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GeometryError {
    /// A limit is zero or beyond what the layout can address.
    OutOfRange,
}

fn align_up(v: usize, a: usize) -> usize {
    v.div_ceil(a) * a
}

fn bitmap_words(bits: usize) -> usize {
    bits.div_ceil(64)
}

/// Words of a pool bitmap (cell bits and their summary), see `cell_pool`.
use crate::cell_pool::bitmap_len;

impl Geometry {
    /// Computes the layout of a queue built for `params`.
    ///
    /// Sizing, so that an allocation never fails while the accounting word
    /// admits the message (qnum <= qbytes and cbytes <= qbytes, as Linux). A
    /// message's cells are covered by its reservation from before the sender
    /// allocates them until after the receiver has freed them (a zero-copy loan
    /// stays counted until it is dropped), so:
    /// - at most `Q = qbytes_max` messages hold a node;
    /// - every live entry holds one dummy node, and a slot may hold two more
    ///   for a moment (a consumed node it is unlinking, a dummy it is inserting);
    /// - at most `Q + n_slots` types are wanted at once (queued types plus
    ///   receivers waiting on a type), and the directory is four times that so
    ///   that a neighbourhood of 48 positions practically never fills;
    /// - data class `c` holds texts in `(lo, MIN_DATA_CELL << c]` where `lo` is
    ///   the previous class's size (or [`INLINE_BYTES`]); at most `Q / (lo + 1)`
    ///   of those fit in `Q` bytes.
    pub(crate) fn compute(params: QueueParams) -> Result<Geometry, GeometryError> {
        let q = params.qbytes_max;
        if q == 0 || q > QBYTES_LIMIT || params.msgmax > (1 << 26) {
            return Err(GeometryError::OutOfRange);
        }
        if params.n_slots == 0 || params.n_slots > SLOTS_LIMIT {
            return Err(GeometryError::OutOfRange);
        }
        let q = q as usize;
        let n_slots = params.n_slots as usize;
        let n_entries = (2 * (q + n_slots)).next_power_of_two().max(64);
        let n_nodes = q + n_entries + 2 * n_slots;
        if n_nodes >= NIL as usize {
            return Err(GeometryError::OutOfRange);
        }

        let mut off = PAGE;
        let slots_off = off;
        off += n_slots * std::mem::size_of::<SlotRecord>();
        off = align_up(off, PAGE);
        let entries_off = off;
        off += n_entries * std::mem::size_of::<Entry>();
        let entry_bitmap_off = align_up(off, 64);
        off = entry_bitmap_off + bitmap_len(n_entries) * 8;
        let homes_off = align_up(off, 64);
        off = homes_off + n_entries * 8;
        let positions_off = align_up(off, 64);
        off = positions_off + n_entries * 8;
        let nonempty_off = align_up(off, 64);
        let nonempty_words = bitmap_words(n_entries);
        off = nonempty_off + nonempty_words * 8;
        let summary_off = align_up(off, 64);
        let summary_words = bitmap_words(nonempty_words);
        off = summary_off + summary_words * 8;
        // A message stays indexed while fewer than `n_arrivals` later ones
        // were sent; at most `q` can be queued, so only a message left
        // behind (a type nobody reads) ever loses its place.
        off = align_up(off, PAGE);
        let arrivals_off = off;
        let n_arrivals = q.next_power_of_two().max(64);
        off += n_arrivals * 8;
        off = align_up(off, PAGE);
        let lowest_type_off = off;
        off += crate::lowest_type::WORDS * 8;
        off = align_up(off, PAGE);
        let nodes_off = off;
        off += n_nodes * std::mem::size_of::<Node>();
        let node_bitmap_off = align_up(off, 64);
        off = node_bitmap_off + bitmap_len(n_nodes) * 8;

        let mut classes = Vec::new();
        let mut lo = INLINE_BYTES;
        let mut cell_size = MIN_DATA_CELL;
        while lo < params.msgmax as usize {
            if classes.len() == MAX_CLASSES {
                return Err(GeometryError::OutOfRange);
            }
            let count = q.min(q / (lo + 1));
            if count >= 1 << 27 {
                return Err(GeometryError::OutOfRange);
            }
            let states_off = align_up(off, 64);
            off = states_off + count * 8;
            let bitmap_off = align_up(off, 64);
            off = bitmap_off + bitmap_len(count) * 8;
            let cells_off = align_up(off, cell_size.min(PAGE));
            off = cells_off + count * cell_size;
            classes.push(ClassGeometry {
                cell_size,
                count,
                states_off,
                bitmap_off,
                cells_off,
            });
            lo = cell_size;
            cell_size *= 2;
        }
        let file_size = align_up(off, PAGE);
        Ok(Geometry {
            params,
            slots_off,
            n_slots,
            entries_off,
            n_entries,
            entry_bitmap_off,
            homes_off,
            positions_off,
            nonempty_off,
            nonempty_words,
            summary_off,
            summary_words,
            arrivals_off,
            n_arrivals,
            lowest_type_off,
            nodes_off,
            n_nodes,
            node_bitmap_off,
            classes,
            file_size,
        })
    }

    /// The smallest data class whose cells hold `len` bytes, or `None` when the
    /// text fits inline in the node.
    pub(crate) fn class_for(&self, len: usize) -> Option<usize> {
        if len <= INLINE_BYTES {
            return None;
        }
        self.classes.iter().position(|c| c.cell_size >= len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_params() -> QueueParams {
        QueueParams {
            msgmax: 8192,
            qbytes_max: 65536,
            n_slots: 1024,
        }
    }

    #[test]
    fn regions_do_not_overlap_and_fit() {
        let g = Geometry::compute(default_params()).unwrap();
        let mut regions = vec![
            (0, PAGE),
            (g.slots_off, g.n_slots * std::mem::size_of::<SlotRecord>()),
            (g.entries_off, g.n_entries * std::mem::size_of::<Entry>()),
            (g.entry_bitmap_off, bitmap_len(g.n_entries) * 8),
            (g.homes_off, g.n_entries * 8),
            (g.positions_off, g.n_entries * 8),
            (g.nonempty_off, g.nonempty_words * 8),
            (g.summary_off, g.summary_words * 8),
            (g.arrivals_off, g.n_arrivals * 8),
            (g.lowest_type_off, crate::lowest_type::WORDS * 8),
            (g.nodes_off, g.n_nodes * std::mem::size_of::<Node>()),
            (g.node_bitmap_off, bitmap_len(g.n_nodes) * 8),
        ];
        for c in &g.classes {
            regions.push((c.states_off, c.count * 8));
            regions.push((c.bitmap_off, bitmap_len(c.count) * 8));
            regions.push((c.cells_off, c.count * c.cell_size));
        }
        regions.sort();
        for w in regions.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "{:?} overlaps {:?}", w[0], w[1]);
        }
        let last = regions.last().unwrap();
        assert!(last.0 + last.1 <= g.file_size);
    }

    #[test]
    fn classes_cover_msgmax() {
        let g = Geometry::compute(default_params()).unwrap();
        assert_eq!(g.class_for(0), None);
        assert_eq!(g.class_for(INLINE_BYTES), None);
        assert_eq!(g.class_for(64), None);
        assert_eq!(g.class_for(INLINE_BYTES + 1), Some(0));
        assert_eq!(g.class_for(128), Some(0));
        assert_eq!(g.class_for(129), Some(1));
        assert_eq!(
            g.class_for(8192).map(|c| g.classes[c].cell_size),
            Some(8192)
        );
        assert_eq!(g.classes.last().unwrap().cell_size, 8192);
    }

    #[test]
    fn capacity_holds_worst_case_mixes() {
        // For every text length, the number of messages of that length that
        // the accounting admits fits in its class.
        let p = default_params();
        let g = Geometry::compute(p).unwrap();
        let q = p.qbytes_max as usize;
        assert!(g.n_nodes >= q + g.n_entries);
        for len in 1..=p.msgmax as usize {
            let admitted = q.min(q / len);
            if let Some(c) = g.class_for(len) {
                assert!(g.classes[c].count >= admitted, "len {len}");
            }
        }
    }

    #[test]
    fn rejects_out_of_range_limits() {
        let mut p = default_params();
        p.qbytes_max = 0;
        assert!(Geometry::compute(p).is_err());
        p.qbytes_max = QBYTES_LIMIT + 1;
        assert!(Geometry::compute(p).is_err());
        p = default_params();
        p.n_slots = SLOTS_LIMIT + 1;
        assert!(Geometry::compute(p).is_err());
    }

    #[test]
    fn node_refs_round_trip() {
        let r = NodeRef::new(7, 9);
        assert_eq!((r.index(), r.gen()), (7, 9));
        assert!(NodeRef::NIL.is_nil());
        assert_eq!(data_unref(data_ref(3, 12345)), Some((3, 12345)));
        assert_eq!(data_unref(NIL), None);
    }
}

/// Zero-filled instances for heap-backed states (unit tests and loom models);
/// production memory comes zero-filled from a new file.
#[cfg(any(test, loom))]
#[allow(dead_code)] // the loom models build whole states from these
pub(crate) mod zeroed {
    use super::*;

    fn z64() -> AtomicU64 {
        AtomicU64::new(0)
    }
    fn z32() -> AtomicU32 {
        AtomicU32::new(0)
    }

    pub(crate) fn header() -> QueueHeader {
        QueueHeader {
            magic: z64(),
            version: z64(),
            file_size: z64(),
            msgmax: z64(),
            qbytes_max: z64(),
            n_slots: z64(),
            key: z64(),
            id: z64(),
            hash_seed: z64(),
            namespace_stamp: z64(),
            ready: z64(),
            perm: Line(Perm {
                uid: z32(),
                gid: z32(),
                cuid: z32(),
                cgid: z32(),
                mode: z32(),
            }),
            control: Line(Control {
                qbytes: z64(),
                ctime: AtomicI64::new(0),
                removed: z32(),
                qnum_max: z64(),
            }),
            sent_sum: Line(AcctWord {
                sum: z64(),
                completed: z64(),
            }),
            received_sum: Line(AcctWord {
                sum: z64(),
                completed: z64(),
            }),
            next_seq: Line(z64()),
            send_stats: Line(Stats {
                pid: z32(),
                time: AtomicI64::new(0),
            }),
            recv_stats: Line(Stats {
                pid: z32(),
                time: AtomicI64::new(0),
            }),
            space_word: Line(z32()),
            slots_high: Line(z32()),
            arrivals_head: Line(z64()),
            arrival_doubts: Line(crate::arrivals::Doubts {
                raised: z64(),
                cleared: z64(),
            }),
            arrival_stragglers: Line(crate::arrivals::Stragglers {
                count: z64(),
                slots: std::array::from_fn(|_| z64()),
            }),
            recv_sleepers: Line(z32()),
            wait_tuning: Line(WaitTuning {
                wake_ns: z32(),
                wake_stamp: z64(),
            }),
            notify: Line(crate::notify::NotifyRecord {
                state: z64(),
                pid: z32(),
                kind: z32(),
                start_time: z64(),
                value: z64(),
                signo: z32(),
                thread_word: z32(),
            }),
        }
    }

    pub(crate) fn slot() -> SlotRecord {
        SlotRecord {
            state: z64(),
            start_time: z64(),
            hazard: z64(),
            phase: z64(),
            op_node: z64(),
            op_bytes: z64(),
            helper_start: z64(),
            received_seen: z64(),
            sent_acct: AcctRecord {
                seq: z64(),
                done: z64(),
            },
            waiting_on: z64(),
            wait_state: z32(),
            wait_cpu: z32(),
            kept_hazard: z64(),
            kept_key: AtomicI64::new(0),
            _pad: [0; 2],
            live: crate::liveness::LiveLock::zeroed(),
            received_acct: AcctRecord {
                seq: z64(),
                done: z64(),
            },
            node_magazine: crate::cell_pool::Magazine {
                word: z64(),
                bits: z64(),
            },
            freed_nodes: crate::cell_pool::FreeBatch {
                word: z64(),
                bits: z64(),
            },
            _spare: [0; 2],
        }
    }

    pub(crate) fn entry() -> Entry {
        Entry {
            state: z64(),
            key: AtomicI64::new(0),
            tail: z64(),
            pos: z64(),
            head: Line(z64()),
        }
    }

    pub(crate) fn node() -> Node {
        Node {
            state: z64(),
            next: z64(),
            seq: z64(),
            entry: z64(),
            data: z32(),
            size: z32(),
            mtype: AtomicI64::new(0),
            inline: UnsafeCell::new([0; INLINE_BYTES]),
        }
    }
}
