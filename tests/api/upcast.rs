//! Old event versions: an upcaster turns a stored v0.9 payload into the
//! current shape, both when the aggregate loads and when consumers read the
//! log. The fixture is a payload as an old version wrote it.

use std::sync::Arc;

use annals::app::CommandContext;
use annals::Module;
use annals_domain::{Actor, EventMetadata};
use cqrs_es::persist::SemanticVersionEventUpcaster;
use serde_json::json;

use crate::both_modes;
use crate::support::ledger::{Account, AccountCommand, LedgerModule};
use crate::support::{Backing, Mode};

/// v0.9 stored deposits in cents.
const OLD_DEPOSIT: &str = r#"{"Deposited": {"cents": 1250}}"#;

struct LedgerWithUpcaster;

impl Module for LedgerWithUpcaster {
    fn name(&self) -> &'static str {
        "test-ledger"
    }
    fn routes(&self) -> utoipa_axum::router::OpenApiRouter<annals::http::AppState> {
        LedgerModule.routes()
    }
    fn upcasters(&self) -> Vec<Arc<dyn cqrs_es::persist::EventUpcaster>> {
        vec![Arc::new(SemanticVersionEventUpcaster::new(
            "MoneyDeposited",
            "1.0",
            Box::new(|payload| {
                let cents = payload["Deposited"]["cents"].as_i64().unwrap_or(0);
                json!({"Deposited": {"amount": cents / 100}})
            }),
        ))]
    }
}

async fn an_old_event_version_is_upcast_on_load_and_in_the_log(mode: Mode) {
    let backing = Backing::new(mode).await;
    let modules: Vec<Box<dyn Module>> = vec![Box::new(LedgerWithUpcaster)];
    let platform = annals::startup::connect(backing.settings("127.0.0.1:0"), &modules)
        .await
        .unwrap();
    let bus = platform.command_bus::<Account>();
    let ctx = CommandContext::new(EventMetadata::for_command(Actor::System));
    let run = |command| bus.execute(&ctx, "old", command);
    run(AccountCommand::Open {
        owner: "Ada".into(),
    })
    .await
    .unwrap();
    let pool = backing.pool().await;
    sqlx::query(&format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('test_account', 'old', 2, 'MoneyDeposited', '0.9', '{OLD_DEPOSIT}', '{{}}')"
    ))
    .execute(&pool)
    .await
    .unwrap();

    // 12 (not 1250) is in the account: withdrawing 12 works, 13 would not.
    assert!(run(AccountCommand::Withdraw { amount: 13 }).await.is_err());
    run(AccountCommand::Withdraw { amount: 12 }).await.unwrap();

    let events = platform.log.read_after(0, 10).await.unwrap();
    assert_eq!(events[1].event_version, "1.0.0");
    assert_eq!(events[1].payload, json!({"Deposited": {"amount": 12}}));
}
both_modes!(an_old_event_version_is_upcast_on_load_and_in_the_log);
