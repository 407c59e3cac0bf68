//! What the shop's read models answer: products (search, fitment, the
//! storefront, related products), orders and dealer standing.

use anyhow::{Context, Result};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use annals_domain::shop::order::{Delivery, OrderLine};
use annals_domain::shop::{DealerTerms, Fitment};

use crate::appointments::queries::uuid;

/// `%text%` for LIKE, lower-cased, with the wildcards escaped.
fn pattern(text: &str) -> String {
    format!(
        "%{}%",
        text.trim()
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

fn decimal(row: &AnyRow, column: &str) -> Result<Decimal> {
    let text: String = row.try_get(column)?;
    text.parse()
        .with_context(|| format!("{column} is not a decimal"))
}

pub use crate::appointments::queries::CategoryRow as ProductCategoryRow;

pub async fn categories(pool: &AnyPool) -> Result<Vec<ProductCategoryRow>> {
    crate::appointments::queries::categories_in(pool, "product_categories").await
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProductRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub sku: String,
    pub category_id: Uuid,
    pub price: Decimal,
    pub currency: String,
    pub images: Vec<String>,
    pub active: bool,
    pub new_arrival: Option<NaiveDate>,
    pub track_stock: bool,
    pub on_hand: i64,
    pub reserved: i64,
    pub universal: bool,
    pub fitment: Vec<Fitment>,
    pub version: i64,
}

const PRODUCT_COLUMNS: &str = "id, name, description, sku, category_id, price, currency, images, \
    active, new_arrival, track_stock, on_hand, reserved, universal, fitment, version";

fn product_row(row: &AnyRow) -> Result<ProductRow> {
    let images: String = row.try_get("images")?;
    let fitment: String = row.try_get("fitment")?;
    let new_arrival: Option<String> = row.try_get("new_arrival")?;
    Ok(ProductRow {
        id: uuid(row, "id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        sku: row.try_get("sku")?,
        category_id: uuid(row, "category_id")?,
        price: decimal(row, "price")?,
        currency: row.try_get("currency")?,
        images: serde_json::from_str(&images)?,
        active: row.try_get::<i64, _>("active")? == 1,
        new_arrival: new_arrival.map(|d| d.parse()).transpose()?,
        track_stock: row.try_get::<i64, _>("track_stock")? == 1,
        on_hand: row.try_get("on_hand")?,
        reserved: row.try_get("reserved")?,
        universal: row.try_get::<i64, _>("universal")? == 1,
        fitment: serde_json::from_str(&fitment)?,
        version: row.try_get("version")?,
    })
}

pub async fn product(pool: &AnyPool, id: Uuid) -> Result<Option<ProductRow>> {
    let row = sqlx::query(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(product_row).transpose()
}

/// What a product list asks for; empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct ProductFilter {
    pub text: String,
    pub category_id: Option<Uuid>,
    pub make: String,
    pub model: String,
    pub year: Option<u16>,
    /// New arrivals: a `new_arrival` date within `[since, today]`.
    pub new_between: Option<(NaiveDate, NaiveDate)>,
    pub include_inactive: bool,
}

/// Products matching `filter`, by name. A product fits a vehicle when one
/// of its fitment rows has that make, model and a year range holding the
/// year (whichever of the three are given); universal parts fit them all.
pub async fn products(pool: &AnyPool, filter: &ProductFilter) -> Result<Vec<ProductRow>> {
    let vehicle =
        !filter.make.trim().is_empty() || !filter.model.trim().is_empty() || filter.year.is_some();
    let (since, today) = filter
        .new_between
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap_or_default();
    let rows = sqlx::query(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products \
         WHERE (LOWER(name) LIKE $1 ESCAPE '\\' OR LOWER(description) LIKE $1 ESCAPE '\\' \
                OR LOWER(sku) LIKE $1 ESCAPE '\\') \
         AND ($2 = '' OR category_id = $2) AND (active = 1 OR $3 = 1) \
         AND ($4 = 0 OR universal = 1 OR EXISTS (SELECT 1 FROM product_fitment f \
              WHERE f.product_id = products.id AND ($5 = '' OR f.make = $5) \
              AND ($6 = '' OR f.model = $6) AND ($7 = 0 OR (f.year_from <= $7 AND $7 <= f.year_to)))) \
         AND ($8 = '' OR (new_arrival IS NOT NULL AND new_arrival >= $8 AND new_arrival <= $9)) \
         ORDER BY name, id"
    ))
    .bind(pattern(&filter.text))
    .bind(filter.category_id.map(|c| c.to_string()).unwrap_or_default())
    .bind(i64::from(filter.include_inactive))
    .bind(i64::from(vehicle))
    .bind(filter.make.trim().to_lowercase())
    .bind(filter.model.trim().to_lowercase())
    .bind(filter.year.map_or(0, i64::from))
    .bind(since)
    .bind(today)
    .fetch_all(pool)
    .await?;
    rows.iter().map(product_row).collect()
}

/// Other active products of the same category or fitting one of the same
/// vehicles (make and model), by name; at most `limit`.
pub async fn related(pool: &AnyPool, product: &ProductRow, limit: i64) -> Result<Vec<ProductRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE id <> $1 AND active = 1 AND \
         (category_id = $2 OR EXISTS (SELECT 1 FROM product_fitment f \
            JOIN product_fitment mine ON mine.make = f.make AND mine.model = f.model \
            WHERE f.product_id = products.id AND mine.product_id = $1)) \
         ORDER BY name, id LIMIT $3"
    ))
    .bind(product.id.to_string())
    .bind(product.category_id.to_string())
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(product_row).collect()
}

