//! The uploads folder as a bucket that notifies: each new (or replaced) package becomes an
//! S3-style ObjectCreated event on the start queue, once its size has stopped changing.

use std::collections::HashMap;

use vellum_core::messages::{queues, UploadEvent};
use vellum_core::model::starts_a_transfer;
use vellum_core::ports::{ObjectMeta, ObjectStore, PortResult, Queue};

/// The event S3 would send for this object (kept here for the callers that name it so).
pub fn upload_event(bucket: &str, meta: &ObjectMeta) -> UploadEvent {
    UploadEvent::for_object(bucket, &meta.key, meta.size, meta.last_modified)
}

#[derive(Default)]
pub struct Watcher {
    /// key → (size, modified) last seen; announced once stable.
    seen: HashMap<String, (ObjectMeta, bool)>,
}

impl Watcher {
    /// One look at the folder; returns how many events it sent.
    pub fn scan(&mut self, uploads: &dyn ObjectStore, queue: &dyn Queue) -> PortResult<usize> {
        let mut sent = 0;
        for meta in uploads.list("")? {
            if !starts_a_transfer(&meta.key) {
                continue;
            }
            match self.seen.get_mut(&meta.key) {
                Some((prev, announced)) if *prev == meta => {
                    if !*announced {
                        let ev = upload_event(uploads.bucket(), &meta);
                        queue.send(queues::START, &serde_json::to_string(&ev).expect("events serialize"))?;
                        *announced = true;
                        sent += 1;
                    }
                }
                _ => {
                    self.seen.insert(meta.key.clone(), (meta, false));
                }
            }
        }
        Ok(sent)
    }
}
