//! Invoices: issue (numbered per year, gap-free), pay with a receipt, void.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use annals_domain::invoice::{InvoiceCommand, Issue, Line, Payment};
use annals_domain::values::Money;
use annals_projections::billing::queries::{self, InvoiceRow};
use annals_projections::billing::BILLING;

use super::super::command::{accepted, reply, CommandHeaderParams, IdempotencyParams};
use super::super::error::{Forbidden, NotFound, ReadProblems, Unauthorized};
use super::super::extract::path_uuid;
use super::super::page::ReadQuery;
use super::super::page::{page, Page};
use super::super::{
    ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommonProblems, JsonBody,
};
use crate::app::customers as workflows;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub description: String,
    #[schema(example = "60.00", pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub amount: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"customer_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "amount": "100.00", "currency": "EUR", "issue_date": "2026-12-01", "due_date": "2026-12-15"})))]
pub struct InvoiceRequest {
    #[schema(value_type = String, format = Uuid)]
    pub customer_id: Uuid,
    #[schema(example = "100.00", pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub amount: String,
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// Default: today; its year numbers the invoice.
    #[schema(value_type = Option<String>, format = Date)]
    pub issue_date: Option<NaiveDate>,
    #[schema(value_type = String, format = Date)]
    pub due_date: NaiveDate,
    /// If given, they add up to the amount.
    #[serde(default)]
    #[schema(max_items = 200)]
    pub lines: Vec<LineRequest>,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct InvoiceAccepted {
    #[serde(flatten)]
    pub accepted: CommandAccepted,
    /// `2026-00001`: sequential per year, no gaps.
    pub number: String,
}

fn decimal(field: &str, text: &str) -> Result<Decimal, ApiError> {
    Money::parse(field, text, "EUR")
        .map(|m| m.amount)
        .map_err(ApiError::invalid)
}

/// Issue an invoice: it takes the next number of its year.
#[utoipa::path(post, path = "/invoices", tag = "customers", security(("bearer" = [])),
    request_body = InvoiceRequest, params(IdempotencyParams),
    responses((status = 201, description = "Issued", body = InvoiceAccepted,
            headers(("Location" = String, description = "The invoice: /api/v1/invoices/{id}"))),
        CommonProblems, CommandProblems, Unauthorized, Forbidden, NotFound))]
