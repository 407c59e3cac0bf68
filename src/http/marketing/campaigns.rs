//! Ad campaigns: plan, start, complete, cancel, correct the budget, record
//! spend; read them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use annals_domain::marketing::campaign::{CampaignCommand, CampaignTerms, Spend, CHANNELS};
use annals_domain::values::Money;
use annals_domain::FieldError;
use annals_projections::marketing::queries::{self, CampaignRow};
use annals_projections::marketing::MARKETING;

use super::super::command::{accepted, created, CommandHeaderParams, IdempotencyParams};
use super::super::error::{Forbidden, NotFound, ReadProblems, Unauthorized};
use super::super::extract::{one_of, path_uuid};
use super::super::page::{by_name, page, Page, ReadQuery};
use super::super::{
    ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommonProblems, JsonBody,
};
use crate::app::marketing as workflows;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Autumn search", "service_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "channel": "search", "budget": "1500.00", "currency": "EUR", "starts_on": "2026-10-01", "ends_on": "2026-10-31"})))]
pub struct CampaignRequest {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// The advertised service (a catalog service).
    #[schema(value_type = String, format = Uuid)]
    pub service_id: Uuid,
    /// Free text; suggestions: search, social, email, offline, referral,
    /// display.
    #[schema(min_length = 1, max_length = 50, pattern = r"\S", example = "search")]
    pub channel: String,
    #[schema(example = "1500.00", pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub budget: String,
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    #[schema(value_type = String, format = Date)]
    pub starts_on: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub ends_on: NaiveDate,
}

fn invalid(errors: Vec<FieldError>) -> ApiError {
    ApiError::invalid(errors)
}

/// Plan a campaign (`planned`).
#[utoipa::path(post, path = "/campaigns", tag = "marketing", security(("bearer" = [])),
    request_body = CampaignRequest, params(IdempotencyParams),
    responses((status = 201, description = "Planned", body = CommandAccepted,
            headers(("Location" = String, description = "The campaign: /api/v1/campaigns/{id}"))),
        CommonProblems, CommandProblems, Unauthorized, Forbidden, NotFound))]
pub(super) async fn plan_campaign(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<CampaignRequest>,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(caller, headers, "POST", "/campaigns", body.digest);
    let r = body.value;
    let budget = Money::parse("budget", &r.budget, &r.currency).map_err(invalid)?;
    let terms = CampaignTerms {
        name: r.name.trim().to_string(),
        service_id: r.service_id,
        channel: r.channel.trim().to_string(),
        budget,
        starts_on: r.starts_on,
        ends_on: r.ends_on,
    };
    terms.check().map_err(invalid)?;
    let done = workflows::plan_campaign(&app.platform, &call.context(), terms).await;
    Ok(created("/campaigns", done, CommandAccepted::of))
}

/// A step of a campaign's life: `start`, `complete`.
async fn step(
    app: &AppState,
    caller: Caller,
    headers: CommandHeaders,
    id: &str,
    name: &str,
    command: CampaignCommand,
    digest: String,
) -> Result<Response, ApiError> {
    let path = format!("/campaigns/{id}/{name}");
    let call = CommandCall::new(caller, headers, "POST", &path, digest);
    let id = path_uuid("id", id)?;
    let done = workflows::campaign_command(&app.platform, &call.context(), id, command).await;
    Ok(accepted(StatusCode::OK, done))
}

/// Start it (`planned → active`).
#[utoipa::path(post, path = "/campaigns/{id}/start", tag = "marketing", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The campaign"), CommandHeaderParams),
    responses((status = 200, description = "Active (or already)", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn start_campaign(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let command = CampaignCommand::Start;
    step(&app, caller, headers, &id, "start", command, String::new()).await
}

/// Complete it (`active → completed`).
#[utoipa::path(post, path = "/campaigns/{id}/complete", tag = "marketing", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The campaign"), CommandHeaderParams),
    responses((status = 200, description = "Completed (or already)", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn complete_campaign(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let command = CampaignCommand::Complete;
    step(
        &app,
        caller,
        headers,
        &id,
        "complete",
        command,
        String::new(),
    )
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"reason": "budget moved to social"})))]
pub struct MarketingReasonRequest {
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub reason: String,
}

