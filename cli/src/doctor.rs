//! `shmq doctor`: checks every file of a namespace, recovers what dead
//! processes still hold, removes stale files, and reports each problem on one
//! line, with what was done or what to do (the engine's
//! `Namespace::doctor_dir` does the work; this is its voice).
//!
//! Each line reads `STATUS: SUBJECT: PROBLEM; ACTION`, STATUS being one of
//! `note`, `fixed`, `would-fix`, `damaged`, `failed`, `unusable`; the last
//! line is a `summary:`. `--json` prints the same as one JSON object.

use crate::args::parse_duration;
use crate::errors::{Failure, EXIT_FAILED};
use crate::json;
use shmq::doctor::{DoctorOptions, DoctorReport, Health, Outcome, Subject};
use shmq::Namespace;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Exit codes of `shmq doctor`, at the end of its `--help`.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  healthy: nothing wrong (notes only)
  1  the doctor could not run, or a --remove failed
  2  usage error
  3  the namespace is unusable (its directory or id table): nothing else was checked
  4  problems were found and all repaired (with --dry-run: all repairable)
  5  damage remains: each `damaged` or `failed` line says what to do";

/// Options of `shmq doctor`.
#[derive(clap::Args, Debug)]
#[command(allow_negative_numbers = true)]
pub(crate) struct DoctorArgs {
    /// Report only: repair nothing, remove nothing, take no lock
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Print the report as one JSON object on one line
    #[arg(long)]
    json: bool,
    /// First remove the queue with this id, even if its file is damaged
    /// (its messages are lost; repeatable)
    #[arg(long, value_name = "ID", conflicts_with = "dry_run")]
    remove: Vec<i32>,
    /// How long to wait for the namespace's lock while a live process holds it
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "2s")]
    lock_timeout: Duration,
}

/// Runs `shmq doctor` on `dir` (or `$SHMQ_DIR`, or the default namespace).
pub(crate) fn run(dir: Option<&Path>, args: &DoctorArgs) -> Result<(), Failure> {
    let dir: PathBuf = match dir {
        Some(d) => d.to_owned(),
        None => std::env::var_os("SHMQ_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| shmq::DEFAULT_DIR.into()),
    };
    // A file truncated under our mapping raises SIGBUS: end with one line
    // rather than a crash.
    crate::sys::exit_on_sigbus();
    let mut removed = Vec::new();
    let mut remove_failed = false;
    if !args.remove.is_empty() {
        let ns = Namespace::open(&dir).map_err(|e| Failure::namespace(&e))?;
        for &id in &args.remove {
            match ns.remove_damaged(id, args.lock_timeout) {
                Ok(()) => removed.push(id),
                Err(e) => {
                    eprintln!("shmq: doctor --remove {id}: {e}");
                    remove_failed = true;
                }
            }
        }
    }
    let opts = DoctorOptions {
        dry_run: args.dry_run,
        lock_timeout: args.lock_timeout,
    };
    let report = Namespace::doctor_dir(&dir, &opts);
    let code = if remove_failed {
        EXIT_FAILED
    } else {
        exit_code(report.health())
    };
    let out = if args.json {
        to_json(&report, &removed, code)
    } else {
        to_text(&report, &removed)
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::op("stdout", e))?;
    match code {
        0 => Ok(()),
        c => Err(Failure::reported(c)),
    }
}

/// The exit code of a verdict (see [`EXIT_CODES`]).
fn exit_code(h: Health) -> u8 {
    match h {
        Health::Healthy => 0,
        Health::Repaired => 4,
        Health::Damaged => 5,
        Health::Unusable => crate::errors::EXIT_NAMESPACE,
    }
}

fn verdict(r: &DoctorReport) -> &'static str {
    match r.health() {
        Health::Healthy => "healthy",
        Health::Repaired if r.dry_run => "repairable",
        Health::Repaired => "repaired",
        Health::Damaged => "damaged",
        Health::Unusable => "unusable",
    }
}

/// One line per removal and per finding, then the summary.
fn to_text(r: &DoctorReport, removed: &[i32]) -> String {
    let mut out = String::new();
    for id in removed {
        let _ = writeln!(out, "removed: queue {id}");
    }
    for f in &r.findings {
        let _ = writeln!(out, "{f}");
    }
    let count = |pred: fn(&Outcome) -> bool| r.findings.iter().filter(|f| pred(&f.outcome)).count();
    let fixed = count(|o| matches!(o, Outcome::Repaired));
    let to_fix = count(|o| matches!(o, Outcome::WouldRepair));
    let left = count(|o| matches!(o, Outcome::NeedsAction(_) | Outcome::RepairFailed(_)));
    let _ = write!(out, "summary: {}: ", r.dir.display());
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    if r.health() == Health::Unusable {
        out.push_str("unusable");
    } else {
        let _ = write!(
            out,
            "{} queue{} checked",
            r.queues_checked,
            plural(r.queues_checked)
        );
        if left > 0 {
            let _ = write!(out, ", {left} problem{} to fix by hand", plural(left));
        }
        if fixed > 0 {
            let _ = write!(out, ", {fixed} problem{} repaired", plural(fixed));
        }
        if to_fix > 0 {
            let _ = write!(out, ", {to_fix} problem{} to repair", plural(to_fix));
        }
        let _ = write!(out, ": {}", verdict(r));
        if r.dry_run {
            out.push_str(" (dry run)");
        }
    }
    out.push('\n');
    out
}

/// The report as one JSON object on one line:
/// `{"namespace", "dry_run", "health", "exit_code", "queues_checked",
/// "removed": [ID...], "findings": [{"status", "kind", "subject", "queue",
/// "record", "file", "problem", "action"}...]}`.
fn to_json(r: &DoctorReport, removed: &[i32], code: u8) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"namespace\":{},\"dry_run\":{},\"health\":\"{}\",\"exit_code\":{code},\"queues_checked\":{}",
        json::string(&r.dir.to_string_lossy()),
        r.dry_run,
        verdict(r),
        r.queues_checked
    );
    let ids: Vec<String> = removed.iter().map(|id| id.to_string()).collect();
    let _ = write!(out, ",\"removed\":[{}],\"findings\":[", ids.join(","));
    for (i, f) in r.findings.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let null = || "null".to_string();
        let (queue, record, file) = match &f.subject {
            Subject::Queue { id, .. } => (id.to_string(), null(), null()),
            Subject::Record { index } => (null(), index.to_string(), null()),
            Subject::File { name } => (null(), null(), json::string(name)),
            _ => (null(), null(), null()),
        };
        let _ = write!(
            out,
            "{{\"status\":\"{}\",\"kind\":\"{}\",\"subject\":{},\"queue\":{queue},\"record\":{record},\"file\":{file},\"problem\":{},\"action\":{}}}",
            f.status(),
            f.problem.kind(),
            json::string(&f.subject.to_string()),
            json::string(&f.problem.to_string()),
            json::string(&f.action())
        );
    }
    out.push_str("]}\n");
    out
}
