//! The Telegram notifier: the real teloxide client against a fake Bot API
//! served here over HTTP, with the real server in both modes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::appointments::{book, client, shop_on, Shop};
use crate::both_modes;
use crate::support::{run_cli, stall_the_relay, Api, Backing, ChildApp, Mode, TestApp};

const STAFF_CHATS: [i64; 2] = [100, 200];

/// A fake Telegram Bot API: records every sendMessage, and answers the first
/// `throttle` of them with 429 (retry after 1 s).
#[derive(Clone, Default)]
struct FakeTelegram {
    sent: Arc<Mutex<Vec<Value>>>,
    throttle: Arc<Mutex<u32>>,
    refused: Arc<Mutex<u32>>,
    /// Updates for getUpdates, as Telegram would hold them.
    updates: Arc<Mutex<Vec<Value>>>,
    arrived: Arc<tokio::sync::Notify>,
    /// How many of the next sendMessage calls to leave unanswered (as if
    /// the sender died before Telegram's answer reached it).
    hold: Arc<Mutex<u32>>,
    held: Arc<Mutex<Vec<Value>>>,
    /// When each delivered message arrived, by chat.
    arrivals: Arc<Mutex<Vec<(i64, Instant)>>>,
    /// How many sendMessage calls to a chat to answer with a 502 (as JSON).
    failing: Arc<Mutex<HashMap<i64, u32>>>,
    /// Chats that became supergroups: old id → new id.
    migrated: Arc<Mutex<HashMap<i64, i64>>>,
    /// answerCallbackQuery calls.
    callbacks: Arc<Mutex<Vec<Value>>>,
}

async fn get_updates(fake: &FakeTelegram, body: &Value) -> Value {
    let offset = body["offset"].as_i64().unwrap_or(0);
    for _ in 0..2 {
        let pending: Vec<Value> = fake
            .updates
            .lock()
            .unwrap()
            .iter()
            .filter(|u| u["update_id"].as_i64().unwrap() >= offset)
            .cloned()
            .collect();
        if !pending.is_empty() {
            return json!({"ok": true, "result": pending});
        }
        // Long polling: hold the request until an update arrives (bounded).
        let _ = tokio::time::timeout(Duration::from_millis(500), fake.arrived.notified()).await;
    }
    json!({"ok": true, "result": []})
}

async fn bot_method(
    State(fake): State<FakeTelegram>,
    Path((_bot, method)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Json<Value> {
    if method.eq_ignore_ascii_case("getUpdates") {
        return Json(get_updates(&fake, &body).await);
    }
    if method.eq_ignore_ascii_case("answerCallbackQuery") {
        fake.callbacks.lock().unwrap().push(body);
        return Json(json!({"ok": true, "result": true}));
    }
    if !method.eq_ignore_ascii_case("sendMessage") {
        return Json(
            json!({"ok": false, "error_code": 400, "description": format!("Bad Request: {method} not faked")}),
        );
    }
    let held = {
        let mut hold = fake.hold.lock().unwrap();
        let held = *hold > 0;
        if held {
            *hold -= 1;
            fake.held.lock().unwrap().push(body.clone());
        }
        held
    };
    if held {
        tokio::time::sleep(Duration::from_secs(120)).await;
        return Json(json!({"ok": false, "error_code": 500, "description": "held"}));
    }
    let to = body["chat_id"].as_i64().unwrap_or(0);
    if let Some(new) = fake.migrated.lock().unwrap().get(&to) {
        return Json(json!({"ok": false, "error_code": 400,
            "description": "Bad Request: group chat was upgraded to a supergroup chat",
            "parameters": {"migrate_to_chat_id": new}}));
    }
    if let Some(left) = fake
        .failing
        .lock()
        .unwrap()
        .get_mut(&to)
        .filter(|n| **n > 0)
    {
        *left -= 1;
        return Json(json!({"ok": false, "error_code": 502, "description": "Bad Gateway"}));
    }
    {
        let mut throttle = fake.throttle.lock().unwrap();
        if *throttle > 0 {
            *throttle -= 1;
            *fake.refused.lock().unwrap() += 1;
            return Json(
                json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}}),
            );
        }
    }
    let chat = body["chat_id"].clone();
    fake.arrivals
        .lock()
        .unwrap()
        .push((chat.as_i64().unwrap_or(0), Instant::now()));
    let mut sent = fake.sent.lock().unwrap();
    sent.push(body.clone());
    Json(json!({"ok": true, "result": {
        "message_id": sent.len(), "date": 0,
        "chat": {"id": chat, "type": "private", "first_name": "Staff"},
        "text": body["text"],
    }}))
}

impl FakeTelegram {
    async fn start(&self) -> String {
        let app = Router::new()
            .route("/{bot}/{method}", post(bot_method))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{address}")
    }

    /// A user writes to the bot.
    fn say(&self, update_id: i64, user: i64, text: &str) {
        self.updates.lock().unwrap().push(json!({
            "update_id": update_id,
            "message": {
                "message_id": update_id, "date": 0, "text": text,
                "chat": {"id": user, "type": "private", "first_name": "U"},
                "from": {"id": user, "is_bot": false, "first_name": "U"},
            }
        }));
        self.arrived.notify_waiters();
    }

    /// A user presses an inline button under a message the bot sent them.
    fn press(&self, update_id: i64, user: i64, data: &str) {
        self.updates.lock().unwrap().push(json!({
            "update_id": update_id,
            "callback_query": {
                "id": format!("cq{update_id}"), "chat_instance": "1", "data": data,
                "from": {"id": user, "is_bot": false, "first_name": "U"},
                "message": {
                    "message_id": 1, "date": 1, "text": "invitation",
                    "chat": {"id": user, "type": "private", "first_name": "U"},
                },
            }
        }));
        self.arrived.notify_waiters();
    }

    /// A user shares a contact (theirs when `owner` is their id).
    fn share_contact(&self, update_id: i64, user: i64, phone: &str, owner: i64) {
        self.updates.lock().unwrap().push(json!({
            "update_id": update_id,
            "message": {
                "message_id": update_id, "date": 0,
                "contact": {"phone_number": phone, "first_name": "U", "user_id": owner},
                "chat": {"id": user, "type": "private", "first_name": "U"},
                "from": {"id": user, "is_bot": false, "first_name": "U"},
            }
        }));
        self.arrived.notify_waiters();
    }

    /// The messages to a chat, whole (text, buttons).
    fn messages_to(&self, chat: i64) -> Vec<Value> {
        self.sent()
            .into_iter()
            .filter(|m| m["chat_id"] == chat)
            .collect()
    }

    /// Says `text` as `user` and waits for the one reply.
    async fn ask(&self, update_id: i64, user: i64, text: &str) -> String {
        let before = self.sent_to(user).len();
        self.say(update_id, user, text);
        self.wait_for_chat(user, before + 1).await;
        self.sent_to(user)[before].clone()
    }

    fn sent_to(&self, chat: i64) -> Vec<String> {
        self.sent()
            .iter()
            .filter(|m| m["chat_id"] == chat)
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect()
    }

    async fn wait_for_chat(&self, chat: i64, count: usize) {
        self.wait_for_chat_within(chat, count, Duration::from_secs(30))
            .await
    }

