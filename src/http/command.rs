//! Commands over HTTP: the context a workflow gets from the caller and the
//! headers (metadata, `If-Match`, `Idempotency-Key`), and the response
//! every command shares.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use annals_domain::{Actor, EventMetadata};

use super::error::ApiError;
use super::extract::{Caller, CommandHeaders};
use crate::app::{AppError, CommandContext, Done};
use crate::store::IdempotencyRecord;

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

impl CommandAccepted {
    pub fn of<P>(done: &Done<P>) -> Self {
        Self {
            id: done.id.clone(),
            version: done.version,
            position: done.position,
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

    /// What the workflow gets: who, `If-Match`, and the key with its scope
    /// (the caller and the route) and the request's fingerprint.
    pub fn context(&self) -> CommandContext {
        let who = match &self.caller.0 {
            Actor::User { user_id, .. } => user_id.to_string(),
            other => serde_json::to_string(other).unwrap_or_default(),
        };
        CommandContext {
            metadata: self.metadata(),
            expected_version: self.headers.expected_version,
            idempotency: self
                .headers
                .idempotency_key
                .clone()
                .map(|key| IdempotencyRecord {
                    scope: format!("{who} {}", self.route),
                    key,
                    fingerprint: self.digest.clone(),
                }),
        }
    }
}

/// Answers a command: `status` with the view of its outcome and its
/// version as the ETag, or its problem. A retry answered from the
/// `Idempotency-Key` record is marked `Idempotent-Replayed: true`.
pub fn reply<P, V: Serialize>(
    status: StatusCode,
    result: Result<Done<P>, AppError>,
    view: impl FnOnce(&Done<P>) -> V,
) -> Response {
    match result {
        Ok(done) => {
            let mut response = (status, axum::Json(view(&done))).into_response();
            let headers = response.headers_mut();
            if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", done.version)) {
                headers.insert(header::ETAG, etag);
            }
            if done.replayed {
                headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            response
        }
        Err(err) => {
            let replayed = err.replayed;
            let mut response = ApiError::from(err).into_response();
            if replayed {
                response
                    .headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            response
        }
    }
}

/// 201 for a command that created something, with `Location` naming where
/// it is read (`/api/v1{collection}/{id}`).
pub fn created<P, V: Serialize>(
    collection: &str,
    result: Result<Done<P>, AppError>,
    view: impl FnOnce(&Done<P>) -> V,
) -> Response {
    let location = result
        .as_ref()
        .ok()
        .map(|done| format!("/api/v1{collection}/{}", done.id));
    let mut response = reply(StatusCode::CREATED, result, view);
    if let Some(value) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The usual answer: `{id, version, position}`.
pub fn accepted<P>(status: StatusCode, result: Result<Done<P>, AppError>) -> Response {
    reply(status, result, CommandAccepted::of)
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
