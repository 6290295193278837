//! Permissions between real processes of different users: the test binary
//! re-executed as `nobody` (65534) and as a second unprivileged user (65533).
//!
//! - A 0600 queue is closed to other users: msgget asking for access is
//!   EACCES, and so is opening its file directly (a program bypassing the
//!   library cannot map it); the sticky directory stops them from unlinking
//!   or renaming it. The same scenario runs on a kernel queue, compared.
//! - A 0666 queue carries checksummed messages between root and nobody and
//!   between two unprivileged users, a sleeper of one user woken by a sender
//!   of another, with IPC_STAT's lspid / lrpid naming them (as the kernel's).
//! - A namespace directory made first by nobody (or by root) stays usable by
//!   every user: mode 01777, id table writable by all.
//! - The documented limits: any user can write the id table, and any user
//!   the queue's mode admits can truncate its file; a process touching the
//!   truncated mapping then dies of SIGBUS.
//!
//! Needs root (it is skipped, saying so, otherwise). The C suite's
//! `errno_paths.c` covers the errno of each call after `setuid`; this file
//! covers what only other processes and the files themselves show.

mod common;
use common::*;
use shmq::doctor::*;
use shmq::test_hooks::*;
use shmq::*;
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const NOBODY: (u32, u32) = (65534, 65534);
const OTHER: (u32, u32) = (65533, 65533);

fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    println!("skipped: needs root (runs processes as other users)");
    false
}

fn errno_name(e: i32) -> String {
    match e {
        0 => "ok".into(),
        libc::EACCES => "EACCES".into(),
        libc::EPERM => "EPERM".into(),
        libc::ENOENT => "ENOENT".into(),
        libc::EEXIST => "EEXIST".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::ENOMEM => "ENOMEM".into(),
        libc::EIDRM => "EIDRM".into(),
        e => format!("errno {e}"),
    }
}

fn io_result<T>(r: std::io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => errno_name(e.raw_os_error().unwrap_or(-1)),
    }
}

/// A namespace directory that does not exist yet (the first `Namespace::open`
/// makes it), removed when dropped.
struct NsDir(PathBuf);

impl NsDir {
    fn new(tag: &str) -> NsDir {
        let p = PathBuf::from(format!(
            "/dev/shm/shmq-test-{}-perm-{tag}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        NsDir(p)
    }
}

impl NsDir {
    /// Removes the temporary directories a creator killed while making this
    /// one leaves beside it (`.NAME.new.PID`); returns how many.
    fn remove_leftovers(&self) -> usize {
        let prefix = format!(".{}.new.", self.0.file_name().unwrap().to_string_lossy());
        let mut n = 0;
        for e in std::fs::read_dir(self.0.parent().unwrap()).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(e.path());
                n += 1;
            }
        }
        n
    }
}

impl Drop for NsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        self.remove_leftovers();
    }
}

/// A kernel queue, removed when dropped (also when the test fails).
struct KernelQueue {
    key: i32,
    id: i32,
}

impl KernelQueue {
    /// A new kernel queue with `mode`, under a key nobody else uses.
    fn new(mode: i32) -> KernelQueue {
        for n in 0..1000 {
            let key = 0x7e00_0000 | ((std::process::id() as i32 & 0xffff) << 8) | n;
            // SAFETY: msgget(2) takes no pointers.
            let id = unsafe { libc::msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | mode) };
            if id >= 0 {
                return KernelQueue { key, id };
            }
        }
        panic!("no free key for a kernel queue");
    }

    /// A kernel queue a child made (`kernel_create`), removed by this process.
    fn made_by(o: &ChildRun) -> KernelQueue {
        KernelQueue {
            key: o.get("key").parse().unwrap(),
            id: o.get("id").parse().unwrap(),
        }
    }

    fn stat(&self) -> libc::msqid_ds {
        // SAFETY: msqid_ds holds only integers; all-zero is valid.
        let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: `ds` is a valid, writable msqid_ds.
        assert_eq!(unsafe { libc::msgctl(self.id, libc::IPC_STAT, &mut ds) }, 0);
        ds
    }
}

