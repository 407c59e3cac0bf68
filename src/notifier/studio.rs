//! The studio's side of the bot: invitations to trainings with "I'll come"
//! / "I can't" buttons, the answers to those buttons (callback queries),
//! the meeting link sent to everyone who accepted, and `/me`.
//!
//! Ledger causes: `invitation:<training>` (one per invited chat),
//! `training-link:<training>:<sequence of the link event>` (a new link is
//! sent again), and the update for a button's answer.

use anyhow::Result;
use chrono::Utc;
use teloxide::payloads::AnswerCallbackQuerySetters;
use teloxide::prelude::Requester;
use teloxide::types::{CallbackQuery, InlineKeyboardButton, ReplyMarkup};
use tokio::sync::watch;
use uuid::Uuid;

use annals_domain::gym::training::{Training, TrainingCommand, TrainingError, TrainingEvent};
use annals_domain::user::User;
use annals_domain::{Actor, EventMetadata, StoredEvent};
use annals_projections::gym::queries;

use super::Notifier;
use crate::app::{CommandContext, CommandError};

/// How many coming trainings `/me` lists.
const NEXT_TRAININGS: usize = 5;

const NOT_LINKED: &str = "This chat is not linked to an Annals account. Link it with \
/start <code> (a code from your account), or create an account with /register.";

/// A button's data: `training:<id>:yes` or `training:<id>:no` (at most 64
/// bytes, as Telegram allows).
fn button_data(training: Uuid, accept: bool) -> String {
    format!("training:{training}:{}", if accept { "yes" } else { "no" })
}

fn parse_button(data: &str) -> Option<(Uuid, bool)> {
    let rest = data.strip_prefix("training:")?;
    let (id, answer) = rest.split_once(':')?;
    let accept = match answer {
        "yes" => true,
        "no" => false,
        _ => return None,
    };
    Some((Uuid::parse_str(id).ok()?, accept))
}

impl Notifier {
    /// "a training with Coach, Mon 05 Oct 2026 18:00 CEST, 60 min".
    async fn describe(&self, training: &Training) -> String {
        let Some(session) = &training.session else {
            return "a training".into();
        };
        format!(
            "a training with {}, {}, {} min",
            self.name_of_user(session.coach_id).await,
            self.time(session.start),
            session.duration_minutes
        )
    }

    /// The chat a user had linked when `event` was recorded, if they were
    /// active then: from the user's own events before it, so neither a
    /// read model that lags behind the notifier nor a later change can
    /// make a notice go elsewhere or be skipped.
    pub(super) async fn chat_of(&self, user: Uuid, event: &StoredEvent) -> Result<Option<i64>> {
        let state: User = self
            .fold_while(&user.to_string(), |e| e.position < event.position)
            .await?;
        Ok(state.telegram_chat_id.filter(|_| state.active))
    }

    /// Invitations to a training that has not started yet, with buttons.
    pub(super) async fn invitations(
        &mut self,
        event: &StoredEvent,
        stop: &watch::Receiver<bool>,
    ) -> Result<()> {
        let TrainingEvent::Invited { client_ids } = serde_json::from_value(event.payload.clone())?
        else {
            return Ok(());
        };
        let training = self
            .aggregate_at::<Training>(&event.aggregate_id, event.sequence)
            .await?;
        let Some(session) = &training.session else {
            return Ok(());
        };
        if session.start <= Utc::now() {
            return Ok(());
        }
        let id = Uuid::parse_str(&event.aggregate_id)?;
        let mut text = format!("You are invited to {}.\n", self.describe(&training).await);
        match (&session.location, &training.link) {
            (Some(place), _) => text.push_str(&format!("Where: {place}\n")),
            (None, Some(_)) => text.push_str("The link comes when you accept.\n"),
            (None, None) => text.push_str("The link will follow.\n"),
        }
        text.push_str("Will you come?");
        let buttons = ReplyMarkup::inline_kb([[
            InlineKeyboardButton::callback("I'll come", button_data(id, true)),
            InlineKeyboardButton::callback("I can't", button_data(id, false)),
        ]]);
        let cause = format!("invitation:{id}");
        for client in client_ids {
            if let Some(chat) = self.chat_of(client, event).await? {
                self.deliver_with(&cause, chat, &text, Some(buttons.clone()), stop)
                    .await?;
            }
        }
        Ok(())
    }

    /// The meeting link, to everyone who had accepted when it was set (who
    /// accepts later gets it in the answer to their button).
    pub(super) async fn link_set(
        &mut self,
        event: &StoredEvent,
        stop: &watch::Receiver<bool>,
    ) -> Result<()> {
        let training = self
            .aggregate_at::<Training>(&event.aggregate_id, event.sequence)
            .await?;
        let Some(url) = &training.link else {
            return Ok(());
        };
        let text = format!("The link for {}: {url}", self.describe(&training).await);
        let cause = format!("training-link:{}:{}", event.aggregate_id, event.sequence);
        let accepted: Vec<Uuid> = training.accepted().collect();
        for client in accepted {
            if let Some(chat) = self.chat_of(client, event).await? {
                self.deliver(&cause, chat, &text, stop).await?;
            }
        }
        Ok(())
    }

