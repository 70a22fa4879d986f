//! The virus scanner's port.

use std::io::Read;

use super::PortResult;

/// What a virus scanner says about one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanVerdict {
    Clean,
    /// Infected, with the signature that matched.
    Infected(String),
    /// The scanner could not look at it (e.g. larger than its stream limit), and why.
    NotScanned(String),
}

/// A virus scanner. Not reaching it is an error (transient), never a clean verdict.
pub trait VirusScanner: Send + Sync {
    /// Engine and signature versions, for the PREMIS event.
    fn version(&self) -> PortResult<String>;
    fn scan(&self, data: &mut dyn Read) -> PortResult<ScanVerdict>;
}
