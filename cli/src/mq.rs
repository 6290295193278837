//! POSIX queues in the `shmq` command: their section of `shmq ls`, their
//! removal by `shmq rm --mq NAME`, and `shmq send` / `shmq recv` when the
//! queue is given by name (`/NAME`), the number after it being a priority.

use crate::errors::Failure;
use shmq::{MessageQueue, MqOpenOptions, MqRecvError, Namespace};
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

/// The POSIX section of `shmq ls` (nothing when there is no POSIX queue):
/// name, owner, mode and the attributes, as `/dev/mqueue/NAME` and
/// `mq_getattr` tell them.
pub(crate) fn table(out: &mut String, ns: &Namespace) {
    let queues = MessageQueue::list(ns);
    if queues.is_empty() {
        return;
    }
    out.push_str("\n------ POSIX Message Queues --------\n");
    let _ = writeln!(
        out,
        "{:<20} {:<10} {:<10} {:<10} {:<10} {:<10}",
        "name", "owner", "perms", "maxmsg", "msgsize", "messages"
    );
    for q in queues {
        let _ = writeln!(
            out,
            "{:<20} {:<10.10} {:<10o} {:<10} {:<10} {:<10}",
            q.name,
            crate::ls::user(q.perms.uid),
            q.perms.mode & 0o777,
            q.attr.max_messages,
            q.attr.message_size,
            q.attr.current_messages
        );
    }
}

/// `,"posix_queues":[...]` for `shmq ls --json`, when the namespace has
/// POSIX queues (nothing otherwise, so that a System V listing reads as it
/// always did).
pub(crate) fn json(out: &mut String, ns: &Namespace) {
    let queues = MessageQueue::list(ns);
    if queues.is_empty() {
        return;
    }
    out.push_str(",\"posix_queues\":[");
    for (i, q) in queues.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"name\":{},\"owner\":{},\"uid\":{},\"gid\":{},\"perms\":\"{:o}\",\
             \"maxmsg\":{},\"msgsize\":{},\"messages\":{}}}",
            crate::json::string(&q.name),
            crate::json::string(&crate::ls::user(q.perms.uid)),
            q.perms.uid,
            q.perms.gid,
            q.perms.mode & 0o777,
            q.attr.max_messages,
            q.attr.message_size,
            q.attr.current_messages
        );
    }
    out.push(']');
}

/// `mq_unlink` of each name; `false` if any failed (said on stderr).
pub(crate) fn remove(ns: &Namespace, names: &[String], all: bool, verbose: bool) -> bool {
    let mut names = names.to_vec();
    if all {
        names.extend(MessageQueue::list(ns).into_iter().map(|q| q.name));
    }
    let mut ok = true;
    for name in names {
        if verbose {
            println!("removing POSIX message queue `{name}'");
        }
        if let Err(e) = MessageQueue::unlink(ns, &name) {
            eprintln!("shmq: mq_unlink {name}: {e}");
            ok = false;
        }
    }
    ok
}

fn open(
    ns: &Namespace,
    name: &str,
    opts: MqOpenOptions,
    create: Option<u32>,
) -> Result<MessageQueue, Failure> {
    let opts = match create {
        Some(mode) => opts.create(true).mode(mode),
        None => opts,
    };
    opts.open(ns, name)
        .map_err(|e| Failure::op(format!("mq_open {name}"), e))
}

/// `shmq send /NAME PRIO TEXT`: one `mq_send`.
pub(crate) fn send(
    ns: &Namespace,
    name: &str,
    prio: i64,
    text: &[u8],
    create: Option<u32>,
    nowait: bool,
) -> Result<(), Failure> {
    let prio = u32::try_from(prio)
        .map_err(|_| Failure::usage(format!("send: priority {prio} out of range 0..32768")))?;
    let q = open(ns, name, MqOpenOptions::new().write(true), create)?;
    let sent = if nowait {
        q.try_send(text, prio)
    } else {
        q.send(text, prio)
    };
    sent.map_err(|e| Failure::op(format!("mq_send {name}"), e))
}

/// How `shmq recv /NAME` receives.
pub(crate) struct RecvHow {
    pub(crate) nowait: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) count: u64,
    pub(crate) newline: bool,
    pub(crate) show_prio: bool,
    pub(crate) create: Option<u32>,
}

/// `shmq recv /NAME`: `count` `mq_receive`s, each text to standard output.
pub(crate) fn recv(ns: &Namespace, name: &str, how: &RecvHow) -> Result<(), Failure> {
    let q = open(ns, name, MqOpenOptions::new().read(true), how.create)?;
    let mut buf = vec![0u8; usize::try_from(q.message_size()).unwrap_or(usize::MAX)];
    let mut stdout = std::io::stdout().lock();
    for _ in 0..how.count {
        let got = match how.timeout {
            _ if how.nowait => q.try_recv(&mut buf),
            Some(t) => q.recv_timeout(&mut buf, t),
            None => q.recv(&mut buf),
        };
        let (len, prio) =
            got.map_err(|e: MqRecvError| Failure::op(format!("mq_receive {name}"), e))?;
        let mut write = || -> std::io::Result<()> {
            if how.show_prio {
                write!(stdout, "{prio}\t")?;
            }
            stdout.write_all(&buf[..len])?;
            if how.newline {
                stdout.write_all(b"\n")?;
            }
            stdout.flush()
        };
        write().map_err(|e| Failure::op("stdout", e))?;
    }
    Ok(())
}
