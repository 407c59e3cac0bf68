//! Free slots of a day, and — on request — why the other candidate slots
//! are not free. Pure: the caller passes the masters, their reservations
//! and the clock. Candidate starts step through the requested day in UTC,
//! so a day with a DST change simply has 23 or 25 hours; each master's
//! working hours are placed on the UTC axis through the master's own zone.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::master_day::Reservation;
use crate::master::Master;
use crate::values::TimeRange;

/// What is asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub date: NaiveDate,
    /// The zone the date is read in (the business zone unless the caller
    /// names one).
    pub time_zone: Tz,
    pub duration: Duration,
    pub buffer_before: Duration,
    pub buffer_after: Duration,
    pub step: Duration,
    pub min_notice: Duration,
    pub now: DateTime<Utc>,
}

/// One master who performs the service, with what is booked around the day.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub master_id: Uuid,
    pub master: &'a Master,
    pub booked: Vec<(Uuid, Reservation)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    InThePast,
    TooSoon,
    DayOff,
    OutsideWorkingHours,
    Break,
    TakenByAppointment,
    BufferOfAppointment,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub master_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unavailable {
    pub start: DateTime<Utc>,
    pub master_id: Uuid,
    pub reason: Reason,
    pub appointment_id: Option<Uuid>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Availability {
    pub slots: Vec<Slot>,
    pub unavailable: Vec<Unavailable>,
}

/// The instant a local date and time means in `tz`. A time skipped by a DST
/// change moves forward to the first valid instant; a repeated one takes
/// the earlier.
pub fn local_instant(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let naive = NaiveDateTime::new(date, time);
    let mut probe = naive;
    for _ in 0..=180 {
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            return t.with_timezone(&Utc);
        }
        probe += Duration::minutes(1);
    }
    // No zone skips more than three hours; fall back to reading it as UTC.
    Utc.from_utc_datetime(&naive)
}

/// Midnight to midnight of `date` in `tz`, as instants.
pub fn day_bounds(tz: Tz, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let next = date.succ_opt().unwrap_or(date);
    (
        local_instant(tz, date, NaiveTime::MIN),
        local_instant(tz, next, NaiveTime::MIN),
    )
}

fn instants(tz: Tz, date: NaiveDate, range: &TimeRange) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        local_instant(tz, date, range.start),
        local_instant(tz, date, range.end),
    )
}

fn overlaps(a0: DateTime<Utc>, a1: DateTime<Utc>, b0: DateTime<Utc>, b1: DateTime<Utc>) -> bool {
    a0 < b1 && b0 < a1
}

/// Why `master` cannot take `[start, end)`, or `None` if they can.
pub fn check_slot(
    request: &Request,
    candidate: &Candidate<'_>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Option<(Reason, Option<Uuid>)> {
    if start < request.now {
        return Some((Reason::InThePast, None));
    }
    if start < request.now + request.min_notice {
        return Some((Reason::TooSoon, None));
    }
    let tz = candidate.master.time_zone;
    let local_date = start.with_timezone(&tz).date_naive();
    let plan = candidate.master.day_plan(local_date);
    if plan.day_off {
        return Some((Reason::DayOff, None));
    }
    let inside = plan.working.iter().any(|range| {
        let (from, to) = instants(tz, local_date, range);
        from <= start && end <= to
    });
    if !inside {
        return Some((Reason::OutsideWorkingHours, None));
    }
    if plan.breaks.iter().any(|range| {
        let (from, to) = instants(tz, local_date, range);
        overlaps(from, to, start, end)
    }) {
        return Some((Reason::Break, None));
    }
    if let Some((id, _)) = candidate
        .booked
        .iter()
        .find(|(_, r)| overlaps(r.start, r.end, start, end))
    {
        return Some((Reason::TakenByAppointment, Some(*id)));
    }
    let wanted = Reservation {
        start,
        end,
        block_start: start - request.buffer_before,
        block_end: end + request.buffer_after,
    };
    if let Some((id, _)) = candidate.booked.iter().find(|(_, r)| r.clashes(&wanted)) {
        return Some((Reason::BufferOfAppointment, Some(*id)));
    }
    None
}

