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
