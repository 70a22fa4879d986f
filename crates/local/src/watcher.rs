//! The uploads folder as a bucket that notifies. S3 announces only whole objects; a folder
//! shows a file from its first byte, so a package is announced (an S3-style ObjectCreated
//! event on the start queue) only when it looks whole:
//!
//! - no process on this machine has it open for writing (a copy under way, however slow —
//!   paused, stopped, throttled);
//! - its size and modification time have not changed for the settle time;
//! - a zip ends with its end-of-central-directory record and a tar with its end blocks —
//!   or, for a file that never gets them (a damaged upload, a copy from another machine that
//!   stopped), it has not changed for the grace time, and intake then refuses it with a
//!   reason beside it;
//! - its name is not a temporary one (a leading `.` as rsync writes, `~$`, `.part`, `.tmp`,
//!   `.crdownload`): the file it is renamed to is announced instead.
//!
//! A file that changes after it was announced (replaced) is announced again.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use vellum_core::model::messages::UploadEvent;
use vellum_core::model::starts_a_transfer;
use vellum_core::model::Stage;
use vellum_core::ports::{ObjectMeta, ObjectStore, PortResult, Queue};

use crate::fs_store::FsObjectStore;
use crate::open_files::open_for_writing;

/// The event S3 would send for this object (kept here for the callers that name it so).
pub fn upload_event(bucket: &str, meta: &ObjectMeta) -> UploadEvent {
    UploadEvent::for_object(bucket, &meta.key, meta.size, meta.last_modified)
}

/// How long a package must stay unchanged before it is announced.
pub const SETTLE: Duration = Duration::from_secs(2);
/// How long a package that does not end as its format ends waits before intake judges it.
pub const GRACE: Duration = Duration::from_secs(600);

struct Seen {
    meta: ObjectMeta,
    /// When this size and time were first seen.
    since: Instant,
    announced: bool,
}

pub struct Watcher {
    seen: HashMap<String, Seen>,
    settle: Duration,
    grace: Duration,
}

impl Default for Watcher {
    fn default() -> Self {
        Self::new(SETTLE, GRACE)
    }
}

/// A name that a copying tool gives a file before renaming it to its real one.
fn temporary(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.starts_with("~$")
        || [".part", ".partial", ".tmp", ".crdownload", ".download"].iter().any(|s| lower.ends_with(s))
}

/// Whether the file ends as its format ends: a zip with its end-of-central-directory record
/// (within the last 64 KiB and 22 bytes a comment allows), a plain tar with its two zero
/// blocks. A gzip's end cannot be known without reading it all: it is taken as whole.
fn ends_whole(path: &Path, key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    let tail = |file: &mut std::fs::File, n: u64| -> Option<Vec<u8>> {
        let n = n.min(len);
        file.seek(SeekFrom::Start(len - n)).ok()?;
        let mut buf = vec![0; n as usize];
        file.read_exact(&mut buf).ok()?;
        Some(buf)
    };
    if lower.ends_with(".zip") {
        let Some(buf) = tail(&mut file, 65_535 + 22) else {
            return false;
        };
        // The record's signature, with a comment length that reaches exactly to the end.
        return buf.windows(4).enumerate().rev().any(|(i, w)| {
            w == b"PK\x05\x06"
                && buf.len() >= i + 22
                && u16::from_le_bytes([buf[i + 20], buf[i + 21]]) as usize == buf.len() - i - 22
        });
    }
    if lower.ends_with(".tar") {
        return len % 512 == 0 && tail(&mut file, 1024).is_some_and(|b| b.len() == 1024 && b.iter().all(|&x| x == 0));
    }
    true
}

impl Watcher {
    pub fn new(settle: Duration, grace: Duration) -> Self {
        Self { seen: HashMap::new(), settle, grace }
    }

    /// One look at the folder; returns how many events it sent.
    pub fn scan(&mut self, uploads: &FsObjectStore, queue: &dyn Queue) -> PortResult<usize> {
        let mut sent = 0;
        for meta in uploads.list("")? {
            if !starts_a_transfer(&meta.key) || temporary(&meta.key) {
                continue;
            }
            let seen = match self.seen.get_mut(&meta.key) {
                Some(seen) if seen.meta == meta => seen,
                _ => {
                    self.seen.insert(meta.key.clone(), Seen { meta, since: Instant::now(), announced: false });
                    continue;
                }
            };
            if seen.announced || seen.since.elapsed() < self.settle {
                continue;
            }
            let path = uploads.path_of(&meta.key)?;
            if open_for_writing(&path) {
                continue;
            }
            if !ends_whole(&path, &meta.key) && seen.since.elapsed() < self.grace {
                continue;
            }
            let ev = upload_event(uploads.bucket(), &meta);
            queue.send(Stage::Start.name(), &serde_json::to_string(&ev).expect("events serialize"))?;
            seen.announced = true;
            sent += 1;
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_not_packages() {
        for name in
            ["born-digital/.x.zip.Ab12Cd", "born-digital/.x.zip", "born-digital/~$x.zip", "born-digital/x.zip.part"]
        {
            assert!(temporary(name), "{name}");
        }
        assert!(!temporary("born-digital/x.zip"));
    }
}
