//! Orders: lists (staff all, clients their own), one order and its
//! history, each step of its life, the payment provider's webhook and the
//! order statistics.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use annals_domain::shop::order::{Delivery, OrderLine, Status};
use annals_domain::shop::Order;
use annals_domain::{Actor, EventMetadata};
use annals_projections::appointments::timestamp;
use annals_projections::shop::queries::{self, OrderFilter, OrderRow};
use annals_projections::shop::stats::{self, GroupBy};
use annals_projections::shop::ORDERS;
use annals_projections::users;

use super::super::command::{accepted, CommandHeaderParams};
use super::super::error::{Forbidden, NotFound, ReadProblems, Unauthorized};
use super::super::extract::parse_json;
use super::super::history::HistoryEntry;
use super::super::page::{newest_first, page, Page, ReadQuery};
use super::super::{
    ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommonProblems, JsonBody,
};
use super::{money, path_id};
use crate::app::shop::{self as workflows, is_order_staff};
use crate::app::CommandContext;
use crate::auth::Principal;
use crate::store::IdempotencyRecord;

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq, Clone)]
pub struct PriceRuleView {
    #[schema(example = "dealer_discount")]
    pub kind: String,
    pub discount_percent: u8,
    #[schema(value_type = String, format = Uuid)]
    pub application_id: Uuid,
    #[schema(value_type = String, format = Date)]
    pub approved_on: chrono::NaiveDate,
    /// Who approved it.
    pub approved_by: String,
}

/// One line as priced: the base price, the rule that changed it, the
/// unit price and the line total.
#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq, Clone)]
pub struct OrderLineView {
    #[schema(value_type = String, format = Uuid)]
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    #[schema(example = "49.90")]
    pub base_price: String,
    /// What changed the price, in words (absent: the base price applies).
    #[schema(
        example = "dealer discount 12% — application #0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f, approved 2026-11-03 by boss"
    )]
    pub rule: Option<String>,
    /// The same rule as fields.
    pub rule_detail: Option<PriceRuleView>,
    #[schema(example = "43.91")]
    pub unit_price: String,
    #[schema(example = "87.82")]
    pub line_total: String,
}

impl From<&OrderLine> for OrderLineView {
    fn from(line: &OrderLine) -> Self {
        Self {
            product_id: line.product_id,
            sku: line.sku.clone(),
            name: line.name.clone(),
            quantity: line.quantity,
            base_price: line.base_price.to_string(),
            rule: line.rule.as_ref().map(|r| r.text.clone()),
            rule_detail: line.rule.as_ref().map(|r| PriceRuleView {
                kind: r.kind.clone(),
                discount_percent: r.discount_percent,
                application_id: r.application_id,
                approved_on: r.approved_on,
                approved_by: r.approved_by.clone(),
            }),
            unit_price: line.unit_price.to_string(),
            line_total: line.line_total.to_string(),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq, Clone)]
pub struct ShippingView {
    pub address_lines: Vec<String>,
    pub city: String,
    pub postal_code: String,
    pub country: String,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq, Clone)]
pub struct DeliveryView {
    /// `shipping` or `pickup`.
    #[schema(example = "shipping")]
    pub kind: String,
    pub shipping: Option<ShippingView>,
}

impl From<&Delivery> for DeliveryView {
    fn from(delivery: &Delivery) -> Self {
        match delivery {
            Delivery::Pickup => Self {
                kind: "pickup".into(),
                shipping: None,
            },
            Delivery::Shipping(a) => Self {
                kind: "shipping".into(),
                shipping: Some(ShippingView {
                    address_lines: a.address_lines.clone(),
                    city: a.city.clone(),
                    postal_code: a.postal_code.clone(),
                    country: a.country.clone(),
                }),
            },
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq, Clone)]
pub struct OrderView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub number: String,
    #[schema(example = "paid")]
    pub status: String,
    /// The signed-in customer who placed it.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub customer_id: Option<Uuid>,
    pub customer_name: String,
    pub email: String,
    pub phone: String,
    pub delivery: DeliveryView,
    pub lines: Vec<OrderLineView>,
    pub total: String,
    pub currency: String,
    pub paid: String,
    pub refunded: String,
    /// Placed at a dealer's prices.
    pub dealer: bool,
    #[schema(value_type = String, format = DateTime)]
    pub placed_at: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub paid_at: Option<String>,
    pub version: i64,
}

