//! Read model `users`: one row per user, for sign-in checks, `/me` and the
//! admin's user list.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};
use uuid::Uuid;

use annals_domain::user::{Profile, Role, User, UserEvent};
use annals_domain::StoredEvent;
use cqrs_es::Aggregate;

use crate::appointments::parsed;
use crate::appointments::queries::uuid;
use crate::rows::Rows;
use crate::Projector;

pub const NAME: &str = "users";

pub struct UsersProjector;

/// `",admin,client,"`: sorted, with delimiters at both ends for LIKE.
pub fn roles_column(roles: &BTreeSet<Role>) -> String {
    let mut out = String::from(",");
    for role in roles {
        out.push_str(role.as_str());
        out.push(',');
    }
    out
}

crate::record! {
    UserRecord in "users" {
        key id,
        username: String,
        full_name: String,
        email: Option<String>,
        phone: Option<String>,
        profile: String,
        roles: String,
        active: i64,
        version: i64,
        telegram_chat_id: Option<i64>,
    }
}

impl UserRecord {
    fn set_profile(&mut self, profile: &Profile) {
        self.full_name = profile.full_name.clone();
        self.email = profile.email.as_ref().map(|e| e.as_str().to_string());
        self.phone = profile.phone.as_ref().map(|p| p.as_str().to_string());
        self.profile = serde_json::to_string(profile).expect("profile serializes");
    }
}

#[async_trait]
impl Projector for UsersProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.aggregate_type == User::TYPE
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let changes: Vec<(&StoredEvent, UserEvent)> = parsed(events, User::TYPE)?;
        let mut users =
            Rows::<UserRecord>::load(tx, changes.iter().map(|(e, _)| e.aggregate_id.clone()))
                .await?;
        for (event, change) in changes {
            let id = &event.aggregate_id;
            if let UserEvent::Registered {
                username,
                profile,
                roles,
            } = &change
            {
                let mut row = UserRecord {
                    id: id.clone(),
                    username: username.as_str().to_string(),
                    full_name: String::new(),
                    email: None,
                    phone: None,
                    profile: String::new(),
                    roles: roles_column(roles),
                    active: 1,
                    version: event.sequence,
                    telegram_chat_id: None,
                };
                row.set_profile(profile);
                users.put(row);
                continue;
            }
            let row = users.change(id).ok_or_else(|| {
                anyhow::anyhow!(
                    "user {id} changed (position {}) before being registered",
                    event.position
                )
            })?;
            row.version = event.sequence;
            match change {
                UserEvent::Registered { .. } | UserEvent::PasswordChanged { .. } => {}
                UserEvent::ProfileUpdated { profile } => row.set_profile(&profile),
                UserEvent::RoleGranted { role } | UserEvent::RoleRevoked { role } => {
                    let mut roles: BTreeSet<Role> =
                        row.roles.split(',').filter_map(Role::parse).collect();
                    if matches!(change, UserEvent::RoleGranted { .. }) {
                        roles.insert(role);
                    } else {
                        roles.remove(&role);
                    }
                    row.roles = roles_column(&roles);
                }
                UserEvent::Deactivated => row.active = 0,
                UserEvent::Reactivated => row.active = 1,
                UserEvent::TelegramLinked { chat_id } => row.telegram_chat_id = Some(chat_id),
                UserEvent::TelegramUnlinked => row.telegram_chat_id = None,
                UserEvent::PersonalDataErased => {
                    row.set_profile(&Profile::erased());
                    row.telegram_chat_id = None;
                }
            }
        }
        users.write(tx).await
    }

    fn tables(&self) -> &'static [&'static str] {
        &["users"]
    }
}

// ---------------------------------------------------------------- queries

/// The roles of a roles column, in its (sorted) order.
fn roles(row: &AnyRow) -> Result<Vec<Role>> {
    let text: String = row.try_get("roles")?;
    Ok(text.split(',').filter_map(Role::parse).collect())
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub roles: Vec<Role>,
    pub active: bool,
    pub version: i64,
    pub profile: Profile,
    pub telegram_chat_id: Option<i64>,
}

