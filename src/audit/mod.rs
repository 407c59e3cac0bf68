//! Tamper evidence for the log: a hash chain over every stored event in
//! global order, kept beside the log by the sealer (a consumer), signed
//! checkpoints of it, and the verification that recomputes the chain from
//! the stored events and names the first position that does not match.
//!
//! `hash_n = SHA-256(hash_{n-1} ‖ canonical(event_n))`, `hash_0` = 32 zero
//! bytes. `canonical(event)` is, each field as its UTF-8 bytes prefixed by
//! their length (8 bytes, big-endian), in this order: the text
//! `annals-event-v1`, position, aggregate type, aggregate id, sequence,
//! event type, event version, the payload as RFC 8785 (JCS) JSON, the
//! metadata as JCS JSON, and the recorded time as stored (RFC 3339, UTC).
//! Numbers are decimal text. The bytes are read as stored — before any
//! upcasting — so the chain covers exactly what the database holds.

pub mod sealer;
pub mod states;

use std::path::Path;

use anyhow::{Context, Result};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

pub use sealer::{Sealer, SEALER};

/// One stored event exactly as the database holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
    pub recorded_at: String,
}

fn is_postgres(conn: &AnyConnection) -> bool {
    conn.backend_name().eq_ignore_ascii_case("postgresql")
}

/// The stored events with a position in `[from, to]`, by position.
pub async fn raw_events(conn: &mut AnyConnection, from: i64, to: i64) -> Result<Vec<RawEvent>> {
    let recorded = if is_postgres(conn) {
        r#"to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#
    } else {
        "recorded_at"
    };
    let sql = format!(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version, \
         CAST(payload AS TEXT) AS payload, CAST(metadata AS TEXT) AS metadata, \
         {recorded} AS recorded_at FROM events WHERE position >= $1 AND position <= $2 \
         ORDER BY position"
    );
    let rows = sqlx::query(&sql)
        .bind(from)
        .bind(to)
        .fetch_all(&mut *conn)
        .await
        .context("reading stored events")?;
    rows.iter()
        .map(|r| {
            Ok(RawEvent {
                position: r.try_get("position")?,
                aggregate_type: r.try_get("aggregate_type")?,
                aggregate_id: r.try_get("aggregate_id")?,
                sequence: r.try_get("sequence")?,
                event_type: r.try_get("event_type")?,
                event_version: r.try_get("event_version")?,
                payload: r.try_get("payload")?,
                metadata: r.try_get("metadata")?,
                recorded_at: r.try_get("recorded_at")?,
            })
        })
        .collect()
}

/// JCS of a stored JSON text; text that is not JSON is taken as it is
/// (so that a mangled byte still hashes, and differently).
fn jcs(text: &str) -> Vec<u8> {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| serde_jcs::to_vec(&v).ok())
        .unwrap_or_else(|| text.as_bytes().to_vec())
}

pub fn canonical(e: &RawEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + e.payload.len() + e.metadata.len());
    let mut field = |bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    field(b"annals-event-v1");
    field(e.position.to_string().as_bytes());
    field(e.aggregate_type.as_bytes());
    field(e.aggregate_id.as_bytes());
    field(e.sequence.to_string().as_bytes());
    field(e.event_type.as_bytes());
    field(e.event_version.as_bytes());
    field(&jcs(&e.payload));
    field(&jcs(&e.metadata));
    field(e.recorded_at.as_bytes());
    out
}

pub const GENESIS: [u8; 32] = [0; 32];

/// 32 bytes from 64 hex digits (a chain hash, a key, a seed).
pub fn bytes32(hex_text: &str) -> Option<[u8; 32]> {
    hex::decode(hex_text.trim()).ok()?.try_into().ok()
}

/// The highest sealed position (0: nothing sealed yet).
async fn sealed_to(conn: &mut AnyConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM audit_chain")
            .fetch_one(&mut *conn)
            .await?,
    )
}

pub fn chain(previous: &[u8; 32], event: &RawEvent) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(canonical(event));
    hasher.finalize().into()
}

