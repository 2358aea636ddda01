//! Measures the files and SQLite sinks alone: writes N real-shaped records
//! (real payloads from a directory of fixtures, each given a post id of its
//! own) through `Sink::write_batch` in batches, with the durability each
//! sink promises (sync flush + fsync per batch; one FULL-synchronous commit
//! per batch), and prints records/s and MB/s.
//!
//! ```text
//! cargo run --release -p gnip-connector --example sink_throughput -- \
//!     [--records 100000] [--batch 1000] [--data DIR] [--level 1] [--only gzip|files|sqlite]
//! ```
//!
//! `--data` defaults to the crate's `tests/data/sinks`; pointing it at a
//! larger set of real records (for example the shared `data/real`) gives a
//! more varied mix. Every `.json` (one object) and `.jsonl` (one per line)
//! file under it is read; activities are kept.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gnip_client::Kind;
use gnip_client::message::{Message, classify};
use gnip_connector::sinks::{FilesConfig, SinkContext, SinkSpec, SqliteConfig};
use gnip_spool::{Entry, Position};

struct Args {
    records: usize,
    batch: usize,
    data: PathBuf,
    level: u32,
    only: Option<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        records: 100_000,
        batch: 1000,
        data: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sinks"),
        level: 1,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--records" => args.records = value.parse().expect("--records takes a number"),
            "--batch" => args.batch = value.parse().expect("--batch takes a number"),
            "--data" => args.data = value.into(),
            "--level" => args.level = value.parse().expect("--level takes 0 to 9"),
            "--only" => args.only = Some(value),
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

/// Every activity under `dir`, with the text of its post id.
fn load_pool(dir: &Path, pool: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("the data directory can be read")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            load_pool(&path, pool);
            continue;
        }
        let name = path.to_string_lossy().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(_) => continue,
        };
        let items: Vec<String> = if name.ends_with(".jsonl") {
            text.lines().map(str::to_owned).collect()
        } else if name.ends_with(".json") {
            // One object per file, often pretty-printed: put it on one line
            // as it would arrive on the wire.
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v) => vec![v.to_string()],
                Err(_) => continue,
            }
        } else {
            continue;
        };
        for item in items {
            if let Ok(Message::Activity(a)) = classify(item.as_bytes()) {
                let id = a.post_id.to_string();
                pool.push((item.clone(), id));
            }
        }
    }
}

/// `n` entries cycling through the pool, each with a post id of its own,
/// received 36 ms apart (100,000 records an hour).
fn make_entries(pool: &[(String, String)], n: usize) -> Vec<Entry> {
    let start_ms = 1_796_317_200_000i64;
    (0..n)
        .map(|i| {
            let (raw, id) = &pool[i % pool.len()];
            let new_id = (1_800_000_000_000_000_000u64 + i as u64).to_string();
            let payload = raw.replace(id.as_str(), &new_id);
            Entry {
                kind: Kind::Activity.as_u8(),
                partition: 0,
                received_at_ms: start_ms + i as i64 * 36,
                payload: Bytes::from(payload),
                end: Position::default(),
            }
        })
        .collect()
}

fn run(label: &str, spec: &SinkSpec, entries: &[Entry], batch: usize, bytes: u64) -> Duration {
    let ctx = SinkContext {
        stream_name: "bench".to_owned(),
    };
    let mut sink = spec.open(&ctx).expect("the sink opens");
    let t = Instant::now();
    let cpu0 = cpu_time();
    for chunk in entries.chunks(batch) {
        sink.write_batch(chunk).expect("the batch is written");
    }
    sink.close().expect("the sink closes");
    let took = t.elapsed();
    let cpu = cpu_time() - cpu0;
    let secs = took.as_secs_f64();
    println!(
        "{label:<8} {:>9.0} records/s {:>7.1} MB/s  ({} records in {:.2} s, batches of {batch}; \
         {:.2} s of CPU, {:.0} records per CPU second)",
        entries.len() as f64 / secs,
        bytes as f64 / secs / 1e6,
        entries.len(),
        secs,
        cpu,
        entries.len() as f64 / cpu,
    );
    took
}

/// User plus system CPU time of this process, in seconds: on a shared
/// machine the wall-clock rate depends on the neighbours, this does not.
fn cpu_time() -> f64 {
    // SAFETY: `getrusage` only writes the struct it is given, which is
    // zero-initialised plain data of the right type.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).expect("readable output directory") {
        let p = e.expect("a directory entry").path();
        total += if p.is_dir() {
            dir_size(&p)
        } else {
            p.metadata().map_or(0, |m| m.len())
        };
    }
    total
}

fn main() {
    let args = parse_args();
    let mut pool = Vec::new();
    load_pool(&args.data, &mut pool);
    assert!(
        !pool.is_empty(),
        "no activities under {}",
        args.data.display()
    );
    let entries = make_entries(&pool, args.records);
    let bytes: u64 = entries.iter().map(|e| e.payload.len() as u64).sum();
    println!(
        "{} records from {} real activities, mean {:.0} bytes, {:.1} MB in all",
        entries.len(),
        pool.len(),
        bytes as f64 / entries.len() as f64,
        bytes as f64 / 1e6
    );

    let out = tempfile::tempdir().expect("a temporary directory");
    let want = |name: &str| args.only.as_deref().is_none_or(|o| o == name);
    if want("gzip") {
        // The compressor alone, in memory: the floor under the files sink.
        let t = Instant::now();
        let cpu0 = cpu_time();
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(bytes as usize / 4),
            flate2::Compression::new(args.level),
        );
        for e in &entries {
            std::io::Write::write_all(&mut enc, &e.payload).expect("writing to memory");
            std::io::Write::write_all(&mut enc, b"\n").expect("writing to memory");
        }
        let gz = enc.finish().expect("writing to memory");
        let secs = t.elapsed().as_secs_f64();
        println!(
            "gzip     {:>9.0} records/s {:>7.1} MB/s  (level {}, in memory, {:.2} s of CPU, {:.1} MB out)",
            entries.len() as f64 / secs,
            bytes as f64 / secs / 1e6,
            args.level,
            cpu_time() - cpu0,
            gz.len() as f64 / 1e6
        );
    }
    if want("files") {
        let files = SinkSpec::Files(FilesConfig {
            level: args.level,
            ..FilesConfig::new(out.path().join("files"))
        });
        run("files", &files, &entries, args.batch, bytes);
        let gz = dir_size(&out.path().join("files"));
        println!(
            "         gzip level {}: {:.1} MB on disk, ratio {:.1}",
            args.level,
            gz as f64 / 1e6,
            bytes as f64 / gz as f64
        );
    }
    if want("sqlite") {
        let sqlite = SinkSpec::Sqlite(SqliteConfig::new(out.path().join("gnip.db")));
        run("sqlite", &sqlite, &entries, args.batch, bytes);
        let db = dir_size(out.path()) - dir_size_or_zero(&out.path().join("files"));
        println!("         database {:.1} MB on disk", db as f64 / 1e6);
    }
}

fn dir_size_or_zero(dir: &Path) -> u64 {
    if dir.exists() { dir_size(dir) } else { 0 }
}
