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

use crate::appointments::queries::uuid;
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

fn profile_columns(profile: &Profile) -> (String, Option<String>, Option<String>, String) {
    (
        profile.full_name.clone(),
        profile.email.as_ref().map(|e| e.as_str().to_string()),
        profile.phone.as_ref().map(|p| p.as_str().to_string()),
        serde_json::to_string(profile).expect("profile serializes"),
    )
}

#[async_trait]
impl Projector for UsersProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        for event in events.iter().filter(|e| e.aggregate_type == User::TYPE) {
            let id = &event.aggregate_id;
            let parsed: UserEvent = serde_json::from_value(event.payload.clone())?;
            match parsed {
                UserEvent::Registered {
                    username,
                    profile,
                    roles,
                } => {
                    let (full_name, email, phone, profile) = profile_columns(&profile);
                    sqlx::query(
                        "INSERT INTO users (id, username, full_name, email, phone, profile, roles, active, version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(id)
                    .bind(username.as_str())
                    .bind(full_name)
                    .bind(email)
                    .bind(phone)
                    .bind(profile)
                    .bind(roles_column(&roles))
                    .bind(1_i64)
                    .bind(event.sequence)
                    .execute(&mut *tx)
                    .await?;
                }
                UserEvent::ProfileUpdated { profile } => {
                    let (full_name, email, phone, profile) = profile_columns(&profile);
                    sqlx::query(
                        "UPDATE users SET full_name = $1, email = $2, phone = $3, profile = $4, version = $5 WHERE id = $6",
                    )
                    .bind(full_name)
                    .bind(email)
                    .bind(phone)
                    .bind(profile)
                    .bind(event.sequence)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                UserEvent::RoleGranted { role } | UserEvent::RoleRevoked { role } => {
                    let current: String =
                        sqlx::query_scalar("SELECT roles FROM users WHERE id = $1")
                            .bind(id)
                            .fetch_one(&mut *tx)
                            .await?;
                    let mut roles: BTreeSet<Role> =
                        current.split(',').filter_map(Role::parse).collect();
                    if matches!(parsed, UserEvent::RoleGranted { .. }) {
                        roles.insert(role);
                    } else {
                        roles.remove(&role);
                    }
                    sqlx::query("UPDATE users SET roles = $1, version = $2 WHERE id = $3")
                        .bind(roles_column(&roles))
                        .bind(event.sequence)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                UserEvent::Deactivated | UserEvent::Reactivated => {
                    sqlx::query("UPDATE users SET active = $1, version = $2 WHERE id = $3")
                        .bind(i64::from(matches!(parsed, UserEvent::Reactivated)))
                        .bind(event.sequence)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                UserEvent::PasswordChanged { .. } => {
                    sqlx::query("UPDATE users SET version = $1 WHERE id = $2")
                        .bind(event.sequence)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                UserEvent::TelegramLinked { .. } | UserEvent::TelegramUnlinked => {
                    let chat = match parsed {
                        UserEvent::TelegramLinked { chat_id } => Some(chat_id),
                        _ => None,
                    };
                    sqlx::query(
                        "UPDATE users SET telegram_chat_id = $1, version = $2 WHERE id = $3",
                    )
                    .bind(chat)
                    .bind(event.sequence)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut AnyConnection) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM users").execute(&mut *tx).await?;
        Ok(())
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
