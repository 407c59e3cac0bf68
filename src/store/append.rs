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
use sqlx::{Connection, PgPool, SqlitePool};
use uuid::Uuid;

use annals_domain::envelope::keys;
use annals_domain::StoredEvent;

use super::handoff::Handoff;
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
    /// The aggregate's state after these events, to keep as its snapshot.
    pub snapshot: Option<Snapshot>,
}

/// An aggregate's state at a version, as JSON (see `store::snapshots`).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub version: i64,
    pub state: String,
}

/// Writes the stream's snapshot, if it brings one, in the unit's savepoint.
macro_rules! keep_snapshot {
    ($conn:ident, $stream:ident) => {
        if let Some(snapshot) = &$stream.snapshot {
            sqlx::query(SNAPSHOT_UPSERT)
                .bind($stream.aggregate_type)
                .bind(&$stream.aggregate_id)
                .bind(snapshot.version)
                .bind(super::snapshots::FORMAT)
                .bind(&snapshot.state)
                .execute(&mut *$conn)
                .await
                .map_err(classify)?;
        }
    };
}

/// Keeps a snapshot unless a newer one is there.
const SNAPSHOT_UPSERT: &str = "INSERT INTO aggregate_snapshots (aggregate_type, aggregate_id, version, format, state) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE \
     SET version = excluded.version, format = excluded.format, state = excluded.state \
     WHERE aggregate_snapshots.version < excluded.version OR aggregate_snapshots.format <> excluded.format";

/// The key record a unit commits with its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub scope: String,
    pub key: String,
    /// Digest of the request.
    pub fingerprint: String,
}

/// Everything one command writes; a value handed to the writer.
pub struct CommitUnit {
    pub streams: Vec<StreamAppend>,
    /// The command's metadata; every event also gets its own event id.
    pub metadata: HashMap<String, String>,
    /// The key, and the outcome to record with it (built once the positions
    /// are known, inside the transaction).
    pub idempotency: Option<(IdempotencyRecord, Box<Outcome>)>,
}

/// Builds the outcome recorded with the key, once the positions are known.
pub type Outcome = dyn Fn(&Committed) -> String + Send + Sync;

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

#[derive(Debug, Clone, thiserror::Error)]
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

/// Writes commit units. Group commit: one task per process takes the units
/// waiting at that moment (at most `MAX_BATCH`; none is held back when the
/// writer is idle) and writes them in one transaction — one lock of the
/// position counter, one flush to disk for all of them. Each unit runs in a
/// savepoint, so a unit whose stream conflicts (or whose key is taken)
/// fails alone and the others of the batch commit.
#[derive(Clone, Debug)]
pub struct EventWriter {
    queue: tokio::sync::mpsc::Sender<Job>,
    keys: super::privacy::Keys,
}

/// Units per transaction at most.
const MAX_BATCH: usize = 128;

/// Units handed over together, answered together (in order).
struct Job {
    units: Vec<CommitUnit>,
    reply: tokio::sync::oneshot::Sender<Vec<Result<Committed, AppendError>>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("units", &self.units.len())
            .finish()
    }
}

impl EventWriter {
    /// Starts this process's writer task (inside a tokio runtime); what it
    /// commits whole is handed to `handoff`'s receivers.
    pub fn new(pool: TypedPool, handoff: Handoff) -> Self {
        let (queue, jobs) = tokio::sync::mpsc::channel(4 * MAX_BATCH);
        let keys = super::privacy::Keys::new(pool.clone());
        tokio::spawn(run_writer(pool, jobs, handoff));
        Self { queue, keys }
    }

    pub async fn commit(&self, unit: CommitUnit) -> Result<Committed, AppendError> {
        let started = Instant::now();
        let types: Vec<&'static str> = unit.streams.iter().map(|s| s.aggregate_type).collect();
        let committed = self
            .commit_all(vec![unit])
            .await
            .pop()
            .expect("one answer per unit")?;
        for aggregate in types {
            metrics::histogram!("annals_append_seconds", "aggregate" => aggregate)
                .record(started.elapsed().as_secs_f64());
        }
        Ok(committed)
    }

