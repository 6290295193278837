//! Target `api_sequence`: a sequence of API calls with arbitrary arguments
//! on a fresh namespace, each result checked against a model of the queues.
//!
//! It calls the engine's API, not the C ABI in `ffi/`: the C library opens
//! one namespace per process, once (`SHMQ_DIR` is read at the first call),
//! so every execution could not have a fresh namespace of its own, and the
//! model would have to guess what earlier executions left. The C layer's
//! own decoding (`msgflg`, `msgtyp`, `cmd`) is mirrored with the engine's
//! decoders (`GetOptions::from_msgflg`, `Selector::from_msgtyp`).
//!
//! Every receive, send and lookup never blocks (IPC_NOWAIT, or a timeout of
//! at most 150 µs).

use crate::input::Input;
use crate::{isolated, run_doctor, TempDir, MSGMAX, MSGMNB, MSGMNI, QBYTES_MAX};
use shmq::{
    test_hooks, CtlError, GetError, GetOptions, Namespace, Queue, QueueSet, RecvError, RecvOptions,
    Selector, SendError,
};
use std::collections::VecDeque;
use std::time::Duration;

/// What the model knows of one queue.
struct Model {
    q: Queue,
    key: i32,
    msgs: VecDeque<(i64, Vec<u8>)>,
    qbytes: u64,
    removed: bool,
}

impl Model {
    fn cbytes(&self) -> u64 {
        self.msgs.iter().map(|(_, t)| t.len() as u64).sum()
    }

    fn fits(&self, len: usize) -> bool {
        self.cbytes() + len as u64 <= self.qbytes && (self.msgs.len() as u64) < self.qbytes
    }

    /// Position of the message `sel` picks, as Linux's `find_msg`.
    fn find(&self, sel: Selector) -> Option<usize> {
        match sel {
            Selector::Any => (!self.msgs.is_empty()).then_some(0),
            Selector::Type(t) => self.msgs.iter().position(|m| m.0 == t),
            Selector::Except(t) => self.msgs.iter().position(|m| m.0 != t),
            Selector::AtMost(t) => {
                let low = self.msgs.iter().map(|m| m.0).filter(|&m| m <= t).min()?;
                self.msgs.iter().position(|m| m.0 == low)
            }
        }
    }
}

struct World {
    ns: Namespace,
    /// A second handle on the same namespace (its own mappings), once opened.
    other: Option<Namespace>,
    queues: Vec<Model>,
    root: bool,
    /// Distinguishes every message's text.
    counter: u64,
}

impl World {
    fn live(&self) -> impl Iterator<Item = &Model> {
        self.queues.iter().filter(|m| !m.removed)
    }

    fn text(&mut self, len: usize) -> Vec<u8> {
        self.counter += 1;
        let c = self.counter;
        (0..len)
            .map(|i| (c.rotate_left(i as u32 % 64) ^ i as u64) as u8)
            .collect()
    }

    fn pick(&self, input: &mut Input<'_>) -> Option<usize> {
        if self.queues.is_empty() {
            return None;
        }
        Some(input.u8() as usize % self.queues.len())
    }

    fn check_stat(&self, m: &Model) {
        match m.q.stat() {
            Ok(s) => {
                assert!(!m.removed, "IPC_STAT of a removed queue succeeded");
                assert_eq!(s.qnum, m.msgs.len() as u64, "qnum");
                assert_eq!(s.cbytes, m.cbytes(), "cbytes");
                assert_eq!(s.qbytes, m.qbytes, "qbytes");
                assert_eq!(s.perm.key, m.key, "key");
            }
            Err(e) => {
                assert!(m.removed, "IPC_STAT failed: {e}");
                assert_eq!(e, CtlError::Invalid);
            }
        }
    }
}

/// The input: one operation after another, each an opcode byte and its
/// arguments, up to 200 of them; then the model's final checks, and the
/// doctor, which must find nothing wrong.
pub fn api_sequence(data: &[u8]) {
    isolated(|| run(data))
}

fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let tmp = TempDir::new();
    let ns = Namespace::open(&tmp.path).expect("open a fresh namespace");
    shmq::refresh_credentials();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let mut w = World {
        ns,
        other: None,
        queues: Vec::new(),
        root,
        counter: 0,
    };
    let mut ops = 0;
    while !input.is_empty() && ops < 200 {
        ops += 1;
        step(&mut w, &mut input);
    }
    for m in &w.queues {
        w.check_stat(m);
    }
    let info = w.ns.info();
    assert_eq!(info.queues as usize, w.live().count(), "IPC_INFO queues");
    assert_eq!(
        info.messages,
        w.live().map(|m| m.msgs.len() as u64).sum::<u64>(),
        "MSG_INFO messages"
    );
    assert_eq!(
        info.bytes,
        w.live().map(|m| m.cbytes()).sum::<u64>(),
        "MSG_INFO bytes"
    );
    let health = run_doctor(&tmp.path, true);
    assert_eq!(
        health,
        shmq::doctor::Health::Healthy,
        "the doctor finds fault with a namespace used only through the API"
    );
    drop(w);
}

