//! Serving one stream connection: the chunked, gzip (or, on v2 without
//! `Accept-Encoding: gzip`, plain) body, heartbeats when idle, backfill,
//! recovery and replay windows with their completion messages, the
//! per-connection faults, and the accounting of every record whose bytes
//! all reached the socket.

use std::sync::Arc;
use std::time::Duration;

use fastrand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::sync::watch;
use tokio::time::{Instant, sleep, sleep_until};

use crate::accounting::EndReason;
use crate::fault::ConnFaults;
use crate::http::stream_head;
use crate::ids::Runs;
use crate::route::{Mode, StreamRoute};
use crate::server::Shared;
use crate::template::Entry;
use crate::time::{iso_offset, now_ms};
use crate::timeline::{Read, Timeline};
use crate::wire::{Encoder, LAST_CHUNK, chunk};

/// Records read from a timeline at once.
const READ_BATCH: usize = 512;
/// Encoded bytes gathered before a write; large writes keep the syscall
/// count low when serving as fast as possible.
const FLUSH_BYTES: usize = 128 * 1024;
/// How long a stream may take to write its last bytes at shutdown.
const SHUTDOWN_WRITE: Duration = Duration::from_millis(500);
/// How often a reader that drives generation retries once the timeline has
/// nothing to give (rules may have been added meanwhile).
const DRIVE_RETRY: Duration = Duration::from_millis(200);

/// The parameters of one accepted stream connection.
pub(crate) struct Stream {
    pub route: StreamRoute,
    pub gzip: bool,
    pub faults: ConnFaults,
    pub ledger_idx: usize,
    pub attempt: u64,
    pub heartbeat: Duration,
}

struct Conn<'a, 'b> {
    shared: &'a Shared,
    rd: ReadHalf<'b>,
    wr: WriteHalf<'b>,
    shutdown: watch::Receiver<bool>,
    enc: Encoder,
    v2: bool,
    faults: ConnFaults,
    ledger_idx: usize,
    rng: Rng,
    body: Vec<u8>,
    frame: Vec<u8>,
    scratch: Vec<u8>,
    pending_records: u64,
    runs: Runs,
    recent: Vec<(u64, u64)>,
    /// Records rendered on this connection, pending ones included.
    rendered: u64,
    /// Backfill records still to send before this connection reaches the
    /// live edge of its timeline.
    replay_left: u64,
    /// Live records (past the backfill) rendered on this connection.
    live: u64,
    /// Decoded bytes already in the ledger.
    content_accounted: u64,
    last_write: Instant,
    /// A write was abandoned part-way: the chunked framing is broken and
    /// nothing more may be written.
    torn: bool,
}

enum Step {
    Continue,
    End(EndReason),
}

impl<'a, 'b> Conn<'a, 'b> {
    /// A connection's writer state; `buf` is the initial capacity of its
    /// body and frame buffers.
    #[allow(clippy::too_many_arguments)]
    fn new(
        shared: &'a Shared,
        sock: &'b mut tokio::net::TcpStream,
        enc: Encoder,
        v2: bool,
        faults: ConnFaults,
        ledger_idx: usize,
        rng: Rng,
        buf: usize,
    ) -> Self {
        let (rd, wr) = sock.split();
        Conn {
            shared,
            rd,
            wr,
            shutdown: shared.shutdown.clone(),
            enc,
            v2,
            faults,
            ledger_idx,
            rng,
            body: Vec::with_capacity(buf),
            frame: Vec::with_capacity(buf),
            scratch: Vec::with_capacity(256),
            pending_records: 0,
            runs: Runs::default(),
            recent: Vec::new(),
            rendered: 0,
            replay_left: 0,
            live: 0,
            content_accounted: 0,
            last_write: Instant::now(),
            torn: false,
        }
    }
}

impl Conn<'_, '_> {
    /// Frames and writes what is buffered; counts its records as sent.
    async fn flush(&mut self) -> Result<(), EndReason> {
        if self.body.is_empty() {
            return Ok(());
        }
        self.frame.clear();
        if self.faults.split_chunks {
            let mut rest = &self.body[..];
            while !rest.is_empty() {
                let n = self.rng.usize(1..=rest.len().min(4096));
                chunk(&mut self.frame, &rest[..n]);
                rest = &rest[n..];
            }
        } else {
            chunk(&mut self.frame, &self.body);
        }
        self.body.clear();
        self.write_frame().await?;
        let bytes = self.frame.len() as u64;
        let content = self.enc.plain_bytes() - self.content_accounted;
        self.content_accounted = self.enc.plain_bytes();
        let records = self.pending_records;
        self.shared
            .ledger
            .sent(self.ledger_idx, records, bytes, content, &self.runs.runs);
        if !self.recent.is_empty() {
            self.shared.recent.push(self.recent.drain(..));
        }
        self.pending_records = 0;
        self.runs.runs.clear();
        Ok(())
    }

