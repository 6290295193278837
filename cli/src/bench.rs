//! `shmq bench`: shmq side by side with the kernel's IPC mechanisms (System V
//! and POSIX queues, a pipe, a `SOCK_SEQPACKET` socketpair), every endpoint a
//! process of its own, all in one run; a table of each mechanism's figures and
//! the ratio shmq/mechanism. The measuring code is the `shmq-benches` library;
//! its child processes are this binary, re-executed.

use crate::errors::{Failure, EXIT_FAILED};
use shmq_benches::suite::{Parts, Progress};
use shmq_benches::{mech, Mechanism, Plan, Spawner, Suite};
use std::io::{IsTerminal, Write};
use std::path::Path;

/// Options of `shmq bench`.
#[derive(clap::Args, Debug)]
pub(crate) struct BenchArgs {
    /// Run everything, longer (a few minutes): more samples, every size in the
    /// 2 x 2 throughput runs
    #[arg(long)]
    full: bool,
    /// Print the report as one JSON object on standard output
    #[arg(long)]
    json: bool,
    /// Measure only these mechanisms besides shmq and the bare-ring floor
    /// (comma-separated: sysv, posix-mq, shmq-mq, pipe, seqpacket)
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    only: Vec<String>,
    /// Measure round trips and 1 -> 1 streams with their two processes where
    /// the scheduler puts them only (by default also pinned: round trips to
    /// one CPU and to CPUs 0 and 1, streams to CPUs 0 and 1)
    #[arg(long)]
    no_pin: bool,
    /// Run only these parts (comma-separated: rt, parked, tp, mpmc, depth,
    /// prio (POSIX queues: receive with 32 priorities in use), footprint)
    #[arg(long, value_delimiter = ',', value_name = "PARTS")]
    parts: Vec<String>,
    /// A few messages of everything, to check that every path works (the
    /// figures mean nothing)
    #[arg(long, hide = true)]
    smoke: bool,
}

/// A progress bar on standard error, when it is a terminal; with
/// `SHMQ_BENCH_LOG` set, one line per step instead.
struct Bar {
    tty: bool,
    log: Option<std::time::Instant>,
}

impl Bar {
    fn show(&self, p: &Progress) {
        if let Some(t0) = self.log {
            eprintln!(
                "[{:7.2} s] {}/{} {}",
                t0.elapsed().as_secs_f64(),
                p.done,
                p.total,
                p.label
            );
            return;
        }
        if !self.tty {
            return;
        }
        const WIDTH: usize = 30;
        let filled = WIDTH * p.done / p.total.max(1);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K[{}{}] {:>3}/{} {}",
            "#".repeat(filled),
            " ".repeat(WIDTH - filled),
            p.done,
            p.total,
            p.label
        );
        if p.done == p.total {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = err.flush();
    }
}

/// Runs `shmq bench` with shmq's queues in namespace `dir` (`None`: the
/// default one).
pub(crate) fn run(dir: Option<&Path>, args: &BenchArgs) -> Result<(), Failure> {
    // Before any thread starts: Ctrl-C then removes every queue made so far.
    shmq_benches::cleanup::install_signal_cleanup()
        .map_err(|e| Failure::op("bench: signal handling", e))?;
    let ns = match dir {
        Some(d) => shmq::Namespace::open(d),
        None => shmq::Namespace::open_default(),
    };
    let ns = ns.map_err(|e| Failure::namespace(&e))?;
    let builtin = mech::builtin(Some(ns.dir().to_path_buf()));
    drop(ns);
    for name in &args.only {
        if !builtin.iter().any(|m| m.name() == name) {
            let known: Vec<&str> = builtin.iter().map(|m| m.name()).collect();
            return Err(Failure::usage(format!(
                "bench: unknown mechanism {name:?} (known: {})",
                known.join(", ")
            )));
        }
    }
    let mechs: Vec<&dyn Mechanism> = builtin
        .iter()
        .map(|m| m.as_ref() as &dyn Mechanism)
        .filter(|m| {
            ["shmq", "bare-ring"].contains(&m.name())
                || args.only.is_empty()
                || args.only.iter().any(|o| o == m.name())
        })
        .collect();
    let mut plan = if args.smoke {
        Plan::smoke()
    } else if args.full {
        Plan::full()
    } else {
        Plan::quick()
    };
    if args.no_pin {
        plan.placements = vec![false];
        plan.rt_placements = vec![shmq_benches::drivers::Placement::Unpinned];
    }
    if !args.parts.is_empty() {
        plan.parts =
            Parts::parse(&args.parts).map_err(|e| Failure::usage(format!("bench: {e}")))?;
    }
    let spawner = Spawner::current_exe().map_err(|e| Failure::op("bench: own executable", e))?;
    let suite = Suite::new(spawner, plan, mechs, dir.map(Path::to_path_buf));
    let bar = Bar {
        tty: std::io::stderr().is_terminal(),
        log: std::env::var_os("SHMQ_BENCH_LOG").map(|_| std::time::Instant::now()),
    };
    let report = suite.run(&mut |p| bar.show(p));
    let out = if args.json {
        report.to_json().to_json() + "\n"
    } else {
        report.to_text()
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::op("bench: writing the report", e))?;
    if !report.errors.is_empty() {
        if args.json {
            for e in &report.errors {
                eprintln!("shmq: bench: {e}");
            }
        }
        return Err(Failure::reported(EXIT_FAILED));
    }
    Ok(())
}
