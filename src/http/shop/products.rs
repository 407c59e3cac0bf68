//! Product categories, products (fitment, stock) and the storefront.

use super::super::page::ReadQuery;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use annals_domain::shop::{Fitment, ProductCommand, ProductTerms};
use annals_domain::values::Money;
use annals_projections::shop::queries::{self, ProductFilter, ProductRow};
use annals_projections::shop::PRODUCTS;

use super::super::command::{accepted, created, CommandHeaderParams, IdempotencyParams};
use super::super::error::{Forbidden, NotFound, ReadProblems, Unauthorized};
use super::super::page::{by_name, page, ListQuery, Page};
use super::super::{
    ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommonProblems, JsonBody,
};
use super::{money, path_id};
use crate::app::shop as workflows;
use crate::auth::permissions::{allows, Action};

/// A product counts as a new arrival this many days after its date.
pub const NEW_ARRIVAL_DAYS: i64 = 30;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Brakes"})))]
pub struct ProductCategoryRequest {
    #[schema(min_length = 1, pattern = r"\S", max_length = 100)]
    pub name: String,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct ProductCategoryView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub name: String,
}

/// Create a product category.
#[utoipa::path(post, path = "/product-categories", tag = "shop", security(("bearer" = [])),
    request_body = ProductCategoryRequest, params(IdempotencyParams),
    responses((status = 201, description = "Created", body = CommandAccepted,
            headers(("Location" = String, description = "The new category"))),
        CommonProblems, CommandProblems, Unauthorized, Forbidden))]
pub(super) async fn create_product_category(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ProductCategoryRequest>,
) -> Response {
    let call = CommandCall::new(caller, headers, "POST", "/product-categories", body.digest);
    let done = workflows::create_category(&app.platform, &call.context(), body.value.name).await;
    created("/product-categories", done, CommandAccepted::of)
}

/// Product categories, by name.
#[utoipa::path(get, path = "/product-categories", tag = "shop", params(ListQuery),
    responses((status = 200, description = "A page of categories", body = Page<ProductCategoryView>),
        CommonProblems, ReadProblems))]
pub(super) async fn list_product_categories(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<ProductCategoryView>>, ApiError> {
    app.platform.wait_for(PRODUCTS, query.min_position).await?;
    let views = queries::categories(&app.platform.db.any)
        .await?
        .into_iter()
        .map(|c| ProductCategoryView {
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

#[derive(Deserialize, Serialize, ToSchema, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FitmentView {
    #[schema(min_length = 1, pattern = r"\S", max_length = 100, example = "Volvo")]
    pub make: String,
    #[schema(min_length = 1, pattern = r"\S", max_length = 100, example = "V70")]
    pub model: String,
    #[schema(minimum = 1900, maximum = 2100, example = 2008)]
    pub year_from: u16,
    #[schema(minimum = 1900, maximum = 2100, example = 2016)]
    pub year_to: u16,
    /// An engine, a trim: what narrows the fit.
    #[schema(min_length = 1, pattern = r"\S", max_length = 100, example = "2.4 D5")]
    pub qualifier: Option<String>,
}

impl From<Fitment> for FitmentView {
    fn from(f: Fitment) -> Self {
        Self {
            make: f.make,
            model: f.model,
            year_from: f.year_from,
            year_to: f.year_to,
            qualifier: f.qualifier,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Brake pads, front", "description": "Ceramic", "sku": "BP-100",
    "category_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "price": "49.90", "currency": "EUR",
    "images": ["https://example.com/bp-100.jpg"], "active": true, "new_arrival": "2026-11-20",
    "track_stock": true, "universal": false,
    "fitment": [{"make": "Volvo", "model": "V70", "year_from": 2008, "year_to": 2016, "qualifier": "2.4 D5"}]})))]
pub struct ProductRequest {
    #[schema(min_length = 1, pattern = r"\S", max_length = 200)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    /// Unique (whatever the case).
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._/-]+$")]
    pub sku: String,
    #[schema(value_type = String, format = Uuid)]
    pub category_id: Uuid,
    /// A decimal amount with at most 2 places.
    #[schema(example = "49.90", pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub price: String,
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    #[serde(default)]
    #[schema(value_type = Vec<super::super::schema::HttpUrl>, max_items = 20)]
    pub images: Vec<String>,
    /// For sale (default: true when created; unchanged when omitted on a change).
    pub active: Option<bool>,
    /// From this date the product is a new arrival (for 30 days).
    #[schema(value_type = Option<String>, format = Date)]
    pub new_arrival: Option<NaiveDate>,
    /// Count the stock: checkout reserves it and never sells more than is available.
    #[serde(default)]
    pub track_stock: bool,
    /// Fits every vehicle (a `fitment` list, if any, is shown but does not narrow it).
    #[serde(default)]
    pub universal: bool,
    #[serde(default)]
    #[schema(max_items = 200)]
    pub fitment: Vec<FitmentView>,
}

