//! A raw stream reader: sends a GET, parses the response head, de-chunks the
//! body by hand, inflates it incrementally and splits records on `\r\n`, so
//! that tests can check each layer of the wire.

#![allow(dead_code)]

use std::time::Duration;

use base64::Engine;
use flate2::{Decompress, FlushDecompress};
use gnip_sim::{SimConfig, SimHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound for any single wait in a test; a hang fails instead of
/// blocking the suite.
pub const WAIT: Duration = Duration::from_secs(10);

pub async fn sim(config: SimConfig) -> SimHandle {
    gnip_sim::start(config).await.expect("simulator starts")
}

pub fn basic(c: &SimConfig) -> String {
    let raw = format!("{}:{}", c.username, c.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

pub fn bearer(c: &SimConfig) -> String {
    format!("Bearer {}", c.bearer_token)
}

/// How the body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The zero-length chunk arrived.
    LastChunk,
    /// The connection closed (FIN) without it.
    Eof,
    /// The connection was reset.
    Reset,
}

pub struct Wire {
    sock: TcpStream,
    buf: Vec<u8>,
    pub status: u16,
    pub head: String,
    /// Body bytes after de-chunking, as received.
    pub body: Vec<u8>,
    pub chunks: usize,
    inflate: Option<Decompress>,
    gzip_header_left: usize,
    plain: Vec<u8>,
    pub end: Option<End>,
}

impl Wire {
    /// Connects and sends `GET target` with the given headers.
    pub async fn get(handle: &SimHandle, target: &str, headers: &[(&str, String)]) -> Wire {
        let mut sock = TcpStream::connect(handle.addr()).await.expect("connect");
        let mut req = format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: gnip-sim-tests/1\r\n",
            handle.addr()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        sock.write_all(req.as_bytes()).await.expect("send request");
        let mut w = Wire {
            sock,
            buf: Vec::new(),
            status: 0,
            head: String::new(),
            body: Vec::new(),
            chunks: 0,
            inflate: None,
            gzip_header_left: 0,
            plain: Vec::new(),
            end: None,
        };
        w.read_head().await;
        w
    }

    /// A gzip-accepting, authenticated enterprise stream request.
    pub async fn enterprise(handle: &SimHandle, url: &str) -> Wire {
        let target = url.trim_start_matches(&handle.base_url()).to_string();
        let auth = basic(handle.config());
        Wire::get(
            handle,
            &target,
            &[("Authorization", auth), ("Accept-Encoding", "gzip".into())],
        )
        .await
    }

    /// An authenticated v2 stream request; `gzip` chooses Accept-Encoding.
    pub async fn v2(handle: &SimHandle, url: &str, gzip: bool) -> Wire {
        let target = url.trim_start_matches(&handle.base_url()).to_string();
        let mut h = vec![("Authorization", bearer(handle.config()))];
        if gzip {
            h.push(("Accept-Encoding", "gzip".into()));
        }
        Wire::get(handle, &target, &h).await
    }

    async fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 65536];
        match tokio::time::timeout(WAIT, self.sock.read(&mut tmp))
            .await
            .expect("no data within the wait")
        {
            Ok(0) => {
                self.end.get_or_insert(End::Eof);
                false
            }
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                self.end = Some(End::Reset);
                false
            }
            Err(e) => panic!("read failed: {e}"),
        }
    }

    async fn read_head(&mut self) {
        loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                self.head = String::from_utf8(self.buf[..i].to_vec()).expect("ASCII head");
                self.buf.drain(..i + 4);
                self.status = self.head[9..12].parse().expect("status code");
                if self.header("content-encoding") == Some("gzip".into()) {
                    self.inflate = Some(Decompress::new(false));
                    self.gzip_header_left = 10;
                }
                return;
            }
            assert!(
                self.fill().await,
                "connection closed before the response head"
            );
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    /// A non-chunked body (error responses): reads Content-Length bytes.
    pub async fn fixed_body(&mut self) -> String {
        let len: usize = self
            .header("content-length")
            .expect("content-length")
            .parse()
            .expect("number");
        while self.buf.len() < len {
            assert!(self.fill().await, "body cut short");
        }
        String::from_utf8(self.buf[..len].to_vec()).expect("UTF-8 body")
    }

    /// Reads the next chunk; `None` at the end of the body.
    pub async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        if self.end.is_some() {
            return None;
        }
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let size_line = std::str::from_utf8(&self.buf[..i]).expect("ASCII chunk size");
                let size = usize::from_str_radix(size_line, 16)
                    .unwrap_or_else(|_| panic!("bad chunk size {size_line:?}"));
                let need = i + 2 + size + 2;
                while self.buf.len() < need {
                    if !self.fill().await {
                        return None;
                    }
                }
                assert_eq!(
                    &self.buf[need - 2..need],
                    b"\r\n",
                    "chunk data ends with CRLF"
                );
                let data = self.buf[i + 2..i + 2 + size].to_vec();
                self.buf.drain(..need);
                if size == 0 {
                    self.end = Some(End::LastChunk);
                    return None;
                }
                self.chunks += 1;
                self.body.extend_from_slice(&data);
                self.decode(&data);
                return Some(data);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    fn decode(&mut self, mut data: &[u8]) {
        let Some(d) = self.inflate.as_mut() else {
            self.plain.extend_from_slice(data);
            return;
        };
        let skip = self.gzip_header_left.min(data.len());
        self.gzip_header_left -= skip;
        data = &data[skip..];
        while !data.is_empty() {
            let before_in = d.total_in();
            self.plain.reserve(data.len() * 8 + 4096);
            let st = d.decompress_vec(data, &mut self.plain, FlushDecompress::Sync);
            let used = (d.total_in() - before_in) as usize;
            data = &data[used..];
            match st {
                Ok(flate2::Status::StreamEnd) => {
                    // The 8-byte trailer follows; nothing more to inflate.
                    return;
                }
                Ok(_) => {}
                Err(e) => panic!("invalid deflate data: {e}"),
            }
        }
    }

    /// Complete lines decoded so far (heartbeats are empty strings).
    pub fn take_lines(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(i) = self.plain.windows(2).position(|w| w == b"\r\n") {
            out.push(String::from_utf8(self.plain[..i].to_vec()).expect("UTF-8 record"));
            self.plain.drain(..i + 2);
        }
        out
    }

    /// Bytes decoded but not yet ending in `\r\n`.
    pub fn partial_len(&self) -> usize {
        self.plain.len()
    }

    /// Reads until `n` non-empty lines arrived (or the body ended).
    pub async fn records(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            out.extend(self.take_lines().into_iter().filter(|l| !l.is_empty()));
            if out.len() >= n || self.next_chunk().await.is_none() {
                out.extend(self.take_lines().into_iter().filter(|l| !l.is_empty()));
                return out;
            }
        }
    }

    /// Reads records until the first heartbeat that follows them.
    pub async fn records_until_heartbeat(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            for l in self.take_lines() {
                if l.is_empty() {
                    return out;
                }
                out.push(l);
            }
            if self.next_chunk().await.is_none() {
                return out;
            }
        }
    }

    /// Reads to the end of the body; returns every line.
    pub async fn all_lines(&mut self) -> Vec<String> {
        while self.next_chunk().await.is_some() {}
        self.take_lines()
    }

    pub async fn close(self) {
        drop(self.sock);
    }
}

/// The post id of a record in any of the three formats.
pub fn post_id(line: &str) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    let s = v["id_str"]
        .as_str()
        .map(str::to_string)
        .or_else(|| v["data"]["id"].as_str().map(str::to_string))
        .or_else(|| {
            v["id"]
                .as_str()
                .and_then(|s| s.rsplit(':').next())
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no post id in {line}"));
    s.parse().expect("numeric id")
}

/// Polls `f` until it holds; fails after [`WAIT`].
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A reqwest client; installs rustls' ring provider once per process (the
/// workspace builds reqwest without a default provider).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// The JSON body of a response.
pub async fn json(resp: reqwest::Response) -> serde_json::Value {
    let bytes = resp.bytes().await.expect("body");
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}
