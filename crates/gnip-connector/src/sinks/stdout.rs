//! The stdout sink: raw records on standard output, one per line, for
//! piping the stream into another program (`gnip-connector run --sink
//! stdout | jq ...`). It keeps nothing, so "durable" means "handed to the
//! pipe": every batch is flushed before the cursor moves.

use std::io::{self, Write};

use gnip_client::Kind;
use gnip_spool::Entry;
use serde::Deserialize;
use tracing::debug;

use super::{Sink, SinkError, SpecError, push_line, validate_name};

/// Settings of the stdout sink.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    /// Cursor name; `stdout` when unset.
    #[serde(default)]
    pub name: Option<String>,
    /// Write every record (compliance events, system messages, unknown
    /// shapes) rather than activities only.
    #[serde(default)]
    pub all_kinds: bool,
}

impl StdoutConfig {
    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`SpecError::Invalid`] for a name that cannot be a cursor name.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_name("stdout", self.name.as_deref())
    }
}

/// Writes raw records, one per line, to any writer (standard output in
/// the program, a pipe or a buffer in tests).
pub struct StdoutSink<W: Write + Send> {
    name: String,
    all_kinds: bool,
    out: W,
    buf: Vec<u8>,
}

impl StdoutSink<io::Stdout> {
    /// A sink writing to the process's standard output.
    pub fn stdout(config: &StdoutConfig) -> Self {
        StdoutSink::new(config, io::stdout())
    }
}

impl<W: Write + Send> StdoutSink<W> {
    /// A sink writing to `out`.
    pub fn new(config: &StdoutConfig, out: W) -> Self {
        StdoutSink {
            name: config.name.clone().unwrap_or_else(|| "stdout".to_owned()),
            all_kinds: config.all_kinds,
            out,
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    /// The writer, for tests that inspect what was written.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    fn fail(&self, e: io::Error) -> SinkError {
        if e.kind() == io::ErrorKind::BrokenPipe {
            // Nobody will read again: retrying would only spin.
            SinkError::Fatal(
                "Standard output was closed by its reader (broken pipe); the stdout sink stops."
                    .to_owned(),
            )
        } else {
            SinkError::Transient(format!("Writing to standard output failed: {e}."))
        }
    }
}

impl<W: Write + Send> Sink for StdoutSink<W> {
    fn name(&self) -> &str {
        &self.name
    }

    fn write_batch(&mut self, batch: &[Entry]) -> Result<(), SinkError> {
        // One write per batch: a pipe reader sees whole lines, and a failed
        // write is retried as a whole (at least once, as for every sink).
        self.buf.clear();
        let mut written = 0usize;
        for entry in batch {
            if self.all_kinds || entry.kind == Kind::Activity.as_u8() {
                push_line(&mut self.buf, &entry.payload);
                written += 1;
            }
        }
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf).map_err(|e| self.fail(e))?;
        }
        self.out.flush().map_err(|e| self.fail(e))?;
        debug!(
            records = written,
            bytes = self.buf.len(),
            "Wrote batch to standard output."
        );
        Ok(())
    }

    fn close(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|e| self.fail(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use gnip_spool::Position;

    fn entry(kind: Kind, payload: &str) -> Entry {
        Entry {
            kind: kind.as_u8(),
            partition: 0,
            received_at_ms: 1_764_780_000_000,
            payload: Bytes::copy_from_slice(payload.as_bytes()),
            end: Position::default(),
        }
    }

    fn batch() -> Vec<Entry> {
        vec![
            entry(Kind::Activity, r#"{"id_str":"1"}"#),
            entry(Kind::Compliance, r#"{"delete":{}}"#),
            entry(Kind::System, r#"{"info":{}}"#),
            entry(Kind::Activity, r#"{"id_str":"2"}"#),
        ]
    }

    #[test]
    fn writes_activities_one_per_line() {
        let mut sink = StdoutSink::new(&StdoutConfig::default(), Vec::new());
        sink.write_batch(&batch()).unwrap();
        sink.close().unwrap();
        assert_eq!(sink.name(), "stdout");
        assert_eq!(
            sink.get_ref().as_slice(),
            b"{\"id_str\":\"1\"}\n{\"id_str\":\"2\"}\n"
        );
    }

    #[test]
    fn all_kinds_writes_everything() {
        let config = StdoutConfig {
            name: Some("tap".into()),
            all_kinds: true,
        };
        let mut sink = StdoutSink::new(&config, Vec::new());
        sink.write_batch(&batch()).unwrap();
        assert_eq!(sink.name(), "tap");
        let text = String::from_utf8(sink.get_ref().clone()).unwrap();
        assert_eq!(text.lines().count(), 4);
        assert!(text.lines().nth(1).unwrap().contains("delete"));
    }

    #[test]
    fn broken_pipe_is_fatal() {
        let (reader, writer) = io::pipe().unwrap();
        drop(reader);
        let mut sink = StdoutSink::new(&StdoutConfig::default(), writer);
        match sink.write_batch(&batch()) {
            Err(SinkError::Fatal(msg)) => assert!(msg.contains("broken pipe"), "{msg}"),
            other => panic!("expected a fatal error, got {other:?}"),
        }
    }

    #[test]
    fn a_live_pipe_gets_every_line() {
        use std::io::Read;
        let (mut reader, writer) = io::pipe().unwrap();
        let mut sink = StdoutSink::new(&StdoutConfig::default(), writer);
        sink.write_batch(&batch()).unwrap();
        drop(sink);
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "{\"id_str\":\"1\"}\n{\"id_str\":\"2\"}\n");
    }
}
