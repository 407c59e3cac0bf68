//! Appointments over HTTP: catalog, masters, availability with reasons, and
//! booking that never double-books a master, in both modes.

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::both_modes;
use crate::support::{run_cli, Api, Backing, Mode, TestApp};

const PASSWORD: &str = "correct horse battery";

pub(crate) struct Shop {
    pub(crate) app: TestApp,
    pub(crate) admin: String,
    pub(crate) service: String,
    pub(crate) master: String,
    /// A day a week ahead, as YYYY-MM-DD (UTC, the business zone).
    pub(crate) day: String,
}

pub(crate) fn user(app: &TestApp, name: &str, role: &str) -> String {
    let out = run_cli(
        &app.backing,
        &[
            "user",
            "create",
            "--username",
            name,
            "--password",
            PASSWORD,
            "--role",
            role,
        ],
    );
    out.lines()
        .rev()
        .map(str::trim)
        .find(|l| uuid::Uuid::parse_str(l).is_ok())
        .unwrap()
        .to_string()
}

pub(crate) async fn login(app: &TestApp, name: &str) -> String {
    let response = app
        .post(
            "/api/v1/auth/login",
            json!({"username": name, "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200, "login {name}");
    response.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

pub(crate) async fn call(
    app: &impl Api,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app
        .http()
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

fn every_day(start: &str, end: &str) -> Value {
    Value::Array(
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .iter()
            .map(|d| json!({"weekday": d, "start": start, "end": end}))
            .collect(),
    )
}

/// An admin, a 45-minute service with a 15-minute buffer after, and a
/// master working 09:00–18:00 with a break 13:00–14:00 every day (UTC).
pub(crate) async fn shop(mode: Mode) -> Shop {
    shop_on(Backing::new(mode).await).await
}

pub(crate) async fn shop_on(backing: Backing) -> Shop {
    let app = TestApp::start(backing).await;
    user(&app, "boss", "admin");
    let master = user(&app, "mia", "master");
    app.settle().await;
    let admin = login(&app, "boss").await;
    let (status, category) = call(
        &app,
        "POST",
        "/api/v1/service-categories",
        &admin,
        Some(json!({"name": "Hair"})),
    )
    .await;
    assert_eq!(status, 201, "{category}");
    let (status, service) = call(
        &app,
        "POST",
        "/api/v1/services",
        &admin,
        Some(json!({
            "name": "Haircut", "description": "Wash, cut, dry", "category_id": category["id"],
            "duration_minutes": 45, "price": "25.00", "currency": "EUR", "buffer_after_minutes": 15
        })),
    )
    .await;
    assert_eq!(status, 201, "{service}");
    let service = service["id"].as_str().unwrap().to_string();
    app.settle().await;
    let (status, registered) = call(
        &app,
        "POST",
        "/api/v1/masters",
        &admin,
        Some(json!({
            "user_id": master, "service_ids": [service], "time_zone": "UTC",
            "working_hours": every_day("09:00", "18:00"), "breaks": every_day("13:00", "14:00")
        })),
    )
    .await;
    assert_eq!(status, 201, "{registered}");
    app.settle().await;
    let day = (Utc::now() + Duration::days(7))
        .format("%Y-%m-%d")
        .to_string();
    Shop {
        app,
        admin,
        service,
        master,
        day,
    }
}

/// The shop's service as it stands, in the shape of a change of it.
pub(crate) async fn service_terms(shop: &Shop) -> Value {
    let (_, service) = shop
        .app
        .get_json(&format!("/api/v1/services/{}", shop.service))
        .await;
    let mut terms = json!({});
    for field in [
        "name",
        "description",
        "category_id",
        "duration_minutes",
        "price",
        "currency",
        "buffer_before_minutes",
        "buffer_after_minutes",
    ] {
        terms[field] = service[field].clone();
    }
    terms
}

pub(crate) async fn client(shop: &Shop, name: &str) -> String {
    let response = shop.app.post("/api/v1/auth/register", json!({
        "username": name, "password": PASSWORD, "full_name": name, "email": format!("{name}@example.com"), "phone": "+441234567890"
    })).await;
    assert_eq!(response.status(), 201);
    login(&shop.app, name).await
}

pub(crate) async fn book(shop: &Shop, token: &str, time: &str) -> (u16, Value) {
    let body = json!({"service_id": shop.service, "master_id": shop.master, "start": format!("{}T{time}:00Z", shop.day)});
    call(&shop.app, "POST", "/api/v1/appointments", token, Some(body)).await
}

async fn fifty_concurrent_bookings_of_one_slot_give_exactly_one_appointment(mode: Mode) {
    let shop = shop(mode).await;
    let ada = client(&shop, "ada").await;
    let attempts = (0..50).map(|_| book(&shop, &ada, "10:00"));
    let results = futures::future::join_all(attempts).await;
    let created: Vec<_> = results.iter().filter(|(s, _)| *s == 201).collect();
    assert_eq!(
        created.len(),
        1,
        "{:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(results.iter().all(|(s, _)| *s == 201 || *s == 409));
    let conflict = results.iter().find(|(s, _)| *s == 409).unwrap();
    assert_eq!(conflict.1["type"], "/problems/slot-taken");
    let booked = &created[0].1;
    assert_eq!(booked["status"], "booked");
    assert_eq!(booked["master_id"], shop.master.as_str());

    let (status, page) = call(
        &shop.app,
        "GET",
        &format!("/api/v1/appointments?min_position={}", booked["position"]),
        &shop.admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "one appointment in the read model"
    );
    // 10:30 overlaps it; 10:45 falls in its 15-minute buffer; 11:00 is free.
    assert_eq!(book(&shop, &ada, "10:30").await.0, 409);
    assert_eq!(book(&shop, &ada, "10:45").await.0, 409);
    assert_eq!(book(&shop, &ada, "11:00").await.0, 201);
}
both_modes!(fifty_concurrent_bookings_of_one_slot_give_exactly_one_appointment);

async fn availability_explains_hours_the_break_and_two_bookings(mode: Mode) {
    let shop = shop(mode).await;
    let ada = client(&shop, "ada").await;
    let (_, first) = book(&shop, &ada, "09:00").await;
    let (_, second) = book(&shop, &ada, "15:00").await;
    shop.app.settle().await;
    let path = format!(
        "/api/v1/availability?service_id={}&date={}&explain=true",
        shop.service, shop.day
    );
    // As the client whose appointments they are: the ids are shown.
    let (status, day) = call(&shop.app, "GET", &path, &ada, None).await;
    assert_eq!(status, 200, "{day}");
    assert_eq!(day["time_zone"], "UTC");
    let at = |time: &str| format!("{}T{time}:00+00:00", shop.day);
    let reason = |time: &str| {
        day["unavailable"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["start"] == at(time))
            .map(|u| {
                (
                    u["reason"].as_str().unwrap().to_string(),
                    u["appointment_id"].clone(),
                )
            })
    };
    let free: Vec<&str> = day["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_str().unwrap())
        .collect();
    assert!(free.contains(&at("10:00").as_str()), "{free:?}");
    assert!(!free.contains(&at("09:00").as_str()));
    assert_eq!(reason("08:00").unwrap().0, "outside_working_hours");
    assert_eq!(
        reason("09:00").unwrap(),
        ("taken_by_appointment".into(), first["id"].clone())
    );
    assert_eq!(
        reason("09:45").unwrap(),
        ("buffer_of_appointment".into(), first["id"].clone())
    );
    assert_eq!(reason("13:00").unwrap().0, "break");
    assert_eq!(
        reason("12:30").unwrap().0,
        "break",
        "45 minutes from 12:30 reach into the break"
    );
    assert_eq!(
        reason("15:00").unwrap(),
        ("taken_by_appointment".into(), second["id"].clone())
    );
    assert_eq!(
        reason("17:30").unwrap().0,
        "outside_working_hours",
        "it would end after 18:00"
    );
    let (_, plain) = shop
        .app
        .get_json(&format!(
            "/api/v1/availability?service_id={}&date={}",
            shop.service, shop.day
        ))
        .await;
    assert!(plain.get("unavailable").is_none());
    // Anonymous callers and other clients learn why, not whose.
    let bob = client(&shop, "bob").await;
    let (_, anonymous) = shop.app.get_json(&path).await;
    let (_, other) = call(&shop.app, "GET", &path, &bob, None).await;
    let (_, staff) = call(&shop.app, "GET", &path, &shop.admin, None).await;
    let taken = |day: &Value| -> Vec<Value> {
        day["unavailable"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["reason"] == "taken_by_appointment")
            .map(|u| u["appointment_id"].clone())
            .collect()
    };
    for day in [&anonymous, &other] {
        assert!(!taken(day).is_empty());
        assert!(taken(day).iter().all(Value::is_null), "{day}");
    }
    let ids = [first["id"].clone(), second["id"].clone()];
    assert!(taken(&staff).iter().all(|id| ids.contains(id)));
    assert_eq!(taken(&staff).len(), taken(&anonymous).len());
}
both_modes!(availability_explains_hours_the_break_and_two_bookings);

async fn another_clients_appointment_is_not_found(mode: Mode) {
    let shop = shop(mode).await;
    let ada = client(&shop, "ada").await;
    let bob = client(&shop, "bob").await;
    let (_, booked) = book(&shop, &ada, "10:00").await;
    shop.app.settle().await;
    let id = booked["id"].as_str().unwrap();
    let base = format!("/api/v1/appointments/{id}");
    assert_eq!(call(&shop.app, "GET", &base, &bob, None).await.0, 404);
    assert_eq!(
        call(&shop.app, "GET", &format!("{base}/history"), &bob, None)
            .await
            .0,
        404
    );
    assert_eq!(
        call(
            &shop.app,
            "POST",
            &format!("{base}/cancel"),
            &bob,
            Some(json!({"reason": "mine now"}))
        )
        .await
        .0,
        404
    );
    let moved = json!({"start": format!("{}T15:00:00Z", shop.day)});
    assert_eq!(
        call(
            &shop.app,
            "POST",
            &format!("{base}/reschedule"),
            &bob,
            Some(moved)
        )
        .await
        .0,
        404
    );
    let (_, page) = call(&shop.app, "GET", "/api/v1/appointments", &bob, None).await;
    assert_eq!(page["items"], json!([]), "bob sees none of ada's");
    assert_eq!(call(&shop.app, "GET", &base, &ada, None).await.0, 200);
}
both_modes!(another_clients_appointment_is_not_found);

async fn the_life_of_an_appointment_follows_its_states(mode: Mode) {
    let shop = shop(mode).await;
    let ada = client(&shop, "ada").await;
    let (_, booked) = book(&shop, &ada, "10:00").await;
    let base = format!("/api/v1/appointments/{}", booked["id"].as_str().unwrap());
    assert_eq!(
        call(&shop.app, "POST", &format!("{base}/confirm"), &ada, None)
            .await
            .0,
        403,
        "clients do not confirm"
    );
    let (status, problem) = call(
        &shop.app,
        "POST",
        &format!("{base}/complete"),
        &shop.admin,
        None,
    )
    .await;
    assert_eq!(status, 409);
    assert!(
        problem["detail"].as_str().unwrap().contains("booked"),
        "{problem}"
    );
    assert_eq!(
        call(
            &shop.app,
            "POST",
            &format!("{base}/confirm"),
            &shop.admin,
            None
        )
        .await
        .0,
        200
    );
    let moved = json!({"start": format!("{}T15:00:00Z", shop.day)});
    let (status, rescheduled) = call(
        &shop.app,
        "POST",
        &format!("{base}/reschedule"),
        &ada,
        Some(moved),
    )
    .await;
    assert_eq!(status, 200, "{rescheduled}");
    assert_eq!(
        book(&shop, &ada, "10:00").await.0,
        201,
        "the old time is free again"
    );
    let (status, problem) = call(
        &shop.app,
        "POST",
        &format!("{base}/complete"),
        &shop.admin,
        None,
    )
    .await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (409, Some("/problems/not-started-yet")),
        "not before it starts: {problem}"
    );
    // A day after the appointment.
    shop.app.platform.clock.advance(Duration::days(8));
    assert_eq!(
        call(
            &shop.app,
            "POST",
            &format!("{base}/complete"),
            &shop.admin,
            None
        )
        .await
        .0,
        200
    );
    let (status, problem) = call(
        &shop.app,
        "POST",
        &format!("{base}/cancel"),
        &ada,
        Some(json!({"reason": "late"})),
    )
    .await;
    assert_eq!(status, 409);
    assert!(problem["detail"].as_str().unwrap().contains("completed"));

    let (status, history) = call(&shop.app, "GET", &format!("{base}/history"), &ada, None).await;
    assert_eq!(status, 200);
    let types: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "AppointmentBooked",
            "AppointmentConfirmed",
            "AppointmentRescheduled",
            "AppointmentCompleted"
        ]
    );
    let moved = &history[2]["change"];
    assert_eq!(moved["from_start"], format!("{}T10:00:00Z", shop.day));
    assert_eq!(moved["to_start"], format!("{}T15:00:00Z", shop.day));
    assert_eq!(history[0]["actor"]["kind"], "user");
}
both_modes!(the_life_of_an_appointment_follows_its_states);

async fn concurrent_reschedules_into_one_slot_let_one_win(mode: Mode) {
    let shop = shop(mode).await;
    let ada = client(&shop, "ada").await;
    let mut ids = Vec::new();
    for time in ["09:00", "10:00", "11:00", "15:00"] {
        let (status, booked) = book(&shop, &ada, time).await;
        assert_eq!(status, 201);
        ids.push(booked["id"].as_str().unwrap().to_string());
    }
    let target = json!({"start": format!("{}T16:00:00Z", shop.day)});
    let paths: Vec<String> = ids
        .iter()
        .map(|id| format!("/api/v1/appointments/{id}/reschedule"))
        .collect();
    let moves = paths
        .iter()
        .map(|path| call(&shop.app, "POST", path, &ada, Some(target.clone())));
    let statuses: Vec<u16> = futures::future::join_all(moves)
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        3,
        "{statuses:?}"
    );
    shop.app.settle().await;
    let (_, page) = call(
        &shop.app,
        "GET",
        &format!(
            "/api/v1/appointments?from={}T16:00:00Z&to={}T17:00:00Z",
            shop.day, shop.day
        ),
        &shop.admin,
        None,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}
both_modes!(concurrent_reschedules_into_one_slot_let_one_win);

async fn availability_follows_the_masters_zone_across_the_next_dst_change(mode: Mode) {
    let shop = shop(mode).await;
    let (status, _) = call(
        &shop.app,
        "PUT",
        &format!("/api/v1/masters/{}/working-hours", shop.master),
        &shop.admin,
        Some(json!({
            "working_hours": every_day("09:00", "12:00"), "breaks": []
        })),
    )
    .await;
    assert_eq!(status, 200);
    // Berlin's clocks go forward on Sunday 28 March 2027; the master works
    // in UTC, the question is asked in Berlin time.
    shop.app.settle().await;
    let path = format!(
        "/api/v1/availability?service_id={}&date=2027-03-28&tz=Europe/Berlin",
        shop.service
    );
    let (status, day) = shop.app.get_json(&path).await;
    assert_eq!(status, 200, "{day}");
    let starts: Vec<&str> = day["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts.first(),
        Some(&"2027-03-28T11:00:00+02:00"),
        "09:00 UTC is 11:00 in Berlin summer time"
    );
    assert!(starts.iter().all(|s| s.ends_with("+02:00")));
    let (_, before) = shop
        .app
        .get_json(&format!(
            "/api/v1/availability?service_id={}&date=2027-03-27&tz=Europe/Berlin",
            shop.service
        ))
        .await;
    assert_eq!(before["slots"][0]["start"], "2027-03-27T10:00:00+01:00");
}
both_modes!(availability_follows_the_masters_zone_across_the_next_dst_change);

async fn statistics_schedule_and_dashboard_reflect_the_appointments(mode: Mode) {
    let shop = shop(mode).await;
    let ada = client(&shop, "ada").await;
    let mia = login(&shop.app, "mia").await;
    let mut ids = Vec::new();
    for time in ["09:00", "10:00", "11:00"] {
        let (status, booked) = book(&shop, &ada, time).await;
        assert_eq!(status, 201);
        ids.push(booked["id"].as_str().unwrap().to_string());
    }
    // A day after them: they can be completed now.
    shop.app.platform.clock.advance(Duration::days(8));
    let act = |id: &str, action: &str| format!("/api/v1/appointments/{id}/{action}");
    for (id, steps) in [
        (&ids[0], &["confirm", "complete"][..]),
        (&ids[2], &["confirm", "no-show"][..]),
    ] {
        for step in steps {
            assert_eq!(
                call(&shop.app, "POST", &act(id, step), &mia, None).await.0,
                200,
                "{step} by the master"
            );
        }
    }
    let (status, _) = call(
        &shop.app,
        "POST",
        &act(&ids[1], "cancel"),
        &shop.admin,
        Some(json!({"reason": "closed"})),
    )
    .await;
    assert_eq!(status, 200);
    shop.app.settle().await;

    let stats = |group: &str, token: &str| {
        let path = format!(
            "/api/v1/stats/appointments?from={}&to={}&group_by={group}",
            shop.day, shop.day
        );
        let token = token.to_string();
        let app = &shop.app;
        async move { call(app, "GET", &path, &token, None).await }
    };
    let (status, by_master) = stats("master", &shop.admin).await;
    assert_eq!(status, 200, "{by_master}");
    let group = &by_master["groups"][0];
    assert_eq!(group["key"], shop.master.as_str());
    assert_eq!(
        (
            group["appointments"].as_i64(),
            group["completed"].as_i64(),
            group["cancelled"].as_i64(),
            group["no_show"].as_i64()
        ),
        (Some(3), Some(1), Some(1), Some(1))
    );
    assert_eq!(group["cancellation_rate"], 0.3333);
    assert_eq!(
        group["revenue"],
        json!([{"amount": "25.00", "currency": "EUR"}])
    );
    let hours: Vec<i64> = by_master["busiest_hours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hour"].as_i64().unwrap())
        .collect();
    assert_eq!(hours, [9, 11], "the cancelled 10:00 does not count");
    let (_, by_month) = stats("month", &shop.admin).await;
    assert_eq!(by_month["groups"][0]["key"], &shop.day[..7]);
    assert_eq!(
        stats("service", &ada).await.0,
        403,
        "clients do not see business statistics"
    );

    let path = format!(
        "/api/v1/masters/{}/schedule?from={}&to={}",
        shop.master, shop.day, shop.day
    );
    let (status, schedule) = call(&shop.app, "GET", &path, &mia, None).await;
    assert_eq!(status, 200, "{schedule}");
    let day = &schedule["days"][0];
    assert_eq!(
        day["appointments"].as_array().unwrap().len(),
        2,
        "the cancelled one is not listed: {day}"
    );
    let free: Vec<(String, String)> = day["free"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["start"].as_str().unwrap()[11..16].to_string(),
                s["end"].as_str().unwrap()[11..16].to_string(),
            )
        })
        .collect();
    // 09:00-10:00 and 11:00-12:00 (with buffers) were used, 13:00-14:00 is
    // the break; the cancelled 10:00 is free again.
    let span = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        free,
        [
            span("10:00", "11:00"),
            span("12:00", "13:00"),
            span("14:00", "18:00")
        ]
    );
    assert_eq!(call(&shop.app, "GET", &path, &ada, None).await.0, 403);

    let (status, dashboard) = call(&shop.app, "GET", "/api/v1/me/dashboard", &ada, None).await;
    assert_eq!(status, 200, "{dashboard}");
    assert_eq!(dashboard["profile"]["username"], "ada");
    assert_eq!(
        dashboard["upcoming"],
        json!([]),
        "nothing is still booked or confirmed"
    );
    assert_eq!(
        dashboard["this_month"]["month"],
        Utc::now().format("%Y-%m").to_string()
    );
}
both_modes!(statistics_schedule_and_dashboard_reflect_the_appointments);

