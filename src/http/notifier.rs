//! The notifier's settings over REST (admin). Every change is an event on
//! the `notifier_settings` aggregate; until the first change the settings
//! are the TELEGRAM_* bootstrap values.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use annals_domain::notifier_settings::{self, NotifierSettings, Settings, SettingsCommand};
use annals_domain::user::UserCommand;

use super::command::{accepted, CommandHeaderParams};
use super::{
    ApiError, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders, CommandProblems,
    CommonProblems, JsonBody,
};
use crate::config::TelegramConfig;
use crate::notifier::templates::ALERTS;
use crate::platform::Module;
use crate::store::LogReader;

pub struct NotifierModule;

impl Module for NotifierModule {
    fn name(&self) -> &'static str {
        "notifier"
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(get_settings, put_settings))
            .routes(routes!(link_telegram, unlink_telegram))
            .routes(routes!(list_parked))
            .routes(routes!(retry_parked))
    }
}

/// Digest hour before anyone sets one.
pub const DEFAULT_DIGEST_HOUR: u8 = 8;

/// The settings in force, and their version (0: the bootstrap values).
pub async fn effective(
    log: &LogReader,
    bootstrap: Option<&TelegramConfig>,
) -> anyhow::Result<(Settings, i64)> {
    let history = log
        .aggregate_history(
            <NotifierSettings as cqrs_es::Aggregate>::TYPE,
            notifier_settings::ID,
        )
        .await?;
    let mut state = NotifierSettings::default();
    for event in &history {
        notifier_settings::evolve(&mut state, &serde_json::from_value(event.payload.clone())?);
    }
    Ok(match state.current {
        Some(settings) => (settings, history.len() as i64),
        None => (
            Settings {
                staff_chat_ids: bootstrap
                    .map(|c| c.staff_chat_ids.clone())
                    .unwrap_or_default(),
                staff_user_ids: bootstrap
                    .map(|c| c.staff_user_ids.clone())
                    .unwrap_or_default(),
                alerts: BTreeMap::new(),
                digest_hour: bootstrap
                    .and_then(|c| c.digest_hour)
                    .unwrap_or(DEFAULT_DIGEST_HOUR),
                daily_digest: bootstrap.is_none_or(|c| c.digest_hour.is_some()),
                reminder_minutes: notifier_settings::DEFAULT_REMINDER_MINUTES,
                renewal_reminder_days: notifier_settings::DEFAULT_RENEWAL_REMINDER_DAYS,
            },
            0,
        ),
    })
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"staff_chat_ids": [-1001234567890_i64], "staff_user_ids": [42], "alerts": {"AppointmentBooked": true, "AppointmentCancelled": true, "AppointmentRescheduled": false}, "digest_hour": 8, "daily_digest": true, "reminder_minutes": 120, "renewal_reminder_days": 3})))]
pub struct SettingsBody {
    /// Chats that receive staff alerts and the digest.
    #[schema(max_items = 100)]
    pub staff_chat_ids: Vec<i64>,
    /// Telegram users allowed to use staff commands.
    #[schema(max_items = 100)]
    pub staff_user_ids: Vec<i64>,
    /// Alert → on/off; unlisted alerts are on.
    #[serde(default)]
    #[schema(schema_with = alerts_schema)]
    pub alerts: BTreeMap<String, bool>,
    /// Hour of the daily digest in the business time zone.
    #[schema(minimum = 0, maximum = 23)]
    pub digest_hour: u8,
    /// Whether the daily digest goes out at all (default on).
    #[serde(default = "on")]
    pub daily_digest: bool,
    /// Minutes before an appointment that a linked client is reminded;
    /// 0 turns reminders off (default 120).
    #[serde(default = "default_reminder_minutes")]
    #[schema(minimum = 0, maximum = 20160)]
    pub reminder_minutes: u32,
    /// Days before a subscription's last day that a linked client is
    /// reminded to renew, once per end date; 0 turns them off (default 3).
    #[serde(default = "default_renewal_reminder_days")]
    #[schema(minimum = 0, maximum = 60)]
    pub renewal_reminder_days: u32,
}

fn on() -> bool {
    true
}

fn default_reminder_minutes() -> u32 {
    notifier_settings::DEFAULT_REMINDER_MINUTES
}

fn default_renewal_reminder_days() -> u32 {
    notifier_settings::DEFAULT_RENEWAL_REMINDER_DAYS
}

