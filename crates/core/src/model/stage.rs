//! The microservice stages, by name: the one list of what runs, in what order, on which
//! queue, under which of Archivematica's microservice and job names.

use std::fmt;
use std::str::FromStr;

/// One microservice stage. Its name is its queue's name and the key its job is kept under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Start,
    Extract,
    Checksum,
    Scan,
    Identify,
    Characterize,
    Normalize,
    Mets,
    Package,
    Store,
}

impl Stage {
    /// In pipeline order.
    pub const ALL: [Stage; 10] = [
        Stage::Start,
        Stage::Extract,
        Stage::Checksum,
        Stage::Scan,
        Stage::Identify,
        Stage::Characterize,
        Stage::Normalize,
        Stage::Mets,
        Stage::Package,
        Stage::Store,
    ];

    /// The per-file stages, in order. Batches travel through them one by one; the last one
    /// fans in to the per-transfer stages.
    pub const PER_FILE: [Stage; 5] =
        [Stage::Checksum, Stage::Scan, Stage::Identify, Stage::Characterize, Stage::Normalize];

    /// The stage's name: its queue's, and the key its job is kept under.
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Start => "start",
            Stage::Extract => "extract",
            Stage::Checksum => "checksum",
            Stage::Scan => "scan",
            Stage::Identify => "identify",
            Stage::Characterize => "characterize",
            Stage::Normalize => "normalize",
            Stage::Mets => "mets",
            Stage::Package => "package",
            Stage::Store => "store",
        }
    }

    /// Archivematica's microservice group, as its dashboard and API show it.
    pub const fn microservice_group(self) -> &'static str {
        match self {
            Stage::Start => "Verify transfer compliance",
            Stage::Extract => "Extract zipped transfer",
            Stage::Checksum => "Assign file UUIDs and checksums",
            Stage::Scan => "Scan for viruses",
            Stage::Identify => "Identify file format",
            Stage::Characterize => "Characterize and extract metadata",
            Stage::Normalize => "Normalize",
            Stage::Mets => "Generate AIP METS",
            Stage::Package => "Prepare AIP",
            Stage::Store => "Store AIP",
        }
    }

    /// Archivematica's job name within that group.
    pub const fn job_name(self) -> &'static str {
        match self {
            Stage::Start => "Verify transfer compliance",
            Stage::Extract => "Assign file UUIDs to objects",
            Stage::Checksum => "Assign checksums and file sizes to objects",
            Stage::Scan => "Scan for viruses",
            Stage::Identify => "Identify file format",
            Stage::Characterize => "Characterize and extract metadata",
            Stage::Normalize => "Normalize for preservation",
            Stage::Mets => "Generate METS.xml document",
            Stage::Package => "Compress AIP",
            Stage::Store => "Store the AIP",
        }
    }

    /// The queue this stage's long jobs are handed to (normalize's: a long video's
    /// conversion, too long for a Lambda), whose consumer runs the same stage without a
    /// time limit.
    pub const fn long_jobs_queue(self) -> Option<&'static str> {
        match self {
            Stage::Normalize => Some("normalize-long"),
            _ => None,
        }
    }

    /// Every queue that feeds this stage: its own, then its long-job queue if it has one.
    pub fn queues(self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.name()).chain(self.long_jobs_queue())
    }

    /// The stage a queue feeds.
    pub fn of_queue(queue: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.queues().any(|q| q == queue))
    }

    pub fn is_per_file(self) -> bool {
        Self::PER_FILE.contains(&self)
    }

    /// Where a batch goes after this per-file stage; None after the last one (and for a
    /// stage that is not per-file).
    pub fn next_per_file(self) -> Option<Stage> {
        let i = Self::PER_FILE.iter().position(|s| *s == self)?;
        Self::PER_FILE.get(i + 1).copied()
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no stage's: a message on a queue nothing listens on, or a job record
/// written by another version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no stage is called {0:?} (the stages are start, extract, checksum, scan, identify, characterize, normalize, mets, package, store)")]
pub struct UnknownStage(pub String);

impl FromStr for Stage {
    type Err = UnknownStage;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Stage::ALL.into_iter().find(|s| s.name() == name).ok_or_else(|| UnknownStage(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for stage in Stage::ALL {
            assert_eq!(stage.name().parse::<Stage>(), Ok(stage));
        }
        assert_eq!("transcribe".parse::<Stage>(), Err(UnknownStage("transcribe".into())));
    }

    #[test]
    fn batches_travel_the_per_file_stages_in_order() {
        assert_eq!(Stage::Checksum.next_per_file(), Some(Stage::Scan));
        assert_eq!(Stage::Characterize.next_per_file(), Some(Stage::Normalize));
        assert_eq!(Stage::Normalize.next_per_file(), None);
        assert_eq!(Stage::Mets.next_per_file(), None);
        assert!(!Stage::Extract.is_per_file());
    }
}