    /// Several units in one transaction (with whatever else is waiting),
    /// each in its own savepoint; the answers come in the units' order.
    pub async fn commit_all(
        &self,
        mut units: Vec<CommitUnit>,
    ) -> Vec<Result<Committed, AppendError>> {
        let count = units.len();
        // Personal fields go in encrypted with their person's key.
        for unit in &mut units {
            for stream in &mut unit.streams {
                let sealed = self
                    .keys
                    .seal(
                        stream.aggregate_type,
                        &stream.aggregate_id,
                        &mut stream.events,
                    )
                    .await;
                if let Err(err) = sealed {
                    let unavailable = err.chain().any(|c| {
                        c.downcast_ref::<sqlx::Error>()
                            .is_some_and(super::is_unavailable)
                    });
                    let failed = if unavailable {
                        AppendError::Unavailable(format!("{err:#}"))
                    } else {
                        AppendError::Internal(format!("{err:#}"))
                    };
                    return vec![Err(failed); count];
                }
            }
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self.queue.send(Job { units, reply }).await.is_err() {
            let stopped = AppendError::Unavailable("the writer has stopped".into());
            return vec![Err(stopped); count];
        }
        // The writer always answers; a dropped answer means it died mid-batch.
        answer.await.unwrap_or_else(|_| {
            let unknown = AppendError::OutcomeUnknown("the writer stopped mid-commit".into());
            vec![Err(unknown); count]
        })
    }
}

/// Each unit's answer, in order.
type Answers = Vec<Result<Committed, AppendError>>;

/// A batch's answers, and its events as stored when every unit committed
/// (empty otherwise: the receivers of the handoff read the log).
type Written = (Answers, Vec<StoredEvent>);

async fn run_writer(pool: TypedPool, mut jobs: tokio::sync::mpsc::Receiver<Job>, handoff: Handoff) {
    while let Some(first) = jobs.recv().await {
        let mut size = first.units.len();
        let mut batch = vec![first];
        while size < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => {
                    size += job.units.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        metrics::histogram!("annals_append_batch_units").record(size as f64);
        let units: Vec<&CommitUnit> = batch.iter().flat_map(|j| j.units.iter()).collect();
        // A bug that panics in one batch must not stop every later commit
        // of the process: that batch's outcome is unknown, the writer goes on.
        let (committed, stored) =
            futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
                match &pool {
                    TypedPool::Postgres(pool) => commit_pg(pool, &units).await,
                    TypedPool::Sqlite(pool) => commit_sqlite(pool, &units).await,
                }
            }))
            .await
            .unwrap_or_else(|_| {
                tracing::error!("the writer panicked in a batch");
                let unknown = AppendError::OutcomeUnknown("the writer failed mid-batch".into());
                all_failed(&units, unknown)
            });
        // Before the answers: the appended position a command reports
        // then never runs ahead of what the relay has been handed.
        handoff.send(stored);
        let mut results = committed.into_iter();
        for job in batch {
            let answers: Vec<_> = results.by_ref().take(job.units.len()).collect();
            let _ = job.reply.send(answers);
        }
    }
}

/// Every unit of a batch answered with `err`, nothing handed over.
fn all_failed(units: &[&CommitUnit], err: AppendError) -> Written {
    (units.iter().map(|_| Err(err.clone())).collect(), Vec::new())
}

/// Each event's metadata: the command's, plus its own UUIDv7 event id.
fn event_metadata(metadata: &HashMap<String, String>) -> String {
    let mut map = metadata.clone();
    map.entry(keys::EVENT_ID.to_string())
        .or_insert_with(|| Uuid::now_v7().to_string());
    serde_json::to_string(&map).expect("a string map serializes")
}

