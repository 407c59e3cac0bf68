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
            poll_due: true,
        }
    }
}

/// One receiver of handed batches.
pub struct Taker {
    receiver: broadcast::Receiver<Handed>,
    pending: VecDeque<Handed>,
    lagged: bool,
    /// The log is to be read for appends that are not handed over (other
    /// processes'): at first, and whenever the receiver's poll comes round.
    poll_due: bool,
}

/// What a receiver at a position does next.
#[derive(Debug)]
pub enum Next {
    /// Publish or apply these: they follow on from the position.
    Handed(Vec<StoredEvent>),
    /// Read the log from the position (then `log_read`).
    ReadLog,
    /// Nothing new: wait (`Taker::wait`, or the receiver's poll).
    Wait,
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

    /// What to do at `position`, given `appended`, the latest position
    /// this process reported committed: the handed events that follow on;
    /// else the log, when there was a gap, an append of this process was
    /// not handed over (written unit by unit), or a poll is due; else wait.
    pub fn next(&mut self, position: i64, appended: i64) -> Next {
        match self.after(position) {
            Some(events) if !events.is_empty() => Next::Handed(events),
            Some(_) if !self.poll_due && appended <= position => Next::Wait,
            _ => Next::ReadLog,
        }
    }

    /// The log was read up to its head: no poll is due.
    pub fn log_read(&mut self) {
        self.poll_due = false;
    }

    /// Time to read the log for other processes' appends (and, for the
    /// relay, at the start of a term).
    pub fn poll(&mut self) {
        self.poll_due = true;
    }

    /// The handed events with a position above `after`: `Some` when they
    /// follow on from it without a gap (empty when nothing new was handed),
    /// `None` when the log must be read instead. Takes every batch handed
    /// so far.
    fn after(&mut self, after: i64) -> Option<Vec<StoredEvent>> {
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
    fn a_taker_reads_the_log_at_first_for_unhanded_appends_and_when_polled() {
        let handoff = Handoff::default();
        let mut taker = handoff.subscribe();
        assert!(matches!(taker.next(0, 0), Next::ReadLog), "at first");
        taker.log_read();
        assert!(matches!(taker.next(0, 0), Next::Wait));
        handoff.send(vec![event(1)]);
        assert!(matches!(taker.next(0, 1), Next::Handed(e) if e.len() == 1));
        // Position 2 committed here but not handed over (unit by unit).
        assert!(matches!(taker.next(1, 2), Next::ReadLog));
        assert!(matches!(taker.next(2, 2), Next::Wait));
        taker.poll();
        assert!(matches!(taker.next(2, 2), Next::ReadLog));
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
