//! The state store on SQLite: the same domain operations and guarantees as the DynamoDB
//! table, each in one transaction.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use uuid::Uuid;
use vellum_core::model::{
    EventOutcome, File, FilePatch, FileUse, Identifiers, Job, JobStatus, PremisEvent, StoredAip, Task, Timestamp,
    Transfer, TransferStatus,
};
use vellum_core::ports::{BatchRecorded, ExtractCheckpoint, JobSpec, PortError, PortResult, StateStore};

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
CREATE INDEX IF NOT EXISTS files_by_batch ON files (transfer_id, batch);
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

fn err(e: rusqlite::Error) -> PortError {
    PortError::Unavailable(format!("sqlite: {e}"))
}

fn ts(t: &Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn parse_ts(s: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).unwrap_or_default()
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap_or_default()
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("state values serialize")
}

/// Opens a SQLite database the way every embedded adapter wants it: WAL, a busy timeout,
/// and foreign processes (a CLI reading while `serve` runs) welcome.
pub fn open_connection(path: &Path) -> PortResult<Connection> {
    let conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
    Ok(conn)
}

pub struct SqliteStateStore {
    conn: Mutex<Connection>,
}

impl SqliteStateStore {
    pub fn open(path: &Path) -> PortResult<Self> {
        let conn = open_connection(path)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> PortResult<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(err)
    }

    /// The transfer an upload event created, if any.
    pub fn transfer_for_event(&self, idempotency_key: &str) -> PortResult<Option<Uuid>> {
        self.with(|c| {
            c.query_row("SELECT transfer_id FROM idempotency WHERE key = ?1", [idempotency_key], |r| {
                r.get::<_, String>(0)
            })
            .optional()
        })
        .map(|o| o.map(|s| uuid(&s)))
    }
}

const TRANSFER_COLUMNS: &str = "id, name, source_bucket, source_key, profile, identifiers, status, \
    current_microservice, sip_uuid, aip_uuid, failure_reason, file_count, batch_count, aip_key, \
    aip_version, created_at, updated_at, completed_at, source_event_time, event_key";

fn transfer_row(r: &Row<'_>) -> rusqlite::Result<Transfer> {
    Ok(Transfer {
        id: uuid(&r.get::<_, String>(0)?),
        name: r.get(1)?,
        source_bucket: r.get(2)?,
        source_key: r.get(3)?,
        profile: r.get(4)?,
        identifiers: serde_json::from_str::<Identifiers>(&r.get::<_, String>(5)?).unwrap_or_default(),
        status: TransferStatus::parse(&r.get::<_, String>(6)?).unwrap_or(TransferStatus::Failed),
        current_microservice: r.get(7)?,
        sip_uuid: uuid(&r.get::<_, String>(8)?),
        aip_uuid: uuid(&r.get::<_, String>(9)?),
        failure_reason: r.get(10)?,
        file_count: r.get::<_, i64>(11)? as u64,
        batch_count: r.get::<_, i64>(12)? as u32,
        aip_key: r.get(13)?,
        aip_version: r.get::<_, Option<i64>>(14)?.map(|v| v as u32),
        created_at: parse_ts(&r.get::<_, String>(15)?),
        updated_at: parse_ts(&r.get::<_, String>(16)?),
        completed_at: r.get::<_, Option<String>>(17)?.map(|s| parse_ts(&s)),
        source_event_time: r.get(18)?,
        event_key: r.get(19)?,
    })
}

const JOB_COLUMNS: &str =
    "uuid, transfer_id, stage, microservice_group, name, status, started_at, ended_at, batches_done";

fn job_row(r: &Row<'_>) -> rusqlite::Result<Job> {
    Ok(Job {
        uuid: uuid(&r.get::<_, String>(0)?),
        transfer_id: uuid(&r.get::<_, String>(1)?),
        stage: r.get(2)?,
        microservice_group: r.get(3)?,
        name: r.get(4)?,
        status: JobStatus::parse(&r.get::<_, String>(5)?).unwrap_or(JobStatus::Failed),
        started_at: parse_ts(&r.get::<_, String>(6)?),
        ended_at: r.get::<_, Option<String>>(7)?.map(|s| parse_ts(&s)),
        batches_done: r.get::<_, i64>(8)? as u32,
    })
}

