//! Building and running the application: database, NATS, consumers and the
//! HTTP server, and stopping them in order.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::bus::{self, ConsumerState, NatsBus, WorkerContext};
use crate::config::Settings;
use crate::http::{self, AppState};
use crate::platform::{Module, Platform, Services};
use crate::store::Db;

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    platform: Arc<Platform>,
    workers: JoinSet<(&'static str, Result<()>)>,
    stop: watch::Sender<bool>,
}

impl Application {
    /// Connects, migrates, starts the consumers and binds the listener
    /// (port 0 picks a free port; `local_addr` tells which).
    pub async fn build(settings: Settings, modules: Vec<Box<dyn Module>>) -> Result<Self> {
        let platform = Arc::new(connect(settings, &modules).await?);
        // Read models and checkpoints exist before the first request.
        for projector in platform.projectors() {
            projector.prepare(&platform.db.any).await?;
            bus::Checkpoints::ensure(&platform.db.any, projector.name()).await?;
        }
        // Keys older than their 24 hours are ignored; this forgets them.
        match crate::store::IdempotencyKeys::prune(&platform.db.any).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(forgotten = n, "expired Idempotency-Key records removed"),
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "expired Idempotency-Key records not removed")
            }
        }
        let mut services = Services::default();
        for module in &modules {
            module.install(&platform, &mut services);
        }
        let extra: Vec<_> = modules.iter().flat_map(|m| m.access()).collect();
        let state = AppState {
            platform: platform.clone(),
            services: Arc::new(services),
            routes: Arc::new(crate::auth::RouteTable::new(&extra)),
            tokens: crate::auth::TokenLookup::new(platform.db.any.clone()),
        };
        http::ops::prometheus();
        let router = http::app(&modules, state);
        let (stop, workers) = start_workers(&platform);
        let listener = TcpListener::bind(platform.settings.listen)
            .await
            .with_context(|| {
                format!(
                    "ANNALS_LISTEN: cannot listen on {}",
                    platform.settings.listen
                )
            })?;
        Ok(Self {
            listener,
            router,
            platform,
            workers,
            stop,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    pub fn platform(&self) -> &Arc<Platform> {
        &self.platform
    }

    /// Serves until `shutdown` resolves; then stops taking requests,
    /// finishes the ones in flight, and stops the consumers after their
    /// current batch (whose checkpoint commits with it).
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let Self {
            listener,
            router,
            platform,
            mut workers,
            stop,
        } = self;
        tracing::info!(address = %listener.local_addr()?, "listening");
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        tracing::info!("HTTP server stopped; stopping consumers");
        let _ = stop.send(true);
        while let Some(joined) = workers.join_next().await {
            match joined {
                Ok((name, Ok(()))) => tracing::info!(worker = name, "stopped"),
                Ok((name, Err(err))) => {
                    tracing::error!(worker = name, error = %format!("{err:#}"), "ended with an error")
                }
                Err(err) if err.is_cancelled() => tracing::info!("worker cancelled"),
                Err(err) => tracing::error!(error = %err, "worker panicked"),
            }
        }
        platform.db.close().await;
        served.context("serving HTTP")
    }
}

