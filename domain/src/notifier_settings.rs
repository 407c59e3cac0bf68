//! The notifier's settings as an aggregate, so every change is an audited
//! event: who receives staff alerts, who may use staff commands, which
//! alerts are on, and the digest hour.

use std::collections::BTreeMap;

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
}

impl Settings {
    pub fn alert_on(&self, event_type: &str) -> bool {
        self.alerts.get(event_type).copied().unwrap_or(true)
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
        }
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
    fn unlisted_alerts_are_on() {
        let mut s = settings(8);
        s.alerts.insert("AppointmentBooked".into(), false);
        assert!(!s.alert_on("AppointmentBooked"));
        assert!(s.alert_on("AppointmentCancelled"));
    }
}
