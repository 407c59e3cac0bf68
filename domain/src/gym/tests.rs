//! Given events, when a command, then events or the broken rule — and the
//! standing derived for any day.

use chrono::NaiveDate;
use uuid::Uuid;

use super::plan::PlanLength;
use super::subscription::{self, *};
use crate::values::Money;

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn given(events: &[SubscriptionEvent]) -> Subscription {
    let mut state = Subscription::default();
    for event in events {
        subscription::evolve(&mut state, event);
    }
    state
}

fn opened() -> SubscriptionEvent {
    SubscriptionEvent::Opened {
        client_id: Uuid::nil(),
        plan_id: Uuid::nil(),
    }
}

/// Decides and applies `command`, panicking on a refusal.
fn then(state: &mut Subscription, command: SubscriptionCommand) -> Vec<SubscriptionEvent> {
    let events = subscription::decide(state, command).unwrap();
    for event in &events {
        subscription::evolve(state, event);
    }
    events
}

fn pay(paid_on: &str, days: u32, freeze_days: u32) -> SubscriptionCommand {
    SubscriptionCommand::Pay {
        payment_id: Uuid::now_v7(),
        amount: Money::parse("amount", "30", "EUR").unwrap(),
        method: "cash".into(),
        paid_on: day(paid_on),
        start_on: None,
        length: PlanLength::Days(days),
        freeze_days,
        recorded_by: None,
    }
}

fn freeze(start: &str, days: u32) -> SubscriptionCommand {
    SubscriptionCommand::Freeze {
        freeze_id: Uuid::now_v7(),
        start: day(start),
        days,
    }
}

#[test]
fn a_payment_while_active_extends_from_the_end_not_from_today() {
    let mut s = given(&[opened()]);
    then(&mut s, pay("2026-10-01", 30, 0));
    assert_eq!(s.spans(), [(day("2026-10-01"), day("2026-10-30"))]);
    let renewed = then(&mut s, pay("2026-10-20", 30, 0));
    assert!(matches!(
        renewed[0],
        SubscriptionEvent::PaymentRecorded {
            starts_on: None,
            ..
        }
    ));
    assert_eq!(s.spans(), [(day("2026-10-01"), day("2026-11-29"))]);
}

#[test]
fn a_lapsed_clients_payment_starts_a_new_period_on_the_payment_date() {
    let mut s = given(&[opened()]);
    then(&mut s, pay("2026-10-01", 30, 0));
    then(&mut s, pay("2026-11-10", 30, 0));
    assert_eq!(
        s.spans(),
        [
            (day("2026-10-01"), day("2026-10-30")),
            (day("2026-11-10"), day("2026-12-09"))
        ]
    );
    assert_eq!(s.standing(day("2026-11-05")), Standing::Inactive);
    assert_eq!(s.standing(day("2026-11-10")), Standing::Active);
}

#[test]
fn a_freeze_beyond_the_quota_is_refused() {
    let mut s = given(&[opened()]);
    then(&mut s, pay("2026-10-01", 30, 7));
    assert_eq!(
        subscription::decide(&s, freeze("2026-10-05", 8)),
        Err(SubscriptionError::QuotaExceeded { remaining: 7 })
    );
    then(&mut s, freeze("2026-10-05", 5));
    assert_eq!(s.freeze_days_left(), 2);
}

#[test]
fn a_freeze_pushes_the_end_and_ending_it_early_gives_the_unused_days_back() {
    let mut s = given(&[opened()]);
    then(&mut s, pay("2026-10-01", 30, 7));
    let frozen = then(&mut s, freeze("2026-10-05", 7));
    let SubscriptionEvent::Frozen { freeze_id, .. } = frozen[0] else {
        panic!("frozen");
    };
    assert_eq!(s.ends_on(), Some(day("2026-11-06")));
    assert_eq!(s.freeze_days_left(), 0);
    then(
        &mut s,
        SubscriptionCommand::EndFreeze {
            freeze_id,
            on: day("2026-10-08"),
        },
    );
    assert_eq!(s.freeze_days_left(), 4, "3 days used");
    assert_eq!(s.ends_on(), Some(day("2026-11-02")));
    assert_eq!(s.standing(day("2026-10-07")), Standing::Frozen);
    assert_eq!(s.standing(day("2026-10-08")), Standing::Active);
    assert_eq!(
        subscription::decide(
            &s,
            SubscriptionCommand::EndFreeze {
                freeze_id,
                on: day("2026-10-09")
            }
        ),
        Err(SubscriptionError::FreezeOver)
    );
}

