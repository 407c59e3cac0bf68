//! Client projects: requests and their whole life, the client's live view
//! and counts, progress with its forecast, the staff queue and the
//! statistics; the portal (messages, feedback) and the products roadmap
//! live beside it.

mod portal;
mod roadmap;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use annals_domain::projects::{
    Agreement, Attachment, ProjectCommand, ProjectRequest, ProjectState, Request,
};
use annals_domain::user::Role;
use annals_domain::values::Money;
use annals_domain::FieldError;
use annals_projections::projects::queries::{self, ProjectRow};
use annals_projections::projects::timeline::{self, Counts, Statistics, Waiting};
use annals_projections::projects::{ProjectsProjector, PROJECTS};
use annals_projections::Projector;

use super::command::{accepted, created, CommandHeaderParams, IdempotencyParams};
use super::error::{Forbidden, NotFound, ReadProblems, Unauthorized};
use super::extract::path_uuid;
use super::history::HistoryEntry;
use super::page::{page, Page, ReadQuery};
use super::{
    ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommonProblems, JsonBody,
};
use crate::app::projects as workflows;
use crate::auth::Principal;
use crate::platform::Module;

pub struct ProjectsModule;

impl Module for ProjectsModule {
    fn name(&self) -> &'static str {
        "projects"
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(request_project, list_projects))
            .routes(routes!(get_project))
            .routes(routes!(project_history))
            .routes(routes!(project_progress))
            .routes(routes!(accept_project))
            .routes(routes!(refuse_project))
            .routes(routes!(keep_project_waiting))
            .routes(routes!(start_project))
            .routes(routes!(report_project_progress))
            .routes(routes!(replan_project))
            .routes(routes!(project_ready_for_delivery))
            .routes(routes!(withdraw_project))
            .routes(routes!(confirm_project_receipt))
            .routes(routes!(my_project_counts))
            .routes(routes!(project_statistics))
            .routes(routes!(portal::send_client_message))
            .routes(routes!(portal::my_messages))
            .routes(routes!(portal::get_client_message))
            .routes(routes!(portal::give_feedback, portal::list_feedback))
            .routes(routes!(portal::get_feedback))
            .routes(routes!(portal::handle_feedback))
            .routes(routes!(roadmap::plan_product, roadmap::list_roadmap))
            .routes(routes!(roadmap::roadmap_demand))
            .routes(routes!(roadmap::get_roadmap_product))
            .routes(routes!(roadmap::start_product_work))
            .routes(routes!(roadmap::make_product_available))
            .routes(routes!(roadmap::register_interest))
    }

    fn projectors(&self) -> Vec<Arc<dyn Projector>> {
        vec![Arc::new(ProjectsProjector)]
    }
}

/// Staff who see every project, message and feedback.
pub(crate) fn is_project_staff(me: &Principal) -> bool {
    me.has(Role::Admin) || me.has(Role::Manager) || me.has(Role::Operator)
}

/// Staff who act on any project (accept, plan, deliver).
fn runs_projects(me: &Principal) -> bool {
    me.has(Role::Admin) || me.has(Role::Manager)
}

/// An uploaded file, or a link.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AttachmentRequest {
    File(FileAttachment),
    Link(LinkAttachment),
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileAttachment {
    /// An uploaded file (`POST /files`).
    #[schema(value_type = String, format = Uuid)]
    pub file_id: Uuid,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"url": "https://example.com/brief.pdf"})))]
pub struct LinkAttachment {
    #[schema(max_length = 2000, pattern = r"^https?://[^\s]+$")]
    pub url: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"title": "A shop site", "description": "Five pages and a cart", "desired_deadline": "2027-02-01", "budget_hint": {"amount": "1500.00", "currency": "EUR"}, "attachments": [{"url": "https://example.com/brief.pdf"}]})))]
pub struct ProjectRequestBody {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub title: String,
    #[serde(default)]
    #[schema(max_length = 10000)]
    pub description: String,
    pub desired_deadline: Option<NaiveDate>,
    /// What the client has in mind to spend.
    pub budget_hint: Option<MoneyRequest>,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub attachments: Vec<AttachmentRequest>,
}

