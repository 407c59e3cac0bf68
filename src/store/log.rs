//! The global log: every stored event in commit order, read by position.
//! cqrs-es's own replay orders by per-aggregate sequence only, so consumers
//! read here instead.

use std::collections::HashMap;
use std::sync::Arc;

use cqrs_es::persist::{EventUpcaster, SerializedEvent};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use annals_domain::envelope::keys;
use annals_domain::StoredEvent;

use super::TypedPool;

pub(super) const COLUMNS: &str = "position, aggregate_type, aggregate_id, sequence, event_type, \
                       event_version, payload, metadata, recorded_at";

/// Upcasters shared by the log reader and every command bus.
pub type Upcasters = Arc<Vec<Arc<dyn EventUpcaster>>>;

#[derive(Clone)]
pub struct LogReader {
    pool: TypedPool,
    upcasters: Upcasters,
    keys: super::privacy::Keys,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("upcasters", &self.upcasters.len())
            .finish()
    }
}

impl LogReader {
    pub fn new(pool: TypedPool, upcasters: Upcasters) -> Self {
        let keys = super::privacy::Keys::new(pool.clone());
        Self {
            pool,
            upcasters,
            keys,
        }
    }

    /// Events that come as stored from elsewhere (NATS) made what a read
    /// of the log gives: personal fields decrypted (`store::privacy`),
    /// then upcast.
    pub async fn prepare(&self, mut events: Vec<StoredEvent>) -> Result<Vec<StoredEvent>> {
        self.keys.open(&mut events).await?;
        Ok(events.into_iter().map(|e| self.upcast(e)).collect())
    }

    /// Old event versions come out of the log in their current shape, as
    /// they do when an aggregate is loaded.
    fn upcast(&self, event: StoredEvent) -> StoredEvent {
        let Some(upcaster) = self
            .upcasters
            .iter()
            .find(|u| u.can_upcast(&event.event_type, &event.event_version))
        else {
            return event;
        };
        let serialized = SerializedEvent {
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence as usize,
            aggregate_type: event.aggregate_type.clone(),
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            payload: event.payload.clone(),
            metadata: serde_json::Value::Null,
        };
        let upcast = upcaster.upcast(serialized);
        let event = StoredEvent {
            event_type: upcast.event_type,
            event_version: upcast.event_version,
            payload: upcast.payload,
            ..event
        };
        self.upcast(event)
    }

    /// Up to `limit` events with a position above `after`, in position order.
    pub async fn read_after(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>> {
        let sql =
            format!("SELECT {COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2");
        self.fetch(&sql, &[Arg::Int(after), Arg::Int(limit)])
            .await
            .context("reading the global log")
    }

    /// `read_after` with personal fields left as stored (encrypted): what
    /// the relay publishes, so that NATS never holds them in clear.
    pub async fn read_after_as_stored(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>> {
        let sql =
            format!("SELECT {COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2");
        self.fetch_as_stored(&sql, &[Arg::Int(after), Arg::Int(limit)])
            .await
            .context("reading the global log")
    }

    /// Events with a position in `(after, up_to]`.
    pub async fn read_range(&self, after: i64, up_to: i64) -> Result<Vec<StoredEvent>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE position > $1 AND position <= $2 ORDER BY position"
        );
        self.fetch(&sql, &[Arg::Int(after), Arg::Int(up_to)])
            .await
            .context("reading the global log")
    }

