//! The report of a run: the figures, the ratios shmq/mechanism, the issue's
//! targets, as text tables or as one JSON object.

use crate::drivers::depth::{Point, Sel};
use crate::drivers::footprint::Footprint;
use crate::drivers::pingpong::RoundTrip;
use crate::drivers::throughput::Throughput;
use crate::drivers::Placement;
use crate::json::Value;
use std::fmt::Write;
use std::time::Duration;

/// The machine a run measured.
#[derive(Clone, Debug, Default)]
pub struct Machine {
    /// CPUs available to the process.
    pub nproc: usize,
    /// CPU model (`/proc/cpuinfo`).
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// Start of the run, UTC (`YYYY-MM-DD HH:MM`).
    pub date: String,
    /// Load averages at the start (`/proc/loadavg`, first three fields).
    pub load: String,
}

fn first_line(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.lines().next().unwrap_or("").trim().to_string())
        .unwrap_or_default()
}

fn loadavg() -> String {
    first_line("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

impl Machine {
    /// Reads the figures of this machine.
    pub fn read() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            kernel: first_line("/proc/sys/kernel/osrelease"),
            date: utc_now(),
            load: loadavg(),
        }
    }
}

/// The current time, UTC, as `YYYY-MM-DD HH:MM`.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// One of the targets, met or not.
#[derive(Clone, Debug)]
pub struct Target {
    /// What is compared.
    pub what: String,
    /// The goal.
    pub goal: String,
    /// What was measured.
    pub measured: String,
    /// Met, missed, or not measured (`None`).
    pub met: Option<bool>,
}

/// Everything a run measured.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The plan's name.
    pub plan: String,
    /// The machine.
    pub machine: Machine,
    /// Mechanisms measured: name and description.
    pub mechanisms: Vec<(String, String)>,
    /// Ping-pong round trips.
    pub round_trips: Vec<RoundTrip>,
    /// One-way throughput.
    pub throughput: Vec<Throughput>,
    /// Typed receive against depth.
    pub depth: Vec<Point>,
    /// Receive with priorities in use (POSIX queues).
    pub prio: Vec<crate::drivers::prio::PrioPoint>,
    /// Footprint of a queue.
    pub footprint: Option<Footprint>,
    /// Remarks (capacities that could not be had, ...).
    pub notes: Vec<String>,
    /// Steps that failed.
    pub errors: Vec<String>,
    /// Kernel queues the run created (all removed by its end).
    pub kernel_queues: Vec<i32>,
    /// Cost of one clock read, included in each timed operation.
    pub clock_overhead_ns: u64,
    /// How long the run took.
    pub elapsed: Duration,
    /// Load averages at the end.
    pub load_end: String,
}

/// `8 B`, `1 KiB`, ...
pub fn fmt_size(n: usize) -> String {
    if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} B")
    }
}

/// A duration in nanoseconds with a unit that keeps 3 significant digits.
pub fn fmt_ns(ns: u64) -> String {
    let x = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{} µs", sig3(x / 1e3))
    } else if ns < 1_000_000_000 {
        format!("{} ms", sig3(x / 1e6))
    } else {
        format!("{} s", sig3(x / 1e9))
    }
}

/// A number with 3 significant digits (no exponent).
pub fn sig3(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let a = x.abs();
    let decimals = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else if a == 0.0 {
        0
    } else {
        (2 - a.log10().floor() as i32).max(0) as usize
    };
    format!("{x:.decimals$}")
}

/// A rate: `12.3 M`, `456 k`.
fn fmt_rate(x: f64) -> String {
    if x >= 1e9 {
        format!("{} G", sig3(x / 1e9))
    } else if x >= 1e6 {
        format!("{} M", sig3(x / 1e6))
    } else if x >= 1e3 {
        format!("{} k", sig3(x / 1e3))
    } else {
        sig3(x)
    }
}

/// A simple text table: the first `left` columns left-aligned, the others
/// right-aligned.
struct Table {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
    left: usize,
}

