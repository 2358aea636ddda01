//! Verified TLS with the ring provider: a real TLS server on loopback with a
//! certificate from a test CA. Trusting the CA through `extra_ca_pem`
//! connects; without it the handshake fails and is retried as a network
//! error, never accepted.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gnip_client::{Credentials, Endpoint, FailureClass, StreamConfig, StreamEvent, spawn};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::support::{collect_until, count, posts, record_ids};

const CA: &[u8] = include_bytes!("../data/tls/ca.pem");
const CERT: &[u8] = include_bytes!("../data/tls/server.pem");
const KEY: &[u8] = include_bytes!("../data/tls/server.key");

/// Serves every TLS connection one plain chunked body with two posts, then
/// holds it open until the client leaves. Returns the base URL and a count
/// of requests that got past the handshake.
fn tls_server() -> (String, Arc<AtomicUsize>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = vec![CertificateDer::from_pem_slice(CERT).expect("server cert")];
    let key = PrivateKeyDer::from_pem_slice(KEY).expect("server key");
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(sock) = sock else { return };
            let config = config.clone();
            let counter = counter.clone();
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, sock);
                let mut reader = BufReader::new(&mut tls);
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return, // handshake refused or closed
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let body = posts([1, 2]);
                let mut out = Vec::new();
                out.extend_from_slice(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n",
                );
                out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
                out.extend_from_slice(&body);
                out.extend_from_slice(b"\r\n");
                if tls.write_all(&out).and_then(|()| tls.flush()).is_err() {
                    return;
                }
                // Hold the stream open until the client goes away.
                let mut sink = [0u8; 64];
                while std::io::Read::read(&mut tls, &mut sink).is_ok_and(|n| n > 0) {}
            });
        }
    });
    (base, served)
}

fn config(base: &str) -> StreamConfig {
    let url = format!("{base}/stream/powertrack/accounts/acme/publishers/twitter/prod.json");
    let mut c = StreamConfig::new(
        Endpoint::parse(&url).expect("endpoint"),
        Credentials::basic("me", "pw"),
    );
    c.backoff.network_step = Duration::from_millis(20);
    c.backoff.jitter = 0.0;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusts_an_extra_ca_and_reads_the_stream_over_tls() {
    let (base, served) = tls_server();
    let mut c = config(&base);
    c.extra_ca_pem = Some(CA.to_vec());
    let (mut rx, handle) = spawn(c).expect("spawn");
    let items = collect_until(&mut rx, |items| record_ids(items).len() >= 2).await;
    assert_eq!(record_ids(&items), vec![1, 2]);
    assert_eq!(served.load(Ordering::SeqCst), 1);
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_an_unknown_ca_and_retries_as_a_network_error() {
    let (base, served) = tls_server();
    let (mut rx, handle) = spawn(config(&base)).expect("spawn");
    let items = collect_until(&mut rx, |items| {
        count(items, |e| matches!(e, StreamEvent::BackingOff { .. })) >= 2
    })
    .await;
    assert!(items.iter().all(|i| matches!(
        i,
        gnip_client::StreamItem::Event(StreamEvent::BackingOff {
            class: FailureClass::Network,
            ..
        })
    )));
    assert_eq!(
        served.load(Ordering::SeqCst),
        0,
        "no request may pass an unverified handshake"
    );
    handle.shutdown();
}
