//! Snapshots: a long stream loads from its latest snapshot and the events
//! after it, and that gives exactly the state a replay of the whole stream
//! (by postgres-es or sqlite-es) gives.

use serde_json::{json, Value};

use annals::store::snapshots;
use annals_domain::catalog::Service;

use crate::appointments::{call, service_terms, shop};
use crate::both_modes;
use crate::support::ledger::Account;
use crate::support::{Api, Mode};

async fn snapshot_of(app: &impl Api, aggregate_type: &str, id: &str) -> Option<(i64, i64)> {
    let pool = app.backing().pool().await;
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT version, format FROM aggregate_snapshots WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(id)
    .fetch_optional(&pool)
    .await
    .unwrap();
    pool.close().await;
    row
}

async fn a_long_stream_loads_from_its_snapshot_exactly_as_a_full_replay(mode: Mode) {
    let shop = shop(mode).await;
    let app = &shop.app;
    app.open("long").await;
    // 250 commands after the opening: snapshots at versions 100 and 200.
    for i in 0..250 {
        let (path, amount) = if i % 5 == 4 {
            ("withdraw", 3)
        } else {
            ("deposit", 10 + i)
        };
        let response = app
            .post(
                &format!("/api/v1/test-accounts/long/{path}"),
                json!({ "amount": amount }),
            )
            .await;
        assert_eq!(response.status(), 200, "command {i}");
    }
    assert_eq!(
        snapshot_of(app, "test_account", "long").await,
        Some((200, snapshots::FORMAT)),
        "the latest snapshot is the one taken at version 200"
    );
    let commands = &app.platform.commands;
    let (loaded, version) = commands.load::<Account>("long").await.unwrap();
    let (replayed, replayed_version) = commands.replay::<Account>("long").await.unwrap();
    assert_eq!(version, 251);
    assert_eq!(replayed_version, 251);
    assert_eq!(
        serde_json::to_value(&loaded).unwrap(),
        serde_json::to_value(&replayed).unwrap()
    );
    let expected: i64 = (0..250).map(|i| if i % 5 == 4 { -3 } else { 10 + i }).sum();
    assert_eq!(loaded.balance, expected);

    // A real aggregate with a richer state: a service changed 120 times.
    let mut terms = service_terms(&shop).await;
    for i in 0..120 {
        terms["name"] = json!(format!("Haircut {i}"));
        terms["price"] = json!(format!("{}.50", 20 + i));
        let (status, body) = call(
            app,
            "PUT",
            &format!("/api/v1/services/{}", shop.service),
            &shop.admin,
            Some(terms.clone()),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (snapshot_version, _) = snapshot_of(app, "service", &shop.service)
        .await
        .expect("a snapshot of the service");
    assert!(snapshot_version >= 100, "{snapshot_version}");
    let (loaded, version) = commands.load::<Service>(&shop.service).await.unwrap();
    let (replayed, replayed_version) = commands.replay::<Service>(&shop.service).await.unwrap();
    assert_eq!(version, replayed_version);
    assert!(version > snapshot_version, "events after the snapshot");
    assert_eq!(
        serde_json::to_value(&loaded).unwrap(),
        serde_json::to_value(&replayed).unwrap()
    );
    let shown: Value = serde_json::to_value(&loaded).unwrap();
    assert!(shown.to_string().contains("Haircut 119"), "{shown}");
}
both_modes!(a_long_stream_loads_from_its_snapshot_exactly_as_a_full_replay);

async fn a_snapshot_that_does_not_read_or_is_of_another_format_is_ignored(mode: Mode) {
    let shop = shop(mode).await;
    let app = &shop.app;
    app.open("odd").await;
    for _ in 0..100 {
        let response = app
            .post("/api/v1/test-accounts/odd/deposit", json!({"amount": 1}))
            .await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        snapshot_of(app, "test_account", "odd").await,
        Some((100, snapshots::FORMAT))
    );
    let pool = app.backing().pool().await;
    for (state, format) in [
        ("{\"not\": \"an account\"}", snapshots::FORMAT),
        (
            "{\"open\": true, \"balance\": 999999}",
            snapshots::FORMAT - 1,
        ),
    ] {
        sqlx::query(
            "UPDATE aggregate_snapshots SET state = $1, format = $2 WHERE aggregate_id = 'odd'",
        )
        .bind(state)
        .bind(format)
        .execute(&pool)
        .await
        .unwrap();
        let (loaded, version) = app.platform.commands.load::<Account>("odd").await.unwrap();
        assert_eq!((loaded.balance, version), (100, 101), "{state} / {format}");
    }
    // The next command writes a good snapshot in its place.
    let response = app
        .post("/api/v1/test-accounts/odd/deposit", json!({"amount": 1}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        snapshot_of(app, "test_account", "odd").await,
        Some((102, snapshots::FORMAT))
    );
    pool.close().await;
}
both_modes!(a_snapshot_that_does_not_read_or_is_of_another_format_is_ignored);

async fn a_snapshot_at_the_head_of_its_stream_loads_with_no_events_after_it(mode: Mode) {
    let shop = shop(mode).await;
    let app = &shop.app;
    app.open("even").await;
    // The opening and 99 deposits: the 99th leaves version 100 and takes the
    // snapshot there, so the load finds a snapshot and nothing after it.
    for _ in 0..99 {
        let response = app
            .post("/api/v1/test-accounts/even/deposit", json!({"amount": 2}))
            .await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        snapshot_of(app, "test_account", "even").await,
        Some((100, snapshots::FORMAT))
    );
    let commands = &app.platform.commands;
    let (loaded, version) = commands.load::<Account>("even").await.unwrap();
    let (replayed, replayed_version) = commands.replay::<Account>("even").await.unwrap();
    assert_eq!((loaded.balance, version), (198, 100));
    assert_eq!(replayed_version, 100);
    assert_eq!(
        serde_json::to_value(&loaded).unwrap(),
        serde_json::to_value(&replayed).unwrap()
    );
    // A stream that does not exist loads as the empty state at version 0.
    let (nothing, version) = commands.load::<Account>("never-opened").await.unwrap();
    assert_eq!((nothing.balance, version), (0, 0));
}
both_modes!(a_snapshot_at_the_head_of_its_stream_loads_with_no_events_after_it);

/// `create` skips the load: it assumes the id it is given is fresh. An id
/// that is taken after all makes the append conflict, and the rerun loads
/// the stream and decides on it (here: the account is already open).
async fn a_creation_under_a_taken_id_is_decided_again_on_the_stored_stream(mode: Mode) {
    use annals::app::CommandContext;
    use annals_domain::{Actor, EventMetadata};

    use crate::support::ledger::AccountCommand;

    let shop = shop(mode).await;
    let app = &shop.app;
    app.open("taken").await;
    let ctx = CommandContext::new(EventMetadata::for_command(Actor::System));
    let refused = app
        .platform
        .commands
        .create::<Account>(
            &ctx,
            "taken",
            AccountCommand::Open {
                owner: "someone else".into(),
            },
        )
        .await
        .expect_err("the account exists");
    assert_eq!(refused.code, "already-open", "{refused:?}");
    let (_, version) = app
        .platform
        .commands
        .load::<Account>("taken")
        .await
        .unwrap();
    assert_eq!(version, 1, "nothing was added to the stream");
}
both_modes!(a_creation_under_a_taken_id_is_decided_again_on_the_stored_stream);
