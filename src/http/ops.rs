//! Operations endpoints: liveness, readiness (database, NATS, consumers)
//! and Prometheus metrics.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_text))
}

#[derive(Serialize, ToSchema)]
#[schema(examples(json!({"status": "ok"})))]
pub struct Health {
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "The process is alive", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` when the database answers, NATS (if configured) is connected
    /// and no consumer has stopped; `not_ready` otherwise.
    #[schema(example = "ready")]
    pub status: &'static str,
    pub database: Check,
    pub nats: NatsCheck,
    /// `off` when TELEGRAM_BOT_TOKEN is unset, `on` otherwise.
    #[schema(example = "off")]
    pub notifier: &'static str,
    /// Messages the notifier set aside after failing again and again (see
    /// `GET /api/v1/notifier/parked`); they do not make the process unready.
    pub parked_messages: i64,
    /// Highest position in the global log (as of the last lag check).
    pub log_head: i64,
    pub consumers: Vec<ConsumerReport>,
}

#[derive(Serialize, ToSchema)]
pub struct Check {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct NatsCheck {
    /// `in-process` when NATS_URL is unset.
    #[schema(example = "connected")]
    pub mode: &'static str,
    pub ok: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ConsumerReport {
    pub name: String,
    pub checkpoint: i64,
    /// Events between the checkpoint and the log head.
    pub lag_events: i64,
    /// Why the consumer stopped, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// Readiness: the database, NATS and every consumer.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "Not ready; the body says which part", body = Readiness),
    ))]
async fn readyz(State(app): State<AppState>) -> Response {
    let platform = &app.platform;
    let database = match platform.db.ping().await {
        Ok(()) => Check {
            ok: true,
            error: None,
        },
        Err(err) => Check {
            ok: false,
            error: Some(err.to_string()),
        },
    };
    let nats = match &platform.nats {
        None => NatsCheck {
            mode: "in-process",
            ok: true,
        },
        Some(bus) if bus.connected() => NatsCheck {
            mode: "connected",
            ok: true,
        },
        Some(_) => NatsCheck {
            mode: "disconnected",
            ok: false,
        },
    };
    let parked_messages = if platform.settings.telegram.is_some() {
        crate::notifier::ledger::count_parked(&platform.db.any)
            .await
            .unwrap_or(0)
    } else {
        0
    };
    // The head as it is now (the monitor's copy is up to a second old, and
    // a lag computed from it can say "caught up" too early).
    let head = match database.ok {
        true => platform
            .log
            .head()
            .await
            .unwrap_or_else(|_| platform.head()),
        false => platform.head(),
    };
    let consumers: Vec<ConsumerReport> = platform
        .consumers()
        .iter()
        .map(|state| {
            let status = state.status();
            ConsumerReport {
                name: state.name.to_string(),
                checkpoint: status.checkpoint,
                lag_events: (head - status.checkpoint).max(0),
                failed: status.failed,
            }
        })
        .collect();
    let ready = database.ok && nats.ok && consumers.iter().all(|c| c.failed.is_none());
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        database,
        nats,
        notifier: if platform.settings.telegram.is_some() {
            "on"
        } else {
            "off"
        },
        parked_messages,
        log_head: head,
        consumers,
    };
    (code, Json(body)).into_response()
}

/// Prometheus metrics: HTTP latency, append latency, consumer lag, relay backlog.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn metrics_text() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        prometheus().render(),
    )
        .into_response()
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
            .expect("buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may be installed already (tests): then we just
        // render ours, which then stays empty.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}
