//! Framing plus classification on arbitrary bytes cut into arbitrary
//! chunks: nothing may panic, every record is trimmed, bounded and free of
//! line feeds, and classifying a record twice gives the same answer.

#![no_main]

use bytes::Bytes;
use gnip_client::{Frame, Framer, Message, classify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so the fuzzer explores
    // boundaries inside records, characters and `\r\n` pairs.
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let step = usize::from(first % 64) + 1;
    let mut framer = Framer::new(64 * 1024);
    for chunk in body.chunks(step) {
        framer.push(Bytes::copy_from_slice(chunk));
        while let Some(frame) = framer.next_frame() {
            let Frame::Record(raw) = frame else {
                continue;
            };
            assert!(!raw.is_empty() && raw.len() <= 64 * 1024);
            assert!(!raw.contains(&b'\n'));
            assert!(!raw[0].is_ascii_whitespace());
            assert!(!raw[raw.len() - 1].is_ascii_whitespace());
            let once = classify(&raw);
            let twice = classify(&raw);
            assert_eq!(once, twice);
            if let Ok(msg) = once {
                let _ = msg.kind();
                if let Message::Activity(a) = &msg {
                    assert_eq!(msg.post_id(), Some(a.post_id));
                }
            }
        }
    }
    framer.reset();
});
