//! Marketing workflows: campaigns for catalog services, leads with their
//! contact claims (a second open lead with the same phone or e-mail is
//! refused in the same commit that would create it), uploaded files, and
//! the conversion — the customer, the contract, the file's owner and the
//! converted lead in one commit.

use uuid::Uuid;

use annals_domain::catalog::service::Service;
use annals_domain::customer::{Customer, CustomerCommand, CustomerProfile};
use annals_domain::files::{FileCommand, FileMeta, Owner, StoredFile};
use annals_domain::marketing::campaign::{Campaign, CampaignCommand, CampaignTerms};
use annals_domain::marketing::contract::{Contract, ContractCommand, ContractTerms};
use annals_domain::marketing::lead::{
    ContactCommand, ContactHolder, Lead, LeadCommand, LeadContact, LeadInfo,
};
use annals_domain::user::Role;

use super::{check_role, AppError, CommandContext, Done, Existing, Unit};
use crate::platform::Platform;

/// The customer a lead becomes: one per lead, whoever converts it.
pub fn customer_of_lead(lead: Uuid) -> Uuid {
    const NAMESPACE: Uuid = Uuid::from_u128(0x7b1e_52c4_0a3d_4f6e_9c21_5d8e_3f4a_6b70);
    Uuid::new_v5(&NAMESPACE, lead.as_bytes())
}

/// The contract of a lead's conversion.
pub fn contract_of_lead(lead: Uuid) -> Uuid {
    const NAMESPACE: Uuid = Uuid::from_u128(0x2c9d_41f0_6e8b_4a1c_b372_0f5e_8d6a_4c91);
    Uuid::new_v5(&NAMESPACE, lead.as_bytes())
}

async fn check_service(unit: &mut Unit, field: &str, id: Uuid) -> Result<(), AppError> {
    let service = unit.load::<Service>(&id.to_string()).await?;
    if service.state.terms.is_none() {
        return Err(AppError::unknown_reference(field, "no such service"));
    }
    Ok(())
}

pub async fn plan_campaign(
    p: &Platform,
    ctx: &CommandContext,
    terms: CampaignTerms,
) -> Result<Done<()>, AppError> {
    let id = Uuid::now_v7().to_string();
    p.commands
        .run(ctx, |mut unit: Unit| {
            let (terms, id) = (terms.clone(), id.clone());
            async move {
                check_service(&mut unit, "service_id", terms.service_id).await?;
                let mut campaign = unit.create_subject::<Campaign>(&id).await?;
                unit.decide(&mut campaign, CampaignCommand::Plan(terms))
                    .await?;
                Ok((unit, ()))
            }
        })
        .await
}

pub async fn campaign_command(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    command: CampaignCommand,
) -> Result<Done<()>, AppError> {
    p.commands
        .execute::<Campaign>(ctx, &id.to_string(), command)
        .await
}

fn duplicate(holder: &ContactHolder, key: &str) -> AppError {
    let what = if key.starts_with("phone:") {
        "phone"
    } else {
        "e-mail"
    };
    let mut err = AppError::conflict(
        "duplicate-lead",
        format!(
            "an open lead has this {what}: {} ({}); send force: true to create it anyway",
            holder.full_name, holder.lead_id
        ),
    );
    err.existing = Some(Box::new(Existing {
        id: holder.lead_id.to_string(),
        name: holder.full_name.clone(),
    }));
    err
}

/// The lead's contact keys, each with the stream that claims it: its
/// pseudonym, so the log never names a phone or an e-mail.
async fn contacts(unit: &Unit, info: &LeadInfo) -> Result<Vec<(String, String)>, AppError> {
    let keys = info.contact_keys();
    let streams = unit.pseudonyms(&keys).await?;
    Ok(keys.into_iter().zip(streams).collect())
}

