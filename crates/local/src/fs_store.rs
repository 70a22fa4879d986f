//! A directory standing in for a bucket. Writes go to a temporary file and are renamed into
//! place on commit, so a reader never sees half an object and a crash leaves nothing behind.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use vellum_core::io::scratch::SCRATCH_BYTES;
use vellum_core::ports::{ObjectMeta, ObjectStore, ObjectWriter, Page, PortError, PortResult};

/// Vellum's own bookkeeping inside the folder (temporary files, tags); never a key.
const PRIVATE_DIR: &str = ".vellum";

pub struct FsObjectStore {
    root: PathBuf,
    bucket: String,
    /// Flush each object to disk before it becomes visible.
    sync: bool,
}

impl FsObjectStore {
    pub fn new(root: impl Into<PathBuf>, bucket: &str) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(root.join(PRIVATE_DIR).join("tmp"))?;
        Ok(Self { root, bucket: bucket.to_string(), sync: true })
    }

    /// Objects become visible without waiting for the disk: for scratch space whose
    /// loss after a power cut costs a retry, not a record (the working area).
    /// A writer of `file` (at `tmp`), renamed to `dest` when committed.
    fn staged(&self, file: fs::File, tmp: PathBuf, dest: PathBuf, key: &str) -> FsWriter {
        FsWriter { file, sync: self.sync, root: self.root.clone(), tmp, dest, key: key.to_string(), committed: false }
    }

    pub fn without_sync(mut self) -> Self {
        self.sync = false;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file behind a key. Keys that could escape the folder are refused.
    pub fn path_of(&self, key: &str) -> PortResult<PathBuf> {
        let bad = key.is_empty()
            || key.starts_with('/')
            || key.split('/').any(|s| s.is_empty() || s == "." || s == "..")
            || key.split('/').next() == Some(PRIVATE_DIR)
            || key.contains('\0')
            || key.contains('\\');
        if bad {
            return Err(PortError::Refused(format!("{key:?} is not a key this store can hold")));
        }
        Ok(self.root.join(key))
    }

    fn tags_path(&self, key: &str) -> PortResult<PathBuf> {
        self.path_of(key)?;
        Ok(self.root.join(PRIVATE_DIR).join("tags").join(format!("{key}.json")))
    }

    fn meta(key: &str, md: &fs::Metadata) -> ObjectMeta {
        ObjectMeta {
            key: key.to_string(),
            size: md.len(),
            last_modified: md.modified().ok().map(DateTime::<Utc>::from),
        }
    }

    fn walk(&self, dir: &Path, prefix_key: &str, out: &mut Vec<ObjectMeta>) -> io::Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if prefix_key.is_empty() && name == PRIVATE_DIR {
                continue;
            }
            let key = if prefix_key.is_empty() { name } else { format!("{prefix_key}/{name}") };
            let ft = entry.file_type()?;
            if ft.is_dir() {
                self.walk(&entry.path(), &key, out)?;
            } else if ft.is_file() {
                out.push(Self::meta(&key, &entry.metadata()?));
            }
        }
        Ok(())
    }
}

struct FsWriter {
    file: fs::File,
    sync: bool,
    /// The store's root: with `sync`, every folder from the object's up to it is synced
    /// after the rename, so the name survives a crash as the bytes do.
    root: PathBuf,
    tmp: PathBuf,
    dest: PathBuf,
    key: String,
    committed: bool,
}

