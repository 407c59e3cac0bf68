//! The client portal around projects: feedback from clients, messages from
//! the business to a client (read or not), and the products roadmap with
//! the clients interested in each product.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{FieldError, RuleKind, RuleViolation};

macro_rules! topics {
    ($name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
    };
}

topics!(FeedbackTopic {
    Service = "service",
    Workflow = "workflow",
    Quality = "quality",
    Other = "other",
});

topics!(MessageTopic {
    Project = "project",
    Workflow = "workflow",
    Other = "other",
});

topics!(RoadmapState {
    Planned = "planned",
    InWork = "in_work",
    Available = "available",
});

/// The one error of the portal's aggregates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortalError {
    #[error("it exists already")]
    Exists,
    #[error("not found")]
    NotFound,
    #[error("the product is {state}; {action} needs it {needed}")]
    WrongState {
        state: &'static str,
        action: &'static str,
        needed: &'static str,
    },
    #[error("invalid")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for PortalError {
    fn kind(&self) -> RuleKind {
        match self {
            PortalError::NotFound => RuleKind::NotFound,
            PortalError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
            _ => RuleKind::Conflict,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            PortalError::Exists => "exists",
            PortalError::NotFound => "not-found",
            PortalError::WrongState { .. } => "roadmap-state",
            PortalError::Invalid(_) => "validation",
        }
    }
}

fn text(field: &str, value: &str, max: usize) -> Result<String, PortalError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(PortalError::Invalid(vec![FieldError::new(
            field,
            format!("must be 1 to {max} characters"),
        )]));
    }
    Ok(value.to_string())
}

