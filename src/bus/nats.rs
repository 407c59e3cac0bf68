//! Server-mode fan-out: one relay (the lease holder among all processes)
//! publishes the log in order to a JetStream stream, with the event id as
//! `Nats-Msg-Id` so re-publishes are dropped by JetStream; consumers read
//! through durable pull consumers and fill any gap from the log itself.

use std::time::Duration;

use anyhow::{Context, Result};
use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, stream};
use async_nats::HeaderMap;
use futures::StreamExt;
use tokio::sync::watch;

use annals_domain::StoredEvent;

use crate::config::NatsConfig;

/// Header carrying the global position of a published event.
pub const POSITION_HEADER: &str = "Annals-Position";

#[derive(Clone)]
pub struct NatsBus {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub prefix: String,
    pub stream_name: String,
}

impl NatsBus {
    /// Connects (retrying in the background if NATS is not up yet) and
    /// makes sure the stream exists.
    pub async fn connect(config: &NatsConfig) -> Result<Self> {
        let client = async_nats::ConnectOptions::new()
            .name("annals")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Disconnected => tracing::warn!("NATS disconnected"),
                    async_nats::Event::Connected => tracing::info!("NATS connected"),
                    other => tracing::info!(event = %other, "NATS event"),
                }
            })
            .connect(&config.url)
            .await
            .context("NATS_URL: cannot connect")?;
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(3))
            .build(client.clone());
        let stream_name = format!("{}_EVENTS", config.prefix.to_uppercase().replace('-', "_"));
        Ok(Self {
            client,
            js,
            prefix: config.prefix.clone(),
            stream_name,
        })
    }

    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    pub async fn ensure_stream(&self) -> Result<stream::Stream> {
        self.js
            .get_or_create_stream(stream::Config {
                name: self.stream_name.clone(),
                subjects: vec![format!("{}.events.>", self.prefix)],
                // Long enough to cover a relay restart re-publishing what it
                // sent but had not checkpointed yet.
                duplicate_window: Duration::from_secs(600),
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .with_context(|| format!("creating JetStream stream {}", self.stream_name))
    }

    pub fn subject(&self, event: &StoredEvent) -> String {
        format!(
            "{}.events.{}.{}",
            self.prefix,
            subject_token(&event.aggregate_type),
            subject_token(&event.aggregate_id)
        )
    }

    /// Publishes events in order and waits for every acknowledgement.
    pub async fn publish(&self, events: &[StoredEvent]) -> Result<()> {
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let mut headers = HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                event.event_id.to_string().as_str(),
            );
            headers.insert(POSITION_HEADER, event.position.to_string().as_str());
            let body = serde_json::to_vec(event)?;
            let ack = self
                .js
                .publish_with_headers(self.subject(event), headers, body.into())
                .await
                .context("publishing to JetStream")?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await
                .context("waiting for a JetStream acknowledgement")?;
        }
        Ok(())
    }

    /// The durable pull consumer of one log consumer.
    pub async fn durable(&self, name: &str) -> Result<jetstream::consumer::PullConsumer> {
        let stream = self.ensure_stream().await?;
        let durable = format!("{}-{}", self.prefix, subject_token(name));
        stream
            .get_or_create_consumer(
                &durable,
                pull::Config {
                    durable_name: Some(durable.clone()),
                    // Acknowledging the last message of a batch acknowledges
                    // the batch: one round trip instead of one per event.
                    ack_policy: AckPolicy::All,
                    ack_wait: Duration::from_secs(30),
                    max_ack_pending: 10_000,
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("creating durable consumer {durable}"))
    }
}

/// Fetches what a durable consumer has, decoded: at once what is there, or
/// else the first message to arrive within `wait` and whatever came with
/// it. (A plain JetStream batch would wait for `max` messages or the whole
/// `wait`, which is latency for nothing.) Bounded even when NATS is
/// unreachable. The messages are acknowledged by the caller, after use.
pub async fn fetch(
    consumer: &jetstream::consumer::PullConsumer,
    max: usize,
    wait: Duration,
) -> Result<(Vec<StoredEvent>, Option<jetstream::Message>)> {
    tokio::time::timeout(wait + Duration::from_secs(2), async {
        let ready = consumer
            .fetch()
            .max_messages(max)
            .messages()
            .await
            .context("fetching from JetStream")?;
        let (events, last) = decode(ready).await?;
        if last.is_some() {
            return Ok((events, last));
        }
        let first = consumer
            .batch()
            .max_messages(1)
            .expires(wait)
            .messages()
            .await
            .context("waiting on JetStream")?;
        let (mut events, mut last) = decode(first).await?;
        if last.is_some() && max > 1 {
            let more = consumer
                .fetch()
                .max_messages(max - 1)
                .messages()
                .await
                .context("fetching from JetStream")?;
            let (more, more_last) = decode(more).await?;
            events.extend(more);
            last = more_last.or(last);
        }
        Ok((events, last))
    })
    .await
    .context("JetStream did not answer a fetch")?
}

async fn decode(
    mut batch: jetstream::consumer::pull::Batch,
) -> Result<(Vec<StoredEvent>, Option<jetstream::Message>)> {
    let mut events = Vec::new();
    let mut last = None;
    while let Some(message) = batch.next().await {
        let message = message
            .map_err(|e| anyhow::anyhow!(e))
            .context("receiving from JetStream")?;
        match serde_json::from_slice::<StoredEvent>(&message.payload) {
            Ok(event) => events.push(event),
            Err(err) => {
                tracing::warn!(error = %err, subject = %message.subject, "undecodable message skipped; the log fills the gap")
            }
        }
        last = Some(message);
    }
    Ok((events, last))
}

fn subject_token(raw: &str) -> String {
    raw.chars()
        .map(|c| match c {
            '.' | '*' | '>' | ' ' | '\t' | '\r' | '\n' => '_',
            c => c,
        })
        .collect()
}

/// Waits until `stop` turns true (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