/// Cancel it (from `planned` or `active`).
#[utoipa::path(post, path = "/campaigns/{id}/cancel", tag = "marketing", security(("bearer" = [])),
    request_body = MarketingReasonRequest,
    params(("id" = Uuid, Path, description = "The campaign"), CommandHeaderParams),
    responses((status = 200, description = "Cancelled (or already)", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn cancel_campaign(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<MarketingReasonRequest>,
) -> Result<Response, ApiError> {
    let command = CampaignCommand::Cancel {
        reason: body.value.reason,
    };
    step(&app, caller, headers, &id, "cancel", command, body.digest).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"budget": "1200.00", "currency": "EUR", "reason": "cut in October"})))]
pub struct BudgetRequest {
    #[schema(example = "1200.00", pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub budget: String,
    /// The campaign's currency.
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub reason: String,
}

/// Correct the budget (an event; the history keeps every budget).
#[utoipa::path(put, path = "/campaigns/{id}/budget", tag = "marketing", security(("bearer" = [])),
    request_body = BudgetRequest,
    params(("id" = Uuid, Path, description = "The campaign"), CommandHeaderParams),
    responses((status = 200, description = "Corrected", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn correct_budget(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<BudgetRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/campaigns/{id}/budget");
    let call = CommandCall::new(caller, headers, "PUT", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let r = body.value;
    let budget = Money::parse("budget", &r.budget, &r.currency).map_err(invalid)?;
    let command = CampaignCommand::CorrectBudget {
        budget,
        reason: r.reason,
    };
    let done = workflows::campaign_command(&app.platform, &call.context(), id, command).await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"amount": "250.00", "on": "2026-10-05", "note": "search ads, week 1"})))]
