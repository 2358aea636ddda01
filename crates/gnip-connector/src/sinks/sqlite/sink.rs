//! The SQLite sink's connection and its batch writes: one IMMEDIATE
//! transaction per batch, cached prepared statements, `INSERT OR IGNORE`
//! everywhere so that a batch written twice stores each record once.

use std::path::{Path, PathBuf};

use gnip_client::message::{Message, classify};
use gnip_spool::Entry;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, TransactionBehavior, params};
use tracing::{debug, info, warn};

use super::SqliteConfig;
use super::schema::migrate;
use crate::sinks::{Sink, SinkError};

const INSERT_POST: &str = "INSERT OR IGNORE INTO posts \
    (id, author_id, posted_at, lang, kind, retweeted_id, quoted_id, format, received_at, partition, raw) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const INSERT_RULE: &str =
    "INSERT INTO matching_rules (post_id, rule_id, tag, value) VALUES (?1, ?2, ?3, ?4)";
const INSERT_COMPLIANCE: &str = "INSERT OR IGNORE INTO compliance_events \
    (kind, post_id, user_id, at, received_at, partition, raw) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const INSERT_SYSTEM: &str = "INSERT OR IGNORE INTO system_messages \
    (level, message, sent_at, received_at, partition, raw) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const INSERT_OTHER: &str = "INSERT OR IGNORE INTO other_records \
    (reason, received_at, partition, raw) VALUES (?1, ?2, ?3, ?4)";

/// Counts of what the sink stored, for metrics and tests. Only committed
/// batches count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqliteStats {
    /// Batches committed.
    pub batches: u64,
    /// Posts stored for the first time.
    pub posts_inserted: u64,
    /// Posts already stored (a replayed batch, a duplicate delivery).
    pub posts_seen_again: u64,
    /// Matching-rule rows stored.
    pub rules_inserted: u64,
    /// Compliance events stored.
    pub compliance_events: u64,
    /// System messages stored.
    pub system_messages: u64,
    /// Records set aside in `other_records` (unknown shapes, unreadable
    /// keys).
    pub other_records: u64,
}

impl SqliteStats {
    fn add(&mut self, o: &SqliteStats) {
        self.batches += o.batches;
        self.posts_inserted += o.posts_inserted;
        self.posts_seen_again += o.posts_seen_again;
        self.rules_inserted += o.rules_inserted;
        self.compliance_events += o.compliance_events;
        self.system_messages += o.system_messages;
        self.other_records += o.other_records;
    }
}

/// The SQLite sink. See the module documentation of `sinks::sqlite`.
pub struct SqliteSink {
    name: String,
    path: PathBuf,
    conn: Option<Connection>,
    stats: SqliteStats,
}

/// Sorts a SQLite failure for the runner: a lock, a full disk or an I/O
/// error may pass, so the batch is retried; anything else (corruption, a
/// schema the program does not expect) will not pass by retrying.
fn sql_error(what: &str, e: rusqlite::Error) -> SinkError {
    let message = format!("{what}: {e}.");
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::CannotOpen
            | ErrorCode::ReadOnly
            | ErrorCode::FileLockingProtocolFailed
            | ErrorCode::OutOfMemory => SinkError::Transient(message),
            _ => SinkError::Fatal(message),
        },
        _ => SinkError::Fatal(message),
    }
}

/// A post or user id as SQLite's signed 64-bit INTEGER. Ids are below
/// 2^63 (snowflake ids have a zero top bit), but the cast is checked: an
/// id that does not fit is reported rather than stored wrapped.
fn sql_id(id: u64) -> Result<i64, &'static str> {
    i64::try_from(id).map_err(|_| "id above 2^63-1")
}

fn opt_id(id: Option<u64>) -> Result<Option<i64>, &'static str> {
    id.map(sql_id).transpose()
}

/// The record as TEXT when it is UTF-8 (every JSON record is), else as a
/// BLOB so that even a damaged record is kept byte for byte.
fn raw_value(payload: &[u8]) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(match std::str::from_utf8(payload) {
        Ok(s) => ValueRef::Text(s.as_bytes()),
        Err(_) => ValueRef::Blob(payload),
    })
}

