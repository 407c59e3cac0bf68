//! Client projects, seen by their client at every step; the counts, the
//! staff queue and the statistics; messages and feedback that are each
//! client's own; the roadmap's demand; the automatic confirmation.

use serde_json::{json, Value};

use crate::appointments::{login, user};
use crate::both_modes;
use crate::shop::send;
use crate::support::{run_cli, Api, Backing, Mode, TestApp};

const PASSWORD: &str = "correct horse battery";

struct Portal {
    app: TestApp,
    admin: String,
}

impl Portal {
    async fn start(mode: Mode) -> Self {
        Self::on(Backing::new(mode).await).await
    }

    async fn on(backing: Backing) -> Self {
        let app = TestApp::start(backing).await;
        user(&app, "boss", "admin");
        app.settle().await;
        let admin = login(&app, "boss").await;
        Self { app, admin }
    }

    /// A registered client: (id, token).
    async fn client(&self, name: &str) -> (String, String) {
        let response = self
            .app
            .post(
                "/api/v1/auth/register",
                json!({"username": name, "password": PASSWORD, "full_name": name,
                    "email": format!("{name}@example.com"), "phone": "+441234567890"}),
            )
            .await;
        assert_eq!(response.status(), 201);
        let id: Value = response.json().await.unwrap();
        (
            id["id"].as_str().unwrap().to_string(),
            login(&self.app, name).await,
        )
    }

    async fn call(&self, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
        let body = (!body.is_null()).then_some(body);
        let (status, answer, _) = send(&self.app, method, path, Some(token), &[], body).await;
        (status, answer)
    }

