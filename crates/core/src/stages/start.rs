//! start-transfer: an upload becomes a transfer, exactly once per S3 event, and the package
//! is checked from its zip index (ranged reads) before anything is extracted.

use std::io::Read;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{StageError, StageResult};
use crate::messages::{queues, StageMessage, UploadEvent};
use crate::metadata::parse_metadata_csv;
use crate::model::{Identifiers, JobStatus, Transfer, TransferStatus};
use crate::pipeline::{Pipeline, Progress};
use crate::profile::Profile;
use crate::ranged::RangedReader;

/// Archive endings that start a transfer.
const ARCHIVE_ENDINGS: &[&str] = &[".zip", ".tar.gz", ".tgz"];
/// metadata.csv is a one-row file: anything larger is not one.
const MAX_METADATA_CSV: u64 = 1 << 20;
/// Ranged reads of the zip index fetch this much at a time.
const INDEX_CHUNK: u64 = 64 * 1024;

/// Whether an uploaded key starts anything at all. Log objects and other keys do not.
pub fn starts_a_transfer(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    ARCHIVE_ENDINGS.iter().any(|e| lower.ends_with(e)) && !lower.ends_with('/')
}

/// The package's name: its file name without the archive ending.
pub fn transfer_name(key: &str) -> String {
    let file = key.rsplit('/').next().unwrap_or(key);
    let lower = file.to_ascii_lowercase();
    let cut = ARCHIVE_ENDINGS
        .iter()
        .find(|e| lower.ends_with(*e))
        .map_or(file.len(), |e| file.len() - e.len());
    file[..cut].to_string()
}

