//! Running one projector: read events (from the log, or as NATS delivers
//! them), apply them and the checkpoint in one transaction, retry with
//! backoff, and stop visibly on an event that keeps failing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use sqlx::AnyPool;
use tokio::sync::watch;

use annals_domain::StoredEvent;
use annals_projections::Projector;

use crate::store::{now_millis, LogReader};

/// What `/readyz` and `/metrics` report about a consumer.
#[derive(Clone, Debug, Default)]
pub struct ConsumerStatus {
    pub checkpoint: i64,
    /// Set when the consumer stopped on an event that kept failing.
    pub failed: Option<String>,
    /// Time the last applied event was recorded in the store.
    pub last_event_recorded_at: Option<DateTime<Utc>>,
}

/// Shared, observable state of one consumer in this process.
pub struct ConsumerState {
    pub name: &'static str,
    status: Mutex<ConsumerStatus>,
    progress: watch::Sender<i64>,
}

impl ConsumerState {
    pub fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Self {
            name,
            status: Mutex::new(ConsumerStatus::default()),
            progress: watch::channel(0).0,
        })
    }

    pub fn status(&self) -> ConsumerStatus {
        self.status.lock().expect("status lock").clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.progress.subscribe()
    }

    pub(crate) fn advanced(&self, checkpoint: i64, recorded_at: Option<DateTime<Utc>>) {
        let mut status = self.status.lock().expect("status lock");
        status.checkpoint = checkpoint;
        if recorded_at.is_some() {
            status.last_event_recorded_at = recorded_at;
        }
        drop(status);
        self.progress.send_if_modified(|p| {
            let moved = *p != checkpoint;
            *p = checkpoint;
            moved
        });
    }

    fn failed(&self, reason: String) {
        self.status.lock().expect("status lock").failed = Some(reason);
    }
}

/// Outcome of one attempt to apply a batch.
enum Applied {
    /// Applied; the checkpoint is now this position.
    To(i64),
    /// Another instance had already moved the checkpoint; it is now this.
    Moved(i64),
}

/// Read-model checkpoints (one row per consumer).
pub struct Checkpoints;

impl Checkpoints {
    pub async fn ensure(pool: &AnyPool, name: &str) -> Result<i64> {
        sqlx::query(
            "INSERT INTO consumer_checkpoints (name, position, updated_at) VALUES ($1, 0, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now_millis())
        .execute(pool)
        .await
        .with_context(|| format!("creating the checkpoint of {name}"))?;
        Self::get(pool, name).await
    }

    pub async fn get(pool: &AnyPool, name: &str) -> Result<i64> {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM consumer_checkpoints WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await
                .with_context(|| format!("reading the checkpoint of {name}"))?;
        Ok(position.unwrap_or(0))
    }

    /// Compare-and-set; the first statement of a transaction, so that on
    /// SQLite the transaction takes the write lock at once.
    async fn advance(
        conn: &mut sqlx::AnyConnection,
        name: &str,
        from: i64,
        to: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE consumer_checkpoints SET position = $1, updated_at = $2 \
             WHERE name = $3 AND position = $4",
        )
        .bind(to)
        .bind(now_millis())
        .bind(name)
        .bind(from)
        .execute(conn)
        .await?
        .rows_affected();
        Ok(done == 1)
    }
}

/// Applies batches of one projector with its checkpoint, exactly once.
pub struct ProjectorRunner {
    pub projector: Arc<dyn Projector>,
    pub state: Arc<ConsumerState>,
    pool: AnyPool,
    log: LogReader,
    checkpoint: i64,
    /// Events read from the log and applied in one transaction, at most.
    page: i64,
    /// The checkpoint as stored; behind `checkpoint` after batches this
    /// read model ignores, until `flush`.
    stored: i64,
    unsaved_since: Option<std::time::Instant>,
}

/// How far the checkpoint may run ahead of the stored one.
const LAZY_EVENTS: i64 = 5_000;
/// An idle consumer stores a checkpoint that moved in memory after this.
pub const FLUSH_AFTER: Duration = Duration::from_millis(50);

/// Events a running consumer reads from the log at a time (and asks NATS
/// for): small enough that one transaction does not hold SQLite's write
/// lock long while commands wait for it.
pub const BATCH: i64 = 1_000;
/// Events per transaction when a read model is rebuilt (`annals replay`):
/// fewer, larger batches are what makes a rebuild fast.
pub const REBUILD_BATCH: i64 = 10_000;
const MAX_ATTEMPTS: u32 = 6;

