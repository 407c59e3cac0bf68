//! The sender of scheduled SMS and WhatsApp messages: one process at a
//! time (the `messages` lease) looks every second for what is due and
//! posts it to the provider's webhook — signed, with the message id as
//! `Idempotency-Key` on every try — or, without a webhook, writes it to the
//! outbox directory. Each outcome is an event on the message (sent, a
//! failed try with when to try again, failed), so the tries go on across
//! restarts and processes. Telegram messages go through the notifier's
//! ledger (`notifier::schedule`); with the notifier off they fail at once.
//!
//! Exactly once: a message is sent only while it is `scheduled`, by the
//! process holding the lease; a process that dies between the provider's
//! answer and recording it leaves the message `scheduled`, and the next
//! holder sends it again with the same `Idempotency-Key`, which the
//! provider uses to drop the repeat.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;

use annals_domain::message::{Channel, MessageCommand, MessageStatus, ScheduledMessage};
use annals_domain::{Actor, EventMetadata};
use annals_projections::billing::queries;
use annals_projections::marketing::instant;

use crate::app::{CommandBus, CommandContext};
use crate::bus::workers::Lease;
use crate::bus::WorkerContext;
use crate::config::MessageWebhook;
use crate::platform::Platform;

const LEASE: &str = "messages";
/// Another process takes over within this after the holder stops.
const LEASE_TTL: Duration = Duration::from_secs(15);
/// How often what is due is looked for.
const TICK: Duration = Duration::from_secs(1);
/// The longest a provider may take to answer one try.
const TRY_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest pause between two tries.
const BACKOFF_CAP: Duration = Duration::from_secs(20);

/// The pause after failed try number `attempt` (1, 2, 4, ... s, at most 20).
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(5)).min(BACKOFF_CAP)
}

/// What the provider receives (the raw body is what is signed).
#[derive(Serialize)]
struct Outgoing<'a> {
    message_id: Uuid,
    channel: &'a str,
    to: &'a str,
    text: &'a str,
    scheduled_at: DateTime<Utc>,
}