/// An amount with its currency.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"amount": "1500.00", "currency": "EUR"})))]
pub struct MoneyRequest {
    #[schema(pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub amount: String,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

impl MoneyRequest {
    fn parse(&self, field: &str) -> Result<Money, Vec<FieldError>> {
        Money::parse(&format!("{field}.amount"), &self.amount, &self.currency)
    }
}

fn request(body: ProjectRequestBody, client_id: Uuid) -> Result<Request, ApiError> {
    let mut errors = Vec::new();
    if body.description.chars().count() > 10_000 {
        errors.push(FieldError::new("description", "at most 10000 characters"));
    }
    let budget_hint = match &body.budget_hint {
        None => None,
        Some(hint) => hint.parse("budget_hint").map_err(|e| errors.extend(e)).ok(),
    };
    if body.attachments.len() > 20 {
        errors.push(FieldError::new("attachments", "at most 20"));
    }
    let mut attachments = Vec::new();
    for (i, a) in body.attachments.into_iter().enumerate() {
        match a {
            AttachmentRequest::File(f) => attachments.push(Attachment::File(f.file_id)),
            AttachmentRequest::Link(l) if valid_url(&l.url) => {
                attachments.push(Attachment::Url(l.url))
            }
            AttachmentRequest::Link(_) => errors.push(FieldError::new(
                format!("attachments[{i}].url"),
                "must be an http(s) URL of at most 2000 characters",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    Ok(Request {
        client_id,
        title: body.title,
        description: body.description,
        desired_deadline: body.desired_deadline,
        budget_hint,
        attachments,
    })
}

fn valid_url(url: &str) -> bool {
    url.len() <= 2000
        && (url.starts_with("https://") || url.starts_with("http://"))
        && !url.chars().any(char::is_whitespace)
}

/// Request a project (as the client it is for).
#[utoipa::path(post, path = "/projects", tag = "projects", security(("bearer" = [])),
    request_body = ProjectRequestBody, params(IdempotencyParams),
    responses((status = 201, description = "Requested", body = CommandAccepted,
            headers(("Location" = String, description = "The project: /api/v1/projects/{id}"))),
        CommonProblems, CommandProblems, Unauthorized, Forbidden, NotFound))]
pub(super) async fn request_project(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ProjectRequestBody>,
) -> Result<Response, ApiError> {
    let client = caller.principal()?.user_id;
    let call = CommandCall::new(caller, headers, "POST", "/projects", body.digest);
    let request = request(body.value, client)?;
    let done = workflows::request_project(&app.platform, &call.context(), request).await;
    Ok(created("/projects", done, CommandAccepted::of))
}

#[derive(Serialize, ToSchema, Debug)]
pub struct MoneyView {
    #[schema(value_type = String, example = "1500.00")]
    pub amount: String,
    pub currency: String,
}

impl MoneyView {
    fn of(m: &Money) -> Self {
        Self {
            amount: m.amount.to_string(),
            currency: m.currency.clone(),
        }
    }
}

#[derive(Serialize, ToSchema, Debug)]
pub struct AgreementView {
    pub price: MoneyView,
    pub deadline: NaiveDate,
}

impl AgreementView {
    fn of(a: &Agreement) -> Self {
        Self {
            price: MoneyView::of(&a.price),
            deadline: a.deadline,
        }
    }
}

#[derive(Serialize, ToSchema, Debug)]
pub struct ReplanView {
    /// The new price, if it changed.
    pub price: Option<MoneyView>,
    /// The new deadline, if it changed.
    pub deadline: Option<NaiveDate>,
    pub reason: String,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct AttachmentView {
    #[schema(value_type = Option<String>, format = Uuid)]
    pub file_id: Option<Uuid>,
    pub url: Option<String>,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct ProjectView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub client_id: Uuid,
    pub title: String,
    pub description: String,
    pub desired_deadline: Option<NaiveDate>,
    pub budget_hint: Option<MoneyView>,
    pub attachments: Vec<AttachmentView>,
    /// `requested`, `planned`, `in_progress`, `ready_for_delivery`,
    /// `delivered`, `refused` or `withdrawn`.
    pub state: String,
    /// `on_queue` (planned), `in_work`, `awaiting_receipt`; none before
    /// acceptance and after the end.
    pub working_status: Option<String>,
    pub percent_done: u8,
    /// The agreed price now (after re-plans).
    pub price: Option<MoneyView>,
    /// The agreed deadline now (after re-plans).
    pub deadline: Option<NaiveDate>,
    /// What was agreed at acceptance.
    pub first_agreement: Option<AgreementView>,
    /// Every re-plan since, oldest first.
    pub replans: Vec<ReplanView>,
    /// The note of the latest progress report.
    pub last_note: Option<String>,
    /// The business's latest "keep waiting" note, while unanswered.
    pub waiting_note: Option<String>,
    pub refusal_reason: Option<String>,
    /// Receipt confirmed by the automatic confirmation, not the client.
    pub delivered_automatically: bool,
    pub requested_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub ready_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Time spent waiting on each side, up to now while open.
    pub waiting: WaitingView,
    pub version: i64,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct WaitingView {
    /// Seconds the project waited on the business (an unanswered request,
    /// accepted and not started, in progress).
    pub on_business_seconds: i64,
    /// Seconds it waited on the client (ready, receipt not confirmed).
    pub on_client_seconds: i64,
}

impl From<Waiting> for WaitingView {
    fn from(w: Waiting) -> Self {
        Self {
            on_business_seconds: w.on_business_seconds,
            on_client_seconds: w.on_client_seconds,
        }
    }
}

impl ProjectView {
    fn of(row: ProjectRow, now: DateTime<Utc>) -> Option<Self> {
        let file = row.state;
        let waiting = timeline::waiting(&file, now).into();
        let p = file.project;
        let request = p.request?;
        Some(Self {
            id: row.id,
            client_id: request.client_id,
            title: request.title,
            description: request.description,
            desired_deadline: request.desired_deadline,
            budget_hint: request.budget_hint.as_ref().map(MoneyView::of),
            attachments: request
                .attachments
                .into_iter()
                .map(|a| match a {
                    Attachment::File(id) => AttachmentView {
                        file_id: Some(id),
                        url: None,
                    },
                    Attachment::Url(url) => AttachmentView {
                        file_id: None,
                        url: Some(url),
                    },
                })
                .collect(),
            state: p.state.as_str().into(),
            working_status: p.state.working_status().map(str::to_string),
            percent_done: p.percent_done,
            price: p.agreement.as_ref().map(|a| MoneyView::of(&a.price)),
            deadline: p.agreement.as_ref().map(|a| a.deadline),
            first_agreement: p.first_agreement.as_ref().map(AgreementView::of),
            replans: p
                .replans
                .iter()
                .map(|r| ReplanView {
                    price: r.price.as_ref().map(MoneyView::of),
                    deadline: r.deadline,
                    reason: r.reason.clone(),
                })
                .collect(),
            last_note: p.last_note,
            waiting_note: p.waiting_note,
            refusal_reason: p.refusal_reason,
            delivered_automatically: p.delivered_automatically,
            requested_at: file.requested_at,
            accepted_at: file.accepted_at,
            started_at: file.started_at,
            ready_at: file.ready_at,
            delivered_at: file.delivered_at,
            waiting,
            version: row.version,
        })
    }
}

/// The project, if the caller may see it (staff: any; a client: theirs).
async fn visible(app: &AppState, me: &Principal, id: Uuid) -> Result<ProjectRow, ApiError> {
    queries::project(&app.platform.db.any, id)
        .await?
        .filter(|row| {
            is_project_staff(me)
                || row
                    .state
                    .project
                    .request
                    .as_ref()
                    .is_some_and(|r| r.client_id == me.user_id)
        })
        .ok_or_else(|| ApiError::not_found("no such project"))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectListQuery {
    /// Only projects in this state.
    #[param(inline)]
    pub state: Option<StateName>,
    /// Only projects with this working status.
    #[param(inline)]
    pub working_status: Option<WorkingStatusName>,
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 1000)]
    pub cursor: Option<String>,
    /// Wait until the read model has applied the log up to here.
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum StateName {
    Requested,
    Planned,
    InProgress,
    ReadyForDelivery,
    Delivered,
    Refused,
    Withdrawn,
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum WorkingStatusName {
    OnQueue,
    InWork,
    AwaitingReceipt,
}

fn state_name(s: StateName) -> &'static str {
    match s {
        StateName::Requested => "requested",
        StateName::Planned => "planned",
        StateName::InProgress => "in_progress",
        StateName::ReadyForDelivery => "ready_for_delivery",
        StateName::Delivered => "delivered",
        StateName::Refused => "refused",
        StateName::Withdrawn => "withdrawn",
    }
}

fn working_name(s: WorkingStatusName) -> &'static str {
    match s {
        WorkingStatusName::OnQueue => "on_queue",
        WorkingStatusName::InWork => "in_work",
        WorkingStatusName::AwaitingReceipt => "awaiting_receipt",
    }
}

/// Projects. Staff get the queue: everything on the queue first, then by
/// deadline (none last); a client gets their own, the same way.
#[utoipa::path(get, path = "/projects", tag = "projects", security(("bearer" = [])),
    params(ProjectListQuery),
    responses((status = 200, description = "A page of projects", body = Page<ProjectView>),
        Unauthorized, CommonProblems, ReadProblems))]
pub(super) async fn list_projects(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ProjectListQuery>,
) -> Result<Json<Page<ProjectView>>, ApiError> {
    let me = caller.principal()?.clone();
    app.platform.wait_for(PROJECTS, query.min_position).await?;
    let state = query.state.map(state_name).unwrap_or_default();
    let working = query.working_status.map(working_name).unwrap_or_default();
    let client = (!is_project_staff(&me)).then_some(me.user_id);
    let rows = queries::queue(&app.platform.db.any, client, state, working).await?;
    let now = app.platform.clock.now();
    let items: Vec<ProjectView> = rows
        .into_iter()
        .filter_map(|row| ProjectView::of(row, now))
        .collect();
    Ok(Json(page(
        items,
        queue_key,
        query.limit,
        query.cursor.as_deref(),
    )?))
}

/// The queue's order as a key: on the queue first, then by deadline (none
/// last), then by request time and id.
fn queue_key(p: &ProjectView) -> String {
    let on_queue = if p.working_status.as_deref() == Some("on_queue") {
        '0'
    } else {
        '1'
    };
    let deadline = p
        .deadline
        .or(p.desired_deadline)
        .map_or("~".to_string(), |d| d.to_string());
    let requested = p.requested_at.map(|t| t.to_rfc3339()).unwrap_or_default();
    format!("{on_queue}{deadline}\u{0}{requested}\u{0}{}", p.id)
}

/// One project, live: state, percent done, deadline and price, with what
/// was agreed first and every re-plan.
#[utoipa::path(get, path = "/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The project"), ReadQuery),
    responses((status = 200, description = "The project", body = ProjectView),
        Unauthorized, NotFound, CommonProblems, ReadProblems))]
