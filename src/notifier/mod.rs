//! The Telegram notifier: a consumer of the log that sends staff alerts
//! through teloxide, each (cause, chat) exactly once in effect thanks to a
//! delivery ledger. It starts at the end of the log (history is never
//! announced) and is not a read model, so `annals replay` never sends.

pub mod commands;
pub mod ledger;
pub mod link;
mod projects;
mod register;
pub mod schedule;
mod studio;
pub mod templates;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::{DateTime, Utc};
use sqlx::{AnyPool, Row};
use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;
use teloxide::types::{ChatId, ReplyMarkup};
use teloxide::{Bot, RequestError};
use tokio::sync::watch;
use uuid::Uuid;

use annals_domain::StoredEvent;

use annals_domain::appointment::Appointment;
use annals_domain::user::User;

use crate::app::CommandBus;
use crate::bus::workers::Lease;
use crate::bus::{Checkpoints, ConsumerState, Feed, WorkerContext};
use crate::platform::Platform;
use crate::store::now_millis;
use templates::{Alert, Ref};

pub const NAME: &str = "notifier";

/// The longest one request to Telegram may take (long polls included).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// A ledger row left `sending` this long belongs to a process that died
/// mid-send (a live sender touches its row before every attempt, and an
/// attempt ends within SEND_TIMEOUT): another process sends it again.
pub const RESEND_AFTER: Duration = Duration::from_secs(30);

/// One process at a time talks to Telegram — alerts, scheduled messages and
/// commands — so Telegram's limits hold across processes: the one holding
/// this lease, renewed by each of its notifier tasks. Another takes over
/// within LEASE_TTL of its end.
const LEASE: &str = "telegram";
const LEASE_TTL: Duration = Duration::from_secs(15);

/// This process's claim on the lease, shared by its notifier tasks.
#[derive(Clone)]
struct Duty {
    holder: Arc<str>,
    renewed: Arc<std::sync::Mutex<Option<Instant>>>,
}

pub use crate::config::TelegramConfig;

impl TelegramConfig {
    pub fn bot(&self) -> Bot {
        // Every request ends within SEND_TIMEOUT, well inside RESEND_AFTER.
        let client = teloxide::net::default_reqwest_settings()
            .timeout(SEND_TIMEOUT)
            .build()
            .expect("an HTTP client with rustls");
        let bot = Bot::with_client(self.token.clone(), client);
        match &self.api_url {
            Some(url) => bot.set_api_url(url.clone()),
            None => bot,
        }
    }
}

/// Spaces sends: one a second per chat, 30 a second in all (Telegram's limits).
struct Pace {
    per_chat: HashMap<i64, Instant>,
    last: Option<Instant>,
}

impl Pace {
    async fn wait(&mut self, chat: i64) {
        let now = Instant::now();
        let mut until = now;
        if let Some(last) = self.per_chat.get(&chat) {
            until = until.max(*last + Duration::from_secs(1));
        }
        if let Some(last) = self.last {
            until = until.max(last + Duration::from_millis(34));
        }
        if until > now {
            tokio::time::sleep(until - now).await;
        }
        let sent = Instant::now();
        self.per_chat.insert(chat, sent);
        self.last = Some(sent);
        if self.per_chat.len() > 10_000 {
            self.per_chat
                .retain(|_, t| sent.duration_since(*t) < Duration::from_secs(1));
        }
    }
}

