//! Crypto-shredding: a person's personal fields are stored in events
//! encrypted with a key of their own (XChaCha20-Poly1305, the subject as
//! associated data), kept in `privacy_keys`. Erasing the person destroys
//! the key: every event that carried their data still stands, and still
//! hashes as sealed (the chain covers the ciphertext), but its personal
//! fields read as `[erased]` from then on — in loads, in the log, in every
//! read model rebuilt from it, in the audit history.
//!
//! Personal fields, for now: every text of a user's profile (full name,
//! e-mail, phone, company, client type, description, website, social
//! links) in `UserRegistered` and `UserProfileUpdated`. The subject is
//! `user:<id>`. A field is stored as `pii1:<hex of nonce ‖ ciphertext>`;
//! events written before this existed keep their plain text.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde_json::Value;
use sqlx::Row;

use annals_domain::user::ERASED;
use annals_domain::StoredEvent;

use super::{now_millis, NewEvent, TypedPool};

const SCHEME: &str = "pii1:";

/// What a field shows whose ciphertext does not open with its key (the
/// stored bytes were altered; `annals audit verify` names where).
pub const UNREADABLE: &str = "[unreadable]";

const USER_TYPE: &str = "user";

/// The key name of the person an aggregate is about (`user:<id>`).
pub fn subject(aggregate_type: &str, aggregate_id: &str) -> String {
    format!("{aggregate_type}:{aggregate_id}")
}

/// The person an event's personal fields belong to, and where they are.
fn personal<'v>(
    aggregate_type: &str,
    aggregate_id: &str,
    payload: &'v mut Value,
) -> Option<(String, &'v mut Value)> {
    if aggregate_type != USER_TYPE {
        return None;
    }
    let body = ["Registered", "ProfileUpdated"]
        .into_iter()
        .find(|body| payload.get(body).is_some())?;
    let profile = payload.get_mut(body)?.get_mut("profile")?;
    Some((subject(aggregate_type, aggregate_id), profile))
}

/// Every text inside `value`.
fn each_text(value: &mut Value, f: &mut impl FnMut(&mut String)) {
    match value {
        Value::String(text) => f(text),
        Value::Array(items) => items.iter_mut().for_each(|v| each_text(v, f)),
        Value::Object(fields) => fields.values_mut().for_each(|v| each_text(v, f)),
        _ => {}
    }
}

/// The keys of the people whose data the events carry.
#[derive(Clone, Debug)]
pub struct Keys {
    pool: TypedPool,
}

impl Keys {
    pub fn new(pool: TypedPool) -> Self {
        Self { pool }
    }

    /// Encrypts the personal fields of events about to be appended to one
    /// stream, making the person's key on first use.
    pub async fn seal(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        events: &mut [NewEvent],
    ) -> Result<()> {
        let mut key = None;
        for event in events {
            let Some((subject, fields)) =
                personal(aggregate_type, aggregate_id, &mut event.payload)
            else {
                continue;
            };
            if key.is_none() {
                key = Some(self.key_for(&subject).await?);
            }
            let cipher = key.as_ref().expect("made above");
            let mut failed = None;
            each_text(fields, &mut |text| match encrypt(cipher, &subject, text) {
                Ok(sealed) => *text = sealed,
                Err(err) => failed = Some(err),
            });
            if let Some(err) = failed {
                return Err(err);
            }
        }
        Ok(())
    }

    /// Decrypts the personal fields of events read back, in place; a field
    /// whose key was destroyed reads `[erased]`.
    pub async fn open(&self, events: &mut [StoredEvent]) -> Result<()> {
        self.open_payloads(
            events
                .iter_mut()
                .map(|e| {
                    (
                        e.aggregate_type.as_str(),
                        e.aggregate_id.as_str(),
                        &mut e.payload,
                    )
                })
                .collect(),
        )
        .await
    }

    /// `open` for events as cqrs-es loads them.
    pub async fn open_serialized(
        &self,
        events: &mut [cqrs_es::persist::SerializedEvent],
    ) -> Result<()> {
        self.open_payloads(
            events
                .iter_mut()
                .map(|e| {
                    (
                        e.aggregate_type.as_str(),
                        e.aggregate_id.as_str(),
                        &mut e.payload,
                    )
                })
                .collect(),
        )
        .await
    }

    async fn open_payloads(&self, mut events: Vec<(&str, &str, &mut Value)>) -> Result<()> {
        let mut subjects = HashSet::new();
        for (kind, id, payload) in events.iter_mut() {
            if let Some((subject, fields)) = personal(kind, id, payload) {
                let mut sealed = false;
                each_text(fields, &mut |t| sealed |= t.starts_with(SCHEME));
                if sealed {
                    subjects.insert(subject);
                }
            }
        }
        if subjects.is_empty() {
            return Ok(());
        }
        let keys = self.keys_of(&subjects).await?;
        for (kind, id, payload) in events {
            if let Some((subject, fields)) = personal(kind, id, payload) {
                let key = keys.get(&subject);
                each_text(fields, &mut |text| {
                    if let Some(hex_text) = text.strip_prefix(SCHEME) {
                        *text = match key {
                            None => ERASED.to_string(),
                            Some(cipher) => decrypt(cipher, &subject, hex_text)
                                .unwrap_or_else(|| UNREADABLE.to_string()),
                        };
                    }
                });
            }
        }
        Ok(())
    }

