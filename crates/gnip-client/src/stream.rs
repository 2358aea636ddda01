//! The stream: one logical stream over one or more partition connections,
//! each with its own reconnect state, feeding one bounded channel of
//! records and events. This is the crate's entry point ([`spawn`]).
//!
//! Each connection task runs the client loop of spec section 9: connect
//! (asking for backfill when the last record is recent), read bytes with a
//! stall timer, inflate, frame, classify, drop duplicates against the set
//! shared by every connection of the stream, and send records on; when the
//! connection ends, back off by failure class and connect again. A
//! configuration error stops every task; it is the last item on the channel.
//! Redundant connections (`connections_per_partition = 2`) are simply more
//! tasks on the same partition: the shared dedup set keeps one copy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::auth::Credentials;
use crate::backoff::{Backoff, BackoffConfig, FailureClass};
use crate::connection::{self, CONNECT_TIMEOUT};
use crate::dedup::{self, RecentSet};
use crate::endpoint::Endpoint;
use crate::error::StreamError;
use crate::framing::{DEFAULT_MAX_RECORD_BYTES, Frame, Framer};
use crate::inflate::Inflater;
use crate::message::{Level, Message, classify};
use crate::record::{Kind, Record};

/// Default bound of the output channel, in items. At a typical 3-6 KB per
/// post this holds 12-25 MB: a few seconds of a busy stream, enough to ride
/// out a consumer's hiccup without letting a stuck consumer grow memory
/// without bound. When it is full the connection stops reading, and the
/// server disconnects a reader that falls too far behind (spec 3.2), which
/// is reported and recovered like any other disconnect.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 4096;

/// Default stall timeout: three missed 10-second enterprise heartbeats
/// (spec 1.3); also above the 20 s v2 heartbeat with a margin for pauses.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Default time a connection must stay up before its backoff counters reset:
/// long enough that a server which accepts and then drops at once is still
/// treated as failing.
pub const DEFAULT_HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// The longest outage backfill can cover (spec 2.3): five minutes.
pub const MAX_BACKFILL_MS: i64 = 5 * 60_000;

/// The longest excerpt of a malformed line carried in an event.
const EXCERPT_BYTES: usize = 200;

/// What a restarted program knows about the stream before it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    /// When the last record was received, epoch milliseconds.
    pub last_record_at_ms: i64,
    /// Post ids stored shortly before the stop: the backfill overlap with
    /// these is dropped.
    pub recent_post_ids: Vec<u64>,
}

/// Where "now" comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// The system wall clock.
    #[default]
    System,
    /// Wall time that advances with Tokio's clock, starting from the system
    /// time at [`spawn`]. With a paused test clock, outages can be simulated
    /// without waiting.
    Runtime,
}

/// Everything that defines a stream. Build with [`StreamConfig::new`] and
/// override fields as needed.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// The stream to connect to.
    pub endpoint: Endpoint,
    /// How to authenticate.
    pub credentials: Credentials,
    /// 1-based partitions to connect to. Empty: the partition in the URL,
    /// else every partition of a partitioned product, else none.
    pub partitions: Vec<u16>,
    /// Connections per partition: 1, or 2 for redundancy (spec 2.4).
    pub connections_per_partition: u8,
    /// No byte for this long means the connection is dead.
    pub stall_timeout: Duration,
    /// A connection up this long resets the backoff counters.
    pub healthy_after: Duration,
    /// Backoff numbers.
    pub backoff: BackoffConfig,
    /// Ask for backfill on reconnect (default true).
    pub backfill: bool,
    /// State from before a restart, used by the first connect.
    pub resume: Option<Resume>,
    /// Keys remembered for deduplication (see [`crate::dedup`]).
    pub dedup_capacity: usize,
    /// Longest accepted record, in bytes.
    pub max_record_bytes: usize,
    /// An extra CA certificate (PEM) to trust, for test servers.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Bound of the output channel (see [`DEFAULT_CHANNEL_CAPACITY`]).
    pub channel_capacity: usize,
    /// Timeout for connect plus response headers.
    pub connect_timeout: Duration,
    /// Where wall time comes from.
    pub clock: Clock,
}