impl Drop for KernelQueue {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID ignores the buffer.
        unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

/// A kernel message buffer: `long mtype` then the text.
#[repr(C)]
struct KMsg {
    mtype: libc::c_long,
    text: [u8; 256],
}

fn kernel_send(id: i32, mtype: i64, text: &[u8]) -> i32 {
    let mut m = KMsg {
        mtype: mtype as libc::c_long,
        text: [0; 256],
    };
    m.text[..text.len()].copy_from_slice(text);
    // SAFETY: `m` is a valid message buffer of `text.len()` text bytes.
    let r = unsafe { libc::msgsnd(id, &m as *const KMsg as *const libc::c_void, text.len(), 0) };
    if r == 0 {
        0
    } else {
        std::io::Error::last_os_error().raw_os_error().unwrap()
    }
}

fn kernel_recv(id: i32, mtype: i64) -> Result<Vec<u8>, i32> {
    let mut m = KMsg {
        mtype: 0,
        text: [0; 256],
    };
    // SAFETY: `m` has room for 256 text bytes.
    let n = unsafe {
        libc::msgrcv(
            id,
            &mut m as *mut KMsg as *mut libc::c_void,
            256,
            mtype as libc::c_long,
            0,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap());
    }
    Ok(m.text[..n as usize].to_vec())
}

/// Prints one result line for the parent.
fn report(name: &str, value: impl std::fmt::Display) {
    println!("R {name} {value}");
}

fn uid() -> u32 {
    // SAFETY: getuid(2) cannot fail and touches no memory.
    unsafe { libc::getuid() }
}

fn wait_for_file(path: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Path::new(path).exists() {
        assert!(Instant::now() < deadline, "never told to go on");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Entry point of child processes; a no-op in a normal run.
#[test]
fn child_main() {
    let Some((role, args)) = my_role() else {
        return;
    };
    let dir = std::env::var("SHMQ_DIR").unwrap();
    let num = |i: usize| -> i64 { args[i].parse().unwrap() };
    match role.as_str() {
        // Everything a user the queue's mode admits nothing may try.
        // Args: KEY ID KERNEL_KEY KERNEL_ID.
        "deny" => {
            let ns = Namespace::open(&dir).unwrap();
            let (key, id) = (num(0) as i32, num(1) as i32);
            let (kkey, kid) = (num(2) as i32, num(3) as i32);
            let get = |mode| match ns.get(key, GetOptions::new().mode(mode)) {
                Ok(q) => format!("id {}", q.id()),
                Err(e) => errno_name(e.errno()),
            };
            report("shmq_get_rw", get(0o600));
            report("shmq_get_r", get(0o400));
            report("shmq_get_none", get(0));
            let ctl = match ns.queue(id) {
                Ok(q) => errno_name(q.stat().err().map_or(0, |e| e.errno())),
                Err(e) => errno_name(e.errno()),
            };
            report("shmq_stat", &ctl);
            // (The C layer answers IPC_RMID / IPC_SET on a queue whose file
            // the caller cannot open with EPERM, as the kernel.)
            let rmid = match ns.queue(id) {
                Ok(q) => errno_name(q.remove().err().map_or(0, |e| e.errno())),
                Err(e) => errno_name(e.errno()),
            };
            report("shmq_rmid", rmid);
            let kget = |mode| {
                // SAFETY: msgget(2) takes no pointers.
                let r = unsafe { libc::msgget(kkey, mode) };
                if r >= 0 {
                    format!("id {r}")
                } else {
                    errno_name(std::io::Error::last_os_error().raw_os_error().unwrap())
                }
            };
            report("kernel_get_rw", kget(0o600));
            report("kernel_get_r", kget(0o400));
            report("kernel_get_none", kget(0));
            // SAFETY: msqid_ds holds only integers; all-zero is valid.
            let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
            let kctl = |cmd, ds: *mut libc::msqid_ds| {
                // SAFETY: `ds` is valid (IPC_RMID ignores it).
                if unsafe { libc::msgctl(kid, cmd, ds) } == 0 {
                    "ok".to_string()
                } else {
                    errno_name(std::io::Error::last_os_error().raw_os_error().unwrap())
                }
            };
            report("kernel_stat", kctl(libc::IPC_STAT, &mut ds));
            report("kernel_rmid", kctl(libc::IPC_RMID, std::ptr::null_mut()));
            // The queue's file, bypassing the library.
            let file = format!("{dir}/msq.{id}");
            let open = |read: bool, write: bool| {
                io_result(
                    std::fs::OpenOptions::new()
                        .read(read)
                        .write(write)
                        .custom_flags(libc::O_NOFOLLOW)
                        .open(&file),
                )
            };
            report("open_read", open(true, false));
            report("open_write", open(false, true));
            report("open_rw", open(true, true));
            let c = std::ffi::CString::new(file.clone()).unwrap();
            // SAFETY: `c` is a NUL-terminated path.
            let t = unsafe { libc::truncate(c.as_ptr(), 0) };
            report(
                "truncate",
                if t == 0 {
                    "ok".into()
                } else {
                    errno_name(std::io::Error::last_os_error().raw_os_error().unwrap())
                },
            );
            report("unlink", io_result(std::fs::remove_file(&file)));
            report(
                "rename_away",
                io_result(std::fs::rename(&file, format!("{dir}/stolen.{}", uid()))),
            );
            let mine = format!("{dir}/mine.{}", uid());
            std::fs::write(&mine, b"x").unwrap();
            report("rename_over", io_result(std::fs::rename(&mine, &file)));
            let _ = std::fs::remove_file(&mine);
            report(
                "unlink_ids",
                io_result(std::fs::remove_file(format!("{dir}/ids"))),
            );
        }
        // Args: KEY MODE. Creates a queue, prints its id.
        "create" => {
            let ns = Namespace::open(&dir).unwrap();
            let q = ns
                .get(
                    num(0) as i32,
                    GetOptions::new()
                        .create(true)
                        .exclusive(true)
                        .mode(num(1) as u32),
                )
                .unwrap();
            report("id", q.id());
        }
        // Args: MODE. Creates a kernel queue, prints its key and id (the
        // parent removes it).
        "kernel_create" => {
            let k = std::mem::ManuallyDrop::new(KernelQueue::new(num(0) as i32));
            report("key", k.key);
            report("id", k.id);
        }
        // Makes the namespace and dies after writing the id table under its
        // temporary name, before linking it into place.
        "die_making_table" | "die_making_dir" => {
            let point = if role == "die_making_dir" {
                KillPoint::DirMade
            } else {
                KillPoint::TableWritten
            };
            arm_kill_point(point, KillAction::Kill);
            let _ = Namespace::open(&dir);
            unreachable!("survived the kill point");
        }
        // Args: KEY N MTYPE. Sends N checksummed messages (producer: our uid).
        "send" => {
            let ns = Namespace::open(&dir).unwrap();
            let q = ns
                .get(num(0) as i32, GetOptions::new().mode(0o200))
                .unwrap();
            let mtype = num(2);
            for seq in 0..num(1) as u64 {
                let text = encode_message(uid(), seq, mtype, (seq % 64) as usize);
                q.send_timeout(mtype, &text, Duration::from_secs(60))
                    .unwrap();
            }
            report("sent", num(1));
            report("pid", std::process::id());
        }
        // Args: KEY N MTYPE SENDER_UID. Receives N messages, checking each.
        "recv" => {
            let ns = Namespace::open(&dir).unwrap();
            let q = ns
                .get(num(0) as i32, GetOptions::new().mode(0o400))
                .unwrap();
            let (mtype, sender) = (num(2), num(3) as u32);
            let mut buf = [0u8; 256];
            for seq in 0..num(1) as u64 {
                let m = q
                    .recv_timeout(&mut buf, Selector::Type(mtype), Duration::from_secs(60))
                    .unwrap();
                assert_eq!(decode_message(&buf[..m.len]).unwrap(), (sender, seq, mtype));
            }
            report("received", num(1));
            report("pid", std::process::id());
            // SAFETY: gettid(2) cannot fail and touches no memory.
            report("tid", unsafe { libc::gettid() });
        }
        // Args: KERNEL_ID N MTYPE.
        "kernel_send" => {
            let mtype = num(2);
            for seq in 0..num(1) as u64 {
                let text = encode_message(uid(), seq, mtype, (seq % 64) as usize);
                assert_eq!(kernel_send(num(0) as i32, mtype, &text), 0);
            }
            report("sent", num(1));
            report("pid", std::process::id());
        }
        // Args: KERNEL_ID N MTYPE SENDER_UID.
        "kernel_recv" => {
            let (mtype, sender) = (num(2), num(3) as u32);
            for seq in 0..num(1) as u64 {
                let text = kernel_recv(num(0) as i32, mtype).unwrap();
                assert_eq!(decode_message(&text).unwrap(), (sender, seq, mtype));
            }
            report("received", num(1));
            report("pid", std::process::id());
            // SAFETY: gettid(2) cannot fail and touches no memory.
            report("tid", unsafe { libc::gettid() });
        }
        // Args: PATH. Truncates a file of the namespace to 0 bytes.
        "truncate" => {
            let r = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&args[0])
                .and_then(|f| f.set_len(0));
            report("truncate", io_result(r));
        }
        // Args: KEY GO_FILE. Maps the queue (and the id table), waits for the
        // go file, then uses them: if someone truncated a file meanwhile,
        // this process dies of SIGBUS.
        "user_after_truncation" => {
            let ns = Namespace::open(&dir).unwrap();
            let q = ns.get(num(0) as i32, GetOptions::new()).unwrap();
            q.send(1, b"before").unwrap();
            report("ready", 1);
            use std::io::Write;
            std::io::stdout().flush().unwrap();
            wait_for_file(&args[1]);
            let sent = q.try_send(1, b"after");
            report("send_after", format!("{sent:?}"));
            let got = ns.get(0x1234_5678, GetOptions::new()).err();
            report("get_after", format!("{got:?}"));
        }
        _ => panic!("unknown role {role}"),
    }
}

/// A child as another user: its exit status and its `R name value` lines.
struct ChildRun {
    status: std::process::ExitStatus,
    results: HashMap<String, String>,
}

impl ChildRun {
    fn get(&self, name: &str) -> &str {
        self.results
            .get(name)
            .unwrap_or_else(|| panic!("no result {name} in {:?}", self.results))
    }
}

fn collect(mut child: std::process::Child) -> ChildRun {
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = child.wait().unwrap();
    let results = out
        .lines()
        .filter_map(|l| l.strip_prefix("R "))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ChildRun { status, results }
}

fn run_as(who: (u32, u32), role: &str, dir: &Path, args: &[String]) -> ChildRun {
    let o = collect(spawn_role_as(role, dir, args, Some(who)));
    assert!(o.status.success(), "{role} as uid {}: {}", who.0, o.status);
    o
}

fn strings(v: &[&dyn std::fmt::Display]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn create(mode: u32) -> GetOptions {
    shmq::GetOptions::new()
        .create(true)
        .exclusive(true)
        .mode(mode)
}

/// The kernel's `msg_lrpid` names the receiver: its process id, or, when
/// msgsnd handed the message straight to it while it slept in msgrcv, its
/// thread id (Linux's `pipelined_send` records `task_pid` of the sleeping
/// thread, `do_msgrcv` the `task_tgid`). shmq always records the process id.
fn assert_kernel_lrpid(ks: &libc::msqid_ds, receiver: &ChildRun) {
    let lrpid = ks.msg_lrpid.to_string();
    assert!(
        lrpid == receiver.get("pid") || lrpid == receiver.get("tid"),
        "kernel lrpid {lrpid}, receiver pid {} tid {}",
        receiver.get("pid"),
        receiver.get("tid")
    );
}

/// Waits (bounded) until some process sleeps in `q`.
fn wait_for_sleeper(q: &Queue) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while q.figures().sleepers == 0 {
        assert!(Instant::now() < deadline, "nobody ever slept in the queue");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn doctor_clean(dir: &Path) {
    let r = Namespace::doctor_dir(dir, &DoctorOptions::default());
    let lines: String = r.findings.iter().map(|f| format!("{f}\n")).collect();
    assert!(r.findings.is_empty(), "doctor: {lines}");
}

/// Checks what `deny` found, against the kernel's answers where they agree.
fn check_denied(o: &ChildRun, whose: &str) {
    // msgget asking for access, and IPC_STAT: as the kernel.
    assert_eq!(o.get("kernel_get_rw"), "EACCES", "{whose}");
    assert_eq!(o.get("shmq_get_rw"), o.get("kernel_get_rw"), "{whose}");
    assert_eq!(o.get("shmq_get_r"), o.get("kernel_get_r"), "{whose}");
    assert_eq!(o.get("kernel_stat"), "EACCES", "{whose}");
    assert_eq!(o.get("shmq_stat"), o.get("kernel_stat"), "{whose}");
    // Differences (README): with no access asked the kernel returns the id,
    // shmq (which cannot map the file) EACCES; IPC_RMID is EPERM in the
    // kernel, EACCES from the engine (the C layer turns it into EPERM).
    assert!(o.get("kernel_get_none").starts_with("id "), "{whose}");
    assert_eq!(o.get("shmq_get_none"), "EACCES", "{whose}");
    assert_eq!(o.get("kernel_rmid"), "EPERM", "{whose}");
    assert_eq!(o.get("shmq_rmid"), "EACCES", "{whose}");
    // The OS keeps the file closed, and the sticky directory keeps it there.
    for name in ["open_read", "open_write", "open_rw", "truncate"] {
        assert_eq!(o.get(name), "EACCES", "{whose}: {name}");
    }
    for name in ["unlink", "rename_away", "rename_over"] {
        assert_eq!(o.get(name), "EPERM", "{whose}: {name}");
    }
}

#[test]
fn private_queue_is_closed_to_other_users() {
    if !is_root() {
        return;
    }
    let _w = watchdog(120);
    let d = NsDir::new("private");
    let ns = Namespace::open(&d.0).unwrap();

    // Made by root; tried by nobody.
    let q = ns.get(0x600, create(0o600)).unwrap();
    q.send(1, b"root's").unwrap();
    let kq = KernelQueue::new(0o600);
    let o = run_as(
        NOBODY,
        "deny",
        &d.0,
        &strings(&[&0x600, &q.id(), &kq.key, &kq.id]),
    );
    check_denied(&o, "root's queue, nobody");
    assert_eq!(o.get("unlink_ids"), "EPERM", "the id table is root's");
    assert_eq!(q.stat().unwrap().qnum, 1, "root's queue untouched");
    assert_eq!(kq.stat().msg_perm.mode & 0o777, 0o600);

    // Made by nobody; tried by uid 65533 (user to user).
    let id: i32 = run_as(NOBODY, "create", &d.0, &strings(&[&0x601, &0o600]))
        .get("id")
        .parse()
        .unwrap();
    let kq2 = KernelQueue::made_by(&run_as(NOBODY, "kernel_create", &d.0, &strings(&[&0o600])));
    assert_eq!(kq2.stat().msg_perm.cuid, NOBODY.0);
    let o = run_as(
        OTHER,
        "deny",
        &d.0,
        &strings(&[&0x601, &id, &kq2.key, &kq2.id]),
    );
    check_denied(&o, "nobody's queue, uid 65533");
    // Root may use nobody's queue (as with the kernel's).
    let theirs = ns.get(0x601, GetOptions::new().mode(0o600)).unwrap();
    assert_eq!(
        (theirs.perms().uid, theirs.perms().cuid),
        (NOBODY.0, NOBODY.0)
    );
    theirs.send(2, b"root writes").unwrap();
    let mut buf = [0u8; 64];
    let m = theirs.recv(&mut buf, Selector::Any).unwrap();
    assert_eq!(&buf[..m.len], b"root writes");
    let meta = std::fs::metadata(d.0.join(format!("msq.{id}"))).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid()),
        (0o600, NOBODY.0),
        "nobody's file"
    );

    theirs.remove().unwrap();
    q.remove().unwrap();
    doctor_clean(&d.0);
    let names: Vec<_> = std::fs::read_dir(&d.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["ids"], "nothing stolen or left");
}

#[test]
fn open_queue_carries_messages_between_users() {
    if !is_root() {
        return;
    }
    let _w = watchdog(120);
    let d = NsDir::new("open");
    let ns = Namespace::open(&d.0).unwrap();
    let q = ns.get(0x666, create(0o666)).unwrap();
    let kq = KernelQueue::new(0o666);
    let me = std::process::id();
    let n = 300; // more than a queue holds at once (16384 bytes)

    // nobody sleeps in msgrcv; root's sends wake it (cross-user futex wake).
    let child = spawn_role_as("recv", &d.0, &strings(&[&0x666, &n, &1, &0]), Some(NOBODY));
    wait_for_sleeper(&q);
    for seq in 0..n {
        let text = encode_message(0, seq, 1, (seq % 64) as usize);
        q.send(1, &text).unwrap();
    }
    let o = collect(child);
    assert!(o.status.success(), "nobody's receiver: {}", o.status);
    assert_eq!(o.get("received"), n.to_string());
    let s = q.stat().unwrap();
    assert_eq!(
        (s.lspid, s.lrpid.to_string()),
        (me, o.get("pid").to_string())
    );
    // The kernel's queue says the same.
    let child = spawn_role_as(
        "kernel_recv",
        &d.0,
        &strings(&[&kq.id, &n, &1, &0]),
        Some(NOBODY),
    );
    for seq in 0..n {
        let text = encode_message(0, seq, 1, (seq % 64) as usize);
        assert_eq!(kernel_send(kq.id, 1, &text), 0);
    }
    let o = collect(child);
    assert!(o.status.success(), "nobody's kernel receiver: {}", o.status);
    let ks = kq.stat();
    assert_eq!(ks.msg_lspid as u32, me);
    assert_kernel_lrpid(&ks, &o);

    // Root sleeps in msgrcv; nobody's sends wake it.
    let receiver = {
        let q = q.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            for seq in 0..n {
                let m = q.recv(&mut buf, Selector::Type(2)).unwrap();
                assert_eq!(decode_message(&buf[..m.len]).unwrap(), (NOBODY.0, seq, 2));
            }
        })
    };
    wait_for_sleeper(&q);
    let o = run_as(NOBODY, "send", &d.0, &strings(&[&0x666, &n, &2]));
    receiver.join().unwrap();
    let s = q.stat().unwrap();
    assert_eq!(
        (s.lspid.to_string(), s.lrpid),
        (o.get("pid").to_string(), me)
    );
    let o = run_as(NOBODY, "kernel_send", &d.0, &strings(&[&kq.id, &20, &2]));
    for seq in 0..20 {
        let text = kernel_recv(kq.id, 2).unwrap();
        assert_eq!(decode_message(&text).unwrap(), (NOBODY.0, seq, 2));
    }
    let ks = kq.stat();
    assert_eq!(
        (ks.msg_lspid.to_string(), ks.msg_lrpid as u32),
        (o.get("pid").to_string(), me)
    );

