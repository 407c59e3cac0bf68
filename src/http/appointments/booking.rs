//! Appointments: booking, the appointment's life, lists and history.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use annals_domain::appointment::{Appointment, Booking};
use annals_domain::user::Role;
use annals_projections::appointments::queries::{self, AppointmentFilter, AppointmentRow};
use annals_projections::appointments::APPOINTMENTS;

use super::super::command::{accepted, created, reply, CommandHeaderParams, IdempotencyParams};
use super::super::error::ReadProblems;
use super::super::history::HistoryEntry;
use super::super::{
    ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommonProblems, JsonBody,
};
use super::{path_id, principal, ReadQuery};
use crate::app::appointments::{self as workflows, BookInput, Placed, Processing, RescheduleInput};
use crate::app::Done;
use crate::auth::Principal;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"service_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "start": "2026-05-04T10:00:00+02:00", "note": "first visit"})))]
pub struct BookRequest {
    #[schema(value_type = String, format = Uuid)]
    pub service_id: Uuid,
    /// Omit for any master who is free.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub master_id: Option<Uuid>,
    /// RFC 3339 with offset.
    #[schema(value_type = String, format = DateTime)]
    pub start: DateTime<Utc>,
    /// Staff booking for a client; clients book for themselves.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub client_id: Option<Uuid>,
    #[schema(max_length = 2000)]
    pub note: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BookedView {
    #[serde(flatten)]
    pub accepted: CommandAccepted,
    #[schema(example = "booked")]
    pub status: String,
    #[schema(value_type = String, format = Uuid)]
    pub master_id: Uuid,
    #[schema(value_type = String, format = DateTime)]
    pub start: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub end: DateTime<Utc>,
}

impl BookedView {
    fn of(done: &Done<Placed>) -> Self {
        Self {
            accepted: CommandAccepted::of(done),
            status: done.value.status.clone(),
            master_id: done.value.master_id,
            start: done.value.start,
            end: done.value.end,
        }
    }
}

/// Book an appointment. A taken slot is 409; with no master named, any
/// free master who performs the service is chosen.
#[utoipa::path(post, path = "/appointments", tag = "appointments", security(("bearer" = [])),
    request_body = BookRequest, params(IdempotencyParams),
    responses((status = 201, description = "Booked", body = BookedView,
            headers(("Location" = String, description = "The appointment: /api/v1/appointments/{id}"))),
        super::super::error::Unauthorized,
        super::super::error::Forbidden,
        super::super::error::NotFound,
        CommonProblems, CommandProblems))]
pub(super) async fn book(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<BookRequest>,
) -> Result<Response, ApiError> {
    let me = principal(&caller)?;
    let call = CommandCall::new(caller, headers, "POST", "/appointments", body.digest);
    let request = body.value;
    let input = BookInput {
        service_id: request.service_id,
        master_id: request.master_id,
        start: request.start,
        client_id: request.client_id,
        note: request.note,
    };
    let done = workflows::book(&app.platform, &call.context(), &me, input).await;
    Ok(created("/appointments", done, BookedView::of))
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq, Clone)]
pub struct AppointmentView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub client_id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub master_id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub service_id: Uuid,
    #[schema(value_type = String, format = DateTime)]
    pub start: String,
    #[schema(value_type = String, format = DateTime)]
    pub end: String,
    #[schema(example = "booked")]
    pub status: String,
    #[schema(example = "25.00")]
    pub price: String,
    pub currency: String,
    pub note: Option<String>,
    pub version: i64,
    /// Display names next to the ids (null until the read model knows them).
    #[schema(example = "Ada Lovelace")]
    pub client_name: Option<String>,
    #[schema(example = "Mia Kovač")]
    pub master_name: Option<String>,
    #[schema(example = "Haircut")]
    pub service_name: Option<String>,
}

