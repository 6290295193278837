//! The plans (`quick`, `full`, `smoke`) and the run that follows one: every
//! mechanism measured in the same run, shmq first, so that ratios compare
//! figures taken under the same conditions.

use crate::drivers::depth::{self, Deep, Sel};
use crate::drivers::{footprint, pingpong, prio, throughput, Contender, Placement};
use crate::mech::Shmq;
use crate::mechanism::Mechanism;
use crate::report::{Machine, Report};
use crate::session::Spawner;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Which parts of a plan run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts {
    /// Ping-pong, default mode.
    pub round_trip: bool,
    /// Ping-pong, parked mode.
    pub parked: bool,
    /// Throughput, 1 producer and 1 consumer.
    pub throughput: bool,
    /// Throughput, 2 producers and 2 consumers.
    pub mpmc: bool,
    /// Typed receive against depth.
    pub depth: bool,
    /// Receive with 32 priorities in use (POSIX queues).
    pub prio: bool,
    /// Footprint.
    pub footprint: bool,
}

impl Parts {
    /// The names [`Parts::parse`] knows.
    pub const NAMES: [&'static str; 7] =
        ["rt", "parked", "tp", "mpmc", "depth", "prio", "footprint"];

    /// Everything.
    pub fn all() -> Parts {
        Parts {
            round_trip: true,
            parked: true,
            throughput: true,
            mpmc: true,
            depth: true,
            prio: true,
            footprint: true,
        }
    }

    /// Only the parts named (see [`Parts::NAMES`]).
    pub fn parse(names: &[String]) -> Result<Parts, String> {
        let mut p = Parts {
            round_trip: false,
            parked: false,
            throughput: false,
            mpmc: false,
            depth: false,
            prio: false,
            footprint: false,
        };
        for n in names {
            match n.as_str() {
                "rt" => p.round_trip = true,
                "parked" => p.parked = true,
                "tp" => p.throughput = true,
                "mpmc" => p.mpmc = true,
                "depth" => p.depth = true,
                "prio" => p.prio = true,
                "footprint" => p.footprint = true,
                _ => {
                    return Err(format!(
                        "unknown part {n:?} (known: {})",
                        Parts::NAMES.join(", ")
                    ))
                }
            }
        }
        Ok(p)
    }
}

/// What to measure, and how much.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `quick`, `full` or `smoke`.
    pub name: &'static str,
    /// The parts that run.
    pub parts: Parts,
    /// Message sizes of the round-trip and 1→1 throughput runs.
    pub sizes: Vec<usize>,
    /// Placements of the 1→1 runs: `false`, wherever the scheduler puts the
    /// two processes; `true`, pinned to CPUs 0 and 1. (2×2 runs are never
    /// pinned.)
    pub placements: Vec<bool>,
    /// Placements of the default-mode round trips. (Parked round trips are
    /// never pinned.)
    pub rt_placements: Vec<Placement>,
    /// Round trips, default mode.
    pub round_trip: pingpong::Opts,
    /// Round trips, parked mode.
    pub parked: pingpong::Opts,
    /// Mechanisms measured in parked mode (`None`: all that can park).
    pub parked_only: Option<Vec<&'static str>>,
    /// One-way throughput.
    pub throughput: throughput::Opts,
    /// Message sizes of the 2×2 throughput runs.
    pub mpmc_sizes: Vec<usize>,
    /// Depths of the typed-receive runs.
    pub depths: Vec<usize>,
    /// Typed receive.
    pub depth: depth::Opts,
    /// Receive with priorities.
    pub prio: prio::Opts,
}

/// Rounds of each default-mode round trip (fresh processes each time).
const ROUNDS: u32 = 3;

/// The message sizes of the issue: 8 B, 64 B, 1 KiB, 8 KiB.
pub const SIZES: [usize; 4] = [8, 64, 1024, 8192];
/// Priorities in use in the priority part (the 32).
pub const PRIOS: u32 = 32;
/// Messages queued in the priority part: two of each priority.
pub const PRIO_DEPTH: usize = 64;
/// The depths of the issue: 10 to 100k.
pub const DEPTHS: [usize; 5] = [10, 100, 1_000, 10_000, 100_000];

