//! The platform one process runs on: its database, the global log, the
//! optional NATS connection, and the consumers with their live state.
//! Domain modules get what they need from here when they are installed.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_es::Aggregate;
use tokio::sync::watch;
use utoipa_axum::router::OpenApiRouter;

use annals_projections::Projector;

use crate::app::{CommandBus, Commands};
use crate::bus::{Checkpoints, ConsumerState, NatsBus};
use crate::config::Settings;
use crate::http::{ApiError, AppState};
use crate::store::{Db, LogReader};

/// A slice of the business (appointments, orders, ...): its routes, what
/// its handlers need, and its read models. Adding one is one line in
/// `crate::modules()`.
pub trait Module: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Routes with their OpenAPI description; builds nothing that does IO.
    fn routes(&self) -> OpenApiRouter<AppState>;
    /// Puts the handlers' dependencies (command buses, ...) into `services`.
    fn install(&self, _platform: &Arc<Platform>, _services: &mut Services) {}
    fn projectors(&self) -> Vec<Arc<dyn Projector>> {
        Vec::new()
    }
    /// Upcasters that bring old versions of this module's events to the
    /// current shape (applied on load and when reading the log).
    fn upcasters(&self) -> Vec<Arc<dyn cqrs_es::persist::EventUpcaster>> {
        Vec::new()
    }
    /// Who may call routes that are not in the permission matrix's route
    /// table (test modules); the real modules are all in that table.
    fn access(&self) -> Vec<(&'static str, &'static str, crate::auth::permissions::Access)> {
        Vec::new()
    }
}

/// Handler dependencies by type, filled by modules at start-up.
#[derive(Default)]
pub struct Services(HashMap<TypeId, Arc<dyn Any + Send + Sync>>);

impl Services {
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.0.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// Panics when a module forgot to install `T`: a wiring bug that the
    /// first test of that module shows.
    pub fn get<T: Send + Sync + 'static>(&self) -> Arc<T> {
        self.0
            .get(&TypeId::of::<T>())
            .cloned()
            .and_then(|v| v.downcast::<T>().ok())
            .unwrap_or_else(|| panic!("service {} was not installed", std::any::type_name::<T>()))
    }
}

pub struct Platform {
    pub settings: Settings,
    pub db: Db,
    pub log: LogReader,
    pub nats: Option<NatsBus>,
    pub(crate) appended: watch::Sender<i64>,
    /// What this process's writer committed, for the relay and fan-out.
    pub(crate) handoff: crate::store::Handoff,
    pub(crate) head: watch::Sender<i64>,
    pub(crate) consumers: Vec<Arc<ConsumerState>>,
    pub(crate) projectors: Vec<Arc<dyn Projector>>,
    /// Runs every command's workflow and commits it.
    pub commands: Arc<Commands>,
    pub clock: Clock,
    /// Where uploaded files' bytes are kept.
    pub files: crate::files::FileStore,
    /// Signs the audit chain's checkpoints.
    pub audit_key: Arc<ed25519_dalek::SigningKey>,
}

/// The time as the server sees it. Business rules (notice periods, "has it
/// started yet") read it here, so tests can move it forward.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let offset = self.offset_ms.load(std::sync::atomic::Ordering::Relaxed);
        chrono::Utc::now() + chrono::Duration::milliseconds(offset)
    }

    /// Moves this process's clock forward (tests only: the database keeps
    /// recording real time).
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), std::sync::atomic::Ordering::Relaxed);
    }
}

impl Platform {
    /// One-aggregate commands on `A`, with its typed refusals.
    pub fn command_bus<A>(&self) -> CommandBus<A>
    where
        A: Aggregate<Services = ()> + Clone + 'static,
        A::Command: Clone,
        A::Error: annals_domain::RuleViolation,
    {
        CommandBus::new(self.commands.clone())
    }

    /// The business's date now (its configured time zone, the process clock).
    pub fn today(&self) -> chrono::NaiveDate {
        self.clock
            .now()
            .with_timezone(&self.settings.timezone)
            .date_naive()
    }

    pub fn consumer(&self, name: &str) -> Option<&Arc<ConsumerState>> {
        self.consumers.iter().find(|c| c.name == name)
    }

    pub fn consumers(&self) -> &[Arc<ConsumerState>] {
        &self.consumers
    }

    pub fn projector(&self, name: &str) -> Option<Arc<dyn Projector>> {
        self.projectors.iter().find(|p| p.name() == name).cloned()
    }

    pub fn projectors(&self) -> &[Arc<dyn Projector>] {
        &self.projectors
    }

    /// Last head position seen by the lag monitor.
    pub fn head(&self) -> i64 {
        *self.head.borrow()
    }

    /// Read-your-writes: waits (bounded) until read model `consumer` has
    /// applied the log up to `min_position`.
    pub async fn wait_for(
        &self,
        consumer: &str,
        min_position: Option<i64>,
    ) -> Result<(), ApiError> {
        if min_position.is_some_and(|p| p < 0) {
            return Err(ApiError::bad_parameter("min_position", "must be 0 or more"));
        }
        let Some(min) = min_position.filter(|p| *p > 0) else {
            return Ok(());
        };
        let state = self
            .consumer(consumer)
            .ok_or_else(|| ApiError::internal(format!("no consumer named {consumer}")))?;
        if state.status().checkpoint >= min {
            return Ok(());
        }
        // The head this process knows (its own last append, the monitor's
        // last reading) is a lower bound; the database only when beyond it.
        let known = (*self.appended.borrow()).max(self.head());
        let head = if min > known {
            self.log.head().await?
        } else {
            known
        };
        if min > head {
            let mut err = ApiError::conflict(
                "position-beyond-log",
                format!(
                    "min_position {min} is beyond the end of the log (the last position is {head})"
                ),
            );
            err.errors = vec![crate::http::error::ProblemField {
                field: "min_position".into(),
                message: format!("is beyond the end of the log (the last position is {head})"),
            }];
            return Err(err);
        }
        let deadline = Instant::now() + self.settings.max_read_wait;
        let mut progress = state.subscribe();
        loop {
            if *progress.borrow_and_update() >= min {
                return Ok(());
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let at = state.status().checkpoint;
                let mut err = ApiError::unavailable(format!(
                    "the read model {consumer} has reached position {at}, not yet {min}; retry shortly"
                ));
                err.slug = "not-caught-up".into();
                return Err(err);
            }
            tokio::select! {
                _ = progress.changed() => {}
                // Another process may be the one applying: ask the database.
                _ = tokio::time::sleep(remaining.min(Duration::from_millis(100))) => {
                    if Checkpoints::get(&self.db.any, consumer).await.unwrap_or(0) >= min {
                        return Ok(());
                    }
                }
            }
        }
    }
}
