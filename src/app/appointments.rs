//! Appointments workflows: the catalog, masters, and an appointment's life.
//! Booking, rescheduling and cancelling change the appointment and the
//! master's day (`MasterDay`, where reservations clash) in one commit, so a
//! slot is never double-booked and never left reserved by nothing.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use annals_domain::appointment::availability::{self, Candidate, Reason, Request as SlotRequest};
use annals_domain::appointment::master_day::{
    master_day_id, MasterDay, MasterDayCommand, MasterDayError, Reservation,
};
use annals_domain::appointment::{Appointment, AppointmentCommand, Booking, ChangeRules, Status};
use annals_domain::catalog::{Category, CategoryCommand, Service, ServiceCommand, ServiceTerms};
use annals_domain::master::{Master, MasterCommand};
use annals_domain::user::Role;
use annals_domain::values::{Money, WeeklyRange};
use annals_projections::appointments::queries::{self, MasterRow, ServiceRow};

use super::{AppError, CommandContext, Done, Unit};
use crate::auth::permissions::APPOINTMENT_STAFF;
use crate::auth::Principal;
use crate::platform::Platform;

/// Staff see and change every appointment.
pub fn is_staff(p: &Principal) -> bool {
    p.roles.iter().any(|r| APPOINTMENT_STAFF.contains(r))
}

/// Whether `me` may see an appointment: staff all, a master theirs, a
/// client theirs.
pub fn visible(me: &Principal, client_id: Uuid, master_id: Uuid) -> bool {
    is_staff(me) || client_id == me.user_id || (me.has(Role::Master) && master_id == me.user_id)
}

// ---------------------------------------------------------------- catalog

pub async fn create_category(
    p: &Platform,
    ctx: &CommandContext,
    name: String,
) -> Result<Done<()>, AppError> {
    let id = Uuid::now_v7().to_string();
    p.commands
        .create::<Category>(ctx, &id, CategoryCommand::Create { name })
        .await
}

/// The category a service names must exist (the aggregate decides, not the
/// read model: a category created a moment ago counts).
async fn check_category(p: &Platform, terms: &ServiceTerms) -> Result<(), AppError> {
    let (category, _) = p
        .commands
        .load::<Category>(&terms.category_id.to_string())
        .await?;
    if category.name.is_none() {
        return Err(AppError::unknown_reference(
            "category_id",
            "no such category",
        ));
    }
    Ok(())
}

/// Creates (`first` is `Create`) or changes (`Update`) a service, and puts
/// it in or out of the catalog as `active` says, in one commit.
async fn write_service(
    p: &Platform,
    ctx: &CommandContext,
    id: &str,
    first: ServiceCommand,
    active: Option<bool>,
) -> Result<Done<()>, AppError> {
    p.commands
        .run(ctx, |mut unit: Unit| {
            let first = first.clone();
            async move {
                // A creation's id was minted by `create_service`.
                let mut service = if matches!(first, ServiceCommand::Create { .. }) {
                    unit.create_subject::<Service>(id).await?
                } else {
                    unit.load_subject::<Service>(id).await?
                };
                unit.decide(&mut service, first).await?;
                match active {
                    Some(false) => {
                        unit.decide(&mut service, ServiceCommand::Deactivate)
                            .await?
                    }
                    Some(true) => {
                        unit.decide(&mut service, ServiceCommand::Reactivate)
                            .await?
                    }
                    None => Vec::new(),
                };
                Ok((unit, ()))
            }
        })
        .await
}

pub async fn create_service(
    p: &Platform,
    ctx: &CommandContext,
    terms: ServiceTerms,
    active: bool,
) -> Result<Done<()>, AppError> {
    check_category(p, &terms).await?;
    let id = Uuid::now_v7().to_string();
    let active = (!active).then_some(false);
    write_service(p, ctx, &id, ServiceCommand::Create { terms }, active).await
}

pub async fn update_service(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    terms: ServiceTerms,
    active: Option<bool>,
) -> Result<Done<()>, AppError> {
    check_category(p, &terms).await?;
    write_service(
        p,
        ctx,
        &id.to_string(),
        ServiceCommand::Update { terms },
        active,
    )
    .await
}