impl From<AppointmentRow> for AppointmentView {
    fn from(row: AppointmentRow) -> Self {
        Self {
            id: row.id,
            client_id: row.client_id,
            master_id: row.master_id,
            service_id: row.service_id,
            start: row.start,
            end: row.end,
            status: row.status,
            price: row.price,
            currency: row.currency,
            note: row.note,
            version: row.version,
            client_name: row.client_name,
            master_name: row.master_name,
            service_name: row.service_name,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AppointmentListQuery {
    /// Appointments starting at or after this instant.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<DateTime<Utc>>,
    /// Appointments starting before this instant.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<DateTime<Utc>>,
    pub master_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    #[param(pattern = "^(booked|confirmed|cancelled|completed|no_show)$")]
    pub status: Option<String>,
    pub service_id: Option<Uuid>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    #[param(max_length = 200)]
    pub cursor: Option<String>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AppointmentPage {
    pub items: Vec<AppointmentView>,
    pub next_cursor: Option<String>,
}

/// Appointments by start time: staff see all, masters their own, clients their own.
#[utoipa::path(get, path = "/appointments", tag = "appointments", security(("bearer" = [])), params(AppointmentListQuery),
    responses((status = 200, description = "A page of appointments", body = AppointmentPage),
        super::super::error::Unauthorized,
        CommonProblems, ReadProblems))]
pub(super) async fn list_appointments(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AppointmentListQuery>,
) -> Result<Json<AppointmentPage>, ApiError> {
    let me = principal(&caller)?;
    app.platform
        .wait_for(APPOINTMENTS, query.min_position)
        .await?;
    let limit = super::super::page::window(query.limit, query.cursor.as_deref(), 200)?;
    if let Some(status) = &query.status {
        if !["booked", "confirmed", "cancelled", "completed", "no_show"].contains(&status.as_str())
        {
            return Err(ApiError::bad_parameter(
                "status",
                "must be booked, confirmed, cancelled, completed or no_show",
            ));
        }
    }
    // Who may see what narrows the filters.
    let (client, master) = if workflows::is_staff(&me) {
        (query.client_id, query.master_id)
    } else if me.has(Role::Master) && query.client_id != Some(me.user_id) {
        (query.client_id, Some(me.user_id))
    } else {
        (Some(me.user_id), query.master_id)
    };
    let after = query
        .cursor
        .as_deref()
        .and_then(|c| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let filter = AppointmentFilter {
        client_id: client,
        master_id: master,
        status: query.status,
        service_id: query.service_id,
        from: query.from,
        to: query.to,
        after,
        limit: i64::from(limit) + 1,
    };
    let mut items: Vec<AppointmentView> = queries::appointments(&app.platform.db.any, &filter)
        .await?
        .into_iter()
        .map(AppointmentView::from)
        .collect();
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|a| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}|{}", a.start, a.id))
        })
    } else {
        None
    };
    Ok(Json(AppointmentPage { items, next_cursor }))
}

async fn visible_appointment(
    app: &AppState,
    me: &Principal,
    id: Uuid,
) -> Result<AppointmentView, ApiError> {
    queries::appointment(&app.platform.db.any, id)
        .await?
        .filter(|a| workflows::visible(me, a.client_id, a.master_id))
        .map(AppointmentView::from)
        .ok_or_else(|| ApiError::not_found("no such appointment"))
}

/// One appointment (404 if it is not yours to see).
#[utoipa::path(get, path = "/appointments/{id}", tag = "appointments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The appointment"), ReadQuery),
    responses((status = 200, description = "The appointment", body = AppointmentView),
        super::super::error::Unauthorized,
        super::super::error::NotFound,
        CommonProblems, ReadProblems))]
pub(super) async fn get_appointment(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<AppointmentView>, ApiError> {
    let me = principal(&caller)?;
    let id = path_id(&id)?;
    app.platform
        .wait_for(APPOINTMENTS, query.min_position)
        .await?;
    Ok(Json(visible_appointment(&app, &me, id).await?))
}

/// Every event of an appointment, with who and when.
#[utoipa::path(get, path = "/appointments/{id}/history", tag = "appointments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The appointment")),
    responses((status = 200, description = "Oldest first", body = Vec<HistoryEntry>),
        super::super::error::Unauthorized,
        super::super::error::NotFound,
        CommonProblems))]
pub(super) async fn appointment_history(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let me = principal(&caller)?;
    let id = path_id(&id)?;
    let events = app
        .platform
        .log
        .aggregate_history(<Appointment as cqrs_es::Aggregate>::TYPE, &id.to_string())
        .await?;
    let Some(first) = events.first() else {
        return Err(ApiError::not_found("no such appointment"));
    };
    let booked: Booking =
        serde_json::from_value(first.payload_body().clone()).map_err(ApiError::internal)?;
    if !workflows::visible(&me, booked.client_id, booked.master_id) {
        return Err(ApiError::not_found("no such appointment"));
    }
    Ok(Json(events.iter().map(HistoryEntry::of).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"reason": "I am ill"})))]
