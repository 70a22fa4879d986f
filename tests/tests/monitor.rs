//! The monitor's duties with a clock the test sets: a stuck transfer is flagged once (and
//! again only after it moved and stopped again), the report over a fixed set of transfers is
//! exactly as expected, and the clean-up removes only uploads whose AIP is stored.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;
use vellum_core::model::{CatalogueIdentifiers, Stage, StoredAip, Transfer, TransferStatus};
use vellum_core::operations::monitor;
use vellum_core::ports::{
    Clock, EventLog, FileCatalogue, JobLedger, JobSpec, ObjectStore, TransferOversight, TransferRegister,
};
use vellum_local::fs_store::FsObjectStore;
use vellum_local::sqlite_state::SqliteStateStore;

struct SetClock(Mutex<DateTime<Utc>>);

impl SetClock {
    fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }
}

impl Clock for SetClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
    fn new_id(&self) -> Uuid {
        Uuid::new_v4()
    }
}

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
}

struct World {
    _dir: tempfile::TempDir,
    clock: Arc<SetClock>,
    state: SqliteStateStore,
    uploads: FsObjectStore,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(SetClock(Mutex::new(at(1, 9))));
    let state = SqliteStateStore::open_with_clock(&dir.path().join("vellum.db"), clock.clone()).unwrap();
    let uploads = FsObjectStore::new(dir.path().join("uploads"), "uploads").unwrap();
    World { _dir: dir, clock, state, uploads }
}

impl World {
    /// A transfer of `key` created now, with `identifier`.
    fn transfer(&self, key: &str, identifier: &str) -> Transfer {
        let now = self.clock.now();
        let t = Transfer {
            event_key: format!("event-{}", Uuid::new_v4()),
            ..Transfer::new(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), "uploads", key, now)
        };
        self.state.create_transfer(&t.event_key, &t).unwrap();
        self.state
            .set_identifiers(
                t.id,
                &CatalogueIdentifiers { catalogue_identifier: Some(identifier.into()), ..Default::default() },
            )
            .unwrap();
        t
    }

    fn stored(&self, t: &Transfer) {
        let aip = StoredAip {
            key: format!("born-digital/{}/v1/x.tar.gz", t.name),
            version: 1,
            space: "born-digital".into(),
            dip: None,
        };
        self.state.complete_transfer(t.id, &aip).unwrap();
    }
}

#[test]
fn a_stuck_transfer_is_flagged_once_for_each_time_it_stops() {
    let w = world();
    let t = w.transfer("born-digital/slow.zip", "PP/SLOW/1");
    w.state.start_job(t.id, &JobSpec::of(Stage::Checksum)).unwrap();
    let hour = Duration::hours(1);
    w.clock.set(at(1, 9) + Duration::minutes(30));
    assert!(monitor::stuck(&w.state, w.clock.now(), hour, false).unwrap().is_empty(), "30 minutes is not stuck");
    w.clock.set(at(1, 11));
    let flagged = monitor::stuck(&w.state, w.clock.now(), hour, false).unwrap();
    assert_eq!(flagged.len(), 1);
    assert_eq!((flagged[0].stage.as_str(), flagged[0].since), ("checksum", at(1, 9)));
    assert!(flagged[0].microservice.contains("checksums"), "{}", flagged[0].microservice);
    assert!(flagged[0].retry.contains("vellum dlq redrive --stage checksum"));
    w.clock.set(at(1, 12));
    assert!(monitor::stuck(&w.state, w.clock.now(), hour, false).unwrap().is_empty(), "flagged once");
    assert_eq!(monitor::stuck(&w.state, w.clock.now(), hour, true).unwrap().len(), 1, "--all lists it still");
    // It moves on (a batch recorded), then stops again: flagged again.
    w.state.mark_batch_done(t.id, "checksum", 0).unwrap();
    w.clock.set(at(1, 15));
    let again = monitor::stuck(&w.state, w.clock.now(), hour, false).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].since, at(1, 12), "since its last progress");
    // An ended transfer is never stuck.
    w.state.end_transfer(t.id, TransferStatus::Failed, "gave up").unwrap();
    w.clock.set(at(2, 9));
    assert!(monitor::stuck(&w.state, w.clock.now(), hour, true).unwrap().is_empty());
}

#[test]
fn the_report_lists_what_ended_in_the_period_with_reasons() {
    let w = world();
    w.clock.set(at(2, 9));
    let old = w.transfer("born-digital/old.zip", "PP/OLD/1");
    w.stored(&old);
    w.clock.set(at(20, 9));
    let letters = w.transfer("born-digital/letters.zip", "PP/LET/1");
    w.stored(&letters);
    w.clock.set(at(21, 9));
    let broken = w.transfer("born-digital/broken.zip", "PP/BRK/1");
    w.state
        .end_transfer(broken.id, TransferStatus::Failed, "the entry \"objects/a.txt\" is damaged:\n  Invalid checksum")
        .unwrap();
    let refused = w.transfer("born-digital/refused.zip", "PP/REF/1");
    w.state.end_transfer(refused.id, TransferStatus::Rejected, "metadata/metadata.csv is missing").unwrap();
    w.state.hide_transfer(refused.id).unwrap();
    let _running = w.transfer("born-digital/running.zip", "PP/RUN/1");

    let report = monitor::report(&w.state, at(27, 9), 14, "staging").unwrap();
    assert_eq!(report.stored.iter().map(|l| l.identifier.as_str()).collect::<Vec<_>>(), ["PP/LET/1"]);
    assert_eq!(report.failed.iter().map(|l| l.identifier.as_str()).collect::<Vec<_>>(), ["PP/BRK/1", "PP/REF/1"]);
    assert_eq!(
        report.text(),
        "Vellum staging — transfers that ended 2026-11-13 to 2026-11-27: 1 stored, 2 failed or refused.\n\
         (staging: test packages; nothing here is preserved.)\n\
         Stored:\n  PP/LET/1 — letters (2026-11-20)\n\
         Failed or refused:\n  PP/BRK/1 — broken FAILED: the entry \"objects/a.txt\" is damaged: Invalid checksum\n  \
         PP/REF/1 — refused REJECTED: metadata/metadata.csv is missing\n"
    );
    assert_eq!(report.webhook_body()["text"], report.text());
    assert!(!monitor::report(&w.state, at(27, 9), 14, "prod").unwrap().text().contains("staging"));
}

