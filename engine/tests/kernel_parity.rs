//! Kernel parity: each scenario runs on a real kernel System V queue and on
//! shmq, and the two transcripts must be equal. Kernel queues are removed by a
//! guard even when a test fails.
#![allow(clippy::vec_init_then_push)] // transcripts read best as one push per step

mod common;
use common::*;
use shmq::*;
use std::time::Duration;

/// What a scenario reads back from IPC_STAT: (mode, qnum, cbytes, qbytes,
/// lspid, lrpid, stime != 0, rtime != 0).
type Stat = (u32, u64, u64, u64, i32, i32, bool, bool);

/// The operations a scenario uses, with C's integer flags and errno results.
trait Backend {
    fn get(&self, key: i32, flags: i32) -> Result<i32, i32>;
    fn snd(&self, id: i32, mtype: i64, text: &[u8], flags: i32) -> Result<(), i32>;
    fn rcv(&self, id: i32, size: usize, msgtyp: i64, flags: i32) -> Result<(i64, Vec<u8>), i32>;
    fn stat(&self, id: i32) -> Result<Stat, i32>;
    fn set_qbytes(&self, id: i32, qbytes: u64) -> Result<(), i32>;
    fn rmid(&self, id: i32) -> Result<(), i32>;
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap()
}

/// The kernel, through libc. Remembers every queue it created and removes it.
struct Kernel {
    made: std::cell::RefCell<Vec<i32>>,
}

impl Drop for Kernel {
    fn drop(&mut self) {
        for &id in self.made.borrow().iter() {
            // SAFETY: IPC_RMID takes no buffer.
            unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
        }
    }
}

#[repr(C)]
struct MsgBuf {
    mtype: libc::c_long,
    text: [u8; 16384],
}

impl Backend for Kernel {
    fn get(&self, key: i32, flags: i32) -> Result<i32, i32> {
        // SAFETY: plain syscall wrapper.
        let id = unsafe { libc::msgget(key, flags) };
        if id < 0 {
            return Err(errno());
        }
        self.made.borrow_mut().push(id);
        Ok(id)
    }
    fn snd(&self, id: i32, mtype: i64, text: &[u8], flags: i32) -> Result<(), i32> {
        let mut b = Box::new(MsgBuf {
            mtype,
            text: [0; 16384],
        });
        b.text[..text.len()].copy_from_slice(text);
        // SAFETY: the buffer holds mtype and text.len() bytes.
        let r = unsafe {
            libc::msgsnd(
                id,
                &*b as *const MsgBuf as *const libc::c_void,
                text.len(),
                flags,
            )
        };
        if r < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }
    fn rcv(&self, id: i32, size: usize, msgtyp: i64, flags: i32) -> Result<(i64, Vec<u8>), i32> {
        let mut b = Box::new(MsgBuf {
            mtype: 0,
            text: [0; 16384],
        });
        // SAFETY: the buffer holds mtype and at least `size` bytes.
        let r = unsafe {
            libc::msgrcv(
                id,
                &mut *b as *mut MsgBuf as *mut libc::c_void,
                size,
                msgtyp,
                flags,
            )
        };
        if r < 0 {
            Err(errno())
        } else {
            Ok((b.mtype, b.text[..r as usize].to_vec()))
        }
    }
    fn stat(&self, id: i32) -> Result<Stat, i32> {
        // SAFETY: msqid_ds is plain data; zero is a valid value.
        let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: `ds` is a valid msqid_ds.
        if unsafe { libc::msgctl(id, libc::IPC_STAT, &mut ds) } < 0 {
            return Err(errno());
        }
        Ok((
            ds.msg_perm.mode as u32 & 0o777,
            ds.msg_qnum as u64,
            ds.__msg_cbytes as u64,
            ds.msg_qbytes as u64,
            ds.msg_lspid,
            ds.msg_lrpid,
            ds.msg_stime != 0,
            ds.msg_rtime != 0,
        ))
    }
    fn set_qbytes(&self, id: i32, qbytes: u64) -> Result<(), i32> {
        // SAFETY: as in `stat`.
        let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: valid buffers.
        unsafe {
            if libc::msgctl(id, libc::IPC_STAT, &mut ds) < 0 {
                return Err(errno());
            }
            ds.msg_qbytes = qbytes as _;
            if libc::msgctl(id, libc::IPC_SET, &mut ds) < 0 {
                return Err(errno());
            }
        }
        Ok(())
    }
    fn rmid(&self, id: i32) -> Result<(), i32> {
        // SAFETY: IPC_RMID takes no buffer.
        if unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) } < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }
}

