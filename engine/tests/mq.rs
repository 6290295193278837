//! POSIX message queues (`shmq::MessageQueue`): names, attributes, limits,
//! priority order, descriptors, unlink semantics, and real processes
//! (checksummed MPMC with priorities, SIGKILL at random moments, a child
//! after `fork` sharing `O_NONBLOCK`, another user's permissions).

mod common;
use common::*;
use shmq::*;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::{Duration, Instant};

/// POSIX limits pinned for the tests (the host's `fs.mqueue.*` may differ).
const MQ_CONFIG: &str = "mq_msg_max = 64\nmq_msgsize_max = 8192\nmq_msg_default = 10\n\
                         mq_msgsize_default = 8192\nmq_queues_max = 256\n";

fn temp() -> TempNamespace {
    TempNamespace::with_config(MQ_CONFIG)
}

fn rw() -> MqOpenOptions {
    MqOpenOptions::new().read(true).write(true)
}

fn new_queue(t: &TempNamespace, name: &str, maxmsg: i64, msgsize: i64) -> MessageQueue {
    rw().create(true)
        .exclusive(true)
        .mode(0o600)
        .attributes(maxmsg, msgsize)
        .open(&t.ns, name)
        .unwrap()
}

#[test]
fn names_are_checked_in_the_kernels_order() {
    let t = temp();
    let c = rw().create(true).mode(0o600);
    assert_eq!(c.open(&t.ns, "x").unwrap_err(), MqOpenError::Invalid);
    assert_eq!(c.open(&t.ns, "").unwrap_err(), MqOpenError::Invalid);
    assert_eq!(c.open(&t.ns, "/").unwrap_err(), MqOpenError::NotFound);
    assert_eq!(c.open(&t.ns, "/a/b").unwrap_err(), MqOpenError::Access);
    assert_eq!(c.open(&t.ns, "/.").unwrap_err(), MqOpenError::Access);
    assert_eq!(c.open(&t.ns, "/..").unwrap_err(), MqOpenError::Access);
    let long = format!("/{}", "n".repeat(256));
    assert_eq!(c.open(&t.ns, &long).unwrap_err(), MqOpenError::NameTooLong);
    // Another slash is seen before the length.
    let long_slash = format!("/{}/b", "n".repeat(300));
    assert_eq!(c.open(&t.ns, &long_slash).unwrap_err(), MqOpenError::Access);
    let longest = format!("/{}", "n".repeat(255));
    c.open(&t.ns, &longest).unwrap();
    MessageQueue::unlink(&t.ns, &longest).unwrap();
    assert_eq!(
        MessageQueue::unlink(&t.ns, "x").unwrap_err(),
        MqUnlinkError::Invalid
    );
    assert_eq!(
        MessageQueue::unlink(&t.ns, "/").unwrap_err(),
        MqUnlinkError::NotFound
    );
    assert_eq!(
        MessageQueue::unlink(&t.ns, "/a/b").unwrap_err(),
        MqUnlinkError::Access
    );
    assert_eq!(
        MessageQueue::unlink(&t.ns, &long).unwrap_err(),
        MqUnlinkError::NameTooLong
    );
    assert_eq!(
        MessageQueue::unlink(&t.ns, "/missing").unwrap_err(),
        MqUnlinkError::NotFound
    );
}