/// `sha256=<hex of HMAC-SHA256(body, secret)>`.
pub fn signature(body: &[u8], secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// How one try went.
enum Outcome {
    Taken(String),
    /// May pass (5xx, timeout, no connection): try again.
    Retry(String),
    /// Will not pass (4xx).
    Refused(String),
}

struct Sender {
    pool: sqlx::AnyPool,
    messages: CommandBus<ScheduledMessage>,
    webhook: Option<MessageWebhook>,
    outbox: std::path::PathBuf,
    max_attempts: u32,
    telegram_on: bool,
    http: reqwest::Client,
    holder: String,
}

fn system() -> CommandContext {
    CommandContext::new(EventMetadata::for_command(Actor::System))
}

impl Sender {
    async fn post(&self, webhook: &MessageWebhook, body: Vec<u8>, id: Uuid) -> Outcome {
        let sent = self
            .http
            .post(webhook.url.clone())
            .header("content-type", "application/json")
            .header("x-annals-signature", signature(&body, &webhook.secret.0))
            .header("idempotency-key", id.to_string())
            .body(body)
            .send()
            .await;
        match sent {
            Err(err) => Outcome::Retry(format!("no answer: {err}")),
            Ok(response) => {
                let status = response.status();
                let text: String = response
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(500)
                    .collect();
                let answer = format!("{} {text}", status.as_u16()).trim().to_string();
                if status.is_success() {
                    Outcome::Taken(answer)
                } else if status.is_server_error() || status.as_u16() == 429 {
                    Outcome::Retry(answer)
                } else {
                    Outcome::Refused(answer)
                }
            }
        }
    }

    async fn write_outbox(&self, id: Uuid, body: &[u8]) -> Result<()> {
        tokio::fs::create_dir_all(&self.outbox).await?;
        let path = self.outbox.join(format!("{id}.json"));
        let temp = self.outbox.join(format!(".{id}.json.part"));
        tokio::fs::write(&temp, body).await?;
        tokio::fs::rename(&temp, &path).await?;
        Ok(())
    }

    /// Sends one due message and records how it went.
    async fn send(&self, id: Uuid, now: DateTime<Utc>) -> Result<()> {
        let (message, _) = self.messages.load(&id.to_string()).await?;
        let (Some(plan), Some(due)) = (&message.plan, message.due_at()) else {
            return Ok(());
        };
        if message.status != MessageStatus::Scheduled || due > now {
            return Ok(());
        }
        let command = if plan.channel == Channel::Telegram {
            if self.telegram_on {
                return Ok(());
            }
            MessageCommand::Failed {
                answer: "the Telegram notifier is off".into(),
            }
        } else {
            let body = serde_json::to_vec(&Outgoing {
                message_id: id,
                channel: plan.channel.as_str(),
                to: &plan.to,
                text: &plan.content,
                scheduled_at: plan.scheduled_at,
            })?;
            let outcome = match &self.webhook {
                Some(webhook) => self.post(webhook, body, id).await,
                None => match self.write_outbox(id, &body).await {
                    Ok(()) => Outcome::Taken("written to the outbox".into()),
                    Err(err) => Outcome::Retry(format!("outbox: {err}")),
                },
            };
            let attempt = message.attempts + 1;
            match outcome {
                Outcome::Taken(answer) => MessageCommand::Sent { answer },
                Outcome::Refused(answer) => MessageCommand::Failed { answer },
                Outcome::Retry(answer) if attempt >= self.max_attempts => {
                    MessageCommand::Failed { answer }
                }
                Outcome::Retry(answer) => MessageCommand::AttemptFailed {
                    answer,
                    retry_at: Utc::now()
                        + chrono::Duration::from_std(backoff(attempt)).unwrap_or_default(),
                },
            }
        };
        if let Err(err) = self
            .messages
            .execute(&system(), &id.to_string(), command)
            .await
        {
            // Cancelled meanwhile, or the database is away: looked at again.
            tracing::warn!(message = %id, error = %err, "message outcome not recorded");
        }
        Ok(())
    }

    async fn tick(&self) -> Result<()> {
        let now = Utc::now();
        // Telegram's are the notifier's, unless it is off.
        let channels: &[&str] = if self.telegram_on {
            &["sms", "whatsapp"]
        } else {
            &["sms", "whatsapp", "telegram"]
        };
        let due = queries::due_messages(&self.pool, &instant(now), channels, 50)
            .await
            .context("looking for due messages")?;
        for id in due {
            self.send(id, now).await?;
        }
        Ok(())
    }
}

/// Runs the sender until the process stops.
pub async fn run_sender(platform: Arc<Platform>, mut ctx: WorkerContext) -> Result<()> {
    let settings = &platform.settings;
    let sender = Sender {
        pool: platform.db.any.clone(),
        messages: platform.command_bus(),
        webhook: settings.message_webhook.clone(),
        outbox: settings.data_dir.join("message-outbox"),
        max_attempts: settings.message_max_attempts,
        telegram_on: settings.telegram.is_some(),
        http: reqwest::Client::builder()
            .timeout(TRY_TIMEOUT)
            .build()
            .context("an HTTP client")?,
        holder: format!("{}-{}", std::process::id(), Uuid::now_v7()),
    };
    while !*ctx.stop.borrow() {
        let held = Lease::acquire(&sender.pool, LEASE, &sender.holder, LEASE_TTL)
            .await
            .is_ok_and(|epoch| epoch.is_some());
        if held {
            if let Err(err) = sender.tick().await {
                tracing::warn!(error = %format!("{err:#}"), "message sender paused");
            }
        }
        let _ = tokio::time::timeout(TICK, crate::bus::nats::stopped(&mut ctx.stop)).await;
    }
    let _ = Lease::release(&sender.pool, LEASE, &sender.holder).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tries_back_off_doubling_up_to_twenty_seconds() {
        let pauses: Vec<u64> = (1..=7).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 20, 20]);
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_raw_body() {
        // RFC 4231, test case 2.
        let expected = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(signature(b"what do ya want for nothing?", "Jefe"), expected);
    }
}
