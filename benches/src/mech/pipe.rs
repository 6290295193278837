//! A pipe per direction, messages framed by their (fixed) size: one `write`
//! and one `read` of exactly the message size per message.
#![allow(unsafe_code)]

use crate::mech::{bad_spec, retry};
use crate::mechanism::{Channel, ChannelConfig, End, Endpoint, Mechanism};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Two pipes (forward, back), inherited by the children. Records have the
/// channel's message size; writes up to `PIPE_BUF` (4096) are atomic, so
/// several producers and consumers may share a pipe only up to that size.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pipe;

pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is writable for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `pipe2` just returned these two descriptors, owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Takes inherited descriptor `fd` as a `File`.
///
/// # Safety
/// `fd` must be an open descriptor that nothing else in this process owns
/// (one inherited from the parent and named in the channel's description).
pub(crate) unsafe fn inherited(fd: RawFd) -> File {
    // SAFETY: the caller guarantees `fd` is open and owned by no one else.
    unsafe { File::from_raw_fd(fd) }
}

impl Mechanism for Pipe {
    fn name(&self) -> &'static str {
        "pipe"
    }

    fn describe(&self) -> &'static str {
        "a pipe per direction, fixed-size records: one write and one read per message"
    }

    fn shared_ends(&self, msg_size: usize) -> bool {
        msg_size <= libc::PIPE_BUF
    }

    fn create(&self, _cfg: &ChannelConfig) -> io::Result<Channel> {
        let (fr, fw) = pipe()?;
        let (br, bw) = pipe()?;
        let fds = [&fr, &fw, &br, &bw].map(|f| f.as_raw_fd());
        Ok(Channel {
            spec: format!("{},{},{},{}", fds[0], fds[1], fds[2], fds[3]),
            inherit: fds.to_vec(),
            note: None,
            keep: Box::new([fr, fw, br, bw]),
        })
    }

    fn open(&self, spec: &str, end: End, cfg: &ChannelConfig) -> io::Result<Box<dyn Endpoint>> {
        let fds: Vec<RawFd> = spec
            .split(',')
            .map(|s| s.parse().map_err(|_| bad_spec(spec)))
            .collect::<io::Result<_>>()?;
        let [fr, fw, br, bw] = fds[..] else {
            return Err(bad_spec(spec));
        };
        let (rx, tx) = match end {
            End::A => (br, fw),
            End::B => (fr, bw),
        };
        // SAFETY: the four descriptors were inherited from the parent (their
        // numbers are in `spec`) and nothing else in this child owns them.
        let (rx, tx) = unsafe { (inherited(rx), inherited(tx)) };
        Ok(Box::new(PipeEnd {
            rx,
            tx,
            buf: vec![0; cfg.msg_size],
        }))
    }
}

struct PipeEnd {
    rx: File,
    tx: File,
    buf: Vec<u8>,
}

impl Endpoint for PipeEnd {
    fn send(&mut self, _mtype: i64, msg: &[u8]) -> io::Result<()> {
        self.tx.write_all(msg)
    }

    fn recv(&mut self, _mtype: i64) -> io::Result<&[u8]> {
        let rx = &mut self.rx;
        let buf = &mut self.buf;
        retry(|| rx.read_exact(buf))?;
        Ok(&self.buf)
    }
}
