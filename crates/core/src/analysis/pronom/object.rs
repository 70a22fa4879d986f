//! Identifying an object where it lies in a store: ranged reads of its first and last
//! bytes, and a container opened only when a signature asks for one.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use super::container::normalize_ole2_name;
use super::{ContainerKind, ContainerSource, FormatIdentifier, Identification, WINDOW};
use crate::io::ranged::RangedReader;
use crate::ports::{ObjectStore, PortError};

/// A file opened as a container only when a signature asks for it: `open` gives a fresh
/// reader of the whole file (a store's ranged reads, or a file on disk).
struct LazyContainer<R: Read + Seek, F: FnMut() -> Option<R>> {
    open: F,
    zip: Option<zip::ZipArchive<R>>,
    ole: Option<cfb::CompoundFile<R>>,
}

impl<R: Read + Seek, F: FnMut() -> Option<R>> ContainerSource for LazyContainer<R, F> {
    fn entries(&mut self, kind: ContainerKind) -> Option<Vec<String>> {
        match kind {
            ContainerKind::Zip => {
                if self.zip.is_none() {
                    self.zip = (self.open)().and_then(|r| zip::ZipArchive::new(r).ok());
                }
                let zip = self.zip.as_ref()?;
                Some(zip.file_names().filter_map(Result::ok).map(|n| n.into_owned()).collect())
            }
            ContainerKind::Ole2 => {
                if self.ole.is_none() {
                    self.ole = (self.open)().and_then(|r| cfb::CompoundFile::open(r).ok());
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
    let open = || Some(RangedReader::new(store.clone(), key, size, 256 * 1024));
    let mut container = LazyContainer { open, zip: None, ole: None };
    Ok(identifier.identify(&head, &tail, whole, name, &mut container))
}

/// Identifies a file read through `open` (a file on disk: `vellum identify`), as
/// `identify_object` does an object of a store; `name` gives the extension.
pub fn identify_reader<R: Read + Seek>(
    identifier: &FormatIdentifier,
    mut open: impl FnMut() -> std::io::Result<R>,
    name: &str,
) -> std::io::Result<Identification> {
    let mut reader = open()?;
    let size = reader.seek(SeekFrom::End(0))?;
    let window = |reader: &mut R, from: u64| -> std::io::Result<Vec<u8>> {
        let mut bytes = Vec::with_capacity(WINDOW.min(size as usize));
        reader.seek(SeekFrom::Start(from))?;
        reader.by_ref().take(WINDOW as u64).read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    let head = window(&mut reader, 0)?;
    let whole = size <= WINDOW as u64;
    let tail = if whole { head.clone() } else { window(&mut reader, size - WINDOW as u64)? };
    let mut container = LazyContainer { open: || open().ok(), zip: None, ole: None };
    Ok(identifier.identify(&head, &tail, whole, name, &mut container))
}