const FILE_COLUMNS: &str = "uuid, transfer_id, batch, entry_index, file_use, original_path, \
    current_path, size, checksums, format, modified, characteristics";

fn file_row(r: &Row<'_>) -> rusqlite::Result<File> {
    Ok(File {
        uuid: uuid(&r.get::<_, String>(0)?),
        transfer_id: uuid(&r.get::<_, String>(1)?),
        batch: r.get::<_, i64>(2)? as u32,
        entry_index: r.get::<_, i64>(3)? as u64,
        file_use: FileUse::parse(&r.get::<_, String>(4)?).unwrap_or(FileUse::Original),
        original_path: r.get(5)?,
        current_path: r.get(6)?,
        size: r.get::<_, i64>(7)? as u64,
        checksums: serde_json::from_str(&r.get::<_, String>(8)?).unwrap_or_default(),
        format: r.get::<_, Option<String>>(9)?.and_then(|s| serde_json::from_str(&s).ok()),
        modified: r.get::<_, Option<String>>(10)?.map(|s| parse_ts(&s)),
        characteristics: serde_json::from_str(&r.get::<_, String>(11)?).unwrap_or_default(),
    })
}

fn insert_events(tx: &Transaction<'_>, events: &[PremisEvent]) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO events (uuid, transfer_id, file_uuid, event_type, date_time, detail, \
         outcome, outcome_detail, agents) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for e in events {
        stmt.execute(params![
            e.uuid.to_string(),
            e.transfer_id.to_string(),
            e.file_uuid.map(|u| u.to_string()),
            e.event_type,
            ts(&e.date_time),
            e.detail,
            e.outcome.as_str(),
            e.outcome_detail,
            json(&e.agents),
        ])?;
    }
    Ok(())
}

fn read_checkpoint(tx: &Connection, id: Uuid) -> rusqlite::Result<Option<ExtractCheckpoint>> {
    tx.query_row(
        "SELECT extract_next_entry, batch_count, file_count, extract_done FROM transfers WHERE id = ?1",
        [id.to_string()],
        |r| {
            Ok(ExtractCheckpoint {
                next_entry: r.get::<_, i64>(0)? as u64,
                batches: r.get::<_, i64>(1)? as u32,
                files: r.get::<_, i64>(2)? as u64,
                done: r.get::<_, i64>(3)? != 0,
            })
        },
    )
    .optional()
}

