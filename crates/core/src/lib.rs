//! Vellum's core: the domain model in Archivematica's vocabulary, the ports that stage
//! logic talks to, and the stages themselves. Nothing in here knows about AWS or SQLite;
//! adapters in other crates implement the ports.

pub mod access;
pub mod aip;
pub mod aip_check;
pub mod archive;
pub mod bag_parts;
pub mod bagit;
pub mod error;
pub mod feedback;
pub mod fixity;
pub mod fpr;
pub mod gzip_resume;
pub mod image_check;
pub mod intake;
pub mod jpeg_scan;
pub mod keys;
pub mod messages;
pub mod metadata;
pub mod mets;
pub mod model;
pub mod monitor;
pub mod parallel_gzip;
pub mod pdf;
pub mod per_file;
pub mod pipeline;
pub mod ports;
pub mod profile;
pub mod pronom;
pub mod ranged;
pub mod read_ahead;
pub mod retry;
pub mod rights;
pub mod sanitize;
pub mod stages;
pub mod storage;
pub mod tar_sparse;
pub mod tar_stream;
pub mod techmd;
pub mod test_transfer;
pub mod verdict;
pub mod xml;

pub use error::{StageError, StageResult};
pub use pipeline::{Outcome, Pipeline, StageContext};

/// The software agent recorded on every PREMIS event Vellum writes.
pub const SOFTWARE_AGENT: &str = concat!("Vellum-", env!("CARGO_PKG_VERSION"));