impl ProjectorRunner {
    pub async fn start(
        projector: Arc<dyn Projector>,
        state: Arc<ConsumerState>,
        pool: AnyPool,
        log: LogReader,
    ) -> Result<Self> {
        projector.prepare(&pool).await?;
        let checkpoint = Checkpoints::ensure(&pool, projector.name()).await?;
        state.advanced(checkpoint, None);
        Ok(Self {
            projector,
            state,
            pool,
            log,
            checkpoint,
            page: BATCH,
            stored: checkpoint,
            unsaved_since: None,
        })
    }

    pub fn checkpoint(&self) -> i64 {
        self.checkpoint
    }

    /// Reads and applies everything the log holds beyond the checkpoint.
    /// Returns how many events were applied; `Err` only when the consumer
    /// has stopped for good.
    pub async fn catch_up(&mut self, stop: &watch::Receiver<bool>) -> Result<usize> {
        let mut applied = 0;
        let mut limit = self.page;
        let mut attempt = 0;
        // The page after a full one is read while the full one is applied
        // (two connections): `(after, limit, events)`.
        let mut ahead: Option<(i64, i64, Vec<StoredEvent>)> = None;
        while !*stop.borrow() {
            let prefetched = match ahead.take() {
                Some((after, read, events)) if after == self.checkpoint && read == limit => {
                    Some(events)
                }
                _ => None,
            };
            let events = match prefetched {
                Some(events) => events,
                None => match self.log.read_after(self.checkpoint, limit).await {
                    Ok(events) => events,
                    Err(err) => {
                        // The database is the source; wait for it, however long.
                        tracing::warn!(consumer = self.projector.name(), error = %format!("{err:#}"), "cannot read the log; retrying");
                        backoff(attempt.min(6)).await;
                        attempt += 1;
                        continue;
                    }
                },
            };
            let Some(last) = events.last() else {
                return Ok(applied);
            };
            let last = last.position;
            let outcome = if events.len() == limit as usize && limit > 1 {
                let log = self.log.clone();
                let (outcome, next) =
                    tokio::join!(self.try_apply(&events), log.read_after(last, limit));
                if let Ok(next) = next {
                    ahead = Some((last, limit, next));
                }
                outcome
            } else {
                self.try_apply(&events).await
            };
            match outcome {
                Ok(()) => {
                    applied += events.len();
                    attempt = 0;
                    let reached_head = events.len() < limit as usize && last <= self.checkpoint;
                    limit = self.page;
                    if reached_head {
                        return Ok(applied);
                    }
                }
                Err(err) => {
                    attempt += 1;
                    // Narrow to one event so a failure names its event.
                    limit = 1;
                    let first = events[0].position;
                    if attempt >= MAX_ATTEMPTS && !err.transient {
                        let reason = format!(
                            "event at position {first} ({}) keeps failing: {}",
                            events[0].event_type, err.message
                        );
                        tracing::error!(consumer = self.projector.name(), %reason, "consumer stopped");
                        self.state.failed(reason.clone());
                        metrics::gauge!("annals_consumer_failed", "consumer" => self.projector.name())
                            .set(1.0);
                        anyhow::bail!(reason);
                    }
                    tracing::warn!(consumer = self.projector.name(), position = first, attempt, error = %err.message, "applying failed; retrying");
                    backoff(attempt).await;
                }
            }
        }
        Ok(applied)
    }

    /// Applies events the fan-out delivered (in position order). They may
    /// repeat what was applied already or leave a gap; gaps are filled
    /// from the log.
    pub async fn deliver(
        &mut self,
        events: &[StoredEvent],
        stop: &watch::Receiver<bool>,
    ) -> Result<()> {
        let fresh = events.partition_point(|e| e.position <= self.checkpoint);
        let events = &events[fresh..];
        if events.is_empty() {
            return Ok(());
        }
        let contiguous = events
            .iter()
            .zip(self.checkpoint + 1..)
            .all(|(e, expected)| e.position == expected);
        let reason = if !contiguous {
            "gap"
        } else if self.try_apply(events).await.is_ok() {
            return Ok(());
        } else {
            "failed"
        };
        caught_up_from_log(self.projector.name(), reason);
        self.catch_up(stop).await.map(|_| ())
    }

