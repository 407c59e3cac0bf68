//! Given events, when a command, then events or the refusal.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::portal::*;
use super::request::*;
use crate::values::Money;

fn money(amount: i64) -> Money {
    Money {
        amount: Decimal::from(amount),
        currency: "EUR".into(),
    }
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 1, d).unwrap()
}

fn requested() -> ProjectEvent {
    ProjectEvent::Requested(Request {
        client_id: Uuid::nil(),
        title: "A shop site".into(),
        description: "Five pages".into(),
        desired_deadline: Some(day(20)),
        budget_hint: Some(money(900)),
        attachments: vec![Attachment::Url("https://example.com/brief".into())],
    })
}

fn accepted() -> ProjectEvent {
    ProjectEvent::Accepted(Agreement {
        price: money(1000),
        deadline: day(25),
    })
}

fn given(events: &[ProjectEvent]) -> ProjectRequest {
    let mut state = ProjectRequest::default();
    for e in events {
        evolve(&mut state, e);
    }
    state
}

fn progress(percent_done: u8, reason: Option<&str>) -> ProjectCommand {
    ProjectCommand::Progress {
        percent_done,
        note: "pages done".into(),
        reason: reason.map(str::to_string),
    }
}

fn wrong(state: &'static str) -> impl Fn(&Result<Vec<ProjectEvent>, ProjectError>) -> bool {
    move |r| matches!(r, Err(ProjectError::WrongState { state: s, .. }) if *s == state)
}

#[test]
fn a_request_is_accepted_started_delivered_and_confirmed() {
    let mut state = given(&[requested()]);
    let steps = [
        (
            ProjectCommand::Accept(Agreement {
                price: money(1000),
                deadline: day(25),
            }),
            ProjectState::Planned,
        ),
        (ProjectCommand::Start, ProjectState::InProgress),
        (progress(40, None), ProjectState::InProgress),
        (
            ProjectCommand::ReadyForDelivery,
            ProjectState::ReadyForDelivery,
        ),
        (
            ProjectCommand::ConfirmReceipt { automatic: false },
            ProjectState::Delivered,
        ),
    ];
    for (command, after) in steps {
        for e in decide(&state, command).unwrap() {
            evolve(&mut state, &e);
        }
        assert_eq!(state.state, after);
    }
    assert_eq!(state.percent_done, 100);
    assert_eq!(ProjectState::Planned.working_status(), Some("on_queue"));
}

#[test]
fn refusal_after_acceptance_is_refused() {
    let planned = given(&[requested(), accepted()]);
    let refused = decide(
        &planned,
        ProjectCommand::Refuse {
            reason: "too busy".into(),
        },
    );
    assert!(wrong("planned")(&refused), "{refused:?}");
    let requested = given(&[requested()]);
    assert_eq!(
        decide(
            &requested,
            ProjectCommand::Refuse {
                reason: " too busy ".into()
            }
        ),
        Ok(vec![ProjectEvent::Refused {
            reason: "too busy".into()
        }])
    );
}

#[test]
fn kept_waiting_is_still_a_request_that_can_be_accepted() {
    let waiting = given(&[
        requested(),
        ProjectEvent::KeptWaiting {
            note: "back to you on Monday".into(),
        },
    ]);
    assert_eq!(waiting.state, ProjectState::Requested);
    assert_eq!(
        waiting.waiting_note.as_deref(),
        Some("back to you on Monday")
    );
    let accepted = given(&[
        requested(),
        ProjectEvent::KeptWaiting { note: "x".into() },
        accepted(),
    ]);
    assert_eq!(accepted.waiting_note, None);
}

#[test]
fn a_client_withdraws_only_before_the_work_starts() {
    for events in [vec![requested()], vec![requested(), accepted()]] {
        assert_eq!(
            decide(&given(&events), ProjectCommand::Withdraw),
            Ok(vec![ProjectEvent::Withdrawn])
        );
    }
    let started = given(&[requested(), accepted(), ProjectEvent::Started]);
    assert!(wrong("in_progress")(&decide(
        &started,
        ProjectCommand::Withdraw
    )));
}

#[test]
fn percent_done_never_goes_backwards_without_a_reason() {
    let state = given(&[
        requested(),
        accepted(),
        ProjectEvent::Started,
        ProjectEvent::ProgressReported {
            percent_done: 60,
            note: "x".into(),
            reason: None,
        },
    ]);
    assert_eq!(
        decide(&state, progress(40, None)),
        Err(ProjectError::ProgressBackwards { from: 60, to: 40 })
    );
    assert_eq!(
        decide(&state, progress(40, Some("  "))),
        Err(ProjectError::ProgressBackwards { from: 60, to: 40 })
    );
    assert!(decide(&state, progress(40, Some("the client changed the design"))).is_ok());
    assert!(decide(&state, progress(60, None)).is_ok());
    assert!(matches!(
        decide(&state, progress(101, None)),
        Err(ProjectError::Invalid(_))
    ));
}

#[test]
fn progress_is_reported_only_while_in_progress() {
    let planned = given(&[requested(), accepted()]);
    assert!(wrong("planned")(&decide(&planned, progress(10, None))));
}

