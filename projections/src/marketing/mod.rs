//! Read models of marketing, one consumer: campaigns, leads, contracts,
//! customers and uploaded files (each with its folded state where views
//! need more than columns), and `campaign_facts` — one row per event the
//! campaign statistics count, with the instant it was recorded, so the
//! figures can be computed "as known at" any instant.

pub mod queries;
pub mod stats;

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use cqrs_es::Aggregate;
use sqlx::AnyConnection;

use annals_domain::customer::{self, Customer, CustomerEvent};
use annals_domain::files::{FileEvent, StoredFile};
use annals_domain::marketing::campaign::{self, Campaign, CampaignEvent};
use annals_domain::marketing::contract::{Contract, ContractEvent};
use annals_domain::marketing::lead::{self, Lead, LeadEvent};
use annals_domain::StoredEvent;

use crate::appointments::parsed;
use crate::rows::{fold, ids, Rows};
use crate::Projector;

pub const MARKETING: &str = "marketing";

/// Instants as stored here: RFC 3339, UTC, milliseconds (they sort as text).
pub fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

crate::record! {
    CampaignRecord in "campaigns" {
        key id,
        name: String,
        status: String,
        planned_at: String,
        state: String,
        version: i64,
    }
}

crate::record! {
    LeadRecord in "leads" {
        key id,
        full_name: String,
        phone: Option<String>,
        email: Option<String>,
        campaign_id: Option<String>,
        status: String,
        assigned_to: Option<String>,
        created_at: String,
        state: String,
        version: i64,
    }
}

crate::record! {
    ContractRecord in "contracts" {
        key id,
        customer_id: String,
        lead_id: Option<String>,
        file_id: String,
        signed_on: String,
        recorded_at: String,
        terms: String,
    }
}

crate::record! {
    CustomerRecord in "customers" {
        key id,
        name: String,
        email: Option<String>,
        phone: Option<String>,
        lead_id: Option<String>,
        user_id: Option<String>,
        created_at: String,
        state: String,
        version: i64,
    }
}

crate::record! {
    FileRecord in "files" {
        key id,
        sha256: String,
        size: i64,
        content_type: String,
        name: String,
        uploaded_by: String,
        uploaded_at: String,
        owner_kind: Option<String>,
        owner_id: Option<String>,
    }
}

crate::record! {
    FactRecord in "campaign_facts" {
        key id,
        kind: String,
        campaign_id: Option<String>,
        lead_id: Option<String>,
        on_date: Option<String>,
        amount: Option<String>,
        currency: Option<String>,
        recorded_at: String,
    }
}

impl FactRecord {
    fn of(event: &StoredEvent, kind: &str) -> Self {
        Self {
            id: event.event_id.to_string(),
            kind: kind.into(),
            campaign_id: None,
            lead_id: None,
            on_date: None,
            amount: None,
            currency: None,
            recorded_at: instant(event.recorded_at),
        }
    }
}

/// When each aggregate's first event in the batch was recorded.
fn first_seen<E>(changes: &[(&StoredEvent, E)]) -> HashMap<String, String> {
    let mut seen = HashMap::new();
    for (event, _) in changes {
        seen.entry(event.aggregate_id.clone())
            .or_insert_with(|| instant(event.recorded_at));
    }
    seen
}

pub struct MarketingProjector;

#[async_trait]
impl Projector for MarketingProjector {
    fn name(&self) -> &'static str {
        MARKETING
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        [
            Campaign::TYPE,
            Lead::TYPE,
            Contract::TYPE,
            Customer::TYPE,
            StoredFile::TYPE,
        ]
        .contains(&event.aggregate_type.as_str())
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let campaign_changes: Vec<(&StoredEvent, CampaignEvent)> = parsed(events, Campaign::TYPE)?;
        let lead_changes: Vec<(&StoredEvent, LeadEvent)> = parsed(events, Lead::TYPE)?;
        let contract_changes: Vec<(&StoredEvent, ContractEvent)> = parsed(events, Contract::TYPE)?;
        let customer_changes: Vec<(&StoredEvent, CustomerEvent)> = parsed(events, Customer::TYPE)?;
        let file_changes: Vec<(&StoredEvent, FileEvent)> = parsed(events, StoredFile::TYPE)?;
        let mut facts = Rows::<FactRecord>::load(tx, std::iter::empty()).await?;

        let mut campaigns = Rows::<CampaignRecord>::load(tx, ids(&campaign_changes)).await?;
        let states = fold(
            &campaigns,
            &campaign_changes,
            |r| &r.state,
            campaign::evolve,
        )?;
        let planned = first_seen(&campaign_changes);
        for (event, change) in &campaign_changes {
            if let CampaignEvent::SpendRecorded(spend) = change {
                let currency = states[&event.aggregate_id]
                    .0
                    .terms
                    .as_ref()
                    .map(|t| t.budget.currency.clone());
                facts.put(FactRecord {
                    campaign_id: Some(event.aggregate_id.clone()),
                    on_date: Some(spend.on.to_string()),
                    amount: Some(spend.amount.to_string()),
                    currency,
                    ..FactRecord::of(event, "spend")
                });
            }
        }
        for (id, (state, version)) in states {
            let Some(terms) = &state.terms else { continue };
            let planned_at = match campaigns.get(&id) {
                Some(row) => row.planned_at.clone(),
                None => planned[&id].clone(),
            };
            campaigns.put(CampaignRecord {
                name: terms.name.clone(),
                status: state.status.as_str().into(),
                planned_at,
                state: serde_json::to_string(&state)?,
                version,
                id,
            });
        }

