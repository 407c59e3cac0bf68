//! Groups and trainings: invitations, answers, the meeting link and
//! attendance.

use super::super::page::ReadQuery;
use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use annals_domain::gym::training::{GroupCommand, Session, TrainingCommand};
use annals_domain::user::Role;
use annals_projections::appointments::timestamp;
use annals_projections::gym::queries::{self, GroupRow, TrainingRow};
use annals_projections::gym::TRAININGS;

use super::super::command::{accepted, created, CommandHeaderParams, IdempotencyParams};
use super::super::error::{Forbidden, NotFound, ReadProblems, Unauthorized};
use super::super::extract::path_uuid;
use super::super::page::{by_name, page, ListQuery, Page};
use super::super::{
    ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommonProblems, JsonBody,
};
use crate::app::gym::{self as workflows, is_studio_staff};
use crate::auth::Principal;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Morning strength", "coach_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "capacity": 12, "member_ids": []})))]
pub struct GroupRequest {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// A user with the `master` role.
    #[schema(value_type = String, format = Uuid)]
    pub coach_id: Uuid,
    #[schema(minimum = 1, maximum = 500)]
    pub capacity: u32,
    #[serde(default)]
    #[schema(max_items = 500)]
    pub member_ids: BTreeSet<Uuid>,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct GroupView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = String, format = Uuid)]
    pub coach_id: Uuid,
    pub capacity: i64,
    pub member_ids: Vec<Uuid>,
    pub version: i64,
}

impl From<GroupRow> for GroupView {
    fn from(row: GroupRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            coach_id: row.coach_id,
            capacity: row.capacity,
            member_ids: row.member_ids,
            version: row.version,
        }
    }
}

/// Create a group.
#[utoipa::path(post, path = "/groups", tag = "studio", security(("bearer" = [])),
    request_body = GroupRequest, params(IdempotencyParams),
    responses((status = 201, description = "Created", body = CommandAccepted,
            headers(("Location" = String, description = "/api/v1/groups/{id}"))),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn create_group(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<GroupRequest>,
) -> Response {
    let call = CommandCall::new(caller, headers, "POST", "/groups", body.digest);
    let request = body.value;
    let command = GroupCommand::Create {
        name: request.name,
        coach_id: request.coach_id,
        capacity: request.capacity,
        member_ids: request.member_ids,
    };
    let done = workflows::create_group(&app.platform, &call.context(), command).await;
    created("/groups", done, CommandAccepted::of)
}

/// Groups, by name.
#[utoipa::path(get, path = "/groups", tag = "studio", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, description = "A page of groups", body = Page<GroupView>),
        Unauthorized, Forbidden, CommonProblems, ReadProblems))]
pub(super) async fn list_groups(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<GroupView>>, ApiError> {
    app.platform.wait_for(TRAININGS, query.min_position).await?;
    let groups = queries::groups(&app.platform.db.any)
        .await?
        .into_iter()
        .map(GroupView::from)
        .collect();
    Ok(Json(page(
        groups,
        |g| by_name(&g.name, &g.id),
        query.limit,
        query.cursor.as_deref(),
    )?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"member_ids": ["0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f"]})))]
pub struct MembersRequest {
    /// The members from now on (at most the capacity).
    #[schema(max_items = 500)]
    pub member_ids: BTreeSet<Uuid>,
}

