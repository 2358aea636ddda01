//! The incremental inflater on arbitrary bytes, in arbitrary chunks: errors
//! are fine, panics are not. Valid gzip made from the input must round-trip.

#![no_main]

use std::io::Write;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use gnip_client::inflate::Inflater;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let step = usize::from(first % 32) + 1;

    // Arbitrary bytes as gzip.
    let mut inf = Inflater::new(true);
    for chunk in body.chunks(step) {
        if inf.push(Bytes::copy_from_slice(chunk), |_| {}).is_err() {
            break;
        }
    }
    let _ = inf.finish();

    // The input compressed for real must come back unchanged.
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(body).expect("in memory");
    let gz = enc.finish().expect("in memory");
    let mut inf = Inflater::new(true);
    let mut out = Vec::new();
    for chunk in gz.chunks(step) {
        inf.push(Bytes::copy_from_slice(chunk), |b| out.extend_from_slice(&b))
            .expect("valid gzip inflates");
    }
    inf.finish().expect("complete member");
    assert_eq!(out, body);
});
