//! What Vellum finds out about each file: its digests (`fixity`), its format (`pronom`), its
//! validity and technical metadata (`techmd`, with the decoders and structure walkers it
//! calls), whether it is text (`text`), each judged in the words of a PREMIS outcome (`verdict`).

pub mod audio_chunks;
pub mod fixity;
pub mod image_check;
pub mod jp2;
pub mod jpeg_scan;
pub mod pdf;
pub mod pdf_filters;
pub mod pronom;
pub mod techmd;
pub mod text;
pub mod verdict;