/// The request as checked terms, or 422 naming every bad field.
fn product_terms(request: ProductRequest) -> Result<(ProductTerms, Option<bool>), ApiError> {
    let mut errors = Vec::new();
    let price = money("price", &request.price, &request.currency).unwrap_or_else(|mut e| {
        errors.append(&mut e);
        Money {
            amount: Default::default(),
            currency: "XXX".into(),
        }
    });
    let terms = ProductTerms {
        name: request.name.trim().to_string(),
        description: request.description,
        sku: request.sku.trim().to_string(),
        category_id: request.category_id,
        price,
        images: request.images,
        new_arrival: request.new_arrival,
        track_stock: request.track_stock,
        universal: request.universal,
        fitment: request
            .fitment
            .into_iter()
            .map(|f| Fitment {
                make: f.make.trim().to_string(),
                model: f.model.trim().to_string(),
                year_from: f.year_from,
                year_to: f.year_to,
                qualifier: f.qualifier.map(|q| q.trim().to_string()),
            })
            .collect(),
    };
    if let Err(mut more) = terms.check() {
        errors.append(&mut more);
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    Ok((terms, request.active))
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq, Clone)]
pub struct StockView {
    pub on_hand: i64,
    /// Held by placed orders not yet shipped or put out for pickup.
    pub reserved: i64,
    pub available: i64,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq, Clone)]
pub struct ProductView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub sku: String,
    #[schema(value_type = String, format = Uuid)]
    pub category_id: Uuid,
    #[schema(example = "49.90")]
    pub price: String,
    pub currency: String,
    pub images: Vec<String>,
    pub active: bool,
    #[schema(value_type = Option<String>, format = Date)]
    pub new_arrival: Option<NaiveDate>,
    pub universal: bool,
    pub fitment: Vec<FitmentView>,
    /// Absent when the stock is not tracked.
    pub stock: Option<StockView>,
    pub version: i64,
}

impl From<ProductRow> for ProductView {
    fn from(row: ProductRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            description: row.description,
            sku: row.sku,
            category_id: row.category_id,
            price: row.price.to_string(),
            currency: row.currency,
            images: row.images,
            active: row.active,
            new_arrival: row.new_arrival,
            universal: row.universal,
            fitment: row.fitment.into_iter().map(FitmentView::from).collect(),
            stock: row.track_stock.then(|| StockView {
                on_hand: row.on_hand,
                reserved: row.reserved,
                available: (row.on_hand - row.reserved).max(0),
            }),
            version: row.version,
        }
    }
}

/// Create a product (its SKU must be free).
#[utoipa::path(post, path = "/products", tag = "shop", security(("bearer" = [])),
    request_body = ProductRequest, params(IdempotencyParams),
    responses((status = 201, description = "Created", body = CommandAccepted,
            headers(("Location" = String, description = "The new product: /api/v1/products/{id}"))),
        CommonProblems, CommandProblems, NotFound, Unauthorized, Forbidden))]
pub(super) async fn create_product(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ProductRequest>,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(caller, headers, "POST", "/products", body.digest);
    let (terms, active) = product_terms(body.value)?;
    let done = workflows::create_product(
        &app.platform,
        &call.context(),
        terms,
        active.unwrap_or(true),
    )
    .await;
    Ok(created("/products", done, CommandAccepted::of))
}

