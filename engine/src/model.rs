//! Entry points for the loom models (`cfg(loom)` builds only; not a user API).
//!
//! The `loom-tests` crate builds the engine with `--cfg loom`, which swaps the
//! atomics and `UnsafeCell` of `sync` for loom's and the futex of `wait` for a
//! model. This module gives the models the engine's own algorithms on a
//! heap-backed queue: the same `transfer`, `blocking`, `type_dir`,
//! `type_fifo`, `cell_pool`, `accounting`, `slots` and `recovery` code that
//! runs over the mapping in production. Model threads play processes
//! ([`set_pid`], [`die`]); [`crash_after`] simulates SIGKILL between two steps
//! that recovery must finish or undo; [`set_mutant`] switches on a deliberate
//! bug that a model must catch.

use crate::blocking::Patience;
use crate::cell_pool::{bitmap_len, CellState, Pool};
use crate::layout::{Geometry, QueueParams};
use crate::state::{HeapRegions, QueueState};
use crate::sync::{AtomicU64, Ordering};

pub use crate::error::{RecvError, SendError};
pub use crate::message::Selector;
pub use crate::sync::{set_mutant, Crashed, Mutant};

/// Makes the calling model thread process `pid` (1..=63).
pub fn set_pid(pid: u32) {
    crate::process::set_pid(pid)
}

/// The calling model thread's process dies: from now on it is seen as dead
/// (it must make no further step).
pub fn die() {
    crate::process::die()
}

/// Arms a simulated SIGKILL: the `n`-th crash point the calling thread reaches
/// panics with [`Crashed`]; catch it with `catch_unwind`, then call [`die`].
pub fn crash_after(n: u32) {
    crate::sync::crash_after(n)
}

/// Runs `f`, which may be cut short by an armed crash point; returns `None`
/// if it was (the process is then dead, as after SIGKILL). Any other panic
/// (a failure loom reports) goes on unwinding.
pub fn run_until_crash<R>(f: impl FnOnce() -> R) -> Option<R> {
    quiet_crashes();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => {
            crash_after(0);
            Some(r)
        }
        Err(payload) if payload.is::<Crashed>() => {
            die();
            None
        }
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Keeps the panic hook from printing a simulated SIGKILL as if it were a
/// failure (other panics are reported as usual).
fn quiet_crashes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<Crashed>() {
                report(info)
            }
        }));
    });
}

/// Limits of a model queue (kept tiny: every atomic is a loom object).
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Largest message text.
    pub msgmax: u64,
    /// The queue's byte limit (`msg_qbytes`), also its capacity.
    pub qbytes: u64,
    /// Attachment slots.
    pub slots: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            msgmax: 16,
            qbytes: 4,
            slots: 4,
        }
    }
}

/// A queue on the heap, with the engine's data path.
pub struct Queue {
    heap: HeapRegions,
}

/// Counts a model checks at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Figures {
    /// `msg_qnum`.
    pub qnum: u64,
    /// `msg_cbytes`.
    pub cbytes: u64,
    /// Nodes taken (messages, dummies of live types, and anything leaked).
    pub nodes_in_use: usize,
    /// Data cells taken, all classes.
    pub data_cells_in_use: usize,
    /// Types whose entry is published in the directory.
    pub live_types: usize,
    /// Positions of the directory's hash table that name an entry.
    pub placed_positions: usize,
}

impl Queue {
    /// A new, empty queue.
    pub fn new(config: Config) -> Queue {
        let geo = Geometry::compute(QueueParams {
            msgmax: config.msgmax,
            qbytes_max: config.qbytes,
            n_slots: config.slots,
        })
        .expect("model geometry");
        Queue {
            heap: HeapRegions::new(geo, config.qbytes),
        }
    }

