//! The one append path: a commit unit — events for one or more streams,
//! each with the version it was decided on, and optionally the
//! `Idempotency-Key` record with the outcome — is written in one database
//! transaction. Either all of it is stored or none of it.
//!
//! postgres-es and sqlite-es open a transaction per `persist` call and take
//! no outer one, so this writes into their events table itself, with the
//! columns they write (they load what is written here unchanged). A unique
//! violation on (aggregate_type, aggregate_id, sequence) means another
//! writer appended to that stream first: the optimistic-lock conflict.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::Value;
use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

use annals_domain::envelope::keys;

use super::{now_millis, TypedPool};

/// One event on its way into a stream.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
}

/// The events one unit appends to one stream.
#[derive(Debug, Clone)]
pub struct StreamAppend {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    /// The version the decision was made on; the events get the sequences
    /// after it, so a writer that got there first makes this one conflict.
    pub expected_version: i64,
    pub events: Vec<NewEvent>,
}

/// The key record a unit commits with its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub scope: String,
    pub key: String,
    /// Digest of the request.
    pub fingerprint: String,
}

/// Everything one command writes.
pub struct CommitUnit<'a> {
    pub streams: Vec<StreamAppend>,
    /// The command's metadata; every event also gets its own event id.
    pub metadata: &'a HashMap<String, String>,
    /// The key, and the outcome to record with it (built once the positions
    /// are known, inside the transaction).
    pub idempotency: Option<(&'a IdempotencyRecord, &'a Outcome<'a>)>,
}

/// Builds the outcome recorded with the key, once the positions are known.
pub type Outcome<'a> = dyn Fn(&Committed) -> String + Sync + 'a;

/// Where a stream's new events landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedStream {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    /// The stream's version after the unit (the sequence of its last event).
    pub version: i64,
    /// Global position of its last event.
    pub position: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub streams: Vec<CommittedStream>,
    /// The highest position the unit wrote.
    pub position: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Another writer appended to this stream after the decision was made.
    #[error("{aggregate_type} {aggregate_id} was changed concurrently")]
    Conflict {
        aggregate_type: String,
        aggregate_id: String,
    },
    /// The key was recorded by another request (a concurrent or earlier retry).
    #[error("the Idempotency-Key was recorded by another request")]
    KeyTaken,
    /// The database failed before the commit: nothing was written.
    #[error("the database is unavailable; nothing was written: {0}")]
    Unavailable(String),
    /// The commit was sent but its acknowledgement did not arrive: the
    /// unit may or may not be stored.
    #[error("the outcome of the commit is unknown: {0}")]
    OutcomeUnknown(String),
    /// A bug or a database refusal before the commit; nothing was written.
    #[error("event store failure: {0}")]
    Internal(String),
}

/// Writes commit units; one per process, shared by every workflow.
#[derive(Clone, Debug)]
pub struct EventWriter {
    pool: TypedPool,
}

impl EventWriter {
    pub fn new(pool: TypedPool) -> Self {
        Self { pool }
    }

    pub async fn commit(&self, unit: CommitUnit<'_>) -> Result<Committed, AppendError> {
        let started = Instant::now();
        let committed = match &self.pool {
            TypedPool::Postgres(pool) => commit_pg(pool, &unit).await,
            TypedPool::Sqlite(pool) => commit_sqlite(pool, &unit).await,
        }?;
        for stream in &unit.streams {
            metrics::histogram!("annals_append_seconds", "aggregate" => stream.aggregate_type)
                .record(started.elapsed().as_secs_f64());
        }
        Ok(committed)
    }
}

/// Each event's metadata: the command's, plus its own UUIDv7 event id.
fn event_metadata(metadata: &HashMap<String, String>) -> String {
    let mut map = metadata.clone();
    map.entry(keys::EVENT_ID.to_string())
        .or_insert_with(|| Uuid::now_v7().to_string());
    serde_json::to_string(&map).expect("a string map serializes")
}

/// Failpoints for the fault-injection tests (compiled to nothing without
/// the `failpoints` feature). `return(abort)` kills the process on the spot.
macro_rules! failpoint {
    ($name:literal) => {
        fail::fail_point!($name, |action| {
            if action.as_deref() == Some("abort") {
                std::process::abort();
            }
            Err(AppendError::Unavailable(
                concat!("failpoint ", $name).into(),
            ))
        });
    };
    ($name:literal, after_commit) => {
        fail::fail_point!($name, |action| {
            if action.as_deref() == Some("abort") {
                std::process::abort();
            }
            Err(AppendError::OutcomeUnknown(
                concat!("failpoint ", $name).into(),
            ))
        });
    };
}

