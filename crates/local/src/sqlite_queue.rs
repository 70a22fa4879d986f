//! Queues on SQLite with SQS's semantics: at-least-once delivery, a visibility timeout as a
//! lease, a receive count, and a dead-letter table for messages received too often.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use chrono::Utc;
use rusqlite::{params, Connection, OptionalExtension};
use vellum_core::ports::{DeadLetter, Delivery, PortError, PortResult, Queue};

use crate::sqlite_pool::{open_connection, ConnectionPool};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS queue_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    last_error TEXT,
    sent_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_ready ON queue_messages (queue, visible_at, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    receive_count INTEGER NOT NULL,
    last_error TEXT,
    moved_at INTEGER NOT NULL
);
"#;

fn err(e: rusqlite::Error) -> PortError {
    PortError::Unavailable(format!("sqlite queue: {e}"))
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub struct SqliteQueue {
    connections: ConnectionPool,
    max_receives: u32,
    /// Sends to each queue, counted, so that idle consumers of that queue in this process
    /// wake at once (and those of other queues do not read the table for nothing).
    sent: (Mutex<HashMap<String, u64>>, Condvar),
}

impl SqliteQueue {
    /// `max_receives` is SQS's maxReceiveCount: a message received that many times without
    /// being acknowledged goes to the dead-letter table on its next receive.
    pub fn open(path: &Path, max_receives: u32) -> PortResult<Self> {
        let conn = open_connection(path)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Self {
            connections: ConnectionPool::new(path, conn),
            max_receives: max_receives.max(1),
            sent: (Mutex::new(HashMap::new()), Condvar::new()),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> PortResult<T> {
        self.connections.with(err, f)
    }

    fn count_send(&self, queue: &str) {
        let (lock, cv) = &self.sent;
        *lock.lock().unwrap_or_else(|p| p.into_inner()).entry(queue.to_string()).or_default() += 1;
        cv.notify_all();
    }

    /// Waits until something is sent to `queue` in this process, or `timeout` passes (sends
    /// from other processes are seen at the next poll).
    pub fn wait_for_send(&self, queue: &str, seen: u64, timeout: Duration) -> u64 {
        let (lock, cv) = &self.sent;
        let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let sent = |counts: &HashMap<String, u64>| counts.get(queue).copied().unwrap_or(0);
        let (guard, _) =
            cv.wait_timeout_while(guard, timeout, |counts| sent(counts) == seen).unwrap_or_else(|p| p.into_inner());
        sent(&guard)
    }

    pub fn sends_seen(&self, queue: &str) -> u64 {
        self.sent.0.lock().unwrap_or_else(|p| p.into_inner()).get(queue).copied().unwrap_or(0)
    }

    /// Dead letters of every queue after sequence number `after`, with their sequence
    /// numbers: the monitor's cursor.
    pub fn dead_letters_after(&self, after: i64) -> PortResult<Vec<(i64, DeadLetter)>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT seq, message_id, queue, body, receive_count, last_error FROM dead_letters WHERE seq > ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map([after], |r| {
                Ok((
                    r.get(0)?,
                    DeadLetter {
                        message_id: r.get(1)?,
                        queue: r.get(2)?,
                        body: r.get(3)?,
                        receive_count: r.get::<_, i64>(4)? as u32,
                        last_error: r.get(5)?,
                    },
                ))
            })?;
            rows.collect()
        })
    }
}

