//! Target `queue_file`: a damaged queue file opened through the normal API.

use crate::input::Input;
use crate::{isolated, patch, run_doctor, TempDir, MSGMAX};
use shmq::{test_hooks, GetOptions, Namespace, Queue, QueueSet, RecvOptions, Selector};
use std::time::Duration;

/// Text lengths the set-up sends: empty, inline, and each data class's edges.
const SIZES: [usize; 8] = [0, 10, 16, 17, 64, 65, 130, MSGMAX];

/// Fills queue `q` as `setup` says: up to 7 messages of types 1 to 3 and
/// various sizes, and maybe one received (so that FIFOs have moved on).
/// Runs on a thread of its own that ends before the caller unmaps the file,
/// so the slot it used is released as a clean exit would.
pub(crate) fn fill(q: &Queue, setup: u8) {
    isolated(|| {
        for i in 0..(setup % 8) as usize {
            let mtype = 1 + ((i + setup as usize) % 3) as i64;
            let text = vec![i as u8 ^ 0x5a; SIZES[(i * 3 + setup as usize / 8) % SIZES.len()]];
            let _ = q.try_send(mtype, &text);
        }
        if setup & 0x80 != 0 {
            let mut buf = [0u8; MSGMAX];
            let _ = q.try_recv(&mut buf, Selector::Type(2));
        }
    })
}

/// The input: a mode byte, a set-up byte, then (by mode) patches, a new
/// length, or the file's bytes; what is left drives the operations.
///
/// Mode, low two bits: 0 the whole file from the input (at most 64 KiB);
/// 1 the first page from the input; 2 and 3 patches. Bit 2: then change
/// the length. Bit 3: run the doctor before anything else.
pub fn queue_file(data: &[u8]) {
    isolated(|| run(data))
}

fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.u8();
    let setup = input.u8();
    let tmp = TempDir::new();
    let id = {
        let ns = Namespace::open(&tmp.path).expect("open a fresh namespace");
        let q = ns
            .get(
                0x1234,
                GetOptions::new().create(true).exclusive(true).mode(0o600),
            )
            .expect("create a queue");
        fill(&q, setup);
        q.id()
        // Every mapping of the file ends here.
    };
    let path = tmp.path.join(format!("msq.{id}"));
    let mut bytes = std::fs::read(&path).expect("read the queue file");
    match mode & 3 {
        0 => {
            let n = input.u16() as usize;
            bytes = input.bytes(n).to_vec();
        }
        1 => {
            let page = input.bytes(4096);
            bytes[..page.len()].copy_from_slice(page);
        }
        _ => patch::apply(&mut bytes, &mut input),
    }
    if mode & 4 != 0 {
        let len = patch::new_len(bytes.len(), &mut input);
        bytes.resize(len, 0);
    }
    // Written in full before anything maps it again (a file truncated
    // under a mapping raises SIGBUS: a documented limit).
    std::fs::write(&path, &bytes).expect("write the queue file");
    if mode & 8 != 0 {
        run_doctor(&tmp.path, input.bool());
    }
    exercise(&tmp.path, id, &mut input);
}

/// Opens queue `id` of the namespace in `dir` and uses it as `input` says,
/// then with a fixed script, then runs the doctor.
pub(crate) fn exercise(dir: &std::path::Path, id: i32, input: &mut Input<'_>) {
    if let Ok(ns) = Namespace::open(dir) {
        if let Ok(q) = ns.queue(id) {
            let mut ops = 0;
            while !input.is_empty() && ops < 64 {
                ops += 1;
                operate(&ns, &q, input);
            }
            script(&ns, &q);
        }
        let _ = (ns.ids(), ns.info());
    }
    run_doctor(dir, true);
    run_doctor(dir, false);
    // After a repair, the queue (if it is still there) is used once more.
    if let Ok(ns) = Namespace::open(dir) {
        if let Ok(q) = ns.queue(id) {
            script(&ns, &q);
            let _ = q.remove();
        }
    }
}

fn selector(input: &mut Input<'_>) -> Selector {
    let t = input.i64_biased();
    Selector::from_msgtyp(t, input.bool())
}