/// The newest arrivals (a `new_arrival` date in `[since, today]`), newest first.
pub async fn new_arrivals(
    pool: &AnyPool,
    since: NaiveDate,
    today: NaiveDate,
    limit: i64,
) -> Result<Vec<ProductRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE active = 1 AND new_arrival IS NOT NULL \
         AND new_arrival >= $1 AND new_arrival <= $2 ORDER BY new_arrival DESC, name, id LIMIT $3"
    ))
    .bind(since.to_string())
    .bind(today.to_string())
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(product_row).collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct DealerRow {
    pub status: String,
    pub application_id: Option<Uuid>,
    pub terms: Option<DealerTerms>,
}

pub async fn dealer(pool: &AnyPool, user_id: Uuid) -> Result<Option<DealerRow>> {
    let row = sqlx::query("SELECT status, application_id, terms FROM dealers WHERE id = $1")
        .bind(user_id.to_string())
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let application: Option<String> = row.try_get("application_id")?;
    let terms: Option<String> = row.try_get("terms")?;
    Ok(Some(DealerRow {
        status: row.try_get("status")?,
        application_id: application.map(|a| a.parse()).transpose()?,
        terms: terms.map(|t| serde_json::from_str(&t)).transpose()?,
    }))
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub company: String,
    pub tax_id: String,
    pub message: String,
    pub status: String,
    pub discount_percent: Option<i64>,
    pub reason: Option<String>,
    pub submitted_at: String,
    pub decided_at: Option<String>,
    pub version: i64,
}

const APPLICATION_COLUMNS: &str = "id, user_id, company, tax_id, message, status, \
    discount_percent, reason, submitted_at, decided_at, version";

fn application_row(row: &AnyRow) -> Result<ApplicationRow> {
    Ok(ApplicationRow {
        id: uuid(row, "id")?,
        user_id: uuid(row, "user_id")?,
        company: row.try_get("company")?,
        tax_id: row.try_get("tax_id")?,
        message: row.try_get("message")?,
        status: row.try_get("status")?,
        discount_percent: row.try_get("discount_percent")?,
        reason: row.try_get("reason")?,
        submitted_at: row.try_get("submitted_at")?,
        decided_at: row.try_get("decided_at")?,
        version: row.try_get("version")?,
    })
}

/// Applications, newest first: of one user, in one status, or all.
pub async fn applications(
    pool: &AnyPool,
    user_id: Option<Uuid>,
    status: Option<&str>,
) -> Result<Vec<ApplicationRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM dealer_applications \
         WHERE ($1 = '' OR user_id = $1) AND ($2 = '' OR status = $2) \
         ORDER BY submitted_at DESC, id DESC"
    ))
    .bind(user_id.map(|u| u.to_string()).unwrap_or_default())
    .bind(status.unwrap_or_default())
    .fetch_all(pool)
    .await?;
    rows.iter().map(application_row).collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderRow {
    pub id: Uuid,
    pub number: String,
    pub status: String,
    pub customer_id: Option<Uuid>,
    pub customer_name: String,
    pub email: String,
    pub phone: String,
    pub delivery: Delivery,
    pub lines: Vec<OrderLine>,
    pub total: Decimal,
    pub currency: String,
    pub paid: Decimal,
    pub refunded: Decimal,
    pub dealer: bool,
    pub placed_at: String,
    pub paid_at: Option<String>,
    pub version: i64,
}

