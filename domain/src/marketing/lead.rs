//! A lead: someone an ad campaign brought in, worked by operators —
//! `new → in_progress → converted | lost (reason)`, and `lost → in_progress`
//! (reopened). Notes and activities are kept with who and when. A lead's
//! phone and e-mail are claimed (`LeadContact`) while it is open, so a
//! second open lead with either is refused unless forced.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::user::{Email, Phone, ERASED};
use crate::{FieldError, RuleKind, RuleViolation};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadInfo {
    pub full_name: String,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    /// Attribution: the campaign it came from.
    pub campaign_id: Option<Uuid>,
}

impl LeadInfo {
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = self.full_name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            errors.push(FieldError::new("full_name", "must be 1 to 200 characters"));
        }
        if self.phone.is_none() && self.email.is_none() {
            errors.push(FieldError::new("phone", "a phone or an e-mail is needed"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The keys its contact details are claimed under: `phone:<digits>`,
    /// `email:<lower case>`.
    pub fn contact_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        if let Some(phone) = &self.phone {
            let digits: String = phone
                .as_str()
                .chars()
                .filter(|c| c.is_ascii_digit())
                .collect();
            keys.push(format!("phone:{digits}"));
        }
        if let Some(email) = &self.email {
            keys.push(format!("email:{}", email.as_str().to_lowercase()));
        }
        keys
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    #[default]
    New,
    InProgress,
    Converted,
    Lost,
}

impl LeadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LeadStatus::New => "new",
            LeadStatus::InProgress => "in_progress",
            LeadStatus::Converted => "converted",
            LeadStatus::Lost => "lost",
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, LeadStatus::New | LeadStatus::InProgress)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    Note,
    Call,
    Email,
    Meeting,
}

