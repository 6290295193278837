//! The doctor against namespaces damaged on purpose: forged dead holders,
//! stuck records, orphans, broken FIFOs, wrong accounting, garbage files.
//! Each test has its own namespace under /dev/shm, removed even on failure.

use super::*;
use crate::accounting::{Delta, Side};
use crate::layout::{NodeRef, PAGE};
use crate::message::Selector;
use crate::namespace::GetOptions;
use crate::queue::Queue;
use crate::state::QueueState;
use crate::type_dir::{estatus, EntryRef, EntryState};
use crate::type_fifo::{status, NodeState};
use std::os::unix::fs::FileExt;

/// Small limits: small files, quick scans.
const CONFIG: &str = "msgmni = 8\nmsgmax = 512\nmsgmnb = 2048\nqbytes_max = 4096\nslots = 16\n";

/// A namespace of the test's own, removed when dropped; a watchdog aborts
/// the test process if the test hangs.
struct TestNs {
    dir: PathBuf,
    ns: Namespace,
    _watchdog: std::sync::mpsc::Sender<()>,
}

static COUNTER: crate::sync::AtomicU64 = crate::sync::AtomicU64::new(0);

impl TestNs {
    fn new() -> TestNs {
        // Relaxed: a unique number is all it gives.
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(format!(
            "/dev/shm/shmq-test-doctor-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config"), CONFIG).unwrap();
        let ns = Namespace::open(&dir).unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let doomed = dir.clone();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                rx.recv_timeout(Duration::from_secs(120))
            {
                eprintln!("watchdog: doctor test still running after 120 s; aborting");
                let _ = std::fs::remove_dir_all(&doomed);
                std::process::abort();
            }
        });
        TestNs {
            dir,
            ns,
            _watchdog: tx,
        }
    }

    fn queue(&self, key: i32) -> Queue {
        let flags = GetOptions::new().create(true).mode(0o600);
        self.ns.get(key, flags).unwrap()
    }

    fn doctor(&self) -> DoctorReport {
        Namespace::doctor_dir(&self.dir, &opts(false))
    }

    fn dry(&self) -> DoctorReport {
        Namespace::doctor_dir(&self.dir, &opts(true))
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn opts(dry_run: bool) -> DoctorOptions {
    DoctorOptions {
        dry_run,
        lock_timeout: Duration::from_millis(300),
    }
}

fn st(q: &Queue) -> &QueueState<'_> {
    q.mapped().state()
}

/// The findings, one line each, for assertion messages.
fn lines(r: &DoctorReport) -> String {
    r.findings.iter().map(|f| format!("{f}\n")).collect()
}

#[track_caller]
fn assert_healthy(r: &DoctorReport) {
    assert_eq!(r.health(), Health::Healthy, "{}", lines(r));
    assert!(
        r.findings.iter().all(|f| f.outcome == Outcome::Note),
        "{}",
        lines(r)
    );
}

/// The findings whose problem matches.
fn find(r: &DoctorReport, pred: impl Fn(&Problem) -> bool) -> Vec<&Finding> {
    r.findings.iter().filter(|f| pred(&f.problem)).collect()
}

/// A pid that belonged to a process that has exited (and been reaped).
/// A dry run reports `problem` in queue `q` (of `busy_namespace`, key
/// 0x1111) and nothing else; a real run repairs it, and a second finds the
/// namespace healthy.
fn assert_only_problem_then_repaired(t: &TestNs, q: &Queue, problem: Problem) {
    assert_eq!(
        t.dry().findings[..],
        [Finding {
            subject: Subject::Queue {
                id: q.id(),
                key: 0x1111
            },
            problem,
            outcome: Outcome::WouldRepair
        }]
    );
    let r = t.doctor();
    assert_eq!(r.health(), Health::Repaired, "{}", lines(&r));
    assert_healthy(&t.doctor());
}

fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// Marks slot `d` as claimed by a process that has died (a pid that
/// exited, its liveness lock never taken); returns that pid.
fn forge_dead_owner(s: &QueueState<'_>, d: usize) -> u32 {
    let pid = dead_pid();
    s.slots[d]
        .state
        .store(pid as u64 | crate::slots::ACTIVE << 32, Ordering::Release);
    s.header
        .slots_high
        .fetch_max(d as u32 + 1, Ordering::SeqCst);
    pid
}