impl SqliteSink {
    /// Opens (or creates) the database, sets WAL, `synchronous = FULL`,
    /// foreign keys and the busy timeout, and migrates the schema.
    ///
    /// # Errors
    ///
    /// [`SinkError::Fatal`] for a database of a newer schema or of another
    /// program, or one that is not a database; [`SinkError::Transient`]
    /// when the file cannot be opened or locked now.
    pub fn open(config: &SqliteConfig) -> Result<Self, SinkError> {
        let path = config.path.clone();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                SinkError::Transient(format!(
                    "Cannot create directory {}: {e}.",
                    parent.display()
                ))
            })?;
        }
        let what = format!("Cannot open SQLite database {}", path.display());
        let mut conn = Connection::open(&path).map_err(|e| sql_error(&what, e))?;
        // 16 KiB pages hold four or five 3.4 KB records where 4 KiB pages
        // spill most of them into overflow pages: 14% less to write (twice,
        // WAL then checkpoint) and about 25% less CPU per record on the
        // throughput example. Takes effect only when the file is created.
        // A 32 MiB cache holds a whole batch, so a transaction does not
        // spill pages into the WAL before its commit.
        conn.pragma_update(None, "page_size", 16_384)
            .and_then(|()| conn.pragma_update(None, "cache_size", -32_768))
            .map_err(|e| sql_error(&what, e))?;
        conn.busy_timeout(config.busy_timeout)
            .map_err(|e| sql_error(&what, e))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| sql_error(&what, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(SinkError::Fatal(format!(
                "{what}: the database refused WAL mode (it is in `{mode}` mode)."
            )));
        }
        // FULL: see the module documentation; a commit survives power loss.
        conn.pragma_update(None, "synchronous", "FULL")
            .and_then(|()| conn.pragma_update(None, "foreign_keys", "ON"))
            .map_err(|e| sql_error(&what, e))?;
        conn.set_prepared_statement_cache_capacity(16);
        let version = migrate(&mut conn, sql_error)?;
        let name = config.name.clone().unwrap_or_else(|| "sqlite".to_owned());
        info!(sink = %name, path = %path.display(), schema_version = version, "Opened SQLite sink.");
        Ok(SqliteSink {
            name,
            path,
            conn: Some(conn),
            stats: SqliteStats::default(),
        })
    }

    /// What the sink has stored so far.
    pub fn stats(&self) -> &SqliteStats {
        &self.stats
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&mut self) -> Result<&mut Connection, SinkError> {
        self.conn
            .as_mut()
            .ok_or_else(|| SinkError::Fatal("The SQLite sink is closed.".to_owned()))
    }
}

/// Stores one entry in the open transaction.
fn write_entry(
    tx: &rusqlite::Transaction<'_>,
    entry: &Entry,
    batch: &mut SqliteStats,
) -> Result<(), rusqlite::Error> {
    let payload = &entry.payload[..];
    let received = entry.received_at_ms;
    let partition = i64::from(entry.partition);
    let raw = raw_value(payload);
    let mut other = |reason: &str| -> Result<(), rusqlite::Error> {
        batch.other_records +=
            tx.prepare_cached(INSERT_OTHER)?
                .execute(params![reason, received, partition, raw])? as u64;
        Ok(())
    };
    match classify(payload) {
        Ok(Message::Activity(a)) => {
            let ids = (|| {
                let rules = a
                    .matching_rules
                    .iter()
                    .map(|r| opt_id(r.id))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok::<_, &'static str>((
                    sql_id(a.post_id)?,
                    opt_id(a.author_id)?,
                    opt_id(a.retweeted_id)?,
                    opt_id(a.quoted_id)?,
                    rules,
                ))
            })();
            let (id, author, retweeted, quoted, rule_ids) = match ids {
                Ok(ids) => ids,
                Err(reason) => return other(reason),
            };
            let new = tx.prepare_cached(INSERT_POST)?.execute(params![
                id,
                author,
                a.posted_at_ms,
                a.lang.as_deref(),
                a.verb.as_str(),
                retweeted,
                quoted,
                a.format.as_str(),
                received,
                partition,
                raw,
            ])?;
            if new == 0 {
                // Seen before: its rules went in with it the first time.
                batch.posts_seen_again += 1;
                return Ok(());
            }
            batch.posts_inserted += 1;
            let mut rule = tx.prepare_cached(INSERT_RULE)?;
            for (r, rule_id) in a.matching_rules.iter().zip(rule_ids) {
                rule.execute(params![id, rule_id, r.tag.as_deref(), r.value.as_deref()])?;
                batch.rules_inserted += 1;
            }
            Ok(())
        }
        Ok(Message::Compliance(c)) => {
            let (post, user) = match (opt_id(c.post_id), opt_id(c.user_id)) {
                (Ok(p), Ok(u)) => (p, u),
                (Err(reason), _) | (_, Err(reason)) => return other(reason),
            };
            batch.compliance_events += tx.prepare_cached(INSERT_COMPLIANCE)?.execute(params![
                c.kind.as_str(),
                post,
                user,
                c.at_ms,
                received,
                partition,
                raw
            ])? as u64;
            Ok(())
        }
        Ok(Message::System(s)) => {
            batch.system_messages += tx.prepare_cached(INSERT_SYSTEM)?.execute(params![
                s.level.as_str(),
                s.message.as_ref(),
                s.sent_at_ms,
                received,
                partition,
                raw
            ])? as u64;
            Ok(())
        }
        Ok(Message::Unknown) => other("unknown"),
        Err(e) => other(&e.to_string()),
    }
}

