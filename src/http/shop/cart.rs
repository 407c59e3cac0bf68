//! The cart (a signed-in user's own, or a guest's by `X-Cart-Id`) and
//! checkout. A cart is read from its own stream, so what was put in is
//! there at once, priced at the caller's prices (dealer prices for dealers).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use annals_domain::shop::order::Address;
use annals_domain::shop::{Customer, Placement};
use annals_domain::user::{Email, Phone};
use annals_domain::FieldError;

use super::super::command::reply;
use super::super::error::NotFound;
use super::super::{
    ApiError, AppState, Caller, CommandCall, CommandHeaders, CommandProblems, CommonProblems,
    JsonBody,
};
use super::orders::{DeliveryView, OrderLineView};
use super::{CartHeader, CartHeaderParams};
use crate::app::shop::{self as workflows, CartChange, CartOwner, CheckoutForm, PricedCart};
use crate::app::Done;

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq, Clone)]
pub struct CartLineView {
    #[serde(flatten)]
    pub line: OrderLineView,
    /// Still for sale (checkout refuses a deactivated product).
    pub active: bool,
    /// Units available now (tracked stock only).
    pub available: Option<u32>,
}

/// The step that follows `buy_now`.
#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq, Clone)]
pub struct NextStep {
    #[schema(example = "checkout")]
    pub step: String,
    #[schema(example = "POST")]
    pub method: String,
    #[schema(example = "/api/v1/checkout")]
    pub href: String,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq, Clone)]
pub struct CartView {
    /// Send it as `X-Cart-Id` (guests); absent when there is no cart yet.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub cart_id: Option<String>,
    pub lines: Vec<CartLineView>,
    /// At the caller's prices.
    #[schema(example = "99.80")]
    pub total: String,
    pub currency: Option<String>,
    /// The cart's version (its stream's).
    pub version: i64,
    /// Global position of the cart's latest change by this request (0 if none).
    pub position: i64,
    /// With `buy_now`: where to go next.
    pub next: Option<NextStep>,
}

impl CartView {
    fn of(cart: &PricedCart, position: i64) -> Self {
        Self {
            cart_id: Some(cart.cart_id.clone()),
            lines: cart
                .lines
                .iter()
                .map(|l| CartLineView {
                    line: OrderLineView::from(&l.line),
                    active: l.active,
                    available: l.available,
                })
                .collect(),
            total: cart.total.to_string(),
            currency: cart.currency.clone(),
            version: cart.version,
            position,
            next: None,
        }
    }

    fn empty() -> Self {
        Self {
            cart_id: None,
            lines: Vec::new(),
            total: "0.00".into(),
            currency: None,
            version: 0,
            position: 0,
            next: None,
        }
    }
}

/// Whose cart a request is about: the guest cart it names, else the
/// signed-in user's; `None` for a guest without one.
fn owner(caller: &Caller, cart: &CartHeader) -> Option<CartOwner> {
    match (cart.0, &caller.1) {
        (Some(id), _) => Some(CartOwner::Guest(id)),
        (None, Some(me)) => Some(CartOwner::User(me.user_id)),
        (None, None) => None,
    }
}

/// The cart at your prices (empty for a guest who has none yet).
#[utoipa::path(get, path = "/cart", tag = "shop", params(CartHeaderParams),
    responses((status = 200, description = "The cart", body = CartView),
        NotFound, CommonProblems))]
pub(super) async fn get_cart(
    State(app): State<AppState>,
    caller: Caller,
    cart: CartHeader,
) -> Result<Json<CartView>, ApiError> {
    let Some(owner) = owner(&caller, &cart) else {
        return Ok(Json(CartView::empty()));
    };
    let priced = workflows::view_cart(&app.platform, owner, caller.1.as_deref()).await?;
    Ok(Json(CartView::of(&priced, 0)))
}

/// Open a cart: a guest gets a new one (send its `cart_id` as `X-Cart-Id`
/// from then on); a signed-in user gets their own.
#[utoipa::path(post, path = "/cart", tag = "shop",
    responses((status = 201, description = "A new guest cart", body = CartView),
        (status = 200, description = "The signed-in user's cart", body = CartView),
        CommonProblems, CommandProblems))]
