//! The application layer: workflows, one module per domain. A workflow
//! loads the aggregates a command needs, lets each decide (no IO in the
//! domain), and hands what they decided to the writer as one unit, which
//! commits it in one transaction together with the `Idempotency-Key`
//! record. A conflict on any stream reruns the whole workflow, so a rule
//! that spans aggregates needs no compensation: all of it is written or
//! none of it.
//!
//! ```ignore
//! platform.commands.run(&ctx, |mut unit| async move {
//!     let mut day = unit.load::<MasterDay>(&day_id).await?;
//!     let mut appointment = unit.load_subject::<Appointment>(&id).await?;
//!     unit.decide(&mut day, MasterDayCommand::Reserve { .. }).await?;
//!     unit.decide(&mut appointment, AppointmentCommand::Book(..)).await?;
//!     Ok((unit, ()))
//! })
//! ```

pub mod appointments;
pub mod customers;
mod error;
pub mod gym;
pub mod identity;
pub mod marketing;
pub mod privacy;
pub mod projects;
pub mod shop;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, DomainEvent, EventStore};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;
use tokio::sync::{watch, OwnedMutexGuard};

use annals_domain::{EventMetadata, RuleViolation};

pub use error::{AppError, ErrorKind, Existing, FieldProblem};

use crate::store::{
    snapshots, AppendError, CommitUnit, Committed, EventRepo, EventWriter, IdempotencyKeys,
    IdempotencyRecord, LogReader, NewEvent, Recorded, Snapshot, StreamAppend, TypedPool, Upcasters,
};

/// Checks that `user` (named by `field`) is an active user holding `role`:
/// an unknown one is an unknown reference, one without the role is 409
/// `code`.
pub(crate) async fn check_role(
    p: &crate::platform::Platform,
    field: &str,
    user: uuid::Uuid,
    role: annals_domain::user::Role,
    code: &str,
) -> Result<(), AppError> {
    use annals_projections::appointments::queries::user_holds;
    match user_holds(&p.db.any, user, role.as_str()).await? {
        Some(true) => Ok(()),
        None => Err(AppError::unknown_reference(field, "no such user")),
        Some(false) => {
            let rule = format!("must be an active user with the {role} role");
            let mut err = AppError::conflict(code, format!("{field}: {rule}"));
            err.fields = vec![FieldProblem {
                field: field.into(),
                message: rule,
            }];
            Err(err)
        }
    }
}

/// Who asks, and how: what every command carries besides its input.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub metadata: EventMetadata,
    /// From `If-Match`: applies to the aggregate the command names (the
    /// unit's subject), never to the others it touches.
    pub expected_version: Option<i64>,
    pub idempotency: Option<IdempotencyRecord>,
}

impl CommandContext {
    pub fn new(metadata: EventMetadata) -> Self {
        Self {
            metadata,
            expected_version: None,
            idempotency: None,
        }
    }
}

/// A finished command: where it landed, and what the workflow answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Done<P> {
    /// The aggregate the command names.
    pub id: String,
    /// Its version after the command.
    pub version: i64,
    /// Global position of the command's last event (for a command that
    /// changed nothing, of the subject's latest event).
    pub position: i64,
    pub value: P,
    /// The outcome was recorded for the `Idempotency-Key` by an earlier request.
    #[serde(skip)]
    pub replayed: bool,
}

/// An aggregate as a workflow loaded it.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub id: String,
    pub state: A,
    /// The version it was loaded at (0: it does not exist yet).
    pub loaded_version: i64,
    /// Its version with the events decided so far in this unit.
    pub version: i64,
    /// The version of the snapshot it was loaded from (0: none).
    snapshot_version: i64,
}

/// Lost optimistic-lock races are rerun this many times before they
/// surface as `Busy`; rerunning is safe because deciding has no effects.
const CONFLICT_RETRIES: u32 = 8;

/// In-process lock stripes: commands whose subjects share a stripe take
/// turns, so conflicts mostly arise between processes. A unit holds at most
/// one stripe, so stripes cannot deadlock.
const STRIPES: usize = 256;

