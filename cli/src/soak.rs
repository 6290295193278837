//! `shmq soak`: a long MPMC run on one queue that checks every message.
//!
//! Producers and consumers are child processes (this binary re-executed with
//! the hidden `soak-child` subcommand). Producers send types `1..=types+1`
//! with sizes from 0 B to `msgmax`; consumers read by exact type (one per type
//! `1..=types`), with `msgtyp = 0` and with `msgtyp = -types` (type
//! `types+1` is read only by the type-0 consumer). Children exit on their own
//! after a random quota and are replaced; with `--kill` the parent also
//! SIGKILLs one at random now and then.
//!
//! # Checking
//! A message of at least [`HEADER`] bytes carries a checksum, its producer and
//! its sequence number within (producer, type); the checksum covers the
//! type, the length and every other byte. Shorter ("tiny") messages carry a
//! byte pattern derived from their length and type, and are only counted.
//!
//! Every child keeps its tallies in a file of its own, mapped shared, written
//! as each message is sent or received, so the counts of a SIGKILLed child
//! survive it: the only message a killed consumer can lose untallied is the
//! one it was taking. A consumer checks that sequences rise within each
//! (producer, type) (FIFO per type makes every consumer's subsequence
//! increasing): an equal one is a duplicate, a smaller one an order
//! violation. At the end the parent compares, per (producer, type), the sum
//! of every consumer's count with the number sent (the producer's count, or
//! one more than the highest sequence received if the producer died before
//! counting its last send): more is a duplicate, fewer a loss. Losses are
//! allowed up to one per killed consumer and reported apart from errors.
#![allow(unsafe_code)]

use crate::errors::{Failure, EXIT_FAILED};
use shmq::{GetOptions, Namespace, Queue, RecvError, Selector};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Bytes of a message's header: checksum, producer, length, sequence.
const HEADER: usize = 24;
/// Most producers one run can start (the tally tables are sized for it).
const MAX_PRODUCERS: usize = 4096;
/// Most message types (`--types` + 1).
const MAX_TYPES: usize = 8;
/// Words of a tally file's header.
const HEAD_WORDS: usize = 32;
/// Words of a tally file.
const TALLY_WORDS: usize = HEAD_WORDS + MAX_PRODUCERS * MAX_TYPES * 2;

// Header words of a tally.
/// Messages sent (producer) or received (consumer).
const T_TOTAL: usize = 0;
/// Messages whose checksum or pattern was wrong.
const T_CORRUPT: usize = 1;
/// Sequence received twice by one consumer.
const T_DUP: usize = 2;
/// Sequence lower than one received before (same producer and type).
const T_ORDER: usize = 3;
/// Errors the operation should never give.
const T_ERRNO: usize = 4;
/// Set by the parent: a producer stops after its current message.
const T_STOP: usize = 5;
/// Bytes of text sent or received.
const T_BYTES: usize = 6;
/// The child's quota (written by the parent).
const T_QUOTA: usize = 7;
/// Tiny messages per type (sent after the send returned, or received).
const T_TINY: usize = 8;
/// Tiny messages per type a producer started to send.
const T_TINY_TRIED: usize = 16;

/// Options of `shmq soak`.
#[derive(clap::Args, Debug)]
pub(crate) struct SoakArgs {
    /// Messages to push through the queue
    #[arg(long, default_value_t = 100_000_000, value_name = "N")]
    messages: u64,
    /// Stop sending after this long instead (e.g. 10m), if it comes first
    #[arg(long, value_parser = crate::args::parse_duration, value_name = "TIME")]
    duration: Option<Duration>,
    /// SIGKILL a random producer or consumer every so often (about every
    /// --kill-every)
    #[arg(long)]
    kill: bool,
    /// Mean time between two kills
    #[arg(long, default_value = "100ms", value_parser = crate::args::parse_duration, value_name = "TIME")]
    kill_every: Duration,
    /// Producer processes
    #[arg(long, default_value_t = 3, value_name = "N")]
    producers: usize,
    /// Types read by consumers of their own (a consumer each), besides the
    /// type-0 and negative-type consumers
    #[arg(long, default_value_t = 3, value_name = "N")]
    types: usize,
    /// Time between two progress lines
    #[arg(long, default_value = "1s", value_parser = crate::args::parse_duration, value_name = "TIME")]
    interval: Duration,
    /// Print the summary as one JSON object on standard output
    #[arg(long)]
    json: bool,
    /// Seed of the random choices (default: from the clock)
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
}