pub struct CancelRequest {
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"start": "2026-05-04T15:00:00+02:00"})))]
pub struct RescheduleRequest {
    #[schema(value_type = String, format = DateTime)]
    pub start: DateTime<Utc>,
    /// Another master (default: the same).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub master_id: Option<Uuid>,
}

/// Cancel (owner or staff, with a reason). A client may cancel until the
/// cancellation notice before the start (see the README for bookings made
/// inside that notice); the time is given back in the same commit.
#[utoipa::path(post, path = "/appointments/{id}/cancel", tag = "appointments", security(("bearer" = [])),
    request_body = CancelRequest, params(("id" = Uuid, Path, description = "The appointment"), CommandHeaderParams),
    responses((status = 200, description = "Cancelled; the time is free again", body = CommandAccepted),
        super::super::error::Unauthorized,
        super::super::error::NotFound,
        CommonProblems, CommandProblems))]
pub(super) async fn cancel(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: CommandHeaders,
    body: JsonBody<CancelRequest>,
) -> Result<Response, ApiError> {
    let me = principal(&caller)?;
    let path = format!("/appointments/{id}/cancel");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_id(&id)?;
    let done = workflows::cancel(&app.platform, &call.context(), &me, id, body.value.reason).await;
    Ok(accepted(StatusCode::OK, done))
}

/// Move to a new start (and optionally another master); the same checks as
/// booking, and for a client the same notice as cancelling. The appointment
/// keeps its id; the history records from and to.
#[utoipa::path(post, path = "/appointments/{id}/reschedule", tag = "appointments", security(("bearer" = [])),
    request_body = RescheduleRequest, params(("id" = Uuid, Path, description = "The appointment"), CommandHeaderParams),
    responses((status = 200, description = "Rescheduled", body = BookedView),
        super::super::error::Unauthorized,
        super::super::error::NotFound,
        CommonProblems, CommandProblems))]
pub(super) async fn reschedule(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: CommandHeaders,
    body: JsonBody<RescheduleRequest>,
) -> Result<Response, ApiError> {
    let me = principal(&caller)?;
    let path = format!("/appointments/{id}/reschedule");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_id(&id)?;
    let input = RescheduleInput {
        start: body.value.start,
        master_id: body.value.master_id,
    };
    let done = workflows::reschedule(&app.platform, &call.context(), &me, id, input).await;
    Ok(reply(StatusCode::OK, done, BookedView::of))
}

async fn process(
    app: AppState,
    caller: Caller,
    headers: CommandHeaders,
    id: String,
    action: &str,
    step: Processing,
) -> Result<Response, ApiError> {
    let me = principal(&caller)?;
    let path = format!("/appointments/{id}/{action}");
    let call = CommandCall::new(caller, headers, "POST", &path, String::new());
    let id = path_id(&id)?;
    let done = workflows::process(&app.platform, &call.context(), &me, id, step).await;
    Ok(accepted(StatusCode::OK, done))
}

/// Confirm a booked appointment (staff; masters their own).
#[utoipa::path(post, path = "/appointments/{id}/confirm", tag = "appointments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The appointment"), CommandHeaderParams),
    responses((status = 200, description = "Confirmed", body = CommandAccepted),
        super::super::error::Unauthorized,
        super::super::error::Forbidden,
        super::super::error::NotFound,
        CommonProblems, CommandProblems))]
pub(super) async fn confirm(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    process(app, caller, headers, id, "confirm", Processing::Confirm).await
}

/// Mark a confirmed appointment completed, once it has started (staff;
/// masters their own).
#[utoipa::path(post, path = "/appointments/{id}/complete", tag = "appointments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The appointment"), CommandHeaderParams),
    responses((status = 200, description = "Completed", body = CommandAccepted),
        super::super::error::Unauthorized,
        super::super::error::Forbidden,
        super::super::error::NotFound,
        CommonProblems, CommandProblems))]
pub(super) async fn complete(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    process(app, caller, headers, id, "complete", Processing::Complete).await
}

/// Mark a confirmed appointment as a no-show, once it has started (staff;
/// masters their own).
#[utoipa::path(post, path = "/appointments/{id}/no-show", tag = "appointments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The appointment"), CommandHeaderParams),
    responses((status = 200, description = "Marked", body = CommandAccepted),
        super::super::error::Unauthorized,
        super::super::error::Forbidden,
        super::super::error::NotFound,
        CommonProblems, CommandProblems))]
pub(super) async fn no_show(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    process(app, caller, headers, id, "no-show", Processing::MarkNoShow).await
}