#[test]
fn create_exclusive_access_and_attributes() {
    let t = temp();
    assert_eq!(rw().open(&t.ns, "/q").unwrap_err(), MqOpenError::NotFound);
    // Attributes are checked only when the queue is made.
    for (m, s) in [(0, 10), (10, 0), (-1, 10), (65, 10), (10, 8193)] {
        assert_eq!(
            rw().create(true)
                .attributes(m, s)
                .open(&t.ns, "/q")
                .unwrap_err(),
            MqOpenError::Invalid,
            "attributes {m} / {s}"
        );
    }
    let q = new_queue(&t, "/q", 4, 16);
    assert_eq!(
        q.attributes(),
        MqAttr {
            nonblocking: false,
            max_messages: 4,
            message_size: 16,
            current_messages: 0
        }
    );
    assert_eq!(
        rw().create(true)
            .exclusive(true)
            .open(&t.ns, "/q")
            .unwrap_err(),
        MqOpenError::Exists
    );
    // An existing queue: bad attributes do not matter, its own stay.
    let again = rw()
        .create(true)
        .attributes(0, 0)
        .open(&t.ns, "/q")
        .unwrap();
    assert_eq!(again.attributes().max_messages, 4);
    // Neither read nor write (O_ACCMODE 3) on an existing queue.
    assert_eq!(
        MqOpenOptions::new().open(&t.ns, "/q").unwrap_err(),
        MqOpenError::Invalid
    );
    // ... but creating with it works (as the kernel), and the
    // description can do nothing.
    let none = MqOpenOptions::new()
        .create(true)
        .mode(0o600)
        .open(&t.ns, "/none")
        .unwrap();
    let mut buf = [0u8; 8192];
    assert_eq!(none.try_send(b"x", 0), Err(MqSendError::BadDescriptor));
    assert_eq!(none.try_recv(&mut buf), Err(MqRecvError::BadDescriptor));
    // One attribute given: the other is the default.
    let half = rw()
        .create(true)
        .mode(0o600)
        .max_messages(3)
        .open(&t.ns, "/half")
        .unwrap();
    assert_eq!(
        (
            half.attributes().max_messages,
            half.attributes().message_size
        ),
        (3, 8192)
    );
    MessageQueue::unlink(&t.ns, "/half").unwrap();
    // Defaults from the limits.
    assert_eq!(
        (
            none.attributes().max_messages,
            none.attributes().message_size
        ),
        (10, 8192)
    );
    let names: Vec<String> = MessageQueue::list(&t.ns)
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["/none", "/q"]);
    // A System V queue and a POSIX one live side by side.
    let sysv = t.ns.get(0x51, create(0o600)).unwrap();
    assert_eq!(t.ns.ids(), [sysv.id()]);
    sysv.remove().unwrap();
}

#[test]
fn priorities_highest_first_fifo_within_one() {
    let t = temp();
    let q = new_queue(&t, "/prio", 64, 32);
    let sent: Vec<(u32, String)> = (0..60)
        .map(|i| {
            let prio = [0, 5, 31, 32767, 5, 0][i % 6];
            (prio, format!("m{i}"))
        })
        .collect();
    for (p, text) in &sent {
        q.try_send(text.as_bytes(), *p).unwrap();
    }
    assert_eq!(q.try_send(b"x", MQ_PRIO_MAX), Err(MqSendError::Invalid));
    let mut want = sent.clone();
    want.sort_by_key(|(p, _)| std::cmp::Reverse(*p)); // stable: FIFO within
    let mut buf = [0u8; 32];
    for (p, text) in want {
        let (len, prio) = q.try_recv(&mut buf).unwrap();
        assert_eq!((prio, &buf[..len]), (p, text.as_bytes()));
    }
    assert_eq!(q.try_recv(&mut buf), Err(MqRecvError::Again));
}

#[test]
fn the_count_limit_and_sizes() {
    let t = temp();
    let q = new_queue(&t, "/full", 3, 8);
    // Zero-length messages count against mq_maxmsg too.
    for _ in 0..3 {
        q.try_send(b"", 1).unwrap();
    }
    assert_eq!(q.try_send(b"", 1), Err(MqSendError::Again));
    assert_eq!(q.attributes().current_messages, 3);
    let mut buf = [0u8; 8];
    q.try_recv(&mut buf).unwrap();
    q.try_send(b"12345678", 2).unwrap();
    assert_eq!(q.try_send(b"1", 2), Err(MqSendError::Again));
    // Order of checks: priority, access, size, then fullness.
    assert_eq!(
        q.try_send(b"123456789", MQ_PRIO_MAX),
        Err(MqSendError::Invalid)
    );
    assert_eq!(q.try_send(b"123456789", 0), Err(MqSendError::TooBig));
    let wo = MqOpenOptions::new()
        .write(true)
        .open(&t.ns, "/full")
        .unwrap();
    let ro = MqOpenOptions::new()
        .read(true)
        .open(&t.ns, "/full")
        .unwrap();
    assert_eq!(
        ro.try_send(b"123456789", 0),
        Err(MqSendError::BadDescriptor)
    );
    assert_eq!(ro.try_send(b"x", MQ_PRIO_MAX), Err(MqSendError::Invalid));
    assert_eq!(wo.try_recv(&mut [0u8; 1]), Err(MqRecvError::BadDescriptor));
    // A buffer shorter than mq_msgsize: EMSGSIZE, even with a message ready
    // (which stays) ...
    assert_eq!(ro.try_recv(&mut [0u8; 7]), Err(MqRecvError::TooBig));
    assert_eq!(q.attributes().current_messages, 3);
    let (len, prio) = ro.try_recv(&mut buf).unwrap();
    assert_eq!((len, prio, &buf[..len]), (8, 2, &b"12345678"[..]));
    // ... and on an empty queue.
    while ro.try_recv(&mut buf).is_ok() {}
    assert_eq!(ro.try_recv(&mut [0u8; 7]), Err(MqRecvError::TooBig));
}

