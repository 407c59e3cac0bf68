//! Customers, invoices with receipts, and scheduled messages sent exactly
//! once — to a webhook receiver served here, across two processes and a
//! restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use crate::appointments::{login, user};
use crate::both_modes;
use crate::shop::send;
use crate::support::{Api, Backing, ChildApp, Mode, TestApp};

const SECRET: &str = "a-webhook-secret-of-some-length";

async fn staff(app: &TestApp) -> (String, String) {
    user(app, "boss", "admin");
    user(app, "otto", "operator");
    app.settle().await;
    (login(app, "boss").await, login(app, "otto").await)
}

async fn ok(app: &impl Api, token: &str, method: &str, path: &str, body: Value) -> Value {
    let body = (!body.is_null()).then_some(body);
    let (status, answer, _) = send(app, method, path, Some(token), &[], body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
    answer
}

async fn customer(app: &impl Api, token: &str, name: &str) -> String {
    let made = ok(
        app,
        token,
        "POST",
        "/api/v1/customers",
        json!({"name": name, "phone": "+447700900123", "email": format!("{name}@example.com")}),
    )
    .await;
    made["id"].as_str().unwrap().to_string()
}

async fn invoice_numbers_stay_gap_free_under_twenty_concurrent_issues(mode: Mode) {
    let app = crate::support::spawn_app(mode).await;
    let (admin, _) = staff(&app).await;
    let jane = customer(&app, &admin, "jane").await;
    let due = (chrono::Utc::now().date_naive() + chrono::Duration::days(14)).to_string();
    let attempts = (0..20).map(|_| {
        let (app, admin, jane, due) = (&app, &admin, &jane, &due);
        async move {
            send(app, "POST", "/api/v1/invoices", Some(admin), &[],
                Some(json!({"customer_id": jane, "amount": "100.00", "currency": "EUR", "due_date": due})))
            .await
        }
    });
    let answers = futures::future::join_all(attempts).await;
    let year = chrono::Utc::now().date_naive().format("%Y").to_string();
    let mut numbers: Vec<String> = answers
        .iter()
        .map(|(status, body, _)| {
            assert_eq!(*status, 201, "{body}");
            body["number"].as_str().unwrap().to_string()
        })
        .collect();
    numbers.sort();
    let expected: Vec<String> = (1..=20).map(|n| format!("{year}-{n:05}")).collect();
    assert_eq!(numbers, expected);
    // A refused issue takes no number.
    let (status, _, _) = send(&app, "POST", "/api/v1/invoices", Some(&admin), &[],
        Some(json!({"customer_id": uuid::Uuid::now_v7(), "amount": "1.00", "currency": "EUR", "due_date": due})))
    .await;
    assert_eq!(status, 404);
    let next = ok(
        &app,
        &admin,
        "POST",
        "/api/v1/invoices",
        json!({"customer_id": jane, "amount": "1.00", "currency": "EUR", "due_date": due}),
    )
    .await;
    assert_eq!(next["number"], format!("{year}-00021"));
}
both_modes!(invoice_numbers_stay_gap_free_under_twenty_concurrent_issues);

async fn upload_receipt(app: &TestApp, token: &str) -> String {
    let part = reqwest::multipart::Part::bytes(
        format!("%PDF-1.4 receipt {}", uuid::Uuid::now_v7()).into_bytes(),
    )
    .file_name("receipt.pdf")
    .mime_str("application/pdf")
    .unwrap();
    let response = app
        .http()
        .post(app.url("/api/v1/files"))
        .bearer_auth(token)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["file_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn an_invoice_is_paid_with_receipts_and_the_customer_page_lists_it_all(mode: Mode) {
    let app = crate::support::spawn_app(mode).await;
    let (admin, operator) = staff(&app).await;
    let jane = customer(&app, &operator, "jane").await;
    let issued = ok(&app, &admin, "POST", "/api/v1/invoices",
        json!({"customer_id": jane, "amount": "100.00", "currency": "EUR", "issue_date": "2026-11-01",
            "due_date": "2026-11-15", "lines": [{"description": "Design", "amount": "60.00"},
            {"description": "Build", "amount": "40.00"}]})).await;
    let invoice = issued["id"].as_str().unwrap().to_string();
    app.settle().await;
    let view = ok(
        &app,
        &operator,
        "GET",
        &format!("/api/v1/invoices/{invoice}"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (&view["status"], &view["overdue"]),
        (&json!("issued"), &json!(true)),
        "{view}"
    );

    let first = upload_receipt(&app, &admin).await;
    ok(&app, &admin, "POST", &format!("/api/v1/invoices/{invoice}/payments"),
        json!({"amount": "40.00", "currency": "EUR", "receipt_file_id": first, "paid_on": "2026-11-20"})).await;
    let (status, reused, _) = send(
        &app,
        "POST",
        &format!("/api/v1/invoices/{invoice}/payments"),
        Some(&admin),
        &[],
        Some(json!({"amount": "10.00", "currency": "EUR", "receipt_file_id": first})),
    )
    .await;
    assert_eq!(
        (status, &reused["type"]),
        (409, &json!("/problems/file-in-use")),
        "a receipt is one payment's"
    );
    let second = upload_receipt(&app, &admin).await;
    let (status, over, _) = send(
        &app,
        "POST",
        &format!("/api/v1/invoices/{invoice}/payments"),
        Some(&admin),
        &[],
        Some(json!({"amount": "70.00", "currency": "EUR", "receipt_file_id": second})),
    )
    .await;
    assert_eq!((status, &over["type"]), (409, &json!("/problems/overpaid")));
    ok(
        &app,
        &admin,
        "POST",
        &format!("/api/v1/invoices/{invoice}/payments"),
        json!({"amount": "60.00", "currency": "EUR", "receipt_file_id": second}),
    )
    .await;
    app.settle().await;
    let view = ok(
        &app,
        &operator,
        "GET",
        &format!("/api/v1/invoices/{invoice}"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (&view["status"], &view["overdue"], &view["paid"]),
        (&json!("paid"), &json!(false), &json!("100.00"))
    );

    // A receipt over the limit is refused and stores nothing.
    let files_dir = app.backing.data_dir().join("files");
    let count = |dir: &std::path::Path| walk(dir);
    let before = count(&files_dir);
    let mut big = b"%PDF-1.4 ".to_vec();
    big.resize(10 * 1024 * 1024 + 1, b'r');
    let part = reqwest::multipart::Part::bytes(big)
        .file_name("receipt.pdf")
        .mime_str("application/pdf")
        .unwrap();
    let too_big = app
        .http()
        .post(app.url("/api/v1/files"))
        .bearer_auth(&admin)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    assert_eq!(count(&files_dir), before, "nothing stored");

    // Receipts are for staff.
    let path = app.url(&format!("/api/v1/files/{first}"));
    let got = app
        .http()
        .get(&path)
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    user(&app, "cleo", "client");
    let client = login(&app, "cleo").await;
    let refused = app
        .http()
        .get(&path)
        .bearer_auth(&client)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    // The one page about the customer.
    let later = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    ok(&app, &operator, "POST", "/api/v1/scheduled-messages",
        json!({"customer_id": jane, "channel": "sms", "content": "Thanks for paying", "scheduled_at": later})).await;
    app.settle().await;
    let page = ok(
        &app,
        &operator,
        "GET",
        &format!("/api/v1/customers/{jane}"),
        Value::Null,
    )
    .await;
    assert_eq!(page["name"], "jane");
    assert_eq!(page["invoices"][0]["number"], issued["number"]);
    assert_eq!(page["messages"][0]["content"], "Thanks for paying");
    let found = ok(
        &app,
        &operator,
        "GET",
        "/api/v1/customers?q=JANE@",
        Value::Null,
    )
    .await;
    assert_eq!(found["items"][0]["id"], jane.as_str(), "{found}");
    let (status, _, _) = send(&app, "POST", "/api/v1/scheduled-messages", Some(&operator), &[],
        Some(json!({"customer_id": jane, "channel": "telegram", "content": "hi", "scheduled_at": later}))).await;
    assert_eq!(status, 409, "telegram needs a linked chat");
}
both_modes!(an_invoice_is_paid_with_receipts_and_the_customer_page_lists_it_all);

/// A call the provider got: its headers, its body parsed and raw.
type Call = (HeaderMap, Value, Vec<u8>);

/// A provider webhook: records each call; answers 500 to the first
/// `fail_first` calls for a message, 200 after.
#[derive(Clone, Default)]
struct Provider {
    calls: Arc<Mutex<Vec<Call>>>,
    fail_first: Arc<Mutex<HashMap<String, u32>>>,
}

async fn receive(
    State(provider): State<Provider>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = value["message_id"].as_str().unwrap_or_default().to_string();
    provider
        .calls
        .lock()
        .unwrap()
        .push((headers, value, body.to_vec()));
    let mut failing = provider.fail_first.lock().unwrap();
    match failing.get_mut(&id) {
        Some(left) if *left > 0 => {
            *left -= 1;
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::OK,
    }
}

impl Provider {
    async fn start(&self) -> String {
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{address}/hook")
    }

    fn calls_for(&self, id: &str) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, v, _)| v["message_id"] == id)
            .cloned()
            .collect()
    }
}

async fn wait_for_status(app: &impl Api, token: &str, id: &str, status: &str) -> Value {
    let started = Instant::now();
    loop {
        let (_, view, _) = send(
            app,
            "GET",
            &format!("/api/v1/scheduled-messages/{id}"),
            Some(token),
            &[],
            None,
        )
        .await;
        if view["status"] == status {
            return view;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{id} stays {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two processes run; each due message reaches the provider once, signed,
/// with its id as the Idempotency-Key; one the provider fails twice is
/// tried three times and sent once; a cancelled one is never sent.
#[tokio::test]
async fn with_two_processes_each_due_message_reaches_the_webhook_once_signed() {
    let provider = Provider::default();
    let url = provider.start().await;
    let mut backing = Backing::new(Mode::Server).await;
    backing.env.insert("ANNALS_MESSAGE_WEBHOOK_URL".into(), url);
    backing
        .env
        .insert("ANNALS_MESSAGE_WEBHOOK_SECRET".into(), SECRET.into());
    backing
        .env
        .insert("ANNALS_MESSAGE_MAX_ATTEMPTS".into(), "3".into());
    let app = TestApp::start(backing).await;
    let (admin, operator) = staff(&app).await;
    let jane = customer(&app, &operator, "jane").await;
    let one = ChildApp::start(app.backing.clone()).await;
    let two = ChildApp::start(app.backing.clone()).await;
    let at = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let mut ids = Vec::new();
    for (i, process) in [&one, &two, &one, &two, &one].into_iter().enumerate() {
        let made = ok(
            process,
            &operator,
            "POST",
            "/api/v1/scheduled-messages",
            json!({"customer_id": jane, "channel": if i % 2 == 0 { "sms" } else { "whatsapp" },
                "content": format!("message {i}"), "scheduled_at": at}),
        )
        .await;
        ids.push(made["id"].as_str().unwrap().to_string());
    }
    provider
        .fail_first
        .lock()
        .unwrap()
        .insert(ids[1].clone(), 2);
    provider
        .fail_first
        .lock()
        .unwrap()
        .insert(ids[4].clone(), 100);
    ok(
        &two,
        &admin,
        "POST",
        &format!("/api/v1/scheduled-messages/{}/cancel", ids[3]),
        Value::Null,
    )
    .await;
    for id in &ids[..3] {
        wait_for_status(&one, &operator, id, "sent").await;
    }
    for id in &ids[..3] {
        let calls = provider.calls_for(id);
        let expected = if *id == ids[1] { 3 } else { 1 };
        assert_eq!(calls.len(), expected, "{id}: {calls:?}");
        for (headers, value, raw) in &calls {
            assert_eq!(headers["idempotency-key"], id.as_str());
            assert_eq!(
                headers["x-annals-signature"].to_str().unwrap(),
                annals::messages::signature(raw, SECRET)
            );
            assert_eq!(value["to"], "+447700900123");
        }
    }
    let view = wait_for_status(&one, &operator, &ids[1], "sent").await;
    assert_eq!(view["attempts"], 3, "{view}");
    assert!(
        provider.calls_for(&ids[3]).is_empty(),
        "cancelled: never sent"
    );
    // One the provider always fails: failed after the three tries allowed,
    // its last answer kept.
    let failed = wait_for_status(&one, &operator, &ids[4], "failed").await;
    assert_eq!(
        (&failed["attempts"], &failed["last_answer"]),
        (&json!(3), &json!("500")),
        "{failed}"
    );
    assert_eq!(provider.calls_for(&ids[4]).len(), 3);
    // Due reminders: the sent ones until acknowledged; not the cancelled.
    let due = ok(&one, &operator, "GET", "/api/v1/reminders/due", Value::Null).await;
    let listed: Vec<&Value> = due.as_array().unwrap().iter().map(|m| &m["id"]).collect();
    assert_eq!(listed.len(), 4, "the sent and the failed: {due}");
    ok(
        &two,
        &operator,
        "POST",
        &format!("/api/v1/reminders/{}/acknowledge", ids[0]),
        Value::Null,
    )
    .await;
    app.settle().await;
    let due = ok(&one, &operator, "GET", "/api/v1/reminders/due", Value::Null).await;
    assert_eq!(due.as_array().unwrap().len(), 3, "{due}");
    let acknowledged = ok(
        &one,
        &operator,
        "GET",
        &format!("/api/v1/scheduled-messages/{}", ids[0]),
        Value::Null,
    )
    .await;
    assert!(
        acknowledged["acknowledged_by"].is_string(),
        "{acknowledged}"
    );
}

/// Without a webhook a message goes to the outbox; one that falls due while
/// the server is down is written once after it comes back.
async fn a_message_due_while_the_server_is_down_is_sent_once_after_it_comes_back(mode: Mode) {
    let app = crate::support::spawn_app(mode).await;
    let (_, operator) = staff(&app).await;
    let jane = customer(&app, &operator, "jane").await;
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let made = ok(&app, &operator, "POST", "/api/v1/scheduled-messages",
        json!({"customer_id": jane, "channel": "sms", "content": "while you were out", "scheduled_at": at.to_rfc3339()})).await;
    let id = made["id"].as_str().unwrap().to_string();
    let backing = app.shutdown().await;
    let outbox = backing.data_dir().join("message-outbox");
    while chrono::Utc::now() < at + chrono::Duration::seconds(1) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !outbox.join(format!("{id}.json")).exists(),
        "nothing sent while down"
    );
    let app = TestApp::start(backing).await;
    let view = wait_for_status(&app, &operator, &id, "sent").await;
    assert_eq!(
        (&view["attempts"], &view["last_answer"]),
        (&json!(1), &json!("written to the outbox"))
    );
    let written: Value =
        serde_json::from_slice(&std::fs::read(outbox.join(format!("{id}.json"))).unwrap()).unwrap();
    assert_eq!(
        (&written["message_id"], &written["text"]),
        (&json!(id), &json!("while you were out"))
    );
    let files = std::fs::read_dir(&outbox).unwrap().count();
    assert_eq!(files, 1, "written once");
}
both_modes!(a_message_due_while_the_server_is_down_is_sent_once_after_it_comes_back);

/// Files under `dir`, recursively.
pub(crate) fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| {
                if e.path().is_dir() {
                    walk(&e.path())
                } else {
                    1
                }
            })
            .sum()
    })
}
