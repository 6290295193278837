//! The few process-level calls std lacks: signal masks and `sigwait` (for
//! the cleanup thread) and clearing close-on-exec between fork and exec.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

/// Signals that end a run early; the cleanup thread waits for them.
pub(crate) const STOP_SIGNALS: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

fn stop_set() -> libc::sigset_t {
    // SAFETY: all-zero bytes are a valid `sigset_t`, and `sigemptyset` /
    // `sigaddset` initialise it before use; the pointers are to a live local.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in STOP_SIGNALS {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocks [`STOP_SIGNALS`] in the calling thread (threads it starts later
/// inherit the mask; children started through `std::process::Command` do not,
/// std resets the mask before `exec`).
pub(crate) fn block_stop_signals() -> io::Result<()> {
    let set = stop_set();
    // SAFETY: `set` is an initialised signal set; a null old-set pointer is
    // allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Waits for one of [`STOP_SIGNALS`] (blocked beforehand) and returns it.
pub(crate) fn wait_stop_signal() -> i32 {
    let set = stop_set();
    loop {
        let mut sig = 0;
        // SAFETY: both pointers refer to live, initialised locals.
        let rc = unsafe { libc::sigwait(&set, &mut sig) };
        if rc == 0 {
            return sig;
        }
    }
}

/// Makes the child that `cmd` starts inherit `fds` (open, close-on-exec, in
/// this process), under the same numbers. Other children started meanwhile do
/// not inherit them: the flag is cleared in the child only.
pub(crate) fn inherit_fds(cmd: &mut std::process::Command, fds: Vec<RawFd>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec; it only
    // calls `fcntl` (async-signal-safe) on descriptors the parent holds open,
    // allocates nothing (`fds` was built before the fork) and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                clear_cloexec(fd)?;
            }
            Ok(())
        });
    }
}

/// Clears `FD_CLOEXEC` on `fd`. Async-signal-safe (one `fcntl`), for use
/// between `fork` and `exec`.
fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: `fcntl(F_SETFD)` on a descriptor number only changes its flags;
    // an invalid number is reported as EBADF.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends SIGKILL to process `pid` (a child this process started).
pub(crate) fn kill(pid: u32) {
    // SAFETY: `kill` takes plain integers; at worst it fails with ESRCH.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}
