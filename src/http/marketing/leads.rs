//! Leads: create (with duplicate detection), edit, start, lose, reopen,
//! notes and activities, assignment; lists, one lead, its history.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use annals_domain::marketing::lead::{Lead, LeadCommand, LeadInfo, Note, NoteKind};
use annals_domain::user::{Email, Phone};
use annals_domain::FieldError;
use annals_projections::marketing::queries::{self, LeadFilter, LeadRow};
use annals_projections::marketing::MARKETING;

use super::super::command::{accepted, created, CommandHeaderParams, IdempotencyParams};
use super::super::error::{Forbidden, NotFound, ReadProblems, Unauthorized};
use super::super::extract::{not_null, one_of, path_uuid};
use super::super::history::HistoryEntry;
use super::super::page::ReadQuery;
use super::super::page::{newest_first, page, Page};
use super::super::{
    ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommonProblems, JsonBody,
};
use super::campaigns::MarketingReasonRequest;
use crate::app::marketing as workflows;

/// A lead as it is read; the document shows it as `LeadBody` (a phone, an
/// e-mail, or both).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadRequest {
    pub full_name: String,
    /// A phone or an e-mail (or both) is needed; left out, not null.
    #[serde(default, deserialize_with = "not_null")]
    pub phone: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub email: Option<String>,
    /// The campaign it came from.
    pub campaign_id: Option<Uuid>,
    /// Create it even if an open lead has the phone or e-mail.
    pub force: Option<bool>,
}

/// New contact details as read; documented as `LeadUpdateBody`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadUpdateRequest {
    pub full_name: String,
    #[serde(default, deserialize_with = "not_null")]
    pub phone: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub email: Option<String>,
    /// Keep it even if another open lead has the phone or e-mail.
    pub force: Option<bool>,
}

/// Documents one way to reach a lead: the name, a phone or an e-mail or
/// both, the campaign (on creation) and `force`.
macro_rules! lead_body {
    ($name:ident, [$($phone:ident)?], [$($email:ident)?] $(, $campaign:ident)?) => {
        #[derive(ToSchema)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        pub struct $name {
            #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
            full_name: String,
            $(
                #[schema(pattern = r"^\+?[0-9]{10,15}$")]
                $phone: String,
            )?
            $(
                #[schema(format = Email, max_length = 254)]
                $email: String,
            )?
            $(
                /// The campaign it came from.
                #[schema(value_type = Option<String>, format = Uuid)]
                $campaign: Option<Uuid>,
            )?
            /// Even if an open lead has the phone or e-mail.
            force: Option<bool>,
        }
    };
}

lead_body!(LeadByPhone, [phone], [], campaign_id);
lead_body!(LeadByEmail, [], [email], campaign_id);
lead_body!(LeadByBoth, [phone], [email], campaign_id);
lead_body!(UpdateByPhone, [phone], []);
lead_body!(UpdateByEmail, [], [email]);
lead_body!(UpdateByBoth, [phone], [email]);

/// A lead: its name and a phone, an e-mail, or both; and the campaign it
/// came from.
#[derive(ToSchema)]
#[serde(untagged)]
#[schema(examples(json!({"full_name": "Ann Lee", "phone": "+447700900123", "email": "ann@example.com", "campaign_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f"})))]
#[allow(dead_code)]
pub enum LeadBody {
    Phone(LeadByPhone),
    Email(LeadByEmail),
    Both(LeadByBoth),
}

/// New contact details: the name and a phone, an e-mail, or both.
#[derive(ToSchema)]
#[serde(untagged)]
#[schema(examples(json!({"full_name": "Ann Lee", "phone": "+447700900124"})))]
#[allow(dead_code)]
pub enum LeadUpdateBody {
    Phone(UpdateByPhone),
    Email(UpdateByEmail),
    Both(UpdateByBoth),
}

