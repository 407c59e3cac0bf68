//! The studio over HTTP in both modes: plans, payments that renew,
//! freezes within a quota, and who is active as of any date.

use serde_json::{json, Value};

use crate::appointments::{login, user};
use crate::both_modes;
use crate::shop::send;
use crate::support::{Api, Mode, TestApp};

const PASSWORD: &str = "correct horse battery";

struct Studio {
    app: TestApp,
    admin: String,
}

async fn studio(mode: Mode) -> Studio {
    let app = crate::support::spawn_app(mode).await;
    user(&app, "boss", "admin");
    app.settle().await;
    let admin = login(&app, "boss").await;
    Studio { app, admin }
}

impl Studio {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (status, body, _) =
            send(&self.app, "POST", path, Some(&self.admin), &[], Some(body)).await;
        (status, body)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.app.settle().await;
        let (status, body, _) = send(&self.app, "GET", path, Some(&self.admin), &[], None).await;
        (status, body)
    }

    async fn plan(&self, body: Value) -> String {
        let (status, plan) = self.post("/api/v1/plans", body).await;
        assert_eq!(status, 201, "{plan}");
        plan["id"].as_str().unwrap().to_string()
    }

    /// A registered client (its id and token).
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

    async fn subscribe(&self, client: &str, plan: &str) -> String {
        let (status, opened) = self
            .post(
                "/api/v1/subscriptions",
                json!({"client_id": client, "plan_id": plan}),
            )
            .await;
        assert_eq!(status, 201, "{opened}");
        opened["id"].as_str().unwrap().to_string()
    }

    async fn pay(&self, subscription: &str, on: &str) -> Value {
        let (status, paid) = self
            .post(
                &format!("/api/v1/subscriptions/{subscription}/payments"),
                json!({"amount": "49.00", "currency": "EUR", "method": "cash", "paid_at": format!("{on}T12:00:00Z")}),
            )
            .await;
        assert_eq!(status, 201, "{paid}");
        paid
    }

    async fn names(&self, status: &str, as_of: &str) -> Vec<String> {
        let (code, page) = self
            .get(&format!(
                "/api/v1/subscribers?status={status}&as_of={as_of}"
            ))
            .await;
        assert_eq!(code, 200, "{page}");
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["client_name"].as_str().unwrap().to_string())
            .collect()
    }
}

/// A day, and who is active, frozen and inactive on it.
type Expected = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

