//! A small HTTP/1.1 server side: request parsing (request line, headers,
//! `Content-Length` bodies, keep-alive) and response writing. Hand-written
//! rather than built on a framework because the simulator must control every
//! byte of a stream response: where a chunk ends, when a connection is cut
//! mid-record, reset instead of closed, or left silent.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Request heads larger than this are refused (431).
const MAX_HEAD: usize = 64 * 1024;
/// Request bodies larger than this are refused (413); the rules API
/// documents a 5 MB limit.
pub(crate) const MAX_BODY: usize = 5 * 1024 * 1024;

/// One parsed request.
#[derive(Debug)]
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub keep_alive: bool,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of query parameter `name`.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path and query as sent, for the accounting (no credentials are
    /// ever in it: they travel in headers).
    pub(crate) fn target(&self) -> String {
        if self.query.is_empty() {
            return self.path.clone();
        }
        let q: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{}?{}", self.path, q.join("&"))
    }

    /// Whether the client accepts a gzip body.
    pub(crate) fn accepts_gzip(&self) -> bool {
        self.header("accept-encoding").is_some_and(|v| {
            v.split(',').any(|item| {
                let mut it = item.split(';');
                let coding = it.next().unwrap_or("").trim();
                let refused = it.any(|p| p.trim().replace(' ', "") == "q=0");
                (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
            })
        })
    }
}

/// Why a request could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The connection closed or failed; nothing to answer.
    Closed,
    /// The request is malformed; answer with this status and message.
    Bad(u16, &'static str),
}

/// Reads one request from `rd`, using and keeping `buf` for bytes that
/// arrive after it (pipelining). `Ok(None)` is a clean close between
/// requests. Answers `Expect: 100-continue` (curl sends it before large
/// rule uploads and would otherwise wait a second).
pub(crate) async fn read_request<S: AsyncRead + AsyncWrite + Unpin>(
    rd: &mut S,
    buf: &mut Vec<u8>,
) -> Result<Option<Request>, ReadError> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(ReadError::Bad(431, "Request header fields too large."));
        }
        let mut tmp = [0u8; 8192];
        match rd.read(&mut tmp).await {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) | Err(_) => return Err(ReadError::Closed),
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| ReadError::Bad(400, "Request head is not UTF-8."))?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (method, target, version) = match (first.next(), first.next(), first.next(), first.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && t.starts_with('/') => (m, t, v),
        _ => return Err(ReadError::Bad(400, "Malformed request line.")),
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(ReadError::Bad(505, "Only HTTP/1.1 is supported."));
    }
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line
            .split_once(':')
            .ok_or(ReadError::Bad(400, "Malformed header line."))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, parse_query(q)),
        None => (target, Vec::new()),
    };
    let mut req = Request {
        method: method.to_string(),
        path: percent_decode(path),
        query,
        headers,
        body: Vec::new(),
        keep_alive: version == "HTTP/1.1",
    };
    if let Some(c) = req.header("connection") {
        if c.eq_ignore_ascii_case("close") {
            req.keep_alive = false;
        } else if c.eq_ignore_ascii_case("keep-alive") {
            req.keep_alive = true;
        }
    }
    if req.header("transfer-encoding").is_some() {
        return Err(ReadError::Bad(
            411,
            "Chunked request bodies are not supported; send Content-Length.",
        ));
    }
    let len: usize = match req.header("content-length") {
        Some(v) => v
            .parse()
            .map_err(|_| ReadError::Bad(400, "Invalid Content-Length."))?,
        None => 0,
    };
    if len > MAX_BODY {
        return Err(ReadError::Bad(413, "Request body exceeds 5 MB."));
    }
    let start = head_end + 4;
    if buf.len() < start + len
        && req
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        rd.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .map_err(|_| ReadError::Closed)?;
    }
    while buf.len() < start + len {
        let mut tmp = [0u8; 65536];
        match rd.read(&mut tmp).await {
            Ok(0) | Err(_) => return Err(ReadError::Closed),
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
    req.body = buf[start..start + len].to_vec();
    buf.drain(..start + len);
    Ok(Some(req))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            ),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The reason phrase of the statuses the simulator sends.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        411 => "Length Required",
        413 => "Payload Too Large",
        420 => "Enhance Your Calm",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// A complete response with a body.
pub(crate) fn response(
    status: u16,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, String)],
    keep_alive: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {}\r\n",
        reason(status),
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A JSON response.
pub(crate) fn json(status: u16, body: &serde_json::Value, keep_alive: bool) -> Vec<u8> {
    response(
        status,
        "application/json; charset=utf-8",
        body.to_string().as_bytes(),
        &[],
        keep_alive,
    )
}

