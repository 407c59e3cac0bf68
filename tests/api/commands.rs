//! Commands and queries over REST: responses, read-your-writes, conflicts,
//! If-Match, idempotency.

use serde_json::json;

use crate::both_modes;
use crate::support::{spawn_app, Api, Mode};

async fn a_command_answers_with_version_and_position_and_its_read_is_visible(mode: Mode) {
    let app = spawn_app(mode).await;
    let opened = app.open("acc-1").await;
    assert_eq!(opened["id"], "acc-1");
    assert_eq!(opened["version"], 1);
    let response = app
        .post("/api/v1/test-accounts/acc-1/deposit", json!({"amount": 30}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "\"2\"");
    let deposited: serde_json::Value = response.json().await.unwrap();
    assert_eq!(deposited["version"], 2);
    let position = deposited["position"].as_i64().unwrap();
    assert!(position > opened["position"].as_i64().unwrap());

    let (status, account) = app
        .get_json(&format!(
            "/api/v1/test-accounts/acc-1?min_position={position}"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(account["balance"], 30);
    assert_eq!(account["version"], 2);
}
both_modes!(a_command_answers_with_version_and_position_and_its_read_is_visible);

async fn concurrent_commands_on_one_aggregate_are_retried_server_side_and_all_apply(mode: Mode) {
    let app = spawn_app(mode).await;
    app.open("acc").await;
    let deposits =
        (0..20).map(|_| app.post("/api/v1/test-accounts/acc/deposit", json!({"amount": 1})));
    let responses = futures::future::join_all(deposits).await;
    let mut versions = Vec::new();
    for response in responses {
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        versions.push(body["version"].as_i64().unwrap());
    }
    versions.sort_unstable();
    assert_eq!(
        versions,
        (2..=21).collect::<Vec<_>>(),
        "each deposit got its own version"
    );
    app.settle().await;
    let (_, account) = app.get_json("/api/v1/test-accounts/acc").await;
    assert_eq!(account["balance"], 20);
}
both_modes!(concurrent_commands_on_one_aggregate_are_retried_server_side_and_all_apply);

async fn with_if_match_only_one_of_concurrent_writers_wins_and_the_rest_get_412(mode: Mode) {
    let app = spawn_app(mode).await;
    app.open("acc").await;
    let attempts = (0..10).map(|_| {
        app.http()
            .post(app.url("/api/v1/test-accounts/acc/deposit"))
            .header("If-Match", "\"1\"")
            .json(&json!({"amount": 5}))
            .send()
    });
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        9,
        "{statuses:?}"
    );
    let stale = app
        .http()
        .post(app.url("/api/v1/test-accounts/acc/deposit"))
        .header("If-Match", "\"1\"")
        .json(&json!({"amount": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    assert_eq!(stale.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = stale.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/version-mismatch");
    app.settle().await;
    let (_, account) = app.get_json("/api/v1/test-accounts/acc").await;
    assert_eq!(account["balance"], 5);
}
both_modes!(with_if_match_only_one_of_concurrent_writers_wins_and_the_rest_get_412);

async fn broken_business_rules_map_to_409_404_and_422(mode: Mode) {
    let app = spawn_app(mode).await;
    app.open("acc").await;
    let cases = [
        (
            "withdrawing more than the balance",
            "/api/v1/test-accounts/acc/withdraw",
            json!({"amount": 1}),
            409,
            "/problems/insufficient-funds",
        ),
        (
            "opening twice",
            "/api/v1/test-accounts",
            json!({"id": "acc", "owner": "Bob"}),
            409,
            "/problems/already-open",
        ),
        (
            "depositing into no account",
            "/api/v1/test-accounts/nope/deposit",
            json!({"amount": 1}),
            404,
            "/problems/not-found",
        ),
        (
            "a zero amount",
            "/api/v1/test-accounts/acc/deposit",
            json!({"amount": 0}),
            422,
            "/problems/validation",
        ),
    ];
    for (what, path, body, status, kind) in cases {
        let response = app.post(path, body).await;
        assert_eq!(response.status().as_u16(), status, "{what}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{what}"
        );
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["type"], kind, "{what}");
        assert_eq!(problem["status"], status, "{what}");
    }
}
both_modes!(broken_business_rules_map_to_409_404_and_422);

async fn a_retried_idempotency_key_has_its_effect_once_and_returns_the_first_response(mode: Mode) {
    let app = spawn_app(mode).await;
    app.open("acc").await;
    let send = || {
        app.http()
            .post(app.url("/api/v1/test-accounts/acc/deposit"))
            .header("Idempotency-Key", "pay-42")
            .json(&json!({"amount": 7}))
            .send()
    };
    // Concurrent retries, then a late one.
    let mut responses = futures::future::join_all((0..8).map(|_| send())).await;
    responses.push(send().await);
    let mut bodies = Vec::new();
    let mut replayed = 0;
    for response in responses {
        let response = response.unwrap();
        assert_eq!(response.status(), 200);
        if response.headers().get("idempotent-replayed").is_some() {
            replayed += 1;
        }
        bodies.push(response.json::<serde_json::Value>().await.unwrap());
    }
    assert!(
        bodies.iter().all(|b| b == &bodies[0]),
        "same response every time: {bodies:?}"
    );
    assert_eq!(replayed, 8);
    assert_eq!(bodies[0]["version"], 2);
    app.settle().await;
    let (_, account) = app.get_json("/api/v1/test-accounts/acc").await;
    assert_eq!(account["balance"], 7, "the deposit happened once");

    let reused = app
        .http()
        .post(app.url("/api/v1/test-accounts/acc/deposit"))
        .header("Idempotency-Key", "pay-42")
        .json(&json!({"amount": 8}))
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 409, "same key, different request");
}
both_modes!(a_retried_idempotency_key_has_its_effect_once_and_returns_the_first_response);

/// A refusal is recorded for its `Idempotency-Key` in a transaction of its
/// own while the read models commit beside it. On SQLite such a transaction
/// reads before it writes; begun deferred, it failed at once with
/// SQLITE_BUSY_SNAPSHOT whenever a read model committed in between, and the
/// refusal went unrecorded. Every retry must get the recorded refusal back.
async fn refusals_recorded_while_read_models_commit_are_replayed_for_their_keys(mode: Mode) {
    let app = spawn_app(mode).await;
    app.open("poor").await;
    for i in 0..4 {
        app.open(&format!("busy-{i}")).await;
    }
    let send = |path: String, key: String, amount: i64| {
        let app = &app;
        async move {
            let response = app
                .http()
                .post(app.url(&path))
                .header("Idempotency-Key", key)
                .json(&json!({"amount": amount}))
                .send()
                .await
                .unwrap();
            let replayed = response.headers().get("idempotent-replayed").is_some();
            (response.status().as_u16(), replayed)
        }
    };
    let refusals = (0..80).map(|i| {
        send(
            "/api/v1/test-accounts/poor/withdraw".into(),
            format!("refused-{i}"),
            1_000_000,
        )
    });
    let deposits = (0..80).map(|i| {
        send(
            format!("/api/v1/test-accounts/busy-{}/deposit", i % 4),
            format!("deposit-{i}"),
            1,
        )
    });
    let (refused, deposited) = futures::future::join(
        futures::future::join_all(refusals),
        futures::future::join_all(deposits),
    )
    .await;
    assert!(deposited.iter().all(|(s, _)| *s == 200), "{deposited:?}");
    let refused_status = refused[0].0;
    assert!(
        (400..500).contains(&refused_status) && refused.iter().all(|r| r.0 == refused_status),
        "{refused:?}"
    );
    let retries = (0..80).map(|i| {
        send(
            "/api/v1/test-accounts/poor/withdraw".into(),
            format!("refused-{i}"),
            1_000_000,
        )
    });
    let retried = futures::future::join_all(retries).await;
    let unrecorded: Vec<usize> = retried
        .iter()
        .enumerate()
        .filter(|(_, (status, replayed))| *status != refused_status || !replayed)
        .map(|(i, _)| i)
        .collect();
    assert!(
        unrecorded.is_empty(),
        "refusals not recorded for keys {unrecorded:?}"
    );
}
both_modes!(refusals_recorded_while_read_models_commit_are_replayed_for_their_keys);
