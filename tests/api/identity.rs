//! Identity and access: registration, sign-in, tokens, the permission
//! matrix for every route and role, password reset through the outbox,
//! rate limits, profile validation.

use std::time::Duration;

use annals::auth::permissions::{self, Access, ROUTES};
use annals::auth::{user_id, AuthStore};
use annals_domain::user::Role;
use serde_json::{json, Value};

use crate::both_modes;
use crate::support::{run_cli, spawn_app, Api, Mode, TestApp};

const PASSWORD: &str = "correct horse battery";

async fn register(app: &TestApp, username: &str) -> reqwest::Response {
    app.post(
        "/api/v1/auth/register",
        json!({"username": username, "password": PASSWORD, "full_name": "Ada Lovelace", "email": format!("{}@example.com", username.to_lowercase()), "phone": "+441234567890"}),
    )
    .await
}

async fn login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.post(
        "/api/v1/auth/login",
        json!({"username": username, "password": password}),
    )
    .await
}

async fn token(app: &TestApp, username: &str) -> String {
    let response = login(app, username, PASSWORD).await;
    assert_eq!(response.status(), 200, "login as {username}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    body["access_token"].as_str().unwrap().to_string()
}

async fn get_with(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let response = app
        .http()
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn post_with(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, Value) {
    let response = app
        .http()
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

/// `annals user create` in a child process; returns the id it printed last.
fn create_user(app: &TestApp, username: &str, roles: &[&str]) -> String {
    let mut args = vec![
        "user",
        "create",
        "--username",
        username,
        "--password",
        PASSWORD,
    ];
    for role in roles {
        args.extend(["--role", role]);
    }
    let output = run_cli(&app.backing, &args);
    // The child is a test binary: libtest's own lines follow ours.
    output
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| uuid::Uuid::parse_str(line).is_ok())
        .unwrap_or_else(|| panic!("no user id in: {output}"))
        .to_string()
}

async fn a_client_registers_signs_in_reads_their_profile_and_signs_out(mode: Mode) {
    let app = spawn_app(mode).await;
    let response = register(&app, "Ada").await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["id"], user_id("ada").to_string());
    assert_eq!(
        register(&app, "ada").await.status(),
        409,
        "usernames are unique, case-insensitively"
    );

    let token = token(&app, "ada").await;
    let (status, me) = get_with(&app, "/api/v1/me", &token).await;
    assert_eq!(status, 200);
    assert_eq!(me["username"], "ada");
    assert_eq!(me["roles"], json!(["client"]));
    assert_eq!(me["profile"]["email"], "ada@example.com");

    assert_eq!(login(&app, "ada", "wrong password").await.status(), 401);
    assert_eq!(login(&app, "nobody", PASSWORD).await.status(), 401);

    let response = app
        .http()
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (status, problem) = get_with(&app, "/api/v1/me", &token).await;
    assert_eq!(status, 401, "a revoked token is refused: {problem}");
    let (status, _) = app.get_json("/api/v1/me").await;
    assert_eq!(status, 401, "no token");
}
both_modes!(a_client_registers_signs_in_reads_their_profile_and_signs_out);

async fn profile_changes_are_validated_field_by_field_and_recorded_as_events(mode: Mode) {
    let app = spawn_app(mode).await;
    register(&app, "ada").await;
    let token = token(&app, "ada").await;
    let put = |body: Value| {
        let token = token.clone();
        let app = &app;
        async move {
            let response = app
                .http()
                .put(app.url("/api/v1/me"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, problem) = put(json!({"full_name": "", "email": "ada@", "phone": "12", "website": "ftp://x", "social_links": ["nope"]})).await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["full_name", "email", "phone", "website", "social_links[0]"],
        "{problem}"
    );

    let (status, updated) = put(json!({"full_name": "Ada King", "company_name": "Engines", "company_size": 12, "website": "https://example.com", "social_links": []})).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["profile"]["company_name"], "Engines");
    let (_, me) = get_with(
        &app,
        &format!("/api/v1/me?min_position={}", updated["position"]),
        &token,
    )
    .await;
    assert_eq!(me["profile"]["full_name"], "Ada King");

    let pool = app.backing.pool().await;
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'user' ORDER BY position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(types, ["UserRegistered", "UserProfileUpdated"]);
    let metadata: String = sqlx::query_scalar(
        "SELECT CAST(metadata AS TEXT) FROM events WHERE event_type = 'UserProfileUpdated'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        metadata.contains(&user_id("ada").to_string()),
        "the actor is recorded: {metadata}"
    );
    assert!(!metadata.contains(PASSWORD) && !metadata.contains("argon2"));
}
both_modes!(profile_changes_are_validated_field_by_field_and_recorded_as_events);

async fn every_route_answers_every_role_as_the_matrix_says(mode: Mode) {
    let app = spawn_app(mode).await;
    let pool = app.backing.pool().await;
    let mut callers: Vec<(Option<Role>, Option<uuid::Uuid>)> = vec![(None, None)];
    for role in Role::ALL {
        let name = format!("as-{role}");
        let id = create_user(&app, &name, &[role.as_str()]);
        callers.push((Some(role), Some(id.parse().unwrap())));
    }
    app.settle().await;
    // A user id that does not exist: allowed calls change nothing (404).
    let nobody = "00000000-0000-5000-8000-000000000000";
    for (method, path, action) in ROUTES {
        let url = app.url(&path.replace("{id}", nobody).replace("{role}", "dealer"));
        for (role, user) in &callers {
            let mut request = app.http().request(method.parse().unwrap(), &url);
            if let Some(user) = user {
                // A fresh token per call: logging out revokes the one used.
                let token = AuthStore::issue_token(&pool, *user, 600).await.unwrap();
                request = request.bearer_auth(token);
            }
            if *method == "POST" || *method == "PUT" {
                // An empty object: allowed calls are refused as invalid, so
                // nothing changes between the calls.
                request = request.json(&json!({}));
            }
            let status = request.send().await.unwrap().status().as_u16();
            let allowed = permissions::allows(role.as_ref().map(std::slice::from_ref), *action);
            let who = role.map_or("anonymous".to_string(), |r| r.to_string());
            if permissions::access(*action) == Access::Signed {
                // No signature: refused whoever signs in.
                assert_eq!(status, 401, "{method} {path} as {who} without a signature");
            } else if allowed {
                assert!(
                    status != 401 && status != 403,
                    "{method} {path} as {who}: {status}"
                );
            } else if role.is_none() {
                assert_eq!(status, 401, "{method} {path} as {who}");
            } else {
                assert_eq!(status, 403, "{method} {path} as {who}");
            }
        }
    }
}
both_modes!(every_route_answers_every_role_as_the_matrix_says);

#[test]
fn every_documented_api_route_has_a_permission_entry() {
    let doc = serde_json::to_value(annals::http::openapi_document(&annals::modules())).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            assert!(
                ROUTES.iter().any(|(m, p, _)| *m == method && p == path),
                "{method} {path} has no entry in auth::permissions::ROUTES"
            );
        }
    }
    let documented = doc["paths"].as_object().unwrap();
    for (method, path, _) in ROUTES {
        assert!(
            documented.contains_key(*path),
            "{method} {path} is in the matrix but not served"
        );
    }
    assert!(matches!(
        permissions::access(permissions::Action::ListUsers),
        Access::Roles(_)
    ));
}