/// Options of a child process (`shmq soak-child`, hidden).
#[derive(clap::Args, Debug)]
pub(crate) struct ChildArgs {
    /// `p` (producer) or `c` (consumer)
    role: String,
    /// The queue's id
    queue: i32,
    /// The tally file
    tally: PathBuf,
    /// Producer: its id; consumer: msgtyp
    #[arg(allow_hyphen_values = true)]
    n: i64,
    /// Messages to send or receive before exiting
    quota: u64,
    /// Number of types sent (`--types` + 1)
    types: usize,
    /// Seed
    seed: u64,
}

// ----- small helpers -----

/// xorshift64*: random enough for choosing sizes and victims.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A tally file mapped shared: [`TALLY_WORDS`] words, zero when created.
struct Tally {
    _map: memmap2::MmapRaw,
    words: &'static [AtomicU64],
}

impl Tally {
    fn create(path: &Path) -> std::io::Result<Tally> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        f.set_len((TALLY_WORDS * 8) as u64)?;
        Tally::map(&f)
    }
    fn open(path: &Path) -> std::io::Result<Tally> {
        let f = OpenOptions::new().read(true).write(true).open(path)?;
        if f.metadata()?.len() != (TALLY_WORDS * 8) as u64 {
            return Err(std::io::Error::other("tally file of the wrong size"));
        }
        Tally::map(&f)
    }
    fn map(f: &File) -> std::io::Result<Tally> {
        let map = memmap2::MmapOptions::new()
            .len(TALLY_WORDS * 8)
            .map_raw(f)?;
        // SAFETY: [1] the mapping is TALLY_WORDS * 8 bytes long, page aligned
        // (so 8-aligned); [2] it lives as long as `_map`, and `words` is never
        // handed out beyond `&self`; [3] every access, in this process or
        // another, goes through atomics, so concurrent use is no data race.
        let words =
            unsafe { std::slice::from_raw_parts(map.as_ptr() as *const AtomicU64, TALLY_WORDS) };
        Ok(Tally { _map: map, words })
    }
    fn get(&self, i: usize) -> u64 {
        // Relaxed: counters read for reports; the final reads follow the
        // writer's exit (waitpid orders them).
        self.words[i].load(Ordering::Relaxed)
    }
    fn add(&self, i: usize, n: u64) {
        // Relaxed: single writer; see `get`.
        self.words[i].fetch_add(n, Ordering::Relaxed);
    }
    fn set(&self, i: usize, v: u64) {
        // Relaxed: see `get`.
        self.words[i].store(v, Ordering::Relaxed);
    }
    /// Index of the (count, last) pair of (producer, type index).
    fn entry(p: usize, t: usize) -> usize {
        HEAD_WORDS + (p * MAX_TYPES + t) * 2
    }
}

/// A checksum of `mtype`, the text's length and `bytes`, 8 bytes at a time.
fn checksum(mtype: i64, bytes: &[u8], len: usize) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ (mtype as u64).rotate_left(17) ^ (len as u64);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h ^ w).wrapping_mul(0x100_0000_01b3).rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h ^ (h >> 31)
}

/// The pattern of a tiny message's byte `i`.
fn tiny_byte(mtype: i64, len: usize, i: usize) -> u8 {
    (len as u8).wrapping_mul(7).wrapping_add(i as u8) ^ (mtype as u8)
}

/// Writes the message (producer `p`, sequence `seq`) of `len` bytes.
fn encode(buf: &mut [u8], mtype: i64, p: u32, seq: u64, len: usize) {
    let m = &mut buf[..len];
    if len < HEADER {
        for (i, b) in m.iter_mut().enumerate() {
            *b = tiny_byte(mtype, len, i);
        }
        return;
    }
    m[8..12].copy_from_slice(&p.to_le_bytes());
    m[12..16].copy_from_slice(&(len as u32).to_le_bytes());
    m[16..24].copy_from_slice(&seq.to_le_bytes());
    let fill = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for (i, b) in m[HEADER..].iter_mut().enumerate() {
        *b = (fill >> ((i & 7) * 8)) as u8 ^ i as u8;
    }
    let sum = checksum(mtype, &m[8..], len);
    m[..8].copy_from_slice(&sum.to_le_bytes());
}

