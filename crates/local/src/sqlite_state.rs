//! The state store on SQLite: the same domain operations and guarantees as the DynamoDB
//! table. Where DynamoDB writes a batch's items in transactions of at most
//! `MAX_TRANSACTION_ITEMS` and then its conditional marker (the commit point), SQLite has no
//! item limit and one write lock for every stage of the process: a batch's items (and its
//! marker, when it is recorded) go in one transaction, which costs the lock one commit
//! where it cost it seven (20,000 tiny files: the per-file stages' writes held the lock
//! two thirds of the time). Connections come from a small pool, so threads really do race
//! here, as Lambda invocations race on the table.

use std::path::Path;
use std::sync::Arc;

use crate::sqlite_pool::{open_connection, ConnectionPool};
use chrono::DateTime;
use rusqlite::types::{Type, Value};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use uuid::Uuid;

use vellum_core::model::{
    CatalogueIdentifiers, EventOutcome, File, FilePatch, FileUse, Job, JobStatus, PremisEvent, StoredAip, Task,
    Timestamp, Transfer, TransferStatus, UnknownWord, ValidationCounts,
};
use vellum_core::ports::{
    BatchRecorded, Clock, EventLog, ExtractCheckpoint, FileCatalogue, JobLedger, JobSpec, Page, PortError, PortResult,
    SystemClock, TransferOversight, TransferQuery, TransferRegister,
};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS transfers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    source_bucket TEXT NOT NULL,
    source_key TEXT NOT NULL,
    source_event_time TEXT NOT NULL,
    event_key TEXT NOT NULL,
    profile TEXT NOT NULL,
    identifiers TEXT NOT NULL,
    status TEXT NOT NULL,
    current_microservice TEXT,
    sip_uuid TEXT NOT NULL,
    aip_uuid TEXT NOT NULL,
    failure_reason TEXT,
    file_count INTEGER NOT NULL DEFAULT 0,
    batch_count INTEGER NOT NULL DEFAULT 0,
    extract_next_entry INTEGER NOT NULL DEFAULT 0,
    extract_done INTEGER NOT NULL DEFAULT 0,
    aip_key TEXT,
    aip_version INTEGER,
    aip_space TEXT,
    aip_identifier TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    completed_at TEXT
);
CREATE INDEX IF NOT EXISTS transfers_by_time ON transfers (created_at);
CREATE INDEX IF NOT EXISTS transfers_by_status ON transfers (status, created_at);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    transfer_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    uuid TEXT PRIMARY KEY,
    transfer_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    stage TEXT NOT NULL,
    microservice_group TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    batches_done INTEGER NOT NULL DEFAULT 0,
    checkpoint TEXT,
    UNIQUE (transfer_id, stage)
);
CREATE TABLE IF NOT EXISTS batches (
    transfer_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    batch INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (transfer_id, stage, batch)
);
CREATE TABLE IF NOT EXISTS tasks (
    uuid TEXT PRIMARY KEY,
    job_uuid TEXT NOT NULL,
    file_uuid TEXT NOT NULL,
    exit_code INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    stdout TEXT NOT NULL,
    stderr TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_by_job ON tasks (job_uuid);
CREATE TABLE IF NOT EXISTS files (
    uuid TEXT PRIMARY KEY,
    transfer_id TEXT NOT NULL,
    batch INTEGER NOT NULL,
    entry_index INTEGER NOT NULL,
    file_use TEXT NOT NULL,
    original_path TEXT NOT NULL,
    current_path TEXT NOT NULL,
    size INTEGER NOT NULL,
    checksums TEXT NOT NULL,
    format TEXT,
    modified TEXT,
    characteristics TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS files_by_batch ON files (transfer_id, batch, entry_index);
CREATE INDEX IF NOT EXISTS files_by_path ON files (transfer_id, current_path);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    transfer_id TEXT NOT NULL,
    file_uuid TEXT,
    event_type TEXT NOT NULL,
    date_time TEXT NOT NULL,
    detail TEXT NOT NULL,
    outcome TEXT NOT NULL,
    outcome_detail TEXT NOT NULL,
    agents TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_transfer ON events (transfer_id, seq);
CREATE INDEX IF NOT EXISTS events_by_file ON events (file_uuid, seq);
"#;

/// A stored value that does not read back as what it claims to be.
#[derive(Debug)]
struct Unreadable(String);

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreadable {}

fn unreadable(column: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, Box::new(Unreadable(what)))
}

pub(crate) fn err(e: rusqlite::Error) -> PortError {
    match e {
        rusqlite::Error::FromSqlConversionFailure(_, _, inner) => PortError::Corrupt(inner.to_string()),
        rusqlite::Error::InvalidColumnType(i, name, t) => {
            PortError::Corrupt(format!("column {i} ({name}) holds a {t} value"))
        }
        other => PortError::Unavailable(format!("sqlite: {other}")),
    }
}

/// Fixed width (microseconds, `Z`), so that text order is time order.
pub(crate) fn ts(t: &Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub(crate) fn time_at(r: &Row<'_>, i: usize) -> rusqlite::Result<Timestamp> {
    let s: String = r.get(i)?;
    DateTime::parse_from_rfc3339(&s).map(|d| d.to_utc()).map_err(|e| unreadable(i, format!("{s:?} is not a time: {e}")))
}

pub(crate) fn opt_time_at(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<Timestamp>> {
    match r.get::<_, Option<String>>(i)? {
        None => Ok(None),
        Some(_) => time_at(r, i).map(Some),
    }
}

fn uuid_at(r: &Row<'_>, i: usize) -> rusqlite::Result<Uuid> {
    let s: String = r.get(i)?;
    Uuid::parse_str(&s).map_err(|e| unreadable(i, format!("{s:?} is not a UUID: {e}")))
}

/// A word of Vellum's vocabulary (an event type, an outcome), or the row is unreadable.
fn word_at<T>(r: &Row<'_>, i: usize, parse: impl Fn(&str) -> Result<T, UnknownWord>) -> rusqlite::Result<T> {
    let s: String = r.get(i)?;
    parse(&s).map_err(|e| unreadable(i, e.to_string()))
}

fn json_at<T: serde::de::DeserializeOwned>(r: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let s: String = r.get(i)?;
    serde_json::from_str(&s).map_err(|e| unreadable(i, format!("{s:?} is not the JSON expected: {e}")))
}

fn count_at(r: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let n: i64 = r.get(i)?;
    u64::try_from(n).map_err(|_| unreadable(i, format!("{n} is not a count")))
}

/// A page of a transfer's files in path order, after a cursor or from the first. Two
/// statements, not `(:after IS NULL OR current_path > :after)`: with the OR, SQLite seeks
/// the index by transfer only and steps over every earlier file on each page — quadratic; a
/// METS stage of 100,000 files spent 39 % of its time there (26 s → 13 s without).
fn files_page_sql(after: bool) -> String {
    let cursor = if after { "AND current_path > :after " } else { "" };
    format!("SELECT {FILE_COLUMNS} FROM files WHERE transfer_id = :transfer {cursor}ORDER BY current_path LIMIT :limit")
}

/// A page of a batch's files in entry order; no cursor is `i64::MIN` (as `files_page_sql`,
/// no OR, so that the index is sought to the cursor).
fn batch_files_page_sql() -> String {
    format!(
        "SELECT {FILE_COLUMNS} FROM files WHERE transfer_id = ?1 AND batch = ?2 \
         AND entry_index > ?3 ORDER BY entry_index LIMIT ?4"
    )
}

/// A page of the transfer list, newest first, with only the filters asked for (as
/// `files_page_sql`: an `?N IS NULL OR` filter keeps SQLite from seeking an index by it, so
/// each later page stepped over every newer transfer).
fn transfer_list_sql(status: bool, after: bool, search: bool) -> String {
    let mut filters = vec!["hidden = :hidden"];
    if status {
        filters.push("status = :status");
    }
    if after {
        filters.push("(created_at, id) < (:after_time, :after_id)");
    }
    if search {
        filters.push("instr(lower(name || ' ' || identifiers), :search) > 0");
    }
    format!(
        "SELECT {TRANSFER_COLUMNS}, hidden, stuck_since, fixity_checked_at, files_not_scanned, dip_key, files_not_normalized, validation FROM transfers \
         WHERE {} ORDER BY created_at DESC, id DESC LIMIT :limit",
        filters.join(" AND ")
    )
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("state values serialize")
}

pub struct SqliteStateStore {
    connections: ConnectionPool,
    clock: Arc<dyn Clock>,
}

/// The state database's schema version (SQLite's `user_version`): 1 was the first release's
/// tables; 2 added hidden transfers, task file names, jobs' last errors and progress, the
/// stuck flag and the fixity audit's time. A database of a newer version than this Vellum knows is refused, never
/// read as if it were older.
pub const SCHEMA_VERSION: i64 = 2;

/// Columns added since the first schema, put into a database made before them.
fn add_missing_columns(conn: &Connection) -> PortResult<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(err)?;
    if version > SCHEMA_VERSION {
        return Err(PortError::Corrupt(format!(
            "this data folder's state is schema version {version}, written by a newer Vellum than this one \
             (which knows version {SCHEMA_VERSION}): run the newer Vellum, or restore a backup"
        )));
    }
    let has_hidden: bool = conn
        .query_row("SELECT COUNT(*) FROM pragma_table_info('transfers') WHERE name = 'hidden'", [], |r| r.get(0))
        .map_err(err)?;
    if !has_hidden {
        conn.execute_batch("ALTER TABLE transfers ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;").map_err(err)?;
    }
    let has_file_name: bool = conn
        .query_row("SELECT COUNT(*) FROM pragma_table_info('tasks') WHERE name = 'file_name'", [], |r| r.get(0))
        .map_err(err)?;
    if !has_file_name {
        conn.execute_batch("ALTER TABLE tasks ADD COLUMN file_name TEXT NOT NULL DEFAULT '';").map_err(err)?;
    }
    for (table, column, kind) in [
        ("jobs", "progressed_at", "TEXT"),
        ("transfers", "stuck_since", "TEXT"),
        ("transfers", "fixity_checked_at", "TEXT"),
        ("transfers", "files_not_scanned", "INTEGER"),
        ("files", "source", "TEXT"),
        ("transfers", "dip_key", "TEXT"),
        ("transfers", "files_not_normalized", "INTEGER"),
        ("transfers", "validation", "TEXT"),
    ] {
        let has: bool = conn
            .query_row(&format!("SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = '{column}'"), [], |r| {
                r.get(0)
            })
            .map_err(err)?;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind};")).map_err(err)?;
        }
    }
    let has_last_error: bool = conn
        .query_row("SELECT COUNT(*) FROM pragma_table_info('jobs') WHERE name = 'last_error'", [], |r| r.get(0))
        .map_err(err)?;
    if !has_last_error {
        conn.execute_batch("ALTER TABLE jobs ADD COLUMN last_error TEXT;").map_err(err)?;
    }
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS transfers_by_sip ON transfers (sip_uuid);
         CREATE INDEX IF NOT EXISTS transfers_by_aip ON transfers (aip_uuid);",
    )
    .map_err(err)?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(err)?;
    Ok(())
}