/// Failpoints for the fault-injection tests (compiled to nothing without
/// the `failpoints` feature). `return(abort)` kills the process on the spot;
/// otherwise the failpoint's error is returned.
macro_rules! failpoint {
    ($name:literal, $error:expr) => {
        fail::fail_point!($name, |action| {
            if action.as_deref() == Some("abort") {
                std::process::abort();
            }
            Err($error(concat!("failpoint ", $name).to_string()))
        });
    };
}

fn classify_ref(err: &sqlx::Error) -> AppendError {
    if matches!(err, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")))
    {
        return AppendError::Conflict {
            aggregate_type: "transaction".into(),
            aggregate_id: err.to_string(),
        };
    }
    AppendError::Internal(err.to_string())
}

fn classify(err: sqlx::Error) -> AppendError {
    // Two processes' batches can wait on each other (one holds the position
    // counter, the other a key both retries carry): PostgreSQL cancels one
    // statement. Its unit rolls back to its savepoint and is decided again,
    // like any lost race.
    if matches!(&err, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")))
    {
        return AppendError::Conflict {
            aggregate_type: "transaction".into(),
            aggregate_id: err.to_string(),
        };
    }
    if super::is_unavailable(&err) {
        AppendError::Unavailable(err.to_string())
    } else {
        AppendError::Internal(err.to_string())
    }
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn conflict(stream: &StreamAppend) -> AppendError {
    AppendError::Conflict {
        aggregate_type: stream.aggregate_type.to_string(),
        aggregate_id: stream.aggregate_id.clone(),
    }
}

/// Whether a unit's failure is its own (the batch goes on without it) or
/// the transaction's (the whole batch fails, nothing is written).
fn own(err: &AppendError) -> bool {
    matches!(err, AppendError::Conflict { .. } | AppendError::KeyTaken)
}

/// Records a unit's key with its outcome (unless a live record has it):
/// the result of the upsert, whose row count is 0 when the key is taken.
macro_rules! record_key {
    ($conn:expr, $record:expr, $outcome:expr) => {{
        let now = now_millis();
        sqlx::query(KEY_UPSERT)
            .bind(&$record.scope)
            .bind(&$record.key)
            .bind(&$record.fingerprint)
            .bind($outcome)
            .bind(now)
            .bind(now - super::idempotency::KEEP.as_millis() as i64)
            .execute($conn)
            .await
    }};
}

const KEY_UPSERT: &str =
    "INSERT INTO idempotency_records (scope, key, fingerprint, outcome, recorded_at) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
     outcome = excluded.outcome, recorded_at = excluded.recorded_at \
     WHERE idempotency_records.recorded_at < $6";

/// The batch skeleton, the same on both backends: a transaction, a
/// savepoint per unit (`$insert` writes one unit's streams), the key
/// record, then one COMMIT — whose failure leaves every unit of the batch
/// with an unknown outcome.
macro_rules! commit_batch {
    ($pool:expr, $units:expr, $insert:ident) => {{
        let units: &[&CommitUnit] = $units;
        let failed = |err: AppendError| units.iter().map(|_| Err(err.clone())).collect::<Vec<_>>();
        let mut tx = match super::begin_write($pool).await {
            Ok(tx) => tx,
            Err(err) => return failed(classify(err)),
        };
        let mut results: Vec<Result<Committed, AppendError>> = Vec::with_capacity(units.len());
        for unit in units {
            let mut savepoint = match (&mut *tx).begin().await {
                Ok(sp) => sp,
                Err(err) => return failed(classify(err)),
            };
            let written: Result<Committed, AppendError> = async {
                let committed = finished($insert(&mut *savepoint, unit).await?);
                if let Some((record, outcome)) = &unit.idempotency {
                    let recorded = record_key!(&mut *savepoint, record, outcome(&committed))
                        .map_err(classify)?;
                    if recorded.rows_affected() == 0 {
                        return Err(AppendError::KeyTaken);
                    }
                }
                Ok(committed)
            }
            .await;
            match written {
                Ok(committed) => {
                    if let Err(err) = savepoint.commit().await {
                        return failed(classify(err));
                    }
                    results.push(Ok(committed));
                }
                Err(err) if own(&err) => {
                    if let Err(err) = savepoint.rollback().await {
                        return failed(classify(err));
                    }
                    results.push(Err(err));
                }
                // The transaction itself failed: nothing of the batch is written.
                Err(err) => return failed(err),
            }
        }
        if let Err(err) = before_commit() {
            return failed(err);
        }
        if let Err(err) = tx.commit().await {
            let unknown = AppendError::OutcomeUnknown(err.to_string());
            return results
                .into_iter()
                .map(|r| r.and(Err(unknown.clone())))
                .collect();
        }
        match after_commit() {
            Ok(()) => results,
            Err(err) => results
                .into_iter()
                .map(|r| r.and(Err(err.clone())))
                .collect(),
        }
    }};
}

fn between_streams() -> Result<(), AppendError> {
    failpoint!("append.between_streams", AppendError::Unavailable);
    Ok(())
}

fn before_commit() -> Result<(), AppendError> {
    failpoint!("append.before_commit", AppendError::Unavailable);
    Ok(())
}

fn after_commit() -> Result<(), AppendError> {
    failpoint!("append.after_commit", AppendError::OutcomeUnknown);
    Ok(())
}

async fn commit_pg(pool: &PgPool, units: &[&CommitUnit]) -> Written {
    if let Some(written) = commit_pg_at_once(pool, units).await {
        return written;
    }
    (commit_pg_units(pool, units).await, Vec::new())
}

/// Unit by unit, each in a savepoint.
async fn commit_pg_units(pool: &PgPool, units: &[&CommitUnit]) -> Answers {
    commit_batch!(pool, units, insert_pg)
}

/// The events of a batch as columns, for one UNNEST.
#[derive(Default)]
struct Columns<'a> {
    types: Vec<&'a str>,
    ids: Vec<&'a str>,
    sequences: Vec<i64>,
    event_types: Vec<&'a str>,
    versions: Vec<&'a str>,
    payloads: Vec<String>,
    metadata: Vec<String>,
}

/// The end of an at-once batch, the same on both backends: each stream's
/// snapshot, each unit's key (a taken key rolls back and answers `None`:
/// go unit by unit), the failpoints, COMMIT.
macro_rules! finish_at_once {
    ($tx:ident, $units:ident, $positions:ident, $stored:ident, $failed:ident) => {{
        let (mut tx, units, positions, failed) = ($tx, $units, $positions, $failed);
        if units.iter().any(|u| u.streams.len() > 1) {
            // Where a unit of several streams would be half-written.
            if let Err(err) = between_streams() {
                return failed(err);
            }
        }
        let mut results = Vec::with_capacity(units.len());
        for unit in units {
            for stream in &unit.streams {
                let conn = &mut *tx;
                let kept: Result<(), AppendError> = async {
                    keep_snapshot!(conn, stream);
                    Ok(())
                }
                .await;
                if let Err(err) = kept {
                    return failed(err);
                }
            }
            let committed = finished(landed(unit, &positions));
            if let Some((record, outcome)) = &unit.idempotency {
                let recorded = record_key!(&mut *tx, record, outcome(&committed));
                match recorded {
                    Ok(done) if done.rows_affected() == 1 => {}
                    Ok(_) => {
                        let _ = tx.rollback().await;
                        return None;
                    }
                    Err(err) => {
                        let own = matches!(classify_ref(&err), AppendError::Conflict { .. });
                        let _ = tx.rollback().await;
                        return if own { None } else { failed(classify(err)) };
                    }
                }
            }
            results.push(Ok(committed));
        }
        if let Err(err) = before_commit() {
            return failed(err);
        }
        if let Err(err) = tx.commit().await {
            return failed(AppendError::OutcomeUnknown(err.to_string()));
        }
        match after_commit() {
            Ok(()) => Some((results, $stored)),
            Err(err) => failed(err),
        }
    }};
}

/// The common case on PostgreSQL: every event of the batch in one INSERT
/// (positions back by RETURNING), the keys and snapshots after it, one
/// COMMIT — a few round trips per batch instead of several per unit. When
/// a unit cannot commit (a stream conflicts, a key is taken) the whole
/// transaction is rolled back and `None` says: go unit by unit, in
/// savepoints, so that unit fails alone.
async fn commit_pg_at_once(pool: &PgPool, units: &[&CommitUnit]) -> Option<Written> {
    let failed = |err: AppendError| Some(all_failed(units, err));
    let columns = columns_of(units);
    // Nothing to write but the events: one INSERT is one transaction, so it
    // goes alone, without BEGIN and COMMIT — one round trip for the batch.
    let events_only = units
        .iter()
        .all(|u| u.idempotency.is_none() && u.streams.iter().all(|s| s.snapshot.is_none()));
    if events_only {
        return insert_pg_alone(pool, units, &columns).await;
    }
    let mut tx = match super::begin_write(pool).await {
        Ok(tx) => tx,
        Err(err) => return failed(classify(err)),
    };
    let (positions, stored) = match insert_columns(&mut tx, &columns).await {
        Ok(inserted) => inserted,
        Err(err) => {
            let own = is_unique_violation(&err)
                || matches!(classify_ref(&err), AppendError::Conflict { .. });
            let _ = tx.rollback().await;
            return if own { None } else { failed(classify(err)) };
        }
    };
    finish_at_once!(tx, units, positions, stored, failed)
}

fn columns_of<'a>(units: &[&'a CommitUnit]) -> Columns<'a> {
    let mut columns = Columns::default();
    for unit in units {
        for stream in &unit.streams {
            for (i, event) in stream.events.iter().enumerate() {
                columns.types.push(stream.aggregate_type);
                columns.ids.push(&stream.aggregate_id);
                columns
                    .sequences
                    .push(stream.expected_version + 1 + i as i64);
                columns.event_types.push(&event.event_type);
                columns.versions.push(&event.event_version);
                columns.payloads.push(event.payload.to_string());
                columns.metadata.push(event_metadata(&unit.metadata));
            }
        }
    }
    columns
}

