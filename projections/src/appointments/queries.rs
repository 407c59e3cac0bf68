//! What the appointments read models answer: the catalog, masters and
//! appointments, for queries and for the workflows that consult them.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use annals_domain::appointment::master_day::Reservation;
use annals_domain::master::Master;

use super::timestamp;

pub(crate) fn uuid(row: &AnyRow, column: &str) -> Result<Uuid> {
    let text: String = row.try_get(column)?;
    Uuid::parse_str(&text).with_context(|| format!("{column} is not a UUID"))
}

pub(crate) fn instant(row: &AnyRow, column: &str) -> Result<DateTime<Utc>> {
    let text: String = row.try_get(column)?;
    Ok(DateTime::parse_from_rfc3339(&text)
        .with_context(|| format!("{column} is not RFC 3339"))?
        .with_timezone(&Utc))
}

#[derive(Debug, Clone, PartialEq)]
pub struct CategoryRow {
    pub id: Uuid,
    pub name: String,
}

/// Categories of a catalog table (`service_categories`, `product_categories`), by name.
pub(crate) async fn categories_in(pool: &AnyPool, table: &str) -> Result<Vec<CategoryRow>> {
    let rows = sqlx::query(&format!("SELECT id, name FROM {table} ORDER BY name, id"))
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(CategoryRow {
                id: uuid(row, "id")?,
                name: row.try_get("name")?,
            })
        })
        .collect()
}

