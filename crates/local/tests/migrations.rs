//! The embedded state's schema migrations: a database the first release wrote (schema 1)
//! opens in this one, its records read back whole with the new fields at their defaults,
//! and is marked schema 2; a database from a newer release is refused, not misread.

use uuid::Uuid;
use vellum_core::ports::{JobLedger, PortError, TransferRegister};
use vellum_local::sqlite_state::{SqliteStateStore, SCHEMA_VERSION};

fn version(path: &std::path::Path) -> i64 {
    rusqlite::Connection::open(path).unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap()
}

#[test]
fn a_first_release_database_opens_and_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vellum.db");
    let old = rusqlite::Connection::open(&db).unwrap();
    old.execute_batch(include_str!("fixtures/state-schema-v1.sql")).unwrap();
    drop(old);
    assert_eq!(version(&db), 0, "the first release set no version");

    let state = SqliteStateStore::open(&db).unwrap();
    let id = Uuid::parse_str("6f1c1a4e-2f5b-4d7e-9a51-3c8e2b7d9f10").unwrap();
    let t = state.transfer(id).unwrap().expect("the old transfer reads back");
    assert_eq!(t.identifiers.catalogue_identifier.as_deref(), Some("PP/V1/1"));
    assert!(!t.hidden && t.stuck_since.is_none());
    let job = state.job(id, "checksum").unwrap().unwrap();
    assert!(job.last_error.is_none() && job.progressed_at.is_none());
    let tasks = state.tasks(job.uuid).unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].file_name, "");
    assert_eq!(version(&db), SCHEMA_VERSION);
    // The new columns work on the old rows.
    state.note_job_error(id, "checksum", "clamd did not answer").unwrap();
    assert_eq!(state.job(id, "checksum").unwrap().unwrap().last_error.as_deref(), Some("clamd did not answer"));
    drop(state);
    // Opening again changes nothing.
    SqliteStateStore::open(&db).unwrap();
    assert_eq!(version(&db), SCHEMA_VERSION);
}

#[test]
fn a_database_from_a_newer_release_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vellum.db");
    drop(SqliteStateStore::open(&db).unwrap());
    rusqlite::Connection::open(&db).unwrap().pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
    match SqliteStateStore::open(&db) {
        Err(PortError::Corrupt(why)) => assert!(why.contains("written by a newer Vellum"), "{why}"),
        Err(other) => panic!("refused, but not as unreadable state: {other}"),
        Ok(_) => panic!("a newer schema was opened"),
    }
}
