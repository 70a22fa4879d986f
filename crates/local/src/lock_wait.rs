//! Waiting for the database's write lock. SQLite's own busy timeout sleeps 1, 2, 5 … 100 ms
//! between tries, blind to when the lock is let go: with a worker a stage writing to one
//! file, most of the per-file stages' time went to those sleeps (20,000 tiny files: ~9,400
//! sleeps, 74 s of threads' time, the two cores half idle). A connection here waits instead
//! until a connection in this process has finished with the database, and tries again at
//! once; another process holding the lock (a CLI beside `serve`) is still seen, by trying
//! again every `POLL`.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a connection waits for the lock in all before it gives up with SQLITE_BUSY.
pub const LIMIT: Duration = Duration::from_secs(30);

/// The longest wait between tries: a lock held by another process is not announced here.
const POLL: Duration = Duration::from_millis(2);

/// Bumped each time a connection of this process is done with the database.
static RELEASES: (Mutex<u64>, Condvar) = (Mutex::new(0), Condvar::new());
/// Connections waiting now, so that finishing costs one atomic read when nobody waits.
static WAITING: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// When this thread's current wait began.
    static SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Says that a connection of this process is done with the database (its statement or its
/// transaction ended, so any lock it held is let go).
pub fn released() {
    if WAITING.load(Ordering::SeqCst) == 0 {
        return;
    }
    let (count, cv) = &RELEASES;
    *count.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    cv.notify_all();
}

/// SQLite's busy handler: `tries` is how many times it was called for this lock before.
/// True to try again, false to give up.
pub fn busy(tries: i32) -> bool {
    let now = Instant::now();
    let since = SINCE.with(|s| {
        let since = match s.get() {
            Some(t) if tries > 0 => t,
            _ => now,
        };
        s.set(Some(since));
        since
    });
    if now.duration_since(since) >= LIMIT {
        return false;
    }
    let (count, cv) = &RELEASES;
    WAITING.fetch_add(1, Ordering::SeqCst);
    let guard = count.lock().unwrap_or_else(|p| p.into_inner());
    let seen = *guard;
    let wait = POLL.min(LIMIT - now.duration_since(since));
    drop(cv.wait_timeout_while(guard, wait, |n| *n == seen).unwrap_or_else(|p| p.into_inner()));
    WAITING.fetch_sub(1, Ordering::SeqCst);
    true
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rusqlite::{Connection, TransactionBehavior};

    use super::*;

    fn open(path: &std::path::Path) -> Connection {
        let mut conn = Connection::open(path).unwrap();
        conn.busy_handler(Some(busy)).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn
    }

    /// A writer held up by another connection of this process waits, and writes once that
    /// one lets go.
    #[test]
    fn a_writer_waits_for_the_lock_and_writes_when_it_is_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut holder = open(&path);
        holder.execute_batch("CREATE TABLE t (n INTEGER)").unwrap();
        let tx = holder.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
        tx.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let waiter = std::thread::spawn({
            let path = path.clone();
            move || {
                let conn = open(&path);
                let started = Instant::now();
                conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
                started.elapsed()
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        tx.commit().unwrap();
        released();
        let waited = waiter.join().unwrap();
        assert!(waited >= Duration::from_millis(100), "the writer did not wait for the lock: {waited:?}");
        let rows: i64 = holder.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 2);
    }

    /// A lock that is never let go ends the wait with SQLITE_BUSY at the limit, not never.
    #[test]
    fn a_wait_gives_up_when_its_time_is_over() {
        SINCE.with(|s| s.set(Some(Instant::now() - LIMIT)));
        assert!(!busy(1), "a wait past its limit went on");
        assert!(busy(0), "a new wait was refused");
    }
}