/// A message as received: tiny, (producer, sequence), or corrupt.
enum Decoded {
    Tiny,
    Tagged(usize, u64),
    Corrupt,
}

fn decode(m: &[u8], mtype: i64) -> Decoded {
    let len = m.len();
    if len < HEADER {
        let ok = m
            .iter()
            .enumerate()
            .all(|(i, &b)| b == tiny_byte(mtype, len, i));
        return if ok { Decoded::Tiny } else { Decoded::Corrupt };
    }
    let word = |r: std::ops::Range<usize>| {
        let mut a = [0u8; 8];
        a[..r.len()].copy_from_slice(&m[r]);
        u64::from_le_bytes(a)
    };
    let p = word(8..12) as usize;
    if word(0..8) != checksum(mtype, &m[8..], len)
        || word(12..16) != len as u64
        || p >= MAX_PRODUCERS
    {
        return Decoded::Corrupt;
    }
    Decoded::Tagged(p, word(16..24))
}

/// A size from 0 to `max`: most small, some large.
fn pick_size(rng: &mut Rng, max: usize) -> usize {
    let r = rng.below(100);
    let cap = if r < 50 {
        64
    } else if r < 85 {
        1024
    } else {
        max
    };
    rng.below(cap.min(max) as u64 + 1) as usize
}

// ----- the child side -----

/// Runs one producer or consumer; exits 0 after its quota or when the queue
/// is removed.
pub(crate) fn child(dir: Option<&Path>, a: &ChildArgs) -> Result<(), Failure> {
    crate::sys::die_with_parent();
    let ns = match dir {
        Some(d) => Namespace::open(d),
        None => Namespace::open_default(),
    }
    .map_err(|e| Failure::namespace(&e))?;
    let q = match ns.queue(a.queue) {
        Ok(q) => q,
        // The parent removes the queue once it is drained, which may come
        // before a child it started in that last round opens it: the same
        // end as a removal seen by a running child.
        Err(shmq::CtlError::Invalid | shmq::CtlError::Removed) => return Ok(()),
        Err(e) => return Err(Failure::op("soak child: queue", e)),
    };
    let tally = Tally::open(&a.tally).map_err(|e| Failure::op("soak child: tally", e))?;
    let msgmax = ns.limits().msgmax as usize;
    let mut rng = Rng::new(a.seed);
    match a.role.as_str() {
        "p" => produce(&q, &tally, a, msgmax, &mut rng),
        "c" => consume(&q, &tally, a, msgmax),
        r => Err(Failure::usage(format!("soak child: unknown role {r:?}"))),
    }
}

fn produce(
    q: &Queue,
    t: &Tally,
    a: &ChildArgs,
    msgmax: usize,
    rng: &mut Rng,
) -> Result<(), Failure> {
    let p = a.n as usize;
    let mut buf = vec![0u8; msgmax];
    for _ in 0..a.quota {
        if t.get(T_STOP) != 0 {
            break;
        }
        let ti = rng.below(a.types as u64) as usize;
        let mtype = ti as i64 + 1;
        let len = pick_size(rng, msgmax);
        let e = Tally::entry(p, ti);
        let seq = t.get(e);
        encode(&mut buf, mtype, p as u32, seq, len);
        if len < HEADER {
            t.add(T_TINY_TRIED + ti, 1);
        }
        match q.send(mtype, &buf[..len]) {
            Ok(()) => {}
            Err(shmq::SendError::Removed) | Err(shmq::SendError::Invalid) => return Ok(()),
            Err(err) => {
                t.add(T_ERRNO, 1);
                eprintln!("shmq soak: producer {p}: send: {err}");
                continue;
            }
        }
        if len < HEADER {
            t.add(T_TINY + ti, 1);
        } else {
            t.set(e, seq + 1);
        }
        t.add(T_BYTES, len as u64);
        t.add(T_TOTAL, 1);
    }
    Ok(())
}

