//! Conversion (a lead becomes a customer with a contract, in one commit),
//! contracts, and the customer it made — the lineage lead → customer →
//! contract, readable from each end.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use annals_domain::marketing::contract::ContractTerms;
use annals_domain::values::Money;
use annals_projections::marketing::queries::{self, ContractRow};
use annals_projections::marketing::MARKETING;

use super::super::command::{reply, CommandHeaderParams};
use super::super::error::{Forbidden, NotFound, ReadProblems, Unauthorized};
use super::super::extract::path_uuid;
use super::super::page::ReadQuery;
use super::super::page::{page, ListQuery, Page};
use super::super::{
    ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommonProblems, JsonBody,
};
use crate::app::marketing::{self as workflows, Converted};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractRequest {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    #[schema(value_type = String, format = Uuid)]
    pub service_id: Uuid,
    /// The signed document, uploaded with `POST /files` (not attached to
    /// anything yet).
    #[schema(value_type = String, format = Uuid)]
    pub file_id: Uuid,
    #[schema(value_type = String, format = Date)]
    pub signed_on: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub valid_from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub valid_to: NaiveDate,
    #[schema(example = "900.00", pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub amount: String,
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"contract": {"name": "Website, year one", "service_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "file_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e60", "signed_on": "2026-10-10", "valid_from": "2026-11-01", "valid_to": "2027-10-31", "amount": "900.00", "currency": "EUR"}})))]
pub struct ConvertRequest {
    pub contract: ContractRequest,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct ConvertAccepted {
    #[serde(flatten)]
    pub accepted: CommandAccepted,
    #[schema(value_type = String, format = Uuid)]
    pub customer_id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub contract_id: Uuid,
}

/// Convert a lead: one commit makes the active customer, records the
/// contract with its document and marks the lead converted. A second
/// conversion is 409 `already-converted`.
#[utoipa::path(post, path = "/leads/{id}/convert", tag = "marketing", security(("bearer" = [])),
    request_body = ConvertRequest,
    params(("id" = Uuid, Path, description = "The lead"), CommandHeaderParams),
    responses((status = 201, description = "Converted", body = ConvertAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn convert_lead(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ConvertRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/leads/{id}/convert");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let c = body.value.contract;
    let amount = Money::parse("contract.amount", &c.amount, &c.currency).map_err(|errors| {
        ApiError::invalid(
            errors
                .into_iter()
                .map(|e| match e.field.as_str() {
                    "currency" => annals_domain::FieldError::new("contract.currency", e.message),
                    _ => e,
                })
                .collect(),
        )
    })?;
    let terms = ContractTerms {
        name: c.name,
        service_id: c.service_id,
        file_id: c.file_id,
        signed_on: c.signed_on,
        valid_from: c.valid_from,
        valid_to: c.valid_to,
        amount,
    };
    terms.check().map_err(ApiError::invalid)?;
    let done = workflows::convert(&app.platform, &call.context(), id, terms).await;
    Ok(reply(StatusCode::CREATED, done, |d| {
        let Converted {
            customer_id,
            contract_id,
        } = d.value;
        ConvertAccepted {
            accepted: CommandAccepted::of(d),
            customer_id,
            contract_id,
        }
    }))
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct ContractView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = String, format = Uuid)]
    pub service_id: Uuid,
    /// The document: `GET /api/v1/files/{file_id}`.
    #[schema(value_type = String, format = Uuid)]
    pub file_id: Uuid,
    #[schema(value_type = String, format = Date)]
    pub signed_on: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub valid_from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub valid_to: NaiveDate,
    #[schema(example = "900.00")]
    pub amount: String,
    pub currency: String,
    #[schema(value_type = String, format = Uuid)]
    pub customer_id: Uuid,
    /// The lead it converted.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub lead_id: Option<Uuid>,
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: String,
}

impl From<ContractRow> for ContractView {
    fn from(row: ContractRow) -> Self {
        Self {
            id: row.id,
            name: row.terms.name,
            service_id: row.terms.service_id,
            file_id: row.terms.file_id,
            signed_on: row.terms.signed_on,
            valid_from: row.terms.valid_from,
            valid_to: row.terms.valid_to,
            amount: row.terms.amount.amount.to_string(),
            currency: row.terms.amount.currency,
            customer_id: row.customer_id,
            lead_id: row.lead_id,
            recorded_at: row.recorded_at,
        }
    }
}

/// Contracts, newest signed first.
#[utoipa::path(get, path = "/contracts", tag = "marketing", security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, description = "A page of contracts", body = Page<ContractView>),
        Unauthorized, Forbidden, CommonProblems, ReadProblems))]
pub(super) async fn list_contracts(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<ContractView>>, ApiError> {
    app.platform.wait_for(MARKETING, query.min_position).await?;
    let rows = queries::contracts(&app.platform.db.any, None).await?;
    let views: Vec<ContractView> = rows.into_iter().map(ContractView::from).collect();
    Ok(Json(page(
        views,
        |c| format!("{}\u{0}{}", c.signed_on, c.id),
        query.limit,
        query.cursor.as_deref(),
    )?))
}

/// One contract.
#[utoipa::path(get, path = "/contracts/{id}", tag = "marketing", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The contract"), ReadQuery),
    responses((status = 200, description = "The contract", body = ContractView),
        Unauthorized, Forbidden, NotFound, CommonProblems, ReadProblems))]
pub(super) async fn get_contract(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<ContractView>, ApiError> {
    let id = path_uuid("id", &id)?;
    app.platform.wait_for(MARKETING, query.min_position).await?;
    queries::contract(&app.platform.db.any, id)
        .await?
        .map(|c| Json(c.into()))
        .ok_or_else(|| ApiError::not_found("no such contract"))
}