/// The contact details, checked; the campaign is given apart.
fn info(
    full_name: String,
    phone: Option<String>,
    email: Option<String>,
    campaign_id: Option<Uuid>,
) -> Result<LeadInfo, ApiError> {
    let mut errors: Vec<FieldError> = Vec::new();
    let given = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let phone = match given(phone).map(|p| Phone::parse("phone", &p)) {
        Some(Err(e)) => {
            errors.push(e);
            None
        }
        other => other.and_then(Result::ok),
    };
    let email = match given(email).map(|e| Email::parse("email", &e)) {
        Some(Err(e)) => {
            errors.push(e);
            None
        }
        other => other.and_then(Result::ok),
    };
    let info = LeadInfo {
        full_name: full_name.trim().to_string(),
        phone,
        email,
        campaign_id,
    };
    if errors.is_empty() {
        if let Err(more) = info.check() {
            errors.extend(more);
        }
    }
    if errors.is_empty() {
        Ok(info)
    } else {
        Err(ApiError::invalid(errors))
    }
}

/// Create a lead. An open lead with the same phone or e-mail makes it 409
/// `duplicate-lead`, naming that lead in `existing` (`force: true` creates
/// it anyway).
#[utoipa::path(post, path = "/leads", tag = "marketing", security(("bearer" = [])),
    request_body = LeadBody, params(IdempotencyParams),
    responses((status = 201, description = "Created", body = CommandAccepted,
            headers(("Location" = String, description = "The lead: /api/v1/leads/{id}"))),
        CommonProblems, CommandProblems, Unauthorized, Forbidden, NotFound))]
pub(super) async fn create_lead(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<LeadRequest>,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(caller, headers, "POST", "/leads", body.digest);
    let r = body.value;
    let info = info(r.full_name, r.phone, r.email, r.campaign_id)?;
    let force = r.force.unwrap_or(false);
    let done = workflows::create_lead(&app.platform, &call.context(), info, force).await;
    Ok(created("/leads", done, CommandAccepted::of))
}

