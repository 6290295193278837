//! shmq's POSIX queues: one queue per direction, as the kernel's POSIX
//! queues are measured (`posix_mq`), `send` / `recv` of
//! [`shmq::MessageQueue`] at the kernel's default depth (`msg_default`).

use crate::cleanup;
use crate::mech::bad_spec;
use crate::mechanism::{Channel, ChannelConfig, End, Endpoint, Mechanism};
use shmq::{MessageQueue, MqOpenOptions, Namespace};
use std::io;

/// shmq POSIX queues in a temporary namespace of their own (its `config`
/// lets the queue be as deep and wide as asked, whatever
/// `/proc/sys/fs/mqueue/msg_max` says), removed with the channel.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShmqMq;

fn default_depth() -> usize {
    std::fs::read_to_string("/proc/sys/fs/mqueue/msg_default")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(10)
}

impl Mechanism for ShmqMq {
    fn name(&self) -> &'static str {
        "shmq-mq"
    }

    fn describe(&self) -> &'static str {
        "shmq POSIX queues: one per direction, default depth (msg_default); MessageQueue send/recv"
    }

    fn shared_ends(&self, _msg_size: usize) -> bool {
        true
    }

    fn priorities(&self) -> bool {
        true
    }

    fn create(&self, cfg: &ChannelConfig) -> io::Result<Channel> {
        let depth = cfg.capacity.unwrap_or_else(default_depth).max(1);
        let size = cfg.msg_size.max(1);
        let (dir, guard) = cleanup::temporary_namespace_dir(
            "mq",
            &format!(
                "# shmq bench: POSIX queues of {depth} x {size} bytes\nmsgmni = 8\n\
                 mq_msg_max = {depth}\nmq_msgsize_max = {size}\n"
            ),
        )?;
        let ns = Namespace::open(&dir)?;
        for name in ["/f", "/b"] {
            MqOpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .exclusive(true)
                .mode(0o600)
                .attributes(depth as i64, size as i64)
                .open(&ns, name)
                .map_err(io::Error::from)?;
        }
        Ok(Channel {
            spec: dir.display().to_string(),
            inherit: Vec::new(),
            note: None,
            keep: Box::new(guard),
        })
    }

    fn open(&self, spec: &str, end: End, cfg: &ChannelConfig) -> io::Result<Box<dyn Endpoint>> {
        if spec.is_empty() {
            return Err(bad_spec(spec));
        }
        let ns = Namespace::open(spec)?;
        let open = |name: &str| {
            MqOpenOptions::new()
                .read(true)
                .write(true)
                .open(&ns, name)
                .map_err(io::Error::from)
        };
        let (f, b) = (open("/f")?, open("/b")?);
        let (tx, rx) = match end {
            End::A => (f, b),
            End::B => (b, f),
        };
        Ok(Box::new(MqEnd {
            tx,
            rx,
            buf: vec![0; cfg.msg_size.max(1)],
        }))
    }
}

struct MqEnd {
    tx: MessageQueue,
    rx: MessageQueue,
    buf: Vec<u8>,
}

impl Endpoint for MqEnd {
    fn send(&mut self, _mtype: i64, msg: &[u8]) -> io::Result<()> {
        Ok(self.tx.send(msg, 0)?)
    }

    fn recv(&mut self, _mtype: i64) -> io::Result<&[u8]> {
        let (n, _) = self.rx.recv(&mut self.buf)?;
        Ok(&self.buf[..n])
    }

    fn send_to_self(&mut self, prio: u32, msg: &[u8]) -> io::Result<()> {
        Ok(self.rx.send(msg, prio)?)
    }

    fn recv_prio(&mut self) -> io::Result<u32> {
        Ok(self.rx.recv(&mut self.buf)?.1)
    }
}