/// Change a product (all of it). Placed orders keep the prices they were placed at.
#[utoipa::path(put, path = "/products/{id}", tag = "shop", security(("bearer" = [])),
    request_body = ProductRequest, params(("id" = Uuid, Path, description = "The product"), CommandHeaderParams),
    responses((status = 200, description = "Changed", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn update_product(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ProductRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/products/{id}");
    let call = CommandCall::new(caller, headers, "PUT", &path, body.digest);
    let id = path_id(&id)?;
    let (terms, active) = product_terms(body.value)?;
    let done = workflows::update_product(&app.platform, &call.context(), id, terms, active).await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"quantity": 10})))]
pub struct ReceiveRequest {
    #[schema(minimum = 1, maximum = 1000000)]
    pub quantity: u32,
}

/// Units arrived: on hand goes up.
#[utoipa::path(post, path = "/products/{id}/stock/receive", tag = "shop", security(("bearer" = [])),
    request_body = ReceiveRequest, params(("id" = Uuid, Path, description = "The product"), CommandHeaderParams),
    responses((status = 200, description = "Received", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn receive_stock(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ReceiveRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/products/{id}/stock/receive");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_id(&id)?;
    let command = ProductCommand::Receive {
        quantity: body.value.quantity,
    };
    let done = workflows::product_command(&app.platform, &call.context(), id, command).await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"quantity_on_hand": 7, "reason": "yearly count"})))]
pub struct CorrectRequest {
    /// What a count found; not less than what placed orders hold.
    #[schema(minimum = 0, maximum = 100000000)]
    pub quantity_on_hand: u32,
    #[schema(min_length = 1, pattern = r"\S", max_length = 500)]
    pub reason: String,
}