    // User to user: 65533 sleeps, nobody sends, on a queue nobody made.
    let uq: i32 = run_as(NOBODY, "create", &d.0, &strings(&[&0x667, &0o666]))
        .get("id")
        .parse()
        .unwrap();
    let q2 = ns.queue(uq).unwrap();
    let child = spawn_role_as(
        "recv",
        &d.0,
        &strings(&[&0x667, &n, &3, &NOBODY.0]),
        Some(OTHER),
    );
    wait_for_sleeper(&q2);
    let sender = run_as(NOBODY, "send", &d.0, &strings(&[&0x667, &n, &3]));
    let receiver = collect(child);
    assert!(
        receiver.status.success(),
        "65533's receiver: {}",
        receiver.status
    );
    let s = q2.stat().unwrap();
    assert_eq!(
        (s.lspid.to_string(), s.lrpid.to_string(), s.qnum),
        (
            sender.get("pid").to_string(),
            receiver.get("pid").to_string(),
            0
        )
    );
    assert_eq!((s.perm.uid, s.perm.cuid), (NOBODY.0, NOBODY.0));
    // The same between users on a kernel queue (made by root, 0666).
    let child = spawn_role_as(
        "kernel_recv",
        &d.0,
        &strings(&[&kq.id, &20, &3, &NOBODY.0]),
        Some(OTHER),
    );
    let sender = run_as(NOBODY, "kernel_send", &d.0, &strings(&[&kq.id, &20, &3]));
    let receiver = collect(child);
    assert!(receiver.status.success());
    let ks = kq.stat();
    assert_eq!(ks.msg_lspid.to_string(), sender.get("pid"));
    assert_kernel_lrpid(&ks, &receiver);