        let mut leads = Rows::<LeadRecord>::load(tx, ids(&lead_changes)).await?;
        let states = fold(&leads, &lead_changes, |r| &r.state, lead::evolve)?;
        let created = first_seen(&lead_changes);
        for (event, change) in &lead_changes {
            let kind = match change {
                LeadEvent::Created { .. } => "lead_created",
                LeadEvent::Started => "lead_started",
                LeadEvent::Lost { .. } => "lead_lost",
                LeadEvent::Reopened { .. } => "lead_reopened",
                LeadEvent::Converted { .. } => "lead_converted",
                _ => continue,
            };
            let campaign_id = match change {
                LeadEvent::Created { info, .. } => info.campaign_id.map(|c| c.to_string()),
                _ => None,
            };
            facts.put(FactRecord {
                campaign_id,
                lead_id: Some(event.aggregate_id.clone()),
                ..FactRecord::of(event, kind)
            });
        }
        for (id, (state, version)) in states {
            let Some(info) = &state.info else { continue };
            let created_at = match leads.get(&id) {
                Some(row) => row.created_at.clone(),
                None => created[&id].clone(),
            };
            leads.put(LeadRecord {
                full_name: info.full_name.clone(),
                phone: info.phone.as_ref().map(|p| p.as_str().to_string()),
                email: info.email.as_ref().map(|e| e.as_str().to_string()),
                campaign_id: info.campaign_id.map(|c| c.to_string()),
                status: state.status.as_str().into(),
                assigned_to: state.assigned_to.map(|a| a.to_string()),
                created_at,
                state: serde_json::to_string(&state)?,
                version,
                id,
            });
        }

        let mut contracts = Rows::<ContractRecord>::load(tx, std::iter::empty()).await?;
        for (event, change) in &contract_changes {
            let ContractEvent::Recorded {
                terms,
                customer_id,
                lead_id,
            } = change;
            contracts.put(ContractRecord {
                id: event.aggregate_id.clone(),
                customer_id: customer_id.to_string(),
                lead_id: lead_id.map(|l| l.to_string()),
                file_id: terms.file_id.to_string(),
                signed_on: terms.signed_on.to_string(),
                recorded_at: instant(event.recorded_at),
                terms: serde_json::to_string(terms)?,
            });
            facts.put(FactRecord {
                lead_id: lead_id.map(|l| l.to_string()),
                on_date: Some(terms.signed_on.to_string()),
                amount: Some(terms.amount.amount.to_string()),
                currency: Some(terms.amount.currency.clone()),
                ..FactRecord::of(event, "contract")
            });
        }

        let mut customers = Rows::<CustomerRecord>::load(tx, ids(&customer_changes)).await?;
        let states = fold(
            &customers,
            &customer_changes,
            |r| &r.state,
            customer::evolve,
        )?;
        let since = first_seen(&customer_changes);
        for (id, (state, version)) in states {
            let Some(profile) = &state.profile else {
                continue;
            };
            let created_at = match customers.get(&id) {
                Some(row) => row.created_at.clone(),
                None => since[&id].clone(),
            };
            customers.put(CustomerRecord {
                name: profile.name.clone(),
                email: profile.email.as_ref().map(|e| e.as_str().to_string()),
                phone: profile.phone.as_ref().map(|p| p.as_str().to_string()),
                lead_id: state.lead_id.map(|l| l.to_string()),
                user_id: state.user_id.map(|u| u.to_string()),
                created_at,
                state: serde_json::to_string(&state)?,
                version,
                id,
            });
        }

        let mut files = Rows::<FileRecord>::load(tx, ids(&file_changes)).await?;
        for (event, change) in &file_changes {
            match change {
                FileEvent::Uploaded(meta) => files.put(FileRecord {
                    id: event.aggregate_id.clone(),
                    sha256: meta.sha256.clone(),
                    size: i64::try_from(meta.size).unwrap_or(i64::MAX),
                    content_type: meta.content_type.clone(),
                    name: meta.name.clone(),
                    uploaded_by: meta.uploaded_by.to_string(),
                    uploaded_at: instant(event.recorded_at),
                    owner_kind: None,
                    owner_id: None,
                }),
                FileEvent::Attached(owner) => {
                    if let Some(row) = files.change(&event.aggregate_id) {
                        row.owner_kind = Some(owner.kind.clone());
                        row.owner_id = Some(owner.id.to_string());
                    }
                }
            }
        }

        campaigns.write(tx).await?;
        leads.write(tx).await?;
        contracts.write(tx).await?;
        customers.write(tx).await?;
        files.write(tx).await?;
        facts.write(tx).await
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "campaigns",
            "leads",
            "contracts",
            "customers",
            "files",
            "campaign_facts",
        ]
    }
}
