//! Identity and access: who is calling (bearer tokens), what they may do
//! (the permission matrix), credentials, password resets, rate limits.

mod lookup;
pub mod mail;
pub mod permissions;
pub mod rate_limit;
pub mod secrets;

use anyhow::Result;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use annals_domain::user::Role;

use crate::store::now_millis;
pub use lookup::TokenLookup;
use permissions::Access;

/// A signed-in caller, as resolved from their bearer token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub username: String,
    pub roles: Vec<Role>,
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_staff(&self) -> bool {
        self.roles.iter().any(|r| r.is_staff())
    }
}

/// Principals by token hash (`AuthStore::principals`).
pub type Found = std::collections::HashMap<String, std::sync::Arc<Principal>>;

/// The stable id of a user: derived from the (lowercase) username, so a
/// username can only ever be registered once — two registrations race on
/// the same aggregate and optimistic concurrency picks one.
pub fn user_id(username: &str) -> Uuid {
    const NAMESPACE: Uuid = Uuid::from_u128(0x5f1c_7a0e_9d4b_4c7e_8a61_2b3c_4d5e_6f70);
    Uuid::new_v5(&NAMESPACE, username.as_bytes())
}

pub fn parse_roles(text: &str) -> Vec<Role> {
    text.split(',').filter_map(Role::parse).collect()
}

/// Credentials, tokens and reset tokens (tables of migration 0003).
pub struct AuthStore;

impl AuthStore {
    pub async fn set_password(
        pool: &AnyPool,
        user_id: Uuid,
        username: &str,
        hash: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO credentials (user_id, username, password_hash, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash, updated_at = excluded.updated_at",
        )
        .bind(user_id.to_string())
        .bind(username)
        .bind(hash)
        .bind(now_millis())
        .execute(pool)
        .await?;
        Ok(())
    }

    /// The stored hash of a user, by username.
    pub async fn password_hash(pool: &AnyPool, username: &str) -> Result<Option<(Uuid, String)>> {
        let row = sqlx::query("SELECT user_id, password_hash FROM credentials WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?;
        Ok(match row {
            None => None,
            Some(row) => Some((
                Uuid::parse_str(&row.try_get::<String, _>("user_id")?)?,
                row.try_get("password_hash")?,
            )),
        })
    }

    pub async fn password_hash_of(pool: &AnyPool, user_id: Uuid) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT password_hash FROM credentials WHERE user_id = $1")
                .bind(user_id.to_string())
                .fetch_optional(pool)
                .await?,
        )
    }

    /// Issues a bearer token; returns it (the only time it exists in clear).
    pub async fn issue_token(pool: &AnyPool, user_id: Uuid, ttl_seconds: i64) -> Result<String> {
        let token = secrets::new_token("ann_")?;
        let now = now_millis();
        sqlx::query("INSERT INTO auth_tokens (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(secrets::token_hash(&token))
            .bind(user_id.to_string())
            .bind(now)
            .bind(now + ttl_seconds * 1000)
            .execute(pool)
            .await?;
        Ok(token)
    }

    pub async fn revoke_token(pool: &AnyPool, token: &str) -> Result<()> {
        sqlx::query("DELETE FROM auth_tokens WHERE token_hash = $1")
            .bind(secrets::token_hash(token))
            .execute(pool)
            .await?;
        Ok(())
    }

    /// Logout everywhere: password change, reset, deactivation.
    pub async fn revoke_all(pool: &AnyPool, user_id: Uuid) -> Result<()> {
        sqlx::query("DELETE FROM auth_tokens WHERE user_id = $1")
            .bind(user_id.to_string())
            .execute(pool)
            .await?;
        Ok(())
    }

    /// The active users that live tokens belong to, by token hash (a hash
    /// that is unknown, expired or of a deactivated user is absent).
    pub async fn principals<'a>(
        pool: &AnyPool,
        hashes: impl Iterator<Item = &'a str>,
    ) -> Result<Found> {
        let mut hashes: Vec<&str> = hashes.collect();
        hashes.sort_unstable();
        hashes.dedup();
        let marks = annals_projections::rows::Marks::of_pool(pool);
        let sql = format!(
            "SELECT t.token_hash, u.id, u.username, u.roles FROM auth_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.expires_at > {} AND u.active = {} AND t.token_hash IN ({})",
            marks.one(1),
            marks.one(2),
            marks.list(hashes.len(), 3)
        );
        let mut query = sqlx::query(&sql).bind(now_millis()).bind(1_i64);
        for hash in hashes {
            query = query.bind(hash);
        }
        let mut found = Found::new();
        for row in query.fetch_all(pool).await? {
            let principal = Principal {
                user_id: Uuid::parse_str(&row.try_get::<String, _>("id")?)?,
                username: row.try_get("username")?,
                roles: parse_roles(&row.try_get::<String, _>("roles")?),
            };
            found.insert(row.try_get("token_hash")?, std::sync::Arc::new(principal));
        }
        Ok(found)
    }

    pub async fn create_reset(pool: &AnyPool, user_id: Uuid, ttl_seconds: i64) -> Result<String> {
        let token = secrets::new_token("rst_")?;
        sqlx::query(
            "INSERT INTO password_resets (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(secrets::token_hash(&token))
        .bind(user_id.to_string())
        .bind(now_millis() + ttl_seconds * 1000)
        .execute(pool)
        .await?;
        Ok(token)
    }

    /// Uses a reset token up (single use); the user it was for, if valid.
    pub async fn consume_reset(pool: &AnyPool, token: &str) -> Result<Option<Uuid>> {
        let now = now_millis();
        let user: Option<String> = sqlx::query_scalar(
            "UPDATE password_resets SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
        )
        .bind(now)
        .bind(secrets::token_hash(token))
        .fetch_optional(pool)
        .await?;
        Ok(user.and_then(|u| Uuid::parse_str(&u).ok()))
    }
}

/// Route → who may call it, for the middleware: the matrix's routes plus
/// what modules add (`Module::access`).
#[derive(Default)]
pub struct RouteTable(std::collections::HashMap<(String, String), Access>);

impl RouteTable {
    pub fn new(extra: &[(&'static str, &'static str, Access)]) -> Self {
        let mut map = std::collections::HashMap::new();
        for (method, path, action) in permissions::ROUTES {
            map.insert(
                (method.to_string(), path.to_string()),
                permissions::access(*action),
            );
        }
        for (method, path, access) in extra {
            map.insert((method.to_string(), path.to_string()), *access);
        }
        Self(map)
    }

    pub fn access(&self, method: &str, path: &str) -> Option<Access> {
        self.0.get(&(method.to_string(), path.to_string())).copied()
    }
}