impl SqliteStateStore {
    pub fn open(path: &Path) -> PortResult<Self> {
        Self::open_with_clock(path, Arc::new(SystemClock))
    }

    pub fn open_with_clock(path: &Path, clock: Arc<dyn Clock>) -> PortResult<Self> {
        let conn = open_connection(path)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        add_missing_columns(&conn)?;
        Ok(Self { connections: ConnectionPool::new(path, conn), clock })
    }

    fn now(&self) -> String {
        ts(&self.clock.now())
    }

    /// The transfer whose `column` (its id, its SIP's or its AIP's) is `id`.
    fn transfer_where(&self, column: &str, id: Uuid) -> PortResult<Option<Transfer>> {
        self.with(|c| {
            c.query_row(
                &format!(
                    "SELECT {TRANSFER_COLUMNS}, hidden, stuck_since, fixity_checked_at, files_not_scanned, dip_key, files_not_normalized, validation FROM transfers WHERE {column} = ?1"
                ),
                [id.to_string()],
                transfer_row,
            )
            .optional()
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> PortResult<T> {
        self.connections.with(err, f)
    }

    /// A write transaction that takes the write lock at once, so two racing writers queue
    /// for the lock (`lock_wait`) instead of failing on a stale snapshot.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>) -> PortResult<T> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// The transfer an upload event created, if any.
    pub fn transfer_for_event(&self, idempotency_key: &str) -> PortResult<Option<Uuid>> {
        self.with(|c| {
            c.query_row("SELECT transfer_id FROM idempotency WHERE key = ?1", [idempotency_key], |r| {
                r.get::<_, String>(0)
            })
            .optional()
        })
        .and_then(|o| o.map(|s| parse_uuid(&s)).transpose())
    }
}

fn parse_uuid(s: &str) -> PortResult<Uuid> {
    Uuid::parse_str(s).map_err(|e| PortError::Corrupt(format!("{s:?} is not a UUID: {e}")))
}

const TRANSFER_COLUMNS: &str = "id, name, source_bucket, source_key, profile, identifiers, status, \
    current_microservice, sip_uuid, aip_uuid, failure_reason, file_count, batch_count, aip_key, \
    aip_version, created_at, updated_at, completed_at, source_event_time, event_key";

const TASK_COLUMNS: &str = "uuid, job_uuid, file_uuid, exit_code, started_at, ended_at, stdout, stderr, file_name";

fn task_row(r: &Row<'_>) -> rusqlite::Result<Task> {
    Ok(Task {
        uuid: uuid_at(r, 0)?,
        job_uuid: uuid_at(r, 1)?,
        file_uuid: uuid_at(r, 2)?,
        exit_code: r.get(3)?,
        started_at: time_at(r, 4)?,
        ended_at: time_at(r, 5)?,
        stdout: r.get(6)?,
        stderr: r.get(7)?,
        file_name: r.get(8)?,
    })
}

fn transfer_row(r: &Row<'_>) -> rusqlite::Result<Transfer> {
    Ok(Transfer {
        id: uuid_at(r, 0)?,
        name: r.get(1)?,
        source_bucket: r.get(2)?,
        source_key: r.get(3)?,
        profile: r.get(4)?,
        identifiers: json_at::<CatalogueIdentifiers>(r, 5)?,
        status: {
            let s: String = r.get(6)?;
            TransferStatus::parse(&s).ok_or_else(|| unreadable(6, format!("{s:?} is not a transfer status")))?
        },
        current_microservice: r.get(7)?,
        sip_uuid: uuid_at(r, 8)?,
        aip_uuid: uuid_at(r, 9)?,
        failure_reason: r.get(10)?,
        file_count: count_at(r, 11)?,
        batch_count: u32::try_from(count_at(r, 12)?).map_err(|_| unreadable(12, "a batch count too large".into()))?,
        aip_key: r.get(13)?,
        aip_version: match r.get::<_, Option<i64>>(14)? {
            None => None,
            Some(v) => Some(u32::try_from(v).map_err(|_| unreadable(14, format!("{v} is not an AIP version")))?),
        },
        created_at: time_at(r, 15)?,
        updated_at: time_at(r, 16)?,
        completed_at: opt_time_at(r, 17)?,
        source_event_time: r.get(18)?,
        event_key: r.get(19)?,
        hidden: r.get(20)?,
        stuck_since: opt_time_at(r, 21)?,
        fixity_checked_at: opt_time_at(r, 22)?,
        files_not_scanned: match r.get::<_, Option<i64>>(23)? {
            None => None,
            Some(n) => Some(u64::try_from(n).map_err(|_| unreadable(23, format!("{n} files not scanned")))?),
        },
        dip_key: r.get(24)?,
        files_not_normalized: match r.get::<_, Option<i64>>(25)? {
            None => None,
            Some(n) => Some(u64::try_from(n).map_err(|_| unreadable(25, format!("{n} files not normalized")))?),
        },
        validation: match r.get::<_, Option<String>>(26)? {
            None => None,
            Some(text) => Some(
                serde_json::from_str(&text).map_err(|e| unreadable(26, format!("validation counts {text:?}: {e}")))?,
            ),
        },
    })
}

const JOB_COLUMNS: &str =
    "uuid, transfer_id, stage, microservice_group, name, status, started_at, ended_at, batches_done";

fn job_row(r: &Row<'_>) -> rusqlite::Result<Job> {
    Ok(Job {
        uuid: uuid_at(r, 0)?,
        transfer_id: uuid_at(r, 1)?,
        stage: r.get(2)?,
        microservice_group: r.get(3)?,
        name: r.get(4)?,
        status: {
            let s: String = r.get(5)?;
            JobStatus::parse(&s).ok_or_else(|| unreadable(5, format!("{s:?} is not a job status")))?
        },
        started_at: time_at(r, 6)?,
        ended_at: opt_time_at(r, 7)?,
        batches_done: u32::try_from(count_at(r, 8)?).map_err(|_| unreadable(8, "a batch count too large".into()))?,
        last_error: r.get(9)?,
        progressed_at: opt_time_at(r, 10)?,
    })
}

const FILE_COLUMNS: &str = "uuid, transfer_id, batch, entry_index, file_use, original_path, \
    current_path, size, checksums, format, modified, characteristics, source";

fn file_row(r: &Row<'_>) -> rusqlite::Result<File> {
    Ok(File {
        uuid: uuid_at(r, 0)?,
        transfer_id: uuid_at(r, 1)?,
        batch: u32::try_from(r.get::<_, i64>(2)?).map_err(|_| unreadable(2, "a batch number out of range".into()))?,
        entry_index: count_at(r, 3)?,
        file_use: {
            let s: String = r.get(4)?;
            FileUse::parse(&s).ok_or_else(|| unreadable(4, format!("{s:?} is not a file use")))?
        },
        original_path: r.get(5)?,
        current_path: r.get(6)?,
        size: count_at(r, 7)?,
        checksums: json_at(r, 8)?,
        format: match r.get::<_, Option<String>>(9)? {
            None => None,
            Some(_) => Some(json_at(r, 9)?),
        },
        modified: opt_time_at(r, 10)?,
        characteristics: json_at(r, 11)?,
        source: match r.get::<_, Option<String>>(12)? {
            None => None,
            Some(_) => Some(uuid_at(r, 12)?),
        },
    })
}

/// Rows of one table, encoded before the write lock is taken (ids and times as text, JSON
/// written): the lock is one for every stage of the process, and is held for SQLite's own
/// work alone (encoding was a sixth of the per-file stages' time under it).
struct Rows {
    sql: String,
    width: usize,
    values: Vec<Value>,
}

impl Rows {
    fn new(sql: String, width: usize, capacity: usize) -> Self {
        Self { sql, width, values: Vec::with_capacity(width * capacity) }
    }

    fn push(&mut self, row: impl IntoIterator<Item = Value>) {
        self.values.extend(row);
        debug_assert_eq!(self.values.len() % self.width, 0, "a row of the wrong width for {}", self.sql);
    }

    fn write(&self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        if self.values.is_empty() {
            return Ok(());
        }
        let mut stmt = tx.prepare_cached(&self.sql)?;
        for row in self.values.chunks(self.width) {
            stmt.execute(rusqlite::params_from_iter(row))?;
        }
        Ok(())
    }

    fn events(events: &[PremisEvent]) -> Self {
        let mut rows = Rows::new(
            "INSERT OR IGNORE INTO events (uuid, transfer_id, file_uuid, event_type, date_time, detail, \
             outcome, outcome_detail, agents) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                .into(),
            9,
            events.len(),
        );
        for e in events {
            rows.push([
                text(e.uuid.to_string()),
                text(e.transfer_id.to_string()),
                e.file_uuid.map_or(Value::Null, |u| text(u.to_string())),
                text(e.event_type.as_str().to_string()),
                text(ts(&e.date_time)),
                text(e.detail.clone()),
                text(e.outcome.as_str().to_string()),
                text(e.outcome_detail.clone()),
                text(json(&e.agents)),
            ]);
        }
        rows
    }

    fn files(transfer_id: &str, batch: u32, files: &[File]) -> Self {
        let mut rows = Rows::new(
            format!(
                "INSERT OR IGNORE INTO files ({FILE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            ),
            13,
            files.len(),
        );
        for f in files {
            rows.push([
                text(f.uuid.to_string()),
                text(transfer_id.to_string()),
                Value::Integer(batch.into()),
                Value::Integer(f.entry_index as i64),
                text(f.file_use.as_str().to_string()),
                text(f.original_path.clone()),
                text(f.current_path.clone()),
                Value::Integer(f.size as i64),
                text(json(&f.checksums)),
                f.format.as_ref().map_or(Value::Null, |v| text(json(v))),
                f.modified.as_ref().map_or(Value::Null, |t| text(ts(t))),
                text(json(&f.characteristics)),
                f.source.map_or(Value::Null, |u| text(u.to_string())),
            ]);
        }
        rows
    }

    fn tasks(tasks: &[Task]) -> Self {
        let mut rows = Rows::new(
            "INSERT OR IGNORE INTO tasks (uuid, job_uuid, file_uuid, exit_code, started_at, ended_at, stdout, stderr, file_name) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                .into(),
            9,
            tasks.len(),
        );
        for t in tasks {
            rows.push([
                text(t.uuid.to_string()),
                text(t.job_uuid.to_string()),
                text(t.file_uuid.to_string()),
                Value::Integer(t.exit_code.into()),
                text(ts(&t.started_at)),
                text(ts(&t.ended_at)),
                text(t.stdout.clone()),
                text(t.stderr.clone()),
                text(t.file_name.clone()),
            ]);
        }
        rows
    }

    /// What each patch carries, in one statement per file: checksums and characteristics are
    /// merged key by key (`json_patch`), so applying a patch twice changes nothing.
    fn patches(patches: &[FilePatch]) -> Self {
        let mut rows = Rows::new(
            "UPDATE files SET checksums = json_patch(checksums, ?2), format = COALESCE(?3, format), \
             size = COALESCE(?4, size), characteristics = json_patch(characteristics, ?5) WHERE uuid = ?1"
                .into(),
            5,
            patches.len(),
        );
        for p in patches {
            rows.push([
                text(p.uuid.to_string()),
                text(json(&p.checksums)),
                p.format.as_ref().map_or(Value::Null, |v| text(json(v))),
                p.size.map_or(Value::Null, |s| Value::Integer(s as i64)),
                text(json(&p.characteristics)),
            ]);
        }
        rows
    }
}

fn text(s: String) -> Value {
    Value::Text(s)
}

fn read_checkpoint(tx: &Connection, id: Uuid) -> rusqlite::Result<Option<ExtractCheckpoint>> {
    tx.query_row(
        "SELECT extract_next_entry, batch_count, file_count, extract_done FROM transfers WHERE id = ?1",
        [id.to_string()],
        |r| {
            Ok(ExtractCheckpoint {
                next_entry: count_at(r, 0)?,
                batches: u32::try_from(count_at(r, 1)?).map_err(|_| unreadable(1, "a batch count too large".into()))?,
                files: count_at(r, 2)?,
                done: r.get::<_, i64>(3)? != 0,
            })
        },
    )
    .optional()
}

/// Moves extraction's checkpoint from `from` (not done) to `to`, if it is still there:
/// the commit point of a batch or a plan. False when another delivery moved it.
fn move_checkpoint(
    c: &Connection,
    transfer_id: Uuid,
    from: &ExtractCheckpoint,
    to: &ExtractCheckpoint,
    now: &str,
) -> rusqlite::Result<bool> {
    let moved = c.execute(
        "UPDATE transfers SET extract_next_entry = ?2, batch_count = ?3, file_count = ?4, extract_done = ?5, \
         updated_at = ?6 \
         WHERE id = ?1 AND extract_next_entry = ?7 AND batch_count = ?8 AND file_count = ?9 AND extract_done = 0",
        params![
            transfer_id.to_string(),
            to.next_entry as i64,
            to.batches as i64,
            to.files as i64,
            i64::from(to.done),
            now,
            from.next_entry as i64,
            from.batches as i64,
            from.files as i64
        ],
    )?;
    Ok(moved == 1)
}

/// A batch of extracted files and their events, encoded.
struct ExtractedItems {
    files: Rows,
    events: Rows,
}

impl ExtractedItems {
    fn of(transfer_id: &str, batch: u32, files: &[File], events: &[PremisEvent]) -> Self {
        Self { files: Rows::files(transfer_id, batch, files), events: Rows::events(events) }
    }

    fn write(&self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        self.files.write(tx)?;
        self.events.write(tx)
    }
}

/// A per-file stage's results for some files of a batch, encoded.
struct BatchItems {
    tasks: Rows,
    events: Rows,
    patches: Rows,
}

impl BatchItems {
    fn of(tasks: &[Task], events: &[PremisEvent], patches: &[FilePatch]) -> Self {
        Self { tasks: Rows::tasks(tasks), events: Rows::events(events), patches: Rows::patches(patches) }
    }

    fn write(&self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        self.tasks.write(tx)?;
        self.events.write(tx)?;
        self.patches.write(tx)
    }
}

/// The commit point of a per-file stage's batch: the batch joins the stage's set of done
/// batches, once; the set's size against the final batch count is the fan-in.
fn mark_batch(
    tx: &Transaction<'_>,
    transfer_id: Uuid,
    stage: &str,
    batch: u32,
    now: &str,
) -> rusqlite::Result<BatchRecorded> {
    let tid = transfer_id.to_string();
    let newly_recorded = tx.execute(
        "INSERT OR IGNORE INTO batches (transfer_id, stage, batch, recorded_at) VALUES (?1, ?2, ?3, ?4)",
        params![tid, stage, batch as i64, now],
    )? == 1;
    if newly_recorded {
        tx.execute(
            "UPDATE jobs SET batches_done = batches_done + 1, progressed_at = ?3 WHERE transfer_id = ?1 AND stage = ?2",
            params![tid, stage, now],
        )?;
    }
    let done: i64 =
        tx.query_row("SELECT COUNT(*) FROM batches WHERE transfer_id = ?1 AND stage = ?2", params![tid, stage], |r| {
            r.get(0)
        })?;
    let (total, extract_done): (i64, i64) =
        tx.query_row("SELECT batch_count, extract_done FROM transfers WHERE id = ?1", [&tid], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    Ok(BatchRecorded { newly_recorded, stage_complete: extract_done == 1 && done >= total })
}

fn page<T>(mut items: Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> Page<T> {
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor)
    } else {
        None
    };
    Page { items, next }
}

impl TransferRegister for SqliteStateStore {
    fn create_transfer(&self, idempotency_key: &str, t: &Transfer) -> PortResult<(Transfer, bool)> {
        let existing = self.write(|tx| {
            let prior: Option<String> = tx
                .query_row("SELECT transfer_id FROM idempotency WHERE key = ?1", [idempotency_key], |r| r.get(0))
                .optional()?;
            if prior.is_some() {
                return Ok(prior);
            }
            tx.execute("INSERT INTO idempotency (key, transfer_id) VALUES (?1, ?2)", params![idempotency_key, t.id.to_string()])?;
            tx.execute(
                &format!("INSERT INTO transfers ({TRANSFER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"),
                params![
                    t.id.to_string(),
                    t.name,
                    t.source_bucket,
                    t.source_key,
                    t.profile,
                    json(&t.identifiers),
                    t.status.as_str(),
                    t.current_microservice,
                    t.sip_uuid.to_string(),
                    t.aip_uuid.to_string(),
                    t.failure_reason,
                    t.file_count as i64,
                    t.batch_count as i64,
                    t.aip_key,
                    t.aip_version.map(|v| v as i64),
                    ts(&t.created_at),
                    ts(&t.updated_at),
                    t.completed_at.as_ref().map(ts),
                    t.source_event_time,
                    t.event_key,
                ],
            )?;
            Ok(None)
        })?;
        match existing {
            None => Ok((t.clone(), true)),
            Some(prior) => {
                let prior = self.transfer(parse_uuid(&prior)?)?.ok_or_else(|| {
                    PortError::Corrupt(format!("event {idempotency_key} names transfer {prior}, which is not stored"))
                })?;
                Ok((prior, false))
            }
        }
    }

    fn transfer(&self, id: Uuid) -> PortResult<Option<Transfer>> {
        self.transfer_where("id", id)
    }

    fn set_identifiers(&self, id: Uuid, identifiers: &CatalogueIdentifiers) -> PortResult<()> {
        let now = self.now();
        self.with(|c| {
            c.execute(
                "UPDATE transfers SET identifiers = ?2, updated_at = ?3 WHERE id = ?1",
                params![id.to_string(), json(identifiers), now],
            )
        })?;
        Ok(())
    }

    fn set_microservice(&self, id: Uuid, microservice: &str) -> PortResult<()> {
        let now = self.now();
        self.with(|c| {
            c.execute(
                "UPDATE transfers SET current_microservice = ?2, updated_at = ?3 WHERE id = ?1 AND status = 'PROCESSING'",
                params![id.to_string(), microservice, now],
            )
        })?;
        Ok(())
    }

    fn end_transfer(&self, id: Uuid, status: TransferStatus, reason: &str) -> PortResult<bool> {
        let now = self.now();
        let n = self.with(|c| {
            c.execute(
                "UPDATE transfers SET status = ?2, failure_reason = ?3, updated_at = ?4, completed_at = ?4 \
                 WHERE id = ?1 AND status = 'PROCESSING'",
                params![id.to_string(), status.as_str(), reason, now],
            )
        })?;
        Ok(n == 1)
    }

    fn set_files_not_scanned(&self, id: Uuid, count: u64) -> PortResult<()> {
        self.set_count(id, "files_not_scanned", count)
    }

    fn set_files_not_normalized(&self, id: Uuid, count: u64) -> PortResult<()> {
        self.set_count(id, "files_not_normalized", count)
    }

    fn set_validation_counts(&self, id: Uuid, counts: ValidationCounts) -> PortResult<()> {
        let text = serde_json::to_string(&counts).expect("counts serialize");
        self.with(|c| c.execute("UPDATE transfers SET validation = ?2 WHERE id = ?1", params![id.to_string(), text]))?;
        Ok(())
    }

    fn complete_transfer(&self, id: Uuid, aip: &StoredAip) -> PortResult<bool> {
        let now = self.now();
        let n = self.with(|c| {
            // COMPLETE is a promise to whoever reads it next: this commit is synced to disk
            // (synchronous FULL), where WAL's NORMAL would leave it to the next checkpoint
            // and a power cut could take it back.
            c.pragma_update(None, "synchronous", "FULL")?;
            let n = c.execute(
                "UPDATE transfers SET status = 'COMPLETE', aip_key = ?2, aip_version = ?3, aip_space = ?4, \
                 dip_key = ?6, updated_at = ?5, completed_at = ?5 WHERE id = ?1 AND status = 'PROCESSING'",
                params![id.to_string(), aip.key, aip.version as i64, aip.space, now, aip.dip],
            );
            c.pragma_update(None, "synchronous", "NORMAL")?;
            n
        })?;
        Ok(n == 1)
    }

    fn assign_aip_version(&self, transfer_id: Uuid, space: &str, identifier: &str) -> PortResult<u32> {
        let tid = transfer_id.to_string();
        let version = self.write(|tx| {
            let assigned: Option<i64> = tx
                .query_row("SELECT aip_version FROM transfers WHERE id = ?1", [&tid], |r| r.get(0))
                .optional()?
                .flatten();
            if let Some(v) = assigned {
                return Ok(v);
            }
            let highest: Option<i64> = tx.query_row(
                "SELECT MAX(aip_version) FROM transfers WHERE aip_space = ?1 AND aip_identifier = ?2",
                params![space, identifier],
                |r| r.get(0),
            )?;
            let version = highest.unwrap_or(0) + 1;
            tx.execute(
                "UPDATE transfers SET aip_version = ?2, aip_space = ?3, aip_identifier = ?4 WHERE id = ?1",
                params![tid, version, space, identifier],
            )?;
            Ok(version)
        })?;
        u32::try_from(version).map_err(|_| PortError::Corrupt(format!("{version} is not an AIP version")))
    }
}

impl TransferOversight for SqliteStateStore {
    fn list_transfers(&self, query: &TransferQuery) -> PortResult<Page<Transfer>> {
        let limit = query.limit.max(1);
        let (after_time, after_id) = match &query.after {
            None => (None, None),
            Some(cursor) => {
                let (time, id) = cursor
                    .split_once('|')
                    .ok_or_else(|| PortError::Refused(format!("{cursor:?} is not a cursor of the transfer list")))?;
                (Some(time.to_string()), Some(id.to_string()))
            }
        };
        let status = query.status.map(|s| s.as_str());
        let search = query.search.as_deref().map(str::to_lowercase).filter(|q| !q.is_empty());
        let fetch = (limit + 1) as i64;
        let mut values: Vec<(&str, &dyn rusqlite::ToSql)> = vec![(":hidden", &query.hidden), (":limit", &fetch)];
        if let Some(status) = &status {
            values.push((":status", status));
        }
        if let (Some(time), Some(id)) = (&after_time, &after_id) {
            values.push((":after_time", time));
            values.push((":after_id", id));
        }
        if let Some(search) = &search {
            values.push((":search", search));
        }
        let sql = transfer_list_sql(status.is_some(), after_time.is_some(), search.is_some());
        let items = self.with(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(values.as_slice(), transfer_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        Ok(page(items, limit, |t: &Transfer| format!("{}|{}", ts(&t.created_at), t.id)))
    }

    fn transfer_by_sip(&self, sip_uuid: Uuid) -> PortResult<Option<Transfer>> {
        self.transfer_where("sip_uuid", sip_uuid)
    }

    fn flag_stuck(&self, id: Uuid, since: Timestamp) -> PortResult<bool> {
        let since = ts(&since);
        let n = self.with(|c| {
            c.execute(
                "UPDATE transfers SET stuck_since = ?2 WHERE id = ?1 AND status = 'PROCESSING' AND stuck_since IS NOT ?2",
                params![id.to_string(), since],
            )
        })?;
        Ok(n == 1)
    }

    fn set_fixity_checked(&self, id: Uuid, at: Timestamp) -> PortResult<()> {
        self.with(|c| {
            c.execute("UPDATE transfers SET fixity_checked_at = ?2 WHERE id = ?1", params![id.to_string(), ts(&at)])
        })?;
        Ok(())
    }

    fn transfer_by_aip(&self, aip_uuid: Uuid) -> PortResult<Option<Transfer>> {
        self.transfer_where("aip_uuid", aip_uuid)
    }

    fn hide_transfer(&self, id: Uuid) -> PortResult<bool> {
        let n = self.with(|c| {
            c.execute(
                "UPDATE transfers SET hidden = 1 WHERE id = ?1 AND hidden = 0 AND status <> 'PROCESSING'",
                [id.to_string()],
            )
        })?;
        Ok(n == 1)
    }

    fn reopen_transfer(&self, id: Uuid, stage: &str) -> PortResult<bool> {
        let now = self.now();
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE transfers SET status = 'PROCESSING', failure_reason = NULL, completed_at = NULL, \
                 updated_at = ?2, hidden = 0 WHERE id = ?1 AND status = 'FAILED'",
                params![id.to_string(), now],
            )?;
            if n == 1 {
                tx.execute(
                    "UPDATE jobs SET status = 'PROCESSING', ended_at = NULL WHERE transfer_id = ?1 AND stage = ?2",
                    params![id.to_string(), stage],
                )?;
            }
            Ok(n == 1)
        })
    }
}

impl JobLedger for SqliteStateStore {
    fn start_job(&self, transfer_id: Uuid, spec: &JobSpec<'_>) -> PortResult<Job> {
        let tid = transfer_id.to_string();
        let started_at = self.clock.now();
        self.write(|tx| {
            let existing = tx
                .query_row(
                    &format!("SELECT {JOB_COLUMNS}, last_error, progressed_at FROM jobs WHERE transfer_id = ?1 AND stage = ?2"),
                    params![tid, spec.stage],
                    job_row,
                )
                .optional()?;
            if let Some(job) = existing {
                return Ok(job);
            }
            let seq: i64 = tx.query_row("SELECT COUNT(*) FROM jobs WHERE transfer_id = ?1", [&tid], |r| r.get(0))?;
            let job = Job {
                uuid: vellum_core::model::derived_id(transfer_id, &format!("job/{}", spec.stage)),
                transfer_id,
                stage: spec.stage.to_string(),
                microservice_group: spec.microservice_group.to_string(),
                name: spec.name.to_string(),
                status: JobStatus::Processing,
                started_at,
                ended_at: None,
                batches_done: 0,
                last_error: None,
                progressed_at: None,
            };
            tx.execute(
                &format!("INSERT INTO jobs ({JOB_COLUMNS}, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, 0, ?8)"),
                params![
                    job.uuid.to_string(),
                    tid,
                    job.stage,
                    job.microservice_group,
                    job.name,
                    job.status.as_str(),
                    ts(&job.started_at),
                    seq
                ],
            )?;
            Ok(job)
        })
    }

    fn finish_job(&self, transfer_id: Uuid, stage: &str, status: JobStatus) -> PortResult<()> {
        let now = self.now();
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET status = ?3, ended_at = COALESCE(ended_at, ?4) \
                 WHERE transfer_id = ?1 AND stage = ?2 AND status = 'PROCESSING'",
                params![transfer_id.to_string(), stage, status.as_str(), now],
            )
        })?;
        Ok(())
    }

