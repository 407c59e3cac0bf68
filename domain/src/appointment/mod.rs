//! Appointments: a client books a service with a master at a time; staff
//! confirm; it ends completed, as a no-show, or cancelled. A master is
//! never double-booked because every booking first reserves its interval on
//! the master's day (`MasterDay`), where optimistic concurrency lets exactly
//! one of two competing reservations win.

pub mod availability;
pub mod master_day;

use chrono::{DateTime, Duration, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::Money;
use crate::{FieldError, RuleKind, RuleViolation};

/// The terms an appointment keeps from the moment it was booked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Booking {
    pub client_id: Uuid,
    pub master_id: Uuid,
    pub service_id: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub price: Money,
    pub buffer_before_minutes: u32,
    pub buffer_after_minutes: u32,
    pub note: Option<String>,
    /// When it was booked or last moved (absent in events stored before
    /// this field existed: those keep the plain notice rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booked_at: Option<DateTime<Utc>>,
}

impl Booking {
    /// Until when its client may cancel or move it. Normally the
    /// cancellation notice before the start; but an appointment booked
    /// inside that notice (allowed when the booking notice is the shorter
    /// one) could then never be cancelled by its client, so it can be
    /// until the booking notice before the start — the notice it took to book.
    pub fn client_deadline(&self, rules: &ChangeRules) -> DateTime<Utc> {
        let usual = self.start - Duration::minutes(rules.cancel_notice_minutes);
        match self.booked_at {
            Some(at) if at > usual => {
                let short = self.start - Duration::minutes(rules.booking_notice_minutes);
                short.max(usual)
            }
            _ => usual,
        }
    }
}