async fn subscribers_as_of_any_date_match_a_hand_computed_table(mode: Mode) {
    let studio = studio(mode).await;
    let plan = studio
        .plan(json!({"name": "Thirty days", "length_days": 30, "price": "49.00", "currency": "EUR", "freeze_days": 10}))
        .await;
    let (ada, _) = studio.client("ada").await;
    let (bob, _) = studio.client("bob").await;
    let (cyd, _) = studio.client("cyd").await;
    let ada = studio.subscribe(&ada, &plan).await;
    let bob = studio.subscribe(&bob, &plan).await;
    let cyd = studio.subscribe(&cyd, &plan).await;
    // ada: 09-01 .. 09-30, frozen 09-10 .. 09-14, so to 10-05.
    studio.pay(&ada, "2026-09-01").await;
    let (status, frozen) = studio
        .post(
            &format!("/api/v1/subscriptions/{ada}/freezes"),
            json!({"start_date": "2026-09-10", "days": 5}),
        )
        .await;
    assert_eq!(status, 201, "{frozen}");
    // bob: 09-15 .. 10-14, renewed on 10-01 from its end: to 11-13.
    studio.pay(&bob, "2026-09-15").await;
    studio.pay(&bob, "2026-10-01").await;
    // cyd: 08-01 .. 08-30, lapsed, 09-20 .. 10-19, cancelled from 10-10.
    studio.pay(&cyd, "2026-08-01").await;
    studio.pay(&cyd, "2026-09-20").await;
    let (status, _) = studio
        .post(
            &format!("/api/v1/subscriptions/{cyd}/cancel"),
            json!({"reason": "moved away", "on": "2026-10-10"}),
        )
        .await;
    assert_eq!(status, 200);
    let table: [Expected; 7] = [
        // day, active, frozen, inactive (frozen clients count as inactive)
        ("2026-08-15", &["cyd"], &[], &["ada", "bob"]),
        ("2026-09-05", &["ada"], &[], &["bob", "cyd"]),
        ("2026-09-12", &[], &["ada"], &["ada", "bob", "cyd"]),
        ("2026-09-25", &["ada", "bob", "cyd"], &[], &[]),
        ("2026-10-12", &["bob"], &[], &["ada", "cyd"]),
        ("2026-11-13", &["bob"], &[], &["ada", "cyd"]),
        ("2026-11-14", &[], &[], &["ada", "bob", "cyd"]),
    ];
    for (day, active, frozen, inactive) in table {
        assert_eq!(studio.names("active", day).await, active, "active on {day}");
        assert_eq!(studio.names("frozen", day).await, frozen, "frozen on {day}");
        assert_eq!(
            studio.names("inactive", day).await,
            inactive,
            "inactive on {day}"
        );
        assert_eq!(studio.names("all", day).await.len(), 3);
    }
    let (_, card) = studio.get(&format!("/api/v1/subscriptions/{bob}")).await;
    assert_eq!(
        card["periods"],
        json!([{"start": "2026-09-15", "end": "2026-11-13"}])
    );
    assert_eq!(card["freeze_days_left"], 20, "two periods of 10");
    assert_eq!(card["payments"].as_array().unwrap().len(), 2);

    let (status, stats) = studio
        .get("/api/v1/stats/subscriptions?from=2026-08-01&to=2026-11-10&interval=month")
        .await;
    assert_eq!(status, 200, "{stats}");
    let series: Vec<(&str, u64)> = stats["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["period"].as_str().unwrap(), p["active"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        series,
        [
            ("2026-08-01", 1),
            ("2026-09-01", 3),
            ("2026-10-01", 3),
            ("2026-11-01", 1)
        ]
    );
    assert_eq!(
        stats["revenue"],
        json!([
            {"month": "2026-08", "currency": "EUR", "amount": "49.00"},
            {"month": "2026-09", "currency": "EUR", "amount": "147.00"},
            {"month": "2026-10", "currency": "EUR", "amount": "49.00"}
        ])
    );
    assert_eq!(
        stats["freezes"],
        json!([{"month": "2026-09", "freezes": 1, "days": 5}])
    );
    assert_eq!(
        (
            &stats["churn"]["ended"],
            &stats["churn"]["churned"],
            &stats["churn"]["rate"]
        ),
        (&json!(3), &json!(3), &json!("1.0000")),
        "cyd's lapse, ada's end and cyd's cancellation; bob renewed in time"
    );
    assert_eq!(stats["plan_mix"][0]["active"], 1);
    assert_eq!(stats["plan_mix"][0]["plan_name"], "Thirty days");

    // G6: the read model rebuilt from the log has the rows it had live.
    studio.app.settle().await;
    let pool = studio.app.backing.pool().await;
    let tables = ["plans", "subscriptions", "read_model_names"];
    let mut live = Vec::new();
    for table in tables {
        live.push(crate::consumers::dump(&pool, table).await);
    }
    crate::support::assert_rebuilds_identical(&studio.app.backing);
    let output = crate::support::run_cli(
        &studio.app.backing,
        &["replay", "--consumer", "subscriptions"],
    );
    assert!(output.contains("replayed"), "{output}");
    for (table, before) in tables.iter().zip(&live) {
        assert_eq!(
            &crate::consumers::dump(&pool, table).await,
            before,
            "{table} after a rebuild"
        );
    }
    pool.close().await;
}
both_modes!(subscribers_as_of_any_date_match_a_hand_computed_table);