impl From<OrderRow> for OrderView {
    fn from(row: OrderRow) -> Self {
        Self {
            id: row.id,
            number: row.number,
            status: row.status,
            customer_id: row.customer_id,
            customer_name: row.customer_name,
            email: row.email,
            phone: row.phone,
            delivery: DeliveryView::from(&row.delivery),
            lines: row.lines.iter().map(OrderLineView::from).collect(),
            total: row.total.to_string(),
            currency: row.currency,
            paid: row.paid.to_string(),
            refunded: row.refunded.to_string(),
            dealer: row.dealer,
            placed_at: row.placed_at,
            paid_at: row.paid_at,
            version: row.version,
        }
    }
}

/// A client's own orders: placed signed in, or with their account's e-mail.
async fn mine(app: &AppState, me: &Principal) -> Result<(Uuid, String), ApiError> {
    let email = users::user(&app.platform.db.any, me.user_id)
        .await?
        .and_then(|u| u.profile.email.map(|e| e.as_str().to_string()))
        .unwrap_or_default();
    Ok((me.user_id, email))
}

/// Placed by the client signed in, or with the e-mail of their account.
fn is_mine(customer_id: Option<Uuid>, email: &str, (me, mine): &(Uuid, String)) -> bool {
    customer_id == Some(*me) || (!mine.is_empty() && email.trim().eq_ignore_ascii_case(mine))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderListQuery {
    /// Only orders in this state.
    #[param(inline, value_type = Option<OrderState>)]
    pub status: Option<String>,
    /// Placed at or after.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<DateTime<Utc>>,
    /// Placed before.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<DateTime<Utc>>,
    /// Placed by this user (staff only).
    pub customer_id: Option<Uuid>,
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 1000)]
    pub cursor: Option<String>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

/// The states of an order.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum OrderState {
    Placed,
    Paid,
    Shipped,
    Delivered,
    ReadyForPickup,
    PickedUp,
    Cancelled,
    Refunded,
}

/// Orders, newest first: staff see all (with filters), clients their own.
#[utoipa::path(get, path = "/orders", tag = "shop", security(("bearer" = [])), params(OrderListQuery),
    responses((status = 200, description = "A page of orders, newest first", body = Page<OrderView>),
        Unauthorized, CommonProblems, ReadProblems))]
pub(super) async fn list_orders(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<OrderListQuery>,
) -> Result<Json<Page<OrderView>>, ApiError> {
    let me = caller.principal()?.clone();
    app.platform.wait_for(ORDERS, query.min_position).await?;
    let status = match query.status.as_deref() {
        None => String::new(),
        Some(s) => Status::parse(s)
            .ok_or_else(|| ApiError::bad_parameter("status", "is not one of the order states"))?
            .as_str()
            .to_string(),
    };
    let staff = is_order_staff(&me);
    let filter = OrderFilter {
        status,
        from: query.from.map(timestamp).unwrap_or_default(),
        to: query.to.map(timestamp).unwrap_or_default(),
        customer_id: query.customer_id.filter(|_| staff),
        mine: if staff {
            None
        } else {
            Some(mine(&app, &me).await?)
        },
    };
    let orders = queries::orders(&app.platform.db.any, &filter)
        .await?
        .into_iter()
        .map(OrderView::from)
        .collect();
    Ok(Json(page(
        orders,
        |o| newest_first(&o.placed_at, &o.id),
        query.limit,
        query.cursor.as_deref(),
    )?))
}

async fn visible_order(app: &AppState, me: &Principal, id: Uuid) -> Result<OrderRow, ApiError> {
    let order = queries::order(&app.platform.db.any, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such order"))?;
    if is_order_staff(me) || is_mine(order.customer_id, &order.email, &mine(app, me).await?) {
        Ok(order)
    } else {
        Err(ApiError::not_found("no such order"))
    }
}

/// One order (yours, or any for staff), with its lines as placed.
#[utoipa::path(get, path = "/orders/{id}", tag = "shop", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The order"), ReadQuery),
    responses((status = 200, description = "The order", body = OrderView),
        Unauthorized, NotFound, CommonProblems, ReadProblems))]
pub(super) async fn get_order(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<OrderView>, ApiError> {
    let me = caller.principal()?.clone();
    let id = path_id(&id)?;
    app.platform.wait_for(ORDERS, query.min_position).await?;
    Ok(Json(visible_order(&app, &me, id).await?.into()))
}

/// Every event of an order, with who and when.
#[utoipa::path(get, path = "/orders/{id}/history", tag = "shop", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The order")),
    responses((status = 200, description = "Oldest first", body = Vec<HistoryEntry>),
        Unauthorized, NotFound, CommonProblems))]
