//! Nothing lost, nothing duplicated, under faults: every port wrapped so that, driven by a
//! seed, calls fail before or after their writes or are delayed, and messages come twice,
//! late and out of order. A good package still ends COMPLETE with the AIP of the fault-free
//! run, byte for byte, every file, task and event recorded once, and one success answer
//! beside the upload. At high fault rates a transfer may fail, with its reason, but is never
//! COMPLETE with a wrong AIP, and no partial AIP is ever where a reader would find it.
//!
//! A failing seed is printed; `VELLUM_CHAOS_SEED=<seed> cargo test -p vellum-tests --test
//! faults` replays it, and `scripts/chaos [RUNS]` runs more seeds.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::TimeZone;
use uuid::Uuid;
use vellum_core::model::messages::UploadEvent;
use vellum_core::model::Stage;
use vellum_core::model::{Timestamp, TransferStatus};
use vellum_core::ports::{Clock, EventLog, FileCatalogue, JobLedger, ObjectStore, Queue};
use vellum_tests::faults::{drive_with_faults, faulty_pipeline, Faults};
use vellum_tests::{Package, TestEnv};

/// The same times and ids, run after run, so two runs' AIPs can be compared byte for byte.
struct Pinned(AtomicU64);

impl Clock for Pinned {
    fn now(&self) -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap()
    }
    fn new_id(&self) -> Uuid {
        Uuid::from_u64_pair(0x0046_4155_4c54, self.0.fetch_add(1, Ordering::SeqCst))
    }
}

fn package() -> Package {
    let mut p = Package::catalogued("PP/FAULTS/1", 0);
    for i in 0..11 {
        p.add(&format!("objects/box {}/letter-{i}.txt", i % 3), format!("letter {i}\n").repeat(40 + i * 30));
    }
    p.add("objects/scans/blank.png", vellum_tests::tiny_png());
    p
}

/// What a run left: how it ended, and what is recorded and stored.
#[derive(Debug, PartialEq)]
struct Run {
    status: TransferStatus,
    reason: Option<String>,
    /// The stored AIP, unzipped (gzip members may be cut differently).
    aip: Option<Vec<u8>>,
    /// Objects in the AIP store: only the AIP, or nothing.
    stored: Vec<String>,
    /// Per file path (or "transfer"), each event type and how often.
    events: BTreeMap<(String, String), usize>,
    /// Per job, how many tasks.
    tasks: BTreeMap<String, usize>,
    files: usize,
    /// Final answers beside the upload.
    success_logs: usize,
    failed_logs: usize,
}

fn run(faults: Option<Arc<Faults>>, max_receives: u32) -> Run {
    // The same AIP, byte for byte, with and without faults: the tools that make copies write
    // the time into them (a TIFF's DateTime, a PDF's CreationDate), so runs of them never
    // match; their own redeliveries are tested in normalization.rs.
    let mut options = vellum_tests::options_with_copies(false);
    options.settings.batch_size = Some(4);
    options.max_receives = max_receives;
    options.clock = Arc::new(Pinned(AtomicU64::new(1)));
    let t = TestEnv::with_options(options);
    let zip = t.dir.path().join("package.zip");
    package().write_zip(&zip);
    let meta = t.env.uploads.put("born-digital/faults.zip", &std::fs::read(&zip).unwrap()).unwrap();
    let event = UploadEvent {
        bucket: "uploads".into(),
        key: meta.key.clone(),
        event_name: "ObjectCreated:Put".into(),
        event_time: "2026-11-28T08:59:59.000Z".into(),
        sequencer: "0001".into(),
        version_id: None,
        size: meta.size,
        transfer_id: None,
    };
    t.env.queue.send(Stage::Start.name(), &serde_json::to_string(&event).unwrap()).unwrap();
    match &faults {
        Some(f) => {
            drive_with_faults(t.env.queue.as_ref(), &faulty_pipeline(&t.env.pipeline, f), f, t.env.state.as_ref());
        }
        None => {
            t.drive(|_, _| false);
        }
    }
    let transfer = t.transfer_for(&event).expect("the upload made a transfer");
    let state = t.env.state.as_ref();
    let files = state.all_files(transfer.id).unwrap();
    let path_of: BTreeMap<Uuid, String> = files.iter().map(|f| (f.uuid, f.original_path.clone())).collect();
    let mut events = BTreeMap::new();
    for e in state.all_events(transfer.id).unwrap() {
        let on = e.file_uuid.map_or("transfer".to_string(), |u| path_of.get(&u).cloned().unwrap_or(u.to_string()));
        *events.entry((on, e.event_type.to_string())).or_insert(0) += 1;
    }
    let mut tasks = BTreeMap::new();
    for job in state.jobs(transfer.id).unwrap() {
        tasks.insert(job.name.clone(), state.tasks(job.uuid).unwrap().len());
    }
    let aip = transfer.aip_key.as_ref().filter(|_| transfer.status == TransferStatus::Complete).map(|key| {
        let mut raw = Vec::new();
        t.env.aips.get(key).unwrap().read_to_end(&mut raw).unwrap();
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice()).read_to_end(&mut out).unwrap();
        out
    });
    let logs: Vec<String> = t.env.uploads.list("").unwrap().into_iter().map(|m| m.key).collect();
    Run {
        status: transfer.status,
        reason: transfer.failure_reason.clone(),
        aip,
        stored: t.stored_aips(),
        events,
        tasks,
        files: files.len(),
        success_logs: logs.iter().filter(|k| k.contains(".success.")).count(),
        failed_logs: logs.iter().filter(|k| k.contains(".failed.")).count(),
    }
}

