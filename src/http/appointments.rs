//! Appointments over REST: the service catalog, masters and their hours,
//! availability, booking without double-booking, and the appointment's
//! life (confirm, cancel, reschedule, complete, no-show).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use annals_domain::appointment::availability::{self, Candidate, Reason, Request as SlotRequest};
use annals_domain::appointment::master_day::{
    master_day_id, MasterDay, MasterDayCommand, MasterDayError, Reservation,
};
use annals_domain::appointment::{Appointment, AppointmentCommand, Booking};
use annals_domain::catalog::{Category, CategoryCommand, Service, ServiceCommand, ServiceTerms};
use annals_domain::master::{Master, MasterCommand};
use annals_domain::user::Role;
use annals_domain::values::{weekday_name, Money, TimeRange, WeeklyRange};
use annals_domain::FieldError;
use annals_projections::appointments::{
    timestamp, AppointmentsProjector, CatalogProjector, MastersProjector, APPOINTMENTS, CATALOG,
    MASTERS,
};
use annals_projections::Projector;

use super::command::{CommandHeaderParams, IdempotencyParams};
use super::error::ReadProblems;
use super::page::{by_name, page, Page};
use super::{
    run_command, ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall,
    CommandHeaders, CommandProblems, CommandReply, CommonProblems, JsonBody,
};
use crate::auth::permissions::APPOINTMENT_STAFF;
use crate::auth::Principal;
use crate::platform::{Module, Platform, Services};
use crate::store::{CommandBus, CommandError, CommandOutcome, CommandRequest};

pub struct AppointmentsModule;

impl Module for AppointmentsModule {
    fn name(&self) -> &'static str {
        "appointments"
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(create_category, list_categories))
            .routes(routes!(create_service, list_services))
            .routes(routes!(get_service, update_service))
            .routes(routes!(deactivate_service))
            .routes(routes!(register_master, list_masters))
            .routes(routes!(get_master))
            .routes(routes!(set_working_hours))
            .routes(routes!(add_days_off))
            .routes(routes!(get_availability))
            .routes(routes!(book, list_appointments))
            .routes(routes!(get_appointment))
            .routes(routes!(appointment_history))
            .routes(routes!(cancel))
            .routes(routes!(reschedule))
            .routes(routes!(confirm))
            .routes(routes!(complete))
            .routes(routes!(no_show))
            .routes(routes!(super::dashboards::master_schedule))
            .routes(routes!(super::dashboards::appointment_stats))
            .routes(routes!(super::dashboards::my_dashboard))
    }

    fn install(&self, platform: &Arc<Platform>, services: &mut Services) {
        services.insert(platform.command_bus::<Category>(()));
        services.insert(platform.command_bus::<Service>(()));
        services.insert(platform.command_bus::<Master>(()));
        services.insert(platform.command_bus::<MasterDay>(()));
        services.insert(platform.command_bus::<Appointment>(()));
    }

    fn projectors(&self) -> Vec<Arc<dyn Projector>> {
        vec![
            Arc::new(CatalogProjector),
            Arc::new(MastersProjector),
            Arc::new(AppointmentsProjector),
            Arc::new(annals_projections::statistics::StatisticsProjector),
        ]
    }
}

// ---------------------------------------------------------------- helpers

fn bad_path_id(raw: &str) -> Result<Uuid, ApiError> {
    super::extract::path_uuid("id", raw)
}

async fn execute<A>(
    app: &AppState,
    call: &CommandCall,
    id: &str,
    command: A::Command,
) -> Result<CommandOutcome<A>, CommandError<A::Error>>
where
    A: cqrs_es::Aggregate + Clone + 'static,
    A::Command: Clone,
{
    app.service::<CommandBus<A>>()
        .execute(CommandRequest {
            aggregate_id: id,
            command,
            metadata: call.metadata(),
            expected_version: call.headers.expected_version,
        })
        .await
}

fn principal(caller: &Caller) -> Result<Principal, ApiError> {
    caller.principal().cloned()
}

fn is_staff(p: &Principal) -> bool {
    p.roles.iter().any(|r| APPOINTMENT_STAFF.contains(r))
}

fn parse_time(field: &str, text: &str) -> Result<NaiveTime, FieldError> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S"))
        .map_err(|_| FieldError::new(field, "must be a time like 09:00"))
}

/// An IANA time zone name, documented as the list of zones this server
/// knows (chrono-tz's database), so clients and fuzzers see what is valid.
pub struct TimeZoneName;

impl utoipa::PartialSchema for TimeZoneName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())))
            .description(Some("IANA time zone"))
            .examples(["Europe/Berlin"])
            .into()
    }
}

impl ToSchema for TimeZoneName {}

fn parse_tz(field: &str, text: &str) -> Result<Tz, FieldError> {
    text.parse::<Tz>()
        .map_err(|_| FieldError::new(field, "must be an IANA time zone like Europe/Berlin"))
}

// ---------------------------------------------------------------- catalog

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Hair"})))]
pub struct CategoryRequest {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct CategoryView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub name: String,
}

/// Create a service category.
#[utoipa::path(post, path = "/service-categories", tag = "appointments", security(("bearer" = [])),
    request_body = CategoryRequest, params(IdempotencyParams),
    responses((status = 201, description = "Created", body = CommandAccepted), CommonProblems, CommandProblems,
        super::error::Unauthorized,
        super::error::Forbidden,))]
async fn create_category(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<CategoryRequest>,
) -> Response {
    let call = CommandCall::new(caller, headers, "POST", "/service-categories", body.digest);
    let name = body.value.name;
    run_command(&app, &call, || async {
        let id = Uuid::now_v7();
        let outcome = execute::<Category>(
            &app,
            &call,
            &id.to_string(),
            CategoryCommand::Create { name },
        )
        .await?;
        Ok(CommandReply::accepted(StatusCode::CREATED, &outcome))
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadQuery {
    /// Wait until the read model has applied the log up to here.
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CategoryListQuery {
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 1000)]
    pub cursor: Option<String>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

/// Service categories, by name.
#[utoipa::path(get, path = "/service-categories", tag = "appointments", params(CategoryListQuery),
    responses((status = 200, description = "A page of categories, by name", body = Page<CategoryView>), CommonProblems, ReadProblems))]
async fn list_categories(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<CategoryListQuery>,
) -> Result<Json<Page<CategoryView>>, ApiError> {
    app.platform.wait_for(CATALOG, query.min_position).await?;
    let rows = sqlx::query("SELECT id, name FROM service_categories ORDER BY name, id")
        .fetch_all(&app.platform.db.any)
        .await?;
    let mut out = Vec::new();
    for row in rows {
        out.push(CategoryView {
            id: Uuid::parse_str(&row.try_get::<String, _>("id")?).map_err(ApiError::internal)?,
            name: row.try_get("name")?,
        });
    }
    Ok(Json(page(
        out,
        |c| by_name(&c.name, &c.id),
        query.limit,
        query.cursor.as_deref(),
    )?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Haircut", "description": "Wash, cut, dry", "category_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "duration_minutes": 45, "price": "25.00", "currency": "EUR", "buffer_before_minutes": 0, "buffer_after_minutes": 15})))]
