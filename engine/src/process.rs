//! Facts about processes: our own pid (right after `fork` too), our
//! credentials, a process's start time, and whether another process is alive.
//!
//! The pid and credentials (with the supplementary groups) are cached so
//! that the data path makes no system call; a `pthread_atfork` child handler
//! clears the cache in a forked child, and [`refresh_credentials`] re-reads
//! credentials after `setuid`, `setgroups` and friends.
//!
//! Liveness is decided from `(pid, start time)`: a pid may be reused by a new
//! process, but not with the same start time (field 22 of `/proc/PID/stat`,
//! in clock ticks since boot).

use crate::sync::local::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::atomic::Ordering;
use std::sync::Once;

static PID: AtomicU32 = AtomicU32::new(0);
static START_TIME: AtomicU64 = AtomicU64::new(0);
static FORK_GEN: AtomicU64 = AtomicU64::new(0);
static CREDS_VALID: AtomicBool = AtomicBool::new(false);
static EUID: AtomicU32 = AtomicU32::new(0);
static EGID: AtomicU32 = AtomicU32::new(0);
/// Supplementary groups cached with the credentials, for [`in_group`]: a
/// permission check by group runs on every send and receive, and asking the
/// kernel each time cost a system call per message.
const GROUPS_CACHED: usize = 32;
static GROUPS: [AtomicU32; GROUPS_CACHED] = [const { AtomicU32::new(0) }; GROUPS_CACHED];
/// How many of [`GROUPS`] hold groups; `u32::MAX` when the process has more
/// than [`GROUPS_CACHED`] (or they could not be read): ask the kernel.
static N_GROUPS: AtomicU32 = AtomicU32::new(u32::MAX);
static ATFORK: Once = Once::new();

extern "C" fn after_fork_in_child() {
    // Relaxed: the child is single-threaded at this point.
    PID.store(0, Ordering::Relaxed);
    START_TIME.store(0, Ordering::Relaxed);
    FORK_GEN.fetch_add(1, Ordering::Relaxed);
    CREDS_VALID.store(false, Ordering::Relaxed);
}

fn install_atfork() {
    ATFORK.call_once(|| {
        // SAFETY: registers a handler that only stores to atomics, which is
        // async-signal-safe and valid in a forked child.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
}

/// This process's pid, read at call time (a forked child sees its own).
pub(crate) fn pid() -> u32 {
    // Relaxed: every thread computes the same value.
    let p = PID.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    install_atfork();
    let p = rustix::process::getpid().as_raw_nonzero().get() as u32;
    PID.store(p, Ordering::Relaxed);
    p
}

/// Incremented in every forked child: state tied to the parent's threads
/// (attachment slots) must not be used by the child.
pub(crate) fn fork_generation() -> u64 {
    install_atfork();
    FORK_GEN.load(Ordering::Relaxed)
}

/// This process's start time, in clock ticks after boot.
pub(crate) fn own_start_time() -> u64 {
    let t = START_TIME.load(Ordering::Relaxed);
    if t != 0 {
        return t;
    }
    let t = start_time(pid()).unwrap_or(0);
    START_TIME.store(t, Ordering::Relaxed);
    t
}

/// What `/proc/PID/stat` says about a process.
struct ProcStat {
    state: u8,
    start_time: u64,
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain anything: fields resume after the
    // last ')'.
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.bytes().next()?;
    // Fields 3.. start at `state`; start time is field 22, 19 further on.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

/// The start time of process `pid`, if it exists.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    proc_stat(pid).map(|s| s.start_time)
}

/// Whether the process `(pid, start_time)` may still be running.
/// `start_time == 0` means unknown: only the pid is checked.
pub(crate) fn is_alive(pid: u32, start_time: u64) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    if pid == self::pid() {
        return true;
    }
    let Some(p) = rustix::process::Pid::from_raw(pid as i32) else {
        return false;
    };
    if let Err(e) = rustix::process::test_kill_process(p) {
        if e == rustix::io::Errno::SRCH {
            return false;
        }
    }
    match proc_stat(pid) {
        // A zombie holds nothing any more; a different start time is another
        // process that reused the pid.
        Some(s) => {
            !(matches!(s.state, b'Z' | b'X') || (start_time != 0 && s.start_time != start_time))
        }
        // /proc hidden or unavailable: trust kill(2).
        None => !std::path::Path::new("/proc/self/stat").exists(),
    }
}

/// The caller's effective credentials, as the kernel's `ipcperms` uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
}

/// The caller's effective credentials (cached; see [`refresh_credentials`]).
pub(crate) fn credentials() -> Credentials {
    install_atfork();
    // SYNC(creds): Acquire, so that the cached ids and groups read below are
    // the ones `refresh_credentials` stored before its Release.
    if !CREDS_VALID.load(Ordering::Acquire) {
        refresh_credentials();
    }
    Credentials {
        uid: EUID.load(Ordering::Relaxed),
        gid: EGID.load(Ordering::Relaxed),
    }
}

/// Re-reads the process's credentials. Call after `setuid`, `setgid` or
/// `setgroups` (the preload library does so from its wrappers).
pub fn refresh_credentials() {
    EUID.store(rustix::process::geteuid().as_raw(), Ordering::Relaxed);
    EGID.store(rustix::process::getegid().as_raw(), Ordering::Relaxed);
    // Relaxed (all): published by SYNC(creds) below, which `credentials`
    // (called first by `in_group`) Acquires.
    match rustix::process::getgroups() {
        Ok(groups) if groups.len() <= GROUPS_CACHED => {
            for (cached, g) in GROUPS.iter().zip(&groups) {
                cached.store(g.as_raw(), Ordering::Relaxed);
            }
            N_GROUPS.store(groups.len() as u32, Ordering::Relaxed);
        }
        _ => N_GROUPS.store(u32::MAX, Ordering::Relaxed),
    }
    // SYNC(creds): Release publishes the ids and groups stored above.
    CREDS_VALID.store(true, Ordering::Release);
}

/// Whether the caller is in group `gid` (effective or supplementary).
pub(crate) fn in_group(gid: u32) -> bool {
    if credentials().gid == gid {
        return true;
    }
    // Relaxed: see `refresh_credentials`.
    let n = N_GROUPS.load(Ordering::Relaxed) as usize;
    if let Some(cached) = GROUPS.get(..n) {
        return cached.iter().any(|g| g.load(Ordering::Relaxed) == gid);
    }
    rustix::process::getgroups()
        .map(|g| g.iter().any(|x| x.as_raw() == gid))
        .unwrap_or(false)
}

/// Seconds since the epoch (vDSO clock; no system call).
pub(crate) fn now_secs() -> i64 {
    // The coarse clock (the tick's time, read from the vDSO without touching
    // the clock source): msg_stime/msg_rtime keep whole seconds, and every send
    // and receive stamps one, so the precise clock's cost showed in profiles.
    rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse).tv_sec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_has_a_start_time() {
        assert_eq!(pid(), std::process::id());
        assert!(own_start_time() > 0);
        assert!(is_alive(pid(), own_start_time()));
    }

    #[test]
    fn reaped_child_is_dead_and_wrong_start_time_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!is_alive(pid, 0));
        // pid 1 exists, but not with start time u64::MAX.
        assert!(!is_alive(1, u64::MAX));
    }
}
