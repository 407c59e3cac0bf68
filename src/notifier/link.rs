//! One-time codes that link a Telegram chat to an Annals account: issued by
//! `POST /api/v1/me/telegram-link`, redeemed by the bot's `/start <code>`.
//! Only the SHA-256 of a code is stored; a code works once, for a while.

use std::time::Duration;

use anyhow::Result;
use sqlx::AnyPool;
use uuid::Uuid;

use crate::auth::secrets::token_hash;
use crate::store::now_millis;

/// How long a code can be redeemed.
pub const CODE_TTL: Duration = Duration::from_secs(15 * 60);
/// Letters and digits that cannot be mistaken for each other (no 0/O, 1/I).
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// 10 characters of 5 bits each: 50 bits, for a code that lives 15 minutes.
const LENGTH: usize = 10;

/// Codes are read case-insensitively, with stray spaces and dashes ignored.
fn normalized(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_ascii_uppercase()
}

/// A new code for `user`, replacing any code they had not used yet.
/// Returns the code and when it expires (epoch milliseconds).
pub async fn issue(pool: &AnyPool, user: Uuid) -> Result<(String, i64)> {
    let mut bytes = [0u8; LENGTH];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    // 256 is a multiple of 32: every letter is equally likely.
    let code: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    let now = now_millis();
    let expires_at = now + CODE_TTL.as_millis() as i64;
    let mut tx = crate::store::begin_write_any(pool).await?;
    sqlx::query("DELETE FROM telegram_link_codes WHERE user_id = $1 OR expires_at < $2")
        .bind(user.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO telegram_link_codes (code_hash, user_id, expires_at) VALUES ($1, $2, $3)",
    )
    .bind(token_hash(&code))
    .bind(user.to_string())
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((code, expires_at))
}

/// The user a live, unused code belongs to.
pub async fn holder(pool: &AnyPool, code: &str) -> Result<Option<Uuid>> {
    let user: Option<String> = sqlx::query_scalar(
        "SELECT user_id FROM telegram_link_codes WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash(&normalized(code)))
    .bind(now_millis())
    .fetch_optional(pool)
    .await?;
    Ok(user.and_then(|u| Uuid::parse_str(&u).ok()))
}

/// Marks a code used, after the link it made is stored.
pub async fn spend(pool: &AnyPool, code: &str) -> Result<()> {
    sqlx::query("UPDATE telegram_link_codes SET used_at = $1 WHERE code_hash = $2")
        .bind(now_millis())
        .bind(token_hash(&normalized(code)))
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_whatever_the_case_and_separators() {
        assert_eq!(normalized(" abcd-efgh 23 "), "ABCDEFGH23");
    }
}
