//! Magazines in the cell allocator (`engine/src/cell_pool.rs`): cells claimed
//! in bulk into a slot's magazine are still handed out once each, when a heal
//! (recovery, or an allocator that found the bitmap full) races with the
//! magazine's owner, and none is lost once the magazine is given back.
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use shmq::model::CellPool;
use shmq_loom_tests::{check, expect_caught, Mutant};

fn hold(held: &[AtomicBool; 2], i: u32) {
    assert!(
        !held[i as usize].swap(true, Ordering::SeqCst),
        "cell {i} handed out twice"
    );
}

/// Two cells, two allocators:
/// - A takes a cell through its magazine (claiming both cells), frees it,
///   takes another through the magazine, frees it and gives the magazine back;
/// - B finds the bitmap full (A's claim), so its allocation heals A's claimed
///   cells and takes one of them, then frees it.
///
/// Every holder marks its cell in `held`; at the end every cell is free and
/// allocable again.
fn model() {
    let pool = Arc::new(CellPool::new(2));
    let held: Arc<[AtomicBool; 2]> = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);

    let a = {
        let (pool, held) = (pool.clone(), held.clone());
        thread::spawn(move || {
            let mag = pool.magazine();
            for _ in 0..2 {
                if let Some((i, s)) = pool.alloc_from(&mag, 7) {
                    hold(&held, i);
                    thread::yield_now();
                    held[i as usize].store(false, Ordering::SeqCst);
                    assert!(pool.free(i, s), "cell {i} freed under its owner");
                }
            }
            pool.give_back(&mag);
        })
    };
    let mag = pool.magazine();
    if let Some((i, s)) = pool.alloc_from(&mag, 9) {
        hold(&held, i);
        thread::yield_now();
        held[i as usize].store(false, Ordering::SeqCst);
        assert!(pool.free(i, s), "cell {i} freed under its owner");
    }
    pool.give_back(&mag);
    a.join().unwrap();
    assert_eq!(pool.count_taken(), 0, "a cell was lost");
    let both = [pool.alloc(1), pool.alloc(1)];
    assert!(
        both.iter().all(Option::is_some),
        "a free cell cannot be found again"
    );
}

#[test]
fn magazine_cells_are_handed_out_once_and_none_is_lost() {
    check(model);
}

#[test]
fn magazine_mutant_taking_without_cas_is_caught() {
    expect_caught(Mutant::MagazineTakeWithoutCas, model);
}