/// Claims the contacts (`contacts`) for `lead` and answers the claims
/// (their streams) it holds now. A key another open lead holds is refused,
/// or — `force` — left to it.
async fn claim_contacts(
    unit: &mut Unit,
    lead: Uuid,
    name: &str,
    contacts: &[(String, String)],
    force: bool,
) -> Result<Vec<String>, AppError> {
    let mut held = Vec::new();
    for (key, stream) in contacts {
        let stream = stream.clone();
        let mut claim = unit.load::<LeadContact>(&stream).await?;
        match &claim.state.holder {
            Some(holder) if holder.lead_id == lead => held.push(stream),
            Some(_) if force => {}
            Some(holder) => return Err(duplicate(holder, key)),
            None => {
                let holder = ContactHolder {
                    lead_id: lead,
                    full_name: name.to_string(),
                };
                unit.decide(&mut claim, ContactCommand::Claim(holder))
                    .await?;
                held.push(stream);
            }
        }
    }
    Ok(held)
}

/// Releases the claims `lead` holds (their streams, as `claim_contacts`
/// answered them).
async fn release_contacts(unit: &mut Unit, lead: Uuid, held: &[String]) -> Result<(), AppError> {
    for stream in held {
        let mut claim = unit.load::<LeadContact>(stream).await?;
        unit.decide(&mut claim, ContactCommand::Release { lead_id: lead })
            .await?;
    }
    Ok(())
}

async fn check_campaign(unit: &mut Unit, info: &LeadInfo) -> Result<(), AppError> {
    if let Some(id) = info.campaign_id {
        let campaign = unit.load::<Campaign>(&id.to_string()).await?;
        if campaign.state.terms.is_none() {
            return Err(AppError::unknown_reference(
                "campaign_id",
                "no such campaign",
            ));
        }
    }
    Ok(())
}

/// A new lead, holding its phone and e-mail while it is open.
pub async fn create_lead(
    p: &Platform,
    ctx: &CommandContext,
    info: LeadInfo,
    force: bool,
) -> Result<Done<()>, AppError> {
    let id = Uuid::now_v7();
    p.commands
        .run(ctx, |mut unit: Unit| {
            let info = info.clone();
            async move {
                check_campaign(&mut unit, &info).await?;
                let mut lead = unit.create_subject::<Lead>(&id.to_string()).await?;
                let name = info.full_name.trim().to_string();
                let contacts = contacts(&unit, &info).await?;
                let claimed = claim_contacts(&mut unit, id, &name, &contacts, force).await?;
                unit.decide(&mut lead, LeadCommand::Create { info, claimed })
                    .await?;
                Ok((unit, ()))
            }
        })
        .await
}

/// New contact details: the keys no longer used are released, new ones
/// claimed (refused if another open lead holds them, unless `force`).
pub async fn update_lead(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    info: LeadInfo,
    force: bool,
) -> Result<Done<()>, AppError> {
    p.commands
        .run(ctx, |mut unit: Unit| {
            let info = info.clone();
            async move {
                let mut lead = unit.load_subject::<Lead>(&id.to_string()).await?;
                check_campaign(&mut unit, &info).await?;
                let mut claimed = None;
                if lead.state.status.is_open() {
                    let contacts = contacts(&unit, &info).await?;
                    let dropped: Vec<String> = lead
                        .state
                        .claimed
                        .iter()
                        .filter(|held| !contacts.iter().any(|(_, stream)| stream == *held))
                        .cloned()
                        .collect();
                    release_contacts(&mut unit, id, &dropped).await?;
                    let name = info.full_name.trim().to_string();
                    claimed = Some(claim_contacts(&mut unit, id, &name, &contacts, force).await?);
                }
                unit.decide(&mut lead, LeadCommand::Update { info, claimed })
                    .await?;
                Ok((unit, ()))
            }
        })
        .await
}

/// Lost: its contacts are free again.
pub async fn lose_lead(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    reason: String,
) -> Result<Done<()>, AppError> {
    p.commands
        .run(ctx, |mut unit: Unit| {
            let reason = reason.clone();
            async move {
                let mut lead = unit.load_subject::<Lead>(&id.to_string()).await?;
                let held = lead.state.claimed.clone();
                unit.decide(&mut lead, LeadCommand::Lose { reason }).await?;
                release_contacts(&mut unit, id, &held).await?;
                Ok((unit, ()))
            }
        })
        .await
}

