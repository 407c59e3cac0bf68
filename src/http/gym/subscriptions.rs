//! Subscriptions: open, pay, void, freeze, end a freeze, cancel; one
//! subscription (staff, or its client); the subscriber lists as of any date
//! and the expiry forecast.

use super::super::page::ReadQuery;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use annals_domain::gym::subscription::Subscription;
use annals_domain::gym::{Standing, SubscriptionCommand};
use annals_domain::values::Money;
use annals_projections::gym::queries::{self, SubscriptionRow};
use annals_projections::gym::{SUBSCRIPTIONS, TRAININGS};

use super::super::command::{created, reply, CommandHeaderParams, IdempotencyParams};
use super::super::error::{Forbidden, NotFound, ReadProblems, Unauthorized};
use super::super::extract::path_uuid;
use super::super::page::{page, Page};
use super::super::{
    ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    CommandProblems, CommonProblems, JsonBody,
};
use crate::app::gym::{self as workflows, is_studio_staff, PaymentInput};
use crate::app::Done;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"client_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", "plan_id": "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e60"})))]
pub struct OpenRequest {
    #[schema(value_type = String, format = Uuid)]
    pub client_id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub plan_id: Uuid,
}

/// Open a client's subscription to a plan (one per client and plan; it
/// covers nothing until paid).
#[utoipa::path(post, path = "/subscriptions", tag = "studio", security(("bearer" = [])),
    request_body = OpenRequest, params(IdempotencyParams),
    responses((status = 201, description = "Opened", body = CommandAccepted,
            headers(("Location" = String, description = "/api/v1/subscriptions/{id}"))),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn open(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<OpenRequest>,
) -> Response {
    let call = CommandCall::new(caller, headers, "POST", "/subscriptions", body.digest);
    let request = body.value;
    let done = workflows::open_subscription(
        &app.platform,
        &call.context(),
        request.client_id,
        request.plan_id,
    )
    .await;
    created("/subscriptions", done, CommandAccepted::of)
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct SpanView {
    #[schema(value_type = String, format = Date)]
    pub start: NaiveDate,
    /// The last day covered (inclusive).
    #[schema(value_type = String, format = Date)]
    pub end: NaiveDate,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct PaymentView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub amount: String,
    pub currency: String,
    pub method: String,
    #[schema(value_type = String, format = Date)]
    pub paid_on: NaiveDate,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub recorded_by: Option<Uuid>,
    /// Why it was voided (its period was taken back).
    pub voided: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct FreezeView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Date)]
    pub start: NaiveDate,
    pub days: u32,
    /// Ended early: active again from this day.
    #[schema(value_type = Option<String>, format = Date)]
    pub ended_on: Option<NaiveDate>,
    /// Days it froze (or will).
    pub used: u32,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct SubscriptionView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub client_id: Uuid,
    pub client_name: Option<String>,
    #[schema(value_type = String, format = Uuid)]
    pub plan_id: Uuid,
    /// Today: `active`, `frozen` or `inactive`.
    pub status: String,
    #[schema(value_type = Option<String>, format = Date)]
    pub starts_on: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    pub ends_on: Option<NaiveDate>,
    pub freeze_days_left: u32,
    /// The days covered (paid and frozen), oldest first.
    pub periods: Vec<SpanView>,
    pub freezes: Vec<FreezeView>,
    pub payments: Vec<PaymentView>,
    #[schema(value_type = Option<String>, format = Date)]
    pub cancelled_on: Option<NaiveDate>,
    pub cancel_reason: Option<String>,
    pub version: i64,
}

