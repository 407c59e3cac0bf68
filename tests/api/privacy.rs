//! Erasure of personal data by crypto-shredding: a person's fields are
//! stored encrypted with their own key; destroying the key erases them
//! from every answer, read model, rebuild and history, while the hash chain
//! (over the ciphertext) still verifies.

use serde_json::{json, Value};
use sqlx::Row;

use crate::appointments::{book, call, login, shop};
use crate::both_modes;
use crate::support::{run_cli, run_cli_status, Api, Mode};

const NAME: &str = "Zenobia Quillfeather";
const EMAIL: &str = "zq@quill.example.org";
const PHONE: &str = "+441234567891";
/// The phone as a lead's contact key holds it.
const PHONE_DIGITS: &str = "441234567891";
const ADDRESS: &str = "7 Quill Lane, Inkwell";
const NOTE: &str = "Zenobia asked about the quill discount";

/// Every row of every table as text, with the table's name.
async fn every_row(pool: &sqlx::AnyPool, mode: Mode) -> Vec<(String, String)> {
    let tables: Vec<String> = match mode {
        Mode::Server => sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name NOT LIKE '_sqlx%'",
        ),
        Mode::Embedded => sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name NOT LIKE '_sqlx%'",
        ),
    }
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(tables.len() > 30, "{tables:?}");
    let mut rows = Vec::new();
    for table in tables {
        let sql = match mode {
            Mode::Server => format!("SELECT row_to_json(t)::text FROM {table} t"),
            Mode::Embedded => {
                let columns: Vec<String> =
                    sqlx::query(&format!("SELECT name FROM pragma_table_info('{table}')"))
                        .fetch_all(pool)
                        .await
                        .unwrap()
                        .iter()
                        .map(|r| r.get::<String, _>(0))
                        .collect();
                let cells: Vec<String> = columns
                    .iter()
                    .map(|c| format!("CAST(\"{c}\" AS TEXT)"))
                    .collect();
                format!("SELECT json_array({}) FROM \"{table}\"", cells.join(", "))
            }
        };
        for row in sqlx::query_scalar::<_, String>(&sql)
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"))
        {
            rows.push((table.clone(), row));
        }
    }
    rows
}

/// Zenobia signs up with her name, e-mail and phone; her id.
async fn register(shop: &crate::appointments::Shop) -> String {
    let response = shop
        .app
        .post(
            "/api/v1/auth/register",
            json!({"username": "zenobia", "password": "correct horse battery", "full_name": NAME, "email": EMAIL, "phone": PHONE}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let registered: Value = response.json().await.unwrap();
    registered["id"].as_str().unwrap().to_string()
}

fn mentioning<'r>(rows: &'r [(String, String)], text: &str) -> Vec<&'r (String, String)> {
    rows.iter().filter(|(_, row)| row.contains(text)).collect()
}

/// After an erasure: no row of any table holds any of `texts`, every read
/// model equals its rebuild, and the hash chain still verifies.
async fn assert_forgotten(
    shop: &crate::appointments::Shop,
    pool: &sqlx::AnyPool,
    mode: Mode,
    texts: &[&str],
) {
    let rows = every_row(pool, mode).await;
    for text in texts {
        assert_eq!(
            mentioning(&rows, text),
            Vec::<&(String, String)>::new(),
            "{text}"
        );
    }
    crate::support::assert_rebuilds_identical(&shop.app.backing);
    let (ok, out, err) = run_cli_status(&shop.app.backing, &["audit", "verify"]);
    assert!(ok, "{out}\n{err}");
    pool.close().await;
}

