//! One error type per operation, each variant named after the errno the
//! kernel returns for the same failure, and [`OpenError`] for a namespace
//! that cannot be opened.
//!
//! Only what a Rust caller can meet is here: a bad pointer (`EFAULT`) is the
//! C layer's own error, and so are C's argument checks.
//!
//! ```
//! use shmq::{RecvError, SendError};
//! assert_eq!(SendError::Again.errno(), libc::EAGAIN);
//! assert_eq!(RecvError::NoMessage.to_string(), "no message of the wanted type (ENOMSG)");
//! let io: std::io::Error = RecvError::TooBig.into();
//! assert_eq!(io.raw_os_error(), Some(libc::E2BIG));
//! ```

use std::fmt;
use std::path::PathBuf;

macro_rules! errno_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $errno:ident, $text:literal;)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// The errno a C caller gets for this error.
            pub fn errno(self) -> i32 {
                match self {
                    $($name::$variant => libc::$errno,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$variant => f.write_str(concat!($text, " (", stringify!($errno), ")")),)*
                }
            }
        }

        impl std::error::Error for $name {}

        impl From<$name> for std::io::Error {
            fn from(e: $name) -> std::io::Error {
                std::io::Error::from_raw_os_error(e.errno())
            }
        }
    };
}

errno_enum! {
    /// Why `msgget` ([`crate::Namespace::get`]) failed.
    GetError {
        /// The key has no queue and `IPC_CREAT` was not given.
        NotFound = ENOENT, "no queue for this key";
        /// `IPC_CREAT | IPC_EXCL` and the key has a queue.
        Exists = EEXIST, "a queue exists for this key";
        /// The queue's mode does not grant the requested access.
        Access = EACCES, "permission denied";
        /// `msgmni` queues exist already.
        NoSpace = ENOSPC, "too many queues (msgmni)";
        /// The namespace's files could not be created or are unusable.
        NoMemory = ENOMEM, "cannot create the queue's shared memory";
        /// Invalid arguments.
        Invalid = EINVAL, "invalid argument";
    }
}

errno_enum! {
    /// Why `msgsnd` ([`crate::Queue::send`] and its `try_` / timed forms)
    /// failed.
    SendError {
        /// `mtype < 1`, `msgsz > msgmax`, or the id names no queue.
        Invalid = EINVAL, "invalid argument";
        /// No write permission.
        Access = EACCES, "permission denied";
        /// The queue is full ([`crate::Queue::try_send`]).
        Again = EAGAIN, "queue full";
        /// The queue was removed while the caller waited.
        Removed = EIDRM, "queue removed";
        /// A signal handler ran while the caller waited.
        Interrupted = EINTR, "interrupted by a signal";
        /// The timeout of a timed send passed.
        TimedOut = ETIMEDOUT, "timed out";
        /// The queue's shared memory is exhausted or inconsistent.
        NoMemory = ENOMEM, "out of queue memory";
    }
}

errno_enum! {
    /// Why `msgrcv` ([`crate::Queue::recv`], the loans, `MSG_COPY`)
    /// failed.
    RecvError {
        /// Invalid arguments, or the id names no queue.
        Invalid = EINVAL, "invalid argument";
        /// No read permission.
        Access = EACCES, "permission denied";
        /// The message is longer than the buffer and truncation was not asked
        /// for ([`crate::RecvOptions::truncate`]); it stays queued.
        TooBig = E2BIG, "message too long for the buffer";
        /// No matching message, and the call does not wait (`try_`).
        NoMessage = ENOMSG, "no message of the wanted type";
        /// The queue was removed while the caller waited.
        Removed = EIDRM, "queue removed";
        /// A signal handler ran while the caller waited.
        Interrupted = EINTR, "interrupted by a signal";
        /// The timeout of a timed receive passed.
        TimedOut = ETIMEDOUT, "timed out";
        /// The queue's shared memory is inconsistent.
        NoMemory = ENOMEM, "queue memory inconsistent";
    }
}