/// shmq, in a private namespace.
struct Shmq {
    t: TempNamespace,
}

impl Backend for Shmq {
    fn get(&self, key: i32, flags: i32) -> Result<i32, i32> {
        self.t
            .ns
            .get(key, GetOptions::from_msgflg(flags))
            .map(|q| q.id())
            .map_err(|e| e.errno())
    }
    fn snd(&self, id: i32, mtype: i64, text: &[u8], flags: i32) -> Result<(), i32> {
        let q = self.t.ns.queue(id).map_err(|e| e.errno())?;
        if flags & libc::IPC_NOWAIT != 0 {
            q.try_send(mtype, text)
        } else {
            q.send(mtype, text)
        }
        .map_err(|e| e.errno())
    }
    fn rcv(&self, id: i32, size: usize, msgtyp: i64, flags: i32) -> Result<(i64, Vec<u8>), i32> {
        let q = self.t.ns.queue(id).map_err(|e| e.errno())?;
        let mut buf = vec![0u8; size];
        let sel = Selector::from_msgtyp(msgtyp, flags & libc::MSG_EXCEPT != 0);
        let opts = if flags & libc::MSG_NOERROR != 0 {
            RecvOptions::new(sel).truncate()
        } else {
            RecvOptions::new(sel)
        };
        if flags & libc::MSG_COPY != 0 {
            let position = usize::try_from(msgtyp).unwrap_or(usize::MAX);
            let m = q
                .try_recv_copy(&mut buf, position, opts)
                .map_err(|e| e.errno())?;
            return Ok((m.mtype, buf[..m.len].to_vec()));
        }
        let m = if flags & libc::IPC_NOWAIT != 0 {
            q.try_recv(&mut buf, opts)
        } else {
            q.recv(&mut buf, opts)
        }
        .map_err(|e| e.errno())?;
        Ok((m.mtype, buf[..m.len].to_vec()))
    }
    fn stat(&self, id: i32) -> Result<Stat, i32> {
        let s = self
            .t
            .ns
            .queue(id)
            .map_err(|e| e.errno())?
            .stat()
            .map_err(|e| e.errno())?;
        Ok((
            s.perm.mode,
            s.qnum,
            s.cbytes,
            s.qbytes,
            s.lspid as i32,
            s.lrpid as i32,
            s.stime != 0,
            s.rtime != 0,
        ))
    }
    fn set_qbytes(&self, id: i32, qbytes: u64) -> Result<(), i32> {
        let q = self.t.ns.queue(id).map_err(|e| e.errno())?;
        let s = q.stat().map_err(|e| e.errno())?;
        q.set(QueueSet {
            uid: s.perm.uid,
            gid: s.perm.gid,
            mode: s.perm.mode,
            qbytes,
        })
        .map_err(|e| e.errno())
    }
    fn rmid(&self, id: i32) -> Result<(), i32> {
        self.t
            .ns
            .queue(id)
            .map_err(|e| e.errno())?
            .remove()
            .map_err(|e| e.errno())
    }
}

/// Runs `scenario` on both and compares transcripts.
fn parity(scenario: impl Fn(&dyn Backend) -> Vec<String>) {
    let kernel = Kernel {
        made: Default::default(),
    };
    let shmq = Shmq {
        t: TempNamespace::like_kernel(),
    };
    let k = scenario(&kernel);
    let s = scenario(&shmq);
    assert_eq!(s, k, "shmq (left) differs from the kernel (right)");
}