    async fn ok(&self, token: &str, method: &str, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(token, method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        answer
    }

    async fn request(&self, token: &str, title: &str) -> String {
        let made = self
            .ok(
                token,
                "POST",
                "/api/v1/projects",
                json!({"title": title, "description": "Five pages", "desired_deadline": "2027-03-01",
                    "budget_hint": {"amount": "900.00", "currency": "EUR"},
                    "attachments": [{"url": "https://example.com/brief.pdf"}]}),
            )
            .await;
        made["id"].as_str().unwrap().to_string()
    }

    /// A staff command on a project; its answer (with `position`).
    async fn staff(&self, id: &str, command: &str, body: Value) -> Value {
        self.ok(
            &self.admin,
            "POST",
            &format!("/api/v1/projects/{id}/{command}"),
            body,
        )
        .await
    }

    /// The project as `token` sees it once the read model has `done`.
    async fn seen(&self, token: &str, id: &str, done: &Value) -> Value {
        self.ok(
            token,
            "GET",
            &format!("/api/v1/projects/{id}?min_position={}", done["position"]),
            Value::Null,
        )
        .await
    }
}

/// G6: rebuilding the projects read model from the log gives the rows it
/// had live (every table of it).
async fn a_rebuild_gives_the_same_rows(portal: Portal) {
    use crate::consumers::dump;
    const TABLES: [&str; 4] = [
        "projects",
        "project_feedback",
        "client_messages",
        "roadmap_products",
    ];
    portal.app.settle().await;
    let pool = portal.app.backing.pool().await;
    let mut live = Vec::new();
    for table in TABLES {
        live.push(dump(&pool, table).await);
    }
    pool.close().await;
    assert!(
        live.iter().any(|rows| !rows.is_empty()),
        "something to rebuild"
    );
    let backing = portal.app.shutdown().await;
    crate::support::assert_rebuilds_identical(&backing);
    let output = run_cli(&backing, &["replay", "--consumer", "projects"]);
    assert!(output.contains("replayed projects"), "{output}");
    let pool = backing.pool().await;
    for (table, rows) in TABLES.iter().zip(live) {
        assert_eq!(dump(&pool, table).await, rows, "{table}");
    }
}

fn accept() -> Value {
    json!({"price": "1000.00", "currency": "EUR", "deadline": "2027-03-10"})
}

async fn a_project_is_followed_by_its_client_at_every_step_of_its_life(mode: Mode) {
    let portal = Portal::start(mode).await;
    let (ada_id, ada) = portal.client("ada").await;
    let (_, bob) = portal.client("bob").await;
    let id = portal.request(&ada, "A shop site").await;

    let made = json!({"position": 0});
    portal.app.settle().await;
    let requested = portal.seen(&ada, &id, &made).await;
    assert_eq!(requested["state"], "requested");
    assert_eq!(requested["client_id"], ada_id.as_str());
    assert_eq!(requested["working_status"], Value::Null);
    assert_eq!(requested["budget_hint"]["amount"], "900.00");
    assert_eq!(
        requested["attachments"][0]["url"],
        "https://example.com/brief.pdf"
    );

    let done = portal
        .staff(
            &id,
            "keep-waiting",
            json!({"note": "Back to you on Monday"}),
        )
        .await;
    let waiting = portal.seen(&ada, &id, &done).await;
    assert_eq!(
        (waiting["state"].as_str(), waiting["waiting_note"].as_str()),
        (Some("requested"), Some("Back to you on Monday"))
    );

    let done = portal.staff(&id, "accept", accept()).await;
    let planned = portal.seen(&ada, &id, &done).await;
    assert_eq!(planned["state"], "planned");
    assert_eq!(planned["working_status"], "on_queue");
    assert_eq!(planned["price"]["amount"], "1000.00");
    assert_eq!(planned["deadline"], "2027-03-10");
    assert_eq!(planned["waiting_note"], Value::Null);

    // Refusing after acceptance is a conflict; so is progress before the start.
    let (status, refused) = portal
        .call(
            &portal.admin,
            "POST",
            &format!("/api/v1/projects/{id}/refuse"),
            json!({"reason": "changed our mind"}),
        )
        .await;
    assert_eq!(
        (status, refused["type"].as_str()),
        (409, Some("/problems/project-state")),
        "{refused}"
    );
    let (status, _) = portal
        .call(
            &portal.admin,
            "POST",
            &format!("/api/v1/projects/{id}/progress"),
            json!({"percent_done": 10, "note": "x"}),
        )
        .await;
    assert_eq!(status, 409);

    let done = portal.staff(&id, "start", Value::Null).await;
    let started = portal.seen(&ada, &id, &done).await;
    assert_eq!(
        (
            started["state"].as_str(),
            started["working_status"].as_str()
        ),
        (Some("in_progress"), Some("in_work"))
    );
    // A client cannot withdraw once the work has started.
    let (status, _) = portal
        .call(
            &ada,
            "POST",
            &format!("/api/v1/projects/{id}/withdraw"),
            Value::Null,
        )
        .await;
    assert_eq!(status, 409);

    portal
        .staff(
            &id,
            "progress",
            json!({"percent_done": 30, "note": "Home page"}),
        )
        .await;
    let done = portal
        .staff(
            &id,
            "progress",
            json!({"percent_done": 60, "note": "Catalog"}),
        )
        .await;
    assert_eq!(portal.seen(&ada, &id, &done).await["percent_done"], 60);
    let (status, back) = portal
        .call(
            &portal.admin,
            "POST",
            &format!("/api/v1/projects/{id}/progress"),
            json!({"percent_done": 50, "note": "Redo the cart"}),
        )
        .await;
    assert_eq!(
        (status, back["type"].as_str()),
        (409, Some("/problems/progress-backwards")),
        "{back}"
    );
    let done = portal
        .staff(
            &id,
            "progress",
            json!({"percent_done": 50, "note": "Redo the cart", "reason": "the client changed the design"}),
        )
        .await;
    assert_eq!(portal.seen(&ada, &id, &done).await["percent_done"], 50);

    // A re-plan shows the first agreement and the change.
    let done = portal
        .staff(
            &id,
            "replan",
            json!({"price": {"amount": "1200.00", "currency": "EUR"}, "deadline": "2027-03-20", "reason": "a new design"}),
        )
        .await;
    let replanned = portal.seen(&ada, &id, &done).await;
    assert_eq!(replanned["first_agreement"]["price"]["amount"], "1000.00");
    assert_eq!(replanned["first_agreement"]["deadline"], "2027-03-10");
    assert_eq!(replanned["price"]["amount"], "1200.00");
    assert_eq!(replanned["deadline"], "2027-03-20");
    assert_eq!(replanned["replans"][0]["reason"], "a new design");

    // The progress series and its forecast, from the answer's own times.
    let progress = portal
        .ok(
            &ada,
            "GET",
            &format!(
                "/api/v1/projects/{id}/progress?min_position={}",
                done["position"]
            ),
            Value::Null,
        )
        .await;
    let series = progress["series"].as_array().unwrap();
    let percents: Vec<i64> = series
        .iter()
        .map(|p| p["percent_done"].as_i64().unwrap())
        .collect();
    assert_eq!(percents, vec![0, 30, 60, 50]);
    // The recent pace: from the first point (all within 14 days) to the last.
    let at = |p: &Value| chrono::DateTime::parse_from_rfc3339(p["at"].as_str().unwrap()).unwrap();
    let (first, last) = (&series[0], &series[3]);
    let took = (at(last) - at(first)).num_milliseconds();
    let expected = at(last) + chrono::Duration::milliseconds(took * 50 / 50);
    let forecast =
        chrono::DateTime::parse_from_rfc3339(progress["forecast_finish"].as_str().unwrap())
            .unwrap();
    assert_eq!(forecast, expected, "{progress}");

    let done = portal.staff(&id, "ready-for-delivery", Value::Null).await;
    let ready = portal.seen(&ada, &id, &done).await;
    assert_eq!(
        (ready["state"].as_str(), ready["percent_done"].as_i64()),
        (Some("ready_for_delivery"), Some(100))
    );

    // Someone else's project is not there for bob, whatever he tries.
    for (method, path) in [
        ("GET", format!("/api/v1/projects/{id}")),
        ("GET", format!("/api/v1/projects/{id}/history")),
        ("GET", format!("/api/v1/projects/{id}/progress")),
        ("POST", format!("/api/v1/projects/{id}/confirm-receipt")),
    ] {
        let (status, _) = portal.call(&bob, method, &path, Value::Null).await;
        assert_eq!(status, 404, "{method} {path}");
    }
    let (status, _) = portal
        .call(
            &bob,
            "POST",
            &format!("/api/v1/projects/{id}/accept"),
            accept(),
        )
        .await;
    assert_eq!(status, 403, "a client does not accept projects");

    let done = portal
        .ok(
            &ada,
            "POST",
            &format!("/api/v1/projects/{id}/confirm-receipt"),
            Value::Null,
        )
        .await;
    let delivered = portal.seen(&ada, &id, &done).await;
    assert_eq!(delivered["state"], "delivered");
    assert_eq!(delivered["delivered_automatically"], false);
    assert_eq!(delivered["working_status"], Value::Null);
    let waiting = &delivered["waiting"];
    assert!(waiting["on_business_seconds"].as_i64().unwrap() >= 0);

    let history = portal
        .ok(
            &ada,
            "GET",
            &format!("/api/v1/projects/{id}/history"),
            Value::Null,
        )
        .await;
    let types: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec![
            "ProjectRequested",
            "ProjectKeptWaiting",
            "ProjectAccepted",
            "ProjectStarted",
            "ProjectProgressReported",
            "ProjectProgressReported",
            "ProjectProgressReported",
            "ProjectReplanned",
            "ProjectReadyForDelivery",
            "ProjectDelivered"
        ]
    );
    let (status, mine) = portal
        .call(&bob, "GET", "/api/v1/projects", Value::Null)
        .await;
    assert_eq!((status, mine["items"].as_array().unwrap().len()), (200, 0));
}
both_modes!(a_project_is_followed_by_its_client_at_every_step_of_its_life);