#[test]
fn nonblocking_belongs_to_the_description_and_wins_over_deadlines() {
    let _w = watchdog(60);
    let t = temp();
    let q = new_queue(&t, "/nb", 1, 8);
    let mut buf = [0u8; 8];
    let began = Instant::now();
    assert_eq!(
        q.recv_timeout(&mut buf, Duration::from_millis(30)),
        Err(MqRecvError::TimedOut)
    );
    assert!(began.elapsed() >= Duration::from_millis(30));
    // A deadline already past still succeeds when it can.
    q.send_deadline(b"a", 0, Instant::now() - Duration::from_secs(1))
        .unwrap();
    assert_eq!(
        q.send_deadline(b"b", 0, Instant::now()),
        Err(MqSendError::TimedOut)
    );
    let clone = q.clone();
    let other = rw().open(&t.ns, "/nb").unwrap();
    clone.set_nonblocking(true);
    assert!(q.attributes().nonblocking);
    assert!(!other.attributes().nonblocking);
    assert_eq!(q.send(b"b", 0), Err(MqSendError::Again));
    assert_eq!(
        q.send_timeout(b"b", 0, Duration::from_secs(30)),
        Err(MqSendError::Again)
    );
    q.recv(&mut buf).unwrap();
    assert_eq!(q.recv(&mut buf), Err(MqRecvError::Again));
    assert_eq!(
        q.recv_deadline(&mut buf, Instant::now() + Duration::from_secs(30)),
        Err(MqRecvError::Again)
    );
    // A blocking description of the same queue waits, and is woken.
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        clone.send(b"late", 7).unwrap();
    });
    let (len, prio) = other.recv(&mut buf).unwrap();
    assert_eq!((&buf[..len], prio), (&b"late"[..], 7));
    sender.join().unwrap();
}

#[test]
fn unlink_removes_the_name_at_once_and_open_handles_keep_the_queue() {
    let t = temp();
    let q = new_queue(&t, "/gone", 4, 16);
    q.try_send(b"kept", 3).unwrap();
    MessageQueue::unlink(&t.ns, "/gone").unwrap();
    assert_eq!(
        rw().open(&t.ns, "/gone").unwrap_err(),
        MqOpenError::NotFound
    );
    assert_eq!(
        MessageQueue::unlink(&t.ns, "/gone").unwrap_err(),
        MqUnlinkError::NotFound
    );
    // A new queue of that name is another queue.
    let fresh = new_queue(&t, "/gone", 2, 16);
    assert_eq!(fresh.attributes().current_messages, 0);
    q.try_send(b"more", 1).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(q.try_recv(&mut buf).unwrap(), (4, 3));
    assert_eq!(&buf[..4], b"kept");
    assert_eq!(q.attributes().current_messages, 1);
    assert_eq!(fresh.try_recv(&mut buf), Err(MqRecvError::Again));
}

#[test]
fn the_mode_is_narrowed_by_the_umask() {
    let t = temp();
    // In a child: the umask is the whole process's.
    let out = spawn_role("umask", &t.dir, &["/masked".into()])
        .wait_with_output()
        .unwrap();
    assert!(out.status.success());
    let info = MessageQueue::list(&t.ns);
    assert_eq!(
        (info[0].name.as_str(), info[0].perms.mode),
        ("/masked", 0o640)
    );
}

