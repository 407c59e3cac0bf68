//! One master's booked intervals on one of their local dates. Every booking
//! and reschedule reserves here first; two reservations that overlap (with
//! their buffers) cannot both be stored, because they are commands on the
//! same aggregate and optimistic concurrency lets one win.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{RuleKind, RuleViolation};

/// The aggregate id of a master's date.
pub fn master_day_id(master_id: Uuid, date: NaiveDate) -> String {
    format!("{master_id}:{date}")
}

/// A reserved interval: the appointment itself and the time its buffers
/// keep free around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub block_start: DateTime<Utc>,
    pub block_end: DateTime<Utc>,
}

impl Reservation {
    /// Two reservations clash when either one's blocked time (with its
    /// buffers) overlaps the other's appointment.
    pub fn clashes(&self, other: &Reservation) -> bool {
        let overlap = |a0: DateTime<Utc>,
                       a1: DateTime<Utc>,
                       b0: DateTime<Utc>,
                       b1: DateTime<Utc>| a0 < b1 && b0 < a1;
        overlap(self.block_start, self.block_end, other.start, other.end)
            || overlap(other.block_start, other.block_end, self.start, self.end)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MasterDayCommand {
    Reserve {
        appointment_id: Uuid,
        reservation: Reservation,
    },
    Release {
        appointment_id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MasterDayEvent {
    Reserved {
        appointment_id: Uuid,
        reservation: Reservation,
    },
    Released {
        appointment_id: Uuid,
    },
}

impl DomainEvent for MasterDayEvent {
    fn event_type(&self) -> String {
        match self {
            MasterDayEvent::Reserved { .. } => "MasterTimeReserved",
            MasterDayEvent::Released { .. } => "MasterTimeReleased",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterDayError {
    #[error("the master is booked at that time (appointment {by})")]
    SlotTaken { by: Uuid },
}

impl RuleViolation for MasterDayError {
    fn kind(&self) -> RuleKind {
        RuleKind::Conflict
    }
    fn code(&self) -> &'static str {
        "slot-taken"
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MasterDay {
    pub reservations: BTreeMap<Uuid, Reservation>,
}

pub fn decide(
    state: &MasterDay,
    command: MasterDayCommand,
) -> Result<Vec<MasterDayEvent>, MasterDayError> {
    match command {
        MasterDayCommand::Reserve {
            appointment_id,
            reservation,
        } => {
            if state.reservations.get(&appointment_id) == Some(&reservation) {
                return Ok(vec![]);
            }
            let clash = state
                .reservations
                .iter()
                .find(|(id, r)| **id != appointment_id && r.clashes(&reservation));
            if let Some((by, _)) = clash {
                return Err(MasterDayError::SlotTaken { by: *by });
            }
            Ok(vec![MasterDayEvent::Reserved {
                appointment_id,
                reservation,
            }])
        }
        MasterDayCommand::Release { appointment_id } => {
            Ok(if state.reservations.contains_key(&appointment_id) {
                vec![MasterDayEvent::Released { appointment_id }]
            } else {
                vec![]
            })
        }
    }
}

pub fn evolve(state: &mut MasterDay, event: &MasterDayEvent) {
    match event {
        MasterDayEvent::Reserved {
            appointment_id,
            reservation,
        } => {
            state.reservations.insert(*appointment_id, *reservation);
        }
        MasterDayEvent::Released { appointment_id } => {
            state.reservations.remove(appointment_id);
        }
    }
}

crate::decider_aggregate!(
    MasterDay,
    "master_day",
    MasterDayCommand,
    MasterDayEvent,
    MasterDayError,
    decide,
    evolve
);

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn reservation(h: u32, m: u32, minutes: i64, after: i64) -> Reservation {
        let start = Utc.with_ymd_and_hms(2026, 5, 4, h, m, 0).unwrap();
        let end = start + Duration::minutes(minutes);
        Reservation {
            start,
            end,
            block_start: start,
            block_end: end + Duration::minutes(after),
        }
    }

    fn with(reservations: &[(u128, Reservation)]) -> MasterDay {
        let mut day = MasterDay::default();
        for (id, r) in reservations {
            evolve(
                &mut day,
                &MasterDayEvent::Reserved {
                    appointment_id: Uuid::from_u128(*id),
                    reservation: *r,
                },
            );
        }
        day
    }

    #[test]
    fn an_overlapping_reservation_names_the_appointment_holding_the_slot() {
        let day = with(&[(1, reservation(10, 0, 60, 0))]);
        let cmd = MasterDayCommand::Reserve {
            appointment_id: Uuid::from_u128(2),
            reservation: reservation(10, 30, 60, 0),
        };
        assert_eq!(
            decide(&day, cmd),
            Err(MasterDayError::SlotTaken {
                by: Uuid::from_u128(1)
            })
        );
        let next = MasterDayCommand::Reserve {
            appointment_id: Uuid::from_u128(2),
            reservation: reservation(11, 0, 60, 0),
        };
        assert!(decide(&day, next).is_ok(), "back to back is fine");
    }

    #[test]
    fn a_buffer_keeps_the_time_after_an_appointment_free() {
        let day = with(&[(1, reservation(10, 0, 60, 15))]);
        let inside_buffer = MasterDayCommand::Reserve {
            appointment_id: Uuid::from_u128(2),
            reservation: reservation(11, 0, 30, 0),
        };
        assert_eq!(
            decide(&day, inside_buffer),
            Err(MasterDayError::SlotTaken {
                by: Uuid::from_u128(1)
            })
        );
        let after_buffer = MasterDayCommand::Reserve {
            appointment_id: Uuid::from_u128(2),
            reservation: reservation(11, 15, 30, 0),
        };
        assert!(decide(&day, after_buffer).is_ok());
    }

    #[test]
    fn releasing_frees_the_slot_and_repeats_change_nothing() {
        let day = with(&[(1, reservation(10, 0, 60, 0))]);
        let release = MasterDayCommand::Release {
            appointment_id: Uuid::from_u128(1),
        };
        let events = decide(&day, release.clone()).unwrap();
        let mut day = day;
        evolve(&mut day, &events[0]);
        assert!(day.reservations.is_empty());
        assert!(decide(&day, release).unwrap().is_empty());
        let same = MasterDayCommand::Reserve {
            appointment_id: Uuid::from_u128(1),
            reservation: reservation(10, 0, 60, 0),
        };
        let mut day = with(&[(1, reservation(10, 0, 60, 0))]);
        assert!(
            decide(&day, same).unwrap().is_empty(),
            "reserving again is idempotent"
        );
        let moved = MasterDayCommand::Reserve {
            appointment_id: Uuid::from_u128(1),
            reservation: reservation(10, 30, 60, 0),
        };
        let events = decide(&day, moved).unwrap();
        evolve(&mut day, &events[0]);
        assert_eq!(
            day.reservations.len(),
            1,
            "an appointment moving within the day replaces its own interval"
        );
    }
}