#[test]
fn the_clean_up_removes_only_uploads_whose_aip_is_stored() {
    let w = world();
    let put = |key: &str| {
        w.uploads.put(key, b"package").unwrap();
        w.uploads.put(&format!("{key}.success.20261101T090000.abc.log"), b"log").unwrap();
    };
    put("born-digital/stored.zip");
    put("born-digital/failed.zip");
    put("born-digital/again.zip");
    put("born-digital/recent.zip");
    w.clock.set(Utc::now() + Duration::days(1));
    let stored = w.transfer("born-digital/stored.zip", "PP/S/1");
    w.stored(&stored);
    let failed = w.transfer("born-digital/failed.zip", "PP/F/1");
    w.state.end_transfer(failed.id, TransferStatus::Failed, "broken").unwrap();
    // Stored once, then uploaded again and refused: the object now is the refused one.
    let first = w.transfer("born-digital/again.zip", "PP/A/1");
    w.stored(&first);
    w.clock.set(w.clock.now() + Duration::hours(1));
    let second = w.transfer("born-digital/again.zip", "PP/A/1");
    w.state.end_transfer(second.id, TransferStatus::Rejected, "refused").unwrap();
    w.clock.set(w.clock.now() + Duration::days(29));
    let recent = w.transfer("born-digital/recent.zip", "PP/R/1");
    w.stored(&recent);

    let now = w.clock.now() + Duration::days(1);
    let cleaned = monitor::clean_up(&w.state, &w.uploads, now, 30).unwrap();
    assert_eq!(cleaned.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["born-digital/stored.zip"]);
    assert_eq!(cleaned[0].logs, 1);
    let left: Vec<String> = w.uploads.list("").unwrap().into_iter().map(|m| m.key).collect();
    assert!(!left.iter().any(|k| k.starts_with("born-digital/stored.zip")), "{left:?}");
    for kept in ["born-digital/failed.zip", "born-digital/again.zip", "born-digital/recent.zip"] {
        assert!(left.iter().any(|k| k == kept), "{kept} is kept: {left:?}");
    }
    assert!(monitor::clean_up(&w.state, &w.uploads, now, 30).unwrap().is_empty(), "nothing twice");
}

/// The fixity audit reads stored AIPs back a few at a time, the longest-waiting first,
/// records each result as a PREMIS event, and says loudly when one no longer matches.
#[test]
fn the_fixity_audit_reads_aips_back_in_bounded_rounds_and_records_each_result() {
    let t = vellum_tests::TestEnv::new(10);
    let mut ids = Vec::new();
    for i in 0..3 {
        let event = t.upload(
            &vellum_tests::Package::catalogued(&format!("PP/AUDIT/{i}"), 2),
            &format!("born-digital/audit-{i}.zip"),
        );
        t.drive(|_, _| false);
        ids.push(t.transfer_for(&event).unwrap().id);
    }
    let agents = vellum_core::model::system_agents("TEST", "Test archive");
    let now = Utc::now() + Duration::days(100);
    let every = Duration::days(90);
    let first = monitor::fixity_audit(t.env.state.as_ref(), t.env.aips.as_ref(), now, every, 2, &agents).unwrap();
    assert_eq!(first.len(), 2, "bounded by max");
    assert!(first.iter().all(|a| a.passed), "{first:?}");
    assert_eq!(first.iter().map(|a| a.transfer_id).collect::<Vec<_>>(), ids[..2], "the longest-waiting first");
    let second = monitor::fixity_audit(t.env.state.as_ref(), t.env.aips.as_ref(), now, every, 2, &agents).unwrap();
    assert_eq!(second.iter().map(|a| a.transfer_id).collect::<Vec<_>>(), [ids[2]], "the rest, next round");
    assert!(monitor::fixity_audit(t.env.state.as_ref(), t.env.aips.as_ref(), now, every, 2, &agents)
        .unwrap()
        .is_empty());

    // Ninety days on, the first AIP has been damaged on disk: the audit says so, and keeps it.
    let damaged = t.env.state.transfer(ids[0]).unwrap().unwrap();
    let path = t.env.aips.root().join(damaged.aip_key.as_ref().unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let later = now + Duration::days(91);
    let third = monitor::fixity_audit(t.env.state.as_ref(), t.env.aips.as_ref(), later, every, 3, &agents).unwrap();
    assert_eq!(third.len(), 3);
    let bad: Vec<_> = third.iter().filter(|a| !a.passed).collect();
    assert_eq!(bad.len(), 1, "{third:?}");
    assert_eq!(bad[0].transfer_id, ids[0]);
    assert!(bad[0].detail.contains("FAIL the bag is valid"), "{}", bad[0].detail);
    assert!(path.exists(), "nothing is repaired or removed");
    let events = t.env.state.all_events(ids[0]).unwrap();
    let audits: Vec<_> =
        events.iter().filter(|e| e.event_type == "fixity check" && e.detail.contains("fixity audit")).collect();
    assert_eq!(audits.len(), 2, "one event per audit");
    assert_eq!(audits.iter().filter(|e| e.outcome == vellum_core::model::EventOutcome::Fail).count(), 1);
}