/// The default `User-Agent`: the product name and version, so that the
/// provider's support can tell which client they see (spec 2.2).
pub fn default_user_agent() -> String {
    format!("gnip-connector/{} (gnip-client)", env!("CARGO_PKG_VERSION"))
}

impl StreamConfig {
    /// A configuration with every default.
    pub fn new(endpoint: Endpoint, credentials: Credentials) -> StreamConfig {
        StreamConfig {
            endpoint,
            credentials,
            partitions: Vec::new(),
            connections_per_partition: 1,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            healthy_after: DEFAULT_HEALTHY_AFTER,
            backoff: BackoffConfig::default(),
            backfill: true,
            resume: None,
            dedup_capacity: dedup::DEFAULT_CAPACITY,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            extra_ca_pem: None,
            user_agent: default_user_agent(),
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
            connect_timeout: CONNECT_TIMEOUT,
            clock: Clock::System,
        }
    }

    /// The partitions the stream will connect to (0 = unpartitioned).
    ///
    /// # Errors
    ///
    /// [`StreamError::Endpoint`] for a partition out of range.
    pub fn effective_partitions(&self) -> Result<Vec<u16>, StreamError> {
        if !self.partitions.is_empty() {
            for &p in &self.partitions {
                self.endpoint.check_partition(p)?;
            }
            let mut ps = self.partitions.clone();
            ps.sort_unstable();
            ps.dedup();
            return Ok(ps);
        }
        if let Some(p) = self.endpoint.partition() {
            return Ok(vec![p]);
        }
        match self.endpoint.product().partitions() {
            Some(n) => Ok((1..=n).collect()),
            None => Ok(vec![0]),
        }
    }
}

/// One item on the output channel.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// A record, never a duplicate the dedup set could have dropped.
    Record(Record),
    /// Something a caller may want to watch.
    Event(StreamEvent),
}

/// A lifecycle or quality event.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A connection got HTTP 200.
    Connected {
        /// Partition (0 = none).
        partition: u16,
        /// Connection id within the stream (1-based).
        connection: u32,
        /// When, epoch ms.
        at_ms: i64,
        /// The backfill asked for, if any.
        backfill_minutes: Option<u8>,
    },
    /// An established connection ended.
    Disconnected {
        /// Partition.
        partition: u16,
        /// Connection id.
        connection: u32,
        /// When, epoch ms.
        at_ms: i64,
        /// Why (never carries credentials).
        reason: String,
        /// When the connection last received a record, epoch ms.
        last_record_at_ms: Option<i64>,
    },
    /// Waiting before the next attempt.
    BackingOff {
        /// Partition.
        partition: u16,
        /// Connection id.
        connection: u32,
        /// How long.
        delay: Duration,
        /// Why.
        class: FailureClass,
    },
    /// The server sent a system message.
    SystemMessage {
        /// Partition.
        partition: u16,
        /// Severity.
        level: Level,
        /// Text.
        message: String,
    },
    /// A record already delivered arrived again and was dropped.
    DuplicateDropped {
        /// Partition.
        partition: u16,
        /// The post id (0 for a duplicate compliance event without one).
        post_id: u64,
    },
    /// A line could not be classified (or was too long) and was skipped.
    Malformed {
        /// Partition.
        partition: u16,
        /// What was wrong.
        error: String,
        /// The start of the line, at most 200 bytes, lossily decoded.
        excerpt: String,
    },
    /// An outage that backfill does not cover (longer than five minutes,
    /// backfill disabled, or a product without backfill); the span must be
    /// recovered another way (Recovery / Replay).
    GapNotBackfilled {
        /// Partition.
        partition: u16,
        /// Connection id.
        connection: u32,
        /// Last record before the gap, epoch ms.
        from_ms: i64,
        /// Reconnect time, epoch ms.
        to_ms: i64,
    },
    /// Nothing will be retried; this is the last item before the channel
    /// closes.
    Fatal(StreamError),
}