fn send(q: &Queue, mtype: i64, text: &[u8]) {
    q.send(mtype, text).unwrap();
}

fn recv_nowait(q: &Queue, sel: Selector) -> Option<(i64, Vec<u8>)> {
    let mut buf = [0u8; 512];
    q.try_recv(&mut buf, sel)
        .ok()
        .map(|m| (m.mtype, buf[..m.len].to_vec()))
}

/// The live entry of type `mtype`, and its FIFO's nodes from the dummy on.
fn fifo_of(st: &QueueState<'_>, mtype: i64) -> (u32, Vec<NodeRef>) {
    let (i, e) = st
        .entries
        .iter()
        .enumerate()
        .find(|(_, e)| {
            EntryState(e.state.load(Ordering::Relaxed)).status() == estatus::LIVE
                && e.key.load(Ordering::Relaxed) == mtype
        })
        .expect("a live entry for the type");
    let mut nodes = vec![NodeRef(e.head.load(Ordering::Relaxed))];
    loop {
        let last = *nodes.last().unwrap();
        let next = NodeRef(st.nodes[last.index() as usize].next.load(Ordering::Relaxed));
        if next.is_nil() {
            return (i as u32, nodes);
        }
        nodes.push(next);
    }
}

/// A namespace with two queues holding messages of several types and sizes.
fn busy_namespace() -> (TestNs, Queue, Queue) {
    let t = TestNs::new();
    let a = t.queue(0x1111);
    let b = t.queue(0x2222);
    for i in 0..20u8 {
        send(&a, 1 + (i % 3) as i64, &vec![i; 1 + 7 * i as usize]);
    }
    for _ in 0..7 {
        recv_nowait(&a, Selector::Any).unwrap();
    }
    send(&b, 9, b"hello");
    (t, a, b)
}

#[test]
fn healthy_namespace_has_no_findings() {
    let (t, a, _b) = busy_namespace();
    // This thread's slot holds free nodes it claimed for its next sends:
    // not hidden ones.
    assert!(st(&a)
        .slots
        .iter()
        .any(|rec| rec.node_magazine.cells().count() > 0));
    let r = t.doctor();
    assert_healthy(&r);
    assert_eq!(r.queues_checked, 2);
    assert!(r.findings.is_empty(), "{}", lines(&r));
    assert_healthy(&t.dry());
    // The namespace still works, with every message in place.
    let (_, b) = (t.queue(0x1111), t.queue(0x2222));
    assert_eq!(recv_nowait(&b, Selector::Type(9)).unwrap().1, b"hello");
}

#[test]
fn no_namespace_and_not_a_directory() {
    let t = TestNs::new();
    let missing = t.dir.join("nothing-here");
    let r = Namespace::doctor_dir(&missing, &opts(false));
    assert_eq!(r.health(), Health::Healthy);
    assert_eq!(r.findings[0].problem, Problem::NoNamespace);
    assert!(!missing.exists(), "the doctor must not create a namespace");
    let file = t.dir.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let r = Namespace::doctor_dir(&file, &opts(false));
    assert_eq!(r.health(), Health::Unusable, "{}", lines(&r));
    assert_eq!(r.findings[0].problem, Problem::NotADirectory);
}

#[test]
fn garbage_or_empty_id_table_makes_the_namespace_unusable() {
    for garbage in [&b""[..], &[0xa5u8; 4096][..], b"SHMQ_IDS but not really"] {
        let t = TestNs::new();
        std::fs::write(t.dir.join("ids"), garbage).unwrap();
        let r = t.doctor();
        assert_eq!(r.health(), Health::Unusable, "{}", lines(&r));
        let f = &r.findings[0];
        assert_eq!(f.subject, Subject::IdTable);
        assert!(matches!(f.problem, Problem::IdTableDamaged { .. }), "{f}");
        assert!(matches!(
            f.outcome,
            Outcome::Fatal(Advice::ResetIdTable { .. })
        ));
        assert_eq!(t.dry().health(), Health::Unusable);
    }
}

