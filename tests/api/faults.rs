//! G1 and G9 under fire: NATS stopped under load, the server killed with
//! SIGKILL mid-load, the database stopped and started again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::both_modes;
use crate::support::ledger::CONSUMER;
use crate::support::{run_cli, Api, Backing, ChildApp, Mode, Nats, Postgres, TestApp};

const ACCOUNTS: usize = 4;

/// Acknowledged deposits: (account, version, position).
type Acks = Arc<Mutex<Vec<(String, i64, i64)>>>;

/// Deposits of 1 from `clients` concurrent clients until `stop` is set or
/// `limit` commands were sent; records every acknowledged one.
fn start_load(
    base: String,
    clients: usize,
    limit: usize,
    stop: Arc<AtomicBool>,
    acks: Acks,
) -> Vec<tokio::task::JoinHandle<usize>> {
    (0..clients)
        .map(|c| {
            let (base, stop, acks) = (base.clone(), stop.clone(), acks.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let mut failures = 0;
                for i in 0..limit / clients {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let id = format!("acc-{}", (c + i) % ACCOUNTS);
                    let sent = client
                        .post(format!("{base}/api/v1/test-accounts/{id}/deposit"))
                        .json(&json!({"amount": 1}))
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status() == 200 => {
                            let body: Value = response.json().await.unwrap();
                            acks.lock().unwrap().push((
                                id,
                                body["version"].as_i64().unwrap(),
                                body["position"].as_i64().unwrap(),
                            ));
                        }
                        Ok(response) => panic!("unexpected {} during load", response.status()),
                        Err(_) => failures += 1,
                    }
                }
                failures
            })
        })
        .collect()
}

async fn open_accounts(app: &impl Api) {
    for a in 0..ACCOUNTS {
        app.open(&format!("acc-{a}")).await;
    }
}

fn acked(acks: &Acks) -> usize {
    acks.lock().unwrap().len()
}