fn show<T: std::fmt::Debug>(what: &str, r: Result<T, i32>) -> String {
    match r {
        Ok(v) => format!("{what}: ok {v:?}"),
        Err(e) => format!("{what}: errno {}", std::io::Error::from_raw_os_error(e)),
    }
}

const NOWAIT: i32 = libc::IPC_NOWAIT;

#[test]
fn msgtyp_table() {
    let _w = watchdog(60);
    parity(|b| {
        let id = b.get(libc::IPC_PRIVATE, 0o600).unwrap();
        let mut log = vec![];
        for msgtyp in [0, 100, 200, 300, -100, -200, -300, 150, -50] {
            for flags in [NOWAIT, NOWAIT | libc::MSG_EXCEPT] {
                for t in [100, 200, 300] {
                    b.snd(id, t, format!("t{t}").as_bytes(), 0).unwrap();
                }
                log.push(show(
                    &format!("rcv {msgtyp} {flags:#x}"),
                    b.rcv(id, 64, msgtyp, flags),
                ));
                while b.rcv(id, 64, 0, NOWAIT).is_ok() {}
            }
        }
        log
    });
}

#[test]
fn fifo_order_within_type_and_across_types() {
    let _w = watchdog(60);
    parity(|b| {
        let id = b.get(libc::IPC_PRIVATE, 0o600).unwrap();
        for i in 0..20i64 {
            b.snd(id, 1 + i % 3, &i.to_le_bytes(), 0).unwrap();
        }
        let mut log = vec![];
        for msgtyp in [2, 0, -2, 3, 0, 0, -3, 1] {
            log.push(show(
                &format!("rcv {msgtyp}"),
                b.rcv(id, 64, msgtyp, NOWAIT),
            ));
        }
        log
    });
}

#[test]
fn create_exclusive_table_and_permissions() {
    let _w = watchdog(60);
    let key = 0x5a00_0000 | (std::process::id() as i32 & 0xffff);
    parity(|b| {
        let mut log = vec![];
        log.push(show("get none", b.get(key, 0).map(|_| ())));
        log.push(show(
            "get creat|excl",
            b.get(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o640)
                .map(|_| ()),
        ));
        log.push(show(
            "get creat|excl again",
            b.get(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o640)
                .map(|_| ()),
        ));
        log.push(show(
            "get creat",
            b.get(key, libc::IPC_CREAT | 0o600).map(|_| ()),
        ));
        log.push(show("get none existing", b.get(key, 0).map(|_| ())));
        let id = b.get(key, 0).unwrap();
        log.push(show("stat mode", b.stat(id).map(|s| s.0)));
        log.push(show("rmid", b.rmid(id)));
        log.push(show("rmid again", b.rmid(id)));
        log.push(show("snd removed", b.snd(id, 1, b"x", NOWAIT)));
        log.push(show("rcv removed", b.rcv(id, 8, 0, NOWAIT)));
        log.push(show("get after rmid", b.get(key, 0).map(|_| ())));
        let p1 = b.get(libc::IPC_PRIVATE, 0o600).unwrap();
        let p2 = b.get(libc::IPC_PRIVATE, 0o600).unwrap();
        log.push(format!("private ids differ: {}", p1 != p2));
        b.rmid(p1).unwrap();
        b.rmid(p2).unwrap();
        log
    });
}

