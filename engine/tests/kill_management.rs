//! SIGKILL inside the namespace's management operations: queue creation and
//! removal, IPC_SET, creating the id table, and the repair a process does
//! when it takes the management lock over from a dead holder.
//!
//! Two ways in:
//! - deterministic: a child process arms one of the engine's kill points
//!   (`shmq::KillPoint`, reached only in management paths) and dies there
//!   (or stops there, alive, holding the lock); every point is hit, and the
//!   child's exit by SIGKILL proves it was reached;
//! - by timing: a child creates and removes queues in a loop and is killed
//!   after a random short delay, many times; how often each intermediate
//!   state was caught is printed (never asserted).
//!
//! After every kill: another process's msgget / IPC_STAT / IPC_RMID works
//! (the dead holder is detected; the watchdog bounds the time), the key is
//! reusable, ids stay unique, `Namespace::doctor` reports only what a dead
//! process leaves (and repairs it; a second run is clean), and in the end
//! the directory holds no stray file.

mod common;
use common::*;
use shmq::doctor::*;
use shmq::test_hooks::*;
use shmq::*;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The key of the queue that every scenario leaves alone (with one message).
const BYSTANDER: i32 = 0x4b00;
/// The key a scenario creates or removes.
const KEY: i32 = 0x4b01;
/// The key a second child uses when it repairs what the first left.
const KEY2: i32 = 0x4b02;
/// The key the parent's own msgget uses when it recovers.
const PROBE: i32 = 0x4b03;

fn point_named(name: &str) -> KillPoint {
    *KillPoint::ALL
        .iter()
        .find(|p| format!("{p:?}") == name)
        .unwrap_or_else(|| panic!("no kill point {name}"))
}

/// Entry point of child processes; a no-op in a normal run.
/// Roles: `op OPERATION POINT ACTION KEY` and `churn LOG`.
#[test]
fn child_main() {
    let Some((role, args)) = my_role() else {
        return;
    };
    match role.as_str() {
        "op" => {
            let (op, point, key) = (&args[0], point_named(&args[1]), args[3].parse().unwrap());
            let action = match args[2].as_str() {
                "stop" => Some(KillAction::Stop),
                "kill" => Some(KillAction::Kill),
                _ => None, // "none": the operation runs to its end
            };
            let arm_kill_point = |point, action: Option<KillAction>| {
                if let Some(action) = action {
                    arm_kill_point(point, action);
                }
            };
            if op == "open" {
                arm_kill_point(point, action);
                Namespace::open_default().unwrap();
            } else {
                let ns = Namespace::open_default().unwrap();
                match op.as_str() {
                    "create" => {
                        arm_kill_point(point, action);
                        ns.get(
                            key,
                            GetOptions::new().create(true).exclusive(true).mode(0o600),
                        )
                        .unwrap();
                    }
                    "remove" => {
                        let q = ns.get(key, GetOptions::new()).unwrap();
                        arm_kill_point(point, action);
                        q.remove().unwrap();
                    }
                    "set" => {
                        let q = ns.get(key, GetOptions::new()).unwrap();
                        let s = q.stat().unwrap();
                        arm_kill_point(point, action);
                        q.set(QueueSet {
                            uid: s.perm.uid,
                            gid: s.perm.gid,
                            mode: 0o640,
                            qbytes: s.qbytes,
                        })
                        .unwrap();
                    }
                    _ => panic!("unknown op {op}"),
                }
            }
            println!("done");
        }
        "churn" => {
            // Creates and removes a queue for KEY over and over (IPC_SET on
            // every third), logging each id created; killed at random.
            let ns = Namespace::open_default().unwrap();
            let mut log = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&args[0])
                .unwrap();
            println!("ready");
            std::io::stdout().flush().unwrap();
            let excl = GetOptions::new().create(true).exclusive(true).mode(0o600);
            for i in 0u64.. {
                let q = ns.get(KEY, excl).unwrap();
                log.write_all(format!("{}\n", q.id()).as_bytes()).unwrap();
                if i % 3 == 0 {
                    let s = q.stat().unwrap();
                    q.set(QueueSet {
                        uid: s.perm.uid,
                        gid: s.perm.gid,
                        mode: 0o640,
                        qbytes: s.qbytes,
                    })
                    .unwrap();
                }
                q.remove().unwrap();
            }
        }
        _ => panic!("unknown role {role}"),
    }
}

