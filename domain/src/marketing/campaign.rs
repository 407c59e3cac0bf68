//! An ad campaign for an advertised service: `planned → active →
//! completed`, or `cancelled`. Its budget corrections and spend entries are
//! events, each spend dated, so the spend on any past day is known — and a
//! correction recorded today for last month changes last month.

use chrono::NaiveDate;
use cqrs_es::DomainEvent;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::Money;
use crate::{FieldError, RuleKind, RuleViolation};

/// Channels offered as suggestions; any other text is allowed too.
pub const CHANNELS: [&str; 6] = [
    "search", "social", "email", "offline", "referral", "display",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignTerms {
    pub name: String,
    /// The advertised service (a catalog service).
    pub service_id: Uuid,
    pub channel: String,
    pub budget: Money,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

impl CampaignTerms {
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            errors.push(FieldError::new("name", "must be 1 to 200 characters"));
        }
        if self.channel.trim().is_empty() || self.channel.chars().count() > 50 {
            errors.push(FieldError::new("channel", "must be 1 to 50 characters"));
        }
        if self.ends_on < self.starts_on {
            errors.push(FieldError::new("ends_on", "must not be before starts_on"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    #[default]
    Planned,
    Active,
    Completed,
    Cancelled,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Planned => "planned",
            CampaignStatus::Active => "active",
            CampaignStatus::Completed => "completed",
            CampaignStatus::Cancelled => "cancelled",
        }
    }
}

/// One spend entry: what was spent (or, negative, corrected) on a day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    pub entry_id: Uuid,
    pub amount: Decimal,
    pub on: NaiveDate,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CampaignCommand {
    Plan(CampaignTerms),
    Start,
    Complete,
    Cancel { reason: String },
    CorrectBudget { budget: Money, reason: String },
    RecordSpend(Spend),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CampaignEvent {
    Planned(CampaignTerms),
    Started,
    Completed,
    Cancelled { reason: String },
    BudgetCorrected { budget: Money, reason: String },
    SpendRecorded(Spend),
}

impl DomainEvent for CampaignEvent {
    fn event_type(&self) -> String {
        match self {
            CampaignEvent::Planned(_) => "CampaignPlanned",
            CampaignEvent::Started => "CampaignStarted",
            CampaignEvent::Completed => "CampaignCompleted",
            CampaignEvent::Cancelled { .. } => "CampaignCancelled",
            CampaignEvent::BudgetCorrected { .. } => "CampaignBudgetCorrected",
            CampaignEvent::SpendRecorded(_) => "CampaignSpendRecorded",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CampaignError {
    #[error("the campaign exists already")]
    Exists,
    #[error("no such campaign")]
    NotFound,
    #[error("a {from} campaign cannot be {to}")]
    Transition {
        from: &'static str,
        to: &'static str,
    },
    #[error("the spend up to {on} would be negative")]
    NegativeSpend { on: NaiveDate },
    #[error("the campaign's currency is {0}")]
    Currency(String),
    #[error("invalid")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for CampaignError {
    fn kind(&self) -> RuleKind {
        match self {
            CampaignError::NotFound => RuleKind::NotFound,
            CampaignError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
            _ => RuleKind::Conflict,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            CampaignError::Exists => "exists",
            CampaignError::NotFound => "not-found",
            CampaignError::Transition { .. } => "campaign-status",
            CampaignError::NegativeSpend { .. } => "negative-spend",
            CampaignError::Currency(_) => "currency-mismatch",
            CampaignError::Invalid(_) => "validation",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub terms: Option<CampaignTerms>,
    pub status: CampaignStatus,
    pub cancel_reason: Option<String>,
    pub spend: Vec<Spend>,
}

impl Campaign {
    /// The spend dated on or before `day` (every entry known to this state).
    pub fn spend_up_to(&self, day: NaiveDate) -> Decimal {
        self.spend
            .iter()
            .filter(|s| s.on <= day)
            .map(|s| s.amount)
            .sum()
    }
}

fn reason(text: &str) -> Result<String, CampaignError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 500 {
        return Err(CampaignError::Invalid(vec![FieldError::new(
            "reason",
            "must be 1 to 500 characters",
        )]));
    }
    Ok(text.to_string())
}

pub fn decide(
    state: &Campaign,
    command: CampaignCommand,
) -> Result<Vec<CampaignEvent>, CampaignError> {
    use CampaignEvent as E;
    use CampaignStatus as S;
    if let CampaignCommand::Plan(terms) = command {
        if state.terms.is_some() {
            return Err(CampaignError::Exists);
        }
        terms.check().map_err(CampaignError::Invalid)?;
        return Ok(vec![E::Planned(terms)]);
    }
    let terms = state.terms.as_ref().ok_or(CampaignError::NotFound)?;
    let transition = |to: &'static str| CampaignError::Transition {
        from: state.status.as_str(),
        to,
    };
    match command {
        CampaignCommand::Plan(_) => unreachable!("handled above"),
        CampaignCommand::Start => match state.status {
            S::Planned => Ok(vec![E::Started]),
            S::Active => Ok(vec![]),
            _ => Err(transition("started")),
        },
        CampaignCommand::Complete => match state.status {
            S::Active => Ok(vec![E::Completed]),
            S::Completed => Ok(vec![]),
            _ => Err(transition("completed")),
        },
        CampaignCommand::Cancel { reason: why } => match state.status {
            S::Planned | S::Active => Ok(vec![E::Cancelled {
                reason: reason(&why)?,
            }]),
            S::Cancelled => Ok(vec![]),
            S::Completed => Err(transition("cancelled")),
        },
        CampaignCommand::CorrectBudget {
            budget,
            reason: why,
        } => {
            if budget.currency != terms.budget.currency {
                return Err(CampaignError::Currency(terms.budget.currency.clone()));
            }
            Ok(vec![E::BudgetCorrected {
                budget,
                reason: reason(&why)?,
            }])
        }
        CampaignCommand::RecordSpend(spend) => {
            if spend.amount.is_zero() {
                return Err(CampaignError::Invalid(vec![FieldError::new(
                    "amount",
                    "must not be zero",
                )]));
            }
            if spend.amount.scale() > 2 && spend.amount.normalize().scale() > 2 {
                return Err(CampaignError::Invalid(vec![FieldError::new(
                    "amount",
                    "at most 2 decimal places",
                )]));
            }
            if spend.amount.abs() > Decimal::from(1_000_000_000) {
                return Err(CampaignError::Invalid(vec![FieldError::new(
                    "amount",
                    "is too large",
                )]));
            }
            if state.spend.iter().any(|s| s.entry_id == spend.entry_id) {
                return Ok(vec![]);
            }
            // A correction may not take the spend below zero on any day.
            let mut entries: Vec<&Spend> = state.spend.iter().chain([&spend]).collect();
            // A day's entries count together: its positive ones first.
            entries.sort_by(|a, b| a.on.cmp(&b.on).then(b.amount.cmp(&a.amount)));
            let mut total = Decimal::ZERO;
            for entry in entries {
                total += entry.amount;
                if total.is_sign_negative() && !total.is_zero() {
                    return Err(CampaignError::NegativeSpend { on: entry.on });
                }
            }
            Ok(vec![E::SpendRecorded(spend)])
        }
    }
}

pub fn evolve(state: &mut Campaign, event: &CampaignEvent) {
    use CampaignEvent as E;
    match event {
        E::Planned(terms) => state.terms = Some(terms.clone()),
        E::Started => state.status = CampaignStatus::Active,
        E::Completed => state.status = CampaignStatus::Completed,
        E::Cancelled { reason } => {
            state.status = CampaignStatus::Cancelled;
            state.cancel_reason = Some(reason.clone());
        }
        E::BudgetCorrected { budget, .. } => {
            if let Some(terms) = &mut state.terms {
                terms.budget = budget.clone();
            }
        }
        E::SpendRecorded(spend) => state.spend.push(spend.clone()),
    }
}

crate::decider_aggregate!(
    Campaign,
    "campaign",
    CampaignCommand,
    CampaignEvent,
    CampaignError,
    decide,
    evolve
);