/// Where each stream's last event landed: (type, id, sequence) → position.
type Positions = HashMap<(String, String, i64), i64>;

/// Where each row of the events table landed, by its stream and sequence.
macro_rules! positions_of {
    ($rows:expr) => {{
        use sqlx::Row;
        let mut positions = Positions::with_capacity($rows.len());
        for row in &$rows {
            let stream = (
                row.try_get("aggregate_type")?,
                row.try_get("aggregate_id")?,
                row.try_get("sequence")?,
            );
            positions.insert(stream, row.try_get("position")?);
        }
        positions
    }};
}

/// Every event of the batch in one INSERT; by RETURNING the rows as
/// stored (for the handoff), and so the positions.
async fn insert_columns(
    conn: &mut sqlx::PgConnection,
    columns: &Columns<'_>,
) -> Result<(Positions, Vec<StoredEvent>), sqlx::Error> {
    let sql = format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         SELECT a, i, s, t, v, p::json, m::json \
           FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[]) \
             AS u(a, i, s, t, v, p, m) \
         RETURNING {}",
        super::log::COLUMNS
    );
    let rows = sqlx::query(&sql)
        .bind(&columns.types)
        .bind(&columns.ids)
        .bind(&columns.sequences)
        .bind(&columns.event_types)
        .bind(&columns.versions)
        .bind(&columns.payloads)
        .bind(&columns.metadata)
        .fetch_all(conn)
        .await?;
    Ok((
        positions_of!(rows),
        stored(rows.iter().map(super::log::pg_row)),
    ))
}

