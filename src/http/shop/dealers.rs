//! The dealer program: applications, their decision, and one's standing.

use super::super::page::ReadQuery;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use annals_projections::shop::queries::{self, ApplicationRow};
use annals_projections::shop::DEALERS;

use super::super::command::{accepted, created, CommandHeaderParams, IdempotencyParams};
use super::super::error::{Forbidden, NotFound, ReadProblems, Unauthorized};
use super::super::page::{page, Page};
use super::super::{
    ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommonProblems, JsonBody,
};
use super::orders::PriceRuleView;
use super::path_id;
use crate::app::shop as workflows;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"company": "Parts AS", "tax_id": "NO123456789", "message": "We run two workshops."})))]
pub struct ApplicationRequest {
    #[schema(min_length = 1, pattern = r"\S", max_length = 200)]
    pub company: String,
    #[schema(min_length = 1, pattern = r"\S", max_length = 50)]
    pub tax_id: String,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub message: String,
}

/// Apply to the dealer program (one application at a time).
#[utoipa::path(post, path = "/dealer-applications", tag = "shop", security(("bearer" = [])),
    request_body = ApplicationRequest, params(IdempotencyParams),
    responses((status = 201, description = "Filed", body = CommandAccepted,
            headers(("Location" = String, description = "The application"))),
        Unauthorized, CommonProblems, CommandProblems))]
pub(super) async fn apply(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ApplicationRequest>,
) -> Result<Response, ApiError> {
    let me = caller.principal()?.clone();
    let call = CommandCall::new(caller, headers, "POST", "/dealer-applications", body.digest);
    let request = body.value;
    let done = workflows::apply_for_dealer(
        &app.platform,
        &call.context(),
        &me,
        request.company,
        request.tax_id,
        request.message,
    )
    .await;
    Ok(created("/dealer-applications", done, CommandAccepted::of))
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct ApplicationView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub user_id: Uuid,
    pub company: String,
    pub tax_id: String,
    pub message: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    pub discount_percent: Option<i64>,
    /// Why it was rejected.
    pub reason: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub submitted_at: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<String>,
    pub version: i64,
}

impl From<ApplicationRow> for ApplicationView {
    fn from(row: ApplicationRow) -> Self {
        Self {
            id: row.id,
            user_id: row.user_id,
            company: row.company,
            tax_id: row.tax_id,
            message: row.message,
            status: row.status,
            discount_percent: row.discount_percent,
            reason: row.reason,
            submitted_at: row.submitted_at,
            decided_at: row.decided_at,
            version: row.version,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplicationListQuery {
    /// Only applications in this state.
    #[param(inline, value_type = Option<ApplicationState>)]
    pub status: Option<String>,
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 1000)]
    pub cursor: Option<String>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ApplicationState {
    Pending,
    Approved,
    Rejected,
}

/// Dealer applications, oldest first (staff).
#[utoipa::path(get, path = "/dealer-applications", tag = "shop", security(("bearer" = [])),
    params(ApplicationListQuery),
    responses((status = 200, description = "A page of applications", body = Page<ApplicationView>),
        Unauthorized, Forbidden, CommonProblems, ReadProblems))]
pub(super) async fn list_applications(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<ApplicationListQuery>,
) -> Result<Json<Page<ApplicationView>>, ApiError> {
    app.platform.wait_for(DEALERS, query.min_position).await?;
    let status = match query.status.as_deref() {
        None => None,
        Some(s @ ("pending" | "approved" | "rejected")) => Some(s),
        Some(_) => {
            return Err(ApiError::bad_parameter(
                "status",
                "must be pending, approved or rejected",
            ))
        }
    };
    let rows = queries::applications(&app.platform.db.any, None, status)
        .await?
        .into_iter()
        .map(ApplicationView::from)
        .collect();
    Ok(Json(page(
        rows,
        |a| format!("{}{}", a.submitted_at, a.id),
        query.limit,
        query.cursor.as_deref(),
    )?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"discount_percent": 12})))]
pub struct ApproveRequest {
    #[schema(minimum = 0, maximum = 50)]
    pub discount_percent: u8,
}

/// Approve an application: the user becomes a dealer with the discount.
#[utoipa::path(post, path = "/dealer-applications/{id}/approve", tag = "shop", security(("bearer" = [])),
    request_body = ApproveRequest, params(("id" = Uuid, Path, description = "The application"), CommandHeaderParams),
    responses((status = 200, description = "Approved", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn approve(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ApproveRequest>,
) -> Result<Response, ApiError> {
    let me = caller.principal()?.clone();
    let path = format!("/dealer-applications/{id}/approve");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_id(&id)?;
    let discount = body.value.discount_percent;
    if discount > annals_domain::shop::dealer::MAX_DISCOUNT {
        return Err(ApiError::invalid_field(
            "discount_percent",
            "must be from 0 to 50",
        ));
    }
    let done = workflows::approve_dealer(&app.platform, &call.context(), id, discount, &me).await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"reason": "not a registered business"})))]
pub struct RejectRequest {
    #[schema(min_length = 1, pattern = r"\S", max_length = 500)]
    pub reason: String,
}

/// Reject an application (the user may apply again).
#[utoipa::path(post, path = "/dealer-applications/{id}/reject", tag = "shop", security(("bearer" = [])),
    request_body = RejectRequest, params(("id" = Uuid, Path, description = "The application"), CommandHeaderParams),
    responses((status = 200, description = "Rejected", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn reject(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<RejectRequest>,
) -> Result<Response, ApiError> {
    let me = caller.principal()?.clone();
    let path = format!("/dealer-applications/{id}/reject");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_id(&id)?;
    let done =
        workflows::reject_dealer(&app.platform, &call.context(), id, body.value.reason, &me).await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct MyDealerView {
    /// `none` (never applied), `pending`, `approved` or `rejected`.
    pub status: String,
    /// The discount in force (approved, and holding the dealer role).
    pub discount_percent: Option<u8>,
    /// The decision behind the discount.
    pub rule: Option<PriceRuleView>,
    /// Your applications, newest first.
    pub applications: Vec<ApplicationView>,
}

/// Your standing in the dealer program and the discount in force.
#[utoipa::path(get, path = "/me/dealer", tag = "shop", security(("bearer" = [])), params(ReadQuery),
    responses((status = 200, description = "Your standing", body = MyDealerView),
        Unauthorized, CommonProblems, ReadProblems))]
pub(super) async fn my_dealer(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<MyDealerView>, ApiError> {
    let me = caller.principal()?.clone();
    app.platform.wait_for(DEALERS, query.min_position).await?;
    let pool = &app.platform.db.any;
    let standing = queries::dealer(pool, me.user_id).await?;
    let in_force = standing
        .as_ref()
        .and_then(|s| s.terms.clone())
        .filter(|_| me.has(annals_domain::user::Role::Dealer));
    let applications = queries::applications(pool, Some(me.user_id), None)
        .await?
        .into_iter()
        .map(ApplicationView::from)
        .collect();
    Ok(Json(MyDealerView {
        status: standing.map_or("none".into(), |s| s.status),
        discount_percent: in_force.as_ref().map(|t| t.discount_percent),
        rule: in_force.map(|t| PriceRuleView {
            kind: "dealer_discount".into(),
            discount_percent: t.discount_percent,
            application_id: t.application_id,
            approved_on: t.approved_on,
            approved_by: t.approved_by,
        }),
        applications,
    }))
}
