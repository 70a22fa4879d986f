//! The uploads folder announces only whole packages, as S3 does: a copy that pauses half-way
//! (the file still open for writing), a zip that does not end yet, a temporary name — none is
//! picked up until it is whole; then it is announced once.

use std::io::Write;
use std::time::Duration;

use vellum_core::model::messages::UploadEvent;
use vellum_core::model::Stage;
use vellum_core::ports::Queue;
use vellum_local::fs_store::FsObjectStore;
use vellum_local::sqlite_queue::SqliteQueue;
use vellum_local::watcher::Watcher;
use vellum_tests::Package;

const SETTLE: Duration = Duration::from_millis(50);

struct Folder {
    dir: tempfile::TempDir,
    uploads: FsObjectStore,
    queue: SqliteQueue,
}

fn folder() -> Folder {
    let dir = tempfile::tempdir().unwrap();
    let uploads = FsObjectStore::new(dir.path().join("uploads"), "uploads").unwrap();
    let queue = SqliteQueue::open(&dir.path().join("q.db"), 5).unwrap();
    std::fs::create_dir_all(dir.path().join("uploads/born-digital")).unwrap();
    Folder { dir, uploads, queue }
}

impl Folder {
    /// Scans for a while (well past the settle time); the keys announced.
    fn watch(&self, watcher: &mut Watcher) -> Vec<String> {
        let mut sent = 0;
        for _ in 0..6 {
            sent += watcher.scan(&self.uploads, &self.queue).unwrap();
            std::thread::sleep(SETTLE);
        }
        let got = self.queue.receive(Stage::Start.name(), 10, Duration::from_secs(60)).unwrap();
        assert_eq!(got.len(), sent);
        got.iter().map(|d| serde_json::from_str::<UploadEvent>(&d.body).unwrap().key).collect()
    }

    fn zip_bytes(&self) -> Vec<u8> {
        let path = self.dir.path().join("p.zip");
        Package::catalogued("PP/COPY/1", 20).write_zip(&path);
        std::fs::read(path).unwrap()
    }
}

#[test]
fn a_copy_paused_half_way_is_not_picked_up_until_it_is_whole() {
    let f = folder();
    let mut watcher = Watcher::new(SETTLE, Duration::from_secs(3600));
    let bytes = f.zip_bytes();
    let path = f.dir.path().join("uploads/born-digital/slow.zip");
    let mut copy = std::fs::File::create(&path).unwrap();
    copy.write_all(&bytes[..bytes.len() / 2]).unwrap();
    copy.flush().unwrap();
    assert!(f.watch(&mut watcher).is_empty(), "half a copy, paused, still open");
    copy.write_all(&bytes[bytes.len() / 2..]).unwrap();
    drop(copy);
    assert_eq!(f.watch(&mut watcher), ["born-digital/slow.zip"]);
    assert!(f.watch(&mut watcher).is_empty(), "announced once");
}

#[test]
fn a_zip_that_does_not_end_waits_for_the_grace_time_then_goes_to_intake() {
    let f = folder();
    let bytes = f.zip_bytes();
    // Closed, but cut short: a copy from another machine that stopped.
    std::fs::write(f.dir.path().join("uploads/born-digital/cut.zip"), &bytes[..bytes.len() - 30]).unwrap();
    let mut patient = Watcher::new(SETTLE, Duration::from_secs(3600));
    assert!(f.watch(&mut patient).is_empty());
    let mut short = Watcher::new(SETTLE, Duration::from_millis(120));
    assert_eq!(f.watch(&mut short), ["born-digital/cut.zip"], "judged by intake after the grace time");
    // A whole zip goes at once, its comment and all.
    std::fs::write(f.dir.path().join("uploads/born-digital/whole.zip"), &bytes).unwrap();
    assert_eq!(f.watch(&mut patient), ["born-digital/whole.zip"]);
}

#[test]
fn a_file_written_under_a_temporary_name_is_announced_by_its_final_name() {
    let f = folder();
    let mut watcher = Watcher::new(SETTLE, Duration::from_secs(3600));
    let temp = f.dir.path().join("uploads/born-digital/.renamed.zip.Xy12Ab");
    std::fs::write(&temp, f.zip_bytes()).unwrap();
    let part = f.dir.path().join("uploads/born-digital/other.zip.part");
    std::fs::write(&part, f.zip_bytes()).unwrap();
    assert!(f.watch(&mut watcher).is_empty());
    std::fs::rename(&temp, f.dir.path().join("uploads/born-digital/renamed.zip")).unwrap();
    assert_eq!(f.watch(&mut watcher), ["born-digital/renamed.zip"]);
}

#[test]
fn a_tar_without_its_end_blocks_waits() {
    let f = folder();
    let mut watcher = Watcher::new(SETTLE, Duration::from_secs(3600));
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "objects/a.txt", &b"abc"[..]).unwrap();
    let whole = tar.into_inner().unwrap();
    std::fs::write(f.dir.path().join("uploads/born-digital/t.tar"), &whole[..1024]).unwrap();
    assert!(f.watch(&mut watcher).is_empty(), "no end blocks yet");
    std::fs::write(f.dir.path().join("uploads/born-digital/t.tar"), &whole).unwrap();
    assert_eq!(f.watch(&mut watcher), ["born-digital/t.tar"]);
}