/// Runs workflows: retries, idempotency, the commit.
pub struct Commands {
    writer: EventWriter,
    loader: Loader,
    pool: AnyPool,
    stripes: Arc<Vec<Arc<tokio::sync::Mutex<()>>>>,
    /// Told the position of every commit, so local consumers wake at once.
    appended: watch::Sender<i64>,
}

#[derive(Clone)]
struct Loader {
    pool: TypedPool,
    upcasters: Upcasters,
    log: LogReader,
}

/// An aggregate as loaded: its state, its version, and the version of the
/// snapshot the load started from (0: from the first event).
struct Restored<A> {
    state: A,
    version: i64,
    snapshot_version: i64,
}

impl Loader {
    /// From the latest snapshot (if there is one in the current format that
    /// still reads as this state) and the events after it.
    async fn load<A: Aggregate>(&self, id: &str) -> Result<Restored<A>, AppError> {
        let (snapshot, events) = self
            .log
            .stream_after_snapshot(A::TYPE, id, snapshots::FORMAT)
            .await
            .map_err(AppError::from)?;
        let (state, snapshot_version) = match snapshot {
            None => (A::default(), 0),
            Some((version, json)) => match serde_json::from_str::<A>(&json) {
                Ok(state) => (state, version),
                Err(err) => {
                    tracing::warn!(aggregate = A::TYPE, id, error = %err, "snapshot unreadable; replaying the stream");
                    return self.replay(id).await;
                }
            },
        };
        restore(id, state, snapshot_version, events)
    }

    /// From the first event, ignoring snapshots: postgres-es or sqlite-es
    /// loads the stream (an implementation apart from `load`, which
    /// the snapshot test compares against it).
    async fn replay<A: Aggregate>(&self, id: &str) -> Result<Restored<A>, AppError> {
        let boxed = self
            .upcasters
            .iter()
            .map(|u| Box::new(Shared(u.clone())) as Box<dyn cqrs_es::persist::EventUpcaster>)
            .collect();
        let store: PersistedEventStore<EventRepo, A> =
            PersistedEventStore::new_event_store(EventRepo::new(&self.pool)).with_upcasters(boxed);
        let context = store.load_aggregate(id).await.map_err(load_error)?;
        Ok(Restored {
            state: context.aggregate,
            version: context.current_sequence as i64,
            snapshot_version: 0,
        })
    }
}

/// Events applied onto the state they follow (a snapshot's, or the empty one).
fn restore<A: Aggregate>(
    id: &str,
    mut state: A,
    snapshot_version: i64,
    events: Vec<annals_domain::StoredEvent>,
) -> Result<Restored<A>, AppError> {
    let mut version = snapshot_version;
    for event in events {
        let parsed = A::Event::deserialize(&event.payload).map_err(|err| {
            AppError::internal(anyhow::anyhow!(
                "{} {id} event {} ({}) does not read: {err}",
                A::TYPE,
                event.sequence,
                event.event_type
            ))
        })?;
        state.apply(parsed);
        version = event.sequence;
    }
    Ok(Restored {
        state,
        version,
        snapshot_version,
    })
}

impl Commands {
    pub fn new(
        pool: TypedPool,
        any: AnyPool,
        log: LogReader,
        upcasters: Upcasters,
        appended: watch::Sender<i64>,
        handoff: crate::store::Handoff,
    ) -> Self {
        Self {
            writer: EventWriter::new(pool.clone(), handoff),
            loader: Loader {
                pool,
                upcasters,
                log,
            },
            pool: any,
            stripes: Arc::new(
                (0..STRIPES)
                    .map(|_| Arc::new(tokio::sync::Mutex::new(())))
                    .collect(),
            ),
            appended,
        }
    }

    /// Destroys the privacy key of the person an aggregate is about and
    /// drops its snapshots (`store::privacy`); what was encrypted with the
    /// key reads `[erased]` from now on.
    pub async fn shred<A: Aggregate>(&self, id: &str) -> Result<(), AppError> {
        crate::store::privacy::Keys::new(self.loader.pool.clone())
            .destroy(&crate::store::privacy::subject(A::TYPE, id))
            .await
            .map_err(AppError::from)?;
        self.forget_snapshots::<A>(id).await
    }

