//! Idempotency-Key records. A record is written only by the transaction
//! that stores its command's events (see `append`), or by a transaction of
//! its own for a command that was refused or changed nothing, so a key and
//! its effect are stored together or not at all, and no key can be left
//! claimed by a request that died.

use std::time::Duration;

use anyhow::Result;
use sqlx::AnyPool;

use super::append::IdempotencyRecord;
use super::now_millis;

/// How long a key is remembered; a retry after that runs as a new request.
pub const KEEP: Duration = Duration::from_secs(24 * 60 * 60);

/// What an earlier request with the same key left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The same request finished with this outcome (JSON).
    Same(String),
    /// The key was used for a different request.
    Other,
}

pub struct IdempotencyKeys;

impl IdempotencyKeys {
    /// The live record of this key, if any.
    pub async fn lookup(pool: &AnyPool, record: &IdempotencyRecord) -> Result<Option<Recorded>> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT fingerprint, outcome FROM idempotency_records \
             WHERE scope = $1 AND key = $2 AND recorded_at >= $3",
        )
        .bind(&record.scope)
        .bind(&record.key)
        .bind(now_millis() - KEEP.as_millis() as i64)
        .fetch_optional(pool)
        .await?;
        Ok(row.map(|(fingerprint, outcome)| {
            if fingerprint == record.fingerprint {
                Recorded::Same(outcome)
            } else {
                Recorded::Other
            }
        }))
    }

    /// Forgets keys older than `KEEP`.
    pub async fn prune(pool: &AnyPool) -> Result<u64> {
        let done = sqlx::query("DELETE FROM idempotency_records WHERE recorded_at < $1")
            .bind(now_millis() - KEEP.as_millis() as i64)
            .execute(pool)
            .await?;
        Ok(done.rows_affected())
    }
}
