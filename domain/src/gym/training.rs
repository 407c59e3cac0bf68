//! Groups and trainings. A group has a coach (a user with the `master`
//! role), members and a capacity; a training has a coach, a time, a
//! capacity and a place or link, and the clients invited to it: each one
//! invited → accepted or declined, then attended or absent (recorded by
//! the coach). The meeting link can come later; it is an event, sent to
//! everyone who accepted.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{FieldError, RuleKind, RuleViolation};

pub const MAX_CAPACITY: u32 = 500;

fn invalid(field: &str, message: impl Into<String>) -> TrainingError {
    TrainingError::Invalid(vec![FieldError::new(field, message)])
}

fn check_capacity(capacity: u32) -> Result<(), TrainingError> {
    if !(1..=MAX_CAPACITY).contains(&capacity) {
        return Err(invalid(
            "capacity",
            format!("must be from 1 to {MAX_CAPACITY}"),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrainingError {
    #[error("it exists already")]
    Exists,
    #[error("not found")]
    NotFound,
    #[error("the group holds at most {capacity}")]
    GroupFull { capacity: u32 },
    #[error("the training is full ({capacity} accepted)")]
    TrainingFull { capacity: u32 },
    #[error("the client is not invited")]
    NotInvited,
    #[error("invalid")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for TrainingError {
    fn kind(&self) -> RuleKind {
        match self {
            TrainingError::NotFound | TrainingError::NotInvited => RuleKind::NotFound,
            TrainingError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
            _ => RuleKind::Conflict,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            TrainingError::Exists => "exists",
            TrainingError::NotFound | TrainingError::NotInvited => "not-found",
            TrainingError::GroupFull { .. } => "group-full",
            TrainingError::TrainingFull { .. } => "training-full",
            TrainingError::Invalid(_) => "validation",
        }
    }
}

// ---------------------------------------------------------------- group

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GroupCommand {
    Create {
        name: String,
        coach_id: Uuid,
        capacity: u32,
        member_ids: BTreeSet<Uuid>,
    },
    SetMembers {
        member_ids: BTreeSet<Uuid>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GroupEvent {
    Created {
        name: String,
        coach_id: Uuid,
        capacity: u32,
        member_ids: BTreeSet<Uuid>,
    },
    MembersSet {
        member_ids: BTreeSet<Uuid>,
    },
}

impl DomainEvent for GroupEvent {
    fn event_type(&self) -> String {
        match self {
            GroupEvent::Created { .. } => "GroupCreated",
            GroupEvent::MembersSet { .. } => "GroupMembersSet",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub name: Option<String>,
    pub coach_id: Option<Uuid>,
    pub capacity: u32,
    pub member_ids: BTreeSet<Uuid>,
}

pub fn decide_group(
    state: &Group,
    command: GroupCommand,
) -> Result<Vec<GroupEvent>, TrainingError> {
    match command {
        GroupCommand::Create {
            name,
            coach_id,
            capacity,
            member_ids,
        } => {
            if state.name.is_some() {
                return Err(TrainingError::Exists);
            }
            let name = name.trim().to_string();
            if name.is_empty() || name.chars().count() > 200 {
                return Err(invalid("name", "must be 1 to 200 characters"));
            }
            check_capacity(capacity)?;
            if member_ids.len() > capacity as usize {
                return Err(TrainingError::GroupFull { capacity });
            }
            Ok(vec![GroupEvent::Created {
                name,
                coach_id,
                capacity,
                member_ids,
            }])
        }
        GroupCommand::SetMembers { member_ids } => {
            state.name.as_ref().ok_or(TrainingError::NotFound)?;
            if member_ids.len() > state.capacity as usize {
                return Err(TrainingError::GroupFull {
                    capacity: state.capacity,
                });
            }
            Ok(if member_ids == state.member_ids {
                vec![]
            } else {
                vec![GroupEvent::MembersSet { member_ids }]
            })
        }
    }
}

pub fn evolve_group(state: &mut Group, event: &GroupEvent) {
    match event {
        GroupEvent::Created {
            name,
            coach_id,
            capacity,
            member_ids,
        } => {
            state.name = Some(name.clone());
            state.coach_id = Some(*coach_id);
            state.capacity = *capacity;
            state.member_ids = member_ids.clone();
        }
        GroupEvent::MembersSet { member_ids } => state.member_ids = member_ids.clone(),
    }
}

crate::decider_aggregate!(
    Group,
    "training_group",
    GroupCommand,
    GroupEvent,
    TrainingError,
    decide_group,
    evolve_group
);

// ---------------------------------------------------------------- training

/// Where an invited client stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attendance {
    Invited,
    Accepted,
    Declined,
    Attended,
    Absent,
}

impl Attendance {
    pub fn as_str(self) -> &'static str {
        match self {
            Attendance::Invited => "invited",
            Attendance::Accepted => "accepted",
            Attendance::Declined => "declined",
            Attendance::Attended => "attended",
            Attendance::Absent => "absent",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub group_id: Option<Uuid>,
    pub coach_id: Uuid,
    pub start: DateTime<Utc>,
    pub duration_minutes: u32,
    pub capacity: u32,
    pub location: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TrainingCommand {
    Schedule(Session),
    Invite { client_ids: BTreeSet<Uuid> },
    Respond { client_id: Uuid, accept: bool },
    SetLink { url: String },
    RecordAttendance { client_id: Uuid, attended: bool },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TrainingEvent {
    Scheduled(Session),
    Invited { client_ids: BTreeSet<Uuid> },
    Accepted { client_id: Uuid },
    Declined { client_id: Uuid },
    LinkSet { url: String },
    AttendanceRecorded { client_id: Uuid, attended: bool },
}

impl DomainEvent for TrainingEvent {
    fn event_type(&self) -> String {
        match self {
            TrainingEvent::Scheduled(_) => "TrainingScheduled",
            TrainingEvent::Invited { .. } => "TrainingInvitationsSent",
            TrainingEvent::Accepted { .. } => "TrainingInvitationAccepted",
            TrainingEvent::Declined { .. } => "TrainingInvitationDeclined",
            TrainingEvent::LinkSet { .. } => "TrainingLinkSet",
            TrainingEvent::AttendanceRecorded { .. } => "TrainingAttendanceRecorded",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Training {
    pub session: Option<Session>,
    pub link: Option<String>,
    pub invitations: BTreeMap<Uuid, Attendance>,
}

impl Training {
    pub fn accepted(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.invitations
            .iter()
            .filter(|(_, a)| matches!(a, Attendance::Accepted | Attendance::Attended))
            .map(|(id, _)| *id)
    }
}

pub fn decide_training(
    state: &Training,
    command: TrainingCommand,
) -> Result<Vec<TrainingEvent>, TrainingError> {
    use TrainingEvent as E;
    if let TrainingCommand::Schedule(session) = command {
        if state.session.is_some() {
            return Err(TrainingError::Exists);
        }
        check_capacity(session.capacity)?;
        if !(5..=720).contains(&session.duration_minutes) {
            return Err(invalid("duration_minutes", "must be from 5 to 720"));
        }
        if let Some(place) = &session.location {
            if place.trim().is_empty() || place.chars().count() > 500 {
                return Err(invalid("location", "must be 1 to 500 characters"));
            }
        }
        return Ok(vec![E::Scheduled(session)]);
    }
    let session = state.session.as_ref().ok_or(TrainingError::NotFound)?;
    match command {
        TrainingCommand::Schedule(_) => unreachable!("handled above"),
        TrainingCommand::Invite { client_ids } => {
            let new: BTreeSet<Uuid> = client_ids
                .into_iter()
                .filter(|c| !state.invitations.contains_key(c))
                .collect();
            Ok(if new.is_empty() {
                vec![]
            } else {
                vec![E::Invited { client_ids: new }]
            })
        }
        TrainingCommand::Respond { client_id, accept } => {
            let current = *state
                .invitations
                .get(&client_id)
                .ok_or(TrainingError::NotInvited)?;
            match (current, accept) {
                (Attendance::Accepted, true) | (Attendance::Declined, false) => Ok(vec![]),
                (Attendance::Attended | Attendance::Absent, _) => Ok(vec![]),
                (_, true) => {
                    if state.accepted().count() >= session.capacity as usize {
                        return Err(TrainingError::TrainingFull {
                            capacity: session.capacity,
                        });
                    }
                    Ok(vec![E::Accepted { client_id }])
                }
                (_, false) => Ok(vec![E::Declined { client_id }]),
            }
        }
        TrainingCommand::SetLink { url } => {
            let url = url.trim().to_string();
            if !(url.starts_with("https://") || url.starts_with("http://"))
                || url.chars().count() > 2000
                || url.contains(char::is_whitespace)
            {
                return Err(invalid("url", "must be an http(s):// URL"));
            }
            Ok(if state.link.as_deref() == Some(url.as_str()) {
                vec![]
            } else {
                vec![E::LinkSet { url }]
            })
        }
        TrainingCommand::RecordAttendance {
            client_id,
            attended,
        } => {
            state
                .invitations
                .get(&client_id)
                .ok_or(TrainingError::NotInvited)?;
            Ok(vec![E::AttendanceRecorded {
                client_id,
                attended,
            }])
        }
    }
}

pub fn evolve_training(state: &mut Training, event: &TrainingEvent) {
    use TrainingEvent as E;
    match event {
        E::Scheduled(session) => state.session = Some(session.clone()),
        E::Invited { client_ids } => {
            for id in client_ids {
                state.invitations.entry(*id).or_insert(Attendance::Invited);
            }
        }
        E::Accepted { client_id } => {
            state.invitations.insert(*client_id, Attendance::Accepted);
        }
        E::Declined { client_id } => {
            state.invitations.insert(*client_id, Attendance::Declined);
        }
        E::LinkSet { url } => state.link = Some(url.clone()),
        E::AttendanceRecorded {
            client_id,
            attended,
        } => {
            let mark = if *attended {
                Attendance::Attended
            } else {
                Attendance::Absent
            };
            state.invitations.insert(*client_id, mark);
        }
    }
}

crate::decider_aggregate!(
    Training,
    "training",
    TrainingCommand,
    TrainingEvent,
    TrainingError,
    decide_training,
    evolve_training
);

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduled(capacity: u32) -> Training {
        let mut t = Training::default();
        evolve_training(
            &mut t,
            &TrainingEvent::Scheduled(Session {
                group_id: None,
                coach_id: Uuid::nil(),
                start: Utc::now(),
                duration_minutes: 60,
                capacity,
                location: Some("Hall A".into()),
            }),
        );
        t
    }

    fn apply(
        t: &mut Training,
        command: TrainingCommand,
    ) -> Result<Vec<TrainingEvent>, TrainingError> {
        let events = decide_training(t, command)?;
        events.iter().for_each(|e| evolve_training(t, e));
        Ok(events)
    }

    #[test]
    fn invitees_accept_up_to_the_capacity_and_only_the_invited_answer() {
        let mut t = scheduled(1);
        let (ada, bob, cyd) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        apply(
            &mut t,
            TrainingCommand::Invite {
                client_ids: [ada, bob].into(),
            },
        )
        .unwrap();
        assert_eq!(
            apply(
                &mut t,
                TrainingCommand::Invite {
                    client_ids: [ada].into()
                }
            )
            .unwrap(),
            vec![],
            "invited once"
        );
        apply(
            &mut t,
            TrainingCommand::Respond {
                client_id: ada,
                accept: true,
            },
        )
        .unwrap();
        assert_eq!(
            apply(
                &mut t,
                TrainingCommand::Respond {
                    client_id: bob,
                    accept: true
                }
            ),
            Err(TrainingError::TrainingFull { capacity: 1 })
        );
        assert_eq!(
            apply(
                &mut t,
                TrainingCommand::Respond {
                    client_id: cyd,
                    accept: true
                }
            ),
            Err(TrainingError::NotInvited)
        );
        apply(
            &mut t,
            TrainingCommand::Respond {
                client_id: bob,
                accept: false,
            },
        )
        .unwrap();
        assert_eq!(t.accepted().collect::<Vec<_>>(), [ada]);
        apply(
            &mut t,
            TrainingCommand::RecordAttendance {
                client_id: ada,
                attended: true,
            },
        )
        .unwrap();
        assert_eq!(t.invitations[&ada], Attendance::Attended);
    }

    #[test]
    fn a_group_holds_no_more_members_than_its_capacity() {
        let create = |n: usize| GroupCommand::Create {
            name: "Morning".into(),
            coach_id: Uuid::nil(),
            capacity: 2,
            member_ids: (0..n).map(|_| Uuid::now_v7()).collect(),
        };
        assert_eq!(
            decide_group(&Group::default(), create(3)),
            Err(TrainingError::GroupFull { capacity: 2 })
        );
        assert!(decide_group(&Group::default(), create(2)).is_ok());
    }
}