/// The head of a chunked stream response. v2 responses carry the
/// connect rate-limit headers the real API sends.
pub(crate) fn stream_head(gzip: bool, v2: bool) -> Vec<u8> {
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nTransfer-Encoding: chunked\r\n",
    );
    if gzip {
        head.push_str("Content-Encoding: gzip\r\n");
    }
    if v2 {
        let reset = crate::time::now_ms() / 1000 + 900;
        head.push_str(&format!(
            "x-rate-limit-limit: 50\r\nx-rate-limit-remaining: 49\r\nx-rate-limit-reset: {reset}\r\n"
        ));
    }
    head.push_str("Vary: Accept-Encoding\r\nConnection: close\r\n\r\n");
    head.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(raw: &[u8]) -> (Result<Option<Request>, ReadError>, Vec<u8>) {
        let mut rd = tokio::io::join(raw, tokio::io::sink());
        let mut buf = Vec::new();
        let r = read_request(&mut rd, &mut buf).await;
        (r, buf)
    }

    #[tokio::test]
    async fn parses_query_headers_and_body_and_keeps_the_rest() {
        let raw = b"POST /rules/x.json?_method=delete&startTime=2024-03-04T10%3A00%3A00Z HTTP/1.1\r\n\
            Host: h\r\nAccept-Encoding: deflate, gzip\r\nContent-Length: 4\r\n\r\nbodyGET / HTTP/1.1\r\n";
        let (r, rest) = parse(raw).await;
        let req = r.ok().flatten().expect("a request");
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/rules/x.json");
        assert_eq!(req.param("_method"), Some("delete"));
        assert_eq!(req.param("startTime"), Some("2024-03-04T10:00:00Z"));
        assert_eq!(req.body, b"body");
        assert!(req.accepts_gzip() && req.keep_alive);
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn expect_continue_is_answered_before_the_body_is_read() {
        let (mut client, server) = tokio::io::duplex(4096);
        let task = tokio::spawn(async move {
            let mut server = server;
            let mut buf = Vec::new();
            read_request(&mut server, &mut buf)
                .await
                .ok()
                .flatten()
                .map(|r| r.body)
        });
        client
            .write_all(b"POST /r HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
            .await
            .unwrap();
        let mut got = [0u8; 25];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"HTTP/1.1 100 Continue\r\n\r\n");
        client.write_all(b"{}").await.unwrap();
        assert_eq!(task.await.unwrap(), Some(b"{}".to_vec()));
    }

    #[tokio::test]
    async fn gzip_refused_with_q0_is_not_accepted() {
        let (r, _) = parse(
            b"GET / HTTP/1.1\r\nAccept-Encoding: gzip;q=0, identity\r\nConnection: close\r\n\r\n",
        )
        .await;
        let req = r.ok().flatten().expect("a request");
        assert!(!req.accepts_gzip() && !req.keep_alive);
    }

    #[tokio::test]
    async fn malformed_requests_get_a_status() {
        for raw in [
            &b"NONSENSE\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nbroken\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        ] {
            assert!(matches!(parse(raw).await.0, Err(ReadError::Bad(400, _))));
        }
        assert!(matches!(parse(b"").await.0, Ok(None)));
        assert!(matches!(parse(b"GET / HT").await.0, Err(ReadError::Closed)));
    }
}
