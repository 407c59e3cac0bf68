//! A client's subscription to a plan. Each payment renews it: while it
//! covers the payment date the new period follows on from its end, after it
//! lapsed a new period starts on the payment date (or a given start date).
//! A freeze pushes the end out by its days, within the quota the paid
//! periods allow; ending a freeze early gives the unused days back. Whether
//! the client is active on a day is derived, for any day, from the periods,
//! freezes and cancellation recorded here.

use chrono::{Duration, NaiveDate};
use cqrs_es::DomainEvent;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::plan::PlanLength;
use crate::values::Money;
use crate::{FieldError, RuleKind, RuleViolation};

pub const MAX_FREEZE_DAYS: u32 = 365;

/// A client's standing on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// A paid period covers the day and it is not frozen.
    Active,
    /// A paid period covers the day, but it is frozen.
    Frozen,
    /// No paid period covers the day (not yet, lapsed, or cancelled).
    Inactive,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Active => "active",
            Standing::Frozen => "frozen",
            Standing::Inactive => "inactive",
        }
    }

    /// Which of two standings counts for a client with both: active, then
    /// frozen, then inactive.
    pub fn rank(self) -> u8 {
        match self {
            Standing::Active => 2,
            Standing::Frozen => 1,
            Standing::Inactive => 0,
        }
    }
}

/// What one payment paid for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub payment_id: Uuid,
    pub paid_on: NaiveDate,
    /// `None`: follows on from the coverage before it; a date: starts then.
    pub starts_on: Option<NaiveDate>,
    pub length: PlanLength,
    pub freeze_days: u32,
    pub voided: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: Uuid,
    pub amount: Decimal,
    pub currency: String,
    pub method: String,
    pub paid_on: NaiveDate,
    pub recorded_by: Option<Uuid>,
    pub voided: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    pub id: Uuid,
    pub start: NaiveDate,
    pub days: u32,
    /// Ended early: active again from this day.
    pub ended_on: Option<NaiveDate>,
}

impl Freeze {
    /// The days it froze (or will): all of them, or those before it ended.
    pub fn used(&self) -> u32 {
        match self.ended_on {
            Some(on) => (on - self.start).num_days().clamp(0, i64::from(self.days)) as u32,
            None => self.days,
        }
    }

