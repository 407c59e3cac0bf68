//! Customers (one list, and one page about each), invoices with receipts,
//! scheduled messages and the due reminders.

mod invoices;
mod messages;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use annals_domain::customer::{CustomerCommand, CustomerProfile};
use annals_domain::user::{Email, Phone};
use annals_domain::FieldError;
use annals_projections::billing::{queries as billing, BillingProjector, BILLING};
use annals_projections::marketing::{queries, MARKETING};
use annals_projections::Projector;

use axum::http::StatusCode;

use super::command::{accepted, created, CommandHeaderParams, IdempotencyParams};
use super::error::{Forbidden, NotFound, ReadProblems, Unauthorized};
use super::extract::{not_null, path_uuid};
use super::marketing::ContractView;
use super::page::{by_name, page, Page, ReadQuery};
use super::{
    ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommonProblems, JsonBody,
};
use crate::app::customers as workflows;
use crate::platform::Module;

pub use invoices::InvoiceView;
pub use messages::MessageView;

pub struct CustomersModule;

impl Module for CustomersModule {
    fn name(&self) -> &'static str {
        "customers"
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(create_customer, list_customers))
            .routes(routes!(get_customer, update_customer))
            .routes(routes!(link_customer_user))
            .routes(routes!(erase_customer))
            .routes(routes!(invoices::issue_invoice, invoices::list_invoices))
            .routes(routes!(invoices::get_invoice))
            .routes(routes!(invoices::pay_invoice))
            .routes(routes!(invoices::void_invoice))
            .routes(routes!(messages::schedule_message))
            .routes(routes!(messages::get_message))
            .routes(routes!(messages::cancel_message))
            .routes(routes!(messages::reschedule_message))
            .routes(routes!(messages::due_reminders))
            .routes(routes!(messages::acknowledge_reminder))
    }

    fn projectors(&self) -> Vec<Arc<dyn Projector>> {
        vec![Arc::new(BillingProjector)]
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Jane Roe", "email": "jane@example.com", "phone": "+447700900123", "address": "1 High Street, Leeds", "notes": "prefers e-mail"})))]
pub struct CustomerRequest {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    #[serde(default, deserialize_with = "not_null")]
    #[schema(format = Email, max_length = 254, nullable = false)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    #[schema(pattern = r"^\+?[0-9]{10,15}$", nullable = false)]
    pub phone: Option<String>,
    #[schema(max_length = 500)]
    pub address: Option<String>,
    #[schema(max_length = 5000)]
    pub notes: Option<String>,
    /// The customer's login: a user with the `client` role.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub user_id: Option<Uuid>,
}

fn profile(r: CustomerRequest) -> Result<(CustomerProfile, Option<Uuid>), ApiError> {
    let mut errors: Vec<FieldError> = Vec::new();
    let given = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let email =
        given(r.email).and_then(|e| Email::parse("email", &e).map_err(|e| errors.push(e)).ok());
    let phone =
        given(r.phone).and_then(|p| Phone::parse("phone", &p).map_err(|e| errors.push(e)).ok());
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    Ok((
        CustomerProfile {
            name: r.name,
            email,
            phone,
            address: r.address,
            notes: r.notes,
        },
        r.user_id,
    ))
}

/// Add a customer (with or without a login).
#[utoipa::path(post, path = "/customers", tag = "customers", security(("bearer" = [])),
    request_body = CustomerRequest, params(IdempotencyParams),
    responses((status = 201, description = "Created", body = CommandAccepted,
            headers(("Location" = String, description = "The customer: /api/v1/customers/{id}"))),
        CommonProblems, CommandProblems, Unauthorized, Forbidden, NotFound))]
pub(super) async fn create_customer(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<CustomerRequest>,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(caller, headers, "POST", "/customers", body.digest);
    let (profile, user) = profile(body.value)?;
    let done = workflows::create_customer(&app.platform, &call.context(), profile, user).await;
    Ok(created("/customers", done, CommandAccepted::of))
}

