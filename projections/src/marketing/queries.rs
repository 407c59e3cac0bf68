//! What the marketing read models answer.

use anyhow::{Context, Result};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use annals_domain::customer::Customer;
use annals_domain::marketing::contract::ContractTerms;
use annals_domain::marketing::{Campaign, Lead};

use crate::appointments::queries::uuid;

fn state<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).with_context(|| format!("{column} does not parse"))
}

#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRow {
    pub id: Uuid,
    pub state: Campaign,
    pub planned_at: String,
    pub version: i64,
}

fn campaign_row(row: &AnyRow) -> Result<CampaignRow> {
    Ok(CampaignRow {
        id: uuid(row, "id")?,
        state: state(row, "state")?,
        planned_at: row.try_get("planned_at")?,
        version: row.try_get("version")?,
    })
}

pub async fn campaign(pool: &AnyPool, id: Uuid) -> Result<Option<CampaignRow>> {
    let row = sqlx::query("SELECT id, state, planned_at, version FROM campaigns WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(campaign_row).transpose()
}

/// Campaigns by name (of one status, or all).
pub async fn campaigns(pool: &AnyPool, status: Option<&str>) -> Result<Vec<CampaignRow>> {
    let rows = sqlx::query(
        "SELECT id, state, planned_at, version FROM campaigns \
         WHERE ($1 = '' OR status = $1) ORDER BY name, id",
    )
    .bind(status.unwrap_or_default())
    .fetch_all(pool)
    .await?;
    rows.iter().map(campaign_row).collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct LeadRow {
    pub id: Uuid,
    pub state: Lead,
    pub created_at: String,
    pub version: i64,
}

fn lead_row(row: &AnyRow) -> Result<LeadRow> {
    Ok(LeadRow {
        id: uuid(row, "id")?,
        state: state(row, "state")?,
        created_at: row.try_get("created_at")?,
        version: row.try_get("version")?,
    })
}

pub async fn lead(pool: &AnyPool, id: Uuid) -> Result<Option<LeadRow>> {
    let row = sqlx::query("SELECT id, state, created_at, version FROM leads WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(lead_row).transpose()
}

#[derive(Debug, Clone, Default)]
pub struct LeadFilter {
    pub status: Option<String>,
    pub campaign_id: Option<Uuid>,
    pub assigned_to: Option<Uuid>,
    /// Part of the name, phone or e-mail (case-insensitive).
    pub q: Option<String>,
}

/// Leads, newest first.
pub async fn leads(pool: &AnyPool, filter: &LeadFilter) -> Result<Vec<LeadRow>> {
    let q = filter
        .q
        .as_deref()
        .map(|q| format!("%{}%", q.trim().to_lowercase()))
        .unwrap_or_default();
    let rows = sqlx::query(
        "SELECT id, state, created_at, version FROM leads \
         WHERE ($1 = '' OR status = $1) AND ($2 = '' OR campaign_id = $2) \
         AND ($3 = '' OR assigned_to = $3) \
         AND ($4 = '' OR LOWER(full_name) LIKE $4 OR LOWER(COALESCE(email, '')) LIKE $4 \
              OR COALESCE(phone, '') LIKE $4) \
         ORDER BY created_at DESC, id DESC",
    )
    .bind(filter.status.clone().unwrap_or_default())
    .bind(
        filter
            .campaign_id
            .map(|c| c.to_string())
            .unwrap_or_default(),
    )
    .bind(
        filter
            .assigned_to
            .map(|c| c.to_string())
            .unwrap_or_default(),
    )
    .bind(q)
    .fetch_all(pool)
    .await?;
    rows.iter().map(lead_row).collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContractRow {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub lead_id: Option<Uuid>,
    pub terms: ContractTerms,
    pub recorded_at: String,
}

fn contract_row(row: &AnyRow) -> Result<ContractRow> {
    let lead: Option<String> = row.try_get("lead_id")?;
    Ok(ContractRow {
        id: uuid(row, "id")?,
        customer_id: uuid(row, "customer_id")?,
        lead_id: lead.and_then(|l| Uuid::parse_str(&l).ok()),
        terms: state(row, "terms")?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

const CONTRACT_COLUMNS: &str = "id, customer_id, lead_id, terms, recorded_at";

pub async fn contract(pool: &AnyPool, id: Uuid) -> Result<Option<ContractRow>> {
    let row = sqlx::query(&format!(
        "SELECT {CONTRACT_COLUMNS} FROM contracts WHERE id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(contract_row).transpose()
}

/// Contracts, newest signed first (of one customer, or all).
pub async fn contracts(pool: &AnyPool, customer: Option<Uuid>) -> Result<Vec<ContractRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {CONTRACT_COLUMNS} FROM contracts WHERE ($1 = '' OR customer_id = $1) \
         ORDER BY signed_on DESC, id DESC"
    ))
    .bind(customer.map(|c| c.to_string()).unwrap_or_default())
    .fetch_all(pool)
    .await?;
    rows.iter().map(contract_row).collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRow {
    pub id: Uuid,
    pub state: Customer,
    pub created_at: String,
    pub version: i64,
}

pub async fn customer(pool: &AnyPool, id: Uuid) -> Result<Option<CustomerRow>> {
    let row = sqlx::query("SELECT id, state, created_at, version FROM customers WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(customer_row).transpose()
}

fn customer_row(row: &AnyRow) -> Result<CustomerRow> {
    Ok(CustomerRow {
        id: uuid(row, "id")?,
        state: state(row, "state")?,
        created_at: row.try_get("created_at")?,
        version: row.try_get("version")?,
    })
}

/// One fact the campaign statistics count.
#[derive(Debug, Clone, PartialEq)]
pub struct FactRow {
    pub kind: String,
    pub campaign_id: Option<Uuid>,
    pub lead_id: Option<Uuid>,
    pub on_date: Option<chrono::NaiveDate>,
    pub amount: Option<rust_decimal::Decimal>,
    pub currency: Option<String>,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

/// The facts recorded up to `known_at` (an instant as `super::instant`
/// writes it; `None`: all), in the order they were recorded.
pub async fn facts(pool: &AnyPool, known_at: Option<&str>) -> Result<Vec<FactRow>> {
    let rows = sqlx::query(
        "SELECT kind, campaign_id, lead_id, on_date, amount, currency, recorded_at \
         FROM campaign_facts WHERE ($1 = '' OR recorded_at <= $1) ORDER BY recorded_at, id",
    )
    .bind(known_at.unwrap_or_default())
    .fetch_all(pool)
    .await?;
    let id = |row: &AnyRow, c: &str| -> Result<Option<Uuid>> {
        let text: Option<String> = row.try_get(c)?;
        Ok(text.and_then(|t| Uuid::parse_str(&t).ok()))
    };
    rows.iter()
        .map(|row| {
            let on: Option<String> = row.try_get("on_date")?;
            let amount: Option<String> = row.try_get("amount")?;
            let at: String = row.try_get("recorded_at")?;
            Ok(FactRow {
                kind: row.try_get("kind")?,
                campaign_id: id(row, "campaign_id")?,
                lead_id: id(row, "lead_id")?,
                on_date: on.map(|d| d.parse()).transpose().context("on_date")?,
                amount: amount.map(|a| a.parse()).transpose().context("amount")?,
                currency: row.try_get("currency")?,
                recorded_at: chrono::DateTime::parse_from_rfc3339(&at)
                    .context("recorded_at")?
                    .with_timezone(&chrono::Utc),
            })
        })
        .collect()
}

/// Customers by name (those whose name, e-mail or phone contains `q`).
/// The customers a client user is the login of.
pub async fn customers_of_user(pool: &AnyPool, user: Uuid) -> Result<Vec<Uuid>> {
    let rows = sqlx::query("SELECT id FROM customers WHERE user_id = $1 ORDER BY id")
        .bind(user.to_string())
        .fetch_all(pool)
        .await?;
    rows.iter().map(|row| uuid(row, "id")).collect()
}

pub async fn customers(pool: &AnyPool, q: Option<&str>) -> Result<Vec<CustomerRow>> {
    let q = q
        .map(|q| format!("%{}%", q.trim().to_lowercase()))
        .unwrap_or_default();
    let rows = sqlx::query(
        "SELECT id, state, created_at, version FROM customers \
         WHERE ($1 = '' OR LOWER(name) LIKE $1 OR LOWER(COALESCE(email, '')) LIKE $1 \
              OR COALESCE(phone, '') LIKE $1) ORDER BY name, id",
    )
    .bind(q)
    .fetch_all(pool)
    .await?;
    rows.iter().map(customer_row).collect()
}