#[test]
fn symlinked_id_table_is_not_followed() {
    let t = TestNs::new();
    let ids = t.dir.join("ids");
    std::fs::rename(&ids, t.dir.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(t.dir.join("elsewhere"), &ids).unwrap();
    let r = t.doctor();
    assert_eq!(r.health(), Health::Unusable, "{}", lines(&r));
    assert_eq!(
        r.findings[0].to_string(),
        format!(
            "unusable: id table: is a symbolic link; move {} aside: the next use makes an empty table and `shmq doctor` then removes the old queue files (every queue is lost)",
            ids.display()
        )
    );
}

#[test]
fn wrong_magic_version_or_size_is_reported_with_what_to_do() {
    let t = TestNs::new();
    let queues: Vec<Queue> = (0..4).map(|k| t.queue(0x100 + k)).collect();
    for q in &queues {
        send(q, 1, b"x");
    }
    let path = |q: &Queue| t.dir.join(format!("msq.{}", q.id()));
    let file = |q: &Queue| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path(q))
            .unwrap()
    };
    file(&queues[0]).write_all_at(b"NOT_SHMQ", 0).unwrap();
    file(&queues[1])
        .write_all_at(&99u32.to_le_bytes(), 8)
        .unwrap();
    let geo_size = st(&queues[2]).geo.file_size as u64;
    // A file grown (a shrunk one would fault the mappings this process holds).
    file(&queues[2]).set_len(geo_size + PAGE as u64).unwrap();
    file(&queues[3]).write_all_at(&[0u8; 8], 80).unwrap(); // `ready`
    let r = t.doctor();
    assert_eq!(r.health(), Health::Damaged, "{}", lines(&r));
    let damage: Vec<_> = r
        .findings
        .iter()
        .map(|f| match (&f.problem, &f.outcome) {
            (Problem::FileDamaged { damage }, Outcome::NeedsAction(Advice::RemoveQueue { id })) => {
                assert_eq!(
                    f.subject,
                    Subject::Queue {
                        id: *id,
                        key: 0x100 + *id
                    }
                );
                *damage
            }
            _ => panic!("unexpected finding {f}"),
        })
        .collect();
    assert_eq!(damage.len(), 4, "{}", lines(&r));
    assert_eq!(damage[0], FileDamage::WrongMagic);
    assert_eq!(damage[1], FileDamage::WrongVersion { found: 99 });
    assert!(matches!(damage[2], FileDamage::WrongSize { .. }));
    assert_eq!(damage[3], FileDamage::NotInitialised);
    assert!(r.findings[0]
        .to_string()
        .contains("remove it with `shmq doctor --remove 0`"));
    // The way out: remove them, and the namespace is healthy again.
    for q in &queues {
        t.ns.remove_damaged(q.id(), Duration::from_secs(1)).unwrap();
        assert!(!path(q).exists());
    }
    assert_eq!(
        t.ns.remove_damaged(queues[0].id(), Duration::from_secs(1)),
        Err(RemoveError::Invalid)
    );
    assert_healthy(&t.doctor());
    assert!(t.ns.ids().is_empty());
}

