//! One feed of new events per process, shared by every projector in it:
//! what the process's writer committed, and the log for the rest (embedded
//! mode), or one ordered JetStream consumer (server mode). Each event is
//! read and decoded once per process instead of once per projector. The feed is a doorbell that
//! carries the events: a projector that finds a gap, falls behind, or hears
//! nothing while the log is ahead reads the log itself, so nothing the feed
//! misses (a NATS outage, a recreated consumer) is lost.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use futures::StreamExt;
use tokio::sync::broadcast;

use annals_domain::StoredEvent;

use super::consumer::BATCH;
use super::nats::{self, NatsBus};
use super::workers::{pause, wait_for_append};
use super::WorkerContext;
use crate::store::Next;

/// Events in position order, without repeats.
pub type Batch = Arc<Vec<StoredEvent>>;

/// Batches kept for a projector that is busy applying; one that falls
/// further behind reads the log instead. A batch is dropped as soon as
/// every projector has taken it, so this bounds only what a lagging one
/// holds up. At 32, projectors that share SQLite's one writer with the
/// commands fell behind the writer's small batches a few times a second
/// under load, and each time read back from the log what the feed had
/// carried (6 % of the embedded server's CPU in a perf profile).
const CAPACITY: usize = 128;

/// The sending side; projectors `subscribe`.
#[derive(Clone)]
pub struct Fanout {
    sender: broadcast::Sender<Batch>,
}

impl Default for Fanout {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Fanout {
    pub fn subscribe(&self) -> broadcast::Receiver<Batch> {
        self.sender.subscribe()
    }

    fn send(&self, source: &'static str, mut events: Vec<StoredEvent>) {
        events.sort_by_key(|e| e.position);
        events.dedup_by_key(|e| e.position);
        if !events.is_empty() {
            metrics::counter!("annals_fanout_events_total", "source" => source)
                .increment(events.len() as u64);
            // No projector listening (all stopped): nothing to do.
            let _ = self.sender.send(Arc::new(events));
        }
    }
}

/// Feeds the process's projectors until it stops; `start`: the log head
/// when the process started (the projectors read the log up to there).
pub async fn run_fanout(fanout: Fanout, start: i64, mut ctx: WorkerContext) -> Result<()> {
    match ctx.nats.clone() {
        None => tail_log(&fanout, start, &mut ctx).await,
        Some(bus) => follow_stream(&fanout, &bus, &mut ctx).await,
    }
    Ok(())
}

/// Embedded mode: what this process's writer commits, handed over (see
/// `store::Handoff`); the log after a gap or an append not handed over, and
/// every second for appends made by other processes (the CLI).
async fn tail_log(fanout: &Fanout, start: i64, ctx: &mut WorkerContext) {
    let mut position = start;
    let mut taker = ctx.handoff.subscribe();
    while !*ctx.stop.borrow() {
        // Appends from here on wake the wait below, even those made while
        // this read is under way.
        let appended = *ctx.appended.borrow_and_update();
        match taker.next(position, appended) {
            Next::Wait => {
                wait_for_append(ctx, &mut taker, Duration::from_secs(1)).await;
                continue;
            }
            // As stored: opened and upcast as a read of the log gives them.
            Next::Handed(events) => match ctx.log.prepare(events).await {
                Ok(events) => {
                    position = events.last().map_or(position, |e| e.position);
                    fanout.send("writer", events);
                    continue;
                }
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "cannot open what the writer handed over; reading the log");
                }
            },
            Next::ReadLog => {}
        }
        match ctx.log.read_after(position, BATCH).await {
            Ok(events) => {
                taker.log_read();
                let full = events.len() == BATCH as usize;
                if let Some(last) = events.last() {
                    position = last.position;
                    fanout.send("log", events);
                }
                if full {
                    continue;
                }
            }
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "fan-out cannot read the log; retrying");
                pause(&mut ctx.stop, Duration::from_secs(1)).await;
                continue;
            }
        }
        wait_for_append(ctx, &mut taker, Duration::from_secs(1)).await;
    }
}

/// Server mode: one ordered (ephemeral, unacknowledged) JetStream consumer.
/// After an error it is recreated from the stream sequence after the last
/// one received.
async fn follow_stream(fanout: &Fanout, bus: &NatsBus, ctx: &mut WorkerContext) {
    // What was published before the process started its projectors read
    // from the log; everything published since comes through here, however
    // late the consumer is created.
    let started = async_nats::datetime::now();
    let mut next_sequence: Option<u64> = None;
    while !*ctx.stop.borrow() {
        if !bus.connected() {
            pause(&mut ctx.stop, Duration::from_millis(200)).await;
            continue;
        }
        let messages = match subscribe(bus, started, next_sequence).await {
            Ok(messages) => messages,
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "JetStream unavailable to the fan-out; projectors read the log meanwhile");
                pause(&mut ctx.stop, Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut chunks = messages.ready_chunks(BATCH as usize);
        loop {
            let chunk = tokio::select! {
                chunk = chunks.next() => chunk,
                _ = nats::stopped(&mut ctx.stop) => return,
            };
            let Some(chunk) = chunk else { break };
            let mut events = Vec::with_capacity(chunk.len());
            let mut failed = None;
            for message in chunk {
                match message {
                    Ok(message) => {
                        if let Ok(info) = message.info() {
                            next_sequence = Some(info.stream_sequence + 1);
                        }
                        match serde_json::from_slice::<StoredEvent>(&message.payload) {
                            Ok(event) => events.push(event),
                            Err(err) => {
                                tracing::warn!(error = %err, subject = %message.subject, "undecodable message skipped; the log fills the gap")
                            }
                        }
                    }
                    Err(err) => failed = Some(err),
                }
            }
            // Published as stored: decrypted and upcast here. Should that
            // fail, the batch is not sent and the projectors, seeing a gap,
            // read the log.
            match ctx.log.prepare(events).await {
                Ok(events) => fanout.send("jetstream", events),
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "cannot open what JetStream delivered");
                }
            }
            if let Some(err) = failed {
                tracing::warn!(error = %err, "the fan-out's JetStream consumer failed; recreating it");
                break;
            }
        }
        pause(&mut ctx.stop, Duration::from_millis(200)).await;
    }
}

async fn subscribe(
    bus: &NatsBus,
    started: async_nats::datetime::DateTime,
    from: Option<u64>,
) -> Result<pull::Ordered> {
    let stream = bus.ensure_stream().await?;
    let deliver_policy = match from {
        Some(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
        None => DeliverPolicy::ByStartTime {
            start_time: started,
        },
    };
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy,
            ..Default::default()
        })
        .await
        .context("creating the fan-out's JetStream consumer")?;
    consumer
        .messages()
        .await
        .context("reading the fan-out's JetStream consumer")
}
