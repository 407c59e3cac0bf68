//! Commands that change several aggregates commit them together: booking,
//! rescheduling and cancelling never leave a slot reserved by nothing or
//! taken twice — not with `If-Match`, not when the commit's answer is
//! lost, not when the process dies between two streams' writes, not with
//! two processes racing on one PostgreSQL.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::appointments::{book, call, client, shop, Shop};
use crate::both_modes;
use crate::support::{Api, Backing, ChildApp, Mode};

/// POST with a bearer token and optional extra headers.
async fn post(
    app: &impl Api,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (u16, Value, bool) {
    let mut request = app
        .http()
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        replayed,
    )
}

fn booking(shop: &Shop, time: &str) -> Value {
    json!({"service_id": shop.service, "master_id": shop.master, "start": format!("{}T{time}:00Z", shop.day)})
}

async fn free_slots(app: &impl Api, shop: &Shop) -> Vec<String> {
    let (status, availability) = app
        .get_json(&format!(
            "/api/v1/availability?service_id={}&date={}&tz=UTC",
            shop.service, shop.day
        ))
        .await;
    assert_eq!(status, 200, "{availability}");
    availability["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_str().unwrap()[11..16].to_string())
        .collect()
}

async fn count(backing: &Backing, sql: &str) -> i64 {
    let pool = backing.pool().await;
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}

async fn cancel_with_its_true_version_frees_the_slot(mode: Mode) {
    let shop = shop(mode).await;
    let ada = client(&shop, "ada").await;
    assert_eq!(book(&shop, &ada, "14:00").await.0, 201);
    let (status, ten) = book(&shop, &ada, "10:00").await;
    assert_eq!(status, 201);
    assert_eq!(ten["version"], 1);
    let path = format!(
        "/api/v1/appointments/{}/cancel",
        ten["id"].as_str().unwrap()
    );
    let (status, cancelled, _) = post(
        &shop.app,
        &path,
        &ada,
        &[("If-Match", "\"1\"")],
        json!({"reason": "ill"}),
    )
    .await;
    assert_eq!(
        status, 200,
        "If-Match names the appointment only: {cancelled}"
    );
    assert_eq!(cancelled["version"], 2);
    shop.app.settle().await;
    assert!(free_slots(&shop.app, &shop)
        .await
        .contains(&"10:00".to_string()));
    assert_eq!(
        book(&shop, &ada, "10:00").await.0,
        201,
        "the master's day gave the time back"
    );
}
both_modes!(cancel_with_its_true_version_frees_the_slot);

async fn a_reschedule_refused_by_if_match_moves_nothing(mode: Mode) {
    let shop = shop(mode).await;
    let ada = client(&shop, "ada").await;
    let (_, ten) = book(&shop, &ada, "10:00").await;
    let path = format!(
        "/api/v1/appointments/{}/reschedule",
        ten["id"].as_str().unwrap()
    );
    let to_three = json!({"start": format!("{}T15:00:00Z", shop.day)});
    let (status, problem, _) = post(
        &shop.app,
        &path,
        &ada,
        &[("If-Match", "\"7\"")],
        to_three.clone(),
    )
    .await;
    assert_eq!(status, 412, "{problem}");
    // Neither the new time taken nor the old one given back.
    let bob = client(&shop, "bob").await;
    assert_eq!(book(&shop, &bob, "10:00").await.0, 409, "10:00 still held");
    assert_eq!(
        book(&shop, &bob, "15:00").await.0,
        201,
        "15:00 was never taken"
    );
    // With the right version it moves, on the same day, and gives 10:00 back.
    let (status, moved, _) = post(
        &shop.app,
        &path,
        &ada,
        &[("If-Match", "\"1\"")],
        json!({"start": format!("{}T16:00:00Z", shop.day)}),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(book(&shop, &bob, "10:00").await.0, 201, "10:00 free again");
    assert_eq!(book(&shop, &bob, "16:00").await.0, 409, "16:00 is ada's");
}
both_modes!(a_reschedule_refused_by_if_match_moves_nothing);

async fn a_refusal_is_the_answer_a_retry_with_its_key_gets(mode: Mode) {
    let shop = shop(mode).await;
    let ada = client(&shop, "ada").await;
    let (_, ten) = book(&shop, &ada, "10:00").await;
    let bob = client(&shop, "bob").await;
    let key = [("Idempotency-Key", "bob-10")];
    let (status, first, replayed) = post(
        &shop.app,
        "/api/v1/appointments",
        &bob,
        &key,
        booking(&shop, "10:00"),
    )
    .await;
    assert_eq!((status, replayed), (409, false), "{first}");
    let cancel = format!(
        "/api/v1/appointments/{}/cancel",
        ten["id"].as_str().unwrap()
    );
    assert_eq!(
        post(&shop.app, &cancel, &ada, &[], json!({"reason": "ill"}))
            .await
            .0,
        200
    );
    // The slot is free now, but this key's request was answered: 409 again.
    let (status, again, replayed) = post(
        &shop.app,
        "/api/v1/appointments",
        &bob,
        &key,
        booking(&shop, "10:00"),
    )
    .await;
    assert_eq!((status, replayed), (409, true));
    assert_eq!(again, first);
    // A new key is a new request.
    let (status, _, _) = post(
        &shop.app,
        "/api/v1/appointments",
        &bob,
        &[("Idempotency-Key", "bob-10b")],
        booking(&shop, "10:00"),
    )
    .await;
    assert_eq!(status, 201);
}
both_modes!(a_refusal_is_the_answer_a_retry_with_its_key_gets);

/// Failpoints on the append path (built with `--features annals/failpoints`,
/// as tests/run.sh does), armed in a child process through `FAILPOINTS`.
#[cfg(feature = "failpoints")]
mod injected {
    use super::*;
    use crate::support::TestApp;

    /// The shop, then the same database served by a child process with
    /// failpoints armed (`FAILPOINTS`, see the `fail` crate).
    async fn shop_in_child(mode: Mode, failpoints: &str) -> (Shop, String, ChildApp) {
        let shop = shop(mode).await;
        let ada = client(&shop, "ada").await;
        let Shop {
            app,
            admin,
            service,
            master,
            day,
        } = shop;
        let mut backing = app.shutdown().await;
        backing.env.insert("FAILPOINTS".into(), failpoints.into());
        let child = ChildApp::start(backing.clone()).await;
        backing.env.remove("FAILPOINTS");
        let shop = Shop {
            app: TestApp::start(backing).await,
            admin,
            service,
            master,
            day,
        };
        (shop, ada, child)
    }

    async fn a_lost_commit_acknowledgement_is_found_by_a_retry_with_its_key(mode: Mode) {
        // The first commit succeeds, but its answer is lost.
        let (shop, ada, child) = shop_in_child(mode, "append.after_commit=1*return").await;
        let key = [("Idempotency-Key", "ada-lost-ack")];
        let (status, problem, _) = post(
            &child,
            "/api/v1/appointments",
            &ada,
            &key,
            booking(&shop, "10:00"),
        )
        .await;
        assert_eq!(status, 503, "{problem}");
        assert_eq!(problem["type"], "/problems/outcome-unknown");
        let (status, first, replayed) = post(
            &child,
            "/api/v1/appointments",
            &ada,
            &key,
            booking(&shop, "10:00"),
        )
        .await;
        assert_eq!(
            (status, replayed),
            (201, true),
            "the retry finds the outcome: {first}"
        );
        let id = first["id"].as_str().unwrap();
        child.settle().await;
        let (status, page) = call(&child, "GET", "/api/v1/appointments", &ada, None).await;
        assert_eq!(status, 200);
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "booked once: {page}");
        assert_eq!(items[0]["id"], id);
        let bob = client(&shop, "bob").await;
        assert_eq!(
            book(&shop, &bob, "10:00").await.0,
            409,
            "and the slot is taken"
        );
    }
    both_modes!(a_lost_commit_acknowledgement_is_found_by_a_retry_with_its_key);

    async fn a_process_killed_between_two_streams_leaves_nothing_half_written(mode: Mode) {
        // The process dies after writing the master's day, before the appointment.
        let (shop, ada, child) = shop_in_child(mode, "append.between_streams=return(abort)").await;
        let key = [("Idempotency-Key", "ada-crash")];
        let sent = child
            .http()
            .post(child.url("/api/v1/appointments"))
            .bearer_auth(&ada)
            .header("Idempotency-Key", "ada-crash")
            .json(&booking(&shop, "10:00"))
            .send()
            .await;
        assert!(sent.is_err(), "the process died mid-request");
        let (status, backing) = child.ended();
        assert!(!status.success());
        assert_eq!(
            count(
                &backing,
                "SELECT COUNT(*) FROM events WHERE aggregate_type IN ('master_day', 'appointment')"
            )
            .await,
            0,
            "no reservation without its appointment"
        );
        assert!(free_slots(&shop.app, &shop)
            .await
            .contains(&"10:00".to_string()));
        // The key is not wedged: the retry runs, once.
        let (status, booked, replayed) = post(
            &shop.app,
            "/api/v1/appointments",
            &ada,
            &key,
            booking(&shop, "10:00"),
        )
        .await;
        assert_eq!((status, replayed), (201, false), "{booked}");
        let (status, again, replayed) = post(
            &shop.app,
            "/api/v1/appointments",
            &ada,
            &key,
            booking(&shop, "10:00"),
        )
        .await;
        assert_eq!((status, replayed), (201, true));
        assert_eq!(again["id"], booked["id"]);
        assert_eq!(
            count(
                &backing,
                "SELECT COUNT(*) FROM events WHERE aggregate_type = 'master_day'"
            )
            .await,
            1
        );
    }
    both_modes!(a_process_killed_between_two_streams_leaves_nothing_half_written);
}

/// Two `annals` processes on one PostgreSQL and NATS, the shop set up.
async fn two_processes() -> (Shop, ChildApp, ChildApp) {
    let shop = shop(Mode::Server).await;
    let backing = shop.app.backing.clone();
    let one = ChildApp::start(backing.clone()).await;
    let two = ChildApp::start(backing).await;
    (shop, one, two)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_racing_for_one_slot_book_it_once() {
    let (shop, one, two) = two_processes().await;
    let ada = client(&shop, "ada").await;
    let body = booking(&shop, "10:00");
    let attempts = (0..50).map(|i| {
        let (ada, body) = (&ada, body.clone());
        let process = if i % 2 == 0 { &one } else { &two };
        async move { post(process, "/api/v1/appointments", ada, &[], body).await }
    });
    let results = futures::future::join_all(attempts).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        results
            .iter()
            .all(|(s, b, _)| *s == 201 || (*s == 409 && b["type"] == "/problems/slot-taken")),
        "{results:?}"
    );
    assert_eq!(
        count(
            &shop.app.backing,
            "SELECT COUNT(*) FROM events WHERE event_type = 'MasterTimeReserved'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_rescheduling_into_one_slot_let_one_win() {
    let (shop, one, two) = two_processes().await;
    let ada = client(&shop, "ada").await;
    let times = [
        "09:00", "10:00", "11:00", "12:00", "14:00", "15:00", "16:00",
    ];
    let mut ids = Vec::new();
    for time in times {
        let (status, booked) = book(&shop, &ada, time).await;
        assert_eq!(status, 201, "{time}: {booked}");
        ids.push(booked["id"].as_str().unwrap().to_string());
    }
    let to = json!({"start": format!("{}T17:00:00Z", shop.day)});
    let moves = ids.iter().enumerate().map(|(i, id)| {
        let (ada, to) = (&ada, to.clone());
        let path = format!("/api/v1/appointments/{id}/reschedule");
        let process = if i % 2 == 0 { &one } else { &two };
        async move { post(process, &path, ada, &[], to).await }
    });
    let results = futures::future::join_all(moves).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    one.settle().await;
    // Exactly one appointment at 17:00, and the time it left is free.
    let (_, page) = call(&one, "GET", "/api/v1/appointments", &ada, None).await;
    let at_five = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["start"].as_str().unwrap().contains("T17:00"))
        .count();
    assert_eq!(at_five, 1);
    // The winner's old time is free again (next to it, how many more starts
    // fit depends on the break); 17:00 is not.
    let left = times[statuses.iter().position(|s| *s == 200).unwrap()];
    let free = free_slots(&one, &shop).await;
    assert!(
        free.contains(&left.to_string()),
        "{left} given back: {free:?}"
    );
    assert!(!free.contains(&"17:00".to_string()), "{free:?}");
    let others_free = times
        .iter()
        .filter(|t| **t != left && free.contains(&t.to_string()))
        .count();
    assert_eq!(others_free, 0, "the losers kept their times: {free:?}");
}

async fn a_client_too_late_to_cancel_may_not_reschedule_either(mode: Mode) {
    let shop = shop(mode).await;
    let ada = client(&shop, "ada").await;
    let (_, ten) = book(&shop, &ada, "10:00").await;
    let id = ten["id"].as_str().unwrap();
    // An hour before the start (the cancellation notice is two hours).
    let start: DateTime<Utc> = format!("{}T10:00:00Z", shop.day).parse().unwrap();
    shop.app
        .platform
        .clock
        .advance(start - Duration::hours(1) - Utc::now());
    let later = json!({"start": format!("{}T16:00:00Z", shop.day)});
    let (status, problem, _) = post(
        &shop.app,
        &format!("/api/v1/appointments/{id}/reschedule"),
        &ada,
        &[],
        later.clone(),
    )
    .await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (409, Some("/problems/too-late-to-reschedule")),
        "{problem}"
    );
    let (status, problem, _) = post(
        &shop.app,
        &format!("/api/v1/appointments/{id}/cancel"),
        &ada,
        &[],
        json!({"reason": "busy"}),
    )
    .await;
    assert_eq!(problem["type"], "/problems/too-late-to-cancel");
    assert_eq!(status, 409);
    // Staff still may.
    let (status, _, _) = post(
        &shop.app,
        &format!("/api/v1/appointments/{id}/reschedule"),
        &shop.admin,
        &[],
        later,
    )
    .await;
    assert_eq!(status, 200);
}
both_modes!(a_client_too_late_to_cancel_may_not_reschedule_either);

#[test]
fn every_combination_of_the_two_notices_starts() {
    for (booking, cancel) in [
        ("0", "0"),
        ("60", "120"),
        ("120", "60"),
        ("0", "43200"),
        ("43200", "0"),
    ] {
        let env = std::collections::HashMap::from([
            ("ANNALS_MIN_NOTICE_MINUTES", booking),
            ("ANNALS_CANCEL_NOTICE_MINUTES", cancel),
        ]);
        let settings =
            annals::config::Settings::from_lookup(|name| env.get(name).map(|v| v.to_string()))
                .unwrap_or_else(|e| panic!("booking {booking}, cancel {cancel}: {e:#}"));
        assert_eq!(settings.min_notice_minutes.to_string(), booking);
        assert_eq!(settings.cancel_notice_minutes.to_string(), cancel);
    }
}