async fn an_erased_user_leaves_no_personal_data_and_the_chain_still_verifies(mode: Mode) {
    let shop = shop(mode).await;
    let id = register(&shop).await;
    let zenobia = login(&shop.app, "zenobia").await;
    let (status, booked) = book(&shop, &zenobia, "09:00").await;
    assert_eq!(status, 201, "{booked}");
    shop.app.settle().await;

    // At rest her fields are ciphertext; the API shows them decrypted.
    let pool = shop.app.backing.pool().await;
    let rows = every_row(&pool, mode).await;
    let events: Vec<_> = rows.iter().filter(|(t, _)| t == "events").collect();
    assert!(events.len() > 5);
    for text in [NAME, EMAIL, PHONE] {
        assert!(
            !events.iter().any(|(_, row)| row.contains(text)),
            "{text} in the events table"
        );
    }
    assert!(
        events.iter().any(|(_, row)| row.contains("pii2:")),
        "encrypted fields"
    );
    let user_path = format!("/api/v1/users/{id}");
    let (status, user) = call(&shop.app, "GET", &user_path, &shop.admin, None).await;
    assert_eq!(status, 200);
    assert_eq!(user["full_name"], NAME, "{user}");
    assert!(
        !mentioning(&rows, NAME).is_empty(),
        "the read models show her"
    );

    // An auditor may not erase; an admin may.
    let erase = format!("/api/v1/users/{id}/erase");
    let (status, refused) = call(&shop.app, "POST", &erase, &zenobia, None).await;
    assert_eq!(status, 403, "{refused}");
    let (status, erased) = call(&shop.app, "POST", &erase, &shop.admin, None).await;
    assert_eq!(status, 200, "{erased}");
    shop.app.settle().await;

    let (_, user) = call(&shop.app, "GET", &user_path, &shop.admin, None).await;
    assert_eq!(user["full_name"], "[erased]", "{user}");
    let (_, appointments) = call(&shop.app, "GET", "/api/v1/appointments", &shop.admin, None).await;
    let history_path = format!("/api/v1/audit/aggregates/user/{id}/history");
    let (status, history) = call(&shop.app, "GET", &history_path, &shop.admin, None).await;
    assert_eq!(status, 200, "{history}");
    assert!(history.to_string().contains("[erased]"), "{history}");
    for answer in [&user, &appointments, &history] {
        for text in [NAME, EMAIL, PHONE] {
            assert!(!answer.to_string().contains(text), "{text} in {answer}");
        }
    }
    let rows = every_row(&pool, mode).await;
    for text in [NAME, EMAIL, PHONE] {
        assert_eq!(
            mentioning(&rows, text),
            Vec::<&(String, String)>::new(),
            "{text}"
        );
    }

    // Rebuilt from the log, the read models know nothing of her either,
    // and they equal the live ones.
    for consumer in ["users", "appointments", "masters", "statistics"] {
        run_cli(&shop.app.backing, &["replay", "--consumer", consumer]);
    }
    let rows = every_row(&pool, mode).await;
    for text in [NAME, EMAIL, PHONE] {
        assert_eq!(
            mentioning(&rows, text),
            Vec::<&(String, String)>::new(),
            "{text} after a rebuild"
        );
    }
    assert!(!mentioning(&rows, "[erased]").is_empty());
    crate::support::assert_rebuilds_identical(&shop.app.backing);

    // The proof still holds: the chain covers the ciphertext, not the key.
    shop.app.settle().await;
    let (ok, out, err) = run_cli_status(&shop.app.backing, &["audit", "verify"]);
    assert!(ok, "{out}\n{err}");
    pool.close().await;
}
both_modes!(an_erased_user_leaves_no_personal_data_and_the_chain_still_verifies);

/// `annals privacy erase --user NAME` does the same from the command line.
async fn the_command_line_erases_by_username(mode: Mode) {
    let shop = shop(mode).await;
    let id = register(&shop).await;
    let out = run_cli(
        &shop.app.backing,
        &["privacy", "erase", "--user", "zenobia"],
    );
    assert!(
        out.contains(&format!("erased the personal data of users [{id}]")),
        "{out}"
    );
    shop.app.settle().await;
    let (_, user) = call(
        &shop.app,
        "GET",
        &format!("/api/v1/users/{id}"),
        &shop.admin,
        None,
    )
    .await;
    assert_eq!(user["full_name"], "[erased]", "{user}");
    let (ok, _, err) = run_cli_status(&shop.app.backing, &["privacy", "erase", "--user", "nobody"]);
    assert!(!ok && err.contains("not-found"), "{err}");
}
both_modes!(the_command_line_erases_by_username);