/// Back in progress; it takes back the contacts nobody holds meanwhile.
pub async fn reopen_lead(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<Done<()>, AppError> {
    p.commands
        .run(ctx, |mut unit: Unit| async move {
            let mut lead = unit.load_subject::<Lead>(&id.to_string()).await?;
            let info = lead
                .state
                .info
                .clone()
                .ok_or_else(|| AppError::not_found("no such lead"))?;
            let claimed = if lead.state.status == annals_domain::marketing::LeadStatus::Lost {
                let contacts = contacts(&unit, &info).await?;
                claim_contacts(&mut unit, id, &info.full_name, &contacts, true).await?
            } else {
                Vec::new()
            };
            unit.decide(&mut lead, LeadCommand::Reopen { claimed })
                .await?;
            Ok((unit, ()))
        })
        .await
}

pub async fn assign_lead(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    operator_id: Uuid,
) -> Result<Done<()>, AppError> {
    check_role(
        p,
        "operator_id",
        operator_id,
        Role::Operator,
        "not-an-operator",
    )
    .await?;
    lead_command(p, ctx, id, LeadCommand::Assign { operator_id }).await
}

pub async fn lead_command(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    command: LeadCommand,
) -> Result<Done<()>, AppError> {
    p.commands
        .execute::<Lead>(ctx, &id.to_string(), command)
        .await
}

/// Records an uploaded file (its bytes are stored already). Answers its id.
pub async fn register_file(
    p: &Platform,
    ctx: &CommandContext,
    meta: FileMeta,
) -> Result<Done<Uuid>, AppError> {
    let id = Uuid::now_v7();
    p.commands
        .run(ctx, |mut unit: Unit| {
            let meta = meta.clone();
            async move {
                let mut file = unit.create_subject::<StoredFile>(&id.to_string()).await?;
                unit.decide(&mut file, FileCommand::Register(meta)).await?;
                Ok((unit, id))
            }
        })
        .await
}

/// What a conversion made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Converted {
    pub customer_id: Uuid,
    pub contract_id: Uuid,
}

/// The lead becomes an active customer with a contract, in one commit:
/// the customer, the contract, the document's owner, the lead marked
/// converted and its contacts released — or none of it.
pub async fn convert(
    p: &Platform,
    ctx: &CommandContext,
    lead_id: Uuid,
    terms: ContractTerms,
) -> Result<Done<Converted>, AppError> {
    let made = Converted {
        customer_id: customer_of_lead(lead_id),
        contract_id: contract_of_lead(lead_id),
    };
    p.commands
        .run(ctx, |mut unit: Unit| {
            let terms = terms.clone();
            async move {
                let mut lead = unit.load_subject::<Lead>(&lead_id.to_string()).await?;
                let info = lead
                    .state
                    .info
                    .clone()
                    .ok_or_else(|| AppError::not_found("no such lead"))?;
                let held = lead.state.claimed.clone();
                unit.decide(
                    &mut lead,
                    LeadCommand::Convert {
                        customer_id: made.customer_id,
                        contract_id: made.contract_id,
                    },
                )
                .await?;
                check_service(&mut unit, "contract.service_id", terms.service_id).await?;
                let mut file = unit.load::<StoredFile>(&terms.file_id.to_string()).await?;
                if file.state.meta.is_none() {
                    return Err(AppError::unknown_reference(
                        "contract.file_id",
                        "no such file",
                    ));
                }
                let owner = Owner {
                    kind: "contract".into(),
                    id: made.contract_id,
                };
                unit.decide(&mut file, FileCommand::Attach(owner)).await?;
                let mut contract = unit.load::<Contract>(&made.contract_id.to_string()).await?;
                unit.decide(
                    &mut contract,
                    ContractCommand::Record {
                        terms,
                        customer_id: made.customer_id,
                        lead_id: Some(lead_id),
                    },
                )
                .await?;
                let mut customer = unit.load::<Customer>(&made.customer_id.to_string()).await?;
                let profile = CustomerProfile {
                    name: info.full_name,
                    email: info.email,
                    phone: info.phone,
                    address: None,
                    notes: None,
                };
                unit.decide(
                    &mut customer,
                    CustomerCommand::Create {
                        profile,
                        lead_id: Some(lead_id),
                    },
                )
                .await?;
                unit.decide(
                    &mut customer,
                    CustomerCommand::AddContract {
                        contract_id: made.contract_id,
                    },
                )
                .await?;
                release_contacts(&mut unit, lead_id, &held).await?;
                Ok((unit, made))
            }
        })
        .await
}
