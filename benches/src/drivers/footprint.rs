//! Footprint: what one queue costs in shared memory (its file's length and
//! the blocks tmpfs actually allocated: fresh, then after the queue was
//! filled to `qbytes` with small and with large messages and drained), and the
//! resident memory of a process attached to it — beside the same program
//! attached to a kernel queue, whose memory is the kernel's and not counted
//! in any process.

use super::ANSWER_TIMEOUT;
use crate::fields::Fields;
use crate::mech::{Shmq, SysV};
use crate::mechanism::{ChannelConfig, End, Mechanism};
use crate::session::{ChildSpec, Session, Spawner};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Memory figures of one process, bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rss {
    /// Resident set before the process opened the queue.
    pub before: u64,
    /// Resident set after it filled and drained the queue.
    pub after: u64,
    /// Of which shared memory (`RssShmem`: the queue's pages it touched).
    pub shmem: u64,
}

/// The footprint of one shmq queue at the namespace's limits.
#[derive(Clone, Debug)]
pub struct Footprint {
    /// The namespace's limits.
    pub limits: shmq::Limits,
    /// Length of the queue file (sparse).
    pub file_size: u64,
    /// Bytes allocated right after `msgget`.
    pub allocated_fresh: u64,
    /// Bytes allocated after filling to `qbytes` with 64-byte messages and
    /// draining.
    pub allocated_small: u64,
    /// Messages of 64 bytes that fit.
    pub small_messages: u64,
    /// Bytes allocated after also filling with 8192-byte messages and
    /// draining.
    pub allocated_large: u64,
    /// Messages of 8192 bytes that fit.
    pub large_messages: u64,
    /// A process attached to the shmq queue.
    pub shmq_rss: Rss,
    /// The same program attached to a kernel System V queue, same traffic.
    pub sysv_rss: Rss,
}

fn allocated(path: &PathBuf) -> io::Result<(u64, u64)> {
    let m = std::fs::metadata(path)?;
    Ok((m.len(), m.blocks() * 512))
}

fn rss(f: &Fields, before: u64) -> io::Result<Rss> {
    Ok(Rss {
        before,
        after: f.u64("now")?,
        shmem: f.u64("shmem")?,
    })
}

fn churn(s: &mut Session, size: usize) -> io::Result<u64> {
    s.ask(0, &format!("churn size={size}"))?.u64("n")
}

/// Measures the footprint of a queue in `shmq`'s namespace.
pub fn run(spawner: &Spawner, shmq: &Shmq) -> io::Result<Footprint> {
    let cfg = ChannelConfig {
        msg_size: 8192,
        capacity: None,
        a_ends: 1,
        b_ends: 0,
    };
    let kids = [ChildSpec::new(End::A)];
    let limits = shmq.namespace()?.limits();
    let mut s = Session::start(spawner, shmq, &cfg, &kids, ANSWER_TIMEOUT)?;
    let (id, ns_dir) = s
        .spec()
        .split_once(':')
        .map(|(a, b)| (a.to_string(), PathBuf::from(b)))
        .ok_or_else(|| io::Error::other("bad shmq channel"))?;
    let file = ns_dir.join(format!("msq.{id}"));
    let (file_size, allocated_fresh) = allocated(&file)?;
    let before = s.ask(0, "rss")?.u64("before")?;
    let small_messages = churn(&mut s, 64)?;
    let (_, allocated_small) = allocated(&file)?;
    let large_messages = churn(&mut s, 8192)?;
    let (_, allocated_large) = allocated(&file)?;
    let shmq_rss = rss(&s.ask(0, "rss")?, before)?;
    drop(s);

    let mut k = Session::start(
        spawner,
        &SysV as &dyn Mechanism,
        &cfg,
        &kids,
        ANSWER_TIMEOUT,
    )?;
    let before = k.ask(0, "rss")?.u64("before")?;
    churn(&mut k, 64)?;
    churn(&mut k, 8192)?;
    let sysv_rss = rss(&k.ask(0, "rss")?, before)?;
    Ok(Footprint {
        limits,
        file_size,
        allocated_fresh,
        allocated_small,
        small_messages,
        allocated_large,
        large_messages,
        shmq_rss,
        sysv_rss,
    })
}
