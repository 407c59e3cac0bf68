//! Crypto-shredding: a person's personal fields are stored in events
//! encrypted with a key of their own (XChaCha20-Poly1305, the subject as
//! associated data), kept in `privacy_keys`. Erasing the person destroys
//! the key: every event that carried their data still stands, and still
//! hashes as sealed (the chain covers the ciphertext), but its personal
//! fields read as `[erased]` from then on — in loads, in the log, in every
//! read model rebuilt from it, in the audit history.
//!
//! Which fields are personal, and whose, is the table `PERSONAL` (the
//! README's "Privacy" lists it). A field is stored as
//! `pii2:<key id>:<hex of nonce ‖ ciphertext>`; events written before this
//! existed keep their plain text.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde_json::Value;
use sqlx::Row;

use annals_domain::user::ERASED;
use annals_domain::StoredEvent;

use super::{now_millis, NewEvent, TypedPool};

const SCHEME: &str = "pii2:";

/// Fields sealed before key ids were stored with them.
const LEGACY_SCHEME: &str = "pii1:";

/// The subject of the secret `Keys::pseudonyms` is keyed with (no person:
/// it is never destroyed).
const PSEUDONYMS: &str = "pseudonyms";

/// What a field shows whose ciphertext does not open with its key (the
/// stored bytes were altered; `annals audit verify` names where).
pub const UNREADABLE: &str = "[unreadable]";

/// The key name of the person an aggregate is about (`user:<id>`).
pub fn subject(aggregate_type: &str, aggregate_id: &str) -> String {
    format!("{aggregate_type}:{aggregate_id}")
}

