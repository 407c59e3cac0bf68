//! Integration tests: the real application over HTTP, against real SQLite,
//! PostgreSQL and NATS JetStream. Each scenario runs in both modes.

mod support;

mod appointments;
mod audit;
mod bad_input;
mod clients;
mod commands;
mod consumers;
mod customers;
mod faults;
mod identity;
mod log;
mod marketing;
mod notifier;
mod openapi;
mod ops;
mod privacy;
mod projects;
mod shop;
mod snapshots;
mod studio;
mod upcast;
mod workflows;

/// Not a test: the entry point of a child process that runs the annals CLI
/// with the test modules (see `support::ChildApp`), so tests can SIGKILL it.
#[test]
#[ignore = "entry point of child processes started by the tests"]
fn child_process_entry() {
    let Ok(args) = std::env::var(support::CHILD_ENV) else {
        return;
    };
    // FAILPOINTS="name=action;..." arms the append path's failpoints.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    use clap::Parser;
    let cli = annals::cli::Cli::parse_from(std::iter::once("annals").chain(args.split('\u{1f}')));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(annals::cli::run(cli, support::modules()))
        .unwrap();
}

/// Declares `#[tokio::test]`s running `scenario` in embedded and server mode.
#[macro_export]
macro_rules! both_modes {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn embedded() {
                super::$scenario($crate::support::Mode::Embedded).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn server() {
                super::$scenario($crate::support::Mode::Server).await;
            }
        }
    };
}
