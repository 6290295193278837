//! Which way this thread's operations on a queue go, to guess its next one
//! and where its peer reads what it writes.
//!
//! A thread that answers each message it receives with one it sends (a
//! round trip's turn, a server's reply, a client's next request) writes the
//! senders' lines right after its receive: the `sent` accounting word and
//! the send stamp, both written last by its peer on the other side of the
//! round trip. Once its previous operation on a queue was a send, a receive
//! there starts fetching those lines for writing while it finishes (see
//! `QueueState::complete_receive`), so that the send finds them in its own
//! cache instead of waiting for them behind the receive's own misses. A
//! thread that only receives (a stream's consumer) never does: fetching the
//! senders' lines would take them from a sender that is writing them.
//!
//! And once it has waited for a message with every running peer on another
//! CPU, its next send hands what it wrote for the receiver to the shared
//! cache (see [`sent`]).
//!
//! Per thread, for the queue and slot it used last; guesses only (a wrong
//! one costs a prefetch or a hint), so a thread moving between queues just
//! guesses "no" on its first operation on each.

use crate::layout::QueueHeader;
use std::cell::Cell;

/// What this thread last did on the queue and slot it used last (one
/// record, so that an operation reads and writes one thread-local word pair).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Turn {
    /// The queue (its header's address) and slot; `(0, 0)`: none yet.
    key: (usize, usize),
    /// Its latest operation there was a send.
    sent_last: bool,
    /// It waited there, spinning, for a message while every running peer
    /// was on another CPU, and has not sent since.
    waited_across: bool,
}

std::thread_local! {
    static TURN: Cell<Turn> = const {
        Cell::new(Turn { key: (0, 0), sent_last: false, waited_across: false })
    };
}

/// Replaces this thread's record for the queue of `header` and `slot` by
/// `next` of it, and returns it as it was: its own record, or a fresh one
/// if it last used another queue or slot.
fn record(header: &QueueHeader, slot: usize, next: impl FnOnce(Turn) -> Turn) -> Turn {
    let key = (address(header), slot);
    TURN.with(|c| {
        let t = c.get();
        let was = if t.key == key {
            t
        } else {
            Turn {
                key,
                sent_last: false,
                waited_across: false,
            }
        };
        c.set(next(was));
        was
    })
}

/// Records a spinning wait on the queue of `header` from `slot`:
/// `across` if it waited for a message with every running peer on another
/// CPU (a wait for space, or with a peer here, clears the record).
pub(crate) fn waited(header: &QueueHeader, slot: usize, across: bool) {
    record(header, slot, |t| Turn {
        waited_across: across,
        ..t
    });
}

/// Records a send on the queue of `header` from `slot`, once it is linked;
/// returns whether it is the first since this thread waited there for a
/// message with its peers on other CPUs: a turn of a round trip, or a reply
/// to a request, whose sender then hands the lines it wrote for its peer to
/// the shared cache (see `sync::demote`). Any other send streams: its
/// receiver is behind it, and handing over only made the sender fetch back
/// lines it writes again (a 1 -> 1 stream of 64 B messages fell from
/// 7.6-8.0 M to 1.5-1.8 M msg/s when its sender handed over too), so only
/// the first send after a wait hands over.
pub(crate) fn sent(header: &QueueHeader, slot: usize) -> bool {
    record(header, slot, |t| Turn {
        sent_last: true,
        waited_across: false,
        ..t
    })
    .waited_across
}

/// Records a receive on the queue of `header` from `slot`; returns whether
/// this thread's previous operation was a send there, so that a send is
/// likely to follow.
pub(crate) fn received(header: &QueueHeader, slot: usize) -> bool {
    record(header, slot, |t| Turn {
        sent_last: false,
        ..t
    })
    .sent_last
}

fn address(header: &QueueHeader) -> usize {
    header as *const QueueHeader as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receive_after_a_send_on_the_same_queue_expects_a_send() {
        let (q, r) = (
            crate::layout::zeroed::header(),
            crate::layout::zeroed::header(),
        );
        assert!(!received(&q, 3), "nothing before");
        sent(&q, 3);
        assert!(received(&q, 3), "a turn: send, then receive");
        assert!(!received(&q, 3), "a stream of receives");
        sent(&q, 3);
        assert!(!received(&q, 4), "another slot");
        sent(&q, 3);
        assert!(!received(&r, 3), "another queue");
    }

    #[test]
    fn only_the_first_send_after_a_wait_across_hands_over() {
        let (q, r) = (
            crate::layout::zeroed::header(),
            crate::layout::zeroed::header(),
        );
        assert!(!sent(&q, 1), "no wait yet");
        waited(&q, 1, true);
        assert!(!sent(&r, 1), "another queue");
        waited(&q, 1, true);
        assert!(!received(&q, 1), "a receive in between keeps it");
        assert!(sent(&q, 1));
        assert!(!sent(&q, 1), "once per wait");
        waited(&q, 1, true);
        waited(&q, 1, false);
        assert!(!sent(&q, 1), "a later wait with a peer here");
    }
}