impl NoteKind {
    pub fn parse(text: &str) -> Option<NoteKind> {
        match text {
            "note" => Some(NoteKind::Note),
            "call" => Some(NoteKind::Call),
            "email" => Some(NoteKind::Email),
            "meeting" => Some(NoteKind::Meeting),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NoteKind::Note => "note",
            NoteKind::Call => "call",
            NoteKind::Email => "email",
            NoteKind::Meeting => "meeting",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub note_id: Uuid,
    pub kind: NoteKind,
    pub text: String,
    pub by: Option<Uuid>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LeadCommand {
    /// `claimed`: the contact keys this lead holds (the workflow claimed
    /// them in the same commit).
    Create {
        info: LeadInfo,
        claimed: Vec<String>,
    },
    /// `claimed`: the contact keys it holds after the change, when open
    /// (the workflow released and claimed them in the same commit).
    Update {
        info: LeadInfo,
        claimed: Option<Vec<String>>,
    },
    Start,
    Lose {
        reason: String,
    },
    Reopen {
        claimed: Vec<String>,
    },
    AddNote(Note),
    Assign {
        operator_id: Uuid,
    },
    Convert {
        customer_id: Uuid,
        contract_id: Uuid,
    },
    /// Crypto-shredding: the lead's contact details, notes and reason
    /// read `[erased]` from now on.
    ErasePersonalData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LeadEvent {
    Created {
        info: LeadInfo,
        claimed: Vec<String>,
    },
    Updated {
        info: LeadInfo,
        /// The claims it holds from now on (absent in events stored before
        /// this field: those kept their first claims).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        claimed: Option<Vec<String>>,
    },
    Started,
    Lost {
        reason: String,
    },
    Reopened {
        claimed: Vec<String>,
    },
    NoteAdded(Note),
    Assigned {
        operator_id: Uuid,
    },
    Converted {
        customer_id: Uuid,
        contract_id: Uuid,
    },
    PersonalDataErased,
}

impl DomainEvent for LeadEvent {
    fn event_type(&self) -> String {
        match self {
            LeadEvent::Created { .. } => "LeadCreated",
            LeadEvent::Updated { .. } => "LeadUpdated",
            LeadEvent::Started => "LeadStarted",
            LeadEvent::Lost { .. } => "LeadLost",
            LeadEvent::Reopened { .. } => "LeadReopened",
            LeadEvent::NoteAdded(_) => "LeadNoteAdded",
            LeadEvent::Assigned { .. } => "LeadAssigned",
            LeadEvent::Converted { .. } => "LeadConverted",
            LeadEvent::PersonalDataErased => "LeadPersonalDataErased",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeadError {
    #[error("the lead exists already")]
    Exists,
    #[error("no such lead")]
    NotFound,
    #[error("the lead is converted already")]
    AlreadyConverted,
    #[error("a {from} lead cannot be {to}")]
    Transition {
        from: &'static str,
        to: &'static str,
    },
    #[error("invalid")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for LeadError {
    fn kind(&self) -> RuleKind {
        match self {
            LeadError::NotFound => RuleKind::NotFound,
            LeadError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
            _ => RuleKind::Conflict,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            LeadError::Exists => "exists",
            LeadError::NotFound => "not-found",
            LeadError::AlreadyConverted => "already-converted",
            LeadError::Transition { .. } => "lead-status",
            LeadError::Invalid(_) => "validation",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lead {
    pub info: Option<LeadInfo>,
    pub status: LeadStatus,
    pub lost_reason: Option<String>,
    pub assigned_to: Option<Uuid>,
    pub notes: Vec<Note>,
    /// The contact keys it holds while open.
    pub claimed: Vec<String>,
    pub customer_id: Option<Uuid>,
    pub contract_id: Option<Uuid>,
}

fn text(field: &str, value: &str, max: usize) -> Result<String, LeadError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(LeadError::Invalid(vec![FieldError::new(
            field,
            format!("must be 1 to {max} characters"),
        )]));
    }
    Ok(value.to_string())
}

pub fn decide(state: &Lead, command: LeadCommand) -> Result<Vec<LeadEvent>, LeadError> {
    use LeadEvent as E;
    use LeadStatus as S;
    if let LeadCommand::Create { mut info, claimed } = command {
        if state.info.is_some() {
            return Err(LeadError::Exists);
        }
        info.check().map_err(LeadError::Invalid)?;
        info.full_name = info.full_name.trim().to_string();
        return Ok(vec![E::Created { info, claimed }]);
    }
    if state.info.is_none() {
        return Err(LeadError::NotFound);
    }
    let transition = |to: &'static str| match state.status {
        S::Converted => LeadError::AlreadyConverted,
        from => LeadError::Transition {
            from: from.as_str(),
            to,
        },
    };
    match command {
        LeadCommand::Create { .. } => unreachable!("handled above"),
        // Always recorded, also a second time: the key's destruction beside
        // it may be retried.
        LeadCommand::ErasePersonalData => Ok(vec![E::PersonalDataErased]),
        LeadCommand::Update { mut info, claimed } => {
            if state.status == S::Converted {
                return Err(LeadError::AlreadyConverted);
            }
            info.check().map_err(LeadError::Invalid)?;
            info.full_name = info.full_name.trim().to_string();
            let same_claims = claimed.as_ref().is_none_or(|c| *c == state.claimed);
            Ok(if state.info.as_ref() == Some(&info) && same_claims {
                vec![]
            } else {
                vec![E::Updated { info, claimed }]
            })
        }
        LeadCommand::Start => match state.status {
            S::New => Ok(vec![E::Started]),
            S::InProgress => Ok(vec![]),
            _ => Err(transition("started")),
        },
        LeadCommand::Lose { reason } => match state.status {
            S::New | S::InProgress => Ok(vec![E::Lost {
                reason: text("reason", &reason, 500)?,
            }]),
            _ => Err(transition("lost")),
        },
        LeadCommand::Reopen { claimed } => match state.status {
            S::Lost => Ok(vec![E::Reopened { claimed }]),
            _ => Err(transition("reopened")),
        },
        LeadCommand::AddNote(mut note) => {
            note.text = text("text", &note.text, 5000)?;
            Ok(vec![E::NoteAdded(note)])
        }
        LeadCommand::Assign { operator_id } => {
            if !state.status.is_open() {
                return Err(transition("assigned"));
            }
            Ok(if state.assigned_to == Some(operator_id) {
                vec![]
            } else {
                vec![E::Assigned { operator_id }]
            })
        }
        LeadCommand::Convert {
            customer_id,
            contract_id,
        } => match state.status {
            S::New | S::InProgress => Ok(vec![E::Converted {
                customer_id,
                contract_id,
            }]),
            _ => Err(transition("converted")),
        },
    }
}

pub fn evolve(state: &mut Lead, event: &LeadEvent) {
    use LeadEvent as E;
    match event {
        E::Created { info, claimed } => {
            state.info = Some(info.clone());
            state.claimed = claimed.clone();
        }
        E::Updated { info, claimed } => {
            state.info = Some(info.clone());
            if let Some(claimed) = claimed {
                state.claimed = claimed.clone();
            }
        }
        E::Started => state.status = LeadStatus::InProgress,
        E::Lost { reason } => {
            state.status = LeadStatus::Lost;
            state.lost_reason = Some(reason.clone());
            state.claimed.clear();
        }
        E::Reopened { claimed } => {
            state.status = LeadStatus::InProgress;
            state.lost_reason = None;
            state.claimed = claimed.clone();
        }
        E::NoteAdded(note) => state.notes.push(note.clone()),
        E::Assigned { operator_id } => state.assigned_to = Some(*operator_id),
        E::Converted {
            customer_id,
            contract_id,
        } => {
            state.status = LeadStatus::Converted;
            state.customer_id = Some(*customer_id);
            state.contract_id = Some(*contract_id);
            state.claimed.clear();
        }
        // The claims stay: they are pseudonyms, not contact details.
        E::PersonalDataErased => {
            if let Some(info) = &mut state.info {
                info.full_name = ERASED.to_string();
                info.phone = None;
                info.email = None;
            }
            for note in &mut state.notes {
                note.text = ERASED.to_string();
            }
            if let Some(reason) = &mut state.lost_reason {
                *reason = ERASED.to_string();
            }
        }
    }
}

crate::decider_aggregate!(
    Lead,
    "lead",
    LeadCommand,
    LeadEvent,
    LeadError,
    decide,
    evolve
);

// ---------------------------------------------------------------- contacts

/// Who holds a phone or an e-mail among the open leads: one stream per
/// contact key, claimed and released in the lead's own commits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeadContact {
    pub holder: Option<ContactHolder>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactHolder {
    pub lead_id: Uuid,
    pub full_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ContactCommand {
    Claim(ContactHolder),
    Release { lead_id: Uuid },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ContactEvent {
    Claimed(ContactHolder),
    Released { lead_id: Uuid },
}

impl DomainEvent for ContactEvent {
    fn event_type(&self) -> String {
        match self {
            ContactEvent::Claimed(_) => "LeadContactClaimed",
            ContactEvent::Released { .. } => "LeadContactReleased",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("an open lead has this contact: {} ({})", .0.full_name, .0.lead_id)]
    Held(ContactHolder),
}

impl RuleViolation for ContactError {
    fn kind(&self) -> RuleKind {
        RuleKind::Conflict
    }
    fn code(&self) -> &'static str {
        "duplicate-lead"
    }
}

pub fn decide_contact(
    state: &LeadContact,
    command: ContactCommand,
) -> Result<Vec<ContactEvent>, ContactError> {
    match command {
        ContactCommand::Claim(holder) => match &state.holder {
            Some(current) if current.lead_id == holder.lead_id => Ok(vec![]),
            Some(current) => Err(ContactError::Held(current.clone())),
            None => Ok(vec![ContactEvent::Claimed(holder)]),
        },
        ContactCommand::Release { lead_id } => Ok(
            if state.holder.as_ref().is_some_and(|h| h.lead_id == lead_id) {
                vec![ContactEvent::Released { lead_id }]
            } else {
                vec![]
            },
        ),
    }
}

pub fn evolve_contact(state: &mut LeadContact, event: &ContactEvent) {
    match event {
        ContactEvent::Claimed(holder) => state.holder = Some(holder.clone()),
        ContactEvent::Released { .. } => state.holder = None,
    }
}

crate::decider_aggregate!(
    LeadContact,
    "lead_contact",
    ContactCommand,
    ContactEvent,
    ContactError,
    decide_contact,
    evolve_contact
);
