//! G5 and G6: read models apply each event once with their checkpoint, a
//! rebuild from the log gives the same answers, and an event that keeps
//! failing stops its consumer visibly instead of being skipped.

use futures::StreamExt;
use serde_json::json;

use crate::both_modes;
use crate::support::ledger::{CONSUMER, POISON};
use crate::support::log_head;
use crate::support::{
    run_cli, run_cli_status, spawn_app, stall_the_relay, Api, Backing, ChildApp, Mode, TestApp,
};

/// Some accounts with some history.
async fn load(app: &impl Api, accounts: usize) {
    for a in 0..accounts {
        let id = format!("acc-{a:02}");
        app.open(&id).await;
        for amount in 1..=3 {
            let response = app
                .post(
                    &format!("/api/v1/test-accounts/{id}/deposit"),
                    json!({"amount": amount * 10}),
                )
                .await;
            assert_eq!(response.status(), 200);
        }
        let response = app
            .post(
                &format!("/api/v1/test-accounts/{id}/withdraw"),
                json!({"amount": 5}),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
}

/// Every position of the log applied exactly once (the projector records
/// each applied position under a primary key).
pub(crate) async fn assert_each_event_applied_once(app: &impl Api) {
    let pool = app.backing().pool().await;
    let head = log_head(&pool).await;
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT position FROM test_applied ORDER BY position")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        applied,
        (1..=head).collect::<Vec<_>>(),
        "each event applied exactly once"
    );
    pool.close().await;
}

async fn rebuilding_a_read_model_from_the_log_gives_the_same_answers(mode: Mode) {
    let app = spawn_app(mode).await;
    load(&app, 12).await;
    app.settle().await;
    let (_, live) = app.get_json("/api/v1/test-accounts").await;
    assert_eq!(live.as_array().unwrap().len(), 12);
    assert_each_event_applied_once(&app).await;
    let backing = app.shutdown().await;

    let output = run_cli(&backing, &["replay", "--consumer", CONSUMER]);
    assert!(
        output.contains("replayed test_accounts to position 60"),
        "{output}"
    );

    let app = TestApp::start(backing).await;
    let (_, rebuilt) = app.get_json("/api/v1/test-accounts").await;
    assert_eq!(rebuilt, live);
    assert_each_event_applied_once(&app).await;
}
both_modes!(rebuilding_a_read_model_from_the_log_gives_the_same_answers);

/// Every row of `table` as text, in key order: what a read model holds.
pub(crate) async fn dump(pool: &sqlx::AnyPool, table: &str) -> Vec<Vec<Option<String>>> {
    use sqlx::{Column, Row};
    let rows = sqlx::query(&format!("SELECT * FROM {table} ORDER BY 1, 2, 3"))
        .fetch_all(pool)
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            (0..row.columns().len())
                .map(|i| {
                    row.try_get::<Option<String>, _>(i)
                        .or_else(|_| {
                            row.try_get::<Option<i64>, _>(i)
                                .map(|v| v.map(|v| v.to_string()))
                        })
                        .or_else(|_| {
                            row.try_get::<Option<i32>, _>(i)
                                .map(|v| v.map(|v| v.to_string()))
                        })
                        .unwrap_or_else(|e| panic!("{table}.{}: {e}", row.columns()[i].name()))
                })
                .collect()
        })
        .collect()
}

const READ_MODEL_TABLES: &[&str] = &[
    "service_categories",
    "services",
    "masters",
    "appointments",
    "appointment_facts",
    "users",
    "read_model_names",
];