#[test]
fn rlimit_msgqueue_counts_the_owners_queues_as_the_kernel() {
    let t = temp();
    // In a child: the limit is the whole process's. Two queues of 640
    // bytes fit 1300, a third does not; unlinking one makes room again.
    let out = spawn_role("rlimit", &t.dir, &["1300".into()])
        .wait_with_output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l == "ok ok TooManyFiles ok ok"),
        "{stdout}"
    );
    assert_eq!(MqOpenError::TooManyFiles.errno(), libc::EMFILE);
}

#[test]
fn a_dead_owners_registration_is_free_and_the_doctor_frees_it() {
    let t = temp();
    let q = new_queue(&t, "/dead", 2, 8);
    let run = || {
        let out = spawn_role("notify_and_exit", &t.dir, &["/dead".into()])
            .wait_with_output()
            .unwrap();
        assert!(out.status.success());
    };
    // A registrar finds the dead owner's registration free.
    run();
    q.notify(Some(MqNotify::None)).unwrap();
    q.notify(None).unwrap();
    // The doctor reports it and frees it.
    run();
    let dry = t.ns.doctor(&shmq::doctor::DoctorOptions {
        dry_run: true,
        ..Default::default()
    });
    assert_eq!(dry.findings.len(), 1, "{dry:?}");
    let report = t.ns.doctor(&shmq::doctor::DoctorOptions::default());
    assert_eq!(report.findings.len(), 1, "{report:?}");
    let text = report.findings[0].to_string();
    assert!(
        text.starts_with("fixed: POSIX queue /dead: notification registration of process")
            && text.ends_with("which is gone; freed"),
        "{text}"
    );
    assert!(t.ns.doctor(&Default::default()).findings.is_empty());
    q.notify(Some(MqNotify::None)).unwrap();
}

/// Entry point of child processes; a no-op in a normal run.
#[test]
fn child_main() {
    let Some((role, args)) = my_role() else {
        return;
    };
    let ns = Namespace::open_default().unwrap();
    match role.as_str() {
        // args: name, producer number, messages, log file
        "sender" => {
            let q = MqOpenOptions::new()
                .write(true)
                .open(&ns, &args[0])
                .unwrap();
            let me: u32 = args[1].parse().unwrap();
            let n: u64 = args[2].parse().unwrap();
            let mut log = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&args[3])
                .unwrap();
            for seq in 0..n {
                let prio = (seq.wrapping_mul(7) % 32) as u32;
                let text = encode_message(me, seq, prio as i64, (seq % 200) as usize);
                q.send(&text, prio).unwrap();
                log.write_all(format!("{me} {seq}\n").as_bytes()).unwrap();
            }
        }
        // args: name, log file; receives until a timeout
        "receiver" => {
            let q = MqOpenOptions::new().read(true).open(&ns, &args[0]).unwrap();
            let mut log = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&args[1])
                .unwrap();
            let mut buf = vec![0u8; 8192];
            let stop_after = args.get(2).map(|s| s.parse::<u64>().unwrap());
            loop {
                let r = match stop_after {
                    Some(ms) => q.recv_timeout(&mut buf, Duration::from_millis(ms)),
                    None => q.recv(&mut buf),
                };
                let (len, prio) = match r {
                    Ok(m) => m,
                    Err(MqRecvError::TimedOut) => break,
                    Err(e) => panic!("{e}"),
                };
                let (p, s, t) = decode_message(&buf[..len]).expect("intact message");
                assert_eq!(t, prio as i64, "priority travels with the message");
                log.write_all(format!("{p} {s} {prio}\n").as_bytes())
                    .unwrap();
            }
        }
        // args: name; prints what it sees, as another user
        "stranger" => {
            let r = |o: MqOpenOptions| match o.open(&ns, &args[0]) {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("{:?}", e),
            };
            println!(
                "read {} write {} rw {} unlink {:?}",
                r(MqOpenOptions::new().read(true)),
                r(MqOpenOptions::new().write(true)),
                r(rw()),
                MessageQueue::unlink(&ns, &args[0]).err()
            );
        }
        // args: RLIMIT_MSGQUEUE; creates 4 x 64 queues (640 bytes each to
        // the kernel's count) and prints what each creation gave
        "rlimit" => {
            let limit: u64 = args[0].parse().unwrap();
            let rl = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: setrlimit reads a live rlimit.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_MSGQUEUE, &rl) }, 0);
            let make = |name: &str| {
                rw().create(true)
                    .exclusive(true)
                    .mode(0o600)
                    .attributes(4, 64)
                    .open(&ns, name)
            };
            let show = |r: &Result<MessageQueue, MqOpenError>| match r {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("{e:?}"),
            };
            let q1 = make("/r1");
            let first = show(&q1);
            drop(q1);
            let q2 = make("/r2");
            let q3 = make("/r3");
            // Opening an existing queue is not counted.
            let again = rw().open(&ns, "/r2");
            MessageQueue::unlink(&ns, "/r1").unwrap();
            let q4 = make("/r4");
            println!(
                "{first} {} {} {} {}",
                show(&q2),
                show(&q3),
                show(&again),
                show(&q4)
            );
        }
        // args: name; registers for notification and exits without closing
        "notify_and_exit" => {
            let q = rw().open(&ns, &args[0]).unwrap();
            q.notify(Some(MqNotify::None)).unwrap();
            println!("registered");
            std::process::exit(0);
        }
        // args: name; creates it 0666 under umask 027
        "umask" => {
            // SAFETY: umask(2) has no memory effects.
            unsafe { libc::umask(0o027) };
            rw().create(true).mode(0o666).open(&ns, &args[0]).unwrap();
        }
        _ => panic!("unknown role {role}"),
    }
}