async fn any_master_means_the_first_free_one(mode: Mode) {
    let shop = shop(mode).await;
    let max = user(&shop.app, "max", "master");
    shop.app.settle().await;
    let (status, _) = call(
        &shop.app,
        "POST",
        "/api/v1/masters",
        &shop.admin,
        Some(json!({
            "user_id": max, "service_ids": [shop.service], "time_zone": "UTC",
            "working_hours": every_day("09:00", "18:00"), "breaks": []
        })),
    )
    .await;
    assert_eq!(status, 201);
    shop.app.settle().await;
    let ada = client(&shop, "ada").await;
    let any = json!({"service_id": shop.service, "start": format!("{}T10:00:00Z", shop.day)});
    let (first, a) = call(
        &shop.app,
        "POST",
        "/api/v1/appointments",
        &ada,
        Some(any.clone()),
    )
    .await;
    let (second, b) = call(
        &shop.app,
        "POST",
        "/api/v1/appointments",
        &ada,
        Some(any.clone()),
    )
    .await;
    assert_eq!((first, second), (201, 201));
    assert_ne!(a["master_id"], b["master_id"], "two masters, one each");
    let (third, problem) = call(&shop.app, "POST", "/api/v1/appointments", &ada, Some(any)).await;
    assert_eq!(third, 409);
    assert_eq!(problem["type"], "/problems/slot-taken");
}
both_modes!(any_master_means_the_first_free_one);

