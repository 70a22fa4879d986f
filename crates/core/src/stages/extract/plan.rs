//! How a large zip is spread over many invocations: its listing cut into batches (as
//! extraction in one line would cut them) and the batches into ranges, each range small
//! enough for one invocation. Made once from the listing, saved beside it, and read by every
//! range; nothing in it depends on the order the ranges run in.

use std::io::{self, BufRead};

use serde::{Deserialize, Serialize};

use crate::intake::archive::{EntryKind, ListingLine};
use crate::ports::ExtractCheckpoint;

/// How large a batch and a range may grow.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Files in a batch (the profile's batch size).
    pub batch_files: u32,
    /// Batches in a range.
    pub range_batches: u32,
    /// Bytes a batch or a range holds before the next starts (a single larger file is a
    /// batch of its own).
    pub range_bytes: u64,
}

impl Limits {
    /// A range of 8 batches and at most 1 GiB: under a minute of work at Lambda's S3
    /// throughput, so 1,000 concurrent ranges take a 1 TB package.
    pub fn for_batches_of(batch_files: u32) -> Self {
        Self { batch_files: batch_files.max(1), range_batches: 8, range_bytes: 1 << 30 }
    }
}

/// A batch of the plan: where its lines start in the listing and how many files it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedBatch {
    /// The index of its first entry.
    pub entry: u64,
    /// The byte offset of its first line in the listing.
    pub offset: u64,
    pub files: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractPlan {
    /// Entries in the listing (one past the last index).
    pub entries: u64,
    pub files: u64,
    /// The listing's length in bytes: where the last batch's lines end.
    pub listing_bytes: u64,
    pub batches: Vec<PlannedBatch>,
    /// The first batch of each range, ascending, starting at 0.
    pub ranges: Vec<u32>,
}

/// Why a package is extracted in one line of invocations instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sequential {
    /// An entry cannot be opened where it lies (a tar member, an encrypted entry, a
    /// compression other than deflate): said in words.
    Unlocated(String),
    /// It fits one range.
    Small,
}