/// What a checkpoint signs: the position and the chain hash there.
pub fn checkpoint_message(position: i64, hash: &str) -> Vec<u8> {
    format!("annals-checkpoint-v1\n{position}\n{hash}").into_bytes()
}

pub fn sign(key: &SigningKey, position: i64, hash: &str) -> String {
    hex::encode(key.sign(&checkpoint_message(position, hash)).to_bytes())
}

pub fn signature_holds(key: &VerifyingKey, position: i64, hash: &str, signature: &str) -> bool {
    let Ok(bytes) = hex::decode(signature) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(&bytes) else {
        return false;
    };
    key.verify(&checkpoint_message(position, hash), &signature)
        .is_ok()
}

/// The signing key: `ANNALS_AUDIT_SIGNING_KEY` (64 hex digits, the seed),
/// or `audit-signing.key` in the data directory, made on first start.
/// Several processes on one database must share it.
pub fn signing_key(configured: Option<&str>, data_dir: &Path) -> Result<SigningKey> {
    let seed_hex = match configured {
        Some(hex) => hex.trim().to_string(),
        None => {
            let path = data_dir.join("audit-signing.key");
            if !path.exists() {
                std::fs::create_dir_all(data_dir)
                    .with_context(|| format!("creating {}", data_dir.display()))?;
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
                write_secret(&path, &hex::encode(seed))?;
                tracing::info!(path = %path.display(), "audit signing key generated");
            }
            std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?
                .trim()
                .to_string()
        }
    };
    let bytes: [u8; 32] =
        bytes32(&seed_hex).context("the audit signing key must be 64 hex digits")?;
    Ok(SigningKey::from_bytes(&bytes))
}

fn write_secret(path: &Path, text: &str) -> Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.write_all(text.as_bytes())?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Verification {
    /// Nothing wrong in what was checked.
    pub ok: bool,
    /// Events whose chain hash was recomputed.
    pub checked: i64,
    /// The first position where the chain does not hold.
    pub first_bad_position: Option<i64>,
    /// What is wrong there.
    pub reason: Option<String>,
    /// Signed checkpoints whose signature and hash were checked.
    pub checkpoints: i64,
    /// The highest sealed position (events after it are not sealed yet).
    pub sealed_to: i64,
}

/// Recomputes the chain over `[from, to]` (default: everything sealed) from
/// the stored events and compares it with the stored chain and with every
/// signed checkpoint in the range. An altered payload or metadata, a
/// removed, inserted or reordered event, a rewritten chain row, or a
/// checkpoint whose signature fails is named at its first position.
pub async fn verify(
    conn: &mut AnyConnection,
    key: &VerifyingKey,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Verification> {
    let sealed_to = sealed_to(conn).await?;
    let from = from.unwrap_or(1).max(1);
    let to = to.unwrap_or(sealed_to).min(sealed_to);
    let mut report = Verification {
        ok: true,
        checked: 0,
        first_bad_position: None,
        reason: None,
        checkpoints: 0,
        sealed_to,
    };
    let bad = |report: &mut Verification, position: i64, reason: String| {
        report.ok = false;
        report.first_bad_position = Some(position);
        report.reason = Some(reason);
    };
    let mut previous = if from == 1 {
        GENESIS
    } else {
        let stored: Option<String> =
            sqlx::query_scalar("SELECT hash FROM audit_chain WHERE position = $1")
                .bind(from - 1)
                .fetch_optional(&mut *conn)
                .await?;
        match stored.as_deref().and_then(bytes32) {
            Some(hash) => hash,
            None => {
                bad(
                    &mut report,
                    from - 1,
                    "no chain hash before the range".into(),
                );
                return Ok(report);
            }
        }
    };
    let checkpoints: Vec<(i64, String, String)> = sqlx::query(
        "SELECT position, hash, signature FROM audit_checkpoints \
         WHERE position >= $1 AND position <= $2 ORDER BY position",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok((
            r.try_get("position")?,
            r.try_get("hash")?,
            r.try_get("signature")?,
        ))
    })
    .collect::<Result<_>>()?;
    let mut checkpoints = checkpoints.into_iter().peekable();
    // Pipelined: while one page is hashed on a blocking thread, the next is
    // read from the database.
    let mut checking: Option<tokio::task::JoinHandle<(Verification, Option<[u8; 32]>)>> = None;
    let mut start = from;
    loop {
        let page = if start <= to {
            let end = (start + PAGE - 1).min(to);
            let mut page = Page {
                start,
                end,
                events: raw_events(conn, start, end).await?,
                chain: sqlx::query(
                    "SELECT position, hash FROM audit_chain WHERE position >= $1 AND position <= $2 \
                     ORDER BY position",
                )
                .bind(start)
                .bind(end)
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("position")?, r.try_get("hash")?)))
                .collect::<Result<_>>()?,
                checkpoints: Vec::new(),
            };
            while let Some(checkpoint) = checkpoints.next_if(|(at, _, _)| *at <= end) {
                page.checkpoints.push(checkpoint);
            }
            start = end + 1;
            Some(page)
        } else {
            None
        };
        if let Some(task) = checking.take() {
            let (checked, last) = task.await.context("the chain check stopped")?;
            report = checked;
            match last {
                Some(hash) => previous = hash,
                None => return Ok(report),
            }
        }
        let Some(page) = page else {
            return Ok(report);
        };
        let key = *key;
        let report_so_far = report.clone();
        checking = Some(tokio::task::spawn_blocking(move || {
            check_page(page, previous, &key, report_so_far)
        }));
    }
}