fn classify(err: sqlx::Error) -> AppendError {
    if super::is_unavailable(&err) {
        AppendError::Unavailable(err.to_string())
    } else {
        AppendError::Internal(err.to_string())
    }
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

const KEY_UPSERT: &str =
    "INSERT INTO idempotency_records (scope, key, fingerprint, outcome, recorded_at) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
     outcome = excluded.outcome, recorded_at = excluded.recorded_at \
     WHERE idempotency_records.recorded_at < $6";

/// The end of every unit, the same on both backends: the key record (a
/// live record of the same key means another request got there first),
/// then COMMIT — whose failure leaves the outcome unknown.
macro_rules! finish_unit {
    ($tx:ident, $unit:ident, $streams:ident) => {{
        let committed = finished($streams);
        if let Some((record, outcome)) = $unit.idempotency {
            let now = now_millis();
            let recorded = sqlx::query(KEY_UPSERT)
                .bind(&record.scope)
                .bind(&record.key)
                .bind(&record.fingerprint)
                .bind(outcome(&committed))
                .bind(now)
                .bind(now - super::idempotency::KEEP.as_millis() as i64)
                .execute(&mut *$tx)
                .await
                .map_err(classify)?;
            if recorded.rows_affected() == 0 {
                return Err(AppendError::KeyTaken);
            }
        }
        failpoint!("append.before_commit");
        $tx.commit()
            .await
            .map_err(|e| AppendError::OutcomeUnknown(e.to_string()))?;
        failpoint!("append.after_commit", after_commit);
        Ok(committed)
    }};
}

async fn commit_pg(pool: &PgPool, unit: &CommitUnit<'_>) -> Result<Committed, AppendError> {
    let mut tx = pool.begin().await.map_err(classify)?;
    let mut streams = Vec::with_capacity(unit.streams.len());
    for (index, stream) in unit.streams.iter().enumerate() {
        if index > 0 {
            failpoint!("append.between_streams");
        }
        let n = stream.events.len();
        let sequences: Vec<i64> = (1..=n as i64)
            .map(|i| stream.expected_version + i)
            .collect();
        let types: Vec<&str> = stream
            .events
            .iter()
            .map(|e| e.event_type.as_str())
            .collect();
        let versions: Vec<&str> = stream
            .events
            .iter()
            .map(|e| e.event_version.as_str())
            .collect();
        let payloads: Vec<String> = stream
            .events
            .iter()
            .map(|e| e.payload.to_string())
            .collect();
        let metadata: Vec<String> = (0..n).map(|_| event_metadata(unit.metadata)).collect();
        // One statement per stream; the position trigger numbers the rows.
        let inserted: Result<Vec<(i64, i64)>, sqlx::Error> = sqlx::query_as(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             SELECT $1, $2, s, t, v, p::json, m::json \
               FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[]) AS u(s, t, v, p, m) \
             RETURNING sequence, position",
        )
        .bind(stream.aggregate_type)
        .bind(&stream.aggregate_id)
        .bind(&sequences)
        .bind(&types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&metadata)
        .fetch_all(&mut *tx)
        .await;
        let rows = match inserted {
            Ok(rows) => rows,
            Err(err) if is_unique_violation(&err) => {
                return Err(AppendError::Conflict {
                    aggregate_type: stream.aggregate_type.to_string(),
                    aggregate_id: stream.aggregate_id.clone(),
                })
            }
            Err(err) => return Err(classify(err)),
        };
        let last = rows.iter().max_by_key(|(sequence, _)| *sequence);
        streams.push(CommittedStream {
            aggregate_type: stream.aggregate_type,
            aggregate_id: stream.aggregate_id.clone(),
            version: last.map_or(stream.expected_version, |(s, _)| *s),
            position: last.map_or(0, |(_, p)| *p),
        });
    }
    finish_unit!(tx, unit, streams)
}

async fn commit_sqlite(pool: &SqlitePool, unit: &CommitUnit<'_>) -> Result<Committed, AppendError> {
    let mut tx = pool.begin().await.map_err(classify)?;
    let mut streams = Vec::with_capacity(unit.streams.len());
    for (index, stream) in unit.streams.iter().enumerate() {
        if index > 0 {
            failpoint!("append.between_streams");
        }
        // The first write takes SQLite's write lock, so the trigger's
        // MAX(position) + 1 is the commit order.
        for (i, event) in stream.events.iter().enumerate() {
            let inserted = sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(stream.aggregate_type)
            .bind(&stream.aggregate_id)
            .bind(stream.expected_version + 1 + i as i64)
            .bind(&event.event_type)
            .bind(&event.event_version)
            .bind(event.payload.to_string())
            .bind(event_metadata(unit.metadata))
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(err) if is_unique_violation(&err) => {
                    return Err(AppendError::Conflict {
                        aggregate_type: stream.aggregate_type.to_string(),
                        aggregate_id: stream.aggregate_id.clone(),
                    })
                }
                Err(err) => return Err(classify(err)),
            }
        }
        let version = stream.expected_version + stream.events.len() as i64;
        let position: Option<i64> = sqlx::query_scalar(
            "SELECT position FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
        )
        .bind(stream.aggregate_type)
        .bind(&stream.aggregate_id)
        .bind(version)
        .fetch_one(&mut *tx)
        .await
        .map_err(classify)?;
        streams.push(CommittedStream {
            aggregate_type: stream.aggregate_type,
            aggregate_id: stream.aggregate_id.clone(),
            version,
            position: position.unwrap_or(0),
        });
    }
    finish_unit!(tx, unit, streams)
}

fn finished(streams: Vec<CommittedStream>) -> Committed {
    let position = streams.iter().map(|s| s.position).max().unwrap_or(0);
    Committed { streams, position }
}