/// Opens the database (and NATS), runs migrations, and lays out the
/// consumers of every module.
pub async fn connect(settings: Settings, modules: &[Box<dyn Module>]) -> Result<Platform> {
    let db = Db::connect(&settings.database, settings.db_pool_size).await?;
    db.migrate().await?;
    let nats = match &settings.nats {
        None => None,
        Some(config) => {
            let bus = NatsBus::connect(config).await?;
            if let Err(err) = bus.ensure_stream().await {
                // Not fatal: commands are still taken; the relay retries.
                tracing::warn!(error = %format!("{err:#}"), "JetStream not ready yet");
            }
            Some(bus)
        }
    };
    let audit_key = Arc::new(crate::audit::signing_key(
        settings.audit_signing_key.as_deref(),
        &settings.data_dir,
    )?);
    let mut projectors: Vec<_> = modules.iter().flat_map(|m| m.projectors()).collect();
    // The sealer is a consumer of every module's events.
    projectors.push(Arc::new(crate::audit::Sealer::new(
        audit_key.clone(),
        settings.audit_checkpoint_every,
    )));
    let mut consumers: Vec<Arc<ConsumerState>> = projectors
        .iter()
        .map(|p| ConsumerState::new(p.name()))
        .collect();
    if nats.is_some() {
        consumers.push(ConsumerState::new(bus::RELAY));
    }
    if settings.telegram.is_some() {
        consumers.push(ConsumerState::new(crate::notifier::NAME));
    }
    let mut names: Vec<_> = consumers.iter().map(|c| c.name).collect();
    names.sort_unstable();
    if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
        anyhow::bail!("two consumers are named {}", twice[0]);
    }
    let upcasters: crate::store::Upcasters =
        Arc::new(modules.iter().flat_map(|m| m.upcasters()).collect());
    let log = db.log(upcasters.clone());
    let head = log.head().await.context("reading the log head")?;
    let appended = watch::channel(head).0;
    let handoff = crate::store::Handoff::default();
    let commands = Arc::new(crate::app::Commands::new(
        db.typed.clone(),
        db.any.clone(),
        log.clone(),
        upcasters.clone(),
        appended.clone(),
        handoff.clone(),
    ));
    let files = match &settings.files_s3_bucket {
        Some(bucket) => crate::files::FileStore::s3(bucket)?,
        None => crate::files::FileStore::local(&settings.data_dir.join("files"))?,
    };
    Ok(Platform {
        audit_key,
        files,
        settings,
        db,
        log,
        nats,
        appended,
        handoff,
        head: watch::channel(head).0,
        consumers,
        projectors,
        commands,
        clock: Default::default(),
    })
}

fn start_workers(
    platform: &Arc<Platform>,
) -> (watch::Sender<bool>, JoinSet<(&'static str, Result<()>)>) {
    let (stop, stop_rx) = watch::channel(false);
    let ctx = WorkerContext {
        pool: platform.db.any.clone(),
        derived: platform.db.derived.clone(),
        log: platform.log.clone(),
        appended: platform.appended.subscribe(),
        handoff: platform.handoff.clone(),
        stop: stop_rx,
        nats: platform.nats.clone(),
    };
    let mut workers = JoinSet::new();
    let fanout = bus::Fanout::default();
    for projector in platform.projectors() {
        let state = platform.consumer(projector.name()).expect("state").clone();
        let (projector, feed, ctx) = (projector.clone(), fanout.subscribe(), ctx.clone());
        workers.spawn(async move {
            (
                state.name,
                bus::run_projector(projector, state, feed, ctx).await,
            )
        });
    }
    let fanout_ctx = ctx.clone();
    // Before any request is served: the head the projectors start from.
    let start = *platform.appended.borrow();
    workers.spawn(async move { ("fan-out", bus::run_fanout(fanout, start, fanout_ctx).await) });
    if let (Some(nats), Some(state)) = (
        platform.nats.clone(),
        platform.consumer(bus::RELAY).cloned(),
    ) {
        let ctx = ctx.clone();
        workers.spawn(async move { ("relay", bus::run_relay(nats, state, ctx).await) });
    }
    if let (Some(telegram), Some(state)) = (
        platform.settings.telegram.clone(),
        platform.consumer(crate::notifier::NAME).cloned(),
    ) {
        let notifier = crate::notifier::Notifier::new(telegram, platform);
        let commands = notifier.clone();
        let scheduler = notifier.clone();
        let scheduler_ctx = ctx.clone();
        workers.spawn(async move {
            let ended = crate::notifier::schedule::run_scheduler(scheduler, scheduler_ctx).await;
            ("telegram-scheduler", ended)
        });
        let commands_ctx = ctx.clone();
        workers.spawn(async move {
            let ended = crate::notifier::commands::run_commands(commands, commands_ctx).await;
            ("telegram-commands", ended)
        });
        let ctx = ctx.clone();
        workers.spawn(async move {
            (
                "notifier",
                crate::notifier::run_notifier(notifier, state, ctx).await,
            )
        });
    }
    let confirm = (platform.clone(), ctx.clone());
    workers.spawn(async move {
        (
            "project-auto-confirm",
            crate::app::projects::run_auto_confirm(confirm.0, confirm.1).await,
        )
    });
    let sender = (platform.clone(), ctx.clone());
    workers.spawn(async move {
        (
            "message-sender",
            crate::messages::run_sender(sender.0, sender.1).await,
        )
    });
    let states = platform.consumers().to_vec();
    let head = platform.head.clone();
    workers.spawn(async move { ("monitor", bus::run_monitor(states, head, ctx).await) });
    (stop, workers)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT: shutting down"),
        _ = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