const ORDER_COLUMNS: &str = "id, number, status, customer_id, customer_name, email, phone, \
    delivery, lines, total, currency, paid, refunded, dealer, placed_at, paid_at, version";

fn order_row(row: &AnyRow) -> Result<OrderRow> {
    let customer: Option<String> = row.try_get("customer_id")?;
    let delivery: String = row.try_get("delivery")?;
    let lines: String = row.try_get("lines")?;
    Ok(OrderRow {
        id: uuid(row, "id")?,
        number: row.try_get("number")?,
        status: row.try_get("status")?,
        customer_id: customer.map(|c| c.parse()).transpose()?,
        customer_name: row.try_get("customer_name")?,
        email: row.try_get("email")?,
        phone: row.try_get("phone")?,
        delivery: serde_json::from_str(&delivery)?,
        lines: serde_json::from_str(&lines)?,
        total: decimal(row, "total")?,
        currency: row.try_get("currency")?,
        paid: decimal(row, "paid")?,
        refunded: decimal(row, "refunded")?,
        dealer: row.try_get::<i64, _>("dealer")? == 1,
        placed_at: row.try_get("placed_at")?,
        paid_at: row.try_get("paid_at")?,
        version: row.try_get("version")?,
    })
}

pub async fn order(pool: &AnyPool, id: Uuid) -> Result<Option<OrderRow>> {
    let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(order_row).transpose()
}

/// Which orders a list shows; empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub status: String,
    /// `placed_at` from (inclusive) and to (exclusive), RFC 3339 UTC.
    pub from: String,
    pub to: String,
    /// Placed by this user.
    pub customer_id: Option<Uuid>,
    /// A client's own: placed by them, or with their e-mail address.
    pub mine: Option<(Uuid, String)>,
}

/// Orders matching `filter`, newest first.
pub async fn orders(pool: &AnyPool, filter: &OrderFilter) -> Result<Vec<OrderRow>> {
    let (me, email) = filter
        .mine
        .as_ref()
        .map(|(id, email)| (id.to_string(), email.trim().to_lowercase()))
        .unwrap_or_default();
    let rows = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE ($1 = '' OR status = $1) \
         AND ($2 = '' OR placed_at >= $2) AND ($3 = '' OR placed_at < $3) \
         AND ($4 = '' OR customer_id = $4) \
         AND ($5 = '' OR customer_id = $5 OR ($6 <> '' AND email_key = $6)) \
         ORDER BY placed_at DESC, id DESC"
    ))
    .bind(filter.status.clone())
    .bind(filter.from.clone())
    .bind(filter.to.clone())
    .bind(
        filter
            .customer_id
            .map(|c| c.to_string())
            .unwrap_or_default(),
    )
    .bind(me)
    .bind(email)
    .fetch_all(pool)
    .await?;
    rows.iter().map(order_row).collect()
}

/// Paid orders (placed and paid in `[from, to)` by `paid_at`), for statistics.
pub async fn paid_orders(pool: &AnyPool, from: &str, to: &str) -> Result<Vec<OrderRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE paid_at IS NOT NULL \
         AND ($1 = '' OR paid_at >= $1) AND ($2 = '' OR paid_at < $2) ORDER BY paid_at, id"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    rows.iter().map(order_row).collect()
}

/// A make and the models the catalog's active products fit.
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleRow {
    pub make: String,
    pub models: Vec<String>,
}

/// Every make and model some active product fits, by name (makes and
/// models the same whatever their case, shown as first spelt in id order).
pub async fn vehicles(pool: &AnyPool) -> Result<Vec<VehicleRow>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT fitment FROM products WHERE active = 1 AND fitment <> '[]' ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    let mut makes = std::collections::BTreeMap::<
        String,
        (String, std::collections::BTreeMap<String, String>),
    >::new();
    for (fitment,) in rows {
        let fitment: Vec<Fitment> = serde_json::from_str(&fitment)?;
        for fit in fitment {
            let (_, models) = makes
                .entry(fit.make.to_lowercase())
                .or_insert_with(|| (fit.make.clone(), Default::default()));
            models.entry(fit.model.to_lowercase()).or_insert(fit.model);
        }
    }
    Ok(makes
        .into_values()
        .map(|(make, models)| VehicleRow {
            make,
            models: models.into_values().collect(),
        })
        .collect())
}