fn spawn_op(dir: &Path, op: &str, point: KillPoint, action: &str, key: i32) -> std::process::Child {
    spawn_role(
        "op",
        dir,
        &[
            op.into(),
            format!("{point:?}"),
            action.into(),
            key.to_string(),
        ],
    )
}

/// Waits for a child armed with `kill` and checks that it died by SIGKILL
/// (so it reached its kill point).
fn expect_killed(mut child: std::process::Child, what: &str) {
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "{what}: the child did not die at its kill point ({status})"
    );
}

/// Waits (bounded) until `child` is stopped at its kill point.
fn wait_stopped(child: &mut std::process::Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        let state = stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap();
        if state == 'T' {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what}: the child ended ({status}) instead of stopping at its kill point");
        }
        assert!(Instant::now() < deadline, "{what}: the child never stopped");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// How often each intermediate state was found (by a dry-run doctor) right
/// after a kill.
#[derive(Default, Debug)]
struct Seen {
    rounds: usize,
    lock_dead: usize,
    creating: usize,
    removing: usize,
    orphan_file: usize,
    temp_table: usize,
    nothing: usize,
}

impl Seen {
    fn observe(&mut self, dir: &Path) -> DoctorReport {
        let dry = Namespace::doctor_dir(
            dir,
            &DoctorOptions {
                dry_run: true,
                ..DoctorOptions::default()
            },
        );
        self.rounds += 1;
        if dry.findings.is_empty() {
            self.nothing += 1;
        }
        for f in &dry.findings {
            match &f.problem {
                Problem::LockHolderDead { .. } => self.lock_dead += 1,
                Problem::RecordStuck {
                    state: Stuck::Creating,
                } => self.creating += 1,
                Problem::RecordStuck {
                    state: Stuck::Removing,
                } => self.removing += 1,
                Problem::OrphanFile { .. } => self.orphan_file += 1,
                Problem::StaleTempFile { .. } => self.temp_table += 1,
                _ => panic!("unexpected finding after a kill: {f}\n{}", lines(&dry)),
            }
        }
        dry
    }
}

fn lines(r: &DoctorReport) -> String {
    r.findings.iter().map(|f| format!("{f}\n")).collect()
}

fn doctor(dir: &Path) -> DoctorReport {
    Namespace::doctor_dir(
        dir,
        &DoctorOptions {
            lock_timeout: Duration::from_millis(500),
            ..DoctorOptions::default()
        },
    )
}

/// A doctor run repairs only what a dead process leaves; a second run is clean.
fn doctor_repairs(dir: &Path, what: &str) -> usize {
    let r = doctor(dir);
    for f in &r.findings {
        let expected = matches!(
            f.problem,
            Problem::LockHolderDead { .. }
                | Problem::RecordStuck { .. }
                | Problem::OrphanFile { .. }
                | Problem::StaleTempFile { .. }
        );
        assert!(
            expected && f.outcome == Outcome::Repaired,
            "{what}: doctor found {f}\n{}",
            lines(&r)
        );
    }
    let again = doctor(dir);
    assert!(
        again.findings.is_empty(),
        "{what}: second doctor run\n{}",
        lines(&again)
    );
    r.findings.len()
}

fn excl(mode: u32) -> GetOptions {
    shmq::GetOptions::new()
        .create(true)
        .exclusive(true)
        .mode(mode)
}

/// Sends a checksummed message through `q` and receives it back.
fn round_trip(q: &Queue, seq: u64) {
    let text = encode_message(std::process::id(), seq, 3, (seq % 50) as usize);
    q.try_send(3, &text).unwrap();
    let mut buf = [0u8; 256];
    let m = q.try_recv(&mut buf, Selector::Type(3)).unwrap();
    assert_eq!(
        decode_message(&buf[..m.len]).unwrap(),
        (std::process::id(), seq, 3)
    );
}

