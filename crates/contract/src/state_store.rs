//! The state store's contract.

use chrono::Utc;
use uuid::Uuid;
use vellum_core::model::{
    derived_id, EventOutcome, File, FilePatch, FileUse, JobStatus, PremisEvent, StoredAip, Task, Transfer,
    TransferStatus,
};
use vellum_core::ports::{ExtractCheckpoint, JobSpec, PortError, StateStore};

pub type Make = dyn Fn() -> Box<dyn StateStore>;

pub fn transfer(name: &str) -> Transfer {
    Transfer {
        source_event_time: "2026-11-26T10:15:30.123Z".into(),
        event_key: format!("event-of-{name}"),
        profile: "born_digital".into(),
        ..Transfer::new(
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            "uploads",
            &format!("born-digital/{name}.zip"),
            Utc::now(),
        )
    }
}

fn file(t: &Transfer, index: u64, batch: u32) -> File {
    File {
        uuid: derived_id(t.id, &format!("file/{index}")),
        transfer_id: t.id,
        batch,
        entry_index: index,
        file_use: FileUse::Original,
        original_path: format!("objects/{index}.txt"),
        current_path: format!("objects/{index}.txt"),
        size: index,
        checksums: Default::default(),
        format: None,
        modified: None,
        characteristics: Default::default(),
    }
}

fn event(t: &Transfer, f: Option<Uuid>, kind: &str) -> PremisEvent {
    PremisEvent::new(t.id, f, kind, Utc::now(), String::new(), EventOutcome::None, String::new(), vec![])
}

const SPEC: JobSpec<'static> = JobSpec {
    stage: "checksum",
    microservice_group: "Assign file UUIDs and checksums",
    name: "Assign checksums and file sizes to objects",
};

pub fn create_transfer_is_idempotent(make: &Make) {
    let s = make();
    let t = transfer("a");
    let (first, created) = s.create_transfer("key-1", &t).unwrap();
    assert!(created);
    assert_eq!(first.id, t.id);
    let again = transfer("a");
    let (second, created) = s.create_transfer("key-1", &again).unwrap();
    assert!(!created, "the same event never creates a second transfer");
    assert_eq!(second.id, t.id);
    let (third, created) = s.create_transfer("key-2", &again).unwrap();
    assert!(created);
    assert_eq!(third.id, again.id);
    assert_eq!(s.list_transfers(10).unwrap().len(), 2);
    let stored = s.transfer(t.id).unwrap().unwrap();
    assert_eq!(stored.name, "a");
    assert_eq!(stored.source_event_time, t.source_event_time);
    assert_eq!(stored.event_key, t.event_key);
    assert_eq!(stored.sip_uuid, t.sip_uuid);
    assert!(s.transfer(Uuid::new_v4()).unwrap().is_none());
}

pub fn first_ending_stands(make: &Make) {
    let s = make();
    let t = transfer("b");
    s.create_transfer("k", &t).unwrap();
    s.set_microservice(t.id, "Scan for viruses").unwrap();
    assert!(s.end_transfer(t.id, TransferStatus::Failed, "first reason").unwrap());
    assert!(!s.end_transfer(t.id, TransferStatus::Rejected, "second reason").unwrap());
    let aip = StoredAip { key: "k".into(), version: 1, space: "s".into() };
    assert!(!s.complete_transfer(t.id, &aip).unwrap(), "an ended transfer is not completed");
    let stored = s.transfer(t.id).unwrap().unwrap();
    assert_eq!(stored.status, TransferStatus::Failed);
    assert_eq!(stored.failure_reason.as_deref(), Some("first reason"));
    assert_eq!(stored.current_microservice.as_deref(), Some("Scan for viruses"));

    let t2 = transfer("c");
    s.create_transfer("k2", &t2).unwrap();
    assert!(s.complete_transfer(t2.id, &aip).unwrap());
    let stored = s.transfer(t2.id).unwrap().unwrap();
    assert_eq!(stored.status, TransferStatus::Complete);
    assert_eq!(stored.aip_key.as_deref(), Some("k"));
    assert!(stored.completed_at.is_some());
}

