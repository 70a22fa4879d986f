//! Identifying an object where it lies in a store: ranged reads of its first and last
//! bytes, and a container opened only when a signature asks for one.

use std::io::Read;
use std::sync::Arc;

use super::container::normalize_ole2_name;
use super::{ContainerKind, ContainerSource, FormatIdentifier, Identification, WINDOW};
use crate::io::ranged::RangedReader;
use crate::ports::{ObjectStore, PortError};

/// A working file opened as a container only when a signature asks for it.
struct WorkingContainer {
    store: Arc<dyn ObjectStore>,
    key: String,
    size: u64,
    zip: Option<zip::ZipArchive<RangedReader>>,
    ole: Option<cfb::CompoundFile<RangedReader>>,
}

impl WorkingContainer {
    fn reader(&self) -> RangedReader {
        RangedReader::new(self.store.clone(), &self.key, self.size, 256 * 1024)
    }
}

impl ContainerSource for WorkingContainer {
    fn entries(&mut self, kind: ContainerKind) -> Option<Vec<String>> {
        match kind {
            ContainerKind::Zip => {
                if self.zip.is_none() {
                    self.zip = zip::ZipArchive::new(self.reader()).ok();
                }
                let zip = self.zip.as_ref()?;
                Some(zip.file_names().filter_map(Result::ok).map(|n| n.into_owned()).collect())
            }
            ContainerKind::Ole2 => {
                if self.ole.is_none() {
                    self.ole = cfb::CompoundFile::open(self.reader()).ok();
                }
                let ole = self.ole.as_ref()?;
                Some(
                    ole.walk()
                        .filter(|e| e.is_stream())
                        .map(|e| normalize_ole2_name(e.path().to_string_lossy().trim_start_matches('/')))
                        .collect(),
                )
            }
        }
    }

    fn read(&mut self, kind: ContainerKind, name: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        match kind {
            ContainerKind::Zip => {
                let entry = self.zip.as_mut()?.by_name(name).ok()?;
                entry.take(WINDOW as u64).read_to_end(&mut out).ok()?;
            }
            ContainerKind::Ole2 => {
                let ole = self.ole.as_mut()?;
                let path = ole
                    .walk()
                    .filter(|e| e.is_stream())
                    .map(|e| e.path().to_path_buf())
                    .find(|p| normalize_ole2_name(p.to_string_lossy().trim_start_matches('/')) == name)?;
                let stream = ole.open_stream(&path).ok()?;
                stream.take(WINDOW as u64).read_to_end(&mut out).ok()?;
            }
        }
        Some(out)
    }
}

/// Identifies one object of a store: its first and last bytes, and its contents when it is
/// a container.
/// `name` is the file's own (its path): its extension is what an extension match reads, not
/// the object's key, which names the file by its UUID.
pub fn identify_object(
    identifier: &FormatIdentifier,
    store: &Arc<dyn ObjectStore>,
    key: &str,
    name: &str,
    size: u64,
) -> Result<Identification, PortError> {
    let head = store.get_range(key, 0, WINDOW as u64)?;
    let whole = size <= WINDOW as u64;
    let tail = if whole { head.clone() } else { store.get_range(key, size - WINDOW as u64, WINDOW as u64)? };
    let mut container = WorkingContainer { store: store.clone(), key: key.to_string(), size, zip: None, ole: None };
    Ok(identifier.identify(&head, &tail, whole, name, &mut container))
}
