//! Read models of the appointments domain: the catalog, masters and
//! appointments. Each folds a batch of events into the rows it touches and
//! writes them back together (`crate::rows`).

use async_trait::async_trait;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use cqrs_es::Aggregate;
use sqlx::AnyConnection;

use annals_domain::appointment::{Appointment, AppointmentEvent};
use annals_domain::catalog::{Category, CategoryEvent, Service, ServiceEvent, ServiceTerms};
use annals_domain::master::{self, Master, MasterEvent};
use annals_domain::user::User;
use annals_domain::StoredEvent;

use crate::forget::{self, Shows, Whose};
use crate::names::{Kind, NameBook, Shown};
use crate::rows::Rows;
use crate::Projector;

pub const CATALOG: &str = "catalog";
pub const MASTERS: &str = "masters";
pub const APPOINTMENTS: &str = "appointments";

/// The text form of instants in read models: sortable, UTC, whole seconds.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The events of one aggregate type in a batch, parsed once.
pub(crate) fn parsed<'e, E: serde::de::DeserializeOwned>(
    events: &'e [StoredEvent],
    aggregate_type: &str,
) -> anyhow::Result<Vec<(&'e StoredEvent, E)>> {
    events
        .iter()
        .filter(|e| e.aggregate_type == aggregate_type)
        .map(|e| {
            let parsed = E::deserialize(&e.payload).map_err(|err| {
                anyhow::anyhow!(
                    "event at position {} ({}) does not parse: {err}",
                    e.position,
                    e.event_type
                )
            })?;
            Ok((e, parsed))
        })
        .collect()
}

crate::record! {
    CategoryRecord in "service_categories" {
        key id,
        name: String,
        version: i64,
    }
}

crate::record! {
    ServiceRecord in "services" {
        key id,
        name: String,
        description: String,
        category_id: String,
        duration_minutes: i64,
        price: String,
        currency: String,
        buffer_before_minutes: i64,
        buffer_after_minutes: i64,
        image_url: Option<String>,
        active: i64,
        version: i64,
    }
}

impl ServiceRecord {
    fn set_terms(&mut self, terms: ServiceTerms) {
        self.name = terms.name;
        self.description = terms.description;
        self.category_id = terms.category_id.to_string();
        self.duration_minutes = i64::from(terms.duration_minutes);
        self.price = terms.price.amount.to_string();
        self.currency = terms.price.currency;
        self.buffer_before_minutes = i64::from(terms.buffer_before_minutes);
        self.buffer_after_minutes = i64::from(terms.buffer_after_minutes);
        self.image_url = terms.image_url;
    }

    fn new(id: &str, terms: ServiceTerms, version: i64) -> Self {
        let mut row = Self {
            id: id.to_string(),
            name: String::new(),
            description: String::new(),
            category_id: String::new(),
            duration_minutes: 0,
            price: String::new(),
            currency: String::new(),
            buffer_before_minutes: 0,
            buffer_after_minutes: 0,
            image_url: None,
            active: 1,
            version,
        };
        row.set_terms(terms);
        row
    }
}

pub struct CatalogProjector;

#[async_trait]
impl Projector for CatalogProjector {
    fn name(&self) -> &'static str {
        CATALOG
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.aggregate_type == Category::TYPE || event.aggregate_type == Service::TYPE
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let created: Vec<(&StoredEvent, CategoryEvent)> = parsed(events, Category::TYPE)?;
        let changes: Vec<(&StoredEvent, ServiceEvent)> = parsed(events, Service::TYPE)?;
        // A category is only ever created: its row is written whole.
        let mut categories = Rows::<CategoryRecord>::default();
        let mut services =
            Rows::<ServiceRecord>::load(tx, changes.iter().map(|(e, _)| e.aggregate_id.clone()))
                .await?;
        for (event, CategoryEvent::Created { name }) in created {
            categories.put(CategoryRecord {
                id: event.aggregate_id.clone(),
                name,
                version: event.sequence,
            });
        }
        for (event, change) in changes {
            let id = &event.aggregate_id;
            match change {
                ServiceEvent::Created { terms } => {
                    services.put(ServiceRecord::new(id, terms, event.sequence))
                }
                ServiceEvent::Updated { terms } => match services.change(id) {
                    Some(row) => {
                        row.set_terms(terms);
                        row.version = event.sequence;
                    }
                    None => services.put(ServiceRecord::new(id, terms, event.sequence)),
                },
                change @ (ServiceEvent::Deactivated | ServiceEvent::Reactivated) => {
                    if let Some(row) = services.change(id) {
                        row.active = i64::from(matches!(change, ServiceEvent::Reactivated));
                        row.version = event.sequence;
                    }
                }
            }
        }
        categories.write(tx).await?;
        services.write(tx).await
    }

    fn tables(&self) -> &'static [&'static str] {
        &["service_categories", "services"]
    }
}