pub(super) async fn get_project(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<ProjectView>, ApiError> {
    let me = caller.principal()?.clone();
    let id = path_uuid("id", &id)?;
    app.platform.wait_for(PROJECTS, query.min_position).await?;
    let row = visible(&app, &me, id).await?;
    ProjectView::of(row, app.platform.clock.now())
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such project"))
}

/// Every event of a project, with who and when.
#[utoipa::path(get, path = "/projects/{id}/history", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The project")),
    responses((status = 200, description = "Oldest first", body = Vec<HistoryEntry>),
        Unauthorized, NotFound, CommonProblems))]
pub(super) async fn project_history(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let me = caller.principal()?.clone();
    let id = path_uuid("id", &id)?;
    let events = app
        .platform
        .log
        .aggregate_history(
            <ProjectRequest as cqrs_es::Aggregate>::TYPE,
            &id.to_string(),
        )
        .await?;
    let client = events
        .first()
        .and_then(|e| {
            serde_json::from_value::<annals_domain::projects::ProjectEvent>(e.payload.clone()).ok()
        })
        .and_then(|e| match e {
            annals_domain::projects::ProjectEvent::Requested(r) => Some(r.client_id),
            _ => None,
        });
    match client {
        Some(client) if is_project_staff(&me) || client == me.user_id => {
            Ok(Json(events.iter().map(HistoryEntry::of).collect()))
        }
        _ => Err(ApiError::not_found("no such project")),
    }
}