async fn the_counts_the_queue_and_the_statistics_match_a_mix_of_requests(mode: Mode) {
    let portal = Portal::start(mode).await;
    let (_, ada) = portal.client("ada").await;
    let mut ids = Vec::new();
    for title in [
        "one", "two", "three", "four", "five", "six", "seven", "eight",
    ] {
        ids.push(portal.request(&ada, title).await);
    }
    // one, two: requested (two kept waiting); three: planned; four: in
    // progress; five: ready; six: delivered; seven: refused; eight: withdrawn.
    portal
        .staff(&ids[1], "keep-waiting", json!({"note": "soon"}))
        .await;
    portal
        .staff(
            &ids[2],
            "accept",
            json!({"price": "300.00", "currency": "EUR", "deadline": "2027-04-01"}),
        )
        .await;
    for id in &ids[3..6] {
        portal.staff(id, "accept", accept()).await;
        portal.staff(id, "start", Value::Null).await;
    }
    portal
        .staff(&ids[4], "ready-for-delivery", Value::Null)
        .await;
    portal
        .staff(&ids[5], "ready-for-delivery", Value::Null)
        .await;
    portal
        .ok(
            &ada,
            "POST",
            &format!("/api/v1/projects/{}/confirm-receipt", ids[5]),
            Value::Null,
        )
        .await;
    portal
        .staff(&ids[6], "refuse", json!({"reason": "not our field"}))
        .await;
    let done = portal
        .ok(
            &ada,
            "POST",
            &format!("/api/v1/projects/{}/withdraw", ids[7]),
            Value::Null,
        )
        .await;

    let counts = portal
        .ok(
            &ada,
            "GET",
            &format!(
                "/api/v1/me/projects/counts?min_position={}",
                done["position"]
            ),
            Value::Null,
        )
        .await;
    assert_eq!(
        counts,
        json!({"proposed": 2, "planned": 1, "in_progress": 2, "finished": 1})
    );

    // The staff queue: on the queue first, then by deadline.
    let queue = portal
        .ok(&portal.admin, "GET", "/api/v1/projects", Value::Null)
        .await;
    let titles: Vec<&str> = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles[0], "three", "{titles:?}");
    assert_eq!(titles.len(), 8);
    let on_queue = portal
        .ok(
            &portal.admin,
            "GET",
            "/api/v1/projects?working_status=on_queue",
            Value::Null,
        )
        .await;
    assert_eq!(on_queue["items"].as_array().unwrap().len(), 1);
    let in_progress = portal
        .ok(
            &portal.admin,
            "GET",
            "/api/v1/projects?state=in_progress&limit=5",
            Value::Null,
        )
        .await;
    assert_eq!(in_progress["items"][0]["title"], "four");

    let stats = portal
        .ok(&portal.admin, "GET", "/api/v1/stats/projects", Value::Null)
        .await;
    assert_eq!(stats["requests"], 8);
    assert_eq!(stats["accepted"], 4);
    assert_eq!(stats["refused"], 1);
    assert_eq!(stats["acceptance_rate"], 0.8);
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    assert_eq!(stats["months"][0]["month"], month.as_str());
    assert_eq!(stats["months"][0]["requests"], 8);
    assert_eq!(
        stats["months"][0]["revenue"],
        json!([{"amount": "1000.00", "currency": "EUR"}])
    );
    assert!(stats["mean_hours_to_acceptance"].as_f64().unwrap() >= 0.0);
    let (status, _) = portal
        .call(&ada, "GET", "/api/v1/stats/projects", Value::Null)
        .await;
    assert_eq!(status, 403);
}
both_modes!(the_counts_the_queue_and_the_statistics_match_a_mix_of_requests);