#[test]
fn too_big_noerror_empty_full_and_invalid_arguments() {
    let _w = watchdog(60);
    parity(|b| {
        let id = b.get(libc::IPC_PRIVATE, 0o600).unwrap();
        let mut log = vec![];
        log.push(show("snd mtype 0", b.snd(id, 0, b"x", NOWAIT)));
        log.push(show("snd mtype -1", b.snd(id, -1, b"x", NOWAIT)));
        log.push(show("snd too long", b.snd(id, 1, &[0; 8193], NOWAIT)));
        log.push(show("snd bad id", b.snd(id + 12345, 1, b"x", NOWAIT)));
        log.push(show("snd neg id", b.snd(-1, 1, b"x", NOWAIT)));
        log.push(show("rcv empty", b.rcv(id, 8, 0, NOWAIT)));
        log.push(show("rcv empty type", b.rcv(id, 8, 5, NOWAIT)));
        b.snd(id, 5, b"0123456789", 0).unwrap();
        log.push(show("rcv e2big", b.rcv(id, 4, 5, NOWAIT)));
        log.push(show("stat after e2big", b.stat(id).map(|s| (s.1, s.2))));
        log.push(show(
            "rcv noerror",
            b.rcv(id, 4, 5, NOWAIT | libc::MSG_NOERROR),
        ));
        log.push(show(
            "rcv zero-size",
            b.snd(id, 2, b"", 0).and_then(|_| b.rcv(id, 0, 2, NOWAIT)),
        ));
        log.push(show("fill 8192", b.snd(id, 1, &[1; 8192], NOWAIT)));
        log.push(show("fill 8192 again", b.snd(id, 1, &[1; 8192], NOWAIT)));
        log.push(show("full", b.snd(id, 1, b"x", NOWAIT)));
        log.push(show("stat full", b.stat(id).map(|s| (s.1, s.2, s.3))));
        log.push(show("lower qbytes", b.set_qbytes(id, 100)));
        log.push(show("full after set", b.snd(id, 1, b"", NOWAIT)));
        while b.rcv(id, 8192, 0, NOWAIT).is_ok() {}
        log.push(show(
            "qbytes 3 allows 3 empty messages",
            b.set_qbytes(id, 3),
        ));
        for i in 0..4 {
            log.push(show(&format!("empty msg {i}"), b.snd(id, 1, b"", NOWAIT)));
        }
        log
    });
}

#[test]
fn stat_bookkeeping() {
    let _w = watchdog(60);
    let me = std::process::id() as i32;
    parity(|b| {
        let id = b.get(libc::IPC_PRIVATE, 0o640).unwrap();
        let mut log = vec![show("fresh", b.stat(id))];
        b.snd(id, 1, b"abc", 0).unwrap();
        b.snd(id, 2, b"defgh", 0).unwrap();
        log.push(show(
            "after 2 sends",
            b.stat(id)
                .map(|s| (s.0, s.1, s.2, s.3, s.4 == me, s.5, s.6, s.7)),
        ));
        b.rcv(id, 64, 2, 0).unwrap();
        log.push(show(
            "after recv",
            b.stat(id)
                .map(|s| (s.1, s.2, s.4 == me, s.5 == me, s.6, s.7)),
        ));
        log
    });
}

#[test]
fn msg_copy_peeks_by_position() {
    let _w = watchdog(60);
    parity(|b| {
        let id = b.get(libc::IPC_PRIVATE, 0o600).unwrap();
        for t in [3, 1, 2] {
            b.snd(id, t, format!("m{t}").as_bytes(), 0).unwrap();
        }
        let mut log = vec![];
        for pos in [0, 1, 2, 3] {
            log.push(show(
                &format!("copy {pos}"),
                b.rcv(id, 64, pos, NOWAIT | libc::MSG_COPY),
            ));
        }
        log.push(show("copy e2big", b.rcv(id, 1, 0, NOWAIT | libc::MSG_COPY)));
        log.push(show("stat", b.stat(id).map(|s| (s.1, s.2))));
        log
    });
}

// ----- blocked callers in another process: EIDRM and EINTR -----

