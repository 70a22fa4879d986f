//! Byte streams the stages read and write at any size: ranged reads of an object, reading
//! ahead on another core, gzip that resumes mid-stream and gzip on every core, tar streams
//! (sparse members included), and a zip entry opened where it lies, without the central
//! directory.

pub mod gzip_resume;
pub mod open_ahead;
pub mod parallel_gzip;
pub mod ranged;
pub mod read_ahead;
pub mod scratch;
pub mod tar_sparse;
pub mod tar_stream;
pub mod zip_entry;
