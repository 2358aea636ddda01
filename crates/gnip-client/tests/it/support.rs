//! A small, real HTTP/1.1 stream server for the integration tests: it
//! accepts TCP connections on loopback, records each request, and answers
//! with a scripted status or a chunked body (gzip written progressively with
//! a sync flush after every step, as the real service does), including the
//! faults the client must survive: stalls, abrupt closes, truncated gzip.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use gnip_client::{StreamEvent, StreamItem};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// One step of a scripted body.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send these plaintext bytes (gzip-compressed when the reply is gzip).
    Send(Vec<u8>),
    /// Wait before the next step.
    Sleep(Duration),
    /// Keep the connection open and send nothing more.
    Hang,
    /// Close the socket without the terminating chunk.
    Drop,
    /// End the gzip member, send the terminating chunk, close.
    End,
    /// Send the terminating chunk without ending the gzip member.
    EndTruncated,
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A status with a small body.
    Status(u16, &'static str),
    /// 200 with a chunked body.
    Stream {
        /// Compress with gzip.
        gzip: bool,
        /// The body script.
        steps: Vec<Step>,
    },
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Request target (path and query).
    pub target: String,
    /// Raw header block, lower-cased names.
    pub headers: String,
}

impl Seen {
    /// The value of a query parameter.
    pub fn query(&self, name: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }

    /// The value of a header (name lower-case).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

type Script = dyn Fn(usize, &Seen) -> Reply + Send + Sync;

/// A running test server.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    closed: Arc<std::sync::atomic::AtomicUsize>,
}

