//! The event envelope: what every stored event carries besides its payload.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who caused a change. Stored in every event's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// A signed-in user acting under one of their roles.
    User { user_id: Uuid, roles: Vec<String> },
    /// A request without credentials (public endpoints).
    Anonymous,
    /// The system itself (timers, consumers reacting to events).
    System,
    /// The Telegram bot on behalf of a chat user.
    Telegram { telegram_user_id: i64 },
    /// The command line (`annals user create`, ...).
    Cli,
}

/// Metadata keys, as stored in cqrs-es's `HashMap<String, String>` metadata.
pub mod keys {
    pub const EVENT_ID: &str = "event_id";
    pub const ACTOR: &str = "actor";
    pub const CORRELATION_ID: &str = "correlation_id";
    pub const CAUSATION_ID: &str = "causation_id";
    pub const COMMAND_ID: &str = "command_id";
    pub const IDEMPOTENCY_KEY: &str = "idempotency_key";
}

/// The typed view of an event's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMetadata {
    pub actor: Actor,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub command_id: Option<Uuid>,
    pub idempotency_key: Option<String>,
}

impl EventMetadata {
    /// Metadata for one command; the same map goes on every event of that command.
    pub fn for_command(actor: Actor) -> Self {
        let command_id = Uuid::now_v7();
        Self {
            actor,
            correlation_id: Some(command_id),
            causation_id: None,
            command_id: Some(command_id),
            idempotency_key: None,
        }
    }

    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::new();
        map.insert(
            keys::ACTOR.to_string(),
            serde_json::to_string(&self.actor).expect("actor serializes"),
        );
        let mut put = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                map.insert(key.to_string(), value);
            }
        };
        put(
            keys::CORRELATION_ID,
            self.correlation_id.map(|u| u.to_string()),
        );
        put(keys::CAUSATION_ID, self.causation_id.map(|u| u.to_string()));
        put(keys::COMMAND_ID, self.command_id.map(|u| u.to_string()));
        put(keys::IDEMPOTENCY_KEY, self.idempotency_key.clone());
        map
    }

    /// Reads metadata back; unknown or malformed entries degrade to `None`
    /// rather than failing, because old events must stay readable.
    pub fn from_map(map: &HashMap<String, String>) -> Self {
        let uuid = |key: &str| map.get(key).and_then(|v| Uuid::parse_str(v).ok());
        Self {
            actor: map
                .get(keys::ACTOR)
                .and_then(|a| serde_json::from_str(a).ok())
                .unwrap_or(Actor::System),
            correlation_id: uuid(keys::CORRELATION_ID),
            causation_id: uuid(keys::CAUSATION_ID),
            command_id: uuid(keys::COMMAND_ID),
            idempotency_key: map.get(keys::IDEMPOTENCY_KEY).cloned(),
        }
    }
}

/// One event as read from the global log: the full envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Position in the global log, in commit order, starting at 1, dense.
    pub position: i64,
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Sequence within the aggregate, starting at 1.
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    pub metadata: HashMap<String, String>,
    /// When the store recorded the event (the database clock, not the caller's).
    pub recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    pub fn meta(&self) -> EventMetadata {
        EventMetadata::from_map(&self.metadata)
    }

    /// The event payload as the enum variant's content: cqrs-es stores
    /// externally tagged enums (`{"Variant": {...}}`).
    pub fn payload_body(&self) -> &serde_json::Value {
        match &self.payload {
            serde_json::Value::Object(map) if map.len() == 1 => {
                map.values().next().expect("one entry")
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_through_the_string_map() {
        let mut meta = EventMetadata::for_command(Actor::User {
            user_id: Uuid::now_v7(),
            roles: vec!["admin".into()],
        });
        meta.idempotency_key = Some("k-1".into());
        assert_eq!(EventMetadata::from_map(&meta.to_map()), meta);
    }

    #[test]
    fn malformed_metadata_degrades_instead_of_failing() {
        let mut map = HashMap::new();
        map.insert(keys::ACTOR.to_string(), "not json".to_string());
        map.insert(keys::CORRELATION_ID.to_string(), "nope".to_string());
        let meta = EventMetadata::from_map(&map);
        assert_eq!(meta.actor, Actor::System);
        assert_eq!(meta.correlation_id, None);
    }
}
