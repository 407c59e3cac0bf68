//! Messages from the business to a client (read or unread), and feedback
//! from clients that staff read and mark handled.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use annals_domain::projects::portal::{FeedbackNote, FeedbackTopic, Letter, MessageTopic};
use annals_projections::projects::queries::{self, FeedbackRow, MessageRow};
use annals_projections::projects::PROJECTS;

use super::super::command::{accepted, created, CommandHeaderParams, IdempotencyParams};
use super::super::error::{Forbidden, NotFound, ReadProblems, Unauthorized};
use super::super::extract::path_uuid;
use super::super::page::{newest_first, page, Page, ReadQuery};
use super::super::{
    ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommonProblems, JsonBody,
};
use super::is_project_staff;
use crate::app::projects as workflows;

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum MessageTopicName {
    Project,
    Workflow,
    Other,
}

impl MessageTopicName {
    fn topic(self) -> MessageTopic {
        match self {
            MessageTopicName::Project => MessageTopic::Project,
            MessageTopicName::Workflow => MessageTopic::Workflow,
            MessageTopicName::Other => MessageTopic::Other,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"client_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "topic": "project", "subject": "Design ready", "body": "Have a look at the mock-ups", "project_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e60"})))]
pub struct ClientMessageRequest {
    /// A user with the `client` role.
    #[schema(value_type = String, format = Uuid)]
    pub client_id: Uuid,
    pub topic: MessageTopicName,
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub subject: String,
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub body: String,
    /// One of the client's projects.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub project_id: Option<Uuid>,
}

/// Send a message to a client (a client with a linked Telegram chat gets a
/// notice).
#[utoipa::path(post, path = "/messages", tag = "projects", security(("bearer" = [])),
    request_body = ClientMessageRequest, params(IdempotencyParams),
    responses((status = 201, description = "Sent", body = CommandAccepted,
            headers(("Location" = String, description = "The message: /api/v1/messages/{id}"))),
        CommonProblems, CommandProblems, Unauthorized, Forbidden, NotFound))]
pub(super) async fn send_client_message(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ClientMessageRequest>,
) -> Result<Response, ApiError> {
    let sent_by = caller.principal()?.user_id;
    let call = CommandCall::new(caller, headers, "POST", "/messages", body.digest);
    let r = body.value;
    let letter = Letter {
        client_id: r.client_id,
        topic: r.topic.topic(),
        subject: r.subject,
        body: r.body,
        project_id: r.project_id,
        sent_by,
    };
    let done = workflows::send_message(&app.platform, &call.context(), letter).await;
    Ok(created("/messages", done, CommandAccepted::of))
}

#[derive(Serialize, ToSchema, Debug)]
pub struct ClientMessageView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub client_id: Uuid,
    /// `project`, `workflow` or `other`.
    pub topic: String,
    pub subject: String,
    pub body: String,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub project_id: Option<Uuid>,
    #[schema(value_type = String, format = Uuid)]
    pub sent_by: Uuid,
    pub sent_at: Option<DateTime<Utc>>,
    pub read: bool,
    pub read_at: Option<DateTime<Utc>>,
    pub version: i64,
}

impl ClientMessageView {
    fn of(row: MessageRow) -> Option<Self> {
        let letter = row.state.state.letter?;
        Some(Self {
            id: row.id,
            client_id: letter.client_id,
            topic: letter.topic.as_str().into(),
            subject: letter.subject,
            body: letter.body,
            project_id: letter.project_id,
            sent_by: letter.sent_by,
            sent_at: row.state.created_at,
            read: row.state.state.read_at.is_some(),
            read_at: row.state.state.read_at,
            version: row.version,
        })
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MyMessagesQuery {
    /// Only this topic.
    #[param(inline)]
    pub topic: Option<MessageTopicName>,
    /// Only unread messages.
    pub unread: Option<bool>,
    /// Only the newest this many (after the other filters).
    #[param(minimum = 1, maximum = 200)]
    pub latest: Option<u32>,
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

/// Your messages from the business, newest first.
#[utoipa::path(get, path = "/me/messages", tag = "projects", security(("bearer" = [])),
    params(MyMessagesQuery),
    responses((status = 200, description = "A page of messages", body = Page<ClientMessageView>),
        Unauthorized, CommonProblems, ReadProblems))]
pub(super) async fn my_messages(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<MyMessagesQuery>,
) -> Result<Json<Page<ClientMessageView>>, ApiError> {
    let me = caller.principal()?.clone();
    if query.latest.is_some_and(|n| !(1..=200).contains(&n)) {
        return Err(ApiError::bad_parameter("latest", "must be from 1 to 200"));
    }
    app.platform.wait_for(PROJECTS, query.min_position).await?;
    let topic = query.topic.map(|t| t.topic().as_str()).unwrap_or_default();
    let mut items: Vec<ClientMessageView> = queries::messages(
        &app.platform.db.any,
        me.user_id,
        topic,
        query.unread.unwrap_or(false),
    )
    .await?
    .into_iter()
    .filter_map(ClientMessageView::of)
    .collect();
    if let Some(n) = query.latest {
        items.truncate(n as usize);
    }
    Ok(Json(page(
        items,
        |m| {
            newest_first(
                &m.sent_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                &m.id,
            )
        },
        query.limit,
        query.cursor.as_deref(),
    )?))
}

/// One message; reading it as its client marks it read.
#[utoipa::path(get, path = "/messages/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The message"), ReadQuery),
    responses((status = 200, description = "The message", body = ClientMessageView),
        Unauthorized, NotFound, CommonProblems, ReadProblems))]