/// One operation chosen by `input`.
pub(crate) fn operate(ns: &Namespace, q: &Queue, input: &mut Input<'_>) {
    let mut buf = [0u8; MSGMAX + 8];
    match input.u8() % 12 {
        0 => {
            let mtype = input.i64_biased();
            let len = input.u8() as usize % (MSGMAX + 2);
            let _ = q.try_send(mtype, &buf[..len]);
        }
        1 => {
            let sel = selector(input);
            let len = input.u8() as usize % (MSGMAX + 8);
            let _ = q.try_recv(&mut buf[..len], options(sel, input.bool()));
        }
        2 => {
            let index = input.i64_biased();
            let len = input.u8() as usize % (MSGMAX + 8);
            let _ = q.try_recv_copy(
                &mut buf[..len],
                position(index),
                options(Selector::Any, input.bool()),
            );
        }
        3 => {
            let sel = selector(input);
            if let Ok(loan) = q.try_recv_lend(sel) {
                let _ = (loan.mtype(), loan.len(), loan.is_empty());
                loan.with_text(|t| t.iter().fold(0u8, |a, &b| a ^ b));
                let _ = q.stat();
            }
        }
        4 => {
            let _ = (q.stat(), q.stat_any(), q.figures(), q.perms());
            let _ = test_hooks::debug_dump(q);
        }
        5 => {
            let _ = q.set(QueueSet {
                uid: input.u32() % 2,
                gid: input.u32() % 2,
                mode: input.u16() as u32,
                qbytes: input.u16() as u64 % 1024,
            });
        }
        6 => {
            test_hooks::recover(q);
        }
        7 => {
            let _ = q.remove();
        }
        8 => {
            let _ = (ns.ids(), ns.info(), ns.queue_at(input.u8() as usize % 8));
        }
        9 => {
            let sel = selector(input);
            let t = Duration::from_micros(input.u8() as u64 % 16 * 10);
            let _ = q.recv_timeout(&mut buf, sel, t);
        }
        10 => {
            let mtype = input.i64_biased();
            let len = input.u8() as usize % (MSGMAX + 2);
            let t = Duration::from_micros(input.u8() as u64 % 16 * 10);
            let _ = q.send_timeout(mtype, &buf[..len], t);
        }
        _ => {
            // Fill, then drain: reaches the full queue and every cell.
            for i in 0..input.u8() % 32 {
                let len = SIZES[i as usize % SIZES.len()];
                let _ = q.try_send(1 + i as i64 % 3, &buf[..len]);
            }
            for _ in 0..input.u8() % 32 {
                if q.try_recv(&mut buf, Selector::Any).is_err() {
                    break;
                }
            }
        }
    }
}

/// Receive options for `sel`, truncating when `truncate`.
fn options(sel: Selector, truncate: bool) -> RecvOptions {
    let opts = RecvOptions::new(sel);
    if truncate {
        opts.truncate()
    } else {
        opts
    }
}

/// A `MSG_COPY` position from an `msgtyp`: a negative one finds nothing.
fn position(msgtyp: i64) -> usize {
    usize::try_from(msgtyp).unwrap_or(usize::MAX)
}

/// A fixed use of every kind of call: what each input exercises at least.
pub(crate) fn script(ns: &Namespace, q: &Queue) {
    let mut buf = [0u8; MSGMAX];
    let _ = (q.stat(), q.figures(), test_hooks::debug_dump(q));
    test_hooks::recover(q);
    for index in 0..3 {
        let _ = q.try_recv_copy(&mut buf, index, RecvOptions::default());
    }
    for sel in [
        Selector::Type(2),
        Selector::Except(1),
        Selector::AtMost(2),
        Selector::Any,
    ] {
        let _ = q.try_recv(&mut buf, sel);
    }
    for (mtype, len) in [(1, 3), (2, 40), (3, 100), (4, MSGMAX)] {
        let _ = q.try_send(mtype, &buf[..len]);
    }
    if let Ok(loan) = q.try_recv_lend(Selector::AtMost(4)) {
        loan.with_text(|t| t.len());
    }
    for _ in 0..8 {
        if q.try_recv(&mut buf, Selector::Any).is_err() {
            break;
        }
    }
    let _ = ns.info();
}
