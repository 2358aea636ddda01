//! Appends entries to a spool as fast as it can and reports every new
//! durable position on stdout, one line each: `durable SEQ OFFSET`.
//!
//! The kill test of the spool runs this binary, kills it with SIGKILL at
//! several points and checks, after reopening, that every entry reported
//! durable is there and intact. Entry `n` of the log always carries
//! `payload(n)`, so a run continues the sequence a killed run left.
//!
//! ```text
//! cargo run -p gnip-spool --example spool_writer -- DIR [ENTRIES]
//! ```

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gnip_spool::{EntryRef, Spool, SpoolConfig};

/// The payload of entry `seq`, 200 to 4,000 bytes that depend on it.
fn payload(seq: u64) -> Vec<u8> {
    let len = 200 + (seq.wrapping_mul(2_654_435_761) % 3_800) as usize;
    let mut p = format!("{{\"seq\":{seq},\"fill\":\"").into_bytes();
    p.extend((0..len).map(|i| b'A' + ((seq as usize * 31 + i) % 26) as u8));
    p.extend_from_slice(b"\"}");
    p
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: spool_writer DIR [ENTRIES]")?;
    let limit: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(u64::MAX);

    // Small segments and frequent group fsyncs, so a few thousand entries
    // cross many segment boundaries and many sync points.
    let mut config = SpoolConfig::new(dir);
    config.segment_bytes = 256 * 1024;
    config.fsync_interval = Duration::from_millis(5);
    config.fsync_bytes = 64 * 1024;
    let (spool, _) = Spool::open(config)?;
    let mut writer = spool.writer()?;
    let start = writer.head().seq;
    let mut reported = writer.durable();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "start {} {}", start, writer.head().offset)?;
    out.flush()?;

    for seq in start..start.saturating_add(limit) {
        let p = payload(seq);
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
        writer.append(EntryRef {
            kind: (seq % 4) as u8,
            partition: (seq % 20) as u16,
            received_at_ms: now,
            payload: &p,
        })?;
        writer.sync_if_due()?;
        if writer.durable() != reported {
            reported = writer.durable();
            writeln!(out, "durable {} {}", reported.seq, reported.offset)?;
            out.flush()?;
        }
    }
    let end = writer.close()?;
    writeln!(out, "closed {} {}", end.seq, end.offset)?;
    Ok(())
}
