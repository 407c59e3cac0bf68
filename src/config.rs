//! One typed configuration, read from the environment (and an optional
//! `.env`), validated once at start. Every error names its variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};

/// Where events and read models live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseConfig {
    /// Embedded default: one SQLite file.
    Sqlite { path: PathBuf },
    /// Server mode: a PostgreSQL URL (kept out of logs: it may hold a password).
    Postgres { url: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsConfig {
    pub url: String,
    /// Stream name and subject prefix, so several deployments (or tests) can
    /// share one NATS server. Subjects are `<prefix>.events.<aggregate>.<id>`.
    pub prefix: String,
}

/// The Telegram notifier (TELEGRAM_*); absent: the notifier is off.
#[derive(Clone, PartialEq, Eq)]
pub struct TelegramConfig {
    pub token: String,
    /// A self-hosted (or, in tests, fake) Bot API server.
    pub api_url: Option<url::Url>,
    pub staff_chat_ids: Vec<i64>,
    pub staff_user_ids: Vec<i64>,
    /// Bootstrap hour of the daily digest; `None` (`off`): no digest.
    pub digest_hour: Option<u8>,
}

/// A secret setting: shown as `<secret>` in any debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(pub String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

impl std::fmt::Debug for TelegramConfig {
    // The token is a secret: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramConfig")
            .field("api_url", &self.api_url)
            .field("staff_chat_ids", &self.staff_chat_ids)
            .field("staff_user_ids", &self.staff_user_ids)
            .field("digest_hour", &self.digest_hour)
            .finish_non_exhaustive()
    }
}

fn id_list(name: &str, value: Option<String>) -> Result<Vec<i64>> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| anyhow!("{name}: '{s}' is not a numeric Telegram id"))
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub nats: Option<NatsConfig>,
    pub timezone: chrono_tz::Tz,
    pub log_format: LogFormat,
    /// Longest a query waits for `min_position`.
    pub max_read_wait: Duration,
    /// Size of the database connection pool.
    pub db_pool_size: u32,
    /// Lifetime of a bearer token.
    pub token_ttl: Duration,
    /// Lifetime of a password reset token.
    pub reset_ttl: Duration,
    /// SMTP server for outgoing mail; unset: `.eml` files in the outbox.
    pub smtp_url: Option<String>,
    pub mail_from: String,
    /// Base URL of this server as users reach it (links in e-mails).
    pub public_url: String,
    /// Distance between candidate appointment starts.
    pub slot_step_minutes: i64,
    /// How far ahead an appointment must be booked.
    pub min_notice_minutes: i64,
    /// Until how long before its start a client may cancel.
    pub cancel_notice_minutes: i64,
    pub telegram: Option<TelegramConfig>,
    /// Key of the payment provider's webhook signatures (HMAC-SHA256);
    /// unset: the webhook refuses every call.
    pub payment_webhook_secret: Option<SecretText>,
    /// An S3-compatible bucket for uploaded files; unset: a directory,
    /// `ANNALS_DATA_DIR/files`.
    pub files_s3_bucket: Option<String>,
    /// The provider webhook SMS and WhatsApp messages are posted to; unset:
    /// they are written to `ANNALS_DATA_DIR/message-outbox/`.
    pub message_webhook: Option<MessageWebhook>,
    /// Tries of a message before it is `failed`.
    pub message_max_attempts: u32,
    /// Days after "ready for delivery" when receipt is confirmed for a
    /// client who has not confirmed it.
    pub project_confirm_days: u32,
    /// The seed of the audit signing key (64 hex digits); unset: a key
    /// made on first start in `ANNALS_DATA_DIR/audit-signing.key`.
    pub audit_signing_key: Option<String>,
    /// The sealer signs a checkpoint at least every this many events.
    pub audit_checkpoint_every: i64,
}

