//! Every object-key layout Vellum writes, in one place: the working area (extracted files,
//! the listing, the METS, the package's parts), the AIP bucket, and the logs beside an
//! upload. A key's shape is a contract with operators and the monitor's clean-up: change it
//! here or nowhere.

use uuid::Uuid;

use crate::model::Transfer;

/// Everything of one transfer in the working area lives under this prefix.
pub fn working_prefix(transfer_id: Uuid) -> String {
    format!("{transfer_id}/")
}

/// The working copy of a transfer's file, by its UUID, never by its path: a path as long as
/// a POSIX system allows (4,096 bytes) is stored where an S3 key stops at 1,024.
pub fn file_key(transfer_id: Uuid, file: Uuid) -> String {
    format!("{transfer_id}/files/{file}")
}

/// A metadata file a stage reads by its name (`metadata/rights.csv`, a bag's manifests):
/// kept under that name, which intake bounds.
pub fn named_key(transfer_id: Uuid, name: &str) -> String {
    format!("{transfer_id}/{name}")
}

/// Whether a file of the package is one a stage reads by its name: metadata.csv (and its
/// JSON twin), a transfer's structural map and PREMIS, rights.csv, the supplied checksum files, a bag's tag files.
pub fn read_by_name(path: &str) -> bool {
    let top_file = |folder: &str| path.strip_prefix(folder).is_some_and(|rest| !rest.contains('/'));
    path == "metadata/metadata.csv"
        || path == "metadata/metadata.json"
        || path == "metadata/mets_structmap.xml"
        || path == "metadata/premis.xml"
        || path == "metadata/rights.csv"
        || (top_file("metadata/") && path.starts_with("metadata/checksum."))
        || top_file("submissionDocumentation/bag/")
}

/// Where a file of the transfer is kept in the working area: by its UUID, or, for one a
/// stage reads by name, by that name.
pub fn object_key(transfer_id: Uuid, file: Uuid, current_path: &str) -> String {
    if read_by_name(current_path) {
        named_key(transfer_id, current_path)
    } else {
        file_key(transfer_id, file)
    }
}

/// `object_key` of a file record.
pub fn key_of(file: &crate::model::File) -> String {
    object_key(file.transfer_id, file.uuid, &file.current_path)
}

/// An access copy or a thumbnail waiting in the working area for its DIP, at `path` as the
/// DIP lays it out (`objects/…`, `thumbnails/…`).
pub fn dip_key(transfer_id: Uuid, path: &str) -> String {
    format!("{}{path}", dip_prefix(transfer_id))
}

/// Where the transfer's DIP is put together in the working area.
pub fn dip_prefix(transfer_id: Uuid) -> String {
    format!("{transfer_id}/dip/")
}

/// A DIP's folder in the DIP location, as Archivematica names it: the transfer's name and
/// the SIP's UUID.
pub fn dip_name(transfer: &Transfer) -> String {
    format!("{}-{}", safe_name(transfer), transfer.sip_uuid)
}

/// Where the rules whose tool stopped responding in a transfer are marked, one object a
/// rule (see `stages::stopped_tools`).
pub fn stopped_tools_prefix(transfer_id: Uuid) -> String {
    format!("{transfer_id}/stopped-tools/")
}

/// The mark of one stopped rule, by a name without slashes.
pub fn stopped_tool_key(transfer_id: Uuid, rule: &str) -> String {
    format!("{}{rule}", stopped_tools_prefix(transfer_id))
}

/// The listing intake made of the package, which extraction follows.
pub fn listing_key(transfer_id: Uuid) -> String {
    format!("{transfer_id}/listing.jsonl")
}

/// How extraction spreads a large zip over ranges (see `stages::extract::plan`).
pub fn extract_plan_key(transfer_id: Uuid) -> String {
    format!("{transfer_id}/extract-plan.json")
}

/// The transfer's name as it may appear in a path (the bag, the AIP's file name, folders in
/// the AIP): sanitized like every other name, so `spaces accents` becomes `spaces_accents`.
pub fn safe_name(transfer: &Transfer) -> String {
    crate::intake::sanitize::sanitize_component(&transfer.name)
}

/// The bag's top-level folder, and the AIP's name in storage: `<name>-<aip-uuid>`.
pub fn bag_name(transfer: &Transfer) -> String {
    format!("{}-{}", safe_name(transfer), transfer.aip_uuid)
}

/// The AIP METS file, relative to the bag's `data/`.
pub fn mets_name(transfer: &Transfer) -> String {
    format!("METS.{}.xml", transfer.aip_uuid)
}

/// One invocation's part of a tar's listing at intake, named for its writer.
pub fn listing_part_key(transfer_id: Uuid, part: usize, writer: Uuid) -> String {
    format!("{transfer_id}/listing-parts/{part:06}-{writer}.json")
}

/// The transfer METS, until packaging.
pub fn working_transfer_mets_key(transfer: &Transfer) -> String {
    format!("{}/aip/transfer-METS.xml", transfer.id)
}

/// The AIP METS, until packaging.
pub fn working_mets_key(transfer: &Transfer) -> String {
    format!("{}/aip/{}", transfer.id, mets_name(transfer))
}

