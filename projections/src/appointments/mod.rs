//! Read models of the appointments domain: the catalog, masters and
//! appointments.

use async_trait::async_trait;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use cqrs_es::Aggregate;
use sqlx::AnyConnection;

use annals_domain::appointment::{Appointment, AppointmentEvent};
use annals_domain::catalog::{Category, CategoryEvent, Service, ServiceEvent, ServiceTerms};
use annals_domain::master::{self, Master, MasterEvent};
use annals_domain::StoredEvent;

use crate::names::{self, Kind};
use crate::Projector;

pub const CATALOG: &str = "catalog";
pub const MASTERS: &str = "masters";
pub const APPOINTMENTS: &str = "appointments";

/// The text form of instants in read models: sortable, UTC, whole seconds.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub struct CatalogProjector;

async fn upsert_service(
    tx: &mut AnyConnection,
    id: &str,
    terms: &ServiceTerms,
    version: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO services (id, name, description, category_id, duration_minutes, price, currency, \
         buffer_before_minutes, buffer_after_minutes, image_url, active, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description, \
         category_id = excluded.category_id, duration_minutes = excluded.duration_minutes, price = excluded.price, \
         currency = excluded.currency, buffer_before_minutes = excluded.buffer_before_minutes, \
         buffer_after_minutes = excluded.buffer_after_minutes, image_url = excluded.image_url, version = excluded.version",
    )
    .bind(id)
    .bind(&terms.name)
    .bind(&terms.description)
    .bind(terms.category_id.to_string())
    .bind(i64::from(terms.duration_minutes))
    .bind(terms.price.amount.to_string())
    .bind(&terms.price.currency)
    .bind(i64::from(terms.buffer_before_minutes))
    .bind(i64::from(terms.buffer_after_minutes))
    .bind(terms.image_url.clone())
    .bind(version)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[async_trait]
impl Projector for CatalogProjector {
    fn name(&self) -> &'static str {
        CATALOG
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        for event in events {
            let id = &event.aggregate_id;
            if event.aggregate_type == Category::TYPE {
                let CategoryEvent::Created { name } =
                    serde_json::from_value(event.payload.clone())?;
                sqlx::query(
                    "INSERT INTO service_categories (id, name, version) VALUES ($1, $2, $3)",
                )
                .bind(id)
                .bind(name)
                .bind(event.sequence)
                .execute(&mut *tx)
                .await?;
            } else if event.aggregate_type == Service::TYPE {
                match serde_json::from_value::<ServiceEvent>(event.payload.clone())? {
                    ServiceEvent::Created { terms } | ServiceEvent::Updated { terms } => {
                        upsert_service(tx, id, &terms, event.sequence).await?
                    }
                    change @ (ServiceEvent::Deactivated | ServiceEvent::Reactivated) => {
                        let active = matches!(change, ServiceEvent::Reactivated);
                        sqlx::query("UPDATE services SET active = $1, version = $2 WHERE id = $3")
                            .bind(i64::from(active))
                            .bind(event.sequence)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut AnyConnection) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM service_categories")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM services")
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

pub struct MastersProjector;

#[async_trait]
impl Projector for MastersProjector {
    fn name(&self) -> &'static str {
        MASTERS
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        for event in events {
            let renames = [(Kind::User, "UPDATE masters SET name = $1 WHERE id = $2")];
            if names::follow(tx, MASTERS, event, &renames).await? {
                continue;
            }
            if event.aggregate_type != Master::TYPE {
                continue;
            }
            let parsed: MasterEvent = serde_json::from_value(event.payload.clone())?;
            let current: Option<String> =
                sqlx::query_scalar("SELECT state FROM masters WHERE id = $1")
                    .bind(&event.aggregate_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let mut state: Master = match current {
                Some(json) => serde_json::from_str(&json)?,
                None => Master::default(),
            };
            master::evolve(&mut state, &parsed);
            let services: String = state
                .service_ids
                .iter()
                .fold(",".to_string(), |acc, id| format!("{acc}{id},"));
            let name = names::name_of(tx, MASTERS, Kind::User, &event.aggregate_id).await?;
            sqlx::query(
                "INSERT INTO masters (id, time_zone, service_ids, state, version, name) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (id) DO UPDATE SET time_zone = excluded.time_zone, service_ids = excluded.service_ids, \
                 state = excluded.state, version = excluded.version",
            )
            .bind(&event.aggregate_id)
            .bind(state.time_zone.name())
            .bind(services)
            .bind(serde_json::to_string(&state)?)
            .bind(event.sequence)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut AnyConnection) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM masters").execute(&mut *tx).await?;
        names::forget(tx, MASTERS).await?;
        Ok(())
    }
}

pub struct AppointmentsProjector;

#[async_trait]
impl Projector for AppointmentsProjector {
    fn name(&self) -> &'static str {
        APPOINTMENTS
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        for event in events {
            let renames = [
                (
                    Kind::User,
                    "UPDATE appointments SET client_name = $1 WHERE client_id = $2",
                ),
                (
                    Kind::User,
                    "UPDATE appointments SET master_name = $1 WHERE master_id = $2",
                ),
                (
                    Kind::Service,
                    "UPDATE appointments SET service_name = $1 WHERE service_id = $2",
                ),
            ];
            if names::follow(tx, APPOINTMENTS, event, &renames).await? {
                continue;
            }
            if event.aggregate_type != Appointment::TYPE {
                continue;
            }
            let id = &event.aggregate_id;
            let status = |s: &str| {
                sqlx::query("UPDATE appointments SET status = $1, version = $2 WHERE id = $3")
                    .bind(s.to_string())
                    .bind(event.sequence)
                    .bind(id.clone())
            };
            match serde_json::from_value::<AppointmentEvent>(event.payload.clone())? {
                AppointmentEvent::Booked(b) => {
                    let block_start =
                        b.start - Duration::minutes(i64::from(b.buffer_before_minutes));
                    let block_end = b.end + Duration::minutes(i64::from(b.buffer_after_minutes));
                    let user = |id: uuid::Uuid| id.to_string();
                    let client_name =
                        names::name_of(tx, APPOINTMENTS, Kind::User, &user(b.client_id)).await?;
                    let master_name =
                        names::name_of(tx, APPOINTMENTS, Kind::User, &user(b.master_id)).await?;
                    let service_name =
                        names::name_of(tx, APPOINTMENTS, Kind::Service, &user(b.service_id))
                            .await?;
                    sqlx::query(
                        "INSERT INTO appointments (id, client_id, master_id, service_id, start_at, end_at, block_start, \
                         block_end, status, price, currency, buffer_before_minutes, buffer_after_minutes, note, booked_at, version, \
                         client_name, master_name, service_name) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'booked', $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
                    )
                    .bind(id)
                    .bind(b.client_id.to_string())
                    .bind(b.master_id.to_string())
                    .bind(b.service_id.to_string())
                    .bind(timestamp(b.start))
                    .bind(timestamp(b.end))
                    .bind(timestamp(block_start))
                    .bind(timestamp(block_end))
                    .bind(b.price.amount.to_string())
                    .bind(b.price.currency.clone())
                    .bind(i64::from(b.buffer_before_minutes))
                    .bind(i64::from(b.buffer_after_minutes))
                    .bind(b.note.clone())
                    .bind(timestamp(event.recorded_at))
                    .bind(event.sequence)
                    .bind(client_name)
                    .bind(master_name)
                    .bind(service_name)
                    .execute(&mut *tx)
                    .await?;
                }
                AppointmentEvent::Confirmed => {
                    status("confirmed").execute(&mut *tx).await?;
                }
                AppointmentEvent::Cancelled { .. } => {
                    status("cancelled").execute(&mut *tx).await?;
                }
                AppointmentEvent::Completed => {
                    status("completed").execute(&mut *tx).await?;
                }
                AppointmentEvent::MarkedNoShow => {
                    status("no_show").execute(&mut *tx).await?;
                }
                AppointmentEvent::Rescheduled {
                    to_start,
                    to_end,
                    to_master_id,
                    ..
                } => {
                    let (before, after): (i64, i64) = sqlx::query_as(
                        "SELECT buffer_before_minutes, buffer_after_minutes FROM appointments WHERE id = $1",
                    )
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                    let master_name =
                        names::name_of(tx, APPOINTMENTS, Kind::User, &to_master_id.to_string())
                            .await?;
                    sqlx::query(
                        "UPDATE appointments SET start_at = $1, end_at = $2, block_start = $3, block_end = $4, \
                         master_id = $5, version = $6, master_name = $8 WHERE id = $7",
                    )
                    .bind(timestamp(to_start))
                    .bind(timestamp(to_end))
                    .bind(timestamp(to_start - Duration::minutes(before)))
                    .bind(timestamp(to_end + Duration::minutes(after)))
                    .bind(to_master_id.to_string())
                    .bind(event.sequence)
                    .bind(id)
                    .bind(master_name)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut AnyConnection) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM appointments")
            .execute(&mut *tx)
            .await?;
        names::forget(tx, APPOINTMENTS).await?;
        Ok(())
    }
}

pub mod queries;