async fn a_body_naming_what_does_not_exist_is_404_and_a_non_master_409(mode: Mode) {
    let shop = shop(mode).await;
    let nothing = "0190f0f0-0000-7000-8000-000000000000";
    let ada = client(&shop, "ada").await;
    let ada_id = call(&shop.app, "GET", "/api/v1/me", &ada, None).await.1["id"].clone();
    let service = json!({"name": "Shave", "description": "", "category_id": nothing,
        "duration_minutes": 30, "price": "10.00", "currency": "EUR"});
    let master = |user: Value, services: Vec<Value>| {
        json!({"user_id": user, "service_ids": services, "time_zone": "UTC",
            "working_hours": every_day("09:00", "18:00")})
    };
    let cases = [
        (
            "an unknown category",
            "/api/v1/services",
            service,
            404,
            "category_id",
        ),
        (
            "an unknown user",
            "/api/v1/masters",
            master(json!(nothing), vec![]),
            404,
            "user_id",
        ),
        (
            "an unknown service",
            "/api/v1/masters",
            master(json!(shop.master), vec![json!(nothing)]),
            404,
            "service_ids[0]",
        ),
        (
            "a client as master",
            "/api/v1/masters",
            master(ada_id, vec![]),
            409,
            "user_id",
        ),
        (
            "a booking of an unknown service",
            "/api/v1/appointments",
            json!({"service_id": nothing, "start": format!("{}T10:00:00Z", shop.day)}),
            404,
            "service_id",
        ),
        (
            "a booking with an unknown master",
            "/api/v1/appointments",
            json!({"service_id": shop.service, "master_id": nothing, "start": format!("{}T10:00:00Z", shop.day)}),
            404,
            "master_id",
        ),
    ];
    for (what, path, body, status, field) in cases {
        let (got, problem) = call(&shop.app, "POST", path, &shop.admin, Some(body)).await;
        assert_eq!(got, status, "{what}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{what}: {problem}");
    }
    shop.app.settle().await;
    for list in ["/api/v1/services", "/api/v1/masters"] {
        assert_eq!(
            call(&shop.app, "GET", "/api/v1/appointments", &shop.admin, None)
                .await
                .1["items"],
            json!([]),
            "no appointment"
        );
        let (_, items) = shop.app.get_json(list).await;
        assert_eq!(
            items["items"].as_array().unwrap().len(),
            1,
            "nothing written: {list}"
        );
    }
}
both_modes!(a_body_naming_what_does_not_exist_is_404_and_a_non_master_409);