errno_enum! {
    /// Why `msgctl` ([`crate::Queue::stat`], [`crate::Queue::set`],
    /// [`crate::Queue::remove`], [`crate::Namespace::queue`]) failed.
    CtlError {
        /// Bad id, command or argument.
        Invalid = EINVAL, "invalid argument";
        /// The caller may not read the queue (IPC_STAT).
        Access = EACCES, "permission denied";
        /// The caller is not the owner, creator or root.
        Permission = EPERM, "operation not permitted";
        /// The id names a queue that was removed.
        Removed = EIDRM, "queue removed";
    }
}

/// A namespace could not be opened or created ([`crate::Namespace::open`]),
/// or a queue's file cannot be used ([`crate::Namespace::file_problem`]):
/// the file or directory at fault, what is wrong with it, and details for a
/// human. `Display` prints `path: detail`.
///
/// ```
/// # let dir = std::path::Path::new("/dev/shm").join(format!("shmq-doc-open-err-{}", std::process::id()));
/// # struct Cleanup(std::path::PathBuf);
/// # impl Drop for Cleanup { fn drop(&mut self) { let _ = std::fs::remove_file(&self.0); } }
/// # let _cleanup = Cleanup(dir.clone());
/// use shmq::{Namespace, OpenErrorKind};
/// std::fs::write(&dir, b"not a directory")?;
/// let e = Namespace::open(&dir).unwrap_err();
/// assert_eq!(e.kind, OpenErrorKind::Corrupt);
/// assert_eq!(e.path, dir);
/// assert_eq!(e.errno(), libc::ENOMEM); // what msgget(2) returns for it
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenError {
    /// The file or directory at fault.
    pub path: PathBuf,
    /// What is wrong.
    pub kind: OpenErrorKind,
    /// Details for a human.
    pub detail: String,
}

/// What is wrong with a namespace that cannot be opened ([`OpenError`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpenErrorKind {
    /// The namespace directory or a file in it is not usable by this user.
    Access,
    /// A file in the namespace is corrupted, truncated, missing or not
    /// shmq's, or the namespace path is not a directory.
    Corrupt,
    /// Another I/O error.
    Io,
    /// Bad limits in the environment or the config file.
    Invalid,
}

impl OpenError {
    pub(crate) fn new(
        path: impl Into<PathBuf>,
        kind: OpenErrorKind,
        detail: impl Into<String>,
    ) -> OpenError {
        OpenError {
            path: path.into(),
            kind,
            detail: detail.into(),
        }
    }

    /// The errno a C caller gets from `msgget` when the namespace cannot be
    /// opened: `EACCES` when access is refused, `ENOMEM` otherwise (no
    /// queue's memory can be had). Other calls answer `EINVAL`: without a
    /// namespace, no id names a queue.
    pub fn errno(&self) -> i32 {
        match self.kind {
            OpenErrorKind::Access => libc::EACCES,
            _ => libc::ENOMEM,
        }
    }
}

impl fmt::Display for OpenErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpenErrorKind::Access => "permission denied",
            OpenErrorKind::Corrupt => "corrupted or foreign file",
            OpenErrorKind::Io => "I/O error",
            OpenErrorKind::Invalid => "invalid namespace parameters",
        })
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.detail)
    }
}

impl std::error::Error for OpenError {}

impl From<OpenError> for std::io::Error {
    fn from(e: OpenError) -> std::io::Error {
        let kind = match e.kind {
            OpenErrorKind::Access => std::io::ErrorKind::PermissionDenied,
            OpenErrorKind::Corrupt => std::io::ErrorKind::InvalidData,
            OpenErrorKind::Invalid => std::io::ErrorKind::InvalidInput,
            OpenErrorKind::Io => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e.to_string())
    }
}