impl Plan {
    /// `shmq bench`: parts 1–3 and the footprint, under a minute on two
    /// cores.
    pub fn quick() -> Plan {
        Plan {
            name: "quick",
            parts: Parts::all(),
            sizes: SIZES.to_vec(),
            placements: vec![false, true],
            rt_placements: Placement::ALL.to_vec(),
            round_trip: pingpong::Opts {
                target: Duration::from_millis(120),
                min: 1_000,
                max: 200_000,
                warmup: 500,
                placement: Placement::Unpinned,
                rounds: ROUNDS,
            },
            parked: pingpong::Opts {
                target: Duration::from_millis(100),
                min: 200,
                max: 5_000,
                warmup: 50,
                placement: Placement::Unpinned,
                rounds: 1,
            },
            parked_only: Some(vec!["shmq", "shmq-async", "sysv"]),
            throughput: throughput::Opts {
                target: Duration::from_millis(100),
                calibrate: 5_000,
                max: 20_000_000,
                pin: false,
            },
            mpmc_sizes: vec![64],
            depths: DEPTHS.to_vec(),
            depth: depth::Opts {
                size: 8,
                max_reps: 5_000,
                budget: Duration::from_millis(100),
            },
            prio: prio::Opts {
                prios: PRIOS,
                depth: PRIO_DEPTH,
                size: 64,
                max_reps: 20_000,
                budget: Duration::from_millis(100),
            },
        }
    }

    /// `shmq bench --full`: everything, longer runs.
    pub fn full() -> Plan {
        Plan {
            name: "full",
            parts: Parts::all(),
            sizes: SIZES.to_vec(),
            placements: vec![false, true],
            rt_placements: Placement::ALL.to_vec(),
            round_trip: pingpong::Opts {
                target: Duration::from_millis(800),
                min: 10_000,
                max: 2_000_000,
                warmup: 2_000,
                placement: Placement::Unpinned,
                rounds: ROUNDS,
            },
            parked: pingpong::Opts {
                target: Duration::from_millis(500),
                min: 2_000,
                max: 50_000,
                warmup: 200,
                placement: Placement::Unpinned,
                rounds: 1,
            },
            parked_only: None,
            throughput: throughput::Opts {
                target: Duration::from_secs(1),
                calibrate: 20_000,
                max: 100_000_000,
                pin: false,
            },
            mpmc_sizes: SIZES.to_vec(),
            depths: DEPTHS.to_vec(),
            depth: depth::Opts {
                size: 8,
                max_reps: 50_000,
                budget: Duration::from_millis(500),
            },
            prio: prio::Opts {
                prios: PRIOS,
                depth: PRIO_DEPTH,
                size: 64,
                max_reps: 200_000,
                budget: Duration::from_millis(500),
            },
        }
    }

    /// A few messages of everything, for tests: figures are meaningless,
    /// but every path runs and every message is counted.
    pub fn smoke() -> Plan {
        Plan {
            name: "smoke",
            parts: Parts::all(),
            sizes: vec![8, 1024],
            placements: vec![false, true],
            rt_placements: Placement::ALL.to_vec(),
            round_trip: pingpong::Opts {
                target: Duration::from_millis(1),
                min: 20,
                max: 50,
                warmup: 5,
                placement: Placement::Unpinned,
                rounds: ROUNDS,
            },
            parked: pingpong::Opts {
                target: Duration::from_millis(1),
                min: 5,
                max: 10,
                warmup: 2,
                placement: Placement::Unpinned,
                rounds: 1,
            },
            parked_only: None,
            throughput: throughput::Opts {
                target: Duration::from_millis(1),
                calibrate: 100,
                max: 200,
                pin: false,
            },
            mpmc_sizes: vec![64],
            depths: vec![10, 100],
            depth: depth::Opts {
                size: 8,
                max_reps: 20,
                budget: Duration::from_millis(5),
            },
            prio: prio::Opts {
                prios: PRIOS,
                depth: PRIO_DEPTH,
                size: 64,
                max_reps: 20,
                budget: Duration::from_millis(5),
            },
        }
    }
}

/// One step of a run (the unit of the progress display).
#[derive(Clone, Copy, Debug)]
enum Step {
    RoundTrip {
        m: usize,
        size: usize,
        parked: bool,
        placement: Placement,
    },
    Throughput {
        m: usize,
        size: usize,
        p: usize,
        c: usize,
        pin: bool,
    },
    Depth {
        m: usize,
        d: usize,
    },
    Prio {
        m: usize,
    },
    Footprint,
}

/// Where a run is, for a progress display.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Steps finished.
    pub done: usize,
    /// Steps in the run.
    pub total: usize,
    /// What runs now.
    pub label: String,
}

/// A run of a plan over a set of mechanisms.
pub struct Suite<'a> {
    spawner: Spawner,
    plan: Plan,
    mechs: Vec<&'a dyn Mechanism>,
    shmq: Shmq,
}

