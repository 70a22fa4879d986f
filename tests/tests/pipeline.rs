//! The pipeline end to end in embedded mode: a valid AIP, idempotent stages, continuations
//! and dead letters.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vellum_contract::faults::{Fault, Faulty, Scripted};
use vellum_core::model::Stage;
use vellum_core::model::TransferStatus;
use vellum_core::ports::{EventLog, FileCatalogue, JobLedger, ObjectStore, Queue, TransferOversight, TransferRegister};
use vellum_core::Outcome;
use vellum_tests::{bagit_validate, unpack_aip, Package, TestEnv};

fn example_zip() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/PP-EXAMPLE.zip")
}

fn zip_entries(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut e = zip.by_index(i).unwrap();
        if e.is_dir() {
            continue;
        }
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        out.insert(e.name().unwrap().to_string(), bytes);
    }
    out
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn the_example_package_becomes_a_valid_aip_with_every_file_intact() {
    let t = TestEnv::new(3);
    let bytes = std::fs::read(example_zip()).unwrap();
    let meta = t.env.uploads.put("born-digital/PP-EXAMPLE.zip", &bytes).unwrap();
    let event = vellum_local::watcher::upload_event("uploads", &meta);
    t.env.queue.send(Stage::Start.name(), &serde_json::to_string(&event).unwrap()).unwrap();
    t.drive(|_, _| false);

    let transfer = t.transfer_for(&event).expect("a transfer");
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let key = transfer.aip_key.clone().unwrap();
    assert_eq!(key, format!("born-digital/PP/EXA/1/v1/PP-EXAMPLE-{}.tar.gz", transfer.aip_uuid));
    let unpacked = tempfile::tempdir().unwrap();
    let bag = unpack_aip(&t.env.aips.root().join(&key), unpacked.path());
    assert_eq!(bag.file_name().unwrap().to_string_lossy(), format!("PP-EXAMPLE-{}", transfer.aip_uuid));
    bagit_validate(&bag).expect("bagit-python accepts the AIP");
    // Every entry is in the AIP, byte for byte, under its sanitized name.
    let files = t.env.state.all_files(transfer.id).unwrap();
    let entries = zip_entries(&example_zip());
    let originals = files.iter().filter(|f| f.source.is_none()).count();
    assert_eq!(originals, entries.len(), "one file record per entry (beside the copies normalization made)");
    for (name, original) in entries {
        let file = files.iter().find(|f| f.original_path == name).unwrap_or_else(|| panic!("no record of {name}"));
        let in_aip = bag.join("data").join(vellum_core::record::aip::payload_path(&transfer, file));
        let stored = std::fs::read(&in_aip).unwrap_or_else(|e| panic!("{name} is not in the AIP at {in_aip:?}: {e}"));
        assert!(stored == original, "{name} differs in the AIP");
    }
    let renamed = files.iter().find(|f| f.original_path == "objects/notes/catalogue entry (draft).html").unwrap();
    assert_eq!(renamed.current_path, "objects/notes/catalogue_entry_(draft).html");
    let changes = std::fs::read_to_string(bag.join("data/logs/filenameChanges.log")).unwrap();
    assert!(
        changes.contains("objects/notes/catalogue entry (draft).html -> objects/notes/catalogue_entry_(draft).html"),
        "{changes}"
    );
    assert!(bag.join(format!("data/objects/metadata/transfers/PP-EXAMPLE-{}/metadata.csv", transfer.id)).is_file());
    let info = std::fs::read_to_string(bag.join("bag-info.txt")).unwrap();
    assert!(info.contains("External-Identifier: PP/EXA/1\n"), "{info}");
    assert!(info.contains(&format!("Internal-Sender-Identifier: {}\n", transfer.aip_uuid)), "{info}");
    let mets = std::fs::read_to_string(bag.join(format!("data/METS.{}.xml", transfer.aip_uuid))).unwrap();
    for file in t.env.state.all_files(transfer.id).unwrap() {
        assert!(mets.contains(&file.uuid.to_string()), "the METS names {}", file.original_path);
        assert!(mets.contains(file.sha256().unwrap()), "the METS carries the sha256 of {}", file.original_path);
    }
    assert_eq!(
        std::fs::read(t.dir.path().join("uploads/born-digital/PP-EXAMPLE.zip")).unwrap(),
        bytes,
        "the upload is untouched"
    );
    assert!(t.env.pipeline.working.list("").unwrap().is_empty(), "the working area is cleaned after storage");
}

