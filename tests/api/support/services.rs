//! Real PostgreSQL and NATS servers for the tests, started on free loopback
//! ports. Binaries come from ANNALS_TEST_PG_BIN / ANNALS_TEST_NATS_SERVER
//! (tests/run.sh sets them). A watchdog stops each server when the test
//! process exits, however it exits.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free port below the kernel's ephemeral range (32768–60999 on these
/// machines), for a server a test stops and starts again on the same port:
/// a port from that range may be handed to another socket of the busy test
/// process while the server is down, and the restart then cannot bind.
pub fn restartable_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(2_654_435_761)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(n.wrapping_mul(7_919)) % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

fn tmp_root() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("annals-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Stops `pid` (and runs `cleanup`) once this test process has exited.
fn watchdog(cleanup: &str) {
    let script = format!(
        "while kill -0 {} 2>/dev/null; do sleep 0.5; done; {cleanup}",
        std::process::id()
    );
    // Deliberately not waited for: it outlives this process.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting a watchdog");
}

/// Polls `ready` until it holds or `timeout` passes.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < timeout,
            "{what} not ready after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A PostgreSQL cluster of our own.
pub struct Postgres {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    root: bool,
    /// fsync on (benchmarks); the tests run without it.
    durable: bool,
}

impl Postgres {
    /// The cluster shared by the tests of this process.
    pub fn shared() -> &'static Postgres {
        static PG: OnceLock<Postgres> = OnceLock::new();
        PG.get_or_init(Postgres::start)
    }

    /// A new cluster (for tests that stop it).
    pub fn start() -> Postgres {
        Self::start_with(false)
    }

    /// A new cluster, with fsync on if `durable` (as in production).
    pub fn start_with(durable: bool) -> Postgres {
        let bin = PathBuf::from(
            std::env::var("ANNALS_TEST_PG_BIN")
                .expect("ANNALS_TEST_PG_BIN is not set: run the tests with `bash tests/run.sh`"),
        );
        let root = is_root();
        let dir = tmp_root().join(format!("pg-{}", free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        if root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success());
            // The postgres user must be able to reach the directory.
            let _ = Command::new("chmod").args(["755"]).arg(tmp_root()).status();
        }
        let data = dir.join("data");
        let out = pg_command(root, &bin.join("initdb"), &dir)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ])
            .output()
            .expect("running initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pg = Postgres {
            port: restartable_port(),
            dir,
            bin,
            root,
            durable,
        };
        pg.run_server();
        let stop = format!(
            "{} {} -D {} -m immediate stop; rm -rf {}",
            if root { "runuser -u postgres --" } else { "" },
            pg.bin.join("pg_ctl").display(),
            data.display(),
            pg.dir.display()
        );
        watchdog(&stop);
        pg
    }

    fn run_server(&self) {
        let durability = if self.durable {
            // The benchmarks (the only durable clusters) count statements.
            "-c shared_preload_libraries=pg_stat_statements"
        } else {
            "-c fsync=off -c full_page_writes=off"
        };
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 {durability} \
             -c max_connections=500 -c shared_buffers=64MB",
            self.port,
            self.dir.display()
        );
        let out = pg_command(self.root, &self.bin.join("pg_ctl"), &self.dir)
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-o", &options, "start"])
            .output()
            .expect("running pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server at once (connections are cut).
    pub fn stop(&self) {
        let out = pg_command(self.root, &self.bin.join("pg_ctl"), &self.dir)
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn restart(&self) {
        self.run_server();
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A new, empty database on this cluster.
    pub async fn create_database(&self) -> String {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let mut conn: sqlx::PgConnection = sqlx::Connection::connect(&self.url("postgres"))
            .await
            .unwrap();
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        self.url(&name)
    }
}

fn pg_command(root: bool, program: &Path, cwd: &Path) -> Command {
    let mut command = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    command.current_dir(cwd).stdin(Stdio::null());
    command
}

/// A NATS server with JetStream.
pub struct Nats {
    pub port: u16,
    monitor: u16,
    dir: PathBuf,
    child: std::sync::Mutex<Option<Child>>,
}

impl Nats {
    pub fn shared() -> &'static Nats {
        static NATS: OnceLock<Nats> = OnceLock::new();
        NATS.get_or_init(Nats::start)
    }

    pub fn start() -> Nats {
        let port = restartable_port();
        let nats = Nats {
            port,
            monitor: restartable_port(),
            dir: tmp_root().join(format!("nats-{port}")),
            child: std::sync::Mutex::new(None),
        };
        nats.run();
        nats
    }

    fn run(&self) {
        let bin = std::env::var("ANNALS_TEST_NATS_SERVER")
            .expect("ANNALS_TEST_NATS_SERVER is not set: run the tests with `bash tests/run.sh`");
        let child = Command::new(bin)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-m",
                &self.monitor.to_string(),
            ])
            .arg("-sd")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nats-server");
        watchdog(&format!("kill -9 {} 2>/dev/null", child.id()));
        *self.child.lock().unwrap() = Some(child);
        let monitor = self.monitor;
        wait_until("nats-server", Duration::from_secs(20), || {
            let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", monitor)) else {
                return false;
            };
            use std::io::{Read, Write};
            let _ = stream.write_all(b"GET /healthz?js-enabled-only=true HTTP/1.0\r\n\r\n");
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
        });
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let port = self.port;
        wait_until("nats-server to stop", Duration::from_secs(10), || {
            !port_open(port)
        });
    }

    /// Starts it again on the same port and store.
    pub fn restart(&self) {
        self.run();
    }

    /// Kills it, throws its store away (every stream and consumer, and the
    /// messages not yet delivered) and starts it again empty.
    pub fn wipe(&self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
        self.run();
    }
}
