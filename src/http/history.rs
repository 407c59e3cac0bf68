//! An aggregate's history as the API shows it: each event with who and when.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use annals_domain::StoredEvent;

#[derive(Serialize, ToSchema)]
pub struct HistoryEntry {
    pub position: i64,
    pub version: i64,
    #[schema(example = "AppointmentRescheduled")]
    pub event_type: String,
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: DateTime<Utc>,
    /// Who: `{kind: "user", user_id, roles}`, `{kind: "cli"}`, ...
    #[schema(value_type = Object)]
    pub actor: serde_json::Value,
    /// What changed (for a reschedule: from and to): the event's payload,
    /// an object, or a string for an event that carries nothing more.
    #[schema(value_type = serde_json::Value)]
    pub change: serde_json::Value,
}

impl HistoryEntry {
    pub fn of(event: &StoredEvent) -> Self {
        Self {
            position: event.position,
            version: event.sequence,
            event_type: event.event_type.clone(),
            recorded_at: event.recorded_at,
            actor: serde_json::to_value(event.meta().actor).unwrap_or_default(),
            change: event.payload_body().clone(),
        }
    }
}
