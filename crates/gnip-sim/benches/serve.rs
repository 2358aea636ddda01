//! Maximum serving rate of the simulator, with curl as the client: one
//! PowerTrack connection served as fast as curl reads and inflates it.
//!
//! The stream is ended cleanly after a fixed number of records with the
//! `forced-disconnect-after` fault, so curl exits when it has read them all.
//! Run: `cargo bench -p gnip-sim --bench serve` (records via
//! `GNIP_SIM_BENCH_RECORDS`, default 300000; format via
//! `GNIP_SIM_BENCH_FORMAT`, default original). With `GNIP_SIM_BENCH_RAW=1`
//! curl asks for gzip but does not inflate (`-H "Accept-Encoding: gzip"`
//! instead of `--compressed`), which measures the simulator rather than
//! curl's inflate. The command line and the CPU time of the simulator's
//! process (from /proc, Linux) are printed with the figures.

use std::process::Command;
use std::time::Instant;

use gnip_sim::{FaultPlan, Format, SimConfig};

fn main() {
    let records: u64 = std::env::var("GNIP_SIM_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let format: Format = std::env::var("GNIP_SIM_BENCH_FORMAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(Format::Original);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = SimConfig {
        rate: None,
        format,
        faults: FaultPlan::parse(&format!("forced-disconnect-after={records}"))
            .expect("fault plan"),
        ..SimConfig::default()
    };
    let (user, password) = (config.username.clone(), config.password.clone());
    let handle = runtime
        .block_on(gnip_sim::start(config))
        .expect("simulator starts");
    let url = handle.powertrack_url();

    let raw = std::env::var("GNIP_SIM_BENCH_RAW").is_ok_and(|v| v == "1");
    let encoding = if raw {
        ["-H", "Accept-Encoding: gzip"].as_slice()
    } else {
        ["--compressed"].as_slice()
    };
    let auth = format!("{user}:{password}");
    let mut args = vec!["-s"];
    args.extend_from_slice(encoding);
    args.extend_from_slice(&["-u", &auth, &url, "-o", "/dev/null"]);
    println!(
        "curl -s {} -u USER:PASSWORD {url} -o /dev/null  ({records} records, format {format})",
        if raw {
            "-H \"Accept-Encoding: gzip\""
        } else {
            "--compressed"
        }
    );
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let status = Command::new("curl").args(args).status().expect("curl runs");
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu_before;
    assert!(status.success(), "curl failed: {status}");

    let acc = runtime
        .block_on(async { handle.finish().await })
        .expect("clean shutdown");
    let conn = &acc.connections[0];
    assert_eq!(conn.records_sent, records, "every record was served");
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "{:.0} records/s; {:.1} MB/s on the wire (gzip), {:.1} MB/s decoded; {:.0} bytes per record decoded, {:.0} on the wire; {:.2} s",
        records as f64 / elapsed,
        mb(conn.bytes_sent) / elapsed,
        mb(conn.content_bytes_sent) / elapsed,
        conn.content_bytes_sent as f64 / records as f64,
        conn.bytes_sent as f64 / records as f64,
        elapsed
    );
    println!(
        "simulator CPU {cpu:.2} s ({:.0}% of one core)",
        100.0 * cpu / elapsed
    );
}

/// User plus system CPU time of this process (all threads), from
/// /proc/self/stat; 0 where that file does not exist.
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the line, in clock ticks (100 per second on
    // Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
