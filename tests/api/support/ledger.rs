//! A test-only aggregate (not shipped): ledger accounts with deposits and
//! withdrawals, a read model, and REST routes. The platform tests use it to
//! try to break the guarantees.

use std::sync::Arc;

use annals::app::AppError;
use annals::auth::permissions::Access;
use annals::http::{
    accepted, ApiError, ApiQuery, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders,
    JsonBody,
};
use annals::Module;
use annals_domain::{FieldError, RuleKind, RuleViolation, StoredEvent};
use annals_projections::Projector;
use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::Json;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, AnyPool, Row};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const CONSUMER: &str = "test_accounts";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Account {
    open: bool,
    pub balance: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum AccountCommand {
    Open { owner: String },
    Deposit { amount: i64 },
    Withdraw { amount: i64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: i64 },
    Withdrew { amount: i64 },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Opened { .. } => "AccountOpened",
            Self::Deposited { .. } => "MoneyDeposited",
            Self::Withdrew { .. } => "MoneyWithdrawn",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AccountError {
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("no such account")]
    NotOpen,
    #[error("the balance is {balance}, less than {amount}")]
    InsufficientFunds { balance: i64, amount: i64 },
    #[error("amount must be greater than 0")]
    NonPositiveAmount,
    #[error("owner must be 1 to 100 characters")]
    BadOwner,
}

impl RuleViolation for AccountError {
    fn kind(&self) -> RuleKind {
        match self {
            Self::AlreadyOpen | Self::InsufficientFunds { .. } => RuleKind::Conflict,
            Self::NotOpen => RuleKind::NotFound,
            Self::NonPositiveAmount => {
                RuleKind::Invalid(vec![FieldError::new("amount", self.to_string())])
            }
            Self::BadOwner => RuleKind::Invalid(vec![FieldError::new("owner", self.to_string())]),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::AlreadyOpen => "already-open",
            Self::NotOpen => "not-open",
            Self::InsufficientFunds { .. } => "insufficient-funds",
            Self::NonPositiveAmount | Self::BadOwner => "validation",
        }
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "test_account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(
        &mut self,
        command: AccountCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        let event = match command {
            AccountCommand::Open { owner } => {
                if self.open {
                    return Err(AccountError::AlreadyOpen);
                }
                if owner.trim().is_empty() || owner.chars().count() > 100 {
                    return Err(AccountError::BadOwner);
                }
                AccountEvent::Opened { owner }
            }
            AccountCommand::Deposit { amount } | AccountCommand::Withdraw { amount }
                if amount <= 0 =>
            {
                return Err(AccountError::NonPositiveAmount)
            }
            _ if !self.open => return Err(AccountError::NotOpen),
            AccountCommand::Deposit { amount } => AccountEvent::Deposited { amount },
            AccountCommand::Withdraw { amount } => {
                if amount > self.balance {
                    return Err(AccountError::InsufficientFunds {
                        balance: self.balance,
                        amount,
                    });
                }
                AccountEvent::Withdrew { amount }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::Opened { .. } => self.open = true,
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrew { amount } => self.balance -= amount,
        }
    }
}

pub struct LedgerModule;

impl Module for LedgerModule {
    fn name(&self) -> &'static str {
        "test-ledger"
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(open_account))
            .routes(routes!(deposit))
            .routes(routes!(withdraw))
            .routes(routes!(get_account))
            .routes(routes!(list_accounts))
    }

    fn projectors(&self) -> Vec<Arc<dyn Projector>> {
        vec![Arc::new(AccountsProjector)]
    }

    fn access(&self) -> Vec<(&'static str, &'static str, Access)> {
        vec![
            ("POST", "/api/v1/test-accounts", Access::Public),
            ("POST", "/api/v1/test-accounts/{id}/deposit", Access::Public),
            (
                "POST",
                "/api/v1/test-accounts/{id}/withdraw",
                Access::Public,
            ),
            ("GET", "/api/v1/test-accounts/{id}", Access::Public),
            ("GET", "/api/v1/test-accounts", Access::Public),
        ]
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAccount {
    pub id: String,
    pub owner: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Amount {
    pub amount: i64,
}

#[derive(Deserialize)]
pub struct ReadQuery {
    pub min_position: Option<i64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
pub struct AccountView {
    pub id: String,
    pub owner: String,
    pub balance: i64,
    pub version: i64,
}

async fn execute(
    app: &AppState,
    call: &CommandCall,
    id: String,
    command: AccountCommand,
    status: StatusCode,
) -> Response {
    let done = app
        .platform
        .commands
        .execute::<Account>(&call.context(), &id, command)
        .await;
    accepted(status, done)
}

#[utoipa::path(post, path = "/test-accounts", request_body = OpenAccount,
    responses((status = 201, body = CommandAccepted)))]
async fn open_account(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<OpenAccount>,
) -> Response {
    let call = CommandCall::new(
        caller,
        headers,
        Method::POST.as_str(),
        "/test-accounts",
        body.digest,
    );
    let OpenAccount { id, owner } = body.value;
    execute(
        &app,
        &call,
        id,
        AccountCommand::Open { owner },
        StatusCode::CREATED,
    )
    .await
}

#[utoipa::path(post, path = "/test-accounts/{id}/deposit", request_body = Amount,
    params(("id" = String, Path)), responses((status = 200, body = CommandAccepted)))]