fn consume(q: &Queue, t: &Tally, a: &ChildArgs, msgmax: usize) -> Result<(), Failure> {
    let sel = Selector::from_msgtyp(a.n, false);
    let mut buf = vec![0u8; msgmax];
    for _ in 0..a.quota {
        let r = match q.recv(&mut buf, sel) {
            Ok(r) => r,
            Err(RecvError::Removed) | Err(RecvError::Invalid) => return Ok(()),
            Err(err) => {
                t.add(T_ERRNO, 1);
                eprintln!("shmq soak: consumer {}: recv: {err}", a.n);
                continue;
            }
        };
        let ti = r.mtype as usize - 1;
        let ok_type = r.mtype >= 1
            && (r.mtype as usize) <= a.types
            && match sel {
                Selector::Type(x) => x == r.mtype,
                Selector::AtMost(x) => r.mtype <= x,
                _ => true,
            };
        if !ok_type {
            t.add(T_CORRUPT, 1);
            eprintln!("shmq soak: consumer {}: got type {}", a.n, r.mtype);
            continue;
        }
        match decode(&buf[..r.len], r.mtype) {
            Decoded::Tiny => t.add(T_TINY + ti, 1),
            Decoded::Corrupt => {
                t.add(T_CORRUPT, 1);
                eprintln!(
                    "shmq soak: consumer {}: corrupt message (type {}, {} bytes)",
                    a.n, r.mtype, r.len
                );
            }
            Decoded::Tagged(p, seq) => {
                let e = Tally::entry(p, ti);
                // The count first: a kill between the two words leaves the
                // message counted, which is what the final check reads.
                t.add(e, 1);
                let last = t.get(e + 1);
                if last != 0 && seq < last {
                    t.add(if seq + 1 == last { T_DUP } else { T_ORDER }, 1);
                    eprintln!(
                        "shmq soak: consumer {}: producer {p} type {} sequence {seq} after {}",
                        a.n,
                        r.mtype,
                        last - 1
                    );
                } else {
                    t.set(e + 1, seq + 1);
                }
            }
        }
        t.add(T_BYTES, r.len as u64);
        t.add(T_TOTAL, 1);
    }
    Ok(())
}

// ----- the parent side -----

/// What a child does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A producer (its id is the index of its tally among the producers').
    Producer,
    /// A consumer with this msgtyp.
    Consumer(i64),
}

/// A role to keep filled, and the child filling it now.
struct Seat {
    role: Role,
    child: Option<(Child, usize)>,
}

/// The run's counters, as the summary shows them.
#[derive(Default)]
struct Summary {
    sent: u64,
    received: u64,
    bytes: u64,
    corrupt: u64,
    duplicates: u64,
    order: u64,
    errno: u64,
    failed_children: u64,
    lost: u64,
    started: u64,
    killed: u64,
    killed_consumers: u64,
    secs: f64,
}

impl Summary {
    fn errors(&self) -> u64 {
        self.corrupt
            + self.duplicates
            + self.order
            + self.errno
            + self.failed_children
            + self.excess_losses()
    }
    /// Losses beyond one per killed consumer.
    fn excess_losses(&self) -> u64 {
        self.lost.saturating_sub(self.killed_consumers)
    }
    fn json(&self) -> String {
        format!(
            "{{\"messages_sent\":{},\"messages_received\":{},\"bytes_received\":{},\"seconds\":{:.3},\
             \"msgs_per_sec\":{:.0},\"errors\":{},\"corrupt\":{},\"duplicates\":{},\"order_violations\":{},\
             \"unexpected_errno\":{},\"failed_children\":{},\"lost\":{},\"lost_allowed\":{},\
             \"processes_started\":{},\"processes_killed\":{},\"consumers_killed\":{}}}\n",
            self.sent,
            self.received,
            self.bytes,
            self.secs,
            self.received as f64 / self.secs.max(1e-9),
            self.errors(),
            self.corrupt,
            self.duplicates,
            self.order,
            self.errno,
            self.failed_children,
            self.lost,
            self.killed_consumers,
            self.started,
            self.killed,
            self.killed_consumers
        )
    }
    fn text(&self) -> String {
        format!(
            "soak: {} messages sent, {} received ({} bytes) in {:.1} s, {:.0} msg/s\n\
             errors: {} (corrupt {}, duplicates {}, order {}, unexpected errno {}, failed children {}, losses beyond allowance {})\n\
             lost: {} (allowed: at most {}, one per killed consumer)\n\
             processes: {} started, {} killed ({} consumers)\n",
            self.sent,
            self.received,
            self.bytes,
            self.secs,
            self.received as f64 / self.secs.max(1e-9),
            self.errors(),
            self.corrupt,
            self.duplicates,
            self.order,
            self.errno,
            self.failed_children,
            self.excess_losses(),
            self.lost,
            self.killed_consumers,
            self.started,
            self.killed,
            self.killed_consumers
        )
    }
}

