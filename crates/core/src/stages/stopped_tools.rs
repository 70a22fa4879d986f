//! Tools stopped for the rest of a transfer: a rule's tool that ran past its timeout is not
//! run again on any later file of the transfer, in this batch or any other, so a hung tool
//! costs one timeout, not one a file. The mark is an object in the transfer's working area
//! (a batch may run in another process, or another Lambda), cleaned away with the rest.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::ports::{ObjectStore, PortResult};
use crate::record::keys::{stopped_tool_key, stopped_tools_prefix};

/// The rules stopped in a transfer, each with why, as the files after it are told.
pub struct StoppedTools<'a> {
    working: &'a dyn ObjectStore,
    transfer_id: Uuid,
    stopped: BTreeMap<String, String>,
}

impl<'a> StoppedTools<'a> {
    /// The rules stopped so far in the transfer, read once a batch.
    pub fn of_transfer(working: &'a dyn ObjectStore, transfer_id: Uuid) -> PortResult<Self> {
        let mut stopped = BTreeMap::new();
        let prefix = stopped_tools_prefix(transfer_id);
        for meta in working.list(&prefix)? {
            let mut why = String::new();
            std::io::Read::read_to_string(&mut working.get(&meta.key)?, &mut why)?;
            stopped.insert(meta.key[prefix.len()..].to_string(), why);
        }
        Ok(Self { working, transfer_id, stopped })
    }

    /// Why the rule is not run again, if it was stopped.
    pub fn why(&self, rule: &str) -> Option<String> {
        self.stopped.get(&mark_name(rule)).map(|why| format!("not performed: {why}; not run again in this transfer"))
    }

    /// Marks the rule stopped: its tool ran past `timeout_seconds` on `path`.
    pub fn stop(&mut self, rule: &str, command: &str, timeout_seconds: u64, path: &str) -> PortResult<()> {
        let why = format!("{command} stopped responding (stopped after {timeout_seconds} seconds on {path})");
        self.working.put(&stopped_tool_key(self.transfer_id, &mark_name(rule)), why.as_bytes())?;
        self.stopped.insert(mark_name(rule), why);
        Ok(())
    }
}

/// A rule's name as the last part of its mark's key (the shipped rules have no slash).
fn mark_name(rule: &str) -> String {
    rule.replace('/', "_")
}
