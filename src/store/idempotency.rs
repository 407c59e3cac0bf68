//! Idempotency-Key records: the first response to a command, kept so that a
//! retry with the same key gets that response instead of a second effect.

use anyhow::Result;
use sqlx::AnyPool;

use super::now_millis;

pub enum Claim {
    /// This request owns the key: run the command, then `complete`.
    Owned,
    /// An earlier request with this key finished with this response.
    Done { status: u16, body: String },
    /// An earlier request with this key has not finished yet.
    InProgress,
    /// The key was used before for a different request.
    Mismatch,
}

pub struct IdempotencyKeys;

impl IdempotencyKeys {
    pub async fn claim(
        pool: &AnyPool,
        scope: &str,
        key: &str,
        request_hash: &str,
    ) -> Result<Claim> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (scope, key) DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(request_hash)
        .bind(now_millis())
        .execute(pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(Claim::Owned);
        }
        let row: Option<(String, Option<i32>, Option<String>)> = sqlx::query_as(
            "SELECT request_hash, status, response_body FROM idempotency_keys WHERE scope = $1 AND key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(pool)
        .await?;
        Ok(match row {
            // Released between our insert and select: let the caller retry.
            None => Claim::InProgress,
            Some((hash, _, _)) if hash != request_hash => Claim::Mismatch,
            Some((_, Some(status), Some(body))) => Claim::Done {
                status: status as u16,
                body,
            },
            Some(_) => Claim::InProgress,
        })
    }

    pub async fn complete(
        pool: &AnyPool,
        scope: &str,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE idempotency_keys SET status = $1, response_body = $2 WHERE scope = $3 AND key = $4",
        )
        .bind(status as i32)
        .bind(body)
        .bind(scope)
        .bind(key)
        .execute(pool)
        .await?;
        Ok(())
    }

    /// Gives the key up after a failure that wrote nothing, so a retry runs.
    pub async fn release(pool: &AnyPool, scope: &str, key: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status IS NULL",
        )
        .bind(scope)
        .bind(key)
        .execute(pool)
        .await?;
        Ok(())
    }
}
