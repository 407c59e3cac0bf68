//! Read model `users`: one row per user, for sign-in checks, `/me` and the
//! admin's user list.

use std::collections::BTreeSet;

use async_trait::async_trait;
use sqlx::AnyConnection;

use annals_domain::user::{Profile, Role, User, UserEvent};
use annals_domain::StoredEvent;
use cqrs_es::Aggregate;

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