/// What the parent keeps across scenarios.
struct World {
    t: TempNamespace,
    bystander: Queue,
    ids: HashSet<i32>,
    seen: Seen,
    round: u64,
}

impl World {
    fn new() -> World {
        // A small table, so that records (and their ids' slots) are reused.
        let t = TempNamespace::with_config("msgmni = 8");
        let bystander = t.ns.get(BYSTANDER, excl(0o600)).unwrap();
        bystander.send(9, &encode_message(0, 0, 9, 10)).unwrap();
        let ids = HashSet::from([bystander.id()]);
        World {
            t,
            bystander,
            ids,
            seen: Seen::default(),
            round: 0,
        }
    }

    /// A queue id never seen before in this test.
    fn fresh_id(&mut self, id: i32, what: &str) {
        assert!(self.ids.insert(id), "{what}: id {id} handed out twice");
    }

    /// After a kill: observe, then recover, alternately by doctor and by
    /// another process's msgget (which takes the dead holder's lock over).
    fn recover(&mut self, what: &str) {
        self.seen.observe(&self.t.dir);
        self.round += 1;
        if self.round % 2 == 0 {
            doctor_repairs(&self.t.dir, what);
        } else {
            let probe = self.t.ns.get(PROBE, excl(0o600)).unwrap();
            self.fresh_id(probe.id(), what);
            round_trip(&probe, self.round);
            probe.remove().unwrap();
            // msgget repaired everything but a temporary id table.
            let r = doctor(&self.t.dir);
            assert!(
                r.findings
                    .iter()
                    .all(|f| matches!(f.problem, Problem::StaleTempFile { .. })),
                "{what}: left after msgget's own repair\n{}",
                lines(&r)
            );
            doctor_repairs(&self.t.dir, what);
        }
        let s = self.bystander.stat().unwrap();
        assert_eq!((s.qnum, s.perm.key), (1, BYSTANDER), "{what}: bystander");
    }

    /// The key is free again and reusable: a new queue, a new id, usable.
    fn key_reusable(&mut self, key: i32, what: &str) {
        assert_eq!(
            self.t.ns.get(key, GetOptions::new()).err(),
            Some(GetError::NotFound),
            "{what}: key {key:#x} still has a queue"
        );
        let q = self.t.ns.get(key, excl(0o600)).unwrap();
        self.fresh_id(q.id(), what);
        round_trip(&q, self.round);
        q.remove().unwrap();
    }