impl SubscriptionView {
    fn of(row: SubscriptionRow, today: NaiveDate) -> Self {
        let state: &Subscription = &row.state;
        let spans = state.spans();
        Self {
            id: row.id,
            client_id: row.client_id,
            client_name: row.client_name.clone(),
            plan_id: row.plan_id,
            status: state.standing(today).as_str().to_string(),
            starts_on: spans.first().map(|s| s.0),
            ends_on: spans.last().map(|s| s.1),
            freeze_days_left: state.freeze_days_left(),
            periods: spans
                .iter()
                .map(|&(start, end)| SpanView { start, end })
                .collect(),
            freezes: state
                .freezes
                .iter()
                .map(|f| FreezeView {
                    id: f.id,
                    start: f.start,
                    days: f.days,
                    ended_on: f.ended_on,
                    used: f.used(),
                })
                .collect(),
            payments: state
                .payments
                .iter()
                .map(|p| PaymentView {
                    id: p.id,
                    amount: p.amount.to_string(),
                    currency: p.currency.clone(),
                    method: p.method.clone(),
                    paid_on: p.paid_on,
                    recorded_by: p.recorded_by,
                    voided: p.voided.clone(),
                })
                .collect(),
            cancelled_on: state.cancelled.as_ref().map(|c| c.on),
            cancel_reason: state.cancelled.as_ref().map(|c| c.reason.clone()),
            version: row.version,
        }
    }
}

/// One subscription (staff, or its client), with its periods, freezes and
/// payments.
#[utoipa::path(get, path = "/subscriptions/{id}", tag = "studio", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The subscription"), ReadQuery),
    responses((status = 200, description = "The subscription", body = SubscriptionView),
        Unauthorized, NotFound, CommonProblems, ReadProblems))]
pub(super) async fn get_subscription(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<SubscriptionView>, ApiError> {
    let me = caller.principal()?.clone();
    let id = path_uuid("id", &id)?;
    app.platform
        .wait_for(SUBSCRIPTIONS, query.min_position)
        .await?;
    let row = queries::subscription(&app.platform.db.any, id)
        .await?
        .filter(|row| is_studio_staff(&me) || row.client_id == me.user_id)
        .ok_or_else(|| ApiError::not_found("no such subscription"))?;
    Ok(Json(SubscriptionView::of(row, app.platform.today())))
}

/// Your own subscriptions (a client's card).
#[utoipa::path(get, path = "/me/subscriptions", tag = "studio", security(("bearer" = [])),
    params(ReadQuery),
    responses((status = 200, description = "Your subscriptions", body = Vec<SubscriptionView>),
        Unauthorized, CommonProblems, ReadProblems))]
pub(super) async fn my_subscriptions(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<Vec<SubscriptionView>>, ApiError> {
    let me = caller.principal()?.clone();
    app.platform
        .wait_for(SUBSCRIPTIONS, query.min_position)
        .await?;
    let today = app.platform.today();
    Ok(Json(
        queries::subscriptions(&app.platform.db.any, Some(me.user_id), None)
            .await?
            .into_iter()
            .map(|row| SubscriptionView::of(row, today))
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"amount": "49.00", "currency": "EUR", "method": "cash", "paid_at": "2026-10-01T10:00:00+02:00"})))]
pub struct SubscriptionPaymentRequest {
    #[schema(example = "49.00", pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    pub amount: String,
    /// The plan's currency.
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    #[schema(min_length = 1, max_length = 50, pattern = r"\S", example = "cash")]
    pub method: String,
    /// When it was paid (default: now); its date in the business zone is
    /// the payment date.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub paid_at: Option<DateTime<chrono::FixedOffset>>,
    /// A later first day for a new period (ignored while the subscription
    /// covers it: a renewal follows on from the end).
    #[schema(value_type = Option<String>, format = Date)]
    pub start_on: Option<NaiveDate>,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct CreatedPart {
    #[serde(flatten)]
    pub accepted: CommandAccepted,
    /// The payment's or freeze's id.
    #[schema(value_type = String, format = Uuid)]
    pub part_id: Uuid,
}

fn with_part(done: &Done<Uuid>) -> CreatedPart {
    CreatedPart {
        accepted: CommandAccepted::of(done),
        part_id: done.value,
    }
}

/// Record a payment: the subscription renews by the plan's length — from
/// its end while it covers the payment date, else from the payment date.
#[utoipa::path(post, path = "/subscriptions/{id}/payments", tag = "studio", security(("bearer" = [])),
    request_body = SubscriptionPaymentRequest,
    params(("id" = Uuid, Path, description = "The subscription"), CommandHeaderParams),
    responses((status = 201, description = "Recorded", body = CreatedPart),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn record_subscription_payment(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<SubscriptionPaymentRequest>,
) -> Result<Response, ApiError> {
    let me = caller.principal()?.user_id;
    let path = format!("/subscriptions/{id}/payments");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let request = body.value;
    let amount = Money::parse("amount", &request.amount, request.currency.trim())
        .map_err(ApiError::invalid)?;
    let paid_on = match request.paid_at {
        Some(at) => at
            .with_timezone(&Utc)
            .with_timezone(&app.platform.settings.timezone)
            .date_naive(),
        None => app.platform.today(),
    };
    let input = PaymentInput {
        amount,
        method: request.method,
        paid_on,
        start_on: request.start_on,
    };
    let done = workflows::record_payment(&app.platform, &call.context(), id, input, Some(me)).await;
    Ok(reply(StatusCode::CREATED, done, with_part))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"reason": "card charged back"})))]