pub fn jobs_are_started_once(make: &Make) {
    let s = make();
    let t = transfer("j");
    s.create_transfer("k", &t).unwrap();
    let a = s.start_job(t.id, &JobSpec { stage: "extract", microservice_group: "g", name: "n" }).unwrap();
    let b = s.start_job(t.id, &SPEC).unwrap();
    let again = s.start_job(t.id, &SPEC).unwrap();
    assert_eq!(b.uuid, again.uuid, "a redelivered message finds the same job");
    assert_ne!(a.uuid, b.uuid);
    s.finish_job(t.id, "checksum", JobStatus::Completed).unwrap();
    s.finish_job(t.id, "checksum", JobStatus::Failed).unwrap();
    let jobs = s.jobs(t.id).unwrap();
    assert_eq!(jobs.iter().map(|j| j.stage.as_str()).collect::<Vec<_>>(), ["extract", "checksum"]);
    assert_eq!(jobs[1].status, JobStatus::Completed, "a finished job stays as it finished");
    assert!(jobs[1].ended_at.is_some());
    assert_eq!(s.job(t.id, "extract").unwrap().unwrap().status, JobStatus::Processing);
}

pub fn extraction_checkpoints(make: &Make) {
    let s = make();
    let t = transfer("x");
    s.create_transfer("k", &t).unwrap();
    let start = s.extract_checkpoint(t.id).unwrap();
    assert_eq!(start, ExtractCheckpoint::default());
    let files0: Vec<File> = (0..3).map(|i| file(&t, i, 0)).collect();
    let events0: Vec<PremisEvent> = files0.iter().map(|f| event(&t, Some(f.uuid), "ingestion")).collect();
    let cp1 = s.commit_extract_batch(t.id, &start, &files0, &events0, 4).unwrap();
    assert_eq!(cp1, ExtractCheckpoint { next_entry: 4, batches: 1, files: 3, done: false });
    // A second delivery that started from the old checkpoint must not commit over it.
    let stale = s.commit_extract_batch(t.id, &start, &files0, &events0, 4);
    assert!(matches!(stale, Err(PortError::Conflict(_))), "{stale:?}");
    // No files: only the checkpoint moves.
    let cp2 = s.commit_extract_batch(t.id, &cp1, &[], &[], 6).unwrap();
    assert_eq!(cp2, ExtractCheckpoint { next_entry: 6, batches: 1, files: 3, done: false });
    let files1 = vec![file(&t, 6, 1)];
    s.commit_extract_batch(t.id, &cp2, &files1, &[], 7).unwrap();
    let done = s.finish_extract(t.id).unwrap();
    assert_eq!(done, ExtractCheckpoint { next_entry: 7, batches: 2, files: 4, done: true });
    assert_eq!(s.batch_files(t.id, 0).unwrap().len(), 3);
    assert_eq!(s.batch_files(t.id, 1).unwrap()[0].entry_index, 6);
    assert_eq!(s.files(t.id).unwrap().len(), 4);
    assert_eq!(s.events(t.id).unwrap().len(), 3);
    let stored = s.transfer(t.id).unwrap().unwrap();
    assert_eq!((stored.file_count, stored.batch_count), (4, 2));
}