    q2.remove().unwrap();
    q.remove().unwrap();
    doctor_clean(&d.0);
}

/// Checks the directory and id table a first user made.
fn check_made_by(dir: &Path, uid: u32) {
    let m = std::fs::metadata(dir).unwrap();
    assert!(m.is_dir());
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o1777, uid), "directory");
    let ids = std::fs::metadata(dir.join("ids")).unwrap();
    // Writable by every user: each creates and removes queues in it (see
    // the README's limits).
    assert_eq!((ids.mode() & 0o777, ids.uid()), (0o666, uid), "id table");
}

#[test]
fn namespace_directory_stays_usable_by_every_user() {
    if !is_root() {
        return;
    }
    let _w = watchdog(120);
    for first in [NOBODY, (0, 0)] {
        let d = NsDir::new(&format!("first-{}", first.0));
        let k = 0x1000 * (first.0 as i32 % 7 + 1);
        // The first user makes the directory and the id table, and a queue.
        if first.0 == 0 {
            Namespace::open(&d.0)
                .unwrap()
                .get(k, create(0o666))
                .unwrap();
        } else {
            run_as(first, "create", &d.0, &strings(&[&k, &0o666]));
        }
        check_made_by(&d.0, first.0);
        // Every other user creates a queue too, and uses the first one.
        let mut users = vec![NOBODY, OTHER, (0, 0)];
        users.retain(|u| *u != first);
        for (i, u) in users.iter().enumerate() {
            let key = k + 1 + i as i32;
            if u.0 == 0 {
                let ns = Namespace::open(&d.0).unwrap();
                let q = ns.get(key, create(0o600)).unwrap();
                q.send(1, b"root").unwrap();
            } else {
                run_as(*u, "create", &d.0, &strings(&[&key, &0o600]));
            }
            run_as(NOBODY, "send", &d.0, &strings(&[&k, &1, &(i as i64 + 1)]));
            let r = if u.0 == 0 { OTHER } else { *u };
            run_as(
                r,
                "recv",
                &d.0,
                &strings(&[&k, &1, &(i as i64 + 1), &NOBODY.0]),
            );
        }
        let ns = Namespace::open(&d.0).unwrap();
        assert_eq!(ns.ids().len(), 3, "one queue per user");
        for id in ns.ids() {
            let q = ns.queue(id).unwrap();
            let p = q.perms();
            let meta = std::fs::metadata(d.0.join(format!("msq.{id}"))).unwrap();
            assert_eq!(
                (meta.uid(), meta.gid()),
                (p.cuid, p.cgid),
                "queue file owned by its creator"
            );
            q.remove().unwrap();
        }
        check_made_by(&d.0, first.0);
        doctor_clean(&d.0);
    }

    // The first user dies after writing the id table under its temporary
    // name: the next user (another one) makes the table and goes on.
    let d = NsDir::new("first-killed");
    let o = collect(spawn_role_as("die_making_table", &d.0, &[], Some(NOBODY)));
    assert_eq!(o.status.signal(), Some(libc::SIGKILL), "{}", o.status);
    let m = std::fs::metadata(&d.0).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o1777, NOBODY.0));
    assert!(!d.0.join("ids").exists());
    run_as(OTHER, "create", &d.0, &strings(&[&0x77, &0o666]));
    let ids = std::fs::metadata(d.0.join("ids")).unwrap();
    assert_eq!(
        (ids.mode() & 0o777, ids.uid()),
        (0o666, OTHER.0),
        "id table"
    );
    let ns = Namespace::open(&d.0).unwrap();
    ns.get(0x77, GetOptions::new()).unwrap().remove().unwrap();
    // Root's doctor removes nobody's temporary table.
    let r = Namespace::doctor_dir(&d.0, &DoctorOptions::default());
    assert!(
        matches!(
            r.findings[..],
            [Finding {
                problem: Problem::StaleTempFile { .. },
                outcome: Outcome::Repaired,
                ..
            }]
        ),
        "{:?}",
        r.findings
    );
    doctor_clean(&d.0);

    // The first user dies as it makes the directory (before its mode is
    // set): the namespace is still usable by every user.
    let d = NsDir::new("dir-killed");
    let o = collect(spawn_role_as("die_making_dir", &d.0, &[], Some(NOBODY)));
    assert_eq!(o.status.signal(), Some(libc::SIGKILL), "{}", o.status);
    run_as(OTHER, "create", &d.0, &strings(&[&0x78, &0o666]));
    run_as(NOBODY, "send", &d.0, &strings(&[&0x78, &1, &1]));
    run_as(OTHER, "recv", &d.0, &strings(&[&0x78, &1, &1, &NOBODY.0]));
    let m = std::fs::metadata(&d.0).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o1777, "directory");
    let ns = Namespace::open(&d.0).unwrap();
    ns.get(0x78, GetOptions::new()).unwrap().remove().unwrap();
    doctor_clean(&d.0);
    drop(ns);
    // What the dead creator left beside the directory: its empty temporary
    // directory, which uid 65533 may not remove (sticky /dev/shm).
    assert_eq!(d.remove_leftovers(), 1);
    // When root makes the directory next, it removes the dead one's.
    let d = NsDir::new("dir-killed-root-next");
    let o = collect(spawn_role_as("die_making_dir", &d.0, &[], Some(NOBODY)));
    assert_eq!(o.status.signal(), Some(libc::SIGKILL), "{}", o.status);
    Namespace::open(&d.0).unwrap();
    let m = std::fs::metadata(&d.0).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o1777, 0), "directory");
    assert_eq!(d.remove_leftovers(), 0, "root removed nobody's leftover");
}