/// The alerts map in the OpenAPI document: exactly the alerts there are
/// (from the one table), each on or off.
fn alerts_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    ALERTS
        .iter()
        .fold(ObjectBuilder::new(), |object, (alert, _)| {
            object.property(*alert, ObjectBuilder::new().schema_type(Type::Boolean))
        })
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .description(Some("Alert → on/off; unlisted alerts are on."))
        .build()
}

#[derive(Serialize, ToSchema)]
pub struct SettingsView {
    pub staff_chat_ids: Vec<i64>,
    pub staff_user_ids: Vec<i64>,
    /// The alerts switched explicitly.
    #[schema(schema_with = alerts_schema)]
    pub alerts: BTreeMap<String, bool>,
    /// Hour of the daily digest in the business time zone.
    #[schema(minimum = 0, maximum = 23)]
    pub digest_hour: u8,
    pub daily_digest: bool,
    /// Minutes before an appointment that a linked client is reminded; 0: off.
    pub reminder_minutes: u32,
    /// Days before a subscription ends that a linked client is reminded; 0: off.
    pub renewal_reminder_days: u32,
    /// Every alert there is, with whether it is on.
    #[schema(schema_with = alerts_schema)]
    pub available_alerts: BTreeMap<String, bool>,
    /// 0 until the settings are first changed (TELEGRAM_* bootstrap values).
    pub version: i64,
}

/// The notifier's settings (admin).
#[utoipa::path(get, path = "/notifier/settings", tag = "notifier", security(("bearer" = [])),
    responses((status = 200, description = "The settings in force", body = SettingsView),
        super::error::Unauthorized,
        super::error::Forbidden,
        CommonProblems))]
async fn get_settings(State(app): State<AppState>) -> Result<Json<SettingsView>, ApiError> {
    let (settings, version) =
        effective(&app.platform.log, app.platform.settings.telegram.as_ref()).await?;
    let available_alerts = ALERTS
        .iter()
        .map(|(t, _)| (t.to_string(), settings.alert_on(t)))
        .collect();
    Ok(Json(SettingsView {
        staff_chat_ids: settings.staff_chat_ids,
        staff_user_ids: settings.staff_user_ids,
        alerts: settings.alerts,
        digest_hour: settings.digest_hour,
        daily_digest: settings.daily_digest,
        reminder_minutes: settings.reminder_minutes,
        renewal_reminder_days: settings.renewal_reminder_days,
        available_alerts,
        version,
    }))
}

/// Replace the notifier's settings (admin); recorded as an event.
#[utoipa::path(put, path = "/notifier/settings", tag = "notifier", security(("bearer" = [])),
    request_body = SettingsBody, params(CommandHeaderParams),
    responses((status = 200, description = "Changed (or already so)", body = CommandAccepted),
        super::error::Unauthorized,
        super::error::Forbidden,
        CommonProblems, CommandProblems))]
async fn put_settings(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<SettingsBody>,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(caller, headers, "PUT", "/notifier/settings", body.digest);
    let body = body.value;
    if let Some(unknown) = body
        .alerts
        .keys()
        .find(|k| !ALERTS.iter().any(|(t, _)| t == k))
    {
        return Err(ApiError::invalid_field(
            format!("alerts.{unknown}"),
            "is not an alert",
        ));
    }
    let settings = Settings {
        staff_chat_ids: body.staff_chat_ids,
        staff_user_ids: body.staff_user_ids,
        alerts: body.alerts,
        digest_hour: body.digest_hour,
        daily_digest: body.daily_digest,
        reminder_minutes: body.reminder_minutes,
        renewal_reminder_days: body.renewal_reminder_days,
    };
    let done = app
        .platform
        .commands
        .execute::<NotifierSettings>(
            &call.context(),
            notifier_settings::ID,
            SettingsCommand::Set(settings),
        )
        .await;
    Ok(accepted(StatusCode::OK, done))
}

#[derive(Serialize, ToSchema)]
#[schema(examples(json!({"code": "K7QX2MPA9D", "start_command": "/start K7QX2MPA9D", "expires_at": "2026-05-04T10:15:00Z"})))]
pub struct TelegramLinkCode {
    /// One-time code; send `/start <code>` to the bot to link your chat.
    pub code: String,
    /// What to send to the bot.
    pub start_command: String,
    /// The code works once, until then.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// A one-time code that links your Telegram chat to your account: send
/// `/start <code>` to the bot within 15 minutes. A new code replaces the
/// previous one. Linked clients get appointment reminders.
#[utoipa::path(post, path = "/me/telegram-link", tag = "notifier", security(("bearer" = [])),
    responses((status = 201, description = "A code to send to the bot", body = TelegramLinkCode),
        (status = 409, description = "The Telegram notifier is off (no `TELEGRAM_BOT_TOKEN`)", body = super::error::Problem, content_type = "application/problem+json"),
        super::error::Unauthorized,
        CommonProblems))]