/// A lead for Zenobia, with a note, converted into a customer that is then
/// linked to her login: the lead's id and the customer's.
async fn a_lead_converted_and_linked(
    shop: &crate::appointments::Shop,
    user: &str,
) -> (String, String) {
    let admin = &shop.admin;
    let (status, lead) = call(
        &shop.app,
        "POST",
        "/api/v1/leads",
        admin,
        Some(json!({"full_name": NAME, "phone": PHONE, "email": EMAIL})),
    )
    .await;
    assert_eq!(status, 201, "{lead}");
    let lead = lead["id"].as_str().unwrap().to_string();
    let (status, noted) = call(
        &shop.app,
        "POST",
        &format!("/api/v1/leads/{lead}/notes"),
        admin,
        Some(json!({"text": NOTE, "kind": "call"})),
    )
    .await;
    assert_eq!(status, 201, "{noted}");
    let (status, file) = crate::marketing::upload(
        &shop.app,
        admin,
        "contract.pdf",
        "application/pdf",
        b"%PDF-1.7 a contract".to_vec(),
    )
    .await;
    assert_eq!(status, 201, "{file}");
    let (status, converted) = call(
        &shop.app,
        "POST",
        &format!("/api/v1/leads/{lead}/convert"),
        admin,
        Some(
            json!({"contract": {"name": "Quills, year one", "service_id": shop.service,
            "file_id": file["file_id"], "signed_on": "2026-11-28", "valid_from": "2026-11-28",
            "valid_to": "2027-11-30", "amount": "900.00", "currency": "EUR"}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{converted}");
    let customer = converted["customer_id"].as_str().unwrap().to_string();
    let (status, updated) = call(
        &shop.app,
        "PUT",
        &format!("/api/v1/customers/{customer}"),
        admin,
        Some(json!({"name": NAME, "email": EMAIL, "phone": PHONE, "address": ADDRESS, "notes": NOTE})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    let (status, linked) = call(
        &shop.app,
        "POST",
        &format!("/api/v1/customers/{customer}/user"),
        admin,
        Some(json!({"user_id": user})),
    )
    .await;
    assert_eq!(status, 200, "{linked}");
    (lead, customer)
}

const EVERYTHING: [&str; 6] = [NAME, EMAIL, PHONE, PHONE_DIGITS, ADDRESS, NOTE];

async fn ok(
    shop: &crate::appointments::Shop,
    token: &str,
    method: &str,
    path: &str,
    body: Value,
) -> Value {
    let (status, answer) = call(&shop.app, method, path, token, Some(body)).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
    answer
}

/// A product at `price` EUR (in a category of its own).
async fn a_quill(shop: &crate::appointments::Shop, price: &str) -> Value {
    let admin = &shop.admin;
    let category = ok(
        shop,
        admin,
        "POST",
        "/api/v1/product-categories",
        json!({"name": "Quills"}),
    )
    .await;
    let body = json!({"name": "Goose quill", "sku": "Q-1", "category_id": category["id"], "price": price,
        "currency": "EUR", "track_stock": false, "universal": true});
    ok(shop, admin, "POST", "/api/v1/products", body).await
}

/// Zenobia's checkout: her name, contact details and address.
fn her_checkout() -> Value {
    json!({"customer_name": NAME, "phone": PHONE, "email": EMAIL,
        "shipping": {"address_lines": [ADDRESS], "city": "Inkwell", "postal_code": "IN1 1QQ", "country": "Quillshire"}})
}

/// Pays the order in 100 parts of `part` EUR: a stream this long keeps a
/// snapshot, which holds the state as loaded — her data decrypted.
async fn paid_in_100_parts(shop: &crate::appointments::Shop, order: &str, part: &str) {
    let payments = format!("/api/v1/orders/{order}/payments");
    for _ in 0..100 {
        let body = json!({"amount": part, "currency": "EUR", "method": "card"});
        ok(shop, &shop.admin, "POST", &payments, body).await;
    }
    let pool = shop.app.backing.pool().await;
    let snapshots: Vec<String> =
        sqlx::query_scalar("SELECT state FROM aggregate_snapshots WHERE aggregate_type = 'order'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(snapshots.iter().any(|s| s.contains(NAME)), "{snapshots:?}");
    pool.close().await;
}

/// Zenobia, signed in, orders with delivery to her address, books with a
/// note, asks for a project, gives feedback and applies as a dealer; the
/// staff writes to her and schedules a message to her customer record.
async fn her_data_everywhere(shop: &crate::appointments::Shop, user: &str, customer: &str) {
    let admin = &shop.admin;
    let zenobia = login(&shop.app, "zenobia").await;
    let product = a_quill(shop, "4.50").await;
    let (status, cart, _) = crate::shop::send(
        &shop.app,
        "POST",
        "/api/v1/cart/items",
        Some(&zenobia),
        &[],
        Some(json!({"product_id": product["id"], "quantity": 2})),
    )
    .await;
    assert_eq!(status, 200, "{cart}");
    let (status, order, _) = crate::shop::send(
        &shop.app,
        "POST",
        "/api/v1/checkout",
        Some(&zenobia),
        &[("Idempotency-Key", "zenobia-checkout")],
        Some(her_checkout()),
    )
    .await;
    assert_eq!(status, 201, "{order}");
    paid_in_100_parts(shop, order["id"].as_str().unwrap(), "0.09").await;
    let body = json!({"service_id": shop.service, "master_id": shop.master,
        "start": format!("{}T11:00:00Z", shop.day), "note": NOTE});
    ok(shop, &zenobia, "POST", "/api/v1/appointments", body).await;
    ok(
        shop,
        &zenobia,
        "POST",
        "/api/v1/projects",
        json!({"title": format!("A shop for {NAME}"), "description": NOTE}),
    )
    .await;
    ok(
        shop,
        &zenobia,
        "POST",
        "/api/v1/feedback",
        json!({"text": NOTE, "topic": "quality"}),
    )
    .await;
    ok(
        shop,
        &zenobia,
        "POST",
        "/api/v1/dealer-applications",
        json!({"company": NAME, "tax_id": "QS-42", "message": NOTE}),
    )
    .await;
    ok(
        shop,
        admin,
        "POST",
        "/api/v1/messages",
        json!({"client_id": user, "subject": NAME, "body": NOTE, "topic": "other"}),
    )
    .await;
    ok(
        shop,
        admin,
        "POST",
        "/api/v1/scheduled-messages",
        json!({"channel": "sms", "content": NOTE, "customer_id": customer,
        "scheduled_at": "2030-01-01T09:00:00+00:00"}),
    )
    .await;
}

async fn erasing_a_user_erases_their_customer_record_and_the_lead_it_came_from(mode: Mode) {
    let shop = shop(mode).await;
    let id = register(&shop).await;
    let (lead, customer) = a_lead_converted_and_linked(&shop, &id).await;
    her_data_everywhere(&shop, &id, &customer).await;
    shop.app.settle().await;
    let lead_path = format!("/api/v1/leads/{lead}");
    let customer_path = format!("/api/v1/customers/{customer}");
    let (_, shown) = call(&shop.app, "GET", &customer_path, &shop.admin, None).await;
    assert_eq!(
        (&shown["name"], &shown["address"]),
        (&json!(NAME), &json!(ADDRESS)),
        "{shown}"
    );

    // Nothing of hers is stored in clear in the log: not the lead's or the
    // customer's fields, not the note, not even the id of the stream that
    // holds her phone while the lead is open.
    let pool = shop.app.backing.pool().await;
    let rows = every_row(&pool, mode).await;
    let events: Vec<_> = rows.iter().filter(|(t, _)| t == "events").collect();
    for text in EVERYTHING {
        let found: Vec<_> = events
            .iter()
            .filter(|(_, row)| row.contains(text))
            .collect();
        assert!(found.is_empty(), "{text} in the events table: {found:?}");
    }

    let (status, erased) = call(
        &shop.app,
        "POST",
        &format!("/api/v1/users/{id}/erase"),
        &shop.admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{erased}");
    shop.app.settle().await;

    let (_, shown) = call(&shop.app, "GET", &customer_path, &shop.admin, None).await;
    assert_eq!(shown["name"], "[erased]", "{shown}");
    let (_, lead_shown) = call(&shop.app, "GET", &lead_path, &shop.admin, None).await;
    assert_eq!(lead_shown["full_name"], "[erased]", "{lead_shown}");
    assert_eq!(lead_shown["notes"][0]["text"], "[erased]", "{lead_shown}");
    let (_, customers) = call(&shop.app, "GET", "/api/v1/customers", &shop.admin, None).await;
    let (_, leads) = call(&shop.app, "GET", "/api/v1/leads", &shop.admin, None).await;
    let (_, feed) = call(
        &shop.app,
        "GET",
        "/api/v1/audit/events?limit=1000",
        &shop.admin,
        None,
    )
    .await;
    for answer in [&shown, &lead_shown, &customers, &leads, &feed] {
        for text in EVERYTHING {
            assert!(!answer.to_string().contains(text), "{text} in {answer}");
        }
    }
    assert_forgotten(&shop, &pool, mode, &EVERYTHING).await;
}
both_modes!(erasing_a_user_erases_their_customer_record_and_the_lead_it_came_from);

/// A lead that never became a customer is erased by its id; a new lead with
/// the same phone is then no duplicate of anyone named.
async fn the_command_line_erases_a_lead(mode: Mode) {
    let shop = shop(mode).await;
    let (status, lead) = call(
        &shop.app,
        "POST",
        "/api/v1/leads",
        &shop.admin,
        Some(json!({"full_name": NAME, "phone": PHONE})),
    )
    .await;
    assert_eq!(status, 201, "{lead}");
    let lead = lead["id"].as_str().unwrap().to_string();
    let out = run_cli(&shop.app.backing, &["privacy", "erase", "--lead", &lead]);
    assert!(out.contains(&format!("leads [{lead}]")), "{out}");
    shop.app.settle().await;
    let (_, shown) = call(
        &shop.app,
        "GET",
        &format!("/api/v1/leads/{lead}"),
        &shop.admin,
        None,
    )
    .await;
    assert_eq!(
        (&shown["full_name"], &shown["phone"]),
        (&json!("[erased]"), &Value::Null),
        "{shown}"
    );
    // Its claim on the phone stands while it is open, under no name.
    let (status, duplicate) = call(
        &shop.app,
        "POST",
        "/api/v1/leads",
        &shop.admin,
        Some(json!({"full_name": "Someone Else", "phone": PHONE})),
    )
    .await;
    assert_eq!(status, 409, "{duplicate}");
    assert_eq!(duplicate["existing"]["name"], "[erased]", "{duplicate}");
    let (ok, _, err) = run_cli_status(
        &shop.app.backing,
        &[
            "privacy",
            "erase",
            "--lead",
            &uuid::Uuid::now_v7().to_string(),
        ],
    );
    assert!(!ok && err.contains("not-found"), "{err}");
}
both_modes!(the_command_line_erases_a_lead);

/// Erasing from the customer's end erases the lead it came from and its
/// login too; only an admin may.
async fn an_admin_erases_a_customer_with_its_lead_and_login(mode: Mode) {
    let shop = shop(mode).await;
    let id = register(&shop).await;
    let (lead, customer) = a_lead_converted_and_linked(&shop, &id).await;
    let zenobia = login(&shop.app, "zenobia").await;
    let erase = format!("/api/v1/customers/{customer}/erase");
    let (status, refused) = call(&shop.app, "POST", &erase, &zenobia, None).await;
    assert_eq!(status, 403, "{refused}");
    let (status, erased) = call(&shop.app, "POST", &erase, &shop.admin, None).await;
    assert_eq!(status, 200, "{erased}");
    shop.app.settle().await;
    for (path, field) in [
        (format!("/api/v1/customers/{customer}"), "name"),
        (format!("/api/v1/leads/{lead}"), "full_name"),
        (format!("/api/v1/users/{id}"), "full_name"),
    ] {
        let (status, shown) = call(&shop.app, "GET", &path, &shop.admin, None).await;
        assert_eq!(
            (status, &shown[field]),
            (200, &json!("[erased]")),
            "{path}: {shown}"
        );
    }
    let (status, missing) = call(
        &shop.app,
        "POST",
        &format!("/api/v1/leads/{}/erase", uuid::Uuid::now_v7()),
        &shop.admin,
        None,
    )
    .await;
    assert_eq!(status, 404, "{missing}");
    crate::support::assert_rebuilds_identical(&shop.app.backing);
}
both_modes!(an_admin_erases_a_customer_with_its_lead_and_login);

/// A guest's order is a person of its own: erased by its id, its buyer's
/// name, contact details and address are gone from every answer, table and
/// rebuild (the response kept for the checkout's `Idempotency-Key` too).
async fn a_guests_order_is_erased_by_its_id(mode: Mode) {
    let shop = shop(mode).await;
    let admin = &shop.admin;
    let product = a_quill(&shop, "1.00").await;
    let cart = crate::shop::guest_cart(&shop.app, product["id"].as_str().unwrap(), 1).await;
    let (status, order, _) = crate::shop::send(
        &shop.app,
        "POST",
        "/api/v1/checkout",
        None,
        &[
            ("X-Cart-Id", cart.as_str()),
            ("Idempotency-Key", "guest-checkout"),
        ],
        Some(her_checkout()),
    )
    .await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_string();
    shop.app.settle().await;
    let path = format!("/api/v1/orders/{id}");
    let (_, shown) = call(&shop.app, "GET", &path, admin, None).await;
    assert!(shown.to_string().contains(NAME), "{shown}");
    paid_in_100_parts(&shop, &id, "0.01").await;
    let pool = shop.app.backing.pool().await;

    let (status, erased) = call(&shop.app, "POST", &format!("{path}/erase"), admin, None).await;
    assert_eq!(status, 200, "{erased}");
    shop.app.settle().await;
    let (_, shown) = call(&shop.app, "GET", &path, admin, None).await;
    assert!(shown.to_string().contains("[erased]"), "{shown}");
    assert_eq!(shown["status"], "paid", "{shown}");
    let texts = [NAME, EMAIL, PHONE, ADDRESS];
    for text in texts {
        assert!(!shown.to_string().contains(text), "{text} in {shown}");
    }
    assert_forgotten(&shop, &pool, mode, &texts).await;
}
both_modes!(a_guests_order_is_erased_by_its_id);
