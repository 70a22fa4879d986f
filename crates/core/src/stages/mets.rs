//! mets ("Generate METS.xml document"): once every batch has finished the per-file stages,
//! the transfer METS (kept as submission documentation) and the AIP METS are written from
//! the state store's files, events and the package's rights.csv.

use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};

use crate::aip::transfer_mets_path;
use crate::error::StageResult;
use crate::fixity::Digests;
use crate::keys::{working_key, working_mets_key, working_transfer_mets_key};
use crate::messages::{queues, StageMessage};
use crate::mets::{write_aip_mets, MetsDoc, MetsKind};
use crate::model::{derived_id, EventOutcome, File, FileUse, FormatId, JobStatus, PremisEvent, Timestamp, Transfer};
use crate::pipeline::{Pipeline, Progress};
use crate::rights::{rows_by_file, RightsRow};

pub fn run(p: &Pipeline, msg: &StageMessage) -> StageResult<Progress> {
    let Some(transfer) = p.active_transfer(msg.transfer_id)? else {
        return Ok(Progress::Ignored);
    };
    let job = p.begin_job(transfer.id, queues::METS)?;
    if job.status != JobStatus::Completed {
        write_both(p, &transfer, job.started_at)?;
        p.state.finish_job(transfer.id, queues::METS, JobStatus::Completed)?;
    }
    p.send(queues::PACKAGE, &[StageMessage::transfer(transfer.id)])?;
    Ok(Progress::Done)
}

/// Writes one METS document to the working area.
fn write_doc(p: &Pipeline, key: &str, doc: &MetsDoc<'_>) -> StageResult<()> {
    let mut out = BufWriter::with_capacity(256 * 1024, p.working.writer(key)?);
    write_aip_mets(&mut out, doc)?;
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.commit()?;
    Ok(())
}

/// Dated by the job, not the clock: a duplicate message writing at the same time writes the
/// same bytes, so a reader never sees a METS that differs from its digest.
fn write_both(p: &Pipeline, transfer: &Transfer, created: Timestamp) -> StageResult<()> {
    let profile = p.profile(transfer)?;
    let mut files = p.state.files(transfer.id)?;
    files.sort_by(|a, b| a.current_path.cmp(&b.current_path));
    let rights = load_rights(p, transfer, &files)?;
    // Events come from the state store file by file: a large transfer's never all at once.
    let events = |f: &File| -> std::io::Result<Vec<PremisEvent>> {
        p.state.file_events(transfer.id, f.uuid).map_err(|e| std::io::Error::other(e.to_string()))
    };
    let transfer_doc =
        MetsDoc { kind: MetsKind::Transfer, transfer, files: &files, events: &events, rights: &rights, created };
    let transfer_key = working_transfer_mets_key(transfer);
    write_doc(p, &transfer_key, &transfer_doc)?;

    // The transfer METS is a file of the AIP: it gets an object, digests and an event.
    let (checksums, size) =
        Digests::for_algorithms(&profile.checksum_algorithms)?.of_reader(&mut p.working.get(&transfer_key)?)?;
    let path = transfer_mets_path(transfer);
    let documentation = File {
        uuid: derived_id(transfer.id, "submission-documentation/transfer-mets"),
        transfer_id: transfer.id,
        batch: u32::MAX,
        entry_index: u64::MAX,
        file_use: FileUse::SubmissionDocumentation,
        original_path: path.clone(),
        current_path: path,
        size,
        checksums,
        format: p.identifier.as_ref().and_then(|i| i.format_by_puid("fmt/101")).or(Some(FormatId {
            puid: "fmt/101".into(),
            name: "Extensible Markup Language".into(),
            version: Some("1.0".into()),
            tentative: false,
        })),
        modified: Some(created),
        characteristics: Default::default(),
    };
    let creation = PremisEvent::new(
        transfer.id,
        Some(documentation.uuid),
        "creation",
        created,
        format!("program=\"Vellum\"; version=\"{}\"; the transfer METS", crate::SOFTWARE_AGENT),
        EventOutcome::None,
        String::new(),
        p.agents(),
    );
    p.state.record_events(std::slice::from_ref(&creation))?;
    let mut all_files = files;
    all_files.push(documentation);
    let aip_doc =
        MetsDoc { kind: MetsKind::Aip, transfer, files: &all_files, events: &events, rights: &rights, created };
    write_doc(p, &working_mets_key(transfer), &aip_doc)
}

fn load_rights(p: &Pipeline, transfer: &Transfer, files: &[File]) -> StageResult<BTreeMap<String, Vec<RightsRow>>> {
    let Some(rights) =
        files.iter().find(|f| f.file_use == FileUse::Metadata && f.current_path == "metadata/rights.csv")
    else {
        return Ok(BTreeMap::new());
    };
    let mut bytes = Vec::new();
    p.working.get(&working_key(transfer.id, &rights.current_path))?.read_to_end(&mut bytes)?;
    Ok(rows_by_file(&bytes))
}