/// Events per page of a verification.
const PAGE: i64 = 5_000;

/// One page of a verification: the stored events, the chain rows and the
/// checkpoints of `[start, end]`.
struct Page {
    start: i64,
    end: i64,
    events: Vec<RawEvent>,
    chain: Vec<(i64, String)>,
    checkpoints: Vec<(i64, String, String)>,
}

/// Checks one page from the hash before it; gives back the report and the
/// hash at the page's end, or `None` when it found the first bad position.
fn check_page(
    page: Page,
    mut previous: [u8; 32],
    key: &VerifyingKey,
    mut report: Verification,
) -> (Verification, Option<[u8; 32]>) {
    let bad = |mut report: Verification, position: i64, reason: String| {
        report.ok = false;
        report.first_bad_position = Some(position);
        report.reason = Some(reason);
        (report, None)
    };
    let mut events = page.events.into_iter().peekable();
    let mut checkpoints = page.checkpoints.into_iter().peekable();
    let mut sealed = page.chain.into_iter().peekable();
    for position in page.start..=page.end {
        let event = events.next_if(|e| e.position == position);
        let stored = sealed.next_if(|(p, _)| *p == position).map(|(_, h)| h);
        let Some(event) = event else {
            if stored.is_some() {
                return bad(
                    report,
                    position,
                    "the event sealed here is missing (deleted)".into(),
                );
            }
            // A position never used (none is skipped by the store) and
            // never sealed.
            continue;
        };
        let Some(stored) = stored else {
            return bad(
                report,
                position,
                "an event that was never sealed (inserted)".into(),
            );
        };
        let hash = chain(&previous, &event);
        let hex_hash = hex::encode(hash);
        report.checked += 1;
        if hex_hash != stored {
            return bad(
                report,
                position,
                format!(
                    "the stored event does not hash to its sealed hash: its payload, metadata or place in the log changed ({} {} #{})",
                    event.aggregate_type, event.aggregate_id, event.sequence
                ),
            );
        }
        while let Some((at, signed_hash, signature)) =
            checkpoints.next_if(|(at, _, _)| *at == position)
        {
            report.checkpoints += 1;
            if signed_hash != hex_hash {
                return bad(
                    report,
                    at,
                    "the checkpoint signs another hash than the chain's".into(),
                );
            }
            if !signature_holds(key, at, &signed_hash, &signature) {
                return bad(
                    report,
                    at,
                    "the checkpoint's signature does not hold".into(),
                );
            }
        }
        previous = hash;
    }
    (report, Some(previous))
}