pub struct ReasonRequest {
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub reason: String,
}

/// Void a payment: its period is taken back.
#[utoipa::path(post, path = "/subscriptions/{id}/payments/{payment_id}/void", tag = "studio", security(("bearer" = [])),
    request_body = ReasonRequest,
    params(("id" = Uuid, Path, description = "The subscription"),
        ("payment_id" = Uuid, Path, description = "The payment"), CommandHeaderParams),
    responses((status = 200, description = "Voided (or already)", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn void_payment(
    State(app): State<AppState>,
    Path((id, payment_id)): Path<(String, String)>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<ReasonRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/subscriptions/{id}/payments/{payment_id}/void");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let payment_id = path_uuid("payment_id", &payment_id)?;
    let command = SubscriptionCommand::VoidPayment {
        payment_id,
        reason: body.value.reason,
    };
    let done =
        workflows::subscription_command(&app.platform, &call.context(), id, command, ()).await;
    Ok(reply(StatusCode::OK, done, CommandAccepted::of))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"start_date": "2026-10-05", "days": 7})))]
pub struct FreezeRequest {
    /// The first frozen day: inside a paid period.
    #[schema(value_type = String, format = Date)]
    pub start_date: NaiveDate,
    /// Within the freeze days left.
    #[schema(minimum = 1, maximum = 365)]
    pub days: u32,
}

/// Freeze the subscription: its end moves out by the days frozen.
#[utoipa::path(post, path = "/subscriptions/{id}/freezes", tag = "studio", security(("bearer" = [])),
    request_body = FreezeRequest,
    params(("id" = Uuid, Path, description = "The subscription"), CommandHeaderParams),
    responses((status = 201, description = "Frozen", body = CreatedPart),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn freeze(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<FreezeRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/subscriptions/{id}/freezes");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let freeze_id = Uuid::now_v7();
    let command = SubscriptionCommand::Freeze {
        freeze_id,
        start: body.value.start_date,
        days: body.value.days,
    };
    let done =
        workflows::subscription_command(&app.platform, &call.context(), id, command, freeze_id)
            .await;
    Ok(reply(StatusCode::CREATED, done, with_part))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"on": "2026-10-08"})))]
pub struct EndFreezeRequest {
    /// Active again from this day (default: today); the unused days go back
    /// to the quota.
    #[schema(value_type = Option<String>, format = Date)]
    pub on: Option<NaiveDate>,
}

/// End a freeze early.
#[utoipa::path(post, path = "/subscriptions/{id}/freezes/{freeze_id}/end", tag = "studio", security(("bearer" = [])),
    request_body = EndFreezeRequest,
    params(("id" = Uuid, Path, description = "The subscription"),
        ("freeze_id" = Uuid, Path, description = "The freeze"), CommandHeaderParams),
    responses((status = 200, description = "Ended", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn end_freeze(
    State(app): State<AppState>,
    Path((id, freeze_id)): Path<(String, String)>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<EndFreezeRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/subscriptions/{id}/freezes/{freeze_id}/end");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let freeze_id = path_uuid("freeze_id", &freeze_id)?;
    let command = SubscriptionCommand::EndFreeze {
        freeze_id,
        on: body.value.on.unwrap_or_else(|| app.platform.today()),
    };
    let done =
        workflows::subscription_command(&app.platform, &call.context(), id, command, ()).await;
    Ok(reply(StatusCode::OK, done, CommandAccepted::of))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"reason": "moved away", "on": "2026-11-01"})))]