    /// Every event of one aggregate, in sequence order.
    pub async fn aggregate_history(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
             ORDER BY sequence"
        );
        self.fetch(&sql, &[Arg::Text(aggregate_type), Arg::Text(aggregate_id)])
            .await
            .context("reading an aggregate's history")
    }

    /// What loading an aggregate needs: its latest snapshot in `format`
    /// (version and state JSON), if any, and the events after it (all of
    /// them when there is none). Two statements, so that the second gets the
    /// snapshot's version as a value: a bound computed inside one statement
    /// is unknown to PostgreSQL's planner, which then guesses a third of the
    /// stream and, on a log that is mostly one long stream, scans the whole
    /// table (15 ms per load on a stream of 100,000 events). Events are never
    /// changed, so a snapshot and the events after it are consistent without
    /// a transaction around the two.
    pub async fn stream_after_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        format: i64,
    ) -> Result<(Option<(i64, String)>, Vec<StoredEvent>)> {
        const SNAPSHOT: &str = "SELECT version, state FROM aggregate_snapshots \
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND format = $3";
        macro_rules! snapshot {
            ($pool:expr) => {
                sqlx::query_as(SNAPSHOT)
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .bind(format)
                    .fetch_optional($pool)
                    .await
            };
        }
        let snapshot: Option<(i64, String)> = match &self.pool {
            TypedPool::Postgres(p) => snapshot!(p),
            TypedPool::Sqlite(p) => snapshot!(p),
        }
        .context("loading an aggregate's snapshot")?;
        let after = snapshot.as_ref().map_or(0, |(version, _)| *version);
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
             AND sequence > $3 ORDER BY sequence"
        );
        let events = self
            .fetch(
                &sql,
                &[
                    Arg::Text(aggregate_type),
                    Arg::Text(aggregate_id),
                    Arg::Int(after),
                ],
            )
            .await
            .context("loading an aggregate")?;
        Ok((snapshot, events))
    }

    /// Up to `limit` events after `after` that match `filter`, by position
    /// (the audit feed).
    pub async fn feed(
        &self,
        after: i64,
        limit: i64,
        filter: &FeedFilter,
    ) -> Result<Vec<StoredEvent>> {
        let mut sql = format!("SELECT {COLUMNS} FROM events WHERE position > $1");
        let mut args = vec![Arg::Int(after)];
        for (column, value) in [
            ("aggregate_type", &filter.aggregate_type),
            ("aggregate_id", &filter.aggregate_id),
            ("event_type", &filter.event_type),
        ] {
            if let Some(value) = value {
                args.push(Arg::Text(value));
                sql.push_str(&format!(" AND {column} = ${}", args.len()));
            }
        }
        for (op, value) in [(">=", &filter.from), ("<", &filter.to)] {
            if let Some(value) = value {
                args.push(Arg::Time(*value));
                sql.push_str(&format!(" AND recorded_at {op} ${}", args.len()));
            }
        }
        args.push(Arg::Int(limit));
        sql.push_str(&format!(" ORDER BY position LIMIT ${}", args.len()));
        self.fetch(&sql, &args)
            .await
            .context("reading the audit feed")
    }

    /// The highest position stored (0 for an empty log).
    pub async fn head(&self) -> Result<i64> {
        let sql = "SELECT COALESCE(MAX(position), 0) FROM events";
        let head: i64 = match &self.pool {
            TypedPool::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
            TypedPool::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
        };
        Ok(head)
    }

    /// Position of the last event of one aggregate (0 if it has none).
    pub async fn last_position_of(&self, aggregate_type: &str, aggregate_id: &str) -> Result<i64> {
        let sql = "SELECT COALESCE(MAX(position), 0) FROM events \
                   WHERE aggregate_type = $1 AND aggregate_id = $2";
        let last: i64 = match &self.pool {
            TypedPool::Postgres(p) => {
                sqlx::query_scalar(sql)
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .fetch_one(p)
                    .await?
            }
            TypedPool::Sqlite(p) => {
                sqlx::query_scalar(sql)
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .fetch_one(p)
                    .await?
            }
        };
        Ok(last)
    }

    /// Position of one event, looked up by its key.
    pub async fn position_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: i64,
    ) -> Result<Option<i64>, sqlx::Error> {
        let sql = "SELECT position FROM events \
                   WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3";
        match &self.pool {
            TypedPool::Postgres(p) => {
                sqlx::query_scalar(sql)
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .bind(sequence)
                    .fetch_optional(p)
                    .await
            }
            TypedPool::Sqlite(p) => sqlx::query_scalar::<_, Option<i64>>(sql)
                .bind(aggregate_type)
                .bind(aggregate_id)
                .bind(sequence)
                .fetch_optional(p)
                .await
                .map(Option::flatten),
        }
    }

    /// Decrypted before upcasting: upcasters see the fields as written.
    async fn fetch(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<StoredEvent>> {
        let events = self.fetch_as_stored(sql, args).await?;
        self.prepare(events).await
    }

    async fn fetch_as_stored(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<StoredEvent>> {
        match &self.pool {
            TypedPool::Postgres(p) => {
                let mut query = sqlx::query(sql);
                for arg in args {
                    query = match arg {
                        Arg::Int(v) => query.bind(*v),
                        Arg::Text(v) => query.bind(*v),
                        Arg::Time(v) => query.bind(*v),
                    };
                }
                let rows = query.fetch_all(p).await?;
                rows.iter().map(pg_row).collect()
            }
            TypedPool::Sqlite(p) => {
                let mut query = sqlx::query(sql);
                for arg in args {
                    query = match arg {
                        Arg::Int(v) => query.bind(*v),
                        Arg::Text(v) => query.bind(*v),
                        // As SQLite's default for the column writes it.
                        Arg::Time(v) => query.bind(v.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
                    };
                }
                let rows = query.fetch_all(p).await?;
                rows.iter().map(sqlite_row).collect()
            }
        }
    }
}

enum Arg<'a> {
    Int(i64),
    Text(&'a str),
    Time(DateTime<Utc>),
}

/// What the audit feed is narrowed to (each one optional).
#[derive(Debug, Clone, Default)]
pub struct FeedFilter {
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<String>,
    pub event_type: Option<String>,
    /// Recorded at or after.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before.
    pub to: Option<DateTime<Utc>>,
}

fn metadata_map(value: serde_json::Value) -> Result<HashMap<String, String>> {
    serde_json::from_value(value).context("event metadata is not a string map")
}

fn event_id(metadata: &HashMap<String, String>) -> Uuid {
    metadata
        .get(keys::EVENT_ID)
        .and_then(|v| Uuid::parse_str(v).ok())
        .unwrap_or(Uuid::nil())
}

pub(super) fn pg_row(row: &sqlx::postgres::PgRow) -> Result<StoredEvent> {
    let metadata = metadata_map(row.try_get("metadata")?)?;
    Ok(StoredEvent {
        position: row.try_get("position")?,
        event_id: event_id(&metadata),
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: row.try_get("payload")?,
        metadata,
        recorded_at: row.try_get("recorded_at")?,
    })
}

pub(super) fn sqlite_row(row: &sqlx::sqlite::SqliteRow) -> Result<StoredEvent> {
    let payload: String = row.try_get("payload")?;
    let metadata: String = row.try_get("metadata")?;
    let metadata = metadata_map(serde_json::from_str(&metadata)?)?;
    let recorded_at: String = row.try_get("recorded_at")?;
    Ok(StoredEvent {
        position: row.try_get("position")?,
        event_id: event_id(&metadata),
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: serde_json::from_str(&payload)?,
        metadata,
        recorded_at: DateTime::parse_from_rfc3339(&recorded_at)
            .context("recorded_at is not RFC 3339")?
            .with_timezone(&Utc),
    })
}
