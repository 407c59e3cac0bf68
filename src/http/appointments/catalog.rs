//! The service catalog: categories and services.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use annals_domain::catalog::ServiceTerms;
use annals_domain::values::Money;
use annals_projections::appointments::queries::{self, ServiceRow};
use annals_projections::appointments::CATALOG;

use super::super::command::{accepted, created, CommandHeaderParams, IdempotencyParams};
use super::super::error::ReadProblems;
use super::super::page::{by_name, page, ListQuery, Page};
use super::super::{
    ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommonProblems, JsonBody,
};
use super::{path_id, ReadQuery};
use crate::app::appointments as workflows;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Hair"})))]
pub struct CategoryRequest {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct CategoryView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub name: String,
}

/// Create a service category.
#[utoipa::path(post, path = "/service-categories", tag = "appointments", security(("bearer" = [])),
    request_body = CategoryRequest, params(IdempotencyParams),
    responses((status = 201, description = "Created", body = CommandAccepted,
            headers(("Location" = String, description = "The new category: /api/v1/service-categories/{id}"))),
        CommonProblems, CommandProblems,
        super::super::error::Unauthorized,
        super::super::error::Forbidden,))]
pub(super) async fn create_category(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<CategoryRequest>,
) -> Response {
    let call = CommandCall::new(caller, headers, "POST", "/service-categories", body.digest);
    let done = workflows::create_category(&app.platform, &call.context(), body.value.name).await;
    created("/service-categories", done, CommandAccepted::of)
}

/// Service categories, by name.
#[utoipa::path(get, path = "/service-categories", tag = "appointments", params(ListQuery),
    responses((status = 200, description = "A page of categories, by name", body = Page<CategoryView>), CommonProblems, ReadProblems))]
pub(super) async fn list_categories(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<CategoryView>>, ApiError> {
    app.platform.wait_for(CATALOG, query.min_position).await?;
    let views = queries::categories(&app.platform.db.any)
        .await?
        .into_iter()
        .map(|c| CategoryView {
            id: c.id,
            name: c.name,
        })
        .collect();
    Ok(Json(page(
        views,
        |c| by_name(&c.name, &c.id),
        query.limit,
        query.cursor.as_deref(),
    )?))
}

/// One service category.
#[utoipa::path(get, path = "/service-categories/{id}", tag = "appointments",
    params(("id" = Uuid, Path, description = "The category"), ReadQuery),
    responses((status = 200, description = "The category", body = CategoryView),
        super::super::error::NotFound,
        CommonProblems, ReadProblems))]
pub(super) async fn get_category(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<CategoryView>, ApiError> {
    let id = path_id(&id)?;
    app.platform.wait_for(CATALOG, query.min_position).await?;
    queries::category(&app.platform.db.any, id)
        .await?
        .map(|c| {
            Json(CategoryView {
                id: c.id,
                name: c.name,
            })
        })
        .ok_or_else(|| ApiError::not_found("no such category"))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Haircut", "description": "Wash, cut, dry", "category_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "duration_minutes": 45, "price": "25.00", "currency": "EUR", "buffer_before_minutes": 0, "buffer_after_minutes": 15})))]
pub struct ServiceRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    #[schema(value_type = String, format = Uuid)]
    pub category_id: Uuid,
    #[schema(minimum = 5, maximum = 720)]
    pub duration_minutes: u32,
    /// A decimal amount with at most 2 places.
    #[schema(example = "25.00", pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub price: String,
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 240)]
    pub buffer_before_minutes: u32,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 240)]
    pub buffer_after_minutes: u32,
    #[schema(max_length = 2000, pattern = "^https?://")]
    pub image_url: Option<String>,
    /// In the catalog (default: true when created; unchanged when omitted
    /// on a change).
    pub active: Option<bool>,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq, Clone)]
pub struct ServiceView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub name: String,
    pub description: String,
    #[schema(value_type = String, format = Uuid)]
    pub category_id: Uuid,
    pub duration_minutes: i64,
    #[schema(example = "25.00")]
    pub price: String,
    pub currency: String,
    pub buffer_before_minutes: i64,
    pub buffer_after_minutes: i64,
    pub image_url: Option<String>,
    pub active: bool,
    pub version: i64,
}

impl From<ServiceRow> for ServiceView {
    fn from(row: ServiceRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            description: row.description,
            category_id: row.category_id,
            duration_minutes: row.duration_minutes,
            price: row.price,
            currency: row.currency,
            buffer_before_minutes: row.buffer_before_minutes,
            buffer_after_minutes: row.buffer_after_minutes,
            image_url: row.image_url,
            active: row.active,
            version: row.version,
        }
    }
}