    /// No file but the table, the config and the bystander's.
    fn no_stray_files(&self, what: &str) {
        let mut names: Vec<String> = std::fs::read_dir(&self.t.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut want = vec![
            "config".to_string(),
            "ids".to_string(),
            format!("msq.{}", self.bystander.id()),
        ];
        want.sort();
        assert_eq!(names, want, "{what}: files in the namespace");
    }

    fn finish(self) {
        let mut buf = [0u8; 256];
        let m = self.bystander.try_recv(&mut buf, Selector::Any).unwrap();
        assert_eq!(decode_message(&buf[..m.len]).unwrap(), (0, 0, 9));
        self.bystander.remove().unwrap();
        assert!(self.t.ns.ids().is_empty());
        let r = doctor(&self.t.dir);
        assert!(r.findings.is_empty(), "{}", lines(&r));
    }
}

const CREATE_POINTS: [KillPoint; 7] = [
    KillPoint::LockTaken,
    KillPoint::CreateRecorded,
    KillPoint::CreateFileOpened,
    KillPoint::CreateFileSized,
    KillPoint::CreateHeaderWritten,
    KillPoint::CreateFileReady,
    KillPoint::CreateLive,
];

const REMOVE_POINTS: [KillPoint; 6] = [
    KillPoint::LockTaken,
    KillPoint::RemoveRecorded,
    KillPoint::RemoveMarked,
    KillPoint::RemoveUnlinked,
    KillPoint::RecordSeqBumped,
    KillPoint::RemoveFreed,
];

#[test]
fn killed_inside_queue_creation() {
    let _w = watchdog(120);
    let mut w = World::new();
    for point in CREATE_POINTS {
        for _ in 0..2 {
            let what = format!("create killed at {point:?}");
            expect_killed(spawn_op(&w.t.dir, "create", point, "kill", KEY), &what);
            w.recover(&what);
            if point == KillPoint::CreateLive {
                // The queue was made: it works, and it is the only one.
                let q = w.t.ns.get(KEY, GetOptions::new()).unwrap();
                w.fresh_id(q.id(), &what);
                round_trip(&q, 1);
                assert_eq!(w.t.ns.ids().len(), 2, "{what}");
                q.remove().unwrap();
            }
            w.key_reusable(KEY, &what);
            w.no_stray_files(&what);
        }
    }
    eprintln!("creation: {:?}", w.seen);
    // What the kill points leave, found by a dry-run doctor each time.
    assert_eq!(w.seen.lock_dead, 2 * CREATE_POINTS.len());
    assert_eq!(
        w.seen.creating,
        2 * 5,
        "CREATING left from CreateRecorded to CreateFileReady"
    );
    w.finish();
}

#[test]
fn killed_inside_queue_removal_wakes_sleepers_after_repair() {
    let _w = watchdog(120);
    let mut w = World::new();
    for point in REMOVE_POINTS {
        for _ in 0..2 {
            let what = format!("remove killed at {point:?}");
            let q = w.t.ns.get(KEY, excl(0o600)).unwrap();
            w.fresh_id(q.id(), &what);
            let old_id = q.id();
            // A receiver of this process sleeps on the queue being removed.
            let sleeper = {
                let q = q.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64];
                    q.recv(&mut buf, Selector::Any).err()
                })
            };
            while q.figures().sleepers == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            expect_killed(spawn_op(&w.t.dir, "remove", point, "kill", KEY), &what);
            w.recover(&what);
            if point == KillPoint::LockTaken {
                // Killed before the removal began: the queue is intact, and
                // this process's IPC_RMID works past the dead holder.
                assert_eq!(q.stat().unwrap().perm.key, KEY, "{what}");
                q.remove().unwrap();
            }
            assert_eq!(
                sleeper.join().unwrap(),
                Some(RecvError::Removed),
                "{what}: the sleeper"
            );
            assert!(w.t.ns.queue(old_id).is_err(), "{what}: old id still valid");
            w.key_reusable(KEY, &what);
            w.no_stray_files(&what);
        }
    }
    eprintln!("removal: {:?}", w.seen);
    assert_eq!(w.seen.lock_dead, 2 * REMOVE_POINTS.len());
    assert_eq!(
        w.seen.removing,
        2 * 4,
        "REMOVING left from RemoveRecorded to RecordSeqBumped"
    );
    w.finish();
}

/// The remover dies before it marks the queue removed, and no other
/// management operation comes by: the queue's own sleepers (a receiver and a
/// sender waiting for space) notice the half-done removal on a long sleep,
/// finish it and get EIDRM. Nothing else repairs anything here.
#[test]
fn sleepers_finish_a_removal_whose_process_died() {
    let _w = watchdog(120);
    let mut w = World::new();
    for point in [KillPoint::RemoveRecorded, KillPoint::LockTaken] {
        let what = format!("remove killed at {point:?}, only sleepers left");
        let q = w.t.ns.get(KEY, excl(0o600)).unwrap();
        w.fresh_id(q.id(), &what);
        let empty = w.t.ns.get(KEY2, excl(0o600)).unwrap();
        w.fresh_id(empty.id(), &what);
        // A full queue for a sender to wait on, an empty one for a receiver.
        let text = [7u8; 1024];
        while q.try_send(1, &text).is_ok() {}
        let sender = {
            let q = q.clone();
            std::thread::spawn(move || q.send(1, &[7u8; 1024]).err())
        };
        let receiver = {
            let q = empty.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                q.recv(&mut buf, Selector::Any).err()
            })
        };
        while q.figures().sleepers == 0 || empty.figures().sleepers == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Remove `empty` by key in a child killed at `point`; then the
        // full queue the same way.
        expect_killed(spawn_op(&w.t.dir, "remove", point, "kill", KEY2), &what);
        if point == KillPoint::LockTaken {
            // Killed before the removal began: nothing is half done, the
            // sleeper keeps sleeping (as it should), this process removes.
            empty.remove().unwrap();
        }
        assert_eq!(
            receiver.join().unwrap(),
            Some(RecvError::Removed),
            "{what}: receiver"
        );
        expect_killed(spawn_op(&w.t.dir, "remove", point, "kill", KEY), &what);
        if point == KillPoint::LockTaken {
            q.remove().unwrap();
        }
        assert_eq!(
            sender.join().unwrap(),
            Some(SendError::Removed),
            "{what}: sender"
        );
        doctor_repairs(&w.t.dir, &what);
        w.key_reusable(KEY, &what);
        w.key_reusable(KEY2, &what);
        w.no_stray_files(&what);
    }
    w.finish();
}

