//! The few C library calls the command needs: user and group names (through
//! NSS, as `ipcs` looks them up), local time, and the default SIGPIPE action.
//! The only module of the binary with `unsafe` code.
#![allow(unsafe_code)]

use std::ffi::CStr;

/// Restores the default action of SIGPIPE (Rust ignores it), so that
/// `shmq ls | head -1` ends quietly, as a C tool does.
pub(crate) fn default_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL, before any thread
    // is started; no handler runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Calls a `get*_r` function with a growing buffer until it fits.
fn with_buffer(mut call: impl FnMut(&mut [u8]) -> i32) -> bool {
    let mut size = 1024;
    loop {
        let mut buf = vec![0u8; size];
        match call(&mut buf) {
            0 => return true,
            libc::ERANGE if size < 1 << 20 => size *= 4,
            _ => return false,
        }
    }
}

/// The name of user `uid`, if the user database has one.
pub(crate) fn user_name(uid: u32) -> Option<String> {
    let mut name = None;
    with_buffer(|buf| {
        // SAFETY: all-zero bytes are a valid `passwd` (null pointers, zero ids).
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: [1] every pointer refers to a live local of the right type;
        // [2] `buf` is writable for `buf.len()` bytes; [3] on success,
        // `pw_name` points into `buf` at a NUL-terminated string, read before
        // `buf` is dropped.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut pw,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == 0 && !result.is_null() && !pw.pw_name.is_null() {
            // SAFETY: see [3] above.
            name = Some(
                unsafe { CStr::from_ptr(pw.pw_name) }
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        rc
    });
    name
}

/// The name of group `gid`, if the group database has one.
pub(crate) fn group_name(gid: u32) -> Option<String> {
    let mut name = None;
    with_buffer(|buf| {
        // SAFETY: all-zero bytes are a valid `group` (null pointers, zero id).
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: as in `user_name`: [1] live locals; [2] `buf` writable for
        // its length; [3] `gr_name` points into `buf`, read before it drops.
        let rc = unsafe {
            libc::getgrgid_r(
                gid,
                &mut gr,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == 0 && !result.is_null() && !gr.gr_name.is_null() {
            // SAFETY: see [3] above.
            name = Some(
                unsafe { CStr::from_ptr(gr.gr_name) }
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        rc
    });
    name
}

/// Broken-down local time of `secs` since the epoch.
pub(crate) struct LocalTime {
    /// The year, e.g. 2026.
    pub(crate) year: i64,
    /// 0 = January.
    pub(crate) month: usize,
    /// 0 = Sunday.
    pub(crate) weekday: usize,
    pub(crate) day: i32,
    pub(crate) hour: i32,
    pub(crate) minute: i32,
    pub(crate) second: i32,
}

/// `secs` in the local time zone, as `ctime(3)` would show it.
pub(crate) fn local_time(secs: i64) -> Option<LocalTime> {
    let t: libc::time_t = secs;
    // SAFETY: all-zero bytes are a valid `tm` (a null `tm_zone`).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers refer to live locals; `localtime_r` is the
    // thread-safe form and keeps no pointer to them.
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    ok.then(|| LocalTime {
        year: tm.tm_year as i64 + 1900,
        month: tm.tm_mon.clamp(0, 11) as usize,
        weekday: tm.tm_wday.clamp(0, 6) as usize,
        day: tm.tm_mday,
        hour: tm.tm_hour,
        minute: tm.tm_min,
        second: tm.tm_sec,
    })
}

/// Asks the kernel to SIGKILL this process when its parent ends (a `shmq
/// soak` child must not outlive the run).
pub(crate) fn die_with_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
}

/// SIGKILLs process `pid` (one this process started).
pub(crate) fn kill_hard(pid: u32) {
    // SAFETY: kill(2) takes integers only; no memory is involved.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// SIGBUS handler: one line on stderr, then exit 1 at once (a handler that
/// returned would fault again on the same access).
extern "C" fn sigbus(_: libc::c_int) {
    const MSG: &[u8] = b"shmq: a file of the namespace was truncated while it was mapped (SIGBUS); run the command again\n";
    // SAFETY: write(2) and _exit(2) are async-signal-safe; `MSG` is static.
    unsafe {
        libc::write(2, MSG.as_ptr().cast(), MSG.len());
        libc::_exit(1);
    }
}

/// Makes a SIGBUS (an access past the end of a mapped file that another
/// process truncated) end the command with a message and exit code 1
/// instead of a crash.
pub(crate) fn exit_on_sigbus() {
    // SAFETY: installs a handler that calls only async-signal-safe
    // functions (see `sigbus`); `sa` is a live, zero-initialised local.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = sigbus as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
    }
}
