//! Who may do what to a queue: its owner and mode (`ipc_perm`), the
//! kernel's `ipcperms` check, and the mode its file gets. Shared by `queue`
//! (IPC_STAT, IPC_SET) and `namespace` (msgget, IPC_RMID), neither of which
//! needs the other for it.

/// Owner and mode of a queue (`ipc_perm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    /// The queue's key.
    pub key: i32,
    /// Owner's user id.
    pub uid: u32,
    /// Owner's group id.
    pub gid: u32,
    /// Creator's user id.
    pub cuid: u32,
    /// Creator's group id.
    pub cgid: u32,
    /// Low 9 bits: access mode.
    pub mode: u32,
    /// The sequence part of the id (`__seq`).
    pub seq: u32,
}

/// The part of [`Perms`] a permission check reads: owners and mode. What
/// every send and receive reads (the key and the id's sequence number, which
/// it does not need, cost a call through the namespace and a division).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Access {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) cuid: u32,
    pub(crate) cgid: u32,
    pub(crate) mode: u32,
}

/// Permission checks, as the kernel's `ipcperms`.
impl Access {
    /// Whether the caller may have the access `mode` asks for (`msgget`'s
    /// low 9 bits, or 0o4 / 0o2 for read / write).
    pub(crate) fn allows(&self, mode: u32) -> bool {
        let creds = crate::process::credentials();
        if creds.uid == 0 {
            return true;
        }
        let requested = (mode >> 6 | mode >> 3 | mode) & 7;
        let granted = if creds.uid == self.uid || creds.uid == self.cuid {
            self.mode >> 6
        } else if crate::process::in_group(self.gid) || crate::process::in_group(self.cgid) {
            self.mode >> 3
        } else {
            self.mode
        };
        requested & !granted & 7 == 0
    }

    /// Whether the caller is the owner, creator or root (IPC_SET, IPC_RMID).
    pub(crate) fn may_control(&self) -> bool {
        let uid = crate::process::credentials().uid;
        uid == 0 || uid == self.uid || uid == self.cuid
    }
}

/// A queue file's mode: every class the queue's mode grants any access gets
/// read and write (a receiver writes the mapping too); the owner always does.
pub(crate) fn file_mode(mode: u32) -> u32 {
    let mut m = 0o600;
    if mode & 0o060 != 0 {
        m |= 0o060;
    }
    if mode & 0o006 != 0 {
        m |= 0o006;
    }
    m
}
