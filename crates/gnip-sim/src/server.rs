//! The server: the listener, the per-connection request loop, admission of
//! stream connections (fault statuses, authentication, compression,
//! connection limits), the `/_sim` control endpoints, and the handle a test
//! or the `sim` command holds to read the accounting and shut it down.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::accounting::{Accounting, ConnectionAccount, EndReason, Ledger};
use crate::compliance::{Flavor, Recent};
use crate::config::{Format, SimConfig};
use crate::error::SimError;
use crate::fault::{FaultPlan, FaultState};
use crate::generate;
use crate::http::{self, ReadError, Request, read_request};
use crate::ids::IdAlloc;
use crate::route::{Mode, Product, Route, StreamRoute, route};
use crate::rules::RuleStore;
use crate::stream::{self, Stream};
use crate::template::Pool;
use crate::time::{iso_offset, now_ms};
use crate::timeline::{Limits, Source, Timeline};

/// State shared by every connection of one simulator.
pub(crate) struct Shared {
    pub config: SimConfig,
    pub ledger: Ledger,
    pub faults: Mutex<FaultState>,
    pub attempts: AtomicU64,
    pub shutdown: watch::Receiver<bool>,
    pub recent: Arc<Recent>,
    pub ids: Arc<IdAlloc>,
    pub pt_rules: Arc<RuleStore>,
    pub pt_replay_rules: Arc<RuleStore>,
    pub v2_rules: Arc<RuleStore>,
    timelines: Mutex<HashMap<(Product, u16), Arc<Timeline>>>,
    pools: Mutex<HashMap<Format, Pool>>,
    corpus: HashMap<Format, Pool>,
    active: Mutex<HashMap<(Product, u16, u8), u32>>,
    /// Cloned into every task so shutdown can wait for all of them.
    done: Mutex<Option<mpsc::Sender<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn pool(&self, format: Format) -> Pool {
        if let Some(p) = self.corpus.get(&format) {
            return p.clone();
        }
        lock(&self.pools)
            .entry(format)
            .or_insert_with(|| {
                Arc::new(generate::pool(
                    format,
                    self.config.seed,
                    self.config.pool_size,
                ))
            })
            .clone()
    }

    fn rate_for(&self, product: Product) -> Option<f64> {
        if product.compliance() {
            self.config.compliance_rate.or(self.config.rate)
        } else {
            self.config.rate
        }
    }

    /// Whether readers drive generation on `product` (no rate configured).
    pub(crate) fn driven(&self, product: Product) -> bool {
        self.rate_for(product).is_none()
    }

    fn done_token(&self) -> Option<mpsc::Sender<()>> {
        lock(&self.done).clone()
    }

    /// The timeline of `product` / `partition`, created (and, with a rate,
    /// its generator started) on first use.
    pub(crate) fn timeline(&self, product: Product, partition: u16) -> Arc<Timeline> {
        let mut map = lock(&self.timelines);
        if let Some(t) = map.get(&(product, partition)) {
            return t.clone();
        }
        let format = product.format(self.config.format);
        let source = if product.compliance() {
            let flavor = match product {
                Product::V2TweetCompliance => Flavor::V2Tweets,
                Product::V2UserCompliance => Flavor::V2Users,
                _ => Flavor::Enterprise,
            };
            let authors = Arc::new(
                self.pool(self.config.format)
                    .iter()
                    .map(|t| t.author_id)
                    .collect(),
            );
            Source::Compliance {
                flavor,
                recent: self.recent.clone(),
                authors,
            }
        } else {
            let rules = match product {
                Product::PowerTrack => Some(self.pt_rules.clone()),
                Product::V2Filtered => Some(self.v2_rules.clone()),
                _ => None,
            };
            Source::Posts {
                pool: self.pool(format),
                format,
                rules,
            }
        };
        let limits = Limits {
            max_records: self.config.max_records,
            history_ms: self.config.history.as_millis() as u64,
            history_bytes: self.config.history_bytes,
        };
        let tl = Arc::new(Timeline::new(
            product,
            partition,
            source,
            limits,
            self.ids.clone(),
            self.config.seed,
        ));
        if let Some(rate) = self.rate_for(product) {
            tokio::spawn(generator(
                tl.clone(),
                rate,
                self.config.burst,
                self.shutdown.clone(),
                self.done_token(),
            ));
        }
        map.insert((product, partition), tl.clone());
        tl
    }

