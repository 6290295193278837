//! `shmq ls`: the queues of a namespace, in `ipcs -q`'s formats, byte for
//! byte (util-linux's `ipcs.c`: `do_msg` and `print_perms`).

use crate::errors::Failure;
use crate::sys;
use shmq::{Namespace, QueueStat};
use std::fmt::Write as _;
use std::io::Write as _;

/// Options of `shmq ls`, as `ipcs -q`'s.
#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("format").multiple(false))]
pub(crate) struct LsArgs {
    /// Show the namespace's limits (`ipcs -q -l`)
    #[arg(short, long, group = "format")]
    limits: bool,
    /// Show the pids of the last sender and receiver (`ipcs -q -p`)
    #[arg(short, long, group = "format")]
    pid: bool,
    /// Show the last send, receive and change times (`ipcs -q -t`)
    #[arg(short, long, group = "format")]
    time: bool,
    /// Show creators and owners (`ipcs -q -c`)
    #[arg(short, long, group = "format")]
    creator: bool,
    /// Show a summary: queues, messages, bytes (`ipcs -q -u`)
    #[arg(short = 'u', long, group = "format")]
    summary: bool,
    /// Print everything (limits, summary, every field of every queue) as one
    /// JSON object
    #[arg(long, conflicts_with = "format")]
    json: bool,
}

/// A queue as listed: its id and its `IPC_STAT` figures.
pub(crate) struct Row {
    pub(crate) id: i32,
    pub(crate) stat: QueueStat,
}

/// Every queue of the namespace that this user can map, in record order
/// (the order `ipcs` finds them in). Queues removed meanwhile are skipped;
/// a queue whose file is damaged is left out with a line on stderr naming
/// the file.
pub(crate) fn snapshot(ns: &Namespace) -> Vec<Row> {
    ns.ids()
        .into_iter()
        .filter_map(|id| match ns.queue(id) {
            Ok(q) => Some(Row {
                id,
                stat: q.stat_any(),
            }),
            Err(_) => {
                if let Some(p) = ns.file_problem(id) {
                    eprintln!("shmq: queue {id} not listed: {p}; `shmq doctor` says what to do");
                }
                None
            }
        })
        .collect()
}

/// Runs `shmq ls`.
pub(crate) fn run(ns: &Namespace, args: &LsArgs) -> Result<(), Failure> {
    let text = if args.json {
        crate::json::listing(ns, &snapshot(ns))
    } else {
        let mut out = String::from("\n");
        if args.limits {
            limits(&mut out, ns);
        } else if args.summary {
            summary(&mut out, ns);
        } else {
            table(&mut out, args, &snapshot(ns));
            if !(args.pid || args.time || args.creator) {
                crate::mq::table(&mut out, ns);
            }
        }
        out.push('\n');
        out
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::op("stdout", e))
}

fn limits(out: &mut String, ns: &Namespace) {
    let l = ns.limits();
    out.push_str("------ Messages Limits --------\n");
    let _ = writeln!(out, "max queues system wide = {}", l.msgmni);
    let _ = writeln!(out, "max size of message (bytes) = {}", l.msgmax);
    let _ = writeln!(out, "default max size of queue (bytes) = {}", l.msgmnb);
}

fn summary(out: &mut String, ns: &Namespace) {
    let info = ns.info();
    out.push_str("------ Messages Status --------\n");
    let _ = writeln!(out, "allocated queues = {}", info.queues);
    let _ = writeln!(out, "used headers = {}", info.messages);
    let _ = writeln!(out, "used space = {} bytes", info.bytes);
}

fn table(out: &mut String, args: &LsArgs, rows: &[Row]) {
    if args.pid {
        out.push_str("------ Message Queues PIDs --------\n");
        let _ = writeln!(
            out,
            "{:<10} {:<10} {:<10} {:<10}",
            "msqid", "owner", "lspid", "lrpid"
        );
    } else if args.time {
        out.push_str("------ Message Queues Send/Recv/Change Times --------\n");
        let _ = writeln!(
            out,
            "{:<8} {:<10} {:<20} {:<20} {:<20}",
            "msqid", "owner", "send", "recv", "change"
        );
    } else if args.creator {
        out.push_str("------ Message Queues Creators/Owners --------\n");
        let _ = writeln!(
            out,
            "{:<10} {:<10} {:<10} {:<10} {:<10} {:<10}",
            "msqid", "perms", "cuid", "cgid", "uid", "gid"
        );
    } else {
        out.push_str("------ Message Queues --------\n");
        let _ = writeln!(
            out,
            "{:<10} {:<10} {:<10} {:<10} {:<12} {:<12}",
            "key", "msqid", "owner", "perms", "used-bytes", "messages"
        );
    }
    for Row { id, stat: s } in rows {
        let p = &s.perm;
        if args.pid {
            let _ = writeln!(
                out,
                "{}  {:>5}     {:>5}",
                id_owner(8, *id, p.uid),
                s.lspid,
                s.lrpid
            );
        } else if args.time {
            let _ = writeln!(
                out,
                "{} {:<20} {:<20} {:<20}",
                id_owner(8, *id, p.uid),
                when(s.stime),
                when(s.rtime),
                when(s.ctime)
            );
        } else if args.creator {
            let _ = writeln!(
                out,
                "{:<10} {:<10o} {:<10} {:<10} {:<10} {:<10}",
                id,
                p.mode & 0o777,
                user(p.cuid),
                group(p.cgid),
                user(p.uid),
                group(p.gid)
            );
        } else {
            let _ = writeln!(
                out,
                "0x{:08x} {} {:<10o} {:<12} {:<12}",
                p.key as u32,
                id_owner(10, *id, p.uid),
                p.mode & 0o777,
                s.cbytes,
                s.qnum
            );
        }
    }
}

/// `%-Nd %-10.10s` with the owner's name, or `%-Nd %-10u` without one.
fn id_owner(width: usize, id: i32, uid: u32) -> String {
    match sys::user_name(uid) {
        Some(name) => format!("{id:<width$} {:<10.10}", name),
        None => format!("{id:<width$} {uid:<10}"),
    }
}

/// A user's name, or the number when the user database has none.
pub(crate) fn user(uid: u32) -> String {
    sys::user_name(uid).unwrap_or_else(|| uid.to_string())
}

/// A group's name, or the number when the group database has none.
pub(crate) fn group(gid: u32) -> String {
    sys::group_name(gid).unwrap_or_else(|| gid.to_string())
}

/// Month names as `ctime(3)` prints them.
pub(crate) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `ctime(t) + 4`, cut to 16 characters (`Nov 23 11:04:33 `), or `Not set`.
fn when(secs: i64) -> String {
    if secs == 0 {
        return "Not set".into();
    }
    match sys::local_time(secs) {
        Some(t) => format!(
            "{} {:>2} {:02}:{:02}:{:02} ",
            MONTHS[t.month], t.day, t.hour, t.minute, t.second
        ),
        None => secs.to_string(),
    }
}
