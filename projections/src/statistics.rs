//! The statistics engine: a consumer of the log with its own checkpoint
//! that keeps one fact row per appointment. Queries group the facts (by
//! master, service, month, hour); later domains add their facts here.

use anyhow::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use sqlx::{AnyConnection, AnyPool, Row};

use annals_domain::appointment::{Appointment, AppointmentEvent};
use annals_domain::catalog::Service;
use annals_domain::user::User;
use annals_domain::StoredEvent;

use crate::appointments::queries::instant;
use crate::appointments::{parsed, referenced, timestamp};
use crate::names::{Kind, NameBook, Shown};
use crate::rows::Rows;
use crate::Projector;

pub const NAME: &str = "statistics";

crate::record! {
    FactRecord in "appointment_facts" {
        key id,
        client_id: String,
        master_id: String,
        service_id: String,
        start_at: String,
        status: String,
        price: String,
        currency: String,
        version: i64,
        master_name: Option<String>,
        service_name: Option<String>,
    }
}

const SHOWN: &[Shown] = &[
    Shown {
        kind: Kind::User,
        table: "appointment_facts",
        name_column: "master_name",
        id_column: "master_id",
    },
    Shown {
        kind: Kind::Service,
        table: "appointment_facts",
        name_column: "service_name",
        id_column: "service_id",
    },
];

pub struct StatisticsProjector;

#[async_trait]
impl Projector for StatisticsProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.aggregate_type == Appointment::TYPE
            || event.aggregate_type == User::TYPE
            || event.aggregate_type == Service::TYPE
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let mut names = NameBook::new(NAME, SHOWN, events)?;
        let changes: Vec<(&StoredEvent, AppointmentEvent)> = parsed(events, Appointment::TYPE)?;
        let mut facts =
            Rows::<FactRecord>::load(tx, changes.iter().map(|(e, _)| e.aggregate_id.clone()))
                .await?;
        names.load(tx, referenced(&changes)).await?;
        for (event, change) in changes {
            let id = &event.aggregate_id;
            let status = match change {
                AppointmentEvent::Booked(b) => {
                    facts.put(FactRecord {
                        id: id.clone(),
                        client_id: b.client_id.to_string(),
                        master_id: b.master_id.to_string(),
                        service_id: b.service_id.to_string(),
                        start_at: timestamp(b.start),
                        status: "booked".into(),
                        price: b.price.amount.to_string(),
                        currency: b.price.currency.clone(),
                        version: event.sequence,
                        master_name: names.name(Kind::User, &b.master_id.to_string()),
                        service_name: names.name(Kind::Service, &b.service_id.to_string()),
                    });
                    continue;
                }
                AppointmentEvent::Rescheduled {
                    to_start,
                    to_master_id,
                    ..
                } => {
                    if let Some(row) = facts.change(id) {
                        row.start_at = timestamp(to_start);
                        row.master_id = to_master_id.to_string();
                        row.master_name = names.name(Kind::User, &row.master_id);
                        row.version = event.sequence;
                    }
                    continue;
                }
                AppointmentEvent::Confirmed => "confirmed",
                AppointmentEvent::Cancelled { .. } => "cancelled",
                AppointmentEvent::Completed => "completed",
                AppointmentEvent::MarkedNoShow => "no_show",
            };
            if let Some(row) = facts.change(id) {
                row.status = status.into();
                row.version = event.sequence;
            }
        }
        facts.write(tx).await?;
        names.write(tx).await
    }

    fn tables(&self) -> &'static [&'static str] {
        &["appointment_facts", crate::names::TABLE]
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