async fn the_catalog_lists_search_filter_and_come_in_pages(mode: Mode) {
    let shop = shop(mode).await;
    let post = |path: &'static str, body: Value| {
        let (app, admin) = (&shop.app, shop.admin.clone());
        async move {
            let (status, reply) = call(app, "POST", path, &admin, Some(body)).await;
            assert!(status == 201 || status == 200, "{path}: {reply}");
            reply["id"].as_str().unwrap_or_default().to_string()
        }
    };
    let nails = post("/api/v1/service-categories", json!({"name": "Nails"})).await;
    let (_, categories) = shop.app.get_json("/api/v1/service-categories").await;
    let hair = categories["items"][0]["id"].as_str().unwrap().to_string();
    let service = |name: &str, description: &str, category: &str| {
        json!({"name": name, "description": description, "category_id": category,
            "duration_minutes": 30, "price": "10.00", "currency": "EUR"})
    };
    post("/api/v1/services", service("Manicure", "Hands", &nails)).await;
    post(
        "/api/v1/services",
        service("Beard trim", "Beard and moustache", &hair),
    )
    .await;
    let colour = post("/api/v1/services", service("Colour", "Dye", &hair)).await;
    let (status, _) = call(
        &shop.app,
        "POST",
        &format!("/api/v1/services/{colour}/deactivate"),
        &shop.admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    shop.app.settle().await;

    let names = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    };
    let get = |path: String| {
        let app = &shop.app;
        async move {
            let (status, page) = app.get_json(&path).await;
            assert_eq!(status, 200, "{path}: {page}");
            page
        }
    };
    let cases = [
        (
            "categories",
            "/api/v1/service-categories".to_string(),
            vec!["Hair", "Nails"],
        ),
        (
            "active services by name",
            "/api/v1/services".into(),
            vec!["Beard trim", "Haircut", "Manicure"],
        ),
        (
            "with inactive ones",
            "/api/v1/services?include_inactive=true".into(),
            vec!["Beard trim", "Colour", "Haircut", "Manicure"],
        ),
        (
            "a name, any case",
            "/api/v1/services?q=BEARD".into(),
            vec!["Beard trim"],
        ),
        (
            "a description",
            "/api/v1/services?q=hands".into(),
            vec!["Manicure"],
        ),
        (
            "one category",
            format!("/api/v1/services?category_id={nails}"),
            vec!["Manicure"],
        ),
    ];
    for (what, path, expected) in cases {
        assert_eq!(names(&get(path).await), expected, "{what}");
    }

    // Two at a time: every service once, in order, and then no cursor.
    let first = get("/api/v1/services?include_inactive=true&limit=2".into()).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let second = get(format!(
        "/api/v1/services?include_inactive=true&limit=2&cursor={cursor}"
    ))
    .await;
    assert_eq!(
        [names(&first), names(&second)].concat(),
        ["Beard trim", "Colour", "Haircut", "Manicure"]
    );
    assert!(second["next_cursor"].is_null(), "{second}");

    let masters = get(format!("/api/v1/masters?service_id={}", shop.service)).await;
    assert_eq!(masters["items"][0]["id"], shop.master.as_str());
    let none = get(format!("/api/v1/masters?service_id={nails}")).await;
    assert_eq!(none["items"], json!([]), "nobody does a category's id");
}
both_modes!(the_catalog_lists_search_filter_and_come_in_pages);

