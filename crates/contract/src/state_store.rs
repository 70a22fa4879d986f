//! The state store's contract.

use chrono::Utc;
use std::sync::Arc;
use uuid::Uuid;
use vellum_core::model::{
    derived_id, file_id, EventOutcome, File, FilePatch, FileUse, JobStatus, PremisEvent, StoredAip, Task, Transfer,
    TransferStatus,
};

use vellum_core::model::Stage;
use vellum_core::ports::{ExtractCheckpoint, FilePages, JobSpec, PortError, StateStore, TransferQuery};

use crate::faults::{Faulty, LoseFirstAnswers};

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
        uuid: file_id(t.id, index),
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
        source: None,
    }
}

fn event(t: &Transfer, f: Option<Uuid>, kind: &str) -> PremisEvent {
    let kind = kind.parse().expect("an event type of Vellum's vocabulary");
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
    assert_eq!(s.list_transfers(&TransferQuery { limit: 10, ..Default::default() }).unwrap().items.len(), 2);
    let stored = s.transfer(t.id).unwrap().unwrap();
    assert_eq!(stored.name, "a");
    assert_eq!(stored.source_event_time, t.source_event_time);
    assert_eq!(stored.event_key, t.event_key);
    assert_eq!(stored.sip_uuid, t.sip_uuid);
    assert!(s.transfer(Uuid::new_v4()).unwrap().is_none());
}

pub fn files_not_scanned_are_recorded(make: &Make) {
    let s = make();
    let t = transfer("a");
    s.create_transfer("key-1", &t).unwrap();
    assert_eq!(s.transfer(t.id).unwrap().unwrap().files_not_scanned, None, "not counted before the METS");
    s.set_files_not_scanned(t.id, 0).unwrap();
    assert_eq!(s.transfer(t.id).unwrap().unwrap().files_not_scanned, Some(0), "zero is a count, not nothing");
    s.set_files_not_scanned(t.id, 12).unwrap();
    assert_eq!(s.transfer(t.id).unwrap().unwrap().files_not_scanned, Some(12));
    assert_eq!(s.transfer(t.id).unwrap().unwrap().files_not_normalized, None, "not counted before the METS");
    s.set_files_not_normalized(t.id, 3).unwrap();
    let counted = s.transfer(t.id).unwrap().unwrap();
    assert_eq!((counted.files_not_scanned, counted.files_not_normalized), (Some(12), Some(3)), "each its own count");
    assert_eq!(counted.validation, None, "not counted before the METS");
    let validation = vellum_core::model::ValidationCounts { passed: 7, failed: 1, not_performed: 4 };
    s.set_validation_counts(t.id, validation).unwrap();
    let counted = s.transfer(t.id).unwrap().unwrap();
    assert_eq!(counted.validation, Some(validation), "read back as written");
    assert_eq!(counted.files_not_scanned, Some(12), "the other counts unchanged");
}

pub fn first_ending_stands(make: &Make) {
    let s = make();
    let t = transfer("b");
    s.create_transfer("k", &t).unwrap();
    s.set_microservice(t.id, "Scan for viruses").unwrap();
    assert!(s.end_transfer(t.id, TransferStatus::Failed, "first reason").unwrap());
    assert!(!s.end_transfer(t.id, TransferStatus::Rejected, "second reason").unwrap());
    let aip = StoredAip { key: "k".into(), version: 1, space: "s".into(), dip: Some("name-sip/".into()) };
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
    assert_eq!(stored.dip_key.as_deref(), Some("name-sip/"), "the DIP stored with it");
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
    assert_eq!(s.batch_files(t.id, 0, None, 10).unwrap().items.len(), 3);
    assert_eq!(s.batch_files(t.id, 1, None, 10).unwrap().items[0].entry_index, 6);
    assert_eq!(s.all_files(t.id).unwrap().len(), 4);
    assert_eq!(s.all_events(t.id).unwrap().len(), 3);
    let stored = s.transfer(t.id).unwrap().unwrap();
    assert_eq!((stored.file_count, stored.batch_count), (4, 2));
}

