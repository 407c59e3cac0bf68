//! Given events, when a command, then events or the broken rule.

use chrono::{NaiveDate, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::campaign::{self, *};
use super::lead::{self, *};
use crate::user::{Email, Phone};
use crate::values::Money;

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn money(amount: &str) -> Money {
    Money::parse("budget", amount, "EUR").unwrap()
}

fn terms() -> CampaignTerms {
    CampaignTerms {
        name: "Autumn search".into(),
        service_id: Uuid::nil(),
        channel: "search".into(),
        budget: money("1500.00"),
        starts_on: day("2026-10-01"),
        ends_on: day("2026-10-31"),
    }
}

fn campaign_given(events: &[CampaignEvent]) -> Campaign {
    let mut state = Campaign::default();
    for event in events {
        campaign::evolve(&mut state, event);
    }
    state
}

fn spend(amount: &str, on: &str) -> CampaignCommand {
    CampaignCommand::RecordSpend(Spend {
        entry_id: Uuid::now_v7(),
        amount: amount.parse().unwrap(),
        on: day(on),
        note: None,
    })
}

#[test]
fn a_campaign_goes_planned_active_completed_and_not_back() {
    let planned = campaign_given(&[CampaignEvent::Planned(terms())]);
    assert_eq!(
        campaign::decide(&planned, CampaignCommand::Complete),
        Err(CampaignError::Transition {
            from: "planned",
            to: "completed"
        })
    );
    assert_eq!(
        campaign::decide(&planned, CampaignCommand::Start),
        Ok(vec![CampaignEvent::Started])
    );
    let active = campaign_given(&[CampaignEvent::Planned(terms()), CampaignEvent::Started]);
    assert_eq!(
        campaign::decide(&active, CampaignCommand::Complete),
        Ok(vec![CampaignEvent::Completed])
    );
    let done = campaign_given(&[
        CampaignEvent::Planned(terms()),
        CampaignEvent::Started,
        CampaignEvent::Completed,
    ]);
    assert!(matches!(
        campaign::decide(&done, CampaignCommand::Cancel { reason: "x".into() }),
        Err(CampaignError::Transition { .. })
    ));
    assert!(matches!(
        campaign::decide(&done, CampaignCommand::Start),
        Err(CampaignError::Transition { .. })
    ));
    assert_eq!(
        campaign::decide(
            &active,
            CampaignCommand::Cancel {
                reason: " budget cut ".into()
            }
        ),
        Ok(vec![CampaignEvent::Cancelled {
            reason: "budget cut".into()
        }])
    );
    assert_eq!(
        campaign::decide(&Campaign::default(), CampaignCommand::Start),
        Err(CampaignError::NotFound)
    );
}

#[test]
fn spend_is_dated_and_a_correction_may_not_take_any_day_below_zero() {
    let mut state = campaign_given(&[CampaignEvent::Planned(terms())]);
    for command in [spend("300.00", "2026-10-05"), spend("200.00", "2026-10-20")] {
        for event in campaign::decide(&state, command).unwrap() {
            campaign::evolve(&mut state, &event);
        }
    }
    assert_eq!(state.spend_up_to(day("2026-10-10")), Decimal::new(30000, 2));
    // A correction of the 5th, recorded later: the 10th now shows 250.
    let events = campaign::decide(&state, spend("-50.00", "2026-10-05")).unwrap();
    campaign::evolve(&mut state, &events[0]);
    assert_eq!(state.spend_up_to(day("2026-10-10")), Decimal::new(25000, 2));
    assert_eq!(state.spend_up_to(day("2026-10-31")), Decimal::new(45000, 2));
    assert_eq!(
        campaign::decide(&state, spend("-300.00", "2026-10-06")),
        Err(CampaignError::NegativeSpend {
            on: day("2026-10-06")
        })
    );
    assert!(matches!(
        campaign::decide(&state, spend("0", "2026-10-06")),
        Err(CampaignError::Invalid(_))
    ));
}

#[test]
fn a_budget_correction_keeps_the_currency() {
    let state = campaign_given(&[CampaignEvent::Planned(terms())]);
    let dollars = Money::parse("budget", "10.00", "USD").unwrap();
    assert_eq!(
        campaign::decide(
            &state,
            CampaignCommand::CorrectBudget {
                budget: dollars,
                reason: "fx".into()
            }
        ),
        Err(CampaignError::Currency("EUR".into()))
    );
    let events = campaign::decide(
        &state,
        CampaignCommand::CorrectBudget {
            budget: money("1200.00"),
            reason: "cut".into(),
        },
    )
    .unwrap();
    let mut state = state;
    campaign::evolve(&mut state, &events[0]);
    assert_eq!(state.terms.unwrap().budget, money("1200.00"));
}

fn info() -> LeadInfo {
    LeadInfo {
        full_name: " Ann Lee ".into(),
        phone: Some(Phone::parse("phone", "+44 7700900123".replace(' ', "").as_str()).unwrap()),
        email: Some(Email::parse("email", "Ann@Example.com").unwrap()),
        campaign_id: None,
    }
}

fn lead_given(events: &[LeadEvent]) -> Lead {
    let mut state = Lead::default();
    for event in events {
        lead::evolve(&mut state, event);
    }
    state
}

fn created() -> LeadEvent {
    LeadEvent::Created {
        info: info(),
        claimed: info().contact_keys(),
    }
}

#[test]
fn a_lead_needs_a_name_and_a_way_to_reach_them() {
    let mut bad = info();
    bad.phone = None;
    bad.email = None;
    bad.full_name = " ".into();
    let Err(LeadError::Invalid(fields)) = lead::decide(
        &Lead::default(),
        LeadCommand::Create {
            info: bad,
            claimed: vec![],
        },
    ) else {
        panic!("refused")
    };
    let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(names, ["full_name", "phone"]);
    let events = lead::decide(
        &Lead::default(),
        LeadCommand::Create {
            info: info(),
            claimed: vec![],
        },
    )
    .unwrap();
    let LeadEvent::Created { info, .. } = &events[0] else {
        panic!("created")
    };
    assert_eq!(info.full_name, "Ann Lee");
    assert_eq!(
        info.contact_keys(),
        ["phone:447700900123", "email:ann@example.com"]
    );
}

#[test]
fn a_lead_goes_new_in_progress_then_converted_once_or_lost_and_reopened() {
    let new = lead_given(&[created()]);
    assert_eq!(
        lead::decide(&new, LeadCommand::Start),
        Ok(vec![LeadEvent::Started])
    );
    let working = lead_given(&[created(), LeadEvent::Started]);
    let lost = lead::decide(
        &working,
        LeadCommand::Lose {
            reason: "too expensive".into(),
        },
    )
    .unwrap();
    let mut state = working.clone();
    lead::evolve(&mut state, &lost[0]);
    assert_eq!(state.status, LeadStatus::Lost);
    assert!(state.claimed.is_empty(), "a lost lead holds no contacts");
    assert!(matches!(
        lead::decide(&state, LeadCommand::Start),
        Err(LeadError::Transition {
            from: "lost",
            to: "started"
        })
    ));
    let reopened = lead::decide(&state, LeadCommand::Reopen { claimed: vec![] }).unwrap();
    lead::evolve(&mut state, &reopened[0]);
    assert_eq!(state.status, LeadStatus::InProgress);
    assert_eq!(state.lost_reason, None);

    let (customer, contract) = (Uuid::now_v7(), Uuid::now_v7());
    let convert = LeadCommand::Convert {
        customer_id: customer,
        contract_id: contract,
    };
    let events = lead::decide(&state, convert.clone()).unwrap();
    lead::evolve(&mut state, &events[0]);
    assert_eq!(
        (state.status, state.customer_id, state.contract_id),
        (LeadStatus::Converted, Some(customer), Some(contract))
    );
    assert_eq!(
        lead::decide(&state, convert),
        Err(LeadError::AlreadyConverted)
    );
    assert_eq!(
        lead::decide(&state, LeadCommand::Lose { reason: "x".into() }),
        Err(LeadError::AlreadyConverted)
    );
    assert!(matches!(
        lead::decide(&working, LeadCommand::Reopen { claimed: vec![] }),
        Err(LeadError::Transition { .. })
    ));
}

#[test]
fn notes_and_assignment_are_kept_with_who_and_when() {
    let state = lead_given(&[created()]);
    let note = Note {
        note_id: Uuid::now_v7(),
        kind: NoteKind::Call,
        text: " called, wants a quote ".into(),
        by: Some(Uuid::nil()),
        at: Utc::now(),
    };
    let events = lead::decide(&state, LeadCommand::AddNote(note.clone())).unwrap();
    let LeadEvent::NoteAdded(kept) = &events[0] else {
        panic!("a note")
    };
    assert_eq!(kept.text, "called, wants a quote");
    assert_eq!((kept.kind, kept.by), (NoteKind::Call, Some(Uuid::nil())));
    let operator = Uuid::now_v7();
    let assigned = lead::decide(
        &state,
        LeadCommand::Assign {
            operator_id: operator,
        },
    )
    .unwrap();
    let mut state = state;
    lead::evolve(&mut state, &assigned[0]);
    assert_eq!(
        lead::decide(
            &state,
            LeadCommand::Assign {
                operator_id: operator
            }
        ),
        Ok(vec![]),
        "assigning again changes nothing"
    );
}

#[test]
fn a_contact_is_held_by_one_open_lead_at_a_time() {
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    let holder = |id| ContactHolder {
        lead_id: id,
        full_name: "Ann Lee".into(),
    };
    let mut claim = LeadContact::default();
    let events = lead::decide_contact(&claim, ContactCommand::Claim(holder(first))).unwrap();
    lead::evolve_contact(&mut claim, &events[0]);
    assert_eq!(
        lead::decide_contact(&claim, ContactCommand::Claim(holder(second))),
        Err(ContactError::Held(holder(first)))
    );
    assert_eq!(
        lead::decide_contact(&claim, ContactCommand::Release { lead_id: second }),
        Ok(vec![]),
        "only the holder releases"
    );
    let events = lead::decide_contact(&claim, ContactCommand::Release { lead_id: first }).unwrap();
    lead::evolve_contact(&mut claim, &events[0]);
    assert!(lead::decide_contact(&claim, ContactCommand::Claim(holder(second))).is_ok());
}

#[test]
fn a_contract_is_recorded_once_with_a_valid_period() {
    use super::contract::{self, *};
    let mut terms = ContractTerms {
        name: "Website, year one".into(),
        service_id: Uuid::nil(),
        file_id: Uuid::nil(),
        signed_on: day("2026-10-10"),
        valid_from: day("2026-11-01"),
        valid_to: day("2026-10-31"),
        amount: money("900.00"),
    };
    let record = |terms: &ContractTerms| ContractCommand::Record {
        terms: terms.clone(),
        customer_id: Uuid::nil(),
        lead_id: None,
    };
    assert!(matches!(
        contract::decide(&Contract::default(), record(&terms)),
        Err(ContractError::Invalid(_))
    ));
    terms.valid_to = day("2027-10-31");
    let events = contract::decide(&Contract::default(), record(&terms)).unwrap();
    let mut state = Contract::default();
    contract::evolve(&mut state, &events[0]);
    assert_eq!(
        contract::decide(&state, record(&terms)),
        Err(ContractError::Exists)
    );
}

#[test]
fn a_file_belongs_to_one_owner() {
    use crate::files::{self, *};
    let mut file = StoredFile::default();
    let owner = |id| Owner {
        kind: "contract".into(),
        id,
    };
    assert_eq!(
        files::decide(&file, FileCommand::Attach(owner(Uuid::nil()))),
        Err(FileError::NotFound)
    );
    let meta = FileMeta {
        sha256: "ab".repeat(32),
        size: 3,
        content_type: "application/pdf".into(),
        name: "c.pdf".into(),
        uploaded_by: Uuid::nil(),
    };
    files::evolve(&mut file, &FileEvent::Uploaded(meta));
    let first = Uuid::now_v7();
    let events = files::decide(&file, FileCommand::Attach(owner(first))).unwrap();
    files::evolve(&mut file, &events[0]);
    assert_eq!(
        files::decide(&file, FileCommand::Attach(owner(first))),
        Ok(vec![])
    );
    assert_eq!(
        files::decide(&file, FileCommand::Attach(owner(Uuid::nil()))),
        Err(FileError::InUse(owner(first)))
    );
}

#[test]
fn erasing_a_lead_leaves_no_contact_detail_note_or_reason_but_keeps_its_claims_and_figures() {
    let note = Note {
        note_id: Uuid::now_v7(),
        kind: NoteKind::Call,
        text: "Ann asked for a quote".into(),
        by: None,
        at: Utc::now(),
    };
    let before = lead_given(&[
        created(),
        LeadEvent::NoteAdded(note),
        LeadEvent::Lost {
            reason: "Ann moved away".into(),
        },
    ]);
    let events = lead::decide(&before, LeadCommand::ErasePersonalData).unwrap();
    assert_eq!(events, vec![LeadEvent::PersonalDataErased]);
    let mut after = before.clone();
    lead::evolve(&mut after, &events[0]);
    let info = after.info.as_ref().unwrap();
    assert_eq!(
        (info.full_name.as_str(), &info.phone, &info.email),
        (crate::user::ERASED, &None, &None)
    );
    assert_eq!(after.notes[0].text, crate::user::ERASED);
    assert_eq!(after.notes[0].kind, NoteKind::Call, "what was done stays");
    assert_eq!(after.lost_reason.as_deref(), Some(crate::user::ERASED));
    assert_eq!(
        (after.status, &after.claimed),
        (before.status, &before.claimed)
    );
    assert_eq!(
        lead::decide(&Lead::default(), LeadCommand::ErasePersonalData),
        Err(LeadError::NotFound)
    );
}

#[test]
fn an_update_carries_the_claims_the_lead_holds_from_then_on() {
    let before = lead_given(&[created()]);
    let mut info = info();
    info.phone = Some(Phone::parse("phone", "+447700900999").unwrap());
    let events = lead::decide(
        &before,
        LeadCommand::Update {
            info: info.clone(),
            claimed: Some(vec!["p-new".into()]),
        },
    )
    .unwrap();
    let after = lead_given(&[created(), events[0].clone()]);
    assert_eq!(after.claimed, ["p-new"]);
    // An update stored before the field existed keeps the first claims.
    let old: LeadEvent =
        serde_json::from_value(serde_json::json!({"Updated": {"info": info}})).unwrap();
    assert_eq!(lead_given(&[created(), old]).claimed, before.claimed);
    // The same details with the same claims change nothing.
    let mut settled = before.clone();
    settled.info.as_mut().unwrap().full_name = "Ann Lee".into();
    let same = LeadCommand::Update {
        info: settled.info.clone().unwrap(),
        claimed: Some(settled.claimed.clone()),
    };
    assert_eq!(lead::decide(&settled, same).unwrap(), vec![]);
}
