//! A UNIX `SOCK_SEQPACKET` socketpair: one `send` and one `recv` per
//! message, boundaries kept by the kernel.
#![allow(unsafe_code)]

use crate::mech::{bad_spec, retry};
use crate::mechanism::{Channel, ChannelConfig, End, Endpoint, Mechanism};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

/// A `socketpair(AF_UNIX, SOCK_SEQPACKET)`, end A holding one socket and end
/// B the other, at the default socket buffer sizes.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeqPacket;

impl Mechanism for SeqPacket {
    fn name(&self) -> &'static str {
        "seqpacket"
    }

    fn describe(&self) -> &'static str {
        "UNIX SOCK_SEQPACKET socketpair, default buffers: send/recv, one packet per message"
    }

    fn shared_ends(&self, _msg_size: usize) -> bool {
        true
    }

    fn create(&self, _cfg: &ChannelConfig) -> io::Result<Channel> {
        let mut fds = [0; 2];
        // SAFETY: `fds` is writable for two descriptors.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        if rc == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `socketpair` just returned these, owned by no one else.
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Channel {
            spec: format!("{},{}", a.as_raw_fd(), b.as_raw_fd()),
            inherit: vec![a.as_raw_fd(), b.as_raw_fd()],
            note: None,
            keep: Box::new([a, b]),
        })
    }

    fn open(&self, spec: &str, end: End, cfg: &ChannelConfig) -> io::Result<Box<dyn Endpoint>> {
        let (a, b) = spec.split_once(',').ok_or_else(|| bad_spec(spec))?;
        let a: RawFd = a.parse().map_err(|_| bad_spec(spec))?;
        let b: RawFd = b.parse().map_err(|_| bad_spec(spec))?;
        let fd = match end {
            End::A => a,
            End::B => b,
        };
        // SAFETY: inherited from the parent (named in `spec`), owned by
        // nothing else in this child.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Box::new(SeqEnd {
            fd: fd.into_raw_fd(),
            buf: vec![0; cfg.msg_size.max(1)],
        }))
    }
}

struct SeqEnd {
    fd: RawFd,
    buf: Vec<u8>,
}

impl Endpoint for SeqEnd {
    fn send(&mut self, _mtype: i64, msg: &[u8]) -> io::Result<()> {
        retry(|| {
            // SAFETY: `msg` is readable for its length; `fd` is our socket.
            let rc =
                unsafe { libc::send(self.fd, msg.as_ptr().cast(), msg.len(), libc::MSG_NOSIGNAL) };
            if rc == -1 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        })
    }

    fn recv(&mut self, _mtype: i64) -> io::Result<&[u8]> {
        let n = retry(|| {
            // SAFETY: `buf` is writable for its length; `fd` is our socket.
            let rc =
                unsafe { libc::recv(self.fd, self.buf.as_mut_ptr().cast(), self.buf.len(), 0) };
            if rc == -1 {
                Err(io::Error::last_os_error())
            } else if rc == 0 {
                Err(io::ErrorKind::UnexpectedEof.into())
            } else {
                Ok(rc as usize)
            }
        })?;
        Ok(&self.buf[..n])
    }
}

impl Drop for SeqEnd {
    fn drop(&mut self) {
        // SAFETY: the endpoint owns `fd` (taken over in `open`).
        unsafe { libc::close(self.fd) };
    }
}