impl Sink for SqliteSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn write_batch(&mut self, batch: &[Entry]) -> Result<(), SinkError> {
        let conn = self.conn()?;
        let mut counts = SqliteStats {
            batches: 1,
            ..SqliteStats::default()
        };
        // IMMEDIATE takes the write lock up front, so a busy database fails
        // (after the busy timeout) before any work, not at commit.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_error("Cannot start a SQLite transaction", e))?;
        for entry in batch {
            write_entry(&tx, entry, &mut counts)
                .map_err(|e| sql_error("Cannot store a record in SQLite", e))?;
        }
        // Dropping the transaction on an error above rolls it back, so the
        // retried batch starts from the same state.
        tx.commit()
            .map_err(|e| sql_error("Cannot commit a SQLite batch", e))?;
        if counts.other_records > 0 {
            warn!(sink = %self.name, records = counts.other_records, "Set aside records of unknown shape or unreadable keys in other_records.");
        }
        debug!(
            sink = %self.name,
            records = batch.len(),
            posts_inserted = counts.posts_inserted,
            posts_seen_again = counts.posts_seen_again,
            "Wrote batch to SQLite."
        );
        self.stats.add(&counts);
        Ok(())
    }

    fn close(&mut self) -> Result<(), SinkError> {
        let Some(conn) = self.conn.take() else {
            return Ok(());
        };
        // Keeps the query planner's statistics fresh for readers; cheap
        // when nothing changed.
        if let Err(e) = conn.execute_batch("PRAGMA optimize;") {
            warn!(sink = %self.name, error = %e, "PRAGMA optimize failed on close.");
        }
        conn.close().map_err(|(conn, e)| {
            self.conn = Some(conn);
            sql_error("Cannot close the SQLite database", e)
        })?;
        info!(sink = %self.name, posts = self.stats.posts_inserted, "Closed SQLite sink.");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::sqlite::SCHEMA_VERSION;
    use bytes::Bytes;
    use gnip_client::Kind;
    use gnip_spool::Position;
    use std::time::Duration;

    const AS_POST: &str = include_str!("../../../tests/data/sinks/as_post_v1_rules.json");
    const AS_SHARE: &str = include_str!("../../../tests/data/sinks/as_share.json");
    const ORIGINAL: &str = include_str!("../../../tests/data/sinks/original_quote_retweet.jsonl");
    const V2: &str = include_str!("../../../tests/data/sinks/v2_quote.jsonl");
    const COMPLIANCE: &str = include_str!("../../../tests/data/sinks/compliance.jsonl");
    const LIMIT: &str = include_str!("../../../tests/data/sinks/system_limit.json");
    const DISCONNECT: &str = include_str!("../../../tests/data/sinks/system_disconnect.json");

    const RECEIVED: i64 = 1_796_317_200_000;

    fn entry(kind: Kind, payload: &str, partition: u16) -> Entry {
        Entry {
            kind: kind.as_u8(),
            partition,
            received_at_ms: RECEIVED,
            payload: Bytes::copy_from_slice(payload.trim().as_bytes()),
            end: Position::default(),
        }
    }

    /// Every fixture: 6 posts (each format, posts, shares, quotes), 6
    /// compliance events, 2 system messages, 1 unknown shape.
    fn fixtures() -> Vec<Entry> {
        let mut v = vec![
            entry(Kind::Activity, AS_POST, 0),
            entry(Kind::Activity, AS_SHARE, 1),
        ];
        v.extend(ORIGINAL.lines().map(|l| entry(Kind::Activity, l, 2)));
        v.push(entry(Kind::Activity, V2, 3));
        v.extend(COMPLIANCE.lines().map(|l| entry(Kind::Compliance, l, 4)));
        v.push(entry(Kind::System, LIMIT, 0));
        v.push(entry(Kind::System, DISCONNECT, 0));
        v.push(entry(Kind::Unknown, r#"{"brand_new":{"x":1}}"#, 0));
        v
    }

    fn open(dir: &tempfile::TempDir) -> SqliteSink {
        SqliteSink::open(&SqliteConfig::new(dir.path().join("gnip.db"))).unwrap()
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_replayed_batch_stores_each_post_and_rule_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = open(&dir);
        let batch = fixtures();
        sink.write_batch(&batch).unwrap();
        sink.write_batch(&batch).unwrap();
        sink.close().unwrap();
        // And once more after a restart, as the runner does after a crash.
        let mut sink = open(&dir);
        sink.write_batch(&batch).unwrap();
        let conn = sink.conn.as_ref().unwrap();
        assert_eq!(count(conn, "posts"), 5);
        assert_eq!(count(conn, "matching_rules"), 5);
        assert_eq!(count(conn, "system_messages"), 2);
        assert_eq!(count(conn, "other_records"), 1);
        assert_eq!(count(conn, "compliance_events"), 6);
        assert_eq!(sink.stats().posts_inserted, 0);
        assert_eq!(sink.stats().posts_seen_again, 5);
        assert_eq!(sink.stats().rules_inserted, 0);
    }

    type PostRow = (
        i64,
        Option<i64>,
        Option<i64>,
        Option<String>,
        String,
        Option<i64>,
        Option<i64>,
        String,
        i64,
    );

    fn post(conn: &Connection, id: i64) -> PostRow {
        conn.query_row(
            "SELECT id, author_id, posted_at, lang, kind, retweeted_id, quoted_id, format, partition \
             FROM posts WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            },
        )
        .unwrap()
    }

    fn rules(conn: &Connection, id: i64) -> Vec<(Option<i64>, Option<String>, Option<String>)> {
        let mut st = conn
            .prepare(
                "SELECT rule_id, tag, value FROM matching_rules WHERE post_id = ?1 ORDER BY rowid",
            )
            .unwrap();
        st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Values read by hand from the fixtures (times with `date -u -d`).
    #[test]
    fn columns_are_right_for_every_format() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = open(&dir);
        sink.write_batch(&fixtures()).unwrap();
        let conn = sink.conn.as_ref().unwrap();

        // Activity Streams, PowerTrack 1.0: rule value and null tag.
        let p = post(conn, 66_216_303_899_328_514);
        assert_eq!(p.1, Some(130_153_085));
        assert_eq!(p.2, Some(1_304_622_171_000)); // 2011-05-05T19:02:51.000Z
        assert_eq!((p.4.as_str(), p.5, p.6), ("post", None, None));
        assert_eq!((p.7.as_str(), p.8), ("activity_streams", 0));
        assert_eq!(
            rules(conn, 66_216_303_899_328_514),
            [(None, None, Some("coke".to_owned()))]
        );

        // Activity Streams share: the shared post is the object's id.
        let p = post(conn, 572_750_675_622_428_672);
        assert_eq!(p.1, Some(2_706_522_510));
        assert_eq!(p.2, Some(1_425_389_376_000)); // 2015-03-03T13:29:36.000Z
        assert_eq!(p.3.as_deref(), Some("es"));
        assert_eq!(
            (p.4.as_str(), p.5, p.6),
            ("share", Some(570_966_882_922_201_089), None)
        );
        assert_eq!(rules(conn, 572_750_675_622_428_672), [(None, None, None)]);

        // Original format: a quote, then a retweet.
        let p = post(conn, 872_836_479_608_733_696);
        assert_eq!(p.1, Some(815_279_070_241_955_840));
        assert_eq!(p.2, Some(1_496_935_407_000)); // Thu Jun 08 15:23:27 +0000 2017
        assert_eq!(p.3.as_deref(), Some("en"));
        assert_eq!(
            (p.4.as_str(), p.5, p.6),
            ("post", None, Some(872_836_379_595_620_353))
        );
        assert_eq!((p.7.as_str(), p.8), ("original", 2));
        let p = post(conn, 867_478_524_235_366_400);
        assert_eq!(p.2, Some(1_495_657_971_000)); // Wed May 24 20:32:51 +0000 2017
        assert_eq!(
            (p.4.as_str(), p.5, p.6),
            ("share", Some(861_651_727_614_746_624), None)
        );

        // v2: a quote; the rule id is a JSON number above 2^53, kept exact.
        let p = post(conn, 1_377_650_090_978_992_134);
        assert_eq!(p.1, Some(4_602_771_083));
        assert_eq!(p.2, Some(1_617_292_351_000)); // 2021-04-01T15:52:31.000Z
        assert_eq!(p.3.as_deref(), Some("en"));
        assert_eq!(
            (p.4.as_str(), p.5, p.6),
            ("post", None, Some(1_377_640_162_566_496_258))
        );
        assert_eq!(p.7, "v2");
        assert_eq!(
            rules(conn, 1_377_650_090_978_992_134),
            [(Some(1_377_649_934_414_049_282), None, None)]
        );

        // The record itself, verbatim.
        let raw: String = conn
            .query_row(
                "SELECT raw FROM posts WHERE id = 1377650090978992134",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(raw, V2.trim());

        // Compliance: the delete keyed on its string ids, not the rounded
        // numbers beside them.
        let (kind, post_id, user_id, at): (String, Option<i64>, Option<i64>, Option<i64>) = conn
            .query_row(
                "SELECT kind, post_id, user_id, at FROM compliance_events WHERE raw LIKE '{\"delete\"%'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(kind, "delete");
        assert_eq!(post_id, Some(601_430_178_305_220_600));
        assert_eq!(user_id, Some(3_198_576_760));
        assert_eq!(at, Some(1_432_228_155_593));
        let protect: Option<i64> = conn
            .query_row(
                "SELECT user_id FROM compliance_events WHERE kind = 'user_protect'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(protect, Some(3_182_003_550));
    }

    #[test]
    fn migrates_an_empty_file_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gnip.db");
        std::fs::File::create(&path).unwrap();
        let mut sink = open(&dir);
        {
            let conn = sink.conn.as_ref().unwrap();
            let version: u32 = conn
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
            assert_eq!(version, SCHEMA_VERSION);
            let mode: String = conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            // 2 = FULL: a commit survives a power cut.
            let sync: i64 = conn
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap();
            assert_eq!(sync, 2);
        }
        sink.write_batch(&fixtures()[..2]).unwrap();
        sink.close().unwrap();
        let sink = open(&dir);
        assert_eq!(count(sink.conn.as_ref().unwrap(), "posts"), 2);
    }

    #[test]
    fn refuses_a_newer_schema_and_a_foreign_database() {
        let dir = tempfile::tempdir().unwrap();
        let newer = dir.path().join("newer.db");
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        match SqliteSink::open(&SqliteConfig::new(newer)) {
            Err(SinkError::Fatal(msg)) => assert!(msg.contains("newer"), "{msg}"),
            other => panic!("expected a fatal error, got {:?}", other.err()),
        }
        let foreign = dir.path().join("foreign.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("PRAGMA application_id = 42; CREATE TABLE posts (x);")
            .unwrap();
        match SqliteSink::open(&SqliteConfig::new(foreign)) {
            Err(SinkError::Fatal(msg)) => assert!(msg.contains("another program"), "{msg}"),
            other => panic!("expected a fatal error, got {:?}", other.err()),
        }
        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, vec![0x55u8; 8192]).unwrap();
        assert!(matches!(
            SqliteSink::open(&SqliteConfig::new(garbage)),
            Err(SinkError::Fatal(_))
        ));
    }

    #[test]
    fn a_locked_database_is_transient_then_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gnip.db");
        let config = SqliteConfig {
            busy_timeout: Duration::from_millis(50),
            ..SqliteConfig::new(path.clone())
        };
        let mut sink = SqliteSink::open(&config).unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE; INSERT INTO system_messages (level, message, received_at, partition, raw) VALUES ('info', 'x', 0, 0, 'x');").unwrap();
        let batch = fixtures();
        match sink.write_batch(&batch) {
            Err(SinkError::Transient(msg)) => assert!(msg.contains("locked"), "{msg}"),
            other => panic!("expected a transient error, got {other:?}"),
        }
        other.execute_batch("COMMIT").unwrap();
        sink.write_batch(&batch).unwrap();
        let conn = sink.conn.as_ref().unwrap();
        assert_eq!(count(conn, "posts"), 5);
        assert_eq!(count(conn, "system_messages"), 3);
        assert_eq!(sink.stats().batches, 1);
    }

    #[test]
    fn unreadable_records_are_set_aside_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = open(&dir);
        let batch = vec![
            entry(
                Kind::Activity,
                r#"{"id_str":"12","created_at":"Wed Oct 10 20:19:24 +0000 2018""#,
                0,
            ),
            entry(
                Kind::Activity,
                r#"{"data":{"id":"9300000000000000000","text":"too big"}}"#,
                0,
            ),
            Entry {
                payload: Bytes::from_static(b"{\"x\":\"\xff\"}"),
                ..entry(Kind::Unknown, "", 0)
            },
        ];
        sink.write_batch(&batch).unwrap();
        sink.write_batch(&batch).unwrap();
        let conn = sink.conn.as_ref().unwrap();
        assert_eq!(count(conn, "posts"), 0);
        assert_eq!(count(conn, "other_records"), 3);
        let blob: Vec<u8> = conn
            .query_row(
                "SELECT raw FROM other_records WHERE typeof(raw) = 'blob'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(blob, b"{\"x\":\"\xff\"}");
    }

    #[test]
    fn ids_are_checked_not_wrapped() {
        assert_eq!(sql_id(9_223_372_036_854_775_807), Ok(i64::MAX));
        assert!(sql_id(9_223_372_036_854_775_808).is_err());
        assert_eq!(opt_id(None), Ok(None));
    }

    #[test]
    fn schema_doc_holds_the_migration() {
        assert!(crate::sinks::sqlite::SCHEMA_DOC.contains("CREATE TABLE posts"));
        assert!(crate::sinks::sqlite::SCHEMA_DOC.contains("CREATE TABLE matching_rules"));
    }
    const KILL_DB_VAR: &str = "GNIP_SQLITE_KILL_TEST_DB";

    /// Batch `b` of the kill test: 50 v2 posts with one rule each.
    fn kill_batch(b: u64) -> Vec<Entry> {
        (0..50)
            .map(|i| {
                let id = 1_000_000 + b * 1000 + i;
                let text = "t".repeat(2000);
                let line = format!(
                    r#"{{"data":{{"id":"{id}","author_id":"{}","created_at":"2021-04-01T15:52:31.000Z","text":"{text}"}},"matching_rules":[{{"id":"77","tag":"kill"}}]}}"#,
                    b + 1
                );
                entry(Kind::Activity, &line, 0)
            })
            .collect()
    }

    #[test]
    #[ignore = "the child half of a_killed_writer_keeps_every_committed_batch, which starts it"]
    fn kill_test_child() {
        use std::io::Write;
        let Some(path) = std::env::var_os(KILL_DB_VAR) else {
            return;
        };
        let mut sink = SqliteSink::open(&SqliteConfig::new(path.into())).unwrap();
        let mut out = std::io::stdout().lock();
        for b in 0..10_000 {
            sink.write_batch(&kill_batch(b)).unwrap();
            writeln!(out, "acked {b}").unwrap();
            out.flush().unwrap();
        }
    }

    /// Kills a real process writing batches (SIGKILL) at three points,
    /// then checks that every committed batch is there, whole, once.
    #[test]
    fn a_killed_writer_keeps_every_committed_batch() {
        use std::io::BufRead;
        for kill_after in [1u64, 9, 30] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("gnip.db");
            let mut child = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "sinks::sqlite::sink::tests::kill_test_child",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                ])
                .env(KILL_DB_VAR, &path)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let mut acked = None;
            for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
                if let Some(n) = line.unwrap().strip_prefix("acked ") {
                    let n: u64 = n.parse().unwrap();
                    acked = Some(n);
                    if n >= kill_after {
                        break;
                    }
                }
            }
            child.kill().unwrap();
            child.wait().unwrap();
            let last = acked.expect("the child acknowledged batches before the kill") as i64;

            let sink = SqliteSink::open(&SqliteConfig::new(path)).unwrap();
            let conn = sink.conn.as_ref().unwrap();
            // Batches are all or nothing, in order: the batch with author
            // id `b + 1` is whole, for every acknowledged batch and for any
            // the child committed after the last acknowledgement read.
            let mut st = conn
                .prepare(
                    "SELECT author_id, count(*) FROM posts GROUP BY author_id ORDER BY author_id",
                )
                .unwrap();
            let batches: Vec<(i64, i64)> = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                batches.len() as i64 > last,
                "kill after {kill_after}: {} batches, {last} acknowledged",
                batches.len()
            );
            for (n, (author, posts)) in batches.iter().enumerate() {
                assert_eq!(
                    (*author, *posts),
                    (n as i64 + 1, 50),
                    "kill after {kill_after}"
                );
            }
            let posts = count(conn, "posts");
            assert_eq!(count(conn, "matching_rules"), posts);
        }
    }
}