impl Write for FsWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl ObjectWriter for FsWriter {
    fn commit(mut self: Box<Self>) -> PortResult<ObjectMeta> {
        self.file.flush()?;
        if self.sync {
            self.file.sync_data()?;
        }
        // The folder is made only when the rename says it is missing (most objects go into
        // a folder that exists: one `mkdir` a file was measurable). A delete elsewhere prunes
        // empty folders: one may vanish between making it and renaming into it, so the pair
        // is tried again.
        let mut attempts = 0;
        loop {
            match fs::rename(&self.tmp, &self.dest) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 5 && self.tmp.exists() => {
                    attempts += 1;
                    if let Some(parent) = self.dest.parent() {
                        fs::create_dir_all(parent)?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        if self.sync {
            let mut dir = self.dest.parent();
            while let Some(d) = dir.filter(|d| d.starts_with(&self.root)) {
                fs::File::open(d)?.sync_all()?;
                dir = d.parent();
            }
        }
        self.committed = true;
        // The open file is the renamed one: no second walk of its path.
        let md = self.file.metadata()?;
        Ok(FsObjectStore::meta(&self.key, &md))
    }
}

impl Drop for FsWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Opens an object's file; a missing one is named by its key, so the reason says what.
fn open_named(path: &Path, key: &str) -> PortResult<fs::File> {
    fs::File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => PortError::NotFound(format!("{key}: {e}")),
        _ => e.into(),
    })
}

impl ObjectStore for FsObjectStore {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn head(&self, key: &str) -> PortResult<Option<ObjectMeta>> {
        match fs::metadata(self.path_of(key)?) {
            Ok(md) if md.is_file() => Ok(Some(Self::meta(key, &md))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn get(&self, key: &str) -> PortResult<Box<dyn Read + Send>> {
        let file = open_named(&self.path_of(key)?, key)?;
        // Sized to the file, up to the stages' copying buffer: a buffer past the allocator's mmap threshold
        // for every small file read costs more than the read (see core's `io::scratch`).
        let len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
        let capacity = len.saturating_add(1).clamp(4096, SCRATCH_BYTES as u64) as usize;
        Ok(Box::new(io::BufReader::with_capacity(capacity, file)))
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> PortResult<Vec<u8>> {
        let mut file = open_named(&self.path_of(key)?, key)?;
        file.seek(SeekFrom::Start(offset))?;
        // No more room than the file holds: readers ask for a window of 128–256 KiB, and
        // most files are smaller (see `get`).
        let there = file.metadata()?.len().saturating_sub(offset);
        let mut out = Vec::with_capacity(len.min(there).min(64 << 20) as usize);
        file.take(len).read_to_end(&mut out)?;
        Ok(out)
    }

    fn writer(&self, key: &str) -> PortResult<Box<dyn ObjectWriter>> {
        let dest = self.path_of(key)?;
        let tmp = self.root.join(PRIVATE_DIR).join("tmp").join(uuid::Uuid::new_v4().to_string());
        let file = fs::File::create(&tmp)?;
        Ok(Box::new(self.staged(file, tmp, dest, key)))
    }

    fn list_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> PortResult<Page<ObjectMeta>> {
        // Walk only the deepest folder the prefix names, then filter.
        let dir_part = prefix.rsplit_once('/').map_or("", |(d, _)| d);
        // A prefix names folders inside the store, as a key does: one that is an absolute
        // path or steps up out of it is the prefix of no key, and lists nothing.
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            match self.path_of(dir_part) {
                Ok(path) => path,
                Err(_) => return Ok(Page { items: Vec::new(), next: None }),
            }
        };
        let mut out = Vec::new();
        self.walk(&start, dir_part, &mut out)?;
        out.retain(|m| m.key.starts_with(prefix) && after.is_none_or(|a| m.key.as_str() > a));
        out.sort_by(|a, b| a.key.cmp(&b.key));
        let limit = limit.max(1);
        let next = if out.len() > limit {
            out.truncate(limit);
            out.last().map(|m| m.key.clone())
        } else {
            None
        };
        Ok(Page { items: out, next })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    /// Absolute, whatever the store's root: a tool given a link to it runs in another folder.
    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path_of(key).ok().filter(|p| p.is_file()).and_then(|p| p.canonicalize().ok())
    }

    /// A prefix that is a folder goes in one removal, not a listing per page.
    fn delete_prefix(&self, prefix: &str) -> PortResult<()> {
        match prefix.strip_suffix('/').map(|folder| self.path_of(folder)) {
            Some(Ok(dir)) => match fs::remove_dir_all(&dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e.into()),
            },
            _ => vellum_core::ports::delete_page_by_page(self, prefix),
        }
    }

    /// Parts in another folder-bucket are copied file to file (the kernel's
    /// `copy_file_range` where it can), into a temporary file renamed into place. One part
    /// on the same file system is linked instead of copied: the bytes are written once
    /// (a package part is never written again once committed; the clean-up only removes
    /// its name).
    fn compose(&self, key: &str, source: &dyn ObjectStore, parts: &[String]) -> PortResult<ObjectMeta> {
        let Some(source) = source.as_any().downcast_ref::<FsObjectStore>() else {
            let mut writer = self.writer(key)?;
            for part in parts {
                io::copy(&mut source.get(part)?, &mut writer)?;
            }
            return writer.commit();
        };
        let dest = self.path_of(key)?;
        let tmp = self.root.join(PRIVATE_DIR).join("tmp").join(uuid::Uuid::new_v4().to_string());
        if let [part] = parts {
            if fs::hard_link(source.path_of(part)?, &tmp).is_ok() {
                let writer = self.staged(fs::File::open(&tmp)?, tmp, dest, key);
                return Box::new(writer).commit();
            }
        }
        let mut writer = self.staged(fs::File::create(&tmp)?, tmp, dest, key);
        for part in parts {
            let mut file = fs::File::open(source.path_of(part)?)?;
            io::copy(&mut file, &mut writer.file)?;
        }
        Box::new(writer).commit()
    }

    fn put_tags(&self, key: &str, tags: &BTreeMap<String, String>) -> PortResult<()> {
        if self.head(key)?.is_none() {
            return Err(PortError::NotFound(key.to_string()));
        }
        let path = self.tags_path(key)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        // A name of its own: two deliveries tagging the same object at once must not rename
        // each other's file away (the second rename would find nothing: "No such file").
        let tmp = path.with_extension(format!("json.{}.tmp", uuid::Uuid::new_v4().simple()));
        fs::write(&tmp, serde_json::to_vec_pretty(tags).expect("tags serialize"))?;
        fs::rename(tmp, path)?;
        Ok(())
    }

    fn get_tags(&self, key: &str) -> PortResult<BTreeMap<String, String>> {
        if self.head(key)?.is_none() {
            return Err(PortError::NotFound(key.to_string()));
        }
        match fs::read(self.tags_path(key)?) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| PortError::Unavailable(e.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e.into()),
        }
    }

    fn delete(&self, key: &str) -> PortResult<()> {
        let path = self.path_of(key)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let _ = fs::remove_file(self.tags_path(key)?);
        // Empty folders are not objects: prune them up to the root, as S3 would show it.
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == self.root || fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }
}