#[test]
fn overlapping_freezes_and_freezes_outside_a_paid_period_are_refused() {
    let mut s = given(&[opened()]);
    then(&mut s, pay("2026-10-01", 30, 30));
    then(&mut s, freeze("2026-10-10", 5));
    assert_eq!(
        subscription::decide(&s, freeze("2026-10-12", 3)),
        Err(SubscriptionError::Overlap {
            other: day("2026-10-10")
        })
    );
    assert!(subscription::decide(&s, freeze("2026-10-15", 3)).is_ok());
    assert_eq!(
        subscription::decide(&s, freeze("2026-12-01", 3)),
        Err(SubscriptionError::OutsidePaidPeriod {
            start: day("2026-12-01")
        })
    );
}

#[test]
fn the_standing_on_any_day_follows_periods_freezes_lapses_and_cancellation() {
    let mut s = given(&[opened()]);
    then(&mut s, pay("2026-09-01", 30, 10)); // 09-01 .. 09-30
    then(&mut s, freeze("2026-09-10", 5)); // frozen 09-10 .. 09-14, end → 10-05
    then(&mut s, pay("2026-10-20", 30, 0)); // lapsed: 10-20 .. 11-18
    let table = [
        ("2026-08-31", Standing::Inactive),
        ("2026-09-01", Standing::Active),
        ("2026-09-09", Standing::Active),
        ("2026-09-10", Standing::Frozen),
        ("2026-09-14", Standing::Frozen),
        ("2026-09-15", Standing::Active),
        ("2026-10-05", Standing::Active),
        ("2026-10-06", Standing::Inactive),
        ("2026-10-19", Standing::Inactive),
        ("2026-10-20", Standing::Active),
        ("2026-11-18", Standing::Active),
        ("2026-11-19", Standing::Inactive),
    ];
    for (on, standing) in table {
        assert_eq!(s.standing(day(on)), standing, "{on}");
    }
    then(
        &mut s,
        SubscriptionCommand::Cancel {
            on: day("2026-11-01"),
            reason: "moved away".into(),
        },
    );
    assert_eq!(s.standing(day("2026-10-31")), Standing::Active);
    assert_eq!(s.standing(day("2026-11-01")), Standing::Inactive);
    assert!(matches!(
        subscription::decide(&s, pay("2026-11-02", 30, 0)),
        Err(SubscriptionError::Cancelled { .. })
    ));
}

#[test]
fn a_voided_payment_takes_its_period_back() {
    let mut s = given(&[opened()]);
    then(&mut s, pay("2026-10-01", 30, 0));
    let second = then(&mut s, pay("2026-10-15", 30, 0));
    let SubscriptionEvent::PaymentRecorded { payment_id, .. } = second[0] else {
        panic!("paid");
    };
    assert_eq!(s.ends_on(), Some(day("2026-11-29")));
    then(
        &mut s,
        SubscriptionCommand::VoidPayment {
            payment_id,
            reason: "card charged back".into(),
        },
    );
    assert_eq!(s.ends_on(), Some(day("2026-10-30")));
    assert_eq!(s.payments[1].voided.as_deref(), Some("card charged back"));
}

#[test]
fn a_month_runs_to_the_day_before_the_same_date() {
    assert_eq!(
        PlanLength::Months(1).last_day(day("2026-01-15")),
        day("2026-02-14")
    );
    assert_eq!(
        PlanLength::Months(12).last_day(day("2026-03-01")),
        day("2027-02-28")
    );
    assert_eq!(
        PlanLength::Days(1).last_day(day("2026-03-01")),
        day("2026-03-01")
    );
}