pub(super) async fn order_history(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let me = caller.principal()?.clone();
    let id = path_id(&id)?;
    let events = app
        .platform
        .log
        .aggregate_history(<Order as cqrs_es::Aggregate>::TYPE, &id.to_string())
        .await?;
    let Some(first) = events.first() else {
        return Err(ApiError::not_found("no such order"));
    };
    let placed: annals_domain::shop::Placement =
        serde_json::from_value(first.payload_body().clone()).map_err(ApiError::internal)?;
    let yours = is_mine(
        placed.customer_id,
        &placed.customer.email,
        &mine(&app, &me).await?,
    );
    if !(is_order_staff(&me) || yours) {
        return Err(ApiError::not_found("no such order"));
    }
    Ok(Json(events.iter().map(HistoryEntry::of).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"amount": "99.80", "currency": "EUR", "method": "card"})))]
pub struct PaymentRequest {
    /// More than 0, at most what is outstanding.
    #[schema(example = "99.80", pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub amount: String,
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    #[schema(min_length = 1, pattern = r"\S", max_length = 50, example = "card")]
    pub method: String,
}

/// Record a payment; the order is paid when payments reach its total.
#[utoipa::path(post, path = "/orders/{id}/payments", tag = "shop", security(("bearer" = [])),
    request_body = PaymentRequest, params(("id" = Uuid, Path, description = "The order"), CommandHeaderParams),
    responses((status = 200, description = "Recorded", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn record_order_payment(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<PaymentRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/orders/{id}/payments");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_id(&id)?;
    let request = body.value;
    let amount = money("amount", &request.amount, &request.currency).map_err(ApiError::invalid)?;
    let done = workflows::record_payment(
        &app.platform,
        &call.context(),
        id,
        amount,
        request.method,
        None,
    )
    .await;
    Ok(accepted(StatusCode::OK, done))
}

/// Declares one order step without a body.
macro_rules! order_step {
    ($name:ident, $path:literal, $doc:literal, $done:literal, $workflow:path) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "shop", security(("bearer" = [])),
                    params(("id" = Uuid, Path, description = "The order"), CommandHeaderParams),
                    responses((status = 200, description = $done, body = CommandAccepted),
                        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
        pub(super) async fn $name(
            State(app): State<AppState>,
            Path(id): Path<String>,
            caller: Caller,
            headers: CommandHeaders,
        ) -> Result<Response, ApiError> {
            let path = $path.replace("{id}", &id);
            let call = CommandCall::new(caller, headers, "POST", &path, String::new());
            let id = path_id(&id)?;
            let done = $workflow(&app.platform, &call.context(), id).await;
            Ok(accepted(StatusCode::OK, done))
        }
    };
}

order_step!(
    ship,
    "/orders/{id}/ship",
    "Ship a paid order (its stock leaves).",
    "Shipped",
    workflows::ship
);
order_step!(
    deliver,
    "/orders/{id}/deliver",
    "A shipped order arrived.",
    "Delivered",
    workflows::deliver
);
order_step!(
    ready_for_pickup,
    "/orders/{id}/ready-for-pickup",
    "Put a paid pickup order out for collection (its stock leaves).",
    "Ready for pickup",
    workflows::ready_for_pickup
);
order_step!(
    picked_up,
    "/orders/{id}/picked-up",
    "The customer collected the order.",
    "Picked up",
    workflows::picked_up
);

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"reason": "customer asked"})))]
pub struct CancelOrderRequest {
    #[schema(min_length = 1, pattern = r"\S", max_length = 500)]
    pub reason: String,
}