/// What must be true, exactly once, of a finished transfer of `files` files.
fn assert_recorded_once(t: &TestEnv, transfer_id: uuid::Uuid, files: usize) {
    let transfer = t.env.state.transfer(transfer_id).unwrap().unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    assert_eq!(t.stored_aips().len(), 1, "one AIP: {:?}", t.stored_aips());
    assert_eq!(transfer.file_count as usize, files);
    let stored = t.env.state.all_files(transfer_id).unwrap();
    assert_eq!(stored.len(), files, "one record per file");
    let events = t.env.state.all_events(transfer_id).unwrap();
    let mut per_file: BTreeMap<(Option<uuid::Uuid>, String), usize> = BTreeMap::new();
    for e in &events {
        *per_file.entry((e.file_uuid, e.event_type.to_string())).or_default() += 1;
    }
    assert!(per_file.values().all(|&n| n == 1), "an event was recorded twice: {per_file:?}");
    vellum_tests::assert_every_file_has_its_events(&events, &stored);
    let checksum = t.env.state.job(transfer_id, Stage::Checksum.name()).unwrap().unwrap();
    assert_eq!(checksum.batches_done, transfer.batch_count, "no batch counted twice");
    assert_eq!(t.env.state.tasks(checksum.uuid).unwrap().len(), files);
    let jobs = t.env.state.jobs(transfer_id).unwrap();
    assert_eq!(jobs.len(), Stage::ALL.len(), "one job per stage: {jobs:?}");
}

#[test]
fn redelivering_any_stage_message_changes_nothing() {
    for stage in Stage::ALL.map(Stage::name) {
        let t = TestEnv::new(3);
        let event = t.upload(&Package::catalogued("PP/RE/1", 10), "born-digital/redelivery.zip");
        // Every message of this stage is delivered twice in a row.
        let mut repeated = HashSet::new();
        t.drive(|q, body| q == stage && repeated.insert(body.to_string()));
        let transfer = t.transfer_for(&event).unwrap();
        assert_eq!(transfer.batch_count, 4, "10 files and metadata.csv in batches of 3");
        assert_recorded_once(&t, transfer.id, 11);
        // And every message of every stage again, long after the transfer finished.
        let handled = t.drive(|_, _| false);
        assert!(handled.is_empty());
        let all: Vec<(String, String)> = repeated.iter().map(|b| (stage.to_string(), b.clone())).collect();
        for (q, body) in all {
            t.env.queue.send(&q, &body).unwrap();
        }
        let late = t.drive(|_, _| false);
        assert!(late.iter().all(|(_, _, o)| *o == Outcome::Ignored), "{stage}: {late:?}");
        assert_recorded_once(&t, transfer.id, 11);
        eprintln!("redelivery of {stage} messages: ok");
    }
}

#[test]
fn a_package_too_large_for_one_invocation_is_extracted_in_continuations() {
    let t = TestEnv::new(4);
    let event = t.upload(&Package::catalogued("PP/BIG/1", 25), "born-digital/continued.zip");
    // No time at all: every extract invocation does one entry, checkpoints and continues.
    let handled = t.drive_with_budget(Duration::ZERO, |_, _| false);
    let continued = handled.iter().filter(|(q, _, o)| q == Stage::Extract.name() && *o == Outcome::Continued).count();
    assert!(continued >= 20, "extraction continued {continued} times");
    let transfer = t.transfer_for(&event).unwrap();
    assert_recorded_once(&t, transfer.id, 26);
}

/// What a transfer's files are, stage by stage: path, name on record, digest, format and
/// the kinds of events each has, in the order they were written.
fn file_record(t: &TestEnv, transfer_id: uuid::Uuid) -> BTreeMap<String, (String, String, Vec<String>)> {
    let events = t.env.state.all_events(transfer_id).unwrap();
    t.env
        .state
        .all_files(transfer_id)
        .unwrap()
        .into_iter()
        .map(|f| {
            let kinds =
                events.iter().filter(|e| e.file_uuid == Some(f.uuid)).map(|e| e.event_type.to_string()).collect();
            (f.current_path.clone(), (f.original_path.clone(), f.sha256().unwrap_or_default().to_string(), kinds))
        })
        .collect()
}

