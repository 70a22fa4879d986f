//! One module per microservice stage. Each reads its message, does one job, records what
//! happened, and sends the next stage its messages. All are safe to run twice.

pub mod characterize;
pub mod checksum;
pub mod extract;
pub mod identify;
pub mod mets;
pub mod package;
pub mod per_file;
pub mod scan;
pub mod start;
pub mod store;

use crate::messages::queues;

/// The per-file stages, in order. Batches travel through them one by one; the last one
/// fans in to the per-transfer stages.
pub const PER_FILE_STAGES: &[&str] = &[queues::CHECKSUM, queues::SCAN, queues::IDENTIFY, queues::CHARACTERIZE];

/// Where a batch goes after `stage`, or None after the last per-file stage.
pub fn next_per_file_stage(stage: &str) -> Option<&'static str> {
    let i = PER_FILE_STAGES.iter().position(|s| *s == stage)?;
    PER_FILE_STAGES.get(i + 1).copied()
}

/// Where the working copy of a transfer's file lives.
pub fn working_key(transfer_id: uuid::Uuid, current_path: &str) -> String {
    format!("{transfer_id}/{current_path}")
}