#[test]
fn killed_inside_ipc_set_and_inside_id_table_creation() {
    let _w = watchdog(120);
    let mut w = World::new();
    for _ in 0..2 {
        let what = "IPC_SET killed with the lock held";
        let q = w.t.ns.get(KEY, excl(0o600)).unwrap();
        w.fresh_id(q.id(), what);
        expect_killed(
            spawn_op(&w.t.dir, "set", KillPoint::SetLocked, "kill", KEY),
            what,
        );
        w.recover(what);
        assert_eq!(
            q.stat().unwrap().perm.mode,
            0o600,
            "{what}: nothing changed"
        );
        round_trip(&q, 2);
        q.remove().unwrap();
        w.no_stray_files(what);
    }
    // A process dies after writing the id table under its temporary name:
    // the next opener makes the table; doctor removes the leftover.
    let fresh = w.t.dir.join("fresh");
    for round in 0..2 {
        let what = "id table creation killed before the link";
        std::fs::create_dir(&fresh).unwrap();
        expect_killed(
            spawn_op(&fresh, "open", KillPoint::TableWritten, "kill", 0),
            what,
        );
        let temp: Vec<_> = std::fs::read_dir(&fresh)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            temp.len() == 1 && temp[0].starts_with(".ids."),
            "{what}: {temp:?}"
        );
        w.seen.observe(&fresh);
        if round == 1 {
            // Doctor first, on a namespace never opened.
            doctor_repairs(&fresh, what);
        }
        let ns = Namespace::open(&fresh).unwrap();
        let q = ns.get(KEY, excl(0o600)).unwrap();
        round_trip(&q, 3);
        q.remove().unwrap();
        doctor_repairs(&fresh, what);
        let mut names: Vec<_> = std::fs::read_dir(&fresh)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["ids"], "{what}");
        drop(ns);
        std::fs::remove_dir_all(&fresh).unwrap();
    }
    eprintln!("IPC_SET and id table: {:?}", w.seen);
    assert_eq!((w.seen.lock_dead, w.seen.temp_table), (2, 2));
    w.finish();
}

/// The process that takes the lock over from a dead holder dies too, at each
/// point of its repair; the third process (here, the parent or doctor)
/// finishes the job.
#[test]
fn killed_while_repairing_what_a_dead_holder_left() {
    let _w = watchdog(120);
    let mut w = World::new();
    let cases = [
        // (first death: op and point, then the repairer's point)
        (
            "create",
            KillPoint::CreateFileReady,
            KillPoint::LockTakenOver,
        ),
        (
            "create",
            KillPoint::CreateFileReady,
            KillPoint::RollbackUnlinked,
        ),
        (
            "create",
            KillPoint::CreateFileReady,
            KillPoint::RecordSeqBumped,
        ),
        (
            "create",
            KillPoint::CreateHeaderWritten,
            KillPoint::CreateFileOpened,
        ),
        (
            "remove",
            KillPoint::RemoveRecorded,
            KillPoint::LockTakenOver,
        ),
        ("remove", KillPoint::RemoveRecorded, KillPoint::RemoveMarked),
        ("remove", KillPoint::RemoveMarked, KillPoint::RemoveUnlinked),
        (
            "remove",
            KillPoint::RemoveUnlinked,
            KillPoint::RecordSeqBumped,
        ),
    ];
    for (op, first, second) in cases {
        let what = format!("{op} killed at {first:?}, its repairer at {second:?}");
        if op == "remove" {
            let q = w.t.ns.get(KEY, excl(0o600)).unwrap();
            w.fresh_id(q.id(), &what);
        }
        expect_killed(spawn_op(&w.t.dir, op, first, "kill", KEY), &what);
        // The second child creates KEY2: it takes the lock over, repairs,
        // and (unless killed before) creates.
        expect_killed(spawn_op(&w.t.dir, "create", second, "kill", KEY2), &what);
        w.recover(&what);
        // Neither death left a queue: both keys are free and reusable.
        w.key_reusable(KEY, &what);
        w.key_reusable(KEY2, &what);
        w.no_stray_files(&what);
    }
    eprintln!("repairer killed: {:?}", w.seen);
    w.finish();
}