/// `SHMQ_FUZZ_TRACE=1`: print each operation (to read a failing input).
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("SHMQ_FUZZ_TRACE").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing() {
            eprintln!($($arg)*);
        }
    };
}

fn step(w: &mut World, input: &mut Input<'_>) {
    let mut buf = vec![0u8; MSGMAX + 16];
    let op = input.u8() % 14;
    trace!("op {op}");
    match op {
        // msgget
        0 | 1 => {
            let key = match input.u8() % 6 {
                0 => 0,
                1 => input.u32() as i32,
                k => k as i32,
            };
            let msgflg = input.u16() as i32;
            let flags = GetOptions::from_msgflg(msgflg);
            let create = msgflg & libc::IPC_CREAT != 0;
            let exclusive = msgflg & libc::IPC_EXCL != 0;
            let found = (key != 0)
                .then(|| w.live().position(|m| m.key == key))
                .flatten();
            let live = w.live().count();
            trace!("msgget({key}, {flags:?})");
            let r = if input.bool() {
                w.ns.get(key, flags)
            } else {
                let ns = w
                    .other
                    .get_or_insert_with(|| Namespace::open(w.ns.dir()).expect("reopen"));
                ns.get(key, flags)
            };
            let existing = found.map(|_| {
                w.queues
                    .iter()
                    .find(|m| !m.removed && m.key == key)
                    .expect("found")
                    .q
                    .id()
            });
            match (existing, r) {
                (Some(id), r) if create && exclusive => {
                    assert_eq!(r.map(|q| q.id()), Err(GetError::Exists), "queue {id}")
                }
                (Some(id), r) => assert_eq!(r.map(|q| q.id()), Ok(id)),
                (None, Err(GetError::NotFound)) => assert!(key != 0 && !create),
                (None, Err(GetError::NoSpace)) => assert_eq!(live, MSGMNI),
                (None, Ok(q)) => {
                    assert!(key == 0 || create, "msgget created without IPC_CREAT");
                    assert!(live < MSGMNI, "more than msgmni queues");
                    assert!(w.live().all(|m| m.q.id() != q.id()), "id reused while live");
                    w.queues.push(Model {
                        q,
                        key,
                        msgs: VecDeque::new(),
                        qbytes: MSGMNB,
                        removed: false,
                    });
                    // Handles of removed queues are let go, oldest first
                    // (at most `MSGMNI` are live).
                    if w.queues.len() > 8 {
                        if let Some(p) = w.queues.iter().position(|m| m.removed) {
                            w.queues.remove(p);
                        }
                    }
                }
                (None, r) => panic!("msgget({key}, {flags:?}): {r:?}"),
            }
        }
        // msgsnd
        2 | 3 => {
            let Some(i) = w.pick(input) else { return };
            let mtype = input.i64_biased();
            let len = input.u8() as usize % (MSGMAX + 8);
            let timed = input.u8() & 7 == 0;
            let text = w.text(len);
            let m = &mut w.queues[i];
            let r = if timed {
                m.q.send_timeout(mtype, &text, Duration::from_micros(50))
            } else {
                m.q.try_send(mtype, &text)
            };
            let expected = if len > MSGMAX || mtype < 1 || m.removed {
                Err(SendError::Invalid)
            } else if !m.fits(len) {
                Err(if timed {
                    SendError::TimedOut
                } else {
                    SendError::Again
                })
            } else {
                Ok(())
            };
            trace!("msgsnd(q{i}, {mtype}, {len}, timed {timed}): {r:?}");
            assert_eq!(r, expected, "msgsnd(type {mtype}, {len} bytes)");
            if r.is_ok() {
                m.msgs.push_back((mtype, text));
            }
        }
        // msgrcv
        4 | 5 => {
            let Some(i) = w.pick(input) else { return };
            let sel = Selector::from_msgtyp(input.i64_biased(), input.bool());
            let len = input.u8() as usize % (MSGMAX + 16);
            let noerror = input.bool();
            let timed = input.u8() & 7 == 0;
            let m = &mut w.queues[i];
            let opts = if noerror {
                RecvOptions::new(sel).truncate()
            } else {
                RecvOptions::new(sel)
            };
            let r = if timed {
                m.q.recv_timeout(&mut buf[..len], opts, Duration::from_micros(50))
            } else {
                m.q.try_recv(&mut buf[..len], opts)
            };
            trace!("msgrcv(q{i}, {sel:?}, {len}, noerror {noerror}, timed {timed}): {r:?}");
            if m.removed {
                assert_eq!(r, Err(RecvError::Invalid));
                return;
            }
            match m.find(sel) {
                None => {
                    let e = if timed {
                        RecvError::TimedOut
                    } else {
                        RecvError::NoMessage
                    };
                    assert_eq!(r, Err(e), "msgrcv({sel:?})");
                }
                Some(p) if m.msgs[p].1.len() > len && !noerror => {
                    assert_eq!(r, Err(RecvError::TooBig), "msgrcv({sel:?}, {len})");
                }
                Some(p) => {
                    let (mtype, text) = m.msgs.remove(p).expect("position");
                    let got = r.unwrap_or_else(|e| panic!("msgrcv({sel:?}): {e}"));
                    let n = text.len().min(len);
                    assert_eq!((got.mtype, got.len), (mtype, n), "msgrcv({sel:?})");
                    assert_eq!(&buf[..n], &text[..n], "text of a message");
                }
            }
        }
        // MSG_COPY
        6 => {
            let Some(i) = w.pick(input) else { return };
            let index = input.i64_biased();
            let len = input.u8() as usize % (MSGMAX + 16);
            let noerror = input.bool();
            let m = &w.queues[i];
            let opts = if noerror {
                RecvOptions::default().truncate()
            } else {
                RecvOptions::default()
            };
            let position = usize::try_from(index).unwrap_or(usize::MAX);
            let r = m.q.try_recv_copy(&mut buf[..len], position, opts);
            if m.removed {
                assert_eq!(r, Err(RecvError::Invalid));
                return;
            }
            match usize::try_from(index).ok().and_then(|p| m.msgs.get(p)) {
                None => assert_eq!(r, Err(RecvError::NoMessage), "MSG_COPY {index}"),
                Some((_, t)) if t.len() > len => assert_eq!(
                    r,
                    Err(if noerror {
                        RecvError::Invalid
                    } else {
                        RecvError::TooBig
                    }),
                    "MSG_COPY {index} into {len}"
                ),
                Some((mtype, t)) => {
                    let got = r.unwrap_or_else(|e| panic!("MSG_COPY {index}: {e}"));
                    assert_eq!((got.mtype, got.len), (*mtype, t.len()));
                    assert_eq!(&buf[..t.len()], &t[..], "text of a copied message");
                }
            }
        }
        // zero-copy receive
        7 => {
            let Some(i) = w.pick(input) else { return };
            let sel = Selector::from_msgtyp(input.i64_biased(), input.bool());
            let m = &mut w.queues[i];
            let r = m.q.try_recv_lend(sel);
            if m.removed {
                assert_eq!(r.err(), Some(RecvError::Invalid));
                return;
            }
            match (m.find(sel), r) {
                (None, r) => assert_eq!(r.err(), Some(RecvError::NoMessage)),
                (Some(p), Ok(loan)) => {
                    let (mtype, text) = &m.msgs[p];
                    assert_eq!(loan.mtype(), *mtype);
                    assert_eq!(loan.len(), text.len());
                    loan.with_text(|t| assert_eq!(t, &text[..], "lent text"));
                    // Still counted until the loan is dropped.
                    let s = m.q.stat().expect("stat");
                    assert_eq!(s.qnum, m.msgs.len() as u64);
                    drop(loan);
                    m.msgs.remove(p);
                }
                (Some(_), Err(e)) => panic!("recv_lend({sel:?}): {e}"),
            }
        }
        // IPC_STAT, MSG_STAT, MSG_INFO
        8 => {
            if let Some(i) = w.pick(input) {
                w.check_stat(&w.queues[i]);
            }
            let index = input.u8() as usize % (MSGMNI + 2);
            let r = w.ns.queue_at(index);
            let live = w.live().find(|m| m.q.id() as usize % MSGMNI == index);
            match (live, r) {
                (Some(m), Ok(q)) => assert_eq!(q.id(), m.q.id()),
                (None, Err(CtlError::Invalid)) => {}
                (l, r) => panic!(
                    "MSG_STAT {index}: {:?} vs {:?}",
                    l.map(|m| m.q.id()),
                    r.map(|q| q.id())
                ),
            }
        }
        // IPC_SET
        9 => {
            let Some(i) = w.pick(input) else { return };
            let qbytes = match input.u8() % 3 {
                0 => input.u16() as u64 % (QBYTES_MAX + 64),
                1 => input.u8() as u64,
                _ => input.u64(),
            };
            let mode = input.u16() as u32;
            let root = w.root;
            let m = &mut w.queues[i];
            let (uid, gid) = if root {
                (0, 0)
            } else {
                // SAFETY: geteuid / getegid have no preconditions.
                unsafe { (libc::geteuid(), libc::getegid()) }
            };
            let set = QueueSet {
                uid,
                gid,
                mode: if root { mode } else { mode | 0o600 },
                qbytes,
            };
            let r = m.q.set(set);
            trace!("IPC_SET(q{i}, {set:?}): {r:?}");
            let expected = if m.removed {
                Err(CtlError::Invalid)
            } else if qbytes > MSGMNB && !root {
                Err(CtlError::Permission)
            } else if qbytes > QBYTES_MAX {
                Err(CtlError::Invalid)
            } else {
                Ok(())
            };
            assert_eq!(r, expected, "IPC_SET qbytes {qbytes}");
            if r.is_ok() {
                m.qbytes = qbytes;
                assert_eq!(m.q.perms().mode, set.mode & 0o777);
            }
        }
        // IPC_RMID
        10 => {
            let Some(i) = w.pick(input) else { return };
            let m = &mut w.queues[i];
            let r = m.q.remove();
            trace!("IPC_RMID(q{i}): {r:?}");
            if m.removed {
                assert_eq!(r, Err(CtlError::Invalid));
            } else {
                assert_eq!(r, Ok(()));
                m.removed = true;
                m.msgs.clear();
            }
            let id = m.q.id();
            assert!(w.ns.queue(id).is_err(), "removed queue {id} still found");
        }
        // lookup by id, possibly stale or arbitrary; a second mapping
        11 => {
            let id = match input.u8() % 3 {
                0 => input.u32() as i32,
                _ => match w.pick(input) {
                    Some(i) => w.queues[i].q.id(),
                    None => 0,
                },
            };
            let other = w
                .other
                .get_or_insert_with(|| Namespace::open(w.ns.dir()).expect("reopen"));
            let r = other.queue(id);
            let pos = w.queues.iter().position(|m| !m.removed && m.q.id() == id);
            match (pos, r) {
                (Some(p), Ok(q)) => {
                    assert_eq!(q.id(), id);
                    // From now on this queue is used through the other mapping.
                    w.queues[p].q = q;
                }
                (None, Err(CtlError::Invalid)) => {}
                (p, r) => panic!("queue({id}): live {} but {r:?}", p.is_some()),
            }
        }
        // recovery finds nobody dead
        12 => {
            if let Some(i) = w.pick(input) {
                assert_eq!(
                    test_hooks::recover(&w.queues[i].q),
                    0,
                    "recovered a live process"
                );
            }
        }
        // fill then drain, in order
        _ => {
            let Some(i) = w.pick(input) else { return };
            let n = input.u8() % 64;
            let len = input.u8() as usize % (MSGMAX + 1);
            for k in 0..n {
                let text = w.text(len);
                let m = &mut w.queues[i];
                let mtype = 1 + (k % 3) as i64;
                let r = m.q.try_send(mtype, &text);
                if m.removed {
                    assert_eq!(r, Err(SendError::Invalid));
                    return;
                }
                if m.fits(len) {
                    assert_eq!(r, Ok(()), "fill");
                    m.msgs.push_back((mtype, text));
                } else {
                    assert_eq!(r, Err(SendError::Again), "fill of a full queue");
                    break;
                }
            }
            let m = &mut w.queues[i];
            if m.removed {
                let r = m.q.try_recv(&mut buf, Selector::Any);
                assert_eq!(r, Err(RecvError::Invalid), "drain of a removed queue");
                return;
            }
            let end = loop {
                match m.q.try_recv(&mut buf, Selector::Any) {
                    Ok(got) => {
                        let (mtype, text) = m.msgs.pop_front().expect("a message the model lacks");
                        assert_eq!((got.mtype, &buf[..got.len]), (mtype, &text[..]), "drain");
                    }
                    Err(e) => break e,
                }
            };
            assert!(
                m.msgs.is_empty(),
                "drain ended with {end:?} but {} messages are queued: {:?}\n{}",
                m.msgs.len(),
                m.msgs.iter().map(|(t, x)| (t, x.len())).collect::<Vec<_>>(),
                test_hooks::debug_dump(&m.q)
            );
        }
    }
}
