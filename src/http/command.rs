//! Running a command over HTTP: metadata from the caller and headers, the
//! `Idempotency-Key` protocol, and the response every command shares.

use std::future::Future;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use annals_domain::{Actor, EventMetadata};

use super::error::{ApiError, PROBLEM_JSON};
use super::extract::{Caller, CommandHeaders};
use super::AppState;
use crate::store::{Claim, CommandOutcome, IdempotencyKeys};

/// The part of every command response that says where the change landed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(examples(json!({"id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "version": 3, "position": 1042})))]
pub struct CommandAccepted {
    /// The aggregate the command was handled by.
    pub id: String,
    /// Its version after the command (send it back as `If-Match: "N"`).
    pub version: i64,
    /// Global log position of the command's last event; pass it to queries
    /// as `min_position` to read your own write.
    pub position: i64,
}

impl<A: cqrs_es::Aggregate> From<&CommandOutcome<A>> for CommandAccepted {
    fn from(outcome: &CommandOutcome<A>) -> Self {
        Self {
            id: outcome.aggregate_id.clone(),
            version: outcome.version,
            position: outcome.position,
        }
    }
}

/// The headers every command takes, for the OpenAPI document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct CommandHeaderParams {
    /// Retries with the same key take effect once and get the first answer.
    #[param(
        rename = "Idempotency-Key",
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]+$"
    )]
    idempotency_key: Option<String>,
    /// The version you expect, as an ETag (`"3"`); 412 if it moved on.
    #[param(
        rename = "If-Match",
        nullable = false,
        max_length = 20,
        pattern = "^(\\*|(W/)?\"[0-9]{1,15}\"|[0-9]{1,15})$"
    )]
    if_match: Option<String>,
}

/// A command's successful answer: status, JSON body and the new version.
pub struct CommandReply {
    pub status: StatusCode,
    pub body: serde_json::Value,
    pub version: i64,
}

impl CommandReply {
    /// The usual answer: `{id, version, position}` of the outcome.
    pub fn accepted<A: cqrs_es::Aggregate>(
        status: StatusCode,
        outcome: &CommandOutcome<A>,
    ) -> Self {
        Self::new(status, CommandAccepted::from(outcome), outcome.version)
    }

    pub fn new(status: StatusCode, body: impl Serialize, version: i64) -> Self {
        Self {
            status,
            body: serde_json::to_value(body).expect("response serializes"),
            version,
        }
    }
}

/// What a command handler knows about its request.
pub struct CommandCall {
    pub caller: Caller,
    pub headers: CommandHeaders,
    /// `METHOD path`, part of the idempotency scope.
    pub route: String,
    /// Digest of the body, to detect a key reused for another request.
    pub digest: String,
}

impl CommandCall {
    pub fn new(
        caller: Caller,
        headers: CommandHeaders,
        method: &str,
        path: &str,
        digest: String,
    ) -> Self {
        Self {
            caller,
            headers,
            route: format!("{method} {path}"),
            digest,
        }
    }

    /// Event metadata for this command.
    pub fn metadata(&self) -> EventMetadata {
        let mut meta = EventMetadata::for_command(self.caller.0.clone());
        if let Some(correlation) = self.headers.correlation_id {
            meta.correlation_id = Some(correlation);
        }
        meta.idempotency_key = self.headers.idempotency_key.clone();
        meta
    }

    fn scope(&self) -> String {
        let who = match &self.caller.0 {
            Actor::User { user_id, .. } => user_id.to_string(),
            other => serde_json::to_string(other).unwrap_or_default(),
        };
        format!("{who} {}", self.route)
    }
}

/// How long a retry waits for the first request with its key to finish.
const IN_PROGRESS_WAIT: Duration = Duration::from_secs(5);

/// Runs `command` at most once per `Idempotency-Key`; a retry gets the
/// first response back (marked `Idempotent-Replayed: true`).
pub async fn run_command<F, Fut>(app: &AppState, call: &CommandCall, command: F) -> Response
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<CommandReply, ApiError>>,
{
    let Some(key) = call.headers.idempotency_key.clone() else {
        return respond(command().await);
    };
    let pool = &app.platform.db.any;
    let scope = call.scope();
    let started = Instant::now();
    loop {
        match IdempotencyKeys::claim(pool, &scope, &key, &call.digest).await {
            Err(err) => return ApiError::from(err).into_response(),
            Ok(Claim::Owned) => break,
            Ok(Claim::Done { status, body }) => return replayed(status, body),
            Ok(Claim::Mismatch) => {
                return ApiError::conflict(
                    "idempotency-key-reused",
                    "this Idempotency-Key was used for a different request; use a new key",
                )
                .into_response()
            }
            Ok(Claim::InProgress) if started.elapsed() < IN_PROGRESS_WAIT => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(Claim::InProgress) => {
                let mut err = ApiError::conflict(
                    "idempotency-key-in-progress",
                    "a request with this Idempotency-Key is still being processed",
                );
                err.retry_after = Some(1);
                return err.into_response();
            }
        }
    }
    let result = command().await;
    let (status, body) = match &result {
        Ok(reply) => (reply.status, reply.body.to_string()),
        Err(err) => (
            err.status,
            serde_json::to_string(&err.problem()).expect("problem serializes"),
        ),
    };
    if status.is_server_error() {
        // Nothing was written (or we cannot tell): let a retry run again.
        if let Err(err) = IdempotencyKeys::release(pool, &scope, &key).await {
            tracing::warn!(error = %err, "idempotency key not released");
        }
    } else if let Err(err) =
        IdempotencyKeys::complete(pool, &scope, &key, status.as_u16(), &body).await
    {
        // The command's effect is stored; only the replay copy is missing.
        tracing::error!(error = %err, "idempotent response not recorded");
    }
    respond(result)
}

fn respond(result: Result<CommandReply, ApiError>) -> Response {
    match result {
        Ok(reply) => {
            let mut response = (reply.status, axum::Json(reply.body)).into_response();
            if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", reply.version)) {
                response.headers_mut().insert(header::ETAG, etag);
            }
            response
        }
        Err(err) => err.into_response(),
    }
}

fn replayed(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let content_type = if status.is_success() {
        "application/json"
    } else {
        PROBLEM_JSON
    };
    let version = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("version").and_then(|v| v.as_i64()));
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    if let Some(version) = version.filter(|_| status.is_success()) {
        if let Ok(etag) = HeaderValue::from_str(&format!("\"{version}\"")) {
            headers.insert(header::ETAG, etag);
        }
    }
    response
}

/// The header of commands that create something (no version to match yet).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IdempotencyParams {
    /// Retries with the same key take effect once and get the first answer.
    #[param(
        rename = "Idempotency-Key",
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]+$"
    )]
    idempotency_key: Option<String>,
}