/// Entry point of child processes; a no-op in a normal run.
#[test]
fn child_main() {
    let Some((role, args)) = my_role() else {
        return;
    };
    extern "C" fn on_signal(_: libc::c_int) {}
    // SAFETY: installs a handler that does nothing, with SA_RESTART: System V
    // calls must still return EINTR.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
    let id: i32 = args[1].parse().unwrap();
    let result = if args[0] == "kernel" {
        let k = Kernel {
            made: Default::default(),
        };
        match role.as_str() {
            "block_recv" => k.rcv(id, 64, 7, 0).map(|_| ()),
            _ => k.snd(id, 1, b"x", 0),
        }
    } else {
        let ns = Namespace::open_default().unwrap();
        let q = ns.queue(id).unwrap();
        match role.as_str() {
            "block_recv" => q
                .recv(&mut [0; 64], Selector::Type(7))
                .map(|_| ())
                .map_err(|e| e.errno()),
            _ => q.send(1, b"x").map_err(|e| e.errno()),
        }
    };
    println!("OUT:{}", show("blocked call", result));
}

/// The thread of child `pid` that runs the test (libtest's main thread only
/// waits for it), once it exists.
fn test_thread(pid: u32) -> u32 {
    for _ in 0..500 {
        let tids: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(&t) = tids.iter().find(|&&t| t != pid) {
            return t;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("child {pid} never started its test thread");
}

fn wait_until_asleep(pid: u32, tid: u32) {
    for _ in 0..500 {
        let stat =
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .chars()
            .next();
        if state == Some('S') {
            // Asleep; give a spinning implementation no excuse.
            std::thread::sleep(Duration::from_millis(100));
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("child {pid} never went to sleep");
}

/// The process a thread of ours belongs to (its Tgid).
fn child_pid_of(tid: u32) -> i32 {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(tid as i32)
}

fn blocked_outcome(
    backend: &str,
    dir: &std::path::Path,
    role: &str,
    id: i32,
    wake: impl FnOnce(u32),
) -> String {
    let child = spawn_role(role, dir, &[backend.to_string(), id.to_string()]);
    let pid = child.id();
    let tid = test_thread(pid);
    wait_until_asleep(pid, tid);
    wake(tid);
    let o = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("OUT:"))
        .collect()
}

#[test]
fn blocked_sender_and_receiver_get_eidrm_and_eintr() {
    let _w = watchdog(120);
    let kernel = Kernel {
        made: Default::default(),
    };
    let shmq = Shmq {
        t: TempNamespace::like_kernel(),
    };
    let dir = shmq.t.dir.clone();
    let mut transcripts = vec![];
    for (name, b) in [
        ("kernel", &kernel as &dyn Backend),
        ("shmq", &shmq as &dyn Backend),
    ] {
        let mut log = vec![];
        for role in ["block_recv", "block_send"] {
            for how in ["signal", "rmid"] {
                let id = b.get(libc::IPC_PRIVATE, 0o600).unwrap();
                if role == "block_send" {
                    // Full, whatever the limits: large texts, then 1 byte.
                    while b.snd(id, 1, &[0; 8192], NOWAIT).is_ok() {}
                    while b.snd(id, 1, &[0; 1], NOWAIT).is_ok() {}
                }
                let out = blocked_outcome(name, &dir, role, id, |tid| {
                    if how == "signal" {
                        // SAFETY: tgkill(2) on our child's blocked thread
                        // (a process-directed signal could run the handler on
                        // another thread and interrupt nothing).
                        unsafe {
                            libc::syscall(
                                libc::SYS_tgkill,
                                child_pid_of(tid),
                                tid as i32,
                                libc::SIGUSR1,
                            )
                        };
                    } else {
                        b.rmid(id).unwrap();
                    }
                });
                log.push(format!("{role} woken by {how}: {out}"));
                let _ = b.rmid(id);
            }
        }
        transcripts.push(log);
    }
    assert_eq!(
        transcripts[1], transcripts[0],
        "shmq (left) differs from the kernel (right)"
    );
    assert!(
        transcripts[0][0].contains("Interrupted"),
        "{:?}",
        transcripts[0]
    );
}
