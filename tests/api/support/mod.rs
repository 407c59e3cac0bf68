//! The black-box harness: the real application on a free port against real
//! SQLite, or real PostgreSQL and NATS, with the test-only ledger module.

pub mod ledger;
pub mod services;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use annals::config::Settings;
use annals::{Application, Module};
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub use services::{free_port, Nats, Postgres};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// SQLite file, in-process fan-out.
    Embedded,
    /// PostgreSQL and NATS JetStream.
    Server,
}

/// Where one test's application keeps its state (reused across restarts).
#[derive(Clone, Debug)]
pub struct Backing {
    #[allow(dead_code)]
    pub mode: Mode,
    pub env: HashMap<String, String>,
    _dir: std::sync::Arc<tempfile::TempDir>,
}

impl Backing {
    pub async fn new(mode: Mode) -> Self {
        Self::with(mode, None, None).await
    }

    /// No database, no NATS, nothing in the environment: for commands that
    /// must work offline.
    pub fn offline() -> Self {
        Self {
            mode: Mode::Embedded,
            env: HashMap::new(),
            _dir: std::sync::Arc::new(tempfile::tempdir().unwrap()),
        }
    }

    /// With a dedicated PostgreSQL or NATS (for tests that stop them).
    pub async fn with(mode: Mode, pg: Option<&Postgres>, nats: Option<&Nats>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut env = HashMap::new();
        env.insert("ANNALS_DATA_DIR".into(), dir.path().display().to_string());
        env.insert("ANNALS_DB_POOL_SIZE".into(), "8".into());
        if mode == Mode::Server {
            let pg = pg.unwrap_or_else(|| Postgres::shared());
            env.insert("DATABASE_URL".into(), pg.create_database().await);
            let nats = nats.unwrap_or_else(|| Nats::shared());
            env.insert("NATS_URL".into(), nats.url());
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            env.insert(
                "ANNALS_NATS_PREFIX".into(),
                format!("t{}-{n}", std::process::id()),
            );
        }
        Self {
            mode,
            env,
            _dir: std::sync::Arc::new(dir),
        }
    }

    pub fn settings(&self, listen: &str) -> Settings {
        let mut env = self.env.clone();
        env.insert("ANNALS_LISTEN".into(), listen.into());
        Settings::from_lookup(|name| env.get(name).cloned()).unwrap()
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir().join("annals.db")
    }

    pub fn data_dir(&self) -> PathBuf {
        PathBuf::from(&self.env["ANNALS_DATA_DIR"])
    }

    /// A direct connection to the same database, for assertions.
    pub async fn pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        let url = match self.env.get("DATABASE_URL") {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.sqlite_path().display()),
        };
        sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .unwrap()
    }
}

/// The server's modules plus the test-only ledger.
pub fn modules() -> Vec<Box<dyn Module>> {
    let mut modules = annals::modules();
    modules.push(Box::new(ledger::LedgerModule));
    modules
}

