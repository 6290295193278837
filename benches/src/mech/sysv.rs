//! The kernel's System V message queue: one queue, type 1 forward and type 2
//! back, `msgsnd` / `msgrcv` through libc.
#![allow(unsafe_code)]

use crate::cleanup;
use crate::mech::{bad_spec, retry};
use crate::mechanism::{Channel, ChannelConfig, End, Endpoint, Mechanism};
use std::io;

/// Kernel System V message queues (`msgget(IPC_PRIVATE)`, removed with
/// `IPC_RMID` when the channel is dropped).
#[derive(Debug, Clone, Copy, Default)]
pub struct SysV;

/// Every kernel queue this process created (removed or not).
static CREATED: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// The ids of every kernel queue this process created, for reports and for
/// tests that check none is left.
pub fn created_ids() -> Vec<i32> {
    CREATED.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Removes kernel queue `id` (IPC_RMID).
pub(crate) fn remove_queue(id: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID takes no buffer (null is allowed).
    if unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether kernel queue `id` still exists (IPC_STAT succeeds or is refused
/// for lack of permission).
pub fn queue_exists(id: i32) -> bool {
    // SAFETY: all-zero bytes are a valid `msqid_ds`.
    let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a live, writable `msqid_ds`.
    let rc = unsafe { libc::msgctl(id, libc::IPC_STAT, &mut ds) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EACCES)
}

const CAP_SYS_ADMIN: u32 = 21;

/// Whether this process has capability `cap` in its effective set.
fn has_cap(cap: u32) -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << cap) != 0)
}

/// Moves this (single-threaded) process into a new IPC namespace, raises
/// `msgmnb` there to `qbytes` and creates a queue, whose `msg_qbytes` is then
/// `qbytes`. The queue and the namespace end with the process.
fn private_queue(qbytes: u64) -> io::Result<i32> {
    // SAFETY: `unshare` takes a flag word; CLONE_NEWIPC changes only this
    // process's IPC namespace (the caller is a child that runs one thread).
    if unsafe { libc::unshare(libc::CLONE_NEWIPC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    std::fs::write("/proc/sys/kernel/msgmnb", qbytes.to_string())?;
    // SAFETY: plain integers in, a queue id (or -1) out.
    let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
    if id == -1 {
        return Err(io::Error::last_os_error());
    }
    raise_qbytes(id, qbytes)?;
    Ok(id)
}

/// Raises `msg_qbytes` of queue `id` to `qbytes` (IPC_SET; above `msgmnb`
/// only with CAP_SYS_RESOURCE).
fn raise_qbytes(id: i32, qbytes: u64) -> io::Result<()> {
    // SAFETY: all-zero bytes are a valid `msqid_ds`.
    let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a live, writable `msqid_ds`.
    if unsafe { libc::msgctl(id, libc::IPC_STAT, &mut ds) } == -1 {
        return Err(io::Error::last_os_error());
    }
    if ds.msg_qbytes as u64 >= qbytes {
        return Ok(());
    }
    ds.msg_qbytes = qbytes as _;
    // SAFETY: `ds` is the queue's own IPC_STAT result with one field changed.
    if unsafe { libc::msgctl(id, libc::IPC_SET, &mut ds) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Mechanism for SysV {
    fn name(&self) -> &'static str {
        "sysv"
    }

    fn describe(&self) -> &'static str {
        "kernel System V queue: one queue, type 1 forward and type 2 back; msgsnd/msgrcv"
    }

    fn typed(&self) -> bool {
        true
    }

    fn shared_ends(&self, _msg_size: usize) -> bool {
        true
    }

    fn create(&self, cfg: &ChannelConfig) -> io::Result<Channel> {
        // SAFETY: plain integers in, a queue id (or -1) out.
        let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
        if id == -1 {
            return Err(io::Error::last_os_error());
        }
        CREATED.lock().unwrap_or_else(|e| e.into_inner()).push(id);
        let guard = cleanup::register(move || {
            let _ = remove_queue(id);
        });
        let mut note = None;
        let mut spec = id.to_string();
        if let Some(n) = cfg.capacity {
            let need = crate::mech::shmq::qbytes_for(n, cfg.msg_size);
            match raise_qbytes(id, need) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EPERM) && has_cap(CAP_SYS_ADMIN) => {
                    // No CAP_SYS_RESOURCE: the child makes the queue in an IPC
                    // namespace of its own, whose msgmnb it may raise.
                    drop(guard);
                    spec = format!("private:{need}");
                    note = Some(format!(
                        "sysv: raising msg_qbytes needs CAP_SYS_RESOURCE, which this process lacks; the deep queue was made in a private IPC namespace (unshare CLONE_NEWIPC) with msgmnb = {need}"
                    ));
                    return Ok(Channel {
                        spec,
                        inherit: Vec::new(),
                        note,
                        keep: Box::new(()),
                    });
                }
                Err(e) => {
                    note = Some(format!(
                        "sysv: msg_qbytes could not be raised to {need} ({e}); deep queues are capped by msgmnb"
                    ));
                }
            }
        }
        Ok(Channel {
            spec,
            inherit: Vec::new(),
            note,
            keep: Box::new(guard),
        })
    }

    fn open(&self, spec: &str, _end: End, cfg: &ChannelConfig) -> io::Result<Box<dyn Endpoint>> {
        let (id, own) = match spec.strip_prefix("private:") {
            Some(q) => (private_queue(q.parse().map_err(|_| bad_spec(spec))?)?, true),
            None => (spec.parse().map_err(|_| bad_spec(spec))?, false),
        };
        let words = 1 + cfg.msg_size.max(1).div_ceil(8);
        Ok(Box::new(SysVEnd {
            id,
            own,
            sbuf: vec![0; words],
            rbuf: vec![0; words],
            cap: cfg.msg_size.max(1),
        }))
    }
}

