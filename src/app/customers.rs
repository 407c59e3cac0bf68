//! Customers, invoices with receipts, and scheduled messages.

use chrono::{DateTime, Datelike, Utc};
use uuid::Uuid;

use annals_domain::customer::{Customer, CustomerCommand, CustomerProfile};
use annals_domain::files::{FileCommand, Owner, StoredFile};
use annals_domain::invoice::{
    Invoice, InvoiceCommand, InvoiceNumbers, Issue, NumberCommand, NumberEvent, Payment,
};
use annals_domain::message::{Channel, MessageCommand, Plan, ScheduledMessage};
use annals_domain::user::{Role, User};

use super::{check_role, AppError, CommandContext, Done, Unit};
use crate::platform::Platform;

/// Receipts are PDFs or images.
const RECEIPT_TYPES: &[&str] = &[
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
];

pub async fn create_customer(
    p: &Platform,
    ctx: &CommandContext,
    profile: CustomerProfile,
    user_id: Option<Uuid>,
) -> Result<Done<()>, AppError> {
    if let Some(user) = user_id {
        check_role(p, "user_id", user, Role::Client, "not-a-client").await?;
    }
    let id = Uuid::now_v7().to_string();
    p.commands
        .run(ctx, |mut unit: Unit| {
            let (profile, id) = (profile.clone(), id.clone());
            async move {
                let mut customer = unit.create_subject::<Customer>(&id).await?;
                unit.decide(
                    &mut customer,
                    CustomerCommand::Create {
                        profile,
                        lead_id: None,
                    },
                )
                .await?;
                if let Some(user_id) = user_id {
                    unit.decide(&mut customer, CustomerCommand::LinkUser { user_id })
                        .await?;
                }
                Ok((unit, ()))
            }
        })
        .await
}

/// New details of a customer, or its login linked (a client user).
pub async fn change_customer(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    command: CustomerCommand,
) -> Result<Done<()>, AppError> {
    if let CustomerCommand::LinkUser { user_id } = &command {
        check_role(p, "user_id", *user_id, Role::Client, "not-a-client").await?;
    }
    p.commands
        .execute::<Customer>(ctx, &id.to_string(), command)
        .await
}

async fn existing_customer(unit: &mut Unit, id: Uuid) -> Result<Customer, AppError> {
    let customer = unit.load::<Customer>(&id.to_string()).await?;
    if customer.state.profile.is_none() {
        return Err(AppError::unknown_reference(
            "customer_id",
            "no such customer",
        ));
    }
    Ok(customer.state)
}

/// Issues an invoice with the next number of its issue date's year, in
/// the same commit: a number is taken only by an invoice that exists. The
/// issues of one year take turns within a process (and retry across
/// processes), so concurrent issues do not fight over the counter.
pub async fn issue_invoice(
    p: &Platform,
    ctx: &CommandContext,
    mut issue: Issue,
) -> Result<Done<String>, AppError> {
    let id = Uuid::now_v7();
    let year = issue.issue_date.year();
    issue.number = String::new();
    p.commands
        .run(ctx, |mut unit: Unit| {
            let mut issue = issue.clone();
            async move {
                unit.take_turns_on::<InvoiceNumbers>(&year.to_string())
                    .await;
                existing_customer(&mut unit, issue.customer_id).await?;
                let mut numbers = unit.load::<InvoiceNumbers>(&year.to_string()).await?;
                let taken = unit
                    .decide(&mut numbers, NumberCommand::Take { invoice_id: id })
                    .await?;
                let NumberEvent::Taken { n, .. } = taken[0];
                issue.number = InvoiceNumbers::format(year, n);
                let number = issue.number.clone();
                let mut invoice = unit.load_subject::<Invoice>(&id.to_string()).await?;
                unit.decide(&mut invoice, InvoiceCommand::Issue(issue))
                    .await?;
                Ok((unit, number))
            }
        })
        .await
}

/// Records a payment with its receipt (an uploaded PDF or image, attached
/// to the invoice in the same commit).
pub async fn pay_invoice(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    payment: Payment,
    currency: String,
) -> Result<Done<Uuid>, AppError> {
    p.commands
        .run(ctx, |mut unit: Unit| {
            let (payment, currency) = (payment.clone(), currency.clone());
            async move {
                let mut invoice = unit.load_subject::<Invoice>(&id.to_string()).await?;
                let mut file = unit
                    .load::<StoredFile>(&payment.receipt_file_id.to_string())
                    .await?;
                let Some(meta) = &file.state.meta else {
                    return Err(AppError::unknown_reference(
                        "receipt_file_id",
                        "no such file",
                    ));
                };
                if !RECEIPT_TYPES.contains(&meta.content_type.as_str()) {
                    return Err(AppError::invalid_field(
                        "receipt_file_id",
                        format!("a receipt is a PDF or an image, not {}", meta.content_type),
                    ));
                }
                let payment_id = payment.payment_id;
                // Each payment has its own receipt.
                let owner = Owner {
                    kind: "receipt".into(),
                    id: payment_id,
                };
                unit.decide(&mut file, FileCommand::Attach(owner)).await?;
                unit.decide(&mut invoice, InvoiceCommand::Pay { payment, currency })
                    .await?;
                Ok((unit, payment_id))
            }
        })
        .await
}

pub async fn invoice_command(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    command: InvoiceCommand,
) -> Result<Done<()>, AppError> {
    p.commands
        .execute::<Invoice>(ctx, &id.to_string(), command)
        .await
}

/// Schedules a message; its address is resolved now: the customer's phone
/// for SMS and WhatsApp, the chat of the customer's linked user for
/// Telegram.
pub async fn schedule_message(
    p: &Platform,
    ctx: &CommandContext,
    customer_id: Uuid,
    channel: Channel,
    content: String,
    scheduled_at: DateTime<Utc>,
) -> Result<Done<()>, AppError> {
    let id = Uuid::now_v7().to_string();
    p.commands
        .run(ctx, |mut unit: Unit| {
            let (content, id) = (content.clone(), id.clone());
            async move {
                let customer = existing_customer(&mut unit, customer_id).await?;
                let to = match channel {
                    Channel::Sms | Channel::Whatsapp => customer
                        .profile
                        .and_then(|c| c.phone)
                        .map(|phone| phone.as_str().to_string())
                        .ok_or_else(|| {
                            AppError::conflict("no-phone", "the customer has no phone number")
                        })?,
                    Channel::Telegram => {
                        let chat = match customer.user_id {
                            Some(user) => {
                                unit.load::<User>(&user.to_string())
                                    .await?
                                    .state
                                    .telegram_chat_id
                            }
                            None => None,
                        };
                        chat.map(|c| c.to_string()).ok_or_else(|| {
                            AppError::conflict(
                                "no-telegram-chat",
                                "the customer has no linked Telegram chat",
                            )
                        })?
                    }
                };
                let mut message = unit.load_subject::<ScheduledMessage>(&id).await?;
                let plan = Plan {
                    customer_id,
                    channel,
                    to,
                    content,
                    scheduled_at,
                };
                unit.decide(&mut message, MessageCommand::Schedule(plan))
                    .await?;
                Ok((unit, ()))
            }
        })
        .await
}

pub async fn message_command(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    command: MessageCommand,
) -> Result<Done<()>, AppError> {
    p.commands
        .execute::<ScheduledMessage>(ctx, &id.to_string(), command)
        .await
}
