//! Executes one command against one aggregate: load, decide, append with
//! optimistic concurrency, and report the version and global position.
//! cqrs-es's `CqrsFramework` returns nothing from `execute`, and its query
//! dispatch is at-most-once, so this drives the event store directly.

use std::sync::Arc;
use std::time::Instant;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventStore};

use annals_domain::EventMetadata;

use super::{EventRepo, LogReader};

/// What a successful command produced.
#[derive(Debug, Clone)]
pub struct CommandOutcome<A: Aggregate> {
    pub aggregate_id: String,
    /// The aggregate's version (sequence of its last event) after the command.
    pub version: i64,
    /// Global position of the command's last event; for a command that
    /// produced no events, the position of the aggregate's latest event.
    pub position: i64,
    pub events: Vec<A::Event>,
    /// The aggregate state after the command.
    pub state: A,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate refused the command.
    #[error(transparent)]
    Rejected(E),
    /// `If-Match` named a version that is not the current one.
    #[error("expected version {expected}, but the current version is {actual}")]
    VersionMismatch { expected: i64, actual: i64 },
    /// Another writer kept winning the race for this aggregate.
    #[error("concurrent modification of {aggregate_type} {aggregate_id}; retry")]
    Conflict {
        aggregate_type: &'static str,
        aggregate_id: String,
    },
    /// The database did not answer; nothing was written.
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),
    #[error("event store failure: {0}")]
    Internal(String),
}

/// One command, with everything needed to run it more than once.
pub struct CommandRequest<'a, A: Aggregate> {
    pub aggregate_id: &'a str,
    pub command: A::Command,
    pub metadata: EventMetadata,
    /// From `If-Match`: the version the caller last saw.
    pub expected_version: Option<i64>,
}

/// Optimistic-lock losses are retried this many times before they surface
/// as 409; a retry reloads the aggregate and decides again, which is safe
/// because deciding has no side effects.
const CONFLICT_RETRIES: usize = 5;

/// In-process lock stripes: commands on one aggregate take turns here, so
/// optimistic-lock conflicts only arise between processes.
const STRIPES: usize = 256;

pub struct CommandBus<A: Aggregate> {
    stripes: Arc<Vec<tokio::sync::Mutex<()>>>,
    store: PersistedEventStore<EventRepo, A>,
    log: LogReader,
    services: Arc<A::Services>,
    /// Told the position of every append, so local consumers wake at once.
    appended: tokio::sync::watch::Sender<i64>,
}

