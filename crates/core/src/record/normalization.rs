//! What normalization left undone, for the success log, the CLI and the dashboard: the
//! originals a copy could not be made of, read from their events a page at a time.

use uuid::Uuid;

use crate::model::{EventOutcome, EventType};
use crate::ports::{EventLog, FileCatalogue, FilePages, PortResult, PAGE_SIZE};

/// Whether the event says a copy (preservation, access, thumbnail) could not be made.
pub fn failed(event: &crate::model::PremisEvent) -> bool {
    event.event_type == EventType::Normalization && event.outcome == EventOutcome::Fail
}

/// The transfer's originals whose `normalization` event failed, by file id.
pub fn not_normalized(events: &dyn EventLog, transfer_id: Uuid) -> PortResult<Vec<Uuid>> {
    let mut not_made = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = events.events(transfer_id, after.as_deref(), PAGE_SIZE)?;
        not_made.extend(page.items.iter().filter(|e| failed(e)).filter_map(|e| e.file_uuid));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    not_made.sort();
    not_made.dedup();
    Ok(not_made)
}

/// Their paths, in path order (the files read a page at a time, only when there are any).
pub fn not_normalized_paths(
    events: &dyn EventLog,
    files: &dyn FileCatalogue,
    transfer_id: Uuid,
) -> PortResult<Vec<String>> {
    let failed = not_normalized(events, transfer_id)?;
    if failed.is_empty() {
        return Ok(Vec::new());
    }
    let mut paths = Vec::new();
    for file in FilePages::new(files, transfer_id) {
        let file = file?;
        if failed.binary_search(&file.uuid).is_ok() {
            paths.push(file.current_path);
        }
    }
    Ok(paths)
}
