//! The auditors' side: the global feed, state as of any instant, and the
//! hash chain that detects what a database superuser changed behind the
//! append-only triggers.

use serde_json::{json, Value};

use crate::appointments::{book, call, client, login, shop, user};
use crate::both_modes;
use crate::support::log_head;
use crate::support::{run_cli_status, spawn_app, Api, Backing, Mode, TestApp};

/// Some accounts with history; the auditor's token.
async fn with_history(app: &TestApp) -> String {
    for a in 0..3 {
        let id = format!("acc-{a}");
        app.open(&id).await;
        for amount in [10, 20] {
            let response = app
                .post(
                    &format!("/api/v1/test-accounts/{id}/deposit"),
                    json!({"amount": amount}),
                )
                .await;
            assert_eq!(response.status(), 200);
        }
    }
    user(app, "audrey", "auditor");
    app.settle().await;
    login(app, "audrey").await
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    call(app, "GET", path, token, None).await
}

async fn verified(app: &TestApp, token: &str) -> Value {
    let (status, report) = get(app, token, "/api/v1/audit/verify").await;
    assert_eq!(status, 200, "{report}");
    report
}

/// Runs SQL on the events table as a superuser would: with the
/// append-only triggers out of the way.
async fn behind_the_triggers(app: &TestApp, statements: &[String]) {
    let pool = app.backing.pool().await;
    let postgres = matches!(app.backing.mode, Mode::Server);
    if postgres {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("ALTER TABLE events DISABLE TRIGGER USER")
            .execute(&mut *tx)
            .await
            .unwrap();
        for sql in statements {
            sqlx::query(sql).execute(&mut *tx).await.unwrap();
        }
        sqlx::query("ALTER TABLE events ENABLE TRIGGER USER")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    } else {
        use sqlx::Row;
        let triggers: Vec<(String, String)> = sqlx::query(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("name"), r.get("sql")))
        .collect();
        assert!(!triggers.is_empty(), "the events table has its triggers");
        for (name, _) in &triggers {
            sqlx::query(&format!("DROP TRIGGER {name}"))
                .execute(&pool)
                .await
                .unwrap();
        }
        for sql in statements {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        for (_, sql) in &triggers {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
    }
    pool.close().await;
}

async fn position_of(app: &TestApp, id: &str, sequence: i64) -> i64 {
    let pool = app.backing.pool().await;
    let position: i64 =
        sqlx::query_scalar("SELECT position FROM events WHERE aggregate_id = $1 AND sequence = $2")
            .bind(id)
            .bind(sequence)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    position
}

/// `verify` (the route and the CLI) names `position` and says `why`.
async fn names(app: &TestApp, token: &str, position: i64, why: &str) {
    let report = verified(app, token).await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["first_bad_position"], position, "{report}");
    let reason = report["reason"].as_str().unwrap();
    assert!(reason.contains(why), "{reason}");
    let (ok, _, stderr) = run_cli_status(&app.backing, &["audit", "verify"]);
    assert!(!ok, "the CLI exits non-zero");
    assert!(stderr.contains(&format!("position {position}")), "{stderr}");
}

async fn an_intact_log_verifies_and_the_cli_says_so(mode: Mode) {
    let app = spawn_app(mode).await;
    let auditor = with_history(&app).await;
    let report = verified(&app, &auditor).await;
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["checked"].as_i64().unwrap() >= 9, "{report}");
    assert!(report["checkpoints"].as_i64().unwrap() >= 1, "{report}");
    assert_eq!(report["checked"], report["sealed_to"]);
    let (ok, stdout, stderr) = run_cli_status(&app.backing, &["audit", "verify"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("intact"), "{stdout}");
    let (status, key) = get(&app, &auditor, "/api/v1/audit/public-key").await;
    assert_eq!(
        (status, key["public_key"].as_str().map(str::len)),
        (200, Some(64))
    );
}
both_modes!(an_intact_log_verifies_and_the_cli_says_so);

