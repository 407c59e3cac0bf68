//! Extractors whose rejections are problem+json naming the offending field,
//! header or parameter (axum's own answer in plain text otherwise).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, StatusCode};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use annals_domain::Actor;

use super::error::ApiError;

/// A JSON body, parsed with the path of any bad field, plus a digest of the
/// raw bytes (to tell a retried request from a different one).
pub struct JsonBody<T> {
    pub value: T,
    pub digest: String,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(content_type) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "the body must be JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    "Payload too large",
                    rejection.body_text(),
                )
            } else {
                ApiError::bad_request(rejection.body_text())
            }
        })?;
        // Every body is an object; serde would also take an array for a struct.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
                return Err(ApiError::bad_request("the body is not valid JSON"));
            }
            return Err(ApiError::invalid_field("body", "must be a JSON object"));
        }
        let value = parse_json(&bytes)?;
        Ok(Self {
            value,
            digest: hex::encode(Sha256::digest(&bytes)),
        })
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses JSON; syntax errors are 400, type errors 422 naming the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut raw: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    whole_numbers_as_integers(&mut raw);
    serde_path_to_error::deserialize(raw).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = readable(strip_position(&inner.to_string()));
        ApiError::invalid_field(field_name(&path, &message), message)
    })
}

/// JSON Schema counts `15.0` as an integer, and clients (and fuzzers) send
/// it so; serde would refuse it for an integer field.
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
            if f.fract() == 0.0 && f.abs() <= EXACT {
                *value = if f < 0.0 {
                    Value::from(f as i64)
                } else {
                    Value::from(f as u64)
                };
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

/// chrono's parse errors say what went wrong inside a time, not what a
/// time must look like; every time we take is RFC 3339 with an offset.
const TIME_ERRORS: [&str; 7] = [
    "input is out of range",
    "no possible date and time matching input",
    "input is not enough for unique date and time",
    "input contains invalid characters",
    "premature end of input",
    "trailing input",
    "bad or unsupported format string",
];

/// A parse error's message as a client can act on it.
fn readable(message: String) -> String {
    if TIME_ERRORS.iter().any(|e| message.starts_with(e)) {
        "must be RFC 3339 with an offset, e.g. 2026-12-03T12:00:00+01:00 \
         (where a date alone is asked for: 2026-12-03)"
            .to_string()
    } else {
        message
    }
}

/// serde's messages end with " at line 1 column 9"; the field says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The field a data error is about: the path, or for a missing or unknown
/// field at that path, the name inside the message.
fn field_name(path: &str, message: &str) -> String {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let base = if path == "." { "" } else { path };
    match named {
        Some(name) if base.is_empty() => name.to_string(),
        // serde_path_to_error already ends an unknown field's path with it.
        Some(name) if base == name || base.ends_with(&format!(".{name}")) => base.to_string(),
        Some(name) => format!("{base}.{name}"),
        None if base.is_empty() => "body".to_string(),
        None => base.to_string(),
    }
}

/// A UUID path parameter; anything else is a 400 naming the parameter.
pub fn path_uuid(name: &str, raw: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw).map_err(|_| ApiError::bad_parameter(name, "must be a UUID"))
}

/// Query parameters; a bad one is a 400 naming it.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(query));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|err| {
                let path = err.path().to_string();
                let message = err.into_inner().to_string();
                let field = field_name(&path, &message);
                let field = if field == "body" {
                    "query".to_string()
                } else {
                    field
                };
                ApiError::bad_parameter(field, readable(message))
            })
    }
}

fn form_urlencoded_parse(query: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.as_bytes())
}

/// Who is calling: the signed-in user (resolved by `access::authorize`) or
/// anonymous.
#[derive(Clone, Debug)]
pub struct Caller(
    pub Actor,
    pub Option<std::sync::Arc<crate::auth::Principal>>,
);

impl Caller {
    /// The signed-in user; 401 for an anonymous caller.
    pub fn principal(&self) -> Result<&crate::auth::Principal, ApiError> {
        self.1.as_deref().ok_or_else(|| {
            super::access::unauthorized("sign in first: Authorization: Bearer <token>")
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let principal = parts
            .extensions
            .get::<std::sync::Arc<crate::auth::Principal>>()
            .cloned();
        let actor = match &principal {
            Some(p) => Actor::User {
                user_id: p.user_id,
                roles: p.roles.iter().map(|r| r.as_str().to_string()).collect(),
            },
            None => Actor::Anonymous,
        };
        Ok(Self(actor, principal))
    }
}

/// The client's address (the TCP peer; proxies' headers are not trusted).
pub struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let address = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(Self(address))
    }
}