    /// The existing timelines of `product`, by partition.
    pub(crate) fn timelines_of(&self, product: Product) -> Vec<Arc<Timeline>> {
        let map = lock(&self.timelines);
        let mut v: Vec<_> = map
            .iter()
            .filter(|((p, _), _)| *p == product)
            .map(|(k, t)| (k.1, t.clone()))
            .collect();
        v.sort_by_key(|(p, _)| *p);
        v.into_iter().map(|(_, t)| t).collect()
    }
}

/// Appends records at `rate` per second (plus bursts) until the timeline is
/// exhausted or the simulator stops.
async fn generator(
    tl: Arc<Timeline>,
    rate: f64,
    burst: Option<crate::config::Burst>,
    mut shutdown: watch::Receiver<bool>,
    _done: Option<mpsc::Sender<()>>,
) {
    // Ticks of at most 50 ms keep a steady rate smooth; at most 1000 per
    // second keeps a high rate cheap (records go in small batches).
    let tick = Duration::from_secs_f64((1.0 / rate).clamp(0.001, 0.05));
    let start = tokio::time::Instant::now();
    let mut iv = tokio::time::interval(tick);
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut made, mut bursts) = (0u64, 0u64);
    loop {
        tokio::select! {
            _ = iv.tick() => {}
            _ = crate::server::stopped(&mut shutdown) => return,
        }
        let elapsed = start.elapsed().as_secs_f64();
        let due = (elapsed * rate) as u64;
        let mut n = due.saturating_sub(made);
        made = due;
        if let Some(b) = burst {
            let k = (elapsed / b.every.as_secs_f64()) as u64;
            if k > bursts {
                n += (k - bursts) * b.size;
                bursts = k;
            }
        }
        if n > 0 {
            tl.generate(usize::try_from(n).unwrap_or(usize::MAX), now_ms());
        }
        if tl.exhausted() {
            return;
        }
    }
}

/// A running simulator. Dropping it stops accepting and ends every
/// connection; [`SimHandle::shutdown`] also waits for them and writes the
/// accounting file.
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    accept: Option<JoinHandle<()>>,
    done_rx: mpsc::Receiver<()>,
}

/// Starts a simulator on `config.listen`.
///
/// # Errors
///
/// [`SimError::Config`] for an invalid configuration, [`SimError::Bind`]
/// when the address cannot be bound, [`SimError::Corpus`] /
/// [`SimError::EmptyCorpus`] when the corpus cannot be used.
pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    config.validate()?;
    let corpus = match &config.corpus {
        Some(path) => crate::corpus::load(path)?,
        None => HashMap::new(),
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| SimError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SimError::Bind {
        addr: config.listen,
        source,
    })?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (done_tx, done_rx) = mpsc::channel(1);
    let shared = Arc::new(Shared {
        ledger: Ledger::default(),
        faults: Mutex::new(FaultState::new(config.faults.clone())),
        attempts: AtomicU64::new(0),
        shutdown: shutdown_rx,
        recent: Arc::new(Recent::default()),
        ids: Arc::new(IdAlloc::new(now_ms())),
        pt_rules: Arc::new(RuleStore::new(
            &config.rules,
            config.seed,
            config.rule_limit,
        )),
        pt_replay_rules: Arc::new(RuleStore::new(
            &config.rules,
            config.seed ^ 1,
            config.rule_limit,
        )),
        v2_rules: Arc::new(RuleStore::new(
            &config.rules,
            config.seed ^ 2,
            config.rule_limit,
        )),
        timelines: Mutex::new(HashMap::new()),
        pools: Mutex::new(HashMap::new()),
        corpus,
        active: Mutex::new(HashMap::new()),
        done: Mutex::new(Some(done_tx)),
        config,
    });
    tracing::info!(%addr, format = %shared.config.format, rate = ?shared.config.rate, faults = %shared.config.faults, "Simulator listening.");
    let accept = tokio::spawn(accept_loop(shared.clone(), listener));
    Ok(SimHandle {
        addr,
        shared,
        shutdown_tx,
        accept: Some(accept),
        done_rx,
    })
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((sock, _)) => {
                    let _ = sock.set_nodelay(true);
                    tokio::spawn(connection(shared.clone(), sock, shared.done_token()));
                }
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "Accept failed; retrying.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = crate::server::stopped(&mut shutdown) => return,
        }
    }
}