pub(crate) async fn category_in(
    pool: &AnyPool,
    table: &str,
    id: Uuid,
) -> Result<Option<CategoryRow>> {
    let row: Option<(String,)> = sqlx::query_as(&format!("SELECT name FROM {table} WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(name,)| CategoryRow { id, name }))
}

pub async fn categories(pool: &AnyPool) -> Result<Vec<CategoryRow>> {
    categories_in(pool, "service_categories").await
}

pub async fn category(pool: &AnyPool, id: Uuid) -> Result<Option<CategoryRow>> {
    category_in(pool, "service_categories", id).await
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub category_id: Uuid,
    pub duration_minutes: i64,
    pub price: String,
    pub currency: String,
    pub buffer_before_minutes: i64,
    pub buffer_after_minutes: i64,
    pub image_url: Option<String>,
    pub active: bool,
    pub version: i64,
}

const SERVICE_COLUMNS: &str =
    "id, name, description, category_id, duration_minutes, price, currency, \
    buffer_before_minutes, buffer_after_minutes, image_url, active, version";

fn service_row(row: &AnyRow) -> Result<ServiceRow> {
    Ok(ServiceRow {
        id: uuid(row, "id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        category_id: uuid(row, "category_id")?,
        duration_minutes: row.try_get("duration_minutes")?,
        price: row.try_get("price")?,
        currency: row.try_get("currency")?,
        buffer_before_minutes: row.try_get("buffer_before_minutes")?,
        buffer_after_minutes: row.try_get("buffer_after_minutes")?,
        image_url: row.try_get("image_url")?,
        active: row.try_get::<i64, _>("active")? == 1,
        version: row.try_get("version")?,
    })
}

pub async fn service(pool: &AnyPool, id: Uuid) -> Result<Option<ServiceRow>> {
    let row = sqlx::query(&format!(
        "SELECT {SERVICE_COLUMNS} FROM services WHERE id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(service_row).transpose()
}

/// Services whose name or description contains `text` (case-insensitive),
/// by name.
pub async fn services(
    pool: &AnyPool,
    text: &str,
    category_id: Option<Uuid>,
    include_inactive: bool,
) -> Result<Vec<ServiceRow>> {
    let pattern = format!(
        "%{}%",
        text.trim()
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let rows = sqlx::query(&format!(
        "SELECT {SERVICE_COLUMNS} FROM services \
         WHERE (LOWER(name) LIKE $1 ESCAPE '\\' OR LOWER(description) LIKE $1 ESCAPE '\\') \
         AND ($2 = '' OR category_id = $2) AND (active = 1 OR $3 = 1) ORDER BY name, id"
    ))
    .bind(pattern)
    .bind(category_id.map(|c| c.to_string()).unwrap_or_default())
    .bind(i64::from(include_inactive))
    .fetch_all(pool)
    .await?;
    rows.iter().map(service_row).collect()
}

/// A master as the read model has it.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterRow {
    pub id: Uuid,
    pub master: Master,
    pub version: i64,
    /// The master's display name (their user's full name).
    pub name: Option<String>,
}

fn master_row(row: &AnyRow) -> Result<MasterRow> {
    Ok(MasterRow {
        id: uuid(row, "id")?,
        master: serde_json::from_str(&row.try_get::<String, _>("state")?)?,
        version: row.try_get("version")?,
        name: row.try_get("name")?,
    })
}

pub async fn master(pool: &AnyPool, id: Uuid) -> Result<Option<MasterRow>> {
    let row = sqlx::query("SELECT id, state, version, name FROM masters WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(master_row).transpose()
}

/// Masters (those who perform `service`, if given), by id.
pub async fn masters(pool: &AnyPool, service: Option<Uuid>) -> Result<Vec<MasterRow>> {
    let filter = service
        .map(|s| format!("%,{s},%"))
        .unwrap_or_else(|| "%".into());
    let rows = sqlx::query(
        "SELECT id, state, version, name FROM masters WHERE service_ids LIKE $1 ORDER BY id",
    )
    .bind(filter)
    .fetch_all(pool)
    .await?;
    rows.iter().map(master_row).collect()
}

/// A booked interval (with buffers), whose it is.
#[derive(Debug, Clone, PartialEq)]
pub struct BookedRow {
    pub id: Uuid,
    pub client_id: Uuid,
    pub reservation: Reservation,
}

/// A master's booked intervals (with buffers) that reach into `[from, to)`.
pub async fn booked(
    pool: &AnyPool,
    master_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<BookedRow>> {
    let rows = sqlx::query(
        "SELECT id, client_id, start_at, end_at, block_start, block_end FROM appointments \
         WHERE master_id = $1 AND status IN ('booked', 'confirmed') AND block_end > $2 AND block_start < $3",
    )
    .bind(master_id.to_string())
    .bind(timestamp(from))
    .bind(timestamp(to))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(BookedRow {
                id: uuid(row, "id")?,
                client_id: uuid(row, "client_id")?,
                reservation: Reservation {
                    start: instant(row, "start_at")?,
                    end: instant(row, "end_at")?,
                    block_start: instant(row, "block_start")?,
                    block_end: instant(row, "block_end")?,
                },
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppointmentRow {
    pub id: Uuid,
    pub client_id: Uuid,
    pub master_id: Uuid,
    pub service_id: Uuid,
    /// RFC 3339, UTC.
    pub start: String,
    pub end: String,
    pub status: String,
    pub price: String,
    pub currency: String,
    pub note: Option<String>,
    pub version: i64,
    pub client_name: Option<String>,
    pub master_name: Option<String>,
    pub service_name: Option<String>,
}

const APPOINTMENT_COLUMNS: &str = "id, client_id, master_id, service_id, start_at, end_at, status, price, currency, note, version, \
    client_name, master_name, service_name";

pub fn appointment_row(row: &AnyRow) -> Result<AppointmentRow> {
    Ok(AppointmentRow {
        id: uuid(row, "id")?,
        client_id: uuid(row, "client_id")?,
        master_id: uuid(row, "master_id")?,
        service_id: uuid(row, "service_id")?,
        start: row.try_get("start_at")?,
        end: row.try_get("end_at")?,
        status: row.try_get("status")?,
        price: row.try_get("price")?,
        currency: row.try_get("currency")?,
        note: row.try_get("note")?,
        version: row.try_get("version")?,
        client_name: row.try_get("client_name")?,
        master_name: row.try_get("master_name")?,
        service_name: row.try_get("service_name")?,
    })
}

pub async fn appointment(pool: &AnyPool, id: Uuid) -> Result<Option<AppointmentRow>> {
    let row = sqlx::query(&format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(appointment_row).transpose()
}

/// Which appointments a list asks for; `None` is "any".
#[derive(Debug, Clone, Default)]
pub struct AppointmentFilter {
    pub client_id: Option<Uuid>,
    pub master_id: Option<Uuid>,
    pub status: Option<String>,
    pub service_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only those after this `start|id` key (the page cursor).
    pub after: String,
    pub limit: i64,
}

/// By start time, then id.
pub async fn appointments(
    pool: &AnyPool,
    filter: &AppointmentFilter,
) -> Result<Vec<AppointmentRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments \
         WHERE ($1 = '' OR client_id = $1) AND ($2 = '' OR master_id = $2) AND ($3 = '' OR status = $3) \
         AND ($4 = '' OR service_id = $4) AND start_at >= $5 AND start_at < $6 AND (start_at || '|' || id) > $7 \
         ORDER BY start_at, id LIMIT $8"
    ))
    .bind(filter.client_id.map(|c| c.to_string()).unwrap_or_default())
    .bind(filter.master_id.map(|m| m.to_string()).unwrap_or_default())
    .bind(filter.status.clone().unwrap_or_default())
    .bind(filter.service_id.map(|s| s.to_string()).unwrap_or_default())
    .bind(filter.from.map(timestamp).unwrap_or_default())
    .bind(filter.to.map(timestamp).unwrap_or_else(|| "9999".into()))
    .bind(filter.after.clone())
    .bind(filter.limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(appointment_row).collect()
}

/// An appointment on a master's schedule, with the interval it blocks
/// (buffers included).
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledRow {
    pub id: Uuid,
    pub client_id: Uuid,
    pub service_id: Uuid,
    pub status: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub block_start: DateTime<Utc>,
    pub block_end: DateTime<Utc>,
    pub client_name: Option<String>,
    pub service_name: Option<String>,
}

/// A master's appointments, other than cancelled ones, that start in
/// `[from, to)`, by start time.
pub async fn master_appointments(
    pool: &AnyPool,
    master_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<ScheduledRow>> {
    let rows = sqlx::query(
        "SELECT id, start_at, end_at, block_start, block_end, status, client_id, service_id, client_name, service_name FROM appointments \
         WHERE master_id = $1 AND start_at >= $2 AND start_at < $3 AND status <> 'cancelled' ORDER BY start_at",
    )
    .bind(master_id.to_string())
    .bind(timestamp(from))
    .bind(timestamp(to))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ScheduledRow {
                start: instant(row, "start_at")?,
                end: instant(row, "end_at")?,
                status: row.try_get("status")?,
                block_start: instant(row, "block_start")?,
                block_end: instant(row, "block_end")?,
                id: uuid(row, "id")?,
                client_id: uuid(row, "client_id")?,
                service_id: uuid(row, "service_id")?,
                client_name: row.try_get("client_name")?,
                service_name: row.try_get("service_name")?,
            })
        })
        .collect()
}

/// A client's booked or confirmed appointments that start at or after
/// `now`, soonest first.
pub async fn upcoming_of_client(
    pool: &AnyPool,
    client_id: Uuid,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<AppointmentRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE client_id = $1 AND start_at >= $2 \
         AND status IN ('booked', 'confirmed') ORDER BY start_at LIMIT $3"
    ))
    .bind(client_id.to_string())
    .bind(timestamp(now))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(appointment_row).collect()
}

/// A client's appointments that started before `now`, latest first.
pub async fn recent_of_client(
    pool: &AnyPool,
    client_id: Uuid,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<AppointmentRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE client_id = $1 AND start_at < $2 \
         ORDER BY start_at DESC LIMIT $3"
    ))
    .bind(client_id.to_string())
    .bind(timestamp(now))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(appointment_row).collect()
}

/// A completed appointment with its service's name.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitRow {
    /// As stored, not parsed: the dashboard skips one that is not a UUID.
    pub service_id: String,
    /// `None` when the service is not in the catalog.
    pub service_name: Option<String>,
    pub price: String,
    pub currency: String,
}

/// A client's completed appointments that start in `[from, to)`.
pub async fn visits_of_client(
    pool: &AnyPool,
    client_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<VisitRow>> {
    let rows = sqlx::query(
        "SELECT a.service_id, a.price, a.currency, s.name FROM appointments a LEFT JOIN services s ON s.id = a.service_id \
         WHERE a.client_id = $1 AND a.status = 'completed' AND a.start_at >= $2 AND a.start_at < $3",
    )
    .bind(client_id.to_string())
    .bind(timestamp(from))
    .bind(timestamp(to))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(VisitRow {
                price: row.try_get("price")?,
                currency: row.try_get("currency")?,
                service_name: row.try_get("name")?,
                service_id: row.try_get("service_id")?,
            })
        })
        .collect()
}

/// Whether a user is active and holds `role` (from the users read model).
pub async fn user_holds(pool: &AnyPool, user_id: Uuid, role: &str) -> Result<Option<bool>> {
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT roles, active FROM users WHERE id = $1")
            .bind(user_id.to_string())
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(roles, active)| {
        active == 1 && roles.split(',').collect::<BTreeSet<_>>().contains(role)
    }))
}