    async fn write_frame(&mut self) -> Result<(), EndReason> {
        let mut shutdown = self.shutdown.clone();
        let write = async {
            match self.faults.trickle {
                None => self.wr.write_all(&self.frame).await,
                Some((step, every)) => {
                    for (i, piece) in self.frame.chunks(step).enumerate() {
                        if i > 0 {
                            sleep(every).await;
                        }
                        self.wr.write_all(piece).await?;
                    }
                    Ok(())
                }
            }
        };
        tokio::select! {
            r = write => r.map_err(|_| EndReason::WriteFailed)?,
            _ = crate::server::stopped(&mut shutdown) => {
                self.torn = true;
                return Err(EndReason::Shutdown);
            }
        }
        self.last_write = Instant::now();
        Ok(())
    }

    async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), EndReason> {
        self.frame.clear();
        self.frame.extend_from_slice(bytes);
        self.write_frame().await?;
        let n = bytes.len() as u64;
        self.shared
            .ledger
            .update(self.ledger_idx, |c| c.bytes_sent += n);
        Ok(())
    }

    fn push_record(&mut self, e: &Entry) {
        e.render(&mut self.enc, &mut self.body, &mut self.scratch);
        self.pending_records += 1;
        self.rendered += 1;
        if self.replay_left > 0 {
            self.replay_left -= 1;
        } else {
            self.live += 1;
        }
        if let Some(id) = e.post_id {
            self.runs.push(id);
            if id.is_multiple_of(16)
                && let Some(author) = e.author_id()
            {
                self.recent.push((id, author));
            }
        }
    }

    fn push_line(&mut self, line: &str) {
        let mut text = line.as_bytes().to_vec();
        text.extend_from_slice(b"\r\n");
        self.enc.literal(&mut self.body, &text);
    }

    /// A system message: `{"info":{...}}` and friends on enterprise streams;
    /// on v2 an error is an `errors` object, while the completion of a
    /// recovery keeps the enterprise `info` shape.
    fn system(&self, severity: &str, message: &str, extra: &str) -> String {
        if self.v2 && severity == "error" {
            let kind = if message.contains("keep up") {
                "ConnectionTooSlow"
            } else {
                "OperationalDisconnect"
            };
            return serde_json::json!({"errors": [{
                "title": "operational-disconnect",
                "disconnect_type": kind,
                "detail": message,
                "type": "https://api.x.com/2/problems/operational-disconnect",
            }]})
            .to_string();
        }
        let msg = serde_json::to_string(message).expect("a str always serialises");
        format!(
            "{{\"{severity}\":{{\"message\":{msg},\"sent\":\"{}\"{extra}}}}}",
            iso_offset(now_ms())
        )
    }

    /// Buffers the first part of `e` only, to cut the connection mid-record.
    fn push_partial(&mut self, e: &Entry) {
        let mut whole = Vec::new();
        e.render(&mut self.enc, &mut whole, &mut self.scratch);
        let cut = (whole.len() / 2).max(1);
        self.body.extend_from_slice(&whole[..cut]);
    }

    /// Ends the body deliberately: gzip trailer, then the zero-length chunk.
    async fn close_body(&mut self) -> Result<(), EndReason> {
        self.enc.finish(&mut self.body);
        self.flush().await?;
        self.write_raw(LAST_CHUNK).await
    }

    /// Applies the faults due before record number `rendered + 1` (`e`).
    async fn before_record(&mut self, e: &Entry) -> Result<Step, EndReason> {
        let n = self.rendered;
        // Only live records count towards a periodic drop: a backfill that
        // re-sends more than K records would otherwise cut every connection
        // before it reached new data, and no client could make progress.
        let live = self.live;
        if self.replay_left == 0 && self.faults.drop_every.is_some_and(|(k, _)| live == k) {
            let rst = self.faults.drop_every.is_some_and(|(_, r)| r);
            self.flush().await?;
            self.push_partial(e);
            self.pending_records = 0;
            self.flush().await?;
            return Ok(Step::End(if rst {
                EndReason::DroppedRst
            } else {
                EndReason::DroppedFin
            }));
        }
        if self.faults.truncate_after == Some(n) {
            self.flush().await?;
            self.push_partial(e);
            self.flush().await?;
            self.write_raw(LAST_CHUNK).await?;
            return Ok(Step::End(EndReason::TruncatedGzip));
        }
        if self.faults.forced_after == Some(n) {
            self.flush().await?;
            let msg = self.system(
                "error",
                "Forced Disconnect: This stream has been disconnected for operational reasons.",
                "",
            );
            self.push_line(&msg);
            self.close_body().await?;
            return Ok(Step::End(EndReason::ForcedDisconnect));
        }
        if self.faults.stall_after == Some(n) {
            self.flush().await?;
            return Ok(Step::End(self.stall().await));
        }
        Ok(Step::Continue)
    }

    fn after_record(&mut self) {
        if let Some(k) = self.faults.malformed_every
            && self.rendered.is_multiple_of(k)
        {
            let line = format!(
                "{{\"id_str\":\"{}\",\"text\":\"a record cut short by the network",
                self.rendered
            );
            self.push_line(&line);
            self.shared
                .ledger
                .update(self.ledger_idx, |c| c.malformed_sent += 1);
        }
    }

    /// Writes records; returns early when a fault ends the connection.
    async fn send(&mut self, entries: &[Entry]) -> Result<Step, EndReason> {
        for e in entries {
            if let Step::End(r) = self.before_record(e).await? {
                return Ok(Step::End(r));
            }
            self.push_record(e);
            self.after_record();
            if self.body.len() >= FLUSH_BYTES {
                self.flush().await?;
            }
        }
        self.flush().await?;
        Ok(Step::Continue)
    }

    /// Writes nothing until the client leaves or the simulator stops.
    async fn stall(&mut self) -> EndReason {
        let mut shutdown = self.shutdown.clone();
        let mut buf = [0u8; 256];
        loop {
            tokio::select! {
                r = self.rd.read(&mut buf) => match r {
                    Ok(0) | Err(_) => return EndReason::Stalled,
                    Ok(_) => {}
                },
                _ = crate::server::stopped(&mut shutdown) => return EndReason::Shutdown,
            }
        }
    }

    /// Whether the client has closed its side (checked between batches, so
    /// a busy stream notices a departed client without waiting for a write
    /// to fail).
    fn client_gone(&self) -> bool {
        let mut buf = [0u8; 256];
        match self.rd.try_read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        }
    }

    async fn heartbeat(&mut self) -> Result<(), EndReason> {
        self.push_line("");
        self.flush().await?;
        self.shared
            .ledger
            .update(self.ledger_idx, |c| c.heartbeats_sent += 1);
        Ok(())
    }

    /// Waits for new records, writing heartbeats while idle.
    async fn idle(
        &mut self,
        rx: &mut watch::Receiver<u64>,
        heartbeat: Duration,
        retry: Option<Duration>,
    ) -> Result<(), EndReason> {
        let mut shutdown = self.shutdown.clone();
        let deadline = self.last_write + heartbeat;
        let retry_at = retry.map(|r| Instant::now() + r);
        let mut buf = [0u8; 256];
        tokio::select! {
            _ = rx.changed() => Ok(()),
            _ = sleep_until(deadline) => self.heartbeat().await,
            _ = async { match retry_at { Some(t) => sleep_until(t).await, None => std::future::pending().await } } => Ok(()),
            r = self.rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => Err(EndReason::ClientClosed),
                Ok(_) => Ok(()),
            },
            _ = crate::server::stopped(&mut shutdown) => Err(EndReason::Shutdown),
        }
    }
}

