//! Shared helpers: a simulator per test, the binary's command line, and
//! readers for what the sinks wrote.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use gnip_client::message::{Message, classify};

/// A simulator running on its own runtime, for the length of a test.
pub struct Sim {
    pub handle: Option<gnip_sim::SimHandle>,
    pub runtime: tokio::runtime::Runtime,
}

impl Sim {
    /// Starts a simulator with `faults`, serving at most `max_records`
    /// activities at `rate` per second (None: as fast as read).
    pub fn start(faults: &str, max_records: u64, rate: Option<f64>) -> Sim {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("test runtime");
        let mut config = gnip_sim::SimConfig {
            rate,
            max_records: Some(max_records),
            heartbeat_interval: Duration::from_millis(200),
            ..gnip_sim::SimConfig::default()
        };
        if !faults.is_empty() {
            config.faults = gnip_sim::FaultPlan::parse(faults).expect("valid fault plan");
        }
        let handle = runtime
            .block_on(gnip_sim::start(config))
            .expect("simulator starts");
        Sim {
            handle: Some(handle),
            runtime,
        }
    }

    pub fn handle(&self) -> &gnip_sim::SimHandle {
        self.handle.as_ref().expect("simulator running")
    }

    pub fn url(&self) -> String {
        self.handle().powertrack_url()
    }

    pub fn accounting(&self) -> gnip_sim::Accounting {
        self.handle().accounting()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.runtime.block_on(handle.shutdown());
        }
    }
}

/// A working directory for one run of the binary.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("out.db")
    }
    pub fn files(&self) -> PathBuf {
        self.dir.path().join("files")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// Writes a config that shrinks every delay so faults resolve in
    /// milliseconds rather than the production seconds and minutes.
    /// `top` goes before the first table (top-level keys such as `sinks`);
    /// `spool` and `pipeline` are added to those tables.
    pub fn write_fast_config(&self, top: &str, spool: &str, pipeline: &str) {
        let text = format!(
            r#"
{top}
[stream]
stall_timeout = "1s"
backoff_network_step = "10ms"
backoff_network_max = "100ms"
backoff_http_start = "20ms"
backoff_http_max = "200ms"
backoff_rate_limit_start = "50ms"
healthy_after = "200ms"

[spool]
fsync_interval = "20ms"
{spool}

[pipeline]
drain_timeout = "20s"
{pipeline}
"#
        );
        std::fs::write(self.config(), text).expect("write config");
    }

    /// The binary, pointed at `sim`'s PowerTrack stream, with both sinks
    /// and this directory.
    pub fn command(&self, sim: &Sim) -> Command {
        self.command_at(&sim.url())
    }

    /// The binary, pointed at `url` (a stream of the test's simulator), with
    /// both sinks and this directory.
    pub fn command_at(&self, url: &str) -> Command {
        let mut cmd = self.command_without_sinks_at(url);
        cmd.arg("--sink")
            .arg(format!("sqlite:{}", self.db().display()))
            .arg("--sink")
            .arg(format!("files:{}", self.files().display()));
        cmd
    }

    /// The binary, pointed at `sim`, with the sinks of the config file.
    pub fn command_without_sinks(&self, sim: &Sim) -> Command {
        self.command_without_sinks_at(&sim.url())
    }

    fn command_without_sinks_at(&self, url: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gnip-connector"));
        cmd.arg("run")
            .arg("--config")
            .arg(self.config())
            .arg("--url")
            .arg(url)
            .arg("--user")
            .arg(gnip_sim::SimConfig::default().username)
            .arg("--data-dir")
            .arg(self.state())
            .env("GNIP_PASSWORD", gnip_sim::SimConfig::default().password)
            .env_remove("GNIP_CONFIG")
            .env_remove("GNIP_URL")
            .env_remove("GNIP_DATA_DIR")
            .env("RUST_LOG", "warn,gnip_connector=info,gnip_client=info")
            .stdin(Stdio::null());
        cmd
    }
}

/// Runs a command to completion with a generous deadline (a hung binary
/// fails the test instead of hanging the suite).
pub fn run_with_deadline(mut cmd: Command, deadline: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    wait_with_deadline(child, deadline)
}

pub fn wait_with_deadline(mut child: Child, deadline: Duration) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "binary did not finish within {deadline:?}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `summary:` line of a run, as key -> value.
pub fn summary(stderr: &[u8]) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("summary:"))
        .unwrap_or_else(|| panic!("no summary line in stderr:\n{text}"));
    line.trim_start_matches("summary:")
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

pub fn count(summary: &BTreeMap<String, String>, key: &str) -> u64 {
    summary
        .get(key)
        .unwrap_or_else(|| panic!("summary has no {key}: {summary:?}"))
        .parse()
        .expect("numeric summary value")
}

/// Rows in the `posts` table; 0 while the database or table does not exist
/// yet (the connector creates both when it starts).
pub fn sqlite_rows(db: &Path) -> u64 {
    let Ok(conn) = rusqlite::Connection::open(db) else {
        return 0;
    };
    conn.query_row("SELECT count(*) FROM posts", [], |r| r.get::<_, i64>(0))
        .map_or(0, |n| n as u64)
}

/// Post ids in the SQLite `posts` table, with how often each appears.
pub fn sqlite_ids(db: &Path) -> BTreeMap<u64, u64> {
    let conn = rusqlite::Connection::open(db).expect("open db");
    let mut stmt = conn
        .prepare("SELECT id, count(*) FROM posts GROUP BY id")
        .expect("query");
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
        })
        .expect("rows");
    rows.map(|r| r.expect("row")).collect()
}

/// Every finished activity file under `dir` (no `.part` left behind), each
/// checked to be complete gzip; returns the post ids of their lines.
pub fn file_ids(dir: &Path) -> BTreeSet<u64> {
    let mut ids = BTreeSet::new();
    for path in walk(dir) {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert!(
            !name.ends_with(".part"),
            "unfinished file left behind: {}",
            path.display()
        );
        if !name.ends_with(".gz") || !name.contains("activities") {
            continue;
        }
        let file = std::fs::File::open(&path).expect("open file");
        let reader = BufReader::new(flate2::read::MultiGzDecoder::new(file));
        for line in reader.split(b'\n') {
            let line = line.unwrap_or_else(|e| panic!("{} is not valid gzip: {e}", path.display()));
            if line.is_empty() {
                continue;
            }
            match classify(&line) {
                Ok(Message::Activity(a)) => {
                    ids.insert(a.post_id);
                }
                other => panic!("non-activity line in {}: {other:?}", path.display()),
            }
        }
    }
    ids
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Waits until `cond` holds, polling; panics after `deadline`.
pub fn wait_until(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A plain HTTP/1.1 GET over a real socket; returns (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}