async fn connection(shared: Arc<Shared>, mut sock: TcpStream, _done: Option<mpsc::Sender<()>>) {
    let mut buf = Vec::new();
    let mut shutdown = shared.shutdown.clone();
    loop {
        let req = tokio::select! {
            r = read_request(&mut sock, &mut buf) => r,
            _ = crate::server::stopped(&mut shutdown) => return,
        };
        let req = match req {
            Ok(Some(r)) => r,
            Ok(None) | Err(ReadError::Closed) => return,
            Err(ReadError::Bad(code, msg)) => {
                let _ = sock.write_all(&enterprise_error(code, msg, false)).await;
                return;
            }
        };
        let resp = match route(&req, &shared.config.account, &shared.config.label) {
            Route::Stream(sr) => return stream_connect(&shared, sock, &req, Ok(sr)).await,
            Route::StreamError {
                v2,
                status,
                message,
            } => {
                return stream_connect(&shared, sock, &req, Err((v2, status, message))).await;
            }
            Route::Accounting => {
                let with_ids = req.param("ids") != Some("false");
                let acc = shared.ledger.snapshot(with_ids);
                http::json(
                    200,
                    &serde_json::to_value(&acc).unwrap_or_default(),
                    req.keep_alive,
                )
            }
            Route::Faults => faults_endpoint(&shared, &req),
            Route::Rules { replay, op } => {
                crate::rules::powertrack_api(&shared, &req, replay, op).await
            }
            Route::V2Rules => crate::rules::v2_api(&shared, &req).await,
            Route::V2RuleCounts => crate::rules::v2_counts(&shared, &req),
            Route::NotFound => not_found(&req),
        };
        if sock.write_all(&resp).await.is_err() || !req.keep_alive {
            return;
        }
    }
}

fn not_found(req: &Request) -> Vec<u8> {
    if req.path.starts_with("/2/") {
        v2_problem(
            404,
            "Not Found Error",
            "The requested resource was not found.",
            req.keep_alive,
        )
    } else {
        enterprise_error(404, "No such stream or endpoint.", req.keep_alive)
    }
}

/// `{"error":{"message":...,"sent":...}}`, the enterprise error body.
pub(crate) fn enterprise_error(status: u16, message: &str, keep_alive: bool) -> Vec<u8> {
    let body = serde_json::json!({"error": {"message": message, "sent": iso_offset(now_ms())}});
    http::json(status, &body, keep_alive)
}

/// A v2 problem body.
pub(crate) fn v2_problem(status: u16, title: &str, detail: &str, keep_alive: bool) -> Vec<u8> {
    let body = serde_json::json!({"title": title, "detail": detail, "type": "about:blank", "status": status});
    http::json(status, &body, keep_alive)
}

/// Whether `req` carries the credentials of its API family.
pub(crate) fn authorized(config: &SimConfig, req: &Request, v2: bool) -> bool {
    let Some(auth) = req.header("authorization") else {
        return false;
    };
    if v2 {
        return auth
            .strip_prefix("Bearer ")
            .is_some_and(|t| t.trim() == config.bearer_token);
    }
    let Some(b64) = auth.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return false;
    };
    raw == format!("{}:{}", config.username, config.password).as_bytes()
}

