//! The statistics engine: a consumer of the log with its own checkpoint
//! that keeps one fact row per appointment. Queries group the facts (by
//! master, service, month, hour); later domains add their facts here.

use anyhow::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use sqlx::{AnyConnection, AnyPool, Row};

use annals_domain::appointment::{Appointment, AppointmentEvent};
use annals_domain::StoredEvent;

use crate::appointments::queries::instant;
use crate::appointments::timestamp;
use crate::names::{self, Kind};
use crate::Projector;

pub const NAME: &str = "statistics";

pub struct StatisticsProjector;

#[async_trait]
impl Projector for StatisticsProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        for event in events {
            let renames = [
                (
                    Kind::User,
                    "UPDATE appointment_facts SET master_name = $1 WHERE master_id = $2",
                ),
                (
                    Kind::Service,
                    "UPDATE appointment_facts SET service_name = $1 WHERE service_id = $2",
                ),
            ];
            if names::follow(tx, NAME, event, &renames).await? {
                continue;
            }
            if event.aggregate_type != Appointment::TYPE {
                continue;
            }
            let id = &event.aggregate_id;
            let set_status = |status: &'static str| {
                sqlx::query("UPDATE appointment_facts SET status = $1, version = $2 WHERE id = $3")
                    .bind(status)
                    .bind(event.sequence)
                    .bind(id.clone())
            };
            match serde_json::from_value::<AppointmentEvent>(event.payload.clone())? {
                AppointmentEvent::Booked(b) => {
                    let master_name =
                        names::name_of(tx, NAME, Kind::User, &b.master_id.to_string()).await?;
                    let service_name =
                        names::name_of(tx, NAME, Kind::Service, &b.service_id.to_string()).await?;
                    sqlx::query(
                        "INSERT INTO appointment_facts (id, client_id, master_id, service_id, start_at, status, price, currency, version, \
                         master_name, service_name) VALUES ($1, $2, $3, $4, $5, 'booked', $6, $7, $8, $9, $10)",
                    )
                    .bind(id)
                    .bind(b.client_id.to_string())
                    .bind(b.master_id.to_string())
                    .bind(b.service_id.to_string())
                    .bind(timestamp(b.start))
                    .bind(b.price.amount.to_string())
                    .bind(b.price.currency.clone())
                    .bind(event.sequence)
                    .bind(master_name)
                    .bind(service_name)
                    .execute(&mut *tx)
                    .await?;
                }
                AppointmentEvent::Rescheduled {
                    to_start,
                    to_master_id,
                    ..
                } => {
                    let master_name =
                        names::name_of(tx, NAME, Kind::User, &to_master_id.to_string()).await?;
                    sqlx::query("UPDATE appointment_facts SET start_at = $1, master_id = $2, version = $3, master_name = $5 WHERE id = $4")
                        .bind(timestamp(to_start))
                        .bind(to_master_id.to_string())
                        .bind(event.sequence)
                        .bind(id)
                        .bind(master_name)
                        .execute(&mut *tx)
                        .await?;
                }
                AppointmentEvent::Confirmed => {
                    set_status("confirmed").execute(&mut *tx).await?;
                }
                AppointmentEvent::Cancelled { .. } => {
                    set_status("cancelled").execute(&mut *tx).await?;
                }
                AppointmentEvent::Completed => {
                    set_status("completed").execute(&mut *tx).await?;
                }
                AppointmentEvent::MarkedNoShow => {
                    set_status("no_show").execute(&mut *tx).await?;
                }
            }
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut AnyConnection) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM appointment_facts")
            .execute(&mut *tx)
            .await?;
        names::forget(tx, NAME).await?;
        Ok(())
    }
}

/// One appointment's facts.
#[derive(Debug, Clone, PartialEq)]
pub struct FactRow {
    /// The ids as stored: they are the groups' keys.
    pub master_id: String,
    pub service_id: String,
    pub start: DateTime<Utc>,
    pub status: String,
    pub price: String,
    pub currency: String,
    pub master_name: Option<String>,
    pub service_name: Option<String>,
}

/// The facts of the appointments that start in `[from, to)`.
pub async fn facts(pool: &AnyPool, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<FactRow>> {
    let rows = sqlx::query(
        "SELECT master_id, service_id, start_at, status, price, currency, master_name, service_name FROM appointment_facts \
         WHERE start_at >= $1 AND start_at < $2",
    )
    .bind(timestamp(from))
    .bind(timestamp(to))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(FactRow {
                start: instant(row, "start_at")?,
                status: row.try_get("status")?,
                master_id: row.try_get("master_id")?,
                service_id: row.try_get("service_id")?,
                price: row.try_get("price")?,
                currency: row.try_get("currency")?,
                master_name: row.try_get("master_name")?,
                service_name: row.try_get("service_name")?,
            })
        })
        .collect()
}
