//! `shmq`: inspect and use a shmq namespace from the shell; `ls` and `rm`
//! speak `ipcs -q` and `ipcrm`'s language, `send` and `recv` move messages.
#![deny(unsafe_code)]

mod args;
mod bench;
mod bridge;
mod doctor;
mod errors;
mod json;
mod ls;
mod mq;
mod msg;
mod rm;
mod soak;
mod stat;
mod sys;

use clap::{Parser, Subcommand};
use errors::Failure;
use shmq::Namespace;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes, shown at the end of every `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the operation failed (the message names the errno, e.g. ENOMSG)
  2  usage error
  3  the namespace cannot be opened or is corrupted
  4  doctor: problems found, all repaired
  5  doctor: damage remains (its report says what to do)";

/// System V message queues in user space: list, remove, inspect, send to and
/// receive from the queues of a shmq namespace.
#[derive(Parser, Debug)]
#[command(name = "shmq", version, after_help = EXIT_CODES)]
struct Cli {
    /// Namespace directory [default: $SHMQ_DIR, else /dev/shm/shmq]
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the queues, like `ipcs -q`
    #[command(after_help = EXIT_CODES)]
    Ls(ls::LsArgs),
    /// Remove queues by id or key, like `ipcrm -q` / `-Q`
    #[command(after_help = EXIT_CODES)]
    Rm(rm::RmArgs),
    /// Show every field of a queue's msqid_ds, and shmq's own figures
    #[command(after_help = EXIT_CODES)]
    Stat(stat::StatArgs),
    /// Send one message (msgsnd)
    #[command(after_help = EXIT_CODES)]
    Send(msg::SendArgs),
    /// Receive messages and write their text to standard output (msgrcv)
    #[command(after_help = EXIT_CODES)]
    Recv(msg::RecvArgs),
    /// Check every file of the namespace, recover what dead processes hold,
    /// remove stale files, and report damage with what to do about it
    #[command(after_help = doctor::EXIT_CODES)]
    Doctor(doctor::DoctorArgs),
    /// Compare shmq with the kernel's IPC mechanisms, measured in one run
    #[command(after_help = EXIT_CODES)]
    Bench(bench::BenchArgs),
    /// Push many checksummed messages through one queue (MPMC, mixed types
    /// and sizes) while processes come and go; report errors and throughput
    #[command(after_help = EXIT_CODES)]
    Soak(soak::SoakArgs),
    /// Carry local queues to NATS JetStream subjects and back, losing no
    /// message (see --help)
    #[command(after_help = EXIT_CODES)]
    Bridge(bridge::BridgeArgs),
    /// A producer or consumer of `shmq soak` (internal)
    #[command(hide = true)]
    SoakChild(soak::ChildArgs),
}

fn main() -> ExitCode {
    // A child process of `shmq bench` (this binary re-executed) serves its
    // parent and exits here.
    shmq_benches::child::serve_if_child(&[]);
    sys::default_sigpipe();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Ls(a) => ls::run(&namespace(cli)?, a),
        Command::Rm(a) => rm::run(&namespace(cli)?, a),
        Command::Stat(a) => stat::run(&namespace(cli)?, a),
        Command::Send(a) => msg::send(&namespace(cli)?, a),
        Command::Recv(a) => msg::recv(&namespace(cli)?, a),
        Command::Doctor(a) => doctor::run(cli.dir.as_deref(), a),
        Command::Bench(a) => bench::run(cli.dir.as_deref(), a),
        Command::Soak(a) => soak::run(cli.dir.as_deref(), a),
        Command::SoakChild(a) => soak::child(cli.dir.as_deref(), a),
        Command::Bridge(a) => bridge::run(cli.dir.as_deref(), a),
    }
}

/// The namespace of `--dir`, else the default one (`$SHMQ_DIR` or /dev/shm/shmq).
fn namespace(cli: &Cli) -> Result<Namespace, Failure> {
    let opened = match &cli.dir {
        Some(dir) => Namespace::open(dir),
        None => Namespace::open_default(),
    };
    opened.map_err(|e| Failure::namespace(&e))
}
