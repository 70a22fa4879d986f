//! Every stage within a deadline: driven with no time at all, each stage does the least it
//! can, checkpoints and continues in a new message, and the AIP that comes out is byte for
//! byte the one made in one go.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use uuid::Uuid;
use vellum_core::config::profile::PackageKind;
use vellum_core::model::messages::UploadEvent;
use vellum_core::model::Stage;
use vellum_core::model::{Timestamp, TransferStatus};
use vellum_core::ports::{Clock, ObjectStore, Queue};
use vellum_core::Outcome;
use vellum_tests::{Package, TestEnv};

/// The same times and the same ids, run after run.
struct Pinned {
    next: AtomicU64,
}

impl Clock for Pinned {
    fn now(&self) -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 11, 27, 9, 30, 0).unwrap()
    }
    fn new_id(&self) -> Uuid {
        Uuid::from_u64_pair(0x5645_4c4c_554d, self.next.fetch_add(1, Ordering::SeqCst))
    }
}

/// Uploads the bytes and queues their event, the same event run after run.
fn upload(t: &TestEnv, key: &str, bytes: &[u8]) -> UploadEvent {
    let meta = t.env.uploads.put(key, bytes).unwrap();
    let event = UploadEvent {
        bucket: "uploads".into(),
        key: meta.key.clone(),
        event_name: "ObjectCreated:Put".into(),
        event_time: "2026-11-27T09:29:59.000Z".into(),
        sequencer: "0001".into(),
        version_id: None,
        size: meta.size,
        transfer_id: None,
    };
    t.env.queue.send(Stage::Start.name(), &serde_json::to_string(&event).unwrap()).unwrap();
    event
}

fn package() -> Package {
    let mut p = Package::catalogued("PP/DEADLINE/1", 0);
    for i in 0..7 {
        p.add(&format!("objects/folder {}/file-{i}.txt", i % 3), format!("file {i}\n").repeat(200 + i * 50));
    }
    p.add(
        "objects/picture.png",
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde\0\0\0\x0cIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82".to_vec(),
    );
    p
}

/// Ingests the package with each stage's invocations given `budget(stage)`; returns the
/// stored AIP's bytes (a gzipped AIP unzipped: its members may be cut differently) and how
/// many times each stage continued.
fn ingest(budget: impl Fn(&str) -> Duration, gzip_level: u32) -> (Vec<u8>, BTreeMap<String, usize>) {
    let mut options = vellum_tests::options();
    options.settings.batch_size = Some(4);
    options.clock = Arc::new(Pinned { next: AtomicU64::new(1) });
    for profile in &mut options.config.profiles {
        profile.gzip_level = gzip_level;
    }
    let t = TestEnv::with_options(options);
    let zip = t.dir.path().join("package.zip");
    package().write_zip(&zip);
    let event = upload(&t, "born-digital/deadline.zip", &std::fs::read(&zip).unwrap());
    let handled = t.drive_with_budgets(budget, |_, _| false);
    let transfer = t.transfer_for(&event).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let mut continued = BTreeMap::new();
    for (queue, _, outcome) in &handled {
        if *outcome == Outcome::Continued {
            *continued.entry(queue.clone()).or_default() += 1;
        }
    }
    let raw = std::fs::read(t.env.aips.root().join(transfer.aip_key.unwrap())).unwrap();
    let bytes = if gzip_level == 0 {
        raw
    } else {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice()).read_to_end(&mut out).unwrap();
        out
    };
    (bytes, continued)
}

#[test]
fn every_stage_continues_within_a_deadline_and_the_aip_is_the_same_as_in_one_go() {
    const ENOUGH: Duration = Duration::from_secs(600);
    for gzip_level in [0, 1] {
        let (one_go, none) = ingest(|_| ENOUGH, gzip_level);
        assert!(none.is_empty(), "with time enough nothing continues: {none:?}");
        // No time anywhere: extraction commits a batch an entry, and every later stage
        // that works on the whole transfer continues.
        let (no_time, continued) = ingest(|_| Duration::ZERO, gzip_level);
        for stage in [Stage::Extract.name(), Stage::Mets.name(), Stage::Package.name(), Stage::Store.name()] {
            assert!(continued.get(stage).copied().unwrap_or(0) >= 2, "{stage} continued: {continued:?}");
        }
        // Whole batches from extraction, then no time: the per-file stages continue too.
        let (whole_batches, continued) =
            ingest(|stage| if stage == Stage::Extract.name() { ENOUGH } else { Duration::ZERO }, gzip_level);
        for stage in [
            Stage::Checksum.name(),
            Stage::Scan.name(),
            Stage::Identify.name(),
            Stage::Characterize.name(),
            Stage::Mets.name(),
        ] {
            assert!(continued.get(stage).copied().unwrap_or(0) >= 2, "{stage} continued: {continued:?}");
        }
        assert!(one_go.len() > 10_000);
        assert!(
            one_go == no_time,
            "gzip level {gzip_level}: the AIP made with no time differs from the one made in one go"
        );
        assert!(
            one_go == whole_batches,
            "gzip level {gzip_level}: the AIP made from continued batches differs from the one made in one go"
        );
    }
}