impl ExtractPlan {
    /// The plan of a listing, or why it is extracted in one line.
    pub fn of(listing: impl BufRead, limits: Limits) -> io::Result<Result<Self, Sequential>> {
        let mut plan = ExtractPlan { entries: 0, files: 0, listing_bytes: 0, batches: Vec::new(), ranges: Vec::new() };
        let mut batch_bytes = 0u64;
        let mut range_bytes = 0u64;
        let mut range_batches = 0u32;
        // The first batch begins at the first line, before its first file.
        let mut current = PlannedBatch { entry: 0, offset: 0, files: 0 };
        for line in listing.split(b'\n') {
            let line = line?;
            let offset = plan.listing_bytes;
            plan.listing_bytes += line.len() as u64 + 1;
            if line.is_empty() {
                continue;
            }
            let line: ListingLine = serde_json::from_slice(&line).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("the package listing is unreadable: {e}"))
            })?;
            if offset == 0 {
                current.entry = line.index;
            }
            plan.entries = line.index + 1;
            if line.kind == EntryKind::File && line.at.is_none() {
                return Ok(Err(Sequential::Unlocated(format!(
                    "the entry {:?} can be read only by reading the package in order (a tar member, an encrypted zip entry or a compression other than deflate)",
                    line.name
                ))));
            }
            if line.kind != EntryKind::File || line.left_out.is_some() {
                continue;
            }
            let full = current.files >= limits.batch_files || (current.files > 0 && batch_bytes >= limits.range_bytes);
            if full {
                plan.batches.push(current);
                range_batches += 1;
                range_bytes += batch_bytes;
                if range_batches >= limits.range_batches || range_bytes >= limits.range_bytes {
                    plan.ranges.push(plan.batches.len() as u32);
                    range_batches = 0;
                    range_bytes = 0;
                }
                current = PlannedBatch { entry: line.index, offset, files: 0 };
                batch_bytes = 0;
            }
            current.files += 1;
            batch_bytes += line.size;
            plan.files += 1;
        }
        if current.files == 0 {
            // No file at all: nothing to spread.
            return Ok(Err(Sequential::Small));
        }
        plan.batches.push(current);
        plan.ranges.insert(0, 0);
        if plan.ranges.len() < 2 {
            return Ok(Err(Sequential::Small));
        }
        Ok(Ok(plan))
    }

    /// Extraction's checkpoint once the plan is fixed: done, with its final counts.
    pub fn checkpoint(&self) -> ExtractCheckpoint {
        ExtractCheckpoint {
            next_entry: self.entries,
            batches: self.batches.len() as u32,
            files: self.files,
            done: true,
        }
    }

    /// The batch after the last one of the range that holds `batch`.
    pub fn range_end(&self, batch: u32) -> u32 {
        let at = self.ranges.partition_point(|&first| first <= batch);
        self.ranges.get(at).copied().unwrap_or(self.batches.len() as u32)
    }

    /// Where a batch's lines lie in the listing: (offset, length).
    pub fn lines_of(&self, batch: u32) -> Option<(u64, u64)> {
        let this = self.batches.get(batch as usize)?;
        let end = self.batches.get(batch as usize + 1).map_or(self.listing_bytes, |next| next.offset);
        Some((this.offset, end - this.offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::zip_entry::ZipAt;

    fn line(index: u64, kind: EntryKind, size: u64, located: bool) -> String {
        let at =
            located.then_some(ZipAt { header: index * 100, compressed: size, method: 0, crc32: 0, dos_time: None });
        let l = ListingLine {
            index,
            name: format!("objects/{index}"),
            kind,
            size,
            path: (kind == EntryKind::File).then(|| format!("objects/{index}")),
            left_out: None,
            at,
        };
        serde_json::to_string(&l).unwrap() + "\n"
    }

    fn listing(lines: &[String]) -> Vec<u8> {
        lines.concat().into_bytes()
    }

    #[test]
    fn batches_and_ranges_cover_every_line_once() {
        // A folder first, then 10 files: batches of 2, ranges of 2 batches.
        let mut lines = vec![line(0, EntryKind::Directory, 0, false)];
        lines.extend((1..=10).map(|i| line(i, EntryKind::File, 5, true)));
        let text = listing(&lines);
        let limits = Limits { batch_files: 2, range_batches: 2, range_bytes: 1 << 30 };
        let plan = ExtractPlan::of(&text[..], limits).unwrap().unwrap();
        assert_eq!(plan.batches.len(), 5);
        assert_eq!(plan.ranges, [0, 2, 4]);
        assert_eq!(plan.checkpoint(), ExtractCheckpoint { next_entry: 11, batches: 5, files: 10, done: true });
        assert_eq!((plan.range_end(0), plan.range_end(1), plan.range_end(3), plan.range_end(4)), (2, 2, 4, 5));
        // The batches' lines, put together, are the listing; the folder is in the first.
        let mut joined = Vec::new();
        for b in 0..5 {
            let (offset, len) = plan.lines_of(b).unwrap();
            joined.extend_from_slice(&text[offset as usize..(offset + len) as usize]);
        }
        assert_eq!(joined, text);
        assert_eq!(plan.batches[0], PlannedBatch { entry: 0, offset: 0, files: 2 });
        assert_eq!(plan.batches[1].entry, 3);
    }

    #[test]
    fn bytes_close_a_batch_and_a_range() {
        let lines: Vec<String> = (0..4).map(|i| line(i, EntryKind::File, 600, true)).collect();
        let limits = Limits { batch_files: 100, range_batches: 100, range_bytes: 1000 };
        let plan = ExtractPlan::of(&listing(&lines)[..], limits).unwrap().unwrap();
        assert_eq!(plan.batches.iter().map(|b| b.files).collect::<Vec<_>>(), [2, 2]);
        assert_eq!(plan.ranges, [0, 1]);
    }

    #[test]
    fn a_member_not_located_or_a_small_package_stays_in_one_line() {
        let lines = vec![line(0, EntryKind::File, 1, true), line(1, EntryKind::File, 1, false)];
        let limits = Limits { batch_files: 1, range_batches: 1, range_bytes: 1 << 30 };
        let why = ExtractPlan::of(&listing(&lines)[..], limits).unwrap().unwrap_err();
        assert!(matches!(&why, Sequential::Unlocated(w) if w.contains("objects/1")), "{why:?}");
        let small = vec![line(0, EntryKind::File, 1, true), line(1, EntryKind::File, 1, true)];
        let limits = Limits { batch_files: 2, range_batches: 8, range_bytes: 1 << 30 };
        assert_eq!(ExtractPlan::of(&listing(&small)[..], limits).unwrap(), Err(Sequential::Small));
        assert_eq!(ExtractPlan::of(&b""[..], limits).unwrap(), Err(Sequential::Small));
    }
}
