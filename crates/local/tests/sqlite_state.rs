//! What only the SQLite adapter can be asked: a value that cannot be read back fails
//! loudly, and times come from the clock it was given.

use std::sync::Arc;

use chrono::TimeZone;
use uuid::Uuid;
use vellum_core::model::Timestamp;
use vellum_core::ports::{Clock, JobLedger, JobSpec, PortError, TransferOversight, TransferQuery, TransferRegister};
use vellum_local::sqlite_state::SqliteStateStore;

struct Fixed(Timestamp);

impl Clock for Fixed {
    fn now(&self) -> Timestamp {
        self.0
    }
    fn new_id(&self) -> Uuid {
        Uuid::new_v4()
    }
}

fn stored(dir: &std::path::Path, clock: Arc<dyn Clock>) -> (SqliteStateStore, vellum_core::model::Transfer) {
    let s = SqliteStateStore::open_with_clock(&dir.join("state.db"), clock).unwrap();
    let t = vellum_contract::state_store::transfer("loud");
    s.create_transfer("k", &t).unwrap();
    (s, t)
}

fn corrupt(dir: &std::path::Path, sql: &str) {
    let c = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    c.execute_batch(sql).unwrap();
}

#[test]
fn unreadable_values_fail_loudly() {
    let cases = [
        ("UPDATE transfers SET created_at = 'yesterday'", "yesterday"),
        ("UPDATE transfers SET status = 'DONE-ISH'", "DONE-ISH"),
        ("UPDATE transfers SET aip_uuid = 'not-a-uuid'", "not-a-uuid"),
        ("UPDATE transfers SET identifiers = '{broken'", "{broken"),
    ];
    for (sql, shown) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (s, t) = stored(dir.path(), Arc::new(vellum_core::ports::SystemClock));
        corrupt(dir.path(), sql);
        match s.transfer(t.id) {
            Err(PortError::Corrupt(why)) => assert!(why.contains(shown), "{sql}: {why}"),
            other => panic!("{sql}: a bad value read back as {other:?}"),
        }
        let listed = s.list_transfers(&TransferQuery { limit: 10, ..Default::default() });
        assert!(matches!(listed, Err(PortError::Corrupt(_))), "{sql}: {listed:?}");
    }
}

#[test]
fn unreadable_job_status_fails_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let (s, t) = stored(dir.path(), Arc::new(vellum_core::ports::SystemClock));
    s.start_job(t.id, &JobSpec { stage: "scan", microservice_group: "Scan for viruses", name: "Scan for viruses" })
        .unwrap();
    corrupt(dir.path(), "UPDATE jobs SET status = 'MAYBE'");
    assert!(matches!(s.job(t.id, "scan"), Err(PortError::Corrupt(_))));
    assert!(matches!(s.jobs(t.id), Err(PortError::Corrupt(_))));
}

#[test]
fn times_come_from_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let at = chrono::Utc.with_ymd_and_hms(2031, 5, 4, 3, 2, 1).unwrap();
    let (s, t) = stored(dir.path(), Arc::new(Fixed(at)));
    let job = s
        .start_job(t.id, &JobSpec { stage: "scan", microservice_group: "Scan for viruses", name: "Scan for viruses" })
        .unwrap();
    assert_eq!(job.started_at, at);
    s.finish_job(t.id, "scan", vellum_core::model::JobStatus::Completed).unwrap();
    assert_eq!(s.job(t.id, "scan").unwrap().unwrap().ended_at, Some(at));
    s.end_transfer(t.id, vellum_core::model::TransferStatus::Failed, "why").unwrap();
    let ended = s.transfer(t.id).unwrap().unwrap();
    assert_eq!((ended.updated_at, ended.completed_at), (at, Some(at)));
}

/// The SQLite queue keeps the last error of a dead-lettered message: the local runner's
/// monitor tells it on the failed transfer.
#[test]
fn dead_letters_keep_their_last_error() {
    use vellum_core::ports::Queue;
    let dir = tempfile::tempdir().unwrap();
    let q = vellum_local::sqlite_queue::SqliteQueue::open(&dir.path().join("q.db"), 1).unwrap();
    q.send("a", "poison").unwrap();
    let d = q.receive("a", 1, std::time::Duration::from_secs(60)).unwrap().remove(0);
    q.nack("a", &d.receipt, std::time::Duration::ZERO, "the reason").unwrap();
    assert!(q.receive("a", 1, std::time::Duration::from_secs(60)).unwrap().is_empty());
    assert_eq!(q.dead_letters("a").unwrap()[0].last_error.as_deref(), Some("the reason"));
}