impl Server {
    /// Starts a server answering the n-th request (0-based) with
    /// `script(n, request)`.
    pub async fn start(script: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let script: Arc<Script> = Arc::new(script);
        let log = seen.clone();
        let closed_count = closed.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let script = script.clone();
                let log = log.clone();
                let closed_count = closed_count.clone();
                tokio::spawn(async move {
                    if let Ok(Ended::ClientClosed) = serve(sock, script, log).await {
                        closed_count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        Server { base, seen, closed }
    }

    /// How many `Hang` steps ended because the client closed the socket.
    pub fn closed(&self) -> usize {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("log lock").clone()
    }

    /// A PowerTrack URL on this server.
    pub fn powertrack_url(&self) -> String {
        format!(
            "{}/stream/powertrack/accounts/acme/publishers/twitter/prod.json",
            self.base
        )
    }
}

/// How a served connection ended.
enum Ended {
    /// The script ran out or closed the connection itself.
    Script,
    /// The client closed the socket during a `Hang`.
    ClientClosed,
}

async fn serve(
    mut sock: TcpStream,
    script: Arc<Script>,
    log: Arc<Mutex<Vec<Seen>>>,
) -> std::io::Result<Ended> {
    // Read the request head.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut buf).await?;
        if n == 0 {
            return Ok(Ended::Script);
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let target = request_line
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let headers = lines.collect::<Vec<_>>().join("\n");
    let seen = Seen { target, headers };
    let index = {
        let mut l = log.lock().expect("log lock");
        l.push(seen.clone());
        l.len() - 1
    };

    match script(index, &seen) {
        Reply::Status(code, body) => {
            let resp = format!(
                "HTTP/1.1 {code} Scripted\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(resp.as_bytes()).await?;
            sock.shutdown().await?;
        }
        Reply::Stream { gzip, steps } => {
            let enc = if gzip {
                "Content-Encoding: gzip\r\n"
            } else {
                ""
            };
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n{enc}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            );
            sock.write_all(resp.as_bytes()).await?;
            let mut gz = gzip.then(|| GzEncoder::new(Vec::new(), Compression::fast()));
            for step in steps {
                match step {
                    Step::Send(plain) => {
                        let wire = match gz.as_mut() {
                            Some(e) => {
                                e.write_all(&plain)?;
                                e.flush()?;
                                std::mem::take(e.get_mut())
                            }
                            None => plain,
                        };
                        write_chunk(&mut sock, &wire).await?;
                    }
                    Step::Sleep(d) => tokio::time::sleep(d).await,
                    Step::Hang => {
                        // Wait until the client goes away.
                        let mut sink = [0u8; 64];
                        while sock.read(&mut sink).await.unwrap_or(0) > 0 {}
                        return Ok(Ended::ClientClosed);
                    }
                    Step::Drop => {
                        // Close mid-body: no terminating chunk, as when a
                        // middlebox or the network cuts the connection.
                        return Ok(Ended::Script);
                    }
                    Step::End => {
                        if let Some(e) = gz.take() {
                            let rest = e.finish()?;
                            write_chunk(&mut sock, &rest).await?;
                        }
                        sock.write_all(b"0\r\n\r\n").await?;
                        sock.shutdown().await?;
                        return Ok(Ended::Script);
                    }
                    Step::EndTruncated => {
                        sock.write_all(b"0\r\n\r\n").await?;
                        sock.shutdown().await?;
                        return Ok(Ended::Script);
                    }
                }
            }
        }
    }
    Ok(Ended::Script)
}

async fn write_chunk(sock: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    sock.write_all(format!("{:x}\r\n", data.len()).as_bytes())
        .await?;
    sock.write_all(data).await?;
    sock.write_all(b"\r\n").await?;
    sock.flush().await
}

/// A v2-shaped post line with the given id, `\r\n`-terminated.
pub fn post(id: u64) -> Vec<u8> {
    format!(
        "{{\"data\":{{\"id\":\"{id}\",\"author_id\":\"42\",\"created_at\":\"2024-05-13T09:12:44.000Z\",\"text\":\"post {id} \u{65e5}\u{672c}\"}},\"matching_rules\":[{{\"id\":\"1780000000000000042\",\"tag\":\"t\"}}]}}\r\n"
    )
    .into_bytes()
}

/// Many posts in one step.
pub fn posts(ids: impl IntoIterator<Item = u64>) -> Vec<u8> {
    ids.into_iter().flat_map(post).collect()
}

/// Collects items until `done` says so (checked after each item), the
/// channel closes, or a generous guard expires (a hung test fails instead
/// of hanging the suite).
pub async fn collect_until(
    rx: &mut mpsc::Receiver<StreamItem>,
    done: impl FnMut(&[StreamItem]) -> bool,
) -> Vec<StreamItem> {
    collect_within(rx, Duration::from_secs(20), done).await
}

/// [`collect_until`] with its own guard, for tests on a paused clock where
/// simulated time runs far ahead of real time.
pub async fn collect_within(
    rx: &mut mpsc::Receiver<StreamItem>,
    limit: Duration,
    mut done: impl FnMut(&[StreamItem]) -> bool,
) -> Vec<StreamItem> {
    let mut items = Vec::new();
    let guard = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(guard, rx.recv()).await {
            Ok(Some(item)) => {
                items.push(item);
                if done(&items) {
                    return items;
                }
            }
            Ok(None) => return items,
            Err(_) => panic!("timed out; items so far: {items:#?}"),
        }
    }
}

/// Post ids of the records among `items`, in order.
pub fn record_ids(items: &[StreamItem]) -> Vec<u64> {
    items
        .iter()
        .filter_map(|i| match i {
            StreamItem::Record(r) => r.post_id,
            StreamItem::Event(_) => None,
        })
        .collect()
}

/// The events among `items`.
pub fn events(items: &[StreamItem]) -> Vec<&StreamEvent> {
    items
        .iter()
        .filter_map(|i| match i {
            StreamItem::Event(e) => Some(e),
            StreamItem::Record(_) => None,
        })
        .collect()
}

/// Counts events matching `f`.
pub fn count(items: &[StreamItem], f: impl Fn(&StreamEvent) -> bool) -> usize {
    events(items).into_iter().filter(|e| f(e)).count()
}