/// Counters for the whole stream, as read by [`StreamHandle::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Bytes read from the sockets (compressed).
    pub wire_bytes: u64,
    /// Bytes after inflating.
    pub bytes: u64,
    /// Records sent on the channel.
    pub records: u64,
    /// Activities among them.
    pub activities: u64,
    /// Heartbeats seen.
    pub heartbeats: u64,
    /// Reconnect attempts scheduled.
    pub reconnects: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Malformed or oversized lines skipped.
    pub malformed: u64,
    /// System messages seen.
    pub system_messages: u64,
    /// Messages of a shape not known here, passed on as [`Kind::Unknown`].
    pub unknown: u64,
}

#[derive(Debug, Default)]
struct Counters {
    wire_bytes: AtomicU64,
    bytes: AtomicU64,
    records: AtomicU64,
    activities: AtomicU64,
    heartbeats: AtomicU64,
    reconnects: AtomicU64,
    duplicates: AtomicU64,
    malformed: AtomicU64,
    system_messages: AtomicU64,
    unknown: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) -> u64 {
    c.fetch_add(n, Ordering::Relaxed) + n
}

impl Counters {
    fn snapshot(&self) -> StreamStats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StreamStats {
            wire_bytes: r(&self.wire_bytes),
            bytes: r(&self.bytes),
            records: r(&self.records),
            activities: r(&self.activities),
            heartbeats: r(&self.heartbeats),
            reconnects: r(&self.reconnects),
            duplicates: r(&self.duplicates),
            malformed: r(&self.malformed),
            system_messages: r(&self.system_messages),
            unknown: r(&self.unknown),
        }
    }
}

/// Wall time per the configured [`Clock`].
#[derive(Debug, Clone, Copy)]
struct WallClock {
    kind: Clock,
    base_ms: i64,
    base: tokio::time::Instant,
}

fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl WallClock {
    fn new(kind: Clock) -> WallClock {
        WallClock {
            kind,
            base_ms: system_now_ms(),
            base: tokio::time::Instant::now(),
        }
    }

    fn now_ms(&self) -> i64 {
        match self.kind {
            Clock::System => system_now_ms(),
            Clock::Runtime => {
                let elapsed = tokio::time::Instant::now().duration_since(self.base);
                self.base_ms + i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX / 2)
            }
        }
    }
}

/// State shared by the tasks of one stream and its handle.
#[derive(Debug)]
struct Shared {
    counters: Counters,
    dedup: Mutex<RecentSet>,
    cancel: CancellationToken,
    clock: WallClock,
}

/// Controls a running stream.
#[derive(Debug, Clone)]
pub struct StreamHandle {
    shared: Arc<Shared>,
}