    async fn try_apply(&mut self, events: &[StoredEvent]) -> Result<(), ApplyError> {
        let to = events.last().expect("non-empty batch").position;
        // A batch this read model has nothing to do with moves the
        // checkpoint in memory only (queries and /readyz see it at once);
        // it is stored with the next batch that changes something, when
        // the consumer is idle, or once it is `LAZY_EVENTS` ahead. A restart
        // in between reads those events again and again ignores them.
        if !events.iter().any(|e| self.projector.handles(e)) && to - self.stored < LAZY_EVENTS {
            self.checkpoint = to;
            self.unsaved_since
                .get_or_insert_with(std::time::Instant::now);
            self.state
                .advanced(to, events.last().map(|e| e.recorded_at));
            return Ok(());
        }
        match self.apply_batch(events).await {
            Ok(Applied::To(position)) => {
                self.checkpoint = position;
                self.stored = position;
                self.unsaved_since = None;
                self.state
                    .advanced(position, events.last().map(|e| e.recorded_at));
                metrics::counter!("annals_consumer_events_total", "consumer" => self.projector.name())
                    .increment(events.len() as u64);
                Ok(())
            }
            Ok(Applied::Moved(position)) => {
                // Someone else (a replay, another process) got there first;
                // continue from where they are.
                self.checkpoint = position;
                self.stored = position;
                self.unsaved_since = None;
                self.state.advanced(position, None);
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// How long the checkpoint has been ahead of the stored one.
    pub fn unsaved_for(&self) -> Option<Duration> {
        self.unsaved_since.map(|since| since.elapsed())
    }

    /// Stores a checkpoint that moved in memory only (see `try_apply`).
    pub async fn flush(&mut self) -> Result<()> {
        if self.unsaved_since.is_none() {
            return Ok(());
        }
        let name = self.projector.name();
        let mut conn = self.pool.acquire().await?;
        let advanced = Checkpoints::advance(&mut conn, name, self.stored, self.checkpoint).await?;
        // Back to the pool before another is taken: every projector of the
        // process may flush at the same instant.
        drop(conn);
        if advanced {
            self.stored = self.checkpoint;
        } else {
            let now = Checkpoints::get(&self.pool, name).await?;
            self.checkpoint = now;
            self.stored = now;
            self.state.advanced(now, None);
        }
        self.unsaved_since = None;
        Ok(())
    }

    async fn apply_batch(&self, events: &[StoredEvent]) -> Result<Applied, ApplyError> {
        let name = self.projector.name();
        let to = events.last().expect("non-empty batch").position;
        let mut tx = crate::store::begin_write_any(&self.pool)
            .await
            .map_err(ApplyError::sql)?;
        if !Checkpoints::advance(&mut tx, name, self.stored, to)
            .await
            .map_err(ApplyError::other)?
        {
            tx.rollback().await.map_err(ApplyError::sql)?;
            let now = Checkpoints::get(&self.pool, name)
                .await
                .map_err(ApplyError::other)?;
            return Ok(Applied::Moved(now));
        }
        annals_projections::forget::apply_in_parts(self.projector.as_ref(), &mut tx, events)
            .await
            .map_err(ApplyError::other)?;
        tx.commit().await.map_err(ApplyError::sql)?;
        Ok(Applied::To(to))
    }
}

struct ApplyError {
    message: String,
    /// The database was unreachable: not the event's fault.
    transient: bool,
}

impl ApplyError {
    fn sql(err: sqlx::Error) -> Self {
        Self {
            transient: crate::store::is_unavailable(&err),
            message: err.to_string(),
        }
    }

    fn other(err: anyhow::Error) -> Self {
        let transient = err.chain().any(|c| {
            c.downcast_ref::<sqlx::Error>()
                .is_some_and(crate::store::is_unavailable)
        });
        Self {
            message: format!("{err:#}"),
            transient,
        }
    }
}

/// Counts a consumer's turn to the log, and why: under load these are
/// what the fan-out was meant to spare.
pub(crate) fn caught_up_from_log(consumer: &'static str, reason: &'static str) {
    metrics::counter!("annals_consumer_log_catch_ups_total", "consumer" => consumer, "reason" => reason)
        .increment(1);
}

async fn backoff(attempt: u32) {
    let millis = 50u64 << attempt.min(6);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

/// Rebuilds one read model from position 0 (`annals replay`).
pub async fn replay(projector: Arc<dyn Projector>, pool: &AnyPool, log: &LogReader) -> Result<i64> {
    projector.prepare(pool).await?;
    Checkpoints::ensure(pool, projector.name()).await?;
    let mut tx = crate::store::begin_write_any(pool).await?;
    sqlx::query("UPDATE consumer_checkpoints SET position = 0, updated_at = $1 WHERE name = $2")
        .bind(now_millis())
        .bind(projector.name())
        .execute(&mut *tx)
        .await?;
    projector.reset(&mut tx).await?;
    tx.commit().await?;
    let state = ConsumerState::new(projector.name());
    let mut runner = ProjectorRunner::start(projector, state, pool.clone(), log.clone()).await?;
    runner.page = REBUILD_BATCH;
    let (_keep, stop) = watch::channel(false);
    runner.catch_up(&stop).await?;
    runner.flush().await?;
    Ok(runner.checkpoint())
}