impl Table {
    fn new(head: &[&str], left: usize) -> Table {
        Table {
            head: head.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
            left,
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self, out: &mut String) {
        let n = self.head.len();
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .chain([self.head[i].chars().count()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..n).map(width).collect();
        let line = |cells: &[String], out: &mut String| {
            let mut s = String::new();
            for (i, w) in widths.iter().enumerate() {
                let c = cells.get(i).map_or("", String::as_str);
                let pad = w - c.chars().count();
                if i > 0 {
                    s.push_str("  ");
                }
                if i < self.left {
                    s.push_str(c);
                    s.extend(std::iter::repeat_n(' ', pad));
                } else {
                    s.extend(std::iter::repeat_n(' ', pad));
                    s.push_str(c);
                }
            }
            let _ = writeln!(out, "{}", s.trim_end());
        };
        line(&self.head, out);
        for r in &self.rows {
            line(r, out);
        }
    }
}

fn ratio_cell(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_string(), sig3)
}

impl Report {
    pub(crate) fn new(plan: &str, machine: Machine) -> Report {
        Report {
            plan: plan.to_string(),
            machine,
            ..Report::default()
        }
    }

    pub(crate) fn finish(&mut self) {
        self.kernel_queues = crate::mech::sysv_created_ids();
        self.load_end = loadavg();
    }

    fn rt(&self, mech: &str, parked: bool, pl: Placement, size: usize) -> Option<&RoundTrip> {
        self.round_trips
            .iter()
            .find(|r| r.mech == mech && r.parked == parked && r.placement == pl && r.size == size)
    }

    /// shmq's p50 round trip over `r`'s, same mode, placement and size.
    pub fn rt_ratio(&self, r: &RoundTrip) -> Option<f64> {
        if r.mech == "shmq" {
            return None;
        }
        let s = self.rt("shmq", r.parked, r.placement, r.size)?;
        Some(s.summary.p50 as f64 / r.summary.p50.max(1) as f64)
    }

    fn shmq_tp(&self, t: &Throughput) -> Option<&Throughput> {
        self.throughput.iter().find(|s| {
            s.mech == "shmq"
                && s.size == t.size
                && s.pinned == t.pinned
                && s.producers == t.producers
                && s.consumers == t.consumers
        })
    }

    /// shmq's messages per second over `t`'s, same sizes and process counts.
    pub fn tp_ratio(&self, t: &Throughput) -> Option<f64> {
        if t.mech == "shmq" {
            return None;
        }
        let s = self.shmq_tp(t)?;
        Some(s.msg_per_s() / t.msg_per_s())
    }

    fn depth_point(&self, mech: &str, d: usize, sel: Sel) -> Option<&Point> {
        self.depth
            .iter()
            .find(|p| p.mech == mech && p.depth == d && p.sel == sel)
    }

    /// shmq's p50 typed receive over `p`'s, same depth and selector.
    pub fn depth_ratio(&self, p: &Point) -> Option<f64> {
        if p.mech == "shmq" {
            return None;
        }
        let s = self.depth_point("shmq", p.depth, p.sel)?;
        Some(s.summary.p50 as f64 / p.summary.p50.max(1) as f64)
    }