/// The parent: its queue, children and their tallies.
struct Run<'a> {
    args: &'a SoakArgs,
    exe: PathBuf,
    ns_dir: PathBuf,
    tally_dir: PathBuf,
    queue: i32,
    types: usize,
    quota: u64,
    rng: Rng,
    /// Every tally, with the role of the child that wrote it.
    tallies: Vec<(Role, Tally)>,
    producers: Vec<usize>,
    /// Messages producers were asked to send, live or finished.
    assigned: u64,
    pids: std::sync::Arc<std::sync::Mutex<Vec<u32>>>,
    s: Summary,
}

impl Run<'_> {
    fn spawn(&mut self, role: Role) -> Result<Option<(Child, usize)>, Failure> {
        let (n, quota) = match role {
            Role::Producer => {
                if self.producers.len() >= MAX_PRODUCERS {
                    return Ok(None);
                }
                let left = self.args.messages.saturating_sub(self.assigned);
                if left == 0 {
                    return Ok(None);
                }
                let q = (self.quota / 2 + self.rng.below(self.quota + 1)).clamp(1, left);
                self.assigned += q;
                (self.producers.len() as i64, q)
            }
            Role::Consumer(t) => (t, self.quota / 2 + self.rng.below(self.quota + 1)),
        };
        let idx = self.tallies.len();
        let path = self.tally_dir.join(idx.to_string());
        let tally = Tally::create(&path).map_err(|e| Failure::op("soak: tally file", e))?;
        tally.set(T_QUOTA, quota);
        self.tallies.push((role, tally));
        if role == Role::Producer {
            self.producers.push(idx);
        }
        let child = Command::new(&self.exe)
            .arg("--dir")
            .arg(&self.ns_dir)
            .arg("soak-child")
            .args([
                if role == Role::Producer { "p" } else { "c" }.to_string(),
                self.queue.to_string(),
            ])
            .arg(&path)
            .args([
                format!("{n}"),
                quota.to_string(),
                (self.types + 1).to_string(),
                self.rng.next().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| Failure::op("soak: starting a child", e))?;
        self.pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(child.id());
        self.s.started += 1;
        Ok(Some((child, idx)))
    }

    fn forget(&self, pid: u32) {
        self.pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&p| p != pid);
    }

    /// Reaps the children that ended; a failure (non-zero exit or a signal
    /// not sent by us) counts as an error.
    fn reap(&mut self, seats: &mut [Seat]) {
        for seat in seats.iter_mut() {
            if let Some((c, _)) = &mut seat.child {
                if let Ok(Some(st)) = c.try_wait() {
                    if !st.success() {
                        self.s.failed_children += 1;
                        eprintln!("shmq soak: a child ended with {st}");
                    }
                    let pid = c.id();
                    self.forget(pid);
                    seat.child = None;
                }
            }
        }
    }

    fn kill_one(&mut self, seats: &mut [Seat]) {
        let live: Vec<usize> = (0..seats.len())
            .filter(|&i| seats[i].child.is_some())
            .collect();
        if live.is_empty() {
            return;
        }
        let i = live[self.rng.below(live.len() as u64) as usize];
        let Some((mut c, idx)) = seats[i].child.take() else {
            return;
        };
        let _ = c.kill();
        if let (Role::Producer, t) = &self.tallies[idx] {
            // Hand out again what it will not send.
            let quota = t.get(T_QUOTA);
            self.assigned -= quota.saturating_sub(t.get(T_TOTAL));
        }
        if let Ok(st) = c.wait() {
            // It may have ended by itself just before.
            if st.success() {
                self.forget(c.id());
                return;
            }
        }
        self.forget(c.id());
        self.s.killed += 1;
        if let (Role::Consumer(_), _) = self.tallies[idx] {
            self.s.killed_consumers += 1;
        }
    }

    fn sum(&self, word: usize, producers: bool) -> u64 {
        self.tallies
            .iter()
            .filter(|(r, _)| (*r == Role::Producer) == producers)
            .map(|(_, t)| t.get(word))
            .sum()
    }

    fn errors_so_far(&self) -> u64 {
        [T_CORRUPT, T_DUP, T_ORDER, T_ERRNO]
            .iter()
            .map(|&w| self.sum(w, false) + self.sum(w, true))
            .sum::<u64>()
            + self.s.failed_children
    }

    /// The final check: every (producer, type) and the tiny messages.
    fn check(&mut self) {
        let mut s = std::mem::take(&mut self.s);
        let consumers: Vec<&Tally> = self
            .tallies
            .iter()
            .filter(|(r, _)| *r != Role::Producer)
            .map(|(_, t)| t)
            .collect();
        for (p, &pi) in self.producers.iter().enumerate() {
            let pt = &self.tallies[pi].1;
            for t in 0..=self.types {
                let e = Tally::entry(p, t);
                let mut n = pt.get(e);
                let mut got = 0;
                for c in &consumers {
                    got += c.get(e);
                    n = n.max(c.get(e + 1));
                }
                if got > n {
                    s.duplicates += got - n;
                } else {
                    s.lost += n - got;
                }
            }
        }
        for t in 0..=self.types {
            let sent = self.sum(T_TINY + t, true);
            let tried = self.sum(T_TINY_TRIED + t, true);
            let got: u64 = consumers.iter().map(|c| c.get(T_TINY + t)).sum();
            if got > tried {
                s.duplicates += got - tried;
            } else if got < sent {
                s.lost += sent - got;
            }
        }
        s.sent = self.sum(T_TOTAL, true);
        s.received = self.sum(T_TOTAL, false);
        s.bytes = self.sum(T_BYTES, false);
        s.corrupt = self.sum(T_CORRUPT, false);
        s.duplicates += self.sum(T_DUP, false);
        s.order = self.sum(T_ORDER, false);
        s.errno = self.sum(T_ERRNO, false) + self.sum(T_ERRNO, true);
        self.s = s;
    }
}

