//! postgres-es and sqlite-es behind one repository type. cqrs-es's
//! repository trait is generic (not object-safe), so the choice made at run
//! time is an enum. It loads aggregates; writing is `store::EventWriter`'s.

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;

use super::TypedPool;

pub struct EventRepo {
    inner: Inner,
    keys: super::privacy::Keys,
}

enum Inner {
    Postgres(PostgresEventRepository),
    Sqlite(SqliteEventRepository),
}

impl EventRepo {
    pub fn new(pool: &TypedPool) -> Self {
        let inner = match pool {
            TypedPool::Postgres(p) => Inner::Postgres(PostgresEventRepository::new(p.clone())),
            TypedPool::Sqlite(p) => Inner::Sqlite(SqliteEventRepository::new(p.clone())),
        };
        Self {
            inner,
            keys: super::privacy::Keys::new(pool.clone()),
        }
    }

    /// Personal fields decrypted (see `store::privacy`) before cqrs-es
    /// upcasts and applies them.
    async fn opened(
        &self,
        events: Result<Vec<SerializedEvent>, PersistenceError>,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let mut events = events?;
        self.keys
            .open(&mut events)
            .await
            .map_err(|err| PersistenceError::UnknownError(err.into()))?;
        Ok(events)
    }
}

macro_rules! delegate {
    ($self:ident, $repo:ident => $call:expr) => {
        match &$self.inner {
            Inner::Postgres($repo) => $call,
            Inner::Sqlite($repo) => $call,
        }
    };
}

impl PersistedEventRepository for EventRepo {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = delegate!(self, r => r.get_events::<A>(aggregate_id).await);
        self.opened(events).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events =
            delegate!(self, r => r.get_last_events::<A>(aggregate_id, last_sequence).await);
        self.opened(events).await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        delegate!(self, r => r.get_snapshot::<A>(aggregate_id).await)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        // Loading only: every write goes through `store::EventWriter`, the
        // one append path (units of several streams, the key, positions).
        let _ = (events, snapshot_update);
        Err(PersistenceError::UnknownError(
            "events are written by store::EventWriter, not by cqrs-es persist".into(),
        ))
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        delegate!(self, r => r.stream_events::<A>(aggregate_id).await)
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        delegate!(self, r => r.stream_all_events::<A>().await)
    }
}
