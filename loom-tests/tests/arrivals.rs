//! The arrival index (`engine/src/arrivals.rs`): type-0 receives find the
//! oldest message through a ring of positions, even when a message left
//! behind loses its place in the ring to a sender a lap later (it is kept
//! as a straggler, or, with the stragglers in use, a doubt is raised).
#![cfg(loom)]

use loom::sync::Arc;
use shmq::model::{ArrivalRing, Took};
use shmq_loom_tests::{check, expect_caught, Mutant};

/// A ring of 2 slots. Position 0 stays queued (a type nobody reads),
/// position 1 is taken by a typed receiver. Then A sends position 2, which
/// needs slot 0 again, while B receives with `msgtyp = 0`: B must get
/// position 0, the oldest, whether or not A's record is there yet.
///
/// `sender_first`: B yields before its receive, so that loom starts from the
/// interleaving where A's whole send comes first. Without the yield, once a
/// receive's fast path started at the ring rather than at the position
/// counter A writes, loom (2 preemptions) ran 6 interleavings, all with B's
/// first read before A's send, and no longer caught the mutant below.
fn left_behind_stays_oldest(sender_first: bool) {
    let r = Arc::new(ArrivalRing::new(2, 3));
    assert_eq!(r.send(), 0);
    assert_eq!(r.send(), 1);
    assert!(r.take_at(1));
    let sender = {
        let r = r.clone();
        loom::thread::spawn(move || r.send())
    };
    if sender_first {
        loom::thread::yield_now();
    }
    let got = r.take_oldest();
    assert_eq!(sender.join().unwrap(), 2);
    assert_eq!(got, Took::Message(0), "type 0 takes the oldest message");
    assert_eq!(r.take_oldest(), Took::Message(2));
    assert_eq!(r.take_oldest(), Took::Empty);
}

/// A ring of 2 slots and one straggler entry (loom's size). Positions 0 and
/// 1 stay queued; A sends positions 2 and 3, which take both slots again:
/// position 0 becomes the straggler, position 1 finds the entry in use and
/// raises a doubt. Meanwhile B receives with `msgtyp = 0`: whatever it sees,
/// it gets position 0, and the rest come in order.
/// `sender_first` as in [`left_behind_stays_oldest`].
fn left_behind_beyond_the_stragglers(sender_first: bool) {
    let r = Arc::new(ArrivalRing::new(2, 4));
    assert_eq!(r.send(), 0);
    assert_eq!(r.send(), 1);
    let sender = {
        let r = r.clone();
        loom::thread::spawn(move || (r.send(), r.send()))
    };
    if sender_first {
        loom::thread::yield_now();
    }
    let got = r.take_oldest();
    assert_eq!(sender.join().unwrap(), (2, 3));
    assert_eq!(got, Took::Message(0), "type 0 takes the oldest message");
    for p in 1..4 {
        assert_eq!(r.take_oldest(), Took::Message(p));
    }
    assert_eq!(r.take_oldest(), Took::Empty);
}

/// Two senders race for positions while a type-0 receiver takes twice: it
/// gets each message once, the lower position first when both were there.
fn racing_senders() {
    let r = Arc::new(ArrivalRing::new(2, 2));
    let a = {
        let r = r.clone();
        loom::thread::spawn(move || r.send())
    };
    let b = {
        let r = r.clone();
        loom::thread::spawn(move || r.send())
    };
    let first = r.take_oldest();
    a.join().unwrap();
    b.join().unwrap();
    let rest = [r.take_oldest(), r.take_oldest(), r.take_oldest()];
    assert_eq!(rest[2], Took::Empty, "two messages, two takes");
    let got: Vec<Took> = std::iter::once(first)
        .chain(rest)
        .filter(|t| *t != Took::Empty)
        .collect();
    if first == Took::Empty {
        // Both sends were done before the other takes: oldest first.
        assert_eq!(got, [Took::Message(0), Took::Message(1)]);
    } else {
        assert_eq!(got.len(), 2, "{got:?}");
        assert_ne!(got[0], got[1]);
    }
}

#[test]
fn type_zero_finds_a_message_left_behind_a_lap() {
    check(|| left_behind_stays_oldest(false));
    check(|| left_behind_stays_oldest(true));
}

#[test]
fn type_zero_finds_messages_left_behind_beyond_the_stragglers() {
    check(|| left_behind_beyond_the_stragglers(false));
    check(|| left_behind_beyond_the_stragglers(true));
}

#[test]
fn racing_senders_are_each_received_once() {
    check(racing_senders);
}

#[test]
fn mutant_evicting_silently_is_caught() {
    expect_caught(Mutant::ArrivalsEvictSilently, || {
        left_behind_stays_oldest(true)
    });
}
