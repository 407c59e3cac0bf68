//! Masters: who performs which services, their weekly hours and days off.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use annals_domain::values::{weekday_name, TimeRange, WeeklyRange};
use annals_domain::FieldError;
use annals_projections::appointments::queries::{self, MasterRow};
use annals_projections::appointments::MASTERS;

use super::super::command::{accepted, created, CommandHeaderParams, IdempotencyParams};
use super::super::error::ReadProblems;
use super::super::page::{page, Page};
use super::super::{
    ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommonProblems, JsonBody,
};
use super::{parse_time, parse_tz, path_id, ReadQuery, TimeZoneName};
use crate::app::appointments::{self as workflows, NewMaster};

#[derive(Deserialize, Serialize, ToSchema, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RangeBody {
    #[schema(pattern = "^(mon|tue|wed|thu|fri|sat|sun)$", example = "mon")]
    pub weekday: String,
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "09:00")]
    pub start: String,
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "18:00")]
    pub end: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"user_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "service_ids": [], "time_zone": "Europe/Berlin", "working_hours": [{"weekday": "mon", "start": "09:00", "end": "18:00"}], "breaks": [{"weekday": "mon", "start": "13:00", "end": "14:00"}]})))]
pub struct MasterRequest {
    /// A user holding the `master` role; becomes the master's id.
    #[schema(value_type = String, format = Uuid)]
    pub user_id: Uuid,
    #[serde(default)]
    #[schema(max_items = 200)]
    pub service_ids: Vec<Uuid>,
    #[schema(value_type = TimeZoneName)]
    pub time_zone: String,
    #[schema(max_items = 50)]
    pub working_hours: Vec<RangeBody>,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub breaks: Vec<RangeBody>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"working_hours": [{"weekday": "mon", "start": "09:00", "end": "18:00"}], "breaks": [{"weekday": "mon", "start": "13:00", "end": "14:00"}]})))]
pub struct WorkingHoursRequest {
    #[schema(max_items = 50)]
    pub working_hours: Vec<RangeBody>,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub breaks: Vec<RangeBody>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"dates": ["2026-12-24", "2026-12-25"]})))]
pub struct DaysOffRequest {
    #[schema(min_items = 1, max_items = 366)]
    pub dates: Vec<NaiveDate>,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct MasterView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    /// The master's display name (null until the read model knows it).
    #[schema(example = "Mia Kovač")]
    pub name: Option<String>,
    pub time_zone: String,
    pub service_ids: Vec<Uuid>,
    pub working_hours: Vec<RangeBody>,
    pub breaks: Vec<RangeBody>,
    pub days_off: Vec<NaiveDate>,
    pub version: i64,
}

fn ranges(field: &str, bodies: &[RangeBody], errors: &mut Vec<FieldError>) -> Vec<WeeklyRange> {
    let mut out = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let name = format!("{field}[{i}]");
        let Some(weekday) = weekday_name::parse(&body.weekday) else {
            errors.push(FieldError::new(
                format!("{name}.weekday"),
                "must be one of mon..sun",
            ));
            continue;
        };
        match (
            parse_time(&format!("{name}.start"), &body.start),
            parse_time(&format!("{name}.end"), &body.end),
        ) {
            (Ok(start), Ok(end)) => match TimeRange::new(&name, start, end) {
                Ok(range) => out.push(WeeklyRange { weekday, range }),
                Err(e) => errors.push(e),
            },
            (a, b) => errors.extend([a.err(), b.err()].into_iter().flatten()),
        }
    }
    out
}

fn range_bodies(ranges: &[WeeklyRange]) -> Vec<RangeBody> {
    ranges
        .iter()
        .map(|r| RangeBody {
            weekday: weekday_name::name(r.weekday).to_string(),
            start: r.range.start.format("%H:%M").to_string(),
            end: r.range.end.format("%H:%M").to_string(),
        })
        .collect()
}

/// Make a user with the `master` role a master, with services and weekly hours.
#[utoipa::path(post, path = "/masters", tag = "appointments", security(("bearer" = [])),
    request_body = MasterRequest, params(IdempotencyParams),
    responses((status = 201, description = "Registered; the master's id is the user's", body = CommandAccepted,
            headers(("Location" = String, description = "The master: /api/v1/masters/{id}"))),
        super::super::error::NotFound,
        super::super::error::Unauthorized,
        super::super::error::Forbidden,
        CommonProblems, CommandProblems))]