pub struct SpendRequest {
    /// In the campaign's currency; negative corrects an earlier entry (the
    /// spend up to any day may not go below zero).
    #[schema(example = "250.00", pattern = r"^-?[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub amount: String,
    /// The business date the money was spent (any date: a correction of
    /// last month is dated last month).
    #[schema(value_type = String, format = Date)]
    pub on: NaiveDate,
    #[schema(max_length = 500)]
    pub note: Option<String>,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct SpendAccepted {
    #[serde(flatten)]
    pub accepted: CommandAccepted,
    /// The entry's id.
    #[schema(value_type = String, format = Uuid)]
    pub entry_id: Uuid,
}

/// Record spend on a day (or a correction of it).
#[utoipa::path(post, path = "/campaigns/{id}/spend", tag = "marketing", security(("bearer" = [])),
    request_body = SpendRequest,
    params(("id" = Uuid, Path, description = "The campaign"), CommandHeaderParams),
    responses((status = 201, description = "Recorded", body = SpendAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn record_spend(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<SpendRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/campaigns/{id}/spend");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let r = body.value;
    let amount: Decimal = r.amount.trim().parse().map_err(|_| {
        ApiError::invalid_field("amount", "must be a decimal number like \"25.00\"")
    })?;
    let note = r
        .note
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        return Err(ApiError::invalid_field("note", "at most 500 characters"));
    }
    let entry_id = Uuid::now_v7();
    let command = CampaignCommand::RecordSpend(Spend {
        entry_id,
        amount,
        on: r.on,
        note,
    });
    let done = workflows::campaign_command(&app.platform, &call.context(), id, command).await;
    Ok(super::super::command::reply(
        StatusCode::CREATED,
        done,
        |d| SpendAccepted {
            accepted: CommandAccepted::of(d),
            entry_id,
        },
    ))
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct SpendView {
    #[schema(value_type = String, format = Uuid)]
    pub entry_id: Uuid,
    #[schema(example = "250.00")]
    pub amount: String,
    #[schema(value_type = String, format = Date)]
    pub on: NaiveDate,
    pub note: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct CampaignView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = String, format = Uuid)]
    pub service_id: Uuid,
    pub channel: String,
    /// The budget in force (corrections applied).
    #[schema(example = "1500.00")]
    pub budget: String,
    pub currency: String,
    #[schema(value_type = String, format = Date)]
    pub starts_on: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub ends_on: NaiveDate,
    /// `planned`, `active`, `completed` or `cancelled`.
    pub status: String,
    pub cancel_reason: Option<String>,
    /// Every spend entry, as recorded.
    pub spend: Vec<SpendView>,
    /// Their sum.
    #[schema(example = "450.00")]
    pub spent: String,
    pub version: i64,
}

impl CampaignView {
    fn of(row: CampaignRow) -> Option<Self> {
        let terms = row.state.terms.clone()?;
        let spent: Decimal = row.state.spend.iter().map(|s| s.amount).sum();
        Some(Self {
            id: row.id,
            name: terms.name,
            service_id: terms.service_id,
            channel: terms.channel,
            budget: terms.budget.amount.to_string(),
            currency: terms.budget.currency,
            starts_on: terms.starts_on,
            ends_on: terms.ends_on,
            status: row.state.status.as_str().to_string(),
            cancel_reason: row.state.cancel_reason,
            spend: row
                .state
                .spend
                .into_iter()
                .map(|s| SpendView {
                    entry_id: s.entry_id,
                    amount: s.amount.to_string(),
                    on: s.on,
                    note: s.note,
                })
                .collect(),
            spent: spent.to_string(),
            version: row.version,
        })
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CampaignListQuery {
    /// Only campaigns in this state.
    #[param(inline, value_type = Option<CampaignStatusName>)]
    pub status: Option<String>,
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
pub enum CampaignStatusName {
    Planned,
    Active,
    Completed,
    Cancelled,
}

/// Campaigns by name.
#[utoipa::path(get, path = "/campaigns", tag = "marketing", security(("bearer" = [])),
    params(CampaignListQuery),
    responses((status = 200, description = "A page of campaigns", body = Page<CampaignView>),
        Unauthorized, Forbidden, CommonProblems, ReadProblems))]
pub(super) async fn list_campaigns(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<CampaignListQuery>,
) -> Result<Json<Page<CampaignView>>, ApiError> {
    let statuses = ["planned", "active", "completed", "cancelled"];
    one_of("status", query.status.as_deref(), &statuses)?;
    app.platform.wait_for(MARKETING, query.min_position).await?;
    let rows = queries::campaigns(&app.platform.db.any, query.status.as_deref()).await?;
    let views = rows.into_iter().filter_map(CampaignView::of).collect();
    Ok(Json(page(
        views,
        |c| by_name(&c.name, &c.id),
        query.limit,
        query.cursor.as_deref(),
    )?))
}

/// One campaign.
#[utoipa::path(get, path = "/campaigns/{id}", tag = "marketing", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The campaign"), ReadQuery),
    responses((status = 200, description = "The campaign", body = CampaignView),
        Unauthorized, Forbidden, NotFound, CommonProblems, ReadProblems))]
pub(super) async fn get_campaign(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<CampaignView>, ApiError> {
    let id = path_uuid("id", &id)?;
    app.platform.wait_for(MARKETING, query.min_position).await?;
    queries::campaign(&app.platform.db.any, id)
        .await?
        .and_then(CampaignView::of)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such campaign"))
}

/// The channels suggested (any other text is taken too).
#[utoipa::path(get, path = "/campaign-channels", tag = "marketing",
    responses((status = 200, description = "Suggested channels", body = Vec<String>), CommonProblems))]
pub(super) async fn campaign_channels() -> Json<Vec<&'static str>> {
    Json(CHANNELS.to_vec())
}
