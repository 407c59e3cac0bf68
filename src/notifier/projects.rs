//! Client projects in the bot: a client with a linked chat gets a notice
//! of each state change of their projects and of each new message from
//! the business. Ledger cause: the event's id, so each is sent once.

use anyhow::Result;
use tokio::sync::watch;

use annals_domain::projects::portal::ClientMessageEvent;
use annals_domain::projects::{ProjectEvent, ProjectRequest, ProjectState};
use annals_domain::StoredEvent;

use super::Notifier;

impl Notifier {
    pub(super) async fn project_changed(
        &mut self,
        event: &StoredEvent,
        stop: &watch::Receiver<bool>,
    ) -> Result<()> {
        let change: ProjectEvent = serde_json::from_value(event.payload.clone())?;
        // A change of state; the request itself is a staff alert only.
        if matches!(change, ProjectEvent::Requested(_)) || change.new_state().is_none() {
            return Ok(());
        }
        let project = self
            .aggregate_at::<ProjectRequest>(&event.aggregate_id, event.sequence)
            .await?;
        let Some(request) = &project.request else {
            return Ok(());
        };
        let Some(chat) = self.chat_of(request.client_id, event).await? else {
            return Ok(());
        };
        let text = format!(
            "Your project \u{ab}{}\u{bb} is now {}.{}\n#project/{}",
            request.title,
            describe(project.state),
            detail(&project),
            event.aggregate_id
        );
        self.deliver(&event.event_id.to_string(), chat, &text, stop)
            .await
    }

    pub(super) async fn client_message(
        &mut self,
        event: &StoredEvent,
        stop: &watch::Receiver<bool>,
    ) -> Result<()> {
        let ClientMessageEvent::Sent(letter) = serde_json::from_value(event.payload.clone())?
        else {
            return Ok(());
        };
        let Some(chat) = self.chat_of(letter.client_id, event).await? else {
            return Ok(());
        };
        let text = format!(
            "New message: {}\n{}\n#message/{}",
            letter.subject, letter.body, event.aggregate_id
        );
        self.deliver(&event.event_id.to_string(), chat, &text, stop)
            .await
    }
}

fn describe(state: ProjectState) -> &'static str {
    match state {
        ProjectState::Requested => "requested",
        ProjectState::Planned => "accepted and planned",
        ProjectState::InProgress => "in progress",
        ProjectState::ReadyForDelivery => "ready for delivery: please confirm receipt",
        ProjectState::Delivered => "delivered",
        ProjectState::Refused => "refused",
        ProjectState::Withdrawn => "withdrawn",
    }
}

fn detail(project: &ProjectRequest) -> String {
    match (project.state, &project.agreement, &project.refusal_reason) {
        (ProjectState::Planned, Some(a), _) => format!(
            " Price {} {}, deadline {}.",
            a.price.amount, a.price.currency, a.deadline
        ),
        (ProjectState::Refused, _, Some(reason)) => format!(" Reason: {reason}"),
        _ => String::new(),
    }
}
