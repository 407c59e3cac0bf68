//! What the project and portal read models answer.

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use annals_domain::projects::portal::{ClientMessage, Feedback, RoadmapProduct};

use super::{Dated, ProjectFile};
use crate::appointments::queries::uuid;

/// A stored row: its id, its state, its version.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<S> {
    pub id: Uuid,
    pub state: S,
    pub version: i64,
}

fn stored<S: DeserializeOwned>(row: &AnyRow) -> Result<Stored<S>> {
    let state: String = row.try_get("state")?;
    Ok(Stored {
        id: uuid(row, "id")?,
        state: serde_json::from_str(&state).context("state")?,
        version: row.try_get("version")?,
    })
}

async fn one<S: DeserializeOwned>(
    pool: &AnyPool,
    table: &str,
    id: Uuid,
) -> Result<Option<Stored<S>>> {
    let row = sqlx::query(&format!(
        "SELECT id, state, version FROM {table} WHERE id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(stored).transpose()
}

async fn all<S: DeserializeOwned>(
    pool: &AnyPool,
    sql: &str,
    binds: &[String],
) -> Result<Vec<Stored<S>>> {
    let mut query = sqlx::query(sql);
    for b in binds {
        query = query.bind(b.clone());
    }
    query.fetch_all(pool).await?.iter().map(stored).collect()
}

pub type ProjectRow = Stored<ProjectFile>;

pub async fn project(pool: &AnyPool, id: Uuid) -> Result<Option<ProjectRow>> {
    one(pool, "projects", id).await
}

/// One client's projects (or everyone's), newest request first.
pub async fn projects(pool: &AnyPool, client: Option<Uuid>) -> Result<Vec<ProjectRow>> {
    all(
        pool,
        "SELECT id, state, version FROM projects WHERE ($1 = '' OR client_id = $1) \
         ORDER BY requested_at DESC, id DESC",
        &[client.map(|c| c.to_string()).unwrap_or_default()],
    )
    .await
}

/// The queue (of one client's projects, or everyone's): the work on the
/// queue first, then by deadline (none last); filtered by state and
/// working status ('' for any).
pub async fn queue(
    pool: &AnyPool,
    client: Option<Uuid>,
    status: &str,
    working_status: &str,
) -> Result<Vec<ProjectRow>> {
    all(
        pool,
        "SELECT id, state, version FROM projects WHERE ($1 = '' OR client_id = $1) \
         AND ($2 = '' OR status = $2) AND ($3 = '' OR working_status = $3) \
         ORDER BY CASE WHEN working_status = 'on_queue' THEN 0 ELSE 1 END, \
         CASE WHEN deadline = '' THEN 1 ELSE 0 END, deadline, requested_at, id",
        &[
            client.map(|c| c.to_string()).unwrap_or_default(),
            status.to_string(),
            working_status.to_string(),
        ],
    )
    .await
}

/// Projects ready for delivery since before `cutoff` (an instant as
/// `marketing::instant` writes it), for the automatic confirmation.
pub async fn ready_before(pool: &AnyPool, cutoff: &str, limit: i64) -> Result<Vec<Uuid>> {
    let rows = sqlx::query(
        "SELECT id FROM projects WHERE status = 'ready_for_delivery' AND ready_at <> '' \
         AND ready_at <= $1 ORDER BY ready_at, id LIMIT $2",
    )
    .bind(cutoff)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| uuid(r, "id")).collect()
}

pub type FeedbackRow = Stored<Dated<Feedback>>;

pub async fn feedback(pool: &AnyPool, id: Uuid) -> Result<Option<FeedbackRow>> {
    one(pool, "project_feedback", id).await
}

/// Feedback of one client (or all), newest first; `handled`: '' any,
/// '0' or '1'.
pub async fn feedback_list(
    pool: &AnyPool,
    client: Option<Uuid>,
    handled: Option<bool>,
) -> Result<Vec<FeedbackRow>> {
    all(
        pool,
        "SELECT id, state, version FROM project_feedback WHERE ($1 = '' OR client_id = $1) \
         AND ($2 = '' OR CAST(handled AS TEXT) = $2) ORDER BY submitted_at DESC, id DESC",
        &[
            client.map(|c| c.to_string()).unwrap_or_default(),
            handled
                .map(|h| i64::from(h).to_string())
                .unwrap_or_default(),
        ],
    )
    .await
}

pub type MessageRow = Stored<Dated<ClientMessage>>;

pub async fn message(pool: &AnyPool, id: Uuid) -> Result<Option<MessageRow>> {
    one(pool, "client_messages", id).await
}

/// A client's messages, newest first, by topic ('' any) and unread only.
pub async fn messages(
    pool: &AnyPool,
    client: Uuid,
    topic: &str,
    unread_only: bool,
) -> Result<Vec<MessageRow>> {
    all(
        pool,
        "SELECT id, state, version FROM client_messages WHERE client_id = $1 \
         AND ($2 = '' OR topic = $2) AND ($3 = '' OR is_read = 0) \
         ORDER BY sent_at DESC, id DESC",
        &[
            client.to_string(),
            topic.to_string(),
            if unread_only {
                "1".into()
            } else {
                String::new()
            },
        ],
    )
    .await
}

pub type RoadmapRow = Stored<RoadmapProduct>;

pub async fn roadmap_product(pool: &AnyPool, id: Uuid) -> Result<Option<RoadmapRow>> {
    one(pool, "roadmap_products", id).await
}

/// The roadmap: by state (planned, in work, available), then name.
pub async fn roadmap(pool: &AnyPool) -> Result<Vec<RoadmapRow>> {
    all(
        pool,
        "SELECT id, state, version FROM roadmap_products ORDER BY \
         CASE status WHEN 'planned' THEN 0 WHEN 'in_work' THEN 1 ELSE 2 END, name, id",
        &[],
    )
    .await
}
