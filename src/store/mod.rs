//! Storage: the event store (postgres-es or sqlite-es behind one enum), the
//! global log reader, and the shared SQL pool used by read models,
//! checkpoints and idempotency records.

mod append;
mod handoff;
mod idempotency;
mod log;
pub mod privacy;
mod repo;
pub mod snapshots;

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::pool::PoolOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AnyPool, Connection, Database, PgPool, SqlitePool};

pub use append::{
    AppendError, CommitUnit, Committed, CommittedStream, EventWriter, IdempotencyRecord, NewEvent,
    Outcome, Snapshot, StreamAppend,
};
pub use handoff::{Handed, Handoff, Next, Taker};
pub use idempotency::{IdempotencyKeys, Recorded};
pub use log::{FeedFilter, LogReader, Upcasters};
pub use repo::EventRepo;

use crate::config::DatabaseConfig;

/// Which database this process talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Typed pool for the event store and migrations.
#[derive(Clone, Debug)]
pub enum TypedPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The database handles of one process.
#[derive(Clone, Debug)]
pub struct Db {
    pub backend: Backend,
    pub typed: TypedPool,
    /// Dialect-neutral pool for read models, checkpoints and idempotency.
    pub any: AnyPool,
    /// The same database for what is derived from the log and can be
    /// derived again: the projectors' read models with their checkpoints.
    /// Its commits do not wait for the disk (SQLite `synchronous = NORMAL`,
    /// PostgreSQL `synchronous_commit = off`). A crash may lose the latest
    /// of them — each whole, with its checkpoint, so the projector applies
    /// those events again — but never one whose events are not stored: the
    /// events were committed durably before they were read, and both
    /// databases recover a prefix of their write-ahead log.
    pub derived: AnyPool,
}

/// How long a request waits for a pooled connection before it answers 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Begins a transaction that writes. On SQLite it is `BEGIN IMMEDIATE`:
/// it takes the write lock at once (waiting under `busy_timeout`), so a
/// transaction that reads before it writes cannot fail with
/// `SQLITE_BUSY_SNAPSHOT` because another connection committed in between
/// (a deferred one fails then without waiting). PostgreSQL: a plain BEGIN.
pub async fn begin_write<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
) -> Result<sqlx::Transaction<'static, DB>, sqlx::Error> {
    if DB::NAME == "SQLite" {
        pool.begin_with("BEGIN IMMEDIATE").await
    } else {
        pool.begin().await
    }
}

/// `begin_write` for the backend-neutral pool.
pub async fn begin_write_any(
    pool: &sqlx::AnyPool,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
    if pool.connect_options().database_url.scheme() == "sqlite" {
        pool.begin_with("BEGIN IMMEDIATE").await
    } else {
        pool.begin().await
    }
}

impl Db {
    pub async fn connect(config: &DatabaseConfig, pool_size: u32) -> Result<Self> {
        sqlx::any::install_default_drivers();
        match config {
            DatabaseConfig::Sqlite { path } => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating data directory {}", dir.display()))?;
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // FULL: a committed transaction survives power loss (G1).
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true);
                let typed = pool_options(pool_size.min(8))
                    .connect_with(options)
                    .await
                    .with_context(|| format!("opening SQLite database {}", path.display()))?;
                let url = format!("sqlite://{}", path.display());
                // busy_timeout is per connection and the URL form cannot set it.
                let any = any_pool(
                    &url,
                    pool_size.min(8),
                    &["PRAGMA busy_timeout = 10000", "PRAGMA synchronous = FULL"],
                )
                .await;
                // SQLite has one writer: more connections would only hold
                // more page caches.
                let derived = any_pool(
                    &url,
                    pool_size.min(2),
                    &["PRAGMA busy_timeout = 10000", "PRAGMA synchronous = NORMAL"],
                )
                .await;
                let opening = || format!("opening SQLite database {}", path.display());
                let (any, derived) = (any.with_context(opening)?, derived.with_context(opening)?);
                Ok(Self {
                    backend: Backend::Sqlite,
                    typed: TypedPool::Sqlite(typed),
                    any,
                    derived,
                })
            }
            DatabaseConfig::Postgres { url } => {
                let options = PgConnectOptions::from_str(url)
                    .context("DATABASE_URL: not a valid PostgreSQL URL")?;
                let typed = pool_options(pool_size)
                    .connect_with(options)
                    .await
                    .context("connecting to PostgreSQL (DATABASE_URL)")?;
                let any = any_pool(url, pool_size, &[])
                    .await
                    .context("connecting to PostgreSQL (DATABASE_URL)")?;
                let derived = any_pool(url, pool_size.min(8), &["SET synchronous_commit = off"])
                    .await
                    .context("connecting to PostgreSQL (DATABASE_URL)")?;
                Ok(Self {
                    backend: Backend::Postgres,
                    typed: TypedPool::Postgres(typed),
                    any,
                    derived,
                })
            }
        }
    }

    /// Applies the migrations of this backend (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        match &self.typed {
            TypedPool::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite")
                .run(pool)
                .await
                .context("applying SQLite migrations")?,
            TypedPool::Postgres(pool) => sqlx::migrate!("./migrations/postgres")
                .run(pool)
                .await
                .context("applying PostgreSQL migrations")?,
        }
        Ok(())
    }

    pub fn log(&self, upcasters: Upcasters) -> LogReader {
        LogReader::new(self.typed.clone(), upcasters)
    }

    /// A cheap round trip, for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.any).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.derived.close().await;
        self.any.close().await;
        match &self.typed {
            TypedPool::Sqlite(p) => p.close().await,
            TypedPool::Postgres(p) => p.close().await,
        }
    }
}

/// A backend-neutral pool whose connections each run `setup` first.
async fn any_pool(
    url: &str,
    size: u32,
    setup: &'static [&'static str],
) -> Result<AnyPool, sqlx::Error> {
    pool_options(size)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                for statement in setup {
                    sqlx::query(statement).execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await
}

/// The settings every pool shares. sqlx pings a connection (a round trip)
/// when it goes back to the pool and, by default, again when it is taken
/// out: under load that second ping was one more round trip per statement
/// for nothing, the connection having been checked a moment before. It is
/// pinged on the way out only after `PING_IDLE_AFTER` in the pool, long
/// enough for a database restart to have closed it unseen.
fn pool_options<DB: Database>(size: u32) -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(size)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|conn: &mut DB::Connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IDLE_AFTER {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

/// Milliseconds since the Unix epoch, the time format of our own tables.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Whether an error means "the database is not reachable right now" (503)
/// rather than a bug (500).
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
    ) || matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|c| {
        // 57P01 admin shutdown, 57P03 cannot connect now, 08xxx connection errors,
        // SQLite 5/6 busy/locked.
        c.starts_with("08") || c == "57P01" || c == "57P02" || c == "57P03" || c == "5" || c == "6"
    }))
}

/// An event at `position` with nothing else of note, for unit tests.
#[cfg(test)]
pub(crate) fn event_at(position: i64) -> annals_domain::StoredEvent {
    annals_domain::StoredEvent {
        position,
        event_id: uuid::Uuid::nil(),
        aggregate_type: "t".into(),
        aggregate_id: "a".into(),
        sequence: position,
        event_type: "E".into(),
        event_version: "1".into(),
        payload: serde_json::Value::Null,
        metadata: Default::default(),
        recorded_at: chrono::Utc::now(),
    }
}