pub(super) async fn get_client_message(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<ClientMessageView>, ApiError> {
    let me = caller.principal()?.clone();
    let id = path_uuid("id", &id)?;
    app.platform.wait_for(PROJECTS, query.min_position).await?;
    let mut view = queries::message(&app.platform.db.any, id)
        .await?
        .and_then(ClientMessageView::of)
        .filter(|m| m.client_id == me.user_id || is_project_staff(&me))
        .ok_or_else(|| ApiError::not_found("no such message"))?;
    if view.client_id == me.user_id && !view.read {
        let call = CommandCall::new(
            caller,
            CommandHeaders::default(),
            "GET",
            &format!("/messages/{id}"),
            String::new(),
        );
        let done = workflows::mark_message_read(&app.platform, &call.context(), id).await?;
        view.read = true;
        view.read_at = Some(app.platform.clock.now());
        view.version = done.version;
    }
    Ok(Json(view))
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackTopicName {
    Service,
    Workflow,
    Quality,
    Other,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"topic": "quality", "text": "The new site is great", "project_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e60"})))]
pub struct FeedbackRequest {
    pub topic: FeedbackTopicName,
    #[schema(min_length = 1, max_length = 5000, pattern = r"\S")]
    pub text: String,
    /// One of your projects.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub project_id: Option<Uuid>,
}

/// Give feedback (as a client).
#[utoipa::path(post, path = "/feedback", tag = "projects", security(("bearer" = [])),
    request_body = FeedbackRequest, params(IdempotencyParams),
    responses((status = 201, description = "Given", body = CommandAccepted,
            headers(("Location" = String, description = "The feedback: /api/v1/feedback/{id}"))),
        CommonProblems, CommandProblems, Unauthorized, Forbidden, NotFound))]
pub(super) async fn give_feedback(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<FeedbackRequest>,
) -> Result<Response, ApiError> {
    let client_id = caller.principal()?.user_id;
    let call = CommandCall::new(caller, headers, "POST", "/feedback", body.digest);
    let r = body.value;
    let note = FeedbackNote {
        client_id,
        topic: match r.topic {
            FeedbackTopicName::Service => FeedbackTopic::Service,
            FeedbackTopicName::Workflow => FeedbackTopic::Workflow,
            FeedbackTopicName::Quality => FeedbackTopic::Quality,
            FeedbackTopicName::Other => FeedbackTopic::Other,
        },
        text: r.text,
        project_id: r.project_id,
    };
    let done = workflows::submit_feedback(&app.platform, &call.context(), note).await;
    Ok(created("/feedback", done, CommandAccepted::of))
}

#[derive(Serialize, ToSchema, Debug)]
pub struct FeedbackView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub client_id: Uuid,
    /// `service`, `workflow`, `quality` or `other`.
    pub topic: String,
    pub text: String,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub project_id: Option<Uuid>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub handled: bool,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub handled_by: Option<Uuid>,
    pub version: i64,
}

impl FeedbackView {
    fn of(row: FeedbackRow) -> Option<Self> {
        let note = row.state.state.note?;
        Some(Self {
            id: row.id,
            client_id: note.client_id,
            topic: note.topic.as_str().into(),
            text: note.text,
            project_id: note.project_id,
            submitted_at: row.state.created_at,
            handled: row.state.state.handled_by.is_some(),
            handled_by: row.state.state.handled_by,
            version: row.version,
        })
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedbackListQuery {
    /// Only handled (true) or unhandled (false) feedback.
    pub handled: Option<bool>,
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

/// Feedback, newest first: staff see all, a client their own.
#[utoipa::path(get, path = "/feedback", tag = "projects", security(("bearer" = [])),
    params(FeedbackListQuery),
    responses((status = 200, description = "A page of feedback", body = Page<FeedbackView>),
        Unauthorized, CommonProblems, ReadProblems))]
pub(super) async fn list_feedback(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<FeedbackListQuery>,
) -> Result<Json<Page<FeedbackView>>, ApiError> {
    let me = caller.principal()?.clone();
    app.platform.wait_for(PROJECTS, query.min_position).await?;
    let client = (!is_project_staff(&me)).then_some(me.user_id);
    let items: Vec<FeedbackView> =
        queries::feedback_list(&app.platform.db.any, client, query.handled)
            .await?
            .into_iter()
            .filter_map(FeedbackView::of)
            .collect();
    Ok(Json(page(
        items,
        |f| {
            newest_first(
                &f.submitted_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                &f.id,
            )
        },
        query.limit,
        query.cursor.as_deref(),
    )?))
}

/// One piece of feedback (a client's own, or any for staff).
#[utoipa::path(get, path = "/feedback/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The feedback"), ReadQuery),
    responses((status = 200, description = "The feedback", body = FeedbackView),
        Unauthorized, NotFound, CommonProblems, ReadProblems))]
pub(super) async fn get_feedback(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<FeedbackView>, ApiError> {
    let me = caller.principal()?.clone();
    let id = path_uuid("id", &id)?;
    app.platform.wait_for(PROJECTS, query.min_position).await?;
    queries::feedback(&app.platform.db.any, id)
        .await?
        .and_then(FeedbackView::of)
        .filter(|f| f.client_id == me.user_id || is_project_staff(&me))
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such feedback"))
}

/// Mark feedback handled (once; again changes nothing).
#[utoipa::path(post, path = "/feedback/{id}/handle", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The feedback"), CommandHeaderParams),
    responses((status = 200, description = "Handled (or already)", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn handle_feedback(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let by = caller.principal()?.user_id;
    let path = format!("/feedback/{id}/handle");
    let call = CommandCall::new(caller, headers, "POST", &path, String::new());
    let id = path_uuid("id", &id)?;
    let done = workflows::handle_feedback(&app.platform, &call.context(), id, by).await;
    Ok(accepted(StatusCode::OK, done))
}
