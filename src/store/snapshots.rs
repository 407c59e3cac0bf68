//! Aggregate snapshots: the state of an aggregate at a version, kept so
//! that loading a long stream reads the latest snapshot and the events
//! after it. The writer stores them with the events they cover (see
//! `append::StreamAppend::snapshot`); loading reads a snapshot and the
//! events after it (`LogReader::stream_after_snapshot`).
//!
//! cqrs-es 0.5's own snapshots apply events twice when they update one, so
//! Annals keeps its own, and a test checks that a load from a snapshot gives
//! exactly the state of a full replay.

use super::TypedPool;

/// The shape of the stored states. Raise it when any aggregate's state
/// changes shape in a way old JSON would still deserialize into wrongly;
/// snapshots of another format are then ignored (and replaced by the next
/// command on that aggregate).
pub const FORMAT: i64 = 1;

/// A snapshot is taken when a command leaves its aggregate at least this
/// many events past the snapshot it was loaded from.
pub const EVERY: i64 = 100;

/// Drops an aggregate's snapshots (they hold its state in clear: an
/// erasure must not leave a copy there). The next load replays its events.
pub async fn forget(
    pool: &TypedPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM aggregate_snapshots WHERE aggregate_type = $1 AND aggregate_id = $2";
    match pool {
        TypedPool::Postgres(p) => {
            sqlx::query(sql)
                .bind(aggregate_type)
                .bind(aggregate_id)
                .execute(p)
                .await?;
        }
        TypedPool::Sqlite(p) => {
            sqlx::query(sql)
                .bind(aggregate_type)
                .bind(aggregate_id)
                .execute(p)
                .await?;
        }
    }
    Ok(())
}
