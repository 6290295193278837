//! `msgctl`'s commands on the engine: `struct msqid_ds` and `struct msginfo`
//! built from its figures (glibc's own structs, from the `libc` crate), and
//! `IPC_SET` / `IPC_RMID` with the kernel's errno precedence.

use crate::{Errno, MSG_STAT_ANY};
use libc::{c_int, msginfo, msqid_ds};
use shmq::{CtlError, Namespace, QueueSet, QueueStat};

/// Linux's constants for the `IPC_INFO` fields it reports but does not use
/// (`include/uapi/linux/msg.h`): compile-time values, the same whatever the
/// IPC namespace's `kernel.msg*` settings.
const MSGSSZ: c_int = 16;
const MSGSEG: u16 = 0xffff;
/// `MSGMNI * MSGMNB / 1024` with Linux's default `MSGMNI` (32000) and
/// `MSGMNB` (16384).
const MSGPOOL: c_int = 32000 * 16384 / 1024;
/// `MSGMAP` and `MSGTQL`: both Linux's default `MSGMNB`.
const MSGMAP: c_int = 16384;
const MSGTQL: c_int = 16384;

fn errno(e: CtlError) -> Errno {
    e.errno()
}

/// For `IPC_SET` and `IPC_RMID`: a queue file the caller cannot even open
/// belongs to a queue the caller neither owns nor created (its creator and a
/// root-set owner always can), so the kernel's answer is `EPERM`.
fn control_errno(e: CtlError) -> Errno {
    match e {
        CtlError::Access => libc::EPERM,
        e => e.errno(),
    }
}

/// `IPC_STAT`, `MSG_STAT` (`msqid` is a table index) and `MSG_STAT_ANY` (the
/// same without the read-permission check): the buffer's contents and the
/// call's return value (0 for `IPC_STAT`, the queue's id for the others).
pub(crate) fn stat(ns: &Namespace, msqid: c_int, cmd: c_int) -> Result<(msqid_ds, c_int), Errno> {
    if cmd == libc::IPC_STAT {
        let q = ns.queue(msqid).map_err(errno)?;
        return Ok((to_msqid_ds(&q.stat().map_err(errno)?), 0));
    }
    let q = ns.queue_at(msqid as usize).map_err(errno)?;
    let s = if cmd == MSG_STAT_ANY {
        q.stat_any()
    } else {
        q.stat().map_err(errno)?
    };
    Ok((to_msqid_ds(&s), q.id()))
}

/// glibc's `struct msqid_ds` for `s`, reserved fields zero (as the kernel).
pub(crate) fn to_msqid_ds(s: &QueueStat) -> msqid_ds {
    // SAFETY: msqid_ds holds only integers, for which all-zero is valid.
    let mut ds: msqid_ds = unsafe { std::mem::zeroed() };
    ds.msg_perm.__key = s.perm.key;
    ds.msg_perm.uid = s.perm.uid;
    ds.msg_perm.gid = s.perm.gid;
    ds.msg_perm.cuid = s.perm.cuid;
    ds.msg_perm.cgid = s.perm.cgid;
    ds.msg_perm.mode = s.perm.mode as _;
    // The kernel's `seq` is 16 bits wide in the user structure too.
    ds.msg_perm.__seq = s.perm.seq as _;
    ds.msg_stime = s.stime as _;
    ds.msg_rtime = s.rtime as _;
    ds.msg_ctime = s.ctime as _;
    ds.__msg_cbytes = s.cbytes as _;
    ds.msg_qnum = s.qnum as _;
    ds.msg_qbytes = s.qbytes as _;
    ds.msg_lspid = s.lspid as _;
    ds.msg_lrpid = s.lrpid as _;
    ds
}

/// `IPC_SET` from the caller's `msqid_ds`: owner, group, mode bits, qbytes.
pub(crate) fn set(ns: &Namespace, msqid: c_int, ds: &msqid_ds) -> Result<(), Errno> {
    let q = ns.queue(msqid).map_err(control_errno)?;
    let want = QueueSet {
        uid: ds.msg_perm.uid,
        gid: ds.msg_perm.gid,
        mode: ds.msg_perm.mode as u32 & 0o777,
        qbytes: ds.msg_qbytes, // msglen_t: u64 on 64-bit Linux
    };
    // Linux lets only CAP_SYS_RESOURCE raise qbytes above msgmnb (the
    // engine asks for uid 0, which may lack it, e.g. in a container). Both
    // refusals are EPERM, so checking this before the owner test changes
    // no answer.
    if want.qbytes > ns.limits().msgmnb && !may_raise_qbytes() {
        return Err(libc::EPERM);
    }
    if want.uid == u32::MAX || want.gid == u32::MAX {
        // (uid_t)-1 names nobody: Linux answers EINVAL, but only after its
        // permission check (EPERM), which comes first.
        let p = q.perms();
        // SAFETY: geteuid(2) cannot fail and touches no memory.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 && euid != p.uid && euid != p.cuid {
            return Err(libc::EPERM);
        }
        return Err(libc::EINVAL);
    }
    q.set(want).map_err(errno)
}

/// Whether the calling thread has `CAP_SYS_RESOURCE` in its effective set.
fn may_raise_qbytes() -> bool {
    rustix::thread::capabilities(None).is_ok_and(|c| {
        c.effective
            .contains(rustix::thread::CapabilitySet::SYS_RESOURCE)
    })
}

/// `IPC_RMID`.
pub(crate) fn remove(ns: &Namespace, msqid: c_int) -> Result<(), Errno> {
    ns.queue(msqid)
        .map_err(control_errno)?
        .remove()
        .map_err(errno)
}

/// `IPC_INFO` (`msg_info == false`: the limits) or `MSG_INFO` (`true`: queues
/// in use in `msgpool`, messages in `msgmap`, bytes in `msgtql`, as Linux),
/// and the call's return value: the highest table index in use, or 0.
///
/// `msgmax`, `msgmnb` and `msgmni` are what the namespace enforces. The
/// fields Linux fills with compile-time constants (`msgpool`, `msgmap`,
/// `msgtql` of `IPC_INFO`, `msgssz`, `msgseg`) get those constants, as Linux
/// whatever its `kernel.msg*` settings, except `msgtql` when the namespace
/// was given one (`SHMQ_MSGTQL`, reported only, as Linux's).
pub(crate) fn info(ns: &Namespace, msg_info: bool) -> (msginfo, c_int) {
    let i = ns.info();
    let l = i.limits;
    let int = |v: u64| v.min(c_int::MAX as u64) as c_int;
    let info = msginfo {
        msgpool: if msg_info {
            int(i.queues as u64)
        } else {
            MSGPOOL
        },
        msgmap: if msg_info { int(i.messages) } else { MSGMAP },
        msgmax: int(l.msgmax),
        msgmnb: int(l.msgmnb),
        msgmni: int(l.msgmni as u64),
        msgssz: MSGSSZ,
        msgtql: if msg_info {
            int(i.bytes)
        } else if l.msgtql != 0 {
            int(l.msgtql)
        } else {
            MSGTQL
        },
        msgseg: MSGSEG,
    };
    (info, i.highest_index.max(0))
}