/// One line of an export (NDJSON): the header, each event with its chain
/// hash, and the signed checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExportLine {
    Header {
        format: String,
        /// The chain hash before the first exported event (hex).
        previous_hash: String,
        /// The key the checkpoints were signed with (hex).
        public_key: String,
    },
    Event {
        position: i64,
        aggregate_type: String,
        aggregate_id: String,
        sequence: i64,
        event_type: String,
        event_version: String,
        /// As stored (JSON text).
        payload: String,
        /// As stored (JSON text).
        metadata: String,
        recorded_at: String,
        hash: String,
    },
    Checkpoint {
        position: i64,
        hash: String,
        signature: String,
    },
}

pub const EXPORT_FORMAT: &str = "annals-audit-export-v1";

/// Writes the events of `[from, to]` with their chain hashes, extended to
/// the next signed checkpoint so that every exported event is covered by
/// a signature, and the checkpoints in that range.
pub async fn export(
    conn: &mut AnyConnection,
    signing: &SigningKey,
    from: i64,
    to: Option<i64>,
    out: &mut impl std::io::Write,
) -> Result<i64> {
    let key = &signing.verifying_key();
    seal_tail(conn, signing).await?;
    let from = from.max(1);
    let sealed_to = sealed_to(conn).await?;
    let wanted = to.unwrap_or(sealed_to).min(sealed_to);
    let covering: Option<i64> =
        sqlx::query_scalar("SELECT MIN(position) FROM audit_checkpoints WHERE position >= $1")
            .bind(wanted)
            .fetch_one(&mut *conn)
            .await?;
    let Some(to) = covering else {
        anyhow::bail!(
            "no signed checkpoint covers position {wanted} yet; export up to an earlier position"
        );
    };
    let previous = if from == 1 {
        hex::encode(GENESIS)
    } else {
        sqlx::query_scalar::<_, String>("SELECT hash FROM audit_chain WHERE position = $1")
            .bind(from - 1)
            .fetch_optional(&mut *conn)
            .await?
            .with_context(|| format!("position {} is not sealed", from - 1))?
    };
    let mut line = |value: &ExportLine| -> Result<()> {
        serde_json::to_writer(&mut *out, value)?;
        out.write_all(b"\n")?;
        Ok(())
    };
    line(&ExportLine::Header {
        format: EXPORT_FORMAT.into(),
        previous_hash: previous,
        public_key: hex::encode(key.to_bytes()),
    })?;
    let mut written = 0;
    let mut start = from;
    while start <= to {
        let end = (start + 4_999).min(to);
        let events = raw_events(conn, start, end).await?;
        let hashes: std::collections::HashMap<i64, String> = sqlx::query(
            "SELECT position, hash FROM audit_chain WHERE position >= $1 AND position <= $2",
        )
        .bind(start)
        .bind(end)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("position")?, r.try_get("hash")?)))
        .collect::<Result<_>>()?;
        for e in events {
            let hash = hashes.get(&e.position).cloned().unwrap_or_default();
            line(&ExportLine::Event {
                position: e.position,
                aggregate_type: e.aggregate_type,
                aggregate_id: e.aggregate_id,
                sequence: e.sequence,
                event_type: e.event_type,
                event_version: e.event_version,
                payload: e.payload,
                metadata: e.metadata,
                recorded_at: e.recorded_at,
                hash,
            })?;
            written += 1;
        }
        start = end + 1;
    }
    let checkpoints = sqlx::query(
        "SELECT position, hash, signature FROM audit_checkpoints \
         WHERE position >= $1 AND position <= $2 ORDER BY position",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    for r in checkpoints {
        line(&ExportLine::Checkpoint {
            position: r.try_get("position")?,
            hash: r.try_get("hash")?,
            signature: r.try_get("signature")?,
        })?;
    }
    Ok(written)
}