/// Writes both AIPs (unzipped tars) where they can be compared; says where.
fn keep_both(seed: u64, clean: &Run, got: &Run) -> String {
    let dir = std::env::temp_dir().join(format!("vellum-chaos-{seed}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fault-free.tar"), clean.aip.as_deref().unwrap_or_default()).unwrap();
    std::fs::write(dir.join("with-faults.tar"), got.aip.as_deref().unwrap_or_default()).unwrap();
    format!("both AIPs are in {}", dir.display())
}

/// The seeds to run: `VELLUM_CHAOS_SEED` replays one, `VELLUM_CHAOS_RUNS` sets how many.
fn seeds(default_runs: u64, offset: u64) -> Vec<u64> {
    if let Some(seed) = std::env::var("VELLUM_CHAOS_SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![seed];
    }
    let runs = std::env::var("VELLUM_CHAOS_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(default_runs);
    (0..runs).map(|i| offset + i * 7919).collect()
}

#[test]
fn at_a_ten_percent_fault_rate_every_good_package_ends_complete_with_the_same_aip() {
    let clean = run(None, 5);
    assert_eq!(clean.status, TransferStatus::Complete, "{:?}", clean.reason);
    assert_eq!((clean.success_logs, clean.failed_logs), (1, 0));
    let mut failures = Vec::new();
    let mut injected = 0;
    for seed in seeds(20, 1) {
        let faults = Faults::new(seed, 0.10);
        let got = run(Some(faults.clone()), 5);
        injected += faults.log().len();
        if got != clean {
            let differs = [
                ("status", got.status != clean.status),
                ("AIP bytes", got.aip != clean.aip),
                ("stored objects", got.stored != clean.stored),
                ("events", got.events != clean.events),
                ("tasks", got.tasks != clean.tasks),
                ("files", got.files != clean.files),
                ("answers beside the upload", (got.success_logs, got.failed_logs) != (1, 0)),
            ]
            .iter()
            .filter(|(_, d)| *d)
            .map(|(w, _)| *w)
            .collect::<Vec<_>>();
            let extra: Vec<_> = got.events.iter().filter(|(k, v)| clean.events.get(*k) != Some(*v)).collect();
            failures.push(format!(
                "seed {seed} (replay: VELLUM_CHAOS_SEED={seed}): {:?} ({:?}); differs in {differs:?}; events off: {extra:?}\n  faults: {:?}",
                got.status,
                got.reason,
                faults.log()
            ));
        }
    }
    assert!(injected > 0, "faults were injected");
    eprintln!("{injected} faults injected over the seeds");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn at_high_fault_rates_a_transfer_fails_with_its_reason_or_completes_with_the_right_aip() {
    let clean = run(None, 3);
    let mut ended = BTreeMap::new();
    for seed in seeds(6, 1_000_003) {
        let faults = Faults::new(seed, 0.6);
        let got = run(Some(faults.clone()), 3);
        let replay = format!("seed {seed} (VELLUM_CHAOS_SEED={seed}), faults {:?}", faults.log());
        *ended.entry(format!("{:?}", got.status)).or_insert(0) += 1;
        match got.status {
            TransferStatus::Complete => {
                if got.aip != clean.aip {
                    let kept = keep_both(seed, &clean, &got);
                    panic!("COMPLETE with an AIP unlike the fault-free one ({kept}): {replay}");
                }
                assert_eq!((got.success_logs, got.failed_logs), (1, 0), "{replay}");
            }
            TransferStatus::Failed | TransferStatus::Rejected => {
                assert!(got.reason.as_deref().is_some_and(|r| !r.is_empty()), "ended without a reason: {replay}");
                assert!(got.stored.is_empty(), "a failed transfer left {:?} in the AIP store: {replay}", got.stored);
                assert_eq!(got.success_logs, 0, "{replay}");
            }
            TransferStatus::Processing => {
                // Messages still dead-lettered: nothing partial is where a reader looks.
                assert!(got.stored.is_empty() || got.stored == clean.stored, "{replay}: {:?}", got.stored);
                assert_eq!(got.success_logs, 0, "{replay}");
            }
        }
    }
    eprintln!("high fault rate, how the transfers ended: {ended:?}");
}
