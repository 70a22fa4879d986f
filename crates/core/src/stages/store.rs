//! store ("Store the AIP"): the AIP is copied into its storage space under the next version
//! of its identifier, read back and verified against the state store, and only then is the
//! transfer COMPLETE.

use std::collections::BTreeMap;
use std::io::{self, BufReader};

use flate2::read::MultiGzDecoder;

use crate::aip::{bag_name, is_generated_payload, package_extension, payload_path, PackageCheckpoint};
use crate::bagit::verify_tar;
use crate::error::{StageError, StageResult};
use crate::keys::aip_key;
use crate::messages::{queues, AipStored, StageMessage};
use crate::model::{EventOutcome, JobStatus, PremisEvent, StoredAip, Transfer};
use crate::pipeline::{Pipeline, Progress, StageContext};

pub fn run(p: &Pipeline, msg: &StageMessage, _ctx: &StageContext) -> StageResult<Progress> {
    let Some(transfer) = p.active_transfer(msg.transfer_id)? else {
        return Ok(Progress::Ignored);
    };
    let profile = p.profile(&transfer)?;
    p.begin_job(transfer.id, queues::STORE)?;
    let identifier = transfer.identifiers.external_identifier().ok_or_else(|| {
        StageError::Failed("the transfer has no catalogue identifier or accession number to file the AIP under".into())
    })?;
    if let Some(problem) = crate::aip::identifier_storage_problem(&identifier) {
        return Err(StageError::Failed(format!("{problem}: correct metadata.csv")));
    }
    let space = p.config.storage_space(profile, &identifier);
    let version = p.state.assign_aip_version(transfer.id, &space, &identifier)?;
    let extension = package_extension(profile);
    let key = aip_key(&space, &identifier, version, &transfer, extension);

    // The package's parts, joined in order (in S3, a multipart upload of the parts).
    let (_, packaged) = PackageCheckpoint::load(p.state.as_ref(), transfer.id)?;
    if packaged.parts.is_empty() {
        return Err(StageError::Transient("the package has no parts yet".into()));
    }
    let mut size = 0;
    for part in &packaged.parts {
        let meta = p.working.head(part)?;
        size += meta.ok_or_else(|| StageError::Transient(format!("the package part {part} is missing")))?.size;
    }
    // A redelivered message finds the copy already made.
    if p.aips.head(&key)?.map(|m| m.size) != Some(size) {
        let mut writer = p.aips.writer(&key)?;
        for part in &packaged.parts {
            io::copy(&mut p.working.get(part)?, &mut writer)?;
        }
        writer.commit()?;
    }

    let report = verify_stored(p, &transfer, &key, extension == "tar.gz")?;
    p.state.record_events(&[PremisEvent::new(
        transfer.id,
        None,
        "fixity check",
        p.clock.now(),
        format!("program=\"Vellum\"; version=\"{}\"; stored AIP {key} read back and verified", crate::SOFTWARE_AGENT),
        EventOutcome::Pass,
        format!("{} payload files, {} bytes, every sha256 matches", report.payload_files, report.payload_bytes),
        p.agents(),
    )])?;
    // Published before the transfer is marked complete: a crash in between publishes again
    // (receivers key on the AIP UUID) rather than never.
    p.notifier.publish(&AipStored {
        identifier: identifier.clone(),
        space: space.clone(),
        version,
        aip_uuid: transfer.aip_uuid,
        transfer_id: transfer.id,
        origin: "vellum".into(),
        time_sent: p.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })?;
    p.state.complete_transfer(transfer.id, &StoredAip { key: key.clone(), version, space })?;
    p.state.finish_job(transfer.id, queues::STORE, JobStatus::Completed)?;
    tracing::info!(aip = %key, "AIP stored and verified");
    clean_working_area(p, &transfer);
    Ok(Progress::Done)
}

/// Reads the stored AIP back: the bag must be valid and every original's digest must match
/// what the checksum stage recorded.
fn verify_stored(p: &Pipeline, transfer: &Transfer, key: &str, gzipped: bool) -> StageResult<crate::bagit::BagReport> {
    let raw = BufReader::with_capacity(1 << 20, p.aips.get(key)?);
    let reader: Box<dyn std::io::Read> = if gzipped { Box::new(MultiGzDecoder::new(raw)) } else { Box::new(raw) };
    let fail = |problems: Vec<String>| {
        StageError::Failed(format!(
            "the stored AIP {key} failed verification and was kept as evidence: {}",
            problems.join("; ")
        ))
    };
    let report = verify_tar(reader, &bag_name(transfer)).map_err(fail)?;
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for f in p.state.all_files(transfer.id)? {
        expected.insert(format!("data/{}", payload_path(transfer, &f)), f.sha256().unwrap_or_default().to_string());
    }
    let mut problems = Vec::new();
    for (path, want) in &expected {
        match report.payload.get(path) {
            None => problems.push(format!("{path} is missing from the stored AIP")),
            Some(got) if got != want => {
                problems.push(format!("{path} has sha256 {got} in the stored AIP, but {want} was recorded"))
            }
            _ => {}
        }
    }
    for path in report.payload.keys() {
        if !expected.contains_key(path) && !is_generated_payload(transfer, path) {
            problems.push(format!("{path} is in the stored AIP but is no file of the transfer"));
        }
    }
    if problems.is_empty() {
        Ok(report)
    } else {
        Err(fail(problems))
    }
}

/// The AIP holds everything now; the working copies go. Best effort: a leftover is
/// harmless and the monitor's clean-up finds it.
fn clean_working_area(p: &Pipeline, transfer: &Transfer) {
    match p.working.list(&format!("{}/", transfer.id)) {
        Ok(objects) => {
            for o in objects {
                if let Err(e) = p.working.delete(&o.key) {
                    tracing::warn!(key = %o.key, error = %e, "could not clean the working area");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not list the working area for clean-up"),
    }
}