/// Signs a checkpoint at the last sealed position when the chain after
/// the last checkpoint verifies (so that an export can end there while the
/// log is quiet; the sealer signs one only with new events).
pub async fn seal_tail(conn: &mut AnyConnection, key: &SigningKey) -> Result<()> {
    let sealed_to = sealed_to(conn).await?;
    let signed_to: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM audit_checkpoints")
            .fetch_one(&mut *conn)
            .await?;
    if sealed_to <= signed_to {
        return Ok(());
    }
    let report = verify(
        conn,
        &key.verifying_key(),
        Some(signed_to + 1),
        Some(sealed_to),
    )
    .await?;
    anyhow::ensure!(
        report.ok,
        "the chain does not verify at position {}: {}",
        report.first_bad_position.unwrap_or(0),
        report.reason.unwrap_or_default()
    );
    let hash: String = sqlx::query_scalar("SELECT hash FROM audit_chain WHERE position = $1")
        .bind(sealed_to)
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO audit_checkpoints (position, hash, signature, public_key, signed_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (position) DO NOTHING",
    )
    .bind(sealed_to)
    .bind(hash.clone())
    .bind(sign(key, sealed_to, &hash))
    .bind(hex::encode(key.verifying_key().to_bytes()))
    .bind(annals_projections::marketing::instant(chrono::Utc::now()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Checks an export with nothing but its text and the public key: the
/// chain recomputed from the header's hash over every event, each event's
/// hash, and every checkpoint's hash and signature; the last event must be
/// covered by a checkpoint. `Err` names the line and what is wrong.
pub fn verify_export(text: &str, public_key: &str) -> Result<(i64, i64)> {
    let key_bytes: [u8; 32] =
        bytes32(public_key).context("the public key must be 64 hex digits")?;
    let key = VerifyingKey::from_bytes(&key_bytes).context("not an Ed25519 public key")?;
    let mut previous: Option<[u8; 32]> = None;
    let mut hashes = std::collections::HashMap::new();
    let (mut events, mut checkpoints, mut last_event, mut last_checkpoint) = (0, 0, 0, 0);
    for (n, raw) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let line_no = n + 1;
        let parsed: ExportLine = serde_json::from_str(raw)
            .with_context(|| format!("line {line_no}: not a line of an export"))?;
        match parsed {
            ExportLine::Header {
                format,
                previous_hash,
                ..
            } => {
                anyhow::ensure!(
                    format == EXPORT_FORMAT,
                    "line {line_no}: unknown format {format}"
                );
                previous = Some(
                    bytes32(&previous_hash)
                        .with_context(|| format!("line {line_no}: bad previous_hash"))?,
                );
            }
            ExportLine::Event {
                position,
                aggregate_type,
                aggregate_id,
                sequence,
                event_type,
                event_version,
                payload,
                metadata,
                recorded_at,
                hash,
            } => {
                let before =
                    previous.with_context(|| format!("line {line_no}: no header first"))?;
                anyhow::ensure!(
                    last_event == 0 || position == last_event + 1,
                    "line {line_no}: position {position} does not follow {last_event}"
                );
                let event = RawEvent {
                    position,
                    aggregate_type,
                    aggregate_id,
                    sequence,
                    event_type,
                    event_version,
                    payload,
                    metadata,
                    recorded_at,
                };
                let computed = chain(&before, &event);
                anyhow::ensure!(
                    hex::encode(computed) == hash,
                    "line {line_no}: the event at position {position} does not hash to its chain hash"
                );
                hashes.insert(position, hash);
                previous = Some(computed);
                last_event = position;
                events += 1;
            }
            ExportLine::Checkpoint {
                position,
                hash,
                signature,
            } => {
                anyhow::ensure!(
                    hashes.get(&position) == Some(&hash),
                    "line {line_no}: the checkpoint at {position} signs a hash the events do not give"
                );
                anyhow::ensure!(
                    signature_holds(&key, position, &hash, &signature),
                    "line {line_no}: the checkpoint signature at {position} does not hold"
                );
                last_checkpoint = last_checkpoint.max(position);
                checkpoints += 1;
            }
        }
    }
    anyhow::ensure!(events > 0, "no events in the export");
    anyhow::ensure!(
        last_checkpoint >= last_event,
        "the events after position {last_checkpoint} are covered by no signed checkpoint"
    );
    Ok((events, checkpoints))
}
