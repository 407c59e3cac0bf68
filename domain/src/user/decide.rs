//! The user's rules: `decide` turns a command into events (or refuses it),
//! `evolve` folds an event into the state.

use super::{Profile, User, UserCommand, UserError, UserEvent};

pub fn decide(user: &User, command: UserCommand) -> Result<Vec<UserEvent>, UserError> {
    if let UserCommand::Register {
        username,
        profile,
        roles,
    } = command
    {
        if user.registered {
            return Err(UserError::UsernameTaken(username.as_str().to_string()));
        }
        if roles.is_empty() {
            return Err(UserError::NoRoles);
        }
        return Ok(vec![UserEvent::Registered {
            username,
            profile,
            roles,
        }]);
    }
    if !user.registered {
        return Err(UserError::NotFound);
    }
    Ok(match command {
        UserCommand::Register { .. } => unreachable!("handled above"),
        UserCommand::UpdateProfile { profile } => {
            if !user.active {
                return Err(UserError::Deactivated);
            }
            if profile == user.profile {
                vec![]
            } else {
                vec![UserEvent::ProfileUpdated { profile }]
            }
        }
        // Granting a held role or revoking one not held changes nothing.
        UserCommand::GrantRole { role } if user.roles.contains(&role) => vec![],
        UserCommand::GrantRole { role } => vec![UserEvent::RoleGranted { role }],
        UserCommand::RevokeRole { role } if !user.roles.contains(&role) => vec![],
        UserCommand::RevokeRole { role } => vec![UserEvent::RoleRevoked { role }],
        UserCommand::Deactivate if !user.active => vec![],
        UserCommand::Deactivate => vec![UserEvent::Deactivated],
        UserCommand::Reactivate if user.active => vec![],
        UserCommand::Reactivate => vec![UserEvent::Reactivated],
        UserCommand::RecordPasswordChange { reason } => {
            if !user.active {
                return Err(UserError::Deactivated);
            }
            vec![UserEvent::PasswordChanged { reason }]
        }
        UserCommand::LinkTelegram { .. } if !user.active => return Err(UserError::Deactivated),
        UserCommand::LinkTelegram { chat_id } if user.telegram_chat_id == Some(chat_id) => vec![],
        UserCommand::LinkTelegram { chat_id } => vec![UserEvent::TelegramLinked { chat_id }],
        UserCommand::UnlinkTelegram if user.telegram_chat_id.is_none() => vec![],
        UserCommand::UnlinkTelegram => vec![UserEvent::TelegramUnlinked],
        // Always recorded, also a second time: erasing is what the key's
        // destruction beside it completes, and may be retried.
        UserCommand::ErasePersonalData => vec![UserEvent::PersonalDataErased],
    })
}

pub fn evolve(user: &mut User, event: &UserEvent) {
    match event {
        UserEvent::Registered {
            username,
            profile,
            roles,
        } => {
            user.registered = true;
            user.active = true;
            user.username = Some(username.clone());
            user.profile = profile.clone();
            user.roles = roles.clone();
        }
        UserEvent::ProfileUpdated { profile } => user.profile = profile.clone(),
        UserEvent::RoleGranted { role } => {
            user.roles.insert(*role);
        }
        UserEvent::RoleRevoked { role } => {
            user.roles.remove(role);
        }
        UserEvent::Deactivated => user.active = false,
        UserEvent::Reactivated => user.active = true,
        UserEvent::PasswordChanged { .. } => {}
        UserEvent::TelegramLinked { chat_id } => user.telegram_chat_id = Some(*chat_id),
        UserEvent::TelegramUnlinked => user.telegram_chat_id = None,
        UserEvent::PersonalDataErased => {
            user.profile = Profile::erased();
            user.telegram_chat_id = None;
        }
    }
}
