//! Annals read models: each one a consumer of the global log that applies
//! events and its checkpoint in one transaction (the runner in the server
//! owns the checkpoint; a projector only writes its own tables).
#![forbid(unsafe_code)]

use async_trait::async_trait;
use sqlx::{AnyConnection, AnyPool};

pub use annals_domain::StoredEvent;

/// A read model built from the global log.
#[async_trait]
pub trait Projector: Send + Sync + 'static {
    /// Stable name: the checkpoint key, the `annals replay --consumer` name,
    /// the metrics label.
    fn name(&self) -> &'static str;

    /// Applies a batch of consecutive events inside the caller's transaction.
    /// Must be deterministic: a rebuild from the log gives the same rows.
    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()>;

    /// Whether this read model may change for `event` (by default: yes).
    /// A batch with no such event only moves the checkpoint, lazily.
    fn handles(&self, _event: &StoredEvent) -> bool {
        true
    }

    /// The tables this read model writes: `reset` empties them (of
    /// `names::TABLE`, only this consumer's rows) and `annals replay
    /// --verify` compares them with a shadow rebuild. Empty for a consumer
    /// that is not a read model (it then has its own `reset`).
    fn tables(&self) -> &'static [&'static str];

    /// Removes every row this projector derived, before a rebuild.
    async fn reset(&self, tx: &mut AnyConnection) -> anyhow::Result<()> {
        for table in self.tables() {
            if *table == names::TABLE {
                names::forget(tx, self.name()).await?;
            } else {
                sqlx::query(&format!("DELETE FROM {table}"))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(())
    }

    /// Creates tables that are not in `migrations/` (test read models).
    async fn prepare(&self, _pool: &AnyPool) -> anyhow::Result<()> {
        Ok(())
    }
}

pub mod appointments;
pub mod billing;
pub mod forget;
pub mod gym;
pub mod marketing;
pub mod names;
pub mod projects;
pub mod rows;
pub mod shop;
pub mod statistics;
pub mod users;