/// The 401 answer of each API family.
pub(crate) fn unauthorized(v2: bool, keep_alive: bool) -> Vec<u8> {
    if v2 {
        return v2_problem(401, "Unauthorized", "Unauthorized", keep_alive);
    }
    let body = serde_json::json!({"error": {"message": "Invalid credentials. Check your username and password.", "sent": iso_offset(now_ms())}});
    http::response(
        401,
        "application/json; charset=utf-8",
        body.to_string().as_bytes(),
        &[("WWW-Authenticate", "Basic realm=\"Gnip\"".into())],
        keep_alive,
    )
}

fn fault_body(v2: bool, code: u16) -> Vec<u8> {
    let detail = match code {
        401 => "Unauthorized",
        429 => "Exceeded connection rate limit. Back off before reconnecting.",
        503 => "Service Unavailable. The stream is temporarily overloaded.",
        _ => http::reason(code),
    };
    if code == 401 {
        return unauthorized(v2, false);
    }
    if v2 {
        v2_problem(code, http::reason(code), detail, false)
    } else {
        enterprise_error(code, detail, false)
    }
}

/// Decrements the active-connection count of its key when dropped.
struct Admission<'a> {
    shared: &'a Shared,
    key: (Product, u16, u8),
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if let Some(n) = lock(&self.shared.active).get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
    }
}

fn admit<'a>(shared: &'a Shared, route: &StreamRoute) -> Option<Admission<'a>> {
    // Live, recovery and replay connections are limited separately;
    // recovery documents two concurrent jobs.
    let (kind, limit) = match route.mode {
        Mode::Live { .. } => (0, shared.config.max_connections),
        Mode::Recovery { .. } => (1, 2),
        Mode::Replay { .. } => (2, shared.config.max_connections),
    };
    let key = (route.product, route.partition, kind);
    let mut active = lock(&shared.active);
    let n = active.entry(key).or_insert(0);
    if *n >= limit {
        return None;
    }
    *n += 1;
    Some(Admission { shared, key })
}