/// A piece of a METS document written by one invocation; the pieces are joined in order.
pub fn mets_piece_key(transfer_id: Uuid, document: &str, piece: u32, writer: Uuid) -> String {
    format!("{transfer_id}/aip/mets-pieces/{document}/{piece:06}-{writer}")
}

/// One of the AIP's logs (`data/logs/<name>`), until packaging.
pub fn working_log_key(transfer_id: Uuid, name: &str) -> String {
    format!("{transfer_id}/aip/logs/{name}")
}

/// A stretch of the per-file logs written by one METS invocation, named for its writer.
pub fn log_piece_key(transfer_id: Uuid, piece: usize, writer: Uuid) -> String {
    format!("{transfer_id}/aip/log-pieces/{piece:06}-{writer}.json")
}

/// One part of the package, named for the writer that made it, so that a duplicate
/// delivery racing it writes its own part and only the recorded one is ever joined.
pub fn package_part_key(transfer_id: Uuid, first_entry: usize, writer: Uuid) -> String {
    format!("{transfer_id}/aip/parts/{first_entry:09}-{writer}")
}

/// The bag's entries one slice of the package writes, listed by the plan.
pub fn package_slice_key(transfer_id: Uuid, slice: u32) -> String {
    format!("{transfer_id}/aip/slices/{slice:06}.jsonl")
}

/// A tag file of the bag (bagit.txt, a manifest), written once by the package's plan.
pub fn package_tag_key(transfer_id: Uuid, name: &str) -> String {
    format!("{transfer_id}/aip/tags/{name}")
}

/// What reading one part of the stored AIP back found (in both copies).
pub fn verified_part_key(transfer_id: Uuid, part: usize) -> String {
    format!("{transfer_id}/aip/verified/{part:06}.json")
}

/// Where every part's read-back result is.
pub fn verified_parts_prefix(transfer_id: Uuid) -> String {
    format!("{transfer_id}/aip/verified/")
}

/// A stored AIP in its space.
pub fn aip_key(space: &str, identifier: &str, version: u32, transfer: &Transfer, extension: &str) -> String {
    format!("{space}/{identifier}/v{version}/{}.{extension}", bag_name(transfer))
}

/// The outcome of an upload, beside it in the uploads bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutcome {
    /// Intake's acknowledgement: the package passed its checks and processing has begun.
    Accepted,
    /// The final answer: the AIP is stored and verified.
    Success,
    /// The final answer: refused, or failed.
    Failed,
}

/// `<key>.<accepted|success|failed>.<eventTime>.<id12>.log`, where id12 comes from the
/// event's identity, so a retried event overwrites its own log rather than adding another.
/// An upload gets one final answer: `success` or `failed`.
pub fn log_key(transfer: &Transfer, outcome: LogOutcome) -> String {
    let word = match outcome {
        LogOutcome::Accepted => "accepted",
        LogOutcome::Success => "success",
        LogOutcome::Failed => "failed",
    };
    let time: String = transfer
        .source_event_time
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') { c } else { '-' })
        .collect();
    let id12: String = transfer.event_key.chars().filter(char::is_ascii_alphanumeric).take(12).collect();
    format!("{}.{word}.{time}.{id12}.log", transfer.source_key)
}

/// A stored AIP's key, taken apart: `<space>/<identifier>/v<N>/<name>-<aip uuid>.<ext>`
/// (an identifier may hold slashes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AipKey {
    pub key: String,
    pub space: String,
    pub identifier: String,
    pub version: u32,
    /// The bag's name (`<name>-<aip uuid>`), the folder inside the package.
    pub bag: String,
    pub aip_uuid: uuid::Uuid,
}

pub fn parse_aip_key(key: &str) -> Option<AipKey> {
    let (space, rest) = key.split_once('/')?;
    let (rest, file) = rest.rsplit_once('/')?;
    let (identifier, version) = rest.rsplit_once('/')?;
    let version: u32 = version.strip_prefix('v')?.parse().ok()?;
    let bag = file.strip_suffix(".tar.gz").or_else(|| file.strip_suffix(".tar"))?;
    let uuid = bag.get(bag.len().checked_sub(36)?..)?;
    Some(AipKey {
        key: key.to_string(),
        space: space.to_string(),
        identifier: identifier.to_string(),
        version,
        bag: bag.to_string(),
        aip_uuid: uuid::Uuid::parse_str(uuid).ok()?,
    })
}

#[cfg(test)]
mod aip_key_tests {
    use super::*;

    #[test]
    fn stored_aip_keys_come_apart() {
        let k = parse_aip_key("born-digital/PP/CRI/9/v2/letters-6f1c1a4e-2f5b-4d7e-9a51-3c8e2b7d9f10.tar.gz").unwrap();
        assert_eq!((k.space.as_str(), k.identifier.as_str(), k.version), ("born-digital", "PP/CRI/9", 2));
        assert_eq!(k.bag, "letters-6f1c1a4e-2f5b-4d7e-9a51-3c8e2b7d9f10");
        assert!(parse_aip_key("born-digital/PP/v2/notes.txt").is_none());
        assert!(parse_aip_key("born-digital/PP/vX/a-6f1c1a4e-2f5b-4d7e-9a51-3c8e2b7d9f10.tar").is_none());
    }
}
