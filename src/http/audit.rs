//! The auditors' routes: every event with its envelope, any aggregate's
//! history and its state as of any instant, the chain's verification and
//! the key that signs its checkpoints.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use annals_domain::{Actor, StoredEvent};

use super::error::{Forbidden, NotFound, Unauthorized};
use super::{ApiError, ApiQuery, AppState, CommonProblems};
use crate::audit::{self, states, Verification};
use crate::platform::Module;
use crate::store::FeedFilter;

pub struct AuditModule;

impl Module for AuditModule {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(audit_events))
            .routes(routes!(aggregate_as_of))
            .routes(routes!(aggregate_changes))
            .routes(routes!(verify_chain))
            .routes(routes!(audit_public_key))
    }
}

#[derive(Serialize, ToSchema, Debug)]
pub struct AuditEvent {
    pub position: i64,
    #[schema(value_type = String, format = Uuid)]
    pub event_id: uuid::Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The event's sequence in its aggregate.
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub recorded_at: DateTime<Utc>,
    /// `{kind: "user", user_id, roles}`, `{kind: "system"}`, `{kind: "cli"}`, ...
    #[schema(value_type = Object)]
    pub actor: serde_json::Value,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub correlation_id: Option<uuid::Uuid>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub causation_id: Option<uuid::Uuid>,
}

impl AuditEvent {
    fn of(e: StoredEvent) -> Self {
        let meta = e.meta();
        Self {
            position: e.position,
            event_id: e.event_id,
            aggregate_type: e.aggregate_type,
            aggregate_id: e.aggregate_id,
            sequence: e.sequence,
            event_type: e.event_type,
            event_version: e.event_version,
            payload: e.payload,
            recorded_at: e.recorded_at,
            actor: serde_json::to_value(meta.actor).unwrap_or_default(),
            correlation_id: meta.correlation_id,
            causation_id: meta.causation_id,
        }
    }
}

#[derive(Serialize, ToSchema, Debug)]
pub struct AuditPage {
    /// Oldest first.
    pub items: Vec<AuditEvent>,
    /// Pass as `from_position` for the next page; absent at the end.
    pub next_from_position: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// Events after this position (default 0: from the start).
    #[param(minimum = 0)]
    pub from_position: Option<i64>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    #[param(max_length = 100)]
    pub aggregate_type: Option<String>,
    #[param(max_length = 200)]
    pub aggregate_id: Option<String>,
    /// A user id, or `system`, `cli`, `telegram`, `anonymous`.
    #[param(max_length = 100)]
    pub actor: Option<String>,
    /// Recorded at or after this instant.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<DateTime<FixedOffset>>,
    /// Recorded before this instant.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<DateTime<FixedOffset>>,
    #[param(max_length = 100)]
    pub event_type: Option<String>,
}

fn actor_matches(actor: &Actor, wanted: &str) -> bool {
    match actor {
        Actor::User { user_id, .. } => user_id.to_string() == wanted,
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(|k| k == wanted))
            .unwrap_or(false),
    }
}

/// Every event with its envelope, by position, narrowed by the filters.
#[utoipa::path(get, path = "/audit/events", tag = "audit", security(("bearer" = [])),
    params(FeedQuery),
    responses((status = 200, description = "A page of the log", body = AuditPage),
        Unauthorized, Forbidden, CommonProblems))]