/// Serves an accepted stream on `sock` until it ends; returns why.
pub(crate) async fn serve(
    shared: &Shared,
    sock: &mut tokio::net::TcpStream,
    s: Stream,
) -> EndReason {
    let rng = Rng::with_seed(shared.config.seed ^ s.attempt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut c = Conn::new(
        shared,
        sock,
        Encoder::new(s.gzip),
        s.route.product.is_v2(),
        s.faults,
        s.ledger_idx,
        rng,
        FLUSH_BYTES + 64 * 1024,
    );
    match run(&mut c, &s).await {
        Err(EndReason::Shutdown) => {
            // End the body properly unless a write was torn: gzip trailer
            // and zero-length chunk, with a short bound so that a client
            // that stopped reading cannot hold the shutdown up.
            if !c.torn {
                c.enc.finish(&mut c.body);
                c.frame.clear();
                chunk(&mut c.frame, &c.body);
                c.frame.extend_from_slice(LAST_CHUNK);
                let _ = tokio::time::timeout(SHUTDOWN_WRITE, c.wr.write_all(&c.frame)).await;
            }
            EndReason::Shutdown
        }
        Ok(r) | Err(r) => r,
    }
}

async fn run(c: &mut Conn<'_, '_>, s: &Stream) -> Result<EndReason, EndReason> {
    c.write_raw(&stream_head(s.gzip, c.v2)).await?;
    c.enc.start(&mut c.body);
    c.flush().await?;

    let product = s.route.product;
    match s.route.mode {
        Mode::Live { backfill_minutes } => {
            let tl = c.shared.timeline(product, s.route.partition);
            let drive = c.shared.driven(product);
            let mut cursor = if backfill_minutes > 0 {
                tl.seq_at(now_ms().saturating_sub(u64::from(backfill_minutes) * 60_000))
            } else {
                tl.next_seq()
            };
            c.replay_left = tl.next_seq().saturating_sub(cursor);
            let mut rx = tl.subscribe();
            loop {
                rx.borrow_and_update();
                if c.client_gone() {
                    return Ok(EndReason::ClientClosed);
                }
                match tl.read(cursor, READ_BATCH, drive, None, now_ms()) {
                    Read::Entries(es) => {
                        cursor += es.len() as u64;
                        if let Step::End(r) = c.send(&es).await? {
                            return Ok(r);
                        }
                    }
                    Read::Behind => return full_buffer(c).await,
                    Read::Idle => {
                        // A stall fault due at once (stall-after before any
                        // record) must not be hidden behind heartbeats.
                        if c.faults.stall_after == Some(c.rendered) {
                            return Ok(c.stall().await);
                        }
                        c.idle(&mut rx, s.heartbeat, drive.then_some(DRIVE_RETRY))
                            .await?;
                    }
                }
            }
        }
        Mode::Recovery { start, end } => {
            let tl = c.shared.timeline(product, s.route.partition);
            let (count, step) = window(c, &tl, start, end).await?;
            if let Step::End(r) = step {
                return Ok(r);
            }
            let extra = format!(",\"activity_count\":{count}");
            let msg = c.system("info", "Recovery Request Completed", &extra);
            finish_window(c, &msg).await
        }
        Mode::Replay { from, to } => {
            let mut total = 0;
            for tl in c.shared.timelines_of(product) {
                let (count, step) = window(c, &tl, from, to).await?;
                if let Step::End(r) = step {
                    return Ok(r);
                }
                total += count;
            }
            let extra = format!(",\"activity_count\":{total}");
            let msg = c.system("info", "Replay Request Completed", &extra);
            finish_window(c, &msg).await
        }
    }
}

async fn finish_window(c: &mut Conn<'_, '_>, msg: &str) -> Result<EndReason, EndReason> {
    // The completion message is not a record: it must not be cut by a
    // record-count fault, and it closes the body.
    c.push_line(msg);
    c.close_body().await?;
    Ok(EndReason::Completed)
}

/// Sends the records of `tl` generated in `[from, to)`.
async fn window(
    c: &mut Conn<'_, '_>,
    tl: &Arc<Timeline>,
    from: u64,
    to: u64,
) -> Result<(u64, Step), EndReason> {
    let mut cursor = tl.seq_at(from);
    let end = tl.seq_at(to);
    let mut count = 0;
    while cursor < end {
        match tl.read(cursor, READ_BATCH, false, Some(end), now_ms()) {
            Read::Entries(es) => {
                cursor += es.len() as u64;
                count += es.len() as u64;
                if let Step::End(r) = c.send(&es).await? {
                    return Ok((count, Step::End(r)));
                }
            }
            Read::Behind => cursor = tl.seq_at(from),
            Read::Idle => break,
        }
    }
    Ok((count, Step::Continue))
}

async fn full_buffer(c: &mut Conn<'_, '_>) -> Result<EndReason, EndReason> {
    let msg = if c.v2 {
        c.system(
            "error",
            "This stream has been disconnected because your client was unable to keep up with us.",
            "",
        )
    } else {
        let m = format!(
            "Force closing connection to {} because it reached the maximum allowed backup (buffer size is {}).",
            c.ledger_idx + 1,
            c.shared.config.history_bytes
        );
        c.system("error", &m, "")
    };
    c.push_line(&msg);
    c.close_body().await?;
    Ok(EndReason::FullBuffer)
}

/// Accepts a connection over the limit only to tell it so and close it, as
/// the enterprise streams do.
pub(crate) async fn too_many(
    shared: &Shared,
    sock: &mut tokio::net::TcpStream,
    ledger_idx: usize,
) -> EndReason {
    let mut c = Conn::new(
        shared,
        sock,
        Encoder::new(true),
        false,
        ConnFaults::default(),
        ledger_idx,
        Rng::with_seed(1),
        0,
    );
    let result = async {
        c.write_raw(&stream_head(true, false)).await?;
        c.enc.start(&mut c.body);
        let m = format!(
            "Forced Disconnect: Too many connections. (Allowed Connections = {})",
            shared.config.max_connections
        );
        let extra = format!(",\"transactionId\":\"sim-{ledger_idx}\"");
        let msg = c.system("error", &m, &extra);
        c.push_line(&msg);
        c.close_body().await?;
        Ok::<_, EndReason>(EndReason::TooManyConnections)
    }
    .await;
    match result {
        Ok(r) | Err(r) => r,
    }
}
