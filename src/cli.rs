//! The command line: `serve` (default), `migrate`, `openapi`, `replay`.
//! Settings come from the environment (and `.env`); see README.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::platform::Module;
use crate::startup::{self, Application};

#[derive(Debug, Parser)]
#[command(
    name = "annals",
    version,
    about = "Event-sourced backend for service businesses",
    long_about = "Event-sourced backend for service businesses.\n\n\
                  Without configuration it runs embedded: SQLite under ANNALS_DATA_DIR (./data) and \
                  in-process fan-out. Set DATABASE_URL (postgres://...) and NATS_URL (nats://...) for \
                  server mode. Settings are environment variables (an optional .env file is read); \
                  the README lists them all."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server and the consumers (the default). Migrates first.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document (JSON) and exit.
    Openapi,
    /// Rebuild one read model from position 0 of the log.
    Replay {
        /// The consumer (read model) to rebuild; `annals replay --list` shows them.
        #[arg(long, required_unless_present = "list")]
        consumer: Option<String>,
        /// List the consumers that can be replayed.
        #[arg(long)]
        list: bool,
    },
}

/// Runs the CLI with the given modules (the binary passes `crate::modules()`).
pub async fn run(cli: Cli, modules: Vec<Box<dyn Module>>) -> Result<()> {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi = command {
        let doc = crate::http::openapi_document(&modules);
        println!("{}", doc.to_pretty_json().context("rendering OpenAPI")?);
        return Ok(());
    }
    let settings = Settings::from_env()?;
    crate::telemetry::init(settings.log_format);
    match command {
        Command::Serve => {
            let app = Application::build(settings, modules).await?;
            app.run_until(startup::shutdown_signal()).await
        }
        Command::Migrate => {
            let db = crate::store::Db::connect(&settings.database, 2).await?;
            db.migrate().await?;
            db.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Replay { consumer, list } => {
            let mut settings = settings;
            // Replay reads the log directly; it never needs NATS.
            settings.nats = None;
            let platform = startup::connect(settings, &modules).await?;
            if list {
                for projector in platform.projectors() {
                    println!("{}", projector.name());
                }
                return Ok(());
            }
            let name = consumer.expect("clap requires --consumer");
            let projector = platform.projector(&name).with_context(|| {
                let known: Vec<_> = platform.projectors().iter().map(|p| p.name()).collect();
                format!("no consumer named '{name}'; known: {}", known.join(", "))
            })?;
            let started = std::time::Instant::now();
            let position = crate::bus::replay(projector, &platform.db.any, &platform.log).await?;
            let elapsed = started.elapsed();
            println!(
                "replayed {name} to position {position} in {:.2}s ({:.0} events/s)",
                elapsed.as_secs_f64(),
                position as f64 / elapsed.as_secs_f64().max(1e-9)
            );
            platform.db.close().await;
            Ok(())
        }
        Command::Openapi => unreachable!(),
    }
}
