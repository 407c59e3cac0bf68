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
const LAG_RATES: [u64; 2] = [500, 2_000];
const LAG_IN_FLIGHT: usize = 128;
/// Turns of pgbench and the server's throughput phase in a full run.
const ROUNDS: usize = 3;
/// Events in the log for the rebuild figures, and for the large-log phase.
const REBUILD_EVENTS: i64 = 200_000;
const LARGE_LOG: i64 = 1_000_000;
/// The long-stream phase: one aggregate with this many events, changed
/// `STREAM_COMMANDS` times.
const LONG_STREAM: i64 = 100_000;
const STREAM_COMMANDS: usize = 300;
/// Commands counted by pg_stat_statements.
const STATEMENT_COMMANDS: usize = 2_000;
/// Events the seed writes per transaction.
const SEED_SLICE: i64 = 50_000;

/// Every figure printed, for bench/RESULTS.md.
static REPORT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

macro_rules! report {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        println!("{line}");
        REPORT.lock().unwrap().push(line);
    }};
}
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

/// The settings of an annals process with its data in `dir`: server mode
/// on a new database of `services`, embedded mode without.
async fn environment(
    dir: &tempfile::TempDir,
    services: Option<(&Postgres, &Nats)>,
) -> HashMap<String, String> {
    let mut env = HashMap::new();
    env.insert(
        "ANNALS_DATA_DIR".to_string(),
        dir.path().display().to_string(),
    );
    if let Some((pg, nats)) = services {
        env.insert("DATABASE_URL".to_string(), pg.create_database().await);
        env.insert("NATS_URL".to_string(), nats.url());
    }
    env
}

/// The bench's admin account, once per database.
fn create_user(env: &HashMap<String, String>) {
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
}

async fn serve(env: &HashMap<String, String>) -> Server {
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
        .pool_max_idle_per_host(LAG_IN_FLIGHT * 2)
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

/// The machine's CPU time so far, from /proc/stat: (stolen by the
/// hypervisor, all). This host's speed varies with its neighbours; the
/// share stolen during a phase says how much of it the phase had.
fn cpu_times() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    (fields.get(7).copied().unwrap_or(0), fields.iter().sum())
}