impl<'a> Suite<'a> {
    /// Runs `plan` over `mechs` (the one named `shmq` is the reference; the
    /// others are compared with it), starting children with `spawner`;
    /// `shmq_dir` is shmq's namespace (`None`: the default one).
    pub fn new(
        spawner: Spawner,
        plan: Plan,
        mechs: Vec<&'a dyn Mechanism>,
        shmq_dir: Option<PathBuf>,
    ) -> Suite<'a> {
        Suite {
            spawner,
            plan,
            mechs,
            shmq: Shmq::new(shmq_dir),
        }
    }

    fn steps(&self) -> Vec<Step> {
        let p = &self.plan;
        let on = p.parts;
        let mut steps = Vec::new();
        for &size in &p.sizes {
            for (m, mech) in self.mechs.iter().enumerate() {
                for &placement in &p.rt_placements {
                    if on.round_trip {
                        steps.push(Step::RoundTrip {
                            m,
                            size,
                            parked: false,
                            placement,
                        });
                    }
                }
                let parked_here = p
                    .parked_only
                    .as_ref()
                    .is_none_or(|only| only.contains(&mech.name()));
                if on.parked && parked_here && mech.can_park() && size >= 8 {
                    steps.push(Step::RoundTrip {
                        m,
                        size,
                        parked: true,
                        placement: Placement::Unpinned,
                    });
                }
            }
        }
        for &size in &p.sizes {
            for (m, mech) in self.mechs.iter().enumerate() {
                if mech.round_trip_only() {
                    continue;
                }
                for &pin in &p.placements {
                    if on.throughput {
                        steps.push(Step::Throughput {
                            m,
                            size,
                            p: 1,
                            c: 1,
                            pin,
                        });
                    }
                }
            }
        }
        for &size in &p.mpmc_sizes {
            for (m, mech) in self.mechs.iter().enumerate() {
                if on.mpmc && mech.shared_ends(size) && !mech.round_trip_only() {
                    steps.push(Step::Throughput {
                        m,
                        size,
                        p: 2,
                        c: 2,
                        pin: false,
                    });
                }
            }
        }
        for (m, mech) in self.mechs.iter().enumerate() {
            if on.depth && mech.typed() && !mech.round_trip_only() {
                for &d in &p.depths {
                    steps.push(Step::Depth { m, d });
                }
            }
        }
        for (m, mech) in self.mechs.iter().enumerate() {
            if on.prio && mech.priorities() {
                steps.push(Step::Prio { m });
            }
        }
        if on.footprint {
            steps.push(Step::Footprint);
        }
        steps
    }

    fn label(&self, step: Step) -> String {
        let name = |m: usize| self.mechs[m].name();
        match step {
            Step::RoundTrip {
                m,
                size,
                parked,
                placement,
            } => format!(
                "round trip {} {}{}{}",
                name(m),
                crate::report::fmt_size(size),
                if parked { " parked" } else { "" },
                match placement {
                    Placement::Unpinned => String::new(),
                    p => format!(" {}", p.label()),
                }
            ),
            Step::Throughput { m, size, p, c, pin } => format!(
                "throughput {p}x{c} {} {}{}",
                name(m),
                crate::report::fmt_size(size),
                if pin { " pinned" } else { "" }
            ),
            Step::Depth { m, d } => format!("typed receive {} depth {d}", name(m)),
            Step::Prio { m } => format!(
                "receive with {} priorities {}",
                self.plan.prio.prios,
                name(m)
            ),
            Step::Footprint => "footprint".to_string(),
        }
    }

    /// Runs the plan, reporting each step to `progress`. A mechanism that
    /// fails a step is recorded in the report's errors; the run goes on.
    pub fn run(&self, progress: &mut dyn FnMut(&Progress)) -> Report {
        let began = Instant::now();
        let steps = self.steps();
        let mut report = Report::new(self.plan.name, Machine::read());
        for m in &self.mechs {
            report
                .mechanisms
                .push((m.name().to_string(), m.describe().to_string()));
        }
        report.clock_overhead_ns = crate::clock::overhead_ns();
        let max_depth = self.plan.depths.iter().copied().max().unwrap_or(0);
        let mut deep: Option<(usize, Deep)> = None;
        let mut deep_failed: Vec<usize> = Vec::new();
        for (i, &step) in steps.iter().enumerate() {
            let label = self.label(step);
            progress(&Progress {
                done: i,
                total: steps.len(),
                label: label.clone(),
            });
            let outcome: std::io::Result<()> = match step {
                Step::RoundTrip {
                    m,
                    size,
                    parked,
                    placement,
                } => {
                    let who = if parked {
                        Contender::parked(self.mechs[m])
                    } else {
                        Contender::new(self.mechs[m])
                    };
                    let opts = if parked {
                        self.plan.parked
                    } else {
                        self.plan.round_trip
                    };
                    let opts = pingpong::Opts { placement, ..opts };
                    pingpong::run(&self.spawner, who, size, opts).map(|r| {
                        if r.sleep_waits > 0 {
                            report.notes.push(format!(
                                "{}: {} of the parked round trips did not find the peer asleep within 1 s",
                                label, r.sleep_waits
                            ));
                        }
                        report.round_trips.push(r);
                    })
                }
                Step::Throughput { m, size, p, c, pin } => throughput::run(
                    &self.spawner,
                    Contender::new(self.mechs[m]),
                    size,
                    p,
                    c,
                    throughput::Opts {
                        pin,
                        ..self.plan.throughput
                    },
                )
                .map(|t| report.throughput.push(t)),
                Step::Depth { m, d } => {
                    if deep_failed.contains(&m) {
                        continue;
                    }
                    self.depth_step(m, d, max_depth, &mut deep, &mut report)
                        .inspect_err(|_| {
                            deep_failed.push(m);
                            deep = None;
                        })
                }
                Step::Prio { m } => {
                    deep = None;
                    self.prio_step(m, &mut report)
                }
                Step::Footprint => {
                    deep = None;
                    footprint::run(&self.spawner, &self.shmq).map(|f| report.footprint = Some(f))
                }
            };
            if let Err(e) = outcome {
                report.errors.push(format!("{label}: {e}"));
            }
        }
        drop(deep);
        progress(&Progress {
            done: steps.len(),
            total: steps.len(),
            label: "done".into(),
        });
        report.elapsed = began.elapsed();
        report.finish();
        report
    }

    /// The priority part for mechanism `m`: at the plan's depth, and, when
    /// the host's `fs.mqueue.msg_max` is below it (the kernel's queue can
    /// then be that deep only with `CAP_SYS_RESOURCE`), also at `msg_max`
    /// messages over as many priorities, so that the kernel is measured
    /// beside shmq at some point.
    fn prio_step(&self, m: usize, report: &mut Report) -> std::io::Result<()> {
        let main = self.plan.prio;
        let host_max = std::fs::read_to_string("/proc/sys/fs/mqueue/msg_max")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(main.depth);
        let mut points = vec![main];
        if host_max < main.depth {
            let depth = host_max.max(1);
            points.push(prio::Opts {
                depth,
                prios: main.prios.min(depth as u32),
                ..main
            });
        }
        let name = self.mechs[m].name();
        for o in points {
            match prio::run(&self.spawner, self.mechs[m], o) {
                Ok(p) => report.prio.push(p),
                Err(e) if o.depth == main.depth && e.raw_os_error() == Some(libc::EINVAL) => {
                    report.notes.push(format!(
                        "{name}: a queue of {} messages needs fs.mqueue.msg_max >= {} or CAP_SYS_RESOURCE (msg_max is {host_max}): receive with priorities measured at depth {host_max} only",
                        main.depth, main.depth
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn depth_step(
        &self,
        m: usize,
        d: usize,
        max_depth: usize,
        deep: &mut Option<(usize, Deep)>,
        report: &mut Report,
    ) -> std::io::Result<()> {
        if deep.as_ref().map(|(dm, _)| *dm) != Some(m) {
            *deep = None; // one deep queue at a time
            let q = Deep::start(
                &self.spawner,
                self.mechs[m],
                max_depth,
                self.plan.depth.size,
            )?;
            if let Some(n) = q.note() {
                report.notes.push(n.to_string());
            }
            *deep = Some((m, q));
        }
        let q = &mut deep.as_mut().expect("deep queue").1;
        let name = self.mechs[m].name();
        for sel in [Sel::Exact, Sel::Oldest, Sel::AtMost] {
            let fitted = q.fill(d, sel)?;
            if fitted < d {
                report.notes.push(format!(
                    "{name}: typed receive at depth {d} not measured: the queue holds only {fitted} messages"
                ));
                return Ok(());
            }
            let (summary, _) = q.time(sel, self.plan.depth.max_reps, self.plan.depth.budget)?;
            report.depth.push(depth::Point {
                mech: name.to_string(),
                depth: d,
                sel,
                summary,
            });
        }
        Ok(())
    }
}
