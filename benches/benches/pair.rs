//! The data path's own cost: one thread sends a message and receives it back
//! from the same queue, no other process, no waiting. What is left is the
//! engine's bookkeeping per message (accounting, allocation, the type's FIFO,
//! the indexes, the crash records), the figure the data path is tuned by.
//!
//! ```sh
//! cargo bench -p shmq-benches --bench pair
//! ```

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shmq::{GetOptions, Namespace, Selector, IPC_PRIVATE};

fn pair(c: &mut Criterion) {
    let dir = std::path::PathBuf::from(format!("/dev/shm/shmq-bench-pair-{}", std::process::id()));
    let ns = Namespace::open(&dir).expect("namespace");
    let flags = GetOptions::new().create(true).exclusive(true).mode(0o600);
    let q = ns.get(IPC_PRIVATE, flags).expect("queue");
    let mut g = c.benchmark_group("send_recv_pair");
    for size in [8usize, 64, 1024] {
        let text = vec![7u8; size];
        let mut buf = vec![0u8; size];
        g.throughput(Throughput::Elements(1));
        for (name, sel) in [("type", Selector::Type(1)), ("any", Selector::Any)] {
            g.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
                b.iter(|| {
                    q.send(1, &text).unwrap();
                    q.recv(&mut buf, sel).unwrap()
                })
            });
        }
    }
    g.finish();
    let _ = q.remove();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, pair);
criterion_main!(benches);