    fn st(&self) -> QueueState<'_> {
        QueueState::from_heap(&self.heap)
    }

    /// Claims an attachment slot for the calling model process.
    pub fn attach(&self) -> usize {
        let st = self.st();
        crate::slots::claim(st.header, st.slots).expect("a free model slot")
    }

    /// `msgsnd` from `slot` (blocking unless `nowait`).
    pub fn send(
        &self,
        slot: usize,
        mtype: i64,
        text: &[u8],
        nowait: bool,
    ) -> Result<(), SendError> {
        self.st()
            .send_blocking(slot, mtype, text, nowait, Patience::until(None))
            .map(|_| ())
    }

    /// `msgrcv` from `slot` (blocking unless `nowait`): the type and text.
    pub fn recv(
        &self,
        slot: usize,
        sel: Selector,
        nowait: bool,
    ) -> Result<(i64, Vec<u8>), RecvError> {
        let st = self.st();
        let taken =
            st.take_blocking(slot, sel, usize::MAX, nowait, false, Patience::until(None))?;
        let mut text = vec![0u8; taken.size];
        let n = st.copy_text(&taken, &mut text);
        text.truncate(n);
        st.complete_receive(slot, &taken);
        Ok((taken.mtype, text))
    }

    /// The model process stops using the type it last used: its slot's
    /// hazard, which an operation leaves on its type's entry, is dropped.
    pub fn idle(&self, slot: usize) {
        self.st().directory().unprotect(slot);
    }

    /// IPC_RMID's effect on the queue: flag it removed, wake every sleeper.
    pub fn remove(&self) {
        self.st().mark_removed()
    }

    /// Tries to reclaim every drained type entry near `mtype`'s home, as a
    /// sender does when it finds no free position there.
    pub fn reclaim_near(&self, slot: usize, mtype: i64) {
        let st = self.st();
        let dir = st.directory();
        let ops = crate::transfer::EntryOps { st: &st, slot };
        dir.reclaim_neighbourhood(dir.home(mtype), slot, &ops);
        dir.unprotect(slot);
    }

    /// Recovers every slot whose owner is dead; returns how many.
    pub fn recover(&self) -> usize {
        self.st().recover_dead()
    }

    /// IPC_STAT's counts `(qnum, cbytes)`, as `Queue::stat` reports them:
    /// after finishing what dead processes left.
    pub fn stat(&self) -> (u64, u64) {
        let st = self.st();
        st.recover_dead();
        let t = st.counter().load();
        (t.qnum, t.cbytes)
    }

    /// The counts a model checks.
    pub fn figures(&self) -> Figures {
        let st = self.st();
        let t = st.counter().load();
        Figures {
            qnum: t.qnum,
            cbytes: t.cbytes,
            nodes_in_use: st.node_pool.count_taken(),
            data_cells_in_use: st.classes.iter().map(|c| c.pool.count_taken()).sum(),
            live_types: st.directory().published_count(),
            placed_positions: st.directory().placed_count(),
        }
    }
}

/// The cell allocator alone, on the heap.
pub struct CellPool {
    states: Box<[AtomicU64]>,
    bitmap: Box<[AtomicU64]>,
}