pub struct ServiceRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    #[schema(value_type = String, format = Uuid)]
    pub category_id: Uuid,
    #[schema(minimum = 5, maximum = 720)]
    pub duration_minutes: u32,
    /// A decimal amount with at most 2 places.
    #[schema(example = "25.00", pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub price: String,
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 240)]
    pub buffer_before_minutes: u32,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 240)]
    pub buffer_after_minutes: u32,
    #[schema(max_length = 2000, pattern = "^https?://")]
    pub image_url: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq, Clone)]
pub struct ServiceView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub name: String,
    pub description: String,
    #[schema(value_type = String, format = Uuid)]
    pub category_id: Uuid,
    pub duration_minutes: i64,
    #[schema(example = "25.00")]
    pub price: String,
    pub currency: String,
    pub buffer_before_minutes: i64,
    pub buffer_after_minutes: i64,
    pub image_url: Option<String>,
    pub active: bool,
    pub version: i64,
}

async fn service_terms(app: &AppState, request: ServiceRequest) -> Result<ServiceTerms, ApiError> {
    let mut errors = Vec::new();
    let price = match Money::parse("price", &request.price, request.currency.trim()) {
        Ok(m) => Some(m),
        Err(mut e) => {
            errors.append(&mut e);
            None
        }
    };
    let terms = ServiceTerms {
        name: request.name.trim().to_string(),
        description: request.description,
        category_id: request.category_id,
        duration_minutes: request.duration_minutes,
        price: price.unwrap_or(Money {
            amount: Default::default(),
            currency: "XXX".into(),
        }),
        buffer_before_minutes: request.buffer_before_minutes,
        buffer_after_minutes: request.buffer_after_minutes,
        image_url: request.image_url.filter(|u| !u.trim().is_empty()),
    };
    if let Err(mut more) = terms.check() {
        errors.append(&mut more);
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    // The aggregate, not the read model: a category created a moment ago counts.
    let (category, _) = app
        .service::<CommandBus<Category>>()
        .load(&terms.category_id.to_string())
        .await?;
    if category.name.is_none() {
        return Err(ApiError::unknown_reference(
            "category_id",
            "no such category",
        ));
    }
    Ok(terms)
}

/// Create a service.
#[utoipa::path(post, path = "/services", tag = "appointments", security(("bearer" = [])),
    request_body = ServiceRequest, params(IdempotencyParams),
    responses((status = 201, description = "Created", body = CommandAccepted), CommonProblems, CommandProblems,
        super::error::NotFound,
        super::error::Unauthorized,
        super::error::Forbidden,))]
async fn create_service(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ServiceRequest>,
) -> Response {
    let call = CommandCall::new(caller, headers, "POST", "/services", body.digest);
    let request = body.value;
    run_command(&app, &call, || async {
        let terms = service_terms(&app, request).await?;
        let id = Uuid::now_v7();
        let outcome = execute::<Service>(
            &app,
            &call,
            &id.to_string(),
            ServiceCommand::Create { terms },
        )
        .await?;
        Ok(CommandReply::accepted(StatusCode::CREATED, &outcome))
    })
    .await
}

fn service_view(row: &sqlx::any::AnyRow) -> Result<ServiceView, ApiError> {
    let uuid = |col: &str| -> Result<Uuid, ApiError> {
        Uuid::parse_str(&row.try_get::<String, _>(col)?).map_err(ApiError::internal)
    };
    Ok(ServiceView {
        id: uuid("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        category_id: uuid("category_id")?,
        duration_minutes: row.try_get("duration_minutes")?,
        price: row.try_get("price")?,
        currency: row.try_get("currency")?,
        buffer_before_minutes: row.try_get("buffer_before_minutes")?,
        buffer_after_minutes: row.try_get("buffer_after_minutes")?,
        image_url: row.try_get("image_url")?,
        active: row.try_get::<i64, _>("active")? == 1,
        version: row.try_get("version")?,
    })
}

const SERVICE_COLUMNS: &str =
    "id, name, description, category_id, duration_minutes, price, currency, \
    buffer_before_minutes, buffer_after_minutes, image_url, active, version";

async fn load_service(app: &AppState, id: Uuid) -> Result<Option<ServiceView>, ApiError> {
    let row = sqlx::query(&format!(
        "SELECT {SERVICE_COLUMNS} FROM services WHERE id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(&app.platform.db.any)
    .await?;
    row.as_ref().map(service_view).transpose()
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ServiceListQuery {
    /// Text to find in the name or description (case-insensitive).
    #[param(max_length = 100)]
    pub q: Option<String>,
    pub category_id: Option<Uuid>,
    /// Also list deactivated services.
    pub include_inactive: Option<bool>,
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 1000)]
    pub cursor: Option<String>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

/// The public catalog: active services, with text search and a category filter.
#[utoipa::path(get, path = "/services", tag = "appointments", params(ServiceListQuery),
    responses((status = 200, description = "A page of services, by name", body = Page<ServiceView>), CommonProblems, ReadProblems))]
async fn list_services(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<ServiceListQuery>,
) -> Result<Json<Page<ServiceView>>, ApiError> {
    app.platform.wait_for(CATALOG, query.min_position).await?;
    if query.q.as_ref().is_some_and(|q| q.chars().count() > 100) {
        return Err(ApiError::invalid_field(
            "q",
            "must be at most 100 characters",
        ));
    }
    let pattern = format!(
        "%{}%",
        query
            .q
            .clone()
            .unwrap_or_default()
            .trim()
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let rows = sqlx::query(&format!(
        "SELECT {SERVICE_COLUMNS} FROM services \
         WHERE (LOWER(name) LIKE $1 ESCAPE '\\' OR LOWER(description) LIKE $1 ESCAPE '\\') \
         AND ($2 = '' OR category_id = $2) AND (active = 1 OR $3 = 1) ORDER BY name, id"
    ))
    .bind(pattern)
    .bind(query.category_id.map(|c| c.to_string()).unwrap_or_default())
    .bind(i64::from(query.include_inactive.unwrap_or(false)))
    .fetch_all(&app.platform.db.any)
    .await?;
    let services = rows.iter().map(service_view).collect::<Result<_, _>>()?;
    Ok(Json(page(
        services,
        |s| by_name(&s.name, &s.id),
        query.limit,
        query.cursor.as_deref(),
    )?))
}

/// One service.
#[utoipa::path(get, path = "/services/{id}", tag = "appointments",
    params(("id" = Uuid, Path, description = "The service"), ReadQuery),
    responses((status = 200, description = "The service", body = ServiceView),
        super::error::NotFound,
        CommonProblems, ReadProblems))]