async fn admins_manage_roles_and_deactivation_and_tokens_die_with_them(mode: Mode) {
    let app = spawn_app(mode).await;
    create_user(&app, "root", &["admin"]);
    register(&app, "ada").await;
    let admin = token(&app, "root").await;
    let ada = token(&app, "ada").await;
    let ada_id = user_id("ada").to_string();

    let (status, page) = get_with(&app, "/api/v1/users?role=client", &admin).await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["username"], "ada");
    assert_eq!(page["next_cursor"], Value::Null);
    let (_, page) = get_with(&app, "/api/v1/users?limit=1", &admin).await;
    assert_eq!(page["items"][0]["username"], "ada");
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, page) = get_with(
        &app,
        &format!("/api/v1/users?limit=1&cursor={cursor}"),
        &admin,
    )
    .await;
    assert_eq!(page["items"][0]["username"], "root");
    let (status, _) = get_with(&app, "/api/v1/users", &ada).await;
    assert_eq!(status, 403, "a client may not list users");

    let (status, _) = post_with(
        &app,
        &format!("/api/v1/users/{ada_id}/roles"),
        &admin,
        json!({"role": "dealer"}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, me) = get_with(&app, "/api/v1/me", &ada).await;
    assert_eq!(me["roles"], json!(["client", "dealer"]));
    let response = app
        .http()
        .delete(app.url(&format!("/api/v1/users/{ada_id}/roles/dealer")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, me) = get_with(&app, "/api/v1/me", &ada).await;
    assert_eq!(me["roles"], json!(["client"]));

    let (status, _) = post_with(
        &app,
        &format!("/api/v1/users/{ada_id}/deactivate"),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        get_with(&app, "/api/v1/me", &ada).await.0,
        401,
        "deactivation revokes tokens"
    );
    assert_eq!(
        login(&app, "ada", PASSWORD).await.status(),
        401,
        "and sign-in"
    );
    let (status, _) = post_with(
        &app,
        &format!("/api/v1/users/{ada_id}/reactivate"),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let ada = token(&app, "ada").await;

    // Changing the password revokes every token of the user.
    let (status, _) = post_with(
        &app,
        "/api/v1/me/password",
        &ada,
        json!({"current_password": "wrong", "new_password": "another long one"}),
    )
    .await;
    assert_eq!(status, 403, "the current password is proof");
    let (status, _) = post_with(
        &app,
        "/api/v1/me/password",
        &ada,
        json!({"current_password": PASSWORD, "new_password": "another long one"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(get_with(&app, "/api/v1/me", &ada).await.0, 401);
    assert_eq!(login(&app, "ada", "another long one").await.status(), 200);

    // Who granted what to whom is in the history.
    let pool = app.backing.pool().await;
    let granted: String = sqlx::query_scalar(
        "SELECT CAST(metadata AS TEXT) FROM events WHERE event_type = 'UserRoleGranted'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(granted.contains(&user_id("root").to_string()), "{granted}");
}
both_modes!(admins_manage_roles_and_deactivation_and_tokens_die_with_them);

async fn an_expired_token_is_refused(mode: Mode) {
    let app = spawn_app(mode).await;
    register(&app, "ada").await;
    app.settle().await;
    let pool = app.backing.pool().await;
    let expired = AuthStore::issue_token(&pool, user_id("ada"), -1)
        .await
        .unwrap();
    let live = AuthStore::issue_token(&pool, user_id("ada"), 60)
        .await
        .unwrap();
    assert_eq!(get_with(&app, "/api/v1/me", &expired).await.0, 401);
    assert_eq!(get_with(&app, "/api/v1/me", &live).await.0, 200);
    let response = app
        .http()
        .get(app.url("/api/v1/me"))
        .header("Authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
}
both_modes!(an_expired_token_is_refused);

/// Tokens are looked up many per statement under load: each request must
/// still get its own caller, and a dead token among live ones is refused.
async fn tokens_looked_up_together_each_answer_their_own_caller(mode: Mode) {
    let app = spawn_app(mode).await;
    let names = ["ada", "grace", "edsger", "barbara"];
    for name in names {
        assert_eq!(register(&app, name).await.status(), 201, "register {name}");
    }
    app.settle().await;
    let pool = app.backing.pool().await;
    let mut calls: Vec<(String, Option<&str>)> = Vec::new();
    for name in names {
        for _ in 0..3 {
            let token = AuthStore::issue_token(&pool, user_id(name), 600)
                .await
                .unwrap();
            calls.push((token, Some(name)));
        }
        let expired = AuthStore::issue_token(&pool, user_id(name), -1)
            .await
            .unwrap();
        calls.push((expired, None));
    }
    let revoked = calls[0].0.clone();
    AuthStore::revoke_token(&pool, &revoked).await.unwrap();
    calls[0].1 = None;
    calls.push(("ann_not-a-token-anyone-was-given".into(), None));
    // Every token several times over, all at once.
    let rounds: Vec<_> = (0..4)
        .flat_map(|_| calls.iter().cloned())
        .map(|(token, who)| {
            let app = &app;
            async move { (who, get_with(app, "/api/v1/me", &token).await) }
        })
        .collect();
    for (who, (status, body)) in futures::future::join_all(rounds).await {
        match who {
            Some(name) => {
                assert_eq!(status, 200, "{name}: {body}");
                assert_eq!(body["username"], name, "a request got another caller");
            }
            None => assert_eq!(status, 401, "a dead token was let in: {body}"),
        }
    }
}
both_modes!(tokens_looked_up_together_each_answer_their_own_caller);

fn outbox(app: &TestApp) -> Vec<String> {
    let dir = std::path::Path::new(&app.backing.env["ANNALS_DATA_DIR"]).join("outbox");
    let mut mails: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect()
        })
        .unwrap_or_default();
    mails.sort();
    mails
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

async fn a_password_reset_arrives_in_the_outbox_and_works_once(mode: Mode) {
    let app = spawn_app(mode).await;
    register(&app, "ada").await;
    app.settle().await;
    for body in [
        json!({"username": "ada"}),
        json!({"username": "nobody"}),
        json!({"email": "nobody@example.com"}),
    ] {
        let response = app.post("/api/v1/auth/password-reset", body).await;
        assert_eq!(
            response.status(),
            202,
            "the same answer for known and unknown accounts"
        );
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"status": "accepted"})
        );
    }
    let started = std::time::Instant::now();
    while outbox(&app).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no mail in the outbox"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mails = outbox(&app);
    assert_eq!(mails.len(), 1, "only the existing account got mail");
    assert!(mails[0].contains("To: ada@example.com"), "{}", mails[0]);
    let token = mails[0]
        .split_whitespace()
        .find(|w| w.starts_with("rst_"))
        .unwrap()
        .to_string();
    let old = token_for(&app).await;

    let confirm = json!({"token": token, "new_password": "a brand new secret"});
    let response = app
        .post("/api/v1/auth/password-reset/confirm", confirm.clone())
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        login(&app, "ada", PASSWORD).await.status(),
        401,
        "the old password is gone"
    );
    assert_eq!(login(&app, "ada", "a brand new secret").await.status(), 200);
    assert_eq!(
        get_with(&app, "/api/v1/me", &old).await.0,
        401,
        "old sessions end"
    );
    let response = app
        .post("/api/v1/auth/password-reset/confirm", confirm)
        .await;
    assert_eq!(response.status(), 409, "single use");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "token");
}
both_modes!(a_password_reset_arrives_in_the_outbox_and_works_once);

async fn token_for(app: &TestApp) -> String {
    let pool = app.backing.pool().await;
    AuthStore::issue_token(&pool, user_id("ada"), 600)
        .await
        .unwrap()
}

async fn repeated_sign_in_attempts_are_rate_limited(mode: Mode) {
    let app = spawn_app(mode).await;
    register(&app, "ada").await;
    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(login(&app, "ada", "wrong password").await.status().as_u16());
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    let response = login(&app, "ada", PASSWORD).await;
    assert_eq!(response.status(), 429, "even the right password waits");
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0);
    assert_eq!(
        login(&app, "someone-else", PASSWORD).await.status(),
        401,
        "other usernames are not blocked"
    );
}
both_modes!(repeated_sign_in_attempts_are_rate_limited);

