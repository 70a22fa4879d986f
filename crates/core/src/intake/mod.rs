//! Intake: what an uploaded package holds, read without extracting it (`archive`), the rules
//! it must keep before anything is extracted (`rules`, `metadata`), the safe names its files
//! get (`sanitize`), and what the archivist is told beside the upload (`feedback`).

pub mod archive;
pub mod feedback;
pub mod layout;
pub mod metadata;
pub mod processing;
pub mod rules;
pub mod sanitize;
