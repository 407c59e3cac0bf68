//! Client projects and the portal: requests and their whole life,
//! messages to clients, feedback, the products roadmap, and the automatic
//! confirmation of receipt.

use std::time::Duration;

use anyhow::Result;
use uuid::Uuid;

use annals_domain::files::{FileCommand, Owner, StoredFile};
use annals_domain::projects::portal::{
    ClientMessage, ClientMessageCommand, Feedback, FeedbackCommand, FeedbackNote, Letter,
    RoadmapCommand, RoadmapProduct,
};
use annals_domain::projects::{Attachment, ProjectCommand, ProjectRequest, Request};
use annals_domain::user::Role;
use annals_domain::{Actor, EventMetadata};

use super::{check_role, AppError, CommandContext, Done, Unit};
use crate::bus::WorkerContext;
use crate::platform::Platform;

/// Files a request references are uploaded first by its client, and are
/// attached to the project in the same commit (so that its staff and its
/// client may read them); links are kept as they are.
pub async fn request_project(
    p: &Platform,
    ctx: &CommandContext,
    request: Request,
) -> Result<Done<()>, AppError> {
    let id = Uuid::now_v7();
    p.commands
        .run(ctx, |mut unit: Unit| {
            let request = request.clone();
            async move {
                for (i, attachment) in request.attachments.iter().enumerate() {
                    let Attachment::File(file) = attachment else {
                        continue;
                    };
                    let mut stored = unit.load::<StoredFile>(&file.to_string()).await?;
                    let yours = stored
                        .state
                        .meta
                        .as_ref()
                        .is_some_and(|m| m.uploaded_by == request.client_id);
                    if !yours {
                        return Err(AppError::unknown_reference(
                            format!("attachments[{i}].file_id"),
                            "no such file of yours",
                        ));
                    }
                    let owner = Owner {
                        kind: PROJECT_FILE.into(),
                        id,
                    };
                    unit.decide(&mut stored, FileCommand::Attach(owner)).await?;
                }
                let mut project = unit.load_subject::<ProjectRequest>(&id.to_string()).await?;
                unit.decide(&mut project, ProjectCommand::Request(request))
                    .await?;
                Ok((unit, ()))
            }
        })
        .await
}

/// The owner kind of a file attached to a project request.
pub const PROJECT_FILE: &str = "project";

/// The client of a project, if it exists.
pub async fn client_of(p: &Platform, project: Uuid) -> Result<Option<Uuid>, AppError> {
    let (state, _) = p
        .commands
        .load::<ProjectRequest>(&project.to_string())
        .await?;
    Ok(state.request.map(|r| r.client_id))
}

/// A command on a project; `client`: the caller is that client and the
/// project must be theirs (another's is not found).
pub async fn project_command(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    client: Option<Uuid>,
    command: ProjectCommand,
) -> Result<Done<()>, AppError> {
    p.commands
        .run(ctx, |mut unit: Unit| {
            let command = command.clone();
            async move {
                let mut project = unit.load_subject::<ProjectRequest>(&id.to_string()).await?;
                let owner = project.state.request.as_ref().map(|r| r.client_id);
                if client.is_some() && owner != client {
                    return Err(AppError::not_found("no such project"));
                }
                unit.decide(&mut project, command).await?;
                Ok((unit, ()))
            }
        })
        .await
}

/// A project named beside something else (a message, feedback) must be
/// that client's.
async fn check_project_of(
    unit: &mut Unit,
    project: Option<Uuid>,
    client: Uuid,
) -> Result<(), AppError> {
    let Some(project) = project else {
        return Ok(());
    };
    let loaded = unit.load::<ProjectRequest>(&project.to_string()).await?;
    match loaded.state.request {
        Some(r) if r.client_id == client => Ok(()),
        _ => Err(AppError::unknown_reference(
            "project_id",
            "no such project of this client",
        )),
    }
}