/// Rows as stored events; none when one does not decode (a bug: the
/// handoff's receivers then read the log, the commit stands).
fn stored(rows: impl Iterator<Item = anyhow::Result<StoredEvent>>) -> Vec<StoredEvent> {
    rows.collect::<anyhow::Result<_>>().unwrap_or_else(|err| {
        tracing::error!(error = %format!("{err:#}"), "a row just written does not decode");
        Vec::new()
    })
}

/// A batch of events alone (no key, no snapshot): its one INSERT is its
/// transaction. `None` when a stream conflicts: go unit by unit.
async fn insert_pg_alone(
    pool: &PgPool,
    units: &[&CommitUnit],
    columns: &Columns<'_>,
) -> Option<Written> {
    let failed = |err: AppendError| Some(all_failed(units, err));
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(err) => return failed(classify(err)),
    };
    // The failpoints where a transaction has them: the statement is the
    // commit, so they come before it.
    if units.iter().any(|u| u.streams.len() > 1) {
        if let Err(err) = between_streams() {
            return failed(err);
        }
    }
    if let Err(err) = before_commit() {
        return failed(err);
    }
    let (positions, stored) = match insert_columns(&mut conn, columns).await {
        Ok(inserted) => inserted,
        Err(err) if is_unique_violation(&err) => return None,
        Err(err) if matches!(classify_ref(&err), AppendError::Conflict { .. }) => return None,
        // Refused by the database: the statement, its own transaction, is
        // rolled back.
        Err(err @ sqlx::Error::Database(_)) => return failed(classify(err)),
        // Sent, and the answer lost: it may have committed.
        Err(err) => return failed(AppendError::OutcomeUnknown(err.to_string())),
    };
    let results = units
        .iter()
        .map(|unit| Ok(finished(landed(unit, &positions))))
        .collect();
    match after_commit() {
        Ok(()) => Some((results, stored)),
        Err(err) => failed(err),
    }
}