async fn wait_for_acks(acks: &Acks, count: usize) {
    let started = Instant::now();
    while acked(acks) < count {
        assert!(started.elapsed() < Duration::from_secs(60), "load stalled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Each account's balance is exactly its number of acknowledged deposits
/// (plus any that landed but whose answer was lost), and every event was
/// applied once.
async fn assert_consistent(app: &impl Api, acks: &Acks) {
    let pool = app.backing().pool().await;
    let acknowledged = acks.lock().unwrap().clone();
    for (id, version, _) in &acknowledged {
        let stored: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE aggregate_type = 'test_account' AND aggregate_id = $1 AND sequence = $2",
        )
        .bind(id)
        .bind(version)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(stored, 1, "acknowledged event {id}@{version} is stored");
    }
    crate::consumers::assert_each_event_applied_once(app).await;
    for a in 0..ACCOUNTS {
        let id = format!("acc-{a}");
        let deposits: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE aggregate_id = $1 AND event_type = 'MoneyDeposited'",
        )
        .bind(&id)
        .fetch_one(&pool)
        .await
        .unwrap();
        let (_, account) = app.get_json(&format!("/api/v1/test-accounts/{id}")).await;
        assert_eq!(
            account["balance"], deposits,
            "{id}: read model matches the log"
        );
        let acked = acks
            .lock()
            .unwrap()
            .iter()
            .filter(|(i, _, _)| *i == id)
            .count() as i64;
        assert!(deposits >= acked, "{id}: no acknowledged deposit lost");
    }
    pool.close().await;
}

/// The JetStream store lost under load (its tail never delivered, the
/// relay's checkpoint already past it): every read model still reaches the
/// log head, from the log, and applies each event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_nats_store_under_load_loses_nothing_in_the_read_models() {
    let nats = Nats::start();
    let backing = Backing::with(Mode::Server, None, Some(&nats)).await;
    let app = TestApp::start(backing).await;
    open_accounts(&app).await;
    let (stop, acks) = (Arc::new(AtomicBool::new(false)), Acks::default());
    let load = start_load(app.address.clone(), 4, 20_000, stop.clone(), acks.clone());
    wait_for_acks(&acks, 50).await;
    nats.wipe();
    let next = acked(&acks) + 100;
    wait_for_acks(&acks, next).await;
    stop.store(true, Ordering::SeqCst);
    for client in load {
        assert_eq!(client.await.unwrap(), 0, "no request failed");
    }
    app.settle().await;
    assert_consistent(&app, &acks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_stopped_under_load_loses_and_duplicates_nothing() {
    let nats = Nats::start();
    let backing = Backing::with(Mode::Server, None, Some(&nats)).await;
    let app = TestApp::start(backing).await;
    open_accounts(&app).await;
    let (stop, acks) = (Arc::new(AtomicBool::new(false)), Acks::default());
    let load = start_load(app.address.clone(), 4, 20_000, stop.clone(), acks.clone());
    wait_for_acks(&acks, 50).await;

    nats.kill();
    let during = acked(&acks);
    // The client notices the lost connection within moments.
    let noticed = Instant::now();
    let (status, report) = loop {
        let (status, report) = app.get_json("/readyz").await;
        if status != 200 || noticed.elapsed() > Duration::from_secs(10) {
            break (status, report);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let outage = Instant::now();
    // Commands keep being accepted while NATS is away.
    wait_for_acks(&acks, during + 100).await;
    assert_eq!(status, 503, "readyz reports NATS down: {report}");
    assert_eq!(report["nats"]["mode"], "disconnected");
    // Keep NATS away for a few seconds of load.
    while outage.elapsed() < Duration::from_secs(3) {
        let next = acked(&acks) + 1;
        wait_for_acks(&acks, next).await;
    }
    nats.restart();
    let next = acked(&acks) + 50;
    wait_for_acks(&acks, next).await;
    stop.store(true, Ordering::SeqCst);
    for client in load {
        assert_eq!(client.await.unwrap(), 0, "no request failed");
    }
    app.settle().await;
    assert_consistent(&app, &acks).await;

    // The relay caught up: everything reached JetStream too.
    let started = Instant::now();
    loop {
        let (status, report) = app.get_json("/readyz").await;
        let relay = report["consumers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "nats-relay")
            .cloned();
        if status == 200
            && relay.is_some_and(|r| r["lag_events"] == 0 && r["checkpoint"] == report["log_head"])
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "relay did not catch up: {report}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_server_killed_mid_load_keeps_every_acknowledged_write(mode: Mode) {
    let backing = Backing::new(mode).await;
    let app = ChildApp::start(backing).await;
    open_accounts(&app).await;
    let (stop, acks) = (Arc::new(AtomicBool::new(false)), Acks::default());
    let load = start_load(app.address.clone(), 4, 2000, stop.clone(), acks.clone());
    wait_for_acks(&acks, 150).await;

    let backing = app.kill();
    // The clients see errors now; stop them.
    stop.store(true, Ordering::SeqCst);
    for client in load {
        client.await.unwrap();
    }

    let app = ChildApp::start(backing).await;
    app.settle().await;
    assert_consistent(&app, &acks).await;
    let (_, live) = app.get_json("/api/v1/test-accounts").await;
    let backing = app.kill();

    // The read model equals a rebuild from the log.
    run_cli(&backing, &["replay", "--consumer", CONSUMER]);
    let app = ChildApp::start(backing).await;
    let (_, rebuilt) = app.get_json("/api/v1/test-accounts").await;
    assert_eq!(rebuilt, live);
}
both_modes!(a_server_killed_mid_load_keeps_every_acknowledged_write);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_database_down_commands_get_a_fast_503_and_recover_without_restart() {
    let pg = Postgres::start();
    let backing = Backing::with(Mode::Server, Some(&pg), None).await;
    let app = TestApp::start(backing).await;
    app.open("acc").await;

    pg.stop();
    let started = Instant::now();
    let response = app
        .post("/api/v1/test-accounts/acc/deposit", json!({"amount": 1}))
        .await;
    let waited = started.elapsed();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(response.headers().contains_key("retry-after"));
    // A sanity bound, not a benchmark: it must not hang like a lost request.
    assert!(
        waited < Duration::from_secs(15),
        "answered after {waited:?}"
    );
    let (status, report) = app.get_json("/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(report["database"]["ok"], false);

    pg.restart();
    let started = Instant::now();
    loop {
        let response = app
            .post("/api/v1/test-accounts/acc/deposit", json!({"amount": 1}))
            .await;
        if response.status() == 200 {
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(started.elapsed() < Duration::from_secs(30), "no recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.settle().await;
    let (_, account) = app.get_json("/api/v1/test-accounts/acc").await;
    assert_eq!(
        account["balance"], 1,
        "the refused deposit left nothing behind"
    );
    let (status, _) = app.get_json("/readyz").await;
    assert_eq!(status, 200);
}
