//! Membership plans.

use super::super::page::ReadQuery;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use annals_domain::gym::plan::PlanLength;
use annals_domain::gym::{PlanCommand, PlanTerms};
use annals_domain::values::Money;
use annals_domain::FieldError;
use annals_projections::gym::queries::{self, PlanRow};
use annals_projections::gym::SUBSCRIPTIONS;

use super::super::command::{accepted, created, CommandHeaderParams, IdempotencyParams};
use super::super::error::{Forbidden, NotFound, ReadProblems, Unauthorized};
use super::super::page::{by_name, page, Page};
use super::super::{
    ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommonProblems, JsonBody,
};
use crate::app::gym as workflows;

/// A plan as it is read; the document shows it as `PlanBody` (a length
/// in days or in months, exactly one).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    pub name: String,
    pub length_days: Option<u32>,
    pub length_months: Option<u32>,
    pub price: String,
    pub currency: String,
    pub freeze_days: Option<u32>,
}

/// A plan whose periods last some days.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct PlanByDays {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: String,
    #[schema(minimum = 1, maximum = 3660)]
    length_days: u32,
    #[schema(example = "49.00", pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    price: String,
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    currency: String,
    /// Freeze days each paid period allows (default 0).
    #[schema(minimum = 0, maximum = 365)]
    freeze_days: Option<u32>,
}

/// A plan whose periods last some months.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct PlanByMonths {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: String,
    #[schema(minimum = 1, maximum = 120)]
    length_months: u32,
    #[schema(example = "49.00", pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    price: String,
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    currency: String,
    /// Freeze days each paid period allows (default 0).
    #[schema(minimum = 0, maximum = 365)]
    freeze_days: Option<u32>,
}

/// A plan: its length in days or in months.
#[derive(ToSchema)]
#[serde(untagged)]
#[schema(examples(json!({"name": "Monthly", "length_months": 1, "price": "49.00", "currency": "EUR", "freeze_days": 7})))]
#[allow(dead_code)]
pub enum PlanBody {
    Days(PlanByDays),
    Months(PlanByMonths),
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct PlanView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub name: String,
    pub length_days: Option<u32>,
    pub length_months: Option<u32>,
    #[schema(example = "49.00")]
    pub price: String,
    pub currency: String,
    pub freeze_days: i64,
    pub active: bool,
    pub version: i64,
}

impl From<PlanRow> for PlanView {
    fn from(row: PlanRow) -> Self {
        let (length_days, length_months) = match row.length {
            PlanLength::Days(d) => (Some(d), None),
            PlanLength::Months(m) => (None, Some(m)),
        };
        Self {
            id: row.id,
            name: row.name,
            length_days,
            length_months,
            price: row.price.to_string(),
            currency: row.currency,
            freeze_days: row.freeze_days,
            active: row.active,
            version: row.version,
        }
    }
}

fn plan_terms(request: PlanRequest) -> Result<PlanTerms, ApiError> {
    let mut errors = Vec::new();
    let length = match (request.length_days, request.length_months) {
        (Some(days), None) => PlanLength::Days(days),
        (None, Some(months)) => PlanLength::Months(months),
        _ => {
            errors.push(FieldError::new(
                "length_days",
                "give either length_days or length_months",
            ));
            PlanLength::Days(1)
        }
    };
    let price =
        Money::parse("price", &request.price, request.currency.trim()).unwrap_or_else(|mut e| {
            errors.append(&mut e);
            Money {
                amount: Default::default(),
                currency: "XXX".into(),
            }
        });
    let terms = PlanTerms {
        name: request.name.trim().to_string(),
        length,
        price,
        freeze_days: request.freeze_days.unwrap_or(0),
    };
    if let Err(mut more) = terms.check() {
        errors.append(&mut more);
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    Ok(terms)
}

/// Create a plan.
#[utoipa::path(post, path = "/plans", tag = "studio", security(("bearer" = [])),
    request_body = PlanBody, params(IdempotencyParams),
    responses((status = 201, description = "Created", body = CommandAccepted,
            headers(("Location" = String, description = "The new plan: /api/v1/plans/{id}"))),
        CommonProblems, CommandProblems, Unauthorized, Forbidden))]
pub(super) async fn create_plan(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<PlanRequest>,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(caller, headers, "POST", "/plans", body.digest);
    let terms = plan_terms(body.value)?;
    let done = workflows::create_plan(&app.platform, &call.context(), terms).await;
    Ok(created("/plans", done, CommandAccepted::of))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanListQuery {
    /// Also plans no longer offered.
    pub include_inactive: Option<bool>,
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 1000)]
    pub cursor: Option<String>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

/// Plans on offer, by name.
#[utoipa::path(get, path = "/plans", tag = "studio", params(PlanListQuery),
    responses((status = 200, description = "A page of plans", body = Page<PlanView>),
        CommonProblems, ReadProblems))]
pub(super) async fn list_plans(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<PlanListQuery>,
) -> Result<Json<Page<PlanView>>, ApiError> {
    app.platform
        .wait_for(SUBSCRIPTIONS, query.min_position)
        .await?;
    let plans = queries::plans(
        &app.platform.db.any,
        query.include_inactive.unwrap_or(false),
    )
    .await?
    .into_iter()
    .map(PlanView::from)
    .collect();
    Ok(Json(page(
        plans,
        |p| by_name(&p.name, &p.id),
        query.limit,
        query.cursor.as_deref(),
    )?))
}

/// One plan.
#[utoipa::path(get, path = "/plans/{id}", tag = "studio",
    params(("id" = Uuid, Path, description = "The plan"), ReadQuery),
    responses((status = 200, description = "The plan", body = PlanView),
        NotFound, CommonProblems, ReadProblems))]
pub(super) async fn get_plan(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<PlanView>, ApiError> {
    let id = super::super::extract::path_uuid("id", &id)?;
    app.platform
        .wait_for(SUBSCRIPTIONS, query.min_position)
        .await?;
    queries::plan(&app.platform.db.any, id)
        .await?
        .map(|p| Json(p.into()))
        .ok_or_else(|| ApiError::not_found("no such plan"))
}

/// Stop offering a plan (subscriptions to it go on).
#[utoipa::path(post, path = "/plans/{id}/deactivate", tag = "studio", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The plan"), CommandHeaderParams),
    responses((status = 200, description = "Deactivated (or already)", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn deactivate_plan(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let path = format!("/plans/{id}/deactivate");
    let call = CommandCall::new(caller, headers, "POST", &path, String::new());
    let id = super::super::extract::path_uuid("id", &id)?;
    let done =
        workflows::plan_command(&app.platform, &call.context(), id, PlanCommand::Deactivate).await;
    Ok(accepted(StatusCode::OK, done))
}
