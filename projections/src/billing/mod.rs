//! Read models of invoices and scheduled messages: each one's folded state
//! with the columns they are listed and found by (the message sender finds
//! what is due by `status, due_at`).

pub mod queries;

use async_trait::async_trait;
use cqrs_es::Aggregate;
use sqlx::AnyConnection;

use annals_domain::invoice::{self, Invoice, InvoiceEvent};
use annals_domain::message::{self, MessageEvent, ScheduledMessage};
use annals_domain::StoredEvent;

use crate::appointments::parsed;
use crate::forget::{self, Shows, Whose};
use crate::marketing::instant;
use crate::rows::{fold, ids, Rows};
use crate::Projector;

pub const BILLING: &str = "billing";

crate::record! {
    InvoiceRecord in "invoices" {
        key id,
        customer_id: String,
        number: String,
        status: String,
        issue_date: String,
        due_date: String,
        state: String,
        version: i64,
    }
}

crate::record! {
    MessageRecord in "scheduled_messages" {
        key id,
        customer_id: String,
        channel: String,
        status: String,
        scheduled_at: String,
        due_at: String,
        acknowledged: i64,
        state: String,
        version: i64,
    }
}

pub struct BillingProjector;

/// What a scheduled message shows of its customer: where it goes, what
/// it says.
const MESSAGE_PERSONAL: &[Shows] = &[Shows {
    table: "scheduled_messages",
    key: "id",
    whose: Whose::Customer,
    owner: "customer_id",
    columns: &[],
    state: Some(("state", &["/plan/to", "/plan/content"])),
}];

#[async_trait]
impl Projector for BillingProjector {
    fn name(&self) -> &'static str {
        BILLING
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.aggregate_type == Invoice::TYPE
            || event.aggregate_type == ScheduledMessage::TYPE
            || forget::erases(MESSAGE_PERSONAL, event)
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let invoice_changes: Vec<(&StoredEvent, InvoiceEvent)> = parsed(events, Invoice::TYPE)?;
        let message_changes: Vec<(&StoredEvent, MessageEvent)> =
            parsed(events, ScheduledMessage::TYPE)?;
        let mut invoices = Rows::<InvoiceRecord>::load(tx, ids(&invoice_changes)).await?;
        for (id, (state, version)) in
            fold(&invoices, &invoice_changes, |r| &r.state, invoice::evolve)?
        {
            let Some(issue) = &state.issue else { continue };
            invoices.put(InvoiceRecord {
                customer_id: issue.customer_id.to_string(),
                number: issue.number.clone(),
                status: state.status.as_str().into(),
                issue_date: issue.issue_date.to_string(),
                due_date: issue.due_date.to_string(),
                state: serde_json::to_string(&state)?,
                version,
                id,
            });
        }
        let mut messages = Rows::<MessageRecord>::load(tx, ids(&message_changes)).await?;
        for (id, (state, version)) in
            fold(&messages, &message_changes, |r| &r.state, message::evolve)?
        {
            let (Some(plan), Some(due)) = (&state.plan, state.due_at()) else {
                continue;
            };
            messages.put(MessageRecord {
                customer_id: plan.customer_id.to_string(),
                channel: plan.channel.as_str().into(),
                status: state.status.as_str().into(),
                scheduled_at: instant(plan.scheduled_at),
                due_at: instant(due),
                acknowledged: i64::from(state.acknowledged_by.is_some()),
                state: serde_json::to_string(&state)?,
                version,
                id,
            });
        }
        invoices.write(tx).await?;
        messages.write(tx).await?;
        forget::forget(tx, MESSAGE_PERSONAL, events).await
    }

    fn tables(&self) -> &'static [&'static str] {
        &["invoices", "scheduled_messages"]
    }
}
