//! Figures for the design targets of the platform (issue 2), on this
//! machine, with PostgreSQL durable (fsync on) and NATS JetStream:
//!
//! - pgbench: one-row INSERT per transaction, 32 clients — the yardstick;
//! - single-event commands over HTTP, 32 concurrent clients (server mode,
//!   and embedded mode for comparison);
//! - commit-to-read-model lag through NATS at a fixed 500 commands/s: each
//!   acknowledged command is followed by a query asking for its position;
//! - rebuilding a read model (`annals replay`) in events per second.
//!
//! Run: `bash bench/run.sh` (or `cargo bench --bench load` with the
//! ANNALS_TEST_* variables of tests/run.sh set). Every phase is bounded in
//! time; everything listens on loopback only. `BENCH_SECONDS` sets each
//! load phase's length (default 10).

#[allow(dead_code)]
#[path = "../tests/api/support/services.rs"]
mod services;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use services::{free_port, Nats, Postgres};

const CLIENTS: usize = 32;
const LAG_RATE: u64 = 500;
const PASSWORD: &str = "bench-password-1";

fn seconds() -> Duration {
    let s = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10u64);
    Duration::from_secs(s.clamp(1, 120))
}

fn annals(env: &HashMap<String, String>, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_annals"));
    command
        .args(args)
        .envs(env)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    command
}

/// A server process, stopped on drop.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

