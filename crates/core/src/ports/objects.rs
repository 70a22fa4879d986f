//! The object store's port: a bucket, or a directory standing in for one.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use super::{Page, PortResult};
use crate::model::Timestamp;

/// How far a copy made by `compose_within` has come, kept by the caller between
/// invocations (in a job's checkpoint) and handed back to go on.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ComposeProgress {
    /// The store's handle on the copy under way (S3's multipart upload id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
    /// The pieces copied so far.
    #[serde(default)]
    pub pieces: Vec<ComposedPiece>,
}

/// One piece of a copy under way: its number and what the store said of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ComposedPiece {
    pub number: u32,
    pub etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    pub last_modified: Option<Timestamp>,
}

/// A streaming upload. Nothing is visible under the key until `commit` succeeds; dropping
/// the writer without committing leaves nothing behind (an S3 multipart upload is aborted,
/// a temporary file removed).
pub trait ObjectWriter: Write + Send {
    fn commit(self: Box<Self>) -> PortResult<ObjectMeta>;
}

/// A bucket, or a directory standing in for one.
pub trait ObjectStore: Send + Sync {
    /// The bucket's name, as it appears in events.
    fn bucket(&self) -> &str;
    fn head(&self, key: &str) -> PortResult<Option<ObjectMeta>>;
    fn get(&self, key: &str) -> PortResult<Box<dyn Read + Send>>;
    /// Up to `len` bytes from `offset`; fewer only at the end of the object.
    fn get_range(&self, key: &str, offset: u64, len: u64) -> PortResult<Vec<u8>>;
    fn writer(&self, key: &str) -> PortResult<Box<dyn ObjectWriter>>;
    /// Keys under a prefix, in lexicographic (byte) order, a page at a time: those after
    /// `after` (a key), at most `limit`. The cursor of the next page is the last key.
    fn list_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> PortResult<Page<ObjectMeta>>;
    fn put_tags(&self, key: &str, tags: &BTreeMap<String, String>) -> PortResult<()>;
    fn get_tags(&self, key: &str) -> PortResult<BTreeMap<String, String>>;
    fn delete(&self, key: &str) -> PortResult<()>;

    /// This store as `Any`, so that `compose` can see whether a source is of its own kind.
    fn as_any(&self) -> &dyn std::any::Any;

    /// Deletes every object whose key starts with `prefix`.
    fn delete_prefix(&self, prefix: &str) -> PortResult<()> {
        delete_page_by_page(self, prefix)
    }

    /// Where the object is a file on this machine, its path: an outside tool reads it
    /// there instead of from a copy (a folder as the bucket). None for a remote store.
    fn local_path(&self, _key: &str) -> Option<std::path::PathBuf> {
        None
    }

    /// Makes `key` the concatenation of `parts` of `source` (this store or another), without
    /// the bytes passing through the caller where the service can copy them itself (S3
    /// UploadPartCopy; a file copy in the kernel on disk). Like a writer, nothing is
    /// visible under `key` until the whole is there. The default streams the parts.
    fn compose(&self, key: &str, source: &dyn ObjectStore, parts: &[String]) -> PortResult<ObjectMeta> {
        let mut writer = self.writer(key)?;
        for part in parts {
            std::io::copy(&mut source.get(part)?, &mut writer)?;
        }
        writer.commit()
    }

    /// `compose`, in steps a deadline can cut: between pieces, when `out_of_time()` says
    /// so, the copy stops and answers None with `progress` saying how far it came; called
    /// again with that progress it goes on from there. A store whose copy is quick (a file
    /// on disk) composes at once, as the default does.
    fn compose_within(
        &self,
        key: &str,
        source: &dyn ObjectStore,
        parts: &[String],
        _progress: &mut ComposeProgress,
        _out_of_time: &dyn Fn() -> bool,
    ) -> PortResult<Option<ObjectMeta>> {
        self.compose(key, source, parts).map(Some)
    }

    /// Every key under a prefix, page after page: for tests and small prefixes.
    fn list(&self, prefix: &str) -> PortResult<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.list_page(prefix, after.as_deref(), 1000)?;
            out.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }

    fn put(&self, key: &str, bytes: &[u8]) -> PortResult<ObjectMeta> {
        let mut w = self.writer(key)?;
        w.write_all(bytes)?;
        w.commit()
    }
}

/// Deletes what a prefix holds a listed page at a time, each page from the front (what was
/// deleted is gone from the listing).
pub fn delete_page_by_page<S: ObjectStore + ?Sized>(store: &S, prefix: &str) -> PortResult<()> {
    loop {
        let page = store.list_page(prefix, None, 1000)?;
        for o in &page.items {
            store.delete(&o.key)?;
        }
        if page.next.is_none() || page.items.is_empty() {
            return Ok(());
        }
    }
}
