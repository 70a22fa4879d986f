//! Knobs of a run that are not part of a processing profile.

/// Knobs that are not part of a profile.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Overrides every profile's batch size (tests use small batches).
    pub batch_size: Option<u32>,
    /// Who uploaded, for the PREMIS user agent.
    pub uploader: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self { batch_size: None, uploader: "uploader".to_string() }
    }
}
