//! Append and read throughput of the spool on real activities of about
//! 3.5 KB, on disk with the default group-fsync settings and in memory.
//!
//! ```text
//! cargo bench -p gnip-spool --bench spool
//! ```
//!
//! The target: the connector must keep 70,000 activities a second of 3.4 KB
//! (about 240 MB/s) within reach, so appends on disk, fsyncs included, must
//! run well above that.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gnip_spool::{EntryRef, FullPolicy, Spool, SpoolConfig};

/// Entries per measured iteration: about 3.5 MB.
const ENTRIES: usize = 1_000;

fn activities() -> Vec<Vec<u8>> {
    let text = include_str!("../tests/data/activities.jsonl");
    text.lines().map(|l| l.as_bytes().to_vec()).collect()
}

fn bytes_per_iteration(acts: &[Vec<u8>]) -> u64 {
    (0..ENTRIES)
        .map(|i| acts[i % acts.len()].len() as u64)
        .sum()
}

fn disk_config(dir: &std::path::Path) -> SpoolConfig {
    let mut c = SpoolConfig::new(dir);
    // Defaults for segment size and fsync; a limit large enough that the
    // benchmark never meets it.
    c.max_bytes = 1 << 40;
    c
}

fn memory_config() -> SpoolConfig {
    let mut c = SpoolConfig::new("unused");
    c.in_memory = true;
    // Bounded like a real in-memory spool; dropping keeps memory flat
    // however many iterations the benchmark runs.
    c.max_bytes = 1 << 30;
    c.full_policy = FullPolicy::DropOldest;
    c
}

/// Appends `iters` × ENTRIES entries to a fresh spool and syncs.
fn append_run(config: SpoolConfig, acts: &[Vec<u8>], iters: u64) -> Duration {
    let (spool, _) = Spool::open(config).expect("open spool");
    let mut w = spool.writer().expect("writer");
    let start = Instant::now();
    for i in 0..iters as usize * ENTRIES {
        let p = &acts[i % acts.len()];
        w.append(EntryRef {
            kind: 1,
            partition: (i % 8) as u16,
            received_at_ms: i as i64,
            payload: p,
        })
        .expect("append");
    }
    w.sync().expect("sync");
    let elapsed = start.elapsed();
    let _ = spool.take_drops();
    elapsed
}

/// Reads `iters` × ENTRIES entries from a spool filled beforehand.
fn read_run(spool: &Spool, name: &str, iters: u64) -> Duration {
    let mut r = spool.reader(name).expect("reader");
    let want = iters as usize * ENTRIES;
    let start = Instant::now();
    let mut got = 0;
    while got < want {
        let batch = r
            .read_batch(want - got, 4 << 20, Duration::ZERO)
            .expect("read")
            .expect("spool not closed");
        assert!(!batch.is_empty(), "the spool holds enough entries");
        got += batch.len();
        black_box(&batch);
    }
    start.elapsed()
}

fn fill(spool: &Spool, acts: &[Vec<u8>], entries: usize) {
    let mut w = spool.writer().expect("writer");
    for i in 0..entries {
        let p = &acts[i % acts.len()];
        w.append(EntryRef {
            kind: 1,
            partition: 0,
            received_at_ms: i as i64,
            payload: p,
        })
        .expect("append");
    }
    w.close().expect("close");
}

fn bench(c: &mut Criterion) {
    let acts = activities();
    let mut group = c.benchmark_group("spool");
    group.throughput(Throughput::Bytes(bytes_per_iteration(&acts)));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(8));

    group.bench_function("append_disk_default_fsync", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().expect("tempdir");
            append_run(disk_config(dir.path()), &acts, iters)
        })
    });
    group.bench_function("append_memory", |b| {
        b.iter_custom(|iters| append_run(memory_config(), &acts, iters))
    });

    // Reads: a spool of 100,000 entries (350 MB), read from its start by a
    // new reader each time; on disk it sits in the page cache, as the
    // newest part of a spool does while sinks keep up.
    const FILLED: usize = 100_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let (disk, _) = Spool::open(disk_config(dir.path())).expect("open");
    fill(&disk, &acts, FILLED);
    let mut mem_config = memory_config();
    mem_config.full_policy = FullPolicy::Pause;
    let (mem, _) = Spool::open(mem_config).expect("open");
    fill(&mem, &acts, FILLED);
    let mut n = 0u64;
    for (name, spool) in [("read_disk", &disk), ("read_memory", &mem)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let now = left.min((FILLED / ENTRIES) as u64);
                    n += 1;
                    let reader = format!("r{n}");
                    total += read_run(spool, &reader, now);
                    spool.remove_reader(&reader).expect("remove reader");
                    left -= now;
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