pub struct CancelSubscriptionRequest {
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub reason: String,
    /// Not active from this day on (default: today).
    #[schema(value_type = Option<String>, format = Date)]
    pub on: Option<NaiveDate>,
}

/// Cancel the subscription, effective on a date.
#[utoipa::path(post, path = "/subscriptions/{id}/cancel", tag = "studio", security(("bearer" = [])),
    request_body = CancelSubscriptionRequest,
    params(("id" = Uuid, Path, description = "The subscription"), CommandHeaderParams),
    responses((status = 200, description = "Cancelled", body = CommandAccepted),
        NotFound, Unauthorized, Forbidden, CommonProblems, CommandProblems))]
pub(super) async fn cancel_subscription(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<CancelSubscriptionRequest>,
) -> Result<Response, ApiError> {
    let path = format!("/subscriptions/{id}/cancel");
    let call = CommandCall::new(caller, headers, "POST", &path, body.digest);
    let id = path_uuid("id", &id)?;
    let command = SubscriptionCommand::Cancel {
        on: body.value.on.unwrap_or_else(|| app.platform.today()),
        reason: body.value.reason,
    };
    let done =
        workflows::subscription_command(&app.platform, &call.context(), id, command, ()).await;
    Ok(reply(StatusCode::OK, done, CommandAccepted::of))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubscribersQuery {
    /// `active` (a paid period covers the day and it is not frozen),
    /// `frozen`, `inactive` (everyone not active — frozen clients count as
    /// inactive, as they always did) or `all` (default).
    #[param(inline, value_type = Option<SubscriberStatus>)]
    pub status: Option<String>,
    /// The day to answer for (default: today); past or future — a future
    /// day answers from the periods and freezes known now.
    #[param(value_type = Option<String>, format = Date)]
    pub as_of: Option<NaiveDate>,
    /// Only subscriptions to this plan.
    pub plan_id: Option<Uuid>,
    /// Only the members of this group (as it is now; none for an unknown
    /// group).
    pub group_id: Option<Uuid>,
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 1000)]
    pub cursor: Option<String>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum SubscriberStatus {
    Active,
    Frozen,
    Inactive,
    All,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct SubscriberView {
    #[schema(value_type = String, format = Uuid)]
    pub client_id: Uuid,
    pub client_name: Option<String>,
    /// On `as_of`: `active`, `frozen` or `inactive` (the best of the
    /// client's subscriptions).
    pub status: String,
    /// The subscriptions counted, with each one's standing on `as_of`.
    pub subscriptions: Vec<SubscriberPlanView>,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct SubscriberPlanView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub plan_id: Uuid,
    pub status: String,
    #[schema(value_type = Option<String>, format = Date)]
    pub ends_on: Option<NaiveDate>,
}

/// Clients with a subscription and their standing on any day.
#[utoipa::path(get, path = "/subscribers", tag = "studio", security(("bearer" = [])), params(SubscribersQuery),
    responses((status = 200, description = "A page of clients, by name", body = Page<SubscriberView>),
        Unauthorized, Forbidden, CommonProblems, ReadProblems))]