    /// A press of "I'll come" or "I can't": recorded on the training as the
    /// client linked to this chat; the answer goes back as a message (with
    /// the link when there is one) through the ledger.
    pub(super) async fn button(
        &mut self,
        update_id: u32,
        query: &CallbackQuery,
        stop: &watch::Receiver<bool>,
    ) -> Result<()> {
        let from = query.from.id.0 as i64;
        let chat = query.message.as_ref().map_or(from, |m| m.chat().id.0);
        let reply = match query.data.as_deref().and_then(parse_button) {
            None => "This button is not understood any more.".to_string(),
            Some((training, accept)) => self.respond(chat, from, training, accept).await?,
        };
        // Stops the button's spinner; the answer itself is the message.
        if let Err(err) = self
            .bot
            .answer_callback_query(query.id.clone())
            .text(reply.lines().next().unwrap_or_default().to_string())
            .await
        {
            tracing::debug!(error = %err, "callback query not answered");
        }
        self.deliver(&format!("update:{update_id}"), chat, &reply, stop)
            .await
    }

    async fn respond(&self, chat: i64, from: i64, training: Uuid, accept: bool) -> Result<String> {
        let Some(user) = annals_projections::users::by_chat(&self.pool, chat).await? else {
            return Ok(NOT_LINKED.to_string());
        };
        let ctx = CommandContext::new(EventMetadata::for_command(Actor::Telegram {
            telegram_user_id: from,
        }));
        let command = TrainingCommand::Respond {
            client_id: user.id,
            accept,
        };
        match self
            .trainings
            .execute(&ctx, &training.to_string(), command)
            .await
        {
            Ok(done) => {
                let state = done.value.state;
                let what = self.describe(&state).await;
                Ok(match (accept, &state.link) {
                    (true, Some(url)) => format!("See you there: {what}.\nThe link: {url}"),
                    (true, None) => format!("See you there: {what}."),
                    (false, _) => format!("Noted: you will not come to {what}."),
                })
            }
            Err(CommandError::Rejected(TrainingError::TrainingFull { .. })) => {
                Ok("Sorry, this training is full.".into())
            }
            Err(CommandError::Rejected(TrainingError::NotInvited)) => {
                Ok("This invitation is not for the account linked to this chat.".into())
            }
            Err(CommandError::Rejected(TrainingError::NotFound)) => {
                Ok("This training no longer exists.".into())
            }
            Err(CommandError::Rejected(other)) => Ok(format!("Not recorded: {other}.")),
            Err(CommandError::Failed(err)) => {
                Err(anyhow::anyhow!("recording an answer to {training}: {err}"))
            }
        }
    }

    /// `/me`: the subscriptions (active until, freeze days left) and the
    /// next trainings of the client linked to this chat.
    pub(super) async fn me(&self, chat: i64) -> Result<String> {
        let Some(user) = annals_projections::users::by_chat(&self.pool, chat).await? else {
            return Ok(NOT_LINKED.to_string());
        };
        let today = Utc::now().with_timezone(&self.timezone).date_naive();
        let mut out = format!("{}\n", user.profile.full_name);
        let subscriptions = queries::subscriptions(&self.pool, Some(user.id), None).await?;
        if subscriptions.is_empty() {
            out.push_str("No subscription.\n");
        }
        for row in &subscriptions {
            let plan = queries::plan(&self.pool, row.plan_id)
                .await?
                .map_or_else(|| row.plan_id.to_string(), |p| p.name);
            let standing = row.state.standing(today);
            let until = row
                .state
                .ends_on()
                .map_or_else(|| "not paid yet".to_string(), |d| format!("until {d}"));
            out.push_str(&format!(
                "{plan}: {} {until}, {} freeze days left\n",
                standing.as_str(),
                row.state.freeze_days_left()
            ));
        }
        let from = annals_projections::appointments::timestamp(Utc::now());
        let next: Vec<_> = queries::client_trainings(&self.pool, user.id, &from)
            .await?
            .into_iter()
            .filter(|t| t.status != "declined")
            .take(NEXT_TRAININGS)
            .collect();
        if next.is_empty() {
            out.push_str("No trainings coming.");
        } else {
            out.push_str("Next trainings:");
            for row in &next {
                out.push_str(&format!(
                    "\n  {} ({})",
                    self.describe(&row.training.state).await,
                    row.status
                ));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn button_data_fits_telegram_and_reads_back() {
        let id = Uuid::now_v7();
        for accept in [true, false] {
            let data = button_data(id, accept);
            assert!(data.len() <= 64, "{data}");
            assert_eq!(parse_button(&data), Some((id, accept)));
        }
        assert_eq!(parse_button("training:nope:yes"), None);
        assert_eq!(parse_button(&format!("training:{id}:maybe")), None);
    }
}
