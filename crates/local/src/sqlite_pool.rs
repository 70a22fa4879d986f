//! Connections to one SQLite file, kept for reuse: a thread takes one (or opens one) for
//! each operation, so readers never wait for one another and a writer waits only for
//! SQLite's write lock (`lock_wait`), never for another thread's turn at a shared
//! connection (the queue's one connection behind a mutex made every send, receive and
//! acknowledgement wait for whichever state write its holder was waiting on).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;
use vellum_core::ports::{PortError, PortResult};

/// More idle connections than this are closed rather than kept.
const MAX_IDLE: usize = 8;

pub struct ConnectionPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ConnectionPool {
    /// A pool for the file `first` was opened on, starting with `first`.
    pub fn new(path: &Path, first: Connection) -> Self {
        Self { path: path.to_path_buf(), idle: Mutex::new(vec![first]) }
    }

    /// Runs `f` on a connection of its own; SQLite's errors are mapped by `map`.
    pub fn with<T>(
        &self,
        map: fn(rusqlite::Error) -> PortError,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> PortResult<T> {
        let taken = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match taken {
            Some(c) => c,
            None => open_connection(&self.path)?,
        };
        let result = f(&mut conn).map_err(map);
        crate::lock_wait::released();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        result
    }
}

/// Opens a SQLite database the way every embedded adapter wants it: WAL, a wait for the
/// write lock (`lock_wait`), and foreign processes (a CLI reading while `serve` runs) welcome.
/// Whoever uses the connection calls `lock_wait::released` when done with it.
pub fn open_connection(path: &Path) -> PortResult<Connection> {
    let err = |e: rusqlite::Error| PortError::Unavailable(format!("sqlite {}: {e}", path.display()));
    let mut conn = Connection::open(path).map_err(err)?;
    conn.busy_handler(Some(crate::lock_wait::busy)).map_err(err)?;
    // One plan a statement, whatever is bound to it. Without this, the bundled SQLite (built
    // with STAT4) marks a cached statement to be prepared again whenever a parameter its
    // plan looked at is bound anew: the METS stage's reading of each file's events spent
    // 44 % of its time preparing the same SELECT again (perf, 20,000 files).
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
    Ok(conn)
}