crate::record! {
    MasterRecord in "masters" {
        key id,
        time_zone: String,
        service_ids: String,
        state: String,
        version: i64,
        name: Option<String>,
    }
}

const MASTER_NAMES: &[Shown] = &[Shown {
    kind: Kind::User,
    table: "masters",
    name_column: "name",
    id_column: "id",
}];

pub struct MastersProjector;

#[async_trait]
impl Projector for MastersProjector {
    fn name(&self) -> &'static str {
        MASTERS
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.aggregate_type == Master::TYPE || event.aggregate_type == User::TYPE
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let mut names = NameBook::new(MASTERS, MASTER_NAMES, events)?;
        let changes: Vec<(&StoredEvent, MasterEvent)> = parsed(events, Master::TYPE)?;
        let ids = || changes.iter().map(|(e, _)| e.aggregate_id.clone());
        let mut masters = Rows::<MasterRecord>::load(tx, ids()).await?;
        names.load(tx, ids().map(|id| (Kind::User, id))).await?;
        // Each master's state is decoded once and encoded once per batch.
        let mut states = std::collections::HashMap::<String, (Master, i64)>::new();
        for (event, change) in &changes {
            let id = &event.aggregate_id;
            let entry = match states.entry(id.clone()) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let state = match masters.get(id) {
                        Some(row) => serde_json::from_str(&row.state)?,
                        None => Master::default(),
                    };
                    v.insert((state, 0))
                }
            };
            master::evolve(&mut entry.0, change);
            entry.1 = event.sequence;
        }
        for (id, (state, version)) in states {
            let services: String = state
                .service_ids
                .iter()
                .fold(",".to_string(), |acc, id| format!("{acc}{id},"));
            let name = match masters.get(&id) {
                Some(row) => row.name.clone(),
                None => names.name(Kind::User, &id),
            };
            masters.put(MasterRecord {
                time_zone: state.time_zone.name().to_string(),
                service_ids: services,
                state: serde_json::to_string(&state)?,
                version,
                name,
                id,
            });
        }
        masters.write(tx).await?;
        names.write(tx).await
    }

    fn tables(&self) -> &'static [&'static str] {
        &["masters", crate::names::TABLE]
    }
}

crate::record! {
    AppointmentRecord in "appointments" {
        key id,
        client_id: String,
        master_id: String,
        service_id: String,
        start_at: String,
        end_at: String,
        block_start: String,
        block_end: String,
        status: String,
        price: String,
        currency: String,
        buffer_before_minutes: i64,
        buffer_after_minutes: i64,
        note: Option<String>,
        booked_at: String,
        version: i64,
        client_name: Option<String>,
        master_name: Option<String>,
        service_name: Option<String>,
    }
}

/// The ids of users and services the appointment events of a batch name.
pub(crate) fn referenced(changes: &[(&StoredEvent, AppointmentEvent)]) -> Vec<(Kind, String)> {
    let mut refs = Vec::new();
    for (_, change) in changes {
        match change {
            AppointmentEvent::Booked(b) => {
                refs.push((Kind::User, b.client_id.to_string()));
                refs.push((Kind::User, b.master_id.to_string()));
                refs.push((Kind::Service, b.service_id.to_string()));
            }
            AppointmentEvent::Rescheduled { to_master_id, .. } => {
                refs.push((Kind::User, to_master_id.to_string()))
            }
            _ => {}
        }
    }
    refs
}

