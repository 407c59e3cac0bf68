//! Clients generated from the committed OpenAPI document work: the Python
//! client of openapi-python-client (installed by tests/run.sh) generates
//! without a warning, and a REST client's first steps run through it
//! against the real server (`tests/clients/flow.py`).

use std::process::Command;

use serde_json::Value;

use crate::appointments::user;
use crate::support::{Api, Mode, TestApp};

const PASSWORD: &str = "correct horse battery";

fn python() -> String {
    std::env::var("ANNALS_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_python_client_generated_from_the_document_books_an_appointment() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("client");
    let generated = Command::new(python())
        .args(["-m", "openapi_python_client", "generate", "--path"])
        .arg(format!("{root}/openapi/openapi.json"))
        .arg("--output-path")
        .arg(&out)
        .output()
        .expect("python3 runs (tests/run.sh installs openapi-python-client)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&generated.stdout),
        String::from_utf8_lossy(&generated.stderr)
    );
    assert!(
        generated.status.success(),
        "openapi-python-client failed (pip install openapi-python-client): {said}"
    );
    assert!(
        !said.to_lowercase().contains("warning"),
        "the document generates with warnings: {said}"
    );

    let app = TestApp::start(crate::support::Backing::new(Mode::Embedded).await).await;
    user(&app, "boss", "admin");
    let master = user(&app, "mia", "master");
    app.settle().await;
    let day = (chrono::Utc::now() + chrono::Duration::days(7))
        .format("%Y-%m-%d")
        .to_string();
    let ran = Command::new(python())
        .arg(format!("{root}/tests/clients/flow.py"))
        .env("PYTHONPATH", &out)
        .env("ANNALS_URL", &app.address)
        .env("ADMIN", "boss")
        .env("PASSWORD", PASSWORD)
        .env("MASTER", &master)
        .env("DAY", &day)
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "the flow failed: {}{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    let outcome: Value = serde_json::from_slice(&ran.stdout).unwrap();
    assert_eq!(outcome["history"], serde_json::json!(["AppointmentBooked"]));
    assert!(
        outcome["start"].as_str().unwrap().ends_with("+01:00")
            || outcome["start"].as_str().unwrap().ends_with("+02:00"),
        "availability answered in the zone asked for: {outcome}"
    );
    app.settle().await;
    let pool = app.backing.pool().await;
    let stored: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM appointments WHERE id = $1 AND status = 'booked'")
            .bind(outcome["appointment"].as_str().unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, 1, "the booking is in the read model");
}
