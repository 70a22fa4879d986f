//! What the machine does to an embedded Vellum on its worst day: the disk under the working
//! area fills up, and another process holds the state database locked. (clamd going away
//! mid-transfer is in microservices.rs, beside the other clamd tests.)

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use vellum_core::model::messages::UploadEvent;
use vellum_core::model::{Transfer, TransferStatus};
use vellum_core::ports::{EventLog, FileCatalogue, ObjectStore};
use vellum_tests::{Package, TestEnv};

/// A small tmpfs mounted over a folder, unmounted on drop; None where mounting is not
/// allowed (not root), which CI (root) does not accept.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(ok, "this test mounts a small tmpfs, which needs root: scripts/test runs it (CI runs as root)");
        Self(at.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

/// Retries come 100 ms apart: a full disk is a transient error to the pipeline (space may be
/// freed), so the failing transfer must use up its receives quickly, while a moment's hiccup
/// elsewhere (clamd reloading its signatures) must not use up the transfer that fits.
fn runner(t: &TestEnv) -> vellum_local::Runner {
    let config = vellum_local::RunnerConfig {
        retry_delay: Duration::from_millis(100),
        idle_poll: Duration::from_millis(20),
        ..Default::default()
    };
    vellum_local::Runner::start(t.env.pipeline.clone(), t.env.queue.clone(), config)
}

fn ended(t: &TestEnv, event: &UploadEvent) -> Transfer {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(tr) = t.transfer_for(event).filter(|tr| tr.status.is_terminal()) {
            return tr;
        }
        assert!(Instant::now() < deadline, "the transfer never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Bytes that do not compress, so a zip of them is as large as they are.
fn noise(n: usize, mut x: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
#[ignore = "needs root to mount a small tmpfs; scripts/test runs it"]
fn a_full_disk_fails_the_transfer_with_the_reason_and_touches_no_upload_or_stored_aip() {
    let dir = tempfile::tempdir().unwrap();
    let _disk = SmallDisk::mount(&dir.path().join("working"), "3m");
    let env = vellum_local::Embedded::open(dir.path(), vellum_tests::options()).unwrap();
    let t = TestEnv { dir, env };
    let running = runner(&t);
    // One that fits: stored.
    let first = t.upload(&Package::catalogued("PP/DISK/1", 3), "born-digital/fits.zip");
    let stored = ended(&t, &first);
    assert_eq!(stored.status, TransferStatus::Complete, "{:?}", stored.failure_reason);
    let aip_key = stored.aip_key.clone().unwrap();
    let aip_before = std::fs::read(t.env.aips.root().join(&aip_key)).unwrap();
    // One that does not: 4 MB that cannot be compressed, into a 3 MB working area.
    let mut big = Package::catalogued("PP/DISK/2", 1);
    big.add("objects/recording.raw", noise(4 << 20, 17));
    let event = t.upload(&big, "born-digital/too-big.zip");
    let upload_before = std::fs::read(t.env.uploads.root().join("born-digital/too-big.zip")).unwrap();
    let failed = ended(&t, &event);
    running.stop();
    assert_eq!(failed.status, TransferStatus::Failed);
    let reason = failed.failure_reason.unwrap();
    assert!(reason.contains("No space left on device"), "the reason names the full disk: {reason}");
    assert_eq!(
        std::fs::read(t.env.uploads.root().join("born-digital/too-big.zip")).unwrap(),
        upload_before,
        "the upload is untouched"
    );
    assert_eq!(t.stored_aips().iter().filter(|k| k.ends_with(".tar.gz")).count(), 1, "{:?}", t.stored_aips());
    assert_eq!(std::fs::read(t.env.aips.root().join(&aip_key)).unwrap(), aip_before, "the stored AIP is untouched");
    let logs: Vec<String> =
        t.env.uploads.list("born-digital/too-big.zip").unwrap().into_iter().map(|m| m.key).collect();
    assert!(logs.iter().any(|k| k.contains(".failed.")), "the archivist is told: {logs:?}");
}

#[test]
fn a_state_database_held_locked_by_another_process_makes_the_transfer_wait_not_fail() {
    let t = TestEnv::new(2);
    let event = t.upload(&Package::catalogued("PP/LOCKED/1", 20), "born-digital/locked.zip");
    let db = t.dir.path().join("vellum.db");
    // The state database is made when the embedded mode opens; another process takes its
    // write lock for three seconds, as a backup tool or a curious sqlite3 shell might.
    let holder = Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n\
             c.execute('BEGIN EXCLUSIVE')\n\
             print('locked', flush=True)\n\
             time.sleep(3)\n\
             c.execute('COMMIT')\n",
        )
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut holder = holder;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    let running = runner(&t);
    let transfer = ended(&t, &event);
    running.stop();
    assert!(holder.wait().unwrap().success());
    // On failure, each job as it stood says which stage failed and how far it came.
    let jobs: Vec<String> = vellum_core::ports::JobLedger::jobs(&*t.env.state, transfer.id)
        .unwrap()
        .iter()
        .map(|j| format!("{} {:?} {} batches", j.stage, j.status, j.batches_done))
        .collect();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}; jobs: {jobs:?}", transfer.failure_reason);
    let files = t.env.state.all_files(transfer.id).unwrap();
    vellum_tests::assert_every_file_has_its_events(&t.env.state.all_events(transfer.id).unwrap(), &files);
}
