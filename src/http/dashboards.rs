//! Read-only views over the appointments domain: the statistics engine's
//! answers, a master's schedule with free gaps, a client's dashboard.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use annals_domain::appointment::availability::{day_bounds, local_instant};
use annals_domain::user::Role;
use annals_projections::appointments::queries;
use annals_projections::appointments::{APPOINTMENTS, MASTERS};
use annals_projections::statistics::{self, NAME as STATISTICS};

use super::appointments::AppointmentView;
use super::error::ReadProblems;
use super::identity::MeResponse;
use super::{ApiError, ApiQuery, AppState, Caller, CommonProblems};
use crate::auth::permissions::APPOINTMENT_STAFF;

// ---------------------------------------------------------------- statistics

#[derive(Deserialize, Serialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Master,
    Service,
    Month,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// First day (business time zone), inclusive.
    #[param(value_type = String, format = Date, example = "2026-05-01")]
    pub from: NaiveDate,
    /// Last day, inclusive.
    #[param(value_type = String, format = Date, example = "2026-05-31")]
    pub to: NaiveDate,
    pub group_by: GroupBy,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

#[derive(Serialize, ToSchema, Clone)]
pub struct Amount {
    #[schema(example = "125.00")]
    pub amount: String,
    #[schema(example = "EUR")]
    pub currency: String,
}

#[derive(Serialize, ToSchema)]
pub struct StatsGroup {
    /// The master's or service's id, or the month (`2026-05`).
    pub key: String,
    /// The master's or service's display name (null for months, or until
    /// the read model knows it).
    #[schema(example = "Mia Kovač")]
    pub name: Option<String>,
    pub appointments: i64,
    pub completed: i64,
    pub cancelled: i64,
    pub no_show: i64,
    /// Cancelled / appointments (0 to 1).
    pub cancellation_rate: f64,
    /// No-shows / appointments (0 to 1).
    pub no_show_rate: f64,
    /// Sum of completed appointments' prices, per currency.
    pub revenue: Vec<Amount>,
}

#[derive(Serialize, ToSchema)]
pub struct HourCount {
    /// Hour of day in the business time zone.
    pub hour: u32,
    pub appointments: i64,
}

#[derive(Serialize, ToSchema)]
pub struct StatsView {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    pub group_by: GroupBy,
    pub groups: Vec<StatsGroup>,
    /// Hours with the most (not cancelled) appointments first.
    pub busiest_hours: Vec<HourCount>,
}

#[derive(Default)]
struct Tally {
    appointments: i64,
    completed: i64,
    cancelled: i64,
    no_show: i64,
    revenue: BTreeMap<String, Decimal>,
}

fn amounts(revenue: &BTreeMap<String, Decimal>) -> Vec<Amount> {
    revenue
        .iter()
        .map(|(currency, amount)| {
            let mut amount = *amount;
            amount.rescale(2);
            Amount {
                amount: amount.to_string(),
                currency: currency.clone(),
            }
        })
        .collect()
}

fn rate(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0
    }
}

/// Appointments and revenue per master, service or month; cancellation and
/// no-show rates; busiest hours.
#[utoipa::path(get, path = "/stats/appointments", tag = "appointments", security(("bearer" = [])), params(StatsQuery),
    responses((status = 200, description = "Statistics of appointments starting in the range", body = StatsView),
        super::error::Unauthorized,
        super::error::Forbidden,
        CommonProblems, ReadProblems))]
