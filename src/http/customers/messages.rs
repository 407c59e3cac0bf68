//! Scheduled messages to customers, and the due reminders for staff.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use annals_domain::message::{Channel, MessageCommand};
use annals_projections::billing::queries::{self, MessageRow};
use annals_projections::billing::BILLING;
use annals_projections::marketing::instant;

use super::super::command::{accepted, created, CommandHeaderParams, IdempotencyParams};
use super::super::error::{Forbidden, NotFound, ReadProblems, Unauthorized};
use super::super::extract::path_uuid;
use super::super::page::ReadQuery;
use super::super::{
    ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommonProblems, JsonBody,
};
use crate::app::customers as workflows;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"customer_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "channel": "sms", "content": "See you tomorrow at 10:00", "scheduled_at": "2026-12-02T09:00:00+01:00"})))]
pub struct MessageRequest {
    #[schema(value_type = String, format = Uuid)]
    pub customer_id: Uuid,
    /// `sms` and `whatsapp` go to the customer's phone; `telegram` to the
    /// chat of the customer's linked user.
    pub channel: ChannelName,
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    pub content: String,
    #[schema(value_type = String, format = DateTime)]
    pub scheduled_at: DateTime<FixedOffset>,
}

/// How a message goes.
#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum ChannelName {
    Sms,
    Whatsapp,
    Telegram,
}

/// Schedule a message: sent once when due (see the README, "Scheduled
/// messages").
#[utoipa::path(post, path = "/scheduled-messages", tag = "customers", security(("bearer" = [])),
    request_body = MessageRequest, params(IdempotencyParams),
    responses((status = 201, description = "Scheduled", body = CommandAccepted,
            headers(("Location" = String, description = "The message: /api/v1/scheduled-messages/{id}"))),
        CommonProblems, CommandProblems, Unauthorized, Forbidden, NotFound))]
pub(super) async fn schedule_message(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<MessageRequest>,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(caller, headers, "POST", "/scheduled-messages", body.digest);
    let r = body.value;
    let channel = match r.channel {
        ChannelName::Sms => Channel::Sms,
        ChannelName::Whatsapp => Channel::Whatsapp,
        ChannelName::Telegram => Channel::Telegram,
    };
    let done = workflows::schedule_message(
        &app.platform,
        &call.context(),
        r.customer_id,
        channel,
        r.content,
        r.scheduled_at.with_timezone(&Utc),
    )
    .await;
    Ok(created("/scheduled-messages", done, CommandAccepted::of))
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct MessageView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub customer_id: Uuid,
    pub channel: String,
    /// The phone number or Telegram chat it goes to.
    pub to: String,
    pub content: String,
    pub scheduled_at: DateTime<Utc>,
    /// `scheduled`, `sent`, `failed` or `cancelled`.
    pub status: String,
    pub attempts: u32,
    /// The provider's last answer.
    pub last_answer: Option<String>,
    /// When the next try is due (after a failed one).
    pub retry_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub acknowledged_by: Option<Uuid>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub version: i64,
}

impl MessageView {
    pub fn of(row: MessageRow) -> Option<Self> {
        let plan = row.state.plan?;
        Some(Self {
            id: row.id,
            customer_id: plan.customer_id,
            channel: plan.channel.as_str().to_string(),
            to: plan.to,
            content: plan.content,
            scheduled_at: plan.scheduled_at,
            status: row.state.status.as_str().to_string(),
            attempts: row.state.attempts,
            last_answer: row.state.last_answer,
            retry_at: row.state.retry_at,
            acknowledged_by: row.state.acknowledged_by,
            acknowledged_at: row.state.acknowledged_at,
            version: row.version,
        })
    }
}

/// One scheduled message.
#[utoipa::path(get, path = "/scheduled-messages/{id}", tag = "customers", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The message"), ReadQuery),
    responses((status = 200, description = "The message", body = MessageView),
        Unauthorized, Forbidden, NotFound, CommonProblems, ReadProblems))]
pub(super) async fn get_message(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<MessageView>, ApiError> {
    let id = path_uuid("id", &id)?;
    app.platform.wait_for(BILLING, query.min_position).await?;
    queries::message(&app.platform.db.any, id)
        .await?
        .and_then(MessageView::of)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such message"))
}

/// Cancel a message not sent yet.
#[utoipa::path(post, path = "/scheduled-messages/{id}/cancel", tag = "customers", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The message"), CommandHeaderParams),
    responses((status = 200, description = "Cancelled", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn cancel_message(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let path = format!("/scheduled-messages/{id}/cancel");
    let call = CommandCall::new(caller, headers, "POST", &path, String::new());
    let id = path_uuid("id", &id)?;
    let done =
        workflows::message_command(&app.platform, &call.context(), id, MessageCommand::Cancel)
            .await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"scheduled_at": "2026-12-03T09:00:00+01:00"})))]
pub struct MessageRescheduleRequest {
    #[schema(value_type = String, format = DateTime)]
    pub scheduled_at: DateTime<FixedOffset>,
}

/// Move a message not sent yet to another time.
#[utoipa::path(post, path = "/scheduled-messages/{id}/reschedule", tag = "customers", security(("bearer" = [])),
    request_body = MessageRescheduleRequest,
    params(("id" = Uuid, Path, description = "The message"), CommandHeaderParams),
    responses((status = 200, description = "Rescheduled", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn reschedule_message(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<MessageRescheduleRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/scheduled-messages/{id}/reschedule");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let command = MessageCommand::Reschedule {
        at: body.value.scheduled_at.with_timezone(&Utc),
    };
    let done = workflows::message_command(&app.platform, &call.context(), id, command).await;
    Ok(accepted(StatusCode::OK, done))
}

/// Messages whose time has come (sent or not) that nobody has
/// acknowledged yet, oldest first.
#[utoipa::path(get, path = "/reminders/due", tag = "customers", security(("bearer" = [])),
    params(ReadQuery),
    responses((status = 200, description = "The due reminders", body = Vec<MessageView>),
        Unauthorized, Forbidden, CommonProblems, ReadProblems))]
pub(super) async fn due_reminders(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<Vec<MessageView>>, ApiError> {
    app.platform.wait_for(BILLING, query.min_position).await?;
    let now = instant(app.platform.clock.now());
    Ok(Json(
        queries::due_reminders(&app.platform.db.any, &now)
            .await?
            .into_iter()
            .filter_map(MessageView::of)
            .collect(),
    ))
}

/// Acknowledge a due reminder ("mark as done"): who and when are kept.
#[utoipa::path(post, path = "/reminders/{id}/acknowledge", tag = "customers", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The message"), CommandHeaderParams),
    responses((status = 200, description = "Acknowledged (or already)", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn acknowledge_reminder(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let by = caller.principal()?.user_id;
    let path = format!("/reminders/{id}/acknowledge");
    let call = CommandCall::new(caller, headers, "POST", &path, String::new());
    let id = path_uuid("id", &id)?;
    let command = MessageCommand::Acknowledge {
        by,
        at: app.platform.clock.now(),
    };
    let done = workflows::message_command(&app.platform, &call.context(), id, command).await;
    Ok(accepted(StatusCode::OK, done))
}
