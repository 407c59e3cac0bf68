//! G4: the global log is gap-free in effect. Concurrent writers, rolled
//! back transactions and a transaction held open while others try to commit;
//! a reader tailing the log must see every committed event exactly once, in
//! position order.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use annals::app::CommandContext;
use annals_domain::{Actor, EventMetadata};
use sqlx::Executor;

use crate::both_modes;
use crate::support::ledger::{Account, AccountCommand};
use crate::support::{modules, Backing, Mode};

const WRITERS: usize = 8;
const COMMANDS_PER_WRITER: usize = 40;

async fn a_tailing_reader_sees_every_committed_event_once_in_order(mode: Mode) {
    let backing = Backing::new(mode).await;
    let platform = Arc::new(
        annals::startup::connect(backing.settings("127.0.0.1:0"), &modules())
            .await
            .unwrap(),
    );
    let bus = Arc::new(platform.command_bus::<Account>());
    let pool = backing.pool().await;
    let done = Arc::new(AtomicBool::new(false));

    // The reader: tails the log the way consumers do.
    let reader = {
        let (log, done) = (platform.log.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut last = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let batch = log.read_after(last, 50).await.unwrap();
                for event in &batch {
                    assert!(event.position > last, "positions go forward");
                    last = event.position;
                    seen.push((event.position, event.event_id));
                }
                if batch.is_empty() {
                    if finished {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            }
            seen
        })
    };

    // Writers: commands through the real event store, on shared aggregates.
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let bus = bus.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..COMMANDS_PER_WRITER {
                let id = format!("acc-{}", (w + i) % 5);
                let command = if i < 5 {
                    AccountCommand::Open { owner: "w".into() }
                } else {
                    AccountCommand::Deposit { amount: 1 }
                };
                // Opening twice is refused; that is fine, it writes nothing.
                let _ = bus
                    .execute(
                        &CommandContext::new(EventMetadata::for_command(Actor::System)),
                        &id,
                        command,
                    )
                    .await;
            }
        }));
    }

    // Transactions that insert events and roll back.
    let rollbacks = {
        let pool = pool.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                let mut tx = pool.begin().await.unwrap();
                tx.execute(
                    sqlx::query(
                        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                         VALUES ('rolled_back', $1, 1, 'Nothing', '1', '{}', '{}')",
                    )
                    .bind(format!("rb-{i}")),
                )
                .await
                .unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                tx.rollback().await.unwrap();
            }
        })
    };

    // A transaction that appends and stays open while the others try to commit.
    let held_open = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut tx = pool.begin().await.unwrap();
            tx.execute(sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                 VALUES ('held_open', 'h', 1, 'Held', '1', '{}', '{\"event_id\": \"00000000-0000-7000-8000-000000000001\"}')",
            ))
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(400)).await;
            tx.commit().await.unwrap();
        })
    };

    for writer in writers {
        writer.await.unwrap();
    }
    rollbacks.await.unwrap();
    held_open.await.unwrap();
    done.store(true, Ordering::SeqCst);
    let seen = reader.await.unwrap();

    let stored: Vec<(i64, String)> =
        sqlx::query_as("SELECT position, aggregate_type FROM events ORDER BY position")
            .fetch_all(&pool)
            .await
            .unwrap();
    let positions: Vec<i64> = seen.iter().map(|(p, _)| *p).collect();
    let stored_positions: Vec<i64> = stored.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        positions, stored_positions,
        "the reader saw exactly the stored events, in order"
    );
    assert_eq!(
        stored_positions,
        (1..=stored.len() as i64).collect::<Vec<_>>(),
        "positions are dense"
    );
    assert!(
        stored.iter().all(|(_, t)| t != "rolled_back"),
        "rolled back events are not stored"
    );
    assert!(
        stored.iter().any(|(_, t)| t == "held_open"),
        "the held-open transaction committed"
    );
    let ids: BTreeSet<_> = seen.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), seen.len(), "every event has its own id");
    // 5 opens and the deposits that followed.
    let accounts: i64 = stored.iter().filter(|(_, t)| t == "test_account").count() as i64;
    assert_eq!(
        accounts,
        (WRITERS * COMMANDS_PER_WRITER) as i64 - (WRITERS * 5) as i64 + 5
    );
}
both_modes!(a_tailing_reader_sees_every_committed_event_once_in_order);

