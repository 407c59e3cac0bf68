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
        booked_at: Some(at(0)),
    }
}

fn rules(by_client: bool, now: DateTime<Utc>) -> ChangeRules {
    ChangeRules {
        now,
        by_client,
        cancel_notice_minutes: 120,
        booking_notice_minutes: 60,
    }
}

fn complete(now: DateTime<Utc>) -> AppointmentCommand {
    AppointmentCommand::Complete { now }
}

fn no_show(now: DateTime<Utc>) -> AppointmentCommand {
    AppointmentCommand::MarkNoShow { now }
}

fn given(events: &[AppointmentEvent]) -> Appointment {
    let mut state = Appointment::default();
    events.iter().for_each(|e| evolve(&mut state, e));
    state
}

fn cancel(by_client: bool, now: DateTime<Utc>) -> AppointmentCommand {
    AppointmentCommand::Cancel {
        reason: "ill".into(),
        rules: rules(by_client, now),
    }
}

fn reschedule(to: u32, by_client: bool, now: DateTime<Utc>) -> AppointmentCommand {
    AppointmentCommand::Reschedule {
        start: at(to),
        end: at(to + 1),
        master_id: Uuid::from_u128(2),
        rules: rules(by_client, now),
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
        decide(&given(&confirmed), complete(at(11))).unwrap(),
        vec![AppointmentEvent::Completed]
    );
    assert_eq!(
        decide(&given(&confirmed), no_show(at(10))).unwrap(),
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
        (&booked[..], complete(at(11)), Status::Booked),
        (&booked[..], no_show(at(11)), Status::Booked),
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
            reschedule(12, false, at(0)),
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
        rules: rules(false, at(0)),
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
            rules: rules(true, at(1)),
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
            at: Some(at(1)),
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

#[test]
fn a_client_too_late_to_cancel_cannot_dodge_the_notice_by_rescheduling() {
    let booked = given(&[AppointmentEvent::Booked(booking())]);
    // Start 10:00, cancellation notice 120 min: at 09:00 it is too late.
    assert_eq!(
        decide(&booked, reschedule(16, true, at(9))),
        Err(AppointmentError::TooLateToReschedule { deadline: at(8) })
    );
    assert!(
        decide(&booked, reschedule(16, false, at(9))).is_ok(),
        "staff may move it late"
    );
    assert!(decide(&booked, reschedule(16, true, at(7))).is_ok());
}

#[test]
fn completing_or_a_no_show_waits_for_the_start() {
    let confirmed = given(&[
        AppointmentEvent::Booked(booking()),
        AppointmentEvent::Confirmed,
    ]);
    for command in [complete(at(9)), no_show(at(9))] {
        assert!(matches!(
            decide(&confirmed, command),
            Err(AppointmentError::NotStartedYet { start, .. }) if start == at(10)
        ));
    }
}

#[test]
fn a_booking_made_inside_the_cancellation_notice_can_be_cancelled_until_the_booking_notice() {
    // Booking notice 60 min, cancellation notice 120 min: booked at 08:30
    // for 10:00, it would never be cancellable; it is until 09:00.
    let mut late = booking();
    late.booked_at = Some(at(8) + Duration::minutes(30));
    let booked = given(&[AppointmentEvent::Booked(late)]);
    assert!(decide(&booked, cancel(true, at(8) + Duration::minutes(45))).is_ok());
    assert_eq!(
        decide(&booked, cancel(true, at(9) + Duration::minutes(1))),
        Err(AppointmentError::TooLateToCancel { deadline: at(9) })
    );
    // Booked well ahead, the usual notice holds: until 08:00.
    let early = given(&[AppointmentEvent::Booked(booking())]);
    assert_eq!(
        decide(&early, cancel(true, at(8) + Duration::minutes(45))),
        Err(AppointmentError::TooLateToCancel { deadline: at(8) })
    );
}

#[test]
fn a_booking_stored_before_booked_at_existed_reads_with_the_usual_notice() {
    let mut old = serde_json::to_value(AppointmentEvent::Booked(booking())).unwrap();
    old["Booked"].as_object_mut().unwrap().remove("booked_at");
    let event: AppointmentEvent = serde_json::from_value(old).unwrap();
    let state = given(&[event]);
    assert_eq!(state.booking.as_ref().unwrap().booked_at, None);
    assert_eq!(
        decide(&state, cancel(true, at(9))),
        Err(AppointmentError::TooLateToCancel { deadline: at(8) })
    );
}
