//! `shmq send` and `shmq recv`: one `msgsnd`, or a few `msgrcv`s, on the
//! queue of a key; or, given a POSIX queue's name (`/NAME`), one `mq_send`
//! or a few `mq_receive`s (`crate::mq`).

use crate::args::{parse_duration, parse_mode, parse_public_key, Key};
use crate::errors::Failure;
use shmq::{GetOptions, Namespace, Queue, RecvError, RecvOptions, Selector, SendError};
use std::ffi::OsString;
use std::io::{Read, Write as _};
use std::os::unix::ffi::OsStrExt as _;
use std::path::PathBuf;
use std::time::Duration;

/// Which queue: a System V key, or a POSIX queue's name.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// A System V queue's key.
    Key(Key),
    /// A POSIX queue's name, `/NAME`.
    Name(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Key(k) => k.fmt(f),
            Target::Name(n) => f.write_str(n),
        }
    }
}

/// A name starting with `/` is a POSIX queue's; anything else a key.
fn parse_target(s: &str) -> Result<Target, String> {
    if s.starts_with('/') {
        Ok(Target::Name(s.to_owned()))
    } else {
        parse_public_key(s).map(Target::Key)
    }
}

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
    /// The queue's key: 0x hexadecimal, 0 octal or decimal; or a POSIX
    /// queue's name, /NAME
    #[arg(value_parser = parse_target)]
    key: Target,
    /// The message type (mtype), at least 1; for a POSIX queue, the
    /// message's priority (0 to 32767)
    #[arg(value_name = "TYPE")]
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
    /// The queue's key: 0x hexadecimal, 0 octal or decimal; or a POSIX
    /// queue's name, /NAME (which always gives the oldest message of the
    /// highest priority: no TYPE)
    #[arg(value_parser = parse_target)]
    key: Target,
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
    /// Write each message's type (a POSIX queue's: its priority) and a tab
    /// before its text
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
    let key = match &args.key {
        Target::Key(k) if args.mtype >= 1 => k,
        Target::Key(_) => return Err(Failure::usage("send: TYPE must be at least 1")),
        Target::Name(_) => return send_posix(ns, args),
    };
    // Read at most one byte more than msgmax: enough to know it is too long.
    let limit = ns.limits().msgmax.saturating_add(1);
    let text = read_text(args, limit)?;
    let q = open(ns, key, &args.open)?;
    let sent = if args.nowait {
        q.try_send(args.mtype, &text)
    } else {
        q.send(args.mtype, &text)
    };
    sent.map_err(|e| match e {
        SendError::Invalid if text.len() as u64 >= limit => Failure::op(
            format_args!("msgsnd {key} (text longer than msgmax, {})", limit - 1),
            e,
        ),
        e => Failure::op(format_args!("msgsnd {key}"), e),
    })
}

/// `shmq send /NAME PRIO TEXT`.
fn send_posix(ns: &Namespace, args: &SendArgs) -> Result<(), Failure> {
    // The longest message any POSIX queue takes (16 MiB), and a byte more.
    let text = read_text(args, (16 << 20) + 1)?;
    let create = args.open.create.then(|| args.open.mode.unwrap_or(0o660));
    crate::mq::send(
        ns,
        &args.key.to_string(),
        args.mtype,
        &text,
        create,
        args.nowait,
    )
}

/// The text to send, at most `limit` bytes of it.
fn read_text(args: &SendArgs, limit: u64) -> Result<Vec<u8>, Failure> {
    Ok(match (&args.file, &args.text) {
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
    let key = match &args.key {
        Target::Key(k) => k,
        Target::Name(name) => {
            if args.msgtyp != 0 || args.except || args.noerror || args.max_size.is_some() {
                return Err(Failure::usage(
                    "recv: a POSIX queue takes no TYPE, --except, --noerror or --max-size",
                ));
            }
            let how = crate::mq::RecvHow {
                nowait: args.nowait,
                timeout: args.timeout,
                count: args.count,
                newline: args.newline,
                show_prio: args.show_type,
                create: args.open.create.then(|| args.open.mode.unwrap_or(0o660)),
            };
            return crate::mq::recv(ns, name, &how);
        }
    };
    let q = open(ns, key, &args.open)?;
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
        let m = got.map_err(|e| recv_failure(key, e, buf.len()))?;
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
