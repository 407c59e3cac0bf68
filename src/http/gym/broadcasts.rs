//! Broadcasts: a text to the active clients, all clients or a group,
//! delivered through the bot; and how its delivery stands.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use annals_domain::gym::broadcast::Broadcast;

use super::super::command::{reply, IdempotencyParams};
use super::super::error::{Forbidden, NotFound, Unauthorized};
use super::super::extract::path_uuid;
use super::super::{
    ApiError, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders, CommandProblems,
    CommonProblems, JsonBody,
};
use crate::app::gym::{self as workflows, Audience};
use crate::app::Done;
use crate::notifier::ledger;

/// The audience as it is read.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum AudienceBody {
    Named(String),
    Group { group_id: Uuid },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastRequest {
    pub audience: AudienceBody,
    pub text: String,
}

/// `active` (clients active today) or `all` (every client with a subscription).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum NamedAudience {
    Active,
    All,
}

/// A group's members.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct GroupAudience {
    #[schema(value_type = String, format = Uuid)]
    group_id: Uuid,
}

/// Who a broadcast goes to.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum AudienceDoc {
    Named(NamedAudience),
    Group(GroupAudience),
}

/// A broadcast, for the OpenAPI document.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"audience": "active", "text": "The studio is closed on Friday."})))]
#[allow(dead_code)]
pub struct BroadcastBody {
    audience: AudienceDoc,
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    text: String,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct BroadcastSentView {
    #[serde(flatten)]
    pub accepted: CommandAccepted,
    /// How many the audience named when it was sent.
    pub recipients: usize,
}

/// Send a broadcast: the audience is resolved now and kept with it; the bot
/// delivers it to each recipient with a linked chat, once.
#[utoipa::path(post, path = "/broadcasts", tag = "studio", security(("bearer" = [])),
    request_body = BroadcastBody, params(IdempotencyParams),
    responses((status = 201, description = "Sent", body = BroadcastSentView,
            headers(("Location" = String, description = "/api/v1/broadcasts/{id}"))),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn send(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<BroadcastRequest>,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(caller, headers, "POST", "/broadcasts", body.digest);
    let request = body.value;
    let audience = match request.audience {
        AudienceBody::Named(name) if name == "active" => Audience::Active,
        AudienceBody::Named(name) if name == "all" => Audience::All,
        AudienceBody::Named(_) => {
            return Err(ApiError::invalid_field(
                "audience",
                "must be \"active\", \"all\" or {\"group_id\": ...}",
            ))
        }
        AudienceBody::Group { group_id } => Audience::Group(group_id),
    };
    let done = workflows::broadcast(&app.platform, &call.context(), audience, request.text).await;
    let location = done
        .as_ref()
        .ok()
        .map(|d| format!("/api/v1/broadcasts/{}", d.id));
    let mut response = reply(StatusCode::CREATED, done, |d: &Done<usize>| {
        BroadcastSentView {
            accepted: CommandAccepted::of(d),
            recipients: d.value,
        }
    });
    if let Some(value) = location.and_then(|l| axum::http::HeaderValue::from_str(&l).ok()) {
        response
            .headers_mut()
            .insert(axum::http::header::LOCATION, value);
    }
    Ok(response)
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct BroadcastView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    /// `active`, `all` or `group:<id>`.
    pub audience: String,
    pub text: String,
    /// Named by the audience when it was sent.
    pub recipients: usize,
    /// Without a linked chat then: not reachable through the bot.
    pub unreachable: usize,
    pub delivered: i64,
    /// Telegram refused (the bot blocked, the chat gone).
    pub refused: i64,
    /// Not delivered yet (on their way, retrying, or parked).
    pub pending: i64,
}

/// How a broadcast's delivery stands.
#[utoipa::path(get, path = "/broadcasts/{id}", tag = "studio", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The broadcast")),
    responses((status = 200, description = "The broadcast and its delivery", body = BroadcastView),
        NotFound, Unauthorized, Forbidden, CommonProblems))]
pub(super) async fn get_broadcast(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<BroadcastView>, ApiError> {
    let id = path_uuid("id", &id)?;
    // Read from its stream: the recipients are the event's, once written.
    let (broadcast, _) = app
        .platform
        .commands
        .load::<Broadcast>(&id.to_string())
        .await?;
    let Some(audience) = broadcast.audience else {
        return Err(ApiError::not_found("no such broadcast"));
    };
    let reachable = broadcast
        .recipients
        .iter()
        .filter(|r| r.chat_id.is_some())
        .count();
    let (delivered, refused, on_the_way) = ledger::cause_counts(
        &app.platform.db.any,
        &ledger::broadcast_cause(&id.to_string()),
    )
    .await?;
    let recorded = delivered + refused + on_the_way;
    Ok(Json(BroadcastView {
        id,
        audience,
        text: broadcast.text,
        recipients: broadcast.recipients.len(),
        unreachable: broadcast.recipients.len() - reachable,
        delivered,
        refused,
        pending: on_the_way + (reachable as i64 - recorded).max(0),
    }))
}