async fn deposit(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<Amount>,
) -> Response {
    let call = CommandCall::new(
        caller,
        headers,
        "POST",
        &format!("/test-accounts/{id}/deposit"),
        body.digest,
    );
    let command = AccountCommand::Deposit {
        amount: body.value.amount,
    };
    execute(&app, &call, id, command, StatusCode::OK).await
}

#[utoipa::path(post, path = "/test-accounts/{id}/withdraw", request_body = Amount,
    params(("id" = String, Path)), responses((status = 200, body = CommandAccepted)))]
async fn withdraw(
    State(app): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: CommandHeaders,
    body: JsonBody<Amount>,
) -> Response {
    let call = CommandCall::new(
        caller,
        headers,
        "POST",
        &format!("/test-accounts/{id}/withdraw"),
        body.digest,
    );
    let command = AccountCommand::Withdraw {
        amount: body.value.amount,
    };
    execute(&app, &call, id, command, StatusCode::OK).await
}

#[utoipa::path(get, path = "/test-accounts/{id}", params(("id" = String, Path)),
    responses((status = 200, body = AccountView)))]
async fn get_account(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<AccountView>, ApiError> {
    app.platform.wait_for(CONSUMER, query.min_position).await?;
    let found = accounts(&app.platform.db.any, Some(&id))
        .await
        .map_err(AppError::from)?;
    let account = found
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("no such account"))?;
    Ok(Json(account))
}

#[utoipa::path(get, path = "/test-accounts", responses((status = 200, body = Vec<AccountView>)))]
async fn list_accounts(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<Vec<AccountView>>, ApiError> {
    app.platform.wait_for(CONSUMER, query.min_position).await?;
    let all = accounts(&app.platform.db.any, None)
        .await
        .map_err(AppError::from)?;
    Ok(Json(all))
}

/// The read side of the test read model: one account, or all by id.
async fn accounts(pool: &AnyPool, id: Option<&str>) -> Result<Vec<AccountView>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, owner, balance, version FROM test_accounts WHERE ($1 = '' OR id = $1) ORDER BY id",
    )
    .bind(id.unwrap_or_default())
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AccountView {
                id: row.try_get("id")?,
                owner: row.try_get("owner")?,
                balance: row.try_get("balance")?,
                version: row.try_get("version")?,
            })
        })
        .collect()
}

/// Owner name that makes the projector fail, to test a consumer that stops.
pub const POISON: &str = "poison";

pub struct AccountsProjector;

#[async_trait]
impl Projector for AccountsProjector {
    fn name(&self) -> &'static str {
        CONSUMER
    }

    async fn prepare(&self, pool: &AnyPool) -> anyhow::Result<()> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS test_accounts (id TEXT PRIMARY KEY, owner TEXT NOT NULL, \
             balance BIGINT NOT NULL, version BIGINT NOT NULL)",
        )
        .execute(pool)
        .await?;
        // One row per applied event: a second application of the same event
        // violates the key, so "exactly once" is checked by the database.
        sqlx::query("CREATE TABLE IF NOT EXISTS test_applied (position BIGINT PRIMARY KEY)")
            .execute(pool)
            .await?;
        Ok(())
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        for event in events {
            sqlx::query("INSERT INTO test_applied (position) VALUES ($1)")
                .bind(event.position)
                .execute(&mut *tx)
                .await?;
            if event.aggregate_type != Account::TYPE {
                continue;
            }
            let parsed: AccountEvent = serde_json::from_value(event.payload.clone())?;
            match parsed {
                AccountEvent::Opened { owner } => {
                    anyhow::ensure!(owner != POISON, "poisoned event");
                    sqlx::query("INSERT INTO test_accounts (id, owner, balance, version) VALUES ($1, $2, 0, $3)")
                        .bind(&event.aggregate_id)
                        .bind(owner)
                        .bind(event.sequence)
                        .execute(&mut *tx)
                        .await?;
                }
                AccountEvent::Deposited { amount } | AccountEvent::Withdrew { amount } => {
                    let delta = if matches!(parsed, AccountEvent::Deposited { .. }) {
                        amount
                    } else {
                        -amount
                    };
                    sqlx::query("UPDATE test_accounts SET balance = balance + $1, version = $2 WHERE id = $3")
                        .bind(delta)
                        .bind(event.sequence)
                        .bind(&event.aggregate_id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        Ok(())
    }

    fn tables(&self) -> &'static [&'static str] {
        &["test_accounts", "test_applied"]
    }
}