/// A running application, in this process.
pub struct TestApp {
    pub address: String,
    /// The running application's platform (its clock, its database).
    pub platform: std::sync::Arc<annals::Platform>,
    pub client: reqwest::Client,
    pub backing: Backing,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app(mode: Mode) -> TestApp {
    TestApp::start(Backing::new(mode).await).await
}

impl TestApp {
    pub async fn start(backing: Backing) -> TestApp {
        annals::telemetry::init_for_tests();
        let app = Application::build(backing.settings("127.0.0.1:0"), modules())
            .await
            .unwrap();
        let address = format!("http://{}", app.local_addr());
        let platform = app.platform().clone();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        TestApp {
            address,
            platform,
            client: client(),
            backing,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Graceful shutdown, as on SIGTERM.
    pub async fn shutdown(mut self) -> Backing {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
        self.backing.clone()
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// What every harness offers: HTTP helpers and settling.
pub trait Api {
    fn base(&self) -> &str;
    fn http(&self) -> &reqwest::Client;
    fn backing(&self) -> &Backing;

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http()
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self.http().get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn open(&self, id: &str) -> Value {
        let response = self
            .post("/api/v1/test-accounts", json!({"id": id, "owner": "Ada"}))
            .await;
        assert_eq!(response.status(), 201, "opening {id}");
        response.json().await.unwrap()
    }

    /// Waits until every consumer has applied the whole log.
    async fn settle(&self) {
        let pool = self.backing().pool().await;
        let started = Instant::now();
        loop {
            let head = log_head(&pool).await;
            let behind: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM consumer_checkpoints WHERE position < $1")
                    .bind(head)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            if behind == 0 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "consumers did not reach {head}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        pool.close().await;
    }
}

impl Api for TestApp {
    fn base(&self) -> &str {
        &self.address
    }
    fn http(&self) -> &reqwest::Client {
        &self.client
    }
    fn backing(&self) -> &Backing {
        &self.backing
    }
}

/// The application as a separate process (this test binary re-executed),
/// so it can be killed with SIGKILL.
pub struct ChildApp {
    pub address: String,
    pub client: reqwest::Client,
    pub backing: Backing,
    child: Child,
}

pub const CHILD_ENV: &str = "ANNALS_TEST_CHILD";

impl ChildApp {
    pub async fn start(backing: Backing) -> ChildApp {
        Self::start_with(backing, &["serve"]).await
    }

    pub async fn start_with(backing: Backing, args: &[&str]) -> ChildApp {
        let port = free_port();
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "child_process_entry",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .envs(&backing.env)
            .env("ANNALS_LISTEN", format!("127.0.0.1:{port}"))
            .env(CHILD_ENV, args.join("\u{1f}"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let child = command.spawn().unwrap();
        let app = ChildApp {
            address: format!("http://127.0.0.1:{port}"),
            client: client(),
            backing,
            child,
        };
        let started = Instant::now();
        while app.client.get(app.url("/healthz")).send().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "child server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        app
    }

    /// SIGTERM, then waits for the process to end.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        self.child.wait().unwrap()
    }

    /// Waits for the process to end by itself (a failpoint aborted it).
    #[cfg(feature = "failpoints")]
    pub fn ended(mut self) -> (std::process::ExitStatus, Backing) {
        let status = self.child.wait().unwrap();
        (status, self.backing.clone())
    }

    pub fn kill(mut self) -> Backing {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.backing.clone()
    }
}

impl Drop for ChildApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Api for ChildApp {
    fn base(&self) -> &str {
        &self.address
    }
    fn http(&self) -> &reqwest::Client {
        &self.client
    }
    fn backing(&self) -> &Backing {
        &self.backing
    }
}

/// Makes the relay to NATS stall for good: its lease is held by a holder
/// that never comes back (before the application starts, so it never leads).
pub async fn stall_the_relay(backing: &Backing) {
    run_cli(backing, &["migrate"]);
    let pool = backing.pool().await;
    sqlx::query(
        "INSERT INTO leases (name, holder, expires_at, epoch) VALUES ('nats-relay', 'stalled-elsewhere', $1, 1)",
    )
    .bind(i64::MAX / 2)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

/// Runs a CLI command in a child process; whether it succeeded, and its
/// stdout and stderr (for commands that are meant to fail).
pub fn run_cli_status(backing: &Backing, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_process_entry",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(&backing.env)
        .env(CHILD_ENV, args.join("\u{1f}"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// `annals replay --verify`: every read model's rebuild is identical to
/// its live rows.
pub fn assert_rebuilds_identical(backing: &Backing) {
    let (ok, stdout, stderr) = run_cli_status(backing, &["replay", "--verify"]);
    assert!(ok && stdout.contains("identical: "), "{stdout}\n{stderr}");
}

/// Runs a CLI command (e.g. `replay --consumer X`) in a child process
/// with the test modules; returns its stdout.
pub fn run_cli(backing: &Backing, args: &[&str]) -> String {
    let (ok, stdout, stderr) = run_cli_status(backing, args);
    assert!(ok, "annals {args:?} failed: {stdout}\n{stderr}");
    stdout
}

/// The log's head: the position of the latest stored event (0 when empty).
pub async fn log_head(pool: &sqlx::AnyPool) -> i64 {
    sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(pool)
        .await
        .unwrap()
}