/// SHA-256 over what makes an S3 event unique, so a redelivered event is recognised.
pub fn idempotency_key(ev: &UploadEvent) -> String {
    let mut h = Sha256::new();
    for part in [
        ev.bucket.as_str(),
        ev.key.as_str(),
        ev.event_name.as_str(),
        ev.sequencer.as_str(),
        ev.version_id.as_deref().unwrap_or(""),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

pub fn run(p: &Pipeline, ev: &UploadEvent) -> (Option<Uuid>, StageResult<Progress>) {
    if !starts_a_transfer(&ev.key) {
        tracing::info!(key = %ev.key, "ignored: not a transfer package");
        return (None, Ok(Progress::Ignored));
    }
    let now = p.clock.now();
    let profile = p.config.profile_for_key(&ev.key);
    let candidate = Transfer {
        id: p.clock.new_id(),
        name: transfer_name(&ev.key),
        source_bucket: ev.bucket.clone(),
        source_key: ev.key.clone(),
        profile: profile.map(|p| p.name.clone()).unwrap_or_default(),
        identifiers: Identifiers::default(),
        status: TransferStatus::Processing,
        current_microservice: None,
        sip_uuid: p.clock.new_id(),
        aip_uuid: p.clock.new_id(),
        failure_reason: None,
        file_count: 0,
        batch_count: 0,
        aip_key: None,
        aip_version: None,
        created_at: now,
        updated_at: now,
        completed_at: None,
    };
    let transfer = match p.state.create_transfer(&idempotency_key(ev), &candidate) {
        Ok((t, _created)) => t,
        Err(e) => return (None, Err(e.into())),
    };
    let span = tracing::info_span!("stage", transfer_id = %transfer.id, stage = "start");
    let _guard = span.enter();
    if transfer.status.is_terminal() {
        return (Some(transfer.id), Ok(Progress::Ignored));
    }
    (Some(transfer.id), begin(p, &transfer, profile))
}

fn begin(p: &Pipeline, transfer: &Transfer, profile: Option<&Profile>) -> StageResult<Progress> {
    p.begin_job(transfer.id, queues::START)?;
    let profile = profile.ok_or_else(|| {
        let known: Vec<&str> = p
            .config
            .profiles
            .iter()
            .map(|p| p.prefix.as_str())
            .collect();
        StageError::Rejected(format!(
            "the package was uploaded to {:?}, which is not a known location: upload it under \
             one of {} so Vellum knows how to process it",
            transfer.source_key,
            known.join(", ")
        ))
    })?;
    let key = &transfer.source_key;
    if !key.to_ascii_lowercase().ends_with(".zip") {
        return Err(StageError::Rejected(format!(
            "{key:?} is a tar transfer; this version of Vellum accepts only .zip packages \
             (tar and tar.gz intake is not implemented yet): zip the package and upload it again"
        )));
    }
    let identifiers = check_zip(p, key, profile)?;
    p.state.set_identifiers(transfer.id, &identifiers)?;
    p.state
        .finish_job(transfer.id, queues::START, JobStatus::Completed)?;
    p.send(queues::EXTRACT, &[StageMessage::transfer(transfer.id)])?;
    Ok(Progress::Done)
}

/// Reads the zip's central directory and metadata.csv with ranged reads.
fn check_zip(p: &Pipeline, key: &str, profile: &Profile) -> StageResult<Identifiers> {
    let meta = p.uploads.head(key)?.ok_or_else(|| {
        StageError::Rejected(format!(
            "the upload {key:?} is no longer in the bucket: upload it again"
        ))
    })?;
    let reader = RangedReader::new(p.uploads.clone(), key, meta.size, INDEX_CHUNK);
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| {
        StageError::Rejected(format!(
            "{key:?} is not a readable zip file ({e}): it may be truncated or not a zip at all; \
             make the zip again and upload it"
        ))
    })?;
    let mut has_object = false;
    let mut metadata_index = None;
    for i in 0..zip.len() {
        let name = zip
            .name_for_index(i)
            .and_then(Result::ok)
            .unwrap_or_default();
        if name == "metadata/metadata.csv" {
            metadata_index = Some(i);
        } else if name.starts_with("objects/") && !name.ends_with('/') {
            has_object = true;
        }
    }
    let mut problems = Vec::new();
    if !has_object {
        problems.push(
            "there is no file under objects/: put the files to preserve in objects/".to_string(),
        );
    }
    let identifiers = match metadata_index {
        None => {
            problems.push(
                "metadata/metadata.csv is missing: the zip must hold objects/ and \
                 metadata/metadata.csv at its top level"
                    .to_string(),
            );
            None
        }
        Some(i) => {
            let entry = zip.by_index(i).map_err(|e| {
                StageError::Rejected(format!(
                    "metadata/metadata.csv cannot be read from the zip: {e}"
                ))
            })?;
            if entry.size() > MAX_METADATA_CSV {
                problems.push("metadata/metadata.csv is larger than 1 MiB; it should be one header and one row".into());
                None
            } else {
                let mut bytes = Vec::with_capacity(entry.size() as usize);
                entry
                    .take(MAX_METADATA_CSV)
                    .read_to_end(&mut bytes)
                    .map_err(|e| {
                        StageError::Rejected(format!(
                            "metadata/metadata.csv cannot be read from the zip: {e}"
                        ))
                    })?;
                match parse_metadata_csv(&bytes, profile.kind) {
                    Ok(ids) => Some(ids),
                    Err(mut more) => {
                        problems.append(&mut more);
                        None
                    }
                }
            }
        }
    };
    match identifiers {
        Some(ids) if problems.is_empty() => Ok(ids),
        _ => Err(StageError::Rejected(format!(
            "the package was refused: {}",
            problems.join("; ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_endings() {
        assert!(starts_a_transfer("born-digital/A B.zip"));
        assert!(starts_a_transfer("born-digital/x.TGZ"));
        assert!(!starts_a_transfer(
            "born-digital/x.zip.success.2026.abc.log"
        ));
        assert_eq!(transfer_name("born-digital/PP-ABC.tar.gz"), "PP-ABC");
        assert_eq!(transfer_name("x.Zip"), "x");
    }

    #[test]
    fn idempotency_key_depends_on_every_part() {
        let ev = UploadEvent {
            bucket: "b".into(),
            key: "k.zip".into(),
            event_name: "ObjectCreated:Put".into(),
            event_time: "t".into(),
            sequencer: "01".into(),
            version_id: None,
            size: 1,
        };
        let mut other = ev.clone();
        other.sequencer = "02".into();
        assert_ne!(idempotency_key(&ev), idempotency_key(&other));
        let mut later = ev.clone();
        later.event_time = "t2".into();
        assert_eq!(
            idempotency_key(&ev),
            idempotency_key(&later),
            "event time is not identity"
        );
    }
}
