//! `shmq send` and `shmq recv`: one `msgsnd`, or a few `msgrcv`s, on the
//! queue of a key.

use crate::args::{parse_duration, parse_mode, parse_public_key, Key};
use crate::errors::Failure;
use shmq::{GetOptions, Namespace, Queue, RecvError, RecvOptions, Selector, SendError};
use std::ffi::OsString;
use std::io::{Read, Write as _};
use std::os::unix::ffi::OsStrExt as _;
use std::path::PathBuf;
use std::time::Duration;

/// How to open the queue (`msgget`'s `IPC_CREAT` and mode).
#[derive(clap::Args, Debug)]
pub(crate) struct OpenArgs {
    /// Create the queue if the key has none (IPC_CREAT)
    #[arg(long)]
    create: bool,
    /// Mode of a queue created by --create, in octal [default: 0660]
    #[arg(long, value_name = "OCTAL", value_parser = parse_mode, requires = "create")]
    mode: Option<u32>,
}

/// Options of `shmq send`.
#[derive(clap::Args, Debug)]
#[command(allow_negative_numbers = true)]
pub(crate) struct SendArgs {
    /// The queue's key: 0x hexadecimal, 0 octal or decimal
    #[arg(value_parser = parse_public_key)]
    key: Key,
    /// The message type (mtype), at least 1
    #[arg(value_name = "TYPE", value_parser = clap::value_parser!(i64).range(1..))]
    mtype: i64,
    /// The message text; `-` reads it from standard input
    #[arg(required_unless_present = "file")]
    text: Option<OsString>,
    /// Read the message text from this file
    #[arg(short, long, value_name = "F", conflicts_with = "text")]
    file: Option<PathBuf>,
    #[command(flatten)]
    open: OpenArgs,
    /// Fail with EAGAIN rather than wait when the queue is full (IPC_NOWAIT)
    #[arg(short, long)]
    nowait: bool,
}

/// Options of `shmq recv`.
#[derive(clap::Args, Debug)]
#[command(allow_negative_numbers = true)]
pub(crate) struct RecvArgs {
    /// The queue's key: 0x hexadecimal, 0 octal or decimal
    #[arg(value_parser = parse_public_key)]
    key: Key,
    /// msgtyp: 0 the oldest message; N > 0 the oldest of type N; -N the
    /// oldest of the lowest type <= N
    #[arg(value_name = "TYPE", default_value_t = 0)]
    msgtyp: i64,
    /// Fail with ENOMSG rather than wait when no message matches (IPC_NOWAIT)
    #[arg(short, long, conflicts_with = "timeout")]
    nowait: bool,
    /// Wait at most this long for each message (e.g. 500ms, 1s, 2m), then
    /// fail with ETIMEDOUT
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Receive this many messages, one after the other
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    count: u64,
    /// With TYPE > 0: the oldest message of any other type (MSG_EXCEPT)
    #[arg(long)]
    except: bool,
    /// Truncate a message longer than --max-size instead of failing with
    /// E2BIG (MSG_NOERROR)
    #[arg(long)]
    noerror: bool,
    /// Size of the receive buffer (msgsz) [default: the namespace's msgmax]
    #[arg(long, value_name = "N")]
    max_size: Option<usize>,
    /// Write a newline after each message
    #[arg(long)]
    newline: bool,
    /// Write each message's type and a tab before its text
    #[arg(long)]
    show_type: bool,
    #[command(flatten)]
    open: OpenArgs,
}

/// `msgget` of `key`, creating the queue if asked to.
fn open(ns: &Namespace, key: &Key, open: &OpenArgs) -> Result<Queue, Failure> {
    let flags = GetOptions::new()
        .create(open.create)
        .mode(open.mode.unwrap_or(0o660));
    // Without IPC_CREAT the mode only asks for access; send and receive
    // check what they need themselves.
    let flags = if open.create {
        flags
    } else {
        GetOptions::new()
    };
    ns.get(key.value, flags)
        .map_err(|e| Failure::get(ns, key, key.value, e))
}

/// Runs `shmq send`.
pub(crate) fn send(ns: &Namespace, args: &SendArgs) -> Result<(), Failure> {
    // Read at most one byte more than msgmax: enough to know it is too long.
    let limit = ns.limits().msgmax.saturating_add(1);
    let text = match (&args.file, &args.text) {
        (Some(path), _) => std::fs::File::open(path)
            .and_then(|f| read_at_most(f, limit))
            .map_err(|e| Failure::op(format!("read {}", path.display()), e))?,
        (None, Some(t)) if t == "-" => read_at_most(std::io::stdin().lock(), limit)
            .map_err(|e| Failure::op("read stdin", e))?,
        (None, Some(t)) => t.as_bytes().to_vec(),
        (None, None) => {
            return Err(Failure::usage(
                "send: give TEXT, --file F, or - to read standard input",
            ))
        }
    };
    let q = open(ns, &args.key, &args.open)?;
    let sent = if args.nowait {
        q.try_send(args.mtype, &text)
    } else {
        q.send(args.mtype, &text)
    };
    sent.map_err(|e| match e {
        SendError::Invalid if text.len() as u64 >= limit => Failure::op(
            format_args!(
                "msgsnd {} (text longer than msgmax, {})",
                args.key,
                limit - 1
            ),
            e,
        ),
        e => Failure::op(format_args!("msgsnd {}", args.key), e),
    })
}

fn read_at_most(r: impl std::io::Read, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(limit).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Runs `shmq recv`: each message's text goes to standard output as it
/// arrives.
pub(crate) fn recv(ns: &Namespace, args: &RecvArgs) -> Result<(), Failure> {
    let q = open(ns, &args.key, &args.open)?;
    let msgmax = usize::try_from(ns.limits().msgmax).unwrap_or(usize::MAX);
    // No message is longer than msgmax: a larger buffer would only waste memory.
    let mut buf = vec![0u8; args.max_size.unwrap_or(msgmax).min(msgmax)];
    let sel = Selector::from_msgtyp(args.msgtyp, args.except);
    let opts = if args.noerror {
        RecvOptions::new(sel).truncate()
    } else {
        RecvOptions::new(sel)
    };
    let mut stdout = std::io::stdout().lock();
    for _ in 0..args.count {
        let got = match args.timeout {
            _ if args.nowait => q.try_recv(&mut buf, opts),
            Some(t) => q.recv_timeout(&mut buf, opts, t),
            None => q.recv(&mut buf, opts),
        };
        let m = got.map_err(|e| recv_failure(&args.key, e, buf.len()))?;
        let mut write = || -> std::io::Result<()> {
            if args.show_type {
                write!(stdout, "{}\t", m.mtype)?;
            }
            stdout.write_all(&buf[..m.len])?;
            if args.newline {
                stdout.write_all(b"\n")?;
            }
            stdout.flush()
        };
        write().map_err(|e| Failure::op("stdout", e))?;
    }
    Ok(())
}

fn recv_failure(key: &Key, e: RecvError, size: usize) -> Failure {
    let what = format!("msgrcv {key}");
    match e {
        RecvError::TooBig => Failure::op(
            format_args!("{what} (buffer of {size} bytes; see --max-size, --noerror)"),
            e,
        ),
        e => Failure::op(what, e),
    }
}
