//! How the command fails: one line on stderr and an exit code.
//!
//! Messages read `shmq: <what>: <message> (<ERRNO NAME>)`; the engine's
//! error types already end their `Display` with the errno name. A namespace
//! that cannot be opened ends with what is wrong instead (`(corrupted or
//! foreign file)`, `(permission denied)`, ...).

use std::fmt::Display;
use std::process::ExitCode;

/// The operation failed (an errno from the engine, or an I/O error).
pub(crate) const EXIT_FAILED: u8 = 1;
/// The command line was wrong (clap uses the same code).
pub(crate) const EXIT_USAGE: u8 = 2;
/// The namespace could not be opened or is corrupted.
pub(crate) const EXIT_NAMESPACE: u8 = 3;

/// A failed command: what to print (if anything is left to print) and the
/// exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    message: Option<String>,
    code: u8,
}

impl Failure {
    /// An operation failed: `shmq: <what>: <err>`.
    pub(crate) fn op(what: impl Display, err: impl Display) -> Failure {
        Failure {
            message: Some(format!("shmq: {what}: {err}")),
            code: EXIT_FAILED,
        }
    }

    /// `msgget(key)` failed: [`Failure::op`], plus a line naming the queue's
    /// file when that file is what is wrong (damaged, foreign, refused).
    pub(crate) fn get(
        ns: &shmq::Namespace,
        key: impl Display,
        value: i32,
        err: impl Display,
    ) -> Failure {
        let f = Failure::op(format!("msgget {key}"), err);
        f.with_file_problem(ns.id_of_key(value).and_then(|id| ns.file_problem(id)))
    }

    /// Adds a second line naming the file behind the failure, if any.
    pub(crate) fn with_file_problem(mut self, problem: Option<shmq::OpenError>) -> Failure {
        if let (Some(m), Some(p)) = (&mut self.message, problem) {
            m.push_str(&format!("\nshmq: {p}; `shmq doctor` says what to do"));
        }
        self
    }

    /// A usage error the argument parser could not catch.
    pub(crate) fn usage(message: impl Display) -> Failure {
        Failure {
            message: Some(format!("shmq: {message}")),
            code: EXIT_USAGE,
        }
    }

    /// The namespace is unusable.
    pub(crate) fn namespace(e: &shmq::OpenError) -> Failure {
        let message = format!(
            "shmq: namespace {}: {} ({})",
            e.path.display(),
            e.detail,
            e.kind
        );
        Failure {
            message: Some(message),
            code: EXIT_NAMESPACE,
        }
    }

    /// A failure whose messages were printed already.
    pub(crate) fn reported(code: u8) -> Failure {
        Failure {
            message: None,
            code,
        }
    }

    /// Prints the message and gives the exit code.
    pub(crate) fn report(self) -> ExitCode {
        if let Some(m) = self.message {
            eprintln!("{m}");
        }
        ExitCode::from(self.code)
    }
}
