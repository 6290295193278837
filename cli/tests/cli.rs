//! The `shmq` binary, run as a user runs it, each test in its own namespace
//! under /dev/shm; `ls` is compared with `ipcs -q` on a kernel queue of the
//! same key and mode.

mod common;
use common::Out;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

/// Aborts the whole test process if a test runs longer than this.
const WATCHDOG: Duration = Duration::from_secs(60);
/// Kills a `shmq` run that takes longer than this, and fails the test.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// Aborts the process unless dropped within [`WATCHDOG`].
struct Watchdog(#[allow(dead_code)] mpsc::Sender<()>);

impl Watchdog {
    fn start(name: &'static str) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(WATCHDOG) {
                eprintln!("watchdog: test {name} still running after {WATCHDOG:?}; aborting");
                std::process::abort();
            }
        });
        Watchdog(tx)
    }
}

/// A test's own namespace directory, removed when dropped (also when the
/// test fails), and the test's watchdog.
struct Ns {
    dir: PathBuf,
    _watchdog: Watchdog,
}

impl Ns {
    fn new(name: &'static str) -> Ns {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("shmq-clitest-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Ns {
            dir,
            _watchdog: Watchdog::start(name),
        }
    }

    /// Runs `shmq --dir DIR ARGS...`.
    fn run(&self, args: &[&str]) -> Out {
        self.run_with_input(args, None)
    }

    /// Runs `shmq --dir DIR ARGS...` with `input` on its standard input.
    fn run_with_input(&self, args: &[&str], input: Option<&[u8]>) -> Out {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shmq"));
        cmd.arg("--dir").arg(&self.dir).args(args);
        for var in [
            "SHMQ_DIR",
            "SHMQ_MSGMAX",
            "SHMQ_MSGMNB",
            "SHMQ_MSGMNI",
            "SHMQ_MSGTQL",
            "SHMQ_QBYTES_MAX",
            "SHMQ_SLOTS",
        ] {
            cmd.env_remove(var);
        }
        run_limited(cmd, input)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `cmd` to completion, killing it after [`RUN_LIMIT`].
fn run_limited(cmd: Command, input: Option<&[u8]>) -> Out {
    common::run_limited(cmd, input, RUN_LIMIT)
}

#[track_caller]
fn ok(out: &Out) {
    assert_eq!(out.code, 0, "expected success: {out:?}");
}

const EMPTY_LS: &str =
    "\n------ Message Queues --------\nkey        msqid      owner      perms      used-bytes   messages    \n\n";

#[test]
fn send_then_recv_round_trip() {
    let ns = Ns::new("round_trip");
    ok(&ns.run(&["send", "0x1234", "7", "hello world", "--create"]));
    let got = ns.run(&["recv", "0x1234"]);
    ok(&got);
    assert_eq!(got.stdout, "hello world");

    // From standard input and from a file; read back oldest first, with types.
    ok(&ns.run_with_input(&["send", "0x1234", "3", "-"], Some(b"from stdin\n")));
    let file = ns.dir.join("message.txt");
    std::fs::write(&file, b"from a file").unwrap();
    ok(&ns.run(&["send", "0x1234", "2", "--file", file.to_str().unwrap()]));
    let got = ns.run(&[
        "recv",
        "0x1234",
        "--count",
        "2",
        "--show-type",
        "--newline",
        "--nowait",
    ]);
    ok(&got);
    assert_eq!(got.stdout, "3\tfrom stdin\n\n2\tfrom a file\n");

    // Negative msgtyp: the lowest type <= 250.
    for t in ["300", "100", "200"] {
        ok(&ns.run(&["send", "0x1234", t, &format!("m{t}")]));
    }
    let got = ns.run(&["recv", "0x1234", "-250", "--show-type", "--nowait"]);
    ok(&got);
    assert_eq!(got.stdout, "100\tm100");
    let got = ns.run(&["recv", "0x1234", "200", "--except", "--nowait"]);
    ok(&got);
    assert_eq!(got.stdout, "m300");
    let got = ns.run(&["recv", "0x1234", "200", "--except", "--nowait"]);
    assert_eq!(got.code, 1, "only type 200 is left: {got:?}");
    let got = ns.run(&["recv", "0x1234", "200", "--nowait"]);
    ok(&got);
    assert_eq!(got.stdout, "m200");
}

#[test]
fn recv_nowait_on_empty_queue_fails_with_enomsg() {
    let ns = Ns::new("enomsg");
    ok(&ns.run(&["send", "0x1234", "1", "only", "--create"]));
    ok(&ns.run(&["recv", "0x1234", "--nowait"]));
    let got = ns.run(&["recv", "0x1234", "--nowait"]);
    assert_eq!(got.code, 1, "{got:?}");
    assert_eq!(got.stdout, "");
    assert_eq!(
        got.stderr,
        "shmq: msgrcv 0x1234: no message of the wanted type (ENOMSG)\n"
    );
}

#[test]
fn recv_timeout_on_empty_queue_fails_with_etimedout() {
    let ns = Ns::new("etimedout");
    let got = ns.run(&["recv", "0x1234", "--create", "--timeout", "200ms"]);
    assert_eq!(got.code, 1, "{got:?}");
    assert!(got.stderr.contains("(ETIMEDOUT)"), "{got:?}");
}

#[test]
fn blocked_recv_gets_a_later_send() {
    let ns = Ns::new("blocked_recv");
    ok(&ns.run(&["send", "0x1234", "1", "first", "--create"]));
    ok(&ns.run(&["recv", "0x1234"]));
    let receiver = {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shmq"));
        cmd.arg("--dir")
            .arg(&ns.dir)
            .args(["recv", "0x1234", "5", "--timeout", "20s"]);
        std::thread::spawn(move || run_limited(cmd, None))
    };
    std::thread::sleep(Duration::from_millis(300));
    ok(&ns.run(&["send", "0x1234", "5", "late"]));
    let got = receiver.join().unwrap();
    ok(&got);
    assert_eq!(got.stdout, "late");
}

#[test]
fn send_without_create_to_an_absent_key_is_enoent() {
    let ns = Ns::new("enoent");
    let got = ns.run(&["send", "0x1234", "1", "text"]);
    assert_eq!(got.code, 1, "{got:?}");
    assert_eq!(
        got.stderr,
        "shmq: msgget 0x1234: no queue for this key (ENOENT)\n"
    );
}

#[test]
fn ls_on_an_empty_namespace_prints_only_the_header() {
    let ns = Ns::new("ls_empty");
    let got = ns.run(&["ls"]);
    ok(&got);
    assert_eq!(got.stdout, EMPTY_LS);
}

#[test]
fn ls_shows_a_created_queue() {
    let ns = Ns::new("ls_row");
    ok(&ns.run(&["send", "0x1234", "1", "hello", "--create", "--mode", "640"]));
    let got = ns.run(&["ls"]);
    ok(&got);
    let lines: Vec<&str> = got.stdout.split('\n').collect();
    assert_eq!(lines.len(), 6, "{got:?}");
    let row = lines[3];
    assert!(row.starts_with("0x00001234 0          "), "{row:?}");
    assert_eq!(
        &row[32..],
        " 640        5            1           ",
        "{row:?}"
    );
    assert_eq!(&lines[4..], ["", ""]);
}

#[test]
fn rm_by_id_and_by_key_then_ls_shows_nothing() {
    let ns = Ns::new("rm");
    ok(&ns.run(&["send", "0x1234", "1", "a", "--create"]));
    ok(&ns.run(&["send", "0x5678", "1", "b", "--create"]));
    ok(&ns.run(&["rm", "-q", "0"]));
    ok(&ns.run(&["rm", "-Q", "0x5678"]));
    assert_eq!(ns.run(&["ls"]).stdout, EMPTY_LS);
    let got = ns.run(&["send", "0x1234", "1", "a"]);
    assert_eq!(got.code, 1, "the key is free again: {got:?}");
    ok(&ns.run(&["send", "0x1234", "1", "a", "--create"]));
    ok(&ns.run(&["send", "0x4321", "1", "a", "--create"]));
    ok(&ns.run(&["rm", "--all"]));
    assert_eq!(ns.run(&["ls"]).stdout, EMPTY_LS);
}

#[test]
fn rm_of_an_unknown_id_or_key_fails_in_ipcrms_words() {
    let ns = Ns::new("rm_invalid");
    let got = ns.run(&["rm", "-q", "999999"]);
    assert_eq!(got.code, 1, "{got:?}");
    assert_eq!(got.stderr, "ipcrm: invalid id (999999)\n");
    let got = ns.run(&["rm", "-Q", "0x1234"]);
    assert_eq!(got.code, 1, "{got:?}");
    assert_eq!(got.stderr, "ipcrm: invalid key (0x1234)\n");
}

#[test]
fn stat_shows_every_msqid_ds_field() {
    let ns = Ns::new("stat");
    ok(&ns.run(&[
        "send", "0x1234", "9", "12345678", "--create", "--mode", "600",
    ]));
    let got = ns.run(&["stat", "0"]);
    ok(&got);
    let fields: Vec<(&str, &str)> = got
        .stdout
        .lines()
        .map(|l| l.split_once(": ").expect("name: value"))
        .collect();
    let names: Vec<&str> = fields.iter().map(|f| f.0).collect();
    for name in [
        "key",
        "uid",
        "gid",
        "cuid",
        "cgid",
        "mode",
        "seq",
        "stime",
        "rtime",
        "ctime",
        "cbytes",
        "qnum",
        "qbytes",
        "lspid",
        "lrpid",
        "nodes_in_use",
        "live_types",
    ] {
        assert!(names.contains(&name), "{name} missing: {got:?}");
    }
    let value = |n: &str| fields.iter().find(|f| f.0 == n).unwrap().1;
    assert_eq!(
        (value("key"), value("mode"), value("cbytes"), value("qnum")),
        ("0x00001234", "0600", "8", "1")
    );
    let msqid_ds = |s: &str| s.lines().take(16).collect::<Vec<_>>().join("\n");
    assert_eq!(
        msqid_ds(&ns.run(&["stat", "--key", "0x1234"]).stdout),
        msqid_ds(&got.stdout)
    );
    // Times as `ipcs -q -i` prints them: ctime(3)'s form, or "Not set".
    assert_eq!(value("rtime"), "Not set", "{got:?}");
    for name in ["stime", "ctime"] {
        assert!(is_ctime(value(name)), "{name}: {:?}", value(name));
    }
    // --json: the same fields, times in seconds since the epoch.
    let json = ns.run(&["stat", "0", "--json"]);
    ok(&json);
    assert_eq!(json.stdout.lines().count(), 1, "{json:?}");
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("one JSON object");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for name in ["stime", "ctime"] {
        let t = v[name].as_i64().unwrap_or_else(|| panic!("{name}: {v}"));
        assert!((now - 600..=now + 5).contains(&t), "{name} {t}, now {now}");
    }
    assert_eq!(v["rtime"], 0);
    assert_eq!(
        (&v["key"], &v["mode"], &v["cbytes"], &v["qnum"], &v["msqid"]),
        (
            &serde_json::json!("0x00001234"),
            &serde_json::json!("0600"),
            &serde_json::json!(8),
            &serde_json::json!(1),
            &serde_json::json!(0)
        )
    );
    for (name, _) in &fields {
        assert!(v.get(name).is_some(), "--json lacks {name}: {v}");
    }
}

/// Whether `s` has ctime(3)'s form without its newline: `Sat Dec  5
/// 06:30:00 2026`.
fn is_ctime(s: &str) -> bool {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    s.len() == 24
        && DAYS.contains(&&s[0..3])
        && MONTHS.contains(&&s[4..7])
        && b[3] == b' '
        && b[7] == b' '
        && (b[8] == b' ' || b[8].is_ascii_digit())
        && digits(9..10)
        && b[10] == b' '
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b' '
        && digits(20..24)
}

#[test]
fn ls_json_is_one_object() {
    let ns = Ns::new("json");
    ok(&ns.run(&["send", "0x1234", "1", "hello", "--create"]));
    let got = ns.run(&["ls", "--json"]);
    ok(&got);
    assert_eq!(got.stdout.lines().count(), 1);
    assert!(got.stdout.starts_with("{\"namespace\":"), "{got:?}");
    assert!(
        got.stdout.contains("\"key\":\"0x00001234\",\"msqid\":0,"),
        "{got:?}"
    );
    assert!(
        got.stdout.contains("\"used_bytes\":5,\"messages\":1,"),
        "{got:?}"
    );
    assert!(got.stdout.ends_with("}]}\n"), "{got:?}");
}

#[test]
fn usage_errors_exit_2() {
    let ns = Ns::new("usage");
    for args in [
        &["send", "0x1234", "0", "x"][..],
        &["send", "0", "1", "x"],
        &["recv"],
        &["rm"],
        &["nonsense"],
    ] {
        let got = ns.run(args);
        assert_eq!(got.code, 2, "{args:?}: {got:?}");
    }
    let got = ns.run(&["recv", "0x1234", "--timeout", "soon"]);
    assert_eq!(got.code, 2, "{got:?}");
    // `shmq bench` itself is tested in tests/bench.rs.
    let got = ns.run(&["bench", "--no-such-option"]);
    assert_eq!(got.code, 2, "{got:?}");
    ok(&ns.run(&["--help"]));
    assert!(ns.run(&["recv", "--help"]).stdout.contains("Exit codes:"));
}

// ----- against the kernel's own queue and util-linux's ipcs -----

/// A kernel queue, removed (IPC_RMID) when dropped, also on failure.
struct KernelQueue {
    id: i32,
    key: i32,
}

impl KernelQueue {
    /// Creates a kernel queue with a key nobody uses (IPC_EXCL), or `None`
    /// when this system has no usable SysV IPC.
    fn create(mode: i32) -> Option<KernelQueue> {
        let base = 0x5e00_0000 | ((std::process::id() as i32 & 0xffff) << 8);
        for n in 0..256 {
            let key = base | n;
            // SAFETY: msgget takes no pointers.
            let id = unsafe { libc::msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | mode) };
            if id >= 0 {
                return Some(KernelQueue { id, key });
            }
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
                return None;
            }
        }
        None
    }

    /// Sends `text` with type 1 (IPC_NOWAIT).
    fn send(&self, text: &[u8]) {
        #[repr(C)]
        struct Msg {
            mtype: libc::c_long,
            mtext: [u8; 64],
        }
        let mut m = Msg {
            mtype: 1,
            mtext: [0; 64],
        };
        m.mtext[..text.len()].copy_from_slice(text);
        // SAFETY: `m` is a live msgbuf whose mtext holds at least `text.len()` bytes.
        let rc = unsafe {
            libc::msgsnd(
                self.id,
                (&m as *const Msg).cast(),
                text.len(),
                libc::IPC_NOWAIT,
            )
        };
        assert_eq!(rc, 0, "msgsnd: {}", std::io::Error::last_os_error());
    }
}