pub async fn send_message(
    p: &Platform,
    ctx: &CommandContext,
    letter: Letter,
) -> Result<Done<()>, AppError> {
    check_role(
        p,
        "client_id",
        letter.client_id,
        Role::Client,
        "not-a-client",
    )
    .await?;
    let id = Uuid::now_v7().to_string();
    p.commands
        .run(ctx, |mut unit: Unit| {
            let (letter, id) = (letter.clone(), id.clone());
            async move {
                check_project_of(&mut unit, letter.project_id, letter.client_id).await?;
                let mut message = unit.create_subject::<ClientMessage>(&id).await?;
                unit.decide(&mut message, ClientMessageCommand::Send(letter))
                    .await?;
                Ok((unit, ()))
            }
        })
        .await
}

/// The client opened the message (once; later reads change nothing).
pub async fn mark_message_read(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<Done<()>, AppError> {
    let command = ClientMessageCommand::MarkRead { at: p.clock.now() };
    p.commands
        .execute::<ClientMessage>(ctx, &id.to_string(), command)
        .await
}

pub async fn submit_feedback(
    p: &Platform,
    ctx: &CommandContext,
    note: FeedbackNote,
) -> Result<Done<()>, AppError> {
    let id = Uuid::now_v7().to_string();
    p.commands
        .run(ctx, |mut unit: Unit| {
            let (note, id) = (note.clone(), id.clone());
            async move {
                check_project_of(&mut unit, note.project_id, note.client_id).await?;
                let mut feedback = unit.create_subject::<Feedback>(&id).await?;
                unit.decide(&mut feedback, FeedbackCommand::Submit(note))
                    .await?;
                Ok((unit, ()))
            }
        })
        .await
}

pub async fn handle_feedback(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    by: Uuid,
) -> Result<Done<()>, AppError> {
    p.commands
        .execute::<Feedback>(ctx, &id.to_string(), FeedbackCommand::Handle { by })
        .await
}

pub async fn plan_roadmap_product(
    p: &Platform,
    ctx: &CommandContext,
    name: String,
    description: String,
) -> Result<Done<()>, AppError> {
    let id = Uuid::now_v7().to_string();
    p.commands
        .create::<RoadmapProduct>(ctx, &id, RoadmapCommand::Plan { name, description })
        .await
}

pub async fn roadmap_command(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    command: RoadmapCommand,
) -> Result<Done<()>, AppError> {
    p.commands
        .execute::<RoadmapProduct>(ctx, &id.to_string(), command)
        .await
}

/// How often the automatic confirmation looks for projects delivered
/// long enough ago.
const CONFIRM_TICK: Duration = Duration::from_secs(1);

/// Confirms receipt for projects ready for delivery for
/// `ANNALS_PROJECT_CONFIRM_DAYS` days that the client has not confirmed.
/// Every process may run it: a project confirmed twice at once commits
/// once (the second finds it delivered and changes nothing).
pub async fn run_auto_confirm(p: std::sync::Arc<Platform>, mut ctx: WorkerContext) -> Result<()> {
    let after = chrono::Duration::days(i64::from(p.settings.project_confirm_days));
    while !*ctx.stop.borrow() {
        let cutoff = annals_projections::marketing::instant(p.clock.now() - after);
        let due = annals_projections::projects::queries::ready_before(&p.db.any, &cutoff, 100)
            .await
            .unwrap_or_default();
        for id in due {
            let command = CommandContext::new(EventMetadata::for_command(Actor::System));
            match project_command(
                &p,
                &command,
                id,
                None,
                ProjectCommand::ConfirmReceipt { automatic: true },
            )
            .await
            {
                Ok(_) => tracing::info!(project = %id, "receipt confirmed automatically"),
                Err(err) => tracing::debug!(project = %id, error = ?err, "not confirmed"),
            }
        }
        crate::bus::workers::pause(&mut ctx.stop, CONFIRM_TICK).await;
    }
    Ok(())
}