/// One per process, shared by its workers: the pace is the process's.
#[derive(Clone)]
pub struct Notifier {
    pub(crate) config: TelegramConfig,
    pub(crate) log: crate::store::LogReader,
    pub(crate) bot: Bot,
    pub(crate) pool: AnyPool,
    pub(crate) timezone: chrono_tz::Tz,
    /// Links chats to users (`/start <code>`).
    pub(crate) users: Arc<CommandBus<User>>,
    /// Checks an appointment at its source before reminding of it.
    pub(crate) appointments: Arc<CommandBus<Appointment>>,
    /// Records clients' answers to invitations.
    pub(crate) trainings: Arc<CommandBus<annals_domain::gym::training::Training>>,
    /// Records how customers' scheduled Telegram messages went.
    pub(crate) scheduled: Arc<CommandBus<annals_domain::message::ScheduledMessage>>,
    /// Runs the bot's workflows (registration).
    pub(crate) commands: Arc<crate::app::Commands>,
    /// Records a migrated staff chat.
    settings_bus: Arc<CommandBus<annals_domain::notifier_settings::NotifierSettings>>,
    pace: Arc<tokio::sync::Mutex<Pace>>,
    duty: Duty,
    /// When the subscriptions were last looked at for renewal reminders.
    pub(crate) renewals_scanned: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

enum Sent {
    Delivered,
    /// Telegram refused for good (bad chat, bot blocked): recorded, not retried.
    Refused(String),
    /// Failed `PARK_AFTER` times for reasons that may pass: set aside, so it
    /// blocks nothing; an admin can retry it.
    Parked(String),
}

/// Tries of a message that fails for reasons that may pass before it is parked.
pub const PARK_AFTER: u32 = 5;
/// The longest pause between two tries.
const RETRY_CAP: Duration = Duration::from_secs(2);

impl Notifier {
    pub fn new(config: TelegramConfig, platform: &Platform) -> Self {
        Self {
            bot: config.bot(),
            config,
            log: platform.log.clone(),
            pool: platform.db.any.clone(),
            timezone: platform.settings.timezone,
            users: Arc::new(platform.command_bus::<User>()),
            appointments: Arc::new(platform.command_bus::<Appointment>()),
            trainings: Arc::new(platform.command_bus()),
            scheduled: Arc::new(platform.command_bus()),
            commands: platform.commands.clone(),
            settings_bus: Arc::new(platform.command_bus()),
            pace: Arc::new(tokio::sync::Mutex::new(Pace {
                per_chat: HashMap::new(),
                last: None,
            })),
            duty: Duty {
                holder: format!("{}-{}", std::process::id(), Uuid::now_v7()).into(),
                renewed: Arc::new(std::sync::Mutex::new(None)),
            },
            renewals_scanned: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// Whether this process is the one talking to Telegram now; takes or
    /// renews the lease as needed.
    pub(crate) async fn on_duty(&self) -> bool {
        let fresh = |at: &Option<Instant>| at.is_some_and(|at| at.elapsed() < LEASE_TTL / 3);
        if fresh(&self.duty.renewed.lock().expect("duty lock")) {
            return true;
        }
        let held = Lease::acquire(&self.pool, LEASE, &self.duty.holder, LEASE_TTL)
            .await
            .is_ok_and(|epoch| epoch.is_some());
        *self.duty.renewed.lock().expect("duty lock") = held.then(Instant::now);
        held
    }

    /// Waits a little before asking for duty again.
    pub(crate) async fn stand_by(&self, stop: &mut watch::Receiver<bool>) {
        let _ = tokio::time::timeout(LEASE_TTL / 5, crate::bus::nats::stopped(stop)).await;
    }

    /// Hands the lease over on a clean stop.
    pub(crate) async fn off_duty(&self) {
        *self.duty.renewed.lock().expect("duty lock") = None;
        let _ = Lease::release(&self.pool, LEASE, &self.duty.holder).await;
    }

    /// Sends with retries: 429 waits the `retry_after` Telegram asks for,
    /// network errors back off; gives up only on a refusal.
    async fn send(
        &mut self,
        cause: &str,
        chat: i64,
        text: &str,
        markup: Option<&ReplyMarkup>,
        stop: &watch::Receiver<bool>,
    ) -> Result<Sent> {
        let mut attempt = 0u32;
        let mut chat = chat;
        let key = chat;
        loop {
            self.pace.lock().await.wait(chat).await;
            self.touch(cause, key).await?;
            let mut request = self.bot.send_message(ChatId(chat), text.to_string());
            if let Some(markup) = markup {
                request = request.reply_markup(markup.clone());
            }
            match request.await {
                Ok(_) => return Ok(Sent::Delivered),
                Err(RequestError::MigrateToChatId(to)) if attempt + 1 >= PARK_AFTER => {
                    return Ok(Sent::Parked(format!(
                        "migrated again and again, now to {}",
                        to.0
                    )))
                }
                Err(RequestError::MigrateToChatId(to)) => {
                    attempt += 1;
                    // The group became a supergroup: follow it, and keep
                    // its new id in the settings (as an event).
                    tracing::info!(from = chat, to = to.0, "staff chat migrated");
                    self.follow_migration(chat, to.0).await?;
                    chat = to.0;
                }
                Err(RequestError::RetryAfter(seconds)) => {
                    tracing::info!(chat, seconds = seconds.seconds(), "Telegram asks to wait");
                    // In steps, touching the row, so nobody takes it for dead.
                    let until = Instant::now() + seconds.duration();
                    while Instant::now() < until {
                        tokio::time::sleep((until - Instant::now()).min(RESEND_AFTER / 3)).await;
                        self.touch(cause, key).await?;
                    }
                }
                // A refusal Telegram names (bot blocked, chat not found, ...)
                // stands; a description it does not name may be a passing
                // server error, and is retried like a network error.
                Err(RequestError::Api(err)) if !matches!(err, teloxide::ApiError::Unknown(_)) => {
                    return Ok(Sent::Refused(err.to_string()))
                }
                Err(err) => {
                    attempt += 1;
                    if *stop.borrow() {
                        anyhow::bail!("stopping with a message unsent: {err}");
                    }
                    if attempt >= PARK_AFTER {
                        return Ok(Sent::Parked(err.to_string()));
                    }
                    let pause = Duration::from_millis(200 << attempt.min(6)).min(RETRY_CAP);
                    tracing::warn!(chat, attempt, error = %err, "sending failed; retrying");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// Replaces a migrated staff chat in the settings (an event, by the
    /// system), unless it is not a staff chat or was replaced already.
    async fn follow_migration(&self, from: i64, to: i64) -> Result<()> {
        use annals_domain::notifier_settings::{SettingsCommand, ID};
        let mut settings = self.settings().await?;
        if !settings.staff_chat_ids.contains(&from) {
            return Ok(());
        }
        for id in settings.staff_chat_ids.iter_mut() {
            if *id == from {
                *id = to;
            }
        }
        settings.staff_chat_ids.dedup();
        let ctx = crate::app::CommandContext::new(annals_domain::EventMetadata::for_command(
            annals_domain::Actor::System,
        ));
        self.settings_bus
            .execute(&ctx, ID, SettingsCommand::Set(settings))
            .await
            .map_err(|e| anyhow::anyhow!("recording the migrated chat: {e}"))?;
        Ok(())
    }

    /// Delivers `text` to `chat` for `cause` unless the ledger says it was
    /// handled already.
    pub(crate) async fn deliver(
        &mut self,
        cause: &str,
        chat: i64,
        text: &str,
        stop: &watch::Receiver<bool>,
    ) -> Result<()> {
        self.deliver_with(cause, chat, text, None, stop).await
    }

    /// Like `deliver`, with buttons (or a keyboard) under the message; they
    /// are kept in the ledger, so a resend carries them too.
    pub(crate) async fn deliver_with(
        &mut self,
        cause: &str,
        chat: i64,
        text: &str,
        markup: Option<ReplyMarkup>,
        stop: &watch::Receiver<bool>,
    ) -> Result<()> {
        let stored = markup.as_ref().map(serde_json::to_string).transpose()?;
        let claimed = sqlx::query(
            "INSERT INTO notifier_ledger (cause, chat_id, text, status, attempts, updated_at, markup) \
             VALUES ($1, $2, $3, 'sending', 0, $4, $5) ON CONFLICT (cause, chat_id) DO NOTHING",
        )
        .bind(cause)
        .bind(chat)
        .bind(text)
        .bind(now_millis())
        .bind(stored)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if claimed == 1 {
            self.finish(cause, chat, text, markup.as_ref(), stop)
                .await?;
        }
        Ok(())
    }

    async fn finish(
        &mut self,
        cause: &str,
        chat: i64,
        text: &str,
        markup: Option<&ReplyMarkup>,
        stop: &watch::Receiver<bool>,
    ) -> Result<()> {
        let (status, error) = match self.send(cause, chat, text, markup, stop).await? {
            Sent::Delivered => ("sent", None),
            Sent::Refused(why) => {
                tracing::warn!(chat, %why, "Telegram refused a message");
                ("refused", Some(why))
            }
            Sent::Parked(why) => {
                tracing::error!(chat, %cause, %why, "a message keeps failing; parked");
                metrics::counter!("annals_notifier_parked_total").increment(1);
                ("parked", Some(why))
            }
        };
        sqlx::query("UPDATE notifier_ledger SET status = $1, attempts = attempts + 1, last_error = $2, updated_at = $3 WHERE cause = $4 AND chat_id = $5")
            .bind(status)
            .bind(error)
            .bind(now_millis())
            .bind(cause)
            .bind(chat)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks a `sending` row as alive.
    async fn touch(&self, cause: &str, chat: i64) -> Result<()> {
        sqlx::query("UPDATE notifier_ledger SET updated_at = $1 WHERE cause = $2 AND chat_id = $3")
            .bind(now_millis())
            .bind(cause)
            .bind(chat)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Messages a crash left between claim and send: sent again once their
    /// row is stale, by whichever process claims the row first. A crash
    /// repeats at most the messages in flight at that moment: one per
    /// sending task (alerts, scheduled messages, command replies), so three.
    pub(crate) async fn resume(&mut self, stop: &watch::Receiver<bool>) -> Result<()> {
        let stale = now_millis() - RESEND_AFTER.as_millis() as i64;
        let rows = sqlx::query(
            "SELECT cause, chat_id, text, updated_at, markup FROM notifier_ledger \
             WHERE status = 'sending' AND updated_at < $1",
        )
        .bind(stale)
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            let (cause, chat, text, seen): (String, i64, String, i64) = (
                row.try_get("cause")?,
                row.try_get("chat_id")?,
                row.try_get("text")?,
                row.try_get("updated_at")?,
            );
            let markup: Option<ReplyMarkup> = row
                .try_get::<Option<String>, _>("markup")?
                .map(|m| serde_json::from_str(&m))
                .transpose()?;
            let claimed = sqlx::query(
                "UPDATE notifier_ledger SET updated_at = $1 \
                 WHERE cause = $2 AND chat_id = $3 AND status = 'sending' AND updated_at = $4",
            )
            .bind(now_millis())
            .bind(&cause)
            .bind(chat)
            .bind(seen)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if claimed == 1 {
                tracing::info!(%cause, chat, "sending again a message a stopped process left unsent");
                self.finish(&cause, chat, &text, markup.as_ref(), stop)
                    .await?;
            }
        }
        Ok(())
    }

    pub(crate) async fn name_of_user(&self, id: Uuid) -> String {
        sqlx::query_scalar::<_, String>("SELECT full_name FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| id.to_string())
    }

    pub(crate) async fn name_of_service(&self, id: Uuid) -> String {
        sqlx::query_scalar::<_, String>("SELECT name FROM services WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| id.to_string())
    }

    fn time(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.timezone)
            .format("%a %d %b %Y %H:%M %Z")
            .to_string()
    }

    /// The settings in force (the latest change, or the TELEGRAM_* values).
    pub(crate) async fn settings(&self) -> Result<annals_domain::notifier_settings::Settings> {
        Ok(
            crate::http::notifier::effective(&self.log, Some(&self.config))
                .await?
                .0,
        )
    }

    /// An aggregate as its events up to `sequence` left it (what a message
    /// about that event says, however the aggregate changed since).
    pub(super) async fn aggregate_at<A: cqrs_es::Aggregate>(
        &self,
        id: &str,
        sequence: i64,
    ) -> Result<A> {
        self.fold_while::<A>(id, |e| e.sequence <= sequence).await
    }

    /// An aggregate folded from its first events while `keep` holds.
    pub(super) async fn fold_while<A: cqrs_es::Aggregate>(
        &self,
        id: &str,
        keep: impl Fn(&StoredEvent) -> bool,
    ) -> Result<A> {
        let mut state = A::default();
        for event in self
            .log
            .aggregate_history(A::TYPE, id)
            .await?
            .iter()
            .take_while(|e| keep(e))
        {
            state.apply(serde_json::from_value(event.payload.clone())?);
        }
        Ok(state)
    }

    /// The alert as text, with names instead of ids where known.
    pub async fn render(&self, alert: &Alert) -> String {
        let mut out = format!("{}\n", alert.headline);
        for (label, value) in &alert.lines {
            let shown = match value {
                Ref::User(id) => self.name_of_user(*id).await,
                Ref::Service(id) => self.name_of_service(*id).await,
                Ref::Time(t) => self.time(*t),
                Ref::Text(text) => text.clone(),
                Ref::Campaign(id) => {
                    sqlx::query_scalar::<_, String>("SELECT name FROM campaigns WHERE id = $1")
                        .bind(id.to_string())
                        .fetch_optional(&self.pool)
                        .await
                        .ok()
                        .flatten()
                        .unwrap_or_else(|| id.to_string())
                }
                Ref::Appointment(id) => {
                    let row = sqlx::query(
                        "SELECT client_id, master_id, service_id, start_at FROM appointments WHERE id = $1",
                    )
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .ok()
                    .flatten();
                    match row {
                        None => id.to_string(),
                        Some(row) => {
                            let get = |c: &str| row.try_get::<String, _>(c).unwrap_or_default();
                            let client = self
                                .name_of_user(
                                    Uuid::parse_str(&get("client_id")).unwrap_or_default(),
                                )
                                .await;
                            let service = self
                                .name_of_service(
                                    Uuid::parse_str(&get("service_id")).unwrap_or_default(),
                                )
                                .await;
                            let master = self
                                .name_of_user(
                                    Uuid::parse_str(&get("master_id")).unwrap_or_default(),
                                )
                                .await;
                            let start = DateTime::parse_from_rfc3339(&get("start_at"))
                                .map(|t| self.time(t.with_timezone(&Utc)))
                                .unwrap_or_default();
                            format!("{service} for {client} with {master}, {start}")
                        }
                    }
                }
            };
            out.push_str(&format!("{label}: {shown}\n"));
        }
        out.push_str(&format!("#{}", alert.link));
        out
    }

    async fn handle(&mut self, event: &StoredEvent, stop: &watch::Receiver<bool>) -> Result<()> {
        match event.event_type.as_str() {
            "BroadcastSent" => return self.broadcast(event, stop).await,
            "TrainingInvitationsSent" => return self.invitations(event, stop).await,
            "TrainingLinkSet" => return self.link_set(event, stop).await,
            "ClientMessageSent" => return self.client_message(event, stop).await,
            _ => {}
        }
        if event.aggregate_type
            == <annals_domain::projects::ProjectRequest as cqrs_es::Aggregate>::TYPE
        {
            // A request is also a staff alert (below).
            self.project_changed(event, stop).await?;
        }
        let Some(template) = templates::template(&event.event_type) else {
            return Ok(());
        };
        let settings = self.settings().await?;
        if !settings.alert_on(&event.event_type) {
            return Ok(());
        }
        let Some(alert) = template(event) else {
            return Ok(());
        };
        let text = self.render(&alert).await;
        let cause = event.event_id.to_string();
        for chat in settings.staff_chat_ids.clone() {
            self.deliver(&cause, chat, &text, stop).await?;
        }
        Ok(())
    }
}

impl Notifier {
    /// Sends a broadcast to each recipient with a chat, once: the ledger
    /// cause is the broadcast, so a restart mid-way sends only the rest.
    async fn broadcast(&mut self, event: &StoredEvent, stop: &watch::Receiver<bool>) -> Result<()> {
        let annals_domain::gym::broadcast::BroadcastEvent::Sent {
            text, recipients, ..
        } = serde_json::from_value(event.payload.clone())?;
        let cause = ledger::broadcast_cause(&event.aggregate_id);
        for chat in recipients.iter().filter_map(|r| r.chat_id) {
            self.deliver(&cause, chat, &text, stop).await?;
        }
        Ok(())
    }
}

/// Runs the notifier until the process stops.
pub async fn run_notifier(
    mut notifier: Notifier,
    state: Arc<ConsumerState>,
    mut ctx: WorkerContext,
) -> Result<()> {
    // First start: begin at the end of the log; history is not news.
    let head = ctx.log.head().await?;
    sqlx::query("INSERT INTO consumer_checkpoints (name, position, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
        .bind(NAME)
        .bind(head)
        .bind(now_millis())
        .execute(&ctx.pool)
        .await?;
    let mut checkpoint = Checkpoints::get(&ctx.pool, NAME).await?;
    state.advanced(checkpoint, None);
    let mut feed = Feed::new(NAME, ctx.nats.clone());
    let mut was_on_duty = false;
    while !*ctx.stop.borrow() {
        if !notifier.on_duty().await {
            was_on_duty = false;
            // Show the progress of the process on duty, not a growing lag.
            if let Ok(saved) = Checkpoints::get(&ctx.pool, NAME).await {
                state.advanced(saved, None);
            }
            notifier.stand_by(&mut ctx.stop).await;
            continue;
        }
        if !was_on_duty {
            // Taking over: go on from where the last process on duty was.
            match Checkpoints::get(&ctx.pool, NAME).await {
                Ok(saved) => checkpoint = saved,
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "notifier checkpoint unreadable; retrying");
                    notifier.stand_by(&mut ctx.stop).await;
                    continue;
                }
            }
            state.advanced(checkpoint, None);
            feed = Feed::new(NAME, ctx.nats.clone());
            was_on_duty = true;
        }
        let events = feed.next(&mut ctx, checkpoint, 100).await;
        for event in &events {
            if let Err(err) = notifier.handle(event, &ctx.stop).await {
                tracing::warn!(error = %format!("{err:#}"), position = event.position, "notifier paused");
                tokio::time::sleep(Duration::from_secs(1)).await;
                break;
            }
            // Several processes may run the notifier: the checkpoint only
            // moves forward, and the ledger keeps their sends to one.
            let saved = sqlx::query(
                "UPDATE consumer_checkpoints SET position = $1, updated_at = $2 \
                 WHERE name = $3 AND position < $1",
            )
            .bind(event.position)
            .bind(now_millis())
            .bind(NAME)
            .execute(&ctx.pool)
            .await;
            if let Err(err) = saved {
                // Handled but not recorded: handled again later, and the
                // ledger sends nothing twice.
                tracing::warn!(error = %err, "notifier checkpoint not saved; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                break;
            }
            checkpoint = event.position;
            state.advanced(checkpoint, Some(event.recorded_at));
        }
    }
    notifier.off_duty().await;
    Ok(())
}