/// The live read models apply events a few at a time as commands come;
/// a rebuild folds the whole log in one batch. Both must give the same
/// rows, renames and reschedules included.
/// Three bookings (one cancelled, one rescheduled), a rename and a
/// deactivated service; the ids of the bookings.
async fn some_history(shop: &crate::appointments::Shop) -> Vec<String> {
    use crate::appointments::{book, call, client};
    let ada = client(shop, "ada").await;
    let bob = client(shop, "bob").await;
    let mut ids = Vec::new();
    for (token, time) in [(&ada, "09:00"), (&bob, "10:00"), (&ada, "11:00")] {
        let (status, booked) = book(shop, token, time).await;
        assert_eq!(status, 201, "{booked}");
        ids.push(booked["id"].as_str().unwrap().to_string());
    }
    let (status, _) = call(
        &shop.app,
        "POST",
        &format!("/api/v1/appointments/{}/cancel", ids[1]),
        &bob,
        Some(json!({"reason": "ill"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &shop.app,
        "PUT",
        "/api/v1/me",
        &ada,
        Some(json!({"full_name": "Ada Lovelace"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, moved) = call(
        &shop.app,
        "POST",
        &format!("/api/v1/appointments/{}/reschedule", ids[0]),
        &ada,
        Some(json!({"start": format!("{}T15:00:00Z", shop.day)})),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    let (status, _) = call(
        &shop.app,
        "POST",
        &format!("/api/v1/services/{}/deactivate", shop.service),
        &shop.admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    ids
}

async fn every_read_model_rebuilt_in_one_batch_has_the_rows_it_had_live(mode: Mode) {
    let shop = crate::appointments::shop(mode).await;
    let ids = some_history(&shop).await;
    assert_eq!(ids.len(), 3);
    shop.app.settle().await;

    let pool = shop.app.backing.pool().await;
    let mut live = Vec::new();
    for table in READ_MODEL_TABLES {
        live.push(dump(&pool, table).await);
    }
    assert_eq!(live[3].len(), 3, "three appointments");
    for consumer in ["catalog", "masters", "appointments", "users", "statistics"] {
        let output = run_cli(&shop.app.backing, &["replay", "--consumer", consumer]);
        assert!(output.contains("replayed"), "{output}");
    }
    for (table, before) in READ_MODEL_TABLES.iter().zip(&live) {
        assert_eq!(&dump(&pool, table).await, before, "{table} after a rebuild");
    }
    pool.close().await;
}
both_modes!(every_read_model_rebuilt_in_one_batch_has_the_rows_it_had_live);

/// `annals replay --verify` rebuilds every read model into a shadow copy
/// next to the running server and finds them identical; after a live row
/// is altered behind the projector's back, it names the table and shows
/// the row on both sides, and leaves the live row as it found it.
async fn replay_verify_compares_every_read_model_with_a_rebuild(mode: Mode) {
    let shop = crate::appointments::shop(mode).await;
    let ids = some_history(&shop).await;
    shop.app.settle().await;

    let (ok, out, err) = run_cli_status(&shop.app.backing, &["replay", "--verify"]);
    assert!(ok, "{out}\n{err}");
    for consumer in [
        "users",
        "appointments",
        "statistics",
        "projects",
        "marketing",
    ] {
        assert!(
            out.contains(&format!("rebuilt {consumer} to position ")),
            "{out}"
        );
    }
    assert!(out.contains("skipped audit-sealer"), "{out}");
    assert!(out.contains("identical: "), "{out}");

    let pool = shop.app.backing.pool().await;
    sqlx::query("UPDATE appointments SET status = 'completed' WHERE id = $1")
        .bind(&ids[0])
        .execute(&pool)
        .await
        .unwrap();
    let (ok, out, err) = run_cli_status(&shop.app.backing, &["replay", "--verify"]);
    assert!(!ok, "{out}");
    assert!(err.contains("1 of "), "{err}");
    assert!(
        out.contains("DIFFERS appointments: 3 live rows, 3 rebuilt"),
        "{out}"
    );
    let side = |prefix: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no '{prefix}' line in {out}"))
            .to_string()
    };
    let live = side("only live:");
    let rebuilt = side("only rebuilt:");
    assert!(
        live.contains(&ids[0]) && live.contains("completed"),
        "{live}"
    );
    assert!(
        rebuilt.contains(&ids[0]) && rebuilt.contains("booked"),
        "{rebuilt}"
    );
    let status: String = sqlx::query_scalar("SELECT status FROM appointments WHERE id = $1")
        .bind(&ids[0])
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "completed", "verify changes nothing");

    sqlx::query("DELETE FROM read_model_names WHERE consumer = 'appointments'")
        .execute(&pool)
        .await
        .unwrap();
    let (ok, out, _) = run_cli_status(
        &shop.app.backing,
        &["replay", "--verify", "--consumer", "appointments"],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("DIFFERS read_model_names: 0 live rows"),
        "{out}"
    );
    assert!(
        !out.contains("rebuilt users"),
        "only the one consumer: {out}"
    );
    pool.close().await;
}
both_modes!(replay_verify_compares_every_read_model_with_a_rebuild);

async fn replay_of_an_unknown_consumer_names_the_known_ones(mode: Mode) {
    let app = spawn_app(mode).await;
    let backing = app.shutdown().await;
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["child_process_entry", "--exact", "--ignored", "--nocapture"])
        .envs(&backing.env)
        .env(
            crate::support::CHILD_ENV,
            "replay\u{1f}--consumer\u{1f}nope",
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no consumer named 'nope'; known: users, "),
        "{stderr}"
    );
    assert!(stderr.contains("test_accounts"), "{stderr}");
}
both_modes!(replay_of_an_unknown_consumer_names_the_known_ones);

async fn an_event_that_keeps_failing_stops_its_consumer_and_shows_in_readyz(mode: Mode) {
    let app = spawn_app(mode).await;
    app.open("before").await;
    let poisoned = app
        .post(
            "/api/v1/test-accounts",
            json!({"id": "bad", "owner": POISON}),
        )
        .await;
    assert_eq!(poisoned.status(), 201, "the command itself is fine");
    let after = app.open("after").await;

    // Wait for the consumer to give up (it retries with backoff first).
    let report = loop {
        let (status, report) = app.get_json("/readyz").await;
        if status == 503 {
            break report;
        }
        assert_eq!(status, 200);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(report["status"], "not_ready");
    let consumer = &report["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == CONSUMER)
        .unwrap();
    assert_eq!(
        consumer["checkpoint"], 1,
        "stopped right before the poisoned event"
    );
    assert!(
        consumer["failed"].as_str().unwrap().contains("position 2"),
        "{consumer}"
    );

    // Not skipped: the event after it is not applied either.
    let (status, _) = app.get_json("/api/v1/test-accounts/after").await;
    assert_eq!(status, 404);
    let (status, problem) = app
        .get_json(&format!(
            "/api/v1/test-accounts/after?min_position={}",
            after["position"]
        ))
        .await;
    assert_eq!(status, 503, "{problem}");
    let failed = format!("annals_consumer_failed{{consumer=\"{CONSUMER}\"}}");
    assert_eq!(counter(&app, &failed).await, 1.0, "{failed}");
}
both_modes!(an_event_that_keeps_failing_stops_its_consumer_and_shows_in_readyz);

/// JetStream is the doorbell, the log the truth: with nothing published
/// (the relay stalled, as after a lost stream tail), a quiet consumer whose
/// checkpoint is behind the log head reads the log by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_nothing_published_read_models_still_reach_the_log_head() {
    let backing = Backing::new(Mode::Server).await;
    stall_the_relay(&backing).await;
    let app = TestApp::start(backing).await;
    let opened = app.open("quiet").await;
    let deposited: serde_json::Value = app
        .post("/api/v1/test-accounts/quiet/deposit", json!({"amount": 5}))
        .await
        .json()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (status, account) = app
        .get_json(&format!(
            "/api/v1/test-accounts/quiet?min_position={}",
            deposited["position"]
        ))
        .await;
    assert_eq!(status, 200, "the read model reached the log: {account}");
    assert_eq!(account["balance"], 5);
    assert!(opened["position"].as_i64() < deposited["position"].as_i64());
    println!(
        "read model caught up from the log in {:?}",
        started.elapsed()
    );
    let pool = app.backing.pool().await;
    let relayed: Option<i64> =
        sqlx::query_scalar("SELECT position FROM consumer_checkpoints WHERE name = 'nats-relay'")
            .fetch_optional(&pool)
            .await
            .unwrap();
    assert_eq!(relayed.unwrap_or(0), 0, "nothing was published");
}

/// The relay's checkpoint is written under its lease: a relay that stalled
/// past its lease cannot write it, and it never moves backwards.
async fn the_relay_checkpoint_is_fenced_by_its_lease_and_only_moves_forward(mode: Mode) {
    use annals::bus::workers::Lease;
    use std::time::Duration;
    let app = spawn_app(mode).await;
    let pool = app.backing.pool().await;
    let name = "fenced-test";
    sqlx::query("INSERT INTO consumer_checkpoints (name, position, updated_at) VALUES ($1, 0, 0)")
        .bind(name)
        .execute(&pool)
        .await
        .unwrap();
    let ttl = Duration::from_secs(60);
    let a = Lease::acquire(&pool, name, "relay-a", ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(Lease::advance_checkpoint(&pool, name, "relay-a", a, 10)
        .await
        .unwrap());
    assert_eq!(
        Lease::acquire(&pool, name, "relay-b", ttl).await.unwrap(),
        None,
        "a holds it"
    );
    // a stalls past its lease; b takes over, in a new epoch, and moves on.
    sqlx::query("UPDATE leases SET expires_at = 1 WHERE name = $1")
        .bind(name)
        .execute(&pool)
        .await
        .unwrap();
    let b = Lease::acquire(&pool, name, "relay-b", ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(b > a);
    assert!(Lease::advance_checkpoint(&pool, name, "relay-b", b, 20)
        .await
        .unwrap());
    // a wakes up with its old view: neither behind nor ahead may it write.
    assert!(!Lease::advance_checkpoint(&pool, name, "relay-a", a, 15)
        .await
        .unwrap());
    assert!(!Lease::advance_checkpoint(&pool, name, "relay-a", a, 30)
        .await
        .unwrap());
    // b itself cannot move it back.
    assert!(!Lease::advance_checkpoint(&pool, name, "relay-b", b, 5)
        .await
        .unwrap());
    let position: i64 =
        sqlx::query_scalar("SELECT position FROM consumer_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(position, 20);
    // Released and taken again: the epoch still grows, never repeats.
    Lease::release(&pool, name, "relay-b").await.unwrap();
    let c = Lease::acquire(&pool, name, "relay-a", ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(c > b);
    assert!(!Lease::advance_checkpoint(&pool, name, "relay-b", b, 40)
        .await
        .unwrap());
}
both_modes!(the_relay_checkpoint_is_fenced_by_its_lease_and_only_moves_forward);

/// Two relays, the first stalled past its lease right before saving its
/// checkpoint (a failpoint sleeps there): the second takes over; when the
/// first wakes, its stale checkpoint is refused. The checkpoint never moves
/// backwards and every read model applies each event once.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_relays_after_a_stall_never_move_the_checkpoint_backwards() {
    use crate::support::ChildApp;
    use std::time::{Duration, Instant};
    let backing = Backing::new(Mode::Server).await;
    let mut stalling = backing.clone();
    stalling.env.insert(
        "FAILPOINTS".into(),
        "relay.before_checkpoint=1*sleep(12000)".into(),
    );
    let first = ChildApp::start(stalling).await;
    let pool = backing.pool().await;
    let relay_checkpoint = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT position FROM consumer_checkpoints WHERE name = 'nats-relay'",
        )
        .fetch_optional(&pool)
        .await
        .unwrap()
        .unwrap_or(0)
    };
    // The first process leads (it is alone) and stalls on its first batch.
    first.open("a").await;
    let second = ChildApp::start(backing.clone()).await;
    let mut seen = vec![relay_checkpoint().await];
    let started = Instant::now();
    let mut n = 0;
    // Keep writing through both while the lease changes hands and the
    // first relay wakes up (12 s), watching the checkpoint.
    while started.elapsed() < Duration::from_secs(16) {
        n += 1;
        let target = if n % 2 == 0 { &first } else { &second };
        let response = target
            .post("/api/v1/test-accounts/a/deposit", json!({"amount": 1}))
            .await;
        assert_eq!(response.status(), 200);
        seen.push(relay_checkpoint().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "the relay checkpoint moved backwards: {seen:?}"
    );
    second.settle().await;
    let head = log_head(&pool).await;
    // The relay stores its checkpoint a moment after it has published.
    let deadline = Instant::now() + Duration::from_secs(10);
    while relay_checkpoint().await < head {
        assert!(
            Instant::now() < deadline,
            "the relay never reached the head"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        relay_checkpoint().await,
        head,
        "the relay stopped at the head"
    );
    assert_each_event_applied_once(&second).await;
    drop(first);
}

/// A batch a read model has nothing to do with moves its checkpoint in
/// memory at once (reads that ask for a position do not wait) and is
/// stored as soon as the consumer is idle, without a write per batch.
async fn a_read_model_passes_over_events_it_ignores_and_stores_the_checkpoint_when_idle(
    mode: Mode,
) {
    let app = spawn_app(mode).await;
    load(&app, 3).await;
    let pool = app.backing().pool().await;
    let head = log_head(&pool).await;
    assert_eq!(head, 15);
    let (_, ready) = app.get_json("/readyz").await;
    assert_eq!(
        ready["log_head"], head,
        "readiness reports the head as it is"
    );
    // The catalog ignores test accounts; a read of it at the head answers.
    let (status, _) = app
        .get_json(&format!("/api/v1/service-categories?min_position={head}"))
        .await;
    assert_eq!(status, 200);
    app.settle().await;
    let stored: i64 =
        sqlx::query_scalar("SELECT position FROM consumer_checkpoints WHERE name = 'catalog'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, head);
    pool.close().await;
}
both_modes!(a_read_model_passes_over_events_it_ignores_and_stores_the_checkpoint_when_idle);

/// The process's read models are fed by one fan-out: in server mode the
/// events come through JetStream (one ordered consumer for the process,
/// not one per read model), in embedded mode as the process's writer
/// committed them, not read back from the log; each event is counted once
/// however many read models there are. (A process of its own: metrics are
/// per process.)
async fn read_models_are_fed_by_one_fan_out_per_process(mode: Mode) {
    let source = if mode == Mode::Server {
        "jetstream"
    } else {
        "writer"
    };
    let app = ChildApp::start(Backing::new(mode).await).await;
    load(&app, 3).await;
    // 3 accounts, each opened, with three deposits and a withdrawal; the
    // last one is read back through the read model once it caught up (a
    // read right after the commands raced the projector: 404).
    app.settle().await;
    let (status, _) = app.get_json("/api/v1/test-accounts/acc-02").await;
    assert_eq!(status, 200);
    let pool = app.backing.pool().await;
    let head = log_head(&pool).await;
    let line = format!("annals_fanout_events_total{{source=\"{source}\"}}");
    // The fan-out counts a batch after handing it out: wait for the count.
    let started = std::time::Instant::now();
    let count = loop {
        let count = counter(&app, &line).await;
        if count >= 15.0 || started.elapsed() > std::time::Duration::from_secs(10) {
            break count;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        (15.0..=head as f64).contains(&count),
        "{count} events fed from {source}; the log holds {head}"
    );
}
both_modes!(read_models_are_fed_by_one_fan_out_per_process);

/// A counter's value in a process's `/metrics` (0 when not there yet).
async fn counter(app: &impl Api, series: &str) -> f64 {
    let metrics = app
        .http()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Accounts under `prefix`, each opened and given a deposit.
async fn accounts(app: &impl Api, prefix: &str, count: usize) {
    for a in 0..count {
        let id = format!("{prefix}-{a:02}");
        app.open(&id).await;
        let deposit = format!("/api/v1/test-accounts/{id}/deposit");
        let response = app.post(&deposit, json!({"amount": 10})).await;
        assert_eq!(response.status(), 200);
    }
}

/// Two processes on one PostgreSQL write at once; the relay (one of them)
/// publishes every event once, in position order — what its own process
/// committed as its writer handed it over, without reading it back, and
/// the other process's appends from the log.
#[tokio::test]
async fn the_relay_publishes_two_processes_events_once_and_in_order() {
    let backing = Backing::new(Mode::Server).await;
    let one = ChildApp::start(backing.clone()).await;
    let two = ChildApp::start(backing.clone()).await;
    tokio::join!(accounts(&one, "one", 10), accounts(&two, "two", 10));
    one.settle().await;
    // One command at a time on each, with the relay at the head before
    // each: the relay's own process hands its batch over whole.
    for (n, app) in [&one, &two, &one, &two].into_iter().enumerate() {
        accounts(app, &format!("after-{n}"), 1).await;
        one.settle().await;
    }
    let pool = backing.pool().await;
    let head = log_head(&pool).await;
    let prefix = &backing.env["ANNALS_NATS_PREFIX"];
    let stream = format!("{}_EVENTS", prefix.to_uppercase().replace('-', "_"));
    let client = async_nats::connect(&backing.env["NATS_URL"]).await.unwrap();
    let stream = async_nats::jetstream::new(client)
        .get_stream(&stream)
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut published = Vec::new();
    while published.len() < head as usize {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), messages.next())
            .await
            .expect("JetStream holds the whole log")
            .unwrap()
            .unwrap();
        let event: annals_domain::StoredEvent = serde_json::from_slice(&message.payload).unwrap();
        published.push(event.position);
    }
    assert_eq!(
        published,
        (1..=head).collect::<Vec<_>>(),
        "once each, in order"
    );
    let stored = stream.clone().info().await.unwrap().state.messages;
    assert_eq!(stored, head as u64, "nothing published twice");
    let mut by_source = [0.0, 0.0];
    for app in [&one, &two] {
        for (i, source) in ["writer", "log"].into_iter().enumerate() {
            let series = format!("annals_relay_events_total{{source=\"{source}\"}}");
            by_source[i] += counter(app, &series).await;
        }
    }
    let [handed, read] = by_source;
    assert!(handed > 0.0, "the relay's own commits were handed over");
    assert!(
        read > 0.0,
        "the other process's appends were read from the log"
    );
    assert!(handed + read >= head as f64, "{handed} + {read} < {head}");
}