async fn get_service(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<ServiceView>, ApiError> {
    let id = bad_path_id(&id)?;
    app.platform.wait_for(CATALOG, query.min_position).await?;
    load_service(&app, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such service"))
}

/// Change a service (all of it). Appointments keep the terms they were booked with.
#[utoipa::path(put, path = "/services/{id}", tag = "appointments", security(("bearer" = [])),
    request_body = ServiceRequest, params(("id" = Uuid, Path, description = "The service"), CommandHeaderParams),
    responses((status = 200, description = "Changed", body = CommandAccepted),
        super::error::NotFound,
        super::error::Unauthorized,
        super::error::Forbidden,
        CommonProblems, CommandProblems))]
async fn update_service(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ServiceRequest>,
) -> Response {
    let call = CommandCall::new(
        caller,
        headers,
        "PUT",
        &format!("/services/{id}"),
        body.digest,
    );
    let request = body.value;
    run_command(&app, &call, || async {
        let id = bad_path_id(&id)?;
        let terms = service_terms(&app, request).await?;
        let outcome = execute::<Service>(
            &app,
            &call,
            &id.to_string(),
            ServiceCommand::Update { terms },
        )
        .await?;
        Ok(CommandReply::accepted(StatusCode::OK, &outcome))
    })
    .await
}

/// Take a service out of the catalog (existing appointments stay).
#[utoipa::path(post, path = "/services/{id}/deactivate", tag = "appointments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The service"), CommandHeaderParams),
    responses((status = 200, description = "Deactivated (or already)", body = CommandAccepted),
        super::error::NotFound,
        super::error::Unauthorized,
        super::error::Forbidden,
        CommonProblems, CommandProblems))]
async fn deactivate_service(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
) -> Response {
    let call = CommandCall::new(
        caller,
        headers,
        "POST",
        &format!("/services/{id}/deactivate"),
        String::new(),
    );
    run_command(&app, &call, || async {
        let id = bad_path_id(&id)?;
        let outcome =
            execute::<Service>(&app, &call, &id.to_string(), ServiceCommand::Deactivate).await?;
        Ok(CommandReply::accepted(StatusCode::OK, &outcome))
    })
    .await
}

// ---------------------------------------------------------------- masters

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

async fn check_services(app: &AppState, ids: &[Uuid]) -> Result<(), ApiError> {
    for (i, id) in ids.iter().enumerate() {
        let (service, _) = app
            .service::<CommandBus<Service>>()
            .load(&id.to_string())
            .await?;
        if service.terms.is_none() {
            return Err(ApiError::unknown_reference(
                format!("service_ids[{i}]"),
                "no such service",
            ));
        }
    }
    Ok(())
}

/// Make a user with the `master` role a master, with services and weekly hours.
#[utoipa::path(post, path = "/masters", tag = "appointments", security(("bearer" = [])),
    request_body = MasterRequest, params(IdempotencyParams),
    responses((status = 201, description = "Registered; the master's id is the user's", body = CommandAccepted),
        super::error::NotFound,
        super::error::Unauthorized,
        super::error::Forbidden,
        CommonProblems, CommandProblems))]
async fn register_master(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<MasterRequest>,
) -> Response {
    let call = CommandCall::new(caller, headers, "POST", "/masters", body.digest);
    let request = body.value;
    run_command(&app, &call, || async {
        let mut errors = Vec::new();
        let time_zone = parse_tz("time_zone", request.time_zone.trim())
            .map_err(|e| errors.push(e))
            .ok();
        let working_hours = ranges("working_hours", &request.working_hours, &mut errors);
        let breaks = ranges("breaks", &request.breaks, &mut errors);
        let (Some(time_zone), true) = (time_zone, errors.is_empty()) else {
            return Err(ApiError::invalid(errors));
        };
        check_services(&app, &request.service_ids).await?;
        let user = sqlx::query("SELECT roles, active FROM users WHERE id = $1")
            .bind(request.user_id.to_string())
            .fetch_optional(&app.platform.db.any)
            .await?
            .ok_or_else(|| ApiError::unknown_reference("user_id", "no such user"))?;
        let roles: String = user.try_get("roles")?;
        let active = user.try_get::<i64, _>("active")? == 1;
        if !active || !crate::auth::parse_roles(&roles).contains(&Role::Master) {
            let rule = "must be an active user with the master role";
            return Err(
                ApiError::conflict("not-a-master", format!("user_id: {rule}"))
                    .naming("user_id", rule),
            );
        }
        let command = MasterCommand::Register {
            user_id: request.user_id,
            service_ids: request.service_ids.into_iter().collect(),
            time_zone,
            working_hours,
            breaks,
        };
        let outcome = execute::<Master>(&app, &call, &request.user_id.to_string(), command).await?;
        Ok(CommandReply::accepted(StatusCode::CREATED, &outcome))
    })
    .await
}

async fn load_master(app: &AppState, id: Uuid) -> Result<Option<(Master, i64)>, ApiError> {
    let row = sqlx::query("SELECT state, version FROM masters WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&app.platform.db.any)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let master: Master =
        serde_json::from_str(&row.try_get::<String, _>("state")?).map_err(ApiError::internal)?;
    Ok(Some((master, row.try_get("version")?)))
}

fn master_view(id: Uuid, master: &Master, version: i64) -> MasterView {
    MasterView {
        id,
        time_zone: master.time_zone.name().to_string(),
        service_ids: master.service_ids.iter().copied().collect(),
        working_hours: range_bodies(&master.working_hours),
        breaks: range_bodies(&master.breaks),
        days_off: master.days_off.iter().copied().collect(),
        version,
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
async fn list_masters(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<MasterListQuery>,
) -> Result<Json<Page<MasterView>>, ApiError> {
    app.platform.wait_for(MASTERS, query.min_position).await?;
    let masters = masters_for(&app, query.service_id).await?;
    let views = masters
        .iter()
        .map(|(id, m, v)| master_view(*id, m, *v))
        .collect();
    Ok(Json(page(
        views,
        |m| m.id.to_string(),
        query.limit,
        query.cursor.as_deref(),
    )?))
}

async fn masters_for(
    app: &AppState,
    service: Option<Uuid>,
) -> Result<Vec<(Uuid, Master, i64)>, ApiError> {
    let filter = service
        .map(|s| format!("%,{s},%"))
        .unwrap_or_else(|| "%".into());
    let rows =
        sqlx::query("SELECT id, state, version FROM masters WHERE service_ids LIKE $1 ORDER BY id")
            .bind(filter)
            .fetch_all(&app.platform.db.any)
            .await?;
    let mut out = Vec::new();
    for row in rows {
        let id = Uuid::parse_str(&row.try_get::<String, _>("id")?).map_err(ApiError::internal)?;
        let master: Master = serde_json::from_str(&row.try_get::<String, _>("state")?)
            .map_err(ApiError::internal)?;
        out.push((id, master, row.try_get("version")?));
    }
    Ok(out)
}

/// One master.
#[utoipa::path(get, path = "/masters/{id}", tag = "appointments",
    params(("id" = Uuid, Path, description = "The master"), ReadQuery),
    responses((status = 200, description = "The master", body = MasterView),
        super::error::NotFound,
        CommonProblems, ReadProblems))]
async fn get_master(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<MasterView>, ApiError> {
    let id = bad_path_id(&id)?;
    app.platform.wait_for(MASTERS, query.min_position).await?;
    let (master, version) = load_master(&app, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such master"))?;
    Ok(Json(master_view(id, &master, version)))
}

/// Replace a master's weekly working hours and breaks.
#[utoipa::path(put, path = "/masters/{id}/working-hours", tag = "appointments", security(("bearer" = [])),
    request_body = WorkingHoursRequest, params(("id" = Uuid, Path, description = "The master"), CommandHeaderParams),
    responses((status = 200, description = "Set", body = CommandAccepted),
        super::error::NotFound,
        super::error::Unauthorized,
        super::error::Forbidden,
        CommonProblems, CommandProblems))]
async fn set_working_hours(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<WorkingHoursRequest>,
) -> Response {
    let call = CommandCall::new(
        caller,
        headers,
        "PUT",
        &format!("/masters/{id}/working-hours"),
        body.digest,
    );
    let request = body.value;
    run_command(&app, &call, || async {
        let id = bad_path_id(&id)?;
        let mut errors = Vec::new();
        let working_hours = ranges("working_hours", &request.working_hours, &mut errors);
        let breaks = ranges("breaks", &request.breaks, &mut errors);
        if !errors.is_empty() {
            return Err(ApiError::invalid(errors));
        }
        let outcome = execute::<Master>(
            &app,
            &call,
            &id.to_string(),
            MasterCommand::SetWorkingHours {
                working_hours,
                breaks,
            },
        )
        .await?;
        Ok(CommandReply::accepted(StatusCode::OK, &outcome))
    })
    .await
}

/// Add days off (dates in the master's time zone).
#[utoipa::path(post, path = "/masters/{id}/days-off", tag = "appointments", security(("bearer" = [])),
    request_body = DaysOffRequest, params(("id" = Uuid, Path, description = "The master"), CommandHeaderParams),
    responses((status = 200, description = "Added", body = CommandAccepted),
        super::error::NotFound,
        super::error::Unauthorized,
        super::error::Forbidden,
        CommonProblems, CommandProblems))]