fn read_log(path: &std::path::Path) -> Vec<Vec<u64>> {
    complete_lines(path)
        .iter()
        .map(|l| l.split(' ').filter_map(|w| w.parse().ok()).collect())
        .collect()
}

#[test]
fn processes_mpmc_with_priorities_and_checksums() {
    let _w = watchdog(300);
    let t = temp();
    let name = "/mpmc";
    let _q = new_queue(&t, name, 16, 512);
    let per_sender = if cfg!(debug_assertions) {
        2_000
    } else {
        20_000
    };
    let mut kids = vec![];
    let mut rlogs = vec![];
    for r in 0..2 {
        let log = t.dir.join(format!("recv.{r}"));
        kids.push(spawn_role(
            "receiver",
            &t.dir,
            &[name.into(), log.to_string_lossy().into(), "2000".into()],
        ));
        rlogs.push(log);
    }
    for s in 0..2 {
        let log = t.dir.join(format!("send.{s}"));
        kids.push(spawn_role(
            "sender",
            &t.dir,
            &[
                name.into(),
                s.to_string(),
                per_sender.to_string(),
                log.to_string_lossy().into(),
            ],
        ));
    }
    for mut k in kids {
        assert!(k.wait().unwrap().success());
    }
    let mut seen = HashSet::new();
    for log in &rlogs {
        // Each receiver sees each (sender, priority) stream in send order.
        let mut last: HashMap<(u64, u64), u64> = HashMap::new();
        for e in read_log(log) {
            let (p, s, prio) = (e[0], e[1], e[2]);
            assert_eq!(prio, s.wrapping_mul(7) % 32);
            if let Some(&before) = last.get(&(p, prio)) {
                assert!(s > before, "sender {p} prio {prio}: {s} after {before}");
            }
            last.insert((p, prio), s);
            assert!(seen.insert((p, s)), "({p}, {s}) received twice");
        }
    }
    assert_eq!(seen.len() as u64, 2 * per_sender, "every message, once");
}

