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
use vellum_core::messages::{queues, UploadEvent};
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
    let meta = t.env.uploads.put("born-digital/deadline.zip", &std::fs::read(&zip).unwrap()).unwrap();
    let event = UploadEvent {
        bucket: "uploads".into(),
        key: meta.key.clone(),
        event_name: "ObjectCreated:Put".into(),
        event_time: "2026-11-27T09:29:59.000Z".into(),
        sequencer: "0001".into(),
        version_id: None,
        size: meta.size,
    };
    t.env.queue.send(queues::START, &serde_json::to_string(&event).unwrap()).unwrap();
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
        for stage in [queues::EXTRACT, queues::METS, queues::PACKAGE, queues::STORE] {
            assert!(continued.get(stage).copied().unwrap_or(0) >= 2, "{stage} continued: {continued:?}");
        }
        // Whole batches from extraction, then no time: the per-file stages continue too.
        let (whole_batches, continued) =
            ingest(|stage| if stage == queues::EXTRACT { ENOUGH } else { Duration::ZERO }, gzip_level);
        for stage in [queues::CHECKSUM, queues::SCAN, queues::IDENTIFY, queues::CHARACTERIZE, queues::METS] {
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