async fn add_days_off(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<DaysOffRequest>,
) -> Response {
    let call = CommandCall::new(
        caller,
        headers,
        "POST",
        &format!("/masters/{id}/days-off"),
        body.digest,
    );
    let dates: BTreeSet<NaiveDate> = body.value.dates.into_iter().collect();
    run_command(&app, &call, || async {
        let id = bad_path_id(&id)?;
        if dates.is_empty() || dates.len() > 366 {
            return Err(ApiError::invalid_field("dates", "give 1 to 366 dates"));
        }
        let outcome = execute::<Master>(
            &app,
            &call,
            &id.to_string(),
            MasterCommand::AddDaysOff { dates },
        )
        .await?;
        Ok(CommandReply::accepted(StatusCode::OK, &outcome))
    })
    .await
}

// ---------------------------------------------------------------- availability

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AvailabilityQuery {
    pub service_id: Uuid,
    /// The day, read in `tz` (default: the business time zone).
    #[param(value_type = String, format = Date, example = "2026-05-04")]
    pub date: NaiveDate,
    /// Only this master (default: every master who performs the service).
    pub master_id: Option<Uuid>,
    /// IANA time zone for `date` and the answer's times.
    #[param(value_type = Option<TimeZoneName>)]
    pub tz: Option<String>,
    /// Also list the candidate slots that are not free, and why.
    pub explain: Option<bool>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct SlotView {
    #[schema(value_type = String, format = DateTime)]
    pub start: String,
    #[schema(value_type = String, format = DateTime)]
    pub end: String,

    pub master_ids: Vec<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct UnavailableView {
    #[schema(value_type = String, format = DateTime)]
    pub start: String,
    #[schema(value_type = String, format = Uuid)]
    pub master_id: Uuid,
    /// in_the_past, too_soon, day_off, outside_working_hours, break,
    /// taken_by_appointment, buffer_of_appointment
    #[schema(value_type = String, example = "taken_by_appointment")]
    pub reason: Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub appointment_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct AvailabilityView {
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    pub time_zone: String,
    pub slots: Vec<SlotView>,
    /// Only with `explain=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<Vec<UnavailableView>>,
}

/// Booked intervals (with buffers) of masters around `[from, to)`.
async fn booked(
    app: &AppState,
    master_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(Uuid, Reservation)>, ApiError> {
    let rows = sqlx::query(
        "SELECT id, start_at, end_at, block_start, block_end FROM appointments \
         WHERE master_id = $1 AND status IN ('booked', 'confirmed') AND block_end > $2 AND block_start < $3",
    )
    .bind(master_id.to_string())
    .bind(timestamp(from))
    .bind(timestamp(to))
    .fetch_all(&app.platform.db.any)
    .await?;
    let mut out = Vec::new();
    for row in rows {
        let time = |col: &str| -> Result<DateTime<Utc>, ApiError> {
            let text: String = row.try_get(col)?;
            DateTime::parse_from_rfc3339(&text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(ApiError::internal)
        };
        let id = Uuid::parse_str(&row.try_get::<String, _>("id")?).map_err(ApiError::internal)?;
        out.push((
            id,
            Reservation {
                start: time("start_at")?,
                end: time("end_at")?,
                block_start: time("block_start")?,
                block_end: time("block_end")?,
            },
        ));
    }
    Ok(out)
}

fn slot_request(app: &AppState, service: &ServiceView, date: NaiveDate, tz: Tz) -> SlotRequest {
    let settings = &app.platform.settings;
    SlotRequest {
        date,
        time_zone: tz,
        duration: Duration::minutes(service.duration_minutes),
        buffer_before: Duration::minutes(service.buffer_before_minutes),
        buffer_after: Duration::minutes(service.buffer_after_minutes),
        step: Duration::minutes(settings.slot_step_minutes),
        min_notice: Duration::minutes(settings.min_notice_minutes),
        now: Utc::now(),
    }
}

/// The masters who may take a service (one, if named), with their state.
async fn candidates_for(
    app: &AppState,
    service_id: Uuid,
    master_id: Option<Uuid>,
) -> Result<Vec<(Uuid, Master)>, ApiError> {
    let masters = masters_for(app, Some(service_id)).await?;
    let chosen: Vec<(Uuid, Master)> = masters
        .into_iter()
        .filter(|(id, _, _)| master_id.is_none_or(|m| m == *id))
        .map(|(id, m, _)| (id, m))
        .collect();
    if let Some(m) = master_id {
        if chosen.is_empty() {
            return Err(ApiError::invalid_field(
                "master_id",
                format!("{m} is not a master who performs this service"),
            ));
        }
    }
    Ok(chosen)
}

/// The free slots of a day and, with `explain=true`, why the others are not.
#[utoipa::path(get, path = "/availability", tag = "appointments", params(AvailabilityQuery),
    responses((status = 200, description = "Free slots with the masters who can take each", body = AvailabilityView),
        super::error::NotFound,
        CommonProblems, ReadProblems))]
async fn get_availability(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<AvailabilityQuery>,
) -> Result<Json<AvailabilityView>, ApiError> {
    app.platform
        .wait_for(APPOINTMENTS, query.min_position)
        .await?;
    let tz = match &query.tz {
        None => app.platform.settings.timezone,
        Some(text) => parse_tz("tz", text.trim()).map_err(|e| ApiError::invalid(vec![e]))?,
    };
    let service = load_service(&app, query.service_id)
        .await?
        .filter(|s| s.active)
        .ok_or_else(|| ApiError::not_found("no such service in the catalog"))?;
    let masters = candidates_for(&app, query.service_id, query.master_id).await?;
    let request = slot_request(&app, &service, query.date, tz);
    let (day_start, day_end) = availability::day_bounds(tz, query.date);
    let mut candidates = Vec::new();
    for (id, master) in &masters {
        let around = booked(
            &app,
            *id,
            day_start - Duration::days(1),
            day_end + Duration::days(1),
        )
        .await?;
        candidates.push(Candidate {
            master_id: *id,
            master,
            booked: around,
        });
    }
    let result = availability::availability(&request, &candidates);
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).to_rfc3339();
    Ok(Json(AvailabilityView {
        date: query.date,
        time_zone: tz.name().to_string(),
        slots: result
            .slots
            .iter()
            .map(|s| SlotView {
                start: local(s.start),
                end: local(s.end),
                master_ids: s.master_ids.clone(),
            })
            .collect(),
        unavailable: query.explain.unwrap_or(false).then(|| {
            result
                .unavailable
                .iter()
                .map(|u| UnavailableView {
                    start: local(u.start),
                    master_id: u.master_id,
                    reason: u.reason,
                    appointment_id: u.appointment_id,
                })
                .collect()
        }),
    }))
}

// ---------------------------------------------------------------- appointments

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"service_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "start": "2026-05-04T10:00:00+02:00", "note": "first visit"})))]
pub struct BookRequest {
    #[schema(value_type = String, format = Uuid)]
    pub service_id: Uuid,
    /// Omit for any master who is free.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub master_id: Option<Uuid>,
    /// RFC 3339 with offset.
    #[schema(value_type = String, format = DateTime)]
    pub start: DateTime<Utc>,
    /// Staff booking for a client; clients book for themselves.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub client_id: Option<Uuid>,
    #[schema(max_length = 2000)]
    pub note: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BookedView {
    #[serde(flatten)]
    pub accepted: CommandAccepted,
    #[schema(example = "booked")]
    pub status: String,
    #[schema(value_type = String, format = Uuid)]
    pub master_id: Uuid,
    #[schema(value_type = String, format = DateTime)]
    pub start: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub end: DateTime<Utc>,
}

fn unavailable(reason: Reason) -> ApiError {
    let (slug, detail) = match reason {
        Reason::TakenByAppointment | Reason::BufferOfAppointment => {
            ("slot-taken", "the master is booked at that time")
        }
        Reason::InThePast => ("slot-unavailable", "the start is in the past"),
        Reason::TooSoon => (
            "slot-unavailable",
            "the start is sooner than the minimum notice",
        ),
        Reason::DayOff => ("slot-unavailable", "the master has the day off"),
        Reason::OutsideWorkingHours => ("slot-unavailable", "outside the master's working hours"),
        Reason::Break => ("slot-unavailable", "during the master's break"),
    };
    ApiError::conflict(slug, detail)
}

/// Reserves the interval on the master's day; the reservation that loses a
/// race gets `SlotTaken`.
async fn reserve(
    app: &AppState,
    call: &CommandCall,
    master: &Master,
    master_id: Uuid,
    appointment_id: Uuid,
    reservation: Reservation,
) -> Result<Option<i64>, ApiError> {
    let day = reservation
        .start
        .with_timezone(&master.time_zone)
        .date_naive();
    let day_id = master_day_id(master_id, day);
    let mut reclaimed = false;
    loop {
        let command = MasterDayCommand::Reserve {
            appointment_id,
            reservation,
        };
        match execute::<MasterDay>(app, call, &day_id, command).await {
            Ok(outcome) => return Ok(Some(outcome.position)),
            Err(CommandError::Rejected(MasterDayError::SlotTaken { by })) => {
                if reclaimed || !orphaned(app, &day_id, by).await? {
                    return Ok(None);
                }
                // A booking that crashed between reserving and booking left
                // this interval behind: give it back, then try again.
                tracing::warn!(appointment = %by, day = %day_id, "releasing an orphaned reservation");
                let release = MasterDayCommand::Release { appointment_id: by };
                execute::<MasterDay>(app, call, &day_id, release).await?;
                reclaimed = true;
            }
            // Many concurrent bookings on one day: the losers of the
            // retries lost the slot too.
            Err(CommandError::Conflict { .. }) => return Ok(None),
            Err(other) => return Err(other.into()),
        }
    }
}

/// How long a reservation may wait for its appointment before it counts as
/// left behind by a crash (well beyond the longest request).
const ORPHAN_AFTER: Duration = Duration::minutes(2);

/// Whether the reservation of `appointment_id` on `day_id` has no
/// appointment and is old enough that none is coming.
async fn orphaned(app: &AppState, day_id: &str, appointment_id: Uuid) -> Result<bool, ApiError> {
    let (appointment, _) = app
        .service::<CommandBus<Appointment>>()
        .load(&appointment_id.to_string())
        .await?;
    if appointment.booking.is_some() {
        return Ok(false);
    }
    let history = app
        .platform
        .log
        .aggregate_history(<MasterDay as cqrs_es::Aggregate>::TYPE, day_id)
        .await?;
    let reserved_at = history
        .iter()
        .rev()
        .find(|e| {
            e.event_type == "MasterTimeReserved"
                && e.payload_body()["appointment_id"] == serde_json::json!(appointment_id)
        })
        .map(|e| e.recorded_at);
    Ok(reserved_at.is_some_and(|at| Utc::now() - at > ORPHAN_AFTER))
}

async fn release(
    app: &AppState,
    call: &CommandCall,
    master: &Master,
    master_id: Uuid,
    appointment_id: Uuid,
    start: DateTime<Utc>,
) -> Result<i64, ApiError> {
    let day = start.with_timezone(&master.time_zone).date_naive();
    let outcome = execute::<MasterDay>(
        app,
        call,
        &master_day_id(master_id, day),
        MasterDayCommand::Release { appointment_id },
    )
    .await?;
    Ok(outcome.position)
}

fn reservation_for(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    before: u32,
    after: u32,
) -> Reservation {
    Reservation {
        start,
        end,
        block_start: start - Duration::minutes(i64::from(before)),
        block_end: end + Duration::minutes(i64::from(after)),
    }
}

/// Book an appointment. A taken slot is 409; with no master named, any
/// free master who performs the service is chosen.
#[utoipa::path(post, path = "/appointments", tag = "appointments", security(("bearer" = [])),
    request_body = BookRequest, params(IdempotencyParams),
    responses((status = 201, description = "Booked", body = BookedView),
        super::error::Unauthorized,
        super::error::Forbidden,
        super::error::NotFound,
        CommonProblems, CommandProblems))]
async fn book(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<BookRequest>,
) -> Response {
    let me = match principal(&caller) {
        Ok(me) => me,
        Err(err) => return err.into_response(),
    };
    let call = CommandCall::new(caller, headers, "POST", "/appointments", body.digest);
    let request = body.value;
    run_command(&app, &call, || async {
        let client_id = match request.client_id {
            Some(client) if client != me.user_id && !is_staff(&me) => {
                return Err(crate::auth::forbidden("only staff book for other clients"))
            }
            Some(client) => client,
            None => me.user_id,
        };
        let service = load_service(&app, request.service_id)
            .await?
            .filter(|s| s.active)
            .ok_or_else(|| ApiError::not_found("no such service in the catalog"))?;
        let start = request.start;
        let end = start + Duration::minutes(service.duration_minutes);
        let (before, after) = (
            service.buffer_before_minutes as u32,
            service.buffer_after_minutes as u32,
        );
        let masters = candidates_for(&app, request.service_id, request.master_id).await?;
        if masters.is_empty() {
            return Err(ApiError::conflict(
                "slot-unavailable",
                "no master performs this service",
            ));
        }
        let price = Money::parse("price", &service.price, &service.currency)
            .map_err(|_| ApiError::internal("stored price unreadable"))?;
        let id = Uuid::now_v7();
        let wanted = reservation_for(start, end, before, after);
        let mut refusal = Reason::TakenByAppointment;
        for (master_id, master) in &masters {
            let local_date = start
                .with_timezone(&app.platform.settings.timezone)
                .date_naive();
            let request_rules =
                slot_request(&app, &service, local_date, app.platform.settings.timezone);
            // The hours, breaks and notice rules; whether the time is taken
            // is the master's day aggregate's decision (the read model may
            // lag behind a cancel or reschedule).
            let candidate = Candidate {
                master_id: *master_id,
                master,
                booked: Vec::new(),
            };
            if let Some((reason, _)) =
                availability::check_slot(&request_rules, &candidate, start, end)
            {
                refusal = reason;
                continue;
            }
            if reserve(&app, &call, master, *master_id, id, wanted)
                .await?
                .is_none()
            {
                refusal = Reason::TakenByAppointment;
                continue;
            }
            let booking = Booking {
                client_id,
                master_id: *master_id,
                service_id: request.service_id,
                start,
                end,
                price: price.clone(),
                buffer_before_minutes: before,
                buffer_after_minutes: after,
                note: request.note.clone().filter(|n| !n.trim().is_empty()),
            };
            let booked = execute::<Appointment>(
                &app,
                &call,
                &id.to_string(),
                AppointmentCommand::Book(booking),
            )
            .await;
            let outcome = match booked {
                Ok(outcome) => outcome,
                Err(err) => {
                    // Give the time back; the booking did not happen.
                    let _ = release(&app, &call, master, *master_id, id, start).await;
                    return Err(err.into());
                }
            };
            let body = BookedView {
                accepted: CommandAccepted::from(&outcome),
                status: "booked".into(),
                master_id: *master_id,
                start,
                end,
            };
            return Ok(CommandReply::new(
                StatusCode::CREATED,
                body,
                outcome.version,
            ));
        }
        Err(unavailable(refusal))
    })
    .await
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq, Clone)]
pub struct AppointmentView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub client_id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub master_id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub service_id: Uuid,
    #[schema(value_type = String, format = DateTime)]
    pub start: String,
    #[schema(value_type = String, format = DateTime)]
    pub end: String,
    #[schema(example = "booked")]
    pub status: String,
    #[schema(example = "25.00")]
    pub price: String,
    pub currency: String,
    pub note: Option<String>,
    pub version: i64,
}

