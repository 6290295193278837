//! The cell allocator (`engine/src/cell_pool.rs`): no cell handed out twice,
//! none lost, and a stale free (ABA) never frees a cell's next incarnation.
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;
use shmq::model::CellPool;
use shmq_loom_tests::{check, expect_caught, Mutant};

/// Two cells, three parties:
/// - A takes a cell for owner 7, gives it back, publishes the state it held,
///   then takes a cell for owner 7 again and keeps it;
/// - B, like a second recoverer acting on an old record, tries to free A's
///   first cell with the state A published: that free must fail;
/// - C takes and frees cells for owner 9.
///
/// Every holder marks its cell in `held`, so a cell handed out twice trips the
/// swap; at the end every cell is free again.
fn model() {
    let pool = Arc::new(CellPool::new(2));
    let held: Arc<[AtomicBool; 2]> = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
    let published = Arc::new(AtomicU64::new(0));

    let a = {
        let (pool, held, published) = (pool.clone(), held.clone(), published.clone());
        thread::spawn(move || {
            let (i, s) = pool.alloc(7).expect("two cells, at most two holders");
            assert!(
                !held[i as usize].swap(true, Ordering::SeqCst),
                "cell {i} handed out twice"
            );
            held[i as usize].store(false, Ordering::SeqCst);
            assert!(pool.free(i, s));
            published.store(u64::from(i) << 63 | (s & !(1 << 63)), Ordering::Release);
            let (j, s2) = pool.alloc(7).expect("a free cell");
            assert!(
                !held[j as usize].swap(true, Ordering::SeqCst),
                "cell {j} handed out twice"
            );
            thread::yield_now();
            assert_eq!(pool.state(j), s2, "cell {j} freed under its owner (ABA)");
            held[j as usize].store(false, Ordering::SeqCst);
            assert!(pool.free(j, s2));
        })
    };
    let b = {
        let pool = pool.clone();
        thread::spawn(move || {
            let p = loop {
                let p = published.load(Ordering::Acquire);
                if p != 0 {
                    break p;
                }
                thread::yield_now();
            };
            let (i, s) = ((p >> 63) as u32, p & !(1 << 63));
            assert!(!pool.free(i, s), "a stale free succeeded (ABA)");
        })
    };
    if let Some((i, s)) = pool.alloc(9) {
        assert!(
            !held[i as usize].swap(true, Ordering::SeqCst),
            "cell {i} handed out twice"
        );
        held[i as usize].store(false, Ordering::SeqCst);
        assert!(pool.free(i, s));
    }
    a.join().unwrap();
    b.join().unwrap();
    assert_eq!(pool.count_taken(), 0, "a cell was lost");
    let both = [pool.alloc(1), pool.alloc(1)];
    assert!(
        both.iter().all(Option::is_some),
        "a free cell cannot be found again"
    );
}

#[test]
fn cell_pool_hands_out_once_loses_none_and_resists_aba() {
    check(model);
}

#[test]
fn cell_pool_mutant_without_generation_is_caught() {
    expect_caught(Mutant::PoolNoGeneration, model);
}