    /// Drops an aggregate's snapshots (its next load replays the events).
    pub async fn forget_snapshots<A: Aggregate>(&self, id: &str) -> Result<(), AppError> {
        crate::store::snapshots::forget(&self.loader.pool, A::TYPE, id)
            .await
            .map_err(AppError::from)
    }

    /// An aggregate's current state and version (0 when it does not exist).
    pub async fn load<A: Aggregate>(&self, id: &str) -> Result<(A, i64), AppError> {
        let loaded = self.loader.load::<A>(id).await?;
        Ok((loaded.state, loaded.version))
    }

    /// The same, replayed from its first event without any snapshot (what
    /// a snapshot must agree with).
    pub async fn replay<A: Aggregate>(&self, id: &str) -> Result<(A, i64), AppError> {
        let replayed = self.loader.replay::<A>(id).await?;
        Ok((replayed.state, replayed.version))
    }

    /// The process's writer (group commit), for tests and bulk tools.
    pub fn writer(&self) -> &EventWriter {
        &self.writer
    }

    /// The outcome recorded for this command's `Idempotency-Key`, if a
    /// request with it finished: for a caller that must answer a retry
    /// before checks that the first attempt changed (a password change).
    pub async fn recorded<P: DeserializeOwned>(
        &self,
        ctx: &CommandContext,
    ) -> Result<Option<Result<Done<P>, AppError>>, AppError> {
        let Some(record) = &ctx.idempotency else {
            return Ok(None);
        };
        Ok(IdempotencyKeys::lookup(&self.pool, record)
            .await?
            .map(replay))
    }

    /// The simplest workflow: one command on the aggregate it names.
    pub async fn execute<A>(
        &self,
        ctx: &CommandContext,
        id: &str,
        command: A::Command,
    ) -> Result<Done<()>, AppError>
    where
        A: Aggregate<Services = ()> + Clone,
        A::Command: Clone,
        A::Error: RuleViolation,
    {
        self.one_command::<A>(ctx, id, command, false).await
    }

    /// `execute` for a command that creates its aggregate under an id the
    /// caller has just minted (see `Unit::create_subject`).
    pub async fn create<A>(
        &self,
        ctx: &CommandContext,
        id: &str,
        command: A::Command,
    ) -> Result<Done<()>, AppError>
    where
        A: Aggregate<Services = ()> + Clone,
        A::Command: Clone,
        A::Error: RuleViolation,
    {
        self.one_command::<A>(ctx, id, command, true).await
    }

    async fn one_command<A>(
        &self,
        ctx: &CommandContext,
        id: &str,
        command: A::Command,
        minted: bool,
    ) -> Result<Done<()>, AppError>
    where
        A: Aggregate<Services = ()> + Clone,
        A::Command: Clone,
        A::Error: RuleViolation,
    {
        self.run(ctx, |mut unit| {
            let command = command.clone();
            async move {
                let mut aggregate = if minted {
                    unit.create_subject::<A>(id).await?
                } else {
                    unit.load_subject::<A>(id).await?
                };
                unit.decide(&mut aggregate, command).await?;
                Ok((unit, ()))
            }
        })
        .await
    }

    /// Runs `work` and commits what it decided, at most once per
    /// `Idempotency-Key`: a retry of a finished command gets its outcome
    /// (or its refusal) back, marked `replayed`.
    pub async fn run<P, F, Fut>(&self, ctx: &CommandContext, work: F) -> Result<Done<P>, AppError>
    where
        P: Serialize + DeserializeOwned + Send,
        F: Fn(Unit) -> Fut,
        Fut: Future<Output = Result<(Unit, P), AppError>>,
    {
        if let Some(record) = &ctx.idempotency {
            if let Some(earlier) = IdempotencyKeys::lookup(&self.pool, record).await? {
                return replay(earlier);
            }
        }
        let metadata = ctx.metadata.to_map();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let unit = Unit {
                loader: self.loader.clone(),
                stripes: self.stripes.clone(),
                expected_version: ctx.expected_version,
                guard: None,
                subject: None,
                streams: Vec::new(),
                first_attempt: attempt == 1,
            };
            let (unit, value) = match work(unit).await {
                Ok(decided) => decided,
                Err(refusal) if refusal.is_final() => return self.refuse(ctx, refusal).await,
                Err(failure) => return Err(failure),
            };
            match self.commit(ctx, &metadata, unit, value).await {
                Ok(done) => return Ok(done),
                Err(Retry::Conflict(stream)) if attempt <= CONFLICT_RETRIES => {
                    metrics::counter!("annals_append_conflicts_total").increment(1);
                    tracing::debug!(%stream, attempt, "optimistic-lock conflict; deciding again");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(Retry::Conflict(stream)) => {
                    return Err(AppError::new(
                        ErrorKind::Busy,
                        "concurrent-modification",
                        format!("concurrent modification of {stream}; retry"),
                    ))
                }
                Err(Retry::KeyTaken) => {
                    let record = ctx.idempotency.as_ref().expect("only a key can be taken");
                    return match IdempotencyKeys::lookup(&self.pool, record).await? {
                        Some(earlier) => replay(earlier),
                        None => Err(AppError::internal("a taken key has no record")),
                    };
                }
                Err(Retry::Failed(err)) => return Err(err),
            }
        }
    }