/// Replace a group's members.
#[utoipa::path(put, path = "/groups/{id}/members", tag = "studio", security(("bearer" = [])),
    request_body = MembersRequest, params(("id" = Uuid, Path, description = "The group"), CommandHeaderParams),
    responses((status = 200, description = "Set", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn set_members(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<MembersRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/groups/{id}/members");
    let call = CommandCall::new(caller, headers, "PUT", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let done =
        workflows::set_members(&app.platform, &call.context(), id, body.value.member_ids).await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"coach_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "start": "2026-12-10T18:00:00+01:00", "duration_minutes": 60, "capacity": 12, "location": "Hall A"})))]
pub struct TrainingRequest {
    /// The group it is for (or none: open).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub group_id: Option<Uuid>,
    #[schema(value_type = String, format = Uuid)]
    pub coach_id: Uuid,
    #[schema(value_type = String, format = DateTime)]
    pub start: DateTime<chrono::FixedOffset>,
    #[schema(minimum = 5, maximum = 720)]
    pub duration_minutes: u32,
    /// How many may accept.
    #[schema(minimum = 1, maximum = 500)]
    pub capacity: u32,
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub location: Option<String>,
}

/// Schedule a training.
#[utoipa::path(post, path = "/trainings", tag = "studio", security(("bearer" = [])),
    request_body = TrainingRequest, params(IdempotencyParams),
    responses((status = 201, description = "Scheduled", body = CommandAccepted,
            headers(("Location" = String, description = "/api/v1/trainings/{id}"))),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn schedule(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<TrainingRequest>,
) -> Response {
    let call = CommandCall::new(caller, headers, "POST", "/trainings", body.digest);
    let request = body.value;
    let session = Session {
        group_id: request.group_id,
        coach_id: request.coach_id,
        start: request.start.with_timezone(&Utc),
        duration_minutes: request.duration_minutes,
        capacity: request.capacity,
        location: request.location.map(|l| l.trim().to_string()),
    };
    let done = workflows::schedule_training(&app.platform, &call.context(), session).await;
    created("/trainings", done, CommandAccepted::of)
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct InvitationView {
    #[schema(value_type = String, format = Uuid)]
    pub client_id: Uuid,
    /// `invited`, `accepted`, `declined`, `attended` or `absent`.
    pub status: String,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct TrainingView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub group_id: Option<Uuid>,
    #[schema(value_type = String, format = Uuid)]
    pub coach_id: Uuid,
    #[schema(value_type = String, format = DateTime)]
    pub start: DateTime<Utc>,
    pub duration_minutes: u32,
    pub capacity: u32,
    pub location: Option<String>,
    /// The meeting link (staff, the coach and those who accepted).
    pub link: Option<String>,
    /// Everyone invited (staff and the coach); a client sees only their own.
    pub invitations: Vec<InvitationView>,
    pub version: i64,
}

/// Staff, the training's coach, or one of its invitees sees it.
fn training_view(row: TrainingRow, me: &Principal) -> Option<TrainingView> {
    let session = row.state.session.clone()?;
    let insider = is_studio_staff(me) || (me.has(Role::Master) && session.coach_id == me.user_id);
    let mine = row.state.invitations.get(&me.user_id).copied();
    if !insider && mine.is_none() {
        return None;
    }
    let accepted = row.state.accepted().any(|c| c == me.user_id);
    Some(TrainingView {
        id: row.id,
        group_id: session.group_id,
        coach_id: session.coach_id,
        start: session.start,
        duration_minutes: session.duration_minutes,
        capacity: session.capacity,
        location: session.location,
        link: row.state.link.clone().filter(|_| insider || accepted),
        invitations: row
            .state
            .invitations
            .iter()
            .filter(|(client, _)| insider || **client == me.user_id)
            .map(|(client, status)| InvitationView {
                client_id: *client,
                status: status.as_str().to_string(),
            })
            .collect(),
        version: row.version,
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrainingListQuery {
    /// Starting at or after.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<DateTime<chrono::FixedOffset>>,
    /// Starting before.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<DateTime<chrono::FixedOffset>>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

/// Trainings by start: staff and coaches see all, clients those they are
/// invited to.
#[utoipa::path(get, path = "/trainings", tag = "studio", security(("bearer" = [])), params(TrainingListQuery),
    responses((status = 200, description = "By start", body = Vec<TrainingView>),
        Unauthorized, CommonProblems, ReadProblems))]
pub(super) async fn list_trainings(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<TrainingListQuery>,
) -> Result<Json<Vec<TrainingView>>, ApiError> {
    let me = caller.principal()?.clone();
    app.platform.wait_for(TRAININGS, query.min_position).await?;
    let from = query
        .from
        .map(|t| timestamp(t.with_timezone(&Utc)))
        .unwrap_or_default();
    let to = query
        .to
        .map(|t| timestamp(t.with_timezone(&Utc)))
        .unwrap_or_default();
    Ok(Json(
        queries::trainings(&app.platform.db.any, &from, &to)
            .await?
            .into_iter()
            .filter_map(|row| training_view(row, &me))
            .collect(),
    ))
}

/// One training.
#[utoipa::path(get, path = "/trainings/{id}", tag = "studio", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The training"), ReadQuery),
    responses((status = 200, description = "The training", body = TrainingView),
        Unauthorized, NotFound, CommonProblems, ReadProblems))]
pub(super) async fn get_training(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<TrainingView>, ApiError> {
    let me = caller.principal()?.clone();
    let id = path_uuid("id", &id)?;
    app.platform.wait_for(TRAININGS, query.min_position).await?;
    queries::training(&app.platform.db.any, id)
        .await?
        .and_then(|row| training_view(row, &me))
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such training"))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"client_ids": ["0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f"]})))]
pub struct InviteRequest {
    #[serde(default)]
    #[schema(max_items = 500)]
    pub client_ids: BTreeSet<Uuid>,
    /// Invite a group's members (as they are now).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub group_id: Option<Uuid>,
}

/// Invite clients (chosen ones, or a group's members); someone invited
/// already is not invited again.
#[utoipa::path(post, path = "/trainings/{id}/invitations", tag = "studio", security(("bearer" = [])),
    request_body = InviteRequest, params(("id" = Uuid, Path, description = "The training"), CommandHeaderParams),
    responses((status = 200, description = "Invited", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn invite(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<InviteRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/trainings/{id}/invitations");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let request = body.value;
    let done = workflows::invite(
        &app.platform,
        &call.context(),
        id,
        request.client_ids,
        request.group_id,
    )
    .await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"accept": true})))]
pub struct RespondRequest {
    /// I'll come (true) or I can't (false).
    pub accept: bool,
}

/// Answer your invitation.
#[utoipa::path(post, path = "/trainings/{id}/respond", tag = "studio", security(("bearer" = [])),
    request_body = RespondRequest, params(("id" = Uuid, Path, description = "The training"), CommandHeaderParams),
    responses((status = 200, description = "Answered", body = CommandAccepted),
        NotFound, Unauthorized, CommonProblems, CommandProblems))]
pub(super) async fn respond(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<RespondRequest>,
) -> Result<Response, ApiError> {
    let me = caller.principal()?.user_id;
    let path = format!("/trainings/{id}/respond");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let command = TrainingCommand::Respond {
        client_id: me,
        accept: body.value.accept,
    };
    let done = workflows::training_command(&app.platform, &call.context(), id, command).await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"url": "https://meet.example.com/abc"})))]