async fn stored_events_cannot_be_updated_or_deleted(mode: Mode) {
    let backing = Backing::new(mode).await;
    let app = crate::support::TestApp::start(backing.clone()).await;
    use crate::support::Api;
    app.open("acc").await;
    let pool = backing.pool().await;
    for statement in [
        "UPDATE events SET payload = '{\"Opened\":{\"owner\":\"Mallory\"}}'",
        "UPDATE events SET position = 99",
        "DELETE FROM events",
    ] {
        let result = sqlx::query(statement).execute(&pool).await;
        assert!(result.is_err(), "{statement} must fail");
    }
    if mode == Mode::Server {
        assert!(
            sqlx::query("TRUNCATE events").execute(&pool).await.is_err(),
            "TRUNCATE must fail"
        );
    }
    let payload: String = sqlx::query_scalar("SELECT CAST(payload AS TEXT) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(payload.contains("Ada"), "payload unchanged: {payload}");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
    app.shutdown().await;
}
both_modes!(stored_events_cannot_be_updated_or_deleted);

/// Group commit: units committed in one transaction each keep their own
/// expected versions; one that conflicts fails alone, the others commit,
/// and the positions stay dense.
async fn a_batch_with_a_conflicting_unit_commits_the_good_ones(mode: Mode) {
    use crate::support::ledger::AccountEvent;
    use annals::store::{AppendError, CommitUnit, NewEvent, StreamAppend};
    use cqrs_es::DomainEvent;
    let backing = Backing::new(mode).await;
    let platform = annals::startup::connect(backing.settings("127.0.0.1:0"), &modules())
        .await
        .unwrap();
    let unit = |id: &str, expected: i64, event: AccountEvent| CommitUnit {
        streams: vec![StreamAppend {
            aggregate_type: "test_account",
            aggregate_id: id.to_string(),
            expected_version: expected,
            events: vec![NewEvent {
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload: serde_json::to_value(&event).unwrap(),
            }],
            snapshot: None,
        }],
        metadata: Default::default(),
        idempotency: None,
    };
    let writer = platform.commands.writer();
    let opened = writer
        .commit(unit(
            "a",
            0,
            AccountEvent::Opened {
                owner: "Ada".into(),
            },
        ))
        .await
        .unwrap();
    let results = writer
        .commit_all(vec![
            unit("a", 1, AccountEvent::Deposited { amount: 5 }),
            // Written against a version that is gone: "a" has event 1.
            unit(
                "a",
                0,
                AccountEvent::Opened {
                    owner: "Eve".into(),
                },
            ),
            unit(
                "b",
                0,
                AccountEvent::Opened {
                    owner: "Bob".into(),
                },
            ),
        ])
        .await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(
        matches!(&results[1], Err(AppendError::Conflict { aggregate_id, .. }) if aggregate_id == "a"),
        "{:?}",
        results[1]
    );
    let (deposit, bob) = (results[0].as_ref().unwrap(), results[2].as_ref().unwrap());
    assert_eq!(deposit.position, opened.position + 1);
    assert_eq!(
        bob.position,
        opened.position + 2,
        "dense: the conflict took no position"
    );
    let log = platform.log.read_after(0, 10).await.unwrap();
    let owners: Vec<_> = log
        .iter()
        .map(|e| (e.aggregate_id.as_str(), e.sequence, e.position))
        .collect();
    assert_eq!(
        owners,
        [
            ("a", 1, opened.position),
            ("a", 2, deposit.position),
            ("b", 1, bob.position)
        ]
    );
    let (account, version) = platform.command_bus::<Account>().load("a").await.unwrap();
    assert_eq!((account.balance, version), (5, 2));
}
both_modes!(a_batch_with_a_conflicting_unit_commits_the_good_ones);

/// Two units of one batch carrying the same `Idempotency-Key`: the first
/// commits with its key, the second is told the key is taken and writes
/// nothing, and a third without a key commits beside them. (On PostgreSQL
/// the batch is first tried as one INSERT; the taken key sends it back to
/// one savepoint per unit.)
async fn a_batch_with_a_taken_key_commits_the_others(mode: Mode) {
    use crate::support::ledger::AccountEvent;
    use annals::store::{AppendError, CommitUnit, IdempotencyRecord, NewEvent, StreamAppend};
    use cqrs_es::DomainEvent;
    let backing = Backing::new(mode).await;
    let platform = annals::startup::connect(backing.settings("127.0.0.1:0"), &modules())
        .await
        .unwrap();
    let unit = |id: &str, key: Option<&str>| CommitUnit {
        streams: vec![StreamAppend {
            aggregate_type: "test_account",
            aggregate_id: id.to_string(),
            expected_version: 0,
            events: vec![{
                let event = AccountEvent::Opened { owner: id.into() };
                NewEvent {
                    event_type: event.event_type(),
                    event_version: event.event_version(),
                    payload: serde_json::to_value(&event).unwrap(),
                }
            }],
            snapshot: None,
        }],
        metadata: Default::default(),
        idempotency: key.map(|key| {
            let record = IdempotencyRecord {
                scope: "test".into(),
                key: key.into(),
                fingerprint: "f".into(),
            };
            let outcome: Box<annals::store::Outcome> = Box::new(|c| c.position.to_string());
            (record, outcome)
        }),
    };
    let results = platform
        .commands
        .writer()
        .commit_all(vec![
            unit("x", Some("k-1")),
            unit("y", Some("k-1")),
            unit("z", None),
        ])
        .await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(
        matches!(results[1], Err(AppendError::KeyTaken)),
        "{:?}",
        results[1]
    );
    assert!(results[2].is_ok(), "{:?}", results[2]);
    let log = platform.log.read_after(0, 10).await.unwrap();
    let ids: Vec<_> = log.iter().map(|e| e.aggregate_id.as_str()).collect();
    assert_eq!(ids, ["x", "z"], "y wrote nothing");
    assert_eq!(
        log.iter().map(|e| e.position).collect::<Vec<_>>(),
        [1, 2],
        "dense"
    );
}
both_modes!(a_batch_with_a_taken_key_commits_the_others);

/// G1 holds for events, keys and credentials: their pools commit durably.
/// Only read models (`Db::derived`, rebuilt from the log) skip the wait
/// for the disk.
async fn only_read_models_commit_without_waiting_for_the_disk(mode: Mode) {
    let backing = Backing::new(mode).await;
    let platform = annals::startup::connect(backing.settings("127.0.0.1:0"), &modules())
        .await
        .unwrap();
    let db = &platform.db;
    // SQLite: 2 = FULL, 1 = NORMAL.
    let (sql, durable, lazy) = match db.backend {
        annals::store::Backend::Sqlite => (
            "SELECT CAST(synchronous AS TEXT) FROM pragma_synchronous",
            "2",
            "1",
        ),
        annals::store::Backend::Postgres => {
            ("SELECT current_setting('synchronous_commit')", "on", "off")
        }
    };
    let events: String = match &db.typed {
        annals::store::TypedPool::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        annals::store::TypedPool::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .unwrap();
    let others: String = sqlx::query_scalar(sql).fetch_one(&db.any).await.unwrap();
    let read_models: String = sqlx::query_scalar(sql)
        .fetch_one(&db.derived)
        .await
        .unwrap();
    assert_eq!(events, durable, "the event store");
    assert_eq!(others, durable, "keys, credentials, the ledger");
    assert_eq!(read_models, lazy, "read models");
}
both_modes!(only_read_models_commit_without_waiting_for_the_disk);