#[test]
fn orphans_temp_files_and_unknown_files() {
    let (t, a, _b) = busy_namespace();
    // An orphan: a valid queue file whose record was freed.
    let orphan = t.queue(0x3333);
    send(&orphan, 1, b"lost");
    let id = orphan.id();
    let idx = t.ns.table().live_index(id).unwrap();
    t.ns.table().free_record(idx);
    // An orphan without any record, and a temporary table of a dead creator.
    std::fs::write(t.dir.join("msq.7"), b"junk").unwrap();
    let temp = format!(".ids.{0}.{0}", dead_pid());
    std::fs::write(t.dir.join(&temp), b"").unwrap();
    std::fs::write(t.dir.join("notes.txt"), b"mine").unwrap();

    let dry = t.dry();
    assert_eq!(dry.health(), Health::Repaired, "{}", lines(&dry));
    assert!(
        t.dir.join(format!("msq.{id}")).exists(),
        "a dry run removes nothing"
    );
    assert!(t.dir.join(&temp).exists());

    let r = t.doctor();
    assert_eq!(r.health(), Health::Repaired, "{}", lines(&r));
    let text = lines(&r);
    assert!(
        text.contains(&format!(
            "fixed: file {temp}: temporary id table left by dead process"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("fixed: file msq.{id}: queue file that no live record points at (held 1 unreachable messages); removed")), "{text}");
    assert!(
        text.contains("fixed: file msq.7: queue file that no live record points at; removed"),
        "{text}"
    );
    assert!(
        text.contains("note: file notes.txt: not an shmq file; left alone"),
        "{text}"
    );
    assert!(!t.dir.join(format!("msq.{id}")).exists());
    assert!(!t.dir.join("msq.7").exists());
    assert!(!t.dir.join(&temp).exists());
    assert!(t.dir.join("notes.txt").exists());
    // A stale handle on the orphan sees it removed.
    assert!(orphan.send(1, b"x").is_err());
    assert_healthy(&t.doctor());
    assert!(recv_nowait(&a, Selector::Any).is_some());
}

#[test]
fn table_missing_with_queue_files_left() {
    let t = TestNs::new();
    let q = t.queue(0x4444);
    send(&q, 1, b"x");
    let file = t.dir.join(format!("msq.{}", q.id()));
    std::fs::remove_file(t.dir.join("ids")).unwrap();
    let dry = t.dry();
    assert_eq!(dry.health(), Health::Repaired, "{}", lines(&dry));
    assert!(!t.dir.join("ids").exists(), "a dry run creates nothing");
    let r = t.doctor();
    assert_eq!(r.health(), Health::Repaired, "{}", lines(&r));
    assert!(!file.exists());
    assert!(t.dir.join("ids").exists());
    assert_healthy(&t.doctor());
}

#[test]
fn dead_lock_holder_and_stuck_records_are_repaired() {
    let (t, _a, b) = busy_namespace();
    let table = t.ns.table();
    table
        .header
        .lock
        .store(dead_pid() as u64, Ordering::Relaxed);
    // A creation that died half done (a half-made file), and a removal.
    let creating = 5;
    table.records[creating]
        .state
        .store(rstate::CREATING, Ordering::Release);
    let half_made = t.ns.queue_path(table.id_of(creating));
    std::fs::write(&half_made, [0u8; 100]).unwrap();
    let bid = b.id();
    let bidx = table.live_index(bid).unwrap();
    table.records[bidx]
        .state
        .store(rstate::REMOVING, Ordering::Release);

    let dry = t.dry();
    let text = lines(&dry);
    assert!(
        text.contains("would-fix: id table: management lock held by dead process"),
        "{text}"
    );
    assert!(
        text.contains(
            "would-fix: record 5: creation left half done by a dead process; would be rolled back"
        ),
        "{text}"
    );
    assert!(half_made.exists());

    let r = t.doctor();
    let text = lines(&r);
    assert_eq!(r.health(), Health::Repaired, "{text}");
    assert!(
        text.contains("fixed: id table: management lock held by dead process"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "fixed: record {bidx}: removal left half done by a dead process; removal finished"
        )),
        "{text}"
    );
    assert!(!half_made.exists());
    assert!(!t.dir.join(format!("msq.{bid}")).exists());
    assert_eq!(table.header.lock.load(Ordering::Relaxed), 0);
    assert_healthy(&t.doctor());
    assert_eq!(t.ns.ids().len(), 1);
}

#[test]
fn live_lock_holder_is_waited_for_then_reported() {
    let (t, _a, _b) = busy_namespace();
    let table = t.ns.table();
    // A live process (pid 1) that never lets go.
    table.header.lock.store(1, Ordering::Relaxed);
    let r = t.doctor();
    table.header.lock.store(0, Ordering::Relaxed);
    assert_eq!(r.health(), Health::Damaged, "{}", lines(&r));
    assert_eq!(r.findings[0].problem, Problem::LockBusy { pid: 1 });
    assert!(matches!(
        r.findings[0].outcome,
        Outcome::NeedsAction(Advice::CheckLockHolder { pid: 1 })
    ));
    assert_eq!(r.queues_checked, 2, "queues are still checked");
}

#[test]
fn invalid_records_and_highest_mark() {
    let (t, a, b) = busy_namespace();
    let table = t.ns.table();
    let aidx = table.live_index(a.id()).unwrap();
    // Garbage in a live record whose file is fine: restored.
    table.records[aidx].state.store(0x77, Ordering::Release);
    // Garbage in a record without a file: freed.
    table.records[6].state.store(0x55, Ordering::Release);
    table.records[7].seq.store(u32::MAX, Ordering::Relaxed);
    table.header.highest.store(0, Ordering::Relaxed);
    assert!(t.ns.ids().is_empty(), "listings miss queues above the mark");
    let r = t.doctor();
    let text = lines(&r);
    assert_eq!(r.health(), Health::Repaired, "{text}");
    assert!(
        text.contains(&format!(
            "fixed: record {aidx}: invalid state 0x77; restored as live"
        )),
        "{text}"
    );
    assert!(
        text.contains("fixed: record 6: invalid state 0x55; freed"),
        "{text}"
    );
    assert!(text.contains("fixed: record 7: sequence number"), "{text}");
    assert!(
        text.contains("fixed: id table: highest-record mark 0, should be"),
        "{text}"
    );
    assert_eq!(t.ns.ids(), vec![a.id(), b.id()]);
    assert_healthy(&t.doctor());
    assert!(recv_nowait(&a, Selector::Any).is_some());
}

