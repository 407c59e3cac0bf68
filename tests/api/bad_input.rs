//! G10: bad input gets a precise 4xx problem+json and changes nothing.

use crate::both_modes;
use crate::support::{spawn_app, Api, Mode};

/// (what, method, path, content type, body, extra header, status, field)
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
    u16,
    Option<&'static str>,
);

async fn bad_requests_get_problem_json_naming_the_field_and_write_nothing(mode: Mode) {
    let app = spawn_app(mode).await;
    app.open("acc").await;
    app.settle().await;
    let before = app.get_json("/api/v1/test-accounts").await;
    let json = "application/json";
    let cases: Vec<Case> = vec![
        (
            "malformed JSON",
            "POST",
            "/api/v1/test-accounts/acc/deposit",
            json,
            "{\"amount\": ",
            None,
            400,
            None,
        ),
        (
            "no content type",
            "POST",
            "/api/v1/test-accounts/acc/deposit",
            "",
            "{\"amount\": 1}",
            None,
            415,
            None,
        ),
        (
            "a text body",
            "POST",
            "/api/v1/test-accounts/acc/deposit",
            "text/plain",
            "amount=1",
            None,
            415,
            None,
        ),
        (
            "a missing field",
            "POST",
            "/api/v1/test-accounts/acc/deposit",
            json,
            "{}",
            None,
            422,
            Some("amount"),
        ),
        (
            "a string for a number",
            "POST",
            "/api/v1/test-accounts/acc/deposit",
            json,
            "{\"amount\": \"ten\"}",
            None,
            422,
            Some("amount"),
        ),
        (
            "a number too large",
            "POST",
            "/api/v1/test-accounts/acc/deposit",
            json,
            "{\"amount\": 1e400}",
            None,
            400,
            None,
        ),
        (
            "an unknown field",
            "POST",
            "/api/v1/test-accounts/acc/deposit",
            json,
            "{\"amount\": 1, \"memo\": 2}",
            None,
            422,
            Some("memo"),
        ),
        (
            "a negative amount",
            "POST",
            "/api/v1/test-accounts/acc/deposit",
            json,
            "{\"amount\": -1}",
            None,
            422,
            Some("amount"),
        ),
        (
            "an empty owner",
            "POST",
            "/api/v1/test-accounts",
            json,
            "{\"id\": \"b\", \"owner\": \" \"}",
            None,
            422,
            Some("owner"),
        ),
        (
            "a JSON array",
            "POST",
            "/api/v1/test-accounts",
            json,
            "[]",
            None,
            422,
            Some("body"),
        ),
        (
            "a bad If-Match",
            "POST",
            "/api/v1/test-accounts/acc/deposit",
            json,
            "{\"amount\": 1}",
            Some(("If-Match", "yesterday")),
            400,
            Some("If-Match"),
        ),
        (
            "an empty Idempotency-Key",
            "POST",
            "/api/v1/test-accounts/acc/deposit",
            json,
            "{\"amount\": 1}",
            Some(("Idempotency-Key", "")),
            400,
            Some("Idempotency-Key"),
        ),
        (
            "a bad min_position",
            "GET",
            "/api/v1/test-accounts?min_position=soon",
            "",
            "",
            None,
            400,
            Some("min_position"),
        ),
        (
            "a min_position beyond the log",
            "GET",
            "/api/v1/test-accounts?min_position=999999",
            "",
            "",
            None,
            409,
            Some("min_position"),
        ),
        (
            "an unknown route",
            "GET",
            "/api/v1/nothing-here",
            "",
            "",
            None,
            404,
            None,
        ),
        (
            "a wrong method",
            "DELETE",
            "/api/v1/test-accounts",
            "",
            "",
            None,
            405,
            None,
        ),
    ];
    for (what, method, path, content_type, body, header, status, field) in cases {
        let mut request = app
            .http()
            .request(method.parse().unwrap(), app.url(path))
            .body(body.to_string());
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{what}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{what}"
        );
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["status"], status, "{what}");
        assert!(
            problem["title"].is_string() && problem["detail"].is_string(),
            "{what}: {problem}"
        );
        if let Some(field) = field {
            assert_eq!(problem["errors"][0]["field"], field, "{what}: {problem}");
        }
    }
    app.settle().await;
    assert_eq!(
        app.get_json("/api/v1/test-accounts").await,
        before,
        "nothing changed"
    );
    let pool = app.backing.pool().await;
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events, 1, "only the opening event is stored");
}
both_modes!(bad_requests_get_problem_json_naming_the_field_and_write_nothing);
