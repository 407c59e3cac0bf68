//! The notifier's settings as an aggregate, so every change is an audited
//! event: who receives staff alerts, who may use staff commands, which
//! alerts are on, and the digest hour.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Timelike, Utc};

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{FieldError, RuleKind, RuleViolation};

/// The one instance's id.
pub const ID: &str = "notifier";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub staff_chat_ids: Vec<i64>,
    pub staff_user_ids: Vec<i64>,
    /// Alert (event type) → on or off; unlisted alerts are on.
    pub alerts: BTreeMap<String, bool>,
    /// Hour of the daily digest in the business time zone.
    pub digest_hour: u8,
    /// Whether the daily digest is sent at all. Added after version 1
    /// payloads were written: absent there, and on.
    #[serde(default = "on")]
    pub daily_digest: bool,
    /// How long before an appointment a linked client is reminded; 0: no
    /// reminders. Absent in older payloads: the default.
    #[serde(default = "default_reminder_minutes")]
    pub reminder_minutes: u32,
    /// How many days before a subscription's last day its client (with a
    /// linked chat) is reminded to renew, once per end date; 0: no
    /// reminders. Absent in older payloads: the default.
    #[serde(default = "default_renewal_reminder_days")]
    pub renewal_reminder_days: u32,
}

fn on() -> bool {
    true
}

/// Reminder lead before anyone sets one: two hours.
pub const DEFAULT_REMINDER_MINUTES: u32 = 120;
/// The longest reminder lead: two weeks.
pub const MAX_REMINDER_MINUTES: u32 = 14 * 24 * 60;

fn default_reminder_minutes() -> u32 {
    DEFAULT_REMINDER_MINUTES
}

/// Renewal reminders before anyone sets them: three days ahead.
pub const DEFAULT_RENEWAL_REMINDER_DAYS: u32 = 3;
/// The longest renewal lead.
pub const MAX_RENEWAL_REMINDER_DAYS: u32 = 60;

fn default_renewal_reminder_days() -> u32 {
    DEFAULT_RENEWAL_REMINDER_DAYS
}

impl Settings {
    pub fn alert_on(&self, event_type: &str) -> bool {
        self.alerts.get(event_type).copied().unwrap_or(true)
    }

    /// Whether a reminder for an appointment at `start` is due at `now`:
    /// inside the lead time, and never for a time already past. A reminder
    /// missed while the notifier was down still goes out while the
    /// appointment is ahead.
    pub fn reminder_due(&self, now: DateTime<Utc>, start: DateTime<Utc>) -> bool {
        self.reminder_minutes > 0
            && start > now
            && start - Duration::minutes(i64::from(self.reminder_minutes)) <= now
    }

