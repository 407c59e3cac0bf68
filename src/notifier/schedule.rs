//! What the notifier sends on the clock rather than on an event: the daily
//! digest to the staff chats and reminders to clients who linked Telegram.
//! Each is a ledger cause (`daily-digest:<date>`,
//! `reminder:<appointment>:<start>`, `renewal:<subscription>:<last day>`),
//! so each message goes out once, across
//! restarts and even when two processes overlap at a hand-over.

use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;
use tokio::sync::watch;

use annals_domain::appointment::Status;
use annals_domain::gym::Subscription;
use annals_domain::notifier_settings::Settings;
use annals_projections::appointments::timestamp;

use super::templates::{Alert, Ref};
use super::Notifier;
use crate::bus::WorkerContext;

/// How often the clock is looked at.
const TICK: Duration = Duration::from_secs(1);
/// How often the subscriptions are looked at for renewal reminders.
const RENEWAL_SCAN: Duration = Duration::from_secs(5);
/// Reminders looked at per tick; the rest wait for the next one.
const REMINDER_BATCH: i64 = 200;

impl Notifier {
    /// Sends what is due at `now`.
    pub async fn tick(&mut self, now: DateTime<Utc>, stop: &watch::Receiver<bool>) -> Result<()> {
        let settings = self.settings().await?;
        let local = now.with_timezone(&self.timezone).naive_local();
        if let Some(day) = settings.digest_due(local) {
            self.daily_digest(day, &settings.staff_chat_ids, stop)
                .await?;
        }
        if settings.reminder_minutes > 0 {
            self.reminders(now, &settings, stop).await?;
        }
        if settings.renewal_reminder_days > 0 && self.renewals_due() {
            self.renewal_reminders(now, &settings, stop).await?;
        }
        self.scheduled_messages(now, stop).await
    }

    /// Customers' scheduled Telegram messages that are due: each through
    /// the ledger (`message:<id>`), then recorded on the message as sent,
    /// or failed with Telegram's refusal.
    async fn scheduled_messages(
        &mut self,
        now: DateTime<Utc>,
        stop: &watch::Receiver<bool>,
    ) -> Result<()> {
        use annals_domain::message::{MessageCommand, MessageStatus};
        let now_text = annals_projections::marketing::instant(now);
        let due = annals_projections::billing::queries::due_messages(
            &self.pool,
            &now_text,
            &["telegram"],
            20,
        )
        .await?;
        for id in due {
            let (message, _) = self.scheduled.load(&id.to_string()).await?;
            let Some(plan) = &message.plan else { continue };
            if message.status != MessageStatus::Scheduled || plan.scheduled_at > now {
                continue;
            }
            let Ok(chat) = plan.to.parse::<i64>() else {
                continue;
            };
            let cause = format!("message:{id}");
            self.deliver(&cause, chat, &plan.content, stop).await?;
            let command = match super::ledger::status(&self.pool, &cause, chat).await? {
                Some((status, _)) if status == "sent" => MessageCommand::Sent {
                    answer: "delivered by Telegram".into(),
                },
                Some((status, error)) if status == "refused" || status == "parked" => {
                    MessageCommand::Failed {
                        answer: error.unwrap_or_else(|| "refused by Telegram".into()),
                    }
                }
                _ => continue,
            };
            let ctx = crate::app::CommandContext::new(annals_domain::EventMetadata::for_command(
                annals_domain::Actor::System,
            ));
            if let Err(err) = self.scheduled.execute(&ctx, &id.to_string(), command).await {
                tracing::warn!(message = %id, error = %err, "message outcome not recorded");
            }
        }
        Ok(())
    }

    /// Whether to look at the subscriptions again (every `RENEWAL_SCAN`).
    fn renewals_due(&self) -> bool {
        let mut scanned = self.renewals_scanned.lock().expect("not poisoned");
        if scanned.is_some_and(|at| at.elapsed() < RENEWAL_SCAN) {
            return false;
        }
        *scanned = Some(std::time::Instant::now());
        true
    }

