//! Appends entries to a spool as fast as it can and reports every new
//! durable position on stdout, one line each: `durable SEQ OFFSET`.
//!
//! The kill test of the spool runs this binary, kills it with SIGKILL at
//! several points and checks, after reopening, that every entry reported
//! durable is there and intact. Entry `n` of the log always carries
//! `payload(n)`, so a run continues the sequence a killed run left.
//!
//! With `FSIZE_LIMIT` the process first limits the size of any file it
//! writes (`RLIMIT_FSIZE`), so appends fail for real (`EFBIG`, often after a
//! short write) once the segment reaches it; after three failed appends it
//! lifts the limit and goes on, retrying the entry that failed. It prints
//! `failed N` before closing. The test of failed writes checks that the log
//! then holds every entry once, intact.
//!
//! ```text
//! cargo run -p gnip-spool --example spool_writer -- DIR [ENTRIES [FSIZE_LIMIT]]
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
    let dir = args
        .next()
        .ok_or("usage: spool_writer DIR [ENTRIES [FSIZE_LIMIT]]")?;
    let limit: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(u64::MAX);
    let fsize_limit: Option<u64> = args.next().map(|s| s.parse()).transpose()?;

    // Small segments and frequent group fsyncs, so a few thousand entries
    // cross many segment boundaries and many sync points.
    let mut config = SpoolConfig::new(dir);
    config.segment_bytes = 256 * 1024;
    config.fsync_interval = Duration::from_millis(5);
    config.fsync_bytes = 64 * 1024;
    if fsize_limit.is_some() {
        // Segments larger than the limit, so the limit is what stops them.
        config.segment_bytes = 64 * 1024 * 1024;
    }
    let (spool, _) = Spool::open(config)?;
    if let Some(bytes) = fsize_limit {
        set_file_size_limit(bytes)?;
    }
    let mut writer = spool.writer()?;
    let start = writer.head().seq;
    let mut reported = writer.durable();
    let mut failed = 0u32;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "start {} {}", start, writer.head().offset)?;
    out.flush()?;

    for seq in start..start.saturating_add(limit) {
        let p = payload(seq);
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
        let entry = EntryRef {
            kind: (seq % 4) as u8,
            partition: (seq % 20) as u16,
            received_at_ms: now,
            payload: &p,
        };
        while let Err(e) = writer.append(entry) {
            failed += 1;
            if fsize_limit.is_none() || failed > 100 {
                return Err(e.into());
            }
            if failed == 3 {
                set_file_size_limit(libc::RLIM_INFINITY)?;
            }
        }
        writer.sync_if_due()?;
        if writer.durable() != reported {
            reported = writer.durable();
            writeln!(out, "durable {} {}", reported.seq, reported.offset)?;
            out.flush()?;
        }
    }
    writeln!(out, "failed {failed}")?;
    let end = writer.close()?;
    writeln!(out, "closed {} {}", end.seq, end.offset)?;
    Ok(())
}

/// Sets the soft limit on the size of files this process writes; past it a
/// write fails with `EFBIG` instead of raising `SIGXFSZ` (ignored here).
fn set_file_size_limit(bytes: u64) -> std::io::Result<()> {
    // SAFETY: SIG_IGN installs no handler code; getrlimit and setrlimit
    // only read and write the struct passed to them, which lives here.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        lim.rlim_cur = bytes.min(lim.rlim_max);
        if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