pub(super) async fn register_master(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<MasterRequest>,
) -> Result<Response, ApiError> {
    let call = CommandCall::new(caller, headers, "POST", "/masters", body.digest);
    let request = body.value;
    let mut errors = Vec::new();
    let time_zone = parse_tz("time_zone", request.time_zone.trim())
        .map_err(|e| errors.push(e))
        .ok();
    let working_hours = ranges("working_hours", &request.working_hours, &mut errors);
    let breaks = ranges("breaks", &request.breaks, &mut errors);
    let (Some(time_zone), true) = (time_zone, errors.is_empty()) else {
        return Err(ApiError::invalid(errors));
    };
    let master = NewMaster {
        user_id: request.user_id,
        service_ids: request.service_ids,
        time_zone,
        working_hours,
        breaks,
    };
    let done = workflows::register_master(&app.platform, &call.context(), master).await;
    Ok(created("/masters", done, CommandAccepted::of))
}

fn master_view(row: &MasterRow) -> MasterView {
    let MasterRow {
        id,
        master,
        version,
        name,
    } = row;
    MasterView {
        id: *id,
        name: name.clone(),
        time_zone: master.time_zone.name().to_string(),
        service_ids: master.service_ids.iter().copied().collect(),
        working_hours: range_bodies(&master.working_hours),
        breaks: range_bodies(&master.breaks),
        days_off: master.days_off.iter().copied().collect(),
        version: *version,
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MasterListQuery {
    /// Only masters who perform this service.
    pub service_id: Option<Uuid>,
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 1000)]
    pub cursor: Option<String>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

/// Masters, optionally those who perform one service.
#[utoipa::path(get, path = "/masters", tag = "appointments", params(MasterListQuery),
    responses((status = 200, description = "A page of masters, by id", body = Page<MasterView>), CommonProblems, ReadProblems))]
pub(super) async fn list_masters(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<MasterListQuery>,
) -> Result<Json<Page<MasterView>>, ApiError> {
    app.platform.wait_for(MASTERS, query.min_position).await?;
    let masters = queries::masters(&app.platform.db.any, query.service_id).await?;
    let views = masters.iter().map(master_view).collect();
    Ok(Json(page(
        views,
        |m| m.id.to_string(),
        query.limit,
        query.cursor.as_deref(),
    )?))
}

/// One master.
#[utoipa::path(get, path = "/masters/{id}", tag = "appointments",
    params(("id" = Uuid, Path, description = "The master"), ReadQuery),
    responses((status = 200, description = "The master", body = MasterView),
        super::super::error::NotFound,
        CommonProblems, ReadProblems))]
pub(super) async fn get_master(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<MasterView>, ApiError> {
    let id = path_id(&id)?;
    app.platform.wait_for(MASTERS, query.min_position).await?;
    let row = queries::master(&app.platform.db.any, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such master"))?;
    Ok(Json(master_view(&row)))
}

/// Replace a master's weekly working hours and breaks.
#[utoipa::path(put, path = "/masters/{id}/working-hours", tag = "appointments", security(("bearer" = [])),
    request_body = WorkingHoursRequest, params(("id" = Uuid, Path, description = "The master"), CommandHeaderParams),
    responses((status = 200, description = "Set", body = CommandAccepted),
        super::super::error::NotFound,
        super::super::error::Unauthorized,
        super::super::error::Forbidden,
        CommonProblems, CommandProblems))]
pub(super) async fn set_working_hours(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<WorkingHoursRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/masters/{id}/working-hours");
    let call = CommandCall::new(caller, headers, "PUT", &path, body.digest);
    let id = path_id(&id)?;
    let request = body.value;
    let mut errors = Vec::new();
    let working_hours = ranges("working_hours", &request.working_hours, &mut errors);
    let breaks = ranges("breaks", &request.breaks, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let done =
        workflows::set_working_hours(&app.platform, &call.context(), id, working_hours, breaks)
            .await;
    Ok(accepted(StatusCode::OK, done))
}

/// Add days off (dates in the master's time zone).
#[utoipa::path(post, path = "/masters/{id}/days-off", tag = "appointments", security(("bearer" = [])),
    request_body = DaysOffRequest, params(("id" = Uuid, Path, description = "The master"), CommandHeaderParams),
    responses((status = 200, description = "Added", body = CommandAccepted),
        super::super::error::NotFound,
        super::super::error::Unauthorized,
        super::super::error::Forbidden,
        CommonProblems, CommandProblems))]
pub(super) async fn add_days_off(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<DaysOffRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/masters/{id}/days-off");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_id(&id)?;
    let dates: BTreeSet<NaiveDate> = body.value.dates.into_iter().collect();
    if dates.is_empty() || dates.len() > 366 {
        return Err(ApiError::invalid_field("dates", "give 1 to 366 dates"));
    }
    let done = workflows::add_days_off(&app.platform, &call.context(), id, dates).await;
    Ok(accepted(StatusCode::OK, done))
}
