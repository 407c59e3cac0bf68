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

/// A parameter's schema, with a `$ref` to a component resolved.
fn resolve<'a>(doc: &'a serde_json::Value, schema: &'a serde_json::Value) -> &'a serde_json::Value {
    match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.rsplit('/').next().unwrap()],
        None => schema,
    }
}

/// A value the parameter takes.
fn valid(name: &str, schema: &serde_json::Value, day: &str) -> String {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.as_str().unwrap().to_string();
    }
    match (schema["type"].as_str(), schema["format"].as_str()) {
        (_, Some("uuid")) => uuid::Uuid::now_v7().to_string(),
        (_, Some("date")) => day.to_string(),
        (_, Some("date-time")) => format!("{day}T10:00:00Z"),
        (Some("integer"), _) => schema["minimum"].as_i64().unwrap_or(0).max(1).to_string(),
        (Some("boolean"), _) => "false".into(),
        _ if name == "status" => "booked".into(),
        _ => "x".into(),
    }
}

/// Values the parameter must refuse, with what the refusal must say.
fn invalid(schema: &serde_json::Value) -> Vec<(String, Option<&'static str>)> {
    let mut bad = Vec::new();
    match (schema["type"].as_str(), schema["format"].as_str()) {
        (_, Some("uuid")) => bad.push(("not-a-uuid".into(), None)),
        (_, Some("date")) => bad.push(("2026-13-45".into(), None)),
        (_, Some("date-time")) => bad.push(("2026-12-03T12:00:00".into(), Some("RFC 3339"))),
        (Some("integer"), _) => {
            bad.push(("abc".into(), None));
            if let Some(min) = schema["minimum"].as_i64() {
                bad.push(((min - 1).to_string(), None));
            }
            if let Some(max) = schema["maximum"].as_i64() {
                bad.push(((max + 1).to_string(), None));
            }
        }
        (Some("boolean"), _) => bad.push(("maybe".into(), None)),
        _ => {}
    }
    if schema["enum"].is_array() || schema["pattern"].is_string() {
        bad.push(("no-such-value".into(), None));
    }
    if let Some(max) = schema["maxLength"].as_u64() {
        bad.push(("x".repeat(max as usize + 1), None));
    }
    bad
}

/// One rule on every route of the OpenAPI document: any problem with a
/// query or path parameter — unreadable, out of range, too long, not one of
/// the values — is 400 problem+json naming it (422 is for body fields).
async fn every_parameter_problem_is_400_naming_it_on_every_route(mode: Mode) {
    let shop = crate::appointments::shop(mode).await;
    let doc = serde_json::to_value(annals::http::openapi_document(&annals::modules())).unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let params: Vec<&serde_json::Value> = op["parameters"]
                .as_array()
                .map(|p| {
                    p.iter()
                        .filter(|p| p["in"] == "query" || p["in"] == "path")
                        .collect()
                })
                .unwrap_or_default();
            // A body the route takes, so only the parameter is wrong.
            let body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .map(|r| {
                    doc["components"]["schemas"][r.rsplit('/').next().unwrap()]["examples"][0]
                        .clone()
                });
            for target in &params {
                let schema = resolve(&doc, &target["schema"]);
                for (bad, says) in invalid(schema) {
                    let name = target["name"].as_str().unwrap();
                    let mut url = path.clone();
                    let mut query = Vec::new();
                    for p in &params {
                        let pname = p["name"].as_str().unwrap();
                        let value = if pname == name {
                            bad.clone()
                        } else {
                            valid(pname, resolve(&doc, &p["schema"]), &shop.day)
                        };
                        if p["in"] == "path" {
                            url = url.replace(&format!("{{{pname}}}"), &value);
                        } else if pname == name || p["required"] == true {
                            query.push((pname.to_string(), value));
                        }
                    }
                    let mut request = shop
                        .app
                        .http()
                        .request(method.to_uppercase().parse().unwrap(), shop.app.url(&url))
                        .bearer_auth(&shop.admin)
                        .query(&query);
                    if let Some(body) = &body {
                        request = request.json(body);
                    }
                    let response = request.send().await.unwrap();
                    let status = response.status().as_u16();
                    let problem: serde_json::Value = response.json().await.unwrap_or_default();
                    let named = problem["errors"][0]["field"] == name;
                    let said = says.is_none_or(|s| {
                        problem["errors"][0]["message"]
                            .as_str()
                            .is_some_and(|m| m.contains(s))
                    });
                    if status != 400 || !named || !said {
                        failures.push(format!(
                            "{method} {path} {name}={bad:.20}: {status} {problem}"
                        ));
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked}:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{checked} parameter cases checked");
    assert!(checked > 60, "only {checked} cases");
}
both_modes!(every_parameter_problem_is_400_naming_it_on_every_route);

/// A time without an offset in a body is 422 saying what a time looks like.
async fn a_time_without_an_offset_says_what_a_time_looks_like(mode: Mode) {
    let shop = crate::appointments::shop(mode).await;
    let (status, problem) = crate::appointments::call(
        &shop.app,
        "POST",
        "/api/v1/appointments",
        &shop.admin,
        Some(serde_json::json!({"service_id": shop.service, "start": format!("{}T10:00:00", shop.day)})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "start");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("RFC 3339 with an offset, e.g. 2026-12-03T12:00:00+01:00"),
        "{problem}"
    );
}
both_modes!(a_time_without_an_offset_says_what_a_time_looks_like);