async fn link_telegram(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<(StatusCode, Json<TelegramLinkCode>), ApiError> {
    let me = caller.principal()?.user_id;
    if app.platform.settings.telegram.is_none() {
        return Err(ApiError::conflict(
            "telegram-off",
            "the Telegram notifier is off on this server (TELEGRAM_BOT_TOKEN is not set)",
        ));
    }
    let (code, expires_at) = crate::notifier::link::issue(&app.platform.db.any, me).await?;
    Ok((
        StatusCode::CREATED,
        Json(TelegramLinkCode {
            start_command: format!("/start {code}"),
            code,
            expires_at: chrono::DateTime::from_timestamp_millis(expires_at).unwrap_or_default(),
        }),
    ))
}

/// Unlink your Telegram chat: no more reminders there.
#[utoipa::path(delete, path = "/me/telegram-link", tag = "notifier", security(("bearer" = [])),
    params(CommandHeaderParams),
    responses((status = 200, description = "Unlinked (or was not linked)", body = CommandAccepted),
        super::error::Unauthorized,
        CommonProblems, CommandProblems))]
async fn unlink_telegram(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
) -> Response {
    let me = match caller.principal() {
        Ok(me) => me.user_id,
        Err(err) => return err.into_response(),
    };
    let call = CommandCall::new(
        caller,
        headers,
        "DELETE",
        "/me/telegram-link",
        String::new(),
    );
    let done =
        super::identity::user_command(&app, &call.context(), me, UserCommand::UnlinkTelegram).await;
    accepted(StatusCode::OK, done)
}

#[derive(Serialize, ToSchema)]
pub struct ParkedView {
    /// What the message is about (`<event id>`, `reminder:<id>:<start>`, ...).
    pub cause: String,
    pub chat_id: i64,
    pub text: String,
    pub attempts: i64,
    /// The last failure.
    pub error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub parked_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ParkedQuery {
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 1000)]
    pub cursor: Option<String>,
}

/// Messages that kept failing (network, Telegram errors that may pass) and
/// were set aside so that they block nothing (admin).
#[utoipa::path(get, path = "/notifier/parked", tag = "notifier", security(("bearer" = [])),
    params(ParkedQuery),
    responses((status = 200, description = "A page of parked messages, oldest first", body = super::page::Page<ParkedView>),
        super::error::Unauthorized,
        super::error::Forbidden,
        CommonProblems))]
async fn list_parked(
    State(app): State<AppState>,
    super::ApiQuery(query): super::ApiQuery<ParkedQuery>,
) -> Result<Json<super::page::Page<ParkedView>>, ApiError> {
    let parked = crate::notifier::ledger::parked(&app.platform.db.any).await?;
    let views = parked
        .into_iter()
        .map(|p| ParkedView {
            cause: p.cause,
            chat_id: p.chat_id,
            text: p.text,
            attempts: p.attempts,
            error: p.error,
            parked_at: chrono::DateTime::from_timestamp_millis(p.parked_at).unwrap_or_default(),
        })
        .collect();
    Ok(Json(super::page::page(
        views,
        |p| {
            format!(
                "{:020}|{}|{}",
                p.parked_at.timestamp_millis(),
                p.cause,
                p.chat_id
            )
        },
        query.limit,
        query.cursor.as_deref(),
    )?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"cause": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "chat_id": -1001234567890_i64})))]
pub struct RetryParked {
    #[schema(min_length = 1, max_length = 500)]
    pub cause: String,
    pub chat_id: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Queued {
    #[schema(example = "queued")]
    pub status: &'static str,
}

/// Send a parked message again (admin): it goes out once, within seconds.
#[utoipa::path(post, path = "/notifier/parked/retry", tag = "notifier", security(("bearer" = [])),
    request_body = RetryParked,
    responses((status = 202, description = "Back in line", body = Queued),
        super::error::Unauthorized,
        super::error::Forbidden,
        super::error::NotFound,
        CommonProblems))]
async fn retry_parked(
    State(app): State<AppState>,
    body: JsonBody<RetryParked>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    let RetryParked { cause, chat_id } = body.value;
    if crate::notifier::ledger::retry(&app.platform.db.any, &cause, chat_id).await? {
        Ok((StatusCode::ACCEPTED, Json(Queued { status: "queued" })))
    } else {
        Err(ApiError::not_found("no such parked message")
            .naming("cause", "no parked message for this cause and chat"))
    }
}
