//! The built-in contenders: shmq itself and the kernel's mechanisms.

mod bare_ring;
mod pipe;
mod posix_mq;
mod seqpacket;
mod shmq;
mod shmq_async;
mod shmq_mq;
mod sysv;

pub use self::bare_ring::BareRing;
pub use self::pipe::Pipe;
pub use self::posix_mq::PosixMq;
pub use self::seqpacket::SeqPacket;
pub use self::shmq::Shmq;
pub use self::shmq_async::ShmqAsync;
pub use self::shmq_mq::ShmqMq;
pub use self::sysv::{created_ids as sysv_created_ids, queue_exists as sysv_queue_exists, SysV};

use crate::mechanism::Mechanism;
use std::path::PathBuf;

/// Every built-in mechanism, shmq first, then the floor it is measured
/// against (the bare ring); shmq's queues go to namespace `dir` (`None`:
/// `$SHMQ_DIR`, else `/dev/shm/shmq`).
pub fn builtin(dir: Option<PathBuf>) -> Vec<Box<dyn Mechanism + Send>> {
    vec![
        Box::new(Shmq::new(dir.clone())),
        Box::new(BareRing),
        Box::new(ShmqAsync::new(Shmq::new(dir))),
        Box::new(SysV),
        Box::new(PosixMq),
        Box::new(ShmqMq),
        Box::new(Pipe),
        Box::new(SeqPacket),
    ]
}

/// Retries `f` while it fails with EINTR.
pub(crate) fn retry<T>(mut f: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// A parse error of a channel description.
pub(crate) fn bad_spec(spec: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("bad channel description {spec:?}"),
    )
}
