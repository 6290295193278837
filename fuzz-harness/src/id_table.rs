//! Target `id_table`: a damaged id table (`ids`) opened through the normal API.

use crate::input::Input;
use crate::queue_file::{fill, operate};
use crate::{isolated, patch, run_doctor, TempDir, MSGMAX};
use shmq::{GetOptions, Namespace};
use std::time::Duration;

/// Offsets of the id table header's words (see `engine/src/ids.rs`).
const MSGMAX_OFF: usize = 24;
const QBYTES_MAX_OFF: usize = 56;
const SLOTS_OFF: usize = 64;
const LOCK_OFF: usize = 72;
const LOCK_START_OFF: usize = 80;

/// A pid no process can have (above Linux's largest `pid_max`, 2^22).
const DEAD_PID: u64 = 1 << 30;

/// The input: a mode byte, a set-up byte, then (by mode) patches, a new
/// length, or the file's bytes; what is left drives the operations.
///
/// Mode, low two bits: 0 the whole file from the input; 1 the file's
/// bytes after the magic and version from the input; 2 and 3 patches. Bit
/// 2: then change the length. Bit 3: a dead process holds the management
/// lock. Bit 4: run the doctor before anything else.
///
/// Two things the harness keeps out, since they are not bugs: a management
/// lock held by a live process (every `msgget` waits for it, as it would for
/// a live holder; only a dead one is taken over), and limits far above the
/// harness's own (a queue built for them is legitimately huge and slow to
/// check).
pub fn id_table(data: &[u8]) {
    isolated(|| run(data))
}

fn word(bytes: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(off..off + 8)?.try_into().ok()?,
    ))
}

fn set_word(bytes: &mut [u8], off: usize, v: u64) {
    if let Some(w) = bytes.get_mut(off..off + 8) {
        w.copy_from_slice(&v.to_le_bytes());
    }
}

fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.u8();
    let setup = input.u8();
    let tmp = TempDir::new();
    let mut ids = Vec::new();
    {
        let ns = Namespace::open(&tmp.path).expect("open a fresh namespace");
        // Up to four queues: keys 1..=3, the fourth private; one removed.
        for i in 0..=(setup % 4) as i32 {
            let key = if i == 3 { 0 } else { i + 1 };
            let q = ns
                .get(key, GetOptions::new().create(true).mode(0o666))
                .expect("create a queue");
            fill(&q, setup >> 2 ^ i as u8);
            ids.push(q.id());
        }
        if setup & 0x40 != 0 {
            let q = ns.queue(ids[0]).expect("queue 0");
            q.remove().expect("remove queue 0");
            let q = ns
                .get(
                    9,
                    GetOptions::new().create(true).exclusive(true).mode(0o600),
                )
                .expect("re-create");
            ids.push(q.id());
        }
    }
    let path = tmp.path.join("ids");
    let mut bytes = std::fs::read(&path).expect("read the id table");
    let original = bytes.clone();
    match mode & 3 {
        0 => {
            let n = input.u16() as usize % 4096;
            bytes = input.bytes(n).to_vec();
        }
        1 => {
            let rest = input.bytes(bytes.len() - 16);
            bytes[16..16 + rest.len()].copy_from_slice(rest);
        }
        _ => patch::apply(&mut bytes, &mut input),
    }
    if mode & 4 != 0 {
        let len = patch::new_len(bytes.len(), &mut input);
        bytes.resize(len, 0);
    }
    sanitize(&mut bytes, &original, mode & 8 != 0);
    std::fs::write(&path, &bytes).expect("write the id table");
    if mode & 16 != 0 {
        run_doctor(&tmp.path, input.bool());
    }
    exercise(&tmp.path, &ids, &mut input);
}

/// Keeps out what is not a bug (see [`id_table`]).
fn sanitize(bytes: &mut [u8], original: &[u8], dead_holder: bool) {
    let lock = if dead_holder { DEAD_PID } else { 0 };
    set_word(bytes, LOCK_OFF, lock);
    set_word(bytes, LOCK_START_OFF, 0);
    for (off, cap) in [(MSGMAX_OFF, 4096), (QBYTES_MAX_OFF, 4096), (SLOTS_OFF, 16)] {
        if word(bytes, off).is_some_and(|v| v > cap) {
            set_word(bytes, off, word(original, off).unwrap_or(0));
        }
    }
}

fn get_flags(input: &mut Input<'_>) -> GetOptions {
    GetOptions::from_msgflg(input.u16() as i32)
}

fn exercise(dir: &std::path::Path, ids: &[i32], input: &mut Input<'_>) {
    if let Ok(ns) = Namespace::open(dir) {
        let mut ops = 0;
        while !input.is_empty() && ops < 64 {
            ops += 1;
            match input.u8() % 8 {
                0 => {
                    let key = match input.u8() % 4 {
                        0 => input.u32() as i32,
                        k => k as i32,
                    };
                    if let Ok(q) = ns.get(key, get_flags(input)) {
                        operate(&ns, &q, input);
                    }
                }
                1 => {
                    let id = match input.u8() % 3 {
                        0 => input.u32() as i32,
                        1 => ids[input.u8() as usize % ids.len()],
                        _ => input.u8() as i32,
                    };
                    if let Ok(q) = ns.queue(id) {
                        operate(&ns, &q, input);
                    }
                }
                2 => {
                    if let Ok(q) = ns.queue_at(input.u8() as usize % 8) {
                        operate(&ns, &q, input);
                    }
                }
                3 => {
                    let _ = (ns.ids(), ns.info(), ns.limits());
                }
                4 => {
                    let id = input.u32() as i32;
                    let _ = ns.remove_damaged(id, Duration::from_millis(50));
                }
                5 => {
                    run_doctor(dir, input.bool());
                }
                6 => {
                    if let Ok(q) = ns.queue(ids[input.u8() as usize % ids.len()]) {
                        let _ = q.remove();
                    }
                }
                _ => {
                    let _ = ns.get(0, get_flags(input));
                }
            }
        }
        script(&ns, ids);
    }
    run_doctor(dir, true);
    run_doctor(dir, false);
    if let Ok(ns) = Namespace::open(dir) {
        script(&ns, ids);
        for id in ns.ids() {
            if let Ok(q) = ns.queue(id) {
                let _ = q.remove();
            }
        }
    }
}

/// A fixed use of every namespace call.
fn script(ns: &Namespace, ids: &[i32]) {
    let _ = (ns.ids(), ns.info(), ns.limits());
    let mut buf = [0u8; MSGMAX];
    for key in [1, 2, 3, 9, 0] {
        for flags in [0, libc::IPC_CREAT | 0o600] {
            if let Ok(q) = ns.get(key, GetOptions::from_msgflg(flags)) {
                let _ = q.stat();
                let _ = q.try_send(1, b"x");
                let _ = q.try_recv(&mut buf, shmq::Selector::Any);
            }
        }
    }
    for &id in ids.iter().chain(ns.ids().iter()) {
        if let Ok(q) = ns.queue(id) {
            let _ = (q.stat(), q.figures());
        }
    }
    for index in 0..crate::MSGMNI + 1 {
        let _ = ns.queue_at(index).map(|q| q.stat_any());
    }
}