    fn sizes(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.round_trips.iter().map(|r| r.size).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The targets, evaluated on this run.
    pub fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        let place = |pinned: bool| if pinned { "pinned" } else { "unpinned" };
        for size in self.sizes() {
            let sz = fmt_size(size);
            for placement in Placement::ALL {
                let pl = placement.label();
                if let (Some(s), Some(k)) = (
                    self.rt("shmq", false, placement, size),
                    self.rt("sysv", false, placement, size),
                ) {
                    let r = s.summary.p50 as f64 / k.summary.p50.max(1) as f64;
                    out.push(Target {
                        what: format!("round trip p50, {sz}, {pl}: shmq vs kernel SysV"),
                        goal: "<= 0.5x the kernel's".into(),
                        measured: format!(
                            "{} vs {}: {}x",
                            fmt_ns(s.summary.p50),
                            fmt_ns(k.summary.p50),
                            sig3(r)
                        ),
                        met: Some(r <= 0.5),
                    });
                    out.push(Target {
                        what: format!("round trip p99, {sz}, {pl}: shmq vs kernel SysV"),
                        goal: "no worse than the kernel's".into(),
                        measured: format!("{} vs {}", fmt_ns(s.summary.p99), fmt_ns(k.summary.p99)),
                        met: Some(s.summary.p99 <= k.summary.p99),
                    });
                }
                if placement == Placement::TwoCpus && size == 8 {
                    if let Some(s) = self.rt("shmq", false, placement, size) {
                        out.push(Target {
                            what: format!("round trip p50, {sz}, two CPUs: shmq"),
                            goal: "<= 1 us".into(),
                            measured: fmt_ns(s.summary.p50),
                            met: Some(s.summary.p50 <= 1_000),
                        });
                    }
                }
                if let (Some(s), Some(i)) = (
                    self.rt("shmq", false, placement, size),
                    self.rt("iceoryx2", false, placement, size),
                ) {
                    out.push(Target {
                        what: format!(
                            "round trip p50, {sz}, {pl}: shmq vs iceoryx2 (busy polling)"
                        ),
                        goal: "below iceoryx2's".into(),
                        measured: format!("{} vs {}", fmt_ns(s.summary.p50), fmt_ns(i.summary.p50)),
                        met: Some(s.summary.p50 < i.summary.p50),
                    });
                }
            }
            if let (Some(s), Some(k)) = (
                self.rt("shmq", true, Placement::Unpinned, size),
                self.rt("sysv", true, Placement::Unpinned, size),
            ) {
                out.push(Target {
                    what: format!("parked round trip p50, {sz}: shmq vs kernel SysV"),
                    goal: "no slower than the kernel's".into(),
                    measured: format!("{} vs {}", fmt_ns(s.summary.p50), fmt_ns(k.summary.p50)),
                    met: Some(s.summary.p50 <= k.summary.p50),
                });
            }
        }
        let tp = |mech: &str, size: usize, pc: usize, pinned: bool| {
            self.throughput.iter().find(|t| {
                t.mech == mech
                    && t.size == size
                    && t.producers == pc
                    && t.consumers == pc
                    && t.pinned == pinned
            })
        };
        for pinned in [false, true] {
            let pl = place(pinned);
            if let (Some(s), Some(k)) = (tp("shmq", 64, 1, pinned), tp("sysv", 64, 1, pinned)) {
                let r = s.msg_per_s() / k.msg_per_s();
                out.push(Target {
                    what: format!("one-way 1->1, 64 B, {pl}: shmq vs kernel SysV msg/s"),
                    goal: ">= 8x the kernel's".into(),
                    measured: format!(
                        "{} vs {} msg/s: {}x",
                        fmt_rate(s.msg_per_s()),
                        fmt_rate(k.msg_per_s()),
                        sig3(r)
                    ),
                    met: Some(r >= 8.0),
                });
            }
            if let (Some(s), Some(f)) = (tp("shmq", 64, 1, pinned), tp("bare-ring", 64, 1, pinned))
            {
                let r = s.msg_per_s() / f.msg_per_s();
                out.push(Target {
                    what: format!("one-way 1->1, 64 B, {pl}: shmq vs the bare-ring floor msg/s"),
                    goal: ">= 0.5x the floor's".into(),
                    measured: format!(
                        "{} vs {} msg/s: {}x",
                        fmt_rate(s.msg_per_s()),
                        fmt_rate(f.msg_per_s()),
                        sig3(r)
                    ),
                    met: Some(r >= 0.5),
                });
            }
            if let (Some(s), Some(k)) = (tp("shmq", 8192, 1, pinned), tp("sysv", 8192, 1, pinned)) {
                let r = s.bytes_per_s() / k.bytes_per_s();
                out.push(Target {
                    what: format!("one-way 1->1, 8 KiB, {pl}: shmq vs kernel SysV bytes/s"),
                    goal: ">= 2x the kernel's".into(),
                    measured: format!("{}x", sig3(r)),
                    met: Some(r >= 2.0),
                });
            }
        }
        if let (Some(s), Some(k)) = (tp("shmq", 64, 2, false), tp("sysv", 64, 2, false)) {
            let r = s.msg_per_s() / k.msg_per_s();
            out.push(Target {
                what: "2 producers x 2 consumers, 64 B, mixed types: shmq vs kernel SysV".into(),
                goal: ">= 5x the kernel's".into(),
                measured: format!(
                    "{} vs {} msg/s: {}x",
                    fmt_rate(s.msg_per_s()),
                    fmt_rate(k.msg_per_s()),
                    sig3(r)
                ),
                met: Some(r >= 5.0),
            });
        }
        for sel in Sel::ALL {
            let pts: Vec<&Point> = self
                .depth
                .iter()
                .filter(|p| p.mech == "shmq" && p.sel == sel)
                .collect();
            // O(1) for D and 0; O(log types) for -D.
            let limit = if sel == Sel::AtMost { 1000 } else { 200 };
            if let Some(worst) = pts.iter().max_by_key(|p| p.summary.p50) {
                out.push(Target {
                    what: format!(
                        "shmq receive msgtyp={}, every depth up to {}",
                        sel.label(),
                        pts.iter().map(|p| p.depth).max().unwrap_or(0)
                    ),
                    goal: format!("<= {} (p50)", fmt_ns(limit)),
                    measured: format!(
                        "worst {} at depth {}",
                        fmt_ns(worst.summary.p50),
                        worst.depth
                    ),
                    met: Some(worst.summary.p50 <= limit),
                });
            }
        }
        out
    }

