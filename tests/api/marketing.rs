//! Marketing over HTTP in both modes: campaigns, leads with duplicate
//! detection, conversion with a contract and its document, the file
//! storage's limits and permissions, and the campaign statistics as of a
//! date and as known at an instant.

use serde_json::{json, Value};

use crate::appointments::{login, user};
use crate::both_modes;
use crate::shop::send;
use crate::support::{Api, Mode, TestApp};

struct Office {
    app: TestApp,
    admin: String,
    manager: String,
    operator: String,
    operator_id: String,
    marketer: String,
    service: String,
}

async fn office(mode: Mode) -> Office {
    let app = crate::support::spawn_app(mode).await;
    user(&app, "boss", "admin");
    user(&app, "mara", "manager");
    let operator_id = user(&app, "otto", "operator");
    user(&app, "mike", "marketer");
    app.settle().await;
    let admin = login(&app, "boss").await;
    let (status, category, _) = send(
        &app,
        "POST",
        "/api/v1/service-categories",
        Some(&admin),
        &[],
        Some(json!({"name": "Web"})),
    )
    .await;
    assert_eq!(status, 201, "{category}");
    let marketer = login(&app, "mike").await;
    let (status, service, _) = send(
        &app,
        "POST",
        "/api/v1/services",
        Some(&marketer),
        &[],
        Some(json!({"name": "Website", "description": "A small business site",
            "category_id": category["id"], "duration_minutes": 60, "price": "900.00", "currency": "EUR"})),
    )
    .await;
    assert_eq!(status, 201, "a marketer manages services: {service}");
    Office {
        manager: login(&app, "mara").await,
        operator: login(&app, "otto").await,
        service: service["id"].as_str().unwrap().to_string(),
        app,
        admin,
        operator_id,
        marketer,
    }
}

