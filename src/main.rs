//! The `annals` binary.
#![forbid(unsafe_code)]

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // A missing .env is normal; a broken one is reported by the settings.
    let _ = dotenvy::dotenv();
    let cli = annals::cli::Cli::parse();
    match annals::cli::run(cli, annals::modules()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("annals: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
