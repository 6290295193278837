//! Delivering a POSIX queue's `mq_notify` notification, and the owner's
//! side of `SIGEV_THREAD` (the registration record and its protocol are
//! `crate::notify`'s).
//!
//! # SIGEV_SIGNAL
//! The firing sender queues the signal to the owner with
//! `rt_sigqueueinfo`, carrying what the kernel's `__do_notify` puts in it:
//! `si_code == SI_MESGQ`, the registered `sigev_value`, and the sender's
//! pid and real uid. The kernel lets a process queue a signal with a
//! negative `si_code` other than `SI_TKILL` to another process; it does
//! check the sender's permission to signal the owner (same real or saved
//! uid, or `CAP_KILL`), which the kernel's own notification bypasses.
//!
//! # SIGEV_THREAD
//! The registering process starts a helper thread that sleeps on the
//! record's `thread_word` (a shared futex word); the firing sender bumps and
//! wakes it; the helper then runs the function once and ends. An
//! unregistration by the owner (`mq_notify(NULL)`, its close) marks the
//! helper cancelled, under a process-wide lock that the helper also takes to
//! decide, then bumps and wakes it too: so "fired" and "cancelled" are never
//! confused, even when the owner registers again before the helper runs.

use super::Mapped;
use crate::notify::{Firing, Kind, NotifyRecord, Registration};
use crate::sync::local::AtomicBool;
use crate::sync::Ordering;
use crate::wait::{Futex, Park};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `SI_MESGQ`: the `si_code` of a POSIX queue's notification signal.
const SI_MESGQ: i32 = -3;

/// `siginfo_t` as the kernel reads it for `SI_MESGQ` (its `_rt` member:
/// pid, uid, value), 128 bytes on every 64-bit Linux.
#[repr(C)]
struct SigInfo {
    signo: i32,
    errno: i32,
    code: i32,
    _pad: i32,
    pid: i32,
    uid: u32,
    value: u64,
    _rest: [u64; 12],
}

const _: () = assert!(std::mem::size_of::<SigInfo>() == 128);

/// Queues signal `signo` with value `value` to process `pid`, as the
/// kernel's notification does.
fn queue_signal(pid: u32, signo: u32, value: u64) {
    let info = SigInfo {
        signo: signo as i32,
        errno: 0,
        code: SI_MESGQ,
        _pad: 0,
        pid: crate::process::pid() as i32,
        uid: rustix::process::getuid().as_raw(),
        value,
        _rest: [0; 12],
    };
    // SAFETY: `rt_sigqueueinfo(tgid, sig, info)` reads 128 bytes from
    // `info`, which is a live, fully initialised `SigInfo` of that size; the
    // other arguments are plain integers.
    let _ = unsafe {
        libc::syscall(
            libc::SYS_rt_sigqueueinfo,
            pid as libc::c_long,
            signo as libc::c_long,
            &info as *const SigInfo,
        )
    };
}

/// Delivers the notification a sender won (`NotifyRecord::fire`), then
/// frees the record.
pub(super) fn deliver(rec: &NotifyRecord, f: Firing) {
    let r = f.reg;
    match r.kind {
        Kind::None => {}
        // The kernel accepts signal 0 and then sends nothing (its
        // `__do_notify`: "do_mq_notify() accepts sigev_signo == 0, why??").
        Kind::Signal if r.signo == 0 => {}
        Kind::Signal => {
            if crate::process::is_alive(r.pid, r.start_time) {
                queue_signal(r.pid, r.signo, r.value);
            }
        }
        Kind::Thread => {
            rec.bump_thread_word();
            Futex::PLAIN.unpark_all(&rec.thread_word);
        }
    }
    rec.delivered(f.gen);
}

/// A `SIGEV_THREAD` helper of this process: cancelled by the owner's
/// unregistration (under [`helpers`]'s lock).
struct Helper {
    gen: u32,
    cancelled: Arc<AtomicBool>,
}

