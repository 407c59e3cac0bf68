//! `/register`: a client without an account creates one in the bot — the
//! name, then the phone (shared as a contact with the button, or typed) —
//! and the account is linked to the chat in the same commit. What was
//! answered so far is kept in `bot_registrations` (conversation state, not
//! history), so it survives a restart or a change of the process on duty.

use std::time::Duration;

use anyhow::Result;
use sqlx::Row;
use teloxide::types::{ButtonRequest, KeyboardButton, KeyboardMarkup, ReplyMarkup};

use annals_domain::user::values::NAME_MAX;
use annals_domain::user::Phone;
use annals_domain::{Actor, EventMetadata};

use super::Notifier;
use crate::app::identity::register_through_bot;
use crate::app::CommandContext;
use crate::store::now_millis;

/// A registration left unfinished this long starts over.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);

/// What a client sends while registering.
pub(super) enum Input<'a> {
    Text(&'a str),
    /// A shared contact: its phone, and whose contact it is.
    Contact {
        phone: &'a str,
        user_id: Option<u64>,
    },
}

/// A reply, with a keyboard to show or take away.
pub(super) type Reply = (String, Option<ReplyMarkup>);

fn ask_phone(name: &str) -> Reply {
    let keyboard = KeyboardMarkup::new([[
        KeyboardButton::new("Share my phone number").request(ButtonRequest::Contact)
    ]])
    .one_time_keyboard()
    .resize_keyboard();
    (
        format!(
            "Thanks, {name}. Now your phone number: press the button below, or type it \
             (+ and 10 to 15 digits)."
        ),
        Some(ReplyMarkup::Keyboard(keyboard)),
    )
}

fn checked_name(text: &str) -> Option<String> {
    let name = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!name.is_empty() && name.chars().count() <= NAME_MAX && !name.starts_with('/')).then_some(name)
}

impl Notifier {
    /// `/register [full name]`.
    pub(super) async fn register_start(
        &mut self,
        text: &str,
        chat: i64,
        private: bool,
    ) -> Result<Reply> {
        if !private {
            return Ok(("Register in a private chat with the bot.".into(), None));
        }
        if let Some(user) = annals_projections::users::by_chat(&self.pool, chat).await? {
            return Ok((
                format!(
                    "This chat is linked to the account of {} already. /me shows your \
                     subscription and trainings.",
                    user.profile.full_name
                ),
                None,
            ));
        }
        let rest = text.split_once(char::is_whitespace).map_or("", |(_, r)| r);
        let name = checked_name(rest);
        self.remember(chat, name.as_deref()).await?;
        Ok(match name {
            Some(name) => ask_phone(&name),
            None => (
                "Let us create your account. What is your full name?".into(),
                None,
            ),
        })
    }

    /// The next answer of a registration under way in this chat; `None`
    /// when there is none.
    pub(super) async fn register_step(
        &mut self,
        chat: i64,
        from: Option<u64>,
        input: Input<'_>,
    ) -> Result<Option<Reply>> {
        let row =
            sqlx::query("SELECT full_name, updated_at FROM bot_registrations WHERE chat_id = $1")
                .bind(chat)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let name: Option<String> = row.try_get("full_name")?;
        let updated: i64 = row.try_get("updated_at")?;
        if updated < now_millis() - FORGET_AFTER.as_millis() as i64 {
            self.forget(chat).await?;
            return Ok(None);
        }
        let Some(name) = name else {
            return Ok(Some(match input {
                Input::Text(text) => match checked_name(text) {
                    Some(name) => {
                        self.remember(chat, Some(&name)).await?;
                        ask_phone(&name)
                    }
                    None => (
                        format!("Your full name, please (1 to {NAME_MAX} characters)."),
                        None,
                    ),
                },
                Input::Contact { .. } => ("First your full name, please.".into(), None),
            }));
        };
        let typed = match input {
            Input::Text(text) => text,
            Input::Contact { phone, user_id } => {
                if user_id.is_none() || user_id != from {
                    return Ok(Some(("Please share your own contact.".into(), None)));
                }
                phone
            }
        };
        let Ok(phone) = Phone::parse("phone", typed) else {
            return Ok(Some((
                "That is not a phone number: + and 10 to 15 digits, or press the button.".into(),
                None,
            )));
        };
        let telegram_user = from.map_or(chat, |u| u as i64);
        let ctx = CommandContext::new(EventMetadata::for_command(Actor::Telegram {
            telegram_user_id: telegram_user,
        }));
        let done = register_through_bot(
            &self.commands,
            &ctx,
            telegram_user,
            chat,
            name.clone(),
            phone,
        )
        .await;
        self.forget(chat).await?;
        let text = match done {
            // New, or recorded already by an earlier try of this update.
            Ok(_) => {
                format!(
                    "Welcome, {name}! Your Annals account is ready and linked to this chat: \
                     reminders and invitations will come here. /me shows your subscription \
                     and trainings."
                )
            }
            Err(err) if err.is_final() => err.detail.clone(),
            Err(err) => return Err(anyhow::anyhow!("registering chat {chat}: {err}")),
        };
        Ok(Some((text, Some(ReplyMarkup::kb_remove()))))
    }

    async fn remember(&self, chat: i64, name: Option<&str>) -> Result<()> {
        sqlx::query(
            "INSERT INTO bot_registrations (chat_id, full_name, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (chat_id) DO UPDATE SET full_name = excluded.full_name, \
             updated_at = excluded.updated_at",
        )
        .bind(chat)
        .bind(name)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn forget(&self, chat: i64) -> Result<()> {
        sqlx::query("DELETE FROM bot_registrations WHERE chat_id = $1")
            .bind(chat)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