/// A tar of `n` files of varied, partly compressible text, with its metadata.csv.
fn long_tar(n: usize, gzip: bool) -> Vec<u8> {
    let csv = b"filename,dc.identifier,dc.title\nobjects/,PP/LONGTAR/1,A long tar\n".to_vec();
    let mut files: Vec<(String, Vec<u8>)> = vec![("metadata/metadata.csv".into(), csv)];
    let mut x: u64 = 1;
    for i in 0..n {
        let mut body = Vec::new();
        for line in 0..1500 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            body.extend_from_slice(format!("file {i} line {line}: {:016x}\n", x >> 20).as_bytes());
        }
        files.push((format!("objects/part {}/file-{i}.txt", i % 4), body));
    }
    let entries: Vec<(&str, &[u8], tar::EntryType)> =
        files.iter().map(|(n, b)| (n.as_str(), b.as_slice(), tar::EntryType::Regular)).collect();
    let tar = vellum_tests::tar_gz(&entries, false);
    if !gzip {
        return tar;
    }
    // gzip's default level, as `tar czf` writes it.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

/// Listing at intake goes on from where the last invocation stopped: each part starts at
/// the entry after the last one listed, from a gzip point near it, not from the start.
#[test]
fn a_tar_is_listed_in_parts_each_from_where_the_last_stopped() {
    use vellum_core::intake::archive::{list_tar_from, ArchiveKind, Listing};
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(vellum_local::fs_store::FsObjectStore::new(dir.path(), "u").unwrap());
    for (gzip, kind) in [(false, ArchiveKind::Tar), (true, ArchiveKind::TarGz)] {
        let bytes = long_tar(12, gzip);
        let size = bytes.len() as u64;
        store.put("long", &bytes).unwrap();
        let whole =
            Listing::from_tar_parts(kind, [list_tar_from(store.clone(), "long", size, kind, None, &|| false).unwrap()])
                .unwrap()
                .arranged(PackageKind::Catalogued);
        let mut parts = Vec::new();
        let mut from = None;
        let mut furthest_point = 0;
        loop {
            let part = list_tar_from(store.clone(), "long", size, kind, from.as_ref(), &|| true).unwrap();
            // Out of time after every entry; the last part may find only the tar's end.
            assert!(part.entries.len() == 1 || part.next.is_none(), "{} entries", part.entries.len());
            if let (Some(next), Some(previous)) = (&part.next, &from) {
                let previous: &vellum_core::io::tar_stream::TarPosition = previous;
                assert!(next.offset > previous.offset);
                if let Some(point) = &next.gzip {
                    // The point is near the entry: a part does not inflate from the start.
                    assert!(point.output_offset + 200_000 > next.offset, "{} vs {}", point.output_offset, next.offset);
                    furthest_point = furthest_point.max(point.output_offset);
                }
            }
            from = part.next.clone();
            parts.push(part);
            if from.is_none() {
                break;
            }
        }
        assert!(parts.len() >= 13, "{} parts", parts.len());
        if gzip {
            assert!(furthest_point > 400_000, "later parts start from later points: {furthest_point}");
        }
        let pieced = Listing::from_tar_parts(kind, parts).unwrap().arranged(PackageKind::Catalogued);
        assert_eq!(pieced.entries, whole.entries, "gzip {gzip}");
        assert_eq!(pieced.metadata_csv, whole.metadata_csv);
        assert!(pieced.metadata_csv.is_some());
    }
}

/// A tar and a tar.gz ingested with no time at all: intake lists them in parts, extraction
/// goes on from noted positions, and the AIP is the one made in one go.
#[test]
fn a_long_tar_is_listed_and_extracted_in_parts_and_its_aip_is_the_same() {
    for (gzip, key) in [(false, "born-digital/long.tar"), (true, "born-digital/long.tar.gz")] {
        let bytes = long_tar(10, gzip);
        let run = |budget: Duration| {
            let mut options = vellum_tests::options();
            options.clock = Arc::new(Pinned { next: AtomicU64::new(1) });
            for profile in &mut options.config.profiles {
                profile.gzip_level = 0;
            }
            let t = TestEnv::with_options(options);
            let event = upload(&t, key, &bytes);
            let handled = t.drive_with_budget(budget, |_, _| false);
            let transfer = t.transfer_for(&event).unwrap();
            assert_eq!(transfer.status, TransferStatus::Complete, "{key}: {:?}", transfer.failure_reason);
            let continued =
                |stage: &str| handled.iter().filter(|(q, _, o)| q == stage && *o == Outcome::Continued).count();
            let counts = (continued(Stage::Start.name()), continued(Stage::Extract.name()));
            (std::fs::read(t.env.aips.root().join(transfer.aip_key.unwrap())).unwrap(), counts)
        };
        let (one_go, counts) = run(Duration::from_secs(600));
        assert_eq!(counts, (0, 0));
        let (in_parts, (listed, extracted)) = run(Duration::ZERO);
        assert!(listed >= 5 && extracted >= 5, "{key}: start continued {listed}, extract {extracted} times");
        assert!(one_go == in_parts, "{key}: the AIP made in parts differs from the one made in one go");
    }
}
