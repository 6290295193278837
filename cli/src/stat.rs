//! `shmq stat`: every field of a queue's `msqid_ds` (IPC_STAT), then shmq's
//! own figures, one `name: value` per line; times as `ipcs -q -i` prints
//! them (`Sat Dec  5 06:30:00 2026`, local time, or `Not set`). `--json`:
//! the same fields as one JSON object, times in seconds since the epoch.

use crate::args::{parse_public_key, Key};
use crate::errors::Failure;
use crate::ls::MONTHS;
use crate::sys;
use shmq::{GetOptions, Namespace};
use std::fmt::Write as _;
use std::io::Write as _;

/// Options of `shmq stat`.
#[derive(clap::Args, Debug)]
#[command(allow_negative_numbers = true)]
#[command(group = clap::ArgGroup::new("which").required(true))]
pub(crate) struct StatArgs {
    /// The queue's id (as `shmq ls` shows it)
    #[arg(group = "which")]
    id: Option<i32>,
    /// Find the queue by key instead: 0x hexadecimal, 0 octal or decimal
    #[arg(short = 'Q', long = "key", value_name = "KEY", value_parser = parse_public_key, group = "which")]
    key: Option<Key>,
    /// Print one JSON object (times in seconds since the epoch)
    #[arg(long)]
    json: bool,
}

/// `secs` as `ctime(3)` prints it, without the newline (`Sat Dec  5
/// 06:30:00 2026`, local time), as `ipcs -q -i` does; `Not set` for 0.
fn date(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    if secs == 0 {
        return "Not set".into();
    }
    match sys::local_time(secs) {
        Some(t) => format!(
            "{} {} {:>2} {:02}:{:02}:{:02} {}",
            DAYS[t.weekday], MONTHS[t.month], t.day, t.hour, t.minute, t.second, t.year
        ),
        None => secs.to_string(),
    }
}

/// One field's value, in text and in JSON.
enum Value {
    Number(i64),
    Unsigned(u64),
    Text(String),
    Time(i64),
}

/// Runs `shmq stat`.
pub(crate) fn run(ns: &Namespace, args: &StatArgs) -> Result<(), Failure> {
    let q = match (&args.key, args.id) {
        (Some(key), _) => ns
            .get(key.value, GetOptions::new())
            .map_err(|e| Failure::get(ns, key, key.value, e))?,
        (None, Some(id)) => ns.queue(id).map_err(|e| {
            Failure::op(format!("msgctl {id} IPC_STAT"), e).with_file_problem(ns.file_problem(id))
        })?,
        (None, None) => return Err(Failure::usage("stat: give an ID or --key KEY")),
    };
    let s = q
        .stat()
        .map_err(|e| Failure::op(format!("msgctl {} IPC_STAT", q.id()), e))?;
    let f = q.figures();
    let p = &s.perm;
    use Value::{Number as N, Text as T, Time, Unsigned as U};
    let fields: [(&str, Value); 23] = [
        ("msqid", N(q.id().into())),
        ("key", T(format!("0x{:08x}", p.key as u32))),
        ("uid", U(p.uid.into())),
        ("gid", U(p.gid.into())),
        ("cuid", U(p.cuid.into())),
        ("cgid", U(p.cgid.into())),
        ("mode", T(format!("0{:o}", p.mode))),
        ("seq", U(p.seq.into())),
        ("stime", Time(s.stime)),
        ("rtime", Time(s.rtime)),
        ("ctime", Time(s.ctime)),
        ("cbytes", U(s.cbytes)),
        ("qnum", U(s.qnum)),
        ("qbytes", U(s.qbytes)),
        ("lspid", N(s.lspid.into())),
        ("lrpid", N(s.lrpid.into())),
        ("nodes_in_use", U(f.nodes_in_use as u64)),
        ("nodes_total", U(f.nodes_total as u64)),
        ("slots_in_use", U(f.slots_in_use as u64)),
        ("slots_total", U(f.slots_total as u64)),
        ("sleepers", U(f.sleepers as u64)),
        ("live_types", U(f.live_types as u64)),
        ("file_size", U(f.file_size as u64)),
    ];
    let mut out = String::new();
    if args.json {
        out.push('{');
        for (i, (name, v)) in fields.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = match v {
                N(n) | Time(n) => write!(out, "{sep}\"{name}\":{n}"),
                U(n) => write!(out, "{sep}\"{name}\":{n}"),
                T(t) => write!(out, "{sep}\"{name}\":{}", crate::json::string(t)),
            };
        }
        out.push_str("}\n");
    } else {
        for (name, v) in &fields {
            let _ = match v {
                N(n) => writeln!(out, "{name}: {n}"),
                U(n) => writeln!(out, "{name}: {n}"),
                T(t) => writeln!(out, "{name}: {t}"),
                Time(t) => writeln!(out, "{name}: {}", date(*t)),
            };
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::op("stdout", e))
}
