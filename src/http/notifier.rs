//! The notifier's settings over REST (admin). Every change is an event on
//! the `notifier_settings` aggregate; until the first change the settings
//! are the TELEGRAM_* bootstrap values.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use annals_domain::notifier_settings::{self, NotifierSettings, Settings, SettingsCommand};

use super::command::CommandHeaderParams;
use super::{
    run_command, ApiError, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommandReply, CommonProblems, JsonBody,
};
use crate::config::TelegramConfig;
use crate::notifier::templates::ALERTS;
use crate::platform::{Module, Platform, Services};
use crate::store::{CommandBus, CommandRequest, LogReader};

pub struct NotifierModule;

impl Module for NotifierModule {
    fn name(&self) -> &'static str {
        "notifier"
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new().routes(routes!(get_settings, put_settings))
    }

    fn install(&self, platform: &Arc<Platform>, services: &mut Services) {
        services.insert(platform.command_bus::<NotifierSettings>(()));
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
                digest_hour: DEFAULT_DIGEST_HOUR,
            },
            0,
        ),
    })
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"staff_chat_ids": [-1001234567890_i64], "staff_user_ids": [42], "alerts": {"AppointmentBooked": true, "AppointmentCancelled": true, "AppointmentRescheduled": false}, "digest_hour": 8})))]
pub struct SettingsBody {
    /// Chats that receive staff alerts and the digest.
    #[schema(max_items = 100)]
    pub staff_chat_ids: Vec<i64>,
    /// Telegram users allowed to use staff commands.
    #[schema(max_items = 100)]
    pub staff_user_ids: Vec<i64>,
    /// Alert → on/off; unlisted alerts are on.
    #[serde(default)]
    pub alerts: BTreeMap<String, bool>,
    /// Hour of the daily digest in the business time zone.
    #[schema(minimum = 0, maximum = 23)]
    pub digest_hour: u8,
}

#[derive(Serialize, ToSchema)]
pub struct SettingsView {
    #[serde(flatten)]
    pub settings: SettingsBody,
    /// Every alert there is, with whether it is on.
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
        settings: SettingsBody {
            staff_chat_ids: settings.staff_chat_ids,
            staff_user_ids: settings.staff_user_ids,
            alerts: settings.alerts,
            digest_hour: settings.digest_hour,
        },
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
) -> Response {
    let call = CommandCall::new(caller, headers, "PUT", "/notifier/settings", body.digest);
    let body = body.value;
    run_command(&app, &call, || async {
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
        };
        let outcome = app
            .service::<CommandBus<NotifierSettings>>()
            .execute(CommandRequest {
                aggregate_id: notifier_settings::ID,
                command: SettingsCommand::Set(settings),
                metadata: call.metadata(),
                expected_version: call.headers.expected_version,
            })
            .await?;
        Ok(CommandReply::new(
            StatusCode::OK,
            CommandAccepted::from(&outcome),
            outcome.version,
        ))
    })
    .await
}
