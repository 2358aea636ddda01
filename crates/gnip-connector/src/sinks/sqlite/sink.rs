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
