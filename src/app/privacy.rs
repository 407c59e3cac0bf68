//! Erasing a person's personal data (crypto-shredding, see
//! `store::privacy`). One person may be several records: a client user,
//! the customer record they are the login of, the lead that customer was
//! converted from. Erasing any of them erases all that are linked, in one
//! commit (an erasure event on each), then destroys each one's key and
//! drops their snapshots, so that their earlier events read `[erased]` too
//! — in loads, the log, rebuilds and the audit history. A guest's order is
//! a person of its own (the buyer is known only by it). The records
//! themselves stay (an account, a customer with contracts, a lead in the
//! campaign figures). Safe to retry: a retry records the events again and
//! destroys again.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use annals_domain::customer::{Customer, CustomerCommand};
use annals_domain::marketing::lead::LeadContact;
use annals_domain::marketing::{Lead, LeadCommand};
use annals_domain::message::{MessageCommand, MessageStatus, ScheduledMessage};
use annals_domain::shop::order::Delivery;
use annals_domain::shop::{Order, OrderCommand};
use annals_domain::user::{User, UserCommand};
use annals_projections::marketing::queries;

use cqrs_es::Aggregate;

use super::{AppError, CommandContext, Done, Loaded, Unit};
use crate::platform::Platform;

/// The record an erasure is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Person {
    User(Uuid),
    Customer(Uuid),
    Lead(Uuid),
    /// An order: a guest's is erased alone; a signed-in buyer's is theirs,
    /// so asking for it erases the buyer.
    Order(Uuid),
}

/// The records erased, the one asked for and those linked to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erased {
    pub users: BTreeSet<Uuid>,
    pub customers: BTreeSet<Uuid>,
    pub leads: BTreeSet<Uuid>,
    /// Guests' orders.
    pub orders: BTreeSet<Uuid>,
    /// Messages scheduled to an erased customer, cancelled with it (they
    /// would go to `[erased]`).
    pub cancelled_messages: BTreeSet<Uuid>,
}

/// Erases the person's data everywhere it is linked.
pub async fn erase(
    p: &Platform,
    ctx: &CommandContext,
    person: Person,
) -> Result<Done<Erased>, AppError> {
    let person = buyer_of(p, person).await?;
    let (linked, texts) = linked(p, person).await?;
    let done = p
        .commands
        .run(ctx, |mut unit: Unit| {
            let linked = linked.clone();
            async move {
                let mut claims = BTreeSet::new();
                // The record asked for first: it is the command's subject,
                // and a missing one is "not found".
                match person {
                    Person::User(id) => erase_user(&mut unit, id, true).await?,
                    Person::Customer(id) => erase_customer(&mut unit, id, true).await?,
                    Person::Lead(id) => claims.extend(erase_lead(&mut unit, id, true).await?),
                    Person::Order(id) => {
                        let mut order = load::<Order>(&mut unit, id, true).await?;
                        unit.decide(&mut order, OrderCommand::ErasePersonalData)
                            .await?;
                    }
                }
                for &id in &linked.users {
                    if person != Person::User(id) {
                        erase_user(&mut unit, id, false).await?;
                    }
                }
                for &id in &linked.customers {
                    if person != Person::Customer(id) {
                        erase_customer(&mut unit, id, false).await?;
                    }
                }
                for &id in &linked.leads {
                    if person != Person::Lead(id) {
                        claims.extend(erase_lead(&mut unit, id, false).await?);
                    }
                }
                for &id in &linked.cancelled_messages {
                    let mut message = unit.load::<ScheduledMessage>(&id.to_string()).await?;
                    if message.state.status == MessageStatus::Scheduled {
                        unit.decide(&mut message, MessageCommand::Cancel).await?;
                    }
                }
                Ok((unit, (linked, claims)))
            }
        })
        .await?;
    let (erased, claims) = done.value;
    for id in &erased.users {
        p.commands.shred::<User>(&id.to_string()).await?;
    }
    for id in &erased.customers {
        p.commands.shred::<Customer>(&id.to_string()).await?;
    }
    for id in &erased.leads {
        p.commands.shred::<Lead>(&id.to_string()).await?;
    }
    for id in &erased.orders {
        p.commands.shred::<Order>(&id.to_string()).await?;
    }
    let users: Vec<String> = erased.users.iter().map(Uuid::to_string).collect();
    crate::store::privacy::Keys::new(p.db.typed.clone())
        .erase_copies(&users, &texts)
        .await
        .map_err(AppError::from)?;
    // A claim's snapshot holds the lead's name as it was loaded.
    for stream in &claims {
        p.commands.forget_snapshots::<LeadContact>(stream).await?;
    }
    Ok(Done {
        id: done.id,
        version: done.version,
        position: done.position,
        value: erased,
        replayed: done.replayed,
    })
}

