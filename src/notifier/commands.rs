//! The bot's commands, read by long polling `getUpdates` (by the process
//! on duty). Replies go through the delivery ledger
//! keyed by the update, so a redelivered update is not answered twice.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;
use teloxide::payloads::GetUpdatesSetters;
use teloxide::prelude::Requester;
use teloxide::types::UpdateKind;
use uuid::Uuid;

use annals_domain::appointment::availability::day_bounds;
use annals_projections::appointments::timestamp;

use annals_domain::user::{UserCommand, UserError};
use annals_domain::{Actor, EventMetadata};

use super::register::Input;
use super::{link, Notifier};
use crate::app::{CommandContext, CommandError};
use crate::bus::WorkerContext;

const WELCOME: &str = "Welcome to Annals. To get appointment reminders here, create a link code \
in your account (POST /api/v1/me/telegram-link) and send it as /start <code>.";

pub const HELP: &str = "Annals bot\n\
/start <code> - link this chat to your Annals account (reminders)\n\
/register - create a client account linked to this chat\n\
/me - your subscription and next trainings\n\
/today - today's appointments by master, and today's orders (staff)\n\
/digest - send today's summary to the staff chats (staff)\n\
/help - this list";

const REFUSAL: &str = "Sorry, this command is for staff.";

impl Notifier {
    async fn is_staff(&self, telegram_user: Option<u64>) -> Result<bool> {
        let settings = self.settings().await?;
        Ok(telegram_user.is_some_and(|u| settings.staff_user_ids.iter().any(|s| *s as u64 == u)))
    }

    /// Today's appointments (business time zone), grouped by master,
    /// orders, and the due reminders nobody has acknowledged.
    pub async fn today(&self) -> Result<String> {
        let summary = self
            .day_summary(Utc::now().with_timezone(&self.timezone).date_naive())
            .await?;
        Ok(format!("{summary}{}", self.due_reminders().await?))
    }