/// A holder that is alive but stopped (SIGSTOP) at a point inside a
/// management operation keeps the lock: nobody takes it over or undoes its
/// half-done change (doctor reports the lock busy), and when it continues
/// it finishes normally. At `LockTakenOver` this is the window where the
/// lock's start time is still the dead predecessor's: a waiter used to call
/// the live new holder dead there and take the lock as well.
#[test]
fn stopped_holder_is_never_taken_over() {
    let _w = watchdog(120);
    let mut w = World::new();
    let cases = [
        (None, "create", KillPoint::LockTaken),
        (None, "create", KillPoint::CreateRecorded),
        (None, "create", KillPoint::CreateFileSized),
        (None, "remove", KillPoint::RemoveRecorded),
        (None, "remove", KillPoint::RemoveUnlinked),
        (None, "set", KillPoint::SetLocked),
        (
            Some(("create", KillPoint::CreateFileReady)),
            "create",
            KillPoint::LockTakenOver,
        ),
        (
            Some(("remove", KillPoint::RemoveRecorded)),
            "create",
            KillPoint::LockTakenOver,
        ),
        (
            Some(("create", KillPoint::CreateFileReady)),
            "create",
            KillPoint::RollbackUnlinked,
        ),
    ];
    for (dead_first, op, point) in cases {
        let what = format!("{op} stopped at {point:?} (after a death at {dead_first:?})");
        let mut key = KEY;
        if let Some((first_op, first)) = dead_first {
            if first_op == "remove" {
                let q = w.t.ns.get(KEY, excl(0o600)).unwrap();
                w.fresh_id(q.id(), &what);
            }
            expect_killed(spawn_op(&w.t.dir, first_op, first, "kill", KEY), &what);
            // Let the next child start in a later clock tick than the dead
            // one (start times count ticks of 10 ms): at `LockTakenOver` the
            // lock's start time is the dead one's, and only a different one
            // shows whether the live holder is judged by it.
            std::thread::sleep(Duration::from_millis(30));
            key = KEY2;
        } else if op != "create" {
            let q = w.t.ns.get(KEY, excl(0o600)).unwrap();
            w.fresh_id(q.id(), &what);
        }
        let mut child = spawn_op(&w.t.dir, op, point, "stop", key);
        wait_stopped(&mut child, &what);
        // Nobody may take the lock from a live holder, however long it waits.
        let dry = Namespace::doctor_dir(
            &w.t.dir,
            &DoctorOptions {
                dry_run: true,
                ..DoctorOptions::default()
            },
        );
        assert!(dry.findings.is_empty(), "{what}: dry run\n{}", lines(&dry));
        let r = doctor(&w.t.dir);
        assert!(
            matches!(
                r.findings[..],
                [Finding {
                    problem: Problem::LockBusy { pid },
                    ..
                }] if pid == child.id()
            ),
            "{what}: doctor while the holder is stopped\n{}",
            lines(&r)
        );
        // SAFETY: kill(2) on our own child; no memory involved.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGCONT) }, 0);
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut said_done = false;
        let mut line = String::new();
        while out.read_line(&mut line).unwrap() > 0 {
            said_done |= line == "done\n";
            line.clear();
        }
        let status = child.wait().unwrap();
        assert!(
            status.success() && said_done,
            "{what}: the child ({status})"
        );
        // It finished its operation, and anything left by the dead one.
        match op {
            "create" => {
                let q = w.t.ns.get(key, GetOptions::new()).unwrap();
                w.fresh_id(q.id(), &what);
                round_trip(&q, 4);
                q.remove().unwrap();
            }
            "set" => {
                let q = w.t.ns.get(key, GetOptions::new()).unwrap();
                assert_eq!(q.stat().unwrap().perm.mode, 0o640, "{what}");
                q.remove().unwrap();
            }
            _ => {}
        }
        let r = doctor(&w.t.dir);
        assert!(r.findings.is_empty(), "{what}: afterwards\n{}", lines(&r));
        w.key_reusable(KEY, &what);
        w.no_stray_files(&what);
    }
    w.finish();
}

