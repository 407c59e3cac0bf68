//! Read models of the studio: plans, and subscriptions with the state their
//! events fold to (the standing on any day is derived from it by the
//! domain's own rules) and the client's name.

pub mod queries;
pub mod stats;

use std::collections::HashMap;

use async_trait::async_trait;
use cqrs_es::Aggregate;
use sqlx::AnyConnection;

use annals_domain::gym::plan::PlanLength;
use annals_domain::gym::{subscription, Plan, PlanEvent, Subscription, SubscriptionEvent};
use annals_domain::user::User;
use annals_domain::StoredEvent;

use crate::appointments::parsed;
use crate::names::{Kind, NameBook, Shown};
use crate::rows::{fold, Rows};
use crate::Projector;

pub const SUBSCRIPTIONS: &str = "subscriptions";

crate::record! {
    PlanRecord in "plans" {
        key id,
        name: String,
        length_unit: String,
        length: i64,
        price: String,
        currency: String,
        freeze_days: i64,
        active: i64,
        version: i64,
    }
}

crate::record! {
    SubscriptionRecord in "subscriptions" {
        key id,
        client_id: String,
        plan_id: String,
        state: String,
        version: i64,
        client_name: Option<String>,
    }
}

const SUBSCRIPTION_NAMES: &[Shown] = &[Shown {
    kind: Kind::User,
    table: "subscriptions",
    name_column: "client_name",
    id_column: "client_id",
}];

/// Plans and subscriptions, in one read model: the subscriber lists need
/// both.
pub struct SubscriptionsProjector;

#[async_trait]
impl Projector for SubscriptionsProjector {
    fn name(&self) -> &'static str {
        SUBSCRIPTIONS
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.aggregate_type == Plan::TYPE
            || event.aggregate_type == Subscription::TYPE
            || event.aggregate_type == User::TYPE
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let mut names = NameBook::new(SUBSCRIPTIONS, SUBSCRIPTION_NAMES, events)?;
        let plan_changes: Vec<(&StoredEvent, PlanEvent)> = parsed(events, Plan::TYPE)?;
        let changes: Vec<(&StoredEvent, SubscriptionEvent)> = parsed(events, Subscription::TYPE)?;
        let mut plans =
            Rows::<PlanRecord>::load(tx, plan_changes.iter().map(|(e, _)| e.aggregate_id.clone()))
                .await?;
        let ids = || changes.iter().map(|(e, _)| e.aggregate_id.clone());
        let mut rows = Rows::<SubscriptionRecord>::load(tx, ids()).await?;
        let clients = changes.iter().filter_map(|(_, change)| match change {
            SubscriptionEvent::Opened { client_id, .. } => {
                Some((Kind::User, client_id.to_string()))
            }
            _ => None,
        });
        names.load(tx, clients.collect::<Vec<_>>()).await?;
        for (event, change) in plan_changes {
            let id = &event.aggregate_id;
            match change {
                PlanEvent::Created { terms } => {
                    let (length_unit, length) = match terms.length {
                        PlanLength::Days(d) => ("days", i64::from(d)),
                        PlanLength::Months(m) => ("months", i64::from(m)),
                    };
                    plans.put(PlanRecord {
                        id: id.clone(),
                        name: terms.name,
                        length_unit: length_unit.into(),
                        length,
                        price: terms.price.amount.to_string(),
                        currency: terms.price.currency,
                        freeze_days: i64::from(terms.freeze_days),
                        active: 1,
                        version: event.sequence,
                    });
                }
                change @ (PlanEvent::Deactivated | PlanEvent::Reactivated) => {
                    if let Some(row) = plans.change(id) {
                        row.active = i64::from(matches!(change, PlanEvent::Reactivated));
                        row.version = event.sequence;
                    }
                }
            }
        }
        // Each subscription's state is decoded once and encoded once per batch.
        let states: HashMap<String, (Subscription, i64)> =
            fold(&rows, &changes, |r| &r.state, subscription::evolve)?;
        for (id, (state, version)) in states {
            let client_id = state.client_id.map(|c| c.to_string()).unwrap_or_default();
            let client_name = match rows.get(&id) {
                Some(row) => row.client_name.clone(),
                None => names.name(Kind::User, &client_id),
            };
            rows.put(SubscriptionRecord {
                plan_id: state.plan_id.map(|p| p.to_string()).unwrap_or_default(),
                state: serde_json::to_string(&state)?,
                client_id,
                version,
                client_name,
                id,
            });
        }
        plans.write(tx).await?;
        rows.write(tx).await?;
        names.write(tx).await
    }

    fn tables(&self) -> &'static [&'static str] {
        &["plans", "subscriptions", crate::names::TABLE]
    }
}