pub async fn deactivate_service(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<Done<()>, AppError> {
    p.commands
        .execute::<Service>(ctx, &id.to_string(), ServiceCommand::Deactivate)
        .await
}

// ---------------------------------------------------------------- masters

pub struct NewMaster {
    pub user_id: Uuid,
    pub service_ids: Vec<Uuid>,
    pub time_zone: Tz,
    pub working_hours: Vec<WeeklyRange>,
    pub breaks: Vec<WeeklyRange>,
}

pub async fn register_master(
    p: &Platform,
    ctx: &CommandContext,
    master: NewMaster,
) -> Result<Done<()>, AppError> {
    for (i, id) in master.service_ids.iter().enumerate() {
        let (service, _) = p.commands.load::<Service>(&id.to_string()).await?;
        if service.terms.is_none() {
            return Err(AppError::unknown_reference(
                format!("service_ids[{i}]"),
                "no such service",
            ));
        }
    }
    match queries::user_holds(&p.db.any, master.user_id, Role::Master.as_str()).await? {
        None => return Err(AppError::unknown_reference("user_id", "no such user")),
        Some(false) => {
            let rule = "must be an active user with the master role";
            let mut err = AppError::conflict("not-a-master", format!("user_id: {rule}"));
            err.fields = vec![super::FieldProblem {
                field: "user_id".into(),
                message: rule.into(),
            }];
            return Err(err);
        }
        Some(true) => {}
    }
    let command = MasterCommand::Register {
        user_id: master.user_id,
        service_ids: master.service_ids.into_iter().collect(),
        time_zone: master.time_zone,
        working_hours: master.working_hours,
        breaks: master.breaks,
    };
    p.commands
        .execute::<Master>(ctx, &master.user_id.to_string(), command)
        .await
}

pub async fn set_working_hours(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    working_hours: Vec<WeeklyRange>,
    breaks: Vec<WeeklyRange>,
) -> Result<Done<()>, AppError> {
    let command = MasterCommand::SetWorkingHours {
        working_hours,
        breaks,
    };
    p.commands
        .execute::<Master>(ctx, &id.to_string(), command)
        .await
}

pub async fn add_days_off(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    dates: BTreeSet<NaiveDate>,
) -> Result<Done<()>, AppError> {
    p.commands
        .execute::<Master>(ctx, &id.to_string(), MasterCommand::AddDaysOff { dates })
        .await
}

// ---------------------------------------------------------------- booking

/// The rules of a slot of `service` on `date` (read in `tz`), as of now.
pub fn slot_request(p: &Platform, service: &ServiceRow, date: NaiveDate, tz: Tz) -> SlotRequest {
    let settings = &p.settings;
    SlotRequest {
        date,
        time_zone: tz,
        duration: Duration::minutes(service.duration_minutes),
        buffer_before: Duration::minutes(service.buffer_before_minutes),
        buffer_after: Duration::minutes(service.buffer_after_minutes),
        step: Duration::minutes(settings.slot_step_minutes),
        min_notice: Duration::minutes(settings.min_notice_minutes),
        now: p.clock.now(),
    }
}

/// An active service of the catalog.
pub async fn active_service(p: &Platform, id: Uuid) -> Result<ServiceRow, AppError> {
    queries::service(&p.db.any, id)
        .await?
        .filter(|s| s.active)
        .ok_or_else(|| AppError::unknown_reference("service_id", "no such service in the catalog"))
}

/// The masters who may take a service (only `master_id`, if given).
pub async fn candidates_for(
    p: &Platform,
    service_id: Uuid,
    master_id: Option<Uuid>,
) -> Result<Vec<MasterRow>, AppError> {
    let chosen: Vec<MasterRow> = queries::masters(&p.db.any, Some(service_id))
        .await?
        .into_iter()
        .filter(|row| master_id.is_none_or(|m| m == row.id))
        .collect();
    if let Some(m) = master_id {
        if chosen.is_empty() {
            return Err(AppError::unknown_reference(
                "master_id",
                format!("{m} is not a master who performs this service"),
            ));
        }
    }
    Ok(chosen)
}

fn unavailable(reason: Reason) -> AppError {
    let (code, detail) = match reason {
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
    AppError::conflict(code, detail)
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

/// The master's day an interval starting at `start` is reserved on.
fn day_of(master_id: Uuid, master: &Master, start: DateTime<Utc>) -> String {
    master_day_id(
        master_id,
        start.with_timezone(&master.time_zone).date_naive(),
    )
}

/// Whether a master's hours, breaks and the notice allow `[start, end)`;
/// whether it is taken is the master's day's decision.
fn hours_allow(
    rules: &SlotRequest,
    master_id: Uuid,
    master: &Master,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(), Reason> {
    let candidate = Candidate {
        master_id,
        master,
        booked: Vec::new(),
    };
    match availability::check_slot(rules, &candidate, start, end) {
        Some((reason, _)) => Err(reason),
        None => Ok(()),
    }
}

pub struct BookInput {
    pub service_id: Uuid,
    pub master_id: Option<Uuid>,
    pub start: DateTime<Utc>,
    pub client_id: Option<Uuid>,
    pub note: Option<String>,
}

/// Where an appointment is (after booking or rescheduling).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Placed {
    pub status: String,
    pub master_id: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Books with the named master, or the first free one: the reservation on
/// the master's day and the appointment commit together.
pub async fn book(
    p: &Platform,
    ctx: &CommandContext,
    me: &Principal,
    input: BookInput,
) -> Result<Done<Placed>, AppError> {
    let client_id = match input.client_id {
        Some(client) if client != me.user_id && !is_staff(me) => {
            return Err(AppError::forbidden("only staff book for other clients"))
        }
        Some(client) => client,
        None => me.user_id,
    };
    let service = active_service(p, input.service_id).await?;
    let masters = candidates_for(p, input.service_id, input.master_id).await?;
    if masters.is_empty() {
        return Err(AppError::conflict(
            "slot-unavailable",
            "no master performs this service",
        ));
    }
    let price = Money::parse("price", &service.price, &service.currency)
        .map_err(|_| AppError::internal("stored price unreadable"))?;
    let start = input.start;
    let end = start + Duration::minutes(service.duration_minutes);
    let (before, after) = (
        service.buffer_before_minutes as u32,
        service.buffer_after_minutes as u32,
    );
    let wanted = reservation_for(start, end, before, after);
    // One id for every attempt, so a rerun books the same appointment.
    let id = Uuid::now_v7().to_string();
    let zone = p.settings.timezone;
    let note = input.note.filter(|n| !n.trim().is_empty());
    p.commands
        .run(ctx, |mut unit: Unit| {
            let (service, masters, id, note, price) = (&service, &masters, &id, &note, &price);
            async move {
                let now = p.clock.now();
                let rules = slot_request(p, service, start.with_timezone(&zone).date_naive(), zone);
                let mut refusal = Reason::TakenByAppointment;
                for MasterRow {
                    id: master_id,
                    master,
                    ..
                } in masters
                {
                    if let Err(reason) = hours_allow(&rules, *master_id, master, start, end) {
                        refusal = reason;
                        continue;
                    }
                    let mut day = unit
                        .load::<MasterDay>(&day_of(*master_id, master, start))
                        .await?;
                    let reserve = MasterDayCommand::Reserve {
                        appointment_id: id.parse().expect("a UUID"),
                        reservation: wanted,
                    };
                    if let Err(MasterDayError::SlotTaken { .. }) =
                        unit.try_decide(&mut day, reserve).await?
                    {
                        refusal = Reason::TakenByAppointment;
                        continue;
                    }
                    let mut appointment = unit.create_subject::<Appointment>(id).await?;
                    let booking = Booking {
                        client_id,
                        master_id: *master_id,
                        service_id: input.service_id,
                        start,
                        end,
                        price: price.clone(),
                        buffer_before_minutes: before,
                        buffer_after_minutes: after,
                        note: note.clone(),
                        booked_at: Some(now),
                    };
                    unit.decide(&mut appointment, AppointmentCommand::Book(booking))
                        .await?;
                    let placed = Placed {
                        status: Status::Booked.as_str().into(),
                        master_id: *master_id,
                        start,
                        end,
                    };
                    return Ok((unit, placed));
                }
                Err(unavailable(refusal))
            }
        })
        .await
}

/// The appointment as its aggregate has it, if `me` may act on it.
async fn visible_booking(
    unit: &mut Unit,
    me: &Principal,
    id: &str,
) -> Result<(super::Loaded<Appointment>, Booking), AppError> {
    let appointment = unit.load_subject::<Appointment>(id).await?;
    let booking = appointment
        .state
        .booking
        .clone()
        .filter(|b| visible(me, b.client_id, b.master_id))
        .ok_or_else(|| AppError::not_found("no such appointment"))?;
    Ok((appointment, booking))
}

fn change_rules(p: &Platform, me: &Principal, booking: &Booking) -> ChangeRules {
    let acts_as_staff = is_staff(me) || (me.has(Role::Master) && booking.master_id == me.user_id);
    ChangeRules {
        now: p.clock.now(),
        by_client: !acts_as_staff,
        cancel_notice_minutes: p.settings.cancel_notice_minutes,
        booking_notice_minutes: p.settings.min_notice_minutes,
    }
}

/// Cancels, and gives the time back on the master's day, in one commit.
pub async fn cancel(
    p: &Platform,
    ctx: &CommandContext,
    me: &Principal,
    id: Uuid,
    reason: String,
) -> Result<Done<()>, AppError> {
    let id = id.to_string();
    p.commands
        .run(ctx, |mut unit: Unit| {
            let (id, reason) = (&id, &reason);
            async move {
                let (mut appointment, booking) = visible_booking(&mut unit, me, id).await?;
                let command = AppointmentCommand::Cancel {
                    reason: reason.clone(),
                    rules: change_rules(p, me, &booking),
                };
                unit.decide(&mut appointment, command).await?;
                let master = unit.load::<Master>(&booking.master_id.to_string()).await?;
                let mut day = unit
                    .load::<MasterDay>(&day_of(booking.master_id, &master.state, booking.start))
                    .await?;
                let release = MasterDayCommand::Release {
                    appointment_id: id.parse().expect("a UUID"),
                };
                unit.decide(&mut day, release).await?;
                Ok((unit, ()))
            }
        })
        .await
}

pub struct RescheduleInput {
    pub start: DateTime<Utc>,
    pub master_id: Option<Uuid>,
}

/// Moves the reservation and the appointment in one commit: the new time
/// is reserved (on the new master's day), the old one given back.
pub async fn reschedule(
    p: &Platform,
    ctx: &CommandContext,
    me: &Principal,
    id: Uuid,
    input: RescheduleInput,
) -> Result<Done<Placed>, AppError> {
    let id = id.to_string();
    p.commands
        .run(ctx, |mut unit: Unit| {
            let (id, input) = (&id, &input);
            async move {
                let (mut appointment, booking) = visible_booking(&mut unit, me, id).await?;
                let master_id = input.master_id.unwrap_or(booking.master_id);
                let start = input.start;
                let end = start + (booking.end - booking.start);
                let command = AppointmentCommand::Reschedule {
                    start,
                    end,
                    master_id,
                    rules: change_rules(p, me, &booking),
                };
                // The aggregate first: it names a state that forbids moving,
                // and the notice, before anything else is looked at.
                let events = unit.decide(&mut appointment, command).await?;
                let placed = |status: Option<Status>| Placed {
                    status: status.unwrap_or(Status::Booked).as_str().into(),
                    master_id,
                    start,
                    end,
                };
                if events.is_empty() {
                    return Ok((unit, placed(appointment.state.status)));
                }
                let masters = candidates_for(p, booking.service_id, Some(master_id)).await?;
                let MasterRow { master, .. } = masters.first().ok_or_else(|| {
                    AppError::unknown_reference("master_id", "not a master of this service")
                })?;
                let service = queries::service(&p.db.any, booking.service_id)
                    .await?
                    .ok_or_else(|| AppError::not_found("the service is gone"))?;
                let zone = p.settings.timezone;
                let rules =
                    slot_request(p, &service, start.with_timezone(&zone).date_naive(), zone);
                hours_allow(&rules, master_id, master, start, end).map_err(unavailable)?;
                let wanted = reservation_for(
                    start,
                    end,
                    booking.buffer_before_minutes,
                    booking.buffer_after_minutes,
                );
                let appointment_id: Uuid = id.parse().expect("a UUID");
                let new_day_id = day_of(master_id, master, start);
                let old_master = unit.load::<Master>(&booking.master_id.to_string()).await?;
                let old_day_id = day_of(booking.master_id, &old_master.state, booking.start);
                // On the same day the reservation is replaced; on another,
                // the new day reserves and the old one releases.
                let mut new_day = unit.load::<MasterDay>(&new_day_id).await?;
                let reserve = MasterDayCommand::Reserve {
                    appointment_id,
                    reservation: wanted,
                };
                if let Err(MasterDayError::SlotTaken { .. }) =
                    unit.try_decide(&mut new_day, reserve).await?
                {
                    return Err(unavailable(Reason::TakenByAppointment));
                }
                if new_day_id != old_day_id {
                    let mut old_day = unit.load::<MasterDay>(&old_day_id).await?;
                    let release = MasterDayCommand::Release { appointment_id };
                    unit.decide(&mut old_day, release).await?;
                }
                Ok((unit, placed(appointment.state.status)))
            }
        })
        .await
}

/// What staff record about an appointment.
#[derive(Debug, Clone, Copy)]
pub enum Processing {
    Confirm,
    Complete,
    MarkNoShow,
}

pub async fn process(
    p: &Platform,
    ctx: &CommandContext,
    me: &Principal,
    id: Uuid,
    step: Processing,
) -> Result<Done<()>, AppError> {
    let id = id.to_string();
    p.commands
        .run(ctx, |mut unit: Unit| {
            let id = &id;
            async move {
                let (mut appointment, _) = visible_booking(&mut unit, me, id).await?;
                let now = p.clock.now();
                let command = match step {
                    Processing::Confirm => AppointmentCommand::Confirm,
                    Processing::Complete => AppointmentCommand::Complete { now },
                    Processing::MarkNoShow => AppointmentCommand::MarkNoShow { now },
                };
                unit.decide(&mut appointment, command).await?;
                Ok((unit, ()))
            }
        })
        .await
}