impl StreamHandle {
    /// Asks every connection to close. Records already read are still
    /// delivered; then the channel ends.
    pub fn shutdown(&self) {
        self.shared.cancel.cancel();
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> StreamStats {
        self.shared.counters.snapshot()
    }
}

/// The backfill to ask for after an outage of `outage_ms`: the outage in
/// whole minutes rounded up, plus one minute of margin, at most 5 (spec 9);
/// `None` when the outage is longer than backfill can cover.
pub fn backfill_minutes(outage_ms: i64) -> Option<u8> {
    if outage_ms > MAX_BACKFILL_MS {
        return None;
    }
    let minutes = (outage_ms.max(0) + 59_999) / 60_000 + 1;
    Some(u8::try_from(minutes.min(5)).expect("minutes is clamped to 1..=5"))
}

/// Starts the stream: one task per partition connection, plus a supervisor.
/// Must be called inside a Tokio runtime.
///
/// # Errors
///
/// [`StreamError`] (always fatal) when the configuration cannot work: a bad
/// partition, credentials that cannot form a header, an unreadable CA
/// certificate, a zero channel capacity, or no Tokio runtime.
pub fn spawn(
    config: StreamConfig,
) -> Result<(mpsc::Receiver<StreamItem>, StreamHandle), StreamError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(StreamError::Config(
            "spawn must be called inside a Tokio runtime".into(),
        ));
    }
    if config.channel_capacity == 0 {
        return Err(StreamError::Config(
            "channel_capacity must be at least 1".into(),
        ));
    }
    if config.connections_per_partition == 0 {
        return Err(StreamError::Config(
            "connections_per_partition must be at least 1".into(),
        ));
    }
    let partitions = config.effective_partitions()?;
    config
        .credentials
        .header_value()
        .map_err(|e| StreamError::Config(e.to_string()))?;
    let client = connection::build_client(
        config.extra_ca_pem.as_deref(),
        &config.user_agent,
        config.connect_timeout,
    )?;

    let mut dedup = RecentSet::new(config.dedup_capacity);
    if let Some(resume) = &config.resume {
        for &id in &resume.recent_post_ids {
            dedup.insert(id);
        }
    }
    let shared = Arc::new(Shared {
        counters: Counters::default(),
        dedup: Mutex::new(dedup),
        cancel: CancellationToken::new(),
        clock: WallClock::new(config.clock),
    });
    let (tx, rx) = mpsc::channel(config.channel_capacity);
    let config = Arc::new(config);

    let mut tasks = JoinSet::new();
    let mut id = 0u32;
    for &partition in &partitions {
        for _ in 0..config.connections_per_partition {
            id += 1;
            let conn = ConnectionTask {
                shared: shared.clone(),
                config: config.clone(),
                client: client.clone(),
                tx: tx.clone(),
                partition,
                connection: id,
            };
            let span = tracing::info_span!(
                "stream",
                product = config.endpoint.product().as_str(),
                partition,
                connection = id
            );
            tasks.spawn(conn.run().instrument(span));
        }
    }
    tracing::info!(
        product = config.endpoint.product().as_str(),
        partitions = partitions.len(),
        connections = id,
        "Stream started."
    );

    let sup_shared = shared.clone();
    tokio::spawn(async move {
        let mut fatal: Option<StreamError> = None;
        while let Some(done) = tasks.join_next().await {
            let err = match done {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(e) => Some(StreamError::Config(format!(
                    "a connection task failed: {e}"
                ))),
            };
            if let Some(e) = err
                && fatal.is_none()
            {
                tracing::error!(error = %e, "Stream stopped; not retrying.");
                sup_shared.cancel.cancel();
                fatal = Some(e);
            }
        }
        if let Some(e) = fatal {
            let _ = tx.send(StreamItem::Event(StreamEvent::Fatal(e))).await;
        }
        tracing::info!("Stream finished.");
    });

    Ok((rx, StreamHandle { shared }))
}

/// How a connection's read loop ended.
enum End {
    /// Shutdown was asked for, or the receiver is gone.
    Shutdown,
    /// The connection failed or was closed; reconnect.
    Failed(StreamError),
}

/// One connection to one partition, reconnecting until shutdown or a fatal
/// error.
struct ConnectionTask {
    shared: Arc<Shared>,
    config: Arc<StreamConfig>,
    client: reqwest::Client,
    tx: mpsc::Sender<StreamItem>,
    partition: u16,
    connection: u32,
}

/// Per-connection state across reconnects.
struct State {
    backoff: Backoff,
    framer: Framer,
    last_record_at_ms: Option<i64>,
    gap_reported_from: Option<i64>,
    pieces: Vec<Bytes>,
}

impl ConnectionTask {
    async fn send(&self, item: StreamItem) -> bool {
        self.tx.send(item).await.is_ok()
    }

    async fn event(&self, event: StreamEvent) -> bool {
        self.send(StreamItem::Event(event)).await
    }

