//! What normalization left undone, for reports: the originals whose preservation copy could
//! not be made, read from their events a page at a time.

use uuid::Uuid;

use crate::model::{EventOutcome, EventType};
use crate::ports::{EventLog, PortResult, PAGE_SIZE};

/// The transfer's originals whose `normalization` event failed, by file id.
pub fn not_normalized(events: &dyn EventLog, transfer_id: Uuid) -> PortResult<Vec<Uuid>> {
    let mut failed = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = events.events(transfer_id, after.as_deref(), PAGE_SIZE)?;
        failed.extend(
            page.items
                .iter()
                .filter(|e| e.event_type == EventType::Normalization && e.outcome == EventOutcome::Fail)
                .filter_map(|e| e.file_uuid),
        );
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    failed.sort();
    failed.dedup();
    Ok(failed)
}