#[test]
fn a_large_zip_is_extracted_in_ranges_each_once_with_the_record_of_one_line() {
    let package = Package::catalogued("PP/FAN/1", 40);
    // Batches of 2: 41 files make 21 batches, and ranges of 8 batches make three ranges.
    let t = TestEnv::new(2);
    let event = t.upload(&package, "born-digital/fan-out.zip");
    // Every extract message is delivered twice.
    let handled = t.drive(|q, _| q == Stage::Extract.name());
    let transfer = t.transfer_for(&event).unwrap();
    assert_recorded_once(&t, transfer.id, 41);
    assert_eq!(transfer.batch_count, 21);
    let ranges: Vec<u32> = handled
        .iter()
        .filter(|(q, _, _)| q == Stage::Extract.name())
        .filter_map(|(_, body, _)| {
            serde_json::from_str::<vellum_core::model::messages::StageMessage>(body).unwrap().batch
        })
        .collect();
    // One message per range, each delivered twice; the plan's message, delivered twice,
    // sends them twice.
    assert_eq!(ranges, [0, 0, 8, 8, 16, 16, 0, 0, 8, 8, 16, 16]);
    let extract = t.env.state.job(transfer.id, Stage::Extract.name()).unwrap().unwrap();
    assert_eq!(extract.batches_done, 21, "each batch counted once on the extract job");
    assert_eq!(extract.status, vellum_core::model::JobStatus::Completed);

    // The same package in one line (one batch, one range): the same files, digests and events.
    let one_line = TestEnv::new(64);
    let event = one_line.upload(&package, "born-digital/fan-out.zip");
    let handled = one_line.drive(|_, _| false);
    assert!(handled.iter().all(|(q, body, _)| q != Stage::Extract.name() || !body.contains("\"batch\"")));
    let sequential = one_line.transfer_for(&event).unwrap();
    assert_eq!(sequential.status, TransferStatus::Complete, "{:?}", sequential.failure_reason);
    assert_eq!(file_record(&t, transfer.id), file_record(&one_line, sequential.id));
}

/// Checks an unpacked bag the way a BagIt validator does for its payload: every file of
/// the manifest there with its sha256, and nothing in data/ the manifest does not list.
fn assert_manifest_holds(bag: &Path) {
    let manifest = std::fs::read_to_string(bag.join("manifest-sha256.txt")).unwrap();
    let mut listed = HashSet::new();
    for line in manifest.lines() {
        let (digest, path) = line.split_once("  ").unwrap();
        let bytes =
            std::fs::read(bag.join(path)).unwrap_or_else(|e| panic!("{path} is in the manifest, not the bag: {e}"));
        assert_eq!(vellum_tests::sha256_hex(&bytes), digest, "{path}");
        listed.insert(bag.join(path));
    }
    let in_data = vellum_tests::files_under(&bag.join("data"));
    assert_eq!(in_data.len(), listed.len(), "every payload file is in the manifest");
}

#[test]
fn a_package_of_many_batches_is_written_in_slices_each_once() {
    // Batches of 2: 41 files in 21 batches, a slice of the package for every 8: three.
    let package = Package::catalogued("PP/SLICES/1", 40);
    let t = TestEnv::new(2);
    let event = t.upload(&package, "born-digital/slices.zip");
    // Every package and store message is delivered twice.
    let handled = t.drive(|q, _| q == Stage::Package.name() || q == Stage::Store.name());
    let transfer = t.transfer_for(&event).unwrap();
    assert_recorded_once(&t, transfer.id, 41);
    let slices: Vec<u32> = handled
        .iter()
        .filter(|(q, _, _)| q == Stage::Package.name())
        .filter_map(|(_, body, _)| {
            serde_json::from_str::<vellum_core::model::messages::StageMessage>(body).unwrap().batch
        })
        .collect();
    assert_eq!(slices, [0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2], "a message a slice, twice; the plan's twice");
    let job = t.env.state.job(transfer.id, Stage::Package.name()).unwrap().unwrap();
    assert_eq!(job.batches_done, 21, "each slice counts its batches once");
    // And the stored AIP was read back a part an invocation.
    let read_back: Vec<u32> = handled
        .iter()
        .filter(|(q, _, _)| q == Stage::Store.name())
        .filter_map(|(_, body, _)| {
            serde_json::from_str::<vellum_core::model::messages::StageMessage>(body).unwrap().batch
        })
        .collect();
    assert_eq!(
        read_back,
        [0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2],
        "a message a part, twice; sent twice by the transfer's"
    );
    let (_, packaged) = vellum_core::record::aip::PackageCheckpoint::load(t.env.state.as_ref(), transfer.id).unwrap();
    assert_eq!((packaged.slices, packaged.parts.len()), (Some(3), 3));
    // The joined parts are one bag: every original byte for byte, the manifests true.
    let unpacked = tempfile::tempdir().unwrap();
    let bag = unpack_aip(&t.env.aips.root().join(transfer.aip_key.clone().unwrap()), unpacked.path());
    assert_manifest_holds(&bag);
    for f in t.env.state.all_files(transfer.id).unwrap() {
        let stored =
            std::fs::read(bag.join("data").join(vellum_core::record::aip::payload_path(&transfer, &f))).unwrap();
        let original = &package.entries.iter().find(|e| e.name == f.original_path).unwrap().bytes;
        assert!(&stored == original, "{} differs in the AIP", f.original_path);
    }
}