async fn creating_answers_where_the_new_thing_is_and_a_service_may_start_inactive(mode: Mode) {
    let shop = shop(mode).await;
    let send = |path: &str, body: Value| {
        shop.app
            .http()
            .post(shop.app.url(path))
            .bearer_auth(&shop.admin)
            .json(&body)
            .send()
    };
    let response = send("/api/v1/service-categories", json!({"name": "Nails"}))
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!(
            "/api/v1/service-categories/{}",
            created["id"].as_str().unwrap()
        )
    );
    let (status, category) = shop
        .app
        .get_json(&format!("{location}?min_position={}", created["position"]))
        .await;
    assert_eq!((status, category["name"].as_str()), (200, Some("Nails")));

    let service = json!({"name": "Manicure", "category_id": created["id"], "duration_minutes": 30,
        "price": "20.00", "currency": "EUR", "active": false});
    let response = send("/api/v1/services", service.clone()).await.unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["version"], 2, "created and taken out in one commit");
    let (_, manicure) = shop
        .app
        .get_json(&format!("{location}?min_position={}", created["position"]))
        .await;
    assert_eq!(manicure["active"], false);
    // Back in the catalog with a change that says so.
    let mut back = service;
    back["active"] = json!(true);
    let (status, changed) = call(&shop.app, "PUT", &location, &shop.admin, Some(back)).await;
    assert_eq!(status, 200, "{changed}");
    let (_, manicure) = shop
        .app
        .get_json(&format!("{location}?min_position={}", changed["position"]))
        .await;
    assert_eq!(manicure["active"], true);

    let ada = client(&shop, "ada").await;
    let response = shop
        .app
        .http()
        .post(shop.app.url("/api/v1/appointments"))
        .bearer_auth(&ada)
        .json(&json!({"service_id": shop.service, "start": format!("{}T10:00:00Z", shop.day)}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let booked: Value = response.json().await.unwrap();
    let read = format!("{location}?min_position={}", booked["position"]);
    let (status, _) = call(&shop.app, "GET", &read, &ada, None).await;
    assert_eq!(status, 200, "{location}");

    let response = shop.app.post("/api/v1/auth/register", json!({
        "username": "bea", "password": PASSWORD, "full_name": "Bea", "email": "bea@example.com", "phone": "+441234567890"
    })).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let registered: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/users/{}", registered["id"].as_str().unwrap())
    );
    let read = format!("{location}?min_position={}", registered["position"]);
    let (status, bea) = call(&shop.app, "GET", &read, &shop.admin, None).await;
    assert_eq!(
        (status, bea["username"].as_str()),
        (200, Some("bea")),
        "{bea}"
    );
    assert_eq!(
        call(&shop.app, "GET", &read, &ada, None).await.0,
        403,
        "admins only"
    );
}
both_modes!(creating_answers_where_the_new_thing_is_and_a_service_may_start_inactive);