impl StateStore for SqliteStateStore {
    fn create_transfer(&self, idempotency_key: &str, t: &Transfer) -> PortResult<(Transfer, bool)> {
        let existing = self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let prior: Option<String> = tx
                .query_row("SELECT transfer_id FROM idempotency WHERE key = ?1", [idempotency_key], |r| r.get(0))
                .optional()?;
            if let Some(prior) = prior {
                return Ok(Some(prior));
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
            tx.commit()?;
            Ok(None)
        })?;
        match existing {
            None => Ok((t.clone(), true)),
            Some(prior) => {
                let prior =
                    self.transfer(uuid(&prior))?.ok_or_else(|| PortError::NotFound(format!("transfer {prior}")))?;
                Ok((prior, false))
            }
        }
    }

    fn transfer(&self, id: Uuid) -> PortResult<Option<Transfer>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = ?1"),
                [id.to_string()],
                transfer_row,
            )
            .optional()
        })
    }

    fn list_transfers(&self, limit: usize) -> PortResult<Vec<Transfer>> {
        self.with(|c| {
            let mut stmt =
                c.prepare(&format!("SELECT {TRANSFER_COLUMNS} FROM transfers ORDER BY created_at DESC, id LIMIT ?1"))?;
            let rows = stmt.query_map([limit as i64], transfer_row)?;
            rows.collect()
        })
    }

    fn set_identifiers(&self, id: Uuid, identifiers: &Identifiers) -> PortResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE transfers SET identifiers = ?2, updated_at = ?3 WHERE id = ?1",
                params![id.to_string(), json(identifiers), ts(&Utc::now())],
            )
        })?;
        Ok(())
    }

    fn set_microservice(&self, id: Uuid, microservice: &str) -> PortResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE transfers SET current_microservice = ?2, updated_at = ?3 WHERE id = ?1 AND status = 'PROCESSING'",
                params![id.to_string(), microservice, ts(&Utc::now())],
            )
        })?;
        Ok(())
    }

    fn end_transfer(&self, id: Uuid, status: TransferStatus, reason: &str) -> PortResult<bool> {
        let now = ts(&Utc::now());
        let n = self.with(|c| {
            c.execute(
                "UPDATE transfers SET status = ?2, failure_reason = ?3, updated_at = ?4, completed_at = ?4 \
                 WHERE id = ?1 AND status = 'PROCESSING'",
                params![id.to_string(), status.as_str(), reason, now],
            )
        })?;
        Ok(n == 1)
    }

    fn complete_transfer(&self, id: Uuid, aip: &StoredAip) -> PortResult<bool> {
        let now = ts(&Utc::now());
        let n = self.with(|c| {
            c.execute(
                "UPDATE transfers SET status = 'COMPLETE', aip_key = ?2, aip_version = ?3, aip_space = ?4, \
                 updated_at = ?5, completed_at = ?5 WHERE id = ?1 AND status = 'PROCESSING'",
                params![id.to_string(), aip.key, aip.version as i64, aip.space, now],
            )
        })?;
        Ok(n == 1)
    }

    fn start_job(&self, transfer_id: Uuid, spec: &JobSpec<'_>) -> PortResult<Job> {
        let tid = transfer_id.to_string();
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let existing = tx
                .query_row(
                    &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE transfer_id = ?1 AND stage = ?2"),
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
                started_at: Utc::now(),
                ended_at: None,
                batches_done: 0,
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
            tx.commit()?;
            Ok(job)
        })
    }

    fn finish_job(&self, transfer_id: Uuid, stage: &str, status: JobStatus) -> PortResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET status = ?3, ended_at = COALESCE(ended_at, ?4) \
                 WHERE transfer_id = ?1 AND stage = ?2 AND status = 'PROCESSING'",
                params![transfer_id.to_string(), stage, status.as_str(), ts(&Utc::now())],
            )
        })?;
        Ok(())
    }

    fn job(&self, transfer_id: Uuid, stage: &str) -> PortResult<Option<Job>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE transfer_id = ?1 AND stage = ?2"),
                params![transfer_id.to_string(), stage],
                job_row,
            )
            .optional()
        })
    }

    fn jobs(&self, transfer_id: Uuid) -> PortResult<Vec<Job>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE transfer_id = ?1 ORDER BY seq"))?;
            let rows = stmt.query_map([transfer_id.to_string()], job_row)?;
            rows.collect()
        })
    }

    fn tasks(&self, job_uuid: Uuid) -> PortResult<Vec<Task>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT uuid, job_uuid, file_uuid, exit_code, started_at, ended_at, stdout, stderr \
                 FROM tasks WHERE job_uuid = ?1 ORDER BY started_at, uuid",
            )?;
            let rows = stmt.query_map([job_uuid.to_string()], |r| {
                Ok(Task {
                    uuid: uuid(&r.get::<_, String>(0)?),
                    job_uuid: uuid(&r.get::<_, String>(1)?),
                    file_uuid: uuid(&r.get::<_, String>(2)?),
                    exit_code: r.get(3)?,
                    started_at: parse_ts(&r.get::<_, String>(4)?),
                    ended_at: parse_ts(&r.get::<_, String>(5)?),
                    stdout: r.get(6)?,
                    stderr: r.get(7)?,
                })
            })?;
            rows.collect()
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
        let n = self.with(|c| {
            c.execute(
                "UPDATE jobs SET checkpoint = ?4 WHERE transfer_id = ?1 AND stage = ?2 AND checkpoint IS ?3",
                params![transfer_id.to_string(), stage, expected, next],
            )
        })?;
        if n == 1 {
            Ok(())
        } else {
            Err(PortError::Conflict(format!("the {stage} checkpoint of {transfer_id} moved")))
        }
    }

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
        let outcome = self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let Some(current) = read_checkpoint(&tx, transfer_id)? else {
                return Ok(Err(PortError::NotFound(format!("transfer {transfer_id}"))));
            };
            if current != *from || current.done {
                return Ok(Err(PortError::Conflict(format!(
                    "extraction checkpoint moved from {from:?} to {current:?}"
                ))));
            }
            {
                let mut stmt = tx.prepare_cached(&format!(
                    "INSERT OR IGNORE INTO files ({FILE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                ))?;
                for f in files {
                    stmt.execute(params![
                        f.uuid.to_string(),
                        tid,
                        from.batches as i64,
                        f.entry_index as i64,
                        f.file_use.as_str(),
                        f.original_path,
                        f.current_path,
                        f.size as i64,
                        json(&f.checksums),
                        f.format.as_ref().map(json),
                        f.modified.as_ref().map(ts),
                        json(&f.characteristics),
                    ])?;
                }
            }
            insert_events(&tx, events)?;
            let next = ExtractCheckpoint {
                next_entry,
                batches: from.batches + u32::from(!files.is_empty()),
                files: from.files + files.len() as u64,
                done: false,
            };
            tx.execute(
                "UPDATE transfers SET extract_next_entry = ?2, batch_count = ?3, file_count = ?4, updated_at = ?5 WHERE id = ?1",
                params![tid, next.next_entry as i64, next.batches as i64, next.files as i64, ts(&Utc::now())],
            )?;
            tx.commit()?;
            Ok(Ok(next))
        })?;
        outcome
    }

    fn finish_extract(&self, transfer_id: Uuid) -> PortResult<ExtractCheckpoint> {
        self.with(|c| {
            c.execute("UPDATE transfers SET extract_done = 1 WHERE id = ?1", [transfer_id.to_string()])?;
            read_checkpoint(c, transfer_id)
        })?
        .ok_or_else(|| PortError::NotFound(format!("transfer {transfer_id}")))
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
        let tid = transfer_id.to_string();
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let newly_recorded = tx.execute(
                "INSERT OR IGNORE INTO batches (transfer_id, stage, batch, recorded_at) VALUES (?1, ?2, ?3, ?4)",
                params![tid, stage, batch as i64, ts(&Utc::now())],
            )? == 1;
            if newly_recorded {
                {
                    let mut stmt = tx.prepare_cached(
                        "INSERT OR IGNORE INTO tasks (uuid, job_uuid, file_uuid, exit_code, started_at, ended_at, stdout, stderr) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?;
                    for t in tasks {
                        stmt.execute(params![
                            t.uuid.to_string(),
                            t.job_uuid.to_string(),
                            t.file_uuid.to_string(),
                            t.exit_code,
                            ts(&t.started_at),
                            ts(&t.ended_at),
                            t.stdout,
                            t.stderr
                        ])?;
                    }
                }
                insert_events(&tx, events)?;
                for p in patches {
                    let (checksums, format, characteristics): (String, Option<String>, String) = tx.query_row(
                        "SELECT checksums, format, characteristics FROM files WHERE uuid = ?1",
                        [p.uuid.to_string()],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )?;
                    let mut merged: std::collections::BTreeMap<String, String> =
                        serde_json::from_str(&checksums).unwrap_or_default();
                    merged.extend(p.checksums.clone());
                    let mut traits: std::collections::BTreeMap<String, String> =
                        serde_json::from_str(&characteristics).unwrap_or_default();
                    traits.extend(p.characteristics.clone());
                    let format = p.format.as_ref().map(json).or(format);
                    tx.execute(
                        "UPDATE files SET checksums = ?2, format = ?3, size = COALESCE(?4, size), characteristics = ?5 WHERE uuid = ?1",
                        params![p.uuid.to_string(), json(&merged), format, p.size.map(|s| s as i64), json(&traits)],
                    )?;
                }
                tx.execute(
                    "UPDATE jobs SET batches_done = batches_done + 1 WHERE transfer_id = ?1 AND stage = ?2",
                    params![tid, stage],
                )?;
            }
            let done: i64 = tx.query_row(
                "SELECT COUNT(*) FROM batches WHERE transfer_id = ?1 AND stage = ?2",
                params![tid, stage],
                |r| r.get(0),
            )?;
            let (total, extract_done): (i64, i64) = tx.query_row(
                "SELECT batch_count, extract_done FROM transfers WHERE id = ?1",
                [&tid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            tx.commit()?;
            Ok(BatchRecorded { newly_recorded, stage_complete: extract_done == 1 && done >= total })
        })
    }

    fn record_events(&self, events: &[PremisEvent]) -> PortResult<()> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            insert_events(&tx, events)?;
            tx.commit()
        })
    }

    fn files(&self, transfer_id: Uuid) -> PortResult<Vec<File>> {
        self.with(|c| {
            let mut stmt =
                c.prepare(&format!("SELECT {FILE_COLUMNS} FROM files WHERE transfer_id = ?1 ORDER BY entry_index"))?;
            let rows = stmt.query_map([transfer_id.to_string()], file_row)?;
            rows.collect()
        })
    }

    fn batch_files(&self, transfer_id: Uuid, batch: u32) -> PortResult<Vec<File>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {FILE_COLUMNS} FROM files WHERE transfer_id = ?1 AND batch = ?2 ORDER BY entry_index"
            ))?;
            let rows = stmt.query_map(params![transfer_id.to_string(), batch as i64], file_row)?;
            rows.collect()
        })
    }

    fn events(&self, transfer_id: Uuid) -> PortResult<Vec<PremisEvent>> {
        self.query_events("transfer_id = ?1", &transfer_id.to_string())
    }

    fn file_events(&self, transfer_id: Uuid, file_uuid: Uuid) -> PortResult<Vec<PremisEvent>> {
        let mut events = self.query_events("file_uuid = ?1", &file_uuid.to_string())?;
        events.retain(|e| e.transfer_id == transfer_id);
        Ok(events)
    }

    fn transfer_events(&self, transfer_id: Uuid) -> PortResult<Vec<PremisEvent>> {
        self.query_events("transfer_id = ?1 AND file_uuid IS NULL", &transfer_id.to_string())
    }

    fn assign_aip_version(&self, transfer_id: Uuid, space: &str, identifier: &str) -> PortResult<u32> {
        let tid = transfer_id.to_string();
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let assigned: Option<i64> = tx
                .query_row("SELECT aip_version FROM transfers WHERE id = ?1", [&tid], |r| r.get(0))
                .optional()?
                .flatten();
            if let Some(v) = assigned {
                return Ok(v as u32);
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
            tx.commit()?;
            Ok(version as u32)
        })
    }
}

impl SqliteStateStore {
    fn query_events(&self, condition: &str, value: &str) -> PortResult<Vec<PremisEvent>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT uuid, transfer_id, file_uuid, event_type, date_time, detail, outcome, outcome_detail, agents \
                 FROM events WHERE {condition} ORDER BY seq"
            ))?;
            let rows = stmt.query_map([value], |r| {
                Ok(PremisEvent {
                    uuid: uuid(&r.get::<_, String>(0)?),
                    transfer_id: uuid(&r.get::<_, String>(1)?),
                    file_uuid: r.get::<_, Option<String>>(2)?.map(|s| uuid(&s)),
                    event_type: r.get(3)?,
                    date_time: parse_ts(&r.get::<_, String>(4)?),
                    detail: r.get(5)?,
                    outcome: EventOutcome::parse(&r.get::<_, String>(6)?),
                    outcome_detail: r.get(7)?,
                    agents: serde_json::from_str(&r.get::<_, String>(8)?).unwrap_or_default(),
                })
            })?;
            rows.collect()
        })
    }
}
