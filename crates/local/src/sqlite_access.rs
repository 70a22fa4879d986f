//! Users, API keys and sign-in sessions in the embedded mode's SQLite database (the same
//! file as the state), each secret stored as its digest only.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Row};
use vellum_core::model::Timestamp;
use vellum_core::operations::access::{ApiKey, Role, Session, User};
use vellum_core::ports::{AccessStore, PortResult};

use crate::sqlite_pool::open_connection;
use crate::sqlite_state::{err, opt_time_at, time_at, ts};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    email TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    digest TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    user TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS api_keys_by_id ON api_keys (id);
CREATE TABLE IF NOT EXISTS sessions (
    digest TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
"#;

/// Columns added since the first schema: (table, column, how it is added). A row from before
/// has NULL there (a session bound to no key; a user of the role before roles).
const ADDED_COLUMNS: [(&str, &str, &str); 3] = [
    ("sessions", "key_digest", "ALTER TABLE sessions ADD COLUMN key_digest TEXT"),
    ("users", "role", "ALTER TABLE users ADD COLUMN role TEXT"),
    ("users", "identity", "ALTER TABLE users ADD COLUMN identity TEXT"),
];

pub struct SqliteAccessStore {
    conn: Mutex<Connection>,
}

impl SqliteAccessStore {
    pub fn open(path: &Path) -> PortResult<Self> {
        let conn = open_connection(path)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        for (table, column, add) in ADDED_COLUMNS {
            let there: bool = conn
                .prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")
                .and_then(|mut q| q.exists(params![table, column]))
                .map_err(err)?;
            if !there {
                conn.execute_batch(add).map_err(err)?;
            }
        }
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> PortResult<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let result = f(&mut conn).map_err(err);
        crate::lock_wait::released();
        result
    }
}

fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
    let role = match r.get::<_, Option<String>>(3)? {
        None => Role::before_roles(),
        Some(name) => Role::parse(&name).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("no role {name:?}").into(),
            )
        })?,
    };
    Ok(User { name: r.get(0)?, email: r.get(1)?, created_at: time_at(r, 2)?, role, identity: r.get(4)? })
}

fn key_row(r: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        digest: r.get(0)?,
        id: r.get(1)?,
        user: r.get(2)?,
        created_at: time_at(r, 3)?,
        revoked_at: opt_time_at(r, 4)?,
    })
}

const KEY_COLUMNS: &str = "digest, id, user, created_at, revoked_at";

impl AccessStore for SqliteAccessStore {
    fn add_user(&self, user: &User) -> PortResult<bool> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO users (name, email, created_at, role, identity) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![user.name, user.email, ts(&user.created_at), user.role.name(), user.identity],
            )
            .map(|n| n == 1)
        })
    }

    fn remove_user(&self, name: &str) -> PortResult<bool> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM api_keys WHERE user = ?1", params![name])?;
            tx.execute("DELETE FROM sessions WHERE user = ?1", params![name])?;
            let removed = tx.execute("DELETE FROM users WHERE name = ?1", params![name])?;
            tx.commit()?;
            Ok(removed == 1)
        })
    }

    fn user(&self, name: &str) -> PortResult<Option<User>> {
        self.with(|c| {
            c.query_row(
                "SELECT name, email, created_at, role, identity FROM users WHERE name = ?1",
                params![name],
                user_row,
            )
            .optional()
        })
    }

    fn users(&self) -> PortResult<Vec<User>> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT name, email, created_at, role, identity FROM users ORDER BY name")?;
            let rows = stmt.query_map([], user_row)?;
            rows.collect()
        })
    }

    fn add_api_key(&self, key: &ApiKey) -> PortResult<()> {
        self.with(|c| {
            c.execute(
                &format!("INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
                params![key.digest, key.id, key.user, ts(&key.created_at), key.revoked_at.as_ref().map(ts)],
            )
            .map(|_| ())
        })
    }

    fn api_key(&self, digest: &str) -> PortResult<Option<ApiKey>> {
        self.with(|c| {
            c.query_row(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE digest = ?1"), params![digest], key_row)
                .optional()
        })
    }

    fn api_keys(&self) -> PortResult<Vec<ApiKey>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, digest"))?;
            let rows = stmt.query_map([], key_row)?;
            rows.collect()
        })
    }

    fn revoke_api_key(&self, id: &str, at: Timestamp) -> PortResult<bool> {
        self.with(|c| {
            c.execute("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL", params![id, ts(&at)])
                .map(|n| n > 0)
        })
    }

    fn add_session(&self, session: &Session) -> PortResult<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO sessions (digest, user, expires_at, key_digest) VALUES (?1, ?2, ?3, ?4)",
                params![session.digest, session.user, ts(&session.expires_at), session.key_digest],
            )
            .map(|_| ())
        })
    }

    fn session(&self, digest: &str) -> PortResult<Option<Session>> {
        self.with(|c| {
            c.query_row(
                "SELECT digest, user, expires_at, key_digest FROM sessions WHERE digest = ?1",
                params![digest],
                |r| {
                    Ok(Session {
                        digest: r.get(0)?,
                        user: r.get(1)?,
                        expires_at: time_at(r, 2)?,
                        key_digest: r.get(3)?,
                    })
                },
            )
            .optional()
        })
    }

    fn remove_session(&self, digest: &str) -> PortResult<()> {
        self.with(|c| c.execute("DELETE FROM sessions WHERE digest = ?1", params![digest]).map(|_| ()))
    }

    fn purge_sessions(&self, now: Timestamp) -> PortResult<u64> {
        // Times are stored in one fixed-width UTC form: as text they sort as times.
        self.with(|c| c.execute("DELETE FROM sessions WHERE expires_at < ?1", params![ts(&now)]).map(|n| n as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_from_before_bound_sessions_gains_the_key_column_and_keeps_its_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.sqlite");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE sessions (digest TEXT PRIMARY KEY, user TEXT NOT NULL, expires_at TEXT NOT NULL);
             INSERT INTO sessions VALUES ('d', 'archivist', '2099-01-01T00:00:00.000000Z');",
        )
        .unwrap();
        drop(old);
        let store = SqliteAccessStore::open(&path).unwrap();
        let kept = store.session("d").unwrap().expect("the old session is still there");
        assert_eq!((kept.user.as_str(), kept.key_digest), ("archivist", None));
        let bound = Session { digest: "e".into(), key_digest: Some("k".into()), ..kept };
        store.add_session(&bound).unwrap();
        assert_eq!(store.session("e").unwrap(), Some(bound));
        drop(store);
        SqliteAccessStore::open(&path).expect("opened again, the column is not added twice");
    }

    /// A user registered before roles could do everything the dashboard offered: they stay
    /// an operator, not an admin and not a viewer who suddenly cannot retry.
    #[test]
    fn a_user_from_before_roles_is_an_operator() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.sqlite");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE users (name TEXT PRIMARY KEY, email TEXT, created_at TEXT NOT NULL);
             INSERT INTO users VALUES ('archivist', NULL, '2025-01-01T00:00:00.000000Z');",
        )
        .unwrap();
        drop(old);
        let store = SqliteAccessStore::open(&path).unwrap();
        assert_eq!(store.user("archivist").unwrap().unwrap().role, Role::Operator);
        store.with(|c| c.execute("UPDATE users SET role = 'superuser'", [])).unwrap();
        let unreadable = store.user("archivist").expect_err("a role it does not know is not read as another");
        assert!(unreadable.to_string().contains("superuser"), "{unreadable}");
    }
}