/// The sealer remembers where it ended the chain, to skip reading it back:
/// a batch rolled back after the chain was extended in memory (a failpoint
/// fails it) is sealed again from the stored chain, not from that end.
#[cfg(feature = "failpoints")]
async fn a_sealer_batch_rolled_back_is_sealed_again_from_the_stored_chain(mode: Mode) {
    use crate::support::ChildApp;
    let mut backing = Backing::new(mode).await;
    backing
        .env
        .insert("FAILPOINTS".into(), "sealer.after_apply=1*return".into());
    let app = ChildApp::start(backing.clone()).await;
    for id in ["rolled-1", "rolled-2"] {
        app.open(id).await;
        let response = app
            .post(
                &format!("/api/v1/test-accounts/{id}/deposit"),
                json!({"amount": 5}),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    app.settle().await;
    let pool = backing.pool().await;
    let head = log_head(&pool).await;
    let chained: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_chain")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(chained, head, "every event has its link in the chain");
    let (ok, stdout, stderr) = run_cli_status(&backing, &["audit", "verify"]);
    assert!(ok && stdout.contains("intact"), "{stdout}{stderr}");
}
#[cfg(feature = "failpoints")]
both_modes!(a_sealer_batch_rolled_back_is_sealed_again_from_the_stored_chain);

async fn one_altered_byte_of_a_payload_is_named(mode: Mode) {
    let app = spawn_app(mode).await;
    let auditor = with_history(&app).await;
    let position = position_of(&app, "acc-1", 2).await;
    let cast = if mode == Mode::Server {
        "CAST(replace(CAST(payload AS text), '10', '19') AS json)"
    } else {
        "replace(payload, '10', '19')"
    };
    behind_the_triggers(
        &app,
        &[format!(
            "UPDATE events SET payload = {cast} WHERE position = {position}"
        )],
    )
    .await;
    names(&app, &auditor, position, "does not hash to its sealed hash").await;
}
both_modes!(one_altered_byte_of_a_payload_is_named);

async fn altered_metadata_is_named(mode: Mode) {
    let app = spawn_app(mode).await;
    let auditor = with_history(&app).await;
    let position = position_of(&app, "acc-2", 3).await;
    let cast = if mode == Mode::Server {
        "CAST(replace(CAST(metadata AS text), 'command_id', 'command_iD') AS json)"
    } else {
        "replace(metadata, 'command_id', 'command_iD')"
    };
    behind_the_triggers(
        &app,
        &[format!(
            "UPDATE events SET metadata = {cast} WHERE position = {position}"
        )],
    )
    .await;
    names(&app, &auditor, position, "does not hash").await;
}
both_modes!(altered_metadata_is_named);

async fn a_deleted_event_is_named(mode: Mode) {
    let app = spawn_app(mode).await;
    let auditor = with_history(&app).await;
    let position = position_of(&app, "acc-0", 2).await;
    behind_the_triggers(
        &app,
        &[format!("DELETE FROM events WHERE position = {position}")],
    )
    .await;
    names(&app, &auditor, position, "missing").await;
}
both_modes!(a_deleted_event_is_named);

async fn two_swapped_events_are_named_at_the_first(mode: Mode) {
    let app = spawn_app(mode).await;
    let auditor = with_history(&app).await;
    let (p, q) = (
        position_of(&app, "acc-1", 1).await,
        position_of(&app, "acc-2", 1).await,
    );
    behind_the_triggers(
        &app,
        &[
            format!("UPDATE events SET position = -1 WHERE position = {p}"),
            format!("UPDATE events SET position = {p} WHERE position = {q}"),
            format!("UPDATE events SET position = {q} WHERE position = -1"),
        ],
    )
    .await;
    names(&app, &auditor, p.min(q), "does not hash").await;
}
both_modes!(two_swapped_events_are_named_at_the_first);

async fn a_tampered_checkpoint_signature_is_named(mode: Mode) {
    let app = spawn_app(mode).await;
    let auditor = with_history(&app).await;
    let pool = app.backing.pool().await;
    let (position, signature): (i64, String) = sqlx::query_as(
        "SELECT position, signature FROM audit_checkpoints ORDER BY position LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let flipped = if signature.starts_with('0') { "1" } else { "0" };
    sqlx::query("UPDATE audit_checkpoints SET signature = $1 WHERE position = $2")
        .bind(format!("{flipped}{}", &signature[1..]))
        .bind(position)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    names(&app, &auditor, position, "signature does not hold").await;
}
both_modes!(a_tampered_checkpoint_signature_is_named);

/// Rewriting the chain to match an altered event does not help: the
/// signed checkpoint after it no longer agrees.
async fn a_rewritten_chain_is_caught_by_its_signed_checkpoint(mode: Mode) {
    let mut backing = Backing::new(mode).await;
    // A checkpoint at the end of every batch the sealer applies.
    backing
        .env
        .insert("ANNALS_AUDIT_CHECKPOINT_EVERY".into(), "1".into());
    let app = TestApp::start(backing).await;
    let auditor = with_history(&app).await;
    let pool = app.backing.pool().await;
    let checkpoint: i64 = sqlx::query_scalar("SELECT MAX(position) FROM audit_checkpoints")
        .fetch_one(&pool)
        .await
        .unwrap();
    // Every chain row replaced by one that hashes the altered log: the
    // verification recomputes, so only the checkpoint can tell.
    let position = position_of(&app, "acc-0", 2).await;
    assert!(position <= checkpoint);
    let cast = if mode == Mode::Server {
        "CAST(replace(CAST(payload AS text), '10', '11') AS json)"
    } else {
        "replace(payload, '10', '11')"
    };
    behind_the_triggers(
        &app,
        &[format!(
            "UPDATE events SET payload = {cast} WHERE position = {position}"
        )],
    )
    .await;
    // Recompute the chain as a forger would and store it.
    let mut conn = pool.acquire().await.unwrap();
    let head: i64 = sqlx::query_scalar("SELECT MAX(position) FROM audit_chain")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let events = annals::audit::raw_events(&mut conn, 1, head).await.unwrap();
    let mut previous = annals::audit::GENESIS;
    for event in &events {
        previous = annals::audit::chain(&previous, event);
        sqlx::query("UPDATE audit_chain SET hash = $1 WHERE position = $2")
            .bind(hex::encode(previous))
            .bind(event.position)
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    drop(conn);
    pool.close().await;
    let report = verified(&app, &auditor).await;
    assert_eq!(report["ok"], false, "{report}");
    let bad = report["first_bad_position"].as_i64().unwrap();
    assert!(bad >= position && bad <= checkpoint, "{report}");
    assert!(
        report["reason"].as_str().unwrap().contains("checkpoint"),
        "{report}"
    );
}
both_modes!(a_rewritten_chain_is_caught_by_its_signed_checkpoint);

async fn the_feed_pages_the_whole_log_and_filters_it(mode: Mode) {
    let app = spawn_app(mode).await;
    let auditor = with_history(&app).await;
    let mut positions = Vec::new();
    let mut next = Some(0);
    while let Some(from) = next {
        let (status, page) = get(
            &app,
            &auditor,
            &format!("/api/v1/audit/events?from_position={from}&limit=4"),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        for e in page["items"].as_array().unwrap() {
            positions.push(e["position"].as_i64().unwrap());
            assert!(
                e["recorded_at"].is_string() && e["actor"]["kind"].is_string(),
                "{e}"
            );
        }
        next = page["next_from_position"].as_i64();
    }
    let pool = app.backing.pool().await;
    let head = log_head(&pool).await;
    pool.close().await;
    assert_eq!(
        positions,
        (1..=head).collect::<Vec<_>>(),
        "every event once, in order"
    );
    let (_, deposits) = get(
        &app,
        &auditor,
        "/api/v1/audit/events?aggregate_type=test_account&aggregate_id=acc-1&event_type=MoneyDeposited",
    )
    .await;
    let items = deposits["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{deposits}");
    assert!(items.iter().all(|e| e["aggregate_id"] == "acc-1"));
    let (_, by_cli) = get(&app, &auditor, "/api/v1/audit/events?actor=cli").await;
    assert!(
        by_cli["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"]["kind"] == "cli"),
        "{by_cli}"
    );
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (status, none) = call(
        &app,
        "GET",
        &format!("/api/v1/audit/events?from={}", urlencode(&future)),
        &auditor,
        None,
    )
    .await;
    assert_eq!(
        (status, none["items"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{none}"
    );
}
both_modes!(the_feed_pages_the_whole_log_and_filters_it);

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

/// An appointment booked, rescheduled and cancelled: `as_of` each event's
/// instant gives the state it left; the history names what changed; the
/// auditor changes nothing.
async fn as_of_gives_each_intermediate_state_of_an_appointment(mode: Mode) {
    let shop = shop(mode).await;
    let ada = client(&shop, "ada").await;
    let (status, booked) = book(&shop, &ada, "10:00").await;
    assert_eq!(status, 201, "{booked}");
    let id = booked["id"].as_str().unwrap().to_string();
    let (status, _) = call(
        &shop.app,
        "POST",
        &format!("/api/v1/appointments/{id}/reschedule"),
        &ada,
        Some(json!({"start": format!("{}T11:00:00Z", shop.day)})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &shop.app,
        "POST",
        &format!("/api/v1/appointments/{id}/cancel"),
        &ada,
        Some(json!({"reason": "ill"})),
    )
    .await;
    assert_eq!(status, 200);
    user(&shop.app, "audrey", "auditor");
    shop.app.settle().await;
    let auditor = login(&shop.app, "audrey").await;
    let base = format!("/api/v1/audit/aggregates/appointment/{id}");
    let (status, now) = get(&shop.app, &auditor, &base).await;
    assert_eq!(status, 200, "{now}");
    let events = now["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 3, "{now}");
    let expected = [
        ("booked", "10:00"),
        ("booked", "11:00"),
        ("cancelled", "11:00"),
    ];
    for (event, (status_then, start_then)) in events.iter().zip(expected) {
        let at = event["recorded_at"].as_str().unwrap();
        let (code, then) = get(
            &shop.app,
            &auditor,
            &format!("{base}?as_of={}", urlencode(at)),
        )
        .await;
        assert_eq!(code, 200, "{then}");
        assert_eq!(then["version"], event["sequence"], "{then}");
        let state = &then["state"];
        let text = state.to_string();
        assert!(
            text.contains(&format!("\"{status_then}\""))
                || text.to_lowercase().contains(status_then),
            "{state}"
        );
        assert!(
            text.contains(&format!("T{start_then}:00")),
            "{start_then} in {state}"
        );
    }
    let before = chrono::DateTime::parse_from_rfc3339(events[0]["recorded_at"].as_str().unwrap())
        .unwrap()
        - chrono::Duration::seconds(1);
    let (_, nothing) = get(
        &shop.app,
        &auditor,
        &format!("{base}?as_of={}", urlencode(&before.to_rfc3339())),
    )
    .await;
    assert_eq!(nothing["version"], 0, "{nothing}");
    let (status, history) = get(&shop.app, &auditor, &format!("{base}/history")).await;
    assert_eq!(status, 200);
    assert_eq!(
        history[2]["event_type"], "AppointmentCancelled",
        "{history}"
    );
    assert!(
        history[2]["changes"]
            .as_object()
            .is_some_and(|c| !c.is_empty()),
        "{history}"
    );
    assert_eq!(history[0]["actor"]["kind"], "user");
    // The auditor reads and changes nothing.
    let (status, _) = book(&shop, &auditor, "12:00").await;
    assert_eq!(status, 403, "an auditor books nothing");
    let (status, _) = get(&shop.app, &ada, "/api/v1/audit/events").await;
    assert_eq!(status, 403, "a client reads no audit trail");
    let (status, unknown) = get(&shop.app, &auditor, "/api/v1/audit/aggregates/nonsense/x").await;
    assert_eq!(status, 404, "{unknown}");
}
both_modes!(as_of_gives_each_intermediate_state_of_an_appointment);

/// An export verifies offline with nothing but the file and the public key
/// (no database: the check runs with no settings at all), and fails once
/// one byte of it is changed.
async fn an_export_verifies_offline_and_fails_after_one_changed_byte(mode: Mode) {
    let app = spawn_app(mode).await;
    let auditor = with_history(&app).await;
    let (ok, export, stderr) =
        run_cli_status(&app.backing, &["audit", "export", "--from-position", "3"]);
    assert!(ok, "{stderr}");
    // (The test harness's own line may precede the first one.)
    let lines: Vec<&str> = export
        .lines()
        .filter_map(|l| l.find(r#"{"kind""#).map(|i| &l[i..]))
        .collect();
    assert!(lines[0].contains("\"kind\":\"header\""), "{export}");
    assert!(
        lines.iter().any(|l| l.contains("\"kind\":\"checkpoint\"")),
        "{export}"
    );
    let (_, key) = get(&app, &auditor, "/api/v1/audit/public-key").await;
    let key = key["public_key"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.ndjson");
    let body = lines.join("\n") + "\n";
    std::fs::write(&file, &body).unwrap();
    // Offline: an empty environment, no database named anywhere.
    let offline = crate::support::Backing::offline();
    let path = file.to_str().unwrap();
    let (ok, out, err) = run_cli_status(
        &offline,
        &["audit", "verify-export", path, "--public-key", &key],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("intact"), "{out}");
    // One byte of one event's payload changed: "10" becomes "19".
    let at = body
        .find(r#"\"amount\":10"#)
        .expect("a deposit of 10 in the export");
    let mut tampered = body.into_bytes();
    tampered[at + r#"\"amount\":1"#.len()] = b'9';
    std::fs::write(&file, &tampered).unwrap();
    let (ok, out, err) = run_cli_status(
        &offline,
        &["audit", "verify-export", path, "--public-key", &key],
    );
    assert!(!ok, "a changed byte fails: {out}");
    assert!(err.contains("does not hash"), "{err}");
    // Another key: the signatures do not hold.
    let other = "11".repeat(32);
    std::fs::write(&file, lines.join("\n")).unwrap();
    let (ok, _, err) = run_cli_status(
        &offline,
        &["audit", "verify-export", path, "--public-key", &other],
    );
    assert!(!ok && err.contains("signature"), "{err}");
}
both_modes!(an_export_verifies_offline_and_fails_after_one_changed_byte);