const APPOINTMENT_COLUMNS: &str = "id, client_id, master_id, service_id, start_at, end_at, status, price, currency, note, version";

pub(crate) fn appointment_view(row: &sqlx::any::AnyRow) -> Result<AppointmentView, ApiError> {
    let uuid = |col: &str| -> Result<Uuid, ApiError> {
        Uuid::parse_str(&row.try_get::<String, _>(col)?).map_err(ApiError::internal)
    };
    Ok(AppointmentView {
        id: uuid("id")?,
        client_id: uuid("client_id")?,
        master_id: uuid("master_id")?,
        service_id: uuid("service_id")?,
        start: row.try_get("start_at")?,
        end: row.try_get("end_at")?,
        status: row.try_get("status")?,
        price: row.try_get("price")?,
        currency: row.try_get("currency")?,
        note: row.try_get("note")?,
        version: row.try_get("version")?,
    })
}

/// Whether `me` may see an appointment: staff all, a master theirs, a
/// client theirs.
fn visible(me: &Principal, client_id: Uuid, master_id: Uuid) -> bool {
    is_staff(me) || client_id == me.user_id || (me.has(Role::Master) && master_id == me.user_id)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AppointmentListQuery {
    /// Appointments starting at or after this instant.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<DateTime<Utc>>,
    /// Appointments starting before this instant.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<DateTime<Utc>>,
    pub master_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    #[param(pattern = "^(booked|confirmed|cancelled|completed|no_show)$")]
    pub status: Option<String>,
    pub service_id: Option<Uuid>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    #[param(max_length = 200)]
    pub cursor: Option<String>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AppointmentPage {
    pub items: Vec<AppointmentView>,
    pub next_cursor: Option<String>,
}

/// Appointments by start time: staff see all, masters their own, clients their own.
#[utoipa::path(get, path = "/appointments", tag = "appointments", security(("bearer" = [])), params(AppointmentListQuery),
    responses((status = 200, description = "A page of appointments", body = AppointmentPage),
        super::error::Unauthorized,
        CommonProblems, ReadProblems))]