pub(super) async fn open_cart(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let (owner, status) = match &caller.1 {
        Some(me) => (CartOwner::User(me.user_id), StatusCode::OK),
        None => (CartOwner::NewGuest(Uuid::new_v4()), StatusCode::CREATED),
    };
    let path = format!("/cart {}", owner.cart_id());
    let me = caller.1.clone();
    let call = CommandCall::new(caller, headers, "POST", &path, String::new());
    let done = workflows::open_cart(&app.platform, &call.context(), owner).await;
    let priced = match &done {
        Ok(_) => Some(workflows::view_cart(&app.platform, opened(owner), me.as_deref()).await?),
        Err(_) => None,
    };
    Ok(reply(status, done, |d| {
        CartView::of(priced.as_ref().expect("priced when done"), d.position)
    }))
}

/// A new guest cart is a guest cart once opened.
fn opened(owner: CartOwner) -> CartOwner {
    match owner {
        CartOwner::NewGuest(id) => CartOwner::Guest(id),
        other => other,
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"product_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "quantity": 2})))]
pub struct AddItemRequest {
    #[schema(value_type = String, format = Uuid)]
    pub product_id: Uuid,
    /// Added to what the cart holds; the line stays within 1–999.
    #[schema(minimum = 1, maximum = 999)]
    pub quantity: u32,
    /// Answer with the checkout step (`next`).
    #[serde(default)]
    pub buy_now: bool,
}

fn answer(done: Result<Done<PricedCart>, crate::app::AppError>, buy_now: bool) -> Response {
    reply(StatusCode::OK, done, |d| {
        let mut view = CartView::of(&d.value, d.position);
        if buy_now {
            view.next = Some(NextStep {
                step: "checkout".into(),
                method: "POST".into(),
                href: "/api/v1/checkout".into(),
            });
        }
        view
    })
}

/// Put a product in the cart (a guest without a cart gets a new one:
/// its id is in the answer).
#[utoipa::path(post, path = "/cart/items", tag = "shop",
    request_body = AddItemRequest, params(CartHeaderParams, super::super::command::IdempotencyParams),
    responses((status = 200, description = "The cart at your prices", body = CartView),
        NotFound, CommonProblems, CommandProblems))]
pub(super) async fn add_item(
    State(app): State<AppState>,
    caller: Caller,
    cart: CartHeader,
    headers: CommandHeaders,
    body: JsonBody<AddItemRequest>,
) -> Response {
    let owner = owner(&caller, &cart).unwrap_or(CartOwner::NewGuest(Uuid::new_v4()));
    let me = caller.1.clone();
    let path = format!("/cart/items {}", owner.cart_id());
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let change = CartChange::Add {
        product_id: body.value.product_id,
        quantity: body.value.quantity,
    };
    let done =
        workflows::change_cart(&app.platform, &call.context(), owner, me.as_deref(), change).await;
    answer(done, body.value.buy_now)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"quantity": 3})))]
pub struct QuantityRequest {
    #[schema(minimum = 1, maximum = 999)]
    pub quantity: u32,
}

/// Change how many of a product the cart holds.
#[utoipa::path(put, path = "/cart/items/{product_id}", tag = "shop",
    request_body = QuantityRequest,
    params(("product_id" = Uuid, Path, description = "The product"), CartHeaderParams, super::super::command::IdempotencyParams),
    responses((status = 200, description = "The cart at your prices", body = CartView),
        NotFound, CommonProblems, CommandProblems))]
pub(super) async fn set_quantity(
    State(app): State<AppState>,
    Path(product_id): Path<String>,
    caller: Caller,
    cart: CartHeader,
    headers: CommandHeaders,
    body: JsonBody<QuantityRequest>,
) -> Result<Response, ApiError> {
    let product_id = super::super::extract::path_uuid("product_id", &product_id)?;
    let Some(owner) = owner(&caller, &cart) else {
        return Err(ApiError::not_found("no cart: put a product in first"));
    };
    let me = caller.1.clone();
    let path = format!("/cart/items/{product_id} {}", owner.cart_id());
    let call = CommandCall::new(caller, headers, "PUT", &path, body.digest);
    let change = CartChange::SetQuantity {
        product_id,
        quantity: body.value.quantity,
    };
    let done =
        workflows::change_cart(&app.platform, &call.context(), owner, me.as_deref(), change).await;
    Ok(answer(done, false))
}

