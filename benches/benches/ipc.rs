//! Criterion suite: the same cross-process measurements as `shmq bench`
//! (every endpoint a process of its own, this binary re-executed), with
//! criterion's statistics: round trip per message size, parked round trip,
//! 1 -> 1 throughput, typed receive against depth. iceoryx2 is included.
//!
//! ```sh
//! cargo bench -p shmq-benches --bench ipc                  # everything
//! cargo bench -p shmq-benches --bench ipc -- round_trip/64 # a filter
//! ```
//! `SHMQ_BENCH_PIN=1` pins the two processes of a pair to CPUs 0 and 1.

mod iox2;

use criterion::{BenchmarkId, Criterion, Throughput};
use shmq_benches::drivers::depth::{Deep, Sel};
use shmq_benches::drivers::pingpong::Pair;
use shmq_benches::drivers::throughput::Flow;
use shmq_benches::drivers::Contender;
use shmq_benches::drivers::Placement;
use shmq_benches::{mech, Mechanism, Spawner};
use std::time::Duration;

const SIZES: [usize; 4] = [8, 64, 1024, 8192];
const DEPTHS: [usize; 5] = [10, 100, 1_000, 10_000, 100_000];

fn pin() -> bool {
    std::env::var_os("SHMQ_BENCH_PIN").is_some()
}

fn round_trip(c: &mut Criterion, spawner: &Spawner, mechs: &[&dyn Mechanism]) {
    for size in SIZES {
        let mut g = c.benchmark_group(format!("round_trip/{size}"));
        for &m in mechs {
            let mut pair =
                Pair::start(spawner, Contender::new(m), size, Placement::from_pin(pin()))
                    .expect("pair");
            g.bench_function(m.name(), |b| {
                b.iter_custom(|iters| {
                    let batch = pair.run(iters, 0).expect("round trips");
                    Duration::from_nanos(batch.wall_ns)
                })
            });
        }
        g.finish();
    }
}

fn round_trip_parked(c: &mut Criterion, spawner: &Spawner, mechs: &[&dyn Mechanism]) {
    for size in SIZES {
        let mut g = c.benchmark_group(format!("round_trip_parked/{size}"));
        for &m in mechs.iter().filter(|m| m.can_park()) {
            let mut pair = Pair::start(spawner, Contender::parked(m), size, Placement::Unpinned)
                .expect("pair");
            g.bench_function(m.name(), |b| {
                b.iter_custom(|iters| {
                    let batch = pair.run(iters, 0).expect("round trips");
                    Duration::from_nanos(batch.total_ns)
                })
            });
        }
        g.finish();
    }
}

fn throughput(c: &mut Criterion, spawner: &Spawner, mechs: &[&dyn Mechanism]) {
    for size in SIZES {
        let mut g = c.benchmark_group(format!("throughput_1to1/{size}"));
        g.throughput(Throughput::Elements(1));
        for &m in mechs {
            let mut flow =
                Flow::start(spawner, Contender::new(m), size, 1, 1, pin()).expect("flow");
            g.bench_function(m.name(), |b| {
                b.iter_custom(|iters| {
                    let (_, ns) = flow.batch(iters.max(1)).expect("batch");
                    Duration::from_nanos(ns)
                })
            });
        }
        g.finish();
    }
}

fn typed_receive(c: &mut Criterion, spawner: &Spawner, mechs: &[&dyn Mechanism]) {
    let max = *DEPTHS.iter().max().expect("depths");
    for &m in mechs.iter().filter(|m| m.typed()) {
        let mut deep = Deep::start(spawner, m, max, 8).expect("deep queue");
        if let Some(n) = deep.note() {
            eprintln!("note: {n}");
        }
        for sel in [Sel::Exact, Sel::Oldest, Sel::AtMost] {
            let mut g =
                c.benchmark_group(format!("typed_receive/msgtyp={}/{}", sel.label(), m.name()));
            for d in DEPTHS {
                if deep.fill(d, sel).expect("fill") < d {
                    eprintln!("{}: depth {d} does not fit", m.name());
                    continue;
                }
                g.bench_with_input(BenchmarkId::from_parameter(d), &d, |b, &d| {
                    b.iter_custom(|iters| {
                        deep.fill(d, sel).expect("fill");
                        let (_, total) = deep.time(sel, iters, Duration::ZERO).expect("receives");
                        Duration::from_nanos(total)
                    })
                });
            }
            g.finish();
        }
    }
}

fn main() {
    shmq_benches::child::serve_if_child(&[&iox2::Iceoryx2]);
    shmq_benches::cleanup::install_signal_cleanup().expect("signal handling");
    let builtin = mech::builtin(None);
    let mut mechs: Vec<&dyn Mechanism> = builtin
        .iter()
        .map(|m| m.as_ref() as &dyn Mechanism)
        .collect();
    mechs.push(&iox2::Iceoryx2);
    let spawner = Spawner::current_exe().expect("own executable");
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    round_trip(&mut c, &spawner, &mechs);
    round_trip_parked(&mut c, &spawner, &mechs);
    throughput(&mut c, &spawner, &mechs);
    typed_receive(&mut c, &spawner, &mechs);
    c.final_summary();
}