#[test]
fn sigkill_at_random_moments_then_exact_counts() {
    let _w = watchdog(600);
    let t = temp();
    let name = "/killed";
    let q = new_queue(&t, name, 32, 256);
    let kills_wanted = if cfg!(debug_assertions) { 20 } else { 80 };
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let (mut running, mut logs) = (vec![], vec![]);
    let (mut kills, mut killed_receivers, mut serial) = (0, 0, 0u32);
    while kills < kills_wanted {
        for want_sender in [true, true, false, false] {
            if running
                .iter()
                .filter(|r: &&(std::process::Child, bool)| r.1 == want_sender)
                .count()
                < 2
            {
                serial += 1;
                let log = t.dir.join(format!("log.{serial}"));
                let logs_arg = log.to_string_lossy().into_owned();
                let child = if want_sender {
                    spawn_role(
                        "sender",
                        &t.dir,
                        &[
                            name.into(),
                            serial.to_string(),
                            u64::MAX.to_string(),
                            logs_arg,
                        ],
                    )
                } else {
                    spawn_role("receiver", &t.dir, &[name.into(), logs_arg])
                };
                logs.push((want_sender, log));
                running.push((child, want_sender));
            }
        }
        std::thread::sleep(Duration::from_micros(2000 + next(20_000)));
        let (mut child, is_sender) = running.swap_remove(next(running.len() as u64) as usize);
        kill_and_reap(&mut child, "a sender or receiver");
        kills += 1;
        killed_receivers += usize::from(!is_sender);
    }
    for (mut child, is_sender) in running.drain(..) {
        kill_and_reap(&mut child, "a sender or receiver");
        killed_receivers += usize::from(!is_sender);
    }
    // Right after the reaping, with no recovery call: mq_curmsgs counts
    // what a non-blocking drain receives.
    let curmsgs = q.attributes().current_messages;
    let mut received: Vec<(u64, u64)> = vec![];
    let mut buf = vec![0u8; 256];
    while let Ok((len, prio)) = q.try_recv(&mut buf) {
        let (p, s, t) = decode_message(&buf[..len]).expect("intact message");
        assert_eq!(t, prio as i64);
        received.push((p as u64, s));
    }
    assert_eq!(curmsgs, received.len() as u64, "mq_curmsgs after the kills");
    let mut sent = HashSet::new();
    for (is_sender, log) in &logs {
        for e in read_log(log) {
            if *is_sender {
                sent.insert((e[0], e[1]));
            } else {
                received.push((e[0], e[1]));
            }
        }
    }
    let mut seen = HashSet::new();
    for r in &received {
        assert!(seen.insert(*r), "message {r:?} received twice");
    }
    let lost = sent.iter().filter(|m| !seen.contains(m)).count();
    assert!(
        lost <= killed_receivers,
        "{lost} lost, more than the {killed_receivers} killed receivers could hold"
    );
    assert!(
        sent.len() > 500,
        "too little traffic ({} messages)",
        sent.len()
    );
    // Full capacity again: exactly mq_maxmsg messages fit.
    let mut filled = 0;
    while q.try_send(&[1; 256], 3).is_ok() {
        filled += 1;
    }
    assert_eq!(filled, 32);
    eprintln!(
        "kills {kills} (receivers {killed_receivers}), sent {}, lost {lost}",
        sent.len()
    );
}

#[test]
fn a_forked_childs_set_nonblocking_changes_the_parents_description() {
    let t = temp();
    let q = new_queue(&t, "/fork", 1, 8);
    let other = rw().open(&t.ns, "/fork").unwrap();
    // SAFETY: the child only stores to an atomic in a mapping it inherited
    // and calls _exit (both async-signal-safe), as fork in a threaded
    // process requires.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        q.set_nonblocking(true);
        // SAFETY: ends the child at once, running nothing of the parent's.
        unsafe { libc::_exit(0) };
    }
    assert!(pid > 0);
    let mut status = 0;
    // SAFETY: waits for the child just forked; `status` is a valid pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        q.attributes().nonblocking,
        "the child's change is the parent's"
    );
    assert!(
        !other.attributes().nonblocking,
        "another description is not"
    );
    let mut buf = [0u8; 8];
    assert_eq!(q.recv(&mut buf), Err(MqRecvError::Again));
}