/// A unit's streams with their new versions and last positions.
fn landed(unit: &CommitUnit, positions: &Positions) -> Vec<CommittedStream> {
    unit.streams
        .iter()
        .map(|stream| {
            let version = stream.expected_version + stream.events.len() as i64;
            let key = (
                stream.aggregate_type.to_string(),
                stream.aggregate_id.clone(),
                version,
            );
            CommittedStream {
                aggregate_type: stream.aggregate_type,
                aggregate_id: stream.aggregate_id.clone(),
                version,
                position: positions.get(&key).copied().unwrap_or(0),
            }
        })
        .collect()
}

async fn commit_sqlite(pool: &SqlitePool, units: &[&CommitUnit]) -> Written {
    if let Some(written) = commit_sqlite_at_once(pool, units).await {
        return written;
    }
    (commit_sqlite_units(pool, units).await, Vec::new())
}

/// Unit by unit, each in a savepoint.
async fn commit_sqlite_units(pool: &SqlitePool, units: &[&CommitUnit]) -> Answers {
    commit_batch!(pool, units, insert_sqlite)
}

/// Events per INSERT statement on SQLite (seven parameters each).
const SQLITE_ROWS_PER_INSERT: usize = 1_000;

/// The same as `commit_pg_at_once` on SQLite: multi-row INSERTs (`?`
/// marks: SQLite's numbered ones cost n² to bind), then the positions the
/// trigger gave — the batch holds the write lock, so its rows are the last
/// ones of the log.
async fn commit_sqlite_at_once(pool: &SqlitePool, units: &[&CommitUnit]) -> Option<Written> {
    let failed = |err: AppendError| Some(all_failed(units, err));
    let mut tx = match super::begin_write(pool).await {
        Ok(tx) => tx,
        Err(err) => return failed(classify(err)),
    };
    let mut rows = Vec::new();
    for unit in units {
        for stream in &unit.streams {
            for (i, event) in stream.events.iter().enumerate() {
                rows.push((stream, stream.expected_version + 1 + i as i64, event, unit));
            }
        }
    }
    for chunk in rows.chunks(SQLITE_ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES {}",
            vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (stream, sequence, event, unit) in chunk {
            query = query
                .bind(stream.aggregate_type)
                .bind(&stream.aggregate_id)
                .bind(*sequence)
                .bind(&event.event_type)
                .bind(&event.event_version)
                .bind(event.payload.to_string())
                .bind(event_metadata(&unit.metadata));
        }
        if let Err(err) = query.execute(&mut *tx).await {
            let own = is_unique_violation(&err);
            let _ = tx.rollback().await;
            return if own { None } else { failed(classify(err)) };
        }
    }
    // The batch's rows as stored (for the handoff), and so the positions.
    let sql = format!(
        "SELECT {} FROM events WHERE position > (SELECT MAX(position) FROM events) - ?",
        super::log::COLUMNS
    );
    let numbered = async {
        let rows = sqlx::query(&sql)
            .bind(rows.len() as i64)
            .fetch_all(&mut *tx)
            .await?;
        let stored = stored(rows.iter().map(super::log::sqlite_row));
        Ok::<_, sqlx::Error>((positions_of!(rows), stored))
    }
    .await;
    let (positions, stored) = match numbered {
        Ok(numbered) => numbered,
        Err(err) => return failed(classify(err)),
    };
    finish_at_once!(tx, units, positions, stored, failed)
}

