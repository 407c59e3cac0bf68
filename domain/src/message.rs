//! A message to a customer at a set time: `scheduled → sent | failed |
//! cancelled`, rescheduled or cancelled only before it is sent. Each failed
//! try is an event (with the provider's answer and when to try again), so
//! the tries go on across restarts and processes. Once its time has come
//! it is also a due reminder for staff until someone acknowledges it.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{FieldError, RuleKind, RuleViolation};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Sms,
    Whatsapp,
    Telegram,
}

impl Channel {
    pub fn parse(text: &str) -> Option<Channel> {
        match text {
            "sms" => Some(Channel::Sms),
            "whatsapp" => Some(Channel::Whatsapp),
            "telegram" => Some(Channel::Telegram),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
            Channel::Telegram => "telegram",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub customer_id: Uuid,
    pub channel: Channel,
    /// A phone number, or a Telegram chat id.
    pub to: String,
    pub content: String,
    pub scheduled_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    #[default]
    Scheduled,
    Sent,
    Failed,
    Cancelled,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Scheduled => "scheduled",
            MessageStatus::Sent => "sent",
            MessageStatus::Failed => "failed",
            MessageStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MessageCommand {
    Schedule(Plan),
    Reschedule {
        at: DateTime<Utc>,
    },
    Cancel,
    /// A try failed in a way that may pass; try again at `retry_at`.
    AttemptFailed {
        answer: String,
        retry_at: DateTime<Utc>,
    },
    /// The provider (or the outbox, or Telegram) took it.
    Sent {
        answer: String,
    },
    /// Given up: the provider refused, or every try failed.
    Failed {
        answer: String,
    },
    /// `at`: now (a reminder is due once its time has come).
    Acknowledge {
        by: Uuid,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MessageEvent {
    Scheduled(Plan),
    Rescheduled {
        at: DateTime<Utc>,
    },
    Cancelled,
    AttemptFailed {
        attempt: u32,
        answer: String,
        retry_at: DateTime<Utc>,
    },
    Sent {
        attempt: u32,
        answer: String,
    },
    Failed {
        attempt: u32,
        answer: String,
    },
    Acknowledged {
        by: Uuid,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for MessageEvent {
    fn event_type(&self) -> String {
        match self {
            MessageEvent::Scheduled(_) => "MessageScheduled",
            MessageEvent::Rescheduled { .. } => "MessageRescheduled",
            MessageEvent::Cancelled => "MessageCancelled",
            MessageEvent::AttemptFailed { .. } => "MessageAttemptFailed",
            MessageEvent::Sent { .. } => "MessageSent",
            MessageEvent::Failed { .. } => "MessageFailed",
            MessageEvent::Acknowledged { .. } => "MessageAcknowledged",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("the message exists already")]
    Exists,
    #[error("no such message")]
    NotFound,
    #[error("the message is {0} already")]
    NotScheduled(&'static str),
    #[error("its time has not come yet")]
    NotDue,
    #[error("invalid")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for MessageError {
    fn kind(&self) -> RuleKind {
        match self {
            MessageError::NotFound => RuleKind::NotFound,
            MessageError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
            _ => RuleKind::Conflict,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            MessageError::Exists => "exists",
            MessageError::NotFound => "not-found",
            MessageError::NotScheduled(_) => "message-not-scheduled",
            MessageError::NotDue => "not-due",
            MessageError::Invalid(_) => "validation",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScheduledMessage {
    pub plan: Option<Plan>,
    pub status: MessageStatus,
    pub attempts: u32,
    pub last_answer: Option<String>,
    /// When to try again after a failed try.
    pub retry_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<Uuid>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

impl ScheduledMessage {
    /// When it is to be sent (its time, or the next try's).
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        let plan = self.plan.as_ref()?;
        Some(
            self.retry_at
                .map_or(plan.scheduled_at, |r| r.max(plan.scheduled_at)),
        )
    }
}

pub fn decide(
    state: &ScheduledMessage,
    command: MessageCommand,
) -> Result<Vec<MessageEvent>, MessageError> {
    use MessageEvent as E;
    if let MessageCommand::Schedule(mut plan) = command {
        if state.plan.is_some() {
            return Err(MessageError::Exists);
        }
        plan.content = plan.content.trim().to_string();
        if plan.content.is_empty() || plan.content.chars().count() > 4000 {
            return Err(MessageError::Invalid(vec![FieldError::new(
                "content",
                "must be 1 to 4000 characters",
            )]));
        }
        return Ok(vec![E::Scheduled(plan)]);
    }
    let plan = state.plan.as_ref().ok_or(MessageError::NotFound)?;
    let open = || {
        if state.status == MessageStatus::Scheduled {
            Ok(())
        } else {
            Err(MessageError::NotScheduled(state.status.as_str()))
        }
    };
    let attempt = state.attempts + 1;
    match command {
        MessageCommand::Schedule(_) => unreachable!("handled above"),
        MessageCommand::Reschedule { at } => {
            open()?;
            Ok(if at == plan.scheduled_at {
                vec![]
            } else {
                vec![E::Rescheduled { at }]
            })
        }
        MessageCommand::Cancel => {
            open()?;
            Ok(vec![E::Cancelled])
        }
        MessageCommand::AttemptFailed { answer, retry_at } => {
            open()?;
            Ok(vec![E::AttemptFailed {
                attempt,
                answer,
                retry_at,
            }])
        }
        MessageCommand::Sent { answer } => {
            open()?;
            Ok(vec![E::Sent { attempt, answer }])
        }
        MessageCommand::Failed { answer } => {
            open()?;
            Ok(vec![E::Failed { attempt, answer }])
        }
        MessageCommand::Acknowledge { by, at } => {
            if state.status == MessageStatus::Cancelled {
                return Err(MessageError::NotScheduled("cancelled"));
            }
            if plan.scheduled_at > at {
                return Err(MessageError::NotDue);
            }
            Ok(if state.acknowledged_by.is_some() {
                vec![]
            } else {
                vec![E::Acknowledged { by, at }]
            })
        }
    }
}

pub fn evolve(state: &mut ScheduledMessage, event: &MessageEvent) {
    use MessageEvent as E;
    match event {
        E::Scheduled(plan) => state.plan = Some(plan.clone()),
        E::Rescheduled { at } => {
            if let Some(plan) = &mut state.plan {
                plan.scheduled_at = *at;
            }
            state.retry_at = None;
        }
        E::Cancelled => state.status = MessageStatus::Cancelled,
        E::AttemptFailed {
            attempt,
            answer,
            retry_at,
        } => {
            state.attempts = *attempt;
            state.last_answer = Some(answer.clone());
            state.retry_at = Some(*retry_at);
        }
        E::Sent { attempt, answer } => {
            state.status = MessageStatus::Sent;
            state.attempts = *attempt;
            state.last_answer = Some(answer.clone());
        }
        E::Failed { attempt, answer } => {
            state.status = MessageStatus::Failed;
            state.attempts = *attempt;
            state.last_answer = Some(answer.clone());
        }
        E::Acknowledged { by, at } => {
            state.acknowledged_by = Some(*by);
            state.acknowledged_at = Some(*at);
        }
    }
}

crate::decider_aggregate!(
    ScheduledMessage,
    "scheduled_message",
    MessageCommand,
    MessageEvent,
    MessageError,
    decide,
    evolve
);

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(at: &str) -> Plan {
        Plan {
            customer_id: Uuid::nil(),
            channel: Channel::Sms,
            to: "+447700900123".into(),
            content: "Your appointment is tomorrow".into(),
            scheduled_at: at.parse().unwrap(),
        }
    }

    fn given(events: &[MessageEvent]) -> ScheduledMessage {
        let mut state = ScheduledMessage::default();
        for e in events {
            evolve(&mut state, e);
        }
        state
    }

    #[test]
    fn only_a_scheduled_message_is_rescheduled_cancelled_or_sent() {
        let scheduled = given(&[MessageEvent::Scheduled(plan("2026-12-02T09:00:00Z"))]);
        let at: DateTime<Utc> = "2026-12-03T09:00:00Z".parse().unwrap();
        assert_eq!(
            decide(&scheduled, MessageCommand::Reschedule { at }),
            Ok(vec![MessageEvent::Rescheduled { at }])
        );
        let sent = given(&[
            MessageEvent::Scheduled(plan("2026-12-02T09:00:00Z")),
            MessageEvent::Sent {
                attempt: 1,
                answer: "200".into(),
            },
        ]);
        for command in [MessageCommand::Cancel, MessageCommand::Reschedule { at }] {
            assert_eq!(
                decide(&sent, command),
                Err(MessageError::NotScheduled("sent"))
            );
        }
        let cancelled = given(&[
            MessageEvent::Scheduled(plan("2026-12-02T09:00:00Z")),
            MessageEvent::Cancelled,
        ]);
        assert_eq!(
            decide(
                &cancelled,
                MessageCommand::Sent {
                    answer: "200".into()
                }
            ),
            Err(MessageError::NotScheduled("cancelled"))
        );
    }

    #[test]
    fn failed_tries_count_and_push_the_next_one_out() {
        let mut state = given(&[MessageEvent::Scheduled(plan("2026-12-02T09:00:00Z"))]);
        let retry_at: DateTime<Utc> = "2026-12-02T09:00:02Z".parse().unwrap();
        for e in decide(
            &state,
            MessageCommand::AttemptFailed {
                answer: "500".into(),
                retry_at,
            },
        )
        .unwrap()
        {
            evolve(&mut state, &e);
        }
        assert_eq!((state.attempts, state.due_at()), (1, Some(retry_at)));
        let events = decide(
            &state,
            MessageCommand::Sent {
                answer: "200".into(),
            },
        )
        .unwrap();
        assert_eq!(
            events,
            vec![MessageEvent::Sent {
                attempt: 2,
                answer: "200".into()
            }]
        );
    }

    #[test]
    fn a_reminder_is_acknowledged_once_its_time_has_come() {
        let state = given(&[MessageEvent::Scheduled(plan("2026-12-02T09:00:00Z"))]);
        let early: DateTime<Utc> = "2026-12-02T08:00:00Z".parse().unwrap();
        assert_eq!(
            decide(
                &state,
                MessageCommand::Acknowledge {
                    by: Uuid::nil(),
                    at: early
                }
            ),
            Err(MessageError::NotDue)
        );
        let later: DateTime<Utc> = "2026-12-02T10:00:00Z".parse().unwrap();
        assert_eq!(
            decide(
                &state,
                MessageCommand::Acknowledge {
                    by: Uuid::nil(),
                    at: later
                }
            )
            .unwrap()
            .len(),
            1
        );
    }
}