/// Every candidate start of the day, for every master: free slots with the
/// masters who can take them, and the rest with their reasons.
pub fn availability(request: &Request, candidates: &[Candidate<'_>]) -> Availability {
    let (day_start, day_end) = day_bounds(request.time_zone, request.date);
    let step = request.step.max(Duration::minutes(1));
    let mut result = Availability::default();
    let mut start = day_start;
    while start < day_end {
        let end = start + request.duration;
        let mut free = Vec::new();
        for candidate in candidates {
            match check_slot(request, candidate, start, end) {
                None => free.push(candidate.master_id),
                Some((reason, appointment_id)) => result.unavailable.push(Unavailable {
                    start,
                    master_id: candidate.master_id,
                    reason,
                    appointment_id,
                }),
            }
        }
        if !free.is_empty() {
            result.slots.push(Slot {
                start,
                end,
                master_ids: free,
            });
        }
        start += step;
    }
    result
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::Weekday;

    use super::*;
    use crate::master::{evolve, MasterEvent};
    use crate::values::WeeklyRange;

    /// (weekday, from (h, m), to (h, m))
    type Hours = (Weekday, (u32, u32), (u32, u32));

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn master(tz: Tz, hours: &[Hours], breaks: &[Hours]) -> Master {
        let weekly = |list: &[Hours]| {
            list.iter()
                .map(|(d, a, b)| WeeklyRange {
                    weekday: *d,
                    range: TimeRange::new("x", t(a.0, a.1), t(b.0, b.1)).unwrap(),
                })
                .collect()
        };
        let mut m = Master::default();
        evolve(
            &mut m,
            &MasterEvent::Registered {
                user_id: Uuid::nil(),
                service_ids: BTreeSet::new(),
                time_zone: tz,
                working_hours: weekly(hours),
                breaks: weekly(breaks),
            },
        );
        m
    }

    fn request(date: NaiveDate, tz: Tz, minutes: i64, step: i64) -> Request {
        Request {
            date,
            time_zone: tz,
            duration: Duration::minutes(minutes),
            buffer_before: Duration::zero(),
            buffer_after: Duration::zero(),
            step: Duration::minutes(step),
            min_notice: Duration::zero(),
            now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    fn utc(date: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
        Utc.from_utc_datetime(&NaiveDateTime::new(date, t(h, m)))
    }

    #[test]
    fn explain_names_working_hours_the_break_and_two_bookings() {
        let monday = NaiveDate::from_ymd_opt(2026, 5, 4).unwrap();
        let m = master(
            chrono_tz::UTC,
            &[(Weekday::Mon, (9, 0), (13, 0))],
            &[(Weekday::Mon, (11, 0), (11, 30))],
        );
        let first = Reservation {
            start: utc(monday, 9, 0),
            end: utc(monday, 9, 30),
            block_start: utc(monday, 9, 0),
            block_end: utc(monday, 9, 30),
        };
        // The second booking keeps 30 minutes free after it.
        let second = Reservation {
            start: utc(monday, 12, 0),
            end: utc(monday, 12, 30),
            block_start: utc(monday, 12, 0),
            block_end: utc(monday, 13, 0),
        };
        let id = Uuid::from_u128;
        let candidate = Candidate {
            master_id: id(7),
            master: &m,
            booked: vec![(id(1), first), (id(2), second)],
        };
        let result = availability(&request(monday, chrono_tz::UTC, 30, 30), &[candidate]);

        let free: Vec<_> = result
            .slots
            .iter()
            .map(|s| s.start.format("%H:%M").to_string())
            .collect();
        assert_eq!(free, ["09:30", "10:00", "10:30", "11:30"]);
        assert!(result.slots.iter().all(|s| s.master_ids == vec![id(7)]));
        let why = |h, m| {
            result
                .unavailable
                .iter()
                .find(|u| u.start == utc(monday, h, m))
                .map(|u| (u.reason, u.appointment_id))
        };
        assert_eq!(why(8, 30), Some((Reason::OutsideWorkingHours, None)));
        assert_eq!(why(9, 0), Some((Reason::TakenByAppointment, Some(id(1)))));
        assert_eq!(why(11, 0), Some((Reason::Break, None)));
        assert_eq!(why(12, 0), Some((Reason::TakenByAppointment, Some(id(2)))));
        assert_eq!(
            why(12, 30),
            Some((Reason::BufferOfAppointment, Some(id(2))))
        );
        assert_eq!(why(13, 0), Some((Reason::OutsideWorkingHours, None)));
        assert_eq!(
            result.unavailable.len() + result.slots.len(),
            48,
            "every half hour of the day is accounted for"
        );
    }

    #[test]
    fn working_hours_follow_the_masters_zone_across_a_dst_change() {
        let berlin = chrono_tz::Europe::Berlin;
        // Clocks go from 02:00 to 03:00 on Sunday 29 March 2026.
        let saturday = NaiveDate::from_ymd_opt(2026, 3, 28).unwrap();
        let sunday = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let m = master(
            berlin,
            &[
                (Weekday::Sat, (9, 0), (12, 0)),
                (Weekday::Sun, (9, 0), (12, 0)),
            ],
            &[],
        );
        let candidate = || Candidate {
            master_id: Uuid::nil(),
            master: &m,
            booked: vec![],
        };
        let before = availability(&request(saturday, berlin, 60, 60), &[candidate()]);
        let after = availability(&request(sunday, berlin, 60, 60), &[candidate()]);
        let starts = |a: &Availability| {
            a.slots
                .iter()
                .map(|s| s.start.with_timezone(&berlin).format("%H:%M%z").to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(starts(&before), ["09:00+0100", "10:00+0100", "11:00+0100"]);
        assert_eq!(starts(&after), ["09:00+0200", "10:00+0200", "11:00+0200"]);
        assert_eq!(after.slots[0].start, utc(sunday, 7, 0));
        assert_eq!(
            after.slots.len() + after.unavailable.len(),
            23,
            "the day has 23 hours"
        );
    }

    #[test]
    fn past_and_too_soon_slots_are_not_offered() {
        let monday = NaiveDate::from_ymd_opt(2026, 5, 4).unwrap();
        let m = master(chrono_tz::UTC, &[(Weekday::Mon, (9, 0), (13, 0))], &[]);
        let mut req = request(monday, chrono_tz::UTC, 60, 60);
        req.now = utc(monday, 9, 30);
        req.min_notice = Duration::hours(2);
        let result = availability(
            &req,
            &[Candidate {
                master_id: Uuid::nil(),
                master: &m,
                booked: vec![],
            }],
        );
        let why = |h| {
            result
                .unavailable
                .iter()
                .find(|u| u.start == utc(monday, h, 0))
                .map(|u| u.reason)
        };
        assert_eq!(why(9), Some(Reason::InThePast));
        assert_eq!(why(10), Some(Reason::TooSoon));
        assert_eq!(why(11), Some(Reason::TooSoon));
        assert_eq!(
            result.slots.iter().map(|s| s.start).collect::<Vec<_>>(),
            [utc(monday, 12, 0)]
        );
    }

    #[test]
    fn a_day_off_is_the_reason_for_every_slot_of_that_master() {
        let monday = NaiveDate::from_ymd_opt(2026, 5, 4).unwrap();
        let mut m = master(chrono_tz::UTC, &[(Weekday::Mon, (9, 0), (13, 0))], &[]);
        evolve(
            &mut m,
            &MasterEvent::DaysOffAdded {
                dates: BTreeSet::from([monday]),
            },
        );
        let result = availability(
            &request(monday, chrono_tz::UTC, 60, 60),
            &[Candidate {
                master_id: Uuid::nil(),
                master: &m,
                booked: vec![],
            }],
        );
        assert!(result.slots.is_empty());
        assert!(result
            .unavailable
            .iter()
            .all(|u| u.reason == Reason::DayOff));
    }
}
