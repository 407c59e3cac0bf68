//! A master: a user with the `master` role who performs services, with
//! weekly working hours and breaks in their own time zone, days off and
//! one-off date overrides.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{check_weekly, TimeRange, WeeklyRange};
use crate::{FieldError, RuleKind, RuleViolation};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MasterCommand {
    Register {
        user_id: Uuid,
        service_ids: BTreeSet<Uuid>,
        time_zone: Tz,
        working_hours: Vec<WeeklyRange>,
        breaks: Vec<WeeklyRange>,
    },
    SetWorkingHours {
        working_hours: Vec<WeeklyRange>,
        breaks: Vec<WeeklyRange>,
    },
    SetServices {
        service_ids: BTreeSet<Uuid>,
    },
    AddDaysOff {
        dates: BTreeSet<NaiveDate>,
    },
    /// Replaces the hours of one date (an empty list: closed that day).
    OverrideDate {
        date: NaiveDate,
        hours: Vec<TimeRange>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MasterEvent {
    Registered {
        user_id: Uuid,
        service_ids: BTreeSet<Uuid>,
        time_zone: Tz,
        working_hours: Vec<WeeklyRange>,
        breaks: Vec<WeeklyRange>,
    },
    WorkingHoursSet {
        working_hours: Vec<WeeklyRange>,
        breaks: Vec<WeeklyRange>,
    },
    ServicesSet {
        service_ids: BTreeSet<Uuid>,
    },
    DaysOffAdded {
        dates: BTreeSet<NaiveDate>,
    },
    DateOverridden {
        date: NaiveDate,
        hours: Vec<TimeRange>,
    },
}

impl DomainEvent for MasterEvent {
    fn event_type(&self) -> String {
        match self {
            MasterEvent::Registered { .. } => "MasterRegistered",
            MasterEvent::WorkingHoursSet { .. } => "MasterWorkingHoursSet",
            MasterEvent::ServicesSet { .. } => "MasterServicesSet",
            MasterEvent::DaysOffAdded { .. } => "MasterDaysOffAdded",
            MasterEvent::DateOverridden { .. } => "MasterDateOverridden",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterError {
    #[error("this user is a master already")]
    Exists,
    #[error("no such master")]
    NotFound,
    #[error("invalid schedule")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for MasterError {
    fn kind(&self) -> RuleKind {
        match self {
            MasterError::Exists => RuleKind::Conflict,
            MasterError::NotFound => RuleKind::NotFound,
            MasterError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            MasterError::Exists => "master-exists",
            MasterError::NotFound => "not-found",
            MasterError::Invalid(_) => "validation",
        }
    }
}

/// One master's plan for one of their local dates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DayPlan {
    pub day_off: bool,
    pub working: Vec<TimeRange>,
    pub breaks: Vec<TimeRange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Master {
    pub registered: bool,
    pub user_id: Uuid,
    pub service_ids: BTreeSet<Uuid>,
    pub time_zone: Tz,
    pub working_hours: Vec<WeeklyRange>,
    pub breaks: Vec<WeeklyRange>,
    pub days_off: BTreeSet<NaiveDate>,
    pub overrides: BTreeMap<NaiveDate, Vec<TimeRange>>,
}

impl Default for Master {
    fn default() -> Self {
        Self {
            registered: false,
            user_id: Uuid::nil(),
            service_ids: BTreeSet::new(),
            time_zone: chrono_tz::UTC,
            working_hours: Vec::new(),
            breaks: Vec::new(),
            days_off: BTreeSet::new(),
            overrides: BTreeMap::new(),
        }
    }
}

impl Master {
    /// Working hours and breaks of a local date: a day off wins, then a
    /// date override, then the weekly hours.
    pub fn day_plan(&self, date: NaiveDate) -> DayPlan {
        if self.days_off.contains(&date) {
            return DayPlan {
                day_off: true,
                ..DayPlan::default()
            };
        }
        let weekday = date.weekday();
        let on_day = |ranges: &[WeeklyRange]| -> Vec<TimeRange> {
            let mut out: Vec<_> = ranges
                .iter()
                .filter(|r| r.weekday == weekday)
                .map(|r| r.range)
                .collect();
            out.sort_by_key(|r| r.start);
            out
        };
        let working = match self.overrides.get(&date) {
            Some(hours) => hours.clone(),
            None => on_day(&self.working_hours),
        };
        DayPlan {
            day_off: working.is_empty(),
            working,
            breaks: on_day(&self.breaks),
        }
    }
}

fn check_schedule(
    working_hours: &[WeeklyRange],
    breaks: &[WeeklyRange],
) -> Result<(), MasterError> {
    let mut errors = Vec::new();
    if let Err(e) = check_weekly("working_hours", working_hours) {
        errors.push(e);
    }
    if let Err(e) = check_weekly("breaks", breaks) {
        errors.push(e);
    }
    if working_hours.len() > 50 || breaks.len() > 50 {
        errors.push(FieldError::new("working_hours", "at most 50 ranges"));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(MasterError::Invalid(errors))
    }
}

pub fn decide(state: &Master, command: MasterCommand) -> Result<Vec<MasterEvent>, MasterError> {
    if let MasterCommand::Register {
        user_id,
        service_ids,
        time_zone,
        working_hours,
        breaks,
    } = command
    {
        if state.registered {
            return Err(MasterError::Exists);
        }
        check_schedule(&working_hours, &breaks)?;
        return Ok(vec![MasterEvent::Registered {
            user_id,
            service_ids,
            time_zone,
            working_hours,
            breaks,
        }]);
    }
    if !state.registered {
        return Err(MasterError::NotFound);
    }
    Ok(match command {
        MasterCommand::Register { .. } => unreachable!("handled above"),
        MasterCommand::SetWorkingHours {
            working_hours,
            breaks,
        } => {
            check_schedule(&working_hours, &breaks)?;
            vec![MasterEvent::WorkingHoursSet {
                working_hours,
                breaks,
            }]
        }
        MasterCommand::SetServices { service_ids } => {
            vec![MasterEvent::ServicesSet { service_ids }]
        }
        MasterCommand::AddDaysOff { dates } => {
            let new: BTreeSet<_> = dates.difference(&state.days_off).copied().collect();
            if new.is_empty() {
                vec![]
            } else {
                vec![MasterEvent::DaysOffAdded { dates: new }]
            }
        }
        MasterCommand::OverrideDate { date, mut hours } => {
            hours.sort_by_key(|r| r.start);
            if hours.windows(2).any(|w| w[0].overlaps(&w[1])) {
                return Err(MasterError::Invalid(vec![FieldError::new(
                    "hours",
                    "ranges overlap",
                )]));
            }
            vec![MasterEvent::DateOverridden { date, hours }]
        }
    })
}

pub fn evolve(state: &mut Master, event: &MasterEvent) {
    match event {
        MasterEvent::Registered {
            user_id,
            service_ids,
            time_zone,
            working_hours,
            breaks,
        } => {
            state.registered = true;
            state.user_id = *user_id;
            state.service_ids = service_ids.clone();
            state.time_zone = *time_zone;
            state.working_hours = working_hours.clone();
            state.breaks = breaks.clone();
        }
        MasterEvent::WorkingHoursSet {
            working_hours,
            breaks,
        } => {
            state.working_hours = working_hours.clone();
            state.breaks = breaks.clone();
        }
        MasterEvent::ServicesSet { service_ids } => state.service_ids = service_ids.clone(),
        MasterEvent::DaysOffAdded { dates } => state.days_off.extend(dates.iter().copied()),
        MasterEvent::DateOverridden { date, hours } => {
            state.overrides.insert(*date, hours.clone());
        }
    }
}

crate::decider_aggregate!(
    Master,
    "master",
    MasterCommand,
    MasterEvent,
    MasterError,
    decide,
    evolve
);

#[cfg(test)]
mod tests {
    use chrono::{NaiveTime, Weekday};

    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn range(day: Weekday, from: (u32, u32), to: (u32, u32)) -> WeeklyRange {
        WeeklyRange {
            weekday: day,
            range: TimeRange::new("x", t(from.0, from.1), t(to.0, to.1)).unwrap(),
        }
    }

    fn registered() -> Master {
        let mut m = Master::default();
        evolve(
            &mut m,
            &MasterEvent::Registered {
                user_id: Uuid::nil(),
                service_ids: BTreeSet::new(),
                time_zone: chrono_tz::Europe::Berlin,
                working_hours: vec![range(Weekday::Mon, (9, 0), (18, 0))],
                breaks: vec![range(Weekday::Mon, (13, 0), (14, 0))],
            },
        );
        m
    }

    #[test]
    fn the_day_plan_uses_weekly_hours_then_overrides_then_days_off() {
        let mut m = registered();
        let monday = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let plan = m.day_plan(monday);
        assert!(!plan.day_off);
        assert_eq!(
            plan.working,
            vec![TimeRange::new("x", t(9, 0), t(18, 0)).unwrap()]
        );
        assert_eq!(plan.breaks.len(), 1);
        assert!(
            m.day_plan(monday.succ_opt().unwrap()).day_off,
            "no hours on Tuesday"
        );

        let short = vec![TimeRange::new("x", t(10, 0), t(12, 0)).unwrap()];
        let events = decide(
            &m,
            MasterCommand::OverrideDate {
                date: monday,
                hours: short.clone(),
            },
        )
        .unwrap();
        evolve(&mut m, &events[0]);
        assert_eq!(m.day_plan(monday).working, short);

        let events = decide(
            &m,
            MasterCommand::AddDaysOff {
                dates: BTreeSet::from([monday]),
            },
        )
        .unwrap();
        evolve(&mut m, &events[0]);
        assert!(m.day_plan(monday).day_off);
        assert!(decide(
            &m,
            MasterCommand::AddDaysOff {
                dates: BTreeSet::from([monday])
            }
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn overlapping_working_hours_are_refused_and_unknown_masters_not_found() {
        let m = registered();
        let overlapping = vec![
            range(Weekday::Tue, (9, 0), (12, 0)),
            range(Weekday::Tue, (11, 0), (15, 0)),
        ];
        let err = decide(
            &m,
            MasterCommand::SetWorkingHours {
                working_hours: overlapping,
                breaks: vec![],
            },
        )
        .unwrap_err();
        assert!(matches!(err, MasterError::Invalid(ref f) if f[0].field == "working_hours"));
        let cmd = MasterCommand::SetServices {
            service_ids: BTreeSet::new(),
        };
        assert_eq!(decide(&Master::default(), cmd), Err(MasterError::NotFound));
    }
}