async fn registration_validates_each_field(mode: Mode) {
    let app = spawn_app(mode).await;
    let cases = [
        (
            "a short username",
            json!({"username": "ab", "password": PASSWORD, "full_name": "A", "email": "a@example.com", "phone": "+441234567890"}),
            "username",
        ),
        (
            "a short password",
            json!({"username": "abc", "password": "short", "full_name": "A", "email": "a@example.com", "phone": "+441234567890"}),
            "password",
        ),
        (
            "a bad e-mail",
            json!({"username": "abc", "password": PASSWORD, "full_name": "A", "email": "a@b", "phone": "+441234567890"}),
            "email",
        ),
        (
            "a bad phone",
            json!({"username": "abc", "password": PASSWORD, "full_name": "A", "email": "a@example.com", "phone": "+12 34"}),
            "phone",
        ),
        (
            "no name",
            json!({"username": "abc", "password": PASSWORD, "full_name": " ", "email": "a@example.com", "phone": "+441234567890"}),
            "full_name",
        ),
        (
            "a missing field",
            json!({"username": "abc", "password": PASSWORD, "email": "a@example.com", "phone": "+441234567890"}),
            "full_name",
        ),
    ];
    for (what, body, field) in cases {
        let response = app.post("/api/v1/auth/register", body).await;
        assert_eq!(response.status(), 422, "{what}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{what}: {problem}");
    }
    let pool = app.backing.pool().await;
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 0, "nothing was written");
}
both_modes!(registration_validates_each_field);

#[test]
fn the_readme_prints_the_current_permission_matrix() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(&permissions::markdown()),
        "README.md is missing the current matrix: paste `cargo run -q -- permissions` into it"
    );
}