// ---- feedback -------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackNote {
    pub client_id: Uuid,
    pub topic: FeedbackTopic,
    pub text: String,
    pub project_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FeedbackCommand {
    Submit(FeedbackNote),
    Handle { by: Uuid },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FeedbackEvent {
    Submitted(FeedbackNote),
    Handled { by: Uuid },
}

impl DomainEvent for FeedbackEvent {
    fn event_type(&self) -> String {
        match self {
            FeedbackEvent::Submitted(_) => "FeedbackSubmitted",
            FeedbackEvent::Handled { .. } => "FeedbackHandled",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub note: Option<FeedbackNote>,
    pub handled_by: Option<Uuid>,
}

pub fn decide_feedback(
    state: &Feedback,
    command: FeedbackCommand,
) -> Result<Vec<FeedbackEvent>, PortalError> {
    match command {
        FeedbackCommand::Submit(mut note) => {
            if state.note.is_some() {
                return Err(PortalError::Exists);
            }
            note.text = text("text", &note.text, 5000)?;
            Ok(vec![FeedbackEvent::Submitted(note)])
        }
        FeedbackCommand::Handle { by } => {
            state.note.as_ref().ok_or(PortalError::NotFound)?;
            // Handling twice changes nothing.
            Ok(if state.handled_by.is_some() {
                vec![]
            } else {
                vec![FeedbackEvent::Handled { by }]
            })
        }
    }
}

pub fn evolve_feedback(state: &mut Feedback, event: &FeedbackEvent) {
    match event {
        FeedbackEvent::Submitted(note) => state.note = Some(note.clone()),
        FeedbackEvent::Handled { by } => state.handled_by = Some(*by),
    }
}

crate::decider_aggregate!(
    Feedback,
    "feedback",
    FeedbackCommand,
    FeedbackEvent,
    PortalError,
    decide_feedback,
    evolve_feedback
);

// ---- messages to clients -------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Letter {
    pub client_id: Uuid,
    pub topic: MessageTopic,
    pub subject: String,
    pub body: String,
    pub project_id: Option<Uuid>,
    pub sent_by: Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClientMessageCommand {
    Send(Letter),
    /// The client opened it.
    MarkRead {
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClientMessageEvent {
    Sent(Letter),
    Read { at: DateTime<Utc> },
}

impl DomainEvent for ClientMessageEvent {
    fn event_type(&self) -> String {
        match self {
            ClientMessageEvent::Sent(_) => "ClientMessageSent",
            ClientMessageEvent::Read { .. } => "ClientMessageRead",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientMessage {
    pub letter: Option<Letter>,
    pub read_at: Option<DateTime<Utc>>,
}

pub fn decide_message(
    state: &ClientMessage,
    command: ClientMessageCommand,
) -> Result<Vec<ClientMessageEvent>, PortalError> {
    match command {
        ClientMessageCommand::Send(mut letter) => {
            if state.letter.is_some() {
                return Err(PortalError::Exists);
            }
            letter.subject = text("subject", &letter.subject, 200)?;
            letter.body = text("body", &letter.body, 10_000)?;
            Ok(vec![ClientMessageEvent::Sent(letter)])
        }
        ClientMessageCommand::MarkRead { at } => {
            state.letter.as_ref().ok_or(PortalError::NotFound)?;
            Ok(if state.read_at.is_some() {
                vec![]
            } else {
                vec![ClientMessageEvent::Read { at }]
            })
        }
    }
}

pub fn evolve_message(state: &mut ClientMessage, event: &ClientMessageEvent) {
    match event {
        ClientMessageEvent::Sent(letter) => state.letter = Some(letter.clone()),
        ClientMessageEvent::Read { at } => state.read_at = Some(*at),
    }
}

crate::decider_aggregate!(
    ClientMessage,
    "client_message",
    ClientMessageCommand,
    ClientMessageEvent,
    PortalError,
    decide_message,
    evolve_message
);

// ---- the products roadmap ------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RoadmapCommand {
    Plan {
        name: String,
        description: String,
    },
    StartWork,
    MakeAvailable,
    /// A client asks to buy it once it is available.
    RegisterInterest {
        client_id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RoadmapEvent {
    Planned { name: String, description: String },
    WorkStarted,
    MadeAvailable,
    InterestRegistered { client_id: Uuid },
}

impl DomainEvent for RoadmapEvent {
    fn event_type(&self) -> String {
        match self {
            RoadmapEvent::Planned { .. } => "RoadmapProductPlanned",
            RoadmapEvent::WorkStarted => "RoadmapProductWorkStarted",
            RoadmapEvent::MadeAvailable => "RoadmapProductMadeAvailable",
            RoadmapEvent::InterestRegistered { .. } => "RoadmapInterestRegistered",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoadmapProduct {
    pub name: Option<String>,
    pub description: String,
    pub state: Option<RoadmapState>,
    /// Clients who asked to buy it, in the order they asked.
    pub interested: Vec<Uuid>,
}

pub fn decide_roadmap(
    product: &RoadmapProduct,
    command: RoadmapCommand,
) -> Result<Vec<RoadmapEvent>, PortalError> {
    use RoadmapState as S;
    if let RoadmapCommand::Plan { name, description } = command {
        if product.name.is_some() {
            return Err(PortalError::Exists);
        }
        return Ok(vec![RoadmapEvent::Planned {
            name: text("name", &name, 200)?,
            description: description.trim().to_string(),
        }]);
    }
    let state = product.state.ok_or(PortalError::NotFound)?;
    let must_be = |action: &'static str, needed: &'static str, allowed: &[S]| {
        if allowed.contains(&state) {
            Ok(())
        } else {
            Err(PortalError::WrongState {
                state: state.as_str(),
                action,
                needed,
            })
        }
    };
    match command {
        RoadmapCommand::Plan { .. } => unreachable!("handled above"),
        RoadmapCommand::StartWork => {
            must_be("starting work", "planned", &[S::Planned])?;
            Ok(vec![RoadmapEvent::WorkStarted])
        }
        RoadmapCommand::MakeAvailable => {
            must_be(
                "making it available",
                "planned or in_work",
                &[S::Planned, S::InWork],
            )?;
            Ok(vec![RoadmapEvent::MadeAvailable])
        }
        RoadmapCommand::RegisterInterest { client_id } => {
            must_be(
                "registering interest",
                "planned or in_work (an available product is bought, not awaited)",
                &[S::Planned, S::InWork],
            )?;
            // Asking twice counts once.
            Ok(if product.interested.contains(&client_id) {
                vec![]
            } else {
                vec![RoadmapEvent::InterestRegistered { client_id }]
            })
        }
    }
}

pub fn evolve_roadmap(product: &mut RoadmapProduct, event: &RoadmapEvent) {
    match event {
        RoadmapEvent::Planned { name, description } => {
            product.name = Some(name.clone());
            product.description = description.clone();
            product.state = Some(RoadmapState::Planned);
        }
        RoadmapEvent::WorkStarted => product.state = Some(RoadmapState::InWork),
        RoadmapEvent::MadeAvailable => product.state = Some(RoadmapState::Available),
        RoadmapEvent::InterestRegistered { client_id } => product.interested.push(*client_id),
    }
}

crate::decider_aggregate!(
    RoadmapProduct,
    "roadmap_product",
    RoadmapCommand,
    RoadmapEvent,
    PortalError,
    decide_roadmap,
    evolve_roadmap
);