/// Uploads a file as `token`: the status and the answer.
pub(crate) async fn upload(
    app: &TestApp,
    token: &str,
    name: &str,
    mime: &str,
    bytes: Vec<u8>,
) -> (u16, Value) {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str(mime)
        .unwrap();
    let form = reqwest::multipart::Form::new().part("file", part);
    let response = app
        .http()
        .post(app.url("/api/v1/files"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

impl Office {
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

    async fn read(&self, token: &str, path: &str) -> Value {
        self.app.settle().await;
        self.ok(token, "GET", path, Value::Null).await
    }

    async fn campaign(&self, name: &str, channel: &str) -> String {
        let planned = self
            .ok(
                &self.marketer,
                "POST",
                "/api/v1/campaigns",
                json!({"name": name, "service_id": self.service, "channel": channel,
                    "budget": "1500.00", "currency": "EUR", "starts_on": "2026-11-01", "ends_on": "2026-12-31"}),
            )
            .await;
        planned["id"].as_str().unwrap().to_string()
    }

    async fn spend(&self, campaign: &str, amount: &str, on: &str) {
        self.ok(
            &self.marketer,
            "POST",
            &format!("/api/v1/campaigns/{campaign}/spend"),
            json!({"amount": amount, "on": on}),
        )
        .await;
    }

    async fn lead(&self, name: &str, phone: &str, campaign: &str) -> String {
        let created = self
            .ok(
                &self.operator,
                "POST",
                "/api/v1/leads",
                json!({"full_name": name, "phone": phone, "campaign_id": campaign}),
            )
            .await;
        created["id"].as_str().unwrap().to_string()
    }

    async fn upload(&self, token: &str, name: &str, mime: &str, bytes: Vec<u8>) -> (u16, Value) {
        upload(&self.app, token, name, mime, bytes).await
    }

    async fn document(&self) -> String {
        let (status, file) = self
            .upload(
                &self.manager,
                "contract.pdf",
                "application/pdf",
                format!("%PDF-1.7 contract {}", uuid::Uuid::now_v7()).into_bytes(),
            )
            .await;
        assert_eq!(status, 201, "{file}");
        file["file_id"].as_str().unwrap().to_string()
    }

    async fn convert(&self, lead: &str, amount: &str, signed_on: &str) -> (u16, Value) {
        let file = self.document().await;
        self.call(
            &self.manager,
            "POST",
            &format!("/api/v1/leads/{lead}/convert"),
            json!({"contract": {"name": "Website, year one", "service_id": self.service,
                "file_id": file, "signed_on": signed_on, "valid_from": signed_on,
                "valid_to": "2027-11-30", "amount": amount, "currency": "EUR"}}),
        )
        .await
    }

    async fn stats(&self, token: &str, query: &str) -> Value {
        self.read(token, &format!("/api/v1/stats/campaigns?{query}"))
            .await
    }
}

fn figures<'a>(report: &'a Value, campaign: &str) -> &'a Value {
    report["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["campaign_id"] == campaign)
        .unwrap_or_else(|| panic!("{campaign} not in {report}"))
}

/// The instant now, once the clock has moved past it (so every event
/// recorded after this call is recorded later).
async fn instant() -> String {
    let at = chrono::Utc::now();
    while chrono::Utc::now() - at < chrono::Duration::milliseconds(3) {
        tokio::task::yield_now().await;
    }
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn campaign_statistics_match_a_hand_computed_scenario_as_of_a_date_and_as_known_at_an_instant(
    mode: Mode,
) {
    let o = office(mode).await;
    let a = o.campaign("Search, autumn", "search").await;
    let b = o.campaign("Social, autumn", "social").await;
    o.spend(&a, "300.00", "2026-11-05").await;
    o.spend(&a, "200.00", "2026-11-20").await;
    o.spend(&b, "100.00", "2026-11-10").await;
    let mut a_leads = Vec::new();
    for i in 0..8 {
        a_leads.push(
            o.lead(&format!("A lead {i}"), &format!("+4477009001{i:02}"), &a)
                .await,
        );
    }
    let mut b_leads = Vec::new();
    for i in 0..4 {
        b_leads.push(
            o.lead(&format!("B lead {i}"), &format!("+4477009002{i:02}"), &b)
                .await,
        );
    }
    let before_changes = instant().await;

    // Work on the leads: five started, two of A lost (one reopened).
    for lead in a_leads[..4].iter().chain(&b_leads[..1]) {
        o.ok(
            &o.operator,
            "POST",
            &format!("/api/v1/leads/{lead}/start"),
            Value::Null,
        )
        .await;
    }
    for lead in &a_leads[4..6] {
        o.ok(
            &o.operator,
            "POST",
            &format!("/api/v1/leads/{lead}/lose"),
            json!({"reason": "no budget"}),
        )
        .await;
    }
    o.ok(
        &o.operator,
        "POST",
        &format!("/api/v1/leads/{}/reopen", a_leads[5]),
        Value::Null,
    )
    .await;
    // Three conversions: two of A (one signed in November), one of B.
    for (lead, amount, signed) in [
        (&a_leads[0], "900.00", "2026-11-25"),
        (&a_leads[1], "600.00", "2026-11-30"),
        (&b_leads[0], "1200.00", "2026-11-30"),
    ] {
        let (status, converted) = o.convert(lead, amount, signed).await;
        assert_eq!(status, 201, "{converted}");
    }
    // A correction of A's November spend, recorded now, dated then.
    o.spend(&a, "-50.00", "2026-11-05").await;
    // One budget correction.
    o.ok(
        &o.marketer,
        "PUT",
        &format!("/api/v1/campaigns/{a}/budget"),
        json!({"budget": "1200.00", "currency": "EUR", "reason": "cut"}),
    )
    .await;

    let today = o.stats(&o.marketer, "").await;
    let fa = figures(&today, &a);
    assert_eq!(
        (
            &fa["leads_attracted"],
            &fa["leads_converted"],
            &fa["revenue"],
            &fa["spend"],
            &fa["revenue_per_spend"]
        ),
        (
            &json!(8),
            &json!(2),
            &json!("1500.00"),
            &json!("450.00"),
            &json!("3.33")
        ),
        "{fa}"
    );
    assert_eq!(fa["conversion_rate"], 0.25);
    assert_eq!(
        fa["funnel"],
        json!({"new": 8, "in_progress": 5, "converted": 2, "lost": 1}),
        "four started, the reopened one counts as started, one lost stays lost"
    );
    assert_eq!(
        fa["time_new"]["leads"], 6,
        "four started and two lost left `new`; two were never touched: {fa}"
    );
    assert_eq!(
        fa["time_in_progress"]["leads"], 2,
        "of those started, two were converted: {fa}"
    );
    let fb = figures(&today, &b);
    assert_eq!(
        (
            &fb["leads_attracted"],
            &fb["leads_converted"],
            &fb["revenue"],
            &fb["spend"],
            &fb["revenue_per_spend"]
        ),
        (
            &json!(4),
            &json!(1),
            &json!("1200.00"),
            &json!("100.00"),
            &json!("12.00")
        ),
        "{fb}"
    );
    assert_eq!(
        o.read(&o.marketer, &format!("/api/v1/campaigns/{a}")).await["budget"],
        "1200.00"
    );

    // As of the 15th of November: spend dated by then, with the correction
    // known today applied; the leads came later.
    let mid = o.stats(&o.marketer, "as_of=2026-11-15").await;
    let fa = figures(&mid, &a);
    assert_eq!(
        (&fa["leads_attracted"], &fa["spend"], &fa["revenue"]),
        (&json!(0), &json!("250.00"), &json!("0")),
        "{fa}"
    );
    // As known before the changes: the spend before the correction, no
    // conversion yet, nothing lost.
    let known = o
        .stats(&o.marketer, &format!("known_at={before_changes}"))
        .await;
    let fa = figures(&known, &a);
    assert_eq!(
        (
            &fa["leads_attracted"],
            &fa["leads_converted"],
            &fa["spend"],
            &fa["funnel"]["lost"]
        ),
        (&json!(8), &json!(0), &json!("500.00"), &json!(0)),
        "{fa}"
    );
    // Both: as of the 15th as known then (the correction not yet made).
    let both = o
        .stats(
            &o.marketer,
            &format!("as_of=2026-11-15&known_at={before_changes}"),
        )
        .await;
    assert_eq!(figures(&both, &a)["spend"], "300.00");

    // G6: rebuilt from the log, the read model has the rows it had live.
    let pool = o.app.backing.pool().await;
    let tables = [
        "campaigns",
        "leads",
        "contracts",
        "customers",
        "files",
        "campaign_facts",
    ];
    let mut live = Vec::new();
    for table in tables {
        live.push(crate::consumers::dump(&pool, table).await);
    }
    crate::support::assert_rebuilds_identical(&o.app.backing);
    let output = crate::support::run_cli(&o.app.backing, &["replay", "--consumer", "marketing"]);
    assert!(output.contains("replayed"), "{output}");
    for (table, before) in tables.iter().zip(&live) {
        assert_eq!(
            &crate::consumers::dump(&pool, table).await,
            before,
            "{table} after a rebuild"
        );
    }
    assert_eq!(
        o.stats(&o.marketer, "").await["campaigns"],
        today["campaigns"]
    );

    // Every marketing role reads the statistics; a client may not.
    for token in [&o.admin, &o.manager, &o.operator, &o.marketer] {
        assert_eq!(
            o.call(token, "GET", "/api/v1/stats/campaigns", Value::Null)
                .await
                .0,
            200
        );
    }
    user(&o.app, "cleo", "client");
    let client = login(&o.app, "cleo").await;
    assert_eq!(
        o.call(&client, "GET", "/api/v1/stats/campaigns", Value::Null)
            .await
            .0,
        403
    );
}
both_modes!(
    campaign_statistics_match_a_hand_computed_scenario_as_of_a_date_and_as_known_at_an_instant
);

async fn a_lead_converts_once_into_a_customer_with_its_contract_and_keeps_its_history(mode: Mode) {
    let o = office(mode).await;
    let campaign = o.campaign("Referrals", "referral").await;
    let lead = o.lead("Ann Lee", "+447700900123", &campaign).await;
    o.ok(
        &o.operator,
        "POST",
        &format!("/api/v1/leads/{lead}/notes"),
        json!({"text": "Called; wants a quote", "kind": "call"}),
    )
    .await;
    o.ok(
        &o.operator,
        "POST",
        &format!("/api/v1/leads/{lead}/assign"),
        json!({"operator_id": o.operator_id}),
    )
    .await;
    let (status, converted) = o.convert(&lead, "900.00", "2026-11-28").await;
    assert_eq!(status, 201, "{converted}");
    let (customer, contract) = (
        converted["customer_id"].as_str().unwrap().to_string(),
        converted["contract_id"].as_str().unwrap().to_string(),
    );
    let (status, again) = o.convert(&lead, "900.00", "2026-11-28").await;
    assert_eq!(
        (status, &again["type"]),
        (409, &json!("/problems/already-converted")),
        "{again}"
    );

    // The lineage, readable from each end.
    let view = o.read(&o.manager, &format!("/api/v1/leads/{lead}")).await;
    assert_eq!(
        (&view["status"], &view["customer_id"], &view["contract_id"]),
        (&json!("converted"), &json!(customer), &json!(contract))
    );
    assert_eq!(view["notes"][0]["kind"], "call");
    assert_eq!(view["assigned_to"], o.operator_id.as_str());
    let made = o
        .read(&o.manager, &format!("/api/v1/customers/{customer}"))
        .await;
    assert_eq!(
        (&made["name"], &made["lead_id"], &made["contracts"][0]["id"]),
        (&json!("Ann Lee"), &json!(lead), &json!(contract)),
        "{made}"
    );
    let signed = o
        .read(&o.manager, &format!("/api/v1/contracts/{contract}"))
        .await;
    assert_eq!(
        (&signed["lead_id"], &signed["customer_id"]),
        (&json!(lead), &json!(customer))
    );
    let history = o
        .read(&o.operator, &format!("/api/v1/leads/{lead}/history"))
        .await;
    let types: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "LeadCreated",
            "LeadNoteAdded",
            "LeadAssigned",
            "LeadConverted"
        ]
    );

    // Who sees what: the operator not the contract nor its document; the
    // manager both; a marketer creates no leads.
    assert_eq!(
        o.call(
            &o.operator,
            "GET",
            &format!("/api/v1/contracts/{contract}"),
            Value::Null
        )
        .await
        .0,
        403
    );
    let document = signed["file_id"].as_str().unwrap();
    let path = o.app.url(&format!("/api/v1/files/{document}"));
    let download = o
        .app
        .http()
        .get(&path)
        .bearer_auth(&o.manager)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(
        download.headers()["x-annals-content-type"],
        "application/pdf"
    );
    assert_eq!(
        download.headers()["content-disposition"],
        "attachment; filename=\"contract.pdf\""
    );
    assert!(download
        .bytes()
        .await
        .unwrap()
        .starts_with(b"%PDF-1.7 contract"));
    let refused = o
        .app
        .http()
        .get(&path)
        .bearer_auth(&o.operator)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let (status, _) = o
        .call(
            &o.marketer,
            "POST",
            "/api/v1/leads",
            json!({"full_name": "X", "phone": "+447700900999"}),
        )
        .await;
    assert_eq!(status, 403);
}
both_modes!(a_lead_converts_once_into_a_customer_with_its_contract_and_keeps_its_history);

async fn a_second_open_lead_with_the_same_phone_is_refused_naming_the_first_unless_forced(
    mode: Mode,
) {
    let o = office(mode).await;
    // Twelve at once with one phone: one is created, the others name it.
    let attempts = (0..12).map(|i| {
        let o = &o;
        async move {
            o.call(
                &o.operator,
                "POST",
                "/api/v1/leads",
                json!({"full_name": format!("Caller {i}"), "phone": "+447700900500"}),
            )
            .await
        }
    });
    let answers = futures::future::join_all(attempts).await;
    let created: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    let first = created[0]["id"].as_str().unwrap();
    for (status, body) in answers.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*status, 409, "{body}");
        assert_eq!(body["type"], "/problems/duplicate-lead");
        assert_eq!(body["existing"]["id"], first, "{body}");
    }
    // The same e-mail in another case is the same e-mail.
    let (status, _) = o
        .call(
            &o.operator,
            "POST",
            "/api/v1/leads",
            json!({"full_name": "Dee", "email": "Dee@Example.com"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, dup) = o
        .call(
            &o.operator,
            "POST",
            "/api/v1/leads",
            json!({"full_name": "Dee again", "email": "dee@example.com"}),
        )
        .await;
    assert_eq!(status, 409, "{dup}");
    assert_eq!(dup["existing"]["name"], "Dee");
    // Forced, it is created; once the first is lost the phone is free.
    let (status, _) = o
        .call(
            &o.operator,
            "POST",
            "/api/v1/leads",
            json!({"full_name": "Caller again", "phone": "+447700900500", "force": true}),
        )
        .await;
    assert_eq!(status, 201);
    o.ok(
        &o.operator,
        "POST",
        &format!("/api/v1/leads/{first}/lose"),
        json!({"reason": "wrong number"}),
    )
    .await;
    let (status, body) = o
        .call(
            &o.operator,
            "POST",
            "/api/v1/leads",
            json!({"full_name": "New caller", "phone": "+447700900500"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    o.app.settle().await;
    let listed = o.read(&o.manager, "/api/v1/leads?q=caller").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 3, "{listed}");
}
both_modes!(a_second_open_lead_with_the_same_phone_is_refused_naming_the_first_unless_forced);

async fn uploads_over_the_limit_or_of_a_refused_type_store_nothing(mode: Mode) {
    let o = office(mode).await;
    let files_dir = o.app.backing.data_dir().join("files");
    let stored = || -> usize { crate::customers::walk(&files_dir) };
    let before = stored();
    let mut big = b"%PDF-1.7 ".to_vec();
    big.resize(10 * 1024 * 1024 + 1, b'x');
    let (status, body) = o
        .upload(&o.manager, "big.pdf", "application/pdf", big)
        .await;
    assert_eq!(
        (status, &body["type"]),
        (413, &json!("/problems/too-large")),
        "{body}"
    );
    let (status, body) = o
        .upload(
            &o.manager,
            "tool.exe",
            "application/x-msdownload",
            b"MZ\x90\x00".to_vec(),
        )
        .await;
    assert_eq!(status, 415, "{body}");
    let (status, body) = o
        .upload(
            &o.manager,
            "fake.pdf",
            "application/pdf",
            b"MZ\x90\x00 not a pdf".to_vec(),
        )
        .await;
    assert_eq!(status, 415, "a type must be true: {body}");
    let part = reqwest::multipart::Part::bytes(b"%PDF-1.7 x".to_vec())
        .file_name("c.pdf")
        .mime_str("application/pdf")
        .unwrap();
    let anonymous = o
        .app
        .http()
        .post(o.app.url("/api/v1/files"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401, "uploads are for those signed in");
    assert_eq!(stored(), before, "nothing stored");
    o.app.settle().await;
    let pool = o.app.backing.pool().await;
    let files: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_type = 'FileUploaded'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(files, 0);
    // Just under the limit is taken, and stored once however often it comes.
    let mut fits = b"%PDF-1.7 ".to_vec();
    fits.resize(10 * 1024 * 1024, b'y');
    for _ in 0..2 {
        let (status, body) = o
            .upload(&o.manager, "fits.pdf", "application/pdf", fits.clone())
            .await;
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(stored(), before + 1, "the same content is kept once");
}
both_modes!(uploads_over_the_limit_or_of_a_refused_type_store_nothing);

/// Two `annals` processes on one PostgreSQL, each taking half of twelve
/// leads with one e-mail at once: one lead, eleven refusals naming it.
#[tokio::test]
async fn two_processes_creating_leads_with_one_email_create_one() {
    use crate::support::ChildApp;
    let o = office(Mode::Server).await;
    let one = ChildApp::start(o.app.backing.clone()).await;
    let two = ChildApp::start(o.app.backing.clone()).await;
    let (one, two) = (&one, &two);
    let attempts = (0..12).map(|i| {
        let token = o.operator.clone();
        async move {
            let body = json!({"full_name": format!("Caller {i}"), "email": "same@example.com"});
            if i % 2 == 0 {
                send(one, "POST", "/api/v1/leads", Some(&token), &[], Some(body)).await
            } else {
                send(two, "POST", "/api/v1/leads", Some(&token), &[], Some(body)).await
            }
        }
    });
    let answers = futures::future::join_all(attempts).await;
    let created: Vec<&Value> = answers
        .iter()
        .filter(|(s, _, _)| *s == 201)
        .map(|(_, b, _)| b)
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    for (status, body, _) in answers.iter().filter(|(s, _, _)| *s != 201) {
        assert_eq!(
            (*status, &body["existing"]["id"]),
            (409, &created[0]["id"]),
            "{body}"
        );
    }
    o.app.settle().await;
    let pool = o.app.backing.pool().await;
    let leads: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_type = 'LeadCreated'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(leads, 1);
}

/// A lead that changed its phone and was then lost holds neither phone:
/// both are free for a new lead.
async fn a_lead_lost_after_changing_its_phone_frees_both_phones(mode: Mode) {
    let o = office(mode).await;
    let campaign = o.campaign("Walk-ins", "referral").await;
    let lead = o.lead("Bo Grant", "+447700900201", &campaign).await;
    o.ok(
        &o.operator,
        "PUT",
        &format!("/api/v1/leads/{lead}"),
        json!({"full_name": "Bo Grant", "phone": "+447700900202"}),
    )
    .await;
    let (status, duplicate) = o
        .call(
            &o.operator,
            "POST",
            "/api/v1/leads",
            json!({"full_name": "Cy Grant", "phone": "+447700900202"}),
        )
        .await;
    assert_eq!(status, 409, "the new phone is held: {duplicate}");
    o.ok(
        &o.operator,
        "POST",
        &format!("/api/v1/leads/{lead}/lose"),
        json!({"reason": "no budget"}),
    )
    .await;
    for phone in ["+447700900201", "+447700900202"] {
        let (status, created) = o
            .call(
                &o.operator,
                "POST",
                "/api/v1/leads",
                json!({"full_name": "Cy Grant", "phone": phone}),
            )
            .await;
        assert_eq!(status, 201, "{phone} is free again: {created}");
    }
}
both_modes!(a_lead_lost_after_changing_its_phone_frees_both_phones);