impl CellPool {
    /// A pool of `cells` free cells.
    pub fn new(cells: usize) -> CellPool {
        CellPool {
            states: (0..cells).map(|_| AtomicU64::new(0)).collect(),
            bitmap: (0..bitmap_len(cells)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn pool(&self) -> Pool<'_, [AtomicU64]> {
        Pool::new(&self.states, &self.bitmap)
    }

    /// Takes a free cell for `owner` (non-zero): its index and the state word
    /// that now names the owner, or `None` if none is free.
    pub fn alloc(&self, owner: u32) -> Option<(u32, u64)> {
        let t = self.pool().alloc(owner)?;
        Some((t.index, CellState::new(t.gen, owner).0))
    }

    /// An empty magazine (what a slot record holds).
    pub fn magazine(&self) -> Magazine {
        Magazine(crate::cell_pool::Magazine {
            word: AtomicU64::new(0),
            bits: AtomicU64::new(0),
        })
    }

    /// Takes a free cell for `owner` through `mag` (see `Pool::alloc_from`).
    pub fn alloc_from(&self, mag: &Magazine, owner: u32) -> Option<(u32, u64)> {
        let t = self.pool().alloc_from(&mag.0, owner)?;
        Some((t.index, CellState::new(t.gen, owner).0))
    }

    /// Takes a free cell for `owner` from those freed into `batch` first,
    /// then through `mag` (see `Pool::alloc_reusing`).
    pub fn alloc_reusing(
        &self,
        batch: &FreeBatch,
        mag: &Magazine,
        owner: u32,
    ) -> Option<(u32, u64)> {
        let t = self.pool().alloc_reusing(&batch.0, &mag.0, owner)?;
        Some((t.index, CellState::new(t.gen, owner).0))
    }

    /// Gives the cells of `mag` that are still free back.
    pub fn give_back(&self, mag: &Magazine) {
        self.pool().give_back(&mag.0)
    }

    /// Frees cell `index` if its state is still `expected`.
    pub fn free(&self, index: u32, expected: u64) -> bool {
        self.pool().free(index, CellState(expected))
    }

    /// An empty free batch (what a slot record holds).
    pub fn free_batch(&self) -> FreeBatch {
        FreeBatch(crate::cell_pool::FreeBatch {
            word: AtomicU64::new(0),
            bits: AtomicU64::new(0),
        })
    }

    /// Frees cell `index` if its state is still `expected`, leaving its bit
    /// to `batch` (see `Pool::free_into`).
    pub fn free_into(&self, index: u32, expected: u64, batch: &FreeBatch) -> bool {
        self.pool().free_into(index, CellState(expected), &batch.0)
    }

    /// Clears the bits `batch` holds (see `Pool::flush`).
    pub fn flush(&self, batch: &FreeBatch) {
        self.pool().flush(&batch.0)
    }

    /// The state word of cell `index`.
    pub fn state(&self, index: u32) -> u64 {
        self.pool().state(index).expect("index in range").0
    }

    /// Cells whose state names an owner.
    pub fn count_taken(&self) -> usize {
        (0..self.states.len())
            .filter(|&i| self.states[i].load(Ordering::Relaxed) as u32 != 0)
            .count()
    }
}

/// Cells an allocator claimed for itself (`cell_pool::Magazine`).
pub struct Magazine(crate::cell_pool::Magazine);

/// Cells a freer freed and has not cleared the bits of (`cell_pool::FreeBatch`).
pub struct FreeBatch(crate::cell_pool::FreeBatch);

/// The arrival index alone (`arrivals`), on the heap, over a toy queue whose
/// message `i` is the one stamped position `i`: its word is 1 while queued,
/// 0 before it is sent and 2 once taken.
pub struct ArrivalRing {
    ring: Box<[AtomicU64]>,
    head: AtomicU64,
    claimed: AtomicU64,
    doubts: crate::arrivals::Doubts,
    stragglers: crate::arrivals::Stragglers,
    messages: Box<[AtomicU64]>,
}

/// What [`ArrivalRing::take_oldest`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Took {
    /// The message at this position, taken.
    Message(u64),
    /// The index said nothing is queued.
    Empty,
}

impl ArrivalRing {
    /// A ring of `slots` (a power of two) for at most `messages` sends.
    pub fn new(slots: usize, messages: usize) -> ArrivalRing {
        ArrivalRing {
            ring: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            head: AtomicU64::new(0),
            claimed: AtomicU64::new(0),
            doubts: crate::arrivals::Doubts {
                raised: AtomicU64::new(0),
                cleared: AtomicU64::new(0),
            },
            stragglers: crate::arrivals::Stragglers {
                count: AtomicU64::new(0),
                slots: std::array::from_fn(|_| AtomicU64::new(0)),
            },
            messages: (0..messages).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn view(&self) -> crate::arrivals::Arrivals<'_> {
        crate::arrivals::Arrivals {
            ring: &self.ring,
            head: &self.head,
            claimed: &self.claimed,
            doubts: &self.doubts,
            stragglers: &self.stragglers,
        }
    }

    /// Message `node`'s stamp (its index) if it is queued.
    fn queued(&self, node: u32) -> Option<u64> {
        self.messages
            .get(node as usize)
            .is_some_and(|m| m.load(Ordering::Acquire) == 1)
            .then_some(node as u64)
    }

    /// Sends one message: claims a position, queues it, records it.
    pub fn send(&self) -> u64 {
        let p = self.claimed.fetch_add(1, Ordering::Relaxed);
        self.messages[p as usize].store(1, Ordering::Release);
        self.view().record(p, p as u32, |n| self.queued(n));
        p
    }

    /// A typed receiver takes the message at position `p` (never touching
    /// the ring); `false` if it was not queued.
    pub fn take_at(&self, p: u64) -> bool {
        self.messages[p as usize]
            .compare_exchange(1, 2, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// A type-0 receive: the index's oldest, or (while it is in doubt) the
    /// lowest queued position found by a scan of every message.
    pub fn take_oldest(&self) -> Took {
        use crate::arrivals::Oldest;
        for _ in 0..8 {
            let found = self.view().oldest(|n| self.queued(n).map(|p| (p, p)));
            let p = match found {
                Oldest::Found(p) => p,
                Oldest::Empty => return Took::Empty,
                Oldest::Unsure => {
                    let Some(p) =
                        (0..self.messages.len() as u64).find(|&p| self.queued(p as u32).is_some())
                    else {
                        self.view()
                            .settle(|| self.messages.iter().all(|m| m.load(Ordering::SeqCst) != 1));
                        return Took::Empty;
                    };
                    p
                }
            };
            if self.take_at(p) {
                return Took::Message(p);
            }
        }
        panic!("eight lost races in a two-thread model");
    }
}

/// The `mq_notify` registration record of a POSIX queue (`notify`), on the
/// heap, for the registration / firing / unregistration model. Model
/// threads play processes ([`set_pid`], [`die`]): a registration belongs to
/// the calling thread's pid; a firer or registrar that finds a `FIRING`
/// record waits for it with loom's `yield_now`.
pub struct Notify {
    record: crate::notify::NotifyRecord,
}

impl Default for Notify {
    fn default() -> Notify {
        Notify::new()
    }
}

fn model_patience() -> bool {
    loom::thread::yield_now();
    true
}

impl Notify {
    /// A free record.
    pub fn new() -> Notify {
        Notify {
            record: crate::layout::zeroed::header().notify.0,
        }
    }

    /// `mq_notify(SIGEV_SIGNAL)` by the calling process: its generation,
    /// or `None` for `EBUSY`.
    pub fn register(&self) -> Option<u32> {
        let reg = crate::notify::Registration {
            pid: crate::process::pid(),
            start_time: crate::process::own_start_time(),
            kind: crate::notify::Kind::Signal,
            signo: 10,
            value: 0,
        };
        self.record
            .register(reg, crate::process::is_alive, model_patience)
            .ok()
    }

    /// `mq_notify(NULL)` or the close by the calling process: the generation
    /// it removed, if it owned one.
    pub fn unregister(&self) -> Option<u32> {
        self.record.unregister(
            crate::process::pid(),
            crate::process::own_start_time(),
            model_patience,
        )
    }

    /// What a send reads before it reserves: the armed generation.
    pub fn armed(&self) -> Option<u32> {
        self.record.armed()
    }

    /// A send that decided to fire: wins generation `gen` or not; if it
    /// does, runs `deliver(owner pid)` and then frees the record.
    pub fn fire(&self, gen: u32, deliver: impl FnOnce(u32)) -> bool {
        match self.record.fire(gen) {
            Some(f) => {
                deliver(f.reg.pid);
                self.record.delivered(f.gen);
                true
            }
            None => false,
        }
    }
}