pub struct LinkRequest {
    #[schema(max_length = 2000, pattern = r"^https?://\S*$")]
    pub url: String,
}

/// Set (or change) the meeting link; those who accepted see it.
#[utoipa::path(put, path = "/trainings/{id}/link", tag = "studio", security(("bearer" = [])),
    request_body = LinkRequest, params(("id" = Uuid, Path, description = "The training"), CommandHeaderParams),
    responses((status = 200, description = "Set", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn set_link(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<LinkRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/trainings/{id}/link");
    let call = CommandCall::new(caller, headers, "PUT", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let command = TrainingCommand::SetLink {
        url: body.value.url,
    };
    let done = workflows::training_command(&app.platform, &call.context(), id, command).await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"client_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "attended": true})))]
pub struct AttendanceRequest {
    #[schema(value_type = String, format = Uuid)]
    pub client_id: Uuid,
    pub attended: bool,
}

/// Record whether an invitee came (admin, manager, or the training's coach).
#[utoipa::path(post, path = "/trainings/{id}/attendance", tag = "studio", security(("bearer" = [])),
    request_body = AttendanceRequest, params(("id" = Uuid, Path, description = "The training"), CommandHeaderParams),
    responses((status = 200, description = "Recorded", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn attendance(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<AttendanceRequest>,
) -> Result<Response, ApiError> {
    let me = caller.principal()?.clone();
    let path = format!("/trainings/{id}/attendance");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_uuid("id", &id)?;
    if !me.has(Role::Admin) && !me.has(Role::Manager) {
        let coach = queries::training(&app.platform.db.any, id)
            .await?
            .and_then(|row| row.state.session.map(|s| s.coach_id));
        if coach != Some(me.user_id) {
            return Err(ApiError::not_found("no such training of yours"));
        }
    }
    let command = TrainingCommand::RecordAttendance {
        client_id: body.value.client_id,
        attended: body.value.attended,
    };
    let done = workflows::training_command(&app.platform, &call.context(), id, command).await;
    Ok(accepted(StatusCode::OK, done))
}