    async fn wait_for_chat_within(&self, chat: i64, count: usize, limit: Duration) {
        let started = Instant::now();
        while self.sent_to(chat).len() < count {
            assert!(
                started.elapsed() < limit,
                "chat {chat} got {:?}",
                self.sent_to(chat)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The shortest gap between two messages to one chat.
    fn closest_to_one_chat(&self) -> Option<Duration> {
        let arrivals = self.arrivals.lock().unwrap().clone();
        let mut closest: Option<Duration> = None;
        for (i, (chat, at)) in arrivals.iter().enumerate() {
            if let Some((_, next)) = arrivals[i + 1..].iter().find(|(c, _)| c == chat) {
                let gap = next.duration_since(*at);
                closest = Some(closest.map_or(gap, |c| c.min(gap)));
            }
        }
        closest
    }

    fn sent(&self) -> Vec<Value> {
        self.sent.lock().unwrap().clone()
    }

    /// Messages per (chat, text): every one must be 1.
    fn counts(&self) -> HashMap<(i64, String), usize> {
        let mut counts = HashMap::new();
        for message in self.sent() {
            *counts
                .entry((
                    message["chat_id"].as_i64().unwrap(),
                    message["text"].as_str().unwrap().to_string(),
                ))
                .or_insert(0) += 1;
        }
        counts
    }

    async fn wait_for(&self, count: usize) {
        let started = Instant::now();
        while self.sent().len() < count {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "only {} of {count} messages arrived",
                self.sent().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn notified_shop(mode: Mode, fake: &FakeTelegram) -> Shop {
    notified_shop_on(Backing::new(mode).await, fake).await
}

async fn notified_shop_on(mut backing: Backing, fake: &FakeTelegram) -> Shop {
    let url = fake.start().await;
    backing
        .env
        .insert("TELEGRAM_BOT_TOKEN".into(), "123456:TEST-TOKEN".into());
    backing.env.insert("TELEGRAM_API_URL".into(), url);
    backing
        .env
        .insert("TELEGRAM_STAFF_CHAT_IDS".into(), "100, 200".into());
    backing
        .env
        .insert("TELEGRAM_STAFF_USER_IDS".into(), "42".into());
    // The digest has its own test; elsewhere it would depend on the hour.
    backing
        .env
        .entry("TELEGRAM_DIGEST_HOUR".into())
        .or_insert_with(|| "off".into());
    shop_on(backing).await
}

async fn a_booking_alerts_every_staff_chat_once(mode: Mode) {
    let fake = FakeTelegram::default();
    let shop = notified_shop(mode, &fake).await;
    let ada = client(&shop, "ada").await;
    let (status, booked) = book(&shop, &ada, "10:00").await;
    assert_eq!(status, 201);
    shop.app.settle().await;
    fake.wait_for(2).await;
    let sent = fake.sent();
    assert_eq!(sent.len(), 2, "one alert per staff chat: {sent:?}");
    let chats: Vec<i64> = sent
        .iter()
        .map(|m| m["chat_id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        chats
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        STAFF_CHATS.into_iter().collect()
    );
    let text = sent[0]["text"].as_str().unwrap();
    assert!(text.starts_with("New appointment"), "{text}");
    assert!(
        text.contains("Haircut") && text.contains("ada"),
        "names, not ids: {text}"
    );
    assert!(
        text.contains(&format!("#appointment/{}", booked["id"].as_str().unwrap())),
        "{text}"
    );
    let (_, ready) = shop.app.get_json("/readyz").await;
    assert_eq!(ready["notifier"], "on");
}
both_modes!(a_booking_alerts_every_staff_chat_once);

/// The notifier's JetStream consumer is a doorbell too: with nothing
/// published (the relay stalled), the alert comes from the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_nothing_published_the_alert_still_arrives() {
    let fake = FakeTelegram::default();
    let backing = Backing::new(Mode::Server).await;
    stall_the_relay(&backing).await;
    let shop = notified_shop_on(backing, &fake).await;
    let ada = client(&shop, "ada").await;
    assert_eq!(book(&shop, &ada, "10:00").await.0, 201);
    fake.wait_for(2).await;
    assert_eq!(fake.sent().len(), 2, "one alert per staff chat");
}

async fn a_429_is_waited_out_and_the_message_still_arrives_once(mode: Mode) {
    let fake = FakeTelegram::default();
    let shop = notified_shop(mode, &fake).await;
    *fake.throttle.lock().unwrap() = 1;
    let ada = client(&shop, "ada").await;
    assert_eq!(book(&shop, &ada, "10:00").await.0, 201);
    shop.app.settle().await;
    assert_eq!(*fake.refused.lock().unwrap(), 1, "Telegram said 429 once");
    assert_eq!(fake.sent().len(), 2);
    assert!(fake.counts().values().all(|n| *n == 1));
}
both_modes!(a_429_is_waited_out_and_the_message_still_arrives_once);

async fn a_restarted_notifier_sends_nothing_twice_and_replay_sends_nothing(mode: Mode) {
    let fake = FakeTelegram::default();
    let shop = notified_shop(mode, &fake).await;
    let ada = client(&shop, "ada").await;
    assert_eq!(book(&shop, &ada, "10:00").await.0, 201);
    assert_eq!(book(&shop, &ada, "11:00").await.0, 201);
    shop.app.settle().await;
    let Shop {
        app,
        admin,
        service,
        master,
        day,
    } = shop;
    let backing = app.shutdown().await;
    let shop = Shop {
        app: TestApp::start(backing).await,
        admin,
        service,
        master,
        day,
    };
    let ada = crate::appointments::login(&shop.app, "ada").await;
    assert_eq!(book(&shop, &ada, "15:00").await.0, 201);
    shop.app.settle().await;
    assert_eq!(fake.sent().len(), 6, "two chats × three bookings");
    assert!(fake.counts().values().all(|n| *n == 1), "nothing twice");

    let backing = shop.app.shutdown().await;
    run_cli(&backing, &["replay", "--consumer", "appointments"]);
    run_cli(&backing, &["replay", "--consumer", "statistics"]);
    let app = TestApp::start(backing).await;
    app.settle().await;
    assert_eq!(fake.sent().len(), 6, "a replay announces nothing");
}
both_modes!(a_restarted_notifier_sends_nothing_twice_and_replay_sends_nothing);

#[tokio::test]
async fn without_a_token_the_notifier_is_off() {
    let app = crate::support::spawn_app(Mode::Embedded).await;
    let (status, ready) = app.get_json("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(ready["notifier"], "off");
    crate::appointments::user(&app, "boss", "admin");
    let token = crate::appointments::login(&app, "boss").await;
    let (status, problem) =
        crate::appointments::call(&app, "POST", "/api/v1/me/telegram-link", &token, None).await;
    assert_eq!(status, 409, "no bot to link to: {problem}");
    assert_eq!(
        problem["type"].as_str().unwrap().rsplit('/').next(),
        Some("telegram-off")
    );
    assert!(ready["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["name"] != "notifier"));
}

async fn staff_commands_answer_whitelisted_users_and_refuse_strangers(mode: Mode) {
    let fake = FakeTelegram::default();
    let shop = notified_shop(mode, &fake).await;
    let ada = client(&shop, "ada").await;
    assert_eq!(
        book(&shop, &ada, "10:00").await.0,
        201,
        "a week ahead: not today"
    );
    shop.app.settle().await;
    fake.wait_for(2).await;

    fake.say(1, 42, "/today");
    fake.wait_for_chat(42, 1).await;
    let today = &fake.sent_to(42)[0];
    assert!(
        today.starts_with("Today, ") && today.contains("no appointments"),
        "{today}"
    );

    fake.say(2, 7, "/today");
    fake.wait_for_chat(7, 1).await;
    assert_eq!(
        fake.sent_to(7),
        ["Sorry, this command is for staff."],
        "a stranger gets no data"
    );

    fake.say(3, 42, "/digest");
    fake.wait_for_chat(42, 2).await;
    assert_eq!(fake.sent_to(42)[1], "Digest sent to 2 staff chats.");
    for chat in STAFF_CHATS {
        assert!(
            fake.sent_to(chat).iter().any(|t| t.starts_with("Digest")),
            "chat {chat}"
        );
    }

    // Telegram delivers an update again (as after a crash): no second answer.
    fake.say(1, 42, "/today");
    fake.say(4, 7, "/help");
    fake.wait_for_chat(7, 2).await;
    assert!(
        fake.sent_to(7)[1].contains("/today"),
        "help lists the commands"
    );
    assert_eq!(fake.sent_to(42).len(), 2, "update 1 was answered once");
}
both_modes!(staff_commands_answer_whitelisted_users_and_refuse_strangers);

async fn settings_changes_are_events_and_steer_the_alerts(mode: Mode) {
    use crate::appointments::call;
    let fake = FakeTelegram::default();
    let shop = notified_shop(mode, &fake).await;
    let (status, bootstrap) = call(
        &shop.app,
        "GET",
        "/api/v1/notifier/settings",
        &shop.admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{bootstrap}");
    assert_eq!(bootstrap["staff_chat_ids"], json!([100, 200]));
    assert_eq!(bootstrap["staff_user_ids"], json!([42]));
    assert_eq!(bootstrap["version"], 0);
    assert_eq!(bootstrap["available_alerts"]["AppointmentBooked"], true);

    let quiet = json!({"staff_chat_ids": [300], "staff_user_ids": [42], "alerts": {"AppointmentBooked": false}, "digest_hour": 9, "daily_digest": false});
    let (status, _) = call(
        &shop.app,
        "PUT",
        "/api/v1/notifier/settings",
        &shop.admin,
        Some(quiet),
    )
    .await;
    assert_eq!(status, 200);
    let (status, problem) = call(&shop.app, "PUT", "/api/v1/notifier/settings", &shop.admin, Some(json!({"staff_chat_ids": [], "staff_user_ids": [], "alerts": {"Nope": true}, "digest_hour": 9, "daily_digest": false}))).await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "alerts.Nope");
    let ada = client(&shop, "ada").await;
    assert_eq!(book(&shop, &ada, "10:00").await.0, 201);
    shop.app.settle().await;
    assert!(
        fake.sent().is_empty(),
        "the booked alert is off: {:?}",
        fake.sent()
    );

    // 9.0 is an integer to JSON Schema, and so to the API.
    let loud = json!({"staff_chat_ids": [300], "staff_user_ids": [42], "alerts": {}, "digest_hour": 9.0, "daily_digest": false});
    assert_eq!(
        call(
            &shop.app,
            "PUT",
            "/api/v1/notifier/settings",
            &shop.admin,
            Some(loud)
        )
        .await
        .0,
        200
    );
    assert_eq!(book(&shop, &ada, "15:00").await.0, 201);
    shop.app.settle().await;
    fake.wait_for(1).await;
    assert_eq!(fake.sent().len(), 1);
    assert_eq!(fake.sent()[0]["chat_id"], 300, "only the configured chat");
    let (_, now) = call(
        &shop.app,
        "GET",
        "/api/v1/notifier/settings",
        &shop.admin,
        None,
    )
    .await;
    assert_eq!(now["version"], 2, "two changes, two events");
    assert_eq!(now["digest_hour"], 9);
}
both_modes!(settings_changes_are_events_and_steer_the_alerts);

/// Asks for a link code as `token` and sends `/start <code>` from `chat`.
async fn link_chat(
    shop: &Shop,
    fake: &FakeTelegram,
    token: &str,
    update: i64,
    chat: i64,
) -> String {
    use crate::appointments::call;
    let (status, link) = call(&shop.app, "POST", "/api/v1/me/telegram-link", token, None).await;
    assert_eq!(status, 201, "{link}");
    let code = link["code"].as_str().unwrap().to_string();
    assert_eq!(link["start_command"], format!("/start {code}"));
    let replies = fake.sent_to(chat).len();
    fake.say(update, chat, &format!("/start {}", code.to_lowercase()));
    fake.wait_for_chat(chat, replies + 1).await;
    code
}

async fn me(shop: &Shop, token: &str) -> Value {
    let (status, me) = crate::appointments::call(&shop.app, "GET", "/api/v1/me", token, None).await;
    assert_eq!(status, 200);
    me
}

async fn a_client_links_their_chat_with_a_one_time_code(mode: Mode) {
    use crate::appointments::call;
    let fake = FakeTelegram::default();
    let shop = notified_shop(mode, &fake).await;
    let ada = client(&shop, "ada").await;
    assert_eq!(me(&shop, &ada).await["telegram_linked"], false);

    let code = link_chat(&shop, &fake, &ada, 1, 555).await;
    let reply = &fake.sent_to(555)[0];
    assert!(
        reply.starts_with("Linked to the Annals account of ada"),
        "{reply}"
    );
    shop.app.settle().await;
    assert_eq!(me(&shop, &ada).await["telegram_linked"], true);

    // The code works once; a wrong code links nothing.
    fake.say(2, 556, &format!("/start {code}"));
    fake.say(3, 557, "/start NOTACODE00");
    fake.wait_for_chat(556, 1).await;
    fake.wait_for_chat(557, 1).await;
    for chat in [556, 557] {
        assert!(
            fake.sent_to(chat)[0].contains("not valid or has expired"),
            "{:?}",
            fake.sent_to(chat)
        );
    }

    let (status, _) = call(&shop.app, "DELETE", "/api/v1/me/telegram-link", &ada, None).await;
    assert_eq!(status, 200);
    assert_eq!(me(&shop, &ada).await["telegram_linked"], false);
    let (status, again) = call(&shop.app, "DELETE", "/api/v1/me/telegram-link", &ada, None).await;
    assert_eq!(status, 200, "unlinking twice changes nothing: {again}");
}
both_modes!(a_client_links_their_chat_with_a_one_time_code);

async fn set_reminder_minutes(shop: &Shop, minutes: u32) {
    let body = json!({"staff_chat_ids": STAFF_CHATS, "staff_user_ids": [42], "digest_hour": 8,
        "daily_digest": false, "reminder_minutes": minutes});
    let (status, reply) = crate::appointments::call(
        &shop.app,
        "PUT",
        "/api/v1/notifier/settings",
        &shop.admin,
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
}

async fn move_to(shop: &Shop, token: &str, id: &str, time: &str) {
    let moved = json!({"start": format!("{}T{time}:00Z", shop.day)});
    let (status, reply) = crate::appointments::call(
        &shop.app,
        "POST",
        &format!("/api/v1/appointments/{id}/reschedule"),
        token,
        Some(moved),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
}

async fn reminders_reach_linked_clients_once_follow_reschedules_and_skip_cancellations(mode: Mode) {
    use crate::appointments::call;
    let fake = FakeTelegram::default();
    let shop = notified_shop(mode, &fake).await;
    set_reminder_minutes(&shop, 60).await; // the bookings are a week ahead
    let ada = client(&shop, "ada").await;
    let bob = client(&shop, "bob").await; // not linked: never reminded
    link_chat(&shop, &fake, &ada, 1, 555).await;
    let mut ids = Vec::new();
    for time in ["10:00", "11:00", "12:00"] {
        let (status, booked) = book(&shop, &ada, time).await;
        assert_eq!(status, 201, "{booked}");
        ids.push(booked["id"].as_str().unwrap().to_string());
    }
    assert_eq!(book(&shop, &bob, "14:00").await.0, 201);
    let (status, _) = call(
        &shop.app,
        "POST",
        &format!("/api/v1/appointments/{}/cancel", ids[1]),
        &ada,
        Some(json!({"reason": "ill"})),
    )
    .await;
    assert_eq!(status, 200);
    move_to(&shop, &ada, &ids[2], "15:00").await;
    shop.app.settle().await;
    // Staff hear of both: who, what, with whom, when.
    fake.wait_for_chat(100, 6).await; // four bookings, a cancellation, a move
    let staff = fake.sent_to(100);
    let cancelled = staff
        .iter()
        .find(|t| t.starts_with("Appointment cancelled"))
        .unwrap();
    assert!(
        cancelled.contains("Haircut for ada with mia")
            && cancelled.contains("Reason: ill")
            && cancelled.contains(&ids[1]),
        "{cancelled}"
    );
    let moved = staff
        .iter()
        .find(|t| t.starts_with("Appointment rescheduled"))
        .unwrap();
    assert!(
        moved.contains("From: ")
            && moved.contains("12:00 UTC")
            && moved.contains("To: ")
            && moved.contains("15:00 UTC"),
        "{moved}"
    );

    // Now a week ahead is inside the lead time.
    set_reminder_minutes(&shop, 14 * 24 * 60).await;
    fake.wait_for_chat(555, 3).await; // the link reply and two reminders
    let reminders: Vec<String> = fake.sent_to(555)[1..].to_vec();
    assert!(
        reminders
            .iter()
            .all(|r| r.starts_with("Reminder: your appointment")),
        "{reminders:?}"
    );
    assert!(
        reminders[0].contains("10:00")
            && reminders[0].contains(&format!("#appointment/{}", ids[0])),
        "{reminders:?}"
    );
    assert!(
        reminders[1].contains("15:00")
            && reminders[1].contains(&format!("#appointment/{}", ids[2])),
        "moved with the reschedule: {reminders:?}"
    );
    assert!(
        reminders[0].contains("Haircut") && reminders[0].contains("mia"),
        "{reminders:?}"
    );

    // A reschedule after the reminder brings a new one for the new time.
    move_to(&shop, &ada, &ids[0], "16:00").await;
    fake.wait_for_chat(555, 4).await;
    let last = fake.sent_to(555)[3].clone();
    assert!(last.contains("16:00") && last.contains(&ids[0]), "{last}");
    assert!(
        fake.sent_to(555).iter().all(|t| !t.contains(&ids[1])),
        "nothing for the cancelled appointment"
    );
    assert!(fake.counts().values().all(|n| *n == 1), "nothing twice");
    // Seven messages to chat 100 came in a burst: Telegram's one a second
    // per chat held (less a little for the network between send and arrival).
    let closest = fake.closest_to_one_chat().unwrap();
    assert!(
        closest >= Duration::from_millis(800),
        "two messages to one chat {closest:?} apart"
    );
}
both_modes!(reminders_reach_linked_clients_once_follow_reschedules_and_skip_cancellations);

fn digests(fake: &FakeTelegram, chat: i64) -> usize {
    fake.sent_to(chat)
        .iter()
        .filter(|t| t.starts_with("Daily digest"))
        .count()
}

async fn the_daily_digest_goes_once_a_day_across_processes_and_restarts(mode: Mode) {
    let fake = FakeTelegram::default();
    let mut backing = Backing::new(mode).await;
    // Hour 0: due at once, whatever the time of day the test runs.
    backing
        .env
        .insert("TELEGRAM_DIGEST_HOUR".into(), "0".into());
    let shop = notified_shop_on(backing, &fake).await;
    for chat in STAFF_CHATS {
        fake.wait_for_chat(chat, 1).await;
        let digest = &fake.sent_to(chat)[0];
        assert!(digest.starts_with("Daily digest\n"), "{digest}");
        assert!(digest.contains("no appointments"), "{digest}");
    }
    // A second process on the same store (server mode), standing by, then
    // taking over; or a restart: none sends today's digest again.
    let second = match mode {
        Mode::Server => Some(TestApp::start(shop.app.backing.clone()).await),
        Mode::Embedded => None,
    };
    let ada = client(&shop, "ada").await;
    assert_eq!(book(&shop, &ada, "10:00").await.0, 201);
    shop.app.settle().await;
    fake.wait_for_chat(100, 2).await;
    // The process on duty stops: the standby one takes over (server mode),
    // or the same store starts again (embedded).
    let backing = shop.app.shutdown().await;
    let app = match second {
        Some(second) => second,
        None => TestApp::start(backing).await,
    };
    let ada = crate::appointments::login(&app, "ada").await;
    let shop2 = Shop {
        app,
        admin: shop.admin,
        service: shop.service,
        master: shop.master,
        day: shop.day,
    };
    assert_eq!(book(&shop2, &ada, "11:00").await.0, 201);
    shop2.app.settle().await;
    fake.wait_for_chat(100, 3).await;
    for chat in STAFF_CHATS {
        assert_eq!(
            digests(&fake, chat),
            1,
            "chat {chat}: {:?}",
            fake.sent_to(chat)
        );
    }
}
both_modes!(the_daily_digest_goes_once_a_day_across_processes_and_restarts);

#[tokio::test]
async fn a_message_cut_off_by_a_crash_is_sent_again_and_nothing_else_twice() {
    let fake = FakeTelegram::default();
    let shop = notified_shop(Mode::Embedded, &fake).await;
    let ada = client(&shop, "ada").await;
    let body = json!({"service_id": shop.service, "master_id": shop.master, "start": format!("{}T10:00:00Z", shop.day)});
    let backing = shop.app.shutdown().await;

    // The first alert's request reaches Telegram, and then the process dies
    // before the answer comes back.
    *fake.hold.lock().unwrap() = 1;
    let child = ChildApp::start(backing).await;
    let booked = child
        .http()
        .post(child.url("/api/v1/appointments"))
        .bearer_auth(&ada)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(booked.status(), 201);
    // Restarted: the other chat gets its alert, and the cut-off one is sent
    // again once its ledger row is stale (RESEND_AFTER, 30 s).
    let child = killed_with_a_message_on_its_way(&fake, child).await;
    let cut_off = fake.held.lock().unwrap()[0]["chat_id"].as_i64().unwrap();
    let other = STAFF_CHATS.into_iter().find(|c| *c != cut_off).unwrap();
    fake.wait_for_chat(other, 1).await;
    fake.wait_for_chat_within(cut_off, 1, Duration::from_secs(90))
        .await;
    child.settle().await;
    assert_eq!(fake.sent().len(), 2, "{:?}", fake.sent());
    assert!(fake.counts().values().all(|n| *n == 1), "nothing twice");
    let text = fake.sent_to(cut_off)[0].clone();
    assert_eq!(
        fake.held.lock().unwrap()[0]["text"],
        text,
        "the same message"
    );
}

/// How many stream messages the notifier's durable consumer was given.
async fn delivered_to_notifier(nats: &crate::support::Nats, prefix: &str) -> u64 {
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = format!("{}_EVENTS", prefix.to_uppercase().replace('-', "_"));
    let stream = js.get_stream(&stream).await.unwrap();
    let info = stream
        .consumer_info(format!("{prefix}-notifier"))
        .await
        .unwrap();
    info.delivered.stream_sequence
}

#[tokio::test]
async fn in_server_mode_alerts_come_through_jetstream_and_still_arrive_while_nats_is_down() {
    let nats = crate::support::Nats::start();
    let fake = FakeTelegram::default();
    let backing = Backing::with(Mode::Server, None, Some(&nats)).await;
    let prefix = backing.env["ANNALS_NATS_PREFIX"].clone();
    let shop = notified_shop_on(backing, &fake).await;
    let ada = client(&shop, "ada").await;
    assert_eq!(book(&shop, &ada, "10:00").await.0, 201);
    fake.wait_for(2).await;
    shop.app.settle().await;
    assert!(
        delivered_to_notifier(&nats, &prefix).await > 0,
        "the notifier reads its durable consumer"
    );

    nats.kill();
    assert_eq!(book(&shop, &ada, "11:00").await.0, 201);
    fake.wait_for(4).await; // from the log meanwhile
    nats.restart();
    assert_eq!(book(&shop, &ada, "15:00").await.0, 201);
    fake.wait_for(6).await;
    shop.app.settle().await;
    assert_eq!(fake.sent().len(), 6);
    assert!(fake.counts().values().all(|n| *n == 1), "nothing twice");
}

async fn a_migrated_staff_chat_gets_the_alert_at_its_new_id_and_keeps_it(mode: Mode) {
    let fake = FakeTelegram::default();
    fake.migrated.lock().unwrap().insert(100, -100_100);
    let shop = notified_shop(mode, &fake).await;
    let ada = client(&shop, "ada").await;
    assert_eq!(book(&shop, &ada, "10:00").await.0, 201);
    fake.wait_for_chat(-100_100, 1).await;
    fake.wait_for_chat(200, 1).await;
    let (status, settings) = crate::appointments::call(
        &shop.app,
        "GET",
        "/api/v1/notifier/settings",
        &shop.admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        settings["staff_chat_ids"],
        json!([-100_100, 200]),
        "{settings}"
    );
    assert_eq!(book(&shop, &ada, "11:00").await.0, 201);
    fake.wait_for_chat(-100_100, 2).await;
    assert!(fake.sent_to(100).is_empty());
}
both_modes!(a_migrated_staff_chat_gets_the_alert_at_its_new_id_and_keeps_it);

async fn parked_messages(shop: &Shop) -> Value {
    let (status, page) = crate::appointments::call(
        &shop.app,
        "GET",
        "/api/v1/notifier/parked",
        &shop.admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page
}

async fn a_message_that_keeps_failing_is_parked_and_blocks_nothing(mode: Mode) {
    let fake = FakeTelegram::default();
    // Five 502s in a row for chat 200: the first alert there is parked.
    fake.failing.lock().unwrap().insert(200, 5);
    let shop = notified_shop(mode, &fake).await;
    let ada = client(&shop, "ada").await;
    assert_eq!(book(&shop, &ada, "10:00").await.0, 201);
    fake.wait_for_chat(100, 1).await;
    let started = Instant::now();
    loop {
        let (_, ready) = shop.app.get_json("/readyz").await;
        if ready["parked_messages"] == 1 {
            assert_eq!(ready["status"], "ready", "parking does not make it unready");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never parked: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = parked_messages(&shop).await;
    let parked = &page["items"][0];
    assert_eq!(parked["chat_id"], 200);
    assert!(
        parked["error"].as_str().unwrap().contains("Bad Gateway"),
        "{parked}"
    );
    let first = parked["text"].as_str().unwrap().to_string();
    // The next alert is not blocked by it.
    assert_eq!(book(&shop, &ada, "11:00").await.0, 201);
    fake.wait_for_chat(100, 2).await;
    fake.wait_for_chat(200, 1).await;
    // Retried, it is sent once.
    let retry = json!({"cause": parked["cause"], "chat_id": 200});
    let (status, _) = crate::appointments::call(
        &shop.app,
        "POST",
        "/api/v1/notifier/parked/retry",
        &shop.admin,
        Some(retry.clone()),
    )
    .await;
    assert_eq!(status, 202);
    fake.wait_for_chat(200, 2).await;
    assert_eq!(fake.sent_to(200).iter().filter(|t| **t == first).count(), 1);
    assert_eq!(parked_messages(&shop).await["items"], json!([]));
    let (status, _) = crate::appointments::call(
        &shop.app,
        "POST",
        "/api/v1/notifier/parked/retry",
        &shop.admin,
        Some(retry),
    )
    .await;
    assert_eq!(status, 404, "no longer parked");
}
both_modes!(a_message_that_keeps_failing_is_parked_and_blocks_nothing);

async fn a_new_order_alerts_the_staff_and_today_lists_it(mode: Mode) {
    use crate::shop::{guest_cart, guest_checkout, send};
    let fake = FakeTelegram::default();
    let shop = notified_shop(mode, &fake).await;
    let (_, category, _) = send(
        &shop.app,
        "POST",
        "/api/v1/product-categories",
        Some(&shop.admin),
        &[],
        Some(json!({"name": "Lights"})),
    )
    .await;
    let (status, product, _) = send(
        &shop.app,
        "POST",
        "/api/v1/products",
        Some(&shop.admin),
        &[],
        Some(
            json!({"name": "Bulb", "sku": "H7", "category_id": category["id"],
            "price": "7.50", "currency": "EUR", "universal": true}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{product}");
    let cart = guest_cart(&shop.app, product["id"].as_str().unwrap(), 2).await;
    let (status, placed, _) = guest_checkout(&shop.app, &cart, "alert-1", true).await;
    assert_eq!(status, 201, "{placed}");
    shop.app.settle().await;
    fake.wait_for(2).await;
    let number = placed["number"].as_str().unwrap();
    for chat in STAFF_CHATS {
        let texts = fake.sent_to(chat);
        assert_eq!(texts.len(), 1, "one alert per chat: {texts:?}");
        assert!(texts[0].starts_with("New order\n"), "{}", texts[0]);
        assert!(texts[0].contains(number), "{}", texts[0]);
        assert!(
            texts[0].contains("Total: 15.00 EUR (2 items)"),
            "{}",
            texts[0]
        );
    }
    fake.say(1, 42, "/today");
    fake.wait_for_chat(42, 1).await;
    let today = &fake.sent_to(42)[0];
    assert!(today.contains("Orders: 1"), "{today}");
    assert!(
        today.contains(&format!("{number} - Ada Lovelace 15.00 EUR (placed)")),
        "{today}"
    );
}
both_modes!(a_new_order_alerts_the_staff_and_today_lists_it);

async fn a_client_is_reminded_to_renew_once_per_end_date(mode: Mode) {
    use crate::shop::send;
    let fake = FakeTelegram::default();
    let shop = notified_shop(mode, &fake).await;
    let (status, plan, _) = send(
        &shop.app,
        "POST",
        "/api/v1/plans",
        Some(&shop.admin),
        &[],
        Some(json!({"name": "Three days", "length_days": 3, "price": "9.00", "currency": "EUR"})),
    )
    .await;
    assert_eq!(status, 201, "{plan}");
    // Subscribes the client of `token` (linked to `chat`) and pays today.
    let subscribe = |token: String, update: i64, chat: i64| {
        let (shop, fake, plan) = (&shop, &fake, plan["id"].clone());
        async move {
            link_chat(shop, fake, &token, update, chat).await;
            let id = me(shop, &token).await["id"].clone();
            let (status, opened, _) = send(
                &shop.app,
                "POST",
                "/api/v1/subscriptions",
                Some(&shop.admin),
                &[],
                Some(json!({"client_id": id, "plan_id": plan})),
            )
            .await;
            assert_eq!(status, 201, "{opened}");
            let path = format!(
                "/api/v1/subscriptions/{}/payments",
                opened["id"].as_str().unwrap()
            );
            let (status, paid, _) = send(
                &shop.app,
                "POST",
                &path,
                Some(&shop.admin),
                &[],
                Some(json!({"amount": "9.00", "currency": "EUR", "method": "cash"})),
            )
            .await;
            assert_eq!(status, 201, "{paid}");
            shop.app.settle().await;
        }
    };
    let ada = client(&shop, "ada").await;
    subscribe(ada, 1, 777).await;
    fake.wait_for_chat(777, 2).await;
    let reminder = &fake.sent_to(777)[1];
    let last_day = (chrono::Utc::now().date_naive() + chrono::Duration::days(2)).to_string();
    assert!(
        reminder.starts_with("Reminder: your subscription ends soon"),
        "{reminder}"
    );
    assert!(
        reminder.contains(&format!("Last day: {last_day}")),
        "{reminder}"
    );
    // bob's reminder comes from a later look at the subscriptions, which
    // saw ada's again: she is not reminded twice.
    let bob = client(&shop, "bob").await;
    subscribe(bob, 2, 778).await;
    fake.wait_for_chat(778, 2).await;
    assert_eq!(fake.sent_to(777).len(), 2, "{:?}", fake.sent_to(777));
}
both_modes!(a_client_is_reminded_to_renew_once_per_end_date);

async fn a_broadcast_to_a_group_reaches_exactly_its_members_once_each(mode: Mode) {
    use crate::shop::send;
    let fake = FakeTelegram::default();
    let shop = notified_shop(mode, &fake).await;
    let mut ids = Vec::new();
    for (i, (name, chat)) in [("ada", 801), ("bob", 802), ("cyd", 803)]
        .into_iter()
        .enumerate()
    {
        let token = client(&shop, name).await;
        link_chat(&shop, &fake, &token, i as i64 + 1, chat).await;
        ids.push(me(&shop, &token).await["id"].clone());
    }
    shop.app.settle().await;
    let (status, group, _) = send(&shop.app, "POST", "/api/v1/groups", Some(&shop.admin), &[],
        Some(json!({"name": "Morning", "coach_id": shop.master, "capacity": 5, "member_ids": [ids[0], ids[1]]}))).await;
    assert_eq!(status, 201, "{group}");
    let (status, sent, _) = send(
        &shop.app,
        "POST",
        "/api/v1/broadcasts",
        Some(&shop.admin),
        &[],
        Some(json!({"audience": {"group_id": group["id"]}, "text": "Hall A is closed on Friday."})),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["recipients"], 2);
    fake.wait_for_chat(801, 2).await;
    fake.wait_for_chat(802, 2).await;
    assert_eq!(fake.sent_to(801)[1], "Hall A is closed on Friday.");
    assert_eq!(
        fake.sent_to(803).len(),
        1,
        "not a member: only the link reply"
    );
    let path = format!("/api/v1/broadcasts/{}", sent["id"].as_str().unwrap());
    let started = Instant::now();
    let view = loop {
        let (status, view, _) = send(&shop.app, "GET", &path, Some(&shop.admin), &[], None).await;
        assert_eq!(status, 200, "{view}");
        if view["delivered"] == 2 || started.elapsed() > Duration::from_secs(30) {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (
            &view["delivered"],
            &view["pending"],
            &view["refused"],
            &view["unreachable"]
        ),
        (&json!(2), &json!(0), &json!(0), &json!(0)),
        "{view}"
    );
    assert!(fake.counts().values().all(|n| *n == 1), "nothing twice");
    let (status, bad, _) = send(
        &shop.app,
        "POST",
        "/api/v1/broadcasts",
        Some(&shop.admin),
        &[],
        Some(json!({"audience": "everyone", "text": "hi"})),
    )
    .await;
    assert_eq!(status, 422, "{bad}");
}
both_modes!(a_broadcast_to_a_group_reaches_exactly_its_members_once_each);

/// Waits until `child` has a message on its way (held by the fake), kills
/// it there, and starts another process on the same backing.
async fn killed_with_a_message_on_its_way(fake: &FakeTelegram, child: ChildApp) -> ChildApp {
    let started = Instant::now();
    while fake.held.lock().unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing on its way"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let backing = child.kill();
    let child = ChildApp::start(backing).await;
    child
}

/// The process dies with a broadcast's first message on its way and the
/// others unsent; restarted, it sends the rest, and the cut-off one again
/// once its ledger row is stale — each recipient gets it once.
#[tokio::test]
async fn a_broadcast_cut_off_by_a_crash_is_finished_after_a_restart_once_each() {
    use crate::shop::send;
    let fake = FakeTelegram::default();
    let shop = notified_shop(Mode::Embedded, &fake).await;
    let chats = [901, 902, 903];
    let mut ids = Vec::new();
    for (i, (name, chat)) in ["ada", "bob", "cyd"].into_iter().zip(chats).enumerate() {
        let token = client(&shop, name).await;
        link_chat(&shop, &fake, &token, i as i64 + 1, chat).await;
        ids.push(me(&shop, &token).await["id"].clone());
    }
    shop.app.settle().await;
    let (status, group, _) = send(
        &shop.app,
        "POST",
        "/api/v1/groups",
        Some(&shop.admin),
        &[],
        Some(json!({"name": "All", "coach_id": shop.master, "capacity": 5, "member_ids": ids})),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    let admin = shop.admin.clone();
    let backing = shop.app.shutdown().await;

    *fake.hold.lock().unwrap() = 1;
    let child = ChildApp::start(backing).await;
    let (status, sent, _) = send(
        &child,
        "POST",
        "/api/v1/broadcasts",
        Some(&admin),
        &[],
        Some(json!({"audience": {"group_id": group["id"]}, "text": "New timetable from Monday."})),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    let child = killed_with_a_message_on_its_way(&fake, child).await;
    for chat in chats {
        fake.wait_for_chat_within(chat, 2, Duration::from_secs(90))
            .await;
        assert_eq!(
            fake.sent_to(chat)[1],
            "New timetable from Monday.",
            "chat {chat}"
        );
    }
    child.settle().await;
    assert!(
        fake.counts().values().all(|n| *n == 1),
        "nothing twice: {:?}",
        fake.counts()
    );
    assert_eq!(
        fake.held.lock().unwrap()[0]["text"],
        "New timetable from Monday."
    );
}

/// Sends a staff request and expects `expected`; the body back.
async fn staff_call(shop: &Shop, method: &str, path: &str, body: Value, expected: u16) -> Value {
    let (status, answer, _) = crate::shop::send(
        &shop.app,
        method,
        path,
        Some(&shop.admin),
        &[],
        (!body.is_null()).then_some(body),
    )
    .await;
    assert_eq!(status, expected, "{method} {path}: {answer}");
    answer
}

/// A training two days ahead with the shop's master; its id.
async fn training_ahead(shop: &Shop, capacity: u32) -> String {
    let start = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let training = staff_call(
        shop,
        "POST",
        "/api/v1/trainings",
        json!({"coach_id": shop.master, "start": start, "duration_minutes": 45, "capacity": capacity}),
        201,
    )
    .await;
    training["id"].as_str().unwrap().to_string()
}

async fn an_invitation_answered_with_its_buttons_then_the_link_reaches_exactly_those_who_accepted(
    mode: Mode,
) {
    let fake = FakeTelegram::default();
    let shop = notified_shop(mode, &fake).await;
    let chats = [811, 812, 813];
    let mut ids = Vec::new();
    for (i, (name, chat)) in ["ada", "bob", "cyd"].into_iter().zip(chats).enumerate() {
        let token = client(&shop, name).await;
        link_chat(&shop, &fake, &token, i as i64 + 1, chat).await;
        ids.push(me(&shop, &token).await["id"].clone());
    }
    shop.app.settle().await;
    let id = training_ahead(&shop, 2).await;
    let path = format!("/api/v1/trainings/{id}");
    staff_call(
        &shop,
        "POST",
        &format!("{path}/invitations"),
        json!({"client_ids": ids}),
        200,
    )
    .await;
    for chat in chats {
        fake.wait_for_chat(chat, 2).await;
    }
    let invitation = &fake.messages_to(811)[1];
    assert!(
        invitation["text"]
            .as_str()
            .unwrap()
            .starts_with("You are invited to a training with"),
        "{invitation}"
    );
    let buttons = &invitation["reply_markup"]["inline_keyboard"][0];
    assert_eq!(buttons[0]["callback_data"], format!("training:{id}:yes"));
    assert_eq!(buttons[1]["callback_data"], format!("training:{id}:no"));

    fake.press(10, 811, &format!("training:{id}:yes"));
    fake.press(11, 812, &format!("training:{id}:no"));
    fake.wait_for_chat(811, 3).await;
    fake.wait_for_chat(812, 3).await;
    let ada_reply = &fake.sent_to(811)[2];
    assert!(ada_reply.starts_with("See you there"), "{ada_reply}");
    assert!(!ada_reply.contains("link"), "no link yet: {ada_reply}");
    assert!(fake.sent_to(812)[2].starts_with("Noted"));
    assert_eq!(
        fake.callbacks.lock().unwrap().len(),
        2,
        "each press is answered"
    );
    shop.app.settle().await;
    let view = staff_call(&shop, "GET", &path, Value::Null, 200).await;
    let status_of = |who: &Value| {
        view["invitations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| &i["client_id"] == who)
            .map(|i| i["status"].clone())
    };
    assert_eq!(
        [status_of(&ids[0]), status_of(&ids[1]), status_of(&ids[2])],
        [
            Some(json!("accepted")),
            Some(json!("declined")),
            Some(json!("invited"))
        ]
    );

    let url = "https://meet.example.com/xyz";
    staff_call(
        &shop,
        "PUT",
        &format!("{path}/link"),
        json!({"url": url}),
        200,
    )
    .await;
    fake.wait_for_chat(811, 4).await;
    assert!(
        fake.sent_to(811)[3].ends_with(url),
        "{:?}",
        fake.sent_to(811)
    );
    shop.app.settle().await;
    assert_eq!(fake.sent_to(812).len(), 3, "declined: no link");
    assert_eq!(fake.sent_to(813).len(), 2, "not answered: no link");

    // Accepting after the link was set: the answer carries it.
    fake.press(12, 813, &format!("training:{id}:yes"));
    fake.wait_for_chat(813, 3).await;
    assert!(
        fake.sent_to(813)[2].contains(&format!("The link: {url}")),
        "{:?}",
        fake.sent_to(813)
    );
    // Two accepted fill it; a chat linked to nobody records nothing.
    fake.press(13, 812, &format!("training:{id}:yes"));
    fake.press(14, 899, &format!("training:{id}:yes"));
    fake.wait_for_chat(812, 4).await;
    fake.wait_for_chat(899, 1).await;
    assert_eq!(fake.sent_to(812)[3], "Sorry, this training is full.");
    assert!(fake.sent_to(899)[0].contains("not linked"));
    shop.app.settle().await;
    let view = staff_call(&shop, "GET", &path, Value::Null, 200).await;
    let accepted = view["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "accepted")
        .count();
    assert_eq!(accepted, 2, "{view}");
    assert!(
        fake.counts().values().all(|n| *n == 1),
        "nothing twice: {:?}",
        fake.counts()
    );
}
both_modes!(
    an_invitation_answered_with_its_buttons_then_the_link_reaches_exactly_those_who_accepted
);

async fn a_client_registers_through_the_bot_and_me_shows_their_subscription_and_trainings(
    mode: Mode,
) {
    let fake = FakeTelegram::default();
    let shop = notified_shop(mode, &fake).await;
    let chat = 950;
    let asked = fake.ask(1, chat, "/register").await;
    assert!(asked.contains("What is your full name?"), "{asked}");
    let asked = fake.ask(2, chat, "  Dana   Scully ").await;
    assert!(asked.starts_with("Thanks, Dana Scully."), "{asked}");
    let button = &fake.messages_to(chat)[1]["reply_markup"]["keyboard"][0][0];
    assert_eq!(button["request_contact"], true, "{button}");
    let refused = fake.ask(3, chat, "call me maybe").await;
    assert!(
        refused.starts_with("That is not a phone number"),
        "{refused}"
    );
    fake.share_contact(4, chat, "+15550000000", 951);
    fake.wait_for_chat(chat, 4).await;
    assert_eq!(fake.sent_to(chat)[3], "Please share your own contact.");
    fake.share_contact(5, chat, "15551234567", chat);
    fake.wait_for_chat(chat, 5).await;
    let welcome = &fake.messages_to(chat)[4];
    assert!(
        welcome["text"]
            .as_str()
            .unwrap()
            .starts_with("Welcome, Dana Scully!"),
        "{welcome}"
    );
    assert_eq!(welcome["reply_markup"]["remove_keyboard"], true);
    shop.app.settle().await;
    let id = annals::auth::user_id("tg950").to_string();
    let user = staff_call(
        &shop,
        "GET",
        &format!("/api/v1/users/{id}"),
        Value::Null,
        200,
    )
    .await;
    assert_eq!(
        (&user["full_name"], &user["roles"]),
        (&json!("Dana Scully"), &json!(["client"])),
        "{user}"
    );

    let not_linked = fake.ask(6, 960, "/me").await;
    assert!(not_linked.contains("not linked"), "{not_linked}");
    assert!(fake.ask(7, chat, "/me").await.contains("No subscription."));

    let plan = staff_call(
        &shop,
        "POST",
        "/api/v1/plans",
        json!({"name": "Month", "length_months": 1, "price": "30.00", "currency": "EUR", "freeze_days": 7}),
        201,
    )
    .await;
    let sub = staff_call(
        &shop,
        "POST",
        "/api/v1/subscriptions",
        json!({"client_id": id, "plan_id": plan["id"]}),
        201,
    )
    .await;
    let sub_path = format!("/api/v1/subscriptions/{}", sub["id"].as_str().unwrap());
    staff_call(
        &shop,
        "POST",
        &format!("{sub_path}/payments"),
        json!({"amount": "30.00", "currency": "EUR", "method": "cash"}),
        201,
    )
    .await;
    let training = training_ahead(&shop, 5).await;
    let before = fake.sent_to(chat).len();
    staff_call(
        &shop,
        "POST",
        &format!("/api/v1/trainings/{training}/invitations"),
        json!({"client_ids": [id]}),
        200,
    )
    .await;
    fake.wait_for_chat(chat, before + 1).await;
    shop.app.settle().await;
    let ends = staff_call(&shop, "GET", &sub_path, Value::Null, 200).await["ends_on"].clone();
    let card = fake.ask(8, chat, "/me").await;
    assert!(
        card.contains(&format!(
            "Month: active until {}, 7 freeze days left",
            ends.as_str().unwrap()
        )),
        "{card}"
    );
    assert!(
        card.contains("Next trainings:") && card.contains("(invited)"),
        "{card}"
    );

    let again = fake.ask(9, chat, "/register").await;
    assert!(
        again.contains("linked to the account of Dana Scully already"),
        "{again}"
    );
}
both_modes!(a_client_registers_through_the_bot_and_me_shows_their_subscription_and_trainings);

/// The process dies with an invitation on its way: the one that follows
/// sends it again, with its buttons (kept in the ledger), once.
#[tokio::test]
async fn an_invitation_cut_off_by_a_crash_is_sent_again_with_its_buttons() {
    let fake = FakeTelegram::default();
    let shop = notified_shop(Mode::Embedded, &fake).await;
    let token = client(&shop, "ada").await;
    link_chat(&shop, &fake, &token, 1, 821).await;
    let ada = me(&shop, &token).await["id"].clone();
    shop.app.settle().await;
    let training = training_ahead(&shop, 3).await;
    let admin = shop.admin.clone();
    let backing = shop.app.shutdown().await;

    *fake.hold.lock().unwrap() = 1;
    let child = ChildApp::start(backing).await;
    let (status, _, _) = crate::shop::send(
        &child,
        "POST",
        &format!("/api/v1/trainings/{training}/invitations"),
        Some(&admin),
        &[],
        Some(json!({"client_ids": [ada]})),
    )
    .await;
    assert_eq!(status, 200);
    let child = killed_with_a_message_on_its_way(&fake, child).await;
    fake.wait_for_chat_within(821, 2, Duration::from_secs(90))
        .await;
    let resent = &fake.messages_to(821)[1];
    assert_eq!(
        resent["reply_markup"],
        fake.held.lock().unwrap()[0]["reply_markup"],
        "the same buttons"
    );
    assert_eq!(
        resent["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
        format!("training:{training}:yes")
    );
    child.settle().await;
    assert!(
        fake.counts().values().all(|n| *n == 1),
        "nothing twice: {:?}",
        fake.counts()
    );
}

async fn a_new_lead_alerts_the_staff_with_its_campaign(mode: Mode) {
    let fake = FakeTelegram::default();
    let shop = notified_shop(mode, &fake).await;
    let campaign = staff_call(
        &shop,
        "POST",
        "/api/v1/campaigns",
        json!({"name": "Autumn search", "service_id": shop.service, "channel": "search",
            "budget": "500.00", "currency": "EUR", "starts_on": "2026-11-01", "ends_on": "2026-12-31"}),
        201,
    )
    .await;
    shop.app.settle().await;
    staff_call(
        &shop,
        "POST",
        "/api/v1/leads",
        json!({"full_name": "Ann Lee", "phone": "+447700900123", "campaign_id": campaign["id"]}),
        201,
    )
    .await;
    for chat in STAFF_CHATS {
        fake.wait_for_chat(chat, 1).await;
        let alert = &fake.sent_to(chat)[0];
        assert!(alert.starts_with("New lead\n"), "{alert}");
        assert!(alert.contains("Name: Ann Lee"), "{alert}");
        assert!(alert.contains("Campaign: Autumn search"), "{alert}");
    }
}
both_modes!(a_new_lead_alerts_the_staff_with_its_campaign);

async fn a_scheduled_telegram_message_reaches_the_customer_once_and_today_lists_it_as_due(
    mode: Mode,
) {
    let fake = FakeTelegram::default();
    let shop = notified_shop(mode, &fake).await;
    let token = client(&shop, "ada").await;
    link_chat(&shop, &fake, &token, 1, 871).await;
    let ada = me(&shop, &token).await["id"].clone();
    shop.app.settle().await;
    let customer = staff_call(
        &shop,
        "POST",
        "/api/v1/customers",
        json!({"name": "Ada"}),
        201,
    )
    .await;
    let customer_path = format!("/api/v1/customers/{}", customer["id"].as_str().unwrap());
    let at = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let body = json!({"customer_id": customer["id"], "channel": "telegram", "content": "x", "scheduled_at": at});
    staff_call(&shop, "POST", "/api/v1/scheduled-messages", body, 409).await;
    // Linked to her login later: Telegram messages reach her chat.
    staff_call(
        &shop,
        "POST",
        &format!("{customer_path}/user"),
        json!({"user_id": ada}),
        200,
    )
    .await;
    shop.app.settle().await;
    let page = staff_call(&shop, "GET", &customer_path, Value::Null, 200).await;
    assert_eq!(page["user_id"], ada);
    let at = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let message = staff_call(
        &shop,
        "POST",
        "/api/v1/scheduled-messages",
        json!({"customer_id": customer["id"], "channel": "telegram",
            "content": "Your order is ready", "scheduled_at": at}),
        201,
    )
    .await;
    fake.wait_for_chat(871, 2).await;
    assert_eq!(fake.sent_to(871)[1], "Your order is ready");
    let path = format!(
        "/api/v1/scheduled-messages/{}",
        message["id"].as_str().unwrap()
    );
    let started = Instant::now();
    loop {
        let view = staff_call(&shop, "GET", &path, Value::Null, 200).await;
        if view["status"] == "sent" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shop.app.settle().await;
    fake.say(10, 42, "/today");
    fake.wait_for_chat(42, 1).await;
    let today = &fake.sent_to(42)[0];
    assert!(today.contains("Reminders due: 1"), "{today}");
    assert!(
        today.contains("Ada (telegram, sent): Your order is ready"),
        "{today}"
    );
    assert!(fake.counts().values().all(|n| *n == 1), "nothing twice");
}
both_modes!(a_scheduled_telegram_message_reaches_the_customer_once_and_today_lists_it_as_due);

/// A client with a linked chat gets exactly one notice per state change of
/// their project (not for progress reports) and one per message from the
/// business; the staff get an alert for the request.
async fn a_linked_client_gets_one_notice_per_project_state_change_and_message(mode: Mode) {
    let fake = FakeTelegram::default();
    let shop = notified_shop(mode, &fake).await;
    let ada = client(&shop, "ada").await;
    let ada_id = me(&shop, &ada).await["id"].as_str().unwrap().to_string();
    link_chat(&shop, &fake, &ada, 1, 555).await;
    // The notifier finds her chat from her own events, not from the users
    // read model (which may lag behind it): with the read model's chat
    // gone, every notice still reaches her.
    shop.app.settle().await;
    let pool = shop.app.backing.pool().await;
    sqlx::query("UPDATE users SET telegram_chat_id = NULL WHERE id = $1")
        .bind(&ada_id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let linked = fake.sent_to(555).len();
    let (status, made) = crate::appointments::call(
        &shop.app,
        "POST",
        "/api/v1/projects",
        &ada,
        Some(
            json!({"title": "A shop site", "budget_hint": {"amount": "900.00", "currency": "EUR"}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap().to_string();
    for chat in STAFF_CHATS {
        fake.wait_for_chat(chat, 1).await;
        let alert = &fake.sent_to(chat)[0];
        assert!(alert.starts_with("New project request\n"), "{alert}");
        assert!(alert.contains("Title: A shop site"), "{alert}");
        assert!(alert.contains("Client: ada"), "{alert}");
    }
    let path = |command: &str| format!("/api/v1/projects/{id}/{command}");
    staff_call(
        &shop,
        "POST",
        &path("accept"),
        json!({"price": "1000.00", "currency": "EUR", "deadline": "2027-03-10"}),
        200,
    )
    .await;
    staff_call(&shop, "POST", &path("start"), Value::Null, 200).await;
    staff_call(
        &shop,
        "POST",
        &path("progress"),
        json!({"percent_done": 40, "note": "halfway"}),
        200,
    )
    .await;
    staff_call(&shop, "POST", &path("ready-for-delivery"), Value::Null, 200).await;
    let (status, _) =
        crate::appointments::call(&shop.app, "POST", &path("confirm-receipt"), &ada, None).await;
    assert_eq!(status, 200);
    staff_call(&shop, "POST", "/api/v1/messages",
        json!({"client_id": ada_id, "topic": "project", "subject": "Thanks", "body": "Enjoy the site", "project_id": id}),
        201).await;
    // Accepted, started, ready, delivered, and the message.
    fake.wait_for_chat(555, linked + 5).await;
    shop.app.settle().await;
    let notices = fake.sent_to(555)[linked..].to_vec();
    assert_eq!(notices.len(), 5, "{notices:?}");
    assert!(
        notices[0].contains("is now accepted and planned. Price 1000.00 EUR, deadline 2027-03-10."),
        "{notices:?}"
    );
    assert!(notices[1].contains("is now in progress"), "{notices:?}");
    assert!(notices[2].contains("ready for delivery"), "{notices:?}");
    assert!(notices[3].contains("is now delivered"), "{notices:?}");
    assert!(
        notices[4].starts_with("New message: Thanks\nEnjoy the site"),
        "{notices:?}"
    );
    // Her customer page lists the project.
    let customer = staff_call(
        &shop,
        "POST",
        "/api/v1/customers",
        json!({"name": "Ada", "user_id": ada_id}),
        201,
    )
    .await;
    let page = staff_call(
        &shop,
        "GET",
        &format!(
            "/api/v1/customers/{}?min_position={}",
            customer["id"].as_str().unwrap(),
            customer["position"]
        ),
        Value::Null,
        200,
    )
    .await;
    assert_eq!(page["projects"][0]["title"], "A shop site", "{page}");
    assert_eq!(page["projects"][0]["state"], "delivered");
}
both_modes!(a_linked_client_gets_one_notice_per_project_state_change_and_message);
