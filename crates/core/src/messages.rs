//! What travels on the queues. Every message names its transfer; per-file stages also
//! name the batch. Bodies are JSON so they read well in a dead-letter queue.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The queue that feeds each stage.
pub mod queues {
    pub const START: &str = "start";
    pub const EXTRACT: &str = "extract";
    pub const CHECKSUM: &str = "checksum";
    pub const METS: &str = "mets";
    pub const PACKAGE: &str = "package";
    pub const STORE: &str = "store";
    /// In pipeline order.
    pub const ALL: &[&str] = &[START, EXTRACT, CHECKSUM, METS, PACKAGE, STORE];
}

/// An object landing in the uploads bucket, as S3 reports it (decoded key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadEvent {
    pub bucket: String,
    pub key: String,
    pub event_name: String,
    pub event_time: String,
    pub sequencer: String,
    pub version_id: Option<String>,
    pub size: u64,
}

/// Work for any stage after start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageMessage {
    pub transfer_id: Uuid,
    /// The batch, for per-file stages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<u32>,
}

impl StageMessage {
    pub fn transfer(transfer_id: Uuid) -> Self {
        Self {
            transfer_id,
            batch: None,
        }
    }

    pub fn batch(transfer_id: Uuid, batch: u32) -> Self {
        Self {
            transfer_id,
            batch: Some(batch),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a stage message always serializes")
    }
}
