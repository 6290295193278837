//! The whole comparison of `shmq bench`, plus iceoryx2 (a dev-dependency, so
//! it is measured here and never in users' builds): the tables, or one JSON
//! object, in one run.
//!
//! ```sh
//! cargo bench -p shmq-benches --bench suite              # quick plan
//! cargo bench -p shmq-benches --bench suite -- --full --json > bench.json
//! ```
//! Options: `--full`, `--smoke`, `--json`, `--no-pin`, `--parts rt,parked,...`,
//! `--out FILE` (also write the JSON report to FILE, whatever is printed).

mod iox2;

use shmq_benches::suite::Parts;
use shmq_benches::{mech, Mechanism, Plan, Spawner, Suite};

fn main() {
    shmq_benches::child::serve_if_child(&[&iox2::Iceoryx2]);
    shmq_benches::cleanup::install_signal_cleanup().expect("signal handling");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |a: &str| args.iter().any(|x| x == a);
    let mut plan = if has("--full") {
        Plan::full()
    } else if has("--smoke") {
        Plan::smoke()
    } else {
        Plan::quick()
    };
    if has("--no-pin") {
        plan.placements = vec![false];
    }
    if let Some(i) = args.iter().position(|a| a == "--parts") {
        let names: Vec<String> = args
            .get(i + 1)
            .map(|s| s.split(',').map(String::from).collect())
            .unwrap_or_default();
        plan.parts = Parts::parse(&names).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        });
    }
    let builtin = mech::builtin(None);
    let mut mechs: Vec<&dyn Mechanism> = builtin
        .iter()
        .map(|m| m.as_ref() as &dyn Mechanism)
        .collect();
    mechs.push(&iox2::Iceoryx2);
    let spawner = Spawner::current_exe().expect("own executable");
    let suite = Suite::new(spawner, plan, mechs, None);
    let log = std::time::Instant::now();
    let report = suite.run(&mut |p| {
        eprintln!(
            "[{:7.2} s] {}/{} {}",
            log.elapsed().as_secs_f64(),
            p.done,
            p.total,
            p.label
        )
    });
    if let Some(path) = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
    {
        std::fs::write(path, report.to_json().to_json() + "\n").expect("write the JSON report");
    }
    if has("--json") {
        println!("{}", report.to_json().to_json());
    } else {
        print!("{}", report.to_text());
    }
    if !report.errors.is_empty() {
        std::process::exit(1);
    }
}