/// One unit's streams, one multi-row INSERT each; the position trigger
/// numbers the rows and RETURNING hands the positions back.
async fn insert_pg(
    conn: &mut sqlx::PgConnection,
    unit: &CommitUnit,
) -> Result<Vec<CommittedStream>, AppendError> {
    let mut streams = Vec::with_capacity(unit.streams.len());
    for (index, stream) in unit.streams.iter().enumerate() {
        if index > 0 {
            failpoint!("append.between_streams", AppendError::Unavailable);
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
        let metadata: Vec<String> = (0..n).map(|_| event_metadata(&unit.metadata)).collect();
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
        .fetch_all(&mut *conn)
        .await;
        let rows = match inserted {
            Ok(rows) => rows,
            Err(err) if is_unique_violation(&err) => return Err(conflict(stream)),
            Err(err) => return Err(classify(err)),
        };
        keep_snapshot!(conn, stream);
        let last = rows.iter().max_by_key(|(sequence, _)| *sequence);
        streams.push(CommittedStream {
            aggregate_type: stream.aggregate_type,
            aggregate_id: stream.aggregate_id.clone(),
            version: last.map_or(stream.expected_version, |(s, _)| *s),
            position: last.map_or(0, |(_, p)| *p),
        });
    }
    Ok(streams)
}

/// One unit's streams, a row at a time (in process, so cheap); the trigger
/// gives each row `MAX(position) + 1`, which is commit order because the
/// batch's transaction holds SQLite's write lock.
async fn insert_sqlite(
    conn: &mut sqlx::SqliteConnection,
    unit: &CommitUnit,
) -> Result<Vec<CommittedStream>, AppendError> {
    let mut streams = Vec::with_capacity(unit.streams.len());
    for (index, stream) in unit.streams.iter().enumerate() {
        if index > 0 {
            failpoint!("append.between_streams", AppendError::Unavailable);
        }
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
            .bind(event_metadata(&unit.metadata))
            .execute(&mut *conn)
            .await;
            match inserted {
                Ok(_) => {}
                Err(err) if is_unique_violation(&err) => return Err(conflict(stream)),
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
        .fetch_one(&mut *conn)
        .await
        .map_err(classify)?;
        keep_snapshot!(conn, stream);
        streams.push(CommittedStream {
            aggregate_type: stream.aggregate_type,
            aggregate_id: stream.aggregate_id.clone(),
            version,
            position: position.unwrap_or(0),
        });
    }
    Ok(streams)
}

fn finished(streams: Vec<CommittedStream>) -> Committed {
    let position = streams.iter().map(|s| s.position).max().unwrap_or(0);
    Committed { streams, position }
}