pub async fn user(pool: &AnyPool, id: Uuid) -> Result<Option<UserRow>> {
    let row = sqlx::query(
        "SELECT username, roles, active, version, profile, telegram_chat_id FROM users WHERE id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let profile: Profile = serde_json::from_str(&row.try_get::<String, _>("profile")?)
        .context("profile is not a profile")?;
    Ok(Some(UserRow {
        id,
        username: row.try_get("username")?,
        roles: roles(&row)?,
        active: row.try_get::<i64, _>("active")? == 1,
        version: row.try_get("version")?,
        profile,
        telegram_chat_id: row.try_get("telegram_chat_id")?,
    }))
}

/// The active user whose Telegram chat this is, if any.
pub async fn by_chat(pool: &AnyPool, chat_id: i64) -> Result<Option<UserRow>> {
    let id: Option<String> = sqlx::query_scalar(
        "SELECT id FROM users WHERE telegram_chat_id = $1 AND active = 1 ORDER BY id LIMIT 1",
    )
    .bind(chat_id)
    .fetch_optional(pool)
    .await?;
    match id.and_then(|id| Uuid::parse_str(&id).ok()) {
        Some(id) => user(pool, id).await,
        None => Ok(None),
    }
}

/// Whether the user is active; `None` if there is no such user.
pub async fn active(pool: &AnyPool, id: Uuid) -> Result<Option<bool>> {
    let active: Option<i64> = sqlx::query_scalar("SELECT active FROM users WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    Ok(active.map(|a| a == 1))
}

/// What names an account in a password reset request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKey {
    Username,
    Email,
}

impl UserKey {
    fn column(self) -> &'static str {
        match self {
            Self::Username => "username",
            Self::Email => "email",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContactRow {
    pub id: Uuid,
    pub email: Option<String>,
}

/// The active user whose username or e-mail address (as `by` says) is `key`.
pub async fn active_contact(pool: &AnyPool, by: UserKey, key: &str) -> Result<Option<ContactRow>> {
    let sql = format!(
        "SELECT id, email FROM users WHERE {} = $1 AND active = $2",
        by.column()
    );
    let row = sqlx::query(&sql)
        .bind(key)
        .bind(1_i64)
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(ContactRow {
        email: row.try_get("email")?,
        id: uuid(&row, "id")?,
    }))
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserSummaryRow {
    pub id: Uuid,
    pub username: String,
    pub full_name: String,
    pub roles: Vec<Role>,
    pub active: bool,
}

/// Which users a list asks for.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Only those whose username comes after this (the page cursor).
    pub after: String,
    /// Only those whose username starts with this (already lowercase).
    pub username_prefix: String,
    /// Only those who hold this role.
    pub role: Option<Role>,
    pub limit: i64,
}

/// By username.
pub async fn users(pool: &AnyPool, filter: &UserFilter) -> Result<Vec<UserSummaryRow>> {
    let role = filter
        .role
        .map(|r| format!("%,{},%", r.as_str()))
        .unwrap_or_else(|| "%".into());
    let rows = sqlx::query(
        "SELECT id, username, full_name, roles, active FROM users \
         WHERE username > $1 AND substr(username, 1, CAST($2 AS INTEGER)) = $3 AND roles LIKE $4 \
         ORDER BY username LIMIT $5",
    )
    .bind(filter.after.clone())
    .bind(filter.username_prefix.chars().count() as i64)
    .bind(filter.username_prefix.clone())
    .bind(role)
    .bind(filter.limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(UserSummaryRow {
                id: uuid(row, "id")?,
                username: row.try_get("username")?,
                full_name: row.try_get("full_name")?,
                roles: roles(row)?,
                active: row.try_get::<i64, _>("active")? == 1,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roles_column_is_sorted_and_delimited() {
        let roles = BTreeSet::from([Role::Client, Role::Admin]);
        assert_eq!(roles_column(&roles), ",admin,client,");
        assert_eq!(roles_column(&BTreeSet::new()), ",");
    }
}
