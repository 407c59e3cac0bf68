//! Display names for read models that show them next to ids: a user's full
//! name, a service's name. Each read model keeps its own copy, fed by the
//! events it consumes, so it can be rebuilt alone and still show the same.

use anyhow::Result;
use cqrs_es::Aggregate;
use sqlx::AnyConnection;

use annals_domain::catalog::{Service, ServiceEvent};
use annals_domain::user::{User, UserEvent};
use annals_domain::StoredEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Service,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Service => "service",
        }
    }
}

/// A name an event gives (or gives anew) to a user or a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub kind: Kind,
    pub id: String,
    pub name: String,
}

/// The name this event gives, if it gives one.
pub fn named(event: &StoredEvent) -> Result<Option<Named>> {
    let named = |kind, name: &str| {
        Some(Named {
            kind,
            id: event.aggregate_id.clone(),
            name: name.to_string(),
        })
    };
    if event.aggregate_type == User::TYPE {
        return Ok(
            match serde_json::from_value::<UserEvent>(event.payload.clone())? {
                UserEvent::Registered { profile, .. } | UserEvent::ProfileUpdated { profile } => {
                    named(Kind::User, &profile.full_name)
                }
                _ => None,
            },
        );
    }
    if event.aggregate_type == Service::TYPE {
        return Ok(
            match serde_json::from_value::<ServiceEvent>(event.payload.clone())? {
                ServiceEvent::Created { terms } | ServiceEvent::Updated { terms } => {
                    named(Kind::Service, &terms.name)
                }
                _ => None,
            },
        );
    }
    Ok(None)
}

/// What a read model does with a name: `(kind, UPDATE ... SET <name> = $1
/// WHERE <id> = $2)`, one statement per column that shows such a name.
pub type Renames<'a> = &'a [(Kind, &'a str)];

/// If `event` gives a name (a user's or a service's), keeps it for read
/// model `consumer` — when the read model shows names of that kind — and
/// applies it to the rows already there. `true`: it was a naming event.
pub async fn follow(
    tx: &mut AnyConnection,
    consumer: &str,
    event: &StoredEvent,
    renames: Renames<'_>,
) -> Result<bool> {
    let Some(named) = named(event)? else {
        return Ok(false);
    };
    let mut shown = false;
    for (_, sql) in renames.iter().filter(|(kind, _)| *kind == named.kind) {
        shown = true;
        sqlx::query(sql)
            .bind(&named.name)
            .bind(&named.id)
            .execute(&mut *tx)
            .await?;
    }
    if shown {
        remember(tx, consumer, &named).await?;
    }
    Ok(true)
}

/// Keeps `named` for read model `consumer`.
pub async fn remember(tx: &mut AnyConnection, consumer: &str, named: &Named) -> Result<()> {
    sqlx::query(
        "INSERT INTO read_model_names (consumer, kind, id, name) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (consumer, kind, id) DO UPDATE SET name = excluded.name",
    )
    .bind(consumer)
    .bind(named.kind.as_str())
    .bind(&named.id)
    .bind(&named.name)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The name read model `consumer` knows for `id`.
pub async fn name_of(
    tx: &mut AnyConnection,
    consumer: &str,
    kind: Kind,
    id: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT name FROM read_model_names WHERE consumer = $1 AND kind = $2 AND id = $3",
    )
    .bind(consumer)
    .bind(kind.as_str())
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?)
}

/// Forgets the names of read model `consumer` (before a rebuild).
pub async fn forget(tx: &mut AnyConnection, consumer: &str) -> Result<()> {
    sqlx::query("DELETE FROM read_model_names WHERE consumer = $1")
        .bind(consumer)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(aggregate_type: &str, payload: serde_json::Value) -> StoredEvent {
        StoredEvent {
            position: 1,
            event_id: uuid::Uuid::nil(),
            aggregate_type: aggregate_type.into(),
            aggregate_id: "x".into(),
            sequence: 1,
            event_type: String::new(),
            event_version: "1".into(),
            payload,
            metadata: Default::default(),
            recorded_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn only_naming_events_give_a_name() {
        let deactivated = stored(User::TYPE, serde_json::json!("Deactivated"));
        assert_eq!(named(&deactivated).unwrap(), None);
        let other = stored("appointment", serde_json::json!({"Confirmed": null}));
        assert_eq!(named(&other).unwrap(), None);
    }
}