/// Whose personal fields an event carries.
enum Owner {
    /// The person the aggregate is: `<kind>:<aggregate id>`.
    Itself(&'static str),
    /// The person whose id is at this pointer of the event: `<kind>:<id>`.
    Named(&'static str, &'static str),
    /// The same, or when that id is absent (null), the aggregate itself:
    /// `<own kind>:<aggregate id>` (a guest's order).
    NamedOr(&'static str, &'static str, &'static str),
}

/// An event that carries personal fields: its aggregate type, its name
/// (the payload's outer key), the fields (JSON pointers below that key;
/// every text under each is encrypted) and whose they are.
struct Personal {
    aggregate: &'static str,
    event: &'static str,
    fields: &'static [&'static str],
    owner: Owner,
}

/// Every event with personal fields. A field listed here is stored
/// encrypted; one not listed is stored as it is.
const PERSONAL: &[Personal] = &[
    Personal {
        aggregate: "user",
        event: "Registered",
        fields: &["/profile"],
        owner: Owner::Itself("user"),
    },
    Personal {
        aggregate: "user",
        event: "ProfileUpdated",
        fields: &["/profile"],
        owner: Owner::Itself("user"),
    },
    Personal {
        aggregate: "customer",
        event: "Created",
        fields: &["/profile"],
        owner: Owner::Itself("customer"),
    },
    Personal {
        aggregate: "customer",
        event: "Updated",
        fields: &["/profile"],
        owner: Owner::Itself("customer"),
    },
    Personal {
        aggregate: "lead",
        event: "Created",
        fields: &["/info/full_name", "/info/phone", "/info/email"],
        owner: Owner::Itself("lead"),
    },
    Personal {
        aggregate: "lead",
        event: "Updated",
        fields: &["/info/full_name", "/info/phone", "/info/email"],
        owner: Owner::Itself("lead"),
    },
    Personal {
        aggregate: "lead",
        event: "NoteAdded",
        fields: &["/text"],
        owner: Owner::Itself("lead"),
    },
    Personal {
        aggregate: "lead",
        event: "Lost",
        fields: &["/reason"],
        owner: Owner::Itself("lead"),
    },
    Personal {
        aggregate: "lead_contact",
        event: "Claimed",
        fields: &["/full_name"],
        owner: Owner::Named("/lead_id", "lead"),
    },
    Personal {
        aggregate: "order",
        event: "Placed",
        fields: &["/customer", "/delivery/shipping"],
        owner: Owner::NamedOr("/customer_id", "user", "order"),
    },
    Personal {
        aggregate: "appointment",
        event: "Booked",
        fields: &["/note"],
        owner: Owner::Named("/client_id", "user"),
    },
    Personal {
        aggregate: "project",
        event: "Requested",
        fields: &["/title", "/description"],
        owner: Owner::Named("/client_id", "user"),
    },
    Personal {
        aggregate: "feedback",
        event: "Submitted",
        fields: &["/text"],
        owner: Owner::Named("/client_id", "user"),
    },
    Personal {
        aggregate: "client_message",
        event: "Sent",
        fields: &["/subject", "/body"],
        owner: Owner::Named("/client_id", "user"),
    },
    Personal {
        aggregate: "scheduled_message",
        event: "Scheduled",
        fields: &["/to", "/content"],
        owner: Owner::Named("/customer_id", "customer"),
    },
    Personal {
        aggregate: "dealer_application",
        event: "Submitted",
        fields: &["/company", "/tax_id", "/message"],
        owner: Owner::Named("/user_id", "user"),
    },
];

/// The person an event's personal fields belong to, and which they are.
fn personal(
    aggregate_type: &str,
    aggregate_id: &str,
    payload: &Value,
) -> Option<(String, &'static str, &'static [&'static str])> {
    let found = PERSONAL
        .iter()
        .filter(|p| p.aggregate == aggregate_type)
        .find(|p| payload.get(p.event).is_some())?;
    let subject = match found.owner {
        Owner::Itself(kind) => subject(kind, aggregate_id),
        Owner::Named(pointer, kind) => {
            subject(kind, payload.get(found.event)?.pointer(pointer)?.as_str()?)
        }
        Owner::NamedOr(pointer, kind, own) => {
            match payload.get(found.event)?.pointer(pointer)?.as_str() {
                Some(id) => subject(kind, id),
                None => subject(own, aggregate_id),
            }
        }
    };
    Some((subject, found.event, found.fields))
}

/// Every personal text of an event, given what `personal` found.
fn each_personal_text(
    payload: &mut Value,
    event: &str,
    fields: &[&str],
    f: &mut impl FnMut(&mut String),
) {
    let Some(body) = payload.get_mut(event) else {
        return;
    };
    for field in fields {
        if let Some(value) = body.pointer_mut(field) {
            each_text(value, f);
        }
    }
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

/// An event as some reader holds it: its aggregate type, id and payload.
pub trait Sealed {
    fn parts(&mut self) -> (&str, &str, &mut Value);
}

impl Sealed for StoredEvent {
    fn parts(&mut self) -> (&str, &str, &mut Value) {
        (&self.aggregate_type, &self.aggregate_id, &mut self.payload)
    }
}

impl Sealed for cqrs_es::persist::SerializedEvent {
    fn parts(&mut self) -> (&str, &str, &mut Value) {
        (&self.aggregate_type, &self.aggregate_id, &mut self.payload)
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
        let mut keys: HashMap<String, Key> = HashMap::new();
        for event in events {
            let Some((subject, body, fields)) =
                personal(aggregate_type, aggregate_id, &event.payload)
            else {
                continue;
            };
            if !keys.contains_key(&subject) {
                let key = self.key_for(&subject).await?;
                keys.insert(subject.clone(), key);
            }
            let cipher = &keys[&subject];
            let mut failed = None;
            each_personal_text(&mut event.payload, body, fields, &mut |text| match encrypt(
                cipher, &subject, text,
            ) {
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
    /// whose key was destroyed reads `[erased]`. For the log's events and
    /// for events as cqrs-es loads them.
    pub async fn open<E: Sealed>(&self, events: &mut [E]) -> Result<()> {
        self.open_payloads(events.iter_mut().map(Sealed::parts).collect())
            .await
    }

    async fn open_payloads(&self, mut events: Vec<(&str, &str, &mut Value)>) -> Result<()> {
        let mut subjects = HashSet::new();
        for (kind, id, payload) in events.iter_mut() {
            if let Some((subject, body, fields)) = personal(kind, id, payload) {
                let mut sealed = false;
                each_personal_text(payload, body, fields, &mut |t| sealed |= is_sealed(t));
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
            if let Some((subject, body, fields)) = personal(kind, id, payload) {
                let key = keys.get(&subject);
                each_personal_text(payload, body, fields, &mut |text| {
                    if is_sealed(text) {
                        *text = decrypt(key, &subject, text);
                    }
                });
            }
        }
        Ok(())
    }

    /// Erases the copies of a person's data kept outside events, which no
    /// key covers: the outcomes kept for `Idempotency-Key` retries of the
    /// users' own requests are dropped (a retry runs again); each of
    /// `texts` (what their records said: names, contact details,
    /// addresses, notes) becomes `[erased]` in the outcomes of others'
    /// requests and in the texts the notifier sent; and the snapshots of
    /// every aggregate that may hold someone else's data (an order, an
    /// appointment, a project...) are dropped — a snapshot keeps a state as
    /// loaded, decrypted, and which of them are the person's is not known
    /// without replaying them (the next load replays from the events).
    pub async fn erase_copies(&self, users: &[String], texts: &[String]) -> Result<()> {
        let drop = "DELETE FROM idempotency_records WHERE scope LIKE $1";
        let snapshots = "DELETE FROM aggregate_snapshots WHERE aggregate_type = $1";
        let mut others: Vec<&str> = PERSONAL
            .iter()
            .filter(|p| !matches!(p.owner, Owner::Itself(_)))
            .map(|p| p.aggregate)
            .collect();
        others.dedup();
        let rewrite = [
            "UPDATE idempotency_records SET outcome = REPLACE(outcome, $1, $2) \
             WHERE REPLACE(outcome, $1, $2) <> outcome",
            "UPDATE notifier_ledger SET text = REPLACE(text, $1, $2) \
             WHERE REPLACE(text, $1, $2) <> text",
        ];
        // Short texts would match inside unrelated words.
        let texts: Vec<&String> = texts.iter().filter(|t| t.chars().count() >= 4).collect();
        macro_rules! run {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                for user in users {
                    sqlx::query(drop)
                        .bind(format!("{user} %"))
                        .execute(&mut *tx)
                        .await?;
                }
                for aggregate in &others {
                    sqlx::query(snapshots)
                        .bind(*aggregate)
                        .execute(&mut *tx)
                        .await?;
                }
                for text in &texts {
                    for sql in rewrite {
                        sqlx::query(sql)
                            .bind(text.as_str())
                            .bind(ERASED)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
            }};
        }
        match &self.pool {
            TypedPool::Postgres(p) => run!(p),
            TypedPool::Sqlite(p) => run!(p),
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

    async fn key_for(&self, subject: &str) -> Result<Key> {
        let hex_key = self.key_hex(subject).await?;
        cipher(&hex_key).with_context(|| format!("the key of {subject} is not 64 hex digits"))
    }

    /// Stream ids for lookups by a person's contact details (which open
    /// lead holds this phone): HMAC-SHA-256 under this installation's own
    /// secret, so that the log never holds the phone or e-mail itself, not
    /// even as the id of a stream, and an unsalted hash cannot be reversed
    /// by trying every phone number. The secret is made on first use.
    pub async fn pseudonyms(&self, values: &[String]) -> Result<Vec<String>> {
        use hmac::{Hmac, Mac};
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let secret = hex::decode(self.key_hex(PSEUDONYMS).await?)?;
        values
            .iter()
            .map(|value| {
                let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&secret)
                    .context("an HMAC key of any length is fine")?;
                mac.update(value.as_bytes());
                let digest = mac.finalize().into_bytes();
                Ok(format!("p-{}", hex::encode(&digest[..16])))
            })
            .collect()
    }

    /// A subject's key as stored, made on first use (read first: a key
    /// exists for nearly every call, and then this is one statement).
    async fn key_hex(&self, subject: &str) -> Result<String> {
        let select = "SELECT key FROM privacy_keys WHERE subject = $1";
        let insert = "INSERT INTO privacy_keys (subject, key, created_at) VALUES ($1, $2, $3) \
                      ON CONFLICT (subject) DO NOTHING";
        macro_rules! key_in {
            ($pool:expr) => {{
                let found: Option<String> = sqlx::query_scalar(select)
                    .bind(subject)
                    .fetch_optional($pool)
                    .await?;
                match found {
                    Some(key) => key,
                    None => {
                        let mut fresh = [0u8; 32];
                        getrandom::fill(&mut fresh)
                            .map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
                        // Whoever inserts first makes it; everyone reads that one.
                        sqlx::query(insert)
                            .bind(subject)
                            .bind(hex::encode(fresh))
                            .bind(now_millis())
                            .execute($pool)
                            .await?;
                        sqlx::query_scalar(select)
                            .bind(subject)
                            .fetch_one($pool)
                            .await?
                    }
                }
            }};
        }
        Ok(match &self.pool {
            TypedPool::Postgres(p) => key_in!(p),
            TypedPool::Sqlite(p) => key_in!(p),
        })
    }

    async fn keys_of(&self, subjects: &HashSet<String>) -> Result<HashMap<String, Key>> {
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

/// A person's key, and its id: the first 8 bytes of its SHA-256, stored
/// with each field it sealed, so that a field sealed with a destroyed key
/// reads `[erased]` even once the person has a new key (data given after
/// an erasure), rather than failing as if altered.
struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
}

fn cipher(hex_key: &str) -> Option<Key> {
    use sha2::Digest;
    let bytes = crate::audit::bytes32(hex_key)?;
    Some(Key {
        id: hex::encode(&sha2::Sha256::digest(bytes)[..8]),
        cipher: XChaCha20Poly1305::new(&bytes.into()),
    })
}

fn is_sealed(text: &str) -> bool {
    text.starts_with(SCHEME) || text.starts_with(LEGACY_SCHEME)
}

fn encrypt(key: &Key, subject: &str, text: &str) -> Result<String> {
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let sealed = key
        .cipher
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
    Ok(format!("{SCHEME}{}:{}", key.id, hex::encode(out)))
}

/// What a sealed field reads with its subject's key as it is now (none
/// when destroyed).
fn decrypt(key: Option<&Key>, subject: &str, text: &str) -> String {
    let sealed = match (text.strip_prefix(SCHEME), text.strip_prefix(LEGACY_SCHEME)) {
        (Some(rest), _) => match rest.split_once(':') {
            Some((id, hex_text)) if key.is_some_and(|k| k.id == id) => hex_text,
            Some(_) => return ERASED.to_string(),
            None => return UNREADABLE.to_string(),
        },
        (None, Some(hex_text)) => hex_text,
        (None, None) => return text.to_string(),
    };
    let Some(key) = key else {
        return ERASED.to_string();
    };
    open_bytes(&key.cipher, subject, sealed).unwrap_or_else(|| UNREADABLE.to_string())
}

fn open_bytes(cipher: &XChaCha20Poly1305, subject: &str, hex_text: &str) -> Option<String> {
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
        assert_eq!(decrypt(Some(&key), "user:a", &sealed), "Ada Lovelace");
        assert_eq!(decrypt(None, "user:a", &sealed), ERASED, "key destroyed");
        assert_eq!(
            decrypt(Some(&other), "user:a", &sealed),
            ERASED,
            "a new key after an erasure"
        );
        assert_eq!(
            decrypt(Some(&key), "user:b", &sealed),
            UNREADABLE,
            "another person"
        );
        let mut altered = sealed.clone();
        let last = altered.pop().unwrap();
        altered.push(if last == '0' { '1' } else { '0' });
        assert_eq!(decrypt(Some(&key), "user:a", &altered), UNREADABLE);
        assert_ne!(
            sealed,
            encrypt(&key, "user:a", "Ada Lovelace").unwrap(),
            "fresh nonce"
        );
        assert_eq!(decrypt(Some(&key), "user:a", "plain"), "plain");
    }

    fn texts_of(kind: &str, id: &str, mut payload: Value) -> Option<(String, Vec<String>)> {
        let (subject, body, fields) = personal(kind, id, &payload)?;
        let mut texts = Vec::new();
        each_personal_text(&mut payload, body, fields, &mut |t| texts.push(t.clone()));
        Some((subject, texts))
    }

    #[test]
    fn personal_fields_are_found_by_event_with_whose_they_are() {
        let registered = serde_json::json!({"Registered": {"username": "ada", "profile": {"full_name": "Ada", "social_links": ["x"]}, "roles": ["client"]}});
        assert_eq!(
            texts_of("user", "u1", registered),
            Some(("user:u1".into(), vec!["Ada".into(), "x".into()]))
        );
        let granted = serde_json::json!({"RoleGranted": {"role": "admin"}});
        assert_eq!(texts_of("user", "u1", granted), None);
        let lead = serde_json::json!({"Created": {"info": {"full_name": "Ada", "phone": "+4915112345678", "email": null, "campaign_id": "c1"}, "claimed": ["p-1"]}});
        assert_eq!(
            texts_of("lead", "l1", lead),
            Some((
                "lead:l1".into(),
                vec!["Ada".into(), "+4915112345678".into()]
            )),
            "not the campaign, not the pseudonyms"
        );
        let claim = serde_json::json!({"Claimed": {"lead_id": "l1", "full_name": "Ada"}});
        assert_eq!(
            texts_of("lead_contact", "p-1", claim),
            Some(("lead:l1".into(), vec!["Ada".into()])),
            "the lead's, not the stream's"
        );
        let other = serde_json::json!({"Registered": {"profile": {"full_name": "Ada"}}});
        assert_eq!(texts_of("campaign", "c1", other), None);
        let placed = |customer_id: Value, delivery: Value| {
            serde_json::json!({"Placed": {"number": "A1", "customer_id": customer_id,
                "customer": {"name": "Ada", "phone": "+4915112345678", "email": "a@b.io"},
                "delivery": delivery, "lines": [{"sku": "S1"}], "currency": "EUR"}})
        };
        let shipped = serde_json::json!({"shipping": {"address_lines": ["1 Way"], "city": "Ulm", "postal_code": "89073", "country": "DE"}});
        assert_eq!(
            texts_of("order", "o1", placed("u1".into(), shipped)),
            Some((
                "user:u1".into(),
                [
                    "a@b.io",
                    "Ada",
                    "+4915112345678",
                    "1 Way",
                    "Ulm",
                    "DE",
                    "89073"
                ]
                .map(String::from)
                .to_vec()
            )),
            "the signed-in buyer's"
        );
        assert_eq!(
            texts_of("order", "o1", placed(Value::Null, "Pickup".into())),
            Some((
                "order:o1".into(),
                ["a@b.io", "Ada", "+4915112345678"]
                    .map(String::from)
                    .to_vec()
            )),
            "a guest's, and a pickup has no address (its tag stays readable)"
        );
    }
}