async fn list_appointments(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AppointmentListQuery>,
) -> Result<Json<AppointmentPage>, ApiError> {
    let me = principal(&caller)?;
    app.platform
        .wait_for(APPOINTMENTS, query.min_position)
        .await?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "must be from 1 to 200"));
    }
    if let Some(status) = &query.status {
        if !["booked", "confirmed", "cancelled", "completed", "no_show"].contains(&status.as_str())
        {
            return Err(ApiError::invalid_field(
                "status",
                "must be booked, confirmed, cancelled, completed or no_show",
            ));
        }
    }
    // Who may see what narrows the filters.
    let (client, master) = if is_staff(&me) {
        (query.client_id, query.master_id)
    } else if me.has(Role::Master) && query.client_id != Some(me.user_id) {
        (query.client_id, Some(me.user_id))
    } else {
        (Some(me.user_id), query.master_id)
    };
    if query
        .cursor
        .as_ref()
        .is_some_and(|c| c.chars().count() > 200)
    {
        return Err(ApiError::invalid_field(
            "cursor",
            "must be at most 200 characters",
        ));
    }
    let after = query
        .cursor
        .as_deref()
        .and_then(|c| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let rows = sqlx::query(&format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments \
         WHERE ($1 = '' OR client_id = $1) AND ($2 = '' OR master_id = $2) AND ($3 = '' OR status = $3) \
         AND ($4 = '' OR service_id = $4) AND start_at >= $5 AND start_at < $6 AND (start_at || '|' || id) > $7 \
         ORDER BY start_at, id LIMIT $8"
    ))
    .bind(client.map(|c| c.to_string()).unwrap_or_default())
    .bind(master.map(|m| m.to_string()).unwrap_or_default())
    .bind(query.status.unwrap_or_default())
    .bind(query.service_id.map(|s| s.to_string()).unwrap_or_default())
    .bind(query.from.map(timestamp).unwrap_or_default())
    .bind(query.to.map(timestamp).unwrap_or_else(|| "9999".into()))
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(&app.platform.db.any)
    .await?;
    let mut items: Vec<AppointmentView> = rows
        .iter()
        .map(appointment_view)
        .collect::<Result<_, _>>()?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|a| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}|{}", a.start, a.id))
        })
    } else {
        None
    };
    Ok(Json(AppointmentPage { items, next_cursor }))
}

