//! The kernel's POSIX message queues: one queue per direction,
//! `mq_send` / `mq_receive` through libc, at the system's default depth.
#![allow(unsafe_code)]

use crate::cleanup;
use crate::mech::{bad_spec, retry};
use crate::mechanism::{Channel, ChannelConfig, End, Endpoint, Mechanism};
use std::ffi::CString;
use std::io;

/// Kernel POSIX message queues (`mq_open`), unlinked when the channel is
/// dropped. Their depth is `/proc/sys/fs/mqueue/msg_default` (10 unless
/// changed) unless a capacity is asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct PosixMq;

fn default_depth() -> usize {
    std::fs::read_to_string("/proc/sys/fs/mqueue/msg_default")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(10)
}

fn open_queue(name: &CString, create: Option<(usize, usize)>) -> io::Result<libc::mqd_t> {
    let mqd = match create {
        Some((depth, size)) => {
            // SAFETY: all-zero bytes are a valid `mq_attr`.
            let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
            attr.mq_maxmsg = depth as _;
            attr.mq_msgsize = size as _;
            // SAFETY: `name` is NUL-terminated; `attr` is a live `mq_attr`;
            // the variadic mode and attribute arguments match O_CREAT.
            unsafe {
                libc::mq_open(
                    name.as_ptr(),
                    libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                    0o600 as libc::mode_t,
                    &mut attr as *mut libc::mq_attr,
                )
            }
        }
        // SAFETY: `name` is NUL-terminated; no O_CREAT, no variadic arguments.
        None => unsafe { libc::mq_open(name.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) },
    };
    if mqd == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(mqd)
}

impl Mechanism for PosixMq {
    fn name(&self) -> &'static str {
        "posix-mq"
    }

    fn describe(&self) -> &'static str {
        "kernel POSIX queues: one per direction, default depth (msg_default); mq_send/mq_receive"
    }

    fn shared_ends(&self, _msg_size: usize) -> bool {
        true
    }

    fn priorities(&self) -> bool {
        true
    }

    fn create(&self, cfg: &ChannelConfig) -> io::Result<Channel> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let depth = cfg.capacity.unwrap_or_else(default_depth).max(1);
        let mut guards = Vec::new();
        let mut names = Vec::new();
        for dir in ["f", "b"] {
            let name = format!("/shmq-bench-{}-{n}-{dir}", std::process::id());
            let c = CString::new(name.clone()).map_err(|_| bad_spec(&name))?;
            let mqd = open_queue(&c, Some((depth, cfg.msg_size.max(1))))?;
            // SAFETY: `mqd` was just opened; the name stays until unlinked.
            unsafe { libc::mq_close(mqd) };
            guards.push(cleanup::register(move || {
                // SAFETY: `c` is NUL-terminated.
                unsafe { libc::mq_unlink(c.as_ptr()) };
            }));
            names.push(name);
        }
        Ok(Channel {
            spec: names.join(","),
            inherit: Vec::new(),
            note: None,
            keep: Box::new(guards),
        })
    }

    fn open(&self, spec: &str, end: End, cfg: &ChannelConfig) -> io::Result<Box<dyn Endpoint>> {
        let (f, b) = spec.split_once(',').ok_or_else(|| bad_spec(spec))?;
        let f = open_queue(&CString::new(f).map_err(|_| bad_spec(spec))?, None)?;
        let b = open_queue(&CString::new(b).map_err(|_| bad_spec(spec))?, None)?;
        let (tx, rx) = match end {
            End::A => (f, b),
            End::B => (b, f),
        };
        // mq_receive wants a buffer of at least the queue's mq_msgsize.
        Ok(Box::new(MqEnd {
            tx,
            rx,
            buf: vec![0; cfg.msg_size.max(1)],
        }))
    }
}

struct MqEnd {
    tx: libc::mqd_t,
    rx: libc::mqd_t,
    buf: Vec<u8>,
}

impl Endpoint for MqEnd {
    fn send(&mut self, _mtype: i64, msg: &[u8]) -> io::Result<()> {
        retry(|| {
            // SAFETY: `msg` is readable for its length; `tx` is an open queue.
            let rc = unsafe { libc::mq_send(self.tx, msg.as_ptr().cast(), msg.len(), 0) };
            if rc == -1 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        })
    }

    fn recv(&mut self, _mtype: i64) -> io::Result<&[u8]> {
        let n = retry(|| {
            // SAFETY: `buf` is writable for its length (>= mq_msgsize); a
            // null priority pointer is allowed.
            let rc = unsafe {
                libc::mq_receive(
                    self.rx,
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    std::ptr::null_mut(),
                )
            };
            if rc == -1 {
                Err(io::Error::last_os_error())
            } else {
                Ok(rc as usize)
            }
        })?;
        Ok(&self.buf[..n])
    }

    fn send_to_self(&mut self, prio: u32, msg: &[u8]) -> io::Result<()> {
        retry(|| {
            // SAFETY: `msg` is readable for its length; `rx` is an open
            // queue (O_RDWR).
            let rc = unsafe { libc::mq_send(self.rx, msg.as_ptr().cast(), msg.len(), prio) };
            if rc == -1 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        })
    }

    fn recv_prio(&mut self) -> io::Result<u32> {
        retry(|| {
            let mut prio = 0;
            // SAFETY: `buf` is writable for its length (>= mq_msgsize);
            // `prio` is a live `unsigned int`.
            let rc = unsafe {
                libc::mq_receive(
                    self.rx,
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    &mut prio,
                )
            };
            if rc == -1 {
                Err(io::Error::last_os_error())
            } else {
                Ok(prio)
            }
        })
    }
}

impl Drop for MqEnd {
    fn drop(&mut self) {
        // SAFETY: both descriptors were opened by this endpoint.
        unsafe {
            libc::mq_close(self.tx);
            libc::mq_close(self.rx);
        }
    }
}
