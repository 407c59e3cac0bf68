//! Parked messages: what kept failing, for an admin to see and retry.

use anyhow::Result;
use sqlx::{AnyPool, Row};

/// A message set aside after `PARK_AFTER` failed tries.
#[derive(Debug, Clone, PartialEq)]
pub struct Parked {
    pub cause: String,
    pub chat_id: i64,
    pub text: String,
    pub attempts: i64,
    pub error: Option<String>,
    /// Milliseconds since the epoch.
    pub parked_at: i64,
}

pub async fn parked(pool: &AnyPool) -> Result<Vec<Parked>> {
    let rows = sqlx::query(
        "SELECT cause, chat_id, text, attempts, last_error, updated_at FROM notifier_ledger \
         WHERE status = 'parked' ORDER BY updated_at, cause, chat_id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Parked {
                cause: row.try_get("cause")?,
                chat_id: row.try_get("chat_id")?,
                text: row.try_get("text")?,
                attempts: row.try_get("attempts")?,
                error: row.try_get("last_error")?,
                parked_at: row.try_get("updated_at")?,
            })
        })
        .collect()
}

pub async fn count_parked(pool: &AnyPool) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM notifier_ledger WHERE status = 'parked'")
            .fetch_one(pool)
            .await?,
    )
}

/// Puts a parked message back in line: the process on duty sends it once,
/// as it sends what a stopped process left unsent. `false`: no such parked
/// message.
pub async fn retry(pool: &AnyPool, cause: &str, chat_id: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE notifier_ledger SET status = 'sending', updated_at = 0 \
         WHERE cause = $1 AND chat_id = $2 AND status = 'parked'",
    )
    .bind(cause)
    .bind(chat_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How one message stands: its status and last error (none: not in the
/// ledger).
pub async fn status(
    pool: &AnyPool,
    cause: &str,
    chat_id: i64,
) -> Result<Option<(String, Option<String>)>> {
    let row = sqlx::query(
        "SELECT status, last_error FROM notifier_ledger WHERE cause = $1 AND chat_id = $2",
    )
    .bind(cause)
    .bind(chat_id)
    .fetch_optional(pool)
    .await?;
    row.map(|row| Ok((row.try_get("status")?, row.try_get("last_error")?)))
        .transpose()
}

/// The ledger cause of a broadcast's messages.
pub fn broadcast_cause(broadcast_id: &str) -> String {
    format!("broadcast:{broadcast_id}")
}

/// How a cause's messages stand: (sent, refused, on their way or parked).
pub async fn cause_counts(pool: &AnyPool, cause: &str) -> Result<(i64, i64, i64)> {
    let rows = sqlx::query(
        "SELECT status, COUNT(*) AS n FROM notifier_ledger WHERE cause = $1 GROUP BY status",
    )
    .bind(cause)
    .fetch_all(pool)
    .await?;
    let (mut sent, mut refused, mut other) = (0, 0, 0);
    for row in rows {
        let status: String = row.try_get("status")?;
        let n: i64 = row.try_get("n")?;
        match status.as_str() {
            "sent" => sent += n,
            "refused" => refused += n,
            _ => other += n,
        }
    }
    Ok((sent, refused, other))
}