#[test]
fn missing_file_of_a_live_queue_frees_its_record() {
    let (t, a, _b) = busy_namespace();
    std::fs::remove_file(t.dir.join(format!("msq.{}", a.id()))).unwrap();
    let r = t.doctor();
    assert_eq!(r.health(), Health::Repaired, "{}", lines(&r));
    assert!(matches!(r.findings[0].problem, Problem::FileMissing));
    assert_eq!(t.ns.ids().len(), 1);
    assert_healthy(&t.doctor());
}

#[test]
fn removed_but_listed_queue_is_removed() {
    let (t, a, _b) = busy_namespace();
    st(&a).header.control.removed.store(1, Ordering::SeqCst);
    let r = t.doctor();
    assert_eq!(r.health(), Health::Repaired, "{}", lines(&r));
    assert_eq!(r.findings[0].problem, Problem::RemovedButListed);
    assert!(!t.dir.join(format!("msq.{}", a.id())).exists());
    assert_healthy(&t.doctor());
}

#[test]
fn dead_sender_holding_a_reservation_is_recovered() {
    let (t, a, _b) = busy_namespace();
    let s = st(&a);
    let before = s.counter().load();
    // Forge slot 9 as a process that reserved 10 bytes, took a node and died
    // before linking it.
    let d = 9;
    let pid = forge_dead_owner(s, d);
    let rec = &s.slots[d];
    let counter = s.counter();
    let k = counter.next_seq(d, Side::Sent);
    crate::slots::begin(rec, crate::slots::phase::SEND, k, 10, NodeRef::NIL);
    let qbytes = s.header.control.qbytes.load(Ordering::Relaxed);
    counter.apply(d, k, Delta::Reserve(10), qbytes).unwrap();
    let node = s
        .node_pool
        .alloc(NodeState::owner(status::HELD, d))
        .unwrap();
    crate::slots::hold(rec, NodeRef::new(node.index, node.gen));
    assert_eq!(s.counter().load().qnum, before.qnum + 1);

    let dry = t.dry();
    let f = find(&dry, |p| matches!(p, Problem::DeadHolder { .. }));
    assert_eq!(f.len(), 1, "{}", lines(&dry));
    assert_eq!(
        f[0].problem,
        Problem::DeadHolder {
            slot: d,
            pid,
            doing: Activity::Sending { bytes: 10 }
        }
    );
    assert_eq!(f[0].outcome, Outcome::WouldRepair);
    assert_eq!(
        s.counter().load().qnum,
        before.qnum + 1,
        "dry run changes nothing"
    );

    let r = t.doctor();
    assert_eq!(r.health(), Health::Repaired, "{}", lines(&r));
    let f = find(&r, |p| matches!(p, Problem::DeadHolder { .. }));
    assert_eq!(f[0].outcome, Outcome::Repaired);
    assert!(f[0].to_string().ends_with(&format!(
        "slot 9 held by dead process {pid} (sending 10 bytes); recovered"
    )));
    let after = s.counter().load();
    assert_eq!((after.qnum, after.cbytes), (before.qnum, before.cbytes));
    assert_eq!(
        s.node_pool
            .state(node.index)
            .map(crate::cell_pool::CellState::owner),
        Some(0),
        "the node is free again"
    );
    assert_healthy(&t.doctor());
}

