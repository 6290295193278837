//! The cell allocator (`engine/src/cell_pool.rs`): no cell handed out twice,
//! none lost, and a stale free (ABA) never frees a cell's next incarnation;
//! with magazines too: cells claimed in bulk into a slot's magazine are still
//! handed out once each when a heal (recovery, or an allocator that found the
//! bitmap full) races with the magazine's owner, and none is lost once the
//! magazine is given back; and with free batches: cells freed with their
//! bits left set are still handed out once each, and are found again by a
//! plain allocation (no heal) once their batch is flushed.
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
    assert_all_free_again(&pool);
}

/// Every cell of the two-cell `pool` is free, and allocators find both.
fn assert_all_free_again(pool: &CellPool) {
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

/// Holds cell `i` (state `s`) for a moment, then frees it.
fn use_once(pool: &CellPool, held: &[AtomicBool; 2], i: u32, s: u64) {
    assert!(
        !held[i as usize].swap(true, Ordering::SeqCst),
        "cell {i} handed out twice"
    );
    thread::yield_now();
    held[i as usize].store(false, Ordering::SeqCst);
    assert!(pool.free(i, s), "cell {i} freed under its owner");
}

/// Two cells, two allocators:
/// - A takes a cell through its magazine (claiming both cells), frees it,
///   takes another through the magazine, frees it and gives the magazine back;
/// - B finds the bitmap full (A's claim), so its allocation heals A's claimed
///   cells and takes one of them, then frees it.
fn magazine_model() {
    let pool = Arc::new(CellPool::new(2));
    let held: Arc<[AtomicBool; 2]> = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
    let a = {
        let (pool, held) = (pool.clone(), held.clone());
        thread::spawn(move || {
            let mag = pool.magazine();
            for _ in 0..2 {
                if let Some((i, s)) = pool.alloc_from(&mag, 7) {
                    use_once(&pool, &held, i, s);
                }
            }
            pool.give_back(&mag);
        })
    };
    let mag = pool.magazine();
    if let Some((i, s)) = pool.alloc_from(&mag, 9) {
        use_once(&pool, &held, i, s);
    }
    pool.give_back(&mag);
    a.join().unwrap();
    assert_all_free_again(&pool);
}

#[test]
fn magazine_cells_are_handed_out_once_and_none_is_lost() {
    check(magazine_model);
}

#[test]
fn magazine_mutant_taking_without_cas_is_caught() {
    expect_caught(Mutant::MagazineTakeWithoutCas, magazine_model);
}

/// Two cells, two parties that each take cells from their free batch first,
/// then through a magazine, and free them into their batch:
/// - A takes a cell (its magazine claims both), frees it into its batch,
///   takes it again from there, frees it again, then flushes and gives back;
/// - B takes a cell (finding the bitmap full, its allocation heals the cells
///   A's magazine or batch hides, and may take the one in A's batch), frees
///   it into its batch, and flushes.
///
/// A cell handed out twice trips `held`; once both flushed, a plain
/// allocation, which never heals, must find both cells.
fn free_batch_model() {
    let pool = Arc::new(CellPool::new(2));
    let held: Arc<[AtomicBool; 2]> = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
    let a = {
        let (pool, held) = (pool.clone(), held.clone());
        thread::spawn(move || {
            let (mag, batch) = (pool.magazine(), pool.free_batch());
            for _ in 0..2 {
                if let Some((i, s)) = pool.alloc_reusing(&batch, &mag, 7) {
                    hold_then_free_into(&pool, &held, i, s, &batch);
                }
            }
            pool.flush(&batch);
            pool.give_back(&mag);
        })
    };
    take_one_through_a_batch(&pool, &held, 9);
    a.join().unwrap();
    assert_all_free_again(&pool);
}

/// One allocation for `owner` through a fresh free batch and magazine,
/// held, freed into the batch; then the batch flushed and the magazine
/// given back.
fn take_one_through_a_batch(pool: &CellPool, held: &[AtomicBool; 2], owner: u32) {
    let (mag, batch) = (pool.magazine(), pool.free_batch());
    if let Some((i, s)) = pool.alloc_reusing(&batch, &mag, owner) {
        hold_then_free_into(pool, held, i, s, &batch);
    }
    pool.flush(&batch);
    pool.give_back(&mag);
}

/// [`use_once`], freeing into `batch`.
fn hold_then_free_into(
    pool: &CellPool,
    held: &[AtomicBool; 2],
    i: u32,
    s: u64,
    batch: &shmq::model::FreeBatch,
) {
    assert!(
        !held[i as usize].swap(true, Ordering::SeqCst),
        "cell {i} handed out twice"
    );
    thread::yield_now();
    held[i as usize].store(false, Ordering::SeqCst);
    assert!(
        pool.free_into(i, s, batch),
        "cell {i} freed under its owner"
    );
}

#[test]
fn batched_frees_hand_cells_out_once_and_flushes_lose_none() {
    check(free_batch_model);
}

#[test]
fn free_batch_mutant_flushing_without_clearing_bits_is_caught() {
    expect_caught(Mutant::FreeBatchFlushKeepsBits, free_batch_model);
}

/// One cell: A takes it, frees it into its batch and takes it back from
/// there, while B, starting once the cell is in A's batch, finds no free
/// bit, heals (which makes the cell visible again) and may take it: only the
/// state CAS keeps the two apart. (The two-cell model above reuses too, but
/// reaches this race only beyond two preemptions: B has to be stopped
/// before its heal until A's free, which the flag does here.)
fn free_batch_reuse_model() {
    let pool = Arc::new(CellPool::new(1));
    let held: Arc<[AtomicBool; 2]> = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
    let in_batch = Arc::new(AtomicBool::new(false));
    let a = {
        let (pool, held, in_batch) = (pool.clone(), held.clone(), in_batch.clone());
        thread::spawn(move || {
            let (mag, batch) = (pool.magazine(), pool.free_batch());
            if let Some((i, s)) = pool.alloc(7) {
                hold_then_free_into(&pool, &held, i, s, &batch);
                in_batch.store(true, Ordering::SeqCst);
                if let Some((i, s)) = pool.alloc_reusing(&batch, &mag, 7) {
                    hold_then_free_into(&pool, &held, i, s, &batch);
                }
            }
            pool.flush(&batch);
            pool.give_back(&mag);
        })
    };
    while !in_batch.load(Ordering::SeqCst) {
        thread::yield_now();
    }
    take_one_through_a_batch(&pool, &held, 9);
    a.join().unwrap();
    assert_eq!(pool.count_taken(), 0, "the cell was lost");
    assert!(
        pool.alloc(1).is_some(),
        "the free cell cannot be found again"
    );
}

#[test]
fn a_cell_taken_back_from_a_free_batch_is_handed_out_once() {
    check(free_batch_reuse_model);
}

#[test]
fn free_batch_mutant_reusing_without_cas_is_caught() {
    expect_caught(Mutant::FreeBatchReuseWithoutCas, free_batch_reuse_model);
}
