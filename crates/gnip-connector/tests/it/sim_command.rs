//! `gnip-connector sim` on its own: it prints where it listens and how to
//! log in, serves a real gzip stream to a plain HTTP client, and stops
//! cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::wait_with_deadline;

#[test]
fn sim_command_prints_its_endpoints_and_serves_a_plain_client() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gnip-connector"))
        .args(["sim", "--listen", "127.0.0.1:0", "--rate", "2000", "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the simulator");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
    let mut printed = Vec::new();
    let mut url = None;
    while url.is_none() {
        let mut line = String::new();
        assert!(lines.read_line(&mut line).expect("read") > 0, "{printed:?}");
        if let Some(u) = line.trim().strip_prefix("powertrack: ") {
            url = Some(u.to_owned());
        }
        printed.push(line);
    }
    let url = url.expect("a PowerTrack URL");
    let rest = url.strip_prefix("http://").expect("a loopback http URL");
    let (host, path) = rest.split_once('/').expect("host and path");

    // A plain HTTP/1.1 request over a socket, Basic auth for the defaults
    // the simulator prints (sim@example.com / sim-password).
    let mut conn = std::net::TcpStream::connect(host).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        conn,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\n\
         Authorization: Basic c2ltQGV4YW1wbGUuY29tOnNpbS1wYXNzd29yZA==\r\n\
         Accept-Encoding: gzip\r\n\r\n"
    )
    .expect("request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).expect("response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    drop(conn);

    // SAFETY: kill(2) with our own child's pid and a valid signal.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let out = wait_with_deadline(child, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rest = String::new();
    lines.read_to_string(&mut rest).expect("the rest of stdout");
    let all = printed.concat() + &rest;
    assert!(all.contains("user: sim@example.com"), "{all}");
    assert!(all.contains("rules: http://"), "{all}");
}
