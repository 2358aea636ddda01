//! Framing plus classification throughput on real-shaped records: every
//! real fixture, repeated to about 16 MiB of uncompressed stream, cut into
//! 16 KiB chunks as the inflater would hand them over.
//!
//! Run: `cargo bench -p gnip-client --bench frame_classify`. Besides the
//! criterion figures it prints how many heap allocations one pass makes per
//! record, counted by a wrapping global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gnip_client::{Frame, Framer, classify};

/// Counts allocations so the bench can show the per-record cost.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to the system allocator; the counter
// is a relaxed atomic with no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CHUNK: usize = 16 * 1024;
const TARGET_BYTES: usize = 16 << 20;

/// Every fixture object as one line (pretty-printed files are compacted).
fn fixture_lines() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/real");
    let mut lines = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("fixture dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).expect("fixture");
            match path.extension().and_then(|e| e.to_str()) {
                Some("jsonl") => lines.extend(
                    bytes
                        .split(|&b| b == b'\n')
                        .filter(|l| !l.is_empty())
                        .map(<[u8]>::to_vec),
                ),
                Some("json") => {
                    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
                    lines.push(serde_json::to_vec(&v).expect("json"));
                }
                _ => {}
            }
        }
    }
    lines.sort();
    lines
}

/// The stream body: lines with `\r\n`, a heartbeat every 50 lines.
fn stream_body() -> (Bytes, usize) {
    let lines = fixture_lines();
    let mut body = Vec::with_capacity(TARGET_BYTES + 64 * 1024);
    let mut n = 0;
    while body.len() < TARGET_BYTES {
        for l in &lines {
            body.extend_from_slice(l);
            body.extend_from_slice(b"\r\n");
            n += 1;
            if n % 50 == 0 {
                body.extend_from_slice(b"\r\n");
            }
        }
    }
    (Bytes::from(body), n)
}

/// One pass: frame and classify everything; returns records classified.
fn pass(body: &Bytes) -> usize {
    let mut framer = Framer::new(1 << 20);
    let mut records = 0;
    let mut start = 0;
    while start < body.len() {
        let end = (start + CHUNK).min(body.len());
        framer.push(body.slice(start..end));
        while let Some(frame) = framer.next_frame() {
            if let Frame::Record(raw) = frame {
                let msg = classify(&raw).expect("fixtures classify");
                black_box(msg.kind());
                records += 1;
            }
        }
        start = end;
    }
    records
}

fn bench(c: &mut Criterion) {
    let (body, n) = stream_body();
    let before = ALLOCS.load(Ordering::Relaxed);
    let records = pass(&body);
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    assert_eq!(records, n);
    eprintln!(
        "{records} records, {} bytes, {allocs} allocations in one pass: {:.3} per record \
         (records spanning a chunk boundary are copied once into their own buffer)",
        body.len(),
        allocs as f64 / records as f64
    );

    // Classification alone: any allocation here is per record.
    let lines: Vec<Bytes> = fixture_lines().into_iter().map(Bytes::from).collect();
    let before = ALLOCS.load(Ordering::Relaxed);
    let mut allocating = 0;
    for l in &lines {
        let b = ALLOCS.load(Ordering::Relaxed);
        black_box(classify(l).expect("fixtures classify").kind());
        if ALLOCS.load(Ordering::Relaxed) > b {
            allocating += 1;
            if std::env::var_os("SHOW_ALLOCATING").is_some() {
                eprintln!(
                    "allocates: {}",
                    String::from_utf8_lossy(&l[..l.len().min(300)])
                );
            }
        }
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    eprintln!(
        "classify alone: {allocs} allocations over {} fixture lines ({allocating} lines allocate)",
        lines.len()
    );

    // serde_json's own skipping, for comparison: its `Deserializer` starts
    // every document with an empty stack for nested values it skips, so a
    // line with an object or array inside another allocates once here.
    let before = ALLOCS.load(Ordering::Relaxed);
    for l in &lines {
        black_box(serde_json::from_slice::<serde::de::IgnoredAny>(l).expect("fixtures parse"));
    }
    eprintln!(
        "serde_json skipping each line whole: {} allocations over {} fixture lines",
        ALLOCS.load(Ordering::Relaxed) - before,
        lines.len()
    );

    let mut g = c.benchmark_group("frame_classify");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.sample_size(20);
    g.bench_function("real_fixtures_16KiB_chunks", |b| {
        b.iter(|| pass(black_box(&body)))
    });
    g.bench_function("framing_only", |b| {
        b.iter(|| {
            let mut framer = Framer::new(1 << 20);
            let mut n = 0;
            for chunk in body.chunks(CHUNK) {
                framer.push(body.slice_ref(chunk));
                while let Some(f) = framer.next_frame() {
                    n += usize::from(matches!(f, Frame::Record(_)));
                }
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