    /// The due reminders, as lines after a blank line (empty when none).
    async fn due_reminders(&self) -> Result<String> {
        let now = annals_projections::marketing::instant(Utc::now());
        let due = annals_projections::billing::queries::due_reminders(&self.pool, &now).await?;
        if due.is_empty() {
            return Ok(String::new());
        }
        let mut out = format!("\n\nReminders due: {}\n", due.len());
        for row in &due {
            let Some(plan) = &row.state.plan else {
                continue;
            };
            let customer: Option<String> =
                sqlx::query_scalar("SELECT name FROM customers WHERE id = $1")
                    .bind(plan.customer_id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
            let time = plan
                .scheduled_at
                .with_timezone(&self.timezone)
                .format("%d %b %H:%M");
            out.push_str(&format!(
                "  {time} {} ({}, {}): {}\n",
                customer.unwrap_or_else(|| plan.customer_id.to_string()),
                plan.channel.as_str(),
                row.state.status.as_str(),
                plan.content.chars().take(80).collect::<String>()
            ));
        }
        Ok(out)
    }

    /// One day's appointments (business time zone), grouped by master.
    pub async fn day_summary(&self, date: NaiveDate) -> Result<String> {
        let (start, end) = day_bounds(self.timezone, date);
        let rows = sqlx::query(
            "SELECT master_id, client_id, service_id, start_at, status FROM appointments \
             WHERE start_at >= $1 AND start_at < $2 AND status <> 'cancelled' ORDER BY start_at",
        )
        .bind(timestamp(start))
        .bind(timestamp(end))
        .fetch_all(&self.pool)
        .await?;
        let orders = self
            .orders_between(&timestamp(start), &timestamp(end))
            .await?;
        if rows.is_empty() {
            return Ok(format!("{date}: no appointments.{orders}"));
        }
        let mut by_master: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in &rows {
            let id = |c: &str| {
                Uuid::parse_str(&row.try_get::<String, _>(c).unwrap_or_default())
                    .unwrap_or_default()
            };
            let at: String = row.try_get("start_at")?;
            let time = DateTime::parse_from_rfc3339(&at)
                .map(|t| t.with_timezone(&self.timezone).format("%H:%M").to_string())
                .unwrap_or(at);
            let line = format!(
                "{time} {} - {} ({})",
                self.name_of_service(id("service_id")).await,
                self.name_of_user(id("client_id")).await,
                row.try_get::<String, _>("status")?
            );
            by_master
                .entry(self.name_of_user(id("master_id")).await)
                .or_default()
                .push(line);
        }
        let mut out = format!("{date}: {} appointments\n", rows.len());
        for (master, lines) in by_master {
            out.push_str(&format!("\n{master}\n"));
            for line in lines {
                out.push_str(&format!("  {line}\n"));
            }
        }
        out.push_str(&orders);
        Ok(out)
    }

    /// The orders placed in `[from, to)`, as lines after a blank line (empty
    /// when there are none).
    async fn orders_between(&self, from: &str, to: &str) -> Result<String> {
        let rows = sqlx::query(
            "SELECT number, customer_name, total, currency, status, placed_at FROM orders \
             WHERE placed_at >= $1 AND placed_at < $2 ORDER BY placed_at, id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(String::new());
        }
        let mut out = format!("\n\nOrders: {}\n", rows.len());
        for row in &rows {
            let at: String = row.try_get("placed_at")?;
            let time = DateTime::parse_from_rfc3339(&at)
                .map(|t| t.with_timezone(&self.timezone).format("%H:%M").to_string())
                .unwrap_or(at);
            out.push_str(&format!(
                "  {time} {} - {} {} {} ({})\n",
                row.try_get::<String, _>("number")?,
                row.try_get::<String, _>("customer_name")?,
                row.try_get::<String, _>("total")?,
                row.try_get::<String, _>("currency")?,
                row.try_get::<String, _>("status")?,
            ));
        }
        Ok(out)
    }

    /// `/start <code>`: links this chat to the account that showed the code.
    async fn start(
        &mut self,
        text: &str,
        chat: i64,
        private: bool,
        from: Option<u64>,
    ) -> Result<String> {
        let Some(code) = text.split_whitespace().nth(1) else {
            return Ok(format!("{WELCOME}\n\n{HELP}"));
        };
        if !private {
            return Ok("Link your account in a private chat with the bot.".into());
        }
        let Some(user) = link::holder(&self.pool, code).await? else {
            return Ok(
                "This code is not valid or has expired. Ask for a new one in your account.".into(),
            );
        };
        let actor = Actor::Telegram {
            telegram_user_id: from.map_or(chat, |u| u as i64),
        };
        let linked = self
            .users
            .execute(
                &CommandContext::new(EventMetadata::for_command(actor)),
                &user.to_string(),
                UserCommand::LinkTelegram { chat_id: chat },
            )
            .await;
        match linked {
            Ok(outcome) => {
                link::spend(&self.pool, code).await?;
                let name = outcome.value.state.profile.full_name;
                Ok(format!(
                    "Linked to the Annals account of {name}. Appointment reminders will come here."
                ))
            }
            Err(CommandError::Rejected(UserError::Deactivated)) => {
                Ok("That account is deactivated.".into())
            }
            Err(err) => Err(anyhow::anyhow!("linking chat {chat}: {err}")),
        }
    }

    /// Answers one message.
    async fn answer(
        &mut self,
        update_id: u32,
        chat: i64,
        from: Option<u64>,
        private: bool,
        text: &str,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<()> {
        let command = text
            .split_whitespace()
            .next()
            .unwrap_or("")
            .split('@')
            .next()
            .unwrap_or("");
        let cause = format!("update:{update_id}");
        if !command.starts_with('/') {
            // An answer to /register's questions, or just words.
            let reply = self
                .register_step(chat, from, Input::Text(text))
                .await?
                .unwrap_or_else(|| (HELP.to_string(), None));
            return self
                .deliver_with(&cause, chat, &reply.0, reply.1, stop)
                .await;
        }
        if command == "/register" {
            let (reply, markup) = self.register_start(text, chat, private).await?;
            return self.deliver_with(&cause, chat, &reply, markup, stop).await;
        }
        let staff = self.is_staff(from).await?;
        let reply = match command {
            "/start" => self.start(text, chat, private, from).await?,
            "/me" => self.me(chat).await?,
            "/today" if staff => format!("Today, {}", self.today().await?),
            "/digest" if staff => {
                let digest = format!("Digest\nToday, {}", self.today().await?);
                let chats = self.settings().await?.staff_chat_ids;
                for staff_chat in &chats {
                    self.deliver(
                        &format!("digest-command:{update_id}"),
                        *staff_chat,
                        &digest,
                        stop,
                    )
                    .await?;
                }
                format!("Digest sent to {} staff chats.", chats.len())
            }
            "/today" | "/digest" => REFUSAL.to_string(),
            _ => HELP.to_string(),
        };
        self.deliver(&cause, chat, &reply, stop).await
    }

    /// A shared contact: the phone of a registration under way.
    async fn contact(
        &mut self,
        update_id: u32,
        chat: i64,
        from: Option<u64>,
        contact: &teloxide::types::Contact,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<()> {
        let input = Input::Contact {
            phone: &contact.phone_number,
            user_id: contact.user_id.map(|u| u.0),
        };
        let (reply, markup) = self
            .register_step(chat, from, input)
            .await?
            .unwrap_or_else(|| {
                (
                    "Thanks; there is no registration under way. /register starts one.".into(),
                    None,
                )
            });
        self.deliver_with(&format!("update:{update_id}"), chat, &reply, markup, stop)
            .await
    }
}

/// Polls for commands while this process is the one on duty.
pub async fn run_commands(mut notifier: Notifier, mut ctx: WorkerContext) -> Result<()> {
    let mut offset: Option<i32> = None;
    while !*ctx.stop.borrow() {
        if !notifier.on_duty().await {
            // Another process polls; start afresh if this one takes over.
            offset = None;
            notifier.stand_by(&mut ctx.stop).await;
            continue;
        }
        let mut request = notifier.bot.get_updates().timeout(5);
        if let Some(offset) = offset {
            request = request.offset(offset);
        }
        let updates = tokio::select! {
            result = request => result,
            _ = crate::bus::nats::stopped(&mut ctx.stop) => break,
        };
        let updates = match updates {
            Ok(updates) => updates,
            Err(err) => {
                tracing::warn!(error = %err, "getUpdates failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for update in updates {
            offset = Some(update.id.0 as i32 + 1);
            let handled = match &update.kind {
                UpdateKind::Message(message) => {
                    let from = message.from.as_ref().map(|u| u.id.0);
                    let chat = message.chat.id.0;
                    if let Some(text) = message.text() {
                        let private = message.chat.is_private();
                        notifier
                            .answer(update.id.0, chat, from, private, text, &ctx.stop)
                            .await
                    } else if let Some(contact) = message.contact() {
                        notifier
                            .contact(update.id.0, chat, from, contact, &ctx.stop)
                            .await
                    } else {
                        Ok(())
                    }
                }
                UpdateKind::CallbackQuery(query) => {
                    notifier.button(update.id.0, query, &ctx.stop).await
                }
                _ => Ok(()),
            };
            if let Err(err) = handled {
                tracing::warn!(error = %format!("{err:#}"), "update not answered");
            }
        }
    }
    notifier.off_duty().await;
    Ok(())
}
