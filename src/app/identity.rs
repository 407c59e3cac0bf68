//! Identity workflows that are more than one command.

use std::collections::BTreeSet;

use annals_domain::user::{Phone, Profile, Role, User, UserCommand, Username};

use super::{AppError, CommandContext, Commands, Done};

/// The username of a client who registered through the bot.
pub fn bot_username(telegram_user_id: i64) -> Username {
    Username::parse(&format!("tg{}", telegram_user_id.unsigned_abs()))
        .expect("tg and digits make a username")
}

/// Registers a client from the bot and links the chat, in one commit: the
/// account never exists without its chat. Its username is `tg<user id>`;
/// it has no password (it may get one from an admin later).
pub async fn register_through_bot(
    commands: &Commands,
    ctx: &CommandContext,
    telegram_user_id: i64,
    chat_id: i64,
    full_name: String,
    phone: Phone,
) -> Result<Done<()>, AppError> {
    let username = bot_username(telegram_user_id);
    let id = crate::auth::user_id(username.as_str());
    commands
        .run(ctx, |mut unit| {
            let (username, full_name, phone) = (username.clone(), full_name.clone(), phone.clone());
            async move {
                let mut user = unit.load_subject::<User>(&id.to_string()).await?;
                if user.state.registered {
                    // Recorded already by an earlier try of this update.
                    if user.state.telegram_chat_id == Some(chat_id) {
                        return Ok((unit, ()));
                    }
                    return Err(AppError::conflict(
                        "exists",
                        "an account with this Telegram user exists; link it with /start <code>",
                    ));
                }
                let profile = Profile {
                    full_name,
                    phone: Some(phone),
                    ..Profile::default()
                };
                unit.decide(
                    &mut user,
                    UserCommand::Register {
                        username,
                        profile,
                        roles: BTreeSet::from([Role::Client]),
                    },
                )
                .await?;
                unit.decide(&mut user, UserCommand::LinkTelegram { chat_id })
                    .await?;
                Ok((unit, ()))
            }
        })
        .await
}