#[test]
fn a_dead_senders_node_whose_bit_a_heal_cleared_is_recovered() {
    let (t, a, _b) = busy_namespace();
    let s = st(&a);
    // Forge slot 9 as a process that filled its magazine, had a heal clear
    // the bits of the nodes still in it (as a heal does for any free node),
    // took one of them and died before recording it.
    let d = 9;
    forge_dead_owner(s, d);
    let mag = &s.slots[d].node_magazine;
    let held = NodeState::owner(status::HELD, d);
    let first = s.node_pool.alloc_from(mag, held).unwrap();
    assert!(s.node_pool.heal() > 0, "the magazine's nodes were healed");
    let second = s.node_pool.alloc_from(mag, held).unwrap();
    assert!(
        !s.node_pool.maybe_taken().any(|i| i == second.index),
        "its bit is clear: only its state says it is held"
    );

    // Recovery as a live process runs it (the doctor's full pass of the
    // node states would find the node anyway).
    assert_eq!(s.recover_dead_slots(), 1);
    for node in [first, second] {
        assert_eq!(
            s.node_pool
                .state(node.index)
                .map(crate::cell_pool::CellState::owner),
            Some(0),
            "node {} is free again",
            node.index
        );
    }
    assert_healthy(&t.doctor());
}

#[test]
fn wrong_accounting_is_corrected() {
    let (t, a, _b) = busy_namespace();
    let s = st(&a);
    let before = s.counter().load();
    // Two more messages and 100 more bytes than the FIFOs hold.
    let raw = s.header.sent_sum.sum.load(Ordering::Relaxed);
    s.header
        .sent_sum
        .sum
        .store(raw + 100 + (2 << 26), Ordering::Relaxed);
    let bad = s.counter().load();
    assert_eq!(
        (bad.qnum, bad.cbytes),
        (before.qnum + 2, before.cbytes + 100)
    );
    let r = t.doctor();
    assert_eq!(r.health(), Health::Repaired, "{}", lines(&r));
    assert_eq!(
        r.findings[0].problem,
        Problem::AccountingWrong {
            qnum: before.qnum + 2,
            cbytes: before.cbytes + 100,
            queued: before.qnum,
            bytes: before.cbytes
        }
    );
    let after = s.counter().load();
    assert_eq!(after, before);
    assert_healthy(&t.doctor());
    // Drains to exactly zero.
    while recv_nowait(&a, Selector::Any).is_some() {}
    assert_eq!((s.counter().load().qnum, s.counter().load().cbytes), (0, 0));
}

#[test]
fn missing_nonempty_bit_is_set_again() {
    let (t, a, _b) = busy_namespace();
    let s = st(&a);
    let (entry, _) = fifo_of(s, 2);
    s.directory().clear_nonempty(entry);
    // Type-0 and MSG_EXCEPT receives go by the arrival index, which does not
    // depend on the bit (only scans do): type 2's oldest is still found.
    assert!(recv_nowait(&a, Selector::Except(1)).is_some_and(|(t, _)| t == 2));
    let r = t.doctor();
    assert_eq!(r.health(), Health::Repaired, "{}", lines(&r));
    assert_eq!(
        r.findings[0].problem,
        Problem::NonemptyBitMissing { entry, mtype: 2 }
    );
    assert_healthy(&t.doctor());

    // The bit set but its word's summary bit clear (a sender killed between
    // the two): scanners skip the whole word. (Another type may share the
    // word, and hide with it. The next send of a type in that word would set
    // the summary again; until then only the doctor does.)
    let w = entry as usize / 64;
    s.summary[w / 64].fetch_and(!(1 << (w % 64)), Ordering::SeqCst);
    let r = t.doctor();
    assert_eq!(r.health(), Health::Repaired, "{}", lines(&r));
    // (Types sharing the word are reported too.)
    assert_eq!(
        find(&r, |p| matches!(
            p,
            Problem::NonemptyBitMissing { mtype: 2, .. }
        ))
        .len(),
        1,
        "{}",
        lines(&r)
    );
    assert_healthy(&t.doctor());
    assert!(recv_nowait(&a, Selector::Except(1)).is_some_and(|(t, _)| t != 1));
}