/// By timing: a child creates and removes queues in a loop (IPC_SET on every
/// third) and is SIGKILLed after a random short delay, many times.
#[test]
fn killed_at_random_moments_of_create_and_remove() {
    let _w = watchdog(300);
    let mut w = World::new();
    let rounds = if cfg!(debug_assertions) { 40 } else { 200 };
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    // Outside the namespace (doctor would note it), removed when dropped.
    struct Log(std::path::PathBuf);
    impl Drop for Log {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let log =
        Log(std::env::temp_dir().join(format!("shmq-kill-management-{}.log", std::process::id())));
    let log = &log.0;
    let mut made = 0;
    for round in 0..rounds {
        let what = format!("random kill {round}");
        let mut child = spawn_role("churn", &w.t.dir, &[log.to_string_lossy().into_owned()]);
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while line != "ready\n" {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "{what}: child ended");
        }
        std::thread::sleep(Duration::from_micros(next(3000)));
        kill_and_reap(&mut child, &what);
        w.recover(&what);
        // The queue of the last creation may have survived (killed between
        // operations, or after making it): it works; remove it.
        if let Ok(q) = w.t.ns.get(KEY, GetOptions::new()) {
            round_trip(&q, 5);
            q.remove().unwrap();
        }
        // Every id handed out is new.
        let ids = std::fs::read_to_string(log).unwrap_or_default();
        let _ = std::fs::remove_file(log);
        for id in ids.lines() {
            made += 1;
            w.fresh_id(id.parse().unwrap(), &what);
        }
        w.key_reusable(KEY, &what);
        w.no_stray_files(&what);
    }
    eprintln!(
        "random kills: {rounds} rounds, {made} queues made by the children; \
         states found right after the kill (dry-run doctor): {:?}",
        w.seen
    );
    w.finish();
}

/// Ids wrap: after `i32::MAX / msgmni` creations and removals in one record
/// its ids come round again (as the kernel's do). A process that had looked
/// the old queue up (and keeps its mapping cached) must reach the new queue
/// by the reissued id, not the removed one.
#[test]
fn reissued_id_reaches_the_new_queue_in_every_process() {
    let _w = watchdog(120);
    // The largest table: 2047 sequence numbers per record.
    let t = TempNamespace::with_config("msgmni = 1048576\nmsgmax = 64\nmsgmnb = 256");
    let other = Namespace::open(&t.dir).unwrap(); // another process's view
    let first = t.ns.get(KEY, excl(0o600)).unwrap();
    let id = first.id();
    other.queue(id).unwrap().send(1, b"old").unwrap();
    first.remove().unwrap();
    let mut rounds = 0;
    let again = loop {
        let q = t.ns.get(KEY2, excl(0o600)).unwrap();
        rounds += 1;
        if q.id() == id {
            break q;
        }
        assert!(rounds < 5000, "the id never came round");
        q.remove().unwrap();
    };
    eprintln!("id {id} reissued after {rounds} creations");
    let seen = other.queue(id).expect("the reissued id is valid");
    let s = seen.stat().expect("IPC_STAT by the reissued id");
    assert_eq!(
        (s.perm.key, s.qnum),
        (KEY2, 0),
        "the new queue, not the old"
    );
    seen.send(2, b"new").unwrap();
    let mut buf = [0u8; 8];
    let m = again.recv(&mut buf, Selector::Any).unwrap();
    assert_eq!(&buf[..m.len], b"new");
    again.remove().unwrap();
}