async fn messages_and_feedback_are_each_clients_own(mode: Mode) {
    let portal = Portal::start(mode).await;
    let (ada_id, ada) = portal.client("ada").await;
    let (bob_id, bob) = portal.client("bob").await;
    let ada_project = portal.request(&ada, "A shop site").await;
    let bob_project = portal.request(&bob, "A blog").await;
    portal.app.settle().await;

    let sent = portal
        .ok(
            &portal.admin,
            "POST",
            "/api/v1/messages",
            json!({"client_id": ada_id, "topic": "project", "subject": "Design ready",
                "body": "Have a look", "project_id": ada_project}),
        )
        .await;
    portal
        .ok(
            &portal.admin,
            "POST",
            "/api/v1/messages",
            json!({"client_id": ada_id, "topic": "workflow", "subject": "Holidays", "body": "Closed on Friday"}),
        )
        .await;
    // Bob's project is no project of Ada's.
    let (status, wrong) = portal
        .call(
            &portal.admin,
            "POST",
            "/api/v1/messages",
            json!({"client_id": ada_id, "topic": "project", "subject": "x", "body": "y", "project_id": bob_project}),
        )
        .await;
    assert_eq!(
        (status, wrong["errors"][0]["field"].as_str()),
        (404, Some("project_id")),
        "{wrong}"
    );
    let last = portal
        .ok(
            &portal.admin,
            "POST",
            "/api/v1/messages",
            json!({"client_id": bob_id, "topic": "other", "subject": "Hello", "body": "Bob's"}),
        )
        .await;
    let read = |token: String, query: &'static str| {
        let portal = &portal;
        let position = last["position"].clone();
        async move {
            portal
                .ok(
                    &token,
                    "GET",
                    &format!("/api/v1/me/messages?min_position={position}{query}"),
                    Value::Null,
                )
                .await["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["subject"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        read(ada.clone(), "").await,
        vec!["Holidays", "Design ready"]
    );
    assert_eq!(
        read(ada.clone(), "&topic=project").await,
        vec!["Design ready"]
    );
    assert_eq!(read(ada.clone(), "&latest=1").await, vec!["Holidays"]);
    assert_eq!(read(bob.clone(), "").await, vec!["Hello"]);

    let id = sent["id"].as_str().unwrap();
    let (status, _) = portal
        .call(&bob, "GET", &format!("/api/v1/messages/{id}"), Value::Null)
        .await;
    assert_eq!(status, 404, "not Bob's message");
    // Staff reading it does not mark it read; Ada reading it does.
    let by_staff = portal
        .ok(
            &portal.admin,
            "GET",
            &format!("/api/v1/messages/{id}"),
            Value::Null,
        )
        .await;
    assert_eq!(by_staff["read"], false);
    let opened = portal
        .ok(&ada, "GET", &format!("/api/v1/messages/{id}"), Value::Null)
        .await;
    assert_eq!(opened["read"], true);
    let again = portal
        .ok(
            &ada,
            "GET",
            &format!("/api/v1/messages/{id}?min_position=0"),
            Value::Null,
        )
        .await;
    assert_eq!(again["version"], opened["version"], "read once");
    portal.app.settle().await;
    assert_eq!(read(ada.clone(), "&unread=true").await, vec!["Holidays"]);

    // Feedback.
    let given = portal
        .ok(
            &ada,
            "POST",
            "/api/v1/feedback",
            json!({"topic": "quality", "text": "Great work", "project_id": ada_project}),
        )
        .await;
    let (status, _) = portal
        .call(
            &bob,
            "POST",
            "/api/v1/feedback",
            json!({"topic": "service", "text": "x", "project_id": ada_project}),
        )
        .await;
    assert_eq!(status, 404, "feedback on someone else's project");
    let done = portal
        .ok(
            &bob,
            "POST",
            "/api/v1/feedback",
            json!({"topic": "other", "text": "Fine"}),
        )
        .await;
    let list = |token: String, query: &'static str| {
        let portal = &portal;
        let position = done["position"].clone();
        async move {
            portal
                .ok(
                    &token,
                    "GET",
                    &format!("/api/v1/feedback?min_position={position}{query}"),
                    Value::Null,
                )
                .await["items"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(list(portal.admin.clone(), "").await, 2);
    assert_eq!(list(bob.clone(), "").await, 1);
    let fid = given["id"].as_str().unwrap();
    let (status, _) = portal
        .call(&bob, "GET", &format!("/api/v1/feedback/{fid}"), Value::Null)
        .await;
    assert_eq!(status, 404);
    let (status, _) = portal
        .call(
            &ada,
            "POST",
            &format!("/api/v1/feedback/{fid}/handle"),
            Value::Null,
        )
        .await;
    assert_eq!(status, 403);
    let handled = portal
        .ok(
            &portal.admin,
            "POST",
            &format!("/api/v1/feedback/{fid}/handle"),
            Value::Null,
        )
        .await;
    let seen = portal
        .ok(
            &ada,
            "GET",
            &format!(
                "/api/v1/feedback/{fid}?min_position={}",
                handled["position"]
            ),
            Value::Null,
        )
        .await;
    assert_eq!(seen["handled"], true);
    assert_eq!(list(portal.admin.clone(), "&handled=false").await, 1);
    a_rebuild_gives_the_same_rows(portal).await;
}
both_modes!(messages_and_feedback_are_each_clients_own);

async fn interest_in_a_roadmap_product_counts_once_per_client(mode: Mode) {
    let portal = Portal::start(mode).await;
    let (ada_id, ada) = portal.client("ada").await;
    let (_, bob) = portal.client("bob").await;
    let made = portal
        .ok(
            &portal.admin,
            "POST",
            "/api/v1/roadmap",
            json!({"name": "Booking widget", "description": "Book from your own site"}),
        )
        .await;
    let id = made["id"].as_str().unwrap();
    portal.app.settle().await;
    // Public.
    let (status, listed, _) = send(&portal.app, "GET", "/api/v1/roadmap", None, &[], None).await;
    assert_eq!(
        (status, listed["items"][0]["state"].as_str()),
        (200, Some("planned"))
    );
    for token in [&ada, &ada, &bob] {
        portal
            .ok(
                token,
                "POST",
                &format!("/api/v1/roadmap/{id}/interest"),
                Value::Null,
            )
            .await;
    }
    let done = portal
        .ok(
            &portal.admin,
            "POST",
            &format!("/api/v1/roadmap/{id}/start-work"),
            Value::Null,
        )
        .await;
    let demand = portal
        .ok(
            &portal.admin,
            "GET",
            &format!("/api/v1/roadmap/demand?min_position={}", done["position"]),
            Value::Null,
        )
        .await;
    assert_eq!(demand[0]["interested"], 2, "{demand}");
    assert_eq!(demand[0]["clients"][0], ada_id.as_str());
    assert_eq!(demand[0]["state"], "in_work");
    let (status, _) = portal
        .call(&ada, "GET", "/api/v1/roadmap/demand", Value::Null)
        .await;
    assert_eq!(status, 403);
    portal
        .ok(
            &portal.admin,
            "POST",
            &format!("/api/v1/roadmap/{id}/make-available"),
            Value::Null,
        )
        .await;
    let (status, late) = portal
        .call(
            &bob,
            "POST",
            &format!("/api/v1/roadmap/{id}/interest"),
            Value::Null,
        )
        .await;
    assert_eq!(
        (status, late["type"].as_str()),
        (409, Some("/problems/roadmap-state")),
        "{late}"
    );
}
both_modes!(interest_in_a_roadmap_product_counts_once_per_client);

async fn receipt_is_confirmed_automatically_after_the_set_days(mode: Mode) {
    let mut backing = Backing::new(mode).await;
    backing
        .env
        .insert("ANNALS_PROJECT_CONFIRM_DAYS".into(), "0".into());
    let portal = Portal::on(backing).await;
    let (_, ada) = portal.client("ada").await;
    let id = portal.request(&ada, "A shop site").await;
    portal.staff(&id, "accept", accept()).await;
    portal.staff(&id, "start", Value::Null).await;
    portal.staff(&id, "ready-for-delivery", Value::Null).await;
    let started = std::time::Instant::now();
    loop {
        portal.app.settle().await;
        let seen = portal
            .ok(&ada, "GET", &format!("/api/v1/projects/{id}"), Value::Null)
            .await;
        if seen["state"] == "delivered" {
            assert_eq!(seen["delivered_automatically"], true);
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "not confirmed: {seen}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let history = portal
        .ok(
            &portal.admin,
            "GET",
            &format!("/api/v1/projects/{id}/history"),
            Value::Null,
        )
        .await;
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event_type"], "ProjectDelivered");
    assert_eq!(last["actor"]["kind"], "system", "{last}");
}
both_modes!(receipt_is_confirmed_automatically_after_the_set_days);

async fn a_brief_uploaded_by_the_client_belongs_to_the_project_for_its_client_and_staff(
    mode: Mode,
) {
    let portal = Portal::start(mode).await;
    user(&portal.app, "meg", "manager");
    portal.app.settle().await;
    let manager = login(&portal.app, "meg").await;
    let (_, ada) = portal.client("ada").await;
    let (_, bob) = portal.client("bob").await;
    let part = reqwest::multipart::Part::bytes(b"%PDF-1.7 the brief".to_vec())
        .file_name("brief.pdf")
        .mime_str("application/pdf")
        .unwrap();
    let uploaded: Value = portal
        .app
        .http()
        .post(portal.app.url("/api/v1/files"))
        .bearer_auth(&ada)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file = uploaded["file_id"].as_str().expect("uploaded").to_string();
    let body = json!({"title": "A shop site", "attachments": [{"file_id": file}]});
    // Bob cannot attach Ada's file.
    let (status, refused) = portal
        .call(&bob, "POST", "/api/v1/projects", body.clone())
        .await;
    assert_eq!(
        (status, refused["errors"][0]["field"].as_str()),
        (404, Some("attachments[0].file_id")),
        "{refused}"
    );
    let made = portal
        .ok(&ada, "POST", "/api/v1/projects", body.clone())
        .await;
    let seen = portal.seen(&ada, made["id"].as_str().unwrap(), &made).await;
    assert_eq!(seen["attachments"][0]["file_id"], file.as_str());
    // Attached to that project, it is not free for another.
    let (status, _) = portal.call(&ada, "POST", "/api/v1/projects", body).await;
    assert_eq!(status, 409);
    for (token, expected) in [(&ada, 200), (&manager, 200), (&bob, 403)] {
        let response = portal
            .app
            .http()
            .get(portal.app.url(&format!("/api/v1/files/{file}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected);
        if expected == 200 {
            assert_eq!(
                response.bytes().await.unwrap().as_ref(),
                b"%PDF-1.7 the brief"
            );
        }
    }
}
both_modes!(a_brief_uploaded_by_the_client_belongs_to_the_project_for_its_client_and_staff);