#[test]
fn broken_fifos_are_reported_and_walks_end() {
    let (t, a, b) = busy_namespace();
    let s = st(&a);
    // A cycle: the last node of type 1 links back to the dummy.
    let (e1, nodes) = fifo_of(s, 1);
    let last = *nodes.last().unwrap();
    s.nodes[last.index() as usize]
        .next
        .store(nodes[0].0, Ordering::Relaxed);
    // A link beyond the pool in type 2.
    let (e2, nodes2) = fifo_of(s, 2);
    s.nodes[nodes2[1].index() as usize]
        .next
        .store(NodeRef::new(u32::MAX - 7, 0).0, Ordering::Relaxed);
    // A free node with a state no code writes, in the other queue.
    let sb = st(&b);
    let spare = sb.nodes.len() as u32 - 1;
    sb.nodes[spare as usize]
        .state
        .store(u64::MAX, Ordering::Relaxed);
    let r = t.doctor();
    let text = lines(&r);
    assert_eq!(r.health(), Health::Damaged, "{text}");
    assert!(
        find(&r, |p| matches!(
            p,
            Problem::FifoBroken { entry, mtype: 1, fault: FifoFault::Cycle { .. } } if *entry == e1
        ))
        .len()
            == 1,
        "{text}"
    );
    assert!(find(&r, |p| matches!(
        p,
        Problem::FifoBroken { entry, mtype: 2, fault: FifoFault::OutOfRange { .. } } if *entry == e2
    ))
    .len()
        == 1, "{text}");
    assert!(text.contains(&format!(
        "damaged: queue {} (key 0x00002222): node {spare}: state 0xffffffffffffffff out of range; receive what you still need from it, then `shmq rm -q {}` (the rest is lost)",
        b.id(),
        b.id()
    )), "{text}");
    // A dry run finds the same, and the next run still does (nothing repaired).
    assert_eq!(t.dry().findings, r.findings);
    assert_eq!(t.doctor().findings, r.findings);
}

#[test]
fn header_fields_out_of_range_are_corrected() {
    let (t, a, _b) = busy_namespace();
    let s = st(&a);
    s.header.control.qbytes.store(1 << 24, Ordering::Relaxed);
    s.header.slots_high.store(60_000, Ordering::Relaxed);
    let r = t.doctor();
    let text = lines(&r);
    assert_eq!(r.health(), Health::Repaired, "{text}");
    assert!(
        text.contains("qbytes 16777216 above the 4096 it was built for; lowered to the maximum"),
        "{text}"
    );
    assert!(
        text.contains("highest-slot mark 60000, should be 16; corrected"),
        "{text}"
    );
    assert_eq!(s.header.control.qbytes.load(Ordering::Relaxed), 4096);
    assert_healthy(&t.doctor());
}

#[test]
fn hidden_free_cells_are_made_visible() {
    let (t, a, _b) = busy_namespace();
    let s = st(&a);
    // A process killed between freeing a node's state and clearing its
    // bitmap bit: the node is free but allocators skip it.
    let x = s
        .node_pool
        .alloc(NodeState::owner(status::HELD, 0))
        .unwrap();
    let free = crate::cell_pool::CellState::new(x.gen + 1, 0);
    s.nodes[x.index as usize]
        .state
        .store(free.0, Ordering::Release);
    assert_only_problem_then_repaired(&t, &a, Problem::HiddenFree { count: 1 });
    // A plain allocation, which never heals, finds it again (not
    // necessarily first: the doctor's heal also shows the nodes that the
    // receiver's free batch hides).
    assert!(
        std::iter::from_fn(|| s.node_pool.alloc(1)).any(|c| c.index == x.index),
        "node {} still hidden",
        x.index
    );
}

#[test]
fn stale_directory_positions_are_cleared() {
    let (t, a, _b) = busy_namespace();
    let s = st(&a);
    let dir = s.directory();
    // Damage: a free position names entry 0 as of a generation it does not
    // have, and another names a live entry placed elsewhere.
    let (live, _) = fifo_of(s, 1);
    let placed = s.entries[live as usize].pos.load(Ordering::Relaxed) as usize;
    let free: Vec<usize> = (0..dir.positions.len())
        .filter(|&p| dir.positions[p].load(Ordering::Relaxed) == 0)
        .take(2)
        .collect();
    let stale = |e: EntryRef| e.hazard();
    let gone = EntryRef {
        index: 0,
        gen: EntryState(s.entries[0].state.load(Ordering::Relaxed))
            .gen()
            .wrapping_add(7),
    };
    let elsewhere = dir.placed_at(placed).expect("type 1 is placed");
    dir.positions[free[0]].store(stale(gone), Ordering::Relaxed);
    dir.positions[free[1]].store(stale(elsewhere), Ordering::Relaxed);
    assert_only_problem_then_repaired(&t, &a, Problem::StalePositions { count: 2 });
    assert_eq!(dir.positions[free[0]].load(Ordering::Relaxed), 0);
    assert_eq!(dir.positions[free[1]].load(Ordering::Relaxed), 0);
    // The live type is where it was, and still works.
    assert_eq!(dir.placed_at(placed), Some(elsewhere));
    send(&a, 1, b"after");
    assert!(recv_nowait(&a, Selector::Type(1)).is_some());
}