#[derive(Serialize, ToSchema, Debug)]
pub struct ProgressPoint {
    pub at: DateTime<Utc>,
    pub percent_done: u8,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct ProgressView {
    /// The burn-up series: the start (its percentage then), each report,
    /// and readiness (100).
    pub series: Vec<ProgressPoint>,
    pub percent_done: u8,
    /// When 100 % is reached at the recent pace: the percentage gained
    /// from the earliest report within 14 days before the latest one to
    /// the latest, carried on from the latest. Absent without two such
    /// reports or without progress between them; the readiness time once
    /// ready.
    pub forecast_finish: Option<DateTime<Utc>>,
    /// The agreed deadline now.
    pub deadline: Option<NaiveDate>,
    pub waiting: WaitingView,
}

/// Percent done over time, and the forecast finish.
#[utoipa::path(get, path = "/projects/{id}/progress", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The project"), ReadQuery),
    responses((status = 200, description = "The progress", body = ProgressView),
        Unauthorized, NotFound, CommonProblems, ReadProblems))]
pub(super) async fn project_progress(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<ProgressView>, ApiError> {
    let me = caller.principal()?.clone();
    let id = path_uuid("id", &id)?;
    app.platform.wait_for(PROJECTS, query.min_position).await?;
    let file = visible(&app, &me, id).await?.state;
    Ok(Json(ProgressView {
        forecast_finish: timeline::forecast(&file.series),
        waiting: timeline::waiting(&file, app.platform.clock.now()).into(),
        series: file
            .series
            .iter()
            .map(|p| ProgressPoint {
                at: p.at,
                percent_done: p.percent_done,
            })
            .collect(),
        percent_done: file.project.percent_done,
        deadline: file.project.agreement.map(|a| a.deadline),
    }))
}

/// Runs one staff command on a project.
async fn staff_command(
    app: &AppState,
    call: CommandCall,
    id: &str,
    command: Result<ProjectCommand, ApiError>,
) -> Result<Response, ApiError> {
    let id = path_uuid("id", id)?;
    let command = command?;
    let done = workflows::project_command(&app.platform, &call.context(), id, None, command).await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"price": "1500.00", "currency": "EUR", "deadline": "2027-02-01"})))]