async fn visible_appointment(
    app: &AppState,
    me: &Principal,
    id: Uuid,
) -> Result<AppointmentView, ApiError> {
    let row = sqlx::query(&format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(&app.platform.db.any)
    .await?;
    let view = row.as_ref().map(appointment_view).transpose()?;
    view.filter(|a| visible(me, a.client_id, a.master_id))
        .ok_or_else(|| ApiError::not_found("no such appointment"))
}

/// One appointment (404 if it is not yours to see).
#[utoipa::path(get, path = "/appointments/{id}", tag = "appointments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The appointment"), ReadQuery),
    responses((status = 200, description = "The appointment", body = AppointmentView),
        super::error::Unauthorized,
        super::error::NotFound,
        CommonProblems, ReadProblems))]
async fn get_appointment(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<AppointmentView>, ApiError> {
    let me = principal(&caller)?;
    let id = bad_path_id(&id)?;
    app.platform
        .wait_for(APPOINTMENTS, query.min_position)
        .await?;
    Ok(Json(visible_appointment(&app, &me, id).await?))
}

#[derive(Serialize, ToSchema)]
pub struct HistoryEntry {
    pub position: i64,
    pub version: i64,
    #[schema(example = "AppointmentRescheduled")]
    pub event_type: String,
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: DateTime<Utc>,
    /// Who: `{kind: "user", user_id, roles}`, `{kind: "cli"}`, ...
    #[schema(value_type = Object)]
    pub actor: serde_json::Value,
    /// What changed (for a reschedule: from and to).
    #[schema(value_type = Object)]
    pub change: serde_json::Value,
}

/// Every event of an appointment, with who and when.
#[utoipa::path(get, path = "/appointments/{id}/history", tag = "appointments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The appointment")),
    responses((status = 200, description = "Oldest first", body = Vec<HistoryEntry>),
        super::error::Unauthorized,
        super::error::NotFound,
        CommonProblems))]
async fn appointment_history(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let me = principal(&caller)?;
    let id = bad_path_id(&id)?;
    let events = app
        .platform
        .log
        .aggregate_history(<Appointment as cqrs_es::Aggregate>::TYPE, &id.to_string())
        .await?;
    let Some(first) = events.first() else {
        return Err(ApiError::not_found("no such appointment"));
    };
    let booked: Booking =
        serde_json::from_value(first.payload_body().clone()).map_err(ApiError::internal)?;
    if !visible(&me, booked.client_id, booked.master_id) {
        return Err(ApiError::not_found("no such appointment"));
    }
    Ok(Json(
        events
            .iter()
            .map(|e| HistoryEntry {
                position: e.position,
                version: e.sequence,
                event_type: e.event_type.clone(),
                recorded_at: e.recorded_at,
                actor: serde_json::to_value(e.meta().actor).unwrap_or_default(),
                change: e.payload_body().clone(),
            })
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"reason": "I am ill"})))]
pub struct CancelRequest {
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"start": "2026-05-04T15:00:00+02:00"})))]
pub struct RescheduleRequest {
    #[schema(value_type = String, format = DateTime)]
    pub start: DateTime<Utc>,
    /// Another master (default: the same).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub master_id: Option<Uuid>,
}

/// The appointment as the aggregate has it, if `me` may act on it.
async fn load_for(
    app: &AppState,
    me: &Principal,
    id: Uuid,
) -> Result<(Appointment, Booking), ApiError> {
    let (state, _) = app
        .service::<CommandBus<Appointment>>()
        .load(&id.to_string())
        .await?;
    let booking = state
        .booking
        .clone()
        .ok_or_else(|| ApiError::not_found("no such appointment"))?;
    if !visible(me, booking.client_id, booking.master_id) {
        return Err(ApiError::not_found("no such appointment"));
    }
    Ok((state, booking))
}

async fn master_state(app: &AppState, id: Uuid) -> Result<Master, ApiError> {
    let (state, _) = app
        .service::<CommandBus<Master>>()
        .load(&id.to_string())
        .await?;
    Ok(state)
}

/// Cancel (owner or staff, with a reason). Clients may cancel only until
/// the notice period before the start.
#[utoipa::path(post, path = "/appointments/{id}/cancel", tag = "appointments", security(("bearer" = [])),
    request_body = CancelRequest, params(("id" = Uuid, Path, description = "The appointment"), CommandHeaderParams),
    responses((status = 200, description = "Cancelled; the time is free again", body = CommandAccepted),
        super::error::Unauthorized,
        super::error::NotFound,
        CommonProblems, CommandProblems))]
async fn cancel(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: CommandHeaders,
    body: JsonBody<CancelRequest>,
) -> Response {
    let me = match principal(&caller) {
        Ok(me) => me,
        Err(err) => return err.into_response(),
    };
    let call = CommandCall::new(
        caller,
        headers,
        "POST",
        &format!("/appointments/{id}/cancel"),
        body.digest,
    );
    let reason = body.value.reason;
    run_command(&app, &call, || async {
        let id = bad_path_id(&id)?;
        let (_, booking) = load_for(&app, &me, id).await?;
        let acts_as_staff =
            is_staff(&me) || (me.has(Role::Master) && booking.master_id == me.user_id);
        let by_client = !acts_as_staff;
        let command = AppointmentCommand::Cancel {
            reason,
            by_client,
            now: Utc::now(),
            client_notice_minutes: app.platform.settings.cancel_notice_minutes,
        };
        let outcome = execute::<Appointment>(&app, &call, &id.to_string(), command).await?;
        let master = master_state(&app, booking.master_id).await?;
        let position = release(&app, &call, &master, booking.master_id, id, booking.start).await?;
        let mut accepted = CommandAccepted::from(&outcome);
        accepted.position = accepted.position.max(position);
        Ok(CommandReply::new(StatusCode::OK, accepted, outcome.version))
    })
    .await
}