async fn serve(env: &HashMap<String, String>) -> Server {
    let mut create = annals(
        env,
        &[
            "user",
            "create",
            "--username",
            "bench",
            "--password-stdin",
            "--role",
            "admin",
        ],
    )
    .stdin(Stdio::piped())
    .spawn()
    .expect("annals user create");
    create
        .stdin
        .take()
        .unwrap()
        .write_all(PASSWORD.as_bytes())
        .unwrap();
    assert!(create.wait().unwrap().success(), "creating the bench user");
    let port = free_port();
    let child = annals(env, &["serve"])
        .env("ANNALS_LISTEN", format!("127.0.0.1:{port}"))
        .spawn()
        .expect("annals serve");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server not ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

async fn token(client: &reqwest::Client, base: &str) -> String {
    let answer: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "bench", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_string()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS * 2)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// One single-event command (a new category: a new aggregate, one event).
/// Returns its global position.
async fn command(client: &reqwest::Client, base: &str, token: &str, name: String) -> Option<i64> {
    let response = client
        .post(format!("{base}/api/v1/service-categories"))
        .bearer_auth(token)
        .json(&json!({ "name": name }))
        .send()
        .await
        .ok()?;
    if response.status() != 201 {
        return None;
    }
    response.json::<Value>().await.ok()?["position"].as_i64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// 32 clients send commands back to back for the phase's length.
async fn throughput(base: &str, token: &str, label: &str) {
    let client = client();
    let until = Instant::now() + seconds();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (client, base, token) = (client.clone(), base.to_string(), token.to_string());
            let label = label.to_string();
            tokio::spawn(async move {
                let (mut latencies, mut failed) = (Vec::new(), 0usize);
                let mut i = 0;
                while Instant::now() < until {
                    let sent = Instant::now();
                    match command(&client, &base, &token, format!("{label}-{c}-{i}")).await {
                        Some(_) => latencies.push(sent.elapsed()),
                        None => failed += 1,
                    }
                    i += 1;
                }
                (latencies, failed)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for task in tasks {
        let (l, f) = task.await.unwrap();
        latencies.extend(l);
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "{label}: {:.0} commands/s over {elapsed:.1} s, {CLIENTS} clients; latency p50 {} p99 {}; {failed} failed",
        latencies.len() as f64 / elapsed,
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
    );
}

/// Commands at a fixed rate; after each acknowledgement, a query that asks
/// to see its position: the time that query waits is the lag.
async fn lag(base: &str, token: &str) {
    let client = client();
    let lags = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / LAG_RATE));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let total = LAG_RATE * seconds().as_secs();
    let mut tasks = Vec::new();
    let started = Instant::now();
    for i in 0..total {
        ticker.tick().await;
        let (client, base, token, lags) = (
            client.clone(),
            base.to_string(),
            token.to_string(),
            lags.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let Some(position) = command(&client, &base, &token, format!("lag-{i}")).await else {
                return;
            };
            let acked = Instant::now();
            // Any service id: the answer (404) comes once the catalog read
            // model has reached the position.
            let seen = client
                .get(format!(
                    "{base}/api/v1/services/0190f0f0-0000-7000-8000-000000000000?min_position={position}"
                ))
                .send()
                .await;
            if seen.is_ok_and(|r| r.status() == 404) {
                lags.lock().unwrap().push(acked.elapsed());
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let offered = total as f64 / started.elapsed().as_secs_f64();
    let mut lags = lags.lock().unwrap().clone();
    lags.sort();
    println!(
        "lag at {offered:.0} commands/s offered ({} measured): p50 {} p99 {} max {}",
        lags.len(),
        ms(percentile(&lags, 0.5)),
        ms(percentile(&lags, 0.99)),
        ms(percentile(&lags, 1.0)),
    );
}

fn pgbench(pg: &Postgres, bin: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("insert.sql");
    std::fs::write(&script, "INSERT INTO bench_insert (v) VALUES (1);\n").unwrap();
    let psql = Command::new(bin.join("psql"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
            "-q",
            "-c",
        ])
        .arg("CREATE TABLE bench_insert (id bigserial PRIMARY KEY, v int)")
        .status()
        .unwrap();
    assert!(psql.success());
    let out = Command::new(bin.join("pgbench"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
            "-n",
        ])
        .args([
            "-c",
            &CLIENTS.to_string(),
            "-j",
            "2",
            "-T",
            &seconds().as_secs().to_string(),
        ])
        .arg("-f")
        .arg(&script)
        .arg("postgres")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps"))
        .unwrap_or("tps = ? (pgbench failed)");
    println!("pgbench, one-row INSERT per transaction, {CLIENTS} clients: {tps}");
}

fn replay(env: &HashMap<String, String>, head: i64) {
    let started = Instant::now();
    let status = annals(env, &["replay", "--consumer", "catalog"])
        .status()
        .unwrap();
    assert!(status.success());
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "rebuild of the catalog read model: {head} events in {elapsed:.2} s = {:.0} events/s (process start included)",
        head as f64 / elapsed
    );
}

async fn log_head(base: &str) -> i64 {
    let ready: Value = reqwest::get(format!("{base}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ready["log_head"].as_i64().unwrap_or(0)
}

/// The server's resident memory after its load phases (Linux /proc).
fn rss(server: &Server, what: &str) {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap_or_default();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    println!(
        "{what}: server RSS after the load phases {:.1} MiB",
        kib as f64 / 1024.0
    );
}

#[tokio::main]
async fn main() {
    // `cargo test --all-targets` runs this too: only `cargo bench` measures.
    if !std::env::args().any(|a| a == "--bench") {
        println!("bench/load.rs: run with `bash bench/run.sh` to measure");
        return;
    }
    let pg_bin =
        std::path::PathBuf::from(std::env::var("ANNALS_TEST_PG_BIN").expect("ANNALS_TEST_PG_BIN"));
    // BENCH_FSYNC=off: the same without durable commits, to see what the
    // commit flush costs.
    let durable = std::env::var("BENCH_FSYNC").map_or(true, |v| v != "off");
    println!(
        "Annals load figures ({} s per phase; PostgreSQL fsync {})",
        seconds().as_secs(),
        if durable { "on" } else { "off" }
    );
    let pg = Postgres::start_with(durable);
    let nats = Nats::start();
    pgbench(&pg, &pg_bin);

    let data = tempfile::tempdir().unwrap();
    let mut env = HashMap::new();
    env.insert(
        "ANNALS_DATA_DIR".to_string(),
        data.path().display().to_string(),
    );
    env.insert("DATABASE_URL".to_string(), pg.create_database().await);
    env.insert("NATS_URL".to_string(), nats.url());
    let server = serve(&env).await;
    let token_ = token(&client(), &server.base).await;
    throughput(&server.base, &token_, "server mode (PostgreSQL + NATS)").await;
    lag(&server.base, &token_).await;
    let head = log_head(&server.base).await;
    rss(&server, "server mode");
    drop(server);
    replay(&env, head);

    let embedded = tempfile::tempdir().unwrap();
    let mut env = HashMap::new();
    env.insert(
        "ANNALS_DATA_DIR".to_string(),
        embedded.path().display().to_string(),
    );
    let server = serve(&env).await;
    let token_ = token(&client(), &server.base).await;
    throughput(&server.base, &token_, "embedded mode (SQLite)").await;
    let head = log_head(&server.base).await;
    rss(&server, "embedded mode");
    drop(server);
    replay(&env, head);
}