pub struct AcceptRequest {
    #[schema(pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub price: String,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    pub deadline: NaiveDate,
}

/// Accept a request: the agreed price and deadline; it goes on the queue.
#[utoipa::path(post, path = "/projects/{id}/accept", tag = "projects", security(("bearer" = [])),
    request_body = AcceptRequest,
    params(("id" = Uuid, Path, description = "The project"), CommandHeaderParams),
    responses((status = 200, description = "Accepted", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn accept_project(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<AcceptRequest>,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(
        caller,
        headers,
        "POST",
        &format!("/projects/{id}/accept"),
        body.digest,
    );
    let r = body.value;
    let command = Money::parse("price", &r.price, &r.currency)
        .map(|price| {
            ProjectCommand::Accept(Agreement {
                price,
                deadline: r.deadline,
            })
        })
        .map_err(ApiError::invalid);
    staff_command(&app, call, &id, command).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"reason": "We do not build shops"})))]
pub struct ProjectReasonRequest {
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    pub reason: String,
}

/// Refuse a request that has not been accepted.
#[utoipa::path(post, path = "/projects/{id}/refuse", tag = "projects", security(("bearer" = [])),
    request_body = ProjectReasonRequest,
    params(("id" = Uuid, Path, description = "The project"), CommandHeaderParams),
    responses((status = 200, description = "Refused", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn refuse_project(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ProjectReasonRequest>,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(
        caller,
        headers,
        "POST",
        &format!("/projects/{id}/refuse"),
        body.digest,
    );
    let command = ProjectCommand::Refuse {
        reason: body.value.reason,
    };
    staff_command(&app, call, &id, Ok(command)).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"note": "We answer by Monday"})))]
pub struct KeepWaitingRequest {
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    pub note: String,
}

/// Keep a request waiting, with a note to the client.
#[utoipa::path(post, path = "/projects/{id}/keep-waiting", tag = "projects", security(("bearer" = [])),
    request_body = KeepWaitingRequest,
    params(("id" = Uuid, Path, description = "The project"), CommandHeaderParams),
    responses((status = 200, description = "Kept waiting", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn keep_project_waiting(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<KeepWaitingRequest>,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(
        caller,
        headers,
        "POST",
        &format!("/projects/{id}/keep-waiting"),
        body.digest,
    );
    let command = ProjectCommand::KeepWaiting {
        note: body.value.note,
    };
    staff_command(&app, call, &id, Ok(command)).await
}

/// Start the work on a planned project.
#[utoipa::path(post, path = "/projects/{id}/start", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The project"), CommandHeaderParams),
    responses((status = 200, description = "Started", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn start_project(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(
        caller,
        headers,
        "POST",
        &format!("/projects/{id}/start"),
        String::new(),
    );
    staff_command(&app, call, &id, Ok(ProjectCommand::Start)).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"percent_done": 40, "note": "Home page and catalog done"})))]
