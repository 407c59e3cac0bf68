//! given events / when command / then events or error, for every transition.

use chrono::{TimeZone, Utc};

use super::*;

fn at(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, h, 0, 0).unwrap()
}

fn booking() -> Booking {
    Booking {
        client_id: Uuid::from_u128(1),
        master_id: Uuid::from_u128(2),
        service_id: Uuid::from_u128(3),
        start: at(10),
        end: at(11),
        price: Money::parse("price", "25.00", "EUR").unwrap(),
        buffer_before_minutes: 0,
        buffer_after_minutes: 10,
        note: None,
    }
}

fn given(events: &[AppointmentEvent]) -> Appointment {
    let mut state = Appointment::default();
    events.iter().for_each(|e| evolve(&mut state, e));
    state
}

fn cancel(by_client: bool, now: DateTime<Utc>) -> AppointmentCommand {
    AppointmentCommand::Cancel {
        reason: "ill".into(),
        by_client,
        now,
        client_notice_minutes: 120,
    }
}

#[test]
fn booking_records_the_terms_once() {
    let events = decide(&given(&[]), AppointmentCommand::Book(booking())).unwrap();
    assert_eq!(events, vec![AppointmentEvent::Booked(booking())]);
    let again = decide(&given(&events), AppointmentCommand::Book(booking()));
    assert_eq!(again, Err(AppointmentError::Exists));
}

#[test]
fn booking_needs_an_interval_forward_in_time() {
    let mut backwards = booking();
    backwards.end = at(9);
    assert!(matches!(
        decide(&given(&[]), AppointmentCommand::Book(backwards)),
        Err(AppointmentError::Invalid(_))
    ));
}

#[test]
fn the_happy_path_is_booked_confirmed_completed() {
    let booked = [AppointmentEvent::Booked(booking())];
    assert_eq!(
        decide(&given(&booked), AppointmentCommand::Confirm).unwrap(),
        vec![AppointmentEvent::Confirmed]
    );
    let confirmed = [
        AppointmentEvent::Booked(booking()),
        AppointmentEvent::Confirmed,
    ];
    assert_eq!(
        decide(&given(&confirmed), AppointmentCommand::Complete).unwrap(),
        vec![AppointmentEvent::Completed]
    );
    assert_eq!(
        decide(&given(&confirmed), AppointmentCommand::MarkNoShow).unwrap(),
        vec![AppointmentEvent::MarkedNoShow]
    );
}

#[test]
fn any_other_transition_names_the_current_state() {
    let booked = [AppointmentEvent::Booked(booking())];
    let completed = [
        AppointmentEvent::Booked(booking()),
        AppointmentEvent::Confirmed,
        AppointmentEvent::Completed,
    ];
    let cancelled = [
        AppointmentEvent::Booked(booking()),
        AppointmentEvent::Cancelled { reason: "x".into() },
    ];
    let cases = [
        (&booked[..], AppointmentCommand::Complete, Status::Booked),
        (&booked[..], AppointmentCommand::MarkNoShow, Status::Booked),
        (
            &completed[..],
            AppointmentCommand::Confirm,
            Status::Completed,
        ),
        (&completed[..], cancel(false, at(0)), Status::Completed),
        (
            &cancelled[..],
            AppointmentCommand::Confirm,
            Status::Cancelled,
        ),
        (
            &cancelled[..],
            AppointmentCommand::Reschedule {
                start: at(12),
                end: at(13),
                master_id: Uuid::nil(),
            },
            Status::Cancelled,
        ),
    ];
    for (events, command, status) in cases {
        let err = decide(&given(events), command).unwrap_err();
        assert!(
            matches!(err, AppointmentError::InvalidTransition { current, .. } if current == status),
            "{err}"
        );
        assert!(err.to_string().contains(status.as_str()));
    }
}

#[test]
fn clients_cancel_only_before_the_notice_period_staff_any_time() {
    let booked = given(&[AppointmentEvent::Booked(booking())]);
    // Start 10:00, notice 120 min: the deadline is 08:00.
    assert_eq!(
        decide(&booked, cancel(true, at(7))).unwrap(),
        vec![AppointmentEvent::Cancelled {
            reason: "ill".into()
        }]
    );
    assert_eq!(
        decide(&booked, cancel(true, at(9))),
        Err(AppointmentError::TooLateToCancel { deadline: at(8) })
    );
    assert!(
        decide(&booked, cancel(false, at(9))).is_ok(),
        "staff may cancel late"
    );
    let no_reason = AppointmentCommand::Cancel {
        reason: " ".into(),
        by_client: false,
        now: at(0),
        client_notice_minutes: 0,
    };
    assert!(matches!(
        decide(&booked, no_reason),
        Err(AppointmentError::Invalid(_))
    ));
}

#[test]
fn rescheduling_keeps_the_appointment_and_records_from_and_to() {
    let booked = given(&[AppointmentEvent::Booked(booking())]);
    let events = decide(
        &booked,
        AppointmentCommand::Reschedule {
            start: at(14),
            end: at(15),
            master_id: Uuid::from_u128(9),
        },
    )
    .unwrap();
    assert_eq!(
        events,
        vec![AppointmentEvent::Rescheduled {
            from_start: at(10),
            from_end: at(11),
            from_master_id: Uuid::from_u128(2),
            to_start: at(14),
            to_end: at(15),
            to_master_id: Uuid::from_u128(9),
        }]
    );
    let mut state = booked;
    evolve(&mut state, &events[0]);
    assert_eq!(state.booking.as_ref().unwrap().start, at(14));
    assert_eq!(state.status, Some(Status::Booked));
}

#[test]
fn commands_on_no_appointment_are_not_found() {
    assert_eq!(
        decide(&given(&[]), AppointmentCommand::Confirm),
        Err(AppointmentError::NotFound)
    );
}