    async fn run(self) -> Result<(), StreamError> {
        let cfg = self.config.clone();
        let mut st = State {
            backoff: Backoff::new(cfg.backoff.clone()),
            framer: Framer::new(cfg.max_record_bytes),
            last_record_at_ms: cfg.resume.as_ref().map(|r| r.last_record_at_ms),
            gap_reported_from: None,
            pieces: Vec::new(),
        };
        let mut attempts: u64 = 0;
        loop {
            if self.shared.cancel.is_cancelled() {
                return Ok(());
            }

            // Backfill covers the time since the last record, if recent.
            let now = self.shared.clock.now_ms();
            let product_backfills = cfg.endpoint.product().backfill_param().is_some();
            let mut backfill = None;
            if let Some(last) = st.last_record_at_ms {
                // Without backfill every outage is a gap to recover.
                let minutes = backfill_minutes(now - last).filter(|_| cfg.backfill);
                match minutes.filter(|_| product_backfills) {
                    Some(m) => backfill = Some(m),
                    None => {
                        if st.gap_reported_from != Some(last) {
                            st.gap_reported_from = Some(last);
                            tracing::warn!(
                                outage_s = (now - last) / 1000,
                                "Outage not covered by backfill; recovery needed."
                            );
                            let gap = StreamEvent::GapNotBackfilled {
                                partition: self.partition,
                                connection: self.connection,
                                from_ms: last,
                                to_ms: now,
                            };
                            if !self.event(gap).await {
                                return Ok(());
                            }
                        }
                    }
                }
            }

            let url = cfg
                .endpoint
                .url_for(Some(self.partition).filter(|p| *p != 0), backfill);
            attempts += 1;
            let opened = tokio::select! {
                biased;
                _ = self.shared.cancel.cancelled() => return Ok(()),
                _ = self.tx.closed() => return Ok(()),
                r = connection::open(&self.client, &url, &cfg.credentials, cfg.connect_timeout) => r,
            };
            let failure = match opened {
                Ok(opened) => {
                    st.backoff.connected();
                    tracing::info!(
                        backfill_minutes = backfill,
                        attempts,
                        "Connected to stream."
                    );
                    let connected = StreamEvent::Connected {
                        partition: self.partition,
                        connection: self.connection,
                        at_ms: self.shared.clock.now_ms(),
                        backfill_minutes: backfill,
                    };
                    if !self.event(connected).await {
                        return Ok(());
                    }
                    match self.read(opened, &mut st).await {
                        End::Shutdown => return Ok(()),
                        End::Failed(err) => {
                            let dropped = st.framer.reset();
                            tracing::warn!(
                                error = %err,
                                partial_bytes = dropped,
                                "Disconnected from stream."
                            );
                            let disconnected = StreamEvent::Disconnected {
                                partition: self.partition,
                                connection: self.connection,
                                at_ms: self.shared.clock.now_ms(),
                                reason: err.to_string(),
                                last_record_at_ms: st.last_record_at_ms,
                            };
                            if !self.event(disconnected).await {
                                return Ok(());
                            }
                            err
                        }
                    }
                }
                Err(err) => err,
            };

            let class = failure.class();
            let Some(delay) = st.backoff.next_delay(class, fastrand::f64()) else {
                return Err(failure);
            };
            bump(&self.shared.counters.reconnects, 1);
            if st.backoff.at_cap(class) {
                tracing::warn!(error = %failure, class = class.as_str(), delay_ms = delay.as_millis() as u64, "Backoff at its cap; the stream keeps failing.");
            } else {
                tracing::warn!(error = %failure, class = class.as_str(), delay_ms = delay.as_millis() as u64, "Reconnecting to stream.");
            }
            let backing_off = StreamEvent::BackingOff {
                partition: self.partition,
                connection: self.connection,
                delay,
                class,
            };
            if !self.event(backing_off).await {
                return Ok(());
            }
            tokio::select! {
                biased;
                _ = self.shared.cancel.cancelled() => return Ok(()),
                _ = self.tx.closed() => return Ok(()),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Reads one open response until it ends.
    async fn read(&self, opened: connection::Opened, st: &mut State) -> End {
        let cfg = &self.config;
        let mut body = opened.response.bytes_stream();
        let mut inflater = Inflater::new(opened.gzip);
        let healthy_at = tokio::time::Instant::now() + cfg.healthy_after;
        let mut healthy = false;
        loop {
            let next = tokio::select! {
                biased;
                _ = self.shared.cancel.cancelled() => return End::Shutdown,
                // A dropped receiver ends the stream even while it is quiet.
                _ = self.tx.closed() => return End::Shutdown,
                _ = tokio::time::sleep_until(healthy_at), if !healthy => {
                    healthy = true;
                    st.backoff.healthy();
                    continue;
                }
                r = tokio::time::timeout(cfg.stall_timeout, body.next()) => r,
            };
            let chunk = match next {
                Err(_) => return End::Failed(StreamError::Stall(cfg.stall_timeout)),
                Ok(None) => {
                    return End::Failed(match inflater.finish() {
                        Err(e) => StreamError::Inflate(e),
                        Ok(()) => StreamError::Network("the server closed the stream".into()),
                    });
                }
                Ok(Some(Err(e))) => {
                    let mut text = e.to_string();
                    let mut src = std::error::Error::source(&e);
                    while let Some(s) = src {
                        text.push_str(": ");
                        text.push_str(&s.to_string());
                        src = s.source();
                    }
                    return End::Failed(StreamError::Network(text));
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            bump(&self.shared.counters.wire_bytes, chunk.len() as u64);

            // Inflate everything that arrived; frame and handle what it
            // yields before acting on an inflate error, so that records
            // completed before corrupt data are not lost.
            let mut pieces = std::mem::take(&mut st.pieces);
            let inflated = inflater.push(chunk, |b| pieces.push(b));
            for i in 0..pieces.len() {
                let piece = std::mem::take(&mut pieces[i]);
                bump(&self.shared.counters.bytes, piece.len() as u64);
                st.framer.push(piece);
                while let Some(frame) = st.framer.next_frame() {
                    if let Some(end) = self.handle(frame, st).await {
                        pieces.clear();
                        st.pieces = pieces;
                        return end;
                    }
                }
            }
            pieces.clear();
            st.pieces = pieces;
            if let Err(e) = inflated {
                return End::Failed(StreamError::Inflate(e));
            }
        }
    }

    /// Handles one frame; `Some` ends the connection.
    async fn handle(&self, frame: Frame, st: &mut State) -> Option<End> {
        let c = &self.shared.counters;
        let raw = match frame {
            Frame::Heartbeat => {
                bump(&c.heartbeats, 1);
                return None;
            }
            Frame::Oversized { seen } => {
                let n = bump(&c.malformed, 1);
                let error = format!(
                    "record longer than {} bytes ({seen} bytes seen); skipped to the next delimiter",
                    self.config.max_record_bytes
                );
                if n.is_power_of_two() {
                    tracing::warn!(error = %error, malformed_total = n, "Skipped an oversized record.");
                }
                let event = StreamEvent::Malformed {
                    partition: self.partition,
                    error,
                    excerpt: String::new(),
                };
                return (!self.event(event).await).then_some(End::Shutdown);
            }
            Frame::Record(raw) => raw,
        };

        let received_at_ms = self.shared.clock.now_ms();
        let msg = match classify(&raw) {
            Ok(m) => m,
            Err(e) => {
                let n = bump(&c.malformed, 1);
                if n.is_power_of_two() {
                    tracing::warn!(error = %e, malformed_total = n, "Skipped a malformed record.");
                }
                let event = StreamEvent::Malformed {
                    partition: self.partition,
                    error: e.to_string(),
                    excerpt: excerpt(&raw),
                };
                return (!self.event(event).await).then_some(End::Shutdown);
            }
        };
        let kind = msg.kind();
        let post_id = msg.post_id();
        let time_ms = msg.time_ms();

        // Dedup key: activities by post id, compliance events by content.
        let key = match &msg {
            Message::Activity(a) => {
                bump(&c.activities, 1);
                Some(a.post_id)
            }
            Message::Compliance(_) => Some(dedup::content_key(self.partition, &raw)),
            Message::Unknown => {
                // New message types may appear at any time (spec 1): pass
                // them on, and name their keys in the log now and then.
                let n = bump(&c.unknown, 1);
                if n.is_power_of_two() {
                    tracing::info!(
                        keys = %top_level_keys(&raw),
                        unknown_total = n,
                        "Passed on a message of unknown shape."
                    );
                }
                None
            }
            Message::System(_) => None,
        };
        let mut end = None;
        if let Message::System(s) = &msg {
            bump(&c.system_messages, 1);
            tracing::info!(level = s.level.as_str(), message = %s.message, "System message from stream.");
            if let Some(kind) = s.disconnect {
                end = Some(End::Failed(StreamError::ServerDisconnect {
                    kind,
                    message: s.message.clone().into_owned(),
                }));
            }
            let event = StreamEvent::SystemMessage {
                partition: self.partition,
                level: s.level,
                message: s.message.clone().into_owned(),
            };
            if !self.event(event).await {
                return Some(End::Shutdown);
            }
        }
        drop(msg);

        if let Some(key) = key {
            let fresh = self
                .shared
                .dedup
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(key);
            if !fresh {
                bump(&c.duplicates, 1);
                let event = StreamEvent::DuplicateDropped {
                    partition: self.partition,
                    post_id: post_id.unwrap_or(0),
                };
                return (!self.event(event).await).then_some(End::Shutdown);
            }
        }
        if matches!(kind, Kind::Activity | Kind::Compliance) {
            st.last_record_at_ms = Some(received_at_ms);
        }
        bump(&c.records, 1);
        let record = Record {
            raw,
            kind,
            post_id,
            posted_at_ms: time_ms,
            partition: self.partition,
            received_at_ms,
        };
        if !self.send(StreamItem::Record(record)).await {
            return Some(End::Shutdown);
        }
        end
    }
}

/// The top-level keys of a JSON object, for logs (never the values, which
/// may be user content).
fn top_level_keys(raw: &[u8]) -> String {
    match serde_json::from_slice::<std::collections::BTreeMap<String, serde::de::IgnoredAny>>(raw) {
        Ok(map) => map.into_keys().take(10).collect::<Vec<_>>().join(","),
        Err(_) => String::from("?"),
    }
}

/// The first [`EXCERPT_BYTES`] of a line, cut at a character boundary.
fn excerpt(raw: &[u8]) -> String {
    let mut end = raw.len().min(EXCERPT_BYTES);
    while end > 0 && end < raw.len() && (raw[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backfill_is_outage_rounded_up_plus_one_capped_at_five() {
        assert_eq!(backfill_minutes(0), Some(1));
        assert_eq!(backfill_minutes(1), Some(2));
        assert_eq!(backfill_minutes(60_000), Some(2));
        assert_eq!(backfill_minutes(70_000), Some(3));
        assert_eq!(backfill_minutes(90_000), Some(3));
        assert_eq!(backfill_minutes(240_000), Some(5));
        assert_eq!(backfill_minutes(299_000), Some(5));
        assert_eq!(backfill_minutes(300_000), Some(5));
        assert_eq!(backfill_minutes(300_001), None);
        assert_eq!(backfill_minutes(-5), Some(1));
    }

    #[test]
    fn top_level_keys_name_keys_only() {
        assert_eq!(top_level_keys(br#"{"b":{"secret":1},"a":"text"}"#), "a,b");
        assert_eq!(top_level_keys(b"not json"), "?");
    }

    #[test]
    fn excerpt_is_bounded_and_whole_characters() {
        let long = "\u{e9}".repeat(300);
        let e = excerpt(long.as_bytes());
        assert!(e.len() <= EXCERPT_BYTES);
        assert!(e.chars().all(|c| c == '\u{e9}'));
        assert_eq!(excerpt(b"abc"), "abc");
    }

    #[test]
    fn partitions_default_from_url_or_product() {
        let creds = Credentials::basic("u", "p");
        let e = Endpoint::parse(
            "http://127.0.0.1:1/stream/sample10/accounts/a/publishers/twitter/p.json",
        )
        .expect("valid");
        let mut c = StreamConfig::new(e, creds.clone());
        assert_eq!(c.effective_partitions().expect("ok"), vec![1, 2]);
        c.partitions = vec![2, 2];
        assert_eq!(c.effective_partitions().expect("ok"), vec![2]);
        c.partitions = vec![3];
        assert!(c.effective_partitions().is_err());
        let pt = Endpoint::powertrack("http://127.0.0.1:1", "a", "p").expect("valid");
        assert_eq!(
            StreamConfig::new(pt, creds)
                .effective_partitions()
                .expect("ok"),
            vec![0]
        );
    }
}