pub const TRAININGS: &str = "trainings";

crate::record! {
    GroupRecord in "training_groups" {
        key id,
        name: String,
        coach_id: String,
        capacity: i64,
        member_ids: String,
        version: i64,
    }
}

crate::record! {
    TrainingRecord in "trainings" {
        key id,
        group_id: Option<String>,
        coach_id: String,
        start_at: String,
        state: String,
        version: i64,
    }
}

crate::record! {
    AttendanceRecord in "training_attendance" {
        key id,
        training_id: String,
        client_id: String,
        start_at: String,
        status: String,
    }
}

/// Groups, and trainings with their invitations (the folded state).
pub struct TrainingsProjector;

#[async_trait]
impl Projector for TrainingsProjector {
    fn name(&self) -> &'static str {
        TRAININGS
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.aggregate_type == annals_domain::gym::training::Group::TYPE
            || event.aggregate_type == annals_domain::gym::training::Training::TYPE
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        use annals_domain::gym::training::{self, Group, GroupEvent, Training, TrainingEvent};
        let group_changes: Vec<(&StoredEvent, GroupEvent)> = parsed(events, Group::TYPE)?;
        let changes: Vec<(&StoredEvent, TrainingEvent)> = parsed(events, Training::TYPE)?;
        let mut groups = Rows::<GroupRecord>::load(
            tx,
            group_changes.iter().map(|(e, _)| e.aggregate_id.clone()),
        )
        .await?;
        let mut trainings =
            Rows::<TrainingRecord>::load(tx, changes.iter().map(|(e, _)| e.aggregate_id.clone()))
                .await?;
        for (event, change) in group_changes {
            let id = &event.aggregate_id;
            let mut state = match groups.get(id) {
                Some(row) => Group {
                    name: Some(row.name.clone()),
                    coach_id: row.coach_id.parse().ok(),
                    capacity: u32::try_from(row.capacity).unwrap_or(0),
                    member_ids: serde_json::from_str(&row.member_ids)?,
                },
                None => Group::default(),
            };
            training::evolve_group(&mut state, &change);
            groups.put(GroupRecord {
                id: id.clone(),
                name: state.name.unwrap_or_default(),
                coach_id: state.coach_id.map(|c| c.to_string()).unwrap_or_default(),
                capacity: i64::from(state.capacity),
                member_ids: serde_json::to_string(&state.member_ids)?,
                version: event.sequence,
            });
        }
        let states: HashMap<String, (Training, i64)> = fold(
            &trainings,
            &changes,
            |r| &r.state,
            training::evolve_training,
        )?;
        // Invitations are never taken back: each one's row is upserted.
        let mut attendance = Rows::<AttendanceRecord>::load(tx, std::iter::empty()).await?;
        for (id, (state, version)) in states {
            let Some(session) = &state.session else {
                continue;
            };
            let start_at = crate::appointments::timestamp(session.start);
            for (client, status) in &state.invitations {
                attendance.put(AttendanceRecord {
                    id: format!("{id}:{client}"),
                    training_id: id.clone(),
                    client_id: client.to_string(),
                    start_at: start_at.clone(),
                    status: status.as_str().to_string(),
                });
            }
            trainings.put(TrainingRecord {
                group_id: session.group_id.map(|g| g.to_string()),
                coach_id: session.coach_id.to_string(),
                start_at,
                state: serde_json::to_string(&state)?,
                version,
                id,
            });
        }
        groups.write(tx).await?;
        trainings.write(tx).await?;
        attendance.write(tx).await
    }

    fn tables(&self) -> &'static [&'static str] {
        &["training_groups", "trainings", "training_attendance"]
    }
}