    async fn commit<P: Serialize + DeserializeOwned>(
        &self,
        ctx: &CommandContext,
        metadata: &HashMap<String, String>,
        mut unit: Unit,
        value: P,
    ) -> Result<Done<P>, Retry> {
        let streams: Vec<StreamAppend> = std::mem::take(&mut unit.streams)
            .into_iter()
            .filter(|s| !s.events.is_empty())
            .collect();
        // What the command names: the subject, or else the first stream.
        let subject = unit.subject.clone().or_else(|| {
            streams
                .first()
                .map(|s| (s.aggregate_type, s.aggregate_id.clone(), s.expected_version))
        });
        let unchanged = match &subject {
            Some((aggregate_type, id, version)) if streams.is_empty() => self
                .loader
                .log
                .position_of(aggregate_type, id, *version)
                .await
                .map_err(|e| Retry::Failed(e.into()))?
                .unwrap_or(0),
            _ => 0,
        };
        if streams.is_empty() && ctx.idempotency.is_none() {
            let (id, version) = subject.map(|(_, id, v)| (id, v)).unwrap_or_default();
            return Ok(Done {
                id,
                version,
                position: unchanged,
                value,
                replayed: false,
            });
        }
        let payload =
            serde_json::to_value(&value).map_err(|e| Retry::Failed(AppError::internal(e)))?;
        let wrote_nothing = streams.is_empty();
        let locate = {
            let subject = subject.clone();
            move |committed: &Committed| -> (String, i64, i64) {
                let Some((aggregate_type, id, version)) = &subject else {
                    return (String::new(), 0, 0);
                };
                let written = committed
                    .streams
                    .iter()
                    .find(|s| s.aggregate_type == *aggregate_type && s.aggregate_id == *id);
                match written {
                    Some(s) => (id.clone(), s.version, committed.position),
                    None if wrote_nothing => (id.clone(), *version, unchanged),
                    None => (id.clone(), *version, committed.position),
                }
            }
        };
        let idempotency = ctx.idempotency.clone().map(|record| {
            let locate = locate.clone();
            let outcome = move |committed: &Committed| -> String {
                let (id, version, position) = locate(committed);
                serde_json::json!({"ok": {"id": id, "version": version, "position": position, "value": payload}})
                    .to_string()
            };
            (record, Box::new(outcome) as Box<crate::store::Outcome>)
        });
        let committed = self
            .writer
            .commit(CommitUnit {
                streams,
                metadata: metadata.clone(),
                idempotency,
            })
            .await
            .map_err(|err| match err {
                AppendError::Conflict {
                    aggregate_type,
                    aggregate_id,
                } => Retry::Conflict(format!("{aggregate_type} {aggregate_id}")),
                AppendError::KeyTaken => Retry::KeyTaken,
                AppendError::Unavailable(cause) => {
                    tracing::warn!(error = %cause, "event store unavailable");
                    Retry::Failed(AppError::unavailable(
                        "the database is unavailable; nothing was written",
                    ))
                }
                AppendError::OutcomeUnknown(cause) => {
                    tracing::warn!(error = %cause, "commit outcome unknown");
                    Retry::Failed(AppError::new(
                        ErrorKind::OutcomeUnknown,
                        "outcome-unknown",
                        "the database did not confirm the commit: the command may or may not \
                         have taken effect; retry with the same Idempotency-Key to find out",
                    ))
                }
                AppendError::Internal(cause) => Retry::Failed(AppError::internal(cause)),
            })?;
        drop(unit);
        if committed.position > 0 {
            self.appended.send_if_modified(|p| {
                let later = committed.position > *p;
                *p = (*p).max(committed.position);
                later
            });
        }
        let (id, version, position) = locate(&committed);
        Ok(Done {
            id,
            version,
            position,
            value,
            replayed: false,
        })
    }

