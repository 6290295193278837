//! `shmq stat`: every field of a queue's `msqid_ds` (IPC_STAT), then shmq's
//! own figures, one `name: value` per line.

use crate::args::{parse_public_key, Key};
use crate::errors::Failure;
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
    let mut out = String::new();
    let mut line = |name: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{name}: {value}");
    };
    line("msqid", &q.id());
    line("key", &format_args!("0x{:08x}", p.key as u32));
    line("uid", &p.uid);
    line("gid", &p.gid);
    line("cuid", &p.cuid);
    line("cgid", &p.cgid);
    line("mode", &format_args!("0{:o}", p.mode));
    line("seq", &p.seq);
    line("stime", &s.stime);
    line("rtime", &s.rtime);
    line("ctime", &s.ctime);
    line("cbytes", &s.cbytes);
    line("qnum", &s.qnum);
    line("qbytes", &s.qbytes);
    line("lspid", &s.lspid);
    line("lrpid", &s.lrpid);
    line("nodes_in_use", &f.nodes_in_use);
    line("nodes_total", &f.nodes_total);
    line("slots_in_use", &f.slots_in_use);
    line("slots_total", &f.slots_total);
    line("sleepers", &f.sleepers);
    line("live_types", &f.live_types);
    line("file_size", &f.file_size);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::op("stdout", e))
}
