//! The whole flow on the local AWS emulator: a package put into the uploads bucket with the
//! SDK reaches the start queue by S3's own notification, every stage runs through the
//! handler a function uses, and the AIP lands in the AIPs bucket under its storage space.

use std::sync::OnceLock;
use std::time::Duration;

use vellum_aws::app::{AwsApp, Names};
use vellum_aws::runner::Fleet;
use vellum_core::model::{Stage, Transfer, TransferStatus};
use vellum_core::ports::{
    EventLog, FileCatalogue, JobLedger, Queue, TransferOversight, TransferQuery, TransferRegister,
};
use vellum_tests::Package;

mod support;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

fn app() -> AwsApp {
    let names = Names::from_env()
        .unwrap_or_else(|e| panic!("{e}: these tests run on the local AWS emulator (eval \"$(infra/local/up)\")"));
    AwsApp::new(&names, runtime().handle().clone()).expect("the pipeline on the emulator")
}

/// Batches of 2 in every flow test: the fleets of tests running at once take each other's
/// messages, so they share one setting. A package of more than 16 files is spread over
/// extraction ranges, as one of more than 1,024 is with the profile's 128.
fn small_batches() -> vellum_core::config::Settings {
    vellum_core::config::Settings { batch_size: Some(2), ..Default::default() }
}

/// Each stage as its own function, with its function's keys (`VELLUM_LOCAL_ROLES`): the
/// emulator refuses what the function's role does not allow.
fn fleet() -> &'static Fleet {
    static FLEET: OnceLock<Fleet> = OnceLock::new();
    FLEET.get_or_init(|| {
        let names = Names::from_env().expect("the emulator's names");
        Fleet::from_env(&names, runtime().handle().clone())
            .expect("every stage's function")
            .with_settings(&small_batches())
    })
}

/// The fleets of tests running at once take each other's messages: every test drives its
/// own under a shared hold, and the one whose fleet lacks a permission drives alone, so no
/// other fleet finishes its transfer for it.
static DRIVING: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn driving_shared() -> std::sync::RwLockReadGuard<'static, ()> {
    DRIVING.read().unwrap_or_else(|e| e.into_inner())
}

fn driving_alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    DRIVING.write().unwrap_or_else(|e| e.into_inner())
}

fn transfer_of(app: &AwsApp, key: &str) -> Option<Transfer> {
    let page = app.state.list_transfers(&TransferQuery { limit: 1000, ..Default::default() }).unwrap();
    page.items.into_iter().find(|t| t.source_key == key)
}

fn ingest(app: &AwsApp, package: &Package, key: &str) -> Transfer {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("package.zip");
    package.write_zip(&zip);
    app.pipeline.uploads.put(key, &std::fs::read(&zip).unwrap()).unwrap();
    vellum_aws::runner::drive(fleet(), Duration::from_secs(600), Duration::from_secs(20), || {
        transfer_of(app, key).is_some_and(|t| t.status.is_terminal())
    })
    .unwrap();
    transfer_of(app, key).expect("the upload made a transfer")
}