    /// Records a final refusal for the key (if any) and returns it; if
    /// another request recorded the key first, its outcome wins.
    async fn refuse<P: DeserializeOwned>(
        &self,
        ctx: &CommandContext,
        refusal: AppError,
    ) -> Result<Done<P>, AppError> {
        let Some(record) = &ctx.idempotency else {
            return Err(refusal);
        };
        let text = serde_json::json!({ "err": &refusal }).to_string();
        let outcome = move |_: &Committed| text.clone();
        let written = self
            .writer
            .commit(CommitUnit {
                streams: Vec::new(),
                metadata: HashMap::new(),
                idempotency: Some((record.clone(), Box::new(outcome))),
            })
            .await;
        match written {
            Ok(_) => Err(refusal),
            Err(AppendError::KeyTaken) => {
                match IdempotencyKeys::lookup(&self.pool, record).await? {
                    Some(earlier) => replay(earlier),
                    None => Err(refusal),
                }
            }
            // The refusal stands; only its record is missing, so a retry
            // decides again (and, nothing having changed, refuses again).
            Err(err) => {
                tracing::warn!(error = %err, "refusal not recorded for its key");
                Err(refusal)
            }
        }
    }
}

enum Retry {
    Conflict(String),
    KeyTaken,
    Failed(AppError),
}

/// Grows with each attempt, with jitter, so losers do not collide again in step.
fn backoff(attempt: u32) -> Duration {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 4_000_000);
    Duration::from_nanos(u64::from(jitter) + 2_000_000 * u64::from(attempt))
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredOutcome<P> {
    Ok(Done<P>),
    Err(AppError),
}

fn replay<P: DeserializeOwned>(earlier: Recorded) -> Result<Done<P>, AppError> {
    match earlier {
        Recorded::Other => Err(AppError::conflict(
            "idempotency-key-reused",
            "this Idempotency-Key was used for a different request; use a new key",
        )),
        Recorded::Same(text) => match serde_json::from_str::<StoredOutcome<P>>(&text) {
            Ok(StoredOutcome::Ok(mut done)) => {
                done.replayed = true;
                Ok(done)
            }
            Ok(StoredOutcome::Err(mut refusal)) => {
                refusal.replayed = true;
                Err(refusal)
            }
            Err(err) => Err(AppError::internal(format!(
                "idempotency record unreadable: {err}"
            ))),
        },
    }
}

/// What one run of a workflow loads and decides; handed to the writer whole.
pub struct Unit {
    loader: Loader,
    stripes: Arc<Vec<Arc<tokio::sync::Mutex<()>>>>,
    expected_version: Option<i64>,
    guard: Option<OwnedMutexGuard<()>>,
    /// The aggregate the command names: type, id, loaded version.
    subject: Option<(&'static str, String, i64)>,
    streams: Vec<StreamAppend>,
    /// No conflict has made this workflow run again yet.
    first_attempt: bool,
}

impl Unit {
    /// Loads an aggregate the command touches besides its subject.
    pub async fn load<A: Aggregate>(&mut self, id: &str) -> Result<Loaded<A>, AppError> {
        let restored = self.loader.load::<A>(id).await?;
        Ok(Loaded {
            id: id.to_string(),
            state: restored.state,
            loaded_version: restored.version,
            version: restored.version,
            snapshot_version: restored.snapshot_version,
        })
    }

    /// Loads the aggregate the command names. `If-Match` is checked here,
    /// and commands on one subject take turns within this process.
    pub async fn load_subject<A: Aggregate>(&mut self, id: &str) -> Result<Loaded<A>, AppError> {
        self.take_turns_on::<A>(id).await;
        let loaded = self.load::<A>(id).await?;
        self.become_subject(loaded)
    }