/// A package written in slices, stored twice: each part of each copy read back by an
/// invocation of its own, both copies verified in the record; a second location that
/// gives back other bytes fails the transfer, naming the part.
#[test]
fn an_aip_in_slices_is_read_back_a_part_an_invocation_in_both_copies() {
    let mut options = vellum_tests::options();
    options.settings.batch_size = Some(2);
    options.config.replica = Some(vellum_core::config::profile::ReplicaLocation { folder: "second-disk".into() });
    let t = TestEnv::with_options(options);
    let event = t.upload(&Package::catalogued("PP/SLICES/3", 40), "born-digital/slices.zip");
    let handled = t.drive(|_, _| false);
    let transfer = t.transfer_for(&event).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let parts = handled.iter().filter(|(q, body, _)| q == Stage::Store.name() && body.contains("\"batch\"")).count();
    assert_eq!(parts, 3, "a read-back a part");
    let verified: Vec<String> = t
        .env
        .state
        .all_events(transfer.id)
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "fixity check" && e.detail.contains("read back and verified in"))
        .map(|e| e.detail.rsplit(' ').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(verified, ["aips", "replica"], "both copies verified, in the record");

    let mut t = TestEnv::new(2);
    let bad = disk(&t, "bad-disk");
    t.env.pipeline.replica = Some(Arc::new(Disk { inner: bad, flip_ranges: true, copy_in_steps: false }));
    let event = t.upload(&Package::catalogued("PP/SLICES/4", 40), "born-digital/slices.zip");
    t.drive(|_, _| false);
    let transfer = t.transfer_for(&event).unwrap();
    assert_eq!(transfer.status, TransferStatus::Failed);
    let reason = transfer.failure_reason.unwrap_or_default();
    assert!(reason.contains("the replica of the AIP") && reason.contains("part "), "{reason}");
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn a_package_written_in_slices_is_a_valid_bag() {
    let t = TestEnv::new(2);
    let event = t.upload(&Package::catalogued("PP/SLICES/2", 40), "born-digital/slices.zip");
    t.drive(|_, _| false);
    let transfer = t.transfer_for(&event).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let unpacked = tempfile::tempdir().unwrap();
    let bag = unpack_aip(&t.env.aips.root().join(transfer.aip_key.clone().unwrap()), unpacked.path());
    bagit_validate(&bag).expect("bagit-python accepts the AIP written in slices");
}

#[test]
fn a_range_out_of_time_goes_on_from_its_next_batch() {
    let t = TestEnv::new(2);
    let event = t.upload(&Package::catalogued("PP/FAN/2", 40), "born-digital/fan-out.zip");
    // No time at extract: each range's invocation does one batch and continues.
    let handled = t.drive_with_budgets(
        |q| if q == Stage::Extract.name() { Duration::ZERO } else { Duration::from_secs(600) },
        |_, _| false,
    );
    // 21 batches in 3 ranges: every batch but a range's last hands on to a continuation.
    assert_eq!(vellum_tests::continued(&handled, Stage::Extract), 1 + 18, "the plan's message and 18 continuations");
    let transfer = t.transfer_for(&event).unwrap();
    assert_recorded_once(&t, transfer.id, 41);
}

/// Runs `pipeline` on the test's queues until the upload's transfer ends (a minute at most,
/// then each job's state is told).
fn run_until_it_ends(
    t: &TestEnv,
    pipeline: vellum_core::Pipeline,
    event: &vellum_core::model::messages::UploadEvent,
) -> vellum_core::model::Transfer {
    let config = vellum_local::RunnerConfig {
        retry_delay: Duration::from_millis(20),
        idle_poll: Duration::from_millis(20),
        ..Default::default()
    };
    let runner = vellum_local::Runner::start(pipeline, t.env.queue.clone(), config);
    let deadline = Instant::now() + Duration::from_secs(60);
    let transfer = loop {
        if let Some(tr) = t.transfer_for(event).filter(|tr| tr.status.is_terminal()) {
            break tr;
        }
        if Instant::now() >= deadline {
            let jobs = t.transfer_for(event).map(|tr| t.env.state.jobs(tr.id).unwrap()).unwrap_or_default();
            let jobs: Vec<String> =
                jobs.iter().map(|j| format!("{}: {:?}, {} batches", j.name, j.status, j.batches_done)).collect();
            panic!("the transfer never ended; jobs: {jobs:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    runner.stop();
    transfer
}

/// The range whose batch completes extraction finishes the job and then sends that batch
/// on; a delivery that dies between the two is delivered again to a finished job, and must
/// still send its last batch, or the transfer waits for it for ever.
#[test]
fn a_range_that_died_after_finishing_extraction_sends_its_last_batch_when_delivered_again() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let mut options = vellum_tests::options();
    options.settings.batch_size = Some(2);
    let env = vellum_local::Embedded::open(dir.path(), options).unwrap();
    let mut pipeline = env.pipeline.clone();
    let state = env.state.clone();
    let armed = Arc::new(AtomicBool::new(true));
    let failed_once = armed.clone();
    // The first send after the extract job is complete fails: the crash between the two.
    let after_extraction = Scripted {
        fail: Some(Box::new(move |what, _| {
            if what != "queue.send_batch" || !failed_once.load(Ordering::SeqCst) {
                return None;
            }
            let transfer = state.list_transfers(&Default::default()).unwrap().items.pop()?;
            let extract = state.job(transfer.id, Stage::Extract.name()).unwrap()?;
            (extract.status == vellum_core::model::JobStatus::Completed && failed_once.swap(false, Ordering::SeqCst))
                .then(|| Fault::Fail(vellum_core::ports::PortError::Unavailable("the runner was killed".into())))
        })),
        wrap: None,
    };
    pipeline.queue = Arc::new(Faulty::new(pipeline.queue.clone(), Arc::new(after_extraction)));
    let t = TestEnv { dir, env };
    let event = t.upload(&Package::catalogued("PP/FAN/3", 40), "born-digital/fan-out.zip");
    let transfer = run_until_it_ends(&t, pipeline, &event);
    assert!(!armed.load(Ordering::SeqCst), "the send after extraction finished was failed");
    assert_eq!(transfer.batch_count, 21, "extracted in ranges");
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    assert_recorded_once(&t, transfer.id, 41);
}

#[test]
fn a_streamed_zip_is_extracted_in_ranges() {
    // Sizes and CRCs in data descriptors, after the data: the central directory says where
    // each entry lies and what it holds, and a range reads it from there.
    let t = TestEnv::new(2);
    let bytes = Package::catalogued("PP/FAN/3", 40).streamed_zip();
    let event = t.upload_bytes(&bytes, "born-digital/streamed.zip");
    t.drive(|_, _| false);
    let transfer = t.transfer_for(&event).unwrap();
    assert_recorded_once(&t, transfer.id, 41);
    assert_eq!(t.env.state.job(transfer.id, Stage::Extract.name()).unwrap().unwrap().batches_done, 21);
}

#[test]
fn a_damaged_entry_in_a_range_fails_the_transfer_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.zip");
    let mut package = Package::catalogued("PP/FAN/4", 40);
    let content = "0123456789-this-content-is-damaged-after-zipping-".repeat(20);
    package.add("objects/damaged.txt", content.clone());
    package.write_zip_with(&path, zip::CompressionMethod::Stored);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(content.len()).position(|w| w == content.as_bytes()).unwrap() + 100;
    bytes[at] ^= 0x20;
    let t = TestEnv::new(2);
    let event = t.upload_bytes(&bytes, "born-digital/damaged.zip");
    t.drive(|_, _| false);
    let transfer = t.transfer_for(&event).unwrap();
    assert_eq!(transfer.status, TransferStatus::Failed);
    let reason = transfer.failure_reason.unwrap();
    assert!(reason.contains("objects/damaged.txt") && reason.contains("CRC-32"), "{reason}");
    assert!(t.stored_aips().is_empty());
    assert_eq!(
        std::fs::read(t.dir.path().join("uploads/born-digital/damaged.zip")).unwrap(),
        bytes,
        "the upload is untouched"
    );
}

#[test]
fn bad_packages_end_with_a_reason_and_the_upload_untouched() {
    let cases: Vec<(&str, Package, TransferStatus, &str)> = vec![
        ("elsewhere/x.zip", Package::catalogued("PP/1", 1), TransferStatus::Rejected, "not a known location"),
        (
            "born-digital/no-metadata.zip",
            {
                let mut p = Package::default();
                p.add("objects/a.txt", "a");
                p
            },
            TransferStatus::Rejected,
            "metadata/metadata.csv is missing",
        ),
        (
            "born-digital/no-identifier.zip",
            {
                let mut p = Package::default();
                p.add("metadata/metadata.csv", "filename,dc.identifier\nobjects/,\n").add("objects/a.txt", "a");
                p
            },
            TransferStatus::Rejected,
            "dc.identifier",
        ),
        (
            "born-digital/stray.zip",
            {
                let mut p = Package::catalogued("PP/2", 1);
                p.add("notes.txt", "outside");
                p
            },
            TransferStatus::Rejected,
            "outside objects/ and metadata/",
        ),
        (
            "born-digital/slip.zip",
            {
                let mut p = Package::catalogued("PP/3", 1);
                p.add("objects/../../escape.txt", "evil");
                p
            },
            TransferStatus::Rejected,
            "leads out of its folder",
        ),
    ];
    for (key, package, status, words) in cases {
        let t = TestEnv::new(10);
        let event = t.upload(&package, key);
        let before = std::fs::read(t.dir.path().join("uploads").join(key)).unwrap();
        t.drive(|_, _| false);
        let transfer = t.transfer_for(&event).unwrap_or_else(|| panic!("{key}: no transfer record"));
        assert_eq!(transfer.status, status, "{key}: {:?}", transfer.failure_reason);
        let reason = transfer.failure_reason.unwrap();
        assert!(reason.contains(words), "{key}: {reason}");
        assert!(t.stored_aips().is_empty());
        assert_eq!(std::fs::read(t.dir.path().join("uploads").join(key)).unwrap(), before, "{key}: upload modified");
    }
    // Not a zip at all.
    let t = TestEnv::new(10);
    let meta = t.env.uploads.put("born-digital/fake.zip", b"this is not a zip").unwrap();
    let event = vellum_local::watcher::upload_event("uploads", &meta);
    t.env.queue.send(Stage::Start.name(), &serde_json::to_string(&event).unwrap()).unwrap();
    t.drive(|_, _| false);
    let transfer = t.transfer_for(&event).unwrap();
    assert_eq!(transfer.status, TransferStatus::Rejected);
    assert!(transfer.failure_reason.unwrap().contains("or this is not a zip"));
}

#[test]
fn a_stage_that_keeps_failing_is_dead_lettered_and_its_transfer_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let options = vellum_local::EmbeddedOptions { max_receives: 2, ..vellum_tests::options() };
    let env = vellum_local::Embedded::open(dir.path(), options).unwrap();
    let mut pipeline = env.pipeline.clone();
    // The working area, failing every read of an extracted file: a transient fault that
    // never clears.
    let unreadable = Scripted::failing_reads(|key| {
        // Extracted files are kept by their UUID, under files/.
        key.contains("/files/")
            .then(|| vellum_core::ports::PortError::Unavailable("SlowDown: please reduce your request rate".into()))
    });
    pipeline.working = Arc::new(Faulty::new(pipeline.working.clone(), Arc::new(unreadable)));
    let t = TestEnv { dir, env };
    let event = t.upload(&Package::catalogued("PP/DLQ/1", 2), "born-digital/dlq.zip");
    let transfer = run_until_it_ends(&t, pipeline, &event);
    assert_eq!(transfer.status, TransferStatus::Failed);
    let reason = transfer.failure_reason.unwrap();
    assert!(
        reason.contains("Assign checksums and file sizes to objects") && reason.contains("dead-letter"),
        "{reason}"
    );
    assert!(reason.contains("SlowDown"), "the last error is kept: {reason}");
    let dead = t.env.queue.dead_letters(Stage::Checksum.name()).unwrap();
    assert_eq!(dead.len(), 1, "the message is kept in the dead-letter queue");
    assert_eq!(dead[0].receive_count, 2);
    assert!(t.stored_aips().is_empty());
}

/// A message dead-lettered half-way through a transfer (two batches done, the third's read
/// failing) fails the transfer; once the fault is gone, a redrive reopens it and it ends
/// COMPLETE with every file and event recorded once.
#[test]
fn a_redriven_message_finishes_its_transfer_without_duplicates() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let mut options = vellum_local::EmbeddedOptions { max_receives: 2, ..vellum_tests::options() };
    options.settings.batch_size = Some(2);
    let env = vellum_local::Embedded::open(dir.path(), options).unwrap();
    let mut pipeline = env.pipeline.clone();
    let broken = Arc::new(AtomicBool::new(true));
    let fault = broken.clone();
    let package = Package::catalogued("PP/REDRIVE/1", 6);
    // The working copy of objects/file-00004.txt, which is kept by its UUID: the UUID its
    // entry's index gives in the transfer the key names.
    let index = package.entries.iter().position(|e| e.name.ends_with("/file-00004.txt")).unwrap();
    let faulty = Scripted::failing_reads(move |key| {
        let is_the_file = key.split_once("/files/").is_some_and(|(transfer, file)| {
            transfer
                .parse::<uuid::Uuid>()
                .is_ok_and(|t| file == vellum_core::model::file_id(t, index as u64).to_string())
        });
        (fault.load(Ordering::SeqCst) && is_the_file)
            .then(|| vellum_core::ports::PortError::Unavailable("connection reset by peer".into()))
    });
    pipeline.working = Arc::new(Faulty::new(pipeline.working.clone(), Arc::new(faulty)));
    let t = TestEnv { dir, env };
    let event = t.upload(&package, "born-digital/redrive.zip");
    let config = vellum_local::RunnerConfig {
        retry_delay: Duration::from_millis(20),
        idle_poll: Duration::from_millis(20),
        ..Default::default()
    };
    let runner = vellum_local::Runner::start(pipeline, t.env.queue.clone(), config);
    let wait_for = |want: TransferStatus| {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(tr) = t.transfer_for(&event).filter(|tr| tr.status == want) {
                break tr;
            }
            assert!(Instant::now() < deadline, "the transfer never became {want:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let failed = wait_for(TransferStatus::Failed);
    assert!(failed.failure_reason.as_deref().unwrap().contains("connection reset by peer"));
    let listed =
        vellum_core::operations::monitor::dead_letters(t.env.state.as_ref(), t.env.queue.as_ref(), None).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].transfer_id, listed[0].stage.as_str()), (Some(failed.id), Stage::Checksum.name()));
    assert_eq!(listed[0].last_error.as_deref(), Some("connection reset by peer"));

    broken.store(false, std::sync::atomic::Ordering::SeqCst);
    let moved = vellum_core::operations::monitor::redrive(t.env.state.as_ref(), t.env.queue.as_ref(), None).unwrap();
    assert_eq!(moved, vec![(Stage::Checksum.name().to_string(), 1)]);
    let done = wait_for(TransferStatus::Complete);
    runner.stop();
    assert_eq!(done.id, failed.id);
    assert!(t.env.queue.dead_letters(Stage::Checksum.name()).unwrap().is_empty());
    let files = t.env.state.all_files(done.id).unwrap();
    assert_eq!(files.len(), 7, "six objects and metadata.csv, once each");
    let events = t.env.state.all_events(done.id).unwrap();
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e.uuid).collect();
    assert_eq!(ids.len(), events.len(), "no event twice");
    let digests = events.iter().filter(|e| e.event_type == "message digest calculation").count();
    assert_eq!(digests, files.len());
    assert_eq!(t.stored_aips().len(), 1);
}