/// Cancel a placed or paid order: its reserved stock comes back.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "shop", security(("bearer" = [])),
    request_body = CancelOrderRequest, params(("id" = Uuid, Path, description = "The order"), CommandHeaderParams),
    responses((status = 200, description = "Cancelled", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn cancel_order(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<CancelOrderRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/orders/{id}/cancel");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_id(&id)?;
    let done = workflows::cancel(&app.platform, &call.context(), id, body.value.reason).await;
    Ok(accepted(StatusCode::OK, done))
}

/// Erase the buyer's personal data (admin): crypto-shredding. For a guest's
/// order, its buyer's name, contact details and address read `[erased]`
/// from now on, in every answer, read model, rebuild and history; for a
/// signed-in buyer's, the buyer (the user) is erased, with every record
/// linked to them.
#[utoipa::path(post, path = "/orders/{id}/erase", tag = "shop", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The order"), CommandHeaderParams),
    responses((status = 200, description = "Erased (a retry erases again)", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn erase_order(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Result<Response, ApiError> {
    let path = format!("/orders/{id}/erase");
    let call = CommandCall::new(caller, headers, "POST", &path, String::new());
    let person = crate::app::privacy::Person::Order(path_id(&id)?);
    let done = crate::app::privacy::erase(&app.platform, &call.context(), person).await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"amount": "10.00", "currency": "EUR", "reason": "scratched"})))]
pub struct RefundRequest {
    /// More than 0; all refunds together at most what was paid.
    #[schema(example = "10.00", pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub amount: String,
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    #[schema(min_length = 1, pattern = r"\S", max_length = 500)]
    pub reason: String,
}

/// Refund part or all of what was paid.
#[utoipa::path(post, path = "/orders/{id}/refunds", tag = "shop", security(("bearer" = [])),
    request_body = RefundRequest, params(("id" = Uuid, Path, description = "The order"), CommandHeaderParams),
    responses((status = 200, description = "Refunded", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn refund(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<RefundRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/orders/{id}/refunds");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_id(&id)?;
    let request = body.value;
    let amount = money("amount", &request.amount, &request.currency).map_err(ApiError::invalid)?;
    let done = workflows::refund(&app.platform, &call.context(), id, amount, request.reason).await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"provider_payment_id": "pay_123", "order_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "amount": "99.80", "currency": "EUR"})))]
pub struct PaymentNotice {
    /// The provider's id of the payment: a payment reported twice is recorded once.
    #[schema(min_length = 1, pattern = r"\S", max_length = 200)]
    pub provider_payment_id: String,
    #[schema(value_type = String, format = Uuid)]
    pub order_id: Uuid,
    #[schema(pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub amount: String,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

/// The signature header of the payment webhook, for the OpenAPI document.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct SignatureParams {
    /// `sha256=<hex>`: HMAC-SHA256 of the raw body under the shared secret
    /// (`ANNALS_PAYMENT_WEBHOOK_SECRET`).
    #[param(rename = "X-Annals-Signature", pattern = "^sha256=[0-9a-f]{64}$")]
    signature: String,
}

/// Whether `headers` carry the HMAC-SHA256 of `body` under `secret`
/// (compared in constant time).
fn signed(headers: &HeaderMap, body: &[u8], secret: &str) -> bool {
    let Some(given) = headers
        .get("x-annals-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("sha256="))
        .and_then(|hex| hex::decode(hex).ok())
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// The payment provider reports a payment. Signed with HMAC-SHA256 of the
/// raw body (`X-Annals-Signature: sha256=<hex>`); a missing or wrong
/// signature is 401 and changes nothing. A provider payment id reported
/// again gets the first answer (marked `Idempotent-Replayed`).
#[utoipa::path(post, path = "/webhooks/payments", tag = "shop",
    request_body = PaymentNotice, params(SignatureParams),
    responses((status = 200, description = "Recorded (or recorded before)", body = CommandAccepted),
        Unauthorized, NotFound, CommonProblems, CommandProblems))]
pub(super) async fn payment_webhook(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let secret = app.platform.settings.payment_webhook_secret.as_ref();
    if !secret.is_some_and(|s| signed(&headers, &body, &s.0)) {
        let detail = if secret.is_none() {
            "the payment webhook is not configured (ANNALS_PAYMENT_WEBHOOK_SECRET)"
        } else {
            "X-Annals-Signature is missing or does not match the body"
        };
        return Err(super::super::access::unauthorized(detail));
    }
    let notice: PaymentNotice = parse_json(&body)?;
    let amount = money("amount", &notice.amount, &notice.currency).map_err(ApiError::invalid)?;
    let id = notice.provider_payment_id.trim().to_string();
    if id.is_empty() || id.chars().count() > 200 {
        return Err(ApiError::invalid_field(
            "provider_payment_id",
            "must be 1 to 200 characters",
        ));
    }
    let mut metadata = EventMetadata::for_command(Actor::System);
    metadata.idempotency_key = Some(id.clone());
    let ctx = CommandContext {
        metadata,
        expected_version: None,
        // One record per provider payment, whichever order it names.
        idempotency: Some(IdempotencyRecord {
            scope: "payment-provider POST /webhooks/payments".into(),
            key: id.clone(),
            fingerprint: {
                use sha2::Digest;
                hex::encode(Sha256::digest(&body))
            },
        }),
    };
    let done = workflows::record_payment(
        &app.platform,
        &ctx,
        notice.order_id,
        amount,
        "provider".into(),
        Some(id),
    )
    .await;
    Ok(accepted(StatusCode::OK, done))
}

/// An amount as money is shown: two decimal places.
fn cents(mut amount: rust_decimal::Decimal) -> String {
    amount.rescale(2);
    amount.to_string()
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderStatsQuery {
    /// Paid at or after.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<DateTime<Utc>>,
    /// Paid before.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<DateTime<Utc>>,
    /// `month` (default), `category` or `product`.
    #[param(inline, value_type = Option<OrderGrouping>)]
    pub group_by: Option<String>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum OrderGrouping {
    Month,
    Category,
    Product,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct OrderGroupView {
    /// `2026-11`, a category id or a product id.
    pub key: String,
    /// The category's or product's name.
    pub label: String,
    /// Orders with a line in the group.
    pub orders: u64,
    pub quantity: u64,
    pub revenue: String,
    pub dealer_revenue: String,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct CurrencyStatsView {
    pub currency: String,
    /// Paid orders.
    pub orders: u64,
    /// Their totals (before refunds).
    pub revenue: String,
    pub refunded: String,
    pub average_order_value: String,
    pub dealer_revenue: String,
    /// Dealer revenue as a share of revenue, 0 to 1.
    pub dealer_share: String,
    pub groups: Vec<OrderGroupView>,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct OrderStatsView {
    /// One entry per currency orders were paid in.
    pub currencies: Vec<CurrencyStatsView>,
}

/// Revenue per month, category or product; average order value; the
/// dealers' share. Orders count once paid, by the time they were paid.
#[utoipa::path(get, path = "/stats/orders", tag = "shop", security(("bearer" = [])), params(OrderStatsQuery),
    responses((status = 200, description = "Order statistics", body = OrderStatsView),
        Unauthorized, Forbidden, CommonProblems, ReadProblems))]
pub(super) async fn order_stats(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<OrderStatsQuery>,
) -> Result<Json<OrderStatsView>, ApiError> {
    app.platform.wait_for(ORDERS, query.min_position).await?;
    let by = match query.group_by.as_deref() {
        None | Some("month") => GroupBy::Month,
        Some("category") => GroupBy::Category,
        Some("product") => GroupBy::Product,
        Some(_) => {
            return Err(ApiError::bad_parameter(
                "group_by",
                "must be month, category or product",
            ))
        }
    };
    let pool = &app.platform.db.any;
    let from = query.from.map(timestamp).unwrap_or_default();
    let to = query.to.map(timestamp).unwrap_or_default();
    let paid = queries::paid_orders(pool, &from, &to).await?;
    let names: std::collections::HashMap<String, String> = queries::categories(pool)
        .await?
        .into_iter()
        .map(|c| (c.id.to_string(), c.name))
        .collect();
    let mut by_currency = std::collections::BTreeMap::<String, Vec<OrderRow>>::new();
    for order in paid {
        by_currency
            .entry(order.currency.clone())
            .or_default()
            .push(order);
    }
    let currencies = by_currency
        .into_iter()
        .map(|(currency, orders)| {
            let s = stats::fold(&orders, by);
            CurrencyStatsView {
                currency,
                orders: s.orders,
                revenue: cents(s.revenue),
                refunded: cents(s.refunded),
                average_order_value: cents(s.average_order_value),
                dealer_revenue: cents(s.dealer_revenue),
                dealer_share: {
                    let mut share = s.dealer_share;
                    share.rescale(4);
                    share.to_string()
                },
                groups: s
                    .groups
                    .into_iter()
                    .map(|g| OrderGroupView {
                        label: match by {
                            GroupBy::Category => names.get(&g.key).cloned().unwrap_or_default(),
                            _ => g.label,
                        },
                        key: g.key,
                        orders: g.orders,
                        quantity: g.quantity,
                        revenue: cents(g.revenue),
                        dealer_revenue: cents(g.dealer_revenue),
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(Json(OrderStatsView { currencies }))
}