/// The headers every command accepts.
#[derive(Clone, Debug, Default)]
pub struct CommandHeaders {
    /// `Idempotency-Key`: same key, same effect once, same response.
    pub idempotency_key: Option<String>,
    /// `If-Match`: the version the caller expects (an ETag `"N"`).
    pub expected_version: Option<i64>,
    /// `X-Correlation-Id`, when the caller passes one along.
    pub correlation_id: Option<uuid::Uuid>,
}

pub const MAX_IDEMPOTENCY_KEY: usize = 255;

impl<S: Send + Sync> FromRequestParts<S> for CommandHeaders {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let text = |name: &str| -> Result<Option<String>, ApiError> {
            match parts.headers.get(name) {
                None => Ok(None),
                Some(v) => v
                    .to_str()
                    .map(|s| Some(s.trim().to_string()))
                    .map_err(|_| header_error(name, "must be visible ASCII")),
            }
        };
        let idempotency_key = match text("idempotency-key")? {
            None => None,
            Some(key)
                if key.is_empty()
                    || key.len() > MAX_IDEMPOTENCY_KEY
                    || !key.bytes().all(|b| (b'!'..=b'~').contains(&b)) =>
            {
                return Err(header_error(
                    "Idempotency-Key",
                    &format!("must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters, without spaces"),
                ))
            }
            Some(key) => Some(key),
        };
        let expected_version = match text("if-match")? {
            None => None,
            Some(v) if v == "*" => None,
            Some(v) => Some(parse_etag(&v).ok_or_else(|| {
                header_error("If-Match", "must be the ETag of a version, like \"3\"")
            })?),
        };
        let correlation_id = match text("x-correlation-id")? {
            None => None,
            Some(v) => Some(
                uuid::Uuid::parse_str(&v)
                    .map_err(|_| header_error("X-Correlation-Id", "must be a UUID"))?,
            ),
        };
        Ok(Self {
            idempotency_key,
            expected_version,
            correlation_id,
        })
    }
}

fn header_error(name: &str, message: &str) -> ApiError {
    let mut e = ApiError::bad_request(format!("header {name} {message}"));
    e.errors = vec![super::error::ProblemField {
        field: name.to_string(),
        message: message.to_string(),
    }];
    e
}

/// `"3"`, `W/"3"` or a bare `3`.
fn parse_etag(value: &str) -> Option<i64> {
    let v = value.strip_prefix("W/").unwrap_or(value);
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v);
    v.parse::<i64>().ok().filter(|n| *n >= 0)
}

/// A query parameter that must be one of `allowed` (when given): 400
/// naming it and the values otherwise.
pub fn one_of(name: &str, value: Option<&str>, allowed: &[&str]) -> Result<(), ApiError> {
    match value {
        Some(v) if !allowed.contains(&v) => {
            let (last, rest) = allowed.split_last().expect("some values");
            let list = if rest.is_empty() {
                (*last).to_string()
            } else {
                format!("{} or {last}", rest.join(", "))
            };
            Err(ApiError::bad_parameter(name, format!("must be {list}")))
        }
        _ => Ok(()),
    }
}

/// For an optional body field that may be left out but not sent as null
/// (`#[serde(default, deserialize_with = "not_null")]`): a null is a 422
/// naming the field.
pub fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        amount: u32,
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        qty: u8,
    }

    #[test]
    fn json_errors_name_the_field() {
        let cases = [
            ("a missing field", r#"{"items": []}"#, 422, "amount"),
            (
                "a wrong type",
                r#"{"amount": "x", "items": []}"#,
                422,
                "amount",
            ),
            (
                "a nested value out of range",
                r#"{"amount": 1, "items": [{"qty": 300}]}"#,
                422,
                "items[0].qty",
            ),
            (
                "an unknown field",
                r#"{"amount": 1, "items": [], "extra": 1}"#,
                422,
                "extra",
            ),
            ("broken JSON", r#"{"amount": "#, 400, ""),
            (
                "trailing garbage",
                r#"{"amount": 1, "items": []} x"#,
                400,
                "",
            ),
        ];
        for (what, body, status, field) in cases {
            let err = parse_json::<Body>(body.as_bytes()).expect_err(what);
            assert_eq!(err.status.as_u16(), status, "{what}");
            if status == 422 {
                assert_eq!(err.errors[0].field, field, "{what}");
            }
        }
    }

    #[test]
    fn if_match_accepts_strong_weak_and_bare_versions() {
        assert_eq!(parse_etag("\"3\""), Some(3));
        assert_eq!(parse_etag("W/\"4\""), Some(4));
        assert_eq!(parse_etag("5"), Some(5));
        assert_eq!(parse_etag("\"x\""), None);
        assert_eq!(parse_etag("-1"), None);
    }
}
