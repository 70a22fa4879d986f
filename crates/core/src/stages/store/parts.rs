//! The stored AIP of a package written in slices, read back a part an invocation: each
//! part's invocation reads that part of the AIP and of its replica, digesting every file,
//! and saves what it found; the one that finds every part's result saved sends the transfer
//! on to the store stage, which merges them (sums and counts add up in any order) and
//! finishes as if it had read the parts one after another. A terabyte is then read by as
//! many invocations at once as it has parts, not by one stream.

use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::error::{StageError, StageResult};
use crate::model::messages::StageMessage;
use crate::model::{Stage, Transfer};
use crate::record::aip::{bag_name, package_extension};
use crate::record::keys::{verified_part_key, verified_parts_prefix};
use crate::stages::Progress;

use super::{failed_replica, failed_verification, load_checkpoint, read_part, Copied, ReadBack, Reading, Store};

/// What one part's read-back found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PartRead {
    primary: ReadBack,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replica: Option<ReadBack>,
}

/// Asks an invocation of its own to read back each of these parts.
pub(super) fn send_parts(p: &Store<'_>, transfer: &Transfer, parts: &[usize]) -> StageResult<()> {
    tracing::info!(parts = parts.len(), "the AIP is read back a part an invocation");
    let msgs: Vec<StageMessage> = parts.iter().map(|&i| StageMessage::batch(transfer.id, i as u32)).collect();
    p.flow.send(Stage::Store, &msgs)
}

/// Where the parts' read-back stands.
pub(super) enum Gathered {
    /// Every part's, merged into one for each copy (its next part past the last).
    All(Box<(ReadBack, ReadBack)>),
    /// The parts whose result is not saved yet.
    Missing(Vec<usize>),
}

/// Reads part `part` of the stored AIP and of its replica back, saves what it found, and
/// sends the transfer on when every part's result is saved.
pub(super) fn verify_part(p: &Store<'_>, transfer: &Transfer, part: usize) -> StageResult<Progress> {
    let (_, cp) = load_checkpoint(p, transfer)?;
    let copied = cp.stored.clone().ok_or_else(|| {
        StageError::Transient(format!("part {part} of {}'s AIP was sent to be read back before its copy", transfer.id))
    })?;
    let parts = copied.part_sizes.len();
    if part >= parts {
        return Err(StageError::Failed(format!("part {part} is not one of the AIP's {parts}")));
    }
    let profile = p.flow.profile(transfer)?;
    let reading = Reading { gzipped: package_extension(&profile) == "tar.gz", bag: bag_name(transfer) };
    let mut found = PartRead { primary: ReadBack { next_part: part, ..Default::default() }, replica: None };
    if let Err(why) = read_part(&reading, transfer, p.aips, &copied, &mut found.primary) {
        return Err(failed_verification(p, transfer, &copied, vec![format!("part {part}: {why}")]));
    }
    if let (Some(replica), Some(_)) = (p.replica, &cp.replica) {
        let mut read = ReadBack { next_part: part, ..Default::default() };
        if let Err(why) = read_part(&reading, transfer, replica, &copied, &mut read) {
            return Err(failed_replica(replica.as_ref(), &copied, vec![format!("part {part}: {why}")]));
        }
        found.replica = Some(read);
    }
    let json = serde_json::to_vec(&found).expect("a part's read-back serializes");
    p.flow.working.put(&verified_part_key(transfer.id, part), &json)?;
    // Each part lists the results after saving its own: the last to list sees them all.
    let saved = p.flow.working.list(&verified_parts_prefix(transfer.id))?.len();
    if saved >= parts {
        p.flow.send(Stage::Store, &[StageMessage::transfer(transfer.id)])?;
    }
    Ok(Progress::Done)
}

/// Every part's read-back merged, or the parts still missing.
pub(super) fn gather(p: &Store<'_>, transfer: &Transfer, copied: &Copied) -> StageResult<Gathered> {
    let parts = copied.part_sizes.len();
    let saved: std::collections::BTreeSet<String> =
        p.flow.working.list(&verified_parts_prefix(transfer.id))?.into_iter().map(|m| m.key).collect();
    let missing: Vec<usize> = (0..parts).filter(|&i| !saved.contains(&verified_part_key(transfer.id, i))).collect();
    if !missing.is_empty() {
        return Ok(Gathered::Missing(missing));
    }
    let (mut primary, mut replica) = (ReadBack::default(), ReadBack::default());
    for part in 0..parts {
        let mut bytes = Vec::new();
        p.flow.working.get(&verified_part_key(transfer.id, part))?.read_to_end(&mut bytes)?;
        let read: PartRead = serde_json::from_slice(&bytes)
            .map_err(|e| StageError::Transient(format!("part {part}'s read-back cannot be read back: {e}")))?;
        primary.verifier.merge(read.primary.verifier);
        primary.found.merge(&read.primary.found);
        if let Some(r) = read.replica {
            replica.verifier.merge(r.verifier);
            replica.found.merge(&r.found);
        }
    }
    primary.next_part = parts;
    replica.next_part = parts;
    Ok(Gathered::All(Box::new((primary, replica))))
}
