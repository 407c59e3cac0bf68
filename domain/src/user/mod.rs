//! The user aggregate: registration, profile, roles, activation and
//! password changes, as events (the password hash itself lives in the
//! server's credentials table, never in an event).

mod decide;
pub mod values;

use std::collections::BTreeSet;

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

pub use decide::{decide, evolve};
pub use values::{Email, Phone, Profile, Role, Username, ERASED};

use crate::{FieldError, RuleKind, RuleViolation};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserCommand {
    Register {
        username: Username,
        profile: Profile,
        roles: BTreeSet<Role>,
    },
    UpdateProfile {
        profile: Profile,
    },
    GrantRole {
        role: Role,
    },
    RevokeRole {
        role: Role,
    },
    Deactivate,
    Reactivate,
    RecordPasswordChange {
        reason: PasswordChangeReason,
    },
    /// Link the user's Telegram chat (from the bot's `/start <code>`).
    LinkTelegram {
        chat_id: i64,
    },
    UnlinkTelegram,
    /// Erase the person's personal data (their key is destroyed beside
    /// this): the profile shows `[erased]` from now on.
    ErasePersonalData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordChangeReason {
    /// The user changed it, knowing the old one.
    Changed,
    /// Through an e-mailed reset token.
    Reset,
    /// Set from the command line.
    SetByOperator,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    Registered {
        username: Username,
        profile: Profile,
        roles: BTreeSet<Role>,
    },
    ProfileUpdated {
        profile: Profile,
    },
    RoleGranted {
        role: Role,
    },
    RoleRevoked {
        role: Role,
    },
    Deactivated,
    Reactivated,
    PasswordChanged {
        reason: PasswordChangeReason,
    },
    /// Reminders and other personal messages go to this chat from now on.
    TelegramLinked {
        chat_id: i64,
    },
    TelegramUnlinked,
    /// The person's personal data was erased: their earlier events'
    /// personal fields can no longer be read.
    PersonalDataErased,
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            UserEvent::Registered { .. } => "UserRegistered",
            UserEvent::ProfileUpdated { .. } => "UserProfileUpdated",
            UserEvent::RoleGranted { .. } => "UserRoleGranted",
            UserEvent::RoleRevoked { .. } => "UserRoleRevoked",
            UserEvent::Deactivated => "UserDeactivated",
            UserEvent::Reactivated => "UserReactivated",
            UserEvent::PasswordChanged { .. } => "UserPasswordChanged",
            UserEvent::TelegramLinked { .. } => "UserTelegramLinked",
            UserEvent::TelegramUnlinked => "UserTelegramUnlinked",
            UserEvent::PersonalDataErased => "UserPersonalDataErased",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("the username {0} is taken")]
    UsernameTaken(String),
    #[error("no such user")]
    NotFound,
    #[error("the user is deactivated")]
    Deactivated,
    #[error("a user needs at least one role")]
    NoRoles,
    #[error("{}: {}", .0.field, .0.message)]
    Invalid(FieldError),
}

impl RuleViolation for UserError {
    fn kind(&self) -> RuleKind {
        match self {
            UserError::UsernameTaken(_) | UserError::Deactivated => RuleKind::Conflict,
            UserError::NotFound => RuleKind::NotFound,
            UserError::NoRoles => {
                RuleKind::Invalid(vec![FieldError::new("roles", self.to_string())])
            }
            UserError::Invalid(field) => RuleKind::Invalid(vec![field.clone()]),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            UserError::UsernameTaken(_) => "username-taken",
            UserError::NotFound => "not-found",
            UserError::Deactivated => "user-deactivated",
            UserError::NoRoles | UserError::Invalid(_) => "validation",
        }
    }
}

/// The state of one user; `Default` is "not registered yet".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub registered: bool,
    pub username: Option<Username>,
    pub profile: Profile,
    pub roles: BTreeSet<Role>,
    pub active: bool,
    /// The linked Telegram chat, if any.
    pub telegram_chat_id: Option<i64>,
}

crate::decider_aggregate!(
    User,
    "user",
    UserCommand,
    UserEvent,
    UserError,
    decide,
    evolve
);

#[cfg(test)]
mod tests;