    /// The report as text tables.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "shmq bench ({} run): {} CPUs, {}, Linux {}, {} UTC, load {} -> {}; took {:.0} s",
            self.plan,
            m.nproc,
            m.cpu,
            m.kernel,
            m.date,
            m.load,
            self.load_end,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "Every endpoint is a process of its own; all figures come from this one run."
        );
        self.rt_text(&mut out, false);
        self.rt_text(&mut out, true);
        self.tp_text(&mut out, 1, 1);
        self.tp_text(&mut out, 2, 2);
        self.depth_text(&mut out);
        self.prio_text(&mut out);
        self.footprint_text(&mut out);
        let targets = self.targets();
        if !targets.is_empty() {
            let _ = writeln!(out, "\nTargets the project set itself (this run)");
            let mut t = Table::new(&["", "what", "goal", "measured"], 4);
            for x in targets {
                let mark = match x.met {
                    Some(true) => "met",
                    Some(false) => "MISSED",
                    None => "-",
                };
                t.row(vec![mark.into(), x.what, x.goal, x.measured]);
            }
            t.render(&mut out);
        }
        let _ = writeln!(out, "\nMechanisms");
        for (name, d) in &self.mechanisms {
            let _ = writeln!(out, "  {name:<10} {d}");
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\nNotes");
            for n in &self.notes {
                let _ = writeln!(out, "  - {n}");
            }
        }
        if !self.errors.is_empty() {
            let _ = writeln!(out, "\nErrors (these steps were not measured)");
            for e in &self.errors {
                let _ = writeln!(out, "  - {e}");
            }
        }
        out
    }

    fn rt_text(&self, out: &mut String, parked: bool) {
        let rows: Vec<&RoundTrip> = self
            .round_trips
            .iter()
            .filter(|r| r.parked == parked)
            .collect();
        if rows.is_empty() {
            return;
        }
        if parked {
            let _ = writeln!(
                out,
                "\nPing-pong round trip, parked: each side waits until the other sleeps in the kernel\nbefore it sends (shmq with SHMQ_SPIN=0), so every message takes the wake-up path.\nshmq/x = shmq's p50 / x's p50 (below 1: shmq is faster)"
            );
        } else {
            let _ = writeln!(
                out,
                "\nPing-pong round trip, default mode (shmq spins while its peer runs on another\nCPU, yields while it shares ours, then parks); the two processes where the\nscheduler puts them, both pinned to CPU 0, and pinned to CPUs 0 and 1.\nshmq/x = shmq's p50 / x's p50 (below 1: shmq is faster)"
            );
        }
        let placements: Vec<Placement> = Placement::ALL
            .into_iter()
            .filter(|&p| rows.iter().any(|r| r.placement == p))
            .collect();
        let mut head: Vec<String> = vec!["size".into(), "mechanism".into()];
        for &p in &placements {
            match p {
                Placement::Unpinned => {
                    head.extend(["p50".into(), "p99".into(), "shmq/x".into()]);
                }
                p => {
                    let l = match p {
                        Placement::OneCpu => "1cpu",
                        _ => "2cpu",
                    };
                    head.extend([
                        format!("p50 {l}"),
                        format!("p99 {l}"),
                        format!("shmq/x {l}"),
                    ]);
                }
            }
        }
        let head: Vec<&str> = head.iter().map(String::as_str).collect();
        let mut t = Table::new(&head, 2);
        for size in self.sizes() {
            let mut mechs: Vec<&str> = rows
                .iter()
                .filter(|r| r.size == size)
                .map(|r| r.mech.as_str())
                .collect();
            mechs.dedup();
            for (i, m) in mechs.iter().enumerate() {
                let mut row = vec![
                    if i == 0 {
                        fmt_size(size)
                    } else {
                        String::new()
                    },
                    m.to_string(),
                ];
                for &p in &placements {
                    match self.rt(m, parked, p, size) {
                        Some(r) => row.extend([
                            fmt_ns(r.summary.p50),
                            fmt_ns(r.summary.p99),
                            ratio_cell(self.rt_ratio(r)),
                        ]),
                        None => row.extend(["-".into(), "-".into(), "-".into()]),
                    }
                }
                t.row(row);
            }
        }
        t.render(out);
    }

    fn tp_text(&self, out: &mut String, p: usize, c: usize) {
        let rows: Vec<&Throughput> = self
            .throughput
            .iter()
            .filter(|t| t.producers == p && t.consumers == c)
            .collect();
        if rows.is_empty() {
            return;
        }
        if p == 1 && c == 1 {
            let _ = writeln!(
                out,
                "\nOne-way throughput, 1 producer -> 1 consumer (receives take the oldest message);\nthe two processes where the scheduler puts them, and pinned to CPUs 0 and 1.\nshmq/x = shmq's msg/s / x's msg/s (above 1: shmq is faster)"
            );
        } else {
            let _ = writeln!(
                out,
                "\nOne-way throughput, {p} producers x {c} consumers, mixed types: with types (shmq,\nsysv) consumer i receives type i only and producers alternate types; others share one\nchannel. shmq/x = shmq's msg/s / x's msg/s"
            );
        }
        let placements: Vec<bool> = [false, true]
            .into_iter()
            .filter(|&pl| rows.iter().any(|r| r.pinned == pl))
            .collect();
        let mut head = vec!["size", "mechanism"];
        for &pl in &placements {
            if pl {
                head.extend(["msg/s pinned", "MB/s pinned", "shmq/x pinned"]);
            } else {
                head.extend(["msg/s", "MB/s", "shmq/x"]);
            }
        }
        let mut t = Table::new(&head, 2);
        let mut sizes: Vec<usize> = rows.iter().map(|t| t.size).collect();
        sizes.dedup();
        for size in sizes {
            let mut mechs: Vec<&str> = rows
                .iter()
                .filter(|r| r.size == size)
                .map(|r| r.mech.as_str())
                .collect();
            mechs.dedup();
            for (i, m) in mechs.iter().enumerate() {
                let mut row = vec![
                    if i == 0 {
                        fmt_size(size)
                    } else {
                        String::new()
                    },
                    m.to_string(),
                ];
                for &pl in &placements {
                    match rows
                        .iter()
                        .find(|r| r.size == size && r.mech == *m && r.pinned == pl)
                    {
                        Some(r) => row.extend([
                            fmt_rate(r.msg_per_s()),
                            sig3(r.bytes_per_s() / 1e6),
                            ratio_cell(self.tp_ratio(r)),
                        ]),
                        None => row.extend(["-".into(), "-".into(), "-".into()]),
                    }
                }
                t.row(row);
            }
        }
        t.render(out);
    }

    fn depth_text(&self, out: &mut String) {
        if self.depth.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\nReceive with D messages of types 1..D queued, p50 per receive (one clock read of\n~{} ns included). msgtyp=D: type D is the newest; -D: the lowest type is the newest;\n0: the oldest. shmq/x = shmq's p50 / x's p50",
            self.clock_overhead_ns
        );
        let mut mechs: Vec<&str> = self.depth.iter().map(|p| p.mech.as_str()).collect();
        mechs.dedup();
        let others: Vec<&str> = mechs.iter().copied().filter(|m| *m != "shmq").collect();
        let mut head = vec!["msgtyp".to_string(), "D".to_string(), "shmq".to_string()];
        for o in &others {
            head.push(o.to_string());
            head.push("shmq/x".to_string());
        }
        let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
        let mut t = Table::new(&head_refs, 1);
        let mut depths: Vec<usize> = self.depth.iter().map(|p| p.depth).collect();
        depths.sort_unstable();
        depths.dedup();
        for sel in Sel::ALL {
            let mut first = true;
            for &d in &depths {
                let cell = |m: &str| {
                    self.depth_point(m, d, sel)
                        .map_or("-".to_string(), |p| fmt_ns(p.summary.p50))
                };
                let mut row = vec![
                    if first {
                        sel.label().to_string()
                    } else {
                        String::new()
                    },
                    d.to_string(),
                    cell("shmq"),
                ];
                for o in &others {
                    row.push(cell(o));
                    row.push(ratio_cell(
                        self.depth_point(o, d, sel)
                            .and_then(|p| self.depth_ratio(p)),
                    ));
                }
                t.row(row);
                first = false;
            }
        }
        t.render(out);
    }

    fn prio_text(&self, out: &mut String) {
        if self.prio.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\nPOSIX queue receive with D messages over P priorities queued (the highest is taken,\nthen sent again untimed), per receive (one clock read of ~{} ns included).\nshmq/x = shmq-mq's p50 / x's p50 at the same D and P",
            self.clock_overhead_ns
        );
        let mut t = Table::new(&["mechanism", "P", "D", "p50", "p99", "shmq/x"], 1);
        for p in &self.prio {
            let ratio = self
                .prio
                .iter()
                .find(|s| s.mech == "shmq-mq" && s.depth == p.depth && s.prios == p.prios)
                .filter(|s| p.summary.p50 > 0 && s.mech != p.mech)
                .map(|s| s.summary.p50 as f64 / p.summary.p50 as f64);
            t.row(vec![
                p.mech.clone(),
                p.prios.to_string(),
                p.depth.to_string(),
                fmt_ns(p.summary.p50),
                fmt_ns(p.summary.p99),
                ratio_cell(ratio),
            ]);
        }
        t.render(out);
    }

    fn footprint_text(&self, out: &mut String) {
        let Some(f) = &self.footprint else { return };
        let mib = |b: u64| format!("{} MiB", sig3(b as f64 / (1 << 20) as f64));
        let kib = |b: u64| format!("{} KiB", sig3(b as f64 / 1024.0));
        let _ = writeln!(
            out,
            "\nFootprint of one shmq queue (msgmax {}, msgmnb {}, qbytes_max {}, {} slots)",
            f.limits.msgmax, f.limits.msgmnb, f.limits.qbytes_max, f.limits.slots
        );
        let mut t = Table::new(&["", "bytes"], 1);
        t.row(vec!["queue file length (sparse)".into(), mib(f.file_size)]);
        t.row(vec!["allocated, fresh".into(), kib(f.allocated_fresh)]);
        t.row(vec![
            format!("allocated after {} x 64 B in and out", f.small_messages),
            kib(f.allocated_small),
        ]);
        t.row(vec![
            format!("allocated after {} x 8 KiB in and out", f.large_messages),
            kib(f.allocated_large),
        ]);
        t.row(vec![
            "RSS of an attached process (shmq): before -> after".into(),
            format!("{} -> {}", kib(f.shmq_rss.before), kib(f.shmq_rss.after)),
        ]);
        t.row(vec![
            "  of which the queue's shared pages".into(),
            kib(f.shmq_rss.shmem),
        ]);
        t.row(vec![
            "RSS, same program on a kernel queue: before -> after".into(),
            format!("{} -> {}", kib(f.sysv_rss.before), kib(f.sysv_rss.after)),
        ]);
        t.render(out);
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> Value {
        let m = &self.machine;
        let machine = Value::obj()
            .with("nproc", m.nproc)
            .with("cpu", m.cpu.as_str())
            .with("kernel", m.kernel.as_str())
            .with("date_utc", m.date.as_str())
            .with("load_start", m.load.as_str())
            .with("load_end", self.load_end.as_str());
        let mechanisms: Vec<Value> = self
            .mechanisms
            .iter()
            .map(|(n, d)| {
                Value::obj()
                    .with("name", n.as_str())
                    .with("describe", d.as_str())
            })
            .collect();
        let summary = |v: Value, s: &crate::stats::Summary| {
            v.with("n", s.n)
                .with("min_ns", s.min)
                .with("p50_ns", s.p50)
                .with("p90_ns", s.p90)
                .with("p99_ns", s.p99)
                .with("max_ns", s.max)
                .with("mean_ns", s.mean)
        };
        let rts: Vec<Value> = self
            .round_trips
            .iter()
            .map(|r| {
                summary(
                    Value::obj()
                        .with("mechanism", r.mech.as_str())
                        .with("parked", r.parked)
                        .with("pinned", r.placement != Placement::Unpinned)
                        .with("placement", r.placement.key())
                        .with("size", r.size),
                    &r.summary,
                )
                .with("sleep_waits", r.sleep_waits)
                .with("round_p50_ns", r.round_p50s.clone())
                .with("shmq_ratio", self.rt_ratio(r))
            })
            .collect();
        let tps: Vec<Value> = self
            .throughput
            .iter()
            .map(|t| {
                Value::obj()
                    .with("mechanism", t.mech.as_str())
                    .with("producers", t.producers)
                    .with("consumers", t.consumers)
                    .with("size", t.size)
                    .with("typed", t.typed)
                    .with("pinned", t.pinned)
                    .with("messages", t.messages)
                    .with("elapsed_ns", t.elapsed_ns)
                    .with("msg_per_s", t.msg_per_s())
                    .with("bytes_per_s", t.bytes_per_s())
                    .with("shmq_ratio", self.tp_ratio(t))
            })
            .collect();
        let depth: Vec<Value> = self
            .depth
            .iter()
            .map(|p| {
                summary(
                    Value::obj()
                        .with("mechanism", p.mech.as_str())
                        .with("depth", p.depth)
                        .with("msgtyp", p.sel.label()),
                    &p.summary,
                )
                .with("shmq_ratio", self.depth_ratio(p))
            })
            .collect();
        let prio: Vec<Value> = self
            .prio
            .iter()
            .map(|p| {
                summary(
                    Value::obj()
                        .with("mechanism", p.mech.as_str())
                        .with("priorities", p.prios as u64)
                        .with("depth", p.depth),
                    &p.summary,
                )
            })
            .collect();
        let footprint = self.footprint.as_ref().map_or(Value::Null, |f| {
            let rss = |r: &crate::drivers::footprint::Rss| {
                Value::obj()
                    .with("before", r.before)
                    .with("after", r.after)
                    .with("shmem", r.shmem)
            };
            Value::obj()
                .with(
                    "limits",
                    Value::obj()
                        .with("msgmax", f.limits.msgmax)
                        .with("msgmnb", f.limits.msgmnb)
                        .with("msgmni", f.limits.msgmni as u64)
                        .with("qbytes_max", f.limits.qbytes_max)
                        .with("slots", f.limits.slots as u64),
                )
                .with("file_size", f.file_size)
                .with("allocated_fresh", f.allocated_fresh)
                .with("allocated_after_small", f.allocated_small)
                .with("small_messages", f.small_messages)
                .with("allocated_after_large", f.allocated_large)
                .with("large_messages", f.large_messages)
                .with("rss_shmq", rss(&f.shmq_rss))
                .with("rss_sysv", rss(&f.sysv_rss))
        });
        let targets: Vec<Value> = self
            .targets()
            .into_iter()
            .map(|t| {
                Value::obj()
                    .with("what", t.what)
                    .with("goal", t.goal)
                    .with("measured", t.measured)
                    .with("met", t.met)
            })
            .collect();
        Value::obj()
            .with("version", 1u64)
            .with("plan", self.plan.as_str())
            .with("machine", machine)
            .with("elapsed_s", self.elapsed.as_secs_f64())
            .with("clock_overhead_ns", self.clock_overhead_ns)
            .with("mechanisms", Value::Arr(mechanisms))
            .with("round_trip", Value::Arr(rts))
            .with("throughput", Value::Arr(tps))
            .with("typed_receive", Value::Arr(depth))
            .with("priority_receive", Value::Arr(prio))
            .with("footprint", footprint)
            .with("targets", Value::Arr(targets))
            .with(
                "notes",
                Value::Arr(self.notes.iter().map(|n| n.as_str().into()).collect()),
            )
            .with(
                "errors",
                Value::Arr(self.errors.iter().map(|n| n.as_str().into()).collect()),
            )
            .with("kernel_queues", self.kernel_queues.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_three_significant_digits() {
        assert_eq!(sig3(0.01234), "0.0123");
        assert_eq!(sig3(1.234), "1.23");
        assert_eq!(sig3(12.34), "12.3");
        assert_eq!(sig3(1234.5), "1234");
        assert_eq!(fmt_ns(812), "812 ns");
        assert_eq!(fmt_ns(12_340), "12.3 µs");
        assert_eq!(fmt_ns(6_120_000), "6.12 ms");
        assert_eq!(fmt_size(8192), "8 KiB");
        assert_eq!(fmt_size(8), "8 B");
        let d = utc_now();
        assert_eq!(d.len(), 16, "{d}");
    }
}