/// Byte offsets of the parts of queue `q`'s file in use: header fields,
/// claimed slots, live entries, taken nodes and cells.
fn hot_offsets(q: &Queue) -> Vec<u64> {
    const SLOT: usize = std::mem::size_of::<crate::layout::SlotRecord>();
    const ENTRY: usize = std::mem::size_of::<crate::layout::Entry>();
    const NODE: usize = std::mem::size_of::<crate::layout::Node>();
    let s = st(q);
    let g = &s.geo;
    let mut out: Vec<u64> = (0..PAGE as u64 / 8).map(|w| w * 8).collect();
    for (i, rec) in s.slots.iter().enumerate() {
        if rec.state.load(Ordering::Relaxed) != 0 {
            // The record's first two lines; not the liveness lock, whose
            // list pointers glibc follows when it unlocks (see `liveness`).
            out.extend((0..16).map(|w| (g.slots_off + i * SLOT + w * 8) as u64));
        }
    }
    for (i, e) in s.entries.iter().enumerate() {
        if EntryState(e.state.load(Ordering::Relaxed)).status() != estatus::FREE {
            out.extend((0..ENTRY / 8).map(|w| (g.entries_off + i * ENTRY + w * 8) as u64));
            // The directory position it is placed at (see `type_dir`).
            let pos = e.pos.load(Ordering::Relaxed) as usize;
            out.push((g.positions_off + pos.min(g.n_entries - 1) * 8) as u64);
        }
    }
    for i in 0..s.nodes.len() {
        if s.node_pool.state(i as u32).is_some_and(|v| !v.is_free()) {
            out.extend((0..NODE / 8).map(|w| (g.nodes_off + i * NODE + w * 8) as u64));
        }
    }
    for (c, class) in g.classes.iter().enumerate() {
        for i in 0..class.count {
            if s.classes[c]
                .pool
                .state(i as u32)
                .is_some_and(|v| !v.is_free())
            {
                out.push((class.states_off + i * 8) as u64);
            }
        }
    }
    out
}

/// Random bytes at the places of live queue files and of the id table that
/// are in use: the doctor ends every time, never panics, and its repairs
/// hold (within three runs, one finds nothing more to repair).
#[test]
fn random_damage_never_crashes_or_hangs() {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n.max(1)
    };
    let rounds = if cfg!(debug_assertions) { 30 } else { 200 };
    let mut seen = std::collections::BTreeMap::<&'static str, usize>::new();
    for round in 0..rounds {
        let (t, a, b) = busy_namespace();
        let targets = [
            (t.dir.join(format!("msq.{}", a.id())), hot_offsets(&a)),
            (t.dir.join(format!("msq.{}", b.id())), hot_offsets(&b)),
            (
                t.dir.join("ids"),
                (0..(128 + 16 * 8) / 8).map(|w| w * 8).collect(),
            ),
        ];
        for _ in 0..1 + next(4) {
            let (path, offsets) = &targets[next(3) as usize];
            let off = offsets[next(offsets.len() as u64) as usize];
            let value = match next(5) {
                0 => u64::MAX,
                1 => next(64),
                2 => next(1 << 20),
                3 => 0,
                _ => next(u64::MAX),
            };
            let n = 1 + next(8) as usize;
            let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            f.write_all_at(&value.to_le_bytes()[..n], off).unwrap();
        }
        let mut runs = vec![];
        loop {
            let r = t.doctor();
            for f in &r.findings {
                *seen.entry(f.problem.kind()).or_default() += 1;
            }
            let repaired = r.health() == Health::Repaired
                || r.findings.iter().any(|f| f.outcome == Outcome::Repaired);
            runs.push(r);
            if !repaired {
                break;
            }
            assert!(
                runs.len() < 3,
                "round {round}: still repairing after {} runs:\n{}",
                runs.len(),
                runs.iter().map(lines).collect::<Vec<_>>().join("--\n")
            );
        }
        let _ = t.dry();
        drop((a, b));
    }
    eprintln!("findings seen: {seen:?}");
}