errno_enum! {
    /// Why `mq_open` ([`crate::MqOpenOptions::open`]) failed.
    MqOpenError {
        /// The name does not start with `/`, an attribute is out of range on
        /// creation, or neither read nor write access was asked of an
        /// existing queue (`O_ACCMODE` 3).
        Invalid = EINVAL, "invalid argument";
        /// No queue has this name and creating was not asked for, or the
        /// name is `/` alone.
        NotFound = ENOENT, "no queue of this name";
        /// `O_CREAT | O_EXCL` and the queue exists.
        Exists = EEXIST, "a queue of this name exists";
        /// The queue's mode does not grant the access asked for, or the name
        /// holds another `/` or is `/.` or `/..`.
        Access = EACCES, "permission denied";
        /// The name is longer than `NAME_MAX` (255) after its `/`.
        NameTooLong = ENAMETOOLONG, "name too long";
        /// `queues_max` queues exist (without `CAP_SYS_RESOURCE`).
        NoSpace = ENOSPC, "too many queues (queues_max)";
        /// The new queue would take the owner's POSIX queues past its
        /// `RLIMIT_MSGQUEUE` (bytes, counted as the kernel counts them).
        TooManyFiles = EMFILE, "RLIMIT_MSGQUEUE reached";
        /// The queue's file could not be created or mapped, or is damaged,
        /// or its attributes exceed what shmq can address.
        NoMemory = ENOMEM, "cannot create or map the queue's shared memory";
    }
}

errno_enum! {
    /// Why `mq_send` ([`crate::MessageQueue::send`] and its forms) failed.
    MqSendError {
        /// The priority is `MQ_PRIO_MAX` (32768) or more.
        Invalid = EINVAL, "invalid argument";
        /// The descriptor was not opened for writing.
        BadDescriptor = EBADF, "not open for writing";
        /// The message is longer than the queue's `mq_msgsize`.
        TooBig = EMSGSIZE, "message longer than mq_msgsize";
        /// The queue is full and the descriptor is non-blocking (or the call
        /// is a `try_`).
        Again = EAGAIN, "queue full";
        /// The deadline passed while the queue stayed full.
        TimedOut = ETIMEDOUT, "timed out";
        /// A signal handler installed without `SA_RESTART` ran while the call
        /// waited (after one with it, the call goes on waiting).
        Interrupted = EINTR, "interrupted by a signal";
        /// Every attachment slot of the queue is in use, or the queue is
        /// damaged.
        NoMemory = ENOMEM, "out of queue resources";
    }
}

errno_enum! {
    /// Why `mq_receive` ([`crate::MessageQueue::recv`] and its forms) failed.
    MqRecvError {
        /// The descriptor was not opened for reading.
        BadDescriptor = EBADF, "not open for reading";
        /// The buffer is shorter than the queue's `mq_msgsize`.
        TooBig = EMSGSIZE, "buffer shorter than mq_msgsize";
        /// The queue is empty and the descriptor is non-blocking (or the
        /// call is a `try_`).
        Again = EAGAIN, "queue empty";
        /// The deadline passed while the queue stayed empty.
        TimedOut = ETIMEDOUT, "timed out";
        /// A signal handler installed without `SA_RESTART` ran while the call
        /// waited (after one with it, the call goes on waiting).
        Interrupted = EINTR, "interrupted by a signal";
        /// Every attachment slot of the queue is in use, or the queue is
        /// damaged.
        NoMemory = ENOMEM, "out of queue resources";
    }
}

errno_enum! {
    /// Why `mq_unlink` ([`crate::MessageQueue::unlink`]) failed.
    MqUnlinkError {
        /// The name does not start with `/`.
        Invalid = EINVAL, "invalid argument";
        /// No queue has this name (or the name is `/` alone).
        NotFound = ENOENT, "no queue of this name";
        /// The caller may not remove the name (another user's queue), or the
        /// name holds another `/` or is `/.` or `/..`.
        Access = EACCES, "permission denied";
        /// The name is longer than `NAME_MAX` (255) after its `/`.
        NameTooLong = ENAMETOOLONG, "name too long";
    }
}

errno_enum! {
    /// Why `mq_notify` ([`crate::MessageQueue::notify`]) failed.
    MqNotifyError {
        /// Another process's registration is in place.
        Busy = EBUSY, "another process is registered for notification";
        /// A signal number the kernel does not accept (`sigev_signo` above
        /// 64, or negative), or an unknown `sigev_notify`.
        Invalid = EINVAL, "invalid argument";
        /// The helper thread of a `SIGEV_THREAD` registration could not
        /// be started.
        NoMemory = ENOMEM, "out of memory";
    }
}