pub(super) async fn issue_invoice(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<InvoiceRequest>,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(caller, headers, "POST", "/invoices", body.digest);
    let r = body.value;
    let amount = Money::parse("amount", &r.amount, &r.currency).map_err(ApiError::invalid)?;
    let mut lines = Vec::with_capacity(r.lines.len());
    for (i, line) in r.lines.into_iter().enumerate() {
        lines.push(Line {
            description: line.description.trim().to_string(),
            amount: decimal(&format!("lines[{i}].amount"), &line.amount)?,
        });
    }
    let issue = Issue {
        customer_id: r.customer_id,
        number: String::new(),
        amount,
        issue_date: r.issue_date.unwrap_or_else(|| app.platform.today()),
        due_date: r.due_date,
        lines,
    };
    issue.check().map_err(ApiError::invalid)?;
    let done = workflows::issue_invoice(&app.platform, &call.context(), issue).await;
    let location = done
        .as_ref()
        .ok()
        .map(|d| format!("/api/v1/invoices/{}", d.id));
    let mut response = reply(StatusCode::CREATED, done, |d| InvoiceAccepted {
        accepted: CommandAccepted::of(d),
        number: d.value.clone(),
    });
    if let Some(value) = location.and_then(|l| axum::http::HeaderValue::from_str(&l).ok()) {
        response
            .headers_mut()
            .insert(axum::http::header::LOCATION, value);
    }
    Ok(response)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"amount": "100.00", "currency": "EUR", "receipt_file_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "paid_on": "2026-12-02"})))]
pub struct InvoicePaymentRequest {
    #[schema(example = "100.00", pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub amount: String,
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// The receipt, uploaded with `POST /files`: a PDF or an image.
    #[schema(value_type = String, format = Uuid)]
    pub receipt_file_id: Uuid,
    /// Default: today.
    #[schema(value_type = Option<String>, format = Date)]
    pub paid_on: Option<NaiveDate>,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct PaymentAccepted {
    #[serde(flatten)]
    pub accepted: CommandAccepted,
    #[schema(value_type = String, format = Uuid)]
    pub payment_id: Uuid,
}

/// Record a payment with its receipt; the invoice is `paid` once the
/// payments reach its amount (more is 409 `overpaid`).
#[utoipa::path(post, path = "/invoices/{id}/payments", tag = "customers", security(("bearer" = [])),
    request_body = InvoicePaymentRequest,
    params(("id" = Uuid, Path, description = "The invoice"), CommandHeaderParams),
    responses((status = 201, description = "Recorded", body = PaymentAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn pay_invoice(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<InvoicePaymentRequest>,
) -> Result<Response, ApiError> {
    let by = caller.principal()?.user_id;
    let path = format!("/invoices/{id}/payments");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let r = body.value;
    let amount = Money::parse("amount", &r.amount, &r.currency).map_err(ApiError::invalid)?;
    let payment = Payment {
        payment_id: Uuid::now_v7(),
        amount: amount.amount,
        paid_on: r.paid_on.unwrap_or_else(|| app.platform.today()),
        receipt_file_id: r.receipt_file_id,
        recorded_by: Some(by),
    };
    let done =
        workflows::pay_invoice(&app.platform, &call.context(), id, payment, amount.currency).await;
    Ok(reply(StatusCode::CREATED, done, |d| PaymentAccepted {
        accepted: CommandAccepted::of(d),
        payment_id: d.value,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"reason": "issued twice"})))]
pub struct VoidRequest {
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub reason: String,
}

/// Void an unpaid invoice (its number stays taken: no gaps, no reuse).
#[utoipa::path(post, path = "/invoices/{id}/void", tag = "customers", security(("bearer" = [])),
    request_body = VoidRequest,
    params(("id" = Uuid, Path, description = "The invoice"), CommandHeaderParams),
    responses((status = 200, description = "Void", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn void_invoice(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<VoidRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/invoices/{id}/void");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let command = InvoiceCommand::Void {
        reason: body.value.reason,
    };
    let done = workflows::invoice_command(&app.platform, &call.context(), id, command).await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct InvoicePaymentView {
    #[schema(value_type = String, format = Uuid)]
    pub payment_id: Uuid,
    pub amount: String,
    #[schema(value_type = String, format = Date)]
    pub paid_on: NaiveDate,
    /// Download it at `/api/v1/files/{receipt_file_id}` (staff).
    #[schema(value_type = String, format = Uuid)]
    pub receipt_file_id: Uuid,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct InvoiceView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub number: String,
    #[schema(value_type = String, format = Uuid)]
    pub customer_id: Uuid,
    pub amount: String,
    pub currency: String,
    #[schema(value_type = String, format = Date)]
    pub issue_date: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub due_date: NaiveDate,
    /// `issued`, `paid` or `void`.
    pub status: String,
    /// Issued, unpaid and past its due date (today).
    pub overdue: bool,
    pub paid: String,
    pub payments: Vec<InvoicePaymentView>,
    pub void_reason: Option<String>,
    pub version: i64,
}

impl InvoiceView {
    pub fn of(row: InvoiceRow, today: NaiveDate) -> Option<Self> {
        let overdue = row.state.overdue(today);
        let paid = row.state.paid();
        let issue = row.state.issue?;
        Some(Self {
            id: row.id,
            number: issue.number,
            customer_id: issue.customer_id,
            amount: issue.amount.amount.to_string(),
            currency: issue.amount.currency,
            issue_date: issue.issue_date,
            due_date: issue.due_date,
            status: row.state.status.as_str().to_string(),
            overdue,
            paid: paid.to_string(),
            payments: row
                .state
                .payments
                .into_iter()
                .map(|p| InvoicePaymentView {
                    payment_id: p.payment_id,
                    amount: p.amount.to_string(),
                    paid_on: p.paid_on,
                    receipt_file_id: p.receipt_file_id,
                })
                .collect(),
            void_reason: row.state.void_reason,
            version: row.version,
        })
    }
}

/// One invoice.
#[utoipa::path(get, path = "/invoices/{id}", tag = "customers", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The invoice"), ReadQuery),
    responses((status = 200, description = "The invoice", body = InvoiceView),
        Unauthorized, Forbidden, NotFound, CommonProblems, ReadProblems))]
pub(super) async fn get_invoice(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<InvoiceView>, ApiError> {
    let id = path_uuid("id", &id)?;
    app.platform.wait_for(BILLING, query.min_position).await?;
    queries::invoice(&app.platform.db.any, id)
        .await?
        .and_then(|r| InvoiceView::of(r, app.platform.today()))
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such invoice"))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvoiceListQuery {
    pub customer_id: Option<Uuid>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    #[param(max_length = 1000)]
    pub cursor: Option<String>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

/// Invoices by number.
#[utoipa::path(get, path = "/invoices", tag = "customers", security(("bearer" = [])),
    params(InvoiceListQuery),
    responses((status = 200, description = "A page of invoices", body = Page<InvoiceView>),
        Unauthorized, Forbidden, CommonProblems, ReadProblems))]
pub(super) async fn list_invoices(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<InvoiceListQuery>,
) -> Result<Json<Page<InvoiceView>>, ApiError> {
    app.platform.wait_for(BILLING, query.min_position).await?;
    let today = app.platform.today();
    let items = queries::invoices(&app.platform.db.any, query.customer_id)
        .await?
        .into_iter()
        .filter_map(|r| InvoiceView::of(r, today))
        .collect();
    Ok(Json(page(
        items,
        |i: &InvoiceView| format!("{}\u{0}{}", i.number, i.id),
        query.limit,
        query.cursor.as_deref(),
    )?))
}