/// A package extracted in ranges: its counts are fixed first (done, so the per-file fan-in
/// knows them), its batches written in any order and any number of times, each counted once
/// on the extract job.
pub fn planned_extraction(make: &Make) {
    let s = make();
    let t = transfer("p");
    s.create_transfer("k", &t).unwrap();
    let start = s.extract_checkpoint(t.id).unwrap();
    let planned = ExtractCheckpoint { next_entry: 9, batches: 3, files: 6, done: true };
    assert_eq!(s.plan_extract(t.id, &start, &planned).unwrap(), planned);
    let again = s.plan_extract(t.id, &start, &planned);
    assert!(matches!(again, Err(PortError::Conflict(_))), "a plan is fixed once: {again:?}");
    let late = s.commit_extract_batch(t.id, &planned, &[file(&t, 0, 0)], &[], 1);
    assert!(matches!(late, Err(PortError::Conflict(_))), "no sequential batch after a plan: {late:?}");
    let stored = s.transfer(t.id).unwrap().unwrap();
    assert_eq!((stored.file_count, stored.batch_count), (6, 3));
    s.start_job(t.id, &JobSpec::of(Stage::Extract)).unwrap();
    let batch = |b: u32| -> (Vec<File>, Vec<PremisEvent>) {
        let files: Vec<File> = (0..2).map(|i| file(&t, b as u64 * 3 + i, b)).collect();
        let events = files.iter().map(|f| event(&t, Some(f.uuid), "ingestion")).collect();
        (files, events)
    };
    for b in [2u32, 0, 2, 1] {
        let (files, events) = batch(b);
        s.write_extracted_batch(t.id, b, &files, &events).unwrap();
        let recorded = s.mark_batch_done(t.id, "extract", b).unwrap();
        assert_eq!(recorded.stage_complete, b == 1, "the last of the three batches completes extraction");
    }
    assert_eq!(s.job(t.id, "extract").unwrap().unwrap().batches_done, 3);
    assert_eq!(s.all_files(t.id).unwrap().len(), 6, "a batch written twice is written once");
    assert_eq!(s.all_events(t.id).unwrap().len(), 6);
    let second = s.batch_files(t.id, 2, None, 10).unwrap().items;
    assert_eq!(second.iter().map(|f| f.entry_index).collect::<Vec<_>>(), [6, 7]);
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
        let task = task(&job, &f);
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
    let digest_events =
        s.all_events(t.id).unwrap().iter().filter(|e| e.event_type == "message digest calculation").count();
    let f1 = file(&t, 1, 1);
    let of_one = s.file_events(t.id, f1.uuid).unwrap();
    assert_eq!(of_one.len(), 1, "a file's own events, and no other's");
    assert_eq!(of_one[0].file_uuid, Some(f1.uuid));
    assert_eq!(digest_events, 3);
    let files = s.all_files(t.id).unwrap();
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
    let events = s.all_events(t.id).unwrap();
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

fn named(t: &Transfer, index: u64, batch: u32, path: &str) -> File {
    File { original_path: path.to_string(), current_path: path.to_string(), ..file(t, index, batch) }
}

/// Files come in path order (compared as bytes), a page at a time, whatever order they
/// were extracted in; a batch's files in entry order; events oldest first.
pub fn reads_are_paged(make: &Make) {
    let s = make();
    let t = transfer("pages");
    s.create_transfer("k", &t).unwrap();
    let paths = [
        "objects/b.txt",
        "objects/a/z.txt",
        "objects/a.txt",
        "objects/B.txt",
        "metadata/metadata.csv",
        "objects/é.txt",
        "objects/a-b.txt",
    ];
    let mut cp = s.extract_checkpoint(t.id).unwrap();
    for (chunk, batch) in paths.chunks(3).zip(0u32..) {
        let first = batch as u64 * 3;
        let files: Vec<File> = chunk.iter().zip(first..).map(|(p, i)| named(&t, i, batch, p)).collect();
        let events: Vec<PremisEvent> = files.iter().map(|f| event(&t, Some(f.uuid), "ingestion")).collect();
        cp = s.commit_extract_batch(t.id, &cp, &files, &events, first + chunk.len() as u64).unwrap();
    }
    let mut want: Vec<&str> = paths.to_vec();
    want.sort();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = s.files(t.id, after.as_deref(), 3).unwrap();
        assert!(page.items.len() <= 3);
        pages += 1;
        seen.extend(page.items.iter().map(|f| f.current_path.clone()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, want, "path order, across pages");
    assert_eq!(pages, 3);
    // A stage that continues from a file names it by its path.
    let rest: Vec<String> = FilePages::new(s.as_ref(), t.id)
        .after(Some("objects/a.txt".into()))
        .page_size(2)
        .map(|f| f.unwrap().current_path)
        .collect();
    assert_eq!(rest, want[want.iter().position(|p| *p == "objects/a.txt").unwrap() + 1..].to_vec());

    let batch0: Vec<u64> =
        FilePages::of_batch(s.as_ref(), t.id, 0).page_size(2).map(|f| f.unwrap().entry_index).collect();
    assert_eq!(batch0, [0, 1, 2], "a batch in entry order, across pages");
    let first = s.events(t.id, None, 4).unwrap();
    assert_eq!(first.items.len(), 4);
    let second = s.events(t.id, first.next.as_deref(), 4).unwrap();
    assert_eq!(second.items.len(), 3);
    assert!(second.next.is_none());
    let all: Vec<_> = first.items.iter().chain(&second.items).map(|e| e.file_uuid).collect();
    let want_events: Vec<_> = (0..7u64).map(|i| Some(named(&t, i, 0, "x").uuid)).collect();
    assert_eq!(all, want_events, "events oldest first, none twice");
}

/// The transfer list, newest first, by status, a page at a time.
pub fn transfers_are_listed_newest_first(make: &Make) {
    let s = make();
    let base = Utc::now();
    let mut ids = Vec::new();
    for i in 0..5i64 {
        let mut t = transfer(&format!("list-{i}"));
        t.created_at = base + chrono::Duration::seconds(i);
        s.create_transfer(&format!("k{i}"), &t).unwrap();
        if i % 2 == 1 {
            s.end_transfer(t.id, TransferStatus::Failed, "odd").unwrap();
        }
        ids.push(t.id);
    }
    let first = s.list_transfers(&TransferQuery { limit: 2, ..Default::default() }).unwrap();
    assert_eq!(first.items.iter().map(|t| t.id).collect::<Vec<_>>(), [ids[4], ids[3]]);
    let second =
        s.list_transfers(&TransferQuery { limit: 2, after: first.next.clone(), ..Default::default() }).unwrap();
    assert_eq!(second.items.iter().map(|t| t.id).collect::<Vec<_>>(), [ids[2], ids[1]]);
    let third =
        s.list_transfers(&TransferQuery { limit: 2, after: second.next.clone(), ..Default::default() }).unwrap();
    assert_eq!(third.items.iter().map(|t| t.id).collect::<Vec<_>>(), [ids[0]]);
    assert!(third.next.is_none());
    let failed = s
        .list_transfers(&TransferQuery { status: Some(TransferStatus::Failed), limit: 10, ..Default::default() })
        .unwrap();
    assert_eq!(failed.items.iter().map(|t| t.id).collect::<Vec<_>>(), [ids[3], ids[1]]);
}

/// A batch larger than one transaction (300+ items) is committed whole, and its records
/// read back whole.
pub fn large_batches_commit_whole(make: &Make) {
    let s = make();
    let t = transfer("large");
    s.create_transfer("k", &t).unwrap();
    let files: Vec<File> = (0..130).map(|i| named(&t, i, 0, &format!("objects/{i:03}.bin"))).collect();
    let events: Vec<PremisEvent> = files.iter().map(|f| event(&t, Some(f.uuid), "ingestion")).collect();
    let start = s.extract_checkpoint(t.id).unwrap();
    s.commit_extract_batch(t.id, &start, &files, &events, 130).unwrap();
    s.finish_extract(t.id).unwrap();
    let job = s.start_job(t.id, &SPEC).unwrap();
    let tasks: Vec<Task> = files.iter().map(|f| task(&job, f)).collect();
    let digests: Vec<PremisEvent> =
        files.iter().map(|f| event(&t, Some(f.uuid), "message digest calculation")).collect();
    let patches: Vec<FilePatch> = files
        .iter()
        .map(|f| FilePatch {
            uuid: f.uuid,
            checksums: [("md5".to_string(), "m".to_string())].into(),
            ..Default::default()
        })
        .collect();
    let r = s.record_batch(t.id, "checksum", 0, &tasks, &digests, &patches).unwrap();
    assert!(r.newly_recorded && r.stage_complete);
    assert_eq!(s.tasks(job.uuid).unwrap().len(), 130);
    assert_eq!(s.all_events(t.id).unwrap().len(), 260);
    assert!(s.all_files(t.id).unwrap().iter().all(|f| f.checksums.get("md5").map(String::as_str) == Some("m")));
    // Writing a batch's items again, as a continuing or redelivered stage does, changes nothing.
    s.write_batch_items(t.id, &tasks, &digests, &patches).unwrap();
    assert_eq!(s.tasks(job.uuid).unwrap().len(), 130);
    assert_eq!(s.all_events(t.id).unwrap().len(), 260);
}

fn task(job: &vellum_core::model::Job, f: &File) -> Task {
    Task {
        uuid: derived_id(f.uuid, &format!("task/{}", job.uuid)),
        job_uuid: job.uuid,
        file_uuid: f.uuid,
        file_name: f.current_path.clone(),
        exit_code: 0,
        started_at: Utc::now(),
        ended_at: Utc::now(),
        stdout: String::new(),
        stderr: String::new(),
    }
}

const RACERS: usize = 8;

/// Runs `f` on `RACERS` threads at once (released together) and returns their answers.
fn race<T: Send>(f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let gate = std::sync::Barrier::new(RACERS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..RACERS)
            .map(|i| {
                let (f, gate) = (&f, &gate);
                scope.spawn(move || {
                    gate.wait();
                    f(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a racer panicked")).collect()
    })
}

/// One S3 event delivered to several functions at once makes one transfer.
pub fn racing_create_transfer(make: &Make) {
    let s = make();
    let answers = race(|i| s.create_transfer("the-event", &transfer(&format!("racer-{i}"))).unwrap());
    assert_eq!(answers.iter().filter(|(_, created)| *created).count(), 1, "exactly one delivery creates it");
    let id = answers[0].0.id;
    assert!(answers.iter().all(|(t, _)| t.id == id), "every delivery sees the same transfer");
    assert_eq!(s.list_transfers(&TransferQuery { limit: 10, ..Default::default() }).unwrap().items.len(), 1);
}

/// Batches finishing at once, each delivered twice, are counted once each, and exactly one
/// delivery learns that it finished the stage.
pub fn racing_record_batch(make: &Make) {
    let s = make();
    let t = transfer("fan-in");
    s.create_transfer("k", &t).unwrap();
    let mut cp = s.extract_checkpoint(t.id).unwrap();
    let batches = (RACERS / 2) as u32;
    for b in 0..batches {
        cp = s.commit_extract_batch(t.id, &cp, &[file(&t, b as u64, b)], &[], b as u64 + 1).unwrap();
    }
    s.finish_extract(t.id).unwrap();
    let job = s.start_job(t.id, &SPEC).unwrap();
    let answers = race(|i| {
        let b = (i as u32) % batches;
        let f = file(&t, b as u64, b);
        s.record_batch(
            t.id,
            "checksum",
            b,
            &[task(&job, &f)],
            &[event(&t, Some(f.uuid), "message digest calculation")],
            &[],
        )
        .unwrap()
    });
    assert_eq!(answers.iter().filter(|a| a.newly_recorded).count(), batches as usize, "each batch counted once");
    assert_eq!(
        answers.iter().filter(|a| a.newly_recorded && a.stage_complete).count(),
        1,
        "exactly one delivery completes the stage: {answers:?}"
    );
    assert_eq!(s.job(t.id, "checksum").unwrap().unwrap().batches_done, batches);
    assert_eq!(s.tasks(job.uuid).unwrap().len(), batches as usize);
}

/// Deliveries extracting from the same checkpoint at once: one commits, the others are
/// told of the conflict, and the files are there once.
pub fn racing_commit_extract_batch(make: &Make) {
    let s = make();
    let t = transfer("extract-race");
    s.create_transfer("k", &t).unwrap();
    let start = s.extract_checkpoint(t.id).unwrap();
    let files: Vec<File> = (0..5).map(|i| file(&t, i, 0)).collect();
    let events: Vec<PremisEvent> = files.iter().map(|f| event(&t, Some(f.uuid), "ingestion")).collect();
    let answers = race(|_| s.commit_extract_batch(t.id, &start, &files, &events, 5));
    let won = answers.iter().filter(|a| a.is_ok()).count();
    assert_eq!(won, 1, "{answers:?}");
    assert!(answers.iter().all(|a| a.is_ok() || matches!(a, Err(PortError::Conflict(_)))), "{answers:?}");
    let cp = s.extract_checkpoint(t.id).unwrap();
    assert_eq!(cp, ExtractCheckpoint { next_entry: 5, batches: 1, files: 5, done: false });
    assert_eq!(s.all_files(t.id).unwrap().len(), 5);
    assert_eq!(s.all_events(t.id).unwrap().len(), 5);
}

/// Checkpoint compare-and-swaps at once: exactly one wins each round.
pub fn racing_job_checkpoint(make: &Make) {
    let s = make();
    let t = transfer("cp-race");
    s.create_transfer("k", &t).unwrap();
    s.start_job(t.id, &JobSpec { stage: "package", microservice_group: "Prepare AIP", name: "Compress AIP" }).unwrap();
    let answers = race(|i| s.set_job_checkpoint(t.id, "package", None, &format!("writer {i}")));
    assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 1, "{answers:?}");
    let winner = s.job_checkpoint(t.id, "package").unwrap().unwrap();
    let answers = race(|i| s.set_job_checkpoint(t.id, "package", Some(&winner), &format!("second {i}")));
    assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 1, "{answers:?}");
}

/// Transfers of one identifier stored at once get distinct versions, 1 to N.
pub fn racing_assign_aip_version(make: &Make) {
    let s = make();
    let transfers: Vec<Transfer> = (0..RACERS).map(|i| transfer(&format!("version-{i}"))).collect();
    for (i, t) in transfers.iter().enumerate() {
        s.create_transfer(&format!("k{i}"), t).unwrap();
    }
    let mut versions = race(|i| s.assign_aip_version(transfers[i].id, "born-digital", "PP/RACE").unwrap());
    versions.sort();
    assert_eq!(versions, (1..=RACERS as u32).collect::<Vec<_>>());
    let again = race(|i| s.assign_aip_version(transfers[i].id, "born-digital", "PP/RACE").unwrap());
    let first: Vec<u32> =
        transfers.iter().map(|t| s.assign_aip_version(t.id, "born-digital", "PP/RACE").unwrap()).collect();
    assert_eq!(again, first, "asked again, each transfer keeps its version");
}

/// Archivematica's API finds a transfer by its SIP and a task by its id; the dashboard
/// hides ended transfers and searches by name or identifier, in any case.
pub fn transfers_are_found_by_sip_hidden_and_searched(make: &Make) {
    let s = make();
    let base = Utc::now();
    let mut letters = transfer("Letters-Of-Ada");
    letters.created_at = base;
    let mut photos = transfer("photos");
    photos.created_at = base + chrono::Duration::seconds(1);
    s.create_transfer("k-letters", &letters).unwrap();
    s.create_transfer("k-photos", &photos).unwrap();
    s.set_identifiers(
        photos.id,
        &vellum_core::model::CatalogueIdentifiers {
            catalogue_identifier: Some("PP/CRI/9".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(s.transfer_by_sip(photos.sip_uuid).unwrap().map(|t| t.id), Some(photos.id));
    assert_eq!(s.transfer_by_sip(Uuid::new_v4()).unwrap(), None);
    assert_eq!(s.transfer_by_aip(photos.aip_uuid).unwrap().map(|t| t.id), Some(photos.id));
    assert_eq!(s.transfer_by_aip(Uuid::new_v4()).unwrap(), None);

    let search = |q: &str| -> Vec<Uuid> {
        s.list_transfers(&TransferQuery { search: Some(q.into()), limit: 10, ..Default::default() })
            .unwrap()
            .items
            .iter()
            .map(|t| t.id)
            .collect()
    };
    assert_eq!(search("of-ada"), [letters.id], "by name, in any case");
    assert_eq!(search("pp/cri"), [photos.id], "by identifier");
    assert!(search("nothing like it").is_empty());

    assert!(!s.hide_transfer(letters.id).unwrap(), "a transfer still processing stays listed");
    s.end_transfer(letters.id, TransferStatus::Rejected, "refused").unwrap();
    assert!(s.hide_transfer(letters.id).unwrap());
    assert!(!s.hide_transfer(letters.id).unwrap(), "hidden once");
    assert!(s.transfer(letters.id).unwrap().unwrap().hidden);
    let listed = s.list_transfers(&TransferQuery { limit: 10, ..Default::default() }).unwrap();
    assert_eq!(listed.items.iter().map(|t| t.id).collect::<Vec<_>>(), [photos.id]);
    let hidden = s.list_transfers(&TransferQuery { hidden: true, limit: 10, ..Default::default() }).unwrap();
    assert_eq!(hidden.items.iter().map(|t| t.id).collect::<Vec<_>>(), [letters.id]);
}

pub fn tasks_are_found_by_id(make: &Make) {
    let s = make();
    let t = transfer("tasks");
    s.create_transfer("k", &t).unwrap();
    let f = file(&t, 1, 0);
    let start = s.extract_checkpoint(t.id).unwrap();
    s.commit_extract_batch(t.id, &start, std::slice::from_ref(&f), &[], 1).unwrap();
    let job = s.start_job(t.id, &SPEC).unwrap();
    let one = task(&job, &f);
    s.write_batch_items(t.id, std::slice::from_ref(&one), &[], &[]).unwrap();
    let found = s.task(one.uuid).unwrap().expect("the task by its id");
    assert_eq!((found.uuid, found.job_uuid, found.file_uuid, found.exit_code), (one.uuid, job.uuid, f.uuid, 0));
    assert_eq!(found.file_name, f.current_path);
    assert_eq!(s.task(Uuid::new_v4()).unwrap(), None);
}

/// A FAILED transfer reopens once, for a new attempt at its failed stage.
pub fn a_failed_transfer_reopens_once(make: &Make) {
    let s = make();
    let t = transfer("retry");
    s.create_transfer("k", &t).unwrap();
    s.start_job(t.id, &SPEC).unwrap();
    assert!(!s.reopen_transfer(t.id, "checksum").unwrap(), "a transfer still processing is not reopened");
    s.finish_job(t.id, "checksum", JobStatus::Failed).unwrap();
    s.end_transfer(t.id, TransferStatus::Failed, "clamd did not answer").unwrap();
    s.hide_transfer(t.id).unwrap();
    assert!(s.reopen_transfer(t.id, "checksum").unwrap());
    let reopened = s.transfer(t.id).unwrap().unwrap();
    assert_eq!(reopened.status, TransferStatus::Processing);
    assert_eq!(reopened.failure_reason, None);
    assert!(!reopened.hidden, "a reopened transfer is listed again");
    assert_eq!(s.job(t.id, "checksum").unwrap().unwrap().status, JobStatus::Processing);
    assert!(!s.reopen_transfer(t.id, "checksum").unwrap(), "once");
    let listed = s.list_transfers(&TransferQuery { limit: 10, ..Default::default() }).unwrap();
    assert_eq!(listed.items.len(), 1);
    s.complete_transfer(t.id, &StoredAip { key: "a".into(), version: 1, space: "born-digital".into(), dip: None })
        .unwrap();
    assert!(!s.reopen_transfer(t.id, "checksum").unwrap(), "a stored transfer is never reopened");
}

/// Every write at a commit point whose answer is lost after it went through (the one fault
/// injector, wrapped around the adapter), asked again as a redelivered message would ask,
/// leaves the state as one write leaves it: nothing counted twice, the first ending
/// standing, a moved checkpoint refusing the stale retry.
pub fn writes_whose_answers_are_lost_are_repeated_safely(make: &Make) {
    let inner: Arc<dyn StateStore> = Arc::from(make());
    let lose = Arc::new(LoseFirstAnswers::default());
    let s: Box<dyn StateStore> = Box::new(Faulty::new(inner.clone(), lose.clone()));
    let t = transfer("lost");
    assert!(s.create_transfer("k", &t).is_err(), "the first answer is lost");
    let (again, created) = s.create_transfer("k", &t).unwrap();
    assert!(!created && again.id == t.id, "the transfer was made once");

    let start = s.extract_checkpoint(t.id).unwrap();
    let files: Vec<File> = (0..2).map(|i| file(&t, i, 0)).collect();
    let events: Vec<PremisEvent> = files.iter().map(|f| event(&t, Some(f.uuid), "ingestion")).collect();
    assert!(s.commit_extract_batch(t.id, &start, &files, &events, 2).is_err());
    let stale = s.commit_extract_batch(t.id, &start, &files, &events, 2);
    assert!(matches!(stale, Err(PortError::Conflict(_))), "the retry learns the batch is in: {stale:?}");
    assert_eq!(
        s.extract_checkpoint(t.id).unwrap(),
        ExtractCheckpoint { next_entry: 2, batches: 1, files: 2, done: false }
    );
    assert!(s.finish_extract(t.id).is_err());
    assert!(s.finish_extract(t.id).unwrap().done);

    assert!(s.start_job(t.id, &JobSpec::of(Stage::Checksum)).is_err());
    let job = s.start_job(t.id, &JobSpec::of(Stage::Checksum)).unwrap();
    assert_eq!(s.jobs(t.id).unwrap().len(), 1, "one job");
    let tasks: Vec<Task> = files.iter().map(|f| task(&job, f)).collect();
    let digests: Vec<PremisEvent> =
        files.iter().map(|f| event(&t, Some(f.uuid), "message digest calculation")).collect();
    assert!(s.record_batch(t.id, "checksum", 0, &tasks, &digests, &[]).is_err());
    let recorded = s.record_batch(t.id, "checksum", 0, &tasks, &digests, &[]).unwrap();
    assert!(recorded.stage_complete, "the batch counts, once");
    assert_eq!(s.job(t.id, "checksum").unwrap().unwrap().batches_done, 1);
    assert_eq!(s.tasks(job.uuid).unwrap().len(), 2);

    let p = transfer("lost plan");
    s.create_transfer("kp", &p).unwrap();
    let planned = ExtractCheckpoint { next_entry: 2, batches: 1, files: 2, done: true };
    assert!(s.plan_extract(p.id, &ExtractCheckpoint::default(), &planned).is_err());
    let stale = s.plan_extract(p.id, &ExtractCheckpoint::default(), &planned);
    assert!(matches!(stale, Err(PortError::Conflict(_))), "the retry learns the plan is fixed: {stale:?}");
    assert_eq!(s.extract_checkpoint(p.id).unwrap(), planned);
    let planned_files: Vec<File> = (0..2).map(|i| file(&p, i, 0)).collect();
    assert!(s.write_extracted_batch(p.id, 0, &planned_files, &[]).is_err());
    s.write_extracted_batch(p.id, 0, &planned_files, &[]).unwrap();
    assert_eq!(s.all_files(p.id).unwrap().len(), 2, "each file once");

    let whole = [event(&t, None, "fixity check")];
    assert!(s.record_events(&whole).is_err());
    s.record_events(&whole).unwrap();
    assert_eq!(s.all_events(t.id).unwrap().len(), 5, "2 ingestions, 2 digests, 1 fixity check, each once");

    assert!(s.set_job_checkpoint(t.id, "checksum", None, "one").is_err());
    let stale = s.set_job_checkpoint(t.id, "checksum", None, "one");
    assert!(matches!(stale, Err(PortError::Conflict(_))), "{stale:?}");
    assert_eq!(s.job_checkpoint(t.id, "checksum").unwrap().as_deref(), Some("one"));

    assert!(s.assign_aip_version(t.id, "born-digital", "PP/LOST/1").is_err());
    assert_eq!(s.assign_aip_version(t.id, "born-digital", "PP/LOST/1").unwrap(), 1, "the version taken first");

    assert!(s.end_transfer(t.id, TransferStatus::Failed, "first").is_err());
    assert!(!s.end_transfer(t.id, TransferStatus::Failed, "second").unwrap(), "the first ending stands");
    assert_eq!(inner.transfer(t.id).unwrap().unwrap().failure_reason.as_deref(), Some("first"));
    assert!(lose.lost().len() >= 11, "every write above lost its first answer: {:?}", lose.lost());
}

/// A file a stage makes (a preservation copy) joins its original's batch after the batch's
/// originals, keeps the original it names as its source, and is written once however often
/// its batch is delivered; the original's batch listing still holds the original.
pub fn a_made_file_joins_its_batch_and_keeps_its_source(make: &Make) {
    let s = make();
    let t = transfer("m");
    s.create_transfer("key-m", &t).unwrap();
    let cp = s.extract_checkpoint(t.id).unwrap();
    let original = file(&t, 3, 0);
    s.commit_extract_batch(t.id, &cp, std::slice::from_ref(&original), &[], 1).unwrap();
    let copy = File {
        uuid: vellum_core::model::preservation_copy_id(original.uuid),
        entry_index: (1 << 62) + original.entry_index,
        file_use: FileUse::Preservation,
        original_path: "objects/3-copy.tif".into(),
        current_path: "objects/3-copy.tif".into(),
        source: Some(original.uuid),
        ..original.clone()
    };
    for _ in 0..2 {
        s.write_extracted_batch(t.id, 0, std::slice::from_ref(&copy), &[]).unwrap();
    }
    let batch = s.batch_files(t.id, 0, None, 10).unwrap().items;
    assert_eq!(batch.iter().map(|f| f.uuid).collect::<Vec<_>>(), [original.uuid, copy.uuid], "the copy after");
    assert_eq!(batch[1], copy, "read back as written: use, path and source");
    assert_eq!(batch[0].source, None);
}