/// The person an order is of: its signed-in buyer, or the order itself
/// (a guest's, or one that does not exist: "not found" then).
async fn buyer_of(p: &Platform, person: Person) -> Result<Person, AppError> {
    let Person::Order(id) = person else {
        return Ok(person);
    };
    let (order, _) = p.commands.load::<Order>(&id.to_string()).await?;
    Ok(
        match order.placement.and_then(|placement| placement.customer_id) {
            Some(user) => Person::User(user),
            None => person,
        },
    )
}

/// Every record linked to `person`, itself included: a user's customer
/// records, a customer's login and lead, a lead's customer — followed
/// until nothing new turns up. With what those records say of the person
/// (to find copies of it outside events).
async fn linked(p: &Platform, person: Person) -> Result<(Erased, Vec<String>), AppError> {
    let mut found = Erased::default();
    let mut texts = Vec::new();
    let mut next = vec![person];
    while let Some(person) = next.pop() {
        match person {
            Person::User(id) => {
                if !found.users.insert(id) {
                    continue;
                }
                let (user, _) = p.commands.load::<User>(&id.to_string()).await?;
                texts_of(&user.profile, &mut texts);
                let customers = queries::customers_of_user(&p.db.any, id)
                    .await
                    .map_err(AppError::from)?;
                next.extend(customers.into_iter().map(Person::Customer));
            }
            Person::Customer(id) => {
                if !found.customers.insert(id) {
                    continue;
                }
                let (customer, _) = p.commands.load::<Customer>(&id.to_string()).await?;
                texts_of(&customer.profile, &mut texts);
                let messages = annals_projections::billing::queries::messages_of(&p.db.any, id)
                    .await
                    .map_err(AppError::from)?;
                found.cancelled_messages.extend(
                    messages
                        .iter()
                        .filter(|m| m.state.status == MessageStatus::Scheduled)
                        .map(|m| m.id),
                );
                next.extend(customer.user_id.map(Person::User));
                next.extend(customer.lead_id.map(Person::Lead));
            }
            Person::Order(id) => {
                if !found.orders.insert(id) {
                    continue;
                }
                let (order, _) = p.commands.load::<Order>(&id.to_string()).await?;
                if let Some(placement) = &order.placement {
                    let c = &placement.customer;
                    texts.extend([c.name.clone(), c.phone.clone(), c.email.clone()]);
                    if let Delivery::Shipping(address) = &placement.delivery {
                        texts.extend(address.address_lines.iter().cloned());
                    }
                }
            }
            Person::Lead(id) => {
                if !found.leads.insert(id) {
                    continue;
                }
                let (lead, _) = p.commands.load::<Lead>(&id.to_string()).await?;
                if let Some(info) = &lead.info {
                    texts.push(info.full_name.clone());
                    texts.extend(info.phone.iter().map(|p| p.as_str().to_string()));
                    texts.extend(info.email.iter().map(|e| e.as_str().to_string()));
                }
                texts.extend(lead.notes.iter().map(|n| n.text.clone()));
                texts.extend(lead.lost_reason.clone());
                next.extend(lead.customer_id.map(Person::Customer));
            }
        }
    }
    texts.retain(|t| t != annals_domain::user::ERASED);
    texts.sort();
    texts.dedup();
    Ok((found, texts))
}

/// Every text of `value` as JSON (a profile: each of its texts is personal).
fn texts_of(value: &impl Serialize, texts: &mut Vec<String>) {
    fn walk(value: &serde_json::Value, texts: &mut Vec<String>) {
        match value {
            serde_json::Value::String(text) => texts.push(text.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, texts)),
            serde_json::Value::Object(fields) => fields.values().for_each(|v| walk(v, texts)),
            _ => {}
        }
    }
    if let Ok(json) = serde_json::to_value(value) {
        walk(&json, texts);
    }
}

/// Loads a record to erase: the command's subject (whose absence is "not
/// found"), or one linked to it.
async fn load<A: Aggregate>(
    unit: &mut Unit,
    id: Uuid,
    subject: bool,
) -> Result<Loaded<A>, AppError> {
    if subject {
        unit.load_subject::<A>(&id.to_string()).await
    } else {
        unit.load::<A>(&id.to_string()).await
    }
}

async fn erase_user(unit: &mut Unit, id: Uuid, subject: bool) -> Result<(), AppError> {
    let mut user = load::<User>(unit, id, subject).await?;
    unit.decide(&mut user, UserCommand::ErasePersonalData)
        .await?;
    Ok(())
}

async fn erase_customer(unit: &mut Unit, id: Uuid, subject: bool) -> Result<(), AppError> {
    let mut customer = load::<Customer>(unit, id, subject).await?;
    unit.decide(&mut customer, CustomerCommand::ErasePersonalData)
        .await?;
    Ok(())
}

/// Answers the lead's claims (their snapshots hold its name).
async fn erase_lead(unit: &mut Unit, id: Uuid, subject: bool) -> Result<Vec<String>, AppError> {
    let mut lead = load::<Lead>(unit, id, subject).await?;
    let claims = lead.state.claimed.clone();
    unit.decide(&mut lead, LeadCommand::ErasePersonalData)
        .await?;
    Ok(claims)
}
