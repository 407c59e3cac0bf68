//! The shop over HTTP in both modes: the catalog with fitment, carts,
//! checkout that never oversells, an order's life, refunds, the payment
//! webhook and the dealer program with its price provenance.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::appointments::{login, user};
use crate::both_modes;
use crate::support::{Api, Backing, ChildApp, Mode, TestApp};

const PASSWORD: &str = "correct horse battery";
const SECRET: &str = "a-webhook-secret-of-some-length";

/// One request: optional bearer token, extra headers, optional body.
pub(crate) async fn send(
    app: &impl Api,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value, bool) {
    let mut request = app.http().request(method.parse().unwrap(), app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
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

async fn count(backing: &Backing, sql: &str) -> i64 {
    let pool = backing.pool().await;
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}

struct Store {
    app: TestApp,
    admin: String,
    category: String,
}

async fn store(mode: Mode) -> Store {
    let mut backing = Backing::new(mode).await;
    backing
        .env
        .insert("ANNALS_PAYMENT_WEBHOOK_SECRET".into(), SECRET.into());
    store_on(backing).await
}

async fn store_on(backing: Backing) -> Store {
    let app = TestApp::start(backing).await;
    user(&app, "boss", "admin");
    app.settle().await;
    let admin = login(&app, "boss").await;
    let (status, category, _) = send(
        &app,
        "POST",
        "/api/v1/product-categories",
        Some(&admin),
        &[],
        Some(json!({"name": "Brakes"})),
    )
    .await;
    assert_eq!(status, 201, "{category}");
    Store {
        app,
        admin,
        category: category["id"].as_str().unwrap().to_string(),
    }
}

fn product_body(store: &Store, sku: &str, price: &str, track_stock: bool) -> Value {
    json!({"name": format!("Part {sku}"), "sku": sku, "category_id": store.category,
        "price": price, "currency": "EUR", "track_stock": track_stock, "universal": true})
}

async fn add_product(store: &Store, body: Value) -> String {
    let (status, product, _) = send(
        &store.app,
        "POST",
        "/api/v1/products",
        Some(&store.admin),
        &[],
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{product}");
    product["id"].as_str().unwrap().to_string()
}

async fn receive(store: &Store, product: &str, quantity: u32) {
    let (status, body, _) = send(
        &store.app,
        "POST",
        &format!("/api/v1/products/{product}/stock/receive"),
        Some(&store.admin),
        &[],
        Some(json!({"quantity": quantity})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// A new guest cart holding `quantity` of `product`; its id.
pub(crate) async fn guest_cart(app: &impl Api, product: &str, quantity: u32) -> String {
    let (status, cart, _) = send(
        app,
        "POST",
        "/api/v1/cart/items",
        None,
        &[],
        Some(json!({"product_id": product, "quantity": quantity})),
    )
    .await;
    assert_eq!(status, 200, "{cart}");
    cart["cart_id"].as_str().unwrap().to_string()
}

fn checkout_body(pickup: bool) -> Value {
    if pickup {
        json!({"customer_name": "Ada Lovelace", "phone": "+441234567890", "email": "ada@example.com", "pickup": true})
    } else {
        json!({"customer_name": "Ada Lovelace", "phone": "+441234567890", "email": "ada@example.com",
            "shipping": {"address_lines": ["1 Main Street"], "city": "Oslo", "postal_code": "0150", "country": "Norway"}})
    }
}

pub(crate) async fn guest_checkout(
    app: &impl Api,
    cart: &str,
    key: &str,
    pickup: bool,
) -> (u16, Value, bool) {
    send(
        app,
        "POST",
        "/api/v1/checkout",
        None,
        &[("X-Cart-Id", cart), ("Idempotency-Key", key)],
        Some(checkout_body(pickup)),
    )
    .await
}

async fn stock(store: &Store, product: &str) -> Value {
    store.app.settle().await;
    let (status, view) = store
        .app
        .get_json(&format!("/api/v1/products/{product}"))
        .await;
    assert_eq!(status, 200, "{view}");
    view["stock"].clone()
}

/// Asserts that every reservation belongs to an order and every order's
/// tracked line has its reservation: as many StockReserved as OrderPlaced.
async fn reservations_match_orders(backing: &Backing, orders: i64) {
    let placed = count(
        backing,
        "SELECT COUNT(*) FROM events WHERE event_type = 'OrderPlaced'",
    )
    .await;
    let reserved = count(
        backing,
        "SELECT COUNT(*) FROM events WHERE event_type = 'StockReserved'",
    )
    .await;
    assert_eq!((placed, reserved), (orders, orders));
}

async fn twenty_concurrent_checkouts_of_the_last_unit_place_one_order(mode: Mode) {
    let store = store(mode).await;
    let product = add_product(&store, product_body(&store, "LAST-1", "49.90", true)).await;
    receive(&store, &product, 1).await;
    let mut carts = Vec::new();
    for _ in 0..20 {
        carts.push(guest_cart(&store.app, &product, 1).await);
    }
    let keys: Vec<String> = (0..carts.len()).map(|i| format!("key-{i}")).collect();
    let attempts = carts
        .iter()
        .zip(&keys)
        .map(|(cart, key)| guest_checkout(&store.app, cart, key, false));
    let results = futures::future::join_all(attempts).await;
    let placed: Vec<_> = results.iter().filter(|r| r.0 == 201).collect();
    assert_eq!(
        placed.len(),
        1,
        "{:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    let refused: Vec<_> = results.iter().filter(|r| r.0 == 409).collect();
    assert_eq!(refused.len(), 19);
    assert!(
        refused
            .iter()
            .all(|r| r.1["type"] == "/problems/out-of-stock"),
        "{refused:?}"
    );
    assert_eq!(
        stock(&store, &product).await,
        json!({"on_hand": 1, "reserved": 1, "available": 0})
    );
    reservations_match_orders(&store.app.backing, 1).await;
}
both_modes!(twenty_concurrent_checkouts_of_the_last_unit_place_one_order);

/// Two `annals` processes on one PostgreSQL: checkouts of the last two
/// units from both at once sell exactly two.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_checking_out_the_last_units_sell_each_once() {
    let store = store(Mode::Server).await;
    let product = add_product(&store, product_body(&store, "LAST-2", "10.00", true)).await;
    receive(&store, &product, 2).await;
    let one = ChildApp::start(store.app.backing.clone()).await;
    let two = ChildApp::start(store.app.backing.clone()).await;
    let mut carts = Vec::new();
    for _ in 0..20 {
        carts.push(guest_cart(&store.app, &product, 1).await);
    }
    let (one, two) = (&one, &two);
    let attempts = carts.iter().enumerate().map(|(i, cart)| {
        let key = format!("key-{i}");
        async move {
            if i % 2 == 0 {
                guest_checkout(one, cart, &key, true).await
            } else {
                guest_checkout(two, cart, &key, true).await
            }
        }
    });
    let results = futures::future::join_all(attempts).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        2,
        "{statuses:?}"
    );
    assert!(results
        .iter()
        .all(|r| r.0 == 201 || r.1["type"] == "/problems/out-of-stock"));
    assert_eq!(
        stock(&store, &product).await,
        json!({"on_hand": 2, "reserved": 2, "available": 0})
    );
    reservations_match_orders(&store.app.backing, 2).await;
}

async fn a_checkout_retried_with_the_same_key_places_one_order_and_answers_the_same(mode: Mode) {
    let store = store(mode).await;
    let product = add_product(&store, product_body(&store, "RETRY", "12.50", true)).await;
    receive(&store, &product, 5).await;
    let cart = guest_cart(&store.app, &product, 2).await;
    let (status, missing, _) = send(
        &store.app,
        "POST",
        "/api/v1/checkout",
        None,
        &[("X-Cart-Id", &cart)],
        Some(checkout_body(false)),
    )
    .await;
    assert_eq!(status, 400, "{missing}");
    assert_eq!(missing["errors"][0]["field"], "Idempotency-Key");
    let (status, first, replayed) = guest_checkout(&store.app, &cart, "same-key", false).await;
    assert_eq!((status, replayed), (201, false), "{first}");
    assert_eq!(first["status"], "placed");
    assert_eq!(first["total"], "25.00");
    assert_eq!(first["lines"][0]["unit_price"], "12.50");
    assert_eq!(first["lines"][0]["rule"], Value::Null);
    let (status, again, replayed) = guest_checkout(&store.app, &cart, "same-key", false).await;
    assert_eq!((status, replayed), (201, true));
    assert_eq!(again, first, "the first answer, again");
    // The cart is empty now: a new key finds nothing to check out.
    let (status, empty, _) = guest_checkout(&store.app, &cart, "other-key", false).await;
    assert_eq!(status, 409, "{empty}");
    assert_eq!(empty["type"], "/problems/cart-empty");
    assert_eq!(
        count(
            &store.app.backing,
            "SELECT COUNT(*) FROM events WHERE event_type = 'OrderPlaced'"
        )
        .await,
        1
    );
    assert_eq!(
        stock(&store, &product).await,
        json!({"on_hand": 5, "reserved": 2, "available": 3})
    );
}
both_modes!(a_checkout_retried_with_the_same_key_places_one_order_and_answers_the_same);

async fn register(app: &TestApp, name: &str) -> String {
    let response = app
        .post(
            "/api/v1/auth/register",
            json!({"username": name, "password": PASSWORD, "full_name": name,
                "email": format!("{name}@example.com"), "phone": "+441234567890"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    login(app, name).await
}

async fn a_dealer_sees_the_dealer_price_and_its_provenance_from_cart_to_order(mode: Mode) {
    let store = store(mode).await;
    let product = add_product(&store, product_body(&store, "BP-100", "49.90", false)).await;
    let dana = register(&store.app, "dana").await;
    let apply = json!({"company": "Parts AS", "tax_id": "NO123"});
    let (status, application, _) = send(
        &store.app,
        "POST",
        "/api/v1/dealer-applications",
        Some(&dana),
        &[],
        Some(apply.clone()),
    )
    .await;
    assert_eq!(status, 201, "{application}");
    let (status, second, _) = send(
        &store.app,
        "POST",
        "/api/v1/dealer-applications",
        Some(&dana),
        &[],
        Some(apply),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(second["type"], "/problems/application-in-progress");
    let id = application["id"].as_str().unwrap();
    let (status, too_much, _) = send(
        &store.app,
        "POST",
        &format!("/api/v1/dealer-applications/{id}/approve"),
        Some(&store.admin),
        &[],
        Some(json!({"discount_percent": 51})),
    )
    .await;
    assert_eq!(status, 422, "{too_much}");
    let (status, approved, _) = send(
        &store.app,
        "POST",
        &format!("/api/v1/dealer-applications/{id}/approve"),
        Some(&store.admin),
        &[],
        Some(json!({"discount_percent": 12})),
    )
    .await;
    assert_eq!(status, 200, "{approved}");
    store.app.settle().await;
    let (status, me, _) = send(
        &store.app,
        "GET",
        "/api/v1/me/dealer",
        Some(&dana),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(me["status"], "approved");
    assert_eq!(me["discount_percent"], 12);
    assert_eq!(me["rule"]["approved_by"], "boss");

    let (status, cart, _) = send(
        &store.app,
        "POST",
        "/api/v1/cart/items",
        Some(&dana),
        &[],
        Some(json!({"product_id": product, "quantity": 2, "buy_now": true})),
    )
    .await;
    assert_eq!(status, 200, "{cart}");
    assert_eq!(cart["next"]["href"], "/api/v1/checkout");
    let line = &cart["lines"][0];
    assert_eq!(
        (
            &line["base_price"],
            &line["unit_price"],
            &line["line_total"]
        ),
        (&json!("49.90"), &json!("43.91"), &json!("87.82"))
    );
    let rule = line["rule"].as_str().unwrap();
    assert!(
        rule.starts_with(&format!("dealer discount 12% — application #{id}")),
        "{rule}"
    );
    assert!(rule.ends_with(" by boss"), "{rule}");
    let (status, placed, _) = send(
        &store.app,
        "POST",
        "/api/v1/checkout",
        Some(&dana),
        &[("Idempotency-Key", "dana-1")],
        Some(checkout_body(true)),
    )
    .await;
    assert_eq!(status, 201, "{placed}");
    assert_eq!(placed["lines"][0]["rule"], rule);
    assert_eq!(placed["lines"][0]["rule_detail"]["discount_percent"], 12);
    assert_eq!(placed["total"], "87.82");
    // A later price change does not touch the placed order.
    let mut dearer = product_body(&store, "BP-100", "59.90", false);
    dearer["name"] = json!("Part BP-100");
    let (status, _, _) = send(
        &store.app,
        "PUT",
        &format!("/api/v1/products/{product}"),
        Some(&store.admin),
        &[],
        Some(dearer),
    )
    .await;
    assert_eq!(status, 200);
    store.app.settle().await;
    let order = placed["id"].as_str().unwrap();
    let (status, view, _) = send(
        &store.app,
        "GET",
        &format!("/api/v1/orders/{order}"),
        Some(&dana),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["lines"], placed["lines"]);
    assert!(view["dealer"].as_bool().unwrap());
}
both_modes!(a_dealer_sees_the_dealer_price_and_its_provenance_from_cart_to_order);

async fn staff_post(store: &Store, path: &str, body: Option<Value>) -> (u16, Value) {
    let (status, body, _) = send(&store.app, "POST", path, Some(&store.admin), &[], body).await;
    (status, body)
}

async fn an_order_goes_from_payment_to_pickup_and_refunds_never_exceed_what_was_paid(mode: Mode) {
    let store = store(mode).await;
    let product = add_product(&store, product_body(&store, "LIFE", "30.00", true)).await;
    receive(&store, &product, 3).await;
    let cart = guest_cart(&store.app, &product, 2).await;
    let (status, placed, _) = guest_checkout(&store.app, &cart, "life-1", true).await;
    assert_eq!(status, 201, "{placed}");
    let order = format!("/api/v1/orders/{}", placed["id"].as_str().unwrap());
    let (status, early) = staff_post(&store, &format!("{order}/ready-for-pickup"), None).await;
    assert_eq!(status, 409);
    assert_eq!(early["type"], "/problems/invalid-transition");
    assert!(
        early["detail"].as_str().unwrap().contains("is placed"),
        "{early}"
    );
    let pay = |amount: &str| json!({"amount": amount, "currency": "EUR", "method": "cash"});
    assert_eq!(
        staff_post(&store, &format!("{order}/payments"), Some(pay("20")))
            .await
            .0,
        200
    );
    let (status, over) = staff_post(&store, &format!("{order}/payments"), Some(pay("40.01"))).await;
    assert_eq!(status, 409, "{over}");
    assert_eq!(over["type"], "/problems/overpayment");
    assert_eq!(
        staff_post(&store, &format!("{order}/payments"), Some(pay("40")))
            .await
            .0,
        200
    );
    let (status, ship) = staff_post(&store, &format!("{order}/ship"), None).await;
    assert_eq!(status, 409, "a pickup order is not shipped: {ship}");
    assert_eq!(
        staff_post(&store, &format!("{order}/ready-for-pickup"), None)
            .await
            .0,
        200
    );
    assert_eq!(
        stock(&store, &product).await,
        json!({"on_hand": 1, "reserved": 0, "available": 1}),
        "put out for pickup: the units left the stock"
    );
    assert_eq!(
        staff_post(&store, &format!("{order}/picked-up"), None)
            .await
            .0,
        200
    );
    let refund = |amount: &str| json!({"amount": amount, "currency": "EUR", "reason": "scratched"});
    assert_eq!(
        staff_post(&store, &format!("{order}/refunds"), Some(refund("15")))
            .await
            .0,
        200
    );
    let (status, too_much) =
        staff_post(&store, &format!("{order}/refunds"), Some(refund("45.01"))).await;
    assert_eq!(status, 409, "{too_much}");
    assert_eq!(too_much["type"], "/problems/refund-exceeds-payments");
    assert_eq!(
        staff_post(&store, &format!("{order}/refunds"), Some(refund("45")))
            .await
            .0,
        200
    );
    store.app.settle().await;
    let (_, view, _) = send(&store.app, "GET", &order, Some(&store.admin), &[], None).await;
    assert_eq!(
        (&view["status"], &view["paid"], &view["refunded"]),
        (&json!("refunded"), &json!("60.00"), &json!("60.00"))
    );
    let (status, history, _) = send(
        &store.app,
        "GET",
        &format!("{order}/history"),
        Some(&store.admin),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200);
    let types: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "OrderPaymentRecorded",
            "OrderPaymentRecorded",
            "OrderPaid",
            "OrderReadyForPickup",
            "OrderPickedUp",
            "OrderRefunded",
            "OrderRefunded"
        ]
    );
}
both_modes!(an_order_goes_from_payment_to_pickup_and_refunds_never_exceed_what_was_paid);

async fn cancelling_an_order_gives_its_stock_back(mode: Mode) {
    let store = store(mode).await;
    let product = add_product(&store, product_body(&store, "BACK", "5.00", true)).await;
    receive(&store, &product, 2).await;
    let cart = guest_cart(&store.app, &product, 2).await;
    let (_, placed, _) = guest_checkout(&store.app, &cart, "cancel-1", false).await;
    let order = format!("/api/v1/orders/{}", placed["id"].as_str().unwrap());
    assert_eq!(stock(&store, &product).await["available"], 0);
    let (status, body) = staff_post(
        &store,
        &format!("{order}/cancel"),
        Some(json!({"reason": "asked"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        stock(&store, &product).await,
        json!({"on_hand": 2, "reserved": 0, "available": 2})
    );
    let (status, again) = staff_post(
        &store,
        &format!("{order}/cancel"),
        Some(json!({"reason": "asked"})),
    )
    .await;
    assert_eq!(status, 409);
    assert!(again["detail"].as_str().unwrap().contains("is cancelled"));
    // A version of an order that does not exist: not found, not "changed".
    let (status, missing, _) = send(
        &store.app,
        "POST",
        "/api/v1/orders/0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f/cancel",
        Some(&store.admin),
        &[("If-Match", "\"3\"")],
        Some(json!({"reason": "asked"})),
    )
    .await;
    assert_eq!(status, 404, "{missing}");
}
both_modes!(cancelling_an_order_gives_its_stock_back);

fn signature(body: &[u8], secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn webhook(app: &TestApp, body: &Value, signature: Option<&str>) -> (u16, Value, bool) {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut request = app
        .http()
        .post(app.url("/api/v1/webhooks/payments"))
        .header("content-type", "application/json")
        .body(bytes);
    if let Some(signature) = signature {
        request = request.header("X-Annals-Signature", signature);
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

async fn the_payment_webhook_needs_its_signature_and_records_a_payment_once(mode: Mode) {
    let store = store(mode).await;
    let product = add_product(&store, product_body(&store, "HOOK", "19.99", false)).await;
    let cart = guest_cart(&store.app, &product, 1).await;
    let (_, placed, _) = guest_checkout(&store.app, &cart, "hook-1", false).await;
    let notice = json!({"provider_payment_id": "pay_1", "order_id": placed["id"], "amount": "19.99", "currency": "EUR"});
    let events = "SELECT COUNT(*) FROM events WHERE event_type = 'OrderPaymentRecorded'";
    let bytes = serde_json::to_vec(&notice).unwrap();
    for (why, signature) in [
        ("no signature", None),
        (
            "another secret",
            Some(signature(&bytes, "not-the-secret-at-all")),
        ),
        ("another body", Some(signature(b"{}", SECRET))),
        ("not hex", Some("sha256=zz".to_string())),
    ] {
        let (status, problem, _) = webhook(&store.app, &notice, signature.as_deref()).await;
        assert_eq!(status, 401, "{why}: {problem}");
        assert_eq!(problem["type"], "/problems/unauthorized", "{why}");
    }
    assert_eq!(
        count(&store.app.backing, events).await,
        0,
        "nothing recorded"
    );
    let good = signature(&bytes, SECRET);
    let (status, first, replayed) = webhook(&store.app, &notice, Some(&good)).await;
    assert_eq!((status, replayed), (200, false), "{first}");
    let (status, again, replayed) = webhook(&store.app, &notice, Some(&good)).await;
    assert_eq!((status, replayed), (200, true), "{again}");
    assert_eq!(again, first);
    assert_eq!(count(&store.app.backing, events).await, 1, "recorded once");
    store.app.settle().await;
    let order = format!("/api/v1/orders/{}", placed["id"].as_str().unwrap());
    let (_, view, _) = send(&store.app, "GET", &order, Some(&store.admin), &[], None).await;
    assert_eq!(
        (&view["status"], &view["paid"]),
        (&json!("paid"), &json!("19.99"))
    );
}
both_modes!(the_payment_webhook_needs_its_signature_and_records_a_payment_once);

async fn a_client_sees_only_their_own_orders_including_those_placed_with_their_email(mode: Mode) {
    let store = store(mode).await;
    let product = add_product(&store, product_body(&store, "MINE", "1.00", false)).await;
    // A guest order with ada's address, before ada has an account.
    let cart = guest_cart(&store.app, &product, 1).await;
    let (_, as_guest, _) = guest_checkout(&store.app, &cart, "guest-1", true).await;
    let ada = register(&store.app, "ada").await;
    let bob = register(&store.app, "bob").await;
    let order_of = |token: String| {
        let app = &store.app;
        let product = product.clone();
        async move {
            send(
                app,
                "POST",
                "/api/v1/cart/items",
                Some(&token),
                &[],
                Some(json!({"product_id": product, "quantity": 1})),
            )
            .await;
            let mut body = checkout_body(true);
            body["email"] = json!("someone@example.com");
            let (status, placed, _) = send(
                app,
                "POST",
                "/api/v1/checkout",
                Some(&token),
                &[("Idempotency-Key", "mine-1")],
                Some(body),
            )
            .await;
            assert_eq!(status, 201, "{placed}");
            placed["id"].as_str().unwrap().to_string()
        }
    };
    let adas = order_of(ada.clone()).await;
    let bobs = order_of(bob.clone()).await;
    store.app.settle().await;
    let (status, list, _) = send(&store.app, "GET", "/api/v1/orders", Some(&ada), &[], None).await;
    assert_eq!(status, 200);
    let mut ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut expected = vec![adas.as_str(), as_guest["id"].as_str().unwrap()];
    expected.sort();
    assert_eq!(ids, expected, "her own and the one placed with her e-mail");
    for path in [
        format!("/api/v1/orders/{bobs}"),
        format!("/api/v1/orders/{bobs}/history"),
    ] {
        let (status, _, _) = send(&store.app, "GET", &path, Some(&ada), &[], None).await;
        assert_eq!(status, 404, "{path}");
    }
    let (_, all, _) = send(
        &store.app,
        "GET",
        "/api/v1/orders",
        Some(&store.admin),
        &[],
        None,
    )
    .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 3, "staff see all");
}
both_modes!(a_client_sees_only_their_own_orders_including_those_placed_with_their_email);

async fn the_fitment_filter_returns_exactly_the_fitting_products(mode: Mode) {
    let store = store(mode).await;
    let fit = |make: &str, model: &str, from: u16, to: u16| json!({"make": make, "model": model, "year_from": from, "year_to": to});
    let mut named = std::collections::BTreeMap::new();
    for (sku, fitment, universal) in [
        ("V70-OLD", vec![fit("Volvo", "V70", 2000, 2007)], false),
        ("V70-NEW", vec![fit("Volvo", "V70", 2008, 2016)], false),
        (
            "V70-XC90",
            vec![
                fit("Volvo", "V70", 2010, 2012),
                fit("Volvo", "XC90", 2015, 2020),
            ],
            false,
        ),
        ("GOLF", vec![fit("VW", "Golf", 2004, 2020)], false),
        ("WIPER", vec![], true),
        ("MUG", vec![], false),
    ] {
        let mut body = product_body(&store, sku, "9.00", false);
        body["universal"] = json!(universal);
        body["fitment"] = json!(fitment);
        named.insert(sku, add_product(&store, body).await);
    }
    store.app.settle().await;
    let find = |query: &'static str| {
        let app = &store.app;
        async move {
            let (status, page) = app.get_json(&format!("/api/v1/products?{query}")).await;
            assert_eq!(status, 200, "{query}: {page}");
            let mut skus: Vec<String> = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["sku"].as_str().unwrap().to_string())
                .collect();
            skus.sort();
            skus
        }
    };
    assert_eq!(
        find("make=volvo&model=V70&year=2011").await,
        ["V70-NEW", "V70-XC90", "WIPER"]
    );
    assert_eq!(
        find("make=Volvo&model=V70&year=2007").await,
        ["V70-OLD", "WIPER"]
    );
    assert_eq!(find("make=Volvo&model=XC90&year=2011").await, ["WIPER"]);
    assert_eq!(
        find("make=Volvo").await,
        ["V70-NEW", "V70-OLD", "V70-XC90", "WIPER"]
    );
    assert_eq!(find("year=2019").await, ["GOLF", "V70-XC90", "WIPER"]);
    assert_eq!(find("q=golf").await, ["GOLF"]);
    assert_eq!(find("").await.len(), 6);
    let (status, detail) = store
        .app
        .get_json(&format!("/api/v1/products/{}", named["V70-NEW"]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        detail["related"].as_array().unwrap().len(),
        5,
        "same category: {detail}"
    );
}
both_modes!(the_fitment_filter_returns_exactly_the_fitting_products);

const SHOP_TABLES: &[&str] = &[
    "product_categories",
    "products",
    "product_fitment",
    "orders",
    "dealer_applications",
    "dealers",
];

/// G6 for the shop: after products change (terms, fitment, stock), orders
/// go through their lives and dealers are decided, every shop read model
/// rebuilt from the log in one batch has exactly the rows it had live.
async fn the_shop_read_models_rebuilt_from_the_log_have_the_rows_they_had_live(mode: Mode) {
    let store = store(mode).await;
    let mut body = product_body(&store, "G6-A", "20.00", true);
    body["universal"] = json!(false);
    body["fitment"] =
        json!([{"make": "Volvo", "model": "V70", "year_from": 2008, "year_to": 2016}]);
    let a = add_product(&store, body.clone()).await;
    let b = add_product(&store, product_body(&store, "G6-B", "3.00", false)).await;
    receive(&store, &a, 10).await;
    body["fitment"] = json!([{"make": "Saab", "model": "9-5", "year_from": 2001, "year_to": 2009, "qualifier": "2.3t"}]);
    body["price"] = json!("22.00");
    let (status, _, _) = send(
        &store.app,
        "PUT",
        &format!("/api/v1/products/{a}"),
        Some(&store.admin),
        &[],
        Some(body),
    )
    .await;
    assert_eq!(status, 200);
    let mut orders = Vec::new();
    for (i, quantity) in [1, 2, 3].into_iter().enumerate() {
        let cart = guest_cart(&store.app, &a, quantity).await;
        send(
            &store.app,
            "POST",
            "/api/v1/cart/items",
            None,
            &[("X-Cart-Id", &cart)],
            Some(json!({"product_id": b, "quantity": 1})),
        )
        .await;
        let (status, placed, _) =
            guest_checkout(&store.app, &cart, &format!("g6-{i}"), false).await;
        assert_eq!(status, 201, "{placed}");
        orders.push(format!("/api/v1/orders/{}", placed["id"].as_str().unwrap()));
    }
    let pay = json!({"amount": "25.00", "currency": "EUR", "method": "card"});
    assert_eq!(
        staff_post(&store, &format!("{}/payments", orders[0]), Some(pay))
            .await
            .0,
        200
    );
    assert_eq!(
        staff_post(&store, &format!("{}/ship", orders[0]), None)
            .await
            .0,
        200
    );
    let refund = json!({"amount": "5.00", "currency": "EUR", "reason": "late"});
    assert_eq!(
        staff_post(&store, &format!("{}/refunds", orders[0]), Some(refund))
            .await
            .0,
        200
    );
    let cancel = json!({"reason": "changed mind"});
    assert_eq!(
        staff_post(&store, &format!("{}/cancel", orders[1]), Some(cancel))
            .await
            .0,
        200
    );
    let correct = json!({"quantity_on_hand": 8, "reason": "count"});
    let (status, corrected) = staff_post(
        &store,
        &format!("/api/v1/products/{a}/stock/correct"),
        Some(correct),
    )
    .await;
    assert_eq!(status, 200, "{corrected}");
    for (name, decision) in [("dora", "approve"), ("eric", "reject")] {
        let token = register(&store.app, name).await;
        let (_, application, _) = send(
            &store.app,
            "POST",
            "/api/v1/dealer-applications",
            Some(&token),
            &[],
            Some(json!({"company": name, "tax_id": "T1"})),
        )
        .await;
        let body = if decision == "approve" {
            json!({"discount_percent": 10})
        } else {
            json!({"reason": "no"})
        };
        let path = format!(
            "/api/v1/dealer-applications/{}/{decision}",
            application["id"].as_str().unwrap()
        );
        assert_eq!(staff_post(&store, &path, Some(body)).await.0, 200);
    }
    store.app.settle().await;

    let pool = store.app.backing.pool().await;
    let mut live = Vec::new();
    for table in SHOP_TABLES {
        let mut rows = crate::consumers::dump(&pool, table).await;
        rows.sort();
        live.push(rows);
    }
    assert_eq!(live[3].len(), 3, "three orders");
    assert_eq!(live[2].len(), 1, "the fitment as changed");
    crate::support::assert_rebuilds_identical(&store.app.backing);
    for consumer in ["products", "orders", "dealers"] {
        let output =
            crate::support::run_cli(&store.app.backing, &["replay", "--consumer", consumer]);
        assert!(output.contains("replayed"), "{output}");
    }
    for (table, before) in SHOP_TABLES.iter().zip(&live) {
        let mut rows = crate::consumers::dump(&pool, table).await;
        rows.sort();
        assert_eq!(&rows, before, "{table} after a rebuild");
    }
    pool.close().await;
}
both_modes!(the_shop_read_models_rebuilt_from_the_log_have_the_rows_they_had_live);

async fn a_sku_is_held_by_one_product_whatever_its_case_and_freed_when_changed(mode: Mode) {
    let store = store(mode).await;
    let first = add_product(&store, product_body(&store, "OIL-5W30", "9.00", false)).await;
    let (status, taken, _) = send(
        &store.app,
        "POST",
        "/api/v1/products",
        Some(&store.admin),
        &[],
        Some(product_body(&store, "oil-5w30", "9.00", false)),
    )
    .await;
    assert_eq!(status, 409, "{taken}");
    assert_eq!(taken["type"], "/problems/sku-taken");
    // Concurrent creations of one new SKU: exactly one product gets it.
    let attempts = (0..8).map(|_| {
        send(
            &store.app,
            "POST",
            "/api/v1/products",
            Some(&store.admin),
            &[],
            Some(product_body(&store, "RACE-1", "1.00", false)),
        )
    });
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    // Renaming the first product's SKU frees the old one.
    let (status, _, _) = send(
        &store.app,
        "PUT",
        &format!("/api/v1/products/{first}"),
        Some(&store.admin),
        &[],
        Some(product_body(&store, "OIL-5W40", "9.00", false)),
    )
    .await;
    assert_eq!(status, 200);
    add_product(&store, product_body(&store, "Oil-5W30", "9.50", false)).await;
}
both_modes!(a_sku_is_held_by_one_product_whatever_its_case_and_freed_when_changed);

async fn a_cart_refuses_inactive_products_other_currencies_and_quantities_outside_1_to_999(
    mode: Mode,
) {
    let store = store(mode).await;
    let euro = add_product(&store, product_body(&store, "EUR-1", "2.00", false)).await;
    let mut body = product_body(&store, "USD-1", "2.00", false);
    body["currency"] = json!("USD");
    let dollar = add_product(&store, body).await;
    let mut body = product_body(&store, "OFF-1", "2.00", false);
    body["active"] = json!(false);
    let off = add_product(&store, body).await;
    let cart = guest_cart(&store.app, &euro, 998).await;
    let header = [("X-Cart-Id", cart.as_str())];
    let add = |product: &str, quantity: u32| {
        send(
            &store.app,
            "POST",
            "/api/v1/cart/items",
            None,
            &header,
            Some(json!({"product_id": product, "quantity": quantity})),
        )
    };
    let (status, over, _) = add(&euro, 2).await;
    assert_eq!(status, 422, "999 at most: {over}");
    assert_eq!(over["errors"][0]["field"], "quantity");
    assert_eq!(add(&euro, 1).await.0, 200, "999 is fine");
    let (status, zero, _) = add(&euro, 0).await;
    assert_eq!(status, 422, "{zero}");
    let (status, mixed, _) = add(&dollar, 1).await;
    assert_eq!(
        (status, &mixed["type"]),
        (409, &json!("/problems/mixed-currencies"))
    );
    let (status, inactive, _) = add(&off, 1).await;
    assert_eq!(
        (status, &inactive["type"]),
        (409, &json!("/problems/product-inactive"))
    );
    let (status, unknown, _) = add("0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f", 1).await;
    assert_eq!(status, 404, "{unknown}");
    let (status, view, _) = send(
        &store.app,
        "GET",
        "/api/v1/cart",
        None,
        &[("X-Cart-Id", &cart)],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(view["lines"].as_array().unwrap().len(), 1);
    assert_eq!(view["lines"][0]["quantity"], 999);
    assert_eq!(view["total"], "1998.00");
    // Someone else's cart id that was never issued is not found.
    let (status, _, _) = send(
        &store.app,
        "GET",
        "/api/v1/cart",
        None,
        &[("X-Cart-Id", "0193a0b4-8d2e-7c1a-9f00-5a1b2c3d4e5f")],
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, removed, _) = send(
        &store.app,
        "DELETE",
        &format!("/api/v1/cart/items/{euro}"),
        None,
        &[("X-Cart-Id", &cart)],
        None,
    )
    .await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["total"], "0.00");
}
both_modes!(a_cart_refuses_inactive_products_other_currencies_and_quantities_outside_1_to_999);

async fn a_bad_checkout_names_the_field_and_changes_nothing(mode: Mode) {
    let store = store(mode).await;
    let product = add_product(&store, product_body(&store, "BAD-1", "4.00", true)).await;
    receive(&store, &product, 1).await;
    let cart = guest_cart(&store.app, &product, 1).await;
    let good = checkout_body(false);
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        if value.is_null() {
            body.as_object_mut().unwrap().remove(field);
        } else {
            body[field] = value;
        }
        body
    };
    let mut no_city = good.clone();
    no_city["shipping"].as_object_mut().unwrap().remove("city");
    let mut blank_city = good.clone();
    blank_city["shipping"]["city"] = json!(" ");
    let cases = [
        (
            "a phone without enough digits",
            with("phone", json!("+12345")),
            "phone",
        ),
        (
            "an address without a domain",
            with("email", json!("ada@")),
            "email",
        ),
        ("no name", with("customer_name", json!("")), "customer_name"),
        (
            "neither shipping nor pickup",
            with("shipping", Value::Null),
            "shipping",
        ),
        (
            "both shipping and pickup",
            with("pickup", json!(true)),
            "pickup",
        ),
        (
            "a shipping address without a city",
            no_city,
            "shipping.city",
        ),
        ("a blank city", blank_city, "shipping.city"),
    ];
    for (i, (why, body, field)) in cases.into_iter().enumerate() {
        let (status, problem, _) = send(
            &store.app,
            "POST",
            "/api/v1/checkout",
            None,
            &[
                ("X-Cart-Id", &cart),
                ("Idempotency-Key", &format!("bad-{i}")),
            ],
            Some(body),
        )
        .await;
        assert_eq!(status, 422, "{why}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{why}: {problem}");
    }
    assert_eq!(
        count(&store.app.backing, "SELECT COUNT(*) FROM events WHERE event_type IN ('OrderPlaced', 'StockReserved', 'CartCheckedOut')").await,
        0
    );
    assert_eq!(
        guest_checkout(&store.app, &cart, "good", false).await.0,
        201
    );
}
both_modes!(a_bad_checkout_names_the_field_and_changes_nothing);

async fn order_statistics_give_revenue_by_category_and_product_and_the_dealer_share(mode: Mode) {
    let store = store(mode).await;
    let (_, lights, _) = send(
        &store.app,
        "POST",
        "/api/v1/product-categories",
        Some(&store.admin),
        &[],
        Some(json!({"name": "Lights"})),
    )
    .await;
    let pads = add_product(&store, product_body(&store, "PADS", "50.00", false)).await;
    let mut body = product_body(&store, "BULB", "10.00", false);
    body["category_id"] = lights["id"].clone();
    let bulb = add_product(&store, body).await;
    // A guest buys 2 pads and a bulb (110.00), a dealer (20 %) 5 bulbs (40.00).
    let cart = guest_cart(&store.app, &pads, 2).await;
    send(
        &store.app,
        "POST",
        "/api/v1/cart/items",
        None,
        &[("X-Cart-Id", &cart)],
        Some(json!({"product_id": bulb, "quantity": 1})),
    )
    .await;
    let (_, guest, _) = guest_checkout(&store.app, &cart, "stats-1", true).await;
    let dealer = register(&store.app, "dave").await;
    let (_, application, _) = send(
        &store.app,
        "POST",
        "/api/v1/dealer-applications",
        Some(&dealer),
        &[],
        Some(json!({"company": "Dave's", "tax_id": "D1"})),
    )
    .await;
    let path = format!(
        "/api/v1/dealer-applications/{}/approve",
        application["id"].as_str().unwrap()
    );
    assert_eq!(
        staff_post(&store, &path, Some(json!({"discount_percent": 20})))
            .await
            .0,
        200
    );
    store.app.settle().await;
    send(
        &store.app,
        "POST",
        "/api/v1/cart/items",
        Some(&dealer),
        &[],
        Some(json!({"product_id": bulb, "quantity": 5})),
    )
    .await;
    let (status, dealt, _) = send(
        &store.app,
        "POST",
        "/api/v1/checkout",
        Some(&dealer),
        &[("Idempotency-Key", "stats-2")],
        Some(checkout_body(true)),
    )
    .await;
    assert_eq!(status, 201, "{dealt}");
    assert_eq!(dealt["total"], "40.00");
    // An unpaid order does not count.
    let cart = guest_cart(&store.app, &pads, 1).await;
    guest_checkout(&store.app, &cart, "stats-3", true).await;
    for (order, amount) in [(&guest, "110.00"), (&dealt, "40.00")] {
        let path = format!("/api/v1/orders/{}/payments", order["id"].as_str().unwrap());
        let pay = json!({"amount": amount, "currency": "EUR", "method": "card"});
        assert_eq!(staff_post(&store, &path, Some(pay)).await.0, 200);
    }
    store.app.settle().await;
    let stats = |group: &'static str| {
        let app = &store.app;
        let admin = store.admin.clone();
        async move {
            let (status, stats, _) = send(
                app,
                "GET",
                &format!("/api/v1/stats/orders?group_by={group}"),
                Some(&admin),
                &[],
                None,
            )
            .await;
            assert_eq!(status, 200, "{stats}");
            assert_eq!(stats["currencies"].as_array().unwrap().len(), 1);
            stats["currencies"][0].clone()
        }
    };
    let by_category = stats("category").await;
    assert_eq!(
        (
            &by_category["orders"],
            &by_category["revenue"],
            &by_category["average_order_value"]
        ),
        (&json!(2), &json!("150.00"), &json!("75.00"))
    );
    assert_eq!(
        (&by_category["dealer_revenue"], &by_category["dealer_share"]),
        (&json!("40.00"), &json!("0.2667"))
    );
    let groups: Vec<(String, String, String)> = by_category["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["label"].as_str().unwrap().into(),
                g["revenue"].as_str().unwrap().into(),
                g["dealer_revenue"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            (
                "Brakes".to_string(),
                "100.00".to_string(),
                "0.00".to_string()
            ),
            (
                "Lights".to_string(),
                "50.00".to_string(),
                "40.00".to_string()
            )
        ]
    );
    let by_product = stats("product").await;
    assert_eq!(by_product["groups"][0]["label"], "Part PADS");
    assert_eq!(by_product["groups"][1]["quantity"], 6, "1 + 5 bulbs");
    let by_month = stats("month").await;
    assert_eq!(by_month["groups"].as_array().unwrap().len(), 1);
    assert_eq!(by_month["groups"][0]["revenue"], "150.00");
    let (status, bad, _) = send(
        &store.app,
        "GET",
        "/api/v1/stats/orders?group_by=week",
        Some(&store.admin),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 400, "{bad}");
}
both_modes!(order_statistics_give_revenue_by_category_and_product_and_the_dealer_share);

async fn the_storefront_shows_new_arrivals_and_a_few_products_per_category(mode: Mode) {
    let store = store(mode).await;
    let today = chrono::Utc::now().date_naive();
    for (sku, arrived) in [
        ("NEW-1", Some(today)),
        ("NEW-2", Some(today - chrono::Duration::days(3))),
        ("OLD-1", Some(today - chrono::Duration::days(60))),
        ("SOON-1", Some(today + chrono::Duration::days(5))),
        ("PLAIN-1", None),
        ("PLAIN-2", None),
    ] {
        let mut body = product_body(&store, sku, "1.00", false);
        body["new_arrival"] = json!(arrived.map(|d| d.to_string()));
        add_product(&store, body).await;
    }
    store.app.settle().await;
    let (status, front) = store.app.get_json("/api/v1/store").await;
    assert_eq!(status, 200, "{front}");
    let skus = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|p| p["sku"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        skus(&front["new_arrivals"]),
        ["NEW-1", "NEW-2"],
        "newest first, not the old nor the future"
    );
    assert_eq!(front["categories"].as_array().unwrap().len(), 1);
    assert_eq!(
        front["categories"][0]["products"].as_array().unwrap().len(),
        4,
        "a few per category"
    );
    let (_, new) = store.app.get_json("/api/v1/products?new=true").await;
    let mut new = skus(&new["items"]);
    new.sort();
    assert_eq!(new, ["NEW-1", "NEW-2"]);
}
both_modes!(the_storefront_shows_new_arrivals_and_a_few_products_per_category);

async fn a_rejected_applicant_may_apply_again_and_staff_list_applications_by_state(mode: Mode) {
    let store = store(mode).await;
    let erin = register(&store.app, "erin").await;
    let apply = || {
        send(
            &store.app,
            "POST",
            "/api/v1/dealer-applications",
            Some(&erin),
            &[],
            Some(json!({"company": "Erin Ltd", "tax_id": "E1", "message": "please"})),
        )
    };
    let (status, first, _) = apply().await;
    assert_eq!(status, 201);
    let first = first["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/dealer-applications/{first}/reject");
    assert_eq!(
        staff_post(&store, &path, Some(json!({"reason": "no tax id proof"})))
            .await
            .0,
        200
    );
    let (status, again) = staff_post(&store, &path, Some(json!({"reason": "twice"}))).await;
    assert_eq!(
        (status, &again["type"]),
        (409, &json!("/problems/invalid-transition"))
    );
    let (status, second, _) = apply().await;
    assert_eq!(status, 201, "{second}");
    store.app.settle().await;
    let (status, pending, _) = send(
        &store.app,
        "GET",
        "/api/v1/dealer-applications?status=pending",
        Some(&store.admin),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(pending["items"].as_array().unwrap().len(), 1);
    assert_eq!(pending["items"][0]["id"], second["id"]);
    let (_, me, _) = send(
        &store.app,
        "GET",
        "/api/v1/me/dealer",
        Some(&erin),
        &[],
        None,
    )
    .await;
    assert_eq!(me["status"], "pending");
    assert_eq!(me["discount_percent"], Value::Null);
    assert_eq!(me["applications"].as_array().unwrap().len(), 2);
    assert_eq!(me["applications"][1]["reason"], "no tax id proof");
    let (status, _, _) = send(
        &store.app,
        "GET",
        "/api/v1/dealer-applications",
        Some(&erin),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 403, "a client does not list applications");
}
both_modes!(a_rejected_applicant_may_apply_again_and_staff_list_applications_by_state);

#[cfg(feature = "failpoints")]
mod injected {
    use super::*;

    /// The process dies in the middle of a checkout's commit (after one of
    /// its streams, before the next): nothing of it is written — no order
    /// without its reservation, no reservation without its order — and the
    /// retry with the same key places the order once.
    async fn a_process_killed_in_the_middle_of_a_checkout_leaves_nothing_half_written(mode: Mode) {
        let store = store(mode).await;
        let product = add_product(&store, product_body(&store, "CRASH", "8.00", true)).await;
        receive(&store, &product, 1).await;
        let cart = guest_cart(&store.app, &product, 1).await;
        let mut backing = store.app.shutdown().await;
        backing.env.insert(
            "FAILPOINTS".into(),
            "append.between_streams=return(abort)".into(),
        );
        let child = ChildApp::start(backing.clone()).await;
        backing.env.remove("FAILPOINTS");
        let sent = child
            .http()
            .post(child.url("/api/v1/checkout"))
            .header("X-Cart-Id", &cart)
            .header("Idempotency-Key", "crash-1")
            .json(&checkout_body(true))
            .send()
            .await;
        assert!(sent.is_err(), "the process died mid-request");
        let (status, backing) = child.ended();
        assert!(!status.success());
        assert_eq!(
            count(
                &backing,
                "SELECT COUNT(*) FROM events WHERE aggregate_type IN ('order', 'cart') \
                 AND event_type <> 'CartOpened' AND event_type <> 'CartItemAdded'"
            )
            .await,
            0,
            "no order and no emptied cart"
        );
        reservations_match_orders(&backing, 0).await;
        let app = TestApp::start(backing).await;
        let (status, placed, replayed) = guest_checkout(&app, &cart, "crash-1", true).await;
        assert_eq!((status, replayed), (201, false), "{placed}");
        let (status, again, replayed) = guest_checkout(&app, &cart, "crash-1", true).await;
        assert_eq!((status, replayed), (201, true));
        assert_eq!(again["id"], placed["id"]);
        reservations_match_orders(&app.backing, 1).await;
    }
    both_modes!(a_process_killed_in_the_middle_of_a_checkout_leaves_nothing_half_written);
}