    /// The day whose digest is due at local time `now`: from the digest
    /// hour until midnight (so a process that was down at the hour catches
    /// up), once per day — the caller's ledger keeps it to once.
    pub fn digest_due(&self, now: NaiveDateTime) -> Option<NaiveDate> {
        (self.daily_digest && now.hour() >= u32::from(self.digest_hour)).then(|| now.date())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SettingsCommand {
    Set(Settings),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SettingsEvent {
    Changed(Settings),
}

impl DomainEvent for SettingsEvent {
    fn event_type(&self) -> String {
        "NotifierSettingsChanged".into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid settings")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for SettingsError {
    fn kind(&self) -> RuleKind {
        match self {
            SettingsError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
        }
    }
    fn code(&self) -> &'static str {
        "validation"
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NotifierSettings {
    pub current: Option<Settings>,
}

pub fn decide(
    state: &NotifierSettings,
    command: SettingsCommand,
) -> Result<Vec<SettingsEvent>, SettingsError> {
    let SettingsCommand::Set(settings) = command;
    let mut errors = Vec::new();
    if settings.digest_hour > 23 {
        errors.push(FieldError::new("digest_hour", "must be from 0 to 23"));
    }
    if settings.reminder_minutes > MAX_REMINDER_MINUTES {
        errors.push(FieldError::new(
            "reminder_minutes",
            format!("must be from 0 to {MAX_REMINDER_MINUTES}"),
        ));
    }
    if settings.renewal_reminder_days > MAX_RENEWAL_REMINDER_DAYS {
        errors.push(FieldError::new(
            "renewal_reminder_days",
            format!("must be from 0 to {MAX_RENEWAL_REMINDER_DAYS}"),
        ));
    }
    for (field, ids) in [
        ("staff_chat_ids", &settings.staff_chat_ids),
        ("staff_user_ids", &settings.staff_user_ids),
    ] {
        if ids.len() > 100 {
            errors.push(FieldError::new(field, "at most 100 ids"));
        }
    }
    if settings.alerts.len() > 100 {
        errors.push(FieldError::new("alerts", "at most 100 alerts"));
    }
    if !errors.is_empty() {
        return Err(SettingsError::Invalid(errors));
    }
    if state.current.as_ref() == Some(&settings) {
        return Ok(vec![]);
    }
    Ok(vec![SettingsEvent::Changed(settings)])
}

pub fn evolve(state: &mut NotifierSettings, event: &SettingsEvent) {
    let SettingsEvent::Changed(settings) = event;
    state.current = Some(settings.clone());
}

crate::decider_aggregate!(
    NotifierSettings,
    "notifier_settings",
    SettingsCommand,
    SettingsEvent,
    SettingsError,
    decide,
    evolve
);

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(hour: u8) -> Settings {
        Settings {
            staff_chat_ids: vec![1],
            staff_user_ids: vec![2],
            alerts: BTreeMap::new(),
            digest_hour: hour,
            daily_digest: true,
            reminder_minutes: DEFAULT_REMINDER_MINUTES,
            renewal_reminder_days: DEFAULT_RENEWAL_REMINDER_DAYS,
        }
    }

    #[test]
    fn a_version_1_payload_reads_with_the_later_fields_defaulted() {
        // Written before daily_digest, reminder_minutes and renewal_reminder_days existed.
        let old = r#"{"Changed":{"staff_chat_ids":[1],"staff_user_ids":[2],"alerts":{},"digest_hour":8}}"#;
        let event: SettingsEvent = serde_json::from_str(old).unwrap();
        assert_eq!(event, SettingsEvent::Changed(settings(8)));
    }

    #[test]
    fn a_reminder_lead_beyond_two_weeks_is_refused() {
        let mut s = settings(8);
        s.reminder_minutes = MAX_REMINDER_MINUTES + 1;
        let Err(SettingsError::Invalid(fields)) =
            decide(&NotifierSettings::default(), SettingsCommand::Set(s))
        else {
            panic!("accepted")
        };
        assert_eq!(fields[0].field, "reminder_minutes");
    }

    #[test]
    fn a_change_is_an_event_and_the_same_settings_are_none() {
        let events = decide(
            &NotifierSettings::default(),
            SettingsCommand::Set(settings(8)),
        )
        .unwrap();
        assert_eq!(events, vec![SettingsEvent::Changed(settings(8))]);
        let mut state = NotifierSettings::default();
        evolve(&mut state, &events[0]);
        assert!(decide(&state, SettingsCommand::Set(settings(8)))
            .unwrap()
            .is_empty());
        assert!(matches!(
            decide(&state, SettingsCommand::Set(settings(24))),
            Err(SettingsError::Invalid(_))
        ));
    }

    #[test]
    fn a_reminder_is_due_inside_the_lead_and_never_for_the_past() {
        let s = settings(8); // two hours ahead
        let start: DateTime<Utc> = "2026-05-04T10:00:00Z".parse().unwrap();
        let at = |t: &str| t.parse::<DateTime<Utc>>().unwrap();
        let table = [
            ("three hours before", "2026-05-04T07:00:00Z", false),
            ("exactly the lead before", "2026-05-04T08:00:00Z", true),
            ("one minute before", "2026-05-04T09:59:00Z", true),
            ("at the start", "2026-05-04T10:00:00Z", false),
            ("after the start", "2026-05-04T11:00:00Z", false),
        ];
        for (case, now, due) in table {
            assert_eq!(s.reminder_due(at(now), start), due, "{case}");
        }
        let off = Settings {
            reminder_minutes: 0,
            ..s
        };
        assert!(
            !off.reminder_due(at("2026-05-04T09:59:00Z"), start),
            "0 is off"
        );
    }

    #[test]
    fn the_digest_is_due_from_its_hour_until_midnight_unless_off() {
        let s = settings(8);
        let at = |t: &str| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M").unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 5, 4).unwrap();
        assert_eq!(s.digest_due(at("2026-05-04 07:59")), None);
        assert_eq!(s.digest_due(at("2026-05-04 08:00")), Some(day));
        assert_eq!(s.digest_due(at("2026-05-04 23:59")), Some(day));
        let off = Settings {
            daily_digest: false,
            ..s
        };
        assert_eq!(off.digest_due(at("2026-05-04 09:00")), None);
    }

    #[test]
    fn unlisted_alerts_are_on() {
        let mut s = settings(8);
        s.alerts.insert("AppointmentBooked".into(), false);
        assert!(!s.alert_on("AppointmentBooked"));
        assert!(s.alert_on("AppointmentCancelled"));
    }
}
