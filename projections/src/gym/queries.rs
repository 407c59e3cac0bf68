//! What the studio's read models answer: plans and subscriptions (with
//! their folded state, from which the standing on any day is derived).

use anyhow::{Context, Result};
use rust_decimal::Decimal;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use annals_domain::gym::plan::PlanLength;
use annals_domain::gym::Subscription;

use crate::appointments::queries::uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct PlanRow {
    pub id: Uuid,
    pub name: String,
    pub length: PlanLength,
    pub price: Decimal,
    pub currency: String,
    pub freeze_days: i64,
    pub active: bool,
    pub version: i64,
}

const PLAN_COLUMNS: &str =
    "id, name, length_unit, length, price, currency, freeze_days, active, version";

fn plan_row(row: &AnyRow) -> Result<PlanRow> {
    let unit: String = row.try_get("length_unit")?;
    let length: i64 = row.try_get("length")?;
    let length = u32::try_from(length).context("length")?;
    let price: String = row.try_get("price")?;
    Ok(PlanRow {
        id: uuid(row, "id")?,
        name: row.try_get("name")?,
        length: if unit == "months" {
            PlanLength::Months(length)
        } else {
            PlanLength::Days(length)
        },
        price: price.parse().context("price")?,
        currency: row.try_get("currency")?,
        freeze_days: row.try_get("freeze_days")?,
        active: row.try_get::<i64, _>("active")? == 1,
        version: row.try_get("version")?,
    })
}

/// Plans by name (deactivated ones only when asked).
pub async fn plans(pool: &AnyPool, include_inactive: bool) -> Result<Vec<PlanRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {PLAN_COLUMNS} FROM plans WHERE active = 1 OR $1 = 1 ORDER BY name, id"
    ))
    .bind(i64::from(include_inactive))
    .fetch_all(pool)
    .await?;
    rows.iter().map(plan_row).collect()
}

pub async fn plan(pool: &AnyPool, id: Uuid) -> Result<Option<PlanRow>> {
    let row = sqlx::query(&format!("SELECT {PLAN_COLUMNS} FROM plans WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(plan_row).transpose()
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRow {
    pub id: Uuid,
    pub client_id: Uuid,
    pub plan_id: Uuid,
    pub client_name: Option<String>,
    pub state: Subscription,
    pub version: i64,
}

fn subscription_row(row: &AnyRow) -> Result<SubscriptionRow> {
    let state: String = row.try_get("state")?;
    Ok(SubscriptionRow {
        id: uuid(row, "id")?,
        client_id: uuid(row, "client_id")?,
        plan_id: uuid(row, "plan_id")?,
        client_name: row.try_get("client_name")?,
        state: serde_json::from_str(&state).context("state")?,
        version: row.try_get("version")?,
    })
}

const SUBSCRIPTION_COLUMNS: &str = "id, client_id, plan_id, client_name, state, version";

pub async fn subscription(pool: &AnyPool, id: Uuid) -> Result<Option<SubscriptionRow>> {
    let row = sqlx::query(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(subscription_row).transpose()
}

/// Subscriptions, of one client or plan (or all), by client name.
pub async fn subscriptions(
    pool: &AnyPool,
    client_id: Option<Uuid>,
    plan_id: Option<Uuid>,
) -> Result<Vec<SubscriptionRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions \
         WHERE ($1 = '' OR client_id = $1) AND ($2 = '' OR plan_id = $2) \
         ORDER BY client_name, client_id, id"
    ))
    .bind(client_id.map(|c| c.to_string()).unwrap_or_default())
    .bind(plan_id.map(|p| p.to_string()).unwrap_or_default())
    .fetch_all(pool)
    .await?;
    rows.iter().map(subscription_row).collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub id: Uuid,
    pub name: String,
    pub coach_id: Uuid,
    pub capacity: i64,
    pub member_ids: Vec<Uuid>,
    pub version: i64,
}

fn group_row(row: &AnyRow) -> Result<GroupRow> {
    let members: String = row.try_get("member_ids")?;
    Ok(GroupRow {
        id: uuid(row, "id")?,
        name: row.try_get("name")?,
        coach_id: uuid(row, "coach_id")?,
        capacity: row.try_get("capacity")?,
        member_ids: serde_json::from_str(&members)?,
        version: row.try_get("version")?,
    })
}

/// Groups by name.
pub async fn groups(pool: &AnyPool) -> Result<Vec<GroupRow>> {
    let rows = sqlx::query(
        "SELECT id, name, coach_id, capacity, member_ids, version FROM training_groups ORDER BY name, id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter().map(group_row).collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainingRow {
    pub id: Uuid,
    pub state: annals_domain::gym::training::Training,
    pub version: i64,
}

fn training_row(row: &AnyRow) -> Result<TrainingRow> {
    let state: String = row.try_get("state")?;
    Ok(TrainingRow {
        id: uuid(row, "id")?,
        state: serde_json::from_str(&state).context("state")?,
        version: row.try_get("version")?,
    })
}

/// Trainings starting in `[from, to)` (RFC 3339 UTC; empty: open), by start.
pub async fn trainings(pool: &AnyPool, from: &str, to: &str) -> Result<Vec<TrainingRow>> {
    let rows = sqlx::query(
        "SELECT id, state, version FROM trainings WHERE ($1 = '' OR start_at >= $1) \
         AND ($2 = '' OR start_at < $2) ORDER BY start_at, id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    rows.iter().map(training_row).collect()
}

pub async fn training(pool: &AnyPool, id: Uuid) -> Result<Option<TrainingRow>> {
    let row = sqlx::query("SELECT id, state, version FROM trainings WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(training_row).transpose()
}

/// A training one client is invited to, and where they stand in it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientTrainingRow {
    pub training: TrainingRow,
    /// `invited`, `accepted`, `declined`, `attended` or `absent`.
    pub status: String,
}

/// The trainings a client is invited to that start at `from` or later (RFC
/// 3339 UTC; empty: all), by start.
pub async fn client_trainings(
    pool: &AnyPool,
    client_id: Uuid,
    from: &str,
) -> Result<Vec<ClientTrainingRow>> {
    let rows = sqlx::query(
        "SELECT t.id, t.state, t.version, a.status FROM training_attendance a \
         JOIN trainings t ON t.id = a.training_id \
         WHERE a.client_id = $1 AND ($2 = '' OR a.start_at >= $2) ORDER BY a.start_at, a.id",
    )
    .bind(client_id.to_string())
    .bind(from)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ClientTrainingRow {
                training: training_row(row)?,
                status: row.try_get("status")?,
            })
        })
        .collect()
}

/// The members of a group now (empty if there is no such group).
pub async fn group_members(pool: &AnyPool, id: Uuid) -> Result<Option<Vec<Uuid>>> {
    let members: Option<String> =
        sqlx::query_scalar("SELECT member_ids FROM training_groups WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?;
    members
        .map(|m| serde_json::from_str(&m).context("member_ids"))
        .transpose()
}
