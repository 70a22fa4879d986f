//! A tar upload (plain or gzipped) read as a stream from the object store, from its start or
//! from a position a reader noted in an earlier invocation: the offset of an entry's first
//! header in the tar, and for a gzipped tar the deflate point to inflate from. Listing at
//! intake and extraction both go on from such positions, so a long tar never makes an
//! invocation start again from zero.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::io::gzip_resume::{GzipPoint, PointLog, ResumableGz};
use crate::io::ranged::RangedReader;
use crate::ports::ObjectStore;

/// Ranged reads of a plain tar fetch this much at a time.
const CHUNK: u64 = 8 << 20;

/// Where a later invocation can pick a tar up again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TarPosition {
    /// The index of the entry that starts here.
    pub entry: u64,
    /// Where its first header is in the tar (decompressed) stream.
    pub offset: u64,
    /// For a gzipped tar, the point at or before `offset` to inflate from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip: Option<GzipPoint>,
}

/// A tar stream and what it takes to say where it stands.
pub struct TarStream {
    pub archive: tar::Archive<Box<dyn Read + Send>>,
    pub marks: TarMarks,
}

/// What says where a tar stream's entries are, beside the stream (the archive borrows the
/// stream while its entries are read).
pub struct TarMarks {
    /// The index of the first entry the archive will give.
    pub first_entry: u64,
    /// The tar offset the archive's own positions count from.
    base: u64,
    points: Option<Arc<Mutex<PointLog>>>,
}

impl TarStream {
    /// Opens the upload's tar at `from`, or at its start.
    pub fn open(
        store: Arc<dyn ObjectStore>,
        key: &str,
        size: u64,
        gzipped: bool,
        from: Option<&TarPosition>,
    ) -> io::Result<Self> {
        let (reader, points): (Box<dyn Read + Send>, _) = match (gzipped, from) {
            (false, from) => {
                let mut ranged = RangedReader::new(store, key, size, CHUNK);
                if let Some(from) = from {
                    io::Seek::seek(&mut ranged, io::SeekFrom::Start(from.offset))?;
                }
                (Box::new(ranged), None)
            }
            (true, None) => {
                let gz = ResumableGz::open(store, key, size);
                let log = gz.point_log();
                (Box::new(gz), Some(log))
            }
            (true, Some(from)) => {
                let point = from.gzip.as_ref().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "a position in a gzipped tar without its gzip point")
                })?;
                let mut gz = ResumableGz::resume(store, key, size, point)?;
                let log = gz.point_log();
                // From the point to the entry's header: at most a deflate block or two.
                let gap = from.offset.checked_sub(point.output_offset).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "a gzip point after the position it leads to")
                })?;
                let skipped = io::copy(&mut (&mut gz).take(gap), &mut io::sink())?;
                if skipped != gap {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the tar ends before a noted position"));
                }
                (Box::new(gz), Some(log))
            }
        };
        Ok(Self {
            archive: tar::Archive::new(reader),
            marks: TarMarks { first_entry: from.map_or(0, |f| f.entry), base: from.map_or(0, |f| f.offset), points },
        })
    }
}

impl TarMarks {
    /// Where the entry after `entry` starts in the tar: read it before its data is read.
    pub fn end_of<R: Read>(&self, entry: &tar::Entry<'_, R>) -> Option<u64> {
        let data = entry.header().entry_size().ok()?;
        Some(self.base + entry.raw_file_position() + data.div_ceil(512) * 512)
    }

    /// A position for the `index`th entry, starting at `offset`, if a later invocation
    /// could start there: always for a plain tar, for a gzipped one while a point at or
    /// before it is still kept (ask once the stream has been read up to it).
    pub fn position(&self, index: u64, offset: u64) -> Option<TarPosition> {
        let gzip = match &self.points {
            None => None,
            Some(log) => Some(log.lock().unwrap_or_else(|p| p.into_inner()).at_or_before(offset)?),
        };
        Some(TarPosition { entry: index, offset, gzip })
    }

    /// Where the entry after `entry` (the `index`th) starts, as `position` says.
    pub fn position_after<R: Read>(&self, index: u64, entry: &tar::Entry<'_, R>) -> Option<TarPosition> {
        self.position(index + 1, self.end_of(entry)?)
    }
}