impl<A> CommandBus<A>
where
    A: Aggregate + Clone + 'static,
    A::Command: Clone,
{
    pub fn new(
        repo: EventRepo,
        log: LogReader,
        services: A::Services,
        appended: tokio::sync::watch::Sender<i64>,
    ) -> Self {
        Self {
            stripes: Arc::new((0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect()),
            store: PersistedEventStore::new_event_store(repo),
            log,
            services: Arc::new(services),
            appended,
        }
    }

    /// Adds upcasters for old event versions.
    pub fn with_upcasters(mut self, upcasters: &super::Upcasters) -> Self {
        let boxed = upcasters
            .iter()
            .map(|u| Box::new(Shared(u.clone())) as Box<dyn cqrs_es::persist::EventUpcaster>)
            .collect();
        self.store = self.store.with_upcasters(boxed);
        self
    }

    pub async fn execute(
        &self,
        request: CommandRequest<'_, A>,
    ) -> Result<CommandOutcome<A>, CommandError<A::Error>> {
        let metadata = request.metadata.to_map();
        let stripe = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            request.aggregate_id.hash(&mut hasher);
            (hasher.finish() as usize) % STRIPES
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let turn = self.stripes[stripe].lock().await;
            let mut context = self
                .store
                .load_aggregate(request.aggregate_id)
                .await
                .map_err(store_error)?;
            let loaded_version = context.current_sequence as i64;
            if let Some(expected) = request.expected_version {
                if expected != loaded_version {
                    return Err(CommandError::VersionMismatch {
                        expected,
                        actual: loaded_version,
                    });
                }
            }
            let sink = EventSink::default();
            context
                .aggregate()
                .handle(request.command.clone(), &self.services, &sink)
                .await
                .map_err(CommandError::Rejected)?;
            let events = sink.collect().await;
            // `handle` applied the events to the aggregate through the sink.
            let state = context.aggregate.clone();
            if events.is_empty() {
                let position = self
                    .position_of(request.aggregate_id, loaded_version)
                    .await?;
                return Ok(CommandOutcome {
                    aggregate_id: request.aggregate_id.to_string(),
                    version: loaded_version,
                    position,
                    events,
                    state,
                });
            }
            let started = Instant::now();
            let committed = self
                .store
                .commit(events.clone(), context, metadata.clone())
                .await;
            drop(turn);
            match committed {
                Ok(envelopes) => {
                    metrics::histogram!("annals_append_seconds", "aggregate" => A::TYPE)
                        .record(started.elapsed().as_secs_f64());
                    let version = envelopes
                        .last()
                        .map_or(loaded_version, |e| e.sequence as i64);
                    let position = self.position_of(request.aggregate_id, version).await?;
                    self.appended.send_if_modified(|p| {
                        let later = position > *p;
                        *p = (*p).max(position);
                        later
                    });
                    return Ok(CommandOutcome {
                        aggregate_id: request.aggregate_id.to_string(),
                        version,
                        position,
                        events,
                        state,
                    });
                }
                Err(AggregateError::AggregateConflict) => {
                    metrics::counter!("annals_append_conflicts_total", "aggregate" => A::TYPE)
                        .increment(1);
                    if request.expected_version.is_some() {
                        // The caller's version is stale now: 412, not a retry.
                        let actual = loaded_version + 1;
                        return Err(CommandError::VersionMismatch {
                            expected: loaded_version,
                            actual,
                        });
                    }
                    if attempt > CONFLICT_RETRIES {
                        return Err(CommandError::Conflict {
                            aggregate_type: A::TYPE,
                            aggregate_id: request.aggregate_id.to_string(),
                        });
                    }
                    // Another process won: back off a little, with jitter,
                    // so the losers do not collide again in lockstep.
                    let jitter = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.subsec_nanos() % 5_000_000);
                    let pause = std::time::Duration::from_nanos(
                        u64::from(jitter) + 2_000_000 * attempt as u64,
                    );
                    tokio::time::sleep(pause).await;
                }
                Err(other) => return Err(store_error(other)),
            }
        }
    }

    /// The aggregate's current state and version (0 when it does not exist).
    pub async fn load(&self, aggregate_id: &str) -> Result<(A, i64), CommandError<A::Error>> {
        let context = self
            .store
            .load_aggregate(aggregate_id)
            .await
            .map_err(store_error)?;
        Ok((context.aggregate, context.current_sequence as i64))
    }

    async fn position_of(
        &self,
        aggregate_id: &str,
        version: i64,
    ) -> Result<i64, CommandError<A::Error>> {
        if version == 0 {
            return Ok(0);
        }
        match self.log.position_of(A::TYPE, aggregate_id, version).await {
            Ok(Some(position)) => Ok(position),
            Ok(None) => Err(CommandError::Internal(format!(
                "event {version} of {} {aggregate_id} has no position",
                A::TYPE
            ))),
            Err(e) if super::is_unavailable(&e) => Err(CommandError::Unavailable(e.to_string())),
            Err(e) => Err(CommandError::Internal(e.to_string())),
        }
    }
}

fn store_error<E: std::error::Error>(err: AggregateError<E>) -> CommandError<E> {
    match err {
        AggregateError::UserError(e) => CommandError::Rejected(e),
        AggregateError::AggregateConflict => CommandError::Internal("unexpected conflict".into()),
        AggregateError::DatabaseConnectionError(e) => CommandError::Unavailable(e.to_string()),
        other => {
            let text = other.to_string();
            // postgres-es and sqlite-es report lost connections as
            // UnexpectedError with the sqlx text inside.
            let lowered = text.to_lowercase();
            if lowered.contains("pool timed out")
                || lowered.contains("connection refused")
                || lowered.contains("pool was closed")
                || lowered.contains("database is locked")
                || lowered.contains("error communicating")
                || lowered.contains("terminating connection")
            {
                CommandError::Unavailable(text)
            } else {
                CommandError::Internal(text)
            }
        }
    }
}

/// One upcaster shared between the log reader and command buses.
struct Shared(Arc<dyn cqrs_es::persist::EventUpcaster>);

impl cqrs_es::persist::EventUpcaster for Shared {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        self.0.can_upcast(event_type, event_version)
    }

    fn upcast(
        &self,
        event: cqrs_es::persist::SerializedEvent,
    ) -> cqrs_es::persist::SerializedEvent {
        self.0.upcast(event)
    }
}