/// Runs `shmq soak` in namespace `dir` (`None`: a temporary one).
pub(crate) fn run(dir: Option<&Path>, args: &SoakArgs) -> Result<(), Failure> {
    shmq_benches::cleanup::install_signal_cleanup()
        .map_err(|e| Failure::op("soak: signal handling", e))?;
    if args.types == 0 || args.types + 1 > MAX_TYPES || args.producers == 0 {
        return Err(Failure::usage(format!(
            "soak: --types must be 1..={} and --producers at least 1",
            MAX_TYPES - 1
        )));
    }
    let pid = std::process::id();
    let ns_dir = dir.map_or_else(
        || PathBuf::from(format!("/dev/shm/shmq-soak-{pid}")),
        Path::to_path_buf,
    );
    let remove_ns_dir = !ns_dir.exists();
    let tally_dir = PathBuf::from(format!("/dev/shm/shmq-soak-{pid}-tally"));
    std::fs::create_dir(&tally_dir).map_err(|e| Failure::op("soak: tally directory", e))?;
    let ns = Namespace::open(&ns_dir).map_err(|e| Failure::namespace(&e))?;
    let flags = GetOptions::new().create(true).exclusive(true).mode(0o600);
    let q = ns
        .get(shmq::IPC_PRIVATE, flags)
        .map_err(|e| Failure::op("soak: creating the queue", e))?;
    // Removed newest first: the children, then the queue and directories.
    let _files = {
        let (q, ns_dir, tally_dir) = (q.clone(), ns_dir.clone(), tally_dir.clone());
        shmq_benches::cleanup::register(move || {
            let _ = q.remove();
            let _ = std::fs::remove_dir_all(&tally_dir);
            if remove_ns_dir {
                let _ = std::fs::remove_dir_all(&ns_dir);
            }
        })
    };
    let pids = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u32>::new()));
    let _children = {
        let pids = pids.clone();
        shmq_benches::cleanup::register(move || {
            for &p in pids.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                crate::sys::kill_hard(p);
            }
        })
    };
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let mut run = Run {
        args,
        exe: std::env::current_exe().map_err(|e| Failure::op("soak: own executable", e))?,
        ns_dir,
        tally_dir,
        queue: q.id(),
        types: args.types,
        quota: (args.messages / (args.producers as u64 * 8)).clamp(200, 2_000_000),
        rng: Rng::new(seed),
        tallies: Vec::new(),
        producers: Vec::new(),
        assigned: 0,
        pids,
        s: Summary::default(),
    };
    let mut seats: Vec<Seat> = (0..args.producers)
        .map(|_| Role::Producer)
        .chain((1..=args.types as i64).map(Role::Consumer))
        .chain([Role::Consumer(0), Role::Consumer(-(args.types as i64))])
        .map(|role| Seat { role, child: None })
        .collect();
    let t0 = Instant::now();
    let mut next_report = t0 + args.interval;
    let (mut last_n, mut last_t) = (0u64, t0);
    let mut next_kill = t0 + args.kill_every;
    let mut stopping = false;
    let mut out = std::io::stderr();
    loop {
        run.reap(&mut seats);
        let now = Instant::now();
        if !stopping && args.duration.is_some_and(|d| now - t0 >= d) {
            stopping = true;
            for &pi in &run.producers {
                run.tallies[pi].1.set(T_STOP, 1);
            }
        }
        let producing = seats
            .iter()
            .any(|s| s.role == Role::Producer && s.child.is_some());
        // Fill every empty seat (no new producer once the work is handed out).
        for seat in seats.iter_mut() {
            if seat.child.is_none() && !(stopping && seat.role == Role::Producer) {
                seat.child = run.spawn(seat.role)?;
            }
        }
        let producing = producing
            || seats
                .iter()
                .any(|s| s.role == Role::Producer && s.child.is_some());
        if !producing && q.stat().map_or(true, |st| st.qnum == 0) {
            break;
        }
        if args.kill && producing && now >= next_kill {
            run.kill_one(&mut seats);
            let mean = args.kill_every.as_micros() as u64;
            next_kill = now + Duration::from_micros(run.rng.below(2 * mean + 1));
        }
        if now >= next_report {
            let n = run.sum(T_TOTAL, false);
            let rate = (n - last_n) as f64 / (now - last_t).as_secs_f64().max(1e-9);
            let _ = writeln!(
                out,
                "[{:7.1} s] {n} messages, {rate:.0} msg/s, {} errors, {} processes started, {} killed",
                (now - t0).as_secs_f64(),
                run.errors_so_far(),
                run.s.started,
                run.s.killed
            );
            (last_n, last_t) = (n, now);
            next_report = now + args.interval;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Drained: every message is taken. Removing the queue ends the consumers.
    let _ = q.remove();
    let deadline = Instant::now() + Duration::from_secs(30);
    for seat in &mut seats {
        if let Some((mut c, _)) = seat.child.take() {
            loop {
                match c.try_wait() {
                    Ok(Some(st)) => {
                        if !st.success() {
                            run.s.failed_children += 1;
                            eprintln!("shmq soak: a child ended with {st}");
                        }
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    _ => {
                        eprintln!("shmq soak: a child did not end after the queue's removal");
                        run.s.failed_children += 1;
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                }
            }
            run.forget(c.id());
        }
    }
    run.s.secs = t0.elapsed().as_secs_f64();
    run.check();
    let s = &run.s;
    let report = if args.json { s.json() } else { s.text() };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(report.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::op("soak: writing the summary", e))?;
    if s.errors() > 0 {
        return Err(Failure::reported(EXIT_FAILED));
    }
    Ok(())
}
