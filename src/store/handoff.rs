//! What this process's writer committed, handed over as stored (personal
//! fields encrypted) to the relay and the embedded fan-out, so that they
//! need not read back from the log what was just written. Only a batch
//! whose every unit committed is handed over, once its COMMIT is
//! acknowledged, and before any of its commands is answered.
//!
//! The log stays the truth: a receiver takes handed events only when they
//! follow on from its position without a gap. Positions are given in
//! commit order (the position counter is held until COMMIT), so when a
//! batch is handed over every lower position is committed; a gap (another
//! process's appends, a batch written unit by unit, a receiver that fell
//! behind) means: read the log.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast;

use annals_domain::StoredEvent;

/// One committed batch, in position order.
pub type Handed = Arc<Vec<StoredEvent>>;

/// Batches kept for a receiver that is busy: one that falls further behind
/// reads the log.
const CAPACITY: usize = 64;

/// The writer's side; receivers `subscribe`.
#[derive(Clone, Debug)]
pub struct Handoff {
    sender: broadcast::Sender<Handed>,
}

impl Default for Handoff {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Handoff {
    pub(super) fn send(&self, mut events: Vec<StoredEvent>) {
        if events.is_empty() {
            return;
        }
        events.sort_by_key(|e| e.position);
        // Nobody listening (no relay, no embedded fan-out): nothing to do.
        let _ = self.sender.send(Arc::new(events));
    }

    /// A receiver of the batches committed from now on.
    pub fn subscribe(&self) -> Taker {
        Taker {
            receiver: self.sender.subscribe(),
            pending: VecDeque::new(),
            lagged: false,
        }
    }
}

/// One receiver of handed batches.
pub struct Taker {
    receiver: broadcast::Receiver<Handed>,
    pending: VecDeque<Handed>,
    lagged: bool,
}

impl Taker {
    /// Waits for the next batch (kept for `after`); never returns once the
    /// writer is gone.
    pub async fn wait(&mut self) {
        match self.receiver.recv().await {
            Ok(batch) => self.pending.push_back(batch),
            Err(broadcast::error::RecvError::Lagged(_)) => self.lagged = true,
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }

    /// The handed events with a position above `after`: `Some` when they
    /// follow on from it without a gap (empty when nothing new was handed),
    /// `None` when the log must be read instead. Takes every batch handed
    /// so far.
    pub fn after(&mut self, after: i64) -> Option<Vec<StoredEvent>> {
        loop {
            match self.receiver.try_recv() {
                Ok(batch) => self.pending.push_back(batch),
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.lagged = true,
                Err(_) => break,
            }
        }
        let lagged = std::mem::take(&mut self.lagged);
        let mut events = Vec::new();
        let mut next = after + 1;
        let mut gap = lagged;
        for batch in self.pending.drain(..) {
            for event in batch.iter() {
                if event.position < next {
                    continue;
                }
                if event.position != next {
                    gap = true;
                }
                next = event.position + 1;
                events.push(event.clone());
            }
        }
        (!gap).then_some(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::event_at as event;

    fn positions(events: Option<Vec<StoredEvent>>) -> Option<Vec<i64>> {
        events.map(|e| e.iter().map(|e| e.position).collect())
    }

    #[test]
    fn handed_events_that_follow_on_are_taken_and_a_gap_means_the_log() {
        let handoff = Handoff::default();
        let mut taker = handoff.subscribe();
        assert_eq!(positions(taker.after(0)), Some(vec![]), "nothing handed");
        handoff.send(vec![event(2), event(1)]);
        handoff.send(vec![event(3)]);
        assert_eq!(positions(taker.after(0)), Some(vec![1, 2, 3]));
        // Already past some of them (read from the log meanwhile).
        handoff.send(vec![event(4), event(5)]);
        assert_eq!(positions(taker.after(4)), Some(vec![5]));
        // Position 6 was another process's append: not handed.
        handoff.send(vec![event(7)]);
        assert_eq!(positions(taker.after(5)), None);
        assert_eq!(positions(taker.after(7)), Some(vec![]), "the gap is gone");
    }

    #[test]
    fn a_taker_that_fell_behind_reads_the_log() {
        let handoff = Handoff::default();
        let mut taker = handoff.subscribe();
        for position in 1..=(CAPACITY as i64 + 1) {
            handoff.send(vec![event(position)]);
        }
        assert_eq!(positions(taker.after(0)), None);
        handoff.send(vec![event(CAPACITY as i64 + 2)]);
        assert_eq!(
            positions(taker.after(CAPACITY as i64 + 1)),
            Some(vec![CAPACITY as i64 + 2])
        );
    }
}