#[test]
fn a_replan_keeps_the_first_agreement_beside_the_change() {
    let mut state = given(&[requested(), accepted(), ProjectEvent::Started]);
    let events = decide(
        &state,
        ProjectCommand::Replan {
            price: Some(money(1200)),
            deadline: Some(day(25)),
            reason: "two more pages".into(),
        },
    )
    .unwrap();
    // The deadline did not change, so only the price is recorded.
    assert_eq!(
        events,
        vec![ProjectEvent::Replanned {
            price: Some(money(1200)),
            deadline: None,
            reason: "two more pages".into()
        }]
    );
    for e in &events {
        evolve(&mut state, e);
    }
    assert_eq!(state.first_agreement.unwrap().price, money(1000));
    assert_eq!(state.agreement.unwrap().price, money(1200));
    assert_eq!(state.replans.len(), 1);
}

#[test]
fn a_replan_must_change_something_in_the_agreed_currency() {
    let state = given(&[requested(), accepted()]);
    let same = decide(
        &state,
        ProjectCommand::Replan {
            price: Some(money(1000)),
            deadline: None,
            reason: "no change".into(),
        },
    );
    assert_eq!(same, Err(ProjectError::NoChange));
    let dollars = decide(
        &state,
        ProjectCommand::Replan {
            price: Some(Money {
                amount: Decimal::from(5),
                currency: "USD".into(),
            }),
            deadline: None,
            reason: "x".into(),
        },
    );
    assert_eq!(dollars, Err(ProjectError::Currency("EUR".into())));
    let requested = given(&[requested()]);
    assert!(wrong("requested")(&decide(
        &requested,
        ProjectCommand::Replan {
            price: None,
            deadline: Some(day(30)),
            reason: "x".into()
        }
    )));
}

#[test]
fn receipt_is_confirmed_only_when_ready() {
    let started = given(&[requested(), accepted(), ProjectEvent::Started]);
    assert!(wrong("in_progress")(&decide(
        &started,
        ProjectCommand::ConfirmReceipt { automatic: true }
    )));
    let ready = given(&[
        requested(),
        accepted(),
        ProjectEvent::Started,
        ProjectEvent::ReadyForDelivery,
    ]);
    assert_eq!(
        decide(&ready, ProjectCommand::ConfirmReceipt { automatic: true }),
        Ok(vec![ProjectEvent::Delivered { automatic: true }])
    );
}

#[test]
fn an_unknown_project_is_not_found_and_a_known_one_is_not_requested_twice() {
    assert_eq!(
        decide(&ProjectRequest::default(), ProjectCommand::Start),
        Err(ProjectError::NotFound)
    );
    let ProjectEvent::Requested(request) = requested() else {
        unreachable!()
    };
    assert_eq!(
        decide(&given(&[requested()]), ProjectCommand::Request(request)),
        Err(ProjectError::Exists)
    );
}

#[test]
fn interest_counts_once_per_client_and_not_once_available() {
    let mut product = RoadmapProduct::default();
    for e in decide_roadmap(
        &product,
        RoadmapCommand::Plan {
            name: "Booking widget".into(),
            description: String::new(),
        },
    )
    .unwrap()
    {
        evolve_roadmap(&mut product, &e);
    }
    let ada = Uuid::from_u128(1);
    let interest = RoadmapCommand::RegisterInterest { client_id: ada };
    let events = decide_roadmap(&product, interest.clone()).unwrap();
    assert_eq!(events.len(), 1);
    evolve_roadmap(&mut product, &events[0]);
    assert_eq!(decide_roadmap(&product, interest.clone()), Ok(vec![]));
    evolve_roadmap(&mut product, &RoadmapEvent::MadeAvailable);
    assert!(matches!(
        decide_roadmap(
            &product,
            RoadmapCommand::RegisterInterest {
                client_id: Uuid::from_u128(2)
            }
        ),
        Err(PortalError::WrongState { .. })
    ));
    assert!(matches!(
        decide_roadmap(&product, RoadmapCommand::StartWork),
        Err(PortalError::WrongState { .. })
    ));
}

#[test]
fn a_message_is_read_once_and_feedback_handled_once() {
    let letter = Letter {
        client_id: Uuid::nil(),
        topic: MessageTopic::Project,
        subject: "Design ready".into(),
        body: "Have a look".into(),
        project_id: None,
        sent_by: Uuid::nil(),
    };
    let mut message = ClientMessage::default();
    evolve_message(&mut message, &ClientMessageEvent::Sent(letter));
    let at = "2027-01-02T10:00:00Z".parse().unwrap();
    let read = decide_message(&message, ClientMessageCommand::MarkRead { at }).unwrap();
    assert_eq!(read, vec![ClientMessageEvent::Read { at }]);
    evolve_message(&mut message, &read[0]);
    assert_eq!(
        decide_message(&message, ClientMessageCommand::MarkRead { at }),
        Ok(vec![])
    );
    let mut feedback = Feedback::default();
    evolve_feedback(
        &mut feedback,
        &FeedbackEvent::Submitted(FeedbackNote {
            client_id: Uuid::nil(),
            topic: FeedbackTopic::Quality,
            text: "great".into(),
            project_id: None,
        }),
    );
    let by = Uuid::from_u128(3);
    let handled = decide_feedback(&feedback, FeedbackCommand::Handle { by }).unwrap();
    evolve_feedback(&mut feedback, &handled[0]);
    assert_eq!(
        decide_feedback(&feedback, FeedbackCommand::Handle { by }),
        Ok(vec![])
    );
}