#[test]
fn another_users_access_follows_the_mode() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run a process as nobody");
        return;
    }
    let _w = watchdog(60);
    // Modes exactly as given (no other test of this binary depends on the
    // umask; the umask test runs in a child).
    // SAFETY: umask(2) has no memory effects.
    unsafe { libc::umask(0) };
    let t = temp();
    let ask = |name: &str| {
        let out = spawn_role_as("stranger", &t.dir, &[name.into()], Some((65534, 65534)))
            .wait_with_output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text.lines().find(|l| l.starts_with("read "));
        line.unwrap_or_else(|| panic!("no answer in {text:?}"))
            .to_owned()
    };
    let none = rw()
        .create(true)
        .mode(0o600)
        .open(&t.ns, "/private")
        .unwrap();
    assert_eq!(
        ask("/private").trim(),
        "read Access write Access rw Access unlink Some(Access)"
    );
    let _ro = rw()
        .create(true)
        .mode(0o644)
        .open(&t.ns, "/readable")
        .unwrap();
    assert_eq!(
        ask("/readable").trim(),
        "read ok write Access rw Access unlink Some(Access)"
    );
    let _all = rw().create(true).mode(0o666).open(&t.ns, "/open").unwrap();
    // The directory is sticky: another user may not remove the name.
    assert_eq!(
        ask("/open").trim(),
        "read ok write ok rw ok unlink Some(Access)"
    );
    drop(none);
}

#[test]
fn a_damaged_queue_file_is_refused_and_the_doctor_reports_it() {
    let t = temp();
    let q = new_queue(&t, "/good", 2, 8);
    std::fs::write(t.dir.join("mq").join("junk"), b"not a queue").unwrap();
    assert_eq!(
        rw().open(&t.ns, "/junk").unwrap_err(),
        MqOpenError::NoMemory
    );
    assert_eq!(
        rw().create(true)
            .exclusive(true)
            .open(&t.ns, "/junk")
            .unwrap_err(),
        MqOpenError::Exists
    );
    let names: Vec<String> = MessageQueue::list(&t.ns)
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["/good"], "the damaged file is not listed");
    let report = t.ns.doctor(&shmq::doctor::DoctorOptions::default());
    assert_eq!(report.queues_checked, 2, "{report:?}");
    assert_eq!(report.findings.len(), 1, "{report:?}");
    let text = report.findings[0].to_string();
    assert!(
        text.starts_with("damaged: POSIX queue /junk: file damaged")
            && text.ends_with("remove it with `shmq rm --mq /junk` (its messages are lost)"),
        "{text}"
    );
    q.try_send(b"ok", 1).unwrap();
    MessageQueue::unlink(&t.ns, "/junk").unwrap();
}

/// Values the notification signal handler saw: (count, si_code, si_value,
/// si_pid). Plain process-local atomics: a signal handler's statics, which
/// no loom model reads.
#[allow(clippy::disallowed_types)]
static SIG_COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
#[allow(clippy::disallowed_types)]
static SIG_CODE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
#[allow(clippy::disallowed_types)]
static SIG_VALUE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
#[allow(clippy::disallowed_types)]
static SIG_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_notify(_sig: i32, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    use std::sync::atomic::Ordering::SeqCst;
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let info = unsafe { &*info };
    SIG_CODE.store(info.si_code, SeqCst);
    // SAFETY: as above; SI_MESGQ carries the _rt member (pid, uid, value).
    unsafe {
        SIG_VALUE.store(info.si_value().sival_ptr as u64, SeqCst);
        SIG_PID.store(info.si_pid(), SeqCst);
    }
    SIG_COUNT.fetch_add(1, SeqCst);
}