/// Change a lead's name or contact details (its campaign stays).
#[utoipa::path(put, path = "/leads/{id}", tag = "marketing", security(("bearer" = [])),
    request_body = LeadUpdateBody,
    params(("id" = Uuid, Path, description = "The lead"), CommandHeaderParams),
    responses((status = 200, description = "Changed (or already so)", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn update_lead(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<LeadUpdateRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/leads/{id}");
    let call = CommandCall::new(caller, headers, "PUT", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let r = body.value;
    let campaign = queries::lead(&app.platform.db.any, id)
        .await?
        .and_then(|l| l.state.info)
        .and_then(|i| i.campaign_id);
    let info = info(r.full_name, r.phone, r.email, campaign)?;
    let force = r.force.unwrap_or(false);
    let done = workflows::update_lead(&app.platform, &call.context(), id, info, force).await;
    Ok(accepted(StatusCode::OK, done))
}

/// Start working it (`new → in_progress`).
#[utoipa::path(post, path = "/leads/{id}/start", tag = "marketing", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The lead"), CommandHeaderParams),
    responses((status = 200, description = "In progress (or already)", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn start_lead(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let path = format!("/leads/{id}/start");
    let call = CommandCall::new(caller, headers, "POST", &path, String::new());
    let id = path_uuid("id", &id)?;
    let done =
        workflows::lead_command(&app.platform, &call.context(), id, LeadCommand::Start).await;
    Ok(accepted(StatusCode::OK, done))
}

/// Lost, with a reason; its phone and e-mail are free for a new lead.
#[utoipa::path(post, path = "/leads/{id}/lose", tag = "marketing", security(("bearer" = [])),
    request_body = MarketingReasonRequest,
    params(("id" = Uuid, Path, description = "The lead"), CommandHeaderParams),
    responses((status = 200, description = "Lost", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn lose_lead(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<MarketingReasonRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/leads/{id}/lose");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let done = workflows::lose_lead(&app.platform, &call.context(), id, body.value.reason).await;
    Ok(accepted(StatusCode::OK, done))
}

/// Erase the lead's personal data (admin): crypto-shredding. Its name,
/// phone, e-mail, notes and reason read `[erased]` from now on, in every
/// answer, read model, rebuild and history; the customer it became (and
/// that customer's login) are erased with it.
#[utoipa::path(post, path = "/leads/{id}/erase", tag = "marketing", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The lead"), CommandHeaderParams),
    responses((status = 200, description = "Erased (a retry erases again)", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn erase_lead(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let path = format!("/leads/{id}/erase");
    let call = CommandCall::new(caller, headers, "POST", &path, String::new());
    let person = crate::app::privacy::Person::Lead(path_uuid("id", &id)?);
    let done = crate::app::privacy::erase(&app.platform, &call.context(), person).await;
    Ok(accepted(StatusCode::OK, done))
}

/// Reopen a lost lead (`lost → in_progress`).
#[utoipa::path(post, path = "/leads/{id}/reopen", tag = "marketing", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The lead"), CommandHeaderParams),
    responses((status = 200, description = "In progress again", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn reopen_lead(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let path = format!("/leads/{id}/reopen");
    let call = CommandCall::new(caller, headers, "POST", &path, String::new());
    let id = path_uuid("id", &id)?;
    let done = workflows::reopen_lead(&app.platform, &call.context(), id).await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"text": "Called; wants a quote by Friday", "kind": "call"})))]
pub struct NoteRequest {
    #[schema(min_length = 1, max_length = 5000, pattern = r"\S")]
    pub text: String,
    /// `note` (default), `call`, `email` or `meeting`.
    #[schema(inline, value_type = Option<NoteKindName>)]
    pub kind: Option<String>,
    /// When it happened (default: now).
    pub at: Option<DateTime<Utc>>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum NoteKindName {
    Note,
    Call,
    Email,
    Meeting,
}

/// Add a note or an activity (call, e-mail, meeting), with who and when.
#[utoipa::path(post, path = "/leads/{id}/notes", tag = "marketing", security(("bearer" = [])),
    request_body = NoteRequest,
    params(("id" = Uuid, Path, description = "The lead"), CommandHeaderParams),
    responses((status = 201, description = "Added", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn add_lead_note(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<NoteRequest>,
) -> Result<Response, ApiError> {
    let by = caller.principal()?.user_id;
    let path = format!("/leads/{id}/notes");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let r = body.value;
    let kind = match r.kind.as_deref() {
        None => NoteKind::Note,
        Some(k) => NoteKind::parse(k).ok_or_else(|| {
            ApiError::invalid_field("kind", "must be note, call, email or meeting")
        })?,
    };
    let note = Note {
        note_id: Uuid::now_v7(),
        kind,
        text: r.text,
        by: Some(by),
        at: r.at.unwrap_or_else(|| app.platform.clock.now()),
    };
    let done = workflows::lead_command(
        &app.platform,
        &call.context(),
        id,
        LeadCommand::AddNote(note),
    )
    .await;
    Ok(accepted(StatusCode::CREATED, done))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"operator_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f"})))]
pub struct AssignRequest {
    /// A user with the `operator` role.
    #[schema(value_type = String, format = Uuid)]
    pub operator_id: Uuid,
}

/// Assign an open lead to an operator.
#[utoipa::path(post, path = "/leads/{id}/assign", tag = "marketing", security(("bearer" = [])),
    request_body = AssignRequest,
    params(("id" = Uuid, Path, description = "The lead"), CommandHeaderParams),
    responses((status = 200, description = "Assigned", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn assign_lead(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<AssignRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/leads/{id}/assign");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let done =
        workflows::assign_lead(&app.platform, &call.context(), id, body.value.operator_id).await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct NoteView {
    #[schema(value_type = String, format = Uuid)]
    pub note_id: Uuid,
    pub kind: String,
    pub text: String,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub by: Option<Uuid>,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct LeadView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub full_name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub campaign_id: Option<Uuid>,
    /// `new`, `in_progress`, `converted` or `lost`.
    pub status: String,
    pub lost_reason: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub assigned_to: Option<Uuid>,
    pub notes: Vec<NoteView>,
    /// After conversion: the customer it became and the contract.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub customer_id: Option<Uuid>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub contract_id: Option<Uuid>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    pub version: i64,
}

impl LeadView {
    fn of(row: LeadRow) -> Option<Self> {
        let Lead {
            info,
            status,
            lost_reason,
            assigned_to,
            notes,
            customer_id,
            contract_id,
            ..
        } = row.state;
        let info = info?;
        Some(Self {
            id: row.id,
            full_name: info.full_name,
            phone: info.phone.map(|p| p.as_str().to_string()),
            email: info.email.map(|e| e.as_str().to_string()),
            campaign_id: info.campaign_id,
            status: status.as_str().to_string(),
            lost_reason,
            assigned_to,
            notes: notes
                .into_iter()
                .map(|n| NoteView {
                    note_id: n.note_id,
                    kind: n.kind.as_str().to_string(),
                    text: n.text,
                    by: n.by,
                    at: n.at,
                })
                .collect(),
            customer_id,
            contract_id,
            created_at: row.created_at,
            version: row.version,
        })
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeadListQuery {
    #[param(inline, value_type = Option<LeadStatusName>)]
    pub status: Option<String>,
    pub campaign_id: Option<Uuid>,
    pub assigned_to: Option<Uuid>,
    /// Part of the name, phone or e-mail.
    #[param(max_length = 200)]
    pub q: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    #[param(max_length = 1000)]
    pub cursor: Option<String>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum LeadStatusName {
    New,
    InProgress,
    Converted,
    Lost,
}

/// Leads, newest first.
#[utoipa::path(get, path = "/leads", tag = "marketing", security(("bearer" = [])),
    params(LeadListQuery),
    responses((status = 200, description = "A page of leads", body = Page<LeadView>),
        Unauthorized, Forbidden, CommonProblems, ReadProblems))]
pub(super) async fn list_leads(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<LeadListQuery>,
) -> Result<Json<Page<LeadView>>, ApiError> {
    let statuses = ["new", "in_progress", "converted", "lost"];
    one_of("status", query.status.as_deref(), &statuses)?;
    if query.q.as_ref().is_some_and(|q| q.chars().count() > 200) {
        return Err(ApiError::bad_parameter("q", "at most 200 characters"));
    }
    app.platform.wait_for(MARKETING, query.min_position).await?;
    let filter = LeadFilter {
        status: query.status,
        campaign_id: query.campaign_id,
        assigned_to: query.assigned_to,
        q: query.q.filter(|q| !q.trim().is_empty()),
    };
    let rows = queries::leads(&app.platform.db.any, &filter).await?;
    let views = rows.into_iter().filter_map(LeadView::of).collect();
    Ok(Json(page(
        views,
        |l: &LeadView| newest_first(&l.created_at, &l.id),
        query.limit,
        query.cursor.as_deref(),
    )?))
}

/// One lead.
#[utoipa::path(get, path = "/leads/{id}", tag = "marketing", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The lead"), ReadQuery),
    responses((status = 200, description = "The lead", body = LeadView),
        Unauthorized, Forbidden, NotFound, CommonProblems, ReadProblems))]
pub(super) async fn get_lead(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<LeadView>, ApiError> {
    let id = path_uuid("id", &id)?;
    app.platform.wait_for(MARKETING, query.min_position).await?;
    queries::lead(&app.platform.db.any, id)
        .await?
        .and_then(LeadView::of)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such lead"))
}

/// A lead's whole timeline, conversion included: each event with who and
/// when.
#[utoipa::path(get, path = "/leads/{id}/history", tag = "marketing", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The lead")),
    responses((status = 200, description = "Its events, oldest first", body = Vec<HistoryEntry>),
        Unauthorized, Forbidden, NotFound, CommonProblems))]
pub(super) async fn lead_history(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let id = path_uuid("id", &id)?;
    let events = app
        .platform
        .log
        .aggregate_history(<Lead as cqrs_es::Aggregate>::TYPE, &id.to_string())
        .await?;
    if events.is_empty() {
        return Err(ApiError::not_found("no such lead"));
    }
    Ok(Json(events.iter().map(HistoryEntry::of).collect()))
}
