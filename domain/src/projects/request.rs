//! A client's project request, for its whole life: `requested → planned →
//! in_progress → ready_for_delivery → delivered`, or `refused` /
//! `withdrawn`. The state is folded from the events; nothing is copied or
//! deleted. What was agreed first stays beside every re-plan.

use chrono::NaiveDate;
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::Money;
use crate::{FieldError, RuleKind, RuleViolation};

/// A file from the file storage, or a link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attachment {
    File(Uuid),
    Url(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub client_id: Uuid,
    pub title: String,
    pub description: String,
    pub desired_deadline: Option<NaiveDate>,
    pub budget_hint: Option<Money>,
    pub attachments: Vec<Attachment>,
}

/// Price and deadline, as agreed at acceptance or after a re-plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    pub price: Money,
    pub deadline: NaiveDate,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectState {
    #[default]
    Requested,
    Planned,
    InProgress,
    ReadyForDelivery,
    Delivered,
    Refused,
    Withdrawn,
}

impl ProjectState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectState::Requested => "requested",
            ProjectState::Planned => "planned",
            ProjectState::InProgress => "in_progress",
            ProjectState::ReadyForDelivery => "ready_for_delivery",
            ProjectState::Delivered => "delivered",
            ProjectState::Refused => "refused",
            ProjectState::Withdrawn => "withdrawn",
        }
    }

    /// Where the work stands, for the staff queue: `on_queue` (accepted,
    /// not started), `in_work`, `awaiting_receipt`; none before acceptance
    /// and after the end.
    pub fn working_status(self) -> Option<&'static str> {
        match self {
            ProjectState::Planned => Some("on_queue"),
            ProjectState::InProgress => Some("in_work"),
            ProjectState::ReadyForDelivery => Some("awaiting_receipt"),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProjectCommand {
    Request(Request),
    Accept(Agreement),
    Refuse {
        reason: String,
    },
    KeepWaiting {
        note: String,
    },
    /// The client's, before the work has started.
    Withdraw,
    Start,
    Progress {
        percent_done: u8,
        note: String,
        /// Required when the percentage goes down.
        reason: Option<String>,
    },
    Replan {
        price: Option<Money>,
        deadline: Option<NaiveDate>,
        reason: String,
    },
    ReadyForDelivery,
    /// The client confirms receipt, or the auto-confirmation does.
    ConfirmReceipt {
        automatic: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProjectEvent {
    Requested(Request),
    Accepted(Agreement),
    Refused {
        reason: String,
    },
    KeptWaiting {
        note: String,
    },
    Withdrawn,
    Started,
    ProgressReported {
        percent_done: u8,
        note: String,
        reason: Option<String>,
    },
    Replanned {
        price: Option<Money>,
        deadline: Option<NaiveDate>,
        reason: String,
    },
    ReadyForDelivery,
    Delivered {
        automatic: bool,
    },
}

impl ProjectEvent {
    /// The state this event moves the project into, if it moves it.
    pub fn new_state(&self) -> Option<ProjectState> {
        use ProjectEvent as E;
        Some(match self {
            E::Requested(_) => ProjectState::Requested,
            E::Accepted(_) => ProjectState::Planned,
            E::Refused { .. } => ProjectState::Refused,
            E::Withdrawn => ProjectState::Withdrawn,
            E::Started => ProjectState::InProgress,
            E::ReadyForDelivery => ProjectState::ReadyForDelivery,
            E::Delivered { .. } => ProjectState::Delivered,
            E::KeptWaiting { .. } | E::ProgressReported { .. } | E::Replanned { .. } => {
                return None
            }
        })
    }
}

impl DomainEvent for ProjectEvent {
    fn event_type(&self) -> String {
        match self {
            ProjectEvent::Requested(_) => "ProjectRequested",
            ProjectEvent::Accepted(_) => "ProjectAccepted",
            ProjectEvent::Refused { .. } => "ProjectRefused",
            ProjectEvent::KeptWaiting { .. } => "ProjectKeptWaiting",
            ProjectEvent::Withdrawn => "ProjectWithdrawn",
            ProjectEvent::Started => "ProjectStarted",
            ProjectEvent::ProgressReported { .. } => "ProjectProgressReported",
            ProjectEvent::Replanned { .. } => "ProjectReplanned",
            ProjectEvent::ReadyForDelivery => "ProjectReadyForDelivery",
            ProjectEvent::Delivered { .. } => "ProjectDelivered",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectError {
    #[error("the project exists already")]
    Exists,
    #[error("no such project")]
    NotFound,
    #[error("the project is {state}; {action} needs it {needed}")]
    WrongState {
        state: &'static str,
        action: &'static str,
        needed: &'static str,
    },
    #[error("percent done would go back from {from} to {to}: give a reason")]
    ProgressBackwards { from: u8, to: u8 },
    #[error("the project is priced in {0}")]
    Currency(String),
    #[error("that is the agreed price and deadline already")]
    NoChange,
    #[error("invalid")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for ProjectError {
    fn kind(&self) -> RuleKind {
        match self {
            ProjectError::NotFound => RuleKind::NotFound,
            ProjectError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
            _ => RuleKind::Conflict,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            ProjectError::Exists => "exists",
            ProjectError::NotFound => "not-found",
            ProjectError::WrongState { .. } => "project-state",
            ProjectError::ProgressBackwards { .. } => "progress-backwards",
            ProjectError::Currency(_) => "currency-mismatch",
            ProjectError::NoChange => "no-change",
            ProjectError::Invalid(_) => "validation",
        }
    }
}

/// A re-plan as the client sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replan {
    pub price: Option<Money>,
    pub deadline: Option<NaiveDate>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectRequest {
    pub request: Option<Request>,
    pub state: ProjectState,
    /// What was agreed at acceptance.
    pub first_agreement: Option<Agreement>,
    /// What holds now (the first agreement with every re-plan applied).
    pub agreement: Option<Agreement>,
    pub replans: Vec<Replan>,
    pub percent_done: u8,
    pub last_note: Option<String>,
    /// The latest "keep waiting" note, while the request is unanswered.
    pub waiting_note: Option<String>,
    pub refusal_reason: Option<String>,
    pub delivered_automatically: bool,
}

fn text(field: &str, value: &str, max: usize) -> Result<String, ProjectError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(ProjectError::Invalid(vec![FieldError::new(
            field,
            format!("must be 1 to {max} characters"),
        )]));
    }
    Ok(value.to_string())
}

pub fn decide(
    project: &ProjectRequest,
    command: ProjectCommand,
) -> Result<Vec<ProjectEvent>, ProjectError> {
    use ProjectCommand as C;
    use ProjectEvent as E;
    use ProjectState as S;
    if let C::Request(mut request) = command {
        if project.request.is_some() {
            return Err(ProjectError::Exists);
        }
        request.title = text("title", &request.title, 200)?;
        request.description = request.description.trim().to_string();
        return Ok(vec![E::Requested(request)]);
    }
    if project.request.is_none() {
        return Err(ProjectError::NotFound);
    }
    let must_be = |action: &'static str, needed: &'static str, allowed: &[S]| {
        if allowed.contains(&project.state) {
            Ok(())
        } else {
            Err(ProjectError::WrongState {
                state: project.state.as_str(),
                action,
                needed,
            })
        }
    };
    match command {
        C::Request(_) => unreachable!("handled above"),
        C::Accept(agreement) => {
            must_be("accepting", "requested", &[S::Requested])?;
            Ok(vec![E::Accepted(agreement)])
        }
        C::Refuse { reason } => {
            must_be("refusing", "requested", &[S::Requested])?;
            Ok(vec![E::Refused {
                reason: text("reason", &reason, 2000)?,
            }])
        }
        C::KeepWaiting { note } => {
            must_be("keeping it waiting", "requested", &[S::Requested])?;
            Ok(vec![E::KeptWaiting {
                note: text("note", &note, 2000)?,
            }])
        }
        C::Withdraw => {
            must_be(
                "withdrawing",
                "requested or planned",
                &[S::Requested, S::Planned],
            )?;
            Ok(vec![E::Withdrawn])
        }
        C::Start => {
            must_be("starting", "planned", &[S::Planned])?;
            Ok(vec![E::Started])
        }
        C::Progress {
            percent_done,
            note,
            reason,
        } => {
            must_be("reporting progress", "in_progress", &[S::InProgress])?;
            if percent_done > 100 {
                return Err(ProjectError::Invalid(vec![FieldError::new(
                    "percent_done",
                    "must be 0 to 100",
                )]));
            }
            let note = text("note", &note, 2000)?;
            let reason = match reason.as_deref().map(str::trim) {
                Some("") | None => None,
                Some(r) => Some(text("reason", r, 2000)?),
            };
            if percent_done < project.percent_done && reason.is_none() {
                return Err(ProjectError::ProgressBackwards {
                    from: project.percent_done,
                    to: percent_done,
                });
            }
            Ok(vec![E::ProgressReported {
                percent_done,
                note,
                reason,
            }])
        }
        C::Replan {
            price,
            deadline,
            reason,
        } => {
            must_be(
                "re-planning",
                "planned, in_progress or ready_for_delivery",
                &[S::Planned, S::InProgress, S::ReadyForDelivery],
            )?;
            let reason = text("reason", &reason, 2000)?;
            let now = project.agreement.as_ref().expect("agreed when planned");
            if let Some(p) = &price {
                if p.currency != now.price.currency {
                    return Err(ProjectError::Currency(now.price.currency.clone()));
                }
            }
            if price.is_none() && deadline.is_none() {
                return Err(ProjectError::Invalid(vec![FieldError::new(
                    "price",
                    "give a new price or a new deadline (or both)",
                )]));
            }
            let price = price.filter(|p| p.amount != now.price.amount);
            let deadline = deadline.filter(|d| *d != now.deadline);
            if price.is_none() && deadline.is_none() {
                return Err(ProjectError::NoChange);
            }
            Ok(vec![E::Replanned {
                price,
                deadline,
                reason,
            }])
        }
        C::ReadyForDelivery => {
            must_be("delivering", "in_progress", &[S::InProgress])?;
            Ok(vec![E::ReadyForDelivery])
        }
        C::ConfirmReceipt { automatic } => {
            must_be(
                "confirming receipt",
                "ready_for_delivery",
                &[S::ReadyForDelivery],
            )?;
            Ok(vec![E::Delivered { automatic }])
        }
    }
}

pub fn evolve(project: &mut ProjectRequest, event: &ProjectEvent) {
    use ProjectEvent as E;
    if let Some(state) = event.new_state() {
        project.state = state;
    }
    match event {
        E::Requested(request) => project.request = Some(request.clone()),
        E::Accepted(agreement) => {
            project.first_agreement = Some(agreement.clone());
            project.agreement = Some(agreement.clone());
            project.waiting_note = None;
        }
        E::Refused { reason } => {
            project.refusal_reason = Some(reason.clone());
            project.waiting_note = None;
        }
        E::KeptWaiting { note } => project.waiting_note = Some(note.clone()),
        E::Withdrawn | E::Started => {}
        E::ProgressReported {
            percent_done, note, ..
        } => {
            project.percent_done = *percent_done;
            project.last_note = Some(note.clone());
        }
        E::Replanned {
            price,
            deadline,
            reason,
        } => {
            if let Some(agreement) = &mut project.agreement {
                if let Some(price) = price {
                    agreement.price = price.clone();
                }
                if let Some(deadline) = deadline {
                    agreement.deadline = *deadline;
                }
            }
            project.replans.push(Replan {
                price: price.clone(),
                deadline: *deadline,
                reason: reason.clone(),
            });
        }
        E::ReadyForDelivery => project.percent_done = 100,
        E::Delivered { automatic } => project.delivered_automatically = *automatic,
    }
}

crate::decider_aggregate!(
    ProjectRequest,
    "project",
    ProjectCommand,
    ProjectEvent,
    ProjectError,
    decide,
    evolve
);
