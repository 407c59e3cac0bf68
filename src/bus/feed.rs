//! The events a log consumer that is not a read model (the notifier) gets,
//! in position order after its checkpoint: the log itself in embedded mode;
//! in server mode its JetStream durable consumer as the doorbell, and the
//! log as the truth — read at start, to fill any gap, while NATS is
//! unreachable, and whenever the stream is quiet but the log is ahead. A
//! batch is acknowledged once the consumer's checkpoint shows it handled.

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
    /// The last message of the batch handed out, and its position: acked
    /// once the checkpoint reaches it.
    unacked: Option<(i64, async_nats::jetstream::Message)>,
}

impl Feed {
    pub fn new(name: &'static str, bus: Option<NatsBus>) -> Self {
        Self {
            name,
            bus,
            durable: None,
            from_log: true,
            unacked: None,
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
        if let Some((position, message)) = self.unacked.take() {
            if checkpoint >= position {
                if let Err(err) = message.ack().await {
                    tracing::debug!(consumer = self.name, error = %err, "ack failed");
                }
            }
            // Not handled: JetStream redelivers it, and the log has it anyway.
        }
        let Some(bus) = self.bus.clone() else {
            let events = self
                .read_log(ctx, checkpoint, max)
                .await
                .unwrap_or_default();
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
            // A read error is not "caught up": stay on the log.
            let Some(events) = self.read_log(ctx, checkpoint, max).await else {
                return Vec::new();
            };
            if !events.is_empty() {
                return events;
            }
            self.from_log = false;
        }
        if !bus.connected() {
            // Disconnected: the log it is, until NATS is back.
            self.durable = None;
            let events = self
                .read_log(ctx, checkpoint, max)
                .await
                .unwrap_or_default();
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
        match nats::fetch(consumer, max, super::workers::DOORBELL).await {
            Ok((mut events, last)) => {
                if events.is_empty() {
                    // Quiet: if the log is ahead anyway, it is the truth.
                    self.from_log = ctx.log.head().await.map_or(true, |head| head > checkpoint);
                    return Vec::new();
                }
                let top = events.iter().map(|e| e.position).max().unwrap_or(0);
                self.unacked = last.map(|message| (top, message));
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
                // Published as stored: decrypted and upcast here.
                match ctx.log.prepare(events).await {
                    Ok(events) => events,
                    Err(err) => {
                        tracing::warn!(consumer = self.name, error = %format!("{err:#}"), "cannot open what JetStream delivered; reading the log");
                        self.from_log = true;
                        Vec::new()
                    }
                }
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
    ) -> Option<Vec<StoredEvent>> {
        match ctx.log.read_after(checkpoint, max as i64).await {
            Ok(events) => Some(events),
            Err(err) => {
                tracing::warn!(consumer = self.name, error = %format!("{err:#}"), "cannot read the log; retrying");
                let _ = tokio::time::timeout(Duration::from_secs(1), nats::stopped(&mut ctx.stop))
                    .await;
                None
            }
        }
    }
}