/// What limits a change by the client; staff are not limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRules {
    pub now: DateTime<Utc>,
    /// The client changes it (not staff): the notice applies.
    pub by_client: bool,
    /// How long before the start a client may still cancel or move it.
    pub cancel_notice_minutes: i64,
    /// How long before the start a booking must be made.
    pub booking_notice_minutes: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Booked,
    Confirmed,
    Cancelled,
    Completed,
    NoShow,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Booked => "booked",
            Status::Confirmed => "confirmed",
            Status::Cancelled => "cancelled",
            Status::Completed => "completed",
            Status::NoShow => "no_show",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AppointmentCommand {
    Book(Booking),
    Confirm,
    Cancel {
        reason: String,
        rules: ChangeRules,
    },
    Reschedule {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        master_id: Uuid,
        rules: ChangeRules,
    },
    /// Only once it has started.
    Complete {
        now: DateTime<Utc>,
    },
    /// Only once it has started.
    MarkNoShow {
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AppointmentEvent {
    Booked(Booking),
    Confirmed,
    Cancelled {
        reason: String,
    },
    Rescheduled {
        from_start: DateTime<Utc>,
        from_end: DateTime<Utc>,
        from_master_id: Uuid,
        to_start: DateTime<Utc>,
        to_end: DateTime<Utc>,
        to_master_id: Uuid,
        /// When it was moved (absent in events stored before this field).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<DateTime<Utc>>,
    },
    Completed,
    MarkedNoShow,
}

impl DomainEvent for AppointmentEvent {
    fn event_type(&self) -> String {
        match self {
            AppointmentEvent::Booked(_) => "AppointmentBooked",
            AppointmentEvent::Confirmed => "AppointmentConfirmed",
            AppointmentEvent::Cancelled { .. } => "AppointmentCancelled",
            AppointmentEvent::Rescheduled { .. } => "AppointmentRescheduled",
            AppointmentEvent::Completed => "AppointmentCompleted",
            AppointmentEvent::MarkedNoShow => "AppointmentMarkedNoShow",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppointmentError {
    #[error("the appointment exists already")]
    Exists,
    #[error("no such appointment")]
    NotFound,
    #[error("cannot {action} an appointment that is {}", current.as_str())]
    InvalidTransition {
        current: Status,
        action: &'static str,
    },
    #[error("clients may cancel only until {deadline}")]
    TooLateToCancel { deadline: DateTime<Utc> },
    #[error("clients may reschedule only until {deadline}")]
    TooLateToReschedule { deadline: DateTime<Utc> },
    #[error("cannot {action} an appointment before it starts at {start}")]
    NotStartedYet {
        start: DateTime<Utc>,
        action: &'static str,
    },
    #[error("invalid appointment")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for AppointmentError {
    fn kind(&self) -> RuleKind {
        match self {
            AppointmentError::Exists
            | AppointmentError::InvalidTransition { .. }
            | AppointmentError::TooLateToCancel { .. }
            | AppointmentError::TooLateToReschedule { .. }
            | AppointmentError::NotStartedYet { .. } => RuleKind::Conflict,
            AppointmentError::NotFound => RuleKind::NotFound,
            AppointmentError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            AppointmentError::Exists => "appointment-exists",
            AppointmentError::NotFound => "not-found",
            AppointmentError::InvalidTransition { .. } => "invalid-transition",
            AppointmentError::TooLateToCancel { .. } => "too-late-to-cancel",
            AppointmentError::TooLateToReschedule { .. } => "too-late-to-reschedule",
            AppointmentError::NotStartedYet { .. } => "not-started-yet",
            AppointmentError::Invalid(_) => "validation",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Appointment {
    pub booking: Option<Booking>,
    pub status: Option<Status>,
}

fn check_interval(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(), AppointmentError> {
    if end <= start {
        return Err(AppointmentError::Invalid(vec![FieldError::new(
            "start",
            "must be before the end",
        )]));
    }
    if end - start > Duration::hours(12) {
        return Err(AppointmentError::Invalid(vec![FieldError::new(
            "start",
            "an appointment lasts at most 12 hours",
        )]));
    }
    Ok(())
}

pub fn decide(
    state: &Appointment,
    command: AppointmentCommand,
) -> Result<Vec<AppointmentEvent>, AppointmentError> {
    if let AppointmentCommand::Book(booking) = command {
        if state.booking.is_some() {
            return Err(AppointmentError::Exists);
        }
        check_interval(booking.start, booking.end)?;
        if booking
            .note
            .as_ref()
            .is_some_and(|n| n.chars().count() > 2000)
        {
            return Err(AppointmentError::Invalid(vec![FieldError::new(
                "note",
                "must be at most 2000 characters",
            )]));
        }
        return Ok(vec![AppointmentEvent::Booked(booking)]);
    }
    let (Some(booking), Some(current)) = (&state.booking, state.status) else {
        return Err(AppointmentError::NotFound);
    };
    let refuse = |action| Err(AppointmentError::InvalidTransition { current, action });
    match command {
        AppointmentCommand::Book(_) => unreachable!("handled above"),
        AppointmentCommand::Confirm => match current {
            Status::Booked => Ok(vec![AppointmentEvent::Confirmed]),
            _ => refuse("confirm"),
        },
        AppointmentCommand::Cancel { reason, rules } => {
            if !matches!(current, Status::Booked | Status::Confirmed) {
                return refuse("cancel");
            }
            let reason = reason.trim().to_string();
            if reason.is_empty() || reason.chars().count() > 500 {
                return Err(AppointmentError::Invalid(vec![FieldError::new(
                    "reason",
                    "must be 1 to 500 characters",
                )]));
            }
            let deadline = booking.client_deadline(&rules);
            if rules.by_client && rules.now > deadline {
                return Err(AppointmentError::TooLateToCancel { deadline });
            }
            Ok(vec![AppointmentEvent::Cancelled { reason }])
        }
        AppointmentCommand::Reschedule {
            start,
            end,
            master_id,
            rules,
        } => {
            if !matches!(current, Status::Booked | Status::Confirmed) {
                return refuse("reschedule");
            }
            check_interval(start, end)?;
            // A client who may no longer cancel may not move it either
            // (moving it and then cancelling would dodge the notice).
            let deadline = booking.client_deadline(&rules);
            if rules.by_client && rules.now > deadline {
                return Err(AppointmentError::TooLateToReschedule { deadline });
            }
            if start == booking.start && end == booking.end && master_id == booking.master_id {
                return Ok(vec![]);
            }
            Ok(vec![AppointmentEvent::Rescheduled {
                from_start: booking.start,
                from_end: booking.end,
                from_master_id: booking.master_id,
                to_start: start,
                to_end: end,
                to_master_id: master_id,
                at: Some(rules.now),
            }])
        }
        AppointmentCommand::Complete { now } => match current {
            Status::Confirmed if now < booking.start => Err(AppointmentError::NotStartedYet {
                start: booking.start,
                action: "complete",
            }),
            Status::Confirmed => Ok(vec![AppointmentEvent::Completed]),
            _ => refuse("complete"),
        },
        AppointmentCommand::MarkNoShow { now } => match current {
            Status::Confirmed if now < booking.start => Err(AppointmentError::NotStartedYet {
                start: booking.start,
                action: "mark as no-show",
            }),
            Status::Confirmed => Ok(vec![AppointmentEvent::MarkedNoShow]),
            _ => refuse("mark as no-show"),
        },
    }
}

pub fn evolve(state: &mut Appointment, event: &AppointmentEvent) {
    match event {
        AppointmentEvent::Booked(booking) => {
            state.booking = Some(booking.clone());
            state.status = Some(Status::Booked);
        }
        AppointmentEvent::Confirmed => state.status = Some(Status::Confirmed),
        AppointmentEvent::Cancelled { .. } => state.status = Some(Status::Cancelled),
        AppointmentEvent::Rescheduled {
            to_start,
            to_end,
            to_master_id,
            at,
            ..
        } => {
            if let Some(booking) = &mut state.booking {
                booking.start = *to_start;
                booking.end = *to_end;
                booking.master_id = *to_master_id;
                booking.booked_at = *at;
            }
        }
        AppointmentEvent::Completed => state.status = Some(Status::Completed),
        AppointmentEvent::MarkedNoShow => state.status = Some(Status::NoShow),
    }
}

crate::decider_aggregate!(
    Appointment,
    "appointment",
    AppointmentCommand,
    AppointmentEvent,
    AppointmentError,
    decide,
    evolve
);

#[cfg(test)]
mod tests;
