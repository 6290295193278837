//! Shared helpers of the engine's integration tests: a private namespace per
//! test (removed afterwards), a watchdog, and child processes.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
// A process-local counter of the test harness, not shared memory: the
// engine's "only sync names atomics" rule is about the engine's own code.
#[allow(clippy::disallowed_types)]
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Linux's default limits as `config` lines.
pub const LINUX_DEFAULTS: &str = "msgmax = 8192\nmsgmnb = 16384\nmsgmni = 32000\n";

/// A namespace directory of the test's own, removed when dropped.
pub struct TempNamespace {
    pub dir: PathBuf,
    pub ns: shmq::Namespace,
}

#[allow(clippy::disallowed_types)]
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Children spawned by this test process, killed if the watchdog fires.
static CHILDREN: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

impl TempNamespace {
    pub fn new() -> TempNamespace {
        Self::with_config("")
    }

    /// A namespace with the kernel's own `msgmax`, `msgmnb` and `msgmni`
    /// (this process's IPC namespace's), for tests that compare with it.
    pub fn like_kernel() -> TempNamespace {
        let sysctl = |name: &str| {
            let path = format!("/proc/sys/kernel/{name}");
            let v = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            format!("{name} = {}\n", v.trim())
        };
        Self::with_config(&(sysctl("msgmax") + &sysctl("msgmnb") + &sysctl("msgmni")))
    }

    /// A namespace whose `config` file holds `config` (e.g. "msgmni = 50"),
    /// after Linux's default `msgmax`, `msgmnb` and `msgmni` (which the
    /// tests assume; a later line wins), so that the host's `kernel.msg*`
    /// settings do not change what the tests see.
    pub fn with_config(config: &str) -> TempNamespace {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(format!("/dev/shm/shmq-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config"), format!("{LINUX_DEFAULTS}{config}")).unwrap();
        let ns = shmq::Namespace::open(&dir).unwrap_or_else(|e| {
            // No TempNamespace yet to remove it when dropped.
            let _ = std::fs::remove_dir_all(&dir);
            panic!("{e}")
        });
        TempNamespace { dir, ns }
    }
}

impl Drop for TempNamespace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Aborts the whole test process if the test runs longer than `secs`: a hang
/// becomes a failure instead of a stuck CI run.
pub fn watchdog(secs: u64) -> Watchdog {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(secs))
            == Err(std::sync::mpsc::RecvTimeoutError::Timeout)
        {
            eprintln!("watchdog: test still running after {secs} s; aborting");
            for pid in CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                // SAFETY: kill(2) with a pid we spawned; no memory involved.
                unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
            }
            std::process::abort();
        }
    });
    Watchdog(tx)
}

pub struct Watchdog(std::sync::mpsc::Sender<()>);

/// Default flags for creating a queue.
pub fn create(mode: u32) -> shmq::GetOptions {
    shmq::GetOptions::new().create(true).mode(mode)
}

/// Runs this test binary again as a child process in `role`: the child runs
/// only the test named `child_main`, which dispatches on `SHMQ_TEST_ROLE`.
pub fn spawn_role(role: &str, dir: &std::path::Path, args: &[String]) -> std::process::Child {
    spawn_role_as(role, dir, args, None)
}

/// SIGKILLs a child of [`spawn_role`] and reaps it; fails the test if the
/// child had already ended by a failure of its own (a panic's exit status,
/// an abort's signal). The children of the kill tests run until killed, so
/// without this look a child's failed assertion would pass unnoticed: its
/// kill and reaping would succeed all the same.
pub fn kill_and_reap(child: &mut std::process::Child, what: &str) {
    // A child that has exited but is not reaped yet is a zombie: the
    // signal still succeeds, and the status is the child's own.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    assert!(
        status.success() || signal == Some(libc::SIGKILL),
        "{what}: the child ended by itself before the kill ({status})"
    );
}

/// [`spawn_role`] as another user: `Some((uid, gid))` (the caller must be
/// root; the child has no supplementary groups).
pub fn spawn_role_as(
    role: &str,
    dir: &std::path::Path,
    args: &[String],
    ids: Option<(u32, u32)>,
) -> std::process::Child {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    // The child dies with the thread that spawned it: a test that fails (its
    // thread unwinds) or a test process that ends leaves none of its children
    // running, blocked on a queue whose directory the test removed, or
    // holding the test runner's output pipe open.
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec; prctl,
    // getppid and raise are system calls, safe between fork and exec; it
    // allocates no memory.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // The parent may have died before the prctl: nothing would
            // signal then.
            if libc::getppid() != parent {
                libc::raise(libc::SIGKILL);
            }
            Ok(())
        });
    }
    if let Some((uid, gid)) = ids {
        // std drops the supplementary groups when root sets a uid.
        std::os::unix::process::CommandExt::uid(&mut cmd, uid);
        std::os::unix::process::CommandExt::gid(&mut cmd, gid);
    }
    let child = cmd
        .args([
            "child_main",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env("SHMQ_TEST_ROLE", role)
        .env("SHMQ_TEST_ARGS", args.join(" "))
        .env("SHMQ_DIR", dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(child.id());
    child
}

/// In a child: its role and arguments, if this process is a child.
pub fn my_role() -> Option<(String, Vec<String>)> {
    let role = std::env::var("SHMQ_TEST_ROLE").ok()?;
    let args = std::env::var("SHMQ_TEST_ARGS").unwrap_or_default();
    Some((role, args.split_whitespace().map(String::from).collect()))
}

/// A 64-bit FNV-1a checksum.
pub fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// A message text carrying `(producer, seq, mtype)`, padding of `pad` bytes
/// and a checksum of all that; decoded by [`decode_message`].
pub fn encode_message(producer: u32, seq: u64, mtype: i64, pad: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(28 + pad);
    v.extend_from_slice(&producer.to_le_bytes());
    v.extend_from_slice(&seq.to_le_bytes());
    v.extend_from_slice(&mtype.to_le_bytes());
    v.extend((0..pad).map(|i| (i as u64 ^ seq) as u8));
    let c = checksum(&v);
    v.extend_from_slice(&c.to_le_bytes());
    v
}

/// `(producer, seq, mtype)` of a text made by [`encode_message`], or a
/// description of the damage.
pub fn decode_message(text: &[u8]) -> Result<(u32, u64, i64), String> {
    if text.len() < 28 {
        return Err(format!("short message of {} bytes", text.len()));
    }
    let (body, sum) = text.split_at(text.len() - 8);
    if checksum(body) != u64::from_le_bytes(sum.try_into().unwrap()) {
        return Err("checksum mismatch".into());
    }
    Ok((
        u32::from_le_bytes(body[0..4].try_into().unwrap()),
        u64::from_le_bytes(body[4..12].try_into().unwrap()),
        i64::from_le_bytes(body[12..20].try_into().unwrap()),
    ))
}

/// The complete lines of a log that children append to, one `write(2)` per
/// line, and that the test may SIGKILL at any moment: a missing file has
/// none. A final line without its newline is dropped, because a write can be
/// cut short by the kill: on tmpfs a write that crosses a page boundary
/// copies page by page and stops at the next page once a fatal signal is
/// pending, so `"145 42104\n"` can land as `"145 4"`, which would read as
/// another message (the kill test once reported such a torn line as a
/// message received twice).
pub fn complete_lines(path: &std::path::Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return vec![];
    };
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    lines.pop(); // after the last newline: empty, or a torn line
    lines
}
