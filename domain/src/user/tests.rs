//! given events / when command / then events or error.

use std::collections::BTreeSet;

use super::*;

fn given(events: &[UserEvent]) -> User {
    let mut user = User::default();
    for event in events {
        evolve(&mut user, event);
    }
    user
}

fn registered() -> UserEvent {
    UserEvent::Registered {
        username: Username::parse("ada").unwrap(),
        profile: Profile {
            full_name: "Ada Lovelace".into(),
            ..Profile::default()
        },
        roles: BTreeSet::from([Role::Client]),
    }
}

#[test]
fn a_new_user_registers_with_roles() {
    let UserEvent::Registered {
        username,
        profile,
        roles,
    } = registered()
    else {
        unreachable!()
    };
    let events = decide(
        &given(&[]),
        UserCommand::Register {
            username,
            profile,
            roles,
        },
    )
    .unwrap();
    assert_eq!(events, vec![registered()]);
}

#[test]
fn a_taken_username_is_refused() {
    let UserEvent::Registered {
        username,
        profile,
        roles,
    } = registered()
    else {
        unreachable!()
    };
    let err = decide(
        &given(&[registered()]),
        UserCommand::Register {
            username,
            profile,
            roles,
        },
    )
    .unwrap_err();
    assert_eq!(err, UserError::UsernameTaken("ada".into()));
}

#[test]
fn registering_without_roles_is_refused() {
    let command = UserCommand::Register {
        username: Username::parse("ada").unwrap(),
        profile: Profile::default(),
        roles: BTreeSet::new(),
    };
    assert_eq!(
        decide(&given(&[]), command).unwrap_err(),
        UserError::NoRoles
    );
}

#[test]
fn commands_on_an_unknown_user_are_not_found() {
    for command in [
        UserCommand::GrantRole { role: Role::Admin },
        UserCommand::Deactivate,
        UserCommand::UpdateProfile {
            profile: Profile::default(),
        },
    ] {
        assert_eq!(
            decide(&given(&[]), command).unwrap_err(),
            UserError::NotFound
        );
    }
}

#[test]
fn granting_and_revoking_roles_are_events_and_repeats_change_nothing() {
    let user = given(&[registered()]);
    assert_eq!(
        decide(&user, UserCommand::GrantRole { role: Role::Admin }).unwrap(),
        vec![UserEvent::RoleGranted { role: Role::Admin }]
    );
    assert!(decide(&user, UserCommand::GrantRole { role: Role::Client })
        .unwrap()
        .is_empty());
    assert!(decide(&user, UserCommand::RevokeRole { role: Role::Admin })
        .unwrap()
        .is_empty());
    let user = given(&[registered(), UserEvent::RoleGranted { role: Role::Admin }]);
    assert_eq!(user.roles, BTreeSet::from([Role::Admin, Role::Client]));
    assert_eq!(
        decide(&user, UserCommand::RevokeRole { role: Role::Admin }).unwrap(),
        vec![UserEvent::RoleRevoked { role: Role::Admin }]
    );
}

#[test]
fn a_deactivated_user_cannot_change_profile_or_password_until_reactivated() {
    let user = given(&[registered(), UserEvent::Deactivated]);
    assert!(!user.active);
    assert_eq!(
        decide(
            &user,
            UserCommand::UpdateProfile {
                profile: Profile::default()
            }
        )
        .unwrap_err(),
        UserError::Deactivated
    );
    assert_eq!(
        decide(
            &user,
            UserCommand::RecordPasswordChange {
                reason: PasswordChangeReason::Changed
            }
        )
        .unwrap_err(),
        UserError::Deactivated
    );
    assert!(decide(&user, UserCommand::Deactivate).unwrap().is_empty());
    assert_eq!(
        decide(&user, UserCommand::Reactivate).unwrap(),
        vec![UserEvent::Reactivated]
    );
}

#[test]
fn an_unchanged_profile_is_no_event() {
    let user = given(&[registered()]);
    let same = user.profile.clone();
    assert!(decide(&user, UserCommand::UpdateProfile { profile: same })
        .unwrap()
        .is_empty());
}

#[test]
fn linking_telegram_is_an_event_once_and_unlinking_undoes_it() {
    let linked = UserEvent::TelegramLinked { chat_id: 77 };
    let link = || UserCommand::LinkTelegram { chat_id: 77 };
    assert_eq!(
        decide(&given(&[registered()]), link()).unwrap(),
        vec![linked.clone()]
    );
    let user = given(&[registered(), linked.clone()]);
    assert_eq!(user.telegram_chat_id, Some(77));
    assert!(
        decide(&user, link()).unwrap().is_empty(),
        "the same chat again"
    );
    assert_eq!(
        decide(&user, UserCommand::LinkTelegram { chat_id: 78 }).unwrap(),
        vec![UserEvent::TelegramLinked { chat_id: 78 }],
        "another chat replaces it"
    );
    assert_eq!(
        decide(&user, UserCommand::UnlinkTelegram).unwrap(),
        vec![UserEvent::TelegramUnlinked]
    );
    assert!(decide(&given(&[registered()]), UserCommand::UnlinkTelegram)
        .unwrap()
        .is_empty());
    assert_eq!(
        decide(&given(&[registered(), UserEvent::Deactivated]), link()),
        Err(UserError::Deactivated)
    );
}

#[test]
fn erasing_personal_data_leaves_the_profile_erased_and_the_chat_unlinked() {
    let user = given(&[registered(), UserEvent::TelegramLinked { chat_id: 7 }]);
    let events = decide(&user, UserCommand::ErasePersonalData).unwrap();
    assert_eq!(events, vec![UserEvent::PersonalDataErased]);
    let after = given(&[
        registered(),
        UserEvent::TelegramLinked { chat_id: 7 },
        UserEvent::PersonalDataErased,
    ]);
    assert_eq!(after.profile.full_name, ERASED);
    assert_eq!(after.profile, Profile::erased());
    assert_eq!(after.telegram_chat_id, None);
    assert!(after.registered && after.active, "the account itself stays");
    // A retry records it again (the key's destruction may be retried).
    assert_eq!(
        decide(&after, UserCommand::ErasePersonalData).unwrap(),
        vec![UserEvent::PersonalDataErased]
    );
    assert_eq!(
        decide(&User::default(), UserCommand::ErasePersonalData),
        Err(UserError::NotFound)
    );
}
