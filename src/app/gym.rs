//! Studio workflows: plans and subscriptions. A payment takes the plan's
//! length and freeze quota as they are when it is recorded, so changing a
//! plan later never changes what was paid for.

use chrono::NaiveDate;
use uuid::Uuid;

use annals_domain::gym::{Plan, PlanCommand, PlanTerms, Subscription, SubscriptionCommand};
use annals_domain::user::Role;
use annals_domain::values::Money;

use super::{AppError, CommandContext, Done, Unit};
use crate::auth::Principal;
use crate::platform::Platform;

/// Staff who see every subscription and client card.
pub const STUDIO_STAFF: &[Role] = &[Role::Admin, Role::Manager, Role::Operator];

pub fn is_studio_staff(p: &Principal) -> bool {
    p.roles.iter().any(|r| STUDIO_STAFF.contains(r))
}

/// The one subscription of a client to a plan.
pub fn subscription_id(client_id: Uuid, plan_id: Uuid) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("annals subscription {client_id} {plan_id}").as_bytes(),
    )
}

pub async fn create_plan(
    p: &Platform,
    ctx: &CommandContext,
    terms: PlanTerms,
) -> Result<Done<()>, AppError> {
    let id = Uuid::now_v7().to_string();
    p.commands
        .create::<Plan>(ctx, &id, PlanCommand::Create { terms })
        .await
}

pub async fn plan_command(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    command: PlanCommand,
) -> Result<Done<()>, AppError> {
    p.commands
        .execute::<Plan>(ctx, &id.to_string(), command)
        .await
}

/// Opens a client's subscription to an active plan.
pub async fn open_subscription(
    p: &Platform,
    ctx: &CommandContext,
    client_id: Uuid,
    plan_id: Uuid,
) -> Result<Done<()>, AppError> {
    let (plan, _) = p.commands.load::<Plan>(&plan_id.to_string()).await?;
    if plan.terms.is_none() {
        return Err(AppError::unknown_reference("plan_id", "no such plan"));
    }
    if !plan.active {
        return Err(AppError::conflict(
            "plan-inactive",
            "the plan is not offered any more",
        ));
    }
    let (user, _) = p
        .commands
        .load::<annals_domain::user::User>(&client_id.to_string())
        .await?;
    if !user.registered {
        return Err(AppError::unknown_reference("client_id", "no such user"));
    }
    let id = subscription_id(client_id, plan_id).to_string();
    p.commands
        .execute::<Subscription>(ctx, &id, SubscriptionCommand::Open { client_id, plan_id })
        .await
}

pub struct PaymentInput {
    pub amount: Money,
    pub method: String,
    pub paid_on: NaiveDate,
    pub start_on: Option<NaiveDate>,
}

/// Records a payment: the subscription renews by the plan's length as it
/// is now. Answers the payment's id.
pub async fn record_payment(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    input: PaymentInput,
    recorded_by: Option<Uuid>,
) -> Result<Done<Uuid>, AppError> {
    let payment_id = Uuid::now_v7();
    p.commands
        .run(ctx, |mut unit: Unit| {
            let (amount, method) = (input.amount.clone(), input.method.clone());
            async move {
                let mut subscription = unit.load_subject::<Subscription>(&id.to_string()).await?;
                let plan_id = subscription
                    .state
                    .plan_id
                    .ok_or_else(|| AppError::not_found("no such subscription"))?;
                let plan = unit.load::<Plan>(&plan_id.to_string()).await?;
                let terms = plan
                    .state
                    .terms
                    .ok_or_else(|| AppError::internal("a subscription names no plan"))?;
                if amount.currency != terms.price.currency {
                    return Err(AppError::invalid_field(
                        "currency",
                        format!("the plan is priced in {}", terms.price.currency),
                    ));
                }
                let command = SubscriptionCommand::Pay {
                    payment_id,
                    amount,
                    method,
                    paid_on: input.paid_on,
                    start_on: input.start_on,
                    length: terms.length,
                    freeze_days: terms.freeze_days,
                    recorded_by,
                };
                unit.decide(&mut subscription, command).await?;
                Ok((unit, payment_id))
            }
        })
        .await
}

/// One command on a subscription (void a payment, freeze, end a freeze,
/// cancel), answering `value` (a new freeze's id, say).
pub async fn subscription_command<V>(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    command: SubscriptionCommand,
    value: V,
) -> Result<Done<V>, AppError>
where
    V: serde::Serialize + serde::de::DeserializeOwned + Clone + Send,
{
    p.commands
        .run(ctx, |mut unit: Unit| {
            let (command, value) = (command.clone(), value.clone());
            async move {
                let mut subscription = unit.load_subject::<Subscription>(&id.to_string()).await?;
                unit.decide(&mut subscription, command).await?;
                Ok((unit, value))
            }
        })
        .await
}

// ---------------------------------------------------------------- trainings

