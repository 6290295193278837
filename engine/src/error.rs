//! One error type per operation, each variant named after the errno the
//! kernel returns for the same failure.

use std::fmt;

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
    /// Why `msgsnd` ([`crate::Queue::send`]) failed.
    SendError {
        /// `mtype < 1`, `msgsz > msgmax`, or the id names no queue.
        Invalid = EINVAL, "invalid argument";
        /// No write permission.
        Access = EACCES, "permission denied";
        /// The queue is full and `IPC_NOWAIT` was given.
        Again = EAGAIN, "queue full";
        /// The queue was removed while the caller waited.
        Removed = EIDRM, "queue removed";
        /// A signal handler ran while the caller waited.
        Interrupted = EINTR, "interrupted by a signal";
        /// The timeout of a timed send passed.
        TimedOut = ETIMEDOUT, "timed out";
        /// The queue's shared memory is exhausted or inconsistent.
        NoMemory = ENOMEM, "out of queue memory";
        /// The message pointer is invalid (C callers only).
        Fault = EFAULT, "bad address";
    }
}

errno_enum! {
    /// Why `msgrcv` ([`crate::Queue::recv`]) failed.
    RecvError {
        /// Invalid arguments, or the id names no queue.
        Invalid = EINVAL, "invalid argument";
        /// No read permission.
        Access = EACCES, "permission denied";
        /// The message is longer than the buffer and `MSG_NOERROR` was not given.
        TooBig = E2BIG, "message too long for the buffer";
        /// No matching message and `IPC_NOWAIT` was given.
        NoMessage = ENOMSG, "no message of the wanted type";
        /// The queue was removed while the caller waited.
        Removed = EIDRM, "queue removed";
        /// A signal handler ran while the caller waited.
        Interrupted = EINTR, "interrupted by a signal";
        /// The timeout of a timed receive passed.
        TimedOut = ETIMEDOUT, "timed out";
        /// The queue's shared memory is inconsistent.
        NoMemory = ENOMEM, "queue memory inconsistent";
        /// The buffer pointer is invalid (C callers only).
        Fault = EFAULT, "bad address";
    }
}

errno_enum! {
    /// Why `msgctl` failed.
    CtlError {
        /// Bad id, command or argument.
        Invalid = EINVAL, "invalid argument";
        /// The caller may not read the queue (IPC_STAT).
        Access = EACCES, "permission denied";
        /// The caller is not the owner, creator or root.
        Permission = EPERM, "operation not permitted";
        /// The id names a queue that was removed.
        Removed = EIDRM, "queue removed";
        /// The buffer pointer is invalid (C callers only).
        Fault = EFAULT, "bad address";
    }
}

errno_enum! {
    /// Why a namespace or a queue file could not be opened.
    OpenError {
        /// The namespace directory or a file in it is not usable by this user.
        Access = EACCES, "permission denied";
        /// A file in the namespace is corrupted, truncated or not shmq's.
        Corrupt = EBADF, "corrupted or foreign file";
        /// An I/O error.
        Io = EIO, "I/O error";
        /// Bad limits in the environment or the config file.
        Invalid = EINVAL, "invalid namespace parameters";
    }
}