fn wait_for(mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

#[test]
fn notify_signal_thread_none_and_the_firing_rule() {
    use std::sync::atomic::Ordering::SeqCst;
    let t = temp();
    let q = new_queue(&t, "/notify", 4, 64);
    let mut buf = [0u8; 64];
    let sig = libc::SIGRTMIN() + 3;
    // SAFETY: installs an SA_SIGINFO handler that only stores to atomics.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_notify as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        assert_eq!(libc::sigaction(sig, &sa, std::ptr::null_mut()), 0);
    }
    assert_eq!(
        q.notify(Some(MqNotify::Signal {
            signo: 65,
            value: 0
        })),
        Err(MqNotifyError::Invalid)
    );
    assert_eq!(
        q.notify(Some(MqNotify::Signal {
            signo: -1,
            value: 0
        })),
        Err(MqNotifyError::Invalid)
    );
    // SIGEV_SIGNAL: fires once, on the empty -> non-empty send only.
    q.notify(Some(MqNotify::Signal {
        signo: sig,
        value: 0x1234,
    }))
    .unwrap();
    assert_eq!(
        q.notify(Some(MqNotify::None)),
        Err(MqNotifyError::Busy),
        "one registration per queue (our own counts too)"
    );
    q.send(b"one", 1).unwrap();
    assert!(wait_for(|| SIG_COUNT.load(SeqCst) == 1), "no signal");
    assert_eq!(SIG_CODE.load(SeqCst), -3, "SI_MESGQ");
    assert_eq!(SIG_VALUE.load(SeqCst), 0x1234);
    assert_eq!(SIG_PID.load(SeqCst), std::process::id() as i32);
    // Used up: a registration may be made again, and a send into a
    // non-empty queue does not fire it.
    q.notify(Some(MqNotify::Signal {
        signo: sig,
        value: 7,
    }))
    .unwrap();
    q.send(b"two", 1).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(SIG_COUNT.load(SeqCst), 1, "a non-empty queue notified");
    q.recv(&mut buf).unwrap();
    q.recv(&mut buf).unwrap();
    q.send(b"three", 1).unwrap();
    assert!(wait_for(|| SIG_COUNT.load(SeqCst) == 2));
    assert_eq!(SIG_VALUE.load(SeqCst), 7);
    q.recv(&mut buf).unwrap();
    // Unregistered: nothing fires.
    q.notify(Some(MqNotify::Signal {
        signo: sig,
        value: 8,
    }))
    .unwrap();
    q.notify(None).unwrap();
    q.send(b"four", 1).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(SIG_COUNT.load(SeqCst), 2, "fired after unregistration");
    q.recv(&mut buf).unwrap();

    // SIGEV_THREAD: a thread of this process runs the function, once.
    let (tx, rx) = std::sync::mpsc::channel();
    q.notify(Some(MqNotify::Thread(Box::new(move || {
        tx.send(std::thread::current().name().map(str::to_owned))
            .unwrap();
    }))))
    .unwrap();
    q.send(b"five", 1).unwrap();
    let ran = rx.recv_timeout(Duration::from_secs(10)).expect("not run");
    assert_eq!(ran.as_deref(), Some("shmq-mq-notify"));
    q.recv(&mut buf).unwrap();
    // A cancelled SIGEV_THREAD registration never runs its function.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    q.notify(Some(MqNotify::Thread(Box::new(move || {
        tx.send(()).unwrap();
    }))))
    .unwrap();
    q.notify(None).unwrap();
    q.send(b"six", 1).unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
    q.recv(&mut buf).unwrap();

    // A receiver blocked in recv takes the message: no notification, the
    // registration stays.
    q.notify(Some(MqNotify::Signal {
        signo: sig,
        value: 9,
    }))
    .unwrap();
    let r = q.clone();
    let waiter = std::thread::spawn(move || {
        let mut b = [0u8; 64];
        r.recv(&mut b).unwrap().0
    });
    std::thread::sleep(Duration::from_millis(200));
    q.send(b"seven", 1).unwrap();
    assert_eq!(waiter.join().unwrap(), 5);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(SIG_COUNT.load(SeqCst), 2, "a handed-over message notified");
    assert_eq!(q.notify(Some(MqNotify::None)), Err(MqNotifyError::Busy));
    q.send(b"eight", 1).unwrap();
    assert!(wait_for(|| SIG_COUNT.load(SeqCst) == 3));
    assert_eq!(SIG_VALUE.load(SeqCst), 9);
    q.recv(&mut buf).unwrap();

    // SIGEV_NONE holds the queue and is used up silently; the owner's
    // close (the last clone dropped) removes a registration.
    q.notify(Some(MqNotify::None)).unwrap();
    q.send(b"nine", 1).unwrap();
    q.recv(&mut buf).unwrap();
    q.notify(Some(MqNotify::None)).unwrap();
    let other = rw().open(&t.ns, "/notify").unwrap();
    drop(other);
    q.notify(Some(MqNotify::None))
        .expect("closing a descriptor removes the owner's registration");
    q.notify(None).unwrap();
}