use annals_domain::gym::training::{Group, GroupCommand, Session, Training, TrainingCommand};

/// A coach is an active user with the `master` role.
async fn check_coach(p: &Platform, coach_id: Uuid) -> Result<(), AppError> {
    super::check_role(p, "coach_id", coach_id, Role::Master, "not-a-coach").await
}

pub async fn create_group(
    p: &Platform,
    ctx: &CommandContext,
    command: GroupCommand,
) -> Result<Done<()>, AppError> {
    if let GroupCommand::Create { coach_id, .. } = &command {
        check_coach(p, *coach_id).await?;
    }
    let id = Uuid::now_v7().to_string();
    p.commands.create::<Group>(ctx, &id, command).await
}

pub async fn set_members(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    member_ids: std::collections::BTreeSet<Uuid>,
) -> Result<Done<()>, AppError> {
    p.commands
        .execute::<Group>(
            ctx,
            &id.to_string(),
            GroupCommand::SetMembers { member_ids },
        )
        .await
}

pub async fn schedule_training(
    p: &Platform,
    ctx: &CommandContext,
    session: Session,
) -> Result<Done<()>, AppError> {
    check_coach(p, session.coach_id).await?;
    if let Some(group_id) = session.group_id {
        let (group, _) = p.commands.load::<Group>(&group_id.to_string()).await?;
        if group.name.is_none() {
            return Err(AppError::unknown_reference("group_id", "no such group"));
        }
    }
    let id = Uuid::now_v7().to_string();
    p.commands
        .create::<Training>(ctx, &id, TrainingCommand::Schedule(session))
        .await
}

/// Invites chosen clients, or a group's members as they are now.
pub async fn invite(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    client_ids: std::collections::BTreeSet<Uuid>,
    group_id: Option<Uuid>,
) -> Result<Done<()>, AppError> {
    p.commands
        .run(ctx, |mut unit: Unit| {
            let client_ids = client_ids.clone();
            async move {
                let mut training = unit.load_subject::<Training>(&id.to_string()).await?;
                let mut invited = client_ids;
                if let Some(group_id) = group_id {
                    let group = unit.load::<Group>(&group_id.to_string()).await?;
                    if group.state.name.is_none() {
                        return Err(AppError::unknown_reference("group_id", "no such group"));
                    }
                    invited.extend(group.state.member_ids);
                }
                unit.decide(
                    &mut training,
                    TrainingCommand::Invite {
                        client_ids: invited,
                    },
                )
                .await?;
                Ok((unit, ()))
            }
        })
        .await
}

pub async fn training_command(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    command: TrainingCommand,
) -> Result<Done<()>, AppError> {
    p.commands
        .execute::<Training>(ctx, &id.to_string(), command)
        .await
}

// ---------------------------------------------------------------- broadcasts

use annals_domain::gym::broadcast::{Broadcast, BroadcastCommand, Recipient};

/// Who a broadcast goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Clients active today.
    Active,
    /// Every client with a subscription, whatever its state.
    All,
    /// A group's members.
    Group(Uuid),
}

impl Audience {
    fn label(self) -> String {
        match self {
            Audience::Active => "active".into(),
            Audience::All => "all".into(),
            Audience::Group(id) => format!("group:{id}"),
        }
    }
}

/// Resolves the audience now, with each one's linked chat, and records the
/// broadcast with it; the notifier delivers it. Answers how many it names.
pub async fn broadcast(
    p: &Platform,
    ctx: &CommandContext,
    audience: Audience,
    text: String,
) -> Result<Done<usize>, AppError> {
    use annals_domain::gym::Standing;
    use annals_projections::gym::queries;
    let today = p.today();
    let mut users = std::collections::BTreeSet::new();
    match audience {
        Audience::Active | Audience::All => {
            for row in queries::subscriptions(&p.db.any, None, None).await? {
                if audience == Audience::All || row.state.standing(today) == Standing::Active {
                    users.insert(row.client_id);
                }
            }
        }
        Audience::Group(id) => {
            let (group, _) = p.commands.load::<Group>(&id.to_string()).await?;
            if group.name.is_none() {
                return Err(AppError::unknown_reference(
                    "audience.group_id",
                    "no such group",
                ));
            }
            users.extend(group.member_ids);
        }
    }
    let mut recipients = Vec::with_capacity(users.len());
    for user_id in users {
        let chat_id = annals_projections::users::user(&p.db.any, user_id)
            .await?
            .and_then(|u| u.telegram_chat_id);
        recipients.push(Recipient { user_id, chat_id });
    }
    let count = recipients.len();
    let id = Uuid::now_v7().to_string();
    let command = BroadcastCommand::Send {
        audience: audience.label(),
        text,
        recipients,
    };
    let done = p.commands.create::<Broadcast>(ctx, &id, command).await?;
    Ok(Done {
        id: done.id,
        version: done.version,
        position: done.position,
        value: count,
        replayed: done.replayed,
    })
}