/// A message on a queue that is no stage's, or a body no stage can read, is never
/// acknowledged and never panics: it comes back with the reason until the queue
/// dead-letters it.
#[test]
fn a_message_no_stage_can_take_is_given_back_with_the_reason() {
    let t = TestEnv::new(10);
    let ctx = vellum_core::StageContext::with_budget(Duration::from_secs(60));
    let unknown = t.env.pipeline.handle_queue("transcribe", "{}", &ctx);
    match &unknown {
        Outcome::Retry(why) => assert!(why.contains("no stage") && why.contains("\"transcribe\""), "{why}"),
        other => panic!("an unknown queue's message was {other:?}"),
    }
    assert!(!unknown.acknowledges());
    for stage in Stage::ALL {
        let unreadable = t.env.pipeline.handle(stage, "not a message", &ctx);
        assert!(matches!(&unreadable, Outcome::Retry(why) if why.contains(stage.name())), "{stage}: {unreadable:?}");
    }
}

/// A second storage location configured as data: every AIP is copied there and read back
/// before its transfer is COMPLETE, the record says where both copies were verified, and the
/// notice and the archivist's answer name the replica.
#[test]
fn with_a_replica_configured_every_aip_is_stored_twice_and_verified_in_both() {
    let mut options = vellum_tests::options();
    options.config.replica = Some(vellum_core::config::profile::ReplicaLocation { folder: "second-disk".into() });
    let t = TestEnv::with_options(options);
    let event = t.upload(&Package::catalogued("PP/TWICE/1", 4), "born-digital/twice.zip");
    t.drive(|_, _| false);
    let transfer = t.transfer_for(&event).expect("a transfer");
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let key = transfer.aip_key.clone().unwrap();
    let primary = std::fs::read(t.env.aips.root().join(&key)).unwrap();
    let second = std::fs::read(t.dir.path().join("second-disk").join(&key)).expect("the replica is stored");
    assert_eq!(primary, second, "the replica is the AIP, byte for byte");
    let events = t.env.state.all_events(transfer.id).unwrap();
    let verified: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "fixity check" && e.detail.contains("read back and verified in"))
        .map(|e| e.detail.rsplit(' ').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(verified, vec!["aips".to_string(), "replica".to_string()], "both copies verified, in the record");
    let notice = t.dir.path().join("notifications/born-digital").join(format!("{}.json", transfer.aip_uuid));
    let notice: serde_json::Value = serde_json::from_slice(&std::fs::read(notice).unwrap()).unwrap();
    assert_eq!(notice["replica"], "replica", "{notice}");
    let answer = t.env.uploads.list("born-digital/twice.zip.success.").unwrap();
    let mut text = String::new();
    t.env.uploads.get(&answer[0].key).unwrap().read_to_string(&mut text).unwrap();
    assert!(text.contains("A second copy is stored in replica"), "{text}");
}

