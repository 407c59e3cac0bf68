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
        events.iter().any(|(_, row)| row.contains("pii1:")),
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
        out.contains(&format!("erased the personal data of user {id}")),
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