/// Change a customer's name and contact details (`user_id` is ignored
/// here: link a login with `POST /customers/{id}/user`).
#[utoipa::path(put, path = "/customers/{id}", tag = "customers", security(("bearer" = [])),
    request_body = CustomerRequest,
    params(("id" = Uuid, Path, description = "The customer"), CommandHeaderParams),
    responses((status = 200, description = "Changed (or already so)", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn update_customer(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<CustomerRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/customers/{id}");
    let call = CommandCall::new(caller, headers, "PUT", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let (profile, _) = profile(body.value)?;
    let command = CustomerCommand::Update { profile };
    let done = workflows::change_customer(&app.platform, &call.context(), id, command).await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"user_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f"})))]
pub struct LinkUserRequest {
    /// A user with the `client` role.
    #[schema(value_type = String, format = Uuid)]
    pub user_id: Uuid,
}

/// Link the customer to their login (a client user), later than at
/// creation: their page then shows that user's appointments, orders and
/// subscriptions, and Telegram messages reach that user's chat.
#[utoipa::path(post, path = "/customers/{id}/user", tag = "customers", security(("bearer" = [])),
    request_body = LinkUserRequest,
    params(("id" = Uuid, Path, description = "The customer"), CommandHeaderParams),
    responses((status = 200, description = "Linked (or already)", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn link_customer_user(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<LinkUserRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/customers/{id}/user");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let command = CustomerCommand::LinkUser {
        user_id: body.value.user_id,
    };
    let done = workflows::change_customer(&app.platform, &call.context(), id, command).await;
    Ok(accepted(StatusCode::OK, done))
}

/// Erase the customer's personal data (admin): crypto-shredding. The name
/// reads `[erased]` and the contact details, address and notes are gone,
/// in every answer, read model, rebuild and history; the lead it came from
/// and its login are erased with it.
#[utoipa::path(post, path = "/customers/{id}/erase", tag = "customers", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The customer"), CommandHeaderParams),
    responses((status = 200, description = "Erased (a retry erases again)", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn erase_customer(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let path = format!("/customers/{id}/erase");
    let call = CommandCall::new(caller, headers, "POST", &path, String::new());
    let person = crate::app::privacy::Person::Customer(path_uuid("id", &id)?);
    let done = crate::app::privacy::erase(&app.platform, &call.context(), person).await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct CustomerSummary {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub user_id: Option<Uuid>,
    /// The lead it was converted from.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub lead_id: Option<Uuid>,
}

fn summary(row: &queries::CustomerRow) -> Option<CustomerSummary> {
    let p = row.state.profile.as_ref()?;
    Some(CustomerSummary {
        id: row.id,
        name: p.name.clone(),
        email: p.email.as_ref().map(|e| e.as_str().to_string()),
        phone: p.phone.as_ref().map(|e| e.as_str().to_string()),
        user_id: row.state.user_id,
        lead_id: row.state.lead_id,
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerListQuery {
    /// Part of the name, e-mail or phone.
    #[param(max_length = 200)]
    pub q: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    #[param(max_length = 1000)]
    pub cursor: Option<String>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

/// Customers by name — added by staff or converted from leads, one list.
#[utoipa::path(get, path = "/customers", tag = "customers", security(("bearer" = [])),
    params(CustomerListQuery),
    responses((status = 200, description = "A page of customers", body = Page<CustomerSummary>),
        Unauthorized, Forbidden, CommonProblems, ReadProblems))]
pub(super) async fn list_customers(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<CustomerListQuery>,
) -> Result<Json<Page<CustomerSummary>>, ApiError> {
    if query.q.as_ref().is_some_and(|q| q.chars().count() > 200) {
        return Err(ApiError::bad_parameter("q", "at most 200 characters"));
    }
    app.platform.wait_for(MARKETING, query.min_position).await?;
    let q = query.q.as_deref().filter(|q| !q.trim().is_empty());
    let rows = queries::customers(&app.platform.db.any, q).await?;
    let items = rows.iter().filter_map(summary).collect();
    Ok(Json(page(
        items,
        |c: &CustomerSummary| by_name(&c.name, &c.id),
        query.limit,
        query.cursor.as_deref(),
    )?))
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct LinkedAppointment {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub start: String,
    pub status: String,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct LinkedSubscription {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub plan_id: Uuid,
    #[schema(value_type = Option<String>, format = Date)]
    pub ends_on: Option<NaiveDate>,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct LinkedProject {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub title: String,
    /// `requested`, `planned`, `in_progress`, ... (see `GET /projects/{id}`).
    pub state: String,
    pub percent_done: u8,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct LinkedOrder {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub number: String,
    pub status: String,
}

/// One page about one customer.
#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct CustomerPage {
    #[serde(flatten)]
    pub customer: CustomerSummary,
    pub address: Option<String>,
    pub notes: Option<String>,
    pub invoices: Vec<InvoiceView>,
    pub messages: Vec<MessageView>,
    /// For those who may read contracts (admin, manager); empty otherwise.
    pub contracts: Vec<ContractView>,
    /// When linked to a user: their coming appointments, orders and
    /// subscriptions.
    pub appointments: Vec<LinkedAppointment>,
    pub orders: Vec<LinkedOrder>,
    pub subscriptions: Vec<LinkedSubscription>,
    /// Their project requests, newest first.
    pub projects: Vec<LinkedProject>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    pub version: i64,
}

/// One customer: invoices, scheduled messages, contracts, and (when
/// linked to a user) appointments, orders, subscriptions and projects.
#[utoipa::path(get, path = "/customers/{id}", tag = "customers", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The customer"), ReadQuery),
    responses((status = 200, description = "The customer", body = CustomerPage),
        Unauthorized, Forbidden, NotFound, CommonProblems, ReadProblems))]
pub(super) async fn get_customer(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<CustomerPage>, ApiError> {
    let me = caller.principal()?.clone();
    let id = path_uuid("id", &id)?;
    for consumer in [MARKETING, BILLING, annals_projections::projects::PROJECTS] {
        app.platform.wait_for(consumer, query.min_position).await?;
    }
    let pool = &app.platform.db.any;
    let row = queries::customer(pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such customer"))?;
    let (Some(customer), Some(profile)) = (summary(&row), row.state.profile.clone()) else {
        return Err(ApiError::not_found("no such customer"));
    };
    let today = app.platform.today();
    let invoices = billing::invoices(pool, Some(id))
        .await?
        .into_iter()
        .filter_map(|r| InvoiceView::of(r, today))
        .collect();
    let messages = billing::messages_of(pool, id)
        .await?
        .into_iter()
        .filter_map(MessageView::of)
        .collect();
    let contracts = if super::marketing::CONTRACT_READERS
        .iter()
        .any(|r| me.has(*r))
    {
        queries::contracts(pool, Some(id))
            .await?
            .into_iter()
            .map(ContractView::from)
            .collect()
    } else {
        Vec::new()
    };
    let (mut appointments, mut orders, mut subscriptions) = (Vec::new(), Vec::new(), Vec::new());
    let mut projects = Vec::new();
    if let Some(user) = row.state.user_id {
        projects = annals_projections::projects::queries::projects(pool, Some(user))
            .await?
            .into_iter()
            .filter_map(|p| {
                Some(LinkedProject {
                    id: p.id,
                    title: p.state.project.request?.title,
                    state: p.state.project.state.as_str().into(),
                    percent_done: p.state.project.percent_done,
                })
            })
            .collect();
        let now = app.platform.clock.now();
        appointments =
            annals_projections::appointments::queries::upcoming_of_client(pool, user, now, 50)
                .await?
                .into_iter()
                .map(|a| LinkedAppointment {
                    id: a.id,
                    start: a.start,
                    status: a.status,
                })
                .collect();
        let filter = annals_projections::shop::queries::OrderFilter {
            customer_id: Some(user),
            ..Default::default()
        };
        orders = annals_projections::shop::queries::orders(pool, &filter)
            .await?
            .into_iter()
            .map(|o| LinkedOrder {
                id: o.id,
                number: o.number,
                status: o.status,
            })
            .collect();
        subscriptions = annals_projections::gym::queries::subscriptions(pool, Some(user), None)
            .await?
            .into_iter()
            .map(|s| LinkedSubscription {
                id: s.id,
                plan_id: s.plan_id,
                ends_on: s.state.ends_on(),
            })
            .collect();
    }
    Ok(Json(CustomerPage {
        customer,
        address: profile.address,
        notes: profile.notes,
        invoices,
        messages,
        contracts,
        appointments,
        orders,
        subscriptions,
        projects,
        created_at: row.created_at,
        version: row.version,
    }))
}