pub fn record_batch_fans_in_once(make: &Make) {
    let s = make();
    let t = transfer("f");
    s.create_transfer("k", &t).unwrap();
    let mut cp = s.extract_checkpoint(t.id).unwrap();
    for b in 0..3u32 {
        cp = s.commit_extract_batch(t.id, &cp, &[file(&t, b as u64, b)], &[], b as u64 + 1).unwrap();
    }
    let job = s.start_job(t.id, &SPEC).unwrap();
    let record = |b: u32| {
        let f = file(&t, b as u64, b);
        let task = Task {
            uuid: derived_id(job.uuid, &format!("task/{}", f.uuid)),
            job_uuid: job.uuid,
            file_uuid: f.uuid,
            exit_code: 0,
            started_at: Utc::now(),
            ended_at: Utc::now(),
            stdout: String::new(),
            stderr: String::new(),
        };
        let patch = FilePatch {
            uuid: f.uuid,
            checksums: [("sha256".to_string(), format!("digest-{b}"))].into(),
            size: Some(b as u64),
            format: None,
            characteristics: [("width".to_string(), b.to_string())].into(),
        };
        s.record_batch(t.id, "checksum", b, &[task], &[event(&t, Some(f.uuid), "message digest calculation")], &[patch])
            .unwrap()
    };
    let r0 = record(0);
    assert!(r0.newly_recorded && !r0.stage_complete);
    let r2 = record(2);
    assert!(r2.newly_recorded && !r2.stage_complete, "batches finish in any order");
    s.finish_extract(t.id).unwrap();
    let again = record(2);
    assert!(!again.newly_recorded && !again.stage_complete, "a redelivered batch is not counted twice");
    let last = record(1);
    assert!(last.newly_recorded && last.stage_complete);
    let late = record(1);
    assert!(!late.newly_recorded && late.stage_complete, "a redelivered last batch still reports completion");
    assert_eq!(s.job(t.id, "checksum").unwrap().unwrap().batches_done, 3);
    assert_eq!(s.tasks(job.uuid).unwrap().len(), 3);
    let digest_events = s.events(t.id).unwrap().iter().filter(|e| e.event_type == "message digest calculation").count();
    let f1 = file(&t, 1, 1);
    let of_one = s.file_events(t.id, f1.uuid).unwrap();
    assert_eq!(of_one.len(), 1, "a file's own events, and no other's");
    assert_eq!(of_one[0].file_uuid, Some(f1.uuid));
    assert_eq!(digest_events, 3);
    let files = s.files(t.id).unwrap();
    assert_eq!(files[1].sha256(), Some("digest-1"));
    assert_eq!(files[1].characteristics.get("width").map(String::as_str), Some("1"));
}

pub fn events_are_written_once(make: &Make) {
    let s = make();
    let t = transfer("e");
    s.create_transfer("k", &t).unwrap();
    let e = event(&t, None, "fixity check");
    s.record_events(std::slice::from_ref(&e)).unwrap();
    s.record_events(std::slice::from_ref(&e)).unwrap();
    let mut changed = e.clone();
    changed.outcome_detail = "rewritten".into();
    s.record_events(&[changed]).unwrap();
    let events = s.events(t.id).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome_detail, "", "an event is never rewritten");
    assert_eq!(events[0].uuid, e.uuid);
    let f = file(&t, 0, 0);
    s.record_events(&[event(&t, Some(f.uuid), "ingestion")]).unwrap();
    let of_transfer = s.transfer_events(t.id).unwrap();
    assert_eq!(of_transfer.len(), 1, "the transfer's own events, not its files': {of_transfer:?}");
    assert_eq!(of_transfer[0].uuid, e.uuid);
}

pub fn aip_versions(make: &Make) {
    let s = make();
    let a = transfer("v1");
    let b = transfer("v2");
    let c = transfer("other");
    for (k, t) in [("a", &a), ("b", &b), ("c", &c)] {
        s.create_transfer(k, t).unwrap();
    }
    assert_eq!(s.assign_aip_version(a.id, "born-digital", "PP/1").unwrap(), 1);
    assert_eq!(s.assign_aip_version(a.id, "born-digital", "PP/1").unwrap(), 1, "asked again, the same");
    assert_eq!(s.assign_aip_version(b.id, "born-digital", "PP/1").unwrap(), 2);
    assert_eq!(s.assign_aip_version(c.id, "born-digital", "PP/2").unwrap(), 1);
}

pub fn job_checkpoints_are_compare_and_swap(make: &Make) {
    let s = make();
    let t = transfer("cp");
    s.create_transfer("k", &t).unwrap();
    s.start_job(t.id, &JobSpec { stage: "package", microservice_group: "Prepare AIP", name: "Compress AIP" }).unwrap();
    assert_eq!(s.job_checkpoint(t.id, "package").unwrap(), None);
    s.set_job_checkpoint(t.id, "package", None, "part 1").unwrap();
    assert!(
        matches!(s.set_job_checkpoint(t.id, "package", None, "again"), Err(PortError::Conflict(_))),
        "a stale writer loses"
    );
    s.set_job_checkpoint(t.id, "package", Some("part 1"), "part 2").unwrap();
    assert!(matches!(s.set_job_checkpoint(t.id, "package", Some("part 1"), "part 3"), Err(PortError::Conflict(_))));
    assert_eq!(s.job_checkpoint(t.id, "package").unwrap().as_deref(), Some("part 2"));
}
