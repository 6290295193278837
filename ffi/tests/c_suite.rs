//! The C test suite: C programs in `ffi/tests/c/` and `examples/c/`,
//! compiled with `cc` and run as real processes.
//!
//! The parity programs (`errno_paths.c`, `blocking.c`) are written once
//! against the System V names and built two ways: plainly, and with
//! `-DSHMQ_LINK`, where `harness.h` renames `msgget` to `shmq_msgget` and so
//! on. One source then runs four ways — on the kernel (plain binary), through
//! `libshmq.so` and `libshmq.a` (the `-DSHMQ_LINK` binaries) and under
//! `LD_PRELOAD=libshmq_preload.so` (the plain binary again) — and the four
//! transcripts must be equal, the kernel's being the reference. Writing them
//! against `msgget` rather than `shmq_msgget` keeps the kernel runs honest:
//! the plain binary is an ordinary System V program.
//!
//! Every shmq run gets a namespace of its own (`/dev/shm/shmq-test-ffi-*`,
//! removed afterwards, also on failure), with the kernel's `msgmax`,
//! `msgmnb` and `msgmni`; every kernel queue a program creates is recorded
//! (`$SHMQ_CTEST_IDS`) and removed afterwards, also on failure; every program
//! runs under a time limit and is killed, with its children, past it.
//!
//! The libraries are taken from this test's own build directory
//! (`target/release/deps` for `cargo test --release`), where cargo builds
//! them, fresh, before it runs this file: `shmq-ffi` and `shmq-ffi-preload`
//! are dev-dependencies of this package (`shmq-ffi-tests`), not linked.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Longest any one C program may run.
const RUN_LIMIT: Duration = Duration::from_secs(120);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")) // ffi/tests
        .ancestors()
        .nth(2)
        .expect("ffi/tests has a grandparent")
        .to_owned()
}

/// The built libraries, beside this test's executable.
struct Libs {
    dir: PathBuf,
}

impl Libs {
    fn find() -> Libs {
        // This test runs as target/<profile>/deps/c_suite-HASH, and cargo
        // built its dev-dependencies' libraries into the same directory.
        let exe = std::env::current_exe().expect("current_exe");
        let dir = exe.parent().expect("target/<profile>/deps").to_owned();
        let libs = Libs { dir };
        for p in [libs.so(), libs.a(), libs.preload()] {
            assert!(
                p.exists(),
                "{} is missing: cargo should have built it as a dev-dependency",
                p.display()
            );
        }
        libs
    }
    fn so(&self) -> PathBuf {
        self.dir.join("libshmq.so")
    }
    fn a(&self) -> PathBuf {
        self.dir.join("libshmq.a")
    }
    fn preload(&self) -> PathBuf {
        self.dir.join("libshmq_preload.so")
    }
}

/// A temporary directory for compiled programs (mode 0755, so that a child
/// that dropped to an unprivileged user can still reach files in it).
struct BuildDir(PathBuf);