/// Take a product out of the cart.
#[utoipa::path(delete, path = "/cart/items/{product_id}", tag = "shop",
    params(("product_id" = Uuid, Path, description = "The product"), CartHeaderParams, super::super::command::IdempotencyParams),
    responses((status = 200, description = "The cart at your prices", body = CartView),
        NotFound, CommonProblems, CommandProblems))]
pub(super) async fn remove_item(
    State(app): State<AppState>,
    Path(product_id): Path<String>,
    caller: Caller,
    cart: CartHeader,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let product_id = super::super::extract::path_uuid("product_id", &product_id)?;
    let Some(owner) = owner(&caller, &cart) else {
        return Err(ApiError::not_found("no cart: put a product in first"));
    };
    let me = caller.1.clone();
    let path = format!("/cart/items/{product_id} {}", owner.cart_id());
    let call = CommandCall::new(caller, headers, "DELETE", &path, String::new());
    let change = CartChange::Remove { product_id };
    let done =
        workflows::change_cart(&app.platform, &call.context(), owner, me.as_deref(), change).await;
    Ok(answer(done, false))
}

/// One line of an address (not blank), for the OpenAPI document.
pub struct AddressLine;

impl utoipa::PartialSchema for AddressLine {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(200))
            .pattern(Some(r"\S"))
            .into()
    }
}

impl ToSchema for AddressLine {}

#[derive(Deserialize, Serialize, ToSchema, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AddressRequest {
    #[schema(value_type = Vec<AddressLine>, min_items = 1, max_items = 4, example = json!(["1 Main Street"]))]
    pub address_lines: Vec<String>,
    #[schema(min_length = 1, pattern = r"\S", max_length = 100, example = "Oslo")]
    pub city: String,
    #[schema(min_length = 1, pattern = r"\S", max_length = 20, example = "0150")]
    pub postal_code: String,
    #[schema(min_length = 1, pattern = r"\S", max_length = 100, example = "Norway")]
    pub country: String,
}

/// The checkout body as it is read; the document shows it as
/// `CheckoutBody` (shipping or pickup, exactly one).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    pub customer_name: String,
    pub phone: String,
    pub email: String,
    pub shipping: Option<AddressRequest>,
    pub pickup: Option<bool>,
}

/// A boolean that can only be `value`, for the OpenAPI document.
fn only(value: bool) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .enum_values(Some([value]))
        .into()
}

/// `pickup: true`.
pub struct PickupChosen;

impl utoipa::PartialSchema for PickupChosen {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        only(true)
    }
}

impl ToSchema for PickupChosen {}

/// `pickup: false` (beside a shipping address).
pub struct NoPickup;

impl utoipa::PartialSchema for NoPickup {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        only(false)
    }
}

impl ToSchema for NoPickup {}

/// Checkout to a shipping address.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CheckoutShipping {
    #[schema(min_length = 1, pattern = r"\S", max_length = 200)]
    customer_name: String,
    /// An optional `+` and 10 to 15 digits.
    #[schema(pattern = r"^\+?[0-9]{10,15}$", example = "+441234567890")]
    phone: String,
    #[schema(format = "email", max_length = 254, example = "ada@example.com")]
    email: String,
    shipping: AddressRequest,
    #[schema(value_type = Option<NoPickup>)]
    pickup: Option<bool>,
}

/// Checkout for collection at the shop.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CheckoutPickup {
    #[schema(min_length = 1, pattern = r"\S", max_length = 200)]
    customer_name: String,
    /// An optional `+` and 10 to 15 digits.
    #[schema(pattern = r"^\+?[0-9]{10,15}$", example = "+441234567890")]
    phone: String,
    #[schema(format = "email", max_length = 254, example = "ada@example.com")]
    email: String,
    #[schema(value_type = PickupChosen)]
    pickup: bool,
}

/// Who orders, and either a shipping address or `"pickup": true`.
#[derive(ToSchema)]
#[serde(untagged)]
#[schema(examples(json!({"customer_name": "Ada Lovelace", "phone": "+441234567890", "email": "ada@example.com",
    "shipping": {"address_lines": ["1 Main Street"], "city": "Oslo", "postal_code": "0150", "country": "Norway"}})))]
