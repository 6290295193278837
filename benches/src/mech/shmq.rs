//! shmq: one queue in a namespace, both directions in it (type 1 forward,
//! type 2 back, as a System V client/server would).

use crate::cleanup;
use crate::mech::bad_spec;
use crate::mechanism::{Channel, ChannelConfig, End, Endpoint, Mechanism};
use shmq::{GetOptions, Namespace, Queue, QueueSet, RecvError, Selector, SendError};
use std::io;
use std::path::PathBuf;

/// shmq queues, in the namespace `dir` (default: `$SHMQ_DIR` or
/// `/dev/shm/shmq`). A channel that must hold more than the namespace's
/// `qbytes_max` allows gets a temporary namespace of its own (its limits set
/// in its `config` file), removed with the channel.
#[derive(Debug, Clone, Default)]
pub struct Shmq {
    dir: Option<PathBuf>,
}

impl Shmq {
    /// shmq in namespace `dir` (`None`: the default namespace).
    pub fn new(dir: Option<PathBuf>) -> Shmq {
        Shmq { dir }
    }

    /// Opens the queue of a channel [`Mechanism::create`] described as
    /// `spec` (`ID:NAMESPACE`).
    pub(crate) fn open_queue(spec: &str) -> io::Result<Queue> {
        let (id, dir) = spec.split_once(':').ok_or_else(|| bad_spec(spec))?;
        let id: i32 = id.parse().map_err(|_| bad_spec(spec))?;
        Ok(Namespace::open(dir)?.queue(id)?)
    }

    /// The namespace channels are created in.
    pub fn namespace(&self) -> io::Result<Namespace> {
        Ok(match &self.dir {
            Some(d) => Namespace::open(d)?,
            None => Namespace::open_default()?,
        })
    }
}

/// Bytes of `qbytes` needed to hold `n` messages of `size` bytes (Linux's
/// rule, which shmq follows: `cbytes + size <= qbytes` and `qnum + 1 <= qbytes`).
pub(crate) fn qbytes_for(n: usize, size: usize) -> u64 {
    ((n * size).max(n) + size.max(1) + 64) as u64
}

/// Creates a namespace of its own for a channel that needs `qbytes`.
fn temporary_namespace(qbytes: u64) -> io::Result<(Namespace, cleanup::Guard)> {
    let (dir, guard) = cleanup::temporary_namespace_dir(
        "",
        &format!("# shmq bench: a namespace for one deep queue\nmsgmni = 8\nmsgmnb = {qbytes}\nqbytes_max = {qbytes}\n"),
    )?;
    Ok((Namespace::open(&dir)?, guard))
}

impl Mechanism for Shmq {
    fn name(&self) -> &'static str {
        "shmq"
    }

    fn describe(&self) -> &'static str {
        "shmq: one queue, type 1 forward and type 2 back; msgsnd/msgrcv through the Rust API"
    }

    fn typed(&self) -> bool {
        true
    }

    fn shared_ends(&self, _msg_size: usize) -> bool {
        true
    }

    fn create(&self, cfg: &ChannelConfig) -> io::Result<Channel> {
        let ns = self.namespace()?;
        let need = cfg.capacity.map(|n| qbytes_for(n, cfg.msg_size));
        let mut note = None;
        let (ns, dir_guard) = match need {
            Some(q) if q > ns.limits().qbytes_max => {
                let (ns, g) = temporary_namespace(q)?;
                note = Some(format!(
                    "shmq: a temporary namespace {} with qbytes_max = {q} (the default namespace allows {})",
                    ns.dir().display(),
                    self.namespace()?.limits().qbytes_max
                ));
                (ns, Some(g))
            }
            _ => (ns, None),
        };
        let q = ns.get(
            shmq::IPC_PRIVATE,
            GetOptions::new().create(true).exclusive(true).mode(0o600),
        )?;
        let removal = q.clone();
        let q_guard = cleanup::register(move || {
            let _ = removal.remove();
        });
        if let Some(need) = need {
            let st = q.stat()?;
            if st.qbytes < need {
                q.set(QueueSet {
                    uid: st.perm.uid,
                    gid: st.perm.gid,
                    mode: st.perm.mode,
                    qbytes: need,
                })?;
            }
        }
        Ok(Channel {
            spec: format!("{}:{}", q.id(), ns.dir().display()),
            inherit: Vec::new(),
            note,
            // Field order is drop order: the queue before its namespace.
            keep: Box::new((q_guard, dir_guard, q)),
        })
    }

    fn open(&self, spec: &str, _end: End, cfg: &ChannelConfig) -> io::Result<Box<dyn Endpoint>> {
        Ok(Box::new(ShmqEnd {
            q: Shmq::open_queue(spec)?,
            buf: vec![0; cfg.msg_size.max(1)],
        }))
    }
}

/// An open shmq queue and the buffer receives copy into.
pub(crate) struct ShmqEnd {
    q: Queue,
    buf: Vec<u8>,
}

impl Endpoint for ShmqEnd {
    fn send(&mut self, mtype: i64, msg: &[u8]) -> io::Result<()> {
        Ok(self.q.send(mtype, msg)?)
    }

    fn recv(&mut self, mtype: i64) -> io::Result<&[u8]> {
        let sel = Selector::from_msgtyp(mtype, false);
        let m = self.q.recv(&mut self.buf, sel)?;
        Ok(&self.buf[..m.len])
    }

    fn try_send(&mut self, mtype: i64, msg: &[u8]) -> io::Result<bool> {
        match self.q.try_send(mtype, msg) {
            Ok(()) => Ok(true),
            Err(SendError::Again) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn try_recv(&mut self, mtype: i64) -> io::Result<Option<(i64, &[u8])>> {
        let sel = Selector::from_msgtyp(mtype, false);
        match self.q.try_recv(&mut self.buf, sel) {
            Ok(m) => Ok(Some((m.mtype, &self.buf[..m.len]))),
            Err(RecvError::NoMessage) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