pub struct ProgressRequest {
    #[schema(minimum = 0, maximum = 100)]
    pub percent_done: u8,
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    pub note: String,
    /// Required when `percent_done` goes down.
    #[schema(max_length = 2000)]
    pub reason: Option<String>,
}

/// Report progress (never backwards without a reason).
#[utoipa::path(post, path = "/projects/{id}/progress", tag = "projects", security(("bearer" = [])),
    request_body = ProgressRequest,
    params(("id" = Uuid, Path, description = "The project"), CommandHeaderParams),
    responses((status = 200, description = "Reported", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn report_project_progress(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ProgressRequest>,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(
        caller,
        headers,
        "POST",
        &format!("/projects/{id}/progress"),
        body.digest,
    );
    let r = body.value;
    let command = ProjectCommand::Progress {
        percent_done: r.percent_done,
        note: r.note,
        reason: r.reason,
    };
    staff_command(&app, call, &id, Ok(command)).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"price": {"amount": "1800.00", "currency": "EUR"}, "deadline": "2027-02-15", "reason": "Two more pages"})))]
pub struct ReplanRequest {
    /// The new price, in the agreed currency.
    pub price: Option<MoneyRequest>,
    pub deadline: Option<NaiveDate>,
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    pub reason: String,
}

/// A re-plan as the document shows it: a new price, a new deadline, or
/// both, with the reason (read as `ReplanRequest`).
#[derive(ToSchema)]
#[serde(untagged)]
#[schema(examples(json!({"price": {"amount": "1800.00", "currency": "EUR"}, "deadline": "2027-02-15", "reason": "Two more pages"})))]
#[allow(dead_code)]
pub enum ReplanBody {
    Price(ReplanPrice),
    Deadline(ReplanDeadline),
    Both(ReplanRequestBoth),
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ReplanPrice {
    /// The new price, in the agreed currency.
    price: MoneyRequest,
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    reason: String,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ReplanDeadline {
    deadline: NaiveDate,
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    reason: String,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ReplanRequestBoth {
    /// The new price, in the agreed currency.
    price: MoneyRequest,
    deadline: NaiveDate,
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    reason: String,
}

/// Change the agreed price or deadline, with a reason.
#[utoipa::path(post, path = "/projects/{id}/replan", tag = "projects", security(("bearer" = [])),
    request_body = ReplanBody,
    params(("id" = Uuid, Path, description = "The project"), CommandHeaderParams),
    responses((status = 200, description = "Re-planned", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn replan_project(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ReplanRequest>,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(
        caller,
        headers,
        "POST",
        &format!("/projects/{id}/replan"),
        body.digest,
    );
    let r = body.value;
    let price = r.price.as_ref().map(|p| p.parse("price")).transpose();
    let command = price
        .map_err(ApiError::invalid)
        .map(|price| ProjectCommand::Replan {
            price,
            deadline: r.deadline,
            reason: r.reason,
        });
    staff_command(&app, call, &id, command).await
}

/// The work is done: ready for the client to confirm receipt.
#[utoipa::path(post, path = "/projects/{id}/ready-for-delivery", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The project"), CommandHeaderParams),
    responses((status = 200, description = "Ready for delivery", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn project_ready_for_delivery(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let path = format!("/projects/{id}/ready-for-delivery");
    let call = CommandCall::new(caller, headers, "POST", &path, String::new());
    staff_command(&app, call, &id, Ok(ProjectCommand::ReadyForDelivery)).await
}

/// Runs one of the client's own commands (staff who run projects may run
/// it for them).
async fn client_command(
    app: &AppState,
    caller: Caller,
    headers: CommandHeaders,
    path: String,
    id: &str,
    command: ProjectCommand,
) -> Result<Response, ApiError> {
    let me = caller.principal()?.clone();
    let call = CommandCall::new(caller, headers, "POST", &path, String::new());
    let id = path_uuid("id", id)?;
    let client = (!runs_projects(&me)).then_some(me.user_id);
    let done =
        workflows::project_command(&app.platform, &call.context(), id, client, command).await;
    Ok(accepted(StatusCode::OK, done))
}

/// Withdraw your request (before the work has started).
#[utoipa::path(post, path = "/projects/{id}/withdraw", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The project"), CommandHeaderParams),
    responses((status = 200, description = "Withdrawn", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn withdraw_project(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let path = format!("/projects/{id}/withdraw");
    client_command(&app, caller, headers, path, &id, ProjectCommand::Withdraw).await
}

/// Confirm you received the delivery.
#[utoipa::path(post, path = "/projects/{id}/confirm-receipt", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The project"), CommandHeaderParams),
    responses((status = 200, description = "Delivered", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn confirm_project_receipt(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let path = format!("/projects/{id}/confirm-receipt");
    let command = ProjectCommand::ConfirmReceipt { automatic: false };
    client_command(&app, caller, headers, path, &id, command).await
}

#[derive(Serialize, ToSchema, Debug)]
pub struct ProjectCountsView {
    /// Requested and not yet answered (kept waiting included).
    pub proposed: u64,
    /// Accepted, not started.
    pub planned: u64,
    /// Started and not yet delivered (ready for delivery included).
    pub in_progress: u64,
    /// Delivered.
    pub finished: u64,
}

impl From<Counts> for ProjectCountsView {
    fn from(c: Counts) -> Self {
        Self {
            proposed: c.proposed,
            planned: c.planned,
            in_progress: c.in_progress,
            finished: c.finished,
        }
    }
}

/// Your projects, counted by stage (refused and withdrawn in none).
#[utoipa::path(get, path = "/me/projects/counts", tag = "projects", security(("bearer" = [])),
    params(ReadQuery),
    responses((status = 200, description = "The counts", body = ProjectCountsView),
        Unauthorized, CommonProblems, ReadProblems))]
pub(super) async fn my_project_counts(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<ProjectCountsView>, ApiError> {
    let me = caller.principal()?.clone();
    app.platform.wait_for(PROJECTS, query.min_position).await?;
    let rows = queries::projects(&app.platform.db.any, Some(me.user_id)).await?;
    let states: Vec<ProjectState> = rows.iter().map(|r| r.state.project.state).collect();
    Ok(Json(timeline::counts(&states).into()))
}

#[derive(Serialize, ToSchema, Debug)]
pub struct ProjectMonthView {
    /// `2026-11`, in the business's time zone.
    pub month: String,
    pub requests: u64,
    /// Delivered that month: the agreed prices (after re-plans).
    pub revenue: Vec<MoneyView>,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct ProjectStatisticsView {
    pub requests: u64,
    pub accepted: u64,
    pub refused: u64,
    /// accepted / (accepted + refused); absent before any answer.
    pub acceptance_rate: Option<f64>,
    /// Mean hours from request to acceptance (accepted projects).
    pub mean_hours_to_acceptance: Option<f64>,
    /// Mean hours from start to confirmed delivery (delivered projects).
    pub mean_hours_start_to_delivery: Option<f64>,
    /// Waiting on each side, summed over every project.
    pub waiting: WaitingView,
    pub months: Vec<ProjectMonthView>,
}

impl From<Statistics> for ProjectStatisticsView {
    fn from(s: Statistics) -> Self {
        Self {
            requests: s.requests,
            accepted: s.accepted,
            refused: s.refused,
            acceptance_rate: s.acceptance_rate,
            mean_hours_to_acceptance: s.mean_hours_to_acceptance,
            mean_hours_start_to_delivery: s.mean_hours_start_to_delivery,
            waiting: s.waiting.into(),
            months: s
                .months
                .into_iter()
                .map(|m| ProjectMonthView {
                    month: m.month,
                    requests: m.requests,
                    revenue: m
                        .revenue
                        .into_iter()
                        .map(|(currency, amount)| MoneyView {
                            amount: amount.to_string(),
                            currency,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// Requests per month, acceptance rate, mean times, revenue per month.
#[utoipa::path(get, path = "/stats/projects", tag = "projects", security(("bearer" = [])),
    params(ReadQuery),
    responses((status = 200, description = "The statistics", body = ProjectStatisticsView),
        Unauthorized, Forbidden, CommonProblems, ReadProblems))]
pub(super) async fn project_statistics(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<ProjectStatisticsView>, ApiError> {
    app.platform.wait_for(PROJECTS, query.min_position).await?;
    let rows = queries::projects(&app.platform.db.any, None).await?;
    let files: Vec<_> = rows.into_iter().map(|r| r.state).collect();
    let stats = timeline::statistics(
        &files,
        app.platform.settings.timezone,
        app.platform.clock.now(),
    );
    Ok(Json(stats.into()))
}