/// The share of CPU time stolen since `before` (`cpu_times`), as words.
fn stolen_since(before: (u64, u64)) -> String {
    let (steal, all) = cpu_times();
    let share = (steal - before.0) as f64 / (all - before.1).max(1) as f64;
    format!("{:.0} % of the CPU stolen by the hypervisor", share * 100.0)
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
async fn throughput(base: &str, token: &str, label: &str) -> Throughput {
    let client = client();
    let until = Instant::now() + seconds();
    let started = Instant::now();
    let cpu = cpu_times();
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
    let rate = latencies.len() as f64 / elapsed;
    report!(
        "{label}: {rate:.0} commands/s over {elapsed:.1} s, {CLIENTS} clients; latency p50 {} p99 {}; {failed} failed; {}",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        stolen_since(cpu),
    );
    Throughput {
        rate,
        p99: percentile(&latencies, 0.99),
    }
}

struct Throughput {
    rate: f64,
    p99: Duration,
}

/// Commands at a fixed rate; after each acknowledgement, a query that asks
/// to see its position: the time that query waits is the lag.
async fn lag(base: &str, token: &str, rate: u64) {
    let client = client();
    let lags = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let total = rate * seconds().as_secs();
    let mut tasks = Vec::new();
    let started = Instant::now();
    let cpu = cpu_times();
    // A closed bound on requests in flight: beyond what the server keeps up
    // with, ticks are skipped (and counted), not piled up as connections.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(LAG_IN_FLIGHT));
    let mut skipped = 0u64;
    for i in 0..total {
        ticker.tick().await;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        let (client, base, token, lags) = (
            client.clone(),
            base.to_string(),
            token.to_string(),
            lags.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
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
    let offered = (total - skipped) as f64 / started.elapsed().as_secs_f64();
    let mut lags = lags.lock().unwrap().clone();
    lags.sort();
    report!(
        "commit → read model lag at {rate} commands/s asked, {offered:.0}/s sent ({skipped} not sent: {LAG_IN_FLIGHT} in flight; {} measured): p50 {} p99 {} max {}; {}",
        lags.len(),
        ms(percentile(&lags, 0.5)),
        ms(percentile(&lags, 0.99)),
        ms(percentile(&lags, 1.0)),
        stolen_since(cpu),
    );
}

fn pgbench(pg: &Postgres, bin: &Path) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("insert.sql");
    std::fs::write(&script, "INSERT INTO bench_insert (v) VALUES (1);\n").unwrap();
    psql(
        pg,
        bin,
        "CREATE TABLE IF NOT EXISTS bench_insert (id bigserial PRIMARY KEY, v int)",
    );
    let cpu = cpu_times();
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
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    report!(
        "pgbench, one-row INSERT per transaction, {CLIENTS} clients: {tps:.0} tps; {}",
        stolen_since(cpu)
    );
    // The rows are of no use, and would set autovacuum off in the phases
    // that follow; each round starts from an empty table.
    psql(pg, bin, "TRUNCATE bench_insert");
    tps
}

/// Runs one statement in pgbench's database.
fn psql(pg: &Postgres, bin: &Path, sql: &str) {
    let done = Command::new(bin.join("psql"))
        .args(["-h", "127.0.0.1", "-p", &pg.port.to_string()])
        .args(["-U", "postgres", "-q", "-c", sql])
        .status()
        .unwrap();
    assert!(done.success(), "psql: {sql}");
}

fn replay(env: &HashMap<String, String>, what: &str, consumer: &str, head: i64) {
    let started = Instant::now();
    let status = if let Ok(out) = std::env::var("BENCH_PERF") {
        let mut perf = Command::new("perf");
        perf.args([
            "record",
            "-F",
            "999",
            "-g",
            "-o",
            &format!("{out}-{}", env.contains_key("DATABASE_URL")),
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_annals"))
        .args(["replay", "--consumer", consumer])
        .envs(env)
        .stdout(Stdio::null());
        perf.status().unwrap()
    } else {
        annals(env, &["replay", "--consumer", consumer])
            .status()
            .unwrap()
    };
    assert!(status.success());
    let elapsed = started.elapsed().as_secs_f64();
    report!(
        "{what}: rebuild of the {consumer} read model, {head} events in {elapsed:.2} s = {:.0} events/s (process start included)",
        head as f64 / elapsed
    );
}

async fn pool(env: &HashMap<String, String>) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    let url = match env.get("DATABASE_URL") {
        Some(url) => url.clone(),
        None => format!("sqlite://{}/annals.db", env["ANNALS_DATA_DIR"]),
    };
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap()
}

async fn head_of(pool: &sqlx::AnyPool) -> i64 {
    sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Grows the log to `target` events with new categories, written straight
/// into the store (the bench's bulk path, not HTTP): copies of a category
/// event the server stored, each with a fresh aggregate id and event id.
/// Returns the new head.
async fn seed(env: &HashMap<String, String>, target: i64) -> i64 {
    let pool = pool(env).await;
    let started = Instant::now();
    let from = head_of(&pool).await;
    let postgres = env.contains_key("DATABASE_URL");
    let sql = if postgres {
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, position, recorded_at) \
         SELECT t.aggregate_type, gen_random_uuid()::text, 1, t.event_type, t.event_version, \
                json_build_object('Created', json_build_object('name', 'seed-' || $1 || '-' || g)), \
                (t.metadata::jsonb || jsonb_build_object('event_id', gen_random_uuid()::text))::json, \
                c.last_position + g, clock_timestamp() \
         FROM generate_series(1, $2) g, event_position_counter c, \
              (SELECT aggregate_type, event_type, event_version, metadata FROM events \
               WHERE event_type = 'ServiceCategoryCreated' LIMIT 1) t"
    } else {
        "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < $2), \
              r(n, a, e) AS (SELECT n, lower(hex(randomblob(16))), lower(hex(randomblob(16))) FROM g) \
         INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         SELECT t.aggregate_type, \
                substr(a, 1, 8) || '-' || substr(a, 9, 4) || '-7' || substr(a, 14, 3) || '-8' || substr(a, 18, 3) || '-' || substr(a, 21, 12), \
                1, t.event_type, t.event_version, \
                json_object('Created', json_object('name', 'seed-' || $1 || '-' || n)), \
                json_set(t.metadata, '$.event_id', substr(e, 1, 8) || '-' || substr(e, 9, 4) || '-7' || substr(e, 14, 3) || '-8' || substr(e, 18, 3) || '-' || substr(e, 21, 12)) \
         FROM r, (SELECT aggregate_type, event_type, event_version, metadata FROM events \
                  WHERE event_type = 'ServiceCategoryCreated' LIMIT 1) t"
    };
    let mut head = from;
    while head < target {
        let slice = SEED_SLICE.min(target - head);
        bulk(&pool, postgres, sql, &head.to_string(), slice, slice).await;
        head = head_of(&pool).await;
    }
    pool.close().await;
    println!(
        "(seeded {} events in {:.1} s, log head {head})",
        head - from,
        started.elapsed().as_secs_f64()
    );
    head
}

/// The bench's bulk path: `sql` (binding `$1` text and `$2` a count) adds
/// `added` events in one transaction. On PostgreSQL the position trigger,
/// which updates its counter row once per row (quadratic within one
/// transaction), is off inside it: `sql` numbers the rows from the counter
/// itself and the counter moves once. The server is stopped, or waits.
async fn bulk(pool: &sqlx::AnyPool, postgres: bool, sql: &str, text: &str, count: i64, added: i64) {
    let mut tx = pool.begin().await.unwrap();
    let run = |sql: &'static str| sqlx::query(sql);
    if postgres {
        run("ALTER TABLE events DISABLE TRIGGER events_assign_position")
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    sqlx::query(sql)
        .bind(text.to_string())
        .bind(count)
        .execute(&mut *tx)
        .await
        .expect("bulk insert into the log");
    if postgres {
        run("UPDATE event_position_counter SET last_position = last_position + $1")
            .bind(added)
            .execute(&mut *tx)
            .await
            .unwrap();
        run("ALTER TABLE events ENABLE TRIGGER events_assign_position")
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// Creates a category and a service over HTTP; returns the service's id and
/// the body that changes it (its terms with another name).
async fn new_service(base: &str, token: &str, name: &str) -> (String, Value) {
    let client = client();
    let category: Value = client
        .post(format!("{base}/api/v1/service-categories"))
        .bearer_auth(token)
        .json(&json!({ "name": format!("{name} category") }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let terms = json!({
        "name": name, "description": "bench", "category_id": category["id"],
        "duration_minutes": 30, "price": "10.00", "currency": "EUR"
    });
    let service: Value = client
        .post(format!("{base}/api/v1/services"))
        .bearer_auth(token)
        .json(&terms)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (service["id"].as_str().unwrap().to_string(), terms)
}

/// Gives one service's stream `length` events in all: copies of its
/// creation as changes, written straight into the store.
async fn lengthen(env: &HashMap<String, String>, service: &str, length: i64) {
    let pool = pool(env).await;
    let started = Instant::now();
    let sql = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, position, recorded_at) \
         SELECT t.aggregate_type, t.aggregate_id, g, 'ServiceUpdated', t.event_version, \
                json_build_object('Updated', t.payload -> 'Created'), \
                (t.metadata::jsonb || jsonb_build_object('event_id', gen_random_uuid()::text))::json, \
                c.last_position + g - 1, clock_timestamp() \
         FROM generate_series(2, $2) g, event_position_counter c, \
              (SELECT * FROM events WHERE aggregate_id = $1 AND sequence = 1) t";
    bulk(&pool, true, sql, service, length, length - 1).await;
    pool.close().await;
    println!(
        "(gave service {service} {length} events in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
}

/// `count` rounds of changes, one after another, each round changing
/// every service once in turn (so that whatever else the machine does
/// falls on all of them alike): each service's latencies.
async fn changes(
    base: &str,
    token: &str,
    services: &[(&str, &Value)],
    count: usize,
) -> Vec<Vec<Duration>> {
    let client = client();
    let mut latencies = vec![Vec::with_capacity(count); services.len()];
    for i in 0..count {
        for ((service, terms), latencies) in services.iter().zip(&mut latencies) {
            let mut body = (*terms).clone();
            body["name"] = json!(format!("changed {i}"));
            let sent = Instant::now();
            let response = client
                .put(format!("{base}/api/v1/services/{service}"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "changing service {service}");
            latencies.push(sent.elapsed());
        }
    }
    latencies
}

/// Command latency on a stream of `LONG_STREAM` events against a fresh one.
async fn long_stream(env: &HashMap<String, String>, base: &str, token: &str) {
    let (fresh, terms) = new_service(base, token, "fresh").await;
    let (long, long_terms) = new_service(base, token, "long").await;
    lengthen(env, &long, LONG_STREAM).await;
    // The read models take in the new events before anything is measured.
    settled(base, Duration::from_secs(300)).await;
    // The first change of the long stream replays it whole and takes its
    // snapshot: timed on its own, not in the rounds.
    let first = changes(base, token, &[(&long, &long_terms)], 1).await[0][0];
    // The 100,000 new rows would otherwise set off autovacuum meanwhile.
    settle(env).await;
    let mut measured = changes(
        base,
        token,
        &[(&fresh, &terms), (&long, &long_terms)],
        STREAM_COMMANDS,
    )
    .await;
    let (mut on_long, mut on_fresh) = (measured.pop().unwrap(), measured.pop().unwrap());
    on_fresh.sort();
    on_long.sort();
    report!(
        "server mode: {STREAM_COMMANDS} changes one after another of a service whose stream holds {LONG_STREAM} events, each followed by one of a fresh service: p50 {} p99 {} (the first, before them, which replays the stream and takes its snapshot: {}); of the fresh service: p50 {} p99 {}; p99 ratio {:.2} ×",
        ms(percentile(&on_long, 0.5)),
        ms(percentile(&on_long, 0.99)),
        ms(first),
        ms(percentile(&on_fresh, 0.5)),
        ms(percentile(&on_fresh, 0.99)),
        percentile(&on_long, 0.99).as_secs_f64() / percentile(&on_fresh, 0.99).as_secs_f64().max(1e-9)
    );
}

/// What one command costs in statements: `STATEMENT_COMMANDS` commands at
/// 16 clients with pg_stat_statements reset before, then every statement
/// of this database (the server's, its consumers' and the relay's) per
/// command, the most frequent first.
async fn statements(env: &HashMap<String, String>, base: &str, token: &str) {
    let pool = counting(env).await;
    let client = client();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (client, base, token, next) = (
                client.clone(),
                base.to_string(),
                token.to_string(),
                next.clone(),
            );
            tokio::spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < STATEMENT_COMMANDS {
                    command(
                        &client,
                        &base,
                        &token,
                        format!("counted-{}", uuid::Uuid::now_v7()),
                    )
                    .await
                    .expect("a counted command");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // Let the consumers and the relay finish their share.
    settled(base, Duration::from_secs(60)).await;
    let (total, lines) = per_command(&pool, STATEMENT_COMMANDS as f64, 12).await;
    report!(
        "server mode: {total:.1} statements per command over {STATEMENT_COMMANDS} commands at 16 clients (pg_stat_statements; server, consumers and relay), the most frequent:"
    );
    for line in lines {
        report!("{line}");
    }
    pool.close().await;
}

/// PostgreSQL's background work so far, which competes for the cores:
/// (autovacuum and autoanalyze runs, checkpoints).
async fn background(env: &HashMap<String, String>) -> (i64, i64) {
    let db = pool(env).await;
    let vacuums: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(autovacuum_count + autoanalyze_count), 0) AS BIGINT) FROM pg_stat_user_tables",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let checkpoints: i64 = sqlx::query_scalar(
        "SELECT CAST(checkpoints_timed + checkpoints_req AS BIGINT) FROM pg_stat_bgwriter",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    db.close().await;
    (vacuums, checkpoints)
}

/// A `VACUUM ANALYZE` of the bench's database between phases (what pgbench
/// does before its own runs; it is told `-n` here), then a `CHECKPOINT`:
/// the autovacuum that one phase's inserts set off, and the flush of the
/// WAL it wrote, then do not land in the next.
async fn settle(env: &HashMap<String, String>) {
    let vacuum = Instant::now();
    let db = pool(env).await;
    sqlx::query("VACUUM ANALYZE").execute(&db).await.unwrap();
    sqlx::query("CHECKPOINT").execute(&db).await.unwrap();
    db.close().await;
    println!(
        "(VACUUM ANALYZE and CHECKPOINT in {:.1} s)",
        vacuum.elapsed().as_secs_f64()
    );
}

/// What `background` counted since `before`, as words.
async fn background_since(env: &HashMap<String, String>, before: (i64, i64)) -> String {
    let now = background(env).await;
    format!(
        "{} autovacuum or autoanalyze runs, {} checkpoints",
        now.0 - before.0,
        now.1 - before.1
    )
}

/// A pool to the bench's database with pg_stat_statements reset.
async fn counting(env: &HashMap<String, String>) -> sqlx::AnyPool {
    let pool = pool(env).await;
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("SELECT pg_stat_statements_reset()")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

/// All statements since `counting` per command, and the most frequent
/// `top` of them, one line each.
async fn per_command(pool: &sqlx::AnyPool, commands: f64, top: usize) -> (f64, Vec<String>) {
    let rows: Vec<(String, i64, f64)> = sqlx::query_as(
        "SELECT query, calls, mean_exec_time FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND query NOT LIKE '%pg_stat_statements%' ORDER BY calls DESC",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let total: i64 = rows.iter().map(|r| r.1).sum();
    let per = |calls: i64| calls as f64 / commands;
    let mut lines = Vec::with_capacity(top);
    for (query, calls, mean) in rows.iter().take(top) {
        let query: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
        let query: String = query.chars().take(90).collect();
        lines.push(format!(
            "  {:.2} per command, mean {mean:.2} ms: `{query}`",
            per(*calls)
        ));
    }
    (per(total), lines)
}

/// Waits until every consumer of the server has applied the whole log;
/// returns how long that took.
async fn settled(base: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let ready: Value = reqwest::get(format!("{base}/readyz"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let behind = ready["consumers"]
            .as_array()
            .map(|c| c.iter().any(|v| v["lag_events"].as_i64().unwrap_or(1) > 0))
            .unwrap_or(true);
        if !behind || started.elapsed() > limit {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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

/// How far the audit sealer is behind the log head right after a load
/// phase, and how long it takes to catch up.
async fn sealer_lag(base: &str) {
    let started = Instant::now();
    let mut first = None;
    loop {
        let ready: Value = reqwest::get(format!("{base}/readyz"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let lag = ready["consumers"]
            .as_array()
            .and_then(|c| c.iter().find(|v| v["name"] == "audit-sealer"))
            .and_then(|v| v["lag_events"].as_i64())
            .unwrap_or(-1);
        let first_lag = *first.get_or_insert(lag);
        if lag <= 0 || started.elapsed() > Duration::from_secs(60) {
            report!(
                "server mode: audit sealer {first_lag} events behind at the end of the load phase; caught up {:.2} s later",
                started.elapsed().as_secs_f64()
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `annals audit verify` over the whole sealed log, timed.
fn audit_verify(env: &HashMap<String, String>, head: i64) {
    let started = Instant::now();
    let status = annals(env, &["audit", "verify"]).status().unwrap();
    assert!(status.success(), "the chain verifies");
    let elapsed = started.elapsed().as_secs_f64();
    report!(
        "server mode: annals audit verify over {head} events in {elapsed:.2} s = {:.0} events/s (process start included)",
        head as f64 / elapsed
    );
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
    report!(
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
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "rebuild") {
        return rebuilds_only(&pg, &nats).await;
    }
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "throughput") {
        return throughput_only(&pg, &nats).await;
    }
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "audit") {
        return audit_only(&pg, &nats).await;
    }
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "lag") {
        return lag_only(&pg, &nats).await;
    }
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "stream") {
        return stream_only(&pg, &nats).await;
    }
    let data = tempfile::tempdir().unwrap();
    let env = environment(&data, Some((&pg, &nats))).await;
    create_user(&env);
    let server = serve(&env).await;
    let token_ = token(&client(), &server.base).await;
    // The yardstick and the server take turns, ROUNDS times: this machine's
    // speed drifts by ±15 % within minutes, so one pair is a coin toss and
    // the median of the pairs' ratios is the figure.
    let mut rounds = Vec::new();
    for round in 1..=ROUNDS {
        let pgbench = pgbench(&pg, &pg_bin);
        let run = throughput(
            &server.base,
            &token_,
            &format!("server mode (PostgreSQL + NATS), round {round}"),
        )
        .await;
        sealer_lag(&server.base).await;
        let ratio = run.rate / pgbench.max(1.0);
        report!("server mode, round {round}: {ratio:.3} × pgbench");
        rounds.push((ratio, run));
    }
    rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let ratios: Vec<String> = rounds.iter().map(|(r, _)| format!("{r:.3}")).collect();
    let (ratio, small) = rounds.swap_remove(rounds.len() / 2);
    report!(
        "server mode: {ratio:.3} × pgbench, the median of {ROUNDS} rounds ({})",
        ratios.join(", ")
    );
    // The throughput rounds inserted some 100,000 events: their autovacuum
    // would otherwise run during the lag phases.
    settle(&env).await;
    let before = background(&env).await;
    for rate in LAG_RATES {
        lag(&server.base, &token_, rate).await;
    }
    println!(
        "(during the lag phases: {})",
        background_since(&env, before).await
    );
    statements(&env, &server.base, &token_).await;
    let small_log = log_head(&server.base).await;
    rss(&server, "server mode");
    drop(server);
    let head = seed(&env, REBUILD_EVENTS).await;
    replay(&env, "server mode", "catalog", head);

    let head = seed(&env, LARGE_LOG).await;
    replay(&env, "server mode", "catalog", head);
    let server = serve(&env).await;
    let caught_up = settled(&server.base, Duration::from_secs(900)).await;
    // What an operator does after a bulk load: without it autovacuum runs
    // over the new million rows during the measured phase.
    settle(&env).await;
    let token_ = token(&client(), &server.base).await;
    report!(
        "server mode: every consumer caught up with {} new events in {:.1} s",
        head - REBUILD_EVENTS.max(small_log),
        caught_up.as_secs_f64()
    );
    audit_verify(&env, head);
    let before = background(&env).await;
    let large = throughput(
        &server.base,
        &token_,
        &format!("server mode, {head} events stored"),
    )
    .await;
    println!("(meanwhile {})", background_since(&env, before).await);
    report!(
        "server mode: command p99 with {head} events stored vs {small_log}: {} vs {} = {:.2} ×",
        ms(large.p99),
        ms(small.p99),
        large.p99.as_secs_f64() / small.p99.as_secs_f64().max(1e-9)
    );
    long_stream(&env, &server.base, &token_).await;
    drop(server);

    let embedded = tempfile::tempdir().unwrap();
    let env = environment(&embedded, None).await;
    create_user(&env);
    let server = serve(&env).await;
    let token_ = token(&client(), &server.base).await;
    throughput(&server.base, &token_, "embedded mode (SQLite)").await;
    rss(&server, "embedded mode");
    drop(server);
    let head = seed(&env, REBUILD_EVENTS).await;
    replay(&env, "embedded mode", "catalog", head);
    results(durable);
}

/// `BENCH_ONLY=rebuild`: only the rebuild figures (200,000 events, both
/// backends), for working on the projectors; RESULTS.md is left alone.
async fn rebuilds_only(pg: &Postgres, nats: &Nats) {
    let server_dir = tempfile::tempdir().unwrap();
    let embedded_dir = tempfile::tempdir().unwrap();
    for (what, env) in [
        (
            "server mode",
            environment(&server_dir, Some((pg, nats))).await,
        ),
        ("embedded mode", environment(&embedded_dir, None).await),
    ] {
        let head = seeded(&env).await;
        replay(&env, what, "catalog", head);
    }
}

/// A fresh data set: the user, one category made through HTTP (so the
/// schema is migrated), then the log seeded to `REBUILD_EVENTS`; the head.
async fn seeded(env: &HashMap<String, String>) -> i64 {
    create_user(env);
    let server = serve(env).await;
    let token_ = token(&client(), &server.base).await;
    command(&client(), &server.base, &token_, "template".into())
        .await
        .expect("a category");
    drop(server);
    seed(env, REBUILD_EVENTS).await
}

/// `BENCH_ONLY=audit`: `annals audit verify` and `annals replay --verify`
/// over 200,000 sealed events in server mode; RESULTS.md is left alone.
async fn audit_only(pg: &Postgres, nats: &Nats) {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(&dir, Some((pg, nats))).await;
    let head = seeded(&env).await;
    let server = serve(&env).await;
    settled(&server.base, Duration::from_secs(900)).await;
    drop(server);
    audit_verify(&env, head);
    let started = Instant::now();
    let status = annals(&env, &["replay", "--verify"]).status().unwrap();
    assert!(status.success(), "every read model rebuilds identically");
    println!(
        "server mode: annals replay --verify over {head} events in {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

/// The server's count of consumers' turns to the log (the fan-out missed
/// or was too slow for them), by consumer and reason, as words.
async fn log_catch_ups(base: &str) -> String {
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counts: Vec<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("annals_consumer_log_catch_ups_total"))
        .collect();
    if counts.is_empty() {
        "none".into()
    } else {
        counts.join(", ")
    }
}

/// `BENCH_ONLY=stream`: only the long-stream figure, on an otherwise small
/// log; RESULTS.md is left alone.
async fn stream_only(pg: &Postgres, nats: &Nats) {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(&dir, Some((pg, nats))).await;
    create_user(&env);
    let server = serve(&env).await;
    let token_ = token(&client(), &server.base).await;
    let db = counting(&env).await;
    let before = cpu_by_process();
    long_stream(&env, &server.base, &token_).await;
    let after = cpu_by_process();
    let commands = (2 * STREAM_COMMANDS + 1) as f64;
    let (total, lines) = per_command(&db, commands, 16).await;
    println!("  {total:.1} statements per change, the most frequent:");
    for line in lines {
        println!("{line}");
    }
    print_cpu(&before, after);
}

/// The CPU each process spent between two `cpu_by_process` readings
/// (those that spent more than 0.2 s).
fn print_cpu(
    before: &std::collections::BTreeMap<String, f64>,
    after: std::collections::BTreeMap<String, f64>,
) {
    for (name, seconds) in after {
        let spent = seconds - before.get(&name).copied().unwrap_or(0.0);
        if spent > 0.2 {
            println!("  {name}: {spent:.1} CPU s");
        }
    }
}

/// `BENCH_ONLY=lag`: only the commit → read model lag phases (server
/// mode), with the CPU each process spent; RESULTS.md is left alone.
async fn lag_only(pg: &Postgres, nats: &Nats) {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(&dir, Some((pg, nats))).await;
    create_user(&env);
    let server = serve(&env).await;
    let token_ = token(&client(), &server.base).await;
    for rate in LAG_RATES {
        let db = counting(&env).await;
        let quiet = background(&env).await;
        let before = cpu_by_process();
        lag(&server.base, &token_, rate).await;
        let after = cpu_by_process();
        println!("  meanwhile {}", background_since(&env, quiet).await);
        println!(
            "  so far, consumers' turns to the log: {}",
            log_catch_ups(&server.base).await
        );
        let commands = (rate * seconds().as_secs()) as f64;
        let (total, lines) = per_command(&db, commands, 16).await;
        println!("  {total:.1} statements per command and its read, the most frequent:");
        for line in lines {
            println!("{line}");
        }
        db.close().await;
        print_cpu(&before, after);
    }
}

/// CPU seconds (user + system) used so far by the processes of each name.
fn cpu_by_process() -> std::collections::BTreeMap<String, f64> {
    let tick = 100.0; // USER_HZ on Linux
    let mut used = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        let (Some(user), Some(system)) = (fields.get(11), fields.get(12)) else {
            continue;
        };
        let seconds =
            (user.parse::<f64>().unwrap_or(0.0) + system.parse::<f64>().unwrap_or(0.0)) / tick;
        *used.entry(name).or_insert(0.0) += seconds;
    }
    used
}

/// `BENCH_ONLY=throughput`: only the two throughput phases, with the CPU
/// each process used during them, the statements per command (and, with `BENCH_PERF=file`, perf
/// profiles of the server: FILE and FILE.embedded).
async fn throughput_only(pg: &Postgres, nats: &Nats) {
    let data = tempfile::tempdir().unwrap();
    let env = environment(&data, Some((pg, nats))).await;
    create_user(&env);
    let server = serve(&env).await;
    profiled_throughput(&server, "server mode (PostgreSQL + NATS)", "").await;
    let token_ = token(&client(), &server.base).await;
    statements(&env, &server.base, &token_).await;
    drop(server);
    let embedded = tempfile::tempdir().unwrap();
    let env = environment(&embedded, None).await;
    create_user(&env);
    let server = serve(&env).await;
    profiled_throughput(&server, "embedded mode (SQLite)", ".embedded").await;
}

/// One throughput phase with the CPU each process spent per command, and a
/// perf profile of the server into `$BENCH_PERF` + `suffix` if asked.
async fn profiled_throughput(server: &Server, label: &str, suffix: &str) {
    let token_ = token(&client(), &server.base).await;
    let profile = std::env::var("BENCH_PERF").ok().map(|out| {
        Command::new("perf")
            .args([
                "record",
                "-F",
                "499",
                "-g",
                "-o",
                &format!("{out}{suffix}"),
                "-p",
            ])
            .arg(server.child.id().to_string())
            .args(["--", "sleep", &seconds().as_secs().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    });
    let before = cpu_by_process();
    let started = Instant::now();
    let figures = throughput(&server.base, &token_, label).await;
    let elapsed = started.elapsed().as_secs_f64();
    let after = cpu_by_process();
    let mut spent: Vec<(String, f64)> = after
        .iter()
        .map(|(name, s)| (name.clone(), s - before.get(name).copied().unwrap_or(0.0)))
        .filter(|(_, s)| *s > 0.05)
        .collect();
    spent.sort_by(|a, b| b.1.total_cmp(&a.1));
    let commands = figures.rate * elapsed;
    for (name, seconds) in spent {
        println!(
            "  {name}: {seconds:.1} CPU s = {:.0} µs per command",
            seconds * 1e6 / commands
        );
    }
    println!(
        "  consumers' turns to the log since the start: {}",
        log_catch_ups(&server.base).await
    );
    if let Some(mut perf) = profile {
        let _ = perf.wait();
    }
}

/// Writes the figures of this run to bench/RESULTS.md.
fn results(durable: bool) {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    let mut text = format!(
        "# Bench results\n\nWritten by `bash bench/run.sh` (bench/load.rs); every run replaces this file.\n\n\
         - date: {}\n- commit: {}{}\n- machine: {cores} cores, {cpu}, {memory} memory\n\
         - {} s per load phase; PostgreSQL fsync {}\n\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        git(&["rev-parse", "--short", "HEAD"]),
        if git(&["status", "--porcelain"]).is_empty() { "" } else { " (with uncommitted changes)" },
        seconds().as_secs(),
        if durable { "on" } else { "off" },
    );
    for line in REPORT.lock().unwrap().iter() {
        text.push_str(&format!("- {line}\n"));
    }
    std::fs::write(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/RESULTS.md"),
        text,
    )
    .unwrap();
    println!("written to bench/RESULTS.md");
}
