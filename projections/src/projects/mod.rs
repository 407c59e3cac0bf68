//! Read models of client projects and the portal: each project's folded
//! state with the time of every change (for the live status, the history
//! of agreements, the progress series, the waiting times and the
//! statistics), feedback, messages to clients, and the products roadmap.

pub mod queries;
pub mod timeline;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use sqlx::AnyConnection;

use annals_domain::projects::portal::{
    self, ClientMessage, ClientMessageEvent, Feedback, FeedbackEvent, RoadmapEvent, RoadmapProduct,
};
use annals_domain::projects::{ProjectEvent, ProjectRequest};
use annals_domain::StoredEvent;

use crate::appointments::parsed;
use crate::forget::{self, Shows, Whose};
use crate::marketing::instant;
use crate::rows::{fold, ids, Rows};
use crate::Projector;

pub use timeline::ProjectFile;

pub const PROJECTS: &str = "projects";

crate::record! {
    ProjectRecord in "projects" {
        key id,
        client_id: String,
        status: String,
        working_status: String,
        deadline: String,
        requested_at: String,
        ready_at: String,
        state: String,
        version: i64,
    }
}

crate::record! {
    FeedbackRecord in "project_feedback" {
        key id,
        client_id: String,
        handled: i64,
        submitted_at: String,
        state: String,
        version: i64,
    }
}

crate::record! {
    MessageRecord in "client_messages" {
        key id,
        client_id: String,
        topic: String,
        is_read: i64,
        sent_at: String,
        state: String,
        version: i64,
    }
}

crate::record! {
    RoadmapRecord in "roadmap_products" {
        key id,
        name: String,
        status: String,
        interested: i64,
        state: String,
        version: i64,
    }
}

/// What the client portal shows of a client: their requests, feedback
/// and the letters to them.
const PROJECT_PERSONAL: &[Shows] = &[
    Shows {
        table: "projects",
        key: "id",
        whose: Whose::User,
        owner: "client_id",
        columns: &[],
        state: Some((
            "state",
            &["/project/request/title", "/project/request/description"],
        )),
    },
    Shows {
        table: "project_feedback",
        key: "id",
        whose: Whose::User,
        owner: "client_id",
        columns: &[],
        state: Some(("state", &["/state/note/text"])),
    },
    Shows {
        table: "client_messages",
        key: "id",
        whose: Whose::User,
        owner: "client_id",
        columns: &[],
        state: Some(("state", &["/state/letter/subject", "/state/letter/body"])),
    },
];

/// A portal record with the instant its first event was recorded.
#[derive(serde::Serialize, serde::Deserialize, Default)]
pub struct Dated<A> {
    pub state: A,
    pub created_at: Option<DateTime<Utc>>,
}

fn dated<E>(changes: Vec<(&StoredEvent, E)>) -> Vec<(&StoredEvent, (DateTime<Utc>, E))> {
    changes
        .into_iter()
        .map(|(stored, e)| (stored, (stored.recorded_at, e)))
        .collect()
}

fn evolve_dated<A, E>(evolve: fn(&mut A, &E)) -> impl Fn(&mut Dated<A>, &(DateTime<Utc>, E)) {
    move |d, (at, e)| {
        d.created_at.get_or_insert(*at);
        evolve(&mut d.state, e);
    }
}

pub struct ProjectsProjector;

const TYPES: [&str; 4] = [
    ProjectRequest::TYPE,
    Feedback::TYPE,
    ClientMessage::TYPE,
    RoadmapProduct::TYPE,
];

#[async_trait]
impl Projector for ProjectsProjector {
    fn name(&self) -> &'static str {
        PROJECTS
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        TYPES.contains(&event.aggregate_type.as_str()) || forget::erases(PROJECT_PERSONAL, event)
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let projects = dated(parsed::<ProjectEvent>(events, ProjectRequest::TYPE)?);
        let mut rows = Rows::<ProjectRecord>::load(tx, ids(&projects)).await?;
        for (id, (file, version)) in fold(&rows, &projects, |r| &r.state, timeline::evolve)? {
            let file: ProjectFile = file;
            let Some(request) = &file.project.request else {
                continue;
            };
            let deadline = file
                .project
                .agreement
                .as_ref()
                .map(|a| a.deadline)
                .or(request.desired_deadline);
            rows.put(ProjectRecord {
                client_id: request.client_id.to_string(),
                status: file.project.state.as_str().into(),
                working_status: file
                    .project
                    .state
                    .working_status()
                    .unwrap_or_default()
                    .into(),
                deadline: deadline.map(|d| d.to_string()).unwrap_or_default(),
                requested_at: file.requested_at.map(instant).unwrap_or_default(),
                ready_at: file.ready_at.map(instant).unwrap_or_default(),
                state: serde_json::to_string(&file)?,
                version,
                id,
            });
        }
        rows.write(tx).await?;

        let feedback = dated(parsed::<FeedbackEvent>(events, Feedback::TYPE)?);
        let mut rows = Rows::<FeedbackRecord>::load(tx, ids(&feedback)).await?;
        let evolve = evolve_dated(portal::evolve_feedback);
        for (id, (d, version)) in fold(&rows, &feedback, |r| &r.state, &evolve)? {
            let d: Dated<Feedback> = d;
            let Some(note) = &d.state.note else { continue };
            rows.put(FeedbackRecord {
                client_id: note.client_id.to_string(),
                handled: i64::from(d.state.handled_by.is_some()),
                submitted_at: d.created_at.map(instant).unwrap_or_default(),
                state: serde_json::to_string(&d)?,
                version,
                id,
            });
        }
        rows.write(tx).await?;

        let messages = dated(parsed::<ClientMessageEvent>(events, ClientMessage::TYPE)?);
        let mut rows = Rows::<MessageRecord>::load(tx, ids(&messages)).await?;
        let evolve = evolve_dated(portal::evolve_message);
        for (id, (d, version)) in fold(&rows, &messages, |r| &r.state, &evolve)? {
            let d: Dated<ClientMessage> = d;
            let Some(letter) = &d.state.letter else {
                continue;
            };
            rows.put(MessageRecord {
                client_id: letter.client_id.to_string(),
                topic: letter.topic.as_str().into(),
                is_read: i64::from(d.state.read_at.is_some()),
                sent_at: d.created_at.map(instant).unwrap_or_default(),
                state: serde_json::to_string(&d)?,
                version,
                id,
            });
        }
        rows.write(tx).await?;

        let products = parsed::<RoadmapEvent>(events, RoadmapProduct::TYPE)?;
        let mut rows = Rows::<RoadmapRecord>::load(tx, ids(&products)).await?;
        for (id, (product, version)) in
            fold(&rows, &products, |r| &r.state, portal::evolve_roadmap)?
        {
            let product: RoadmapProduct = product;
            let (Some(name), Some(state)) = (&product.name, product.state) else {
                continue;
            };
            rows.put(RoadmapRecord {
                name: name.clone(),
                status: state.as_str().into(),
                interested: product.interested.len() as i64,
                state: serde_json::to_string(&product)?,
                version,
                id,
            });
        }
        rows.write(tx).await?;
        forget::forget(tx, PROJECT_PERSONAL, events).await
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "projects",
            "project_feedback",
            "client_messages",
            "roadmap_products",
        ]
    }
}