/// The limits the README states: any user can write the id table, and any
/// user a queue's mode admits can truncate its file; a process that then
/// touches the truncated mapping dies of SIGBUS.
#[test]
fn writable_files_are_the_documented_limits() {
    if !is_root() {
        return;
    }
    let _w = watchdog(120);
    for (victim, what) in [("queue", "a 0666 queue's file"), ("ids", "the id table")] {
        let d = NsDir::new(&format!("limit-{victim}"));
        let ns = Namespace::open(&d.0).unwrap();
        let q = ns.get(0x5b, create(0o666)).unwrap();
        let go = format!("{}.go", d.0.display());
        let _ = std::fs::remove_file(&go);
        // A process of root's maps the namespace and waits.
        let mut user = spawn_role_as("user_after_truncation", &d.0, &strings(&[&0x5b, &go]), None);
        let mut line = String::new();
        {
            use std::io::BufRead;
            let mut out = std::io::BufReader::new(user.stdout.as_mut().unwrap());
            while !line.starts_with("R ready") {
                line.clear();
                assert!(
                    out.read_line(&mut line).unwrap() > 0,
                    "the user ended early"
                );
            }
        }
        let path = if victim == "ids" {
            d.0.join("ids")
        } else {
            d.0.join(format!("msq.{}", q.id()))
        };
        let o = run_as(NOBODY, "truncate", &d.0, &strings(&[&path.display()]));
        assert_eq!(o.get("truncate"), "ok", "nobody may truncate {what}");
        std::fs::write(&go, b"").unwrap();
        let o = collect(user);
        let _ = std::fs::remove_file(&go);
        assert_eq!(
            o.status.signal(),
            Some(libc::SIGBUS),
            "a process using {what} after nobody truncated it: {} {:?}",
            o.status,
            o.results
        );
        drop(q);
        drop(ns);
    }
}
