//! The SQLite schema and its migrations. Each migration is a SQL script
//! applied in one transaction together with the new `user_version`, so a
//! database is always at one version or the next, never between.

use rusqlite::Connection;

use crate::sinks::SinkError;

/// Marks a database as written by this program (`PRAGMA application_id`),
/// so that the sink refuses to add its tables to somebody else's file.
pub(crate) const APPLICATION_ID: i32 = 0x474E_4950; // "GNIP"

/// The migrations, in order; `user_version` N means the first N applied.
const MIGRATIONS: &[&str] = &[include_str!("v1.sql")];

/// The schema version this program writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The schema of the SQLite sink, in Markdown, for the README and `--help`
/// texts. The SQL is the migration itself, so it cannot drift.
pub const SCHEMA_DOC: &str = concat!(
    "The SQLite sink keeps every post once, keyed by post id, with the record\n",
    "exactly as received in `raw` and the keys the connector reads out of it in\n",
    "columns of their own. Times are epoch milliseconds (UTC); ids are the\n",
    "64-bit integers of the string ids. The program creates and migrates the\n",
    "schema itself (`PRAGMA user_version`), uses WAL with `synchronous = FULL`\n",
    "(a committed batch survives a power cut), and refuses a database written\n",
    "by a newer version. Other programs may read the database while the\n",
    "connector writes (WAL readers do not block the writer).\n\n",
    "```sql\n",
    include_str!("v1.sql"),
    "```\n"
);

/// Brings the database to [`SCHEMA_VERSION`].
///
/// # Errors
///
/// [`SinkError::Fatal`] for a database of another program or of a newer
/// schema; a SQLite error sorted by `sql_error` otherwise.
pub(crate) fn migrate(
    conn: &mut Connection,
    sql_error: impl Fn(&str, rusqlite::Error) -> SinkError,
) -> Result<u32, SinkError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| sql_error("Cannot read the schema version", e))?;
    let app: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| sql_error("Cannot read the application id", e))?;
    if app != 0 && app != APPLICATION_ID {
        return Err(SinkError::Fatal(format!(
            "The database belongs to another program (application_id {app:#x}); choose another file."
        )));
    }
    let known = i64::from(SCHEMA_VERSION);
    if version > known {
        return Err(SinkError::Fatal(format!(
            "The database has schema version {version}, newer than the {known} this program knows; \
             run a newer gnip-connector or choose another file."
        )));
    }
    if version < 0 {
        return Err(SinkError::Fatal(format!(
            "The database has a negative schema version ({version})."
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let to = i + 1;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| sql_error("Cannot start the schema migration", e))?;
        tx.execute_batch(sql)
            .map_err(|e| sql_error(&format!("Cannot migrate the schema to version {to}"), e))?;
        tx.pragma_update(None, "user_version", to as i64)
            .and_then(|()| tx.pragma_update(None, "application_id", APPLICATION_ID))
            .and_then(|()| tx.commit())
            .map_err(|e| sql_error(&format!("Cannot migrate the schema to version {to}"), e))?;
        tracing::info!(version = to, "Migrated the SQLite schema.");
    }
    Ok(SCHEMA_VERSION)
}