impl BuildDir {
    fn new() -> BuildDir {
        let dir = std::env::temp_dir().join(format!("shmq-ctest-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        BuildDir(dir)
    }

    /// Compiles `source` (relative to the repository) into `name` with
    /// warnings as errors; `extra` comes after the source (libraries, ...).
    fn cc(&self, name: &str, source: &str, extra: &[&str]) -> PathBuf {
        let out = self.0.join(name);
        let root = repo();
        let o = Command::new("cc")
            .args([
                "-std=c11",
                "-D_GNU_SOURCE",
                "-O1",
                "-Wall",
                "-Wextra",
                "-Werror",
            ])
            .arg(format!("-I{}", root.join("ffi/tests/c").display()))
            .arg(format!("-I{}", root.join("include").display()))
            .arg("-o")
            .arg(&out)
            .arg(root.join(source))
            .args(extra)
            .output()
            .expect("cannot run cc: install a C compiler (.ci/run does)");
        assert!(
            o.status.success(),
            "cc {source} failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }

    /// `source` built as a plain System V program.
    fn plain(&self, source: &str) -> PathBuf {
        let name = format!("{}.plain", stem(source));
        self.cc(&name, source, &[])
    }

    /// `source` built with `-DSHMQ_LINK` against `libshmq.so`.
    fn linked(&self, source: &str, libs: &Libs) -> PathBuf {
        let name = format!("{}.linked", stem(source));
        let l = format!("-L{}", libs.dir.display());
        let rpath = format!("-Wl,-rpath,{}", libs.dir.display());
        self.cc(
            &name,
            source,
            &["-DSHMQ_LINK", &l, &rpath, "-lshmq", "-lpthread"],
        )
    }

    /// `source` built with `-DSHMQ_LINK` against `libshmq.a`.
    fn static_linked(&self, source: &str, libs: &Libs) -> PathBuf {
        let name = format!("{}.static", stem(source));
        let a = libs.a().display().to_string();
        self.cc(
            &name,
            source,
            &[
                "-DSHMQ_LINK",
                &a,
                "-lgcc_s",
                "-lutil",
                "-lrt",
                "-lpthread",
                "-lm",
                "-ldl",
            ],
        )
    }
}

impl Drop for BuildDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stem(source: &str) -> &str {
    Path::new(source).file_stem().unwrap().to_str().unwrap()
}

/// A namespace directory for one shmq run. Not created here: shmq creates it
/// (mode 01777) on first use. Removed when dropped.
struct TempNamespace(PathBuf);

impl TempNamespace {
    fn new() -> TempNamespace {
        TempNamespace(PathBuf::from(format!(
            "/dev/shm/shmq-test-ffi-{}",
            unique()
        )))
    }
}

impl Drop for TempNamespace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The file where a kernel run records the ids of the queues it made; every
/// one is removed from the kernel when dropped.
struct KernelIds(PathBuf);

impl KernelIds {
    fn new(build: &BuildDir) -> KernelIds {
        let path = build.0.join(format!("kernel-ids-{}", unique()));
        std::fs::write(&path, "").unwrap();
        // A child that dropped to another user appends to it too.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        KernelIds(path)
    }
}

impl Drop for KernelIds {
    fn drop(&mut self) {
        let ids = std::fs::read_to_string(&self.0).unwrap_or_default();
        for id in ids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: IPC_RMID takes no buffer; an id already removed fails
            // harmlessly.
            unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
        }
    }
}

/// Removes the kernel queue of `key`, if any, when dropped.
struct KernelKey(i32);

impl Drop for KernelKey {
    fn drop(&mut self) {
        // SAFETY: plain system calls; IPC_RMID takes no buffer.
        unsafe {
            let id = libc::msgget(self.0, 0);
            if id >= 0 {
                libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut());
            }
        }
    }
}

/// A key base of this test process's own, so that concurrent runs (and
/// other projects' tests) do not meet on the kernel.
fn key_base(offset: i32) -> i32 {
    0x5e00_0000 | ((std::process::id() as i32 & 0xffff) << 8) | (offset << 4)
}

/// What a finished program left.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self, what: &str) -> String {
        assert!(
            self.status.success(),
            "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self.stdout
    }
}

/// Runs `cmd` in a process group of its own, killed (with every process it
/// forked) if it outlives [`RUN_LIMIT`].
fn run(mut cmd: Command, what: &str) -> Run {
    // Only what the test sets: an SHMQ_DIR or LD_PRELOAD inherited from the
    // developer's shell must not reach the programs.
    let set: Vec<_> = cmd.get_envs().map(|(k, _)| k.to_owned()).collect();
    for (k, _) in std::env::vars_os() {
        let shmq = k
            .to_str()
            .is_some_and(|k| k.starts_with("SHMQ_") || k == "LD_PRELOAD");
        if shmq && !set.contains(&k) {
            cmd.env_remove(k);
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = read(Box::new(child.stdout.take().unwrap()));
    let err = read(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) of the process group we made for this child.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            panic!("{what}: still running after {RUN_LIMIT:?}; killed (watchdog)");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Processes it forked may hold the pipes: end them too.
    // SAFETY: kill(2) of the process group we made; it may be empty.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    Run {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// The kernel's own value of `/proc/sys/kernel/NAME`.
fn sysctl(name: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| panic!("/proc/sys/kernel/{name}: {e}"))
}

/// `program` with the environment of a shmq run in namespace `ns`, with the
/// kernel's limits.
fn shmq_command(program: &Path, ns: &TempNamespace) -> Command {
    let mut c = Command::new(program);
    c.env("SHMQ_DIR", &ns.0)
        .env("SHMQ_MSGMAX", sysctl("msgmax"))
        .env("SHMQ_MSGMNB", sysctl("msgmnb"))
        .env("SHMQ_MSGMNI", sysctl("msgmni"));
    c
}

/// Asserts that `got` equals the kernel's transcript, showing the first
/// difference.
fn assert_same_as_kernel(kernel: &str, got: &str, how: &str) {
    if kernel == got {
        return;
    }
    let (k, g): (Vec<_>, Vec<_>) = (kernel.lines().collect(), got.lines().collect());
    let i = k
        .iter()
        .zip(&g)
        .position(|(a, b)| a != b)
        .unwrap_or(k.len().min(g.len()));
    panic!(
        "{how} differs from the kernel at line {}:\n  kernel: {:?}\n  {how}: {:?}\n\
         --- kernel\n{kernel}\n--- {how}\n{got}",
        i + 1,
        k.get(i),
        g.get(i)
    );
}

/// Runs the parity program `source` on the kernel, through libshmq.so,
/// through libshmq.a (if `with_static`) and under the preload library, and
/// compares every transcript with the kernel's. Returns the kernel's.
fn parity(source: &str, offset: i32, with_static: bool) -> String {
    let libs = Libs::find();
    let build = BuildDir::new();
    let plain = build.plain(source);
    let linked = build.linked(source, &libs);
    let base = format!("{:#x}", key_base(offset));

    let kernel = {
        let ids = KernelIds::new(&build);
        let mut c = Command::new(&plain);
        c.arg(&base).env("SHMQ_CTEST_IDS", &ids.0);
        run(c, &format!("{source} on the kernel")).ok("kernel run")
    };
    assert!(
        kernel.ends_with("# end\n"),
        "the kernel run did not finish:\n{kernel}"
    );

    let mut runs = vec![("libshmq.so", linked)];
    if with_static {
        runs.push(("libshmq.a", build.static_linked(source, &libs)));
    }
    for (how, program) in runs {
        let ns = TempNamespace::new();
        let mut c = shmq_command(&program, &ns);
        c.arg(&base);
        let got = run(c, &format!("{source} through {how}")).ok(how);
        assert_same_as_kernel(&kernel, &got, how);
    }

    let ns = TempNamespace::new();
    let mut c = shmq_command(&plain, &ns);
    c.arg(&base).env("LD_PRELOAD", libs.preload());
    let got = run(c, &format!("{source} under LD_PRELOAD")).ok("preload run");
    assert_same_as_kernel(&kernel, &got, "LD_PRELOAD");
    kernel
}

#[test]
fn every_errno_path_matches_the_kernel_through_libshmq_and_the_preload_library() {
    let kernel = parity("ffi/tests/c/errno_paths.c", 1, true);
    // The reference itself says what it should: a few anchors, so that a
    // transcript that lost its meaning (all three broken alike) fails too.
    for line in [
        "NULL msgp: -1 EFAULT",
        "mtype 0: -1 EINVAL",
        "full, IPC_NOWAIT: -1 EAGAIN",
        "too big: -1 E2BIG",
        "type 3 absent: -1 ENOMSG",
        "create exclusive again: -1 EEXIST",
        "get absent key: -1 ENOENT",
        "unknown cmd 99: -1 EINVAL",
        "IPC_STAT NULL buf: -1 EFAULT",
        "NULL path: -1 EFAULT",
        "msgtyp -200: type 100",
    ] {
        assert!(kernel.contains(line), "kernel transcript lacks {line:?}");
    }
    if unsafe_geteuid() == 0 {
        for line in [
            "send to read-only: -1 EACCES",
            "IPC_RMID not owner: -1 EPERM",
            "child exited 0: yes",
        ] {
            assert!(kernel.contains(line), "kernel transcript lacks {line:?}");
        }
    }
}

fn unsafe_geteuid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

#[test]
fn blocked_callers_match_the_kernel_eintr_eidrm_sleep_and_pids_after_fork() {
    let kernel = parity("ffi/tests/c/blocking.c", 2, false);
    for line in [
        "receive, nothing there: -1 EINTR",
        "send, queue full: -1 EINTR",
        "  asleep while it waited: yes",
        "blocked sender: EIDRM",
        "blocked receiver: EIDRM",
        "lspid is the child: yes",
        "lrpid is the child: yes",
    ] {
        assert!(kernel.contains(line), "kernel transcript lacks {line:?}");
    }
}

/// Runs a section of `shmq_only.c` (linked to `program`) in a fresh
/// namespace with `env`.
fn shmq_only(program: &Path, section: &str, env: &[(&str, &str)]) -> String {
    let ns = TempNamespace::new();
    let mut c = Command::new(program);
    c.arg(section).env("SHMQ_DIR", &ns.0);
    for (k, v) in env {
        c.env(k, v);
    }
    run(c, &format!("shmq_only {section}")).ok(section)
}

/// The limits of the `timed` section of `shmq_only.c`.
const TIMED_LIMITS: &[(&str, &str)] = &[("SHMQ_MSGMAX", "8192"), ("SHMQ_MSGMNB", "16384")];

#[test]
fn shmq_only_behaviour_timed_calls_limits_namespace_errors_and_info() {
    let libs = Libs::find();
    let build = BuildDir::new();
    let program = build.linked("ffi/tests/c/shmq_only.c", &libs);
    /// (section, environment, expected transcript between its markers)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    // A fresh namespace has the host's limits (this process's IPC
    // namespace's, as the program's).
    let info = format!(
        "IPC_INFO: 1\nmsgpool 512000 msgmap 16384 msgmax {} msgmnb {} msgmni {} \
         msgssz 16 msgtql 16384 msgseg 65535\nMSG_INFO: 1\nmsgpool 2 msgmap 3 msgtql 10\n\
         MSG_STAT 1: 1\nqnum 1 seq 0\n",
        sysctl("msgmax"),
        sysctl("msgmnb"),
        sysctl("msgmni")
    );
    let cases: [Case; 5] = [
        (
            "timed",
            // It fills a queue with 8192-byte texts: 2 of them at these
            // limits, whatever the host's.
            TIMED_LIMITS,
            "receive, bad timeout 0: -1 EINVAL\nsend, bad timeout 0: -1 EINVAL\n\
             receive, bad timeout 1: -1 EINVAL\nsend, bad timeout 1: -1 EINVAL\n\
             receive, bad timeout 2: -1 EINVAL\nsend, bad timeout 2: -1 EINVAL\n\
             bad timeout beats a bad id: -1 EINVAL\n\
             receive, 100 ms, nothing there: -1 ETIMEDOUT\n\
             receive, zero timeout: -1 ETIMEDOUT\n\
             receive, timeout and IPC_NOWAIT: -1 ENOMSG\n\
             receive, NULL timeout, IPC_NOWAIT: -1 ENOMSG\n\
             send, timed, room: 0\nreceive, timed, there: 3\n\
             NULL msgp, timed: -1 EFAULT\n\
             send, 100 ms, full: -1 ETIMEDOUT\nsend, zero timeout, full: -1 ETIMEDOUT\n\
             send, timeout and IPC_NOWAIT, full: -1 EAGAIN\n\
             qnum 2 cbytes 16384\nrmid: 0\nreceive, timed, removed: -1 EINVAL\n",
        ),
        (
            "namespace",
            &[],
            "msgget, namespace is a file: -1 ENOMEM\nmsgsnd, no namespace: -1 EINVAL\n\
             msgrcv, no namespace: -1 EINVAL\nmsgctl IPC_STAT, no namespace: -1 EINVAL\n\
             msgctl IPC_INFO, no namespace: -1 EINVAL\n\
             msgget, directory cannot be made: -1 EACCES\n\
             msgget, good namespace: ok\nmsgget, namespace kept: ok\n",
        ),
        (
            "msgmni",
            &[("SHMQ_MSGMNI", "4")],
            "queue 0: id 0\nqueue 1: id 1\nqueue 2: id 2\nqueue 3: id 3\n\
             queue 4: -1 ENOSPC\nkeyed: ENOSPC\nafter one removal: ok\n",
        ),
        (
            "slots",
            &[("SHMQ_SLOTS", "1")],
            "send while a live thread holds the only slot: -1 ENOMEM\n\
             receive while a live thread holds the only slot: -1 ENOMEM\n\
             IPC_STAT needs no slot: 0\nholder's send: 0\n\
             receive once the holder is gone: 1\n",
        ),
        ("info", &[], &info),
    ];
    for (section, env, want) in cases {
        let got = shmq_only(&program, section, env);
        assert_eq!(
            got,
            format!("# {section}\n{want}# end\n"),
            "section {section}"
        );
    }
    // The static library too.
    let program = build.static_linked("ffi/tests/c/shmq_only.c", &libs);
    let got = shmq_only(&program, "timed", TIMED_LIMITS);
    assert!(got.contains("send, 100 ms, full: -1 ETIMEDOUT\n"), "{got}");
}

/// Runs `host_limits.c` (phase `phase`) on the kernel, through libshmq.so,
/// libshmq.a and under the preload library, each in a private IPC namespace
/// that the program makes itself, and compares the transcripts. The shmq
/// runs get a fresh namespace directory and no `SHMQ_*` limits, so the
/// namespace takes its limits from `/proc/sys/kernel/msg*` as the program
/// set them. `None` if the kernel run skipped (no `unshare(CLONE_NEWIPC)`).
fn host_limits(phase: &str, offset: i32) -> Option<String> {
    let source = "ffi/tests/c/host_limits.c";
    let libs = Libs::find();
    let build = BuildDir::new();
    let plain = build.plain(source);
    let base = format!("{:#x}", key_base(offset));
    // No SHMQ_CTEST_IDS: the kernel's queues live in the program's private
    // IPC namespace and vanish with it; their ids mean nothing out here.
    let mut c = Command::new(&plain);
    c.args([&base, phase]);
    let kernel = run(c, &format!("{source} {phase} on the kernel")).ok("kernel run");
    if let Some(why) = kernel.strip_prefix("# skip: ") {
        eprintln!("host_limits {phase}: skipped, {}", why.trim());
        return None;
    }
    assert!(
        kernel.ends_with("# end\n"),
        "the kernel run did not finish:\n{kernel}"
    );
    let runs = [
        ("libshmq.so", build.linked(source, &libs), false),
        ("libshmq.a", build.static_linked(source, &libs), false),
        ("LD_PRELOAD", plain, true),
    ];
    for (how, program, preload) in runs {
        let ns = TempNamespace::new();
        let mut c = Command::new(&program);
        c.args([&base, phase]).env("SHMQ_DIR", &ns.0);
        if preload {
            c.env("LD_PRELOAD", libs.preload());
        }
        let got = run(c, &format!("{source} {phase} through {how}")).ok(how);
        assert_same_as_kernel(&kernel, &got, how);
    }
    Some(kernel)
}

#[test]
fn a_new_namespace_takes_the_hosts_limits_as_set_in_a_private_ipc_namespace() {
    // Issue 16: kernel.msgmax 2048, msgmnb 4096, msgmni 100 set in a private
    // IPC namespace; IPC_INFO, MSG_INFO and what is enforced match the
    // kernel's there. (The host's own settings are never changed.)
    if let Some(kernel) = host_limits("info", 7) {
        for line in [
            "IPC_INFO: 0\n  msgpool 512000 msgmap 16384 msgmax 2048 msgmnb 4096 msgmni 100 \
             msgssz 16 msgtql 16384 msgseg 65535\n",
            "new queue's qbytes: 4096\n",
            "send msgmax + 1 bytes: -1 EINVAL\n",
            "send 1 more, queue full: -1 EAGAIN\n",
        ] {
            assert!(
                kernel.contains(line),
                "kernel transcript lacks {line:?}:\n{kernel}"
            );
        }
    }
}

#[test]
fn the_33rd_queue_is_enospc_with_msgmni_32_in_a_private_ipc_namespace() {
    if let Some(kernel) = host_limits("msgmni", 8) {
        for line in [
            "create 33: -1 ENOSPC\ncreated: 32\n",
            "private queue too: -1 ENOSPC\n",
            "MSG_INFO queues in use: 32\n",
            "create after the removal: ok\n",
        ] {
            assert!(
                kernel.contains(line),
                "kernel transcript lacks {line:?}:\n{kernel}"
            );
        }
    }
}

#[test]
fn sender_exits_before_receiver_starts_under_preload_and_no_kernel_queue_appears() {
    let libs = Libs::find();
    let build = BuildDir::new();
    let sender = build.plain("examples/c/sender.c");
    let receiver = build.plain("examples/c/receiver.c");
    let ns = TempNamespace::new();
    let key = key_base(3);
    let _cleanup = KernelKey(key); // in case the preload library fails open
    let preloaded = |program: &Path| {
        let mut c = Command::new(program);
        c.env("SHMQ_DIR", &ns.0).env("LD_PRELOAD", libs.preload());
        c
    };

    let mut c = preloaded(&sender);
    c.args([key.to_string(), "7".into(), "hello from C".into()]);
    run(c, "sender").ok("sender"); // run() waits: the sender is gone now

    // No kernel queue has this key ...
    // SAFETY: plain system call.
    let kid = unsafe { libc::msgget(key, 0) };
    let errno = std::io::Error::last_os_error().raw_os_error();
    assert_eq!(
        (kid, errno),
        (-1, Some(libc::ENOENT)),
        "a kernel queue appeared"
    );
    if let Ok(o) = Command::new("ipcs").arg("-q").output() {
        let ipcs = String::from_utf8_lossy(&o.stdout);
        assert!(
            !ipcs.contains(&format!("{key:#010x}")),
            "ipcs -q lists it:\n{ipcs}"
        );
    }
    // ... the namespace has it, with the message waiting.
    let shmq_ns = shmq::Namespace::open(&ns.0).unwrap();
    let ids = shmq_ns.ids();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let q = shmq_ns.queue(ids[0]).unwrap();
    let st = q.stat().unwrap();
    assert_eq!((st.perm.key, st.perm.mode, st.qnum), (key, 0o660, 1));

    let mut c = preloaded(&receiver);
    c.args([key.to_string(), "7".into()]);
    assert_eq!(run(c, "receiver").ok("receiver"), "hello from C\n");
    assert_eq!(q.stat().unwrap().qnum, 0);
}

#[test]
fn sender_and_receiver_examples_work_on_the_kernel_too() {
    let build = BuildDir::new();
    let sender = build.plain("examples/c/sender.c");
    let receiver = build.plain("examples/c/receiver.c");
    let key = key_base(4);
    let _cleanup = KernelKey(key);
    let mut c = Command::new(&sender);
    c.args([key.to_string(), "3".into(), "kernel".into()]);
    run(c, "sender on the kernel").ok("sender");
    let mut c = Command::new(&receiver);
    c.args([key.to_string(), "3".into()]);
    assert_eq!(run(c, "receiver on the kernel").ok("receiver"), "kernel\n");
}

#[test]
fn create_and_remove_ten_times_prints_ids_advancing_by_msgmni_under_preload() {
    let libs = Libs::find();
    let build = BuildDir::new();
    let ids = build.plain("examples/c/ids.c");
    let ns = TempNamespace::new();
    let mut c = Command::new(&ids);
    c.arg("0x1d5")
        .env("SHMQ_DIR", &ns.0)
        .env("SHMQ_MSGMNI", "50")
        .env("LD_PRELOAD", libs.preload());
    let want: String = (0..10).map(|i| format!("{}\n", i * 50)).collect();
    assert_eq!(run(c, "ids under preload").ok("ids"), want);
}

#[test]
fn pkg_config_line_from_the_readme_builds_a_working_program() {
    let libs = Libs::find();
    let build = BuildDir::new();
    // ffi/build.rs writes target/<profile>/pkgconfig/shmq.pc for the
    // libraries a `cargo build` leaves in target/<profile>; a test build
    // leaves them in deps/ only, so the copy used here points there.
    let profile_dir = libs.dir.parent().unwrap();
    let pc = std::fs::read_to_string(profile_dir.join("pkgconfig/shmq.pc"))
        .expect("ffi/build.rs wrote no target/<profile>/pkgconfig/shmq.pc");
    let want = format!("libdir={}\n", profile_dir.display());
    assert!(pc.contains(&want), "shmq.pc lacks {want:?}:\n{pc}");
    let pc_dir = build.0.join("pkgconfig");
    std::fs::create_dir_all(&pc_dir).unwrap();
    let pc = pc.replace(&want, &format!("libdir={}\n", libs.dir.display()));
    std::fs::write(pc_dir.join("shmq.pc"), pc).unwrap();
    let out = build.0.join("pc_app");
    let script = format!(
        "cc -D_GNU_SOURCE -DSHMQ_LINK -I{tests} -o {out} {src} $(pkg-config --cflags --libs shmq)",
        tests = repo().join("ffi/tests/c").display(),
        out = out.display(),
        src = repo().join("ffi/tests/c/shmq_only.c").display(),
    );
    let o = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("PKG_CONFIG_PATH", &pc_dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{script}\n{}\n(is pkg-config installed? .ci/run installs it)",
        String::from_utf8_lossy(&o.stderr)
    );
    // Runs without LD_LIBRARY_PATH (the .pc file adds an rpath).
    let got = shmq_only(&out, "info", &[]);
    assert!(got.contains("MSG_INFO: 1\n"), "{got}");
}

#[test]
fn msqid_ds_ipc_perm_and_msginfo_are_laid_out_as_glibc_and_prototypes_match() {
    use std::mem::{offset_of, size_of};
    let libs = Libs::find();
    let build = BuildDir::new();
    let program = build.linked("ffi/tests/c/layout.c", &libs);
    let got = run(Command::new(&program), "layout").ok("layout");
    let mut want = String::from("prototypes 1\n");
    let mut line = |name: &str, v: usize| want.push_str(&format!("{name} {v}\n"));
    line("msqid_ds.size", size_of::<libc::msqid_ds>());
    line("msqid_ds.msg_perm", offset_of!(libc::msqid_ds, msg_perm));
    line("msqid_ds.msg_stime", offset_of!(libc::msqid_ds, msg_stime));
    line("msqid_ds.msg_rtime", offset_of!(libc::msqid_ds, msg_rtime));
    line("msqid_ds.msg_ctime", offset_of!(libc::msqid_ds, msg_ctime));
    line(
        "msqid_ds.__msg_cbytes",
        offset_of!(libc::msqid_ds, __msg_cbytes),
    );
    line("msqid_ds.msg_qnum", offset_of!(libc::msqid_ds, msg_qnum));
    line(
        "msqid_ds.msg_qbytes",
        offset_of!(libc::msqid_ds, msg_qbytes),
    );
    line("msqid_ds.msg_lspid", offset_of!(libc::msqid_ds, msg_lspid));
    line("msqid_ds.msg_lrpid", offset_of!(libc::msqid_ds, msg_lrpid));
    line("ipc_perm.size", size_of::<libc::ipc_perm>());
    line("ipc_perm.__key", offset_of!(libc::ipc_perm, __key));
    line("ipc_perm.uid", offset_of!(libc::ipc_perm, uid));
    line("ipc_perm.gid", offset_of!(libc::ipc_perm, gid));
    line("ipc_perm.cuid", offset_of!(libc::ipc_perm, cuid));
    line("ipc_perm.cgid", offset_of!(libc::ipc_perm, cgid));
    line("ipc_perm.mode", offset_of!(libc::ipc_perm, mode));
    line("ipc_perm.__seq", offset_of!(libc::ipc_perm, __seq));
    line("msginfo.size", size_of::<libc::msginfo>());
    line("msginfo.msgpool", offset_of!(libc::msginfo, msgpool));
    line("msginfo.msgmap", offset_of!(libc::msginfo, msgmap));
    line("msginfo.msgmax", offset_of!(libc::msginfo, msgmax));
    line("msginfo.msgmnb", offset_of!(libc::msginfo, msgmnb));
    line("msginfo.msgmni", offset_of!(libc::msginfo, msgmni));
    line("msginfo.msgssz", offset_of!(libc::msginfo, msgssz));
    line("msginfo.msgtql", offset_of!(libc::msginfo, msgtql));
    line("msginfo.msgseg", offset_of!(libc::msginfo, msgseg));
    assert_eq!(got, want);
}

#[test]
fn counts_and_capacity_are_exact_right_after_sigkills_as_on_the_kernel() {
    // Issue 15: producers and consumers (some asleep) killed with SIGKILL at
    // random, hundreds of times; right after the reaping, with no recovery
    // call and nobody asleep, IPC_STAT counts what a drain receives, is
    // 0 / 0 after it, and IPC_NOWAIT sends fill exactly qbytes / 40.
    let kernel = parity("ffi/tests/c/kill_recovery.c", 6, true);
    for line in [
        "IPC_STAT before the drain counted what it drained: yes\n",
        "after the drain: qnum 0 cbytes 0\n",
        "MSG_INFO messages and bytes are zero: yes\n",
        "fill ended with EAGAIN\n",
    ] {
        assert_eq!(
            kernel.matches(line).count(),
            2,
            "the kernel's transcript lacks {line:?} (twice):\n{kernel}"
        );
    }
    assert!(
        kernel.contains("# 4 producer(s) x 4 consumer(s), mixed types and sizes\n"),
        "{kernel}"
    );
}

/// Unlinks the kernel's POSIX queues a parity run of `mq_*.c` may have left
/// (names `/shmqt<base>-<tag>`, tags `a` to `z`), when dropped: also when
/// the test fails.
struct KernelMqNames(String);

impl Drop for KernelMqNames {
    fn drop(&mut self) {
        for tag in 'a'..='z' {
            let name = std::ffi::CString::new(format!("/shmqt{}-{tag}", self.0)).unwrap();
            // SAFETY: a NUL-terminated name; a missing queue fails harmlessly.
            unsafe { libc::mq_unlink(name.as_ptr()) };
        }
    }
}

/// [`parity`] for a POSIX queue program, whose queue names derive from the
/// same base as the System V keys.
fn mq_parity(source: &str, offset: i32, with_static: bool) -> String {
    let _names = KernelMqNames(format!("{:#x}", key_base(offset)));
    parity(source, offset, with_static)
}

#[test]
fn posix_queue_errno_paths_match_the_kernel_through_libshmq_and_the_preload_library() {
    let kernel = mq_parity("ffi/tests/c/mq_errno_paths.c", 10, true);
    for line in [
        "no leading slash: -1 EINVAL",
        "two slashes: -1 EACCES",
        "256 bytes: -1 ENAMETOOLONG",
        "open it with O_ACCMODE 3: -1 EINVAL",
        "send prio 32768 on read-only: -1 EINVAL",
        "send too long on read-only: -1 EBADF",
        "receive short buffer, empty: -1 EMSGSIZE",
        "receive bad timespec, ready: -1 EINVAL",
        "full, deadline past: -1 ETIMEDOUT",
        "full, O_NONBLOCK, deadline later: -1 EAGAIN",
        "received m4 prio 32767",
        "old queue gives after prio 2",
        "received left behind prio 7",
        "RLIMIT_MSGQUEUE 0, create: -1 EMFILE",
        "RLIMIT_MSGQUEUE 0, bad attributes first: -1 EINVAL",
        "RLIMIT_MSGQUEUE 0, open an existing queue: ok",
    ] {
        assert!(kernel.contains(line), "kernel transcript lacks {line:?}");
    }
    if unsafe_geteuid() == 0 {
        for line in [
            "nobody opens 0600 read-only: -1 EACCES",
            "nobody unlinks 0666: -1 EACCES",
        ] {
            assert!(kernel.contains(line), "kernel transcript lacks {line:?}");
        }
    }
}

#[test]
fn posix_queue_blocking_hand_off_timeouts_eintr_and_fork_match_the_kernel() {
    let kernel = mq_parity("ffi/tests/c/mq_blocking.c", 11, false);
    for line in [
        "blocked receiver got wake up prio 9",
        "sender child asleep: yes",
        "timed receive on empty: -1 ETIMEDOUT",
        "blocked send, signal: -1 EINTR",
        "SA_RESTART, blocked receive: after the handler prio 4",
        "SA_RESTART, timed receive: -1 ETIMEDOUT",
        "handler ran, deadline kept: yes",
        "SA_RESTART, blocked send: ok",
        "parent's descriptor: flags O_NONBLOCK",
        "parent's receive: -1 EAGAIN",
    ] {
        assert!(kernel.contains(line), "kernel transcript lacks {line:?}");
    }
}

#[test]
fn posix_queue_notification_matches_the_kernel() {
    let kernel = mq_parity("ffi/tests/c/mq_notify.c", 12, false);
    for line in [
        "unknown sigev_notify, bad descriptor: -1 EINVAL",
        "bad descriptor: -1 EBADF",
        "register again, same process: -1 EBUSY",
        "child: EBUSY, NULL removes nothing, sent: yes",
        "first message: signal SIGUSR1, si_code SI_MESGQ, value 42, from the sender yes, uid ours",
        "send into a non-empty queue: no signal",
        "send after unregistering: no signal",
        "message to a blocked receiver: no signal",
        "registration still there: -1 EBUSY",
        "next send into the empty queue: signal SIGUSR1, si_code SI_MESGQ, value 45, from the sender yes, uid ours",
        "send into the empty queue: function ran with value 46",
        "send after unregistering: function not run",
        "register again: ok",
        "register after the owner's exit: ok",
    ] {
        assert!(
            kernel.contains(line),
            "kernel transcript lacks {line:?}:\n{kernel}"
        );
    }
}