pub(super) async fn audit_events(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<FeedQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = i64::from(query.limit.unwrap_or(100));
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_parameter("limit", "must be from 1 to 1000"));
    }
    for (name, value, max) in [
        ("aggregate_type", &query.aggregate_type, 100),
        ("aggregate_id", &query.aggregate_id, 200),
        ("actor", &query.actor, 100),
        ("event_type", &query.event_type, 100),
    ] {
        if value.as_ref().is_some_and(|v| v.chars().count() > max) {
            return Err(ApiError::bad_parameter(
                name,
                format!("must be at most {max} characters"),
            ));
        }
    }
    if query.from_position.is_some_and(|p| p < 0) {
        return Err(ApiError::bad_parameter(
            "from_position",
            "must not be negative",
        ));
    }
    let filter = FeedFilter {
        aggregate_type: query.aggregate_type,
        aggregate_id: query.aggregate_id,
        event_type: query.event_type,
        from: query.from.map(|t| t.with_timezone(&Utc)),
        to: query.to.map(|t| t.with_timezone(&Utc)),
    };
    let mut after = query.from_position.unwrap_or(0);
    let mut items = Vec::new();
    // The actor is in the metadata: filtered here, over a bounded scan.
    let mut more = true;
    for _ in 0..20 {
        let events = app.platform.log.feed(after, limit, &filter).await?;
        let full = events.len() as i64 == limit;
        for event in events {
            after = event.position;
            let keep = query
                .actor
                .as_deref()
                .is_none_or(|a| actor_matches(&event.meta().actor, a));
            if keep {
                items.push(AuditEvent::of(event));
                if items.len() as i64 == limit {
                    break;
                }
            }
        }
        more = full;
        if !full || items.len() as i64 == limit {
            break;
        }
    }
    Ok(Json(AuditPage {
        items,
        next_from_position: more.then_some(after),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOfQuery {
    /// The state as the events recorded up to this instant left it
    /// (default: now).
    #[param(value_type = Option<String>, format = DateTime)]
    pub as_of: Option<DateTime<FixedOffset>>,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct AggregateAsOf {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub as_of: DateTime<Utc>,
    /// Its version then (0: it did not exist yet).
    pub version: i64,
    /// Its state then, as the domain folds it.
    #[schema(value_type = Object)]
    pub state: serde_json::Value,
    /// The events it was folded from.
    pub events: Vec<AuditEvent>,
}

async fn events_of(
    app: &AppState,
    aggregate_type: &str,
    id: &str,
) -> Result<(states::Fold, Vec<StoredEvent>), ApiError> {
    let Some(fold) = states::fold_of(aggregate_type) else {
        return Err(ApiError::not_found(format!(
            "no aggregate type '{aggregate_type}'; known: {}",
            states::types().join(", ")
        )));
    };
    let events = app
        .platform
        .log
        .aggregate_history(aggregate_type, id)
        .await?;
    if events.is_empty() {
        return Err(ApiError::not_found("no such aggregate"));
    }
    Ok((fold, events))
}

/// An aggregate's state and version as of an instant, rebuilt from its
/// events with the domain's own fold.
#[utoipa::path(get, path = "/audit/aggregates/{type}/{id}", tag = "audit", security(("bearer" = [])),
    params(("type" = String, Path, description = "The aggregate type (`appointment`, `order`, ...)"),
        ("id" = String, Path, description = "The aggregate's id"), AsOfQuery),
    responses((status = 200, description = "The state then", body = AggregateAsOf),
        Unauthorized, Forbidden, NotFound, CommonProblems))]
pub(super) async fn aggregate_as_of(
    State(app): State<AppState>,
    Path((aggregate_type, id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<AsOfQuery>,
) -> Result<Json<AggregateAsOf>, ApiError> {
    let (fold, events) = events_of(&app, &aggregate_type, &id).await?;
    let as_of = query
        .as_of
        .map_or_else(|| app.platform.clock.now(), |t| t.with_timezone(&Utc));
    let then: Vec<StoredEvent> = events
        .into_iter()
        .take_while(|e| e.recorded_at <= as_of)
        .collect();
    let state = fold(&then, false)
        .map_err(ApiError::internal)?
        .pop()
        .unwrap_or_default();
    Ok(Json(AggregateAsOf {
        version: then.last().map_or(0, |e| e.sequence),
        aggregate_type,
        aggregate_id: id,
        as_of,
        state,
        events: then.into_iter().map(AuditEvent::of).collect(),
    }))
}

#[derive(Serialize, ToSchema, Debug)]
pub struct Change {
    pub position: i64,
    pub version: i64,
    pub recorded_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub actor: serde_json::Value,
    pub event_type: String,
    /// The fields of the state this event changed: `{field: {from, to}}`.
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
}

/// Who changed what, when: each event with the fields of the state it
/// changed (before and after).
#[utoipa::path(get, path = "/audit/aggregates/{type}/{id}/history", tag = "audit", security(("bearer" = [])),
    params(("type" = String, Path, description = "The aggregate type"),
        ("id" = String, Path, description = "The aggregate's id")),
    responses((status = 200, description = "Oldest first", body = Vec<Change>),
        Unauthorized, Forbidden, NotFound, CommonProblems))]
pub(super) async fn aggregate_changes(
    State(app): State<AppState>,
    Path((aggregate_type, id)): Path<(String, String)>,
) -> Result<Json<Vec<Change>>, ApiError> {
    let (fold, events) = events_of(&app, &aggregate_type, &id).await?;
    let states = fold(&events, true).map_err(ApiError::internal)?;
    let out = events
        .iter()
        .zip(states.windows(2))
        .map(|(event, pair)| Change {
            position: event.position,
            version: event.sequence,
            recorded_at: event.recorded_at,
            actor: serde_json::to_value(event.meta().actor).unwrap_or_default(),
            event_type: event.event_type.clone(),
            changes: diff(&pair[0], &pair[1]),
        })
        .collect();
    Ok(Json(out))
}

/// The top-level fields that differ: `{field: {from, to}}`.
fn diff(before: &serde_json::Value, after: &serde_json::Value) -> serde_json::Value {
    let empty = serde_json::Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut out = serde_json::Map::new();
    for (key, value) in a {
        let old = b.get(key).cloned().unwrap_or(serde_json::Value::Null);
        if &old != value {
            out.insert(key.clone(), serde_json::json!({"from": old, "to": value}));
        }
    }
    serde_json::Value::Object(out)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// The first position to check (default 1).
    #[param(minimum = 1)]
    pub from: Option<i64>,
    /// The last position to check (default: the last sealed).
    #[param(minimum = 1)]
    pub to: Option<i64>,
}

/// Recompute the hash chain from the stored events and check every signed
/// checkpoint: always 200, `ok: false` naming the first bad position.
#[utoipa::path(get, path = "/audit/verify", tag = "audit", security(("bearer" = [])),
    params(VerifyQuery),
    responses((status = 200, description = "The outcome", body = Verification),
        Unauthorized, Forbidden, CommonProblems))]
