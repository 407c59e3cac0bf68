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
    /// Where this process last extended the chain, to save reading it back
    /// when the next batch begins right after: its position and hash, and
    /// the last signed checkpoint's position and time.
    ends: std::sync::Mutex<Option<Ends>>,
}

/// Where the chain ends, and its last signed checkpoint (position, time).
#[derive(Clone)]
struct Ends {
    sealed: Option<(i64, [u8; 32])>,
    signed: Option<(i64, String)>,
}

impl Sealer {
    pub fn new(key: Arc<SigningKey>, every: i64) -> Self {
        Self {
            key,
            every: every.max(1),
            ends: std::sync::Mutex::new(None),
        }
    }

    /// Where the chain ends before `first`. The remembered ends serve when
    /// they end right before it: the batch's transaction holds the
    /// checkpoint there, and the chain up to a position is the same
    /// whoever computed it (a hash of the stored events). After a rolled
    /// back batch they end elsewhere, and the database is asked.
    async fn ends_before(&self, tx: &mut AnyConnection, first: i64) -> Result<Ends> {
        let remembered = self.ends.lock().expect("sealer ends").clone();
        if let Some(ends) = remembered.filter(|e| e.sealed.is_some_and(|(p, _)| p == first - 1)) {
            return Ok(ends);
        }
        use sqlx::Row;
        // Where the chain ends and when it was last signed, in one round trip.
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
        let sealed = match sealed.zip(hash) {
            None => None,
            Some((position, hash)) => Some((
                position,
                super::bytes32(&hash).context("a stored chain hash is not 32 bytes of hex")?,
            )),
        };
        Ok(Ends {
            sealed,
            signed: signed.zip(signed_at),
        })
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
        let Ends { sealed, signed } = self.ends_before(tx, first.position).await?;
        let mut previous = sealed.map_or(GENESIS, |(_, hash)| hash);
        let after = sealed.map_or(0, |(p, _)| p);
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
        let due = match &signed {
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
        let signed = if due {
            Some((*position, annals_projections::marketing::instant(now)))
        } else {
            signed
        };
        *self.ends.lock().expect("sealer ends") = Some(Ends {
            sealed: Some((*position, previous)),
            signed,
        });
        // A batch that fails after the chain was extended in memory.
        fail::fail_point!("sealer.after_apply", |_| Err(anyhow::anyhow!(
            "sealer.after_apply failpoint"
        )));
        Ok(())
    }

    /// Not a read model: its rows hold signatures made at wall-clock
    /// moments, so a rebuild is not compared (`annals audit verify` checks
    /// them instead).
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    async fn reset(&self, tx: &mut AnyConnection) -> Result<()> {
        *self.ends.lock().expect("sealer ends") = None;
        for table in ["audit_chain", "audit_checkpoints"] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}