impl Drop for KernelQueue {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID takes no buffer (a null pointer is allowed).
        unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

/// `ipcs -q ARGS...` in the C locale, or `None` when util-linux's ipcs is
/// not installed.
fn ipcs(args: &[&str]) -> Option<String> {
    let version = Command::new("ipcs").arg("-V").output().ok()?;
    if !String::from_utf8_lossy(&version.stdout).contains("util-linux") {
        return None;
    }
    let mut cmd = Command::new("ipcs");
    cmd.arg("-q").args(args).env("LC_ALL", "C");
    let out = run_limited(cmd, None);
    assert_eq!(out.code, 0, "ipcs: {out:?}");
    Some(out.stdout)
}

/// The row of `key` in an `ipcs -q` listing.
fn row_of(listing: &str, key: i32) -> String {
    let prefix = format!("0x{:08x} ", key as u32);
    listing
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix}in {listing:?}"))
        .to_string()
}

#[test]
fn ls_matches_ipcs_for_the_same_queue() {
    let ns = Ns::new("vs_ipcs");
    let Some(kernel) = KernelQueue::create(0o640) else {
        eprintln!("skipped: no usable kernel SysV message queues here");
        return;
    };
    kernel.send(b"hello");
    let key = format!("{:#x}", kernel.key as u32);
    ok(&ns.run(&["send", &key, "1", "hello", "--create", "--mode", "640"]));
    let Some(theirs) = ipcs(&[]) else {
        eprintln!("skipped: util-linux ipcs not installed");
        return;
    };
    let ours = ns.run(&["ls"]);
    ok(&ours);
    let ours = ours.stdout;

    // The blank line, the title and the column header, byte for byte; a
    // blank line after the table.
    let head = |s: &str| s.split_inclusive('\n').take(3).collect::<String>();
    assert_eq!(head(&ours), head(&theirs));
    assert!(
        theirs.ends_with("\n\n") && ours.ends_with("\n\n"),
        "{theirs:?}\n{ours:?}"
    );

    // The row: key, then (after msqid and owner, which legitimately
    // differ) perms, used-bytes and messages, padding included.
    let (k, o) = (row_of(&theirs, kernel.key), row_of(&ours, kernel.key));
    assert_eq!(k.len(), o.len(), "\n{k:?}\n{o:?}");
    assert_eq!(k[..11], o[..11]);
    assert_eq!(k[32..], o[32..], "\n{k:?}\n{o:?}");
    let fields = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(fields(&o)[3..], ["640", "5", "1"]);

    // The other formats' titles and headers.
    for flag in ["-p", "-t", "-c", "-u"] {
        let theirs = ipcs(&[flag]).unwrap();
        let ours = ns.run(&["ls", flag]);
        ok(&ours);
        let n = if flag == "-u" { 2 } else { 3 };
        let head = |s: &str| s.split_inclusive('\n').take(n).collect::<String>();
        assert_eq!(head(&ours.stdout), head(&theirs), "ls {flag}");
    }
    let theirs = ipcs(&["-l"]).unwrap();
    let ours = ns.run(&["ls", "-l"]).stdout;
    let labels = |s: &str| {
        s.lines()
            .map(|l| l.split(" = ").next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(labels(&ours), labels(&theirs));
}

/// A queue file that is damaged, foreign or not a file at all: every command
/// that needs it fails with a line naming the file and what is wrong with it,
/// `ls` leaves it out saying why, nothing crashes, and the rest of the
/// namespace keeps working.
#[test]
fn a_damaged_queue_file_is_named_in_the_error_and_harms_nothing_else() {
    use std::os::unix::fs::FileExt;
    type Damage = fn(&std::path::Path);
    let damages: [(&str, Damage, &str); 8] = [
        (
            "magic",
            |f| {
                std::fs::File::options()
                    .write(true)
                    .open(f)
                    .unwrap()
                    .write_all_at(b"NOTSHMQ!", 0)
                    .unwrap()
            },
            "wrong magic",
        ),
        (
            "version",
            |f| {
                std::fs::File::options()
                    .write(true)
                    .open(f)
                    .unwrap()
                    .write_all_at(&[0xee; 4], 8)
                    .unwrap()
            },
            "layout version",
        ),
        (
            "zero",
            |f| std::fs::write(f, b"").unwrap(),
            "shorter than a header",
        ),
        (
            "text",
            |f| std::fs::write(f, b"hello, I am a text file\n").unwrap(),
            "shorter than a header",
        ),
        (
            "short",
            |f| {
                std::fs::File::options()
                    .write(true)
                    .open(f)
                    .unwrap()
                    .set_len(64 << 10)
                    .unwrap()
            },
            "size",
        ),
        (
            "directory",
            |f| {
                std::fs::remove_file(f).unwrap();
                std::fs::create_dir(f).unwrap();
            },
            "not a regular file",
        ),
        (
            "symlink",
            |f| {
                std::fs::remove_file(f).unwrap();
                std::os::unix::fs::symlink("/etc/hostname", f).unwrap();
            },
            "symbolic link",
        ),
        (
            "foreign",
            |f| {
                // Another namespace's valid queue file, moved in.
                let other = f.with_extension("other");
                std::fs::rename(&other, f).unwrap();
            },
            "another namespace",
        ),
    ];
    for (name, damage, why) in damages {
        let ns = Ns::new("damaged_file");
        ok(&ns.run(&["send", "0x1234", "1", "kept", "--create"]));
        let file = ns.dir.join("msq.0");
        if name == "foreign" {
            let other = Ns::new("damaged_file_other");
            ok(&other.run(&["send", "0x1234", "1", "x", "--create"]));
            std::fs::copy(other.dir.join("msq.0"), file.with_extension("other")).unwrap();
        }
        damage(&file);
        let named = format!("shmq: {}: ", file.display());
        let check = |got: &Out, what: &str| {
            assert_eq!(got.code, 1, "{name}: {what}: {got:?}");
            assert!(
                got.stderr.contains(&named) && got.stderr.contains(why),
                "{name}: {what} should name the file and say {why:?}: {got:?}"
            );
        };
        check(&ns.run(&["send", "0x1234", "1", "x"]), "send");
        check(&ns.run(&["recv", "-n", "0x1234"]), "recv");
        check(&ns.run(&["stat", "0"]), "stat");
        let got = ns.run(&["ls"]);
        ok(&got);
        assert_eq!(got.stdout, EMPTY_LS, "{name}");
        assert!(
            got.stderr.contains("queue 0 not listed") && got.stderr.contains(why),
            "{name}: {got:?}"
        );
        // The rest of the namespace works.
        ok(&ns.run(&["send", "0x5678", "1", "other", "--create"]));
        let got = ns.run(&["recv", "-n", "0x5678"]);
        ok(&got);
        assert_eq!(got.stdout, "other", "{name}");
        // The doctor names it too, and removes it when told to.
        let got = ns.run(&["doctor", "--dry-run"]);
        assert_eq!(got.code, 5, "{name}: {got:?}");
        ok(&ns.run(&["doctor", "--remove", "0"]));
        assert_eq!(ns.run(&["doctor"]).code, 0, "{name}");
    }
}
