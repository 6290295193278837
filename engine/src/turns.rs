//! Which way this thread's operations on a queue go, to guess its next one.
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
//! Per thread, for the queue and slot it used last; a guess only (a wrong
//! one costs a prefetch), so a thread moving between queues just guesses
//! "no" on its first receive on each.

use crate::layout::QueueHeader;
use std::cell::Cell;

/// This thread's latest operation: the queue (its header's address), the
/// slot, and whether it was a send. `(0, 0, false)`: none yet.
type Latest = (usize, usize, bool);

std::thread_local! {
    static LATEST: Cell<Latest> = const { Cell::new((0, 0, false)) };
}

/// Records a send on the queue of `header` from `slot`.
pub(crate) fn sent(header: &QueueHeader, slot: usize) {
    LATEST.with(|c| c.set((address(header), slot, true)));
}

/// Records a receive on the queue of `header` from `slot`; returns whether
/// this thread's previous operation was a send there, so that a send is
/// likely to follow.
pub(crate) fn received(header: &QueueHeader, slot: usize) -> bool {
    let queue = address(header);
    LATEST.with(|c| c.replace((queue, slot, false)) == (queue, slot, true))
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
}
