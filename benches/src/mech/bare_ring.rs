//! The floor: two processes, one shared mapping, a bounded MPMC ring per
//! direction (D. Vyukov's, the cell-sequence algorithm of `crossbeam`'s
//! `ArrayQueue`) with fixed-size cells, and nothing else: no types, no
//! accounting, no crash records, no sleeping (a waiting side spins, then
//! yields). What it moves per second is what the hardware allows two
//! processes to do through shared memory; shmq's ratio to it says how much
//! its semantics cost.
#![allow(unsafe_code)]

use crate::mech::bad_spec;
use crate::mechanism::{Channel, ChannelConfig, End, Endpoint, Mechanism};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

/// The bare-ring floor (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct BareRing;

/// Cells per ring when the channel asks for the default capacity.
const DEFAULT_CELLS: usize = 1024;
const LINE: usize = 64;

/// Where things are in the mapping, from the cell count and message size.
#[derive(Clone, Copy, Debug)]
struct Shape {
    cells: usize,
    cell: usize,
}

impl Shape {
    fn new(cells: usize, msg_size: usize) -> Shape {
        // A cell: its sequence word, then the text; whole cache lines.
        let cell = (8 + msg_size).div_ceil(LINE) * LINE;
        Shape {
            cells: cells.next_power_of_two(),
            cell,
        }
    }
    /// One ring: a line for `tail`, a line for `head`, then the cells.
    fn ring_bytes(self) -> usize {
        2 * LINE + self.cells * self.cell
    }
    fn bytes(self) -> usize {
        2 * self.ring_bytes()
    }
}

impl Mechanism for BareRing {
    fn name(&self) -> &'static str {
        "bare-ring"
    }

    fn describe(&self) -> &'static str {
        "the floor: a Vyukov MPMC ring of fixed cells per direction in one shared mapping; no types, no accounting, no crash safety, spins instead of sleeping"
    }

    fn shared_ends(&self, _msg_size: usize) -> bool {
        true
    }

    fn can_park(&self) -> bool {
        false
    }

    fn create(&self, cfg: &ChannelConfig) -> io::Result<Channel> {
        let shape = Shape::new(cfg.capacity.unwrap_or(DEFAULT_CELLS), cfg.msg_size);
        // SAFETY: a NUL-terminated name; flags are valid for memfd_create.
        let fd = unsafe { libc::memfd_create(c"shmq-bare-ring".as_ptr(), 0) };
        if fd == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `memfd_create` just returned `fd`, owned by no one else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: `fd` is an open memfd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), shape.bytes() as libc::off_t) } == -1 {
            return Err(io::Error::last_os_error());
        }
        let map = Mapping::new(fd.as_raw_fd(), shape.bytes())?;
        // Cell `i` starts with sequence `i` (free for position `i`).
        for ring in 0..2 {
            for i in 0..shape.cells {
                map.seq(shape, ring, i).store(i as u64, Ordering::Relaxed);
            }
        }
        Ok(Channel {
            spec: format!("{},{}", fd.as_raw_fd(), shape.cells),
            inherit: vec![fd.as_raw_fd()],
            note: None,
            keep: Box::new((fd, map)),
        })
    }

    fn open(&self, spec: &str, end: End, cfg: &ChannelConfig) -> io::Result<Box<dyn Endpoint>> {
        let (fd, cells) = spec
            .split_once(',')
            .and_then(|(f, c)| Some((f.parse::<RawFd>().ok()?, c.parse::<usize>().ok()?)))
            .ok_or_else(|| bad_spec(spec))?;
        let shape = Shape::new(cells, cfg.msg_size);
        let map = Mapping::new(fd, shape.bytes())?;
        let (tx, rx) = match end {
            End::A => (0, 1),
            End::B => (1, 0),
        };
        Ok(Box::new(RingEnd {
            map,
            shape,
            tx,
            rx,
            buf: vec![0; cfg.msg_size],
        }))
    }
}

/// A shared mapping of the channel's memfd.
struct Mapping {
    base: *mut u8,
    len: usize,
}

// SAFETY: the mapping is shared memory accessed only through atomics and
// through cells owned, per the ring's protocol, by one party at a time.
unsafe impl Send for Mapping {}