/// This process's helpers, by the mapping (its address) they watch.
fn helpers() -> &'static Mutex<HashMap<usize, Helper>> {
    static HELPERS: std::sync::OnceLock<Mutex<HashMap<usize, Helper>>> = std::sync::OnceLock::new();
    HELPERS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn lock_helpers() -> std::sync::MutexGuard<'static, HashMap<usize, Helper>> {
    helpers().lock().unwrap_or_else(|e| e.into_inner())
}

fn key(map: &Arc<Mapped>) -> usize {
    Arc::as_ptr(map) as usize
}

/// Registers this process on the queue mapped at `map` (`mq_notify`), with
/// `run` for `SIGEV_THREAD`. `Err(None)`: another live registration holds
/// the record (EBUSY); `Err(Some(()))`: the helper thread did not start.
pub(super) fn register(
    map: &Arc<Mapped>,
    kind: Kind,
    signo: u32,
    value: u64,
    run: Option<Box<dyn FnOnce() + Send + 'static>>,
) -> Result<(), Option<()>> {
    let rec = &map.state().header.notify;
    let reg = Registration {
        pid: crate::process::pid(),
        start_time: crate::process::own_start_time(),
        kind,
        signo,
        value,
    };
    // The lock keeps a helper of an earlier registration from deciding
    // between our registration and its entry (see `helper`).
    let mut hs = lock_helpers();
    let started = Instant::now();
    let gen = rec
        .register(reg, crate::process::is_alive, || {
            NotifyRecord::settle(started)
        })
        .map_err(|_| None)?;
    let Some(run) = run else {
        return Ok(());
    };
    let cancelled = Arc::new(AtomicBool::new(false));
    let spawned = {
        let map = map.clone();
        let cancelled = cancelled.clone();
        std::thread::Builder::new()
            .name("shmq-mq-notify".into())
            .spawn(move || helper(&map, gen, &cancelled, run))
    };
    if spawned.is_err() {
        // Take the registration back: nobody would run the function.
        let _ = rec.unregister(reg.pid, reg.start_time, || NotifyRecord::settle(started));
        return Err(Some(()));
    }
    hs.insert(key(map), Helper { gen, cancelled });
    Ok(())
}

/// Removes this process's registration on the queue mapped at `map`, if it
/// has one (`mq_notify(NULL)`, and every close of a descriptor of the queue
/// by the owner, as the kernel's `mqueue_flush_file`).
pub(super) fn unregister(map: &Arc<Mapped>) {
    let rec = &map.state().header.notify;
    if rec.current().map(|r| r.pid) != Some(crate::process::pid()) {
        return; // not ours (the common case: one load)
    }
    let mut hs = lock_helpers();
    let started = Instant::now();
    let removed = rec.unregister(
        crate::process::pid(),
        crate::process::own_start_time(),
        || NotifyRecord::settle(started),
    );
    let Some(gen) = removed else {
        return;
    };
    if let Some(h) = hs.get(&key(map)) {
        if h.gen == gen {
            // Relaxed: read by the helper under the same lock.
            h.cancelled.store(true, Ordering::Relaxed);
            hs.remove(&key(map));
            drop(hs);
            rec.bump_thread_word();
            Futex::PLAIN.unpark_all(&rec.thread_word);
        }
    }
}

/// The helper thread of registration `gen`: sleeps until it fires (then
/// runs `run`) or is cancelled.
fn helper(map: &Arc<Mapped>, gen: u32, cancelled: &AtomicBool, run: Box<dyn FnOnce() + Send>) {
    let rec = &map.state().header.notify;
    loop {
        // SYNC(notify_word): the word before the state, so that a fire
        // after our look at the state changes the word we sleep on.
        let w = rec.thread_word();
        {
            let mut hs = lock_helpers();
            // Relaxed: written under this lock.
            if cancelled.load(Ordering::Relaxed) {
                return;
            }
            if !rec.still_armed(gen) {
                // Not cancelled (that happens under this lock), so fired.
                if hs.get(&key(map)).is_some_and(|h| h.gen == gen) {
                    hs.remove(&key(map));
                }
                drop(hs);
                run();
                return;
            }
        }
        // A bounded sleep: a firer killed between its CAS and its wake-up
        // leaves the state changed, which the next look finds.
        let _ = Futex::PLAIN.park(&rec.thread_word, w, Duration::from_secs(1));
    }
}