pub(super) async fn subscribers(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<SubscribersQuery>,
) -> Result<Json<Page<SubscriberView>>, ApiError> {
    app.platform
        .wait_for(SUBSCRIPTIONS, query.min_position)
        .await?;
    let wanted = match query.status.as_deref() {
        None | Some("all") => None,
        Some("active") => Some(Standing::Active),
        Some("frozen") => Some(Standing::Frozen),
        Some("inactive") => Some(Standing::Inactive),
        Some(_) => {
            return Err(ApiError::bad_parameter(
                "status",
                "must be active, frozen, inactive or all",
            ))
        }
    };
    let day = query.as_of.unwrap_or_else(|| app.platform.today());
    let mut rows = queries::subscriptions(&app.platform.db.any, None, query.plan_id).await?;
    if let Some(group) = query.group_id {
        app.platform.wait_for(TRAININGS, query.min_position).await?;
        let members = queries::group_members(&app.platform.db.any, group)
            .await?
            .unwrap_or_default();
        rows.retain(|row| members.contains(&row.client_id));
    }
    let mut clients: Vec<(SubscriberView, Standing)> = Vec::new();
    for row in rows {
        let standing = row.state.standing(day);
        let entry = SubscriberPlanView {
            id: row.id,
            plan_id: row.plan_id,
            status: standing.as_str().to_string(),
            ends_on: row.state.ends_on(),
        };
        match clients.last_mut() {
            Some((client, best)) if client.client_id == row.client_id => {
                if standing.rank() > best.rank() {
                    *best = standing;
                    client.status = standing.as_str().to_string();
                }
                client.subscriptions.push(entry);
            }
            _ => clients.push((
                SubscriberView {
                    client_id: row.client_id,
                    client_name: row.client_name.clone(),
                    status: standing.as_str().to_string(),
                    subscriptions: vec![entry],
                },
                standing,
            )),
        }
    }
    let listed = clients
        .into_iter()
        .filter(|(_, best)| match wanted {
            None => true,
            Some(Standing::Inactive) => *best != Standing::Active,
            Some(w) => *best == w,
        })
        .map(|(view, _)| view)
        .collect();
    Ok(Json(page(
        listed,
        |c| {
            format!(
                "{}\u{0}{}",
                c.client_name.as_deref().unwrap_or(""),
                c.client_id
            )
        },
        query.limit,
        query.cursor.as_deref(),
    )?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExpiringQuery {
    /// Ending within this many days from today (default 7).
    #[param(minimum = 0, maximum = 366)]
    pub within_days: Option<u32>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct ExpiringView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub client_id: Uuid,
    pub client_name: Option<String>,
    #[schema(value_type = String, format = Uuid)]
    pub plan_id: Uuid,
    #[schema(value_type = String, format = Date)]
    pub ends_on: NaiveDate,
    pub days_left: i64,
}

/// The expiry forecast: subscriptions covering today whose last day is
/// within `within_days`, soonest first.
#[utoipa::path(get, path = "/subscriptions/expiring", tag = "studio", security(("bearer" = [])), params(ExpiringQuery),
    responses((status = 200, description = "Soonest first", body = Vec<ExpiringView>),
        Unauthorized, Forbidden, CommonProblems, ReadProblems))]
pub(super) async fn expiring(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<ExpiringQuery>,
) -> Result<Json<Vec<ExpiringView>>, ApiError> {
    app.platform
        .wait_for(SUBSCRIPTIONS, query.min_position)
        .await?;
    let within = query.within_days.unwrap_or(7);
    if within > 366 {
        return Err(ApiError::bad_parameter(
            "within_days",
            "must be from 0 to 366",
        ));
    }
    let today = app.platform.today();
    let horizon = today + Duration::days(i64::from(within));
    let mut soon: Vec<ExpiringView> = queries::subscriptions(&app.platform.db.any, None, None)
        .await?
        .into_iter()
        .filter_map(|row| {
            let spans = row.state.spans();
            let &(_, end) = spans.iter().find(|&&(s, e)| s <= today && today <= e)?;
            (end <= horizon).then(|| ExpiringView {
                id: row.id,
                client_id: row.client_id,
                client_name: row.client_name.clone(),
                plan_id: row.plan_id,
                ends_on: end,
                days_left: (end - today).num_days(),
            })
        })
        .collect();
    soon.sort_by(|a, b| a.ends_on.cmp(&b.ends_on).then(a.id.cmp(&b.id)));
    Ok(Json(soon))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StudioStatsQuery {
    /// First day (default: 29 days before `to`).
    #[param(value_type = Option<String>, format = Date)]
    pub from: Option<NaiveDate>,
    /// Last day (default: today); at most 366 days after `from` by day,
    /// 3,660 by week or month.
    #[param(value_type = Option<String>, format = Date)]
    pub to: Option<NaiveDate>,
    /// `day`, `week` (from Monday) or `month` (default).
    #[param(inline, value_type = Option<StatsInterval>)]
    pub interval: Option<String>,
    /// A client churned when no new period starts within this many days of
    /// the end (default 7).
    #[param(minimum = 0, maximum = 365)]
    pub churn_days: Option<u32>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum StatsInterval {
    Day,
    Week,
    Month,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct StudioPointView {
    /// The first day of the period.
    #[schema(value_type = String, format = Date)]
    pub period: NaiveDate,
    /// Clients active on at least one day of it.
    pub active: usize,
    /// Clients frozen in it and active on none of its days.
    pub frozen: usize,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct RevenueView {
    #[schema(example = "2026-10")]
    pub month: String,
    pub currency: String,
    pub amount: String,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct FreezesView {
    #[schema(example = "2026-10")]
    pub month: String,
    pub freezes: usize,
    pub days: u32,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct ChurnView {
    /// Coverage that ended in the range (at least `churn_days` ago).
    pub ended: usize,
    pub renewed: usize,
    pub churned: usize,
    /// churned / ended, 0 to 1 (4 places).
    pub rate: String,
    pub churn_days: u32,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct PlanMixView {
    #[schema(value_type = String, format = Uuid)]
    pub plan_id: Uuid,
    pub plan_name: String,
    /// Clients active on `to`.
    pub active: usize,
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct StudioStatsView {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    pub interval: String,
    pub series: Vec<StudioPointView>,
    /// Payments not voided, by the month paid.
    pub revenue: Vec<RevenueView>,
    /// Freezes by the month they started.
    pub freezes: Vec<FreezesView>,
    pub churn: ChurnView,
    pub plan_mix: Vec<PlanMixView>,
}

/// Active clients over time, revenue and freezes per month, churn and the
/// plan mix.
#[utoipa::path(get, path = "/stats/subscriptions", tag = "studio", security(("bearer" = [])), params(StudioStatsQuery),
    responses((status = 200, description = "Studio statistics", body = StudioStatsView),
        Unauthorized, Forbidden, CommonProblems, ReadProblems))]
pub(super) async fn studio_stats(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<StudioStatsQuery>,
) -> Result<Json<StudioStatsView>, ApiError> {
    use annals_projections::gym::stats::{self, Interval};
    app.platform
        .wait_for(SUBSCRIPTIONS, query.min_position)
        .await?;
    let (interval, name, longest) = match query.interval.as_deref() {
        None | Some("month") => (Interval::Month, "month", 3660),
        Some("week") => (Interval::Week, "week", 3660),
        Some("day") => (Interval::Day, "day", 366),
        Some(_) => {
            return Err(ApiError::bad_parameter(
                "interval",
                "must be day, week or month",
            ))
        }
    };
    let today = app.platform.today();
    let to = query.to.unwrap_or(today);
    let from = query.from.unwrap_or(to - Duration::days(29));
    if from > to || (to - from).num_days() > longest {
        return Err(ApiError::bad_parameter(
            "to",
            format!("must be on or after from, at most {longest} days later"),
        ));
    }
    let churn_days = query.churn_days.unwrap_or(7);
    if churn_days > 365 {
        return Err(ApiError::bad_parameter(
            "churn_days",
            "must be from 0 to 365",
        ));
    }
    let pool = &app.platform.db.any;
    let rows = queries::subscriptions(pool, None, None).await?;
    let plans: std::collections::HashMap<Uuid, String> = queries::plans(pool, true)
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    let s = stats::fold(&rows, from, to, interval, i64::from(churn_days), today);
    let rate = if s.churn.ended == 0 {
        rust_decimal::Decimal::ZERO
    } else {
        rust_decimal::Decimal::from(s.churn.churned) / rust_decimal::Decimal::from(s.churn.ended)
    };
    let mut rate = rate.round_dp(4);
    rate.rescale(4);
    Ok(Json(StudioStatsView {
        from,
        to,
        interval: name.into(),
        series: s
            .series
            .into_iter()
            .map(|p| StudioPointView {
                period: p.period,
                active: p.active,
                frozen: p.frozen,
            })
            .collect(),
        revenue: s
            .revenue
            .into_iter()
            .map(|((month, currency), mut amount)| {
                amount.rescale(2);
                RevenueView {
                    month,
                    currency,
                    amount: amount.to_string(),
                }
            })
            .collect(),
        freezes: s
            .freezes
            .into_iter()
            .map(|(month, (freezes, days))| FreezesView {
                month,
                freezes,
                days,
            })
            .collect(),
        churn: ChurnView {
            ended: s.churn.ended,
            renewed: s.churn.renewed,
            churned: s.churn.churned,
            rate: rate.to_string(),
            churn_days,
        },
        plan_mix: s
            .plan_mix
            .into_iter()
            .map(|(plan_id, active)| PlanMixView {
                plan_id,
                plan_name: plans.get(&plan_id).cloned().unwrap_or_default(),
                active,
            })
            .collect(),
    }))
}

#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct CardTrainingView {
    #[schema(value_type = String, format = Uuid)]
    pub training_id: Uuid,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub group_id: Option<Uuid>,
    #[schema(value_type = String, format = Uuid)]
    pub coach_id: Uuid,
    pub start: DateTime<Utc>,
    pub duration_minutes: u32,
    /// `invited`, `accepted`, `declined`, `attended` or `absent`.
    pub status: String,
}

/// One client on one page: subscriptions (with periods, freezes and
/// payments) and trainings.
#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub struct ClientCardView {
    #[schema(value_type = String, format = Uuid)]
    pub client_id: Uuid,
    pub client_name: String,
    /// Today: `active`, `frozen` or `inactive` (the best of the
    /// subscriptions).
    pub status: String,
    pub subscriptions: Vec<SubscriptionView>,
    /// Every training the client was invited to, by start.
    pub trainings: Vec<CardTrainingView>,
    /// How many of them the coach recorded as attended.
    pub trainings_attended: usize,
}

/// A client's card (staff, or the client themself; anyone else gets 404).
#[utoipa::path(get, path = "/clients/{id}/card", tag = "studio", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The client (a user)"), ReadQuery),
    responses((status = 200, description = "The client's card", body = ClientCardView),
        Unauthorized, NotFound, CommonProblems, ReadProblems))]
pub(super) async fn client_card(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<ClientCardView>, ApiError> {
    let me = caller.principal()?.clone();
    let id = path_uuid("id", &id)?;
    let no_such = || ApiError::not_found("no such client");
    if !is_studio_staff(&me) && me.user_id != id {
        return Err(no_such());
    }
    let pool = &app.platform.db.any;
    for consumer in [SUBSCRIPTIONS, TRAININGS] {
        app.platform.wait_for(consumer, query.min_position).await?;
    }
    let client = annals_projections::users::user(pool, id)
        .await?
        .ok_or_else(no_such)?;
    let today = app.platform.today();
    let subscriptions = queries::subscriptions(pool, Some(id), None).await?;
    let status = subscriptions
        .iter()
        .map(|row| row.state.standing(today))
        .max_by_key(|s| s.rank())
        .unwrap_or(Standing::Inactive);
    let trainings: Vec<CardTrainingView> = queries::client_trainings(pool, id, "")
        .await?
        .into_iter()
        .filter_map(|row| {
            let session = row.training.state.session?;
            Some(CardTrainingView {
                training_id: row.training.id,
                group_id: session.group_id,
                coach_id: session.coach_id,
                start: session.start,
                duration_minutes: session.duration_minutes,
                status: row.status,
            })
        })
        .collect();
    Ok(Json(ClientCardView {
        client_id: id,
        client_name: client.profile.full_name,
        status: status.as_str().to_string(),
        subscriptions: subscriptions
            .into_iter()
            .map(|row| SubscriptionView::of(row, today))
            .collect(),
        trainings_attended: trainings.iter().filter(|t| t.status == "attended").count(),
        trainings,
    }))
}