impl Mapping {
    fn new(fd: RawFd, len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh shared mapping of `len` bytes of an open memfd at
        // least that long; nothing else refers to the address range yet.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            base: base as *mut u8,
            len,
        })
    }

    fn word(&self, off: usize) -> &AtomicU64 {
        assert!(off + 8 <= self.len && off & 7 == 0);
        // SAFETY: in bounds and 8-aligned (checked; the mapping is page
        // aligned), and the memory is only ever accessed atomically.
        unsafe { &*(self.base.add(off) as *const AtomicU64) }
    }

    fn tail(&self, s: Shape, ring: usize) -> &AtomicU64 {
        self.word(ring * s.ring_bytes())
    }
    fn head(&self, s: Shape, ring: usize) -> &AtomicU64 {
        self.word(ring * s.ring_bytes() + LINE)
    }
    fn cell_off(&self, s: Shape, ring: usize, i: usize) -> usize {
        ring * s.ring_bytes() + 2 * LINE + i * s.cell
    }
    fn seq(&self, s: Shape, ring: usize, i: usize) -> &AtomicU64 {
        self.word(self.cell_off(s, ring, i))
    }
    fn text(&self, s: Shape, ring: usize, i: usize) -> *mut u8 {
        let off = self.cell_off(s, ring, i) + 8;
        assert!(off + s.cell - 8 <= self.len);
        // SAFETY: in bounds (checked above).
        unsafe { self.base.add(off) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the range this mapping made; nothing refers to it after.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

struct RingEnd {
    map: Mapping,
    shape: Shape,
    tx: usize,
    rx: usize,
    buf: Vec<u8>,
}

/// Spins a while, then yields the CPU (the floor never sleeps).
fn pause(spins: &mut u32) {
    *spins += 1;
    if *spins < 128 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

impl RingEnd {
    /// Claims the next position of ring `ring` through its counter `at`
    /// (`tail` for a producer, `head` for a consumer): the position whose
    /// cell's sequence equals it plus `lag` (0: the cell is free for it; 1:
    /// it holds its message), waiting while there is none. Returns the
    /// position; the cell is ours until we store its next sequence.
    fn claim(&self, ring: usize, at: &AtomicU64, lag: u64) -> u64 {
        let (s, m) = (self.shape, &self.map);
        let mask = s.cells - 1;
        let mut pos = at.load(Ordering::Relaxed);
        let mut spins = 0;
        loop {
            // Acquire: the other side's release of the cell.
            let seq = m.seq(s, ring, pos as usize & mask).load(Ordering::Acquire);
            let dif = seq.wrapping_sub(pos + lag) as i64;
            if dif == 0 {
                match at.compare_exchange_weak(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => return pos,
                    Err(now) => pos = now,
                }
            } else {
                if dif < 0 {
                    pause(&mut spins); // full (producer) or empty (consumer)
                }
                pos = at.load(Ordering::Relaxed);
            }
        }
    }
}

impl Endpoint for RingEnd {
    fn send(&mut self, _mtype: i64, msg: &[u8]) -> io::Result<()> {
        let (s, m, ring) = (self.shape, &self.map, self.tx);
        let pos = self.claim(ring, m.tail(s, ring), 0);
        let i = pos as usize & (s.cells - 1);
        let n = msg.len().min(s.cell - 8);
        // SAFETY: the cell is ours until we publish it below; `n` fits its
        // text.
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), m.text(s, ring, i), n) };
        // Release: publishes the text to the consumer.
        m.seq(s, ring, i).store(pos + 1, Ordering::Release);
        Ok(())
    }

    fn recv(&mut self, _mtype: i64) -> io::Result<&[u8]> {
        let (s, ring) = (self.shape, self.rx);
        let pos = self.claim(ring, self.map.head(s, ring), 1);
        let i = pos as usize & (s.cells - 1);
        let n = self.buf.len().min(s.cell - 8);
        // SAFETY: the cell is ours until we free it below.
        unsafe {
            std::ptr::copy_nonoverlapping(self.map.text(s, ring, i), self.buf.as_mut_ptr(), n)
        };
        // Release: our read of the text before the reuse.
        self.map
            .seq(s, ring, i)
            .store(pos + s.cells as u64, Ordering::Release);
        Ok(&self.buf)
    }
}