async fn stream_connect(
    shared: &Arc<Shared>,
    mut sock: TcpStream,
    req: &Request,
    route: Result<StreamRoute, (bool, u16, String)>,
) {
    let attempt = shared.attempts.fetch_add(1, Ordering::SeqCst) + 1;
    let v2 = match &route {
        Ok(r) => r.product.is_v2(),
        Err((v2, ..)) => *v2,
    };
    let faults = lock(&shared.faults).on_connect(attempt);
    let (stream_name, partition) = match &route {
        Ok(r) => (r.product.name(), (r.partition > 0).then_some(r.partition)),
        Err(_) => ("invalid".to_string(), None),
    };
    let idx = shared.ledger.open(ConnectionAccount {
        id: attempt,
        path: req.target(),
        stream: stream_name,
        partition,
        status: 0,
        records_sent: 0,
        bytes_sent: 0,
        content_bytes_sent: 0,
        heartbeats_sent: 0,
        malformed_sent: 0,
        ended: None,
    });

    let refusal = if let Some(code) = faults.status {
        Some((code, fault_body(v2, code)))
    } else if !authorized(&shared.config, req, v2) {
        Some((401, unauthorized(v2, false)))
    } else if let Err((v2, status, message)) = &route {
        let body = if *v2 {
            v2_problem(*status, "Invalid Request", message, false)
        } else {
            enterprise_error(*status, message, false)
        };
        Some((*status, body))
    } else if !v2 && !req.accepts_gzip() {
        let msg = "This connection requires compression. To enable compression, send an 'Accept-Encoding: gzip' header in your request and be ready to uncompress the stream as it is read on the client end.";
        Some((406, enterprise_error(406, msg, false)))
    } else {
        None
    };
    if let Some((status, body)) = refusal {
        tracing::debug!(attempt, status, "Refused stream connection.");
        let _ = sock.write_all(&body).await;
        shared.ledger.update(idx, |c| {
            c.status = status;
            c.bytes_sent = body.len() as u64;
            c.ended = Some(EndReason::Refused);
        });
        let _ = sock.shutdown().await;
        return;
    }
    let Ok(route) = route else { return };

    let Some(_admission) = admit(shared, &route) else {
        tracing::info!(attempt, stream = %route.product.name(), partition = route.partition, "Connection over the limit refused.");
        if v2 {
            let body = serde_json::json!({
                "title": "ConnectionException",
                "detail": "This stream is currently at the maximum allowed connection limit.",
                "connection_issue": "TooManyConnections",
                "type": "https://api.twitter.com/2/problems/streaming-connection",
            });
            let bytes = http::json(429, &body, false);
            let _ = sock.write_all(&bytes).await;
            shared.ledger.update(idx, |c| {
                c.status = 429;
                c.bytes_sent = bytes.len() as u64;
                c.ended = Some(EndReason::TooManyConnections);
            });
        } else {
            shared.ledger.update(idx, |c| c.status = 200);
            let end = stream::too_many(shared, &mut sock, idx).await;
            shared.ledger.update(idx, |c| c.ended = Some(end));
        }
        let _ = sock.shutdown().await;
        return;
    };

    shared.ledger.update(idx, |c| c.status = 200);
    let heartbeat = if v2 {
        shared.config.v2_heartbeat_interval
    } else {
        shared.config.heartbeat_interval
    };
    tracing::debug!(attempt, stream = %route.product.name(), partition = route.partition, "Stream connected.");
    let gzip = req.accepts_gzip();
    let end = stream::serve(
        shared,
        &mut sock,
        Stream {
            route,
            gzip,
            faults,
            ledger_idx: idx,
            attempt,
            heartbeat,
        },
    )
    .await;
    tracing::debug!(attempt, end = ?end, "Stream ended.");
    shared.ledger.update(idx, |c| c.ended = Some(end));
    if end == EndReason::DroppedRst {
        // SO_LINGER 0 turns the close into a reset.
        let _ = socket2::SockRef::from(&sock).set_linger(Some(Duration::ZERO));
        drop(sock);
    } else {
        let _ = sock.shutdown().await;
    }
}

fn faults_endpoint(shared: &Shared, req: &Request) -> Vec<u8> {
    if req.method == "POST" || req.method == "PUT" {
        let text = String::from_utf8_lossy(&req.body).to_string();
        // Accept the plain spec or {"faults":"spec"}.
        let spec = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("faults").and_then(|f| f.as_str()).map(str::to_string))
            .unwrap_or(text);
        return match FaultPlan::parse(spec.trim()) {
            Ok(plan) => {
                let shown = plan.to_string();
                tracing::info!(faults = %shown, "Fault plan replaced.");
                *lock(&shared.faults) = FaultState::new(plan);
                http::json(200, &serde_json::json!({"faults": shown}), req.keep_alive)
            }
            Err(e) => http::json(
                400,
                &serde_json::json!({"error": e.to_string()}),
                req.keep_alive,
            ),
        };
    }
    let shown = lock(&shared.faults).plan().to_string();
    http::json(200, &serde_json::json!({"faults": shown}), req.keep_alive)
}