const APPOINTMENT_NAMES: &[Shown] = &[
    Shown {
        kind: Kind::User,
        table: "appointments",
        name_column: "client_name",
        id_column: "client_id",
    },
    Shown {
        kind: Kind::User,
        table: "appointments",
        name_column: "master_name",
        id_column: "master_id",
    },
    Shown {
        kind: Kind::Service,
        table: "appointments",
        name_column: "service_name",
        id_column: "service_id",
    },
];

pub struct AppointmentsProjector;

/// What an appointment shows of its client besides the name (which
/// `names` keeps).
const APPOINTMENT_PERSONAL: &[Shows] = &[Shows {
    table: "appointments",
    key: "id",
    whose: Whose::User,
    owner: "client_id",
    columns: &["note"],
    state: None,
}];

#[async_trait]
impl Projector for AppointmentsProjector {
    fn name(&self) -> &'static str {
        APPOINTMENTS
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.aggregate_type == Appointment::TYPE
            || event.aggregate_type == User::TYPE
            || event.aggregate_type == Service::TYPE
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let mut names = NameBook::new(APPOINTMENTS, APPOINTMENT_NAMES, events)?;
        let changes: Vec<(&StoredEvent, AppointmentEvent)> = parsed(events, Appointment::TYPE)?;
        let mut rows = Rows::<AppointmentRecord>::load(
            tx,
            changes.iter().map(|(e, _)| e.aggregate_id.clone()),
        )
        .await?;
        names.load(tx, referenced(&changes)).await?;
        for (event, change) in changes {
            let id = &event.aggregate_id;
            let set_status = |rows: &mut Rows<AppointmentRecord>, status: &str| {
                if let Some(row) = rows.change(id) {
                    row.status = status.to_string();
                    row.version = event.sequence;
                }
            };
            match change {
                AppointmentEvent::Booked(b) => {
                    let block_start =
                        b.start - Duration::minutes(i64::from(b.buffer_before_minutes));
                    let block_end = b.end + Duration::minutes(i64::from(b.buffer_after_minutes));
                    rows.put(AppointmentRecord {
                        id: id.clone(),
                        client_id: b.client_id.to_string(),
                        master_id: b.master_id.to_string(),
                        service_id: b.service_id.to_string(),
                        start_at: timestamp(b.start),
                        end_at: timestamp(b.end),
                        block_start: timestamp(block_start),
                        block_end: timestamp(block_end),
                        status: "booked".into(),
                        price: b.price.amount.to_string(),
                        currency: b.price.currency.clone(),
                        buffer_before_minutes: i64::from(b.buffer_before_minutes),
                        buffer_after_minutes: i64::from(b.buffer_after_minutes),
                        note: b.note.clone(),
                        booked_at: timestamp(event.recorded_at),
                        version: event.sequence,
                        client_name: names.name(Kind::User, &b.client_id.to_string()),
                        master_name: names.name(Kind::User, &b.master_id.to_string()),
                        service_name: names.name(Kind::Service, &b.service_id.to_string()),
                    });
                }
                AppointmentEvent::Confirmed => set_status(&mut rows, "confirmed"),
                AppointmentEvent::Cancelled { .. } => set_status(&mut rows, "cancelled"),
                AppointmentEvent::Completed => set_status(&mut rows, "completed"),
                AppointmentEvent::MarkedNoShow => set_status(&mut rows, "no_show"),
                AppointmentEvent::Rescheduled {
                    to_start,
                    to_end,
                    to_master_id,
                    ..
                } => {
                    let row = rows.change(id).ok_or_else(|| {
                        anyhow::anyhow!("appointment {id} was rescheduled but never booked")
                    })?;
                    row.start_at = timestamp(to_start);
                    row.end_at = timestamp(to_end);
                    row.block_start =
                        timestamp(to_start - Duration::minutes(row.buffer_before_minutes));
                    row.block_end = timestamp(to_end + Duration::minutes(row.buffer_after_minutes));
                    row.master_id = to_master_id.to_string();
                    row.master_name = names.name(Kind::User, &row.master_id);
                    row.version = event.sequence;
                }
            }
        }
        rows.write(tx).await?;
        names.write(tx).await?;
        forget::forget(tx, APPOINTMENT_PERSONAL, events).await
    }

    fn tables(&self) -> &'static [&'static str] {
        &["appointments", crate::names::TABLE]
    }
}

pub mod queries;