/// Where scheduled SMS and WhatsApp messages go, and the key they are
/// signed with.
#[derive(Clone, Debug)]
pub struct MessageWebhook {
    pub url: url::Url,
    pub secret: SecretText,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can pass their own map.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let listen = match get("ANNALS_LISTEN") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(v) => v.trim().parse().map_err(|_| {
                anyhow!("ANNALS_LISTEN: '{v}' is not a socket address like 127.0.0.1:8080")
            })?,
        };
        let data_dir = PathBuf::from(get("ANNALS_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database = match get("DATABASE_URL") {
            None => DatabaseConfig::Sqlite {
                path: data_dir.join("annals.db"),
            },
            Some(url) => parse_database_url(url.trim())?,
        };
        let nats = match get("NATS_URL") {
            None => None,
            Some(url) => {
                let url = url.trim().to_string();
                if !(url.starts_with("nats://") || url.starts_with("tls://")) {
                    bail!("NATS_URL: '{url}' must start with nats:// or tls://");
                }
                let prefix = get("ANNALS_NATS_PREFIX").unwrap_or_else(|| "annals".into());
                if prefix.is_empty()
                    || !prefix
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    bail!(
                        "ANNALS_NATS_PREFIX: '{prefix}' may hold only letters, digits, '_' and '-'"
                    );
                }
                Some(NatsConfig { url, prefix })
            }
        };
        let timezone = match get("ANNALS_TIMEZONE") {
            None => chrono_tz::UTC,
            Some(v) => v.trim().parse().map_err(|_| {
                anyhow!("ANNALS_TIMEZONE: '{v}' is not an IANA time zone like Europe/Berlin")
            })?,
        };
        let log_format = match get("ANNALS_LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("ANNALS_LOG_FORMAT: '{other}' must be text or json"),
        };
        let max_read_wait = match get("ANNALS_MAX_READ_WAIT_MS") {
            None => Duration::from_secs(5),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) if (1..=30_000).contains(&ms) => Duration::from_millis(ms),
                _ => bail!("ANNALS_MAX_READ_WAIT_MS: '{v}' must be a number of milliseconds from 1 to 30000"),
            },
        };
        let db_pool_size = match get("ANNALS_DB_POOL_SIZE") {
            None => 16,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if (2..=512).contains(&n) => n,
                _ => bail!("ANNALS_DB_POOL_SIZE: '{v}' must be a number from 2 to 512"),
            },
        };
        let minutes = |name: &str, default: u64| -> Result<Duration> {
            match get(name) {
                None => Ok(Duration::from_secs(default * 60)),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(m) if (1..=525_600).contains(&m) => Ok(Duration::from_secs(m * 60)),
                    _ => bail!("{name}: '{v}' must be a number of minutes from 1 to 525600"),
                },
            }
        };
        let token_ttl = minutes("ANNALS_TOKEN_TTL_MINUTES", 12 * 60)?;
        let reset_ttl = minutes("ANNALS_RESET_TTL_MINUTES", 60)?;
        let smtp_url = get("ANNALS_SMTP_URL").map(|v| v.trim().to_string());
        if let Some(url) = &smtp_url {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                bail!("ANNALS_SMTP_URL: must start with smtp:// or smtps://");
            }
        }
        let mail_from =
            get("ANNALS_MAIL_FROM").unwrap_or_else(|| "Annals <no-reply@localhost>".into());
        let public_url = get("ANNALS_PUBLIC_URL")
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_string();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            bail!("ANNALS_PUBLIC_URL: '{public_url}' must start with http:// or https://");
        }
        let number = |name: &str, default: i64, max: i64| -> Result<i64> {
            match get(name) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<i64>() {
                    Ok(n) if (0..=max).contains(&n) => Ok(n),
                    _ => bail!("{name}: '{v}' must be a number of minutes from 0 to {max}"),
                },
            }
        };
        let slot_step_minutes = number("ANNALS_SLOT_STEP_MINUTES", 15, 240)?.max(1);
        let min_notice_minutes = number("ANNALS_MIN_NOTICE_MINUTES", 60, 60 * 24 * 30)?;
        let cancel_notice_minutes = number("ANNALS_CANCEL_NOTICE_MINUTES", 120, 60 * 24 * 30)?;
        let payment_webhook_secret = match get("ANNALS_PAYMENT_WEBHOOK_SECRET") {
            Some(secret) if secret.trim().len() < 16 => {
                bail!("ANNALS_PAYMENT_WEBHOOK_SECRET: must be at least 16 characters")
            }
            other => other.map(|s| SecretText(s.trim().to_string())),
        };
        let message_webhook = match (
            get("ANNALS_MESSAGE_WEBHOOK_URL"),
            get("ANNALS_MESSAGE_WEBHOOK_SECRET"),
        ) {
            (None, _) => None,
            (Some(_), None) => {
                bail!("ANNALS_MESSAGE_WEBHOOK_SECRET: needed with ANNALS_MESSAGE_WEBHOOK_URL")
            }
            (Some(_), Some(secret)) if secret.trim().len() < 16 => {
                bail!("ANNALS_MESSAGE_WEBHOOK_SECRET: must be at least 16 characters")
            }
            (Some(url), Some(secret)) => {
                let url = url::Url::parse(url.trim())
                    .map_err(|e| anyhow::anyhow!("ANNALS_MESSAGE_WEBHOOK_URL: {e}"))?;
                if !matches!(url.scheme(), "http" | "https") {
                    bail!("ANNALS_MESSAGE_WEBHOOK_URL: must be http:// or https://");
                }
                Some(MessageWebhook {
                    url,
                    secret: SecretText(secret.trim().to_string()),
                })
            }
        };
        let message_max_attempts = match get("ANNALS_MESSAGE_MAX_ATTEMPTS") {
            None => 5,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if (1..=50).contains(&n) => n,
                _ => bail!("ANNALS_MESSAGE_MAX_ATTEMPTS: '{v}' must be a number from 1 to 50"),
            },
        };
        let project_confirm_days = match get("ANNALS_PROJECT_CONFIRM_DAYS") {
            None => 14,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if n <= 365 => n,
                _ => bail!("ANNALS_PROJECT_CONFIRM_DAYS: '{v}' must be a number from 0 to 365"),
            },
        };
        let audit_checkpoint_every = match get("ANNALS_AUDIT_CHECKPOINT_EVERY") {
            None => 1_000,
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if (1..=1_000_000).contains(&n) => n,
                _ => {
                    bail!("ANNALS_AUDIT_CHECKPOINT_EVERY: '{v}' must be a number from 1 to 1000000")
                }
            },
        };
        let telegram = match get("TELEGRAM_BOT_TOKEN") {
            None => None,
            Some(token) => {
                let token = token.trim().to_string();
                if !token.contains(':') {
                    bail!("TELEGRAM_BOT_TOKEN: not a bot token like 123456:ABC-DEF");
                }
                let api_url = match get("TELEGRAM_API_URL") {
                    None => None,
                    Some(raw) => {
                        // teloxide wants no trailing slash on a URL with a path.
                        let trimmed = raw.trim().trim_end_matches('/');
                        let url = url::Url::parse(trimmed)
                            .map_err(|_| anyhow!("TELEGRAM_API_URL: '{raw}' is not a URL"))?;
                        if !matches!(url.scheme(), "http" | "https") {
                            bail!("TELEGRAM_API_URL: must be http:// or https://");
                        }
                        Some(url)
                    }
                };
                Some(TelegramConfig {
                    token,
                    api_url,
                    staff_chat_ids: id_list(
                        "TELEGRAM_STAFF_CHAT_IDS",
                        get("TELEGRAM_STAFF_CHAT_IDS"),
                    )?,
                    staff_user_ids: id_list(
                        "TELEGRAM_STAFF_USER_IDS",
                        get("TELEGRAM_STAFF_USER_IDS"),
                    )?,
                    digest_hour: match get("TELEGRAM_DIGEST_HOUR") {
                        None => Some(8),
                        Some(v) if v.trim().eq_ignore_ascii_case("off") => None,
                        Some(v) => match v.trim().parse::<u8>() {
                            Ok(hour) if hour < 24 => Some(hour),
                            _ => bail!(
                                "TELEGRAM_DIGEST_HOUR: '{v}' must be an hour from 0 to 23, or off"
                            ),
                        },
                    },
                })
            }
        };
        Ok(Self {
            message_webhook,
            message_max_attempts,
            project_confirm_days,
            audit_signing_key: get("ANNALS_AUDIT_SIGNING_KEY"),
            audit_checkpoint_every,
            files_s3_bucket: get("ANNALS_FILES_S3_BUCKET").map(|b| b.trim().to_string()),
            telegram,
            slot_step_minutes,
            min_notice_minutes,
            cancel_notice_minutes,
            payment_webhook_secret,
            listen,
            data_dir,
            database,
            nats,
            timezone,
            log_format,
            max_read_wait,
            db_pool_size,
            token_ttl,
            reset_ttl,
            smtp_url,
            mail_from,
            public_url,
        })
    }
}