/// A folder as a bucket that misbehaves as asked: every range read from it with its first
/// byte changed, or a copy into it that takes one step per part, stopping after each as a
/// deadline would stop it.
struct Disk {
    inner: Arc<vellum_local::fs_store::FsObjectStore>,
    flip_ranges: bool,
    copy_in_steps: bool,
}

impl ObjectStore for Disk {
    fn bucket(&self) -> &str {
        self.inner.bucket()
    }
    fn head(&self, key: &str) -> vellum_core::ports::PortResult<Option<vellum_core::ports::ObjectMeta>> {
        self.inner.head(key)
    }
    fn get(&self, key: &str) -> vellum_core::ports::PortResult<Box<dyn Read + Send>> {
        self.inner.get(key)
    }
    fn get_range(&self, key: &str, offset: u64, len: u64) -> vellum_core::ports::PortResult<Vec<u8>> {
        let mut bytes = self.inner.get_range(key, offset, len)?;
        if let Some(b) = bytes.first_mut().filter(|_| self.flip_ranges) {
            *b ^= 0xff;
        }
        Ok(bytes)
    }
    fn writer(&self, key: &str) -> vellum_core::ports::PortResult<Box<dyn vellum_core::ports::ObjectWriter>> {
        self.inner.writer(key)
    }
    fn list_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> vellum_core::ports::PortResult<vellum_core::ports::Page<vellum_core::ports::ObjectMeta>> {
        self.inner.list_page(prefix, after, limit)
    }
    fn put_tags(&self, key: &str, tags: &BTreeMap<String, String>) -> vellum_core::ports::PortResult<()> {
        self.inner.put_tags(key, tags)
    }
    fn get_tags(&self, key: &str) -> vellum_core::ports::PortResult<BTreeMap<String, String>> {
        self.inner.get_tags(key)
    }
    fn delete(&self, key: &str) -> vellum_core::ports::PortResult<()> {
        self.inner.delete(key)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn compose(
        &self,
        key: &str,
        source: &dyn ObjectStore,
        parts: &[String],
    ) -> vellum_core::ports::PortResult<vellum_core::ports::ObjectMeta> {
        self.inner.compose(key, source, parts)
    }
    fn compose_within(
        &self,
        key: &str,
        source: &dyn ObjectStore,
        parts: &[String],
        progress: &mut vellum_core::ports::ComposeProgress,
        _out_of_time: &dyn Fn() -> bool,
    ) -> vellum_core::ports::PortResult<Option<vellum_core::ports::ObjectMeta>> {
        if self.copy_in_steps && progress.pieces.len() < parts.len() {
            let number = progress.pieces.len() as u32 + 1;
            progress.pieces.push(vellum_core::ports::ComposedPiece {
                number,
                etag: format!("step {number}"),
                sha256: None,
            });
            return Ok(None);
        }
        self.inner.compose(key, source, parts).map(Some)
    }
}

fn disk(t: &TestEnv, folder: &str) -> Arc<vellum_local::fs_store::FsObjectStore> {
    Arc::new(vellum_local::fs_store::FsObjectStore::new(t.dir.path().join(folder), folder).unwrap())
}

/// An AIP copy that the deadline cuts, into its storage space and into the replica, goes on
/// from the store job's checkpoint in a new message, and the transfer completes.
#[test]
fn a_copy_cut_by_the_deadline_goes_on_from_the_checkpoint() {
    let mut t = TestEnv::new(50);
    let aips = t.env.aips.clone();
    t.env.pipeline.aips = Arc::new(Disk { inner: aips, flip_ranges: false, copy_in_steps: true });
    let second = disk(&t, "second-disk");
    t.env.pipeline.replica = Some(Arc::new(Disk { inner: second, flip_ranges: false, copy_in_steps: true }));
    let event = t.upload(&Package::catalogued("PP/STEPS/1", 3), "born-digital/steps.zip");
    let handled = t.drive(|_, _| false);
    let transfer = t.transfer_for(&event).expect("a transfer");
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let parts =
        vellum_core::record::aip::PackageCheckpoint::load(t.env.state.as_ref(), transfer.id).unwrap().1.parts.len();
    assert_eq!(
        vellum_tests::continued(&handled, Stage::Store),
        2 * parts,
        "a step per part, for each of the two copies"
    );
    let key = transfer.aip_key.clone().unwrap();
    assert_eq!(
        std::fs::read(t.env.aips.root().join(&key)).unwrap(),
        std::fs::read(t.dir.path().join("second-disk").join(&key)).unwrap()
    );
}

/// A second location that gives back other bytes than it was given (here every range read
/// from it has its first byte changed): the transfer is not COMPLETE, and its reason says
/// the replica failed verification; the AIP in its storage space is kept.
#[test]
fn a_replica_that_does_not_read_back_right_fails_the_transfer() {
    let mut t = TestEnv::new(50);
    let bad = disk(&t, "bad-disk");
    t.env.pipeline.replica = Some(Arc::new(Disk { inner: bad, flip_ranges: true, copy_in_steps: false }));
    let event = t.upload(&Package::catalogued("PP/BADDISK/1", 2), "born-digital/bad-disk.zip");
    t.drive(|_, _| false);
    let transfer = t.transfer_for(&event).expect("a transfer");
    assert_eq!(transfer.status, TransferStatus::Failed);
    let reason = transfer.failure_reason.unwrap_or_default();
    assert!(reason.contains("the replica of the AIP") && reason.contains("bad-disk"), "{reason}");
    assert!(reason.contains("failed verification"), "{reason}");
}
