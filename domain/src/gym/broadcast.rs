//! A broadcast: a text to an audience resolved when it is sent (who was
//! active then, or a group's members then), kept with it, so that delivery
//! — by the notifier, through its ledger — reaches exactly those, once.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{FieldError, RuleKind, RuleViolation};

pub const MAX_TEXT: usize = 4000;

/// One recipient: a user, and their linked chat when it was sent (none:
/// they cannot be reached through the bot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub user_id: Uuid,
    pub chat_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BroadcastCommand {
    Send {
        /// `active`, `all` or `group:<id>`, as asked.
        audience: String,
        text: String,
        recipients: Vec<Recipient>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BroadcastEvent {
    Sent {
        audience: String,
        text: String,
        recipients: Vec<Recipient>,
    },
}

impl DomainEvent for BroadcastEvent {
    fn event_type(&self) -> String {
        "BroadcastSent".into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BroadcastError {
    #[error("the broadcast was sent already")]
    Exists,
    #[error("invalid broadcast")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for BroadcastError {
    fn kind(&self) -> RuleKind {
        match self {
            BroadcastError::Exists => RuleKind::Conflict,
            BroadcastError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            BroadcastError::Exists => "broadcast-exists",
            BroadcastError::Invalid(_) => "validation",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Broadcast {
    pub audience: Option<String>,
    pub text: String,
    pub recipients: Vec<Recipient>,
}

pub fn decide(
    state: &Broadcast,
    command: BroadcastCommand,
) -> Result<Vec<BroadcastEvent>, BroadcastError> {
    let BroadcastCommand::Send {
        audience,
        text,
        recipients,
    } = command;
    if state.audience.is_some() {
        return Err(BroadcastError::Exists);
    }
    let text = text.trim().to_string();
    if text.is_empty() || text.chars().count() > MAX_TEXT {
        return Err(BroadcastError::Invalid(vec![FieldError::new(
            "text",
            format!("must be 1 to {MAX_TEXT} characters"),
        )]));
    }
    Ok(vec![BroadcastEvent::Sent {
        audience,
        text,
        recipients,
    }])
}

pub fn evolve(state: &mut Broadcast, event: &BroadcastEvent) {
    let BroadcastEvent::Sent {
        audience,
        text,
        recipients,
    } = event;
    state.audience = Some(audience.clone());
    state.text = text.clone();
    state.recipients = recipients.clone();
}

crate::decider_aggregate!(
    Broadcast,
    "broadcast",
    BroadcastCommand,
    BroadcastEvent,
    BroadcastError,
    decide,
    evolve
);