fn parse_database_url(url: &str) -> Result<DatabaseConfig> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(DatabaseConfig::Postgres {
            url: url.to_string(),
        })
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() {
            bail!("DATABASE_URL: a sqlite:// URL needs a file path");
        }
        Ok(DatabaseConfig::Sqlite {
            path: PathBuf::from(path),
        })
    } else {
        bail!("DATABASE_URL: must start with postgres:// (or sqlite:// for a file); unset it for the embedded default")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn no_configuration_means_embedded_sqlite_on_localhost() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            s.database,
            DatabaseConfig::Sqlite {
                path: PathBuf::from("./data/annals.db")
            }
        );
        assert!(s.nats.is_none());
        assert_eq!(s.timezone, chrono_tz::UTC);
    }

    #[test]
    fn each_bad_value_is_reported_with_its_variable_name() {
        let cases = [
            ("ANNALS_LISTEN", "localhost"),
            ("DATABASE_URL", "mysql://x"),
            ("NATS_URL", "http://x"),
            ("ANNALS_TIMEZONE", "Mars/Olympus"),
            ("ANNALS_LOG_FORMAT", "xml"),
            ("ANNALS_MAX_READ_WAIT_MS", "0"),
            ("ANNALS_DB_POOL_SIZE", "many"),
            ("ANNALS_NATS_PREFIX", "a.b"),
            ("ANNALS_TOKEN_TTL_MINUTES", "0"),
            ("ANNALS_SMTP_URL", "http://mail"),
            ("ANNALS_PUBLIC_URL", "example.com"),
            ("TELEGRAM_BOT_TOKEN", "no-colon"),
            ("TELEGRAM_DIGEST_HOUR", "24"),
        ];
        for (name, value) in cases {
            let mut vars = vec![(name, value)];
            if name == "ANNALS_NATS_PREFIX" {
                vars.push(("NATS_URL", "nats://127.0.0.1:4222"));
            }
            if name == "TELEGRAM_DIGEST_HOUR" {
                vars.push(("TELEGRAM_BOT_TOKEN", "1:T"));
            }
            let err = settings(&vars).expect_err(name).to_string();
            assert!(err.starts_with(name), "{name}: {err}");
        }
    }

    #[test]
    fn server_mode_is_chosen_by_urls() {
        let s = settings(&[
            ("DATABASE_URL", "postgres://u:p@127.0.0.1/annals"),
            ("NATS_URL", "nats://127.0.0.1:4222"),
            ("ANNALS_TIMEZONE", "Europe/Berlin"),
        ])
        .unwrap();
        assert!(matches!(s.database, DatabaseConfig::Postgres { .. }));
        assert_eq!(s.nats.unwrap().prefix, "annals");
        assert_eq!(s.timezone, chrono_tz::Europe::Berlin);
    }
}