    /// `If-Match` checked against the subject as loaded.
    fn become_subject<A: Aggregate>(&mut self, loaded: Loaded<A>) -> Result<Loaded<A>, AppError> {
        if let Some(expected) = self.expected_version {
            // A version of something that does not exist: it is not found
            // (rather than "changed").
            if loaded.version == 0 && expected > 0 {
                return Err(AppError::not_found(format!(
                    "no such {}",
                    A::TYPE.replace('_', " ")
                )));
            }
            if expected != loaded.version {
                return Err(AppError::version_mismatch(expected, loaded.version));
            }
        }
        self.subject = Some((A::TYPE, loaded.id.clone(), loaded.version));
        Ok(loaded)
    }

    /// The aggregate a command creates under an id the workflow has just
    /// minted (a UUIDv7): nothing can be stored under it yet, so it is not
    /// loaded — a round trip saved on every creation. Were something there
    /// after all, the append would conflict on its first sequence and the
    /// rerun loads it (`load_subject`).
    pub async fn create_subject<A: Aggregate>(&mut self, id: &str) -> Result<Loaded<A>, AppError> {
        if !self.first_attempt {
            return self.load_subject::<A>(id).await;
        }
        self.become_subject(Loaded {
            id: id.to_string(),
            state: A::default(),
            loaded_version: 0,
            version: 0,
            snapshot_version: 0,
        })
    }

    /// Makes the commands of this process that touch `A` `id` take turns
    /// (what `load_subject` does for the subject); call it first for a
    /// stream many commands share, like a counter. One per unit: a later
    /// call, or `load_subject`, keeps the turn already taken.
    pub async fn take_turns_on<A: Aggregate>(&mut self, id: &str) {
        if self.guard.is_none() {
            let stripe = {
                use std::hash::{Hash, Hasher};
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                (A::TYPE, id).hash(&mut hasher);
                (hasher.finish() as usize) % STRIPES
            };
            self.guard = Some(self.stripes[stripe].clone().lock_owned().await);
        }
    }

    /// The stream ids for lookups by personal values (a lead's phone):
    /// pseudonyms, so that no stream id holds the value itself.
    pub async fn pseudonyms(&self, values: &[String]) -> Result<Vec<String>, AppError> {
        crate::store::privacy::Keys::new(self.loader.pool.clone())
            .pseudonyms(values)
            .await
            .map_err(AppError::from)
    }

    /// Lets the aggregate decide; its events join the unit and are applied
    /// to `aggregate`. A refusal becomes the workflow's error.
    pub async fn decide<A>(
        &mut self,
        aggregate: &mut Loaded<A>,
        command: A::Command,
    ) -> Result<Vec<A::Event>, AppError>
    where
        A: Aggregate<Services = ()> + Clone,
        A::Error: RuleViolation,
    {
        self.try_decide(aggregate, command)
            .await?
            .map_err(|e| AppError::rejected(&e))
    }