pub async fn appointment_stats(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Result<Json<StatsView>, ApiError> {
    app.platform
        .wait_for(STATISTICS, query.min_position)
        .await?;
    if query.to < query.from || (query.to - query.from).num_days() > 366 {
        return Err(ApiError::bad_parameter(
            "to",
            "must be on or after from, at most 366 days later",
        ));
    }
    let tz = app.platform.settings.timezone;
    let (start, _) = day_bounds(tz, query.from);
    let (_, end) = day_bounds(tz, query.to);
    let facts = statistics::facts(&app.platform.db.any, start, end).await?;
    let mut groups: BTreeMap<String, Tally> = BTreeMap::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut hours: BTreeMap<u32, i64> = BTreeMap::new();
    for fact in facts {
        let at = fact.start.with_timezone(&tz);
        let (key, name) = match query.group_by {
            GroupBy::Master => (fact.master_id, fact.master_name),
            GroupBy::Service => (fact.service_id, fact.service_name),
            GroupBy::Month => (format!("{:04}-{:02}", at.year(), at.month()), None),
        };
        if let Some(name) = name {
            names.insert(key.clone(), name);
        }
        let tally = groups.entry(key).or_default();
        tally.appointments += 1;
        match fact.status.as_str() {
            "completed" => {
                tally.completed += 1;
                let price: Decimal = fact.price.parse().map_err(ApiError::internal)?;
                *tally.revenue.entry(fact.currency).or_default() += price;
            }
            "cancelled" => tally.cancelled += 1,
            "no_show" => tally.no_show += 1,
            _ => {}
        }
        if fact.status != "cancelled" {
            *hours.entry(at.hour()).or_default() += 1;
        }
    }
    let mut busiest: Vec<HourCount> = hours
        .into_iter()
        .map(|(hour, appointments)| HourCount { hour, appointments })
        .collect();
    busiest.sort_by(|a, b| {
        b.appointments
            .cmp(&a.appointments)
            .then(a.hour.cmp(&b.hour))
    });
    Ok(Json(StatsView {
        from: query.from,
        to: query.to,
        group_by: query.group_by,
        groups: groups
            .into_iter()
            .map(|(key, t)| StatsGroup {
                name: names.get(&key).cloned(),
                key,
                cancellation_rate: rate(t.cancelled, t.appointments),
                no_show_rate: rate(t.no_show, t.appointments),
                revenue: amounts(&t.revenue),
                appointments: t.appointments,
                completed: t.completed,
                cancelled: t.cancelled,
                no_show: t.no_show,
            })
            .collect(),
        busiest_hours: busiest,
    }))
}

// ---------------------------------------------------------------- schedule

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScheduleQuery {
    /// First day (master's time zone), inclusive.
    #[param(value_type = String, format = Date)]
    pub from: NaiveDate,
    /// Last day, inclusive; at most 31 days after `from`.
    #[param(value_type = String, format = Date)]
    pub to: NaiveDate,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

#[derive(Serialize, ToSchema, Clone, PartialEq, Debug)]
pub struct Span {
    #[schema(value_type = String, format = DateTime)]
    pub start: String,
    #[schema(value_type = String, format = DateTime)]
    pub end: String,
}

#[derive(Serialize, ToSchema)]
pub struct ScheduledAppointment {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = DateTime)]
    pub start: String,
    #[schema(value_type = String, format = DateTime)]
    pub end: String,
    pub status: String,
    #[schema(value_type = String, format = Uuid)]
    pub client_id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub service_id: Uuid,
    #[schema(example = "Ada Lovelace")]
    pub client_name: Option<String>,
    #[schema(example = "Haircut")]
    pub service_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ScheduleDay {
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    pub day_off: bool,
    pub working: Vec<Span>,
    pub appointments: Vec<ScheduledAppointment>,
    /// Working time not taken by breaks, appointments or their buffers.
    pub free: Vec<Span>,
}

#[derive(Serialize, ToSchema)]
pub struct ScheduleView {
    #[schema(value_type = String, format = Uuid)]
    pub master_id: Uuid,
    pub time_zone: String,
    pub days: Vec<ScheduleDay>,
}

/// `[from, to)` minus every interval in `taken`.
fn subtract(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    taken: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut free = vec![(from, to)];
    for (t0, t1) in taken {
        free = free
            .into_iter()
            .flat_map(|(a, b)| {
                if *t1 <= a || b <= *t0 {
                    vec![(a, b)]
                } else {
                    [(a, *t0.min(&b)), (*t1.max(&a), b)]
                        .into_iter()
                        .filter(|(x, y)| x < y)
                        .collect()
                }
            })
            .collect();
    }
    free
}

/// A master's days: working hours, appointments and the free gaps between.
#[utoipa::path(get, path = "/masters/{id}/schedule", tag = "appointments", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The master"), ScheduleQuery),
    responses((status = 200, description = "The schedule, day by day", body = ScheduleView),
        super::error::Unauthorized,
        super::error::Forbidden,
        super::error::NotFound,
        CommonProblems, ReadProblems))]
pub async fn master_schedule(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ScheduleQuery>,
) -> Result<Json<ScheduleView>, ApiError> {
    let me = caller.principal()?.clone();
    let id = super::extract::path_uuid("id", &id)?;
    let staff = me.roles.iter().any(|r| APPOINTMENT_STAFF.contains(r));
    let own = me.has(Role::Master) && me.user_id == id;
    if !(staff || own) {
        return Err(ApiError::not_found("no such master"));
    }
    if query.to < query.from || (query.to - query.from).num_days() > 31 {
        return Err(ApiError::bad_parameter(
            "to",
            "must be on or after from, at most 31 days later",
        ));
    }
    app.platform.wait_for(MASTERS, query.min_position).await?;
    app.platform
        .wait_for(APPOINTMENTS, query.min_position)
        .await?;
    let pool = &app.platform.db.any;
    let queries::MasterRow { master, .. } = queries::master(pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such master"))?;
    let tz = master.time_zone;
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).to_rfc3339();
    let mut days = Vec::new();
    let mut date = query.from;
    while date <= query.to {
        let (day_start, day_end) = day_bounds(tz, date);
        let plan = master.day_plan(date);
        let rows = queries::master_appointments(pool, id, day_start, day_end).await?;
        // Cancelled ones are not listed; every other one used its time.
        let mut taken: Vec<_> = rows.iter().map(|r| (r.block_start, r.block_end)).collect();
        let appointments: Vec<ScheduledAppointment> = rows
            .into_iter()
            .map(|row| ScheduledAppointment {
                id: row.id,
                start: local(row.start),
                end: local(row.end),
                status: row.status,
                client_id: row.client_id,
                service_id: row.service_id,
                client_name: row.client_name,
                service_name: row.service_name,
            })
            .collect();
        for b in &plan.breaks {
            taken.push((
                local_instant(tz, date, b.start),
                local_instant(tz, date, b.end),
            ));
        }
        let mut working = Vec::new();
        let mut free = Vec::new();
        if !plan.day_off {
            for range in &plan.working {
                let (w0, w1) = (
                    local_instant(tz, date, range.start),
                    local_instant(tz, date, range.end),
                );
                working.push(Span {
                    start: local(w0),
                    end: local(w1),
                });
                free.extend(subtract(w0, w1, &taken).into_iter().map(|(a, b)| Span {
                    start: local(a),
                    end: local(b),
                }));
            }
        }
        days.push(ScheduleDay {
            date,
            day_off: plan.day_off,
            working,
            appointments,
            free,
        });
        date += Duration::days(1);
    }
    Ok(Json(ScheduleView {
        master_id: id,
        time_zone: tz.name().to_string(),
        days,
    }))
}