impl Queue for SqliteQueue {
    fn send_batch(&self, queue: &str, bodies: &[String]) -> PortResult<()> {
        let now = now_ms();
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO queue_messages (message_id, queue, body, visible_at, sent_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                )?;
                for body in bodies {
                    stmt.execute(params![uuid::Uuid::new_v4().to_string(), queue, body, now])?;
                }
            }
            tx.commit()
        })?;
        self.count_send(queue);
        Ok(())
    }

    fn receive(&self, queue: &str, max: usize, visibility: Duration) -> PortResult<Vec<Delivery>> {
        let now = now_ms();
        let until = now + visibility.as_millis() as i64;
        let max_receives = self.max_receives as i64;
        self.with(|c| {
            // A look first, without the write lock: a send wakes every idle consumer of its
            // queue, and all but one of them find nothing.
            let ready: bool = c
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM queue_messages WHERE queue = ?1 AND visible_at <= ?2)")?
                .query_row(params![queue, now], |r| r.get(0))?;
            if !ready {
                return Ok(Vec::new());
            }
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT OR IGNORE INTO dead_letters (message_id, queue, body, receive_count, last_error, moved_at) \
                 SELECT message_id, queue, body, receive_count, last_error, ?3 FROM queue_messages \
                 WHERE queue = ?1 AND visible_at <= ?3 AND receive_count >= ?2",
                params![queue, max_receives, now],
            )?;
            tx.execute(
                "DELETE FROM queue_messages WHERE queue = ?1 AND visible_at <= ?3 AND receive_count >= ?2",
                params![queue, max_receives, now],
            )?;
            let picked: Vec<(i64, String, String, i64)> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT seq, message_id, body, receive_count FROM queue_messages \
                     WHERE queue = ?1 AND visible_at <= ?2 ORDER BY seq LIMIT ?3",
                )?;
                let rows = stmt.query_map(params![queue, now, max as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut out = Vec::with_capacity(picked.len());
            for (seq, message_id, body, count) in picked {
                let receipt = uuid::Uuid::new_v4().to_string();
                tx.execute(
                    "UPDATE queue_messages SET receipt = ?2, visible_at = ?3, receive_count = receive_count + 1 WHERE seq = ?1",
                    params![seq, receipt, until],
                )?;
                out.push(Delivery { message_id, receipt, body, receive_count: count as u32 + 1 });
            }
            tx.commit()?;
            Ok(out)
        })
    }

    fn ack(&self, _queue: &str, receipt: &str) -> PortResult<()> {
        self.with(|c| c.execute("DELETE FROM queue_messages WHERE receipt = ?1", [receipt]))?;
        Ok(())
    }

    fn nack(&self, _queue: &str, receipt: &str, delay: Duration, error: &str) -> PortResult<()> {
        let at = now_ms() + delay.as_millis() as i64;
        self.with(|c| {
            c.execute(
                "UPDATE queue_messages SET visible_at = ?2, last_error = ?3, receipt = NULL WHERE receipt = ?1",
                params![receipt, at, error],
            )
        })?;
        Ok(())
    }

    fn extend(&self, _queue: &str, receipt: &str, visibility: Duration) -> PortResult<()> {
        let at = now_ms() + visibility.as_millis() as i64;
        self.with(|c| c.execute("UPDATE queue_messages SET visible_at = ?2 WHERE receipt = ?1", params![receipt, at]))?;
        Ok(())
    }

    fn dead_letters(&self, queue: &str) -> PortResult<Vec<DeadLetter>> {
        Ok(self.dead_letters_after(0)?.into_iter().map(|(_, d)| d).filter(|d| d.queue == queue).collect())
    }

    fn dead_letter_count(&self, queue: &str) -> PortResult<u64> {
        self.with(|c| {
            c.query_row("SELECT COUNT(*) FROM dead_letters WHERE queue = ?1", [queue], |r| r.get::<_, i64>(0))
        })
        .map(|n| n as u64)
    }

    fn redrive(&self, queue: &str) -> PortResult<usize> {
        let now = now_ms();
        let moved = self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let moved = tx.execute(
                "INSERT OR IGNORE INTO queue_messages (message_id, queue, body, visible_at, sent_at) \
                 SELECT message_id, queue, body, ?2, ?2 FROM dead_letters WHERE queue = ?1",
                params![queue, now],
            )?;
            tx.execute("DELETE FROM dead_letters WHERE queue = ?1", [queue])?;
            tx.commit()?;
            Ok(moved)
        })?;
        self.count_send(queue);
        Ok(moved)
    }

    fn depth(&self, queue: &str) -> PortResult<u64> {
        self.with(|c| {
            c.query_row("SELECT COUNT(*) FROM queue_messages WHERE queue = ?1", [queue], |r| r.get::<_, i64>(0))
                .optional()
        })
        .map(|n| n.unwrap_or(0) as u64)
    }
}
