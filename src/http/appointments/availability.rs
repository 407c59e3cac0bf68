//! Availability: the free slots of a day, and why the others are not.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use annals_domain::appointment::availability::{self, Candidate, Reason};
use annals_projections::appointments::queries;
use annals_projections::appointments::{APPOINTMENTS, CATALOG, MASTERS};

use super::super::error::ReadProblems;
use super::super::{ApiError, ApiQuery, AppState, Caller, CommonProblems};
use super::{parse_tz, TimeZoneName};
use crate::app::appointments as workflows;

#[derive(serde::Deserialize, IntoParams)]
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
    /// The appointment that takes the time: only for staff, and for its
    /// own client and master.
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

/// The free slots of a day and, with `explain=true`, why the others are not.
#[utoipa::path(get, path = "/availability", tag = "appointments", params(AvailabilityQuery), security((), ("bearer" = [])),
    responses((status = 200, description = "Free slots with the masters who can take each", body = AvailabilityView),
        super::super::error::NotFound,
        CommonProblems, ReadProblems))]
pub(super) async fn get_availability(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AvailabilityQuery>,
) -> Result<Json<AvailabilityView>, ApiError> {
    // It reads the catalog, the masters and the appointments: all three
    // must have reached the position.
    for read_model in [CATALOG, MASTERS, APPOINTMENTS] {
        app.platform
            .wait_for(read_model, query.min_position)
            .await?;
    }
    let tz = match &query.tz {
        None => app.platform.settings.timezone,
        Some(text) => {
            parse_tz("tz", text.trim()).map_err(|e| ApiError::bad_parameter(e.field, e.message))?
        }
    };
    let platform = &app.platform;
    let service = workflows::active_service(platform, query.service_id).await?;
    let masters = workflows::candidates_for(platform, query.service_id, query.master_id).await?;
    let request = workflows::slot_request(platform, &service, query.date, tz);
    let (day_start, day_end) = availability::day_bounds(tz, query.date);
    let me = caller.principal().ok();
    // Which appointment takes a time is for staff and its own client and
    // master to see; others get the reason only.
    let mut shown = std::collections::HashSet::new();
    let mut candidates = Vec::new();
    for queries::MasterRow { id, master, .. } in &masters {
        let around = queries::booked(
            &platform.db.any,
            *id,
            day_start - Duration::days(1),
            day_end + Duration::days(1),
        )
        .await?;
        shown.extend(
            around
                .iter()
                .filter(|b| me.is_some_and(|me| workflows::visible(me, b.client_id, *id)))
                .map(|b| b.id),
        );
        candidates.push(Candidate {
            master_id: *id,
            master,
            booked: around.into_iter().map(|b| (b.id, b.reservation)).collect(),
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
                    appointment_id: u.appointment_id.filter(|id| shown.contains(id)),
                })
                .collect()
        }),
    }))
}