    /// Its frozen days, inclusive (`None`: ended on its first day).
    pub fn span(&self) -> Option<(NaiveDate, NaiveDate)> {
        let used = self.used();
        (used > 0).then(|| (self.start, self.start + Duration::days(i64::from(used) - 1)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    /// Not active from this day on.
    pub on: NaiveDate,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SubscriptionCommand {
    Open {
        client_id: Uuid,
        plan_id: Uuid,
    },
    Pay {
        payment_id: Uuid,
        amount: Money,
        method: String,
        paid_on: NaiveDate,
        /// A later start for a new period (ignored while it is covered).
        start_on: Option<NaiveDate>,
        /// The plan's terms when paid.
        length: PlanLength,
        freeze_days: u32,
        recorded_by: Option<Uuid>,
    },
    VoidPayment {
        payment_id: Uuid,
        reason: String,
    },
    Freeze {
        freeze_id: Uuid,
        start: NaiveDate,
        days: u32,
    },
    EndFreeze {
        freeze_id: Uuid,
        on: NaiveDate,
    },
    Cancel {
        on: NaiveDate,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SubscriptionEvent {
    Opened {
        client_id: Uuid,
        plan_id: Uuid,
    },
    PaymentRecorded {
        payment_id: Uuid,
        amount: Decimal,
        currency: String,
        method: String,
        paid_on: NaiveDate,
        starts_on: Option<NaiveDate>,
        length: PlanLength,
        freeze_days: u32,
        recorded_by: Option<Uuid>,
    },
    PaymentVoided {
        payment_id: Uuid,
        reason: String,
    },
    Frozen {
        freeze_id: Uuid,
        start: NaiveDate,
        days: u32,
    },
    FreezeEnded {
        freeze_id: Uuid,
        on: NaiveDate,
    },
    Cancelled {
        on: NaiveDate,
        reason: String,
    },
}

impl DomainEvent for SubscriptionEvent {
    fn event_type(&self) -> String {
        match self {
            SubscriptionEvent::Opened { .. } => "SubscriptionOpened",
            SubscriptionEvent::PaymentRecorded { .. } => "SubscriptionPaymentRecorded",
            SubscriptionEvent::PaymentVoided { .. } => "SubscriptionPaymentVoided",
            SubscriptionEvent::Frozen { .. } => "SubscriptionFrozen",
            SubscriptionEvent::FreezeEnded { .. } => "SubscriptionFreezeEnded",
            SubscriptionEvent::Cancelled { .. } => "SubscriptionCancelled",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    #[error("the client has this subscription already")]
    Exists,
    #[error("no such subscription")]
    NotFound,
    #[error("the subscription is cancelled (from {on})")]
    Cancelled { on: NaiveDate },
    #[error("no such payment")]
    PaymentNotFound,
    #[error("no such freeze")]
    FreezeNotFound,
    #[error("{start} is not in a paid period")]
    OutsidePaidPeriod { start: NaiveDate },
    #[error("it overlaps the freeze from {other}")]
    Overlap { other: NaiveDate },
    #[error("only {remaining} freeze days are left")]
    QuotaExceeded { remaining: u32 },
    #[error("the freeze is over by then")]
    FreezeOver,
    #[error("invalid subscription command")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for SubscriptionError {
    fn kind(&self) -> RuleKind {
        match self {
            SubscriptionError::NotFound
            | SubscriptionError::PaymentNotFound
            | SubscriptionError::FreezeNotFound => RuleKind::NotFound,
            SubscriptionError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
            _ => RuleKind::Conflict,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            SubscriptionError::Exists => "subscription-exists",
            SubscriptionError::NotFound
            | SubscriptionError::PaymentNotFound
            | SubscriptionError::FreezeNotFound => "not-found",
            SubscriptionError::Cancelled { .. } => "subscription-cancelled",
            SubscriptionError::OutsidePaidPeriod { .. } => "outside-paid-period",
            SubscriptionError::Overlap { .. } => "freeze-overlaps",
            SubscriptionError::QuotaExceeded { .. } => "freeze-quota-exceeded",
            SubscriptionError::FreezeOver => "freeze-over",
            SubscriptionError::Invalid(_) => "validation",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub client_id: Option<Uuid>,
    pub plan_id: Option<Uuid>,
    pub periods: Vec<Period>,
    pub payments: Vec<Payment>,
    pub freezes: Vec<Freeze>,
    pub cancelled: Option<Cancellation>,
}

impl Subscription {
    /// The days it covers, paid and frozen ones, as inclusive spans, oldest
    /// first: each period follows on from the one before (or starts on its
    /// date after a lapse), and a freeze starting inside a span pushes its
    /// end out by the days it froze.
    pub fn spans(&self) -> Vec<(NaiveDate, NaiveDate)> {
        let mut freezes: Vec<(NaiveDate, u32)> = self
            .freezes
            .iter()
            .filter(|f| f.used() > 0)
            .map(|f| (f.start, f.used()))
            .collect();
        freezes.sort();
        let mut applied = vec![false; freezes.len()];
        let mut spans: Vec<(NaiveDate, NaiveDate)> = Vec::new();
        for period in self.periods.iter().filter(|p| !p.voided) {
            let after_last = spans.last().map(|&(_, end)| end + Duration::days(1));
            let start = match (period.starts_on, after_last) {
                (Some(on), Some(next)) if on <= next => next,
                (Some(on), _) => on,
                (None, Some(next)) => next,
                (None, None) => period.paid_on,
            };
            let mut end = period.length.last_day(start);
            // Freezes inside push the end out, which may take in more.
            loop {
                let mut pushed = false;
                for (i, (from, days)) in freezes.iter().enumerate() {
                    let span_start = match spans.last() {
                        Some(&(s, e)) if e + Duration::days(1) == start => s,
                        _ => start,
                    };
                    if !applied[i] && *from >= span_start && *from <= end {
                        applied[i] = true;
                        end += Duration::days(i64::from(*days));
                        pushed = true;
                    }
                }
                if !pushed {
                    break;
                }
            }
            match spans.last_mut() {
                Some(last) if last.1 + Duration::days(1) == start => last.1 = end,
                _ => spans.push((start, end)),
            }
        }
        if let Some(cancel) = &self.cancelled {
            spans.retain(|&(start, _)| start < cancel.on);
            if let Some(last) = spans.last_mut() {
                last.1 = last.1.min(cancel.on - Duration::days(1));
            }
        }
        spans
    }

    /// The client's standing on `day`.
    pub fn standing(&self, day: NaiveDate) -> Standing {
        let covered = self.spans().iter().any(|&(s, e)| s <= day && day <= e);
        if !covered {
            return Standing::Inactive;
        }
        let frozen = self
            .freezes
            .iter()
            .filter_map(Freeze::span)
            .any(|(s, e)| s <= day && day <= e);
        if frozen {
            Standing::Frozen
        } else {
            Standing::Active
        }
    }

    /// The last day it covers (as known now).
    pub fn ends_on(&self) -> Option<NaiveDate> {
        self.spans().last().map(|&(_, end)| end)
    }

    /// Freeze days the paid periods allow, less those used.
    pub fn freeze_days_left(&self) -> u32 {
        let allowed: u32 = self
            .periods
            .iter()
            .filter(|p| !p.voided)
            .map(|p| p.freeze_days)
            .sum();
        let used: u32 = self.freezes.iter().map(Freeze::used).sum();
        allowed.saturating_sub(used)
    }
}

fn text(field: &str, value: &str, max: usize) -> Result<String, SubscriptionError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(SubscriptionError::Invalid(vec![FieldError::new(
            field,
            format!("must be 1 to {max} characters"),
        )]));
    }
    Ok(value.to_string())
}

pub fn decide(
    state: &Subscription,
    command: SubscriptionCommand,
) -> Result<Vec<SubscriptionEvent>, SubscriptionError> {
    use SubscriptionEvent as E;
    if let SubscriptionCommand::Open { client_id, plan_id } = command {
        if state.client_id.is_some() {
            return Err(SubscriptionError::Exists);
        }
        return Ok(vec![E::Opened { client_id, plan_id }]);
    }
    if state.client_id.is_none() {
        return Err(SubscriptionError::NotFound);
    }
    let open = || match &state.cancelled {
        Some(c) => Err(SubscriptionError::Cancelled { on: c.on }),
        None => Ok(()),
    };
    match command {
        SubscriptionCommand::Open { .. } => unreachable!("handled above"),
        SubscriptionCommand::Pay {
            payment_id,
            amount,
            method,
            paid_on,
            start_on,
            length,
            freeze_days,
            recorded_by,
        } => {
            if state.payments.iter().any(|p| p.id == payment_id) {
                return Ok(vec![]);
            }
            open()?;
            if amount.amount <= Decimal::ZERO {
                return Err(SubscriptionError::Invalid(vec![FieldError::new(
                    "amount",
                    "must be more than 0",
                )]));
            }
            let method = text("method", &method, 50)?;
            // Covered on the day it starts: it follows on from the end.
            let last_end = state.ends_on();
            let wanted = start_on.unwrap_or(paid_on);
            let starts_on = match last_end {
                Some(end) if wanted <= end + Duration::days(1) => None,
                _ => Some(wanted),
            };
            Ok(vec![E::PaymentRecorded {
                payment_id,
                amount: amount.amount,
                currency: amount.currency,
                method,
                paid_on,
                starts_on,
                length,
                freeze_days,
                recorded_by,
            }])
        }
        SubscriptionCommand::VoidPayment { payment_id, reason } => {
            let payment = state
                .payments
                .iter()
                .find(|p| p.id == payment_id)
                .ok_or(SubscriptionError::PaymentNotFound)?;
            if payment.voided.is_some() {
                return Ok(vec![]);
            }
            let reason = text("reason", &reason, 500)?;
            Ok(vec![E::PaymentVoided { payment_id, reason }])
        }
        SubscriptionCommand::Freeze {
            freeze_id,
            start,
            days,
        } => {
            open()?;
            if !(1..=MAX_FREEZE_DAYS).contains(&days) {
                return Err(SubscriptionError::Invalid(vec![FieldError::new(
                    "days",
                    format!("must be from 1 to {MAX_FREEZE_DAYS}"),
                )]));
            }
            if !state.spans().iter().any(|&(s, e)| s <= start && start <= e) {
                return Err(SubscriptionError::OutsidePaidPeriod { start });
            }
            let end = start + Duration::days(i64::from(days) - 1);
            if let Some((other, _)) = state
                .freezes
                .iter()
                .filter_map(Freeze::span)
                .find(|&(s, e)| s <= end && start <= e)
            {
                return Err(SubscriptionError::Overlap { other });
            }
            let remaining = state.freeze_days_left();
            if days > remaining {
                return Err(SubscriptionError::QuotaExceeded { remaining });
            }
            Ok(vec![E::Frozen {
                freeze_id,
                start,
                days,
            }])
        }
        SubscriptionCommand::EndFreeze { freeze_id, on } => {
            let freeze = state
                .freezes
                .iter()
                .find(|f| f.id == freeze_id)
                .ok_or(SubscriptionError::FreezeNotFound)?;
            if on < freeze.start {
                return Err(SubscriptionError::Invalid(vec![FieldError::new(
                    "on",
                    "must not be before the freeze starts",
                )]));
            }
            let natural_end = freeze.start + Duration::days(i64::from(freeze.days) - 1);
            if freeze.ended_on.is_some() || on > natural_end {
                return Err(SubscriptionError::FreezeOver);
            }
            Ok(vec![E::FreezeEnded { freeze_id, on }])
        }
        SubscriptionCommand::Cancel { on, reason } => {
            open()?;
            let reason = text("reason", &reason, 500)?;
            Ok(vec![E::Cancelled { on, reason }])
        }
    }
}

pub fn evolve(state: &mut Subscription, event: &SubscriptionEvent) {
    use SubscriptionEvent as E;
    match event {
        E::Opened { client_id, plan_id } => {
            state.client_id = Some(*client_id);
            state.plan_id = Some(*plan_id);
        }
        E::PaymentRecorded {
            payment_id,
            amount,
            currency,
            method,
            paid_on,
            starts_on,
            length,
            freeze_days,
            recorded_by,
        } => {
            state.payments.push(Payment {
                id: *payment_id,
                amount: *amount,
                currency: currency.clone(),
                method: method.clone(),
                paid_on: *paid_on,
                recorded_by: *recorded_by,
                voided: None,
            });
            state.periods.push(Period {
                payment_id: *payment_id,
                paid_on: *paid_on,
                starts_on: *starts_on,
                length: *length,
                freeze_days: *freeze_days,
                voided: false,
            });
        }
        E::PaymentVoided { payment_id, reason } => {
            for payment in state.payments.iter_mut().filter(|p| p.id == *payment_id) {
                payment.voided = Some(reason.clone());
            }
            for period in state
                .periods
                .iter_mut()
                .filter(|p| p.payment_id == *payment_id)
            {
                period.voided = true;
            }
        }
        E::Frozen {
            freeze_id,
            start,
            days,
        } => state.freezes.push(Freeze {
            id: *freeze_id,
            start: *start,
            days: *days,
            ended_on: None,
        }),
        E::FreezeEnded { freeze_id, on } => {
            for freeze in state.freezes.iter_mut().filter(|f| f.id == *freeze_id) {
                freeze.ended_on = Some(*on);
            }
        }
        E::Cancelled { on, reason } => {
            state.cancelled = Some(Cancellation {
                on: *on,
                reason: reason.clone(),
            })
        }
    }
}

crate::decider_aggregate!(
    Subscription,
    "subscription",
    SubscriptionCommand,
    SubscriptionEvent,
    SubscriptionError,
    decide,
    evolve
);