async fn freezes_keep_to_the_quota_and_an_early_end_gives_days_back(mode: Mode) {
    let studio = studio(mode).await;
    let plan = studio
        .plan(json!({"name": "Month", "length_months": 1, "price": "49.00", "currency": "EUR", "freeze_days": 7}))
        .await;
    let (ada, _) = studio.client("ada").await;
    let sub = studio.subscribe(&ada, &plan).await;
    let paid = studio.pay(&sub, "2026-10-01").await;
    let freezes = format!("/api/v1/subscriptions/{sub}/freezes");
    let freeze =
        |start: &str, days: u32| studio.post(&freezes, json!({"start_date": start, "days": days}));
    let (status, over) = freeze("2026-10-05", 8).await;
    assert_eq!(
        (status, &over["type"]),
        (409, &json!("/problems/freeze-quota-exceeded"))
    );
    let (status, outside) = freeze("2026-12-05", 2).await;
    assert_eq!(
        (status, &outside["type"]),
        (409, &json!("/problems/outside-paid-period"))
    );
    let (status, frozen) = freeze("2026-10-05", 7).await;
    assert_eq!(status, 201, "{frozen}");
    let (status, overlap) = freeze("2026-10-08", 1).await;
    assert_eq!(status, 409, "{overlap}");
    let (_, card) = studio.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(
        card["ends_on"], "2026-11-07",
        "a month to 10-31, 7 days more"
    );
    let freeze_id = frozen["part_id"].as_str().unwrap();
    let (status, ended) = studio
        .post(
            &format!("/api/v1/subscriptions/{sub}/freezes/{freeze_id}/end"),
            json!({"on": "2026-10-08"}),
        )
        .await;
    assert_eq!(status, 200, "{ended}");
    let (_, card) = studio.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(
        (&card["ends_on"], &card["freeze_days_left"]),
        (&json!("2026-11-03"), &json!(4))
    );
    // A payment in another currency is refused; voiding takes the period back.
    let (status, wrong) = studio
        .post(
            &format!("/api/v1/subscriptions/{sub}/payments"),
            json!({"amount": "49.00", "currency": "USD", "method": "cash"}),
        )
        .await;
    assert_eq!(status, 422, "{wrong}");
    let payment = paid["part_id"].as_str().unwrap();
    let (status, _) = studio
        .post(
            &format!("/api/v1/subscriptions/{sub}/payments/{payment}/void"),
            json!({"reason": "charged back"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, card) = studio.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(card["periods"], json!([]));
    assert_eq!(card["payments"][0]["voided"], "charged back");
}
both_modes!(freezes_keep_to_the_quota_and_an_early_end_gives_days_back);

async fn a_client_sees_only_their_own_card_and_staff_see_what_expires_soon(mode: Mode) {
    let studio = studio(mode).await;
    let short = studio
        .plan(json!({"name": "Five days", "length_days": 5, "price": "9.00", "currency": "EUR"}))
        .await;
    let long = studio
        .plan(json!({"name": "Year", "length_months": 12, "price": "399.00", "currency": "EUR"}))
        .await;
    let (ada, ada_token) = studio.client("ada").await;
    let (bob, bob_token) = studio.client("bob").await;
    let adas = studio.subscribe(&ada, &short).await;
    let bobs = studio.subscribe(&bob, &long).await;
    for sub in [&adas, &bobs] {
        let (status, _) = studio
            .post(
                &format!("/api/v1/subscriptions/{sub}/payments"),
                json!({"amount": "9.00", "currency": "EUR", "method": "card"}),
            )
            .await;
        assert_eq!(status, 201);
    }
    studio.app.settle().await;
    let (status, own, _) = send(
        &studio.app,
        "GET",
        &format!("/api/v1/subscriptions/{adas}"),
        Some(&ada_token),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["status"], "active");
    let (status, _, _) = send(
        &studio.app,
        "GET",
        &format!("/api/v1/subscriptions/{bobs}"),
        Some(&ada_token),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 404, "not hers");
    let (_, mine, _) = send(
        &studio.app,
        "GET",
        "/api/v1/me/subscriptions",
        Some(&bob_token),
        &[],
        None,
    )
    .await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["id"], bobs.as_str());
    let (status, _, _) = send(
        &studio.app,
        "GET",
        "/api/v1/subscribers",
        Some(&ada_token),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 403, "clients do not list subscribers");
    let (status, soon) = studio
        .get("/api/v1/subscriptions/expiring?within_days=7")
        .await;
    assert_eq!(status, 200, "{soon}");
    let soon = soon.as_array().unwrap();
    assert_eq!(soon.len(), 1, "{soon:?}");
    assert_eq!(soon[0]["id"], adas.as_str());
    assert_eq!(soon[0]["days_left"], 4);
    let (status, twice) = studio
        .post(
            "/api/v1/subscriptions",
            json!({"client_id": ada, "plan_id": short}),
        )
        .await;
    assert_eq!(
        (status, &twice["type"]),
        (409, &json!("/problems/subscription-exists"))
    );
}
both_modes!(a_client_sees_only_their_own_card_and_staff_see_what_expires_soon);

async fn an_invitation_accepted_then_a_link_set_later_reaches_exactly_those_who_accepted(
    mode: Mode,
) {
    let studio = studio(mode).await;
    let coach = user(&studio.app, "mia", "master");
    user(&studio.app, "max", "master");
    let (ada, ada_token) = studio.client("ada").await;
    let (bob, bob_token) = studio.client("bob").await;
    let (cyd, cyd_token) = studio.client("cyd").await;
    studio.app.settle().await;
    let (status, group) = studio
        .post(
            "/api/v1/groups",
            json!({"name": "Morning", "coach_id": coach, "capacity": 2, "member_ids": [ada, bob]}),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let (status, not_a_coach) = studio
        .post(
            "/api/v1/groups",
            json!({"name": "Evening", "coach_id": cyd, "capacity": 2}),
        )
        .await;
    assert_eq!(
        (status, &not_a_coach["type"]),
        (409, &json!("/problems/not-a-coach"))
    );
    let (status, training) = studio
        .post(
            "/api/v1/trainings",
            json!({"group_id": group["id"], "coach_id": coach, "start": "2026-12-10T18:00:00+01:00",
                "duration_minutes": 60, "capacity": 2, "location": "Hall A"}),
        )
        .await;
    assert_eq!(status, 201, "{training}");
    let training = format!("/api/v1/trainings/{}", training["id"].as_str().unwrap());
    let (status, _) = studio
        .post(
            &format!("{training}/invitations"),
            json!({"group_id": group["id"], "client_ids": [cyd]}),
        )
        .await;
    assert_eq!(status, 200);
    let answer = |token: String, accept: bool| {
        let (app, path) = (&studio.app, format!("{training}/respond"));
        async move {
            let (status, body, _) = send(
                app,
                "POST",
                &path,
                Some(&token),
                &[],
                Some(json!({"accept": accept})),
            )
            .await;
            (status, body)
        }
    };
    assert_eq!(answer(ada_token.clone(), true).await.0, 200);
    assert_eq!(answer(bob_token.clone(), false).await.0, 200);
    let (status, _, _) = send(
        &studio.app,
        "PUT",
        &format!("{training}/link"),
        Some(&studio.admin),
        &[],
        Some(json!({"url": "https://meet.example.com/abc"})),
    )
    .await;
    assert_eq!(status, 200);
    studio.app.settle().await;
    let view = |token: String| {
        let (app, path) = (&studio.app, training.clone());
        async move { send(app, "GET", &path, Some(&token), &[], None).await.1 }
    };
    let adas = view(ada_token.clone()).await;
    assert_eq!(adas["link"], "https://meet.example.com/abc", "{adas}");
    assert_eq!(
        adas["invitations"],
        json!([{"client_id": ada, "status": "accepted"}])
    );
    assert_eq!(view(bob_token).await["link"], Value::Null, "declined");
    let cyds = view(cyd_token.clone()).await;
    assert_eq!(cyds["link"], Value::Null, "not answered");
    assert_eq!(
        cyds["invitations"],
        json!([{"client_id": cyd, "status": "invited"}])
    );
    let (_, all) = studio.get(&training).await;
    assert_eq!(
        all["invitations"].as_array().unwrap().len(),
        3,
        "staff see everyone"
    );
    // cyd accepts: the training is full only when two have accepted.
    assert_eq!(answer(cyd_token.clone(), true).await.0, 200);
    // The coach records attendance; another master may not.
    let mia = login(&studio.app, "mia").await;
    let max = login(&studio.app, "max").await;
    let mark = json!({"client_id": ada, "attended": true});
    let (status, _, _) = send(
        &studio.app,
        "POST",
        &format!("{training}/attendance"),
        Some(&max),
        &[],
        Some(mark.clone()),
    )
    .await;
    assert_eq!(status, 404, "not his training");
    let (status, _, _) = send(
        &studio.app,
        "POST",
        &format!("{training}/attendance"),
        Some(&cyd_token),
        &[],
        Some(mark.clone()),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body, _) = send(
        &studio.app,
        "POST",
        &format!("{training}/attendance"),
        Some(&mia),
        &[],
        Some(mark),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    studio.app.settle().await;
    assert_eq!(
        view(ada_token.clone()).await["invitations"][0]["status"],
        "attended"
    );

    // The client card: her trainings, attended ones counted; hers alone.
    let card = |token: String, client: String| {
        let app = &studio.app;
        async move {
            let (status, body, _) = send(
                app,
                "GET",
                &format!("/api/v1/clients/{client}/card"),
                Some(&token),
                &[],
                None,
            )
            .await;
            (status, body)
        }
    };
    let (status, adas) = card(ada_token.clone(), ada.clone()).await;
    assert_eq!(status, 200, "{adas}");
    assert_eq!(
        (
            &adas["client_name"],
            &adas["trainings_attended"],
            &adas["trainings"][0]["status"],
            &adas["status"]
        ),
        (
            &json!("ada"),
            &json!(1),
            &json!("attended"),
            &json!("inactive")
        ),
        "{adas}"
    );
    assert_eq!(
        card(ada_token.clone(), bob.clone()).await.0,
        404,
        "not hers"
    );
    let (status, cyds) = card(studio.admin.clone(), cyd.clone()).await;
    assert_eq!(status, 200, "staff read any card");
    assert_eq!(
        (&cyds["trainings_attended"], &cyds["trainings"][0]["status"]),
        (&json!(0), &json!("accepted"))
    );

    // The staff list filtered by group: members with a subscription.
    let plan = studio
        .plan(json!({"name": "Month", "length_months": 1, "price": "30.00", "currency": "EUR"}))
        .await;
    studio.subscribe(&ada, &plan).await;
    studio.subscribe(&cyd, &plan).await;
    let group_id = group["id"].as_str().unwrap();
    let (status, listed) = studio
        .get(&format!("/api/v1/subscribers?group_id={group_id}"))
        .await;
    assert_eq!(status, 200, "{listed}");
    let ids: Vec<&Value> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["client_id"])
        .collect();
    assert_eq!(
        ids,
        vec![&json!(ada)],
        "ada only: cyd is not a member, bob has no subscription"
    );
    let (_, none) = studio
        .get(&format!(
            "/api/v1/subscribers?group_id={}",
            uuid::Uuid::now_v7()
        ))
        .await;
    assert_eq!(none["items"], json!([]), "an unknown group has no members");
}
both_modes!(an_invitation_accepted_then_a_link_set_later_reaches_exactly_those_who_accepted);
