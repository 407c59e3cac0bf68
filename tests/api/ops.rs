//! Ops: metrics, readiness, graceful shutdown, the relay lease, upcasters.

use std::time::{Duration, Instant};

use annals::bus::workers::Lease;
use serde_json::json;

use crate::both_modes;
use crate::support::log_head;
use crate::support::{spawn_app, Api, Backing, ChildApp, Mode};

async fn metrics_report_http_latency_appends_and_consumer_lag(mode: Mode) {
    let app = spawn_app(mode).await;
    app.open("acc").await;
    app.settle().await;
    let started = Instant::now();
    let wanted = [
        "annals_http_request_duration_seconds_bucket{",
        "annals_append_seconds_bucket{aggregate=\"test_account\"",
        "annals_consumer_lag_events{consumer=\"test_accounts\"}",
        "annals_consumer_lag_seconds{consumer=\"test_accounts\"}",
        "annals_log_head_position",
    ];
    loop {
        let response = app.http().get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        let relay_ok = mode == Mode::Embedded
            || text.contains("annals_relay_backlog_events{consumer=\"nats-relay\"}");
        if wanted.iter().all(|w| text.contains(w)) && relay_ok {
            break;
        }
        // The lag gauges are refreshed once a second.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "missing metrics in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, ready) = app.get_json("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(ready["database"]["ok"], true);
    assert_eq!(
        ready["nats"]["mode"],
        if mode == Mode::Server {
            "connected"
        } else {
            "in-process"
        }
    );
}
both_modes!(metrics_report_http_latency_appends_and_consumer_lag);

async fn sigterm_finishes_in_flight_commands_and_exits_cleanly(mode: Mode) {
    let backing = Backing::new(mode).await;
    let mut app = ChildApp::start(backing).await;
    app.open("acc").await;
    let requests: Vec<_> = (0..30)
        .map(|_| {
            let (client, url) = (
                app.client.clone(),
                app.url("/api/v1/test-accounts/acc/deposit"),
            );
            tokio::spawn(async move { client.post(url).json(&json!({"amount": 1})).send().await })
        })
        .collect();
    let status = app.terminate();
    assert!(status.success(), "exit status {status:?}");
    let mut acknowledged = 0;
    for request in requests {
        // A request the server took is answered, not failed; others were
        // refused or closed before the server took them.
        if let Ok(response) = request.await.unwrap() {
            assert_eq!(response.status(), 200);
            acknowledged += 1;
        }
    }
    let pool = app_pool(&app).await;
    let stored: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_type = 'MoneyDeposited'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        stored >= acknowledged,
        "{stored} stored, {acknowledged} acknowledged"
    );
}
both_modes!(sigterm_finishes_in_flight_commands_and_exits_cleanly);

async fn app_pool(app: &ChildApp) -> sqlx::AnyPool {
    app.backing.pool().await
}

async fn only_one_process_holds_the_relay_lease_until_it_expires(mode: Mode) {
    let backing = Backing::new(mode).await;
    let app = spawn_app_on(&backing).await;
    let pool = backing.pool().await;
    let ttl = Duration::from_millis(300);
    assert!(Lease::acquire(&pool, "test-lease", "a", ttl)
        .await
        .unwrap()
        .is_some());
    assert!(
        Lease::acquire(&pool, "test-lease", "b", ttl)
            .await
            .unwrap()
            .is_none(),
        "held by a"
    );
    assert!(
        Lease::acquire(&pool, "test-lease", "a", ttl)
            .await
            .unwrap()
            .is_some(),
        "a renews"
    );
    let started = Instant::now();
    while Lease::acquire(&pool, "test-lease", "b", ttl)
        .await
        .unwrap()
        .is_none()
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "lease never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "b waited for the expiry"
    );
    assert!(
        Lease::acquire(&pool, "test-lease", "a", ttl)
            .await
            .unwrap()
            .is_none(),
        "now held by b"
    );
    drop(app);
}
both_modes!(only_one_process_holds_the_relay_lease_until_it_expires);

async fn spawn_app_on(backing: &Backing) -> crate::support::TestApp {
    crate::support::TestApp::start(backing.clone()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_server_processes_relay_through_one_leader_and_both_serve() {
    let backing = Backing::new(Mode::Server).await;
    let first = ChildApp::start(backing.clone()).await;
    let second = ChildApp::start(backing.clone()).await;
    first.open("one").await;
    second.open("two").await;
    for i in 0..20 {
        let app = if i % 2 == 0 { &first } else { &second };
        let response = app
            .post("/api/v1/test-accounts/one/deposit", json!({"amount": 1}))
            .await;
        assert_eq!(response.status(), 200);
    }
    first.settle().await;
    let pool = backing.pool().await;
    let holders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM leases WHERE name = 'nats-relay'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(holders, 1);
    let head = log_head(&pool).await;
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM test_applied")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        applied, head,
        "each event applied once across both processes"
    );
    for app in [&first, &second] {
        let (_, account) = app
            .get_json(&format!("/api/v1/test-accounts/one?min_position={head}"))
            .await;
        assert_eq!(account["balance"], 20);
    }
    // The relay published everything once the leader caught up.
    let started = Instant::now();
    loop {
        let relayed: i64 = sqlx::query_scalar(
            "SELECT position FROM consumer_checkpoints WHERE name = 'nats-relay'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if relayed == head {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "relay stuck at {relayed} of {head}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Log lines written to a pipe or file carry no terminal colour codes.
#[test]
fn text_logs_into_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_annals"))
        .arg("migrate")
        .env("ANNALS_DATA_DIR", dir.path())
        .env("RUST_LOG", "debug")
        .env_remove("DATABASE_URL")
        .env_remove("NATS_URL")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success());
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(!logs.trim().is_empty(), "it logged something");
    assert!(!logs.contains('\u{1b}'), "colour codes in: {logs}");
}