pub(super) async fn verify_chain(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<VerifyQuery>,
) -> Result<Json<Verification>, ApiError> {
    for (name, value) in [("from", query.from), ("to", query.to)] {
        if value.is_some_and(|v| v < 1) {
            return Err(ApiError::bad_parameter(name, "must be 1 or more"));
        }
    }
    let mut conn = app
        .platform
        .db
        .any
        .acquire()
        .await
        .map_err(anyhow::Error::from)?;
    let key = app.platform.audit_key.verifying_key();
    let report = audit::verify(&mut conn, &key, query.from, query.to)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(report))
}

#[derive(Serialize, ToSchema, Debug)]
pub struct PublicKey {
    /// `ed25519`.
    pub algorithm: String,
    /// The 32-byte public key, hex.
    pub public_key: String,
}

/// The key the chain's checkpoints are signed with (to check an export
/// offline).
#[utoipa::path(get, path = "/audit/public-key", tag = "audit", security(("bearer" = [])),
    responses((status = 200, description = "The key", body = PublicKey),
        Unauthorized, Forbidden, CommonProblems))]
pub(super) async fn audit_public_key(State(app): State<AppState>) -> Json<PublicKey> {
    Json(PublicKey {
        algorithm: "ed25519".into(),
        public_key: hex::encode(app.platform.audit_key.verifying_key().to_bytes()),
    })
}