    /// Reminds linked clients whose subscription covers today and ends
    /// within the lead, once per end date (`renewal:<subscription>:<end>`):
    /// a renewal or a freeze moves the end, and the new end gets its own.
    async fn renewal_reminders(
        &mut self,
        now: DateTime<Utc>,
        settings: &Settings,
        stop: &watch::Receiver<bool>,
    ) -> Result<()> {
        let today = now.with_timezone(&self.timezone).date_naive();
        let lead = chrono::Duration::days(i64::from(settings.renewal_reminder_days));
        let rows = sqlx::query(
            "SELECT s.id, s.state, u.telegram_chat_id FROM subscriptions s \
             JOIN users u ON u.id = s.client_id WHERE u.telegram_chat_id IS NOT NULL \
             ORDER BY s.id",
        )
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            let id: String = row.try_get("id")?;
            let chat: i64 = row.try_get("telegram_chat_id")?;
            let state: Subscription = serde_json::from_str(&row.try_get::<String, _>("state")?)?;
            let spans = state.spans();
            let Some(&(_, end)) = spans.iter().find(|&&(s, e)| s <= today && today <= e) else {
                continue;
            };
            if end - today > lead {
                continue;
            }
            let cause = format!("renewal:{id}:{end}");
            let sent: Option<i64> = sqlx::query_scalar(
                "SELECT chat_id FROM notifier_ledger WHERE cause = $1 AND chat_id = $2",
            )
            .bind(&cause)
            .bind(chat)
            .fetch_optional(&self.pool)
            .await?;
            if sent.is_some() {
                continue;
            }
            let days = (end - today).num_days();
            let alert = Alert {
                headline: "Reminder: your subscription ends soon",
                lines: vec![
                    ("Last day", Ref::Text(end.to_string())),
                    ("Days left", Ref::Text(days.to_string())),
                ],
                link: format!("subscription/{id}"),
            };
            let text = self.render(&alert).await;
            self.deliver(&cause, chat, &text, stop).await?;
        }
        Ok(())
    }

    async fn daily_digest(
        &mut self,
        day: NaiveDate,
        chats: &[i64],
        stop: &watch::Receiver<bool>,
    ) -> Result<()> {
        let cause = format!("daily-digest:{day}");
        let done: Vec<i64> =
            sqlx::query_scalar("SELECT chat_id FROM notifier_ledger WHERE cause = $1")
                .bind(&cause)
                .fetch_all(&self.pool)
                .await?;
        let missing: Vec<i64> = chats
            .iter()
            .copied()
            .filter(|c| !done.contains(c))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let text = format!("Daily digest\n{}", self.day_summary(day).await?);
        for chat in missing {
            self.deliver(&cause, chat, &text, stop).await?;
        }
        Ok(())
    }

    /// Reminds linked clients of appointments inside the lead time. The
    /// read model finds candidates; the appointment itself (its events) has
    /// the last word, so a cancellation or reschedule the read model has
    /// not seen yet still withdraws or moves the reminder.
    async fn reminders(
        &mut self,
        now: DateTime<Utc>,
        settings: &Settings,
        stop: &watch::Receiver<bool>,
    ) -> Result<()> {
        let horizon = now + chrono::Duration::minutes(i64::from(settings.reminder_minutes));
        let rows = sqlx::query(
            "SELECT a.id, a.start_at, u.telegram_chat_id FROM appointments a \
             JOIN users u ON u.id = a.client_id \
             WHERE a.status IN ('booked', 'confirmed') AND a.start_at > $1 AND a.start_at <= $2 \
             AND u.telegram_chat_id IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM notifier_ledger l \
                 WHERE l.cause = 'reminder:' || a.id || ':' || a.start_at AND l.chat_id = u.telegram_chat_id) \
             ORDER BY a.start_at LIMIT $3",
        )
        .bind(timestamp(now))
        .bind(timestamp(horizon))
        .bind(REMINDER_BATCH)
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            let id: String = row.try_get("id")?;
            let start_at: String = row.try_get("start_at")?;
            let chat: i64 = row.try_get("telegram_chat_id")?;
            let (appointment, _) = self
                .appointments
                .load(&id)
                .await
                .map_err(|e| anyhow::anyhow!("loading appointment {id}: {e}"))?;
            let Some(booking) = appointment.booking else {
                continue;
            };
            let active = matches!(appointment.status, Some(Status::Booked | Status::Confirmed));
            if !active
                || timestamp(booking.start) != start_at
                || !settings.reminder_due(now, booking.start)
            {
                continue;
            }
            let alert = Alert {
                headline: "Reminder: your appointment",
                lines: vec![
                    ("Service", Ref::Service(booking.service_id)),
                    ("Master", Ref::User(booking.master_id)),
                    ("Time", Ref::Time(booking.start)),
                ],
                link: format!("appointment/{id}"),
            };
            let text = self.render(&alert).await;
            self.deliver(&format!("reminder:{id}:{start_at}"), chat, &text, stop)
                .await?;
        }
        Ok(())
    }
}

/// Looks at the clock every second until the process stops.
/// Also sends again, now and then, what a stopped process left unsent.
pub async fn run_scheduler(mut notifier: Notifier, mut ctx: WorkerContext) -> Result<()> {
    let mut resumed: Option<std::time::Instant> = None;
    while !*ctx.stop.borrow() {
        if !notifier.on_duty().await {
            resumed = None;
            notifier.stand_by(&mut ctx.stop).await;
            continue;
        }
        if let Err(err) = notifier.tick(Utc::now(), &ctx.stop).await {
            tracing::warn!(error = %format!("{err:#}"), "scheduled messages wait for the next tick");
        }
        if resumed.is_none_or(|at| at.elapsed() >= super::RESEND_AFTER / 3) {
            resumed = Some(std::time::Instant::now());
            if let Ok(parked) = super::ledger::count_parked(&ctx.pool).await {
                metrics::gauge!("annals_notifier_parked").set(parked as f64);
            }
            if let Err(err) = notifier.resume(&ctx.stop).await {
                tracing::warn!(error = %format!("{err:#}"), "cannot resume unsent messages yet");
            }
        }
        let _ = tokio::time::timeout(TICK, crate::bus::nats::stopped(&mut ctx.stop)).await;
    }
    notifier.off_duty().await;
    Ok(())
}
