//! The `shmq` binary and POSIX queues: `send` / `recv` with a name and a
//! priority, `ls`'s POSIX section, `rm --mq`; each test in its own
//! namespace under /dev/shm, removed afterwards.
mod common;
use common::Out;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

struct Ns(PathBuf);

impl Ns {
    fn new(name: &str) -> Ns {
        let dir = PathBuf::from(format!(
            "/dev/shm/shmq-clitest-mq-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Ns(dir)
    }

    fn run(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shmq"));
        cmd.arg("--dir").arg(&self.0).args(args);
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(|k| k.starts_with("SHMQ_")) {
                cmd.env_remove(k);
            }
        }
        // POSIX limits of the test's own (the host's fs.mqueue.* may differ).
        cmd.env("SHMQ_MQ_MSG_DEFAULT", "10")
            .env("SHMQ_MQ_MSGSIZE_DEFAULT", "8192")
            .env("SHMQ_MQ_MSG_MAX", "10")
            .env("SHMQ_MQ_MSGSIZE_MAX", "8192");
        common::run_limited(cmd, None, Duration::from_secs(30))
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[track_caller]
fn ok(out: &Out) -> &str {
    assert_eq!(out.code, 0, "expected success: {out:?}");
    &out.stdout
}

#[test]
fn send_recv_ls_and_rm_by_name_with_priorities() {
    let ns = Ns::new("basic");
    ok(&ns.run(&["send", "/jobs", "3", "three", "--create", "--mode", "640"]));
    ok(&ns.run(&["send", "/jobs", "9", "nine"]));
    ok(&ns.run(&["send", "/jobs", "0", "zero"]));
    ok(&ns.run(&["send", "0x1234", "1", "sysv", "--create"]));
    let ls = ns.run(&["ls"]);
    let ls = ok(&ls);
    assert!(ls.contains("------ Message Queues --------"), "{ls}");
    assert!(ls.contains("------ POSIX Message Queues --------"), "{ls}");
    let row = ls
        .lines()
        .find(|l| l.starts_with("/jobs"))
        .expect("a /jobs row");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[2..], ["640", "10", "8192", "3"], "{row}");
    let json = ns.run(&["ls", "--json"]);
    let json = ok(&json);
    assert!(
        json.contains("\"posix_queues\":[{\"name\":\"/jobs\","),
        "{json}"
    );
    assert!(
        json.ends_with("\"perms\":\"640\",\"maxmsg\":10,\"msgsize\":8192,\"messages\":3}]}\n"),
        "{json}"
    );
    let got = ns.run(&["recv", "/jobs", "--count", "3", "--newline", "--show-type"]);
    assert_eq!(ok(&got), "9\tnine\n3\tthree\n0\tzero\n");
    let empty = ns.run(&["recv", "/jobs", "--nowait"]);
    assert_eq!(empty.code, 1, "{empty:?}");
    assert!(empty.stderr.contains("EAGAIN"), "{empty:?}");
    let timed = ns.run(&["recv", "/jobs", "--timeout", "50ms"]);
    assert!(timed.stderr.contains("ETIMEDOUT"), "{timed:?}");
    let bad = ns.run(&["send", "/jobs", "32768", "x"]);
    assert!(bad.code == 1 && bad.stderr.contains("EINVAL"), "{bad:?}");
    let usage = ns.run(&["recv", "/jobs", "5"]);
    assert_eq!(usage.code, 2, "{usage:?}");
    let missing = ns.run(&["send", "/nope", "1", "x"]);
    assert!(missing.stderr.contains("ENOENT"), "{missing:?}");
    ok(&ns.run(&["rm", "--mq", "/jobs"]));
    let again = ns.run(&["rm", "--mq", "/jobs"]);
    assert!(
        again.code == 1 && again.stderr.contains("ENOENT"),
        "{again:?}"
    );
    let ls = ns.run(&["ls"]);
    assert!(!ok(&ls).contains("POSIX"), "{ls:?}");
    ok(&ns.run(&["send", "/a", "1", "x", "--create"]));
    ok(&ns.run(&["rm", "--all"]));
    let ls = ns.run(&["ls"]);
    let ls = ok(&ls);
    assert!(!ls.contains("POSIX") && !ls.contains("0x00001234"), "{ls}");
}