// ---------------------------------------------------------------- dashboard

#[derive(Serialize, ToSchema)]
pub struct FavouriteService {
    #[schema(value_type = String, format = Uuid)]
    pub service_id: Uuid,
    pub name: String,
    pub visits: i64,
}

#[derive(Serialize, ToSchema)]
pub struct MonthStats {
    /// `2026-05`, in the business time zone.
    pub month: String,
    /// Completed appointments this month.
    pub visits: i64,
    /// What those cost, per currency.
    pub spent: Vec<Amount>,
    /// Most visited services this month, most first.
    pub favourite_services: Vec<FavouriteService>,
}

#[derive(Serialize, ToSchema)]
pub struct DashboardView {
    pub profile: MeResponse,
    /// Booked or confirmed appointments from now on, soonest first.
    pub upcoming: Vec<AppointmentView>,
    /// The last appointments before now, latest first.
    pub recent: Vec<AppointmentView>,
    pub this_month: MonthStats,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DashboardQuery {
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

/// Your profile, upcoming and recent appointments, and this month's statistics.
#[utoipa::path(get, path = "/me/dashboard", tag = "appointments", security(("bearer" = [])), params(DashboardQuery),
    responses((status = 200, description = "Your dashboard", body = DashboardView),
        super::error::Unauthorized,
        CommonProblems, ReadProblems))]
pub async fn my_dashboard(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<DashboardQuery>,
) -> Result<Json<DashboardView>, ApiError> {
    let me = caller.principal()?.clone();
    app.platform
        .wait_for(APPOINTMENTS, query.min_position)
        .await?;
    let profile = super::identity::load_me(&app, me.user_id).await?;
    let now = Utc::now();
    let pool = &app.platform.db.any;
    let upcoming = queries::upcoming_of_client(pool, me.user_id, now, 20).await?;
    let recent = queries::recent_of_client(pool, me.user_id, now, 20).await?;
    let tz = app.platform.settings.timezone;
    let today = Utc::now().with_timezone(&tz).date_naive();
    let first = today.with_day(1).unwrap_or(today);
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    }
    .unwrap_or(today);
    let (month_start, _) = day_bounds(tz, first);
    let (month_end, _) = day_bounds(tz, next);
    let done = queries::visits_of_client(pool, me.user_id, month_start, month_end).await?;
    let visits = done.len() as i64;
    let mut spent: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut favourites: HashMap<String, (String, i64)> = HashMap::new();
    for visit in done {
        let price: Decimal = visit.price.parse().map_err(ApiError::internal)?;
        *spent.entry(visit.currency).or_default() += price;
        let entry = favourites
            .entry(visit.service_id)
            .or_insert((visit.service_name.unwrap_or_default(), 0));
        entry.1 += 1;
    }
    let mut favourite_services: Vec<FavouriteService> = favourites
        .into_iter()
        .filter_map(|(id, (name, visits))| {
            Uuid::parse_str(&id)
                .ok()
                .map(|service_id| FavouriteService {
                    service_id,
                    name,
                    visits,
                })
        })
        .collect();
    favourite_services.sort_by(|a, b| b.visits.cmp(&a.visits).then(a.name.cmp(&b.name)));
    favourite_services.truncate(3);
    Ok(Json(DashboardView {
        profile,
        upcoming: upcoming.into_iter().map(AppointmentView::from).collect(),
        recent: recent.into_iter().map(AppointmentView::from).collect(),
        this_month: MonthStats {
            month: format!("{:04}-{:02}", first.year(), first.month()),
            visits,
            spent: amounts(&spent),
            favourite_services,
        },
    }))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn free_gaps_are_working_time_minus_what_is_taken() {
        let h = |hour| Utc.with_ymd_and_hms(2026, 5, 4, hour, 0, 0).unwrap();
        let gaps = subtract(
            h(9),
            h(18),
            &[(h(10), h(11)), (h(13), h(14)), (h(17), h(19))],
        );
        assert_eq!(gaps, vec![(h(9), h(10)), (h(11), h(13)), (h(14), h(17))]);
        assert_eq!(subtract(h(9), h(10), &[(h(8), h(11))]), vec![]);
    }
}
