//! The sealer: a consumer of the log that extends the hash chain with
//! every event, in position order, in the same transaction as its
//! checkpoint, and signs a checkpoint of the chain every `EVERY` events
//! and whenever the last one is a minute old.

use std::sync::Arc;

use anyhow::{Context, Result};
use async_trait::async_trait;
use chrono::Utc;
use ed25519_dalek::SigningKey;
use sqlx::AnyConnection;

use annals_domain::StoredEvent;
use annals_projections::Projector;

use super::{chain, raw_events, sign, GENESIS};

pub const SEALER: &str = "audit-sealer";

/// A checkpoint at least this often while events come (and every
/// `ANNALS_AUDIT_CHECKPOINT_EVERY` events).
pub const AT_LEAST_EVERY: chrono::Duration = chrono::Duration::seconds(60);

pub struct Sealer {
    key: Arc<SigningKey>,
    every: i64,
}

impl Sealer {
    pub fn new(key: Arc<SigningKey>, every: i64) -> Self {
        Self {
            key,
            every: every.max(1),
        }
    }
}

#[async_trait]
impl Projector for Sealer {
    fn name(&self) -> &'static str {
        SEALER
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> Result<()> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        // Where the chain ends and when it was last signed, in one round trip.
        let (last_sealed, last_checkpoint) = {
            use sqlx::Row;
            let row = sqlx::query(
                "SELECT (SELECT position FROM audit_chain ORDER BY position DESC LIMIT 1) AS sealed, \
                        (SELECT hash FROM audit_chain ORDER BY position DESC LIMIT 1) AS hash, \
                        (SELECT position FROM audit_checkpoints ORDER BY position DESC LIMIT 1) AS signed, \
                        (SELECT signed_at FROM audit_checkpoints ORDER BY position DESC LIMIT 1) AS signed_at",
            )
            .fetch_one(&mut *tx)
            .await?;
            let sealed: Option<i64> = row.try_get("sealed")?;
            let hash: Option<String> = row.try_get("hash")?;
            let signed: Option<i64> = row.try_get("signed")?;
            let signed_at: Option<String> = row.try_get("signed_at")?;
            (sealed.zip(hash), signed.zip(signed_at))
        };
        let mut previous = match &last_sealed {
            None => GENESIS,
            Some((_, hash)) => {
                super::bytes32(hash).context("a stored chain hash is not 32 bytes of hex")?
            }
        };
        let after = last_sealed.as_ref().map_or(0, |(p, _)| *p);
        // The stored bytes, not the upcast events the batch carries.
        let raw = raw_events(tx, first.position.max(after + 1), last.position).await?;
        let mut rows = Vec::with_capacity(raw.len());
        for event in &raw {
            previous = chain(&previous, event);
            rows.push((event.position, hex::encode(previous)));
        }
        for chunk in rows.chunks(400) {
            let marks = annals_projections::rows::Marks::of(tx);
            let sql = format!(
                "INSERT INTO audit_chain (position, hash) VALUES {}",
                marks.rows(chunk.len(), 2, 1)
            );
            let mut query = sqlx::query(&sql);
            for (position, hash) in chunk {
                query = query.bind(*position).bind(hash.clone());
            }
            query
                .execute(&mut *tx)
                .await
                .context("extending the chain")?;
        }
        let Some((position, hash)) = rows.last() else {
            return Ok(());
        };
        let now = Utc::now();
        let due = match &last_checkpoint {
            None => true,
            Some((at, signed_at)) => {
                position / self.every > at / self.every
                    || chrono::DateTime::parse_from_rfc3339(signed_at)
                        .map_or(true, |t| now - t.with_timezone(&Utc) >= AT_LEAST_EVERY)
            }
        };
        if due {
            sqlx::query(
                "INSERT INTO audit_checkpoints (position, hash, signature, public_key, signed_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(*position)
            .bind(hash.clone())
            .bind(sign(&self.key, *position, hash))
            .bind(hex::encode(self.key.verifying_key().to_bytes()))
            .bind(annals_projections::marketing::instant(now))
            .execute(&mut *tx)
            .await
            .context("writing a checkpoint")?;
        }
        Ok(())
    }

    /// Not a read model: its rows hold signatures made at wall-clock
    /// moments, so a rebuild is not compared (`annals audit verify` checks
    /// them instead).
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    async fn reset(&self, tx: &mut AnyConnection) -> Result<()> {
        for table in ["audit_chain", "audit_checkpoints"] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}