/// An open kernel queue and its `struct msgbuf`s (`long mtype; char mtext[]`),
/// kept as `u64` words for the alignment of `mtype`.
struct SysVEnd {
    id: i32,
    /// Made by this endpoint (in its private IPC namespace): removed on drop.
    own: bool,
    sbuf: Vec<u64>,
    rbuf: Vec<u64>,
    cap: usize,
}

impl SysVEnd {
    fn snd(&mut self, mtype: i64, msg: &[u8], flags: i32) -> io::Result<()> {
        assert!(
            msg.len() <= self.cap,
            "message longer than the channel's size"
        );
        self.sbuf[0] = mtype as u64;
        // SAFETY: `sbuf` holds 1 + ceil(cap / 8) words, so `cap >= msg.len()`
        // bytes follow the first word; the regions do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                msg.as_ptr(),
                (self.sbuf.as_mut_ptr() as *mut u8).add(8),
                msg.len(),
            );
        }
        retry(|| {
            // SAFETY: `sbuf` is a `struct msgbuf` with `msg.len()` text bytes.
            let rc = unsafe { libc::msgsnd(self.id, self.sbuf.as_ptr().cast(), msg.len(), flags) };
            if rc == -1 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        })
    }

    fn rcv(&mut self, mtype: i64, flags: i32) -> io::Result<(i64, usize)> {
        let n = retry(|| {
            // SAFETY: `rbuf` is writable for 8 + cap bytes: a `struct msgbuf`
            // with `cap` text bytes.
            let rc = unsafe {
                libc::msgrcv(
                    self.id,
                    self.rbuf.as_mut_ptr().cast(),
                    self.cap,
                    mtype as _,
                    flags,
                )
            };
            if rc == -1 {
                Err(io::Error::last_os_error())
            } else {
                Ok(rc as usize)
            }
        })?;
        Ok((self.rbuf[0] as i64, n))
    }

    fn text(&self, n: usize) -> &[u8] {
        // SAFETY: `rbuf` holds at least 8 + cap >= 8 + n initialised bytes
        // (u64 words viewed as bytes); the slice borrows `self`.
        unsafe { std::slice::from_raw_parts((self.rbuf.as_ptr() as *const u8).add(8), n) }
    }
}

impl Drop for SysVEnd {
    fn drop(&mut self) {
        if self.own {
            let _ = remove_queue(self.id);
        }
    }
}

impl Endpoint for SysVEnd {
    fn send(&mut self, mtype: i64, msg: &[u8]) -> io::Result<()> {
        self.snd(mtype, msg, 0)
    }

    fn recv(&mut self, mtype: i64) -> io::Result<&[u8]> {
        let (_, n) = self.rcv(mtype, 0)?;
        Ok(self.text(n))
    }

    fn try_send(&mut self, mtype: i64, msg: &[u8]) -> io::Result<bool> {
        match self.snd(mtype, msg, libc::IPC_NOWAIT) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn try_recv(&mut self, mtype: i64) -> io::Result<Option<(i64, &[u8])>> {
        match self.rcv(mtype, libc::IPC_NOWAIT) {
            Ok((t, n)) => Ok(Some((t, self.text(n)))),
            Err(e) if e.raw_os_error() == Some(libc::ENOMSG) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