    /// Like `decide`, but hands a refusal back to the workflow, which may
    /// try something else (another master, say).
    pub async fn try_decide<A>(
        &mut self,
        aggregate: &mut Loaded<A>,
        command: A::Command,
    ) -> Result<Result<Vec<A::Event>, A::Error>, AppError>
    where
        A: Aggregate<Services = ()> + Clone,
    {
        let mut state = aggregate.state.clone();
        let sink = EventSink::default();
        if let Err(refusal) = state.handle(command, &(), &sink).await {
            return Ok(Err(refusal));
        }
        let events = sink.collect().await;
        // `handle` applied the events to `state` through the sink.
        aggregate.state = state;
        let mut new = Vec::with_capacity(events.len());
        for event in &events {
            new.push(NewEvent {
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload: serde_json::to_value(event).map_err(AppError::internal)?,
            });
        }
        let position = self
            .streams
            .iter()
            .position(|s| s.aggregate_type == A::TYPE && s.aggregate_id == aggregate.id);
        let index = match position {
            Some(i) => {
                self.streams[i].events.extend(new);
                i
            }
            None => {
                self.streams.push(StreamAppend {
                    aggregate_type: A::TYPE,
                    aggregate_id: aggregate.id.clone(),
                    expected_version: aggregate.loaded_version,
                    events: new,
                    snapshot: None,
                });
                self.streams.len() - 1
            }
        };
        aggregate.version += events.len() as i64;
        // A long stream keeps a snapshot of the state this unit leaves, so
        // the next load does not replay it from the start.
        if aggregate.version - aggregate.snapshot_version >= snapshots::EVERY {
            self.streams[index].snapshot = Some(Snapshot {
                version: aggregate.version,
                state: serde_json::to_string(&aggregate.state).map_err(AppError::internal)?,
            });
        }
        Ok(Ok(events))
    }
}

fn load_error<E: std::error::Error>(err: AggregateError<E>) -> AppError {
    match err {
        AggregateError::DatabaseConnectionError(e) => {
            tracing::warn!(error = %e, "event store unavailable");
            AppError::unavailable("the database is unavailable; nothing was written")
        }
        other => {
            let text = other.to_string();
            // postgres-es and sqlite-es report lost connections as
            // UnexpectedError with the sqlx text inside.
            let lowered = text.to_lowercase();
            if [
                "pool timed out",
                "connection refused",
                "pool was closed",
                "database is locked",
                "error communicating",
                "terminating connection",
            ]
            .iter()
            .any(|m| lowered.contains(m))
            {
                tracing::warn!(error = %text, "event store unavailable");
                AppError::unavailable("the database is unavailable; nothing was written")
            } else {
                AppError::internal(text)
            }
        }
    }
}

/// One upcaster shared between the log reader and the loaders.
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

/// One command on one aggregate, for callers that want its typed refusal
/// (the CLI, the bot): the same unit, writer and retries as every workflow.
pub struct CommandBus<A> {
    commands: Arc<Commands>,
    _aggregate: std::marker::PhantomData<fn() -> A>,
}

/// What a one-aggregate command produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "", deserialize = ""))]
pub struct Executed<A: Aggregate> {
    pub events: Vec<A::Event>,
    /// The aggregate's state after the command.
    pub state: A,
}

/// Why a one-aggregate command did not happen: the aggregate's own
/// refusal, typed, or anything else.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    #[error(transparent)]
    Rejected(E),
    #[error(transparent)]
    Failed(AppError),
}

impl<E: RuleViolation> From<CommandError<E>> for AppError {
    fn from(err: CommandError<E>) -> Self {
        match err {
            CommandError::Rejected(rule) => AppError::rejected(&rule),
            CommandError::Failed(err) => err,
        }
    }
}

impl<A> CommandBus<A>
where
    A: Aggregate<Services = ()> + Clone + 'static,
    A::Command: Clone,
    A::Error: RuleViolation,
{
    pub fn new(commands: Arc<Commands>) -> Self {
        Self {
            commands,
            _aggregate: std::marker::PhantomData,
        }
    }

    pub async fn execute(
        &self,
        ctx: &CommandContext,
        id: &str,
        command: A::Command,
    ) -> Result<Done<Executed<A>>, CommandError<A::Error>> {
        let refused: Mutex<Option<A::Error>> = Mutex::new(None);
        let done = self
            .commands
            .run(ctx, |mut unit| {
                let (command, refused) = (command.clone(), &refused);
                async move {
                    let mut aggregate = unit.load_subject::<A>(id).await?;
                    match unit.try_decide(&mut aggregate, command).await? {
                        Ok(events) => Ok((
                            unit,
                            Executed {
                                events,
                                state: aggregate.state,
                            },
                        )),
                        Err(refusal) => {
                            let err = AppError::rejected(&refusal);
                            *refused.lock().expect("not poisoned") = Some(refusal);
                            Err(err)
                        }
                    }
                }
            })
            .await;
        match done {
            Ok(done) => Ok(done),
            Err(err) => match refused.lock().expect("not poisoned").take() {
                Some(refusal) if !err.replayed => Err(CommandError::Rejected(refusal)),
                _ => Err(CommandError::Failed(err)),
            },
        }
    }

    /// The aggregate's current state and version (0 when it does not exist).
    pub async fn load(&self, id: &str) -> Result<(A, i64), AppError> {
        self.commands.load::<A>(id).await
    }
}
