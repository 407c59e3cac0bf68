//! Display names for read models that show them next to ids: a user's full
//! name, a service's name. Each read model keeps its own copy, fed by the
//! events it consumes, so it can be rebuilt alone and still show the same.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use cqrs_es::Aggregate;
use serde::Deserialize;
use sqlx::{AnyConnection, Row};

use annals_domain::catalog::{Service, ServiceEvent};
use annals_domain::user::{User, UserEvent};
use annals_domain::StoredEvent;

use crate::rows::{self, Cell, Marks};

/// The table of every read model's names, a consumer's rows under its
/// name.
pub const TABLE: &str = "read_model_names";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

    fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Kind::User),
            "service" => Some(Kind::Service),
            _ => None,
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
        return Ok(match UserEvent::deserialize(&event.payload)? {
            UserEvent::Registered { profile, .. } | UserEvent::ProfileUpdated { profile } => {
                named(Kind::User, &profile.full_name)
            }
            UserEvent::PersonalDataErased => named(Kind::User, annals_domain::user::ERASED),
            _ => None,
        });
    }
    if event.aggregate_type == Service::TYPE {
        return Ok(match ServiceEvent::deserialize(&event.payload)? {
            ServiceEvent::Created { terms } | ServiceEvent::Updated { terms } => {
                named(Kind::Service, &terms.name)
            }
            _ => None,
        });
    }
    Ok(None)
}

/// A column that shows a name: `table.name_column` shows the name of the
/// `kind` whose id is in `table.id_column`.
#[derive(Debug, Clone, Copy)]
pub struct Shown {
    pub kind: Kind,
    pub table: &'static str,
    pub name_column: &'static str,
    pub id_column: &'static str,
}

/// The names one batch of events needs and gives, for read model `consumer`.
/// Within a batch only the name at its end matters: every row that shows a
/// name gets the last one given (the renames run after the rows are
/// written), so a batch folded at once gives the rows that event-by-event
/// application would.
pub struct NameBook {
    consumer: &'static str,
    shown: &'static [Shown],
    /// Names this batch gives (the last per id), to keep and to apply.
    given: BTreeMap<(Kind, String), String>,
    /// Names read from earlier batches.
    known: HashMap<(Kind, String), String>,
}

impl NameBook {
    /// Takes the names `events` give, of the kinds the read model shows.
    pub fn new(
        consumer: &'static str,
        shown: &'static [Shown],
        events: &[StoredEvent],
    ) -> Result<Self> {
        let mut given = BTreeMap::new();
        for event in events {
            if let Some(named) = named(event)? {
                if shown.iter().any(|s| s.kind == named.kind) {
                    given.insert((named.kind, named.id), named.name);
                }
            }
        }
        Ok(Self {
            consumer,
            shown,
            given,
            known: HashMap::new(),
        })
    }

    /// Reads the stored names of `refs` that this batch does not give.
    pub async fn load(
        &mut self,
        tx: &mut AnyConnection,
        refs: impl IntoIterator<Item = (Kind, String)>,
    ) -> Result<()> {
        let mut wanted: Vec<(Kind, String)> = refs
            .into_iter()
            .filter(|r| !self.given.contains_key(r))
            .collect();
        wanted.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
        wanted.dedup();
        let ids: Vec<String> = wanted.iter().map(|(_, id)| id.clone()).collect();
        let marks = Marks::of(tx);
        for chunk in ids.chunks(rows::rows_per_statement(1) - 1) {
            let sql = format!(
                "SELECT kind, id, name FROM read_model_names WHERE consumer = {} AND id IN ({})",
                marks.one(1),
                marks.list(chunk.len(), 2)
            );
            let query = rows::bind_all(
                sqlx::query(&sql).bind(self.consumer),
                chunk.iter().cloned().map(Cell::from),
            );
            for row in query.fetch_all(&mut *tx).await? {
                let kind: String = row.try_get("kind")?;
                let Some(kind) = Kind::parse(&kind) else {
                    continue;
                };
                self.known
                    .insert((kind, row.try_get("id")?), row.try_get("name")?);
            }
        }
        Ok(())
    }

    /// The name of `id` at the end of the batch (given here, or loaded).
    pub fn name(&self, kind: Kind, id: &str) -> Option<String> {
        let key = (kind, id.to_string());
        self.given
            .get(&key)
            .or_else(|| self.known.get(&key))
            .cloned()
    }

    /// Applies the names this batch gave to the rows that show them (after
    /// the batch's rows are written) and keeps them for later batches.
    pub async fn write(self, tx: &mut AnyConnection) -> Result<()> {
        if self.given.is_empty() {
            return Ok(());
        }
        let marks = Marks::of(tx);
        for shown in self.shown {
            let pairs: Vec<(&String, &String)> = self
                .given
                .iter()
                .filter(|((kind, _), _)| *kind == shown.kind)
                .map(|((_, id), name)| (id, name))
                .collect();
            for chunk in pairs.chunks(rows::rows_per_statement(2)) {
                let sql = format!(
                    "UPDATE {table} SET {name} = v.column2 FROM (VALUES {values}) AS v \
                     WHERE {table}.{id} = v.column1",
                    table = shown.table,
                    name = shown.name_column,
                    id = shown.id_column,
                    values = marks.rows(chunk.len(), 2, 1),
                );
                let cells = chunk
                    .iter()
                    .flat_map(|(id, name)| [Cell::from(id.as_str()), Cell::from(name.as_str())]);
                rows::bind_all(sqlx::query(&sql), cells)
                    .execute(&mut *tx)
                    .await
                    .with_context(|| format!("renaming in {}", shown.table))?;
            }
        }
        let given: Vec<_> = self.given.iter().collect();
        for chunk in given.chunks(rows::rows_per_statement(4)) {
            let sql = format!(
                "INSERT INTO read_model_names (consumer, kind, id, name) VALUES {} \
                 ON CONFLICT (consumer, kind, id) DO UPDATE SET name = excluded.name",
                marks.rows(chunk.len(), 4, 1)
            );
            let cells = chunk.iter().flat_map(|((kind, id), name)| {
                [
                    Cell::from(self.consumer),
                    Cell::from(kind.as_str()),
                    Cell::from(id.as_str()),
                    Cell::from(name.as_str()),
                ]
            });
            rows::bind_all(sqlx::query(&sql), cells)
                .execute(&mut *tx)
                .await
                .context("keeping names")?;
        }
        Ok(())
    }
}

/// Forgets the names of read model `consumer` (before a rebuild).
pub async fn forget(tx: &mut AnyConnection, consumer: &str) -> Result<()> {
    sqlx::query(&format!("DELETE FROM {TABLE} WHERE consumer = $1"))
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