async fn views_name_the_client_master_and_service_and_follow_a_rename(mode: Mode) {
    let shop = shop(mode).await;
    let ada = client(&shop, "ada").await;
    let (_, booked) = book(&shop, &ada, "10:00").await;
    let id = booked["id"].as_str().unwrap();
    shop.app.settle().await;
    let named = |view: &Value| {
        (
            view["client_name"].clone(),
            view["master_name"].clone(),
            view["service_name"].clone(),
        )
    };
    let path = format!("/api/v1/appointments/{id}");
    let (_, appointment) = call(&shop.app, "GET", &path, &ada, None).await;
    // The CLI names a user after the username when no full name is given.
    assert_eq!(
        named(&appointment),
        (json!("ada"), json!("mia"), json!("Haircut"))
    );
    let (_, master) = shop
        .app
        .get_json(&format!("/api/v1/masters/{}", shop.master))
        .await;
    assert_eq!(master["name"], "mia");
    let stats = |group: &str| {
        format!(
            "/api/v1/stats/appointments?from={}&to={}&group_by={group}",
            shop.day, shop.day
        )
    };
    let (_, by_master) = call(&shop.app, "GET", &stats("master"), &shop.admin, None).await;
    assert_eq!(by_master["groups"][0]["name"], "mia");
    let schedule = format!(
        "/api/v1/masters/{}/schedule?from={}&to={}",
        shop.master, shop.day, shop.day
    );
    let (_, plan) = call(&shop.app, "GET", &schedule, &shop.admin, None).await;
    assert_eq!(plan["days"][0]["appointments"][0]["client_name"], "ada");
    assert_eq!(
        plan["days"][0]["appointments"][0]["service_name"],
        "Haircut"
    );

    // Renamed: the views follow.
    let (status, _) = call(
        &shop.app,
        "PUT",
        "/api/v1/me",
        &ada,
        Some(json!({"full_name": "Ada Lovelace"})),
    )
    .await;
    assert_eq!(status, 200);
    let mut renamed = service_terms(&shop).await;
    renamed["name"] = json!("Long haircut");
    let (status, changed) = call(
        &shop.app,
        "PUT",
        &format!("/api/v1/services/{}", shop.service),
        &shop.admin,
        Some(renamed),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    shop.app.settle().await;
    let (_, appointment) = call(&shop.app, "GET", &path, &ada, None).await;
    assert_eq!(
        named(&appointment),
        (json!("Ada Lovelace"), json!("mia"), json!("Long haircut"))
    );
    let (_, by_service) = call(&shop.app, "GET", &stats("service"), &shop.admin, None).await;
    assert_eq!(by_service["groups"][0]["name"], "Long haircut");

    // A rebuild of each read model alone gives the same names.
    for consumer in ["appointments", "statistics", "masters"] {
        run_cli(&shop.app.backing, &["replay", "--consumer", consumer]);
    }
    let (_, rebuilt) = call(&shop.app, "GET", &path, &ada, None).await;
    assert_eq!(rebuilt, appointment);
    let (_, again) = call(&shop.app, "GET", &stats("service"), &shop.admin, None).await;
    assert_eq!(again, by_service);
    let (_, master_again) = shop
        .app
        .get_json(&format!("/api/v1/masters/{}", shop.master))
        .await;
    assert_eq!(master_again["name"], "mia");
}
both_modes!(views_name_the_client_master_and_service_and_follow_a_rename);
