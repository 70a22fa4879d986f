//! The JSON API: what the dashboard shows, as JSON.

use serde_json::{json, Value};
use vellum_core::messages::queues;
use vellum_core::ports::{PortResult, TransferQuery};

use crate::Dashboard;

/// The newest transfers and every queue's depth.
pub fn status(d: &Dashboard) -> PortResult<Option<Value>> {
    let transfers = d.state.list_transfers(&TransferQuery { limit: 100, ..Default::default() })?.items;
    let mut depths = serde_json::Map::new();
    for q in queues::ALL {
        depths.insert(
            q.to_string(),
            json!({
                "messages": d.queue.depth(q)?,
                "dead_letters": d.queue.dead_letters(q)?.len(),
            }),
        );
    }
    Ok(Some(json!({ "transfers": transfers, "queues": depths })))
}

/// A transfer and its jobs.
pub fn transfer(d: &Dashboard, id: &str) -> PortResult<Option<Value>> {
    let Ok(id) = uuid::Uuid::parse_str(id) else {
        return Ok(None);
    };
    let Some(t) = d.state.transfer(id)? else {
        return Ok(None);
    };
    let jobs = d.state.jobs(id)?;
    Ok(Some(json!({ "transfer": t, "jobs": jobs })))
}