/// Move to a new start (and optionally another master); the same checks as
/// booking. The appointment keeps its id; the history records from and to.
#[utoipa::path(post, path = "/appointments/{id}/reschedule", tag = "appointments", security(("bearer" = [])),
    request_body = RescheduleRequest, params(("id" = Uuid, Path, description = "The appointment"), CommandHeaderParams),
    responses((status = 200, description = "Rescheduled", body = BookedView),
        super::error::Unauthorized,
        super::error::NotFound,
        CommonProblems, CommandProblems))]
async fn reschedule(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: CommandHeaders,
    body: JsonBody<RescheduleRequest>,
) -> Response {
    let me = match principal(&caller) {
        Ok(me) => me,
        Err(err) => return err.into_response(),
    };
    let call = CommandCall::new(
        caller,
        headers,
        "POST",
        &format!("/appointments/{id}/reschedule"),
        body.digest,
    );
    let request = body.value;
    run_command(&app, &call, || async {
        let id = bad_path_id(&id)?;
        let (state, booking) = load_for(&app, &me, id).await?;
        if !matches!(
            state.status,
            Some(
                annals_domain::appointment::Status::Booked
                    | annals_domain::appointment::Status::Confirmed
            )
        ) {
            // Let the aggregate name the state.
            let outcome = execute::<Appointment>(
                &app,
                &call,
                &id.to_string(),
                AppointmentCommand::Reschedule {
                    start: request.start,
                    end: request.start + (booking.end - booking.start),
                    master_id: booking.master_id,
                },
            )
            .await?;
            return Ok(CommandReply::accepted(StatusCode::OK, &outcome));
        }
        let master_id = request.master_id.unwrap_or(booking.master_id);
        let masters = candidates_for(&app, booking.service_id, Some(master_id)).await?;
        let (_, master) = masters
            .first()
            .ok_or_else(|| ApiError::invalid_field("master_id", "not a master of this service"))?;
        let start = request.start;
        let end = start + (booking.end - booking.start);
        let service = load_service(&app, booking.service_id)
            .await?
            .ok_or_else(|| ApiError::not_found("the service is gone"))?;
        let rules = slot_request(
            &app,
            &service,
            start.date_naive(),
            app.platform.settings.timezone,
        );
        // Taken or not is decided by the master's day aggregate below.
        let candidate = Candidate {
            master_id,
            master,
            booked: Vec::new(),
        };
        if let Some((reason, _)) = availability::check_slot(&rules, &candidate, start, end) {
            return Err(unavailable(reason));
        }
        let wanted = reservation_for(
            start,
            end,
            booking.buffer_before_minutes,
            booking.buffer_after_minutes,
        );
        if reserve(&app, &call, master, master_id, id, wanted)
            .await?
            .is_none()
        {
            return Err(unavailable(Reason::TakenByAppointment));
        }
        let old_master = master_state(&app, booking.master_id).await?;
        let old_day = master_day_id(
            booking.master_id,
            booking
                .start
                .with_timezone(&old_master.time_zone)
                .date_naive(),
        );
        let new_day = master_day_id(
            master_id,
            start.with_timezone(&master.time_zone).date_naive(),
        );
        let command = AppointmentCommand::Reschedule {
            start,
            end,
            master_id,
        };
        let outcome = match execute::<Appointment>(&app, &call, &id.to_string(), command).await {
            Ok(outcome) => outcome,
            Err(err) => {
                // Undo the reservation: free the new time, or put the old
                // interval back if it was replaced on the same day.
                if new_day != old_day {
                    let _ = release(&app, &call, master, master_id, id, start).await;
                } else {
                    let old = reservation_for(
                        booking.start,
                        booking.end,
                        booking.buffer_before_minutes,
                        booking.buffer_after_minutes,
                    );
                    let _ = reserve(&app, &call, master, master_id, id, old).await;
                }
                return Err(err.into());
            }
        };
        let mut accepted = CommandAccepted::from(&outcome);
        if new_day != old_day {
            let position = release(
                &app,
                &call,
                &old_master,
                booking.master_id,
                id,
                booking.start,
            )
            .await?;
            accepted.position = accepted.position.max(position);
        }
        let status = outcome
            .state
            .status
            .map(|s| s.as_str())
            .unwrap_or("booked")
            .to_string();
        let version = outcome.version;
        Ok(CommandReply::new(
            StatusCode::OK,
            BookedView {
                accepted,
                status,
                master_id,
                start,
                end,
            },
            version,
        ))
    })
    .await
}

async fn process(
    app: AppState,
    caller: Caller,
    headers: CommandHeaders,
    id: String,
    action: &str,
    command: AppointmentCommand,
) -> Response {
    let me = match principal(&caller) {
        Ok(me) => me,
        Err(err) => return err.into_response(),
    };
    let call = CommandCall::new(
        caller,
        headers,
        "POST",
        &format!("/appointments/{id}/{action}"),
        String::new(),
    );
    run_command(&app, &call, || async {
        let id = bad_path_id(&id)?;
        load_for(&app, &me, id).await?;
        let outcome = execute::<Appointment>(&app, &call, &id.to_string(), command).await?;
        Ok(CommandReply::accepted(StatusCode::OK, &outcome))
    })
    .await
}

/// Confirm a booked appointment (staff; masters their own).
#[utoipa::path(post, path = "/appointments/{id}/confirm", tag = "appointments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The appointment"), CommandHeaderParams),
    responses((status = 200, description = "Confirmed", body = CommandAccepted),
        super::error::Unauthorized,
        super::error::Forbidden,
        super::error::NotFound,
        CommonProblems, CommandProblems))]
async fn confirm(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: CommandHeaders,
) -> Response {
    process(
        app,
        caller,
        headers,
        id,
        "confirm",
        AppointmentCommand::Confirm,
    )
    .await
}

/// Mark a confirmed appointment completed (staff; masters their own).
#[utoipa::path(post, path = "/appointments/{id}/complete", tag = "appointments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The appointment"), CommandHeaderParams),
    responses((status = 200, description = "Completed", body = CommandAccepted),
        super::error::Unauthorized,
        super::error::Forbidden,
        super::error::NotFound,
        CommonProblems, CommandProblems))]
async fn complete(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: CommandHeaders,
) -> Response {
    process(
        app,
        caller,
        headers,
        id,
        "complete",
        AppointmentCommand::Complete,
    )
    .await
}

/// Mark a confirmed appointment as a no-show (staff; masters their own).
#[utoipa::path(post, path = "/appointments/{id}/no-show", tag = "appointments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The appointment"), CommandHeaderParams),
    responses((status = 200, description = "Marked", body = CommandAccepted),
        super::error::Unauthorized,
        super::error::Forbidden,
        super::error::NotFound,
        CommonProblems, CommandProblems))]
async fn no_show(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: CommandHeaders,
) -> Response {
    process(
        app,
        caller,
        headers,
        id,
        "no-show",
        AppointmentCommand::MarkNoShow,
    )
    .await
}