#[test]
fn a_package_put_into_the_bucket_becomes_a_stored_verified_aip() {
    let _driving = driving_shared();
    let app = app();
    let key = format!("born-digital/flow-{}.zip", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let identifier = format!("PP/FLOW/{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let transfer = ingest(&app, &Package::catalogued(&identifier, 3), &key);
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let aip_key = transfer.aip_key.clone().unwrap();
    assert!(aip_key.starts_with(&format!("born-digital/{identifier}/v1/")), "{aip_key}");
    assert!(app.pipeline.aips.head(&aip_key).unwrap().is_some_and(|m| m.size > 1000), "the AIP is in the AIPs bucket");
    let replica = app.pipeline.replica.as_ref().expect("the emulator names a replica bucket (VELLUM_REPLICA_BUCKET)");
    assert_eq!(
        replica.head(&aip_key).unwrap().map(|m| m.size),
        app.pipeline.aips.head(&aip_key).unwrap().map(|m| m.size),
        "the second copy is in the replica bucket"
    );
    let events = app.state.all_events(transfer.id).unwrap();
    assert!(
        events.iter().any(|e| e.detail.ends_with("read back and verified in vellum-local-aips-replica")),
        "the replica's read-back is in the record"
    );
    let logs = app.pipeline.uploads.list(&format!("{key}.success.")).unwrap();
    assert_eq!(logs.len(), 1, "one success log beside the upload");
    let files = app.state.all_files(transfer.id).unwrap();
    assert_eq!(files.len(), 4, "three objects and metadata.csv");
    assert!(files.iter().all(|f| f.sha256().is_some() && f.format.is_some()), "checksummed and identified");
    let jobs = app.state.jobs(transfer.id).unwrap();
    assert_eq!(jobs.len(), Stage::ALL.len(), "a job per microservice");
}

/// Normalization on AWS's shape: every stage its own function with its own keys, the
/// normalize function making a preservation copy into the AIP and an access copy, a
/// thumbnail and OCR text, the store function putting the DIP into the DIPs bucket.
#[test]
fn a_package_of_images_becomes_an_aip_with_preservation_copies_and_a_dip_in_the_dips_bucket() {
    // Alone: another fleet, with the switches off, must not take this transfer's messages.
    let _driving = driving_alone();
    let app = app();
    let normalizing = Fleet::from_env(&Names::from_env().unwrap(), runtime().handle().clone())
        .expect("every stage's function")
        .with_settings(&small_batches())
        .with_profiles(|p| {
            p.normalize_for_preservation = true;
            p.normalize_for_access = true;
            p.thumbnails = true;
            p.store_dip = true;
            p.transcribe = true;
        });
    let key = format!("born-digital/dip-{}.zip", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let identifier = format!("PP/DIP/{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let work = tempfile::tempdir().unwrap();
    let png = work.path().join("plan.png");
    let made = std::process::Command::new("convert")
        .args([
            "-size",
            "300x80",
            "xc:white",
            "-fill",
            "black",
            "-pointsize",
            "40",
            "-annotate",
            "+10+55",
            "Ground plan",
        ])
        .arg(&png)
        .status()
        .expect("ImageMagick (scripts/test installs it)");
    assert!(made.success());
    let mut package = Package::catalogued(&identifier, 1);
    package.add("objects/plans/plan.png", std::fs::read(&png).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("package.zip");
    package.write_zip(&zip);
    app.pipeline.uploads.put(&key, &std::fs::read(&zip).unwrap()).unwrap();
    vellum_aws::runner::drive(&normalizing, Duration::from_secs(600), Duration::from_secs(20), || {
        transfer_of(&app, &key).is_some_and(|t| t.status.is_terminal())
    })
    .unwrap();
    let transfer = transfer_of(&app, &key).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let files = app.state.all_files(transfer.id).unwrap();
    let plan = files.iter().find(|f| f.current_path == "objects/plans/plan.png").unwrap();
    let copy = files
        .iter()
        .find(|f| f.file_use == vellum_core::model::FileUse::Preservation)
        .expect("a preservation copy of the PNG");
    assert_eq!((copy.source, copy.format.as_ref().map(|f| f.puid.as_str())), (Some(plan.uuid), Some("fmt/353")));
    assert!(copy.current_path.starts_with("objects/plans/plan-") && copy.current_path.ends_with(".tif"));
    let ocr = files.iter().find(|f| f.file_use == vellum_core::model::FileUse::Transcription).expect("OCR text");
    // The AIP holds the copy and the text beside the originals.
    let stored = app.pipeline.aips.get(transfer.aip_key.as_deref().unwrap()).unwrap();
    let mut names = Vec::new();
    let mut text = String::new();
    for entry in tar::Archive::new(flate2::read::MultiGzDecoder::new(stored)).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if name.ends_with(&ocr.current_path) {
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
        }
        names.push(name);
    }
    assert!(names.iter().any(|n| n.ends_with(&format!("data/{}", copy.current_path))), "{names:?}");
    assert!(text.contains("Ground plan"), "the OCR text in the AIP: {text:?}");
    // The DIP in the DIPs bucket, in Archivematica's layout.
    let dips = app.pipeline.dips.as_ref().expect("the emulator names a DIPs bucket (VELLUM_DIPS_BUCKET)");
    let folder = transfer.dip_key.clone().expect("a DIP stored with the AIP");
    let mut listed: Vec<String> =
        dips.list(&folder).unwrap().into_iter().map(|m| m.key[folder.len()..].to_string()).collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            format!("METS.{}.xml", transfer.sip_uuid),
            format!("objects/{}-plan.jpg", plan.uuid),
            format!("thumbnails/{}.jpg", plan.uuid),
        ]
    );
    let access = dips.get_range(&format!("{folder}objects/{}-plan.jpg", plan.uuid), 0, 3).unwrap();
    assert_eq!(access, [0xFF, 0xD8, 0xFF], "a JPEG access copy");
}

/// A long job on AWS's shape: a video larger than its rule's `long_above_bytes` is handed by
/// the normalize function, with its whole message, to the normalize-long queue, and the
/// long-job worker (the Fargate task, acting with its own task role) converts it there; with
/// no worker deployed the function records the file as not normalized, saying why, and the
/// transfer still completes.
#[test]
fn a_long_video_goes_to_the_long_job_worker_or_is_recorded_as_not_normalized() {
    let _driving = driving_alone();
    let app = app();
    let long_video = |fleet: Fleet| {
        fleet.with_settings(&small_batches()).with_profiles(|p| p.normalize_for_preservation = true).with_rules(
            |rules| {
                let rule = rules.rules.iter_mut().find(|r| r.name == "ffmpeg-to-ffv1-mkv").expect("the FFV1 rule");
                rule.long_above_bytes = Some(1);
            },
        )
    };
    let fleet = long_video(Fleet::from_env(&Names::from_env().unwrap(), runtime().handle().clone()).unwrap());
    let work = tempfile::tempdir().unwrap();
    let clip = work.path().join("clip.mp4");
    let made = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", "testsrc=duration=1:size=64x48:rate=5", "-pix_fmt", "yuv420p"])
        .arg(&clip)
        .status()
        .expect("FFmpeg (scripts/test installs it)");
    assert!(made.success());
    let upload = |tag: &str| {
        let key = format!("born-digital/long-{tag}-{}.zip", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let mut package =
            Package::catalogued(&format!("PP/LONG/{}", &uuid::Uuid::new_v4().simple().to_string()[..6]), 1);
        package.add("objects/film/clip.mp4", std::fs::read(&clip).unwrap());
        let zip = work.path().join(format!("{tag}.zip"));
        package.write_zip(&zip);
        app.pipeline.uploads.put(&key, &std::fs::read(&zip).unwrap()).unwrap();
        key
    };
    let ended = |key: &str| transfer_of(&app, key).is_some_and(|t| t.status.is_terminal());

    // No worker deployed: the function does not run into its time limit; it says why.
    let key = upload("not-run");
    let alone = fleet.clone().with_long_jobs(vellum_core::LongJobs::NotRun);
    vellum_aws::runner::drive(&alone, Duration::from_secs(600), Duration::from_secs(20), || ended(&key)).unwrap();
    let transfer = transfer_of(&app, &key).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    assert_eq!(transfer.files_not_normalized, Some(1));
    let events = app.state.all_events(transfer.id).unwrap();
    let said = events
        .iter()
        .find(|e| e.event_type == "normalization" && e.outcome == vellum_core::model::EventOutcome::Fail)
        .expect("the long video's normalization recorded as failed");
    assert!(said.outcome_detail.contains("long-job worker"), "{}", said.outcome_detail);

    // Handed off: nothing happens until the worker takes the message...
    let key = upload("handed-off");
    let handing_off = fleet.with_long_jobs(vellum_core::LongJobs::HandOff);
    let no_worker = handing_off.clone().without_long_job_workers();
    vellum_aws::runner::drive(&no_worker, Duration::from_secs(600), Duration::from_secs(8), || ended(&key)).unwrap();
    let waiting = transfer_of(&app, &key).unwrap();
    assert_eq!(waiting.status, TransferStatus::Processing, "it waits for the long-job worker");
    assert!(app.queue.depth(Stage::Normalize.long_jobs_queue().unwrap()).unwrap() >= 1, "the batch waits there");
    // ...and the worker, acting with its task role, makes the FFV1 copy into the AIP.
    vellum_aws::runner::drive(&handing_off, Duration::from_secs(600), Duration::from_secs(20), || ended(&key)).unwrap();
    let transfer = transfer_of(&app, &key).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    assert_eq!(transfer.files_not_normalized, Some(0));
    let files = app.state.all_files(transfer.id).unwrap();
    let copy = files
        .iter()
        .find(|f| f.file_use == vellum_core::model::FileUse::Preservation)
        .expect("the long job's preservation copy");
    assert!(copy.current_path.starts_with("objects/film/clip-") && copy.current_path.ends_with(".mkv"));
    let stored = app.pipeline.aips.get(transfer.aip_key.as_deref().unwrap()).unwrap();
    let mut head = Vec::new();
    for entry in tar::Archive::new(flate2::read::MultiGzDecoder::new(stored)).entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy().ends_with(&copy.current_path) {
            std::io::Read::read_to_end(&mut std::io::Read::take(&mut entry, 4), &mut head).unwrap();
        }
    }
    assert_eq!(head, [0x1A, 0x45, 0xDF, 0xA3], "a Matroska file in the AIP");
}

/// Paths past S3's 1,024-byte keys, on AWS's shape: the working copies are keyed by file, so
/// a deep tree is extracted, processed and stored as in embedded mode.
#[test]
fn a_tree_whose_paths_pass_one_kilobyte_is_stored_on_s3() {
    let _driving = driving_shared();
    let app = app();
    let deep = format!("objects/{}/minutes.txt", vec!["Committee papers 1950-1959"; 60].join("/"));
    let mut package = Package::catalogued(&format!("PP/DEEP/{}", &uuid::Uuid::new_v4().simple().to_string()[..6]), 1);
    package.add(&deep, "at the bottom of the tree");
    let key = format!("born-digital/deep-{}.zip", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let transfer = ingest(&app, &package, &key);
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let files = app.state.all_files(transfer.id).unwrap();
    let f = files.iter().find(|f| f.original_path == deep).expect("the deep file on record");
    let stored = app.pipeline.aips.get(transfer.aip_key.as_deref().unwrap()).unwrap();
    let mut found = None;
    for entry in tar::Archive::new(flate2::read::MultiGzDecoder::new(stored)).entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy().ends_with(&f.current_path) {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
            found = Some(text);
        }
    }
    assert_eq!(found.as_deref(), Some("at the bottom of the tree"), "the deep file in the AIP");
}

#[test]
fn a_large_zip_is_extracted_in_ranges_and_packaged_in_slices_each_by_its_own_invocation() {
    let _driving = driving_shared();
    let app = app();
    let key = format!("born-digital/ranges-{}.zip", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let identifier = format!("PP/RANGES/{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    // Batches of 2: 41 files in 21 batches, three ranges of at most 8 batches.
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("package.zip");
    Package::catalogued(&identifier, 40).write_zip(&zip);
    app.pipeline.uploads.put(&key, &std::fs::read(&zip).unwrap()).unwrap();
    vellum_aws::runner::drive(fleet(), Duration::from_secs(600), Duration::from_secs(20), || {
        transfer_of(&app, &key).is_some_and(|t| t.status.is_terminal())
    })
    .unwrap();
    let transfer = transfer_of(&app, &key).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    assert_eq!((transfer.file_count, transfer.batch_count), (41, 21));
    let extract = app.state.job(transfer.id, Stage::Extract.name()).unwrap().unwrap();
    assert_eq!(extract.batches_done, 21, "every batch extracted by a range and counted once");
    let files = app.state.all_files(transfer.id).unwrap();
    assert_eq!(files.len(), 41);
    assert!(files.iter().all(|f| f.sha256().is_some()), "every file went on to the per-file stages");
    // And the package was written in three slices, each by its own invocation.
    let (_, packaged) = vellum_core::record::aip::PackageCheckpoint::load(app.state.as_ref(), transfer.id).unwrap();
    assert_eq!((packaged.slices, packaged.parts.len()), (Some(3), 3));
    assert_eq!(app.state.job(transfer.id, Stage::Package.name()).unwrap().unwrap().batches_done, 21);
}

#[test]
fn a_bad_package_is_refused_with_its_log() {
    let _driving = driving_shared();
    let app = app();
    let key = format!("born-digital/stray-{}.zip", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut package = Package::catalogued("PP/STRAY/1", 1);
    package.add("README.txt", "outside the two folders");
    let transfer = ingest(&app, &package, &key);
    assert_eq!(transfer.status, TransferStatus::Rejected);
    assert!(
        transfer.failure_reason.as_deref().unwrap_or_default().contains("README.txt"),
        "{:?}",
        transfer.failure_reason
    );
    let logs = app.pipeline.uploads.list(&format!("{key}.failed.")).unwrap();
    assert_eq!(logs.len(), 1, "one failed log beside the upload");
}

/// At-least-once delivery on AWS: the S3 notification delivered three times, and every
/// stage message delivered twice as it flows, make one transfer, one AIP version and one
/// set of events.
#[test]
fn duplicated_notifications_and_messages_make_one_transfer() {
    let _driving = driving_shared();
    use std::collections::HashSet;
    use vellum_core::model::Stage;
    use vellum_core::ports::Queue;

    let app = app();
    let key = format!("born-digital/twice-{}.zip", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let identifier = format!("PP/TWICE/{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("package.zip");
    Package::catalogued(&identifier, 4).write_zip(&zip);
    app.pipeline.uploads.put(&key, &std::fs::read(&zip).unwrap()).unwrap();

    let mut copied: HashSet<String> = HashSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !transfer_of(&app, &key).is_some_and(|t| t.status.is_terminal()) {
        assert!(std::time::Instant::now() < deadline, "the transfer never ended");
        let mut any = false;
        for stage in Stage::ALL {
            let queue = stage.name();
            let function = fleet().app(stage);
            let deliveries = function.queue.receive(queue, 10, Duration::from_secs(60)).unwrap();
            let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
            for d in &deliveries {
                any = true;
                // Each message once more: twice for stage messages, three times for the upload's.
                let copies = if stage == Stage::Start && d.body.contains(&identifier_key(&key)) { 2 } else { 1 };
                if copied.insert(d.body.clone()) {
                    for _ in 0..copies {
                        app.queue.send(queue, &d.body).unwrap();
                    }
                }
                let mut m = aws_lambda_events::event::sqs::SqsMessage::default();
                m.message_id = Some(d.message_id.clone());
                m.body = Some(d.body.clone());
                event.records.push(m);
            }
            let answer = vellum_aws::lambda::handle_sqs(
                &function.pipeline,
                stage,
                &event,
                vellum_core::StageContext::with_budget(Duration::from_secs(600)),
            );
            for d in &deliveries {
                if !answer.batch_item_failures.iter().any(|f| f.item_identifier == d.message_id) {
                    function.queue.ack(queue, &d.receipt).unwrap();
                }
            }
        }
        if !any {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // What is still queued (the last copies) is handled too: it must change nothing.
    vellum_aws::runner::drive(fleet(), Duration::from_secs(600), Duration::from_secs(3), || false).unwrap();
    let transfer = transfer_of(&app, &key).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let all = app.state.list_transfers(&TransferQuery { limit: 200, ..Default::default() }).unwrap().items;
    assert_eq!(all.iter().filter(|t| t.source_key == key).count(), 1, "one transfer for the upload");
    assert_eq!(transfer.aip_version, Some(1));
    let stored = app.pipeline.aips.list(&format!("born-digital/{identifier}/")).unwrap();
    assert_eq!(stored.len(), 1, "one AIP: {stored:?}");
    let events = app.state.all_events(transfer.id).unwrap();
    let ids: HashSet<_> = events.iter().map(|e| e.uuid).collect();
    assert_eq!(ids.len(), events.len(), "no event twice");
    let files = app.state.all_files(transfer.id).unwrap();
    let digests = events.iter().filter(|e| e.event_type == "message digest calculation").count();
    assert_eq!(digests, files.len(), "one digest event a file");
}

/// How the upload's key appears in an S3 notification's body (URL-encoded by the emulator).
fn identifier_key(key: &str) -> String {
    key.rsplit('/').next().unwrap_or(key).to_string()
}

/// A package put outside the profile prefixes is refused, with its log, as in embedded mode:
/// S3 notifies the start queue of every package, and intake says why it starts nothing.
#[test]
fn a_package_outside_the_profile_prefixes_is_refused_with_its_log() {
    let _driving = driving_shared();
    let app = app();
    let key = format!("somewhere-else/lost-{}.zip", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let transfer = ingest(&app, &Package::catalogued("PP/LOST/1", 1), &key);
    assert_eq!(transfer.status, TransferStatus::Rejected);
    let reason = transfer.failure_reason.unwrap_or_default();
    assert!(reason.contains("not a known location"), "{reason}");
    assert_eq!(app.pipeline.uploads.list(&format!("{key}.failed.")).unwrap().len(), 1, "one failed log beside it");
}

/// Puts the bytes under `key` and drives the pipeline until its transfer ends.
fn ingest_bytes(app: &AwsApp, bytes: &[u8], key: &str) -> Transfer {
    app.pipeline.uploads.put(key, bytes).unwrap();
    vellum_aws::runner::drive(fleet(), Duration::from_secs(600), Duration::from_secs(20), || {
        transfer_of(app, key).is_some_and(|t| t.status.is_terminal())
    })
    .unwrap();
    transfer_of(app, key).expect("the upload made a transfer")
}

/// The one log of `outcome` beside the upload, with the transfer's id masked.
fn log_text(store: &dyn vellum_core::ports::ObjectStore, key: &str, outcome: &str, transfer: &Transfer) -> String {
    let logs = store.list(&format!("{key}.{outcome}.")).unwrap();
    assert_eq!(logs.len(), 1, "one {outcome} log beside {key}");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut store.get(&logs[0].key).unwrap(), &mut text).unwrap();
    text.replace(&transfer.id.to_string(), "<transfer>")
}

/// Bad packages end on AWS as they end in embedded mode: the same status, the same reason
/// and the same log beside the upload, word for word.
#[test]
fn bad_packages_end_as_in_embedded_mode_with_the_same_logs() {
    let _driving = driving_shared();
    let app = app();
    let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
    for bad in vellum_tests::bad_packages::bad_packages() {
        // The catalogue's key, made unique on the emulator, which outlives a test.
        let key = match bad.key.rsplit_once('/') {
            Some((folder, file)) => format!("{folder}/parity-{run}-{file}"),
            None => format!("parity-{run}-{}", bad.key),
        };
        let local = vellum_tests::TestEnv::new(50);
        let path = local.dir.path().join("package.zip");
        std::fs::write(&path, &bad.bytes).unwrap();
        let embedded = local.ingest_file(&path, &key);
        let aws = ingest_bytes(&app, &bad.bytes, &key);
        assert_eq!(embedded.status, bad.status, "{}: {:?}", bad.name, embedded.failure_reason);
        assert_eq!(aws.status, embedded.status, "{}", bad.name);
        assert_eq!(aws.failure_reason, embedded.failure_reason, "{}", bad.name);
        assert_eq!(
            log_text(app.pipeline.uploads.as_ref(), &key, "failed", &aws),
            log_text(local.env.uploads.as_ref(), &key, "failed", &embedded),
            "{}: the logs differ",
            bad.name
        );
    }
}

/// The monitor's sweep: a stage message in a dead-letter queue ends its transfer as FAILED
/// with the reason in words, leaves the message for an operator to redrive, and a second
/// sweep changes nothing.
#[test]
fn a_dead_lettered_message_fails_its_transfer_with_the_reason() {
    let _driving = driving_shared();
    use vellum_core::model::messages::StageMessage;
    use vellum_core::model::Stage;
    use vellum_core::ports::Queue;

    let app = app();
    let prefix = format!("vellum-sweep-{}-", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let sqs = aws_sdk_sqs::Client::new(&vellum_aws::load_config(runtime().handle()));
    let queue = vellum_aws::SqsQueue::new(sqs.clone(), &prefix, runtime().handle().clone());
    // Every queue the template makes: each stage's, and the long-job queue.
    for q in Stage::ALL.into_iter().flat_map(Stage::queues) {
        queue.create(q, 3).unwrap();
    }
    let id = uuid::Uuid::new_v4();
    let now = vellum_core::ports::Clock::now(&vellum_core::ports::SystemClock);
    let key = format!("born-digital/swept-{}.zip", id.simple());
    let transfer = Transfer::new(id, uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), "uploads", &key, now);
    app.state.create_transfer(&format!("sweep-{id}"), &transfer).unwrap();
    let url = runtime().block_on(sqs.get_queue_url().queue_name(format!("{prefix}checksum-dlq")).send()).unwrap();
    let body = serde_json::to_string(&StageMessage { batch: Some(0), ..StageMessage::transfer(id) }).unwrap();
    runtime().block_on(sqs.send_message().queue_url(url.queue_url().unwrap()).message_body(body).send()).unwrap();

    let sweep =
        vellum_core::operations::monitor::sweep_dead_letters(app.state.as_ref(), app.pipeline.uploads.as_ref(), &queue)
            .unwrap();
    assert_eq!(sweep.per_stage, vec![(Stage::Checksum.name().to_string(), 1)]);
    assert_eq!(sweep.transfers, 1);
    let failed = app.state.transfer(id).unwrap().unwrap();
    assert_eq!(failed.status, TransferStatus::Failed);
    let reason = failed.failure_reason.unwrap();
    assert!(reason.contains("\"Assign checksums and file sizes to objects\" microservice failed"), "{reason}");
    assert!(reason.contains("dead-letter queue") && reason.contains("redrive"), "{reason}");
    let answers: Vec<String> =
        app.pipeline.uploads.list(&failed.source_key).unwrap().into_iter().map(|m| m.key).collect();
    assert!(answers.iter().any(|k| k.contains(".failed.")), "the archivist is told, on S3 too: {answers:?}");

    let again =
        vellum_core::operations::monitor::sweep_dead_letters(app.state.as_ref(), app.pipeline.uploads.as_ref(), &queue)
            .unwrap();
    assert_eq!(again.per_stage, sweep.per_stage, "the message stays for the operator");
    assert_eq!(app.state.transfer(id).unwrap().unwrap().failure_reason.as_deref(), Some(reason.as_str()));
    assert_eq!(queue.dead_letters(Stage::Checksum.name()).unwrap().len(), 1);
}

/// The start-test-transfer function's work on the emulator, with the stages running beside
/// it as their functions would: the test transfer is stored in the testing space and every
/// check passes.
#[cfg(feature = "lambda")]
#[test]
fn the_end_to_end_test_transfer_function_passes() {
    let _driving = driving_shared();
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let stages = std::thread::spawn(move || {
        while !stopping.load(Ordering::SeqCst) {
            match vellum_aws::runner::poll_once(
                fleet(),
                Duration::from_secs(600),
                Duration::from_secs(60),
                Duration::from_secs(1),
            ) {
                Ok(0) => std::thread::sleep(Duration::from_millis(100)),
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
    });
    let names = Names::from_env().unwrap();
    let config = vellum_aws::roles::config_as(runtime().handle(), vellum_aws::roles::TEST_TRANSFER).unwrap();
    let records = vellum_aws::app::Records::with_config(&names, runtime().handle().clone(), config).unwrap();
    let report = vellum_aws::function::test_transfer(&records, None, Duration::from_secs(240));
    stop.store(true, Ordering::SeqCst);
    stages.join().unwrap();
    let report = report.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report["passed"], true, "{report}");
    assert!(report["identifier"].as_str().unwrap().starts_with("archivematica-dev/TEST"));
}

/// The load test on the emulator: packages put into the bucket at once, a fifth of them bad
/// ones from the catalogue (each wrong in its own way), then the pipeline run until every one
/// has ended. Each ends as it must, with one answer beside it, and nothing is dead-lettered.
/// The time and files/s are printed (the emulator's, one process driving every stage). The
/// emulator takes minutes for fifty, so the test command runs ten and `scripts/load
/// --aws` the fifty (`VELLUM_LOAD_PACKAGES`).
#[test]
fn packages_at_once_a_fifth_bad_each_get_their_answer_on_the_emulator() {
    let _driving = driving_shared();
    let total: usize = std::env::var("VELLUM_LOAD_PACKAGES").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let (bad_wanted, good) = (total / 5, total - total / 5);
    let app = app();
    let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let mut expected: Vec<(String, TransferStatus)> = Vec::new();
    let mut seen_kinds = std::collections::HashSet::new();
    for bad in vellum_tests::bad_packages::bad_packages() {
        if expected.len() == bad_wanted || !seen_kinds.insert(bad.words.first().copied()) || bad.key.contains("..") {
            continue;
        }
        let key = match bad.key.rsplit_once('/') {
            Some((folder, file)) => format!("{folder}/load-{run}-{file}"),
            None => format!("load-{run}-{}", bad.key),
        };
        if !vellum_core::model::starts_a_transfer(&key) {
            continue;
        }
        expected.push((key, bad.status));
        app.pipeline.uploads.put(&expected.last().unwrap().0, &bad.bytes).unwrap();
    }
    assert_eq!(expected.len(), bad_wanted, "bad packages of different kinds");
    let dir = tempfile::tempdir().unwrap();
    for i in 0..good {
        let key = format!("born-digital/load-{run}-{i:02}.zip");
        let zip = dir.path().join(format!("{i}.zip"));
        Package::catalogued(&format!("PP/LOAD/{run}/{i}"), 5).write_zip(&zip);
        app.pipeline.uploads.put(&key, &std::fs::read(&zip).unwrap()).unwrap();
        expected.push((key, TransferStatus::Complete));
    }
    let started = std::time::Instant::now();
    let ended = |app: &AwsApp| {
        let page = app.state.list_transfers(&TransferQuery { limit: 500, ..Default::default() }).unwrap();
        expected
            .iter()
            .filter(|(key, _)| page.items.iter().any(|t| &t.source_key == key && t.status.is_terminal()))
            .count()
    };
    // Listing every transfer is slow on the emulator: looked at every two seconds at most.
    let looked = std::cell::Cell::new(std::time::Instant::now());
    vellum_aws::runner::drive(fleet(), Duration::from_secs(600), Duration::from_secs(20), || {
        if looked.get().elapsed() < Duration::from_secs(2) {
            return false;
        }
        looked.set(std::time::Instant::now());
        ended(&app) == total
    })
    .unwrap();
    let wall = started.elapsed().as_secs_f64();
    let mut wrong = Vec::new();
    for (key, status) in &expected {
        let t = transfer_of(&app, key).expect("a transfer for every upload");
        let kind = if *status == TransferStatus::Complete { "success" } else { "failed" };
        let answers = app.pipeline.uploads.list(&format!("{key}.")).unwrap();
        let finals: Vec<_> = answers.iter().filter(|m| !m.key.contains(".accepted.")).collect();
        if t.status != *status || finals.len() != 1 || !finals[0].key.contains(&format!(".{kind}.")) {
            wrong.push(format!("{key}: {:?} {:?}, answers {:?}", t.status, t.failure_reason, finals));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    for q in Stage::ALL.map(Stage::name) {
        assert!(app.queue.dead_letters(q).unwrap().is_empty(), "nothing dead-lettered in {q}");
    }
    eprintln!(
        "{total} packages ({bad_wanted} bad) on the emulator: {wall:.1} s, {:.1} files/s",
        (good * 6) as f64 / wall
    );
}

/// IAM on the emulator is enforced, not assumed: with a copy of the template whose checksum
/// function may no longer send to the scan queue, each function under that copy's policies,
/// a package does not become an AIP, and its transfer's reason names the refused action.
#[test]
fn a_permission_taken_from_a_role_stops_the_flow_naming_the_action() {
    let _driving = driving_alone();
    let template = std::fs::read_to_string(support::root().join("template.yaml")).unwrap();
    let granted = "Resource: [!GetAtt ChecksumQueue.Arn, !GetAtt ScanQueue.Arn]";
    assert_eq!(template.matches(granted).count(), 1, "the checksum function's sending statement");
    let dir = tempfile::tempdir().unwrap();
    let narrowed = dir.path().join("template.yaml");
    std::fs::write(&narrowed, template.replace(granted, "Resource: [!GetAtt ChecksumQueue.Arn]")).unwrap();
    let suffix = format!("-narrowed-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let roles = support::users_of_their_own(Some(&narrowed), &suffix);
    let names = Names::from_env().unwrap();
    let narrowed =
        Fleet::with_roles(&names, runtime().handle().clone(), Some(&roles)).unwrap().with_settings(&small_batches());

    let app = app();
    let key = format!("born-digital/narrowed-{}.zip", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let zip = dir.path().join("package.zip");
    Package::catalogued(&format!("PP/NARROW/{}", &suffix[10..]), 2).write_zip(&zip);
    app.pipeline.uploads.put(&key, &std::fs::read(&zip).unwrap()).unwrap();
    vellum_aws::runner::drive(&narrowed, Duration::from_secs(600), Duration::from_secs(10), || {
        transfer_of(&app, &key).is_some_and(|t| t.status.is_terminal())
    })
    .unwrap();
    let transfer = transfer_of(&app, &key).expect("the upload made a transfer");
    assert_ne!(transfer.status, TransferStatus::Complete, "a role without its permission cannot make an AIP");
    let reason = transfer.failure_reason.unwrap_or_default();
    // The statement taken away allowed sqs:GetQueueUrl and sqs:SendMessage: the first asked is refused.
    assert!(
        reason.contains("ChecksumFunction")
            && reason.contains("not authorized to perform: sqs:")
            && reason.contains("vellum-local-scan"),
        "{reason}"
    );
    assert!(app.state.job(transfer.id, Stage::Scan.name()).unwrap().is_none(), "scan never began");
}