#[allow(dead_code)]
pub enum CheckoutBody {
    Shipping(CheckoutShipping),
    Pickup(CheckoutPickup),
}

/// The headers of checkout: the key is required.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct CheckoutHeaderParams {
    /// Required: a retry with the same key places the order once and gets
    /// the first answer.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]+$"
    )]
    idempotency_key: String,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct OrderPlacedView {
    /// The order.
    pub id: String,
    pub version: i64,
    pub position: i64,
    #[schema(example = "7C1A-9F00-5A1B")]
    pub number: String,
    #[schema(example = "placed")]
    pub status: String,
    pub customer_name: String,
    pub phone: String,
    pub email: String,
    pub delivery: DeliveryView,
    pub lines: Vec<OrderLineView>,
    #[schema(example = "99.80")]
    pub total: String,
    pub currency: String,
}

impl OrderPlacedView {
    fn of(done: &Done<Placement>) -> Self {
        let placed = &done.value;
        Self {
            id: done.id.clone(),
            version: done.version,
            position: done.position,
            number: placed.number.clone(),
            status: "placed".into(),
            customer_name: placed.customer.name.clone(),
            phone: placed.customer.phone.clone(),
            email: placed.customer.email.clone(),
            delivery: DeliveryView::from(&placed.delivery),
            lines: placed.lines.iter().map(OrderLineView::from).collect(),
            total: placed.total.to_string(),
            currency: placed.currency.clone(),
        }
    }
}

fn checkout_form(request: CheckoutRequest) -> Result<CheckoutForm, ApiError> {
    let mut errors = Vec::new();
    let name = request.customer_name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(FieldError::new(
            "customer_name",
            "must be 1 to 200 characters",
        ));
    }
    let phone = Phone::parse("phone", &request.phone)
        .map(|p| p.as_str().to_string())
        .map_err(|e| errors.push(e));
    let email = Email::parse("email", &request.email)
        .map(|e| e.as_str().to_string())
        .map_err(|e| errors.push(e));
    let shipping = request.shipping.map(|a| Address {
        address_lines: a.address_lines,
        city: a.city,
        postal_code: a.postal_code,
        country: a.country,
    });
    let delivery =
        workflows::delivery(shipping, request.pickup).map_err(|mut e| errors.append(&mut e));
    match (phone, email, delivery) {
        (Ok(phone), Ok(email), Ok(delivery)) if errors.is_empty() => Ok(CheckoutForm {
            customer: Customer { name, phone, email },
            delivery,
        }),
        _ => Err(ApiError::invalid(errors)),
    }
}

/// Place the order: its lines at your prices, the stock of tracked
/// products reserved and the cart emptied, in one commit. `Idempotency-Key`
/// is required; a retry with it gets the same order back.
#[utoipa::path(post, path = "/checkout", tag = "shop",
    request_body = CheckoutBody, params(CartHeaderParams, CheckoutHeaderParams),
    responses((status = 201, description = "Placed", body = OrderPlacedView,
            headers(("Location" = String, description = "The order: /api/v1/orders/{id}"))),
        NotFound, CommonProblems, CommandProblems))]
pub(super) async fn checkout(
    State(app): State<AppState>,
    caller: Caller,
    cart: CartHeader,
    headers: CommandHeaders,
    body: JsonBody<CheckoutRequest>,
) -> Result<Response, ApiError> {
    if headers.idempotency_key.is_none() {
        return Err(ApiError::bad_parameter(
            "Idempotency-Key",
            "is required for checkout, so that a retry places the order once",
        ));
    }
    let Some(owner) = owner(&caller, &cart) else {
        return Err(ApiError::not_found("no cart: put a product in first"));
    };
    let me = caller.1.clone();
    let path = format!("/checkout {}", owner.cart_id());
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let form = checkout_form(body.value)?;
    let done =
        workflows::checkout(&app.platform, &call.context(), owner, me.as_deref(), form).await;
    Ok(super::super::command::created(
        "/orders",
        done,
        OrderPlacedView::of,
    ))
}