    fn note_job_error(&self, transfer_id: Uuid, stage: &str, error: &str) -> PortResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET last_error = ?3 WHERE transfer_id = ?1 AND stage = ?2",
                params![transfer_id.to_string(), stage, error],
            )
        })?;
        Ok(())
    }

    fn job(&self, transfer_id: Uuid, stage: &str) -> PortResult<Option<Job>> {
        self.with(|c| {
            c.query_row(
                &format!(
                    "SELECT {JOB_COLUMNS}, last_error, progressed_at FROM jobs WHERE transfer_id = ?1 AND stage = ?2"
                ),
                params![transfer_id.to_string(), stage],
                job_row,
            )
            .optional()
        })
    }

    fn jobs(&self, transfer_id: Uuid) -> PortResult<Vec<Job>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {JOB_COLUMNS}, last_error, progressed_at FROM jobs WHERE transfer_id = ?1 ORDER BY seq"
            ))?;
            let rows = stmt.query_map([transfer_id.to_string()], job_row)?;
            rows.collect()
        })
    }

    fn tasks(&self, job_uuid: Uuid) -> PortResult<Vec<Task>> {
        self.with(|c| {
            let mut stmt =
                c.prepare(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE job_uuid = ?1 ORDER BY started_at, uuid"))?;
            let rows = stmt.query_map([job_uuid.to_string()], task_row)?;
            rows.collect()
        })
    }

    fn task(&self, uuid: Uuid) -> PortResult<Option<Task>> {
        self.with(|c| {
            c.query_row(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE uuid = ?1"), [uuid.to_string()], task_row)
                .optional()
        })
    }

    fn job_checkpoint(&self, transfer_id: Uuid, stage: &str) -> PortResult<Option<String>> {
        self.with(|c| {
            c.query_row(
                "SELECT checkpoint FROM jobs WHERE transfer_id = ?1 AND stage = ?2",
                params![transfer_id.to_string(), stage],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
        })
        .map(Option::flatten)
    }

    fn set_job_checkpoint(&self, transfer_id: Uuid, stage: &str, expected: Option<&str>, next: &str) -> PortResult<()> {
        let now = self.now();
        let n = self.with(|c| {
            c.execute(
                "UPDATE jobs SET checkpoint = ?4, progressed_at = ?5 WHERE transfer_id = ?1 AND stage = ?2 AND checkpoint IS ?3",
                params![transfer_id.to_string(), stage, expected, next, now],
            )
        })?;
        if n == 1 {
            Ok(())
        } else {
            Err(PortError::Conflict(format!("the {stage} checkpoint of {transfer_id} moved")))
        }
    }
}

impl FileCatalogue for SqliteStateStore {
    fn extract_checkpoint(&self, transfer_id: Uuid) -> PortResult<ExtractCheckpoint> {
        self.with(|c| read_checkpoint(c, transfer_id))?
            .ok_or_else(|| PortError::NotFound(format!("transfer {transfer_id}")))
    }

    fn commit_extract_batch(
        &self,
        transfer_id: Uuid,
        from: &ExtractCheckpoint,
        files: &[File],
        events: &[PremisEvent],
        next_entry: u64,
    ) -> PortResult<ExtractCheckpoint> {
        let tid = transfer_id.to_string();
        let next = ExtractCheckpoint {
            next_entry,
            batches: from.batches + u32::from(!files.is_empty()),
            files: from.files + files.len() as u64,
            done: false,
        };
        let now = self.now();
        let items = ExtractedItems::of(&tid, from.batches, files, events);
        // The commit point and the items in one transaction: the checkpoint moves, and the
        // items are kept, only if it is still where this batch began.
        let moved = self.write(|tx| {
            if !move_checkpoint(tx, transfer_id, from, &next, &now)? {
                return read_checkpoint(tx, transfer_id).map(Err);
            }
            items.write(tx).map(Ok)
        })?;
        match moved {
            Ok(()) => Ok(next),
            Err(Some(current)) => {
                Err(PortError::Conflict(format!("extraction checkpoint moved from {from:?} to {current:?}")))
            }
            Err(None) => Err(PortError::NotFound(format!("transfer {transfer_id}"))),
        }
    }

    fn finish_extract(&self, transfer_id: Uuid) -> PortResult<ExtractCheckpoint> {
        self.with(|c| {
            c.execute("UPDATE transfers SET extract_done = 1 WHERE id = ?1", [transfer_id.to_string()])?;
            read_checkpoint(c, transfer_id)
        })?
        .ok_or_else(|| PortError::NotFound(format!("transfer {transfer_id}")))
    }

    fn plan_extract(
        &self,
        transfer_id: Uuid,
        from: &ExtractCheckpoint,
        planned: &ExtractCheckpoint,
    ) -> PortResult<ExtractCheckpoint> {
        let planned = ExtractCheckpoint { done: true, ..*planned };
        let now = self.now();
        if self.with(|c| move_checkpoint(c, transfer_id, from, &planned, &now))? {
            Ok(planned)
        } else {
            Err(PortError::Conflict(format!("extraction checkpoint moved from {from:?} before the plan was fixed")))
        }
    }

    fn write_extracted_batch(
        &self,
        transfer_id: Uuid,
        batch: u32,
        files: &[File],
        events: &[PremisEvent],
    ) -> PortResult<()> {
        let tid = transfer_id.to_string();
        let items = ExtractedItems::of(&tid, batch, files, events);
        self.write(|tx| items.write(tx))
    }

    fn write_batch_items(
        &self,
        _transfer_id: Uuid,
        tasks: &[Task],
        events: &[PremisEvent],
        patches: &[FilePatch],
    ) -> PortResult<()> {
        let items = BatchItems::of(tasks, events, patches);
        self.write(|tx| items.write(tx))
    }

    fn mark_batch_done(&self, transfer_id: Uuid, stage: &str, batch: u32) -> PortResult<BatchRecorded> {
        let now = self.now();
        self.write(|tx| mark_batch(tx, transfer_id, stage, batch, &now))
    }

    fn record_batch(
        &self,
        transfer_id: Uuid,
        stage: &str,
        batch: u32,
        tasks: &[Task],
        events: &[PremisEvent],
        patches: &[FilePatch],
    ) -> PortResult<BatchRecorded> {
        let now = self.now();
        let items = BatchItems::of(tasks, events, patches);
        self.write(|tx| {
            items.write(tx)?;
            mark_batch(tx, transfer_id, stage, batch, &now)
        })
    }

    fn files(&self, transfer_id: Uuid, after: Option<&str>, limit: usize) -> PortResult<Page<File>> {
        let limit = limit.max(1);
        let (transfer, fetch) = (transfer_id.to_string(), (limit + 1) as i64);
        let mut values: Vec<(&str, &dyn rusqlite::ToSql)> = vec![(":transfer", &transfer), (":limit", &fetch)];
        if let Some(after) = &after {
            values.push((":after", after));
        }
        let items = self.with(|c| {
            let mut stmt = c.prepare_cached(&files_page_sql(after.is_some()))?;
            let rows = stmt.query_map(values.as_slice(), file_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        Ok(page(items, limit, |f: &File| f.current_path.clone()))
    }

    fn batch_files(&self, transfer_id: Uuid, batch: u32, after: Option<&str>, limit: usize) -> PortResult<Page<File>> {
        let limit = limit.max(1);
        let after: Option<i64> = match after {
            None => None,
            Some(a) => Some(a.parse().map_err(|_| PortError::Refused(format!("{a:?} is not a cursor of a batch")))?),
        };
        let items = self.with(|c| {
            let mut stmt = c.prepare_cached(&batch_files_page_sql())?;
            let rows = stmt.query_map(
                params![transfer_id.to_string(), batch as i64, after.unwrap_or(i64::MIN), (limit + 1) as i64],
                file_row,
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        Ok(page(items, limit, |f: &File| f.entry_index.to_string()))
    }
}

impl EventLog for SqliteStateStore {
    fn record_events(&self, events: &[PremisEvent]) -> PortResult<()> {
        let rows = Rows::events(events);
        self.write(|tx| rows.write(tx))
    }

    fn events(&self, transfer_id: Uuid, after: Option<&str>, limit: usize) -> PortResult<Page<PremisEvent>> {
        let limit = limit.max(1);
        let after: i64 = match after {
            None => 0,
            Some(a) => a.parse().map_err(|_| PortError::Refused(format!("{a:?} is not a cursor of events")))?,
        };
        let rows = self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS}, seq FROM events WHERE transfer_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![transfer_id.to_string(), after, (limit + 1) as i64], |r| {
                Ok((event_row(r)?, r.get::<_, i64>(9)?))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let paged = page(rows, limit, |(_, seq)| seq.to_string());
        Ok(Page { items: paged.items.into_iter().map(|(e, _)| e).collect(), next: paged.next })
    }

    fn file_events(&self, transfer_id: Uuid, file_uuid: Uuid) -> PortResult<Vec<PremisEvent>> {
        self.query_events("transfer_id = ?1 AND file_uuid = ?2", &transfer_id.to_string(), Some(&file_uuid.to_string()))
    }

    fn transfer_events(&self, transfer_id: Uuid) -> PortResult<Vec<PremisEvent>> {
        self.query_events("transfer_id = ?1 AND file_uuid IS NULL AND ?2 IS NULL", &transfer_id.to_string(), None)
    }
}

const EVENT_COLUMNS: &str =
    "uuid, transfer_id, file_uuid, event_type, date_time, detail, outcome, outcome_detail, agents";

fn event_row(r: &Row<'_>) -> rusqlite::Result<PremisEvent> {
    Ok(PremisEvent {
        uuid: uuid_at(r, 0)?,
        transfer_id: uuid_at(r, 1)?,
        file_uuid: match r.get::<_, Option<String>>(2)? {
            None => None,
            Some(_) => Some(uuid_at(r, 2)?),
        },
        event_type: word_at(r, 3, |s| s.parse())?,
        date_time: time_at(r, 4)?,
        detail: r.get(5)?,
        outcome: word_at(r, 6, EventOutcome::parse)?,
        outcome_detail: r.get(7)?,
        agents: json_at(r, 8)?,
    })
}

impl SqliteStateStore {
    /// Sets one of the transfer's counts (`column` is one of this file's own names).
    fn set_count(&self, id: Uuid, column: &'static str, count: u64) -> PortResult<()> {
        self.with(|c| {
            c.execute(
                &format!("UPDATE transfers SET {column} = ?2 WHERE id = ?1"),
                params![id.to_string(), count as i64],
            )
        })?;
        Ok(())
    }

    fn query_events(&self, condition: &str, first: &str, second: Option<&str>) -> PortResult<Vec<PremisEvent>> {
        self.with(|c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE {condition} ORDER BY seq"))?;
            let rows = stmt.query_map(params![first, second], event_row)?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What SQLite plans for a statement, on the schema as a data folder has it.
    fn plan(sql: &str) -> String {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        add_missing_columns(&conn).unwrap();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // Parameters left unbound: a plan does not depend on their values.
        let mut rows = stmt.raw_query();
        let mut details = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            details.push(row.get::<_, String>(3).unwrap());
        }
        details.join("; ")
    }

    #[test]
    fn file_pages_seek_the_index_to_the_cursor() {
        let after = plan(&files_page_sql(true));
        assert!(after.contains("files_by_path (transfer_id=? AND current_path>?)"), "{after}");
        let first = plan(&files_page_sql(false));
        assert!(first.contains("files_by_path (transfer_id=?)") && !first.contains("TEMP B-TREE"), "{first}");
        let batch = plan(&batch_files_page_sql());
        assert!(batch.contains("files_by_batch (transfer_id=? AND batch=? AND entry_index>?)"), "{batch}");
    }

    #[test]
    fn transfer_list_pages_seek_an_index_to_the_cursor() {
        let after = plan(&transfer_list_sql(false, true, false));
        assert!(after.contains("transfers_by_time (created_at<?)"), "{after}");
        let by_status = plan(&transfer_list_sql(true, true, true));
        assert!(by_status.contains("transfers_by_status (status=? AND created_at<?)"), "{by_status}");
    }
}