    /// Destroys a person's key: what was encrypted with it can no longer
    /// be read by anyone. Whether there was one.
    pub async fn destroy(&self, subject: &str) -> Result<bool> {
        let sql = "DELETE FROM privacy_keys WHERE subject = $1";
        let deleted = match &self.pool {
            TypedPool::Postgres(p) => sqlx::query(sql)
                .bind(subject)
                .execute(p)
                .await?
                .rows_affected(),
            TypedPool::Sqlite(p) => sqlx::query(sql)
                .bind(subject)
                .execute(p)
                .await?
                .rows_affected(),
        };
        Ok(deleted > 0)
    }

    async fn key_for(&self, subject: &str) -> Result<XChaCha20Poly1305> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let insert = "INSERT INTO privacy_keys (subject, key, created_at) VALUES ($1, $2, $3) \
                      ON CONFLICT (subject) DO NOTHING";
        let select = "SELECT key FROM privacy_keys WHERE subject = $1";
        let hex_key: String = match &self.pool {
            TypedPool::Postgres(p) => {
                sqlx::query(insert)
                    .bind(subject)
                    .bind(hex::encode(fresh))
                    .bind(now_millis())
                    .execute(p)
                    .await?;
                sqlx::query_scalar(select)
                    .bind(subject)
                    .fetch_one(p)
                    .await?
            }
            TypedPool::Sqlite(p) => {
                sqlx::query(insert)
                    .bind(subject)
                    .bind(hex::encode(fresh))
                    .bind(now_millis())
                    .execute(p)
                    .await?;
                sqlx::query_scalar(select)
                    .bind(subject)
                    .fetch_one(p)
                    .await?
            }
        };
        cipher(&hex_key).with_context(|| format!("the key of {subject} is not 64 hex digits"))
    }

    async fn keys_of(
        &self,
        subjects: &HashSet<String>,
    ) -> Result<HashMap<String, XChaCha20Poly1305>> {
        let marks: Vec<String> = (1..=subjects.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT subject, key FROM privacy_keys WHERE subject IN ({})",
            marks.join(", ")
        );
        let rows: Vec<(String, String)> = match &self.pool {
            TypedPool::Postgres(p) => {
                let mut query = sqlx::query(&sql);
                for subject in subjects {
                    query = query.bind(subject);
                }
                query
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect()
            }
            TypedPool::Sqlite(p) => {
                let mut query = sqlx::query(&sql);
                for subject in subjects {
                    query = query.bind(subject);
                }
                query
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect()
            }
        };
        rows.into_iter()
            .map(|(subject, key)| {
                let cipher = cipher(&key).context("a privacy key is not 64 hex digits")?;
                Ok((subject, cipher))
            })
            .collect()
    }
}

fn cipher(hex_key: &str) -> Option<XChaCha20Poly1305> {
    let bytes = crate::audit::bytes32(hex_key)?;
    Some(XChaCha20Poly1305::new(&bytes.into()))
}

fn encrypt(cipher: &XChaCha20Poly1305, subject: &str, text: &str) -> Result<String> {
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: text.as_bytes(),
                aad: subject.as_bytes(),
            },
        )
        .map_err(|_| anyhow::anyhow!("encrypting a personal field failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(format!("{SCHEME}{}", hex::encode(out)))
}

fn decrypt(cipher: &XChaCha20Poly1305, subject: &str, hex_text: &str) -> Option<String> {
    let bytes = hex::decode(hex_text).ok()?;
    if bytes.len() < 24 {
        return None;
    }
    let (nonce, sealed) = bytes.split_at(24);
    let plain = cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: subject.as_bytes(),
            },
        )
        .ok()?;
    String::from_utf8(plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_opens_with_its_key_and_subject_only() {
        let key = cipher(&"11".repeat(32)).unwrap();
        let other = cipher(&"22".repeat(32)).unwrap();
        let sealed = encrypt(&key, "user:a", "Ada Lovelace").unwrap();
        assert!(sealed.starts_with(SCHEME) && !sealed.contains("Ada"));
        let hex_text = sealed.strip_prefix(SCHEME).unwrap();
        assert_eq!(
            decrypt(&key, "user:a", hex_text).as_deref(),
            Some("Ada Lovelace")
        );
        assert_eq!(decrypt(&other, "user:a", hex_text), None, "another key");
        assert_eq!(decrypt(&key, "user:b", hex_text), None, "another person");
        assert_ne!(
            sealed,
            encrypt(&key, "user:a", "Ada Lovelace").unwrap(),
            "fresh nonce"
        );
    }

    #[test]
    fn only_a_users_profile_is_personal() {
        let mut registered = serde_json::json!({"Registered": {"username": "ada", "profile": {"full_name": "Ada", "social_links": ["x"]}, "roles": ["client"]}});
        let (subject, fields) = personal("user", "u1", &mut registered).unwrap();
        assert_eq!(subject, "user:u1");
        let mut texts = Vec::new();
        each_text(fields, &mut |t| texts.push(t.clone()));
        assert_eq!(texts, ["Ada", "x"]);
        let mut updated = serde_json::json!({"ProfileUpdated": {"profile": {"full_name": "Ada"}}});
        assert!(personal("user", "u1", &mut updated).is_some());
        let mut granted = serde_json::json!({"RoleGranted": {"role": "admin"}});
        assert!(personal("user", "u1", &mut granted).is_none());
        let mut other = serde_json::json!({"Registered": {"profile": {"full_name": "Ada"}}});
        assert!(personal("customer", "c1", &mut other).is_none());
    }
}