/// A process that takes the lock over from a dead holder but may not open or
/// unlink the queue file the holder was creating or removing (another user's
/// 0600 file in the sticky directory) leaves the record for a process that
/// may; the next management operation of root (or the file's owner)
/// finishes it: the file is removed, sleepers get EIDRM, nothing is orphaned.
#[test]
fn repair_another_user_may_not_do_is_left_to_one_who_may() {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: needs root (runs a process as nobody)");
        return;
    }
    let _w = watchdog(120);
    let mut w = World::new();
    // Open to every user, as a namespace directory shmq makes.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&w.t.dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let nobody = Some((65534, 65534));
    for (op, point) in [
        ("remove", KillPoint::RemoveRecorded),
        ("remove", KillPoint::RemoveMarked),
        ("create", KillPoint::CreateFileReady),
    ] {
        let what = format!("root's {op} killed at {point:?}, nobody takes over");
        let mut sleeper = None;
        let mut old_id = None;
        if op == "remove" {
            let q = w.t.ns.get(KEY, excl(0o600)).unwrap();
            w.fresh_id(q.id(), &what);
            old_id = Some(q.id());
            let asleep = q.clone();
            sleeper = Some(std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                q.recv_timeout(&mut buf, Selector::Any, Duration::from_secs(60))
                    .err()
            }));
            // The remover must find it asleep (a remover that marks the
            // queue removed first, in about 2 ms, makes its call EINVAL).
            while asleep.figures().sleepers == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        expect_killed(spawn_op(&w.t.dir, op, point, "kill", KEY), &what);
        let files_before = std::fs::read_dir(&w.t.dir).unwrap().count();
        // nobody's msgget takes the lock over and works; root's file stays.
        let o = spawn_role_as(
            "op",
            &w.t.dir,
            &[
                "create".into(),
                "LockTaken".into(),
                "none".into(),
                KEY2.to_string(),
            ],
            nobody,
        )
        .wait_with_output()
        .unwrap();
        assert!(o.status.success(), "{what}: nobody's msgget ({})", o.status);
        assert_eq!(
            std::fs::read_dir(&w.t.dir).unwrap().count(),
            files_before + 1,
            "{what}: root's file is still there (and nobody's new one)"
        );
        if let Some(id) = old_id {
            assert!(w.t.ns.queue(id).is_err(), "{what}: old id still valid");
        }
        let dry = Namespace::doctor_dir(
            &w.t.dir,
            &DoctorOptions {
                dry_run: true,
                ..DoctorOptions::default()
            },
        );
        assert!(
            dry.findings
                .iter()
                .any(|f| matches!(f.problem, Problem::RecordStuck { .. })),
            "{what}: the record is left for root\n{}",
            lines(&dry)
        );
        // Root's next management operation (this msgget) finishes the job.
        assert_eq!(
            w.t.ns.get(KEY, GetOptions::new()).err(),
            Some(GetError::NotFound),
            "{what}"
        );
        assert_eq!(
            std::fs::read_dir(&w.t.dir).unwrap().count(),
            files_before,
            "{what}: root removed its file"
        );
        let theirs = w.t.ns.get(KEY2, GetOptions::new()).unwrap();
        w.fresh_id(theirs.id(), &what);
        assert_eq!(theirs.perms().cuid, 65534);
        theirs.remove().unwrap();
        if let Some(s) = sleeper {
            assert_eq!(s.join().unwrap(), Some(RecvError::Removed), "{what}");
        }
        let r = doctor(&w.t.dir);
        assert!(r.findings.is_empty(), "{what}: doctor\n{}", lines(&r));
        w.key_reusable(KEY, &what);
        w.no_stray_files(&what);
    }
    w.finish();
}