/// The request as checked terms, or 422 naming every bad field.
fn service_terms(request: ServiceRequest) -> Result<(ServiceTerms, Option<bool>), ApiError> {
    let active = request.active;
    let mut errors = Vec::new();
    let price = match Money::parse("price", &request.price, request.currency.trim()) {
        Ok(m) => Some(m),
        Err(mut e) => {
            errors.append(&mut e);
            None
        }
    };
    let terms = ServiceTerms {
        name: request.name.trim().to_string(),
        description: request.description,
        category_id: request.category_id,
        duration_minutes: request.duration_minutes,
        price: price.unwrap_or(Money {
            amount: Default::default(),
            currency: "XXX".into(),
        }),
        buffer_before_minutes: request.buffer_before_minutes,
        buffer_after_minutes: request.buffer_after_minutes,
        image_url: request.image_url.filter(|u| !u.trim().is_empty()),
    };
    if let Err(mut more) = terms.check() {
        errors.append(&mut more);
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    Ok((terms, active))
}

/// Create a service.
#[utoipa::path(post, path = "/services", tag = "appointments", security(("bearer" = [])),
    request_body = ServiceRequest, params(IdempotencyParams),
    responses((status = 201, description = "Created", body = CommandAccepted,
            headers(("Location" = String, description = "The new service: /api/v1/services/{id}"))),
        CommonProblems, CommandProblems,
        super::super::error::NotFound,
        super::super::error::Unauthorized,
        super::super::error::Forbidden,))]
pub(super) async fn create_service(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ServiceRequest>,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(caller, headers, "POST", "/services", body.digest);
    let (terms, active) = service_terms(body.value)?;
    let done = workflows::create_service(
        &app.platform,
        &call.context(),
        terms,
        active.unwrap_or(true),
    )
    .await;
    Ok(created("/services", done, CommandAccepted::of))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ServiceListQuery {
    /// Text to find in the name or description (case-insensitive).
    #[param(max_length = 100)]
    pub q: Option<String>,
    pub category_id: Option<Uuid>,
    /// Also list deactivated services.
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

/// The public catalog: active services, with text search and a category filter.
#[utoipa::path(get, path = "/services", tag = "appointments", params(ServiceListQuery),
    responses((status = 200, description = "A page of services, by name", body = Page<ServiceView>), CommonProblems, ReadProblems))]
pub(super) async fn list_services(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<ServiceListQuery>,
) -> Result<Json<Page<ServiceView>>, ApiError> {
    app.platform.wait_for(CATALOG, query.min_position).await?;
    if query.q.as_ref().is_some_and(|q| q.chars().count() > 100) {
        return Err(ApiError::bad_parameter(
            "q",
            "must be at most 100 characters",
        ));
    }
    let services = queries::services(
        &app.platform.db.any,
        query.q.as_deref().unwrap_or_default(),
        query.category_id,
        query.include_inactive.unwrap_or(false),
    )
    .await?
    .into_iter()
    .map(ServiceView::from)
    .collect();
    Ok(Json(page(
        services,
        |s| by_name(&s.name, &s.id),
        query.limit,
        query.cursor.as_deref(),
    )?))
}

/// One service.
#[utoipa::path(get, path = "/services/{id}", tag = "appointments",
    params(("id" = Uuid, Path, description = "The service"), ReadQuery),
    responses((status = 200, description = "The service", body = ServiceView),
        super::super::error::NotFound,
        CommonProblems, ReadProblems))]
pub(super) async fn get_service(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<ServiceView>, ApiError> {
    let id = path_id(&id)?;
    app.platform.wait_for(CATALOG, query.min_position).await?;
    queries::service(&app.platform.db.any, id)
        .await?
        .map(|s| Json(s.into()))
        .ok_or_else(|| ApiError::not_found("no such service"))
}

/// Change a service (all of it). Appointments keep the terms they were booked with.
#[utoipa::path(put, path = "/services/{id}", tag = "appointments", security(("bearer" = [])),
    request_body = ServiceRequest, params(("id" = Uuid, Path, description = "The service"), CommandHeaderParams),
    responses((status = 200, description = "Changed", body = CommandAccepted),
        super::super::error::NotFound,
        super::super::error::Unauthorized,
        super::super::error::Forbidden,
        CommonProblems, CommandProblems))]
pub(super) async fn update_service(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ServiceRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/services/{id}");
    let call = CommandCall::new(caller, headers, "PUT", &path, body.digest);
    let id = path_id(&id)?;
    let (terms, active) = service_terms(body.value)?;
    let done = workflows::update_service(&app.platform, &call.context(), id, terms, active).await;
    Ok(accepted(StatusCode::OK, done))
}

/// Take a service out of the catalog (existing appointments stay).
#[utoipa::path(post, path = "/services/{id}/deactivate", tag = "appointments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The service"), CommandHeaderParams),
    responses((status = 200, description = "Deactivated (or already)", body = CommandAccepted),
        super::super::error::NotFound,
        super::super::error::Unauthorized,
        super::super::error::Forbidden,
        CommonProblems, CommandProblems))]
pub(super) async fn deactivate_service(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let path = format!("/services/{id}/deactivate");
    let call = CommandCall::new(caller, headers, "POST", &path, String::new());
    let id = path_id(&id)?;
    let done = workflows::deactivate_service(&app.platform, &call.context(), id).await;
    Ok(accepted(StatusCode::OK, done))
}
