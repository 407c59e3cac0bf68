//! What the invoice and message read models answer.

use anyhow::{Context, Result};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use annals_domain::invoice::Invoice;
use annals_domain::message::ScheduledMessage;

use crate::appointments::queries::uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceRow {
    pub id: Uuid,
    pub state: Invoice,
    pub version: i64,
}

fn invoice_row(row: &AnyRow) -> Result<InvoiceRow> {
    let state: String = row.try_get("state")?;
    Ok(InvoiceRow {
        id: uuid(row, "id")?,
        state: serde_json::from_str(&state).context("state")?,
        version: row.try_get("version")?,
    })
}

pub async fn invoice(pool: &AnyPool, id: Uuid) -> Result<Option<InvoiceRow>> {
    let row = sqlx::query("SELECT id, state, version FROM invoices WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(invoice_row).transpose()
}

/// Invoices (of one customer, or all), by number.
pub async fn invoices(pool: &AnyPool, customer: Option<Uuid>) -> Result<Vec<InvoiceRow>> {
    let rows = sqlx::query(
        "SELECT id, state, version FROM invoices WHERE ($1 = '' OR customer_id = $1) \
         ORDER BY number, id",
    )
    .bind(customer.map(|c| c.to_string()).unwrap_or_default())
    .fetch_all(pool)
    .await?;
    rows.iter().map(invoice_row).collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct MessageRow {
    pub id: Uuid,
    pub state: ScheduledMessage,
    pub version: i64,
}

fn message_row(row: &AnyRow) -> Result<MessageRow> {
    let state: String = row.try_get("state")?;
    Ok(MessageRow {
        id: uuid(row, "id")?,
        state: serde_json::from_str(&state).context("state")?,
        version: row.try_get("version")?,
    })
}

pub async fn message(pool: &AnyPool, id: Uuid) -> Result<Option<MessageRow>> {
    let row = sqlx::query("SELECT id, state, version FROM scheduled_messages WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(message_row).transpose()
}

/// A customer's messages, by time.
pub async fn messages_of(pool: &AnyPool, customer: Uuid) -> Result<Vec<MessageRow>> {
    let rows = sqlx::query(
        "SELECT id, state, version FROM scheduled_messages WHERE customer_id = $1 \
         ORDER BY scheduled_at, id",
    )
    .bind(customer.to_string())
    .fetch_all(pool)
    .await?;
    rows.iter().map(message_row).collect()
}

/// Scheduled messages due at `now` (an instant as `marketing::instant`
/// writes it), soonest first, on these channels.
pub async fn due_messages(
    pool: &AnyPool,
    now: &str,
    channels: &[&str],
    limit: i64,
) -> Result<Vec<Uuid>> {
    let rows = sqlx::query(
        "SELECT id, channel FROM scheduled_messages WHERE status = 'scheduled' AND due_at <= $1 \
         ORDER BY due_at, id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let mut due = Vec::new();
    for row in rows {
        let channel: String = row.try_get("channel")?;
        if channels.contains(&channel.as_str()) {
            due.push(uuid(&row, "id")?);
        }
    }
    Ok(due)
}

/// Due reminders: messages whose time has come (sent or not, but not
/// cancelled) that nobody has acknowledged yet, oldest first.
pub async fn due_reminders(pool: &AnyPool, now: &str) -> Result<Vec<MessageRow>> {
    let rows = sqlx::query(
        "SELECT id, state, version FROM scheduled_messages WHERE scheduled_at <= $1 \
         AND status <> 'cancelled' AND acknowledged = 0 ORDER BY scheduled_at, id",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    rows.iter().map(message_row).collect()
}