/// A count found a different number on hand.
#[utoipa::path(post, path = "/products/{id}/stock/correct", tag = "shop", security(("bearer" = [])),
    request_body = CorrectRequest, params(("id" = Uuid, Path, description = "The product"), CommandHeaderParams),
    responses((status = 200, description = "Corrected (or already so)", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn correct_stock(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<CorrectRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/products/{id}/stock/correct");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_id(&id)?;
    let command = ProductCommand::Correct {
        on_hand: body.value.quantity_on_hand,
        reason: body.value.reason,
    };
    let done = workflows::product_command(&app.platform, &call.context(), id, command).await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductListQuery {
    /// Text to find in the name, description or SKU (case-insensitive).
    #[param(max_length = 100)]
    pub q: Option<String>,
    pub category_id: Option<Uuid>,
    /// Fits a vehicle of this make (universal parts fit every vehicle).
    #[param(max_length = 100)]
    pub make: Option<String>,
    #[param(max_length = 100)]
    pub model: Option<String>,
    /// Fits this model year.
    #[param(minimum = 1900, maximum = 2100)]
    pub year: Option<u16>,
    /// Only new arrivals (a `new_arrival` date in the last 30 days).
    pub new: Option<bool>,
    /// Also deactivated products (staff who manage the shop only).
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

fn short(name: &str, value: &Option<String>) -> Result<String, ApiError> {
    let text = value.clone().unwrap_or_default();
    if text.chars().count() > 100 {
        return Err(ApiError::bad_parameter(
            name,
            "must be at most 100 characters",
        ));
    }
    Ok(text)
}

/// The business's today, and the first day a new arrival counts from.
fn new_window(app: &AppState) -> (NaiveDate, NaiveDate) {
    let today = app.platform.today();
    (today - Duration::days(NEW_ARRIVAL_DAYS), today)
}

/// Products, by name: text search, category, fitment (make, model, year)
/// and new arrivals.
#[utoipa::path(get, path = "/products", tag = "shop", params(ProductListQuery),
    responses((status = 200, description = "A page of products, by name", body = Page<ProductView>),
        CommonProblems, ReadProblems))]
pub(super) async fn list_products(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ProductListQuery>,
) -> Result<Json<Page<ProductView>>, ApiError> {
    app.platform.wait_for(PRODUCTS, query.min_position).await?;
    let staff = caller
        .1
        .as_ref()
        .is_some_and(|p| allows(Some(&p.roles), Action::ManageShop));
    let filter = ProductFilter {
        text: short("q", &query.q)?,
        category_id: query.category_id,
        make: short("make", &query.make)?,
        model: short("model", &query.model)?,
        year: query.year,
        new_between: query.new.unwrap_or(false).then(|| new_window(&app)),
        include_inactive: staff && query.include_inactive.unwrap_or(false),
    };
    if filter.year.is_some_and(|y| !(1900..=2100).contains(&y)) {
        return Err(ApiError::bad_parameter("year", "must be from 1900 to 2100"));
    }
    let products = queries::products(&app.platform.db.any, &filter)
        .await?
        .into_iter()
        .map(ProductView::from)
        .collect();
    Ok(Json(page(
        products,
        |p| by_name(&p.name, &p.id),
        query.limit,
        query.cursor.as_deref(),
    )?))
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct ProductDetailView {
    #[serde(flatten)]
    pub product: ProductView,
    /// Other products of the same category or for the same vehicles.
    pub related: Vec<ProductView>,
}

/// One product, with related products.
#[utoipa::path(get, path = "/products/{id}", tag = "shop",
    params(("id" = Uuid, Path, description = "The product"), ReadQuery),
    responses((status = 200, description = "The product", body = ProductDetailView),
        NotFound, CommonProblems, ReadProblems))]
pub(super) async fn get_product(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<ProductDetailView>, ApiError> {
    let id = path_id(&id)?;
    app.platform.wait_for(PRODUCTS, query.min_position).await?;
    let staff = caller
        .1
        .as_ref()
        .is_some_and(|p| allows(Some(&p.roles), Action::ManageShop));
    let pool = &app.platform.db.any;
    let product = queries::product(pool, id)
        .await?
        .filter(|p| p.active || staff)
        .ok_or_else(|| ApiError::not_found("no such product"))?;
    let related = queries::related(pool, &product, 8)
        .await?
        .into_iter()
        .map(ProductView::from)
        .collect();
    Ok(Json(ProductDetailView {
        product: product.into(),
        related,
    }))
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct StoreCategoryView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub name: String,
    /// A few of its products, by name.
    pub products: Vec<ProductView>,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct StorefrontView {
    /// Newest first.
    pub new_arrivals: Vec<ProductView>,
    /// Categories with products, by name.
    pub categories: Vec<StoreCategoryView>,
}

/// Products shown per category on the storefront.
const PER_CATEGORY: usize = 4;

/// The storefront: new arrivals, and a few products of each category.
#[utoipa::path(get, path = "/store", tag = "shop", params(ReadQuery),
    responses((status = 200, description = "The storefront", body = StorefrontView),
        CommonProblems, ReadProblems))]
pub(super) async fn storefront(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<StorefrontView>, ApiError> {
    app.platform.wait_for(PRODUCTS, query.min_position).await?;
    let pool = &app.platform.db.any;
    let (since, today) = new_window(&app);
    let new_arrivals = queries::new_arrivals(pool, since, today, 8)
        .await?
        .into_iter()
        .map(ProductView::from)
        .collect();
    let all = queries::products(pool, &ProductFilter::default()).await?;
    let categories = queries::categories(pool)
        .await?
        .into_iter()
        .filter_map(|c| {
            let products: Vec<ProductView> = all
                .iter()
                .filter(|p| p.category_id == c.id)
                .take(PER_CATEGORY)
                .cloned()
                .map(ProductView::from)
                .collect();
            (!products.is_empty()).then_some(StoreCategoryView {
                id: c.id,
                name: c.name,
                products,
            })
        })
        .collect();
    Ok(Json(StorefrontView {
        new_arrivals,
        categories,
    }))
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct VehicleView {
    #[schema(example = "Volvo")]
    pub make: String,
    #[schema(example = json!(["V70", "XC90"]))]
    pub models: Vec<String>,
}

/// The makes and models the catalog's products fit (for a vehicle picker;
/// pass them to `GET /products` as `make` and `model`).
#[utoipa::path(get, path = "/vehicles", tag = "shop", params(ReadQuery),
    responses((status = 200, description = "Makes by name, each with its models", body = Vec<VehicleView>),
        CommonProblems, ReadProblems))]
pub(super) async fn vehicles(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<Vec<VehicleView>>, ApiError> {
    app.platform.wait_for(PRODUCTS, query.min_position).await?;
    Ok(Json(
        queries::vehicles(&app.platform.db.any)
            .await?
            .into_iter()
            .map(|v| VehicleView {
                make: v.make,
                models: v.models,
            })
            .collect(),
    ))
}
