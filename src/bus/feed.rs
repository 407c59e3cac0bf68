//! The events a log consumer that is not a read model (the notifier) gets,
//! in position order after its checkpoint: the log itself in embedded mode;
//! in server mode its JetStream durable consumer, with the log read at
//! start, to fill any gap, and while NATS is unreachable. The checkpoint,
//! not the acknowledgement, says what was handled, so a batch is
//! acknowledged as soon as it is fetched: anything not handled after that
//! is found again in the log.

use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use tokio::sync::watch;

use annals_domain::StoredEvent;

use super::nats::{self, NatsBus};
use super::WorkerContext;

pub struct Feed {
    name: &'static str,
    bus: Option<NatsBus>,
    durable: Option<PullConsumer>,
    /// Read the log before the next fetch from the stream.
    from_log: bool,
}

impl Feed {
    pub fn new(name: &'static str, bus: Option<NatsBus>) -> Self {
        Self {
            name,
            bus,
            durable: None,
            from_log: true,
        }
    }

    /// The next events after `checkpoint`, oldest first and without gaps;
    /// empty after a bounded wait when there is nothing new.
    pub async fn next(
        &mut self,
        ctx: &mut WorkerContext,
        checkpoint: i64,
        max: usize,
    ) -> Vec<StoredEvent> {
        let Some(bus) = self.bus.clone() else {
            let events = self.read_log(ctx, checkpoint, max).await;
            if events.is_empty() {
                tokio::select! {
                    _ = ctx.appended.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = nats::stopped(&mut ctx.stop) => {}
                }
            }
            return events;
        };
        if self.from_log {
            let events = self.read_log(ctx, checkpoint, max).await;
            if !events.is_empty() {
                return events;
            }
            self.from_log = false;
        }
        if !bus.connected() {
            // Disconnected: the log it is, until NATS is back.
            self.durable = None;
            let events = self.read_log(ctx, checkpoint, max).await;
            if events.is_empty() {
                return self.fall_back(&mut ctx.stop).await;
            }
            return events;
        }
        if self.durable.is_none() {
            match bus.durable(self.name).await {
                Ok(consumer) => self.durable = Some(consumer),
                Err(err) => {
                    tracing::warn!(consumer = self.name, error = %format!("{err:#}"), "JetStream unavailable; reading the log meanwhile");
                    return self.fall_back(&mut ctx.stop).await;
                }
            }
        }
        let consumer = self.durable.as_ref().expect("durable consumer");
        match nats::fetch(consumer, max, Duration::from_secs(1)).await {
            Ok((mut events, last)) => {
                if let Some(message) = last {
                    if let Err(err) = message.ack().await {
                        tracing::debug!(consumer = self.name, error = %err, "ack failed");
                    }
                }
                events.sort_by_key(|e| e.position);
                events.dedup_by_key(|e| e.position);
                events.retain(|e| e.position > checkpoint);
                let contiguous = events
                    .iter()
                    .zip(checkpoint + 1..)
                    .all(|(e, expected)| e.position == expected);
                if !contiguous {
                    // Something was missed (or is not published yet): the
                    // log has it.
                    self.from_log = true;
                    events.clear();
                }
                events
            }
            Err(err) => {
                tracing::warn!(consumer = self.name, error = %format!("{err:#}"), "JetStream fetch failed; reading the log meanwhile");
                self.durable = None;
                self.fall_back(&mut ctx.stop).await
            }
        }
    }

    async fn fall_back(&mut self, stop: &mut watch::Receiver<bool>) -> Vec<StoredEvent> {
        self.from_log = true;
        let _ = tokio::time::timeout(Duration::from_secs(1), nats::stopped(stop)).await;
        Vec::new()
    }

    async fn read_log(
        &self,
        ctx: &mut WorkerContext,
        checkpoint: i64,
        max: usize,
    ) -> Vec<StoredEvent> {
        match ctx.log.read_after(checkpoint, max as i64).await {
            Ok(events) => events,
            Err(err) => {
                tracing::warn!(consumer = self.name, error = %format!("{err:#}"), "cannot read the log; retrying");
                let _ = tokio::time::timeout(Duration::from_secs(1), nats::stopped(&mut ctx.stop))
                    .await;
                Vec::new()
            }
        }
    }
}