impl SimHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn enterprise(&self, feature: &str, product: &str) -> String {
        let c = &self.shared.config;
        format!(
            "{}/{feature}/{product}/accounts/{}/publishers/twitter/{}.json",
            self.base_url(),
            c.account,
            c.label
        )
    }

    /// The PowerTrack 2.0 stream URL.
    pub fn powertrack_url(&self) -> String {
        self.enterprise("stream", "powertrack")
    }

    /// The PowerTrack 2.0 rules URL.
    pub fn rules_url(&self) -> String {
        self.enterprise("rules", "powertrack")
    }

    /// The PowerTrack rules validation URL.
    pub fn rules_validation_url(&self) -> String {
        let c = &self.shared.config;
        format!(
            "{}/rules/powertrack/accounts/{}/publishers/twitter/{}/validation.json",
            self.base_url(),
            c.account,
            c.label
        )
    }

    /// The Decahose URL for `partition` (1 or 2).
    pub fn decahose_url(&self, partition: u16) -> String {
        format!(
            "{}?partition={partition}",
            self.enterprise("stream", "sample10")
        )
    }

    /// The Firehose URL for `partition` (1 to 20).
    pub fn firehose_url(&self, partition: u16) -> String {
        format!(
            "{}?partition={partition}",
            self.enterprise("stream", "firehose")
        )
    }

    /// The Compliance Firehose URL for `partition` (1 to 8).
    pub fn compliance_url(&self, partition: u16) -> String {
        format!(
            "{}?partition={partition}",
            self.enterprise("stream", "compliance")
        )
    }

    /// The Replay URL of `product` (`powertrack`, `sample10`, `firehose`,
    /// `compliance`), without its `fromDate` / `toDate`.
    pub fn replay_url(&self, product: &str) -> String {
        self.enterprise("replay", product)
    }

    /// The v2 filtered stream URL.
    pub fn v2_filtered_url(&self) -> String {
        format!("{}/2/tweets/search/stream", self.base_url())
    }

    /// The v2 filtered stream rules URL.
    pub fn v2_rules_url(&self) -> String {
        format!("{}/2/tweets/search/stream/rules", self.base_url())
    }

    /// The v2 1% sample stream URL.
    pub fn v2_sample_url(&self) -> String {
        format!("{}/2/tweets/sample/stream", self.base_url())
    }

    /// The v2 10% sample stream URL for `partition` (1 or 2).
    pub fn v2_sample10_url(&self, partition: u16) -> String {
        format!(
            "{}/2/tweets/sample10/stream?partition={partition}",
            self.base_url()
        )
    }

    /// The v2 firehose URL for `partition` (1 to 20).
    pub fn v2_firehose_url(&self, partition: u16) -> String {
        format!(
            "{}/2/tweets/firehose/stream?partition={partition}",
            self.base_url()
        )
    }

    /// The v2 post compliance stream URL for `partition` (1 to 4).
    pub fn v2_compliance_url(&self, partition: u16) -> String {
        format!(
            "{}/2/tweets/compliance/stream?partition={partition}",
            self.base_url()
        )
    }

    /// The v2 user compliance stream URL for `partition` (1 to 4).
    pub fn v2_user_compliance_url(&self, partition: u16) -> String {
        format!(
            "{}/2/users/compliance/stream?partition={partition}",
            self.base_url()
        )
    }

    /// `GET` for the accounting as JSON (`?ids=false` leaves the id lists out).
    pub fn accounting_url(&self) -> String {
        format!("{}/_sim/accounting", self.base_url())
    }

    /// `POST` a fault specification here to replace the plan.
    pub fn faults_url(&self) -> String {
        format!("{}/_sim/faults", self.base_url())
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// What has been sent so far.
    pub fn accounting(&self) -> Accounting {
        self.shared.ledger.snapshot(true)
    }

    /// Stream connection attempts so far (the numbering `@N` faults use).
    pub fn connect_attempts(&self) -> u64 {
        self.shared.attempts.load(Ordering::SeqCst)
    }

    /// Replaces the fault plan; counted statuses start afresh. Attempt
    /// numbers keep counting from where they are.
    pub fn set_faults(&self, plan: FaultPlan) {
        tracing::info!(faults = %plan, "Fault plan replaced.");
        *lock(&self.shared.faults) = FaultState::new(plan);
    }

    /// A human-readable list of the endpoints and the credentials to use,
    /// for the `sim` command to print. It contains the password and token.
    pub fn describe(&self) -> String {
        let c = &self.shared.config;
        let mut out = format!("Gnip / X simulator listening on {}\n\n", self.base_url());
        out += &format!(
            "Enterprise (HTTP Basic, gzip required), format {}:\n",
            c.format
        );
        out += &format!(
            "  user:        {}\n  password:    {}\n",
            c.username, c.password
        );
        out += &format!("  PowerTrack:  {}\n", self.powertrack_url());
        out += &format!("  rules:       {}\n", self.rules_url());
        out += &format!("  Decahose:    {} (partitions 1-2)\n", self.decahose_url(1));
        out += &format!(
            "  Firehose:    {} (partitions 1-20)\n",
            self.firehose_url(1)
        );
        out += &format!(
            "  Compliance:  {} (partitions 1-8)\n",
            self.compliance_url(1)
        );
        out += &format!(
            "  Replay:      {}?fromDate=YYYYMMDDHHMM&toDate=YYYYMMDDHHMM\n",
            self.replay_url("powertrack")
        );
        out += "\nX API v2 (Bearer token):\n";
        out += &format!("  token:       {}\n", c.bearer_token);
        out += &format!("  filtered:    {}\n", self.v2_filtered_url());
        out += &format!("  rules:       {}\n", self.v2_rules_url());
        out += &format!("  sample:      {}\n", self.v2_sample_url());
        out += &format!(
            "  sample10:    {} (partitions 1-2)\n",
            self.v2_sample10_url(1)
        );
        out += &format!(
            "  firehose:    {} (partitions 1-20)\n",
            self.v2_firehose_url(1)
        );
        out += &format!(
            "  compliance:  {} (partitions 1-4)\n",
            self.v2_compliance_url(1)
        );
        out += "\nSimulator control:\n";
        out += &format!("  accounting:  GET  {}\n", self.accounting_url());
        out += &format!(
            "  faults:      POST {}  (body: a fault spec)\n",
            self.faults_url()
        );
        let rate = c
            .rate
            .map_or("as fast as the client reads".to_string(), |r| {
                format!("{r} records/s per stream")
            });
        out += &format!(
            "\nRate: {rate}. Faults: {}.\n",
            if c.faults.is_empty() {
                "none".into()
            } else {
                c.faults.to_string()
            }
        );
        out
    }

    /// Stops accepting, ends every connection (streams get a clean end of
    /// body), waits for them, and writes the accounting file if configured;
    /// a failure to write it is logged. Use [`SimHandle::finish`] to get the
    /// error and the final accounting instead.
    pub async fn shutdown(self) {
        if let Err(e) = self.finish().await {
            tracing::error!(error = %e, "Accounting file not written.");
        }
    }

    /// Like [`SimHandle::shutdown`], returning the final accounting.
    ///
    /// # Errors
    ///
    /// [`SimError::AccountingFile`] when the file cannot be written.
    pub async fn finish(mut self) -> Result<Accounting, SimError> {
        self.shutdown_tx.send_replace(true);
        if let Some(a) = self.accept.take() {
            let _ = a.await;
        }
        lock(&self.shared.done).take();
        // Every task holds a sender; recv() returns None once all are gone.
        let _ = self.done_rx.recv().await;
        let acc = self.shared.ledger.snapshot(true);
        let (sent, resent) = self.shared.ledger.id_counts();
        tracing::info!(
            records = acc.records_sent,
            distinct_ids = sent,
            resent_ids = resent,
            connections = acc.connections.len(),
            "Simulator stopped."
        );
        if let Some(path) = &self.shared.config.accounting_file {
            let json = serde_json::to_vec_pretty(&acc).unwrap_or_default();
            std::fs::write(path, json).map_err(|source| SimError::AccountingFile {
                path: path.clone(),
                source,
            })?;
        }
        Ok(acc)
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown_tx.send_replace(true);
    }
}

/// Resolves once the simulator is stopping.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    // The guard wait_for returns is not Send; drop it here.
    let _ = rx.wait_for(|s| *s).await;
}
