//! store ("Store the AIP"): the AIP is copied into its storage space under the next version
//! of its identifier, read back and verified against the state store, and only then is the
//! transfer COMPLETE.
//!
//! The copy is the object store's own (S3 UploadPartCopy of the package's parts; a file
//! copy on disk): the bytes do not pass through the function. A copy too long for one
//! invocation (a 5 TB AIP is about 1,000 pieces of 5 GiB) stops at the deadline and goes on
//! in a new message from the progress kept in the checkpoint. Verification reads the stored
//! AIP back a part at a time with ranged reads, and a checkpoint after each part lets a
//! 100 GB AIP be verified across as many invocations as it takes.
//!
//! Where a second storage location is configured (the replica), the AIP is copied there too
//! and read back and verified the same way — every file's sha256 against the record — before
//! the transfer is COMPLETE: a transfer is never complete with one copy verified and the
//! other not.

use crate::ports::ComposeProgress;
use crate::ports::EventLog;
use crate::ports::FileCatalogue;
use crate::ports::Notifier;
use crate::ports::ObjectStore;
use std::io::BufReader;
use std::sync::Arc;

use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorClass, StageError, StageResult};
use crate::io::ranged::RangedReader;
use crate::io::read_ahead::with_read_ahead;
use crate::model::messages::{AipStored, StageMessage};
use crate::model::Stage;
use crate::model::{by_vellum, EventOutcome, EventType, PremisEvent, StoredAip, Transfer};
use crate::ports::FilePages;
use crate::record::aip::{bag_name, is_generated_payload, package_extension, payload_path, PackageCheckpoint};
use crate::record::bag_parts::{BagSummary, BagVerifier, DigestSum};
use crate::record::keys::{aip_key, dip_name, dip_prefix, working_mets_key, working_prefix};
use crate::stages::{Flow, Microservice, Progress, StageContext};

mod parts;

/// The store stage and what it uses beside its `Flow`: the file catalogue, the event log, the
/// upload (for its log), the AIP store and the notifier.
pub struct Store<'a> {
    pub flow: Flow<'a>,
    pub files: &'a dyn FileCatalogue,
    pub events: &'a dyn EventLog,
    pub uploads: &'a Arc<dyn ObjectStore>,
    pub aips: &'a Arc<dyn ObjectStore>,
    /// The second storage location, where one is configured.
    pub replica: &'a Option<Arc<dyn ObjectStore>>,
    /// Where DIPs are stored, where the deployment has a DIP location.
    pub dips: &'a Option<Arc<dyn ObjectStore>>,
    pub notifier: &'a Arc<dyn Notifier>,
}

impl Microservice for Store<'_> {
    fn run(&self, msg: &StageMessage, ctx: &StageContext) -> StageResult<Progress> {
        let Some((transfer, job)) = self.flow.take_up(msg.transfer_id, Stage::Store)? else {
            return Ok(Progress::Ignored);
        };
        if let Some(part) = msg.batch {
            if job.status != crate::model::JobStatus::Processing {
                return Ok(Progress::Ignored);
            }
            return parts::verify_part(self, &transfer, part as usize);
        }
        let (text, mut cp) = load_checkpoint(self, &transfer)?;
        let mut seen = text;
        let mut save = |cp: &StoreCheckpoint| -> StageResult<()> {
            let json = serde_json::to_string(cp).expect("a checkpoint serializes");
            self.flow.jobs.set_job_checkpoint(transfer.id, Stage::Store.name(), seen.as_deref(), &json)?;
            seen = Some(json);
            Ok(())
        };
        let copied = match cp.stored.clone() {
            Some(c) => c,
            None => {
                let mut progress = cp.copying.clone().unwrap_or_default();
                match copy(self, &transfer, &mut progress, ctx)? {
                    Some(c) => {
                        cp.copying = None;
                        cp.stored = Some(c.clone());
                        save(&cp)?;
                        c
                    }
                    None => {
                        cp.copying = Some(progress);
                        save(&cp)?;
                        return self.copy_later(&transfer, "the AIP's copy into its storage space");
                    }
                }
            }
        };
        if cp.recorded.is_none() {
            let mut recorded = DigestSum::default();
            for f in FilePages::new(self.files, transfer.id) {
                let f = f?;
                recorded.add(&format!("data/{}", payload_path(&transfer, &f)), f.sha256().unwrap_or_default());
            }
            cp.recorded = Some(recorded);
            save(&cp)?;
        }
        if copied.sliced && cp.primary.next_part < copied.part_sizes.len() {
            // A package written in slices is read back a part an invocation, both copies at
            // once; the part that finds every part read sends the transfer on to here.
            if let (Some(replica), None) = (self.replica, &cp.replica) {
                let done = self.copy_replica(replica, &copied, &mut cp, ctx)?;
                save(&cp)?;
                if !done {
                    return self.copy_later(&transfer, "the AIP's copy into the second location");
                }
            }
            match parts::gather(self, &transfer, &copied)? {
                parts::Gathered::All(both) => {
                    let (primary, replica) = *both;
                    cp.primary = primary;
                    if cp.replica.is_some() {
                        cp.replica = Some(replica);
                    }
                    save(&cp)?;
                }
                // The first time every part; after that (a message delivered again, a retry)
                // the parts whose result is missing, again: a part read twice saves the same.
                parts::Gathered::Missing(missing) => {
                    parts::send_parts(self, &transfer, &missing)?;
                    return Ok(Progress::Continued);
                }
            }
        }
        let profile = self.flow.profile(&transfer)?;
        let reading = Reading { gzipped: package_extension(&profile) == "tar.gz", bag: bag_name(&transfer) };
        let mut parts_read = 0;
        while cp.primary.next_part < copied.part_sizes.len() {
            // At least one part an invocation, so that every one makes progress.
            if parts_read > 0 && ctx.should_yield() {
                return self.continue_later(&transfer, cp.primary.next_part, copied.part_sizes.len());
            }
            if let Err(why) = read_part(&reading, &transfer, self.aips, &copied, &mut cp.primary) {
                return Err(failed_verification(self, &transfer, &copied, vec![why]));
            }
            parts_read += 1;
            save(&cp)?;
        }
        let summary = verified(self, &transfer, &copied, &cp)?;
        if let Some(replica) = self.replica {
            if cp.replica.is_none() {
                let done = self.copy_replica(replica, &copied, &mut cp, ctx)?;
                save(&cp)?;
                if !done {
                    return self.copy_later(&transfer, "the AIP's copy into the second location");
                }
            }
            let parts = copied.part_sizes.len();
            while let Some(read) = cp.replica.as_mut().filter(|r| r.next_part < parts) {
                if parts_read > 0 && ctx.should_yield() {
                    return self.continue_later(&transfer, read.next_part, copied.part_sizes.len());
                }
                if let Err(why) = read_part(&reading, &transfer, replica, &copied, read) {
                    return Err(failed_replica(replica.as_ref(), &copied, vec![why]));
                }
                parts_read += 1;
                save(&cp)?;
            }
            let read = cp.replica.clone().unwrap_or_default();
            let recorded = cp.recorded.clone().unwrap_or_default();
            let mut problems = read.verifier.finish().err().unwrap_or_default();
            if read.found != recorded {
                problems.push(format!(
                    "its {} files' sha256 digests do not match the {} recorded",
                    read.found.count, recorded.count
                ));
            }
            if !problems.is_empty() {
                return Err(failed_replica(replica.as_ref(), &copied, problems));
            }
        }
        finish(self, &transfer, &copied, &summary)
    }
}

/// How the package's parts are read back.
struct Reading {
    gzipped: bool,
    bag: String,
}

/// The store job's checkpoint, as stored (for the compare-and-swap) and as read.
fn load_checkpoint(p: &Store<'_>, transfer: &Transfer) -> StageResult<(Option<String>, StoreCheckpoint)> {
    let text = p.flow.jobs.job_checkpoint(transfer.id, Stage::Store.name())?;
    let cp = match &text {
        Some(t) => serde_json::from_str(t).map_err(|e| {
            StageError::Failed(format!("the storing checkpoint cannot be read back ({e}); store the AIP again"))
        })?,
        None => StoreCheckpoint::default(),
    };
    Ok((text, cp))
}

impl Store<'_> {
    /// Copies the AIP into the second location, going on from the checkpoint's progress;
    /// false when the deadline cut the copy. The caller saves the checkpoint.
    fn copy_replica(
        &self,
        replica: &Arc<dyn ObjectStore>,
        copied: &Copied,
        cp: &mut StoreCheckpoint,
        ctx: &StageContext,
    ) -> StageResult<bool> {
        let mut progress = cp.replica_copying.clone().unwrap_or_default();
        if replicate(replica, self.flow.working.as_ref(), copied, &mut progress, ctx)? {
            cp.replica_copying = None;
            cp.replica = Some(ReadBack::default());
            Ok(true)
        } else {
            cp.replica_copying = Some(progress);
            Ok(false)
        }
    }

    /// The rest of a copy in a new message, past the invocation's deadline: the copy's
    /// progress is in the checkpoint.
    fn copy_later(&self, transfer: &Transfer, what: &str) -> StageResult<Progress> {
        tracing::info!("{what} continues in a new message");
        self.flow.send(Stage::Store, &[StageMessage::transfer(transfer.id)])?;
        Ok(Progress::Continued)
    }

    /// The rest of the read-back in a new message, past the invocation's deadline.
    fn continue_later(&self, transfer: &Transfer, part: usize, parts: usize) -> StageResult<Progress> {
        tracing::info!(part, parts, "verification continues in a new message");
        self.flow.send(Stage::Store, &[StageMessage::transfer(transfer.id)])?;
        Ok(Progress::Continued)
    }
}

/// Reads one part of the stored AIP back from `store`, digesting every file in it.
fn read_part(
    reading: &Reading,
    transfer: &Transfer,
    store: &Arc<dyn ObjectStore>,
    copied: &Copied,
    read: &mut ReadBack,
) -> Result<(), String> {
    let offset: u64 = copied.part_sizes[..read.next_part].iter().sum();
    let len = copied.part_sizes[read.next_part];
    let mut ranged = RangedReader::new(store.clone(), &copied.key, offset + len, 4 << 20);
    std::io::Seek::seek(&mut ranged, std::io::SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    let raw = BufReader::with_capacity(1 << 20, ranged);
    let reader: Box<dyn std::io::Read + Send> =
        if reading.gzipped { Box::new(MultiGzDecoder::new(raw)) } else { Box::new(raw) };
    let (found, verifier) = (&mut read.found, &mut read.verifier);
    // Inflating on one core, digesting on the other.
    with_read_ahead(reader, |reader| {
        verifier.read_part(reader, &reading.bag, &mut |path, digest| {
            if !is_generated_payload(transfer, path) {
                found.add(path, digest);
            }
        })
    })?;
    read.next_part += 1;
    Ok(())
}

/// Copies the package's parts into the second location, by its own copy; a redelivered
/// message finds the copy made.
fn replicate(
    replica: &Arc<dyn ObjectStore>,
    working: &dyn ObjectStore,
    copied: &Copied,
    progress: &mut ComposeProgress,
    ctx: &StageContext,
) -> StageResult<bool> {
    let size: u64 = copied.part_sizes.iter().sum();
    if replica.head(&copied.key)?.map(|m| m.size) != Some(size) {
        let out_of_time = || ctx.should_yield();
        let Some(stored) = replica.compose_within(&copied.key, working, &copied.parts, progress, &out_of_time)? else {
            return Ok(false);
        };
        if stored.size != size {
            return Err(StageError::Transient(format!(
                "the replica of {} in {} has {} bytes, not {size}",
                copied.key,
                replica.bucket(),
                stored.size
            )));
        }
    }
    Ok(true)
}

/// The replica failed its read-back: kept as evidence, the transfer not complete.
fn failed_replica(replica: &dyn ObjectStore, copied: &Copied, problems: Vec<String>) -> StageError {
    StageError::Failed(format!(
        "the replica of the AIP {} in {} failed verification and was kept as evidence: {}",
        copied.key,
        replica.bucket(),
        problems.join("; ")
    ))
}

/// A failed verification names the files at fault only where the stored AIP is small
/// enough to be read again in one go; past this it says what differs, not where.
const NAMED_DIAGNOSIS_LIMIT: u64 = 2 << 30;

/// How far storing has come.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct StoreCheckpoint {
    /// Where the AIP was copied, once it is.
    stored: Option<Copied>,
    /// (path, sha256) of every file the state store recorded, as the bag should hold them.
    recorded: Option<DigestSum>,
    /// The read-back of the AIP in its storage space.
    #[serde(flatten)]
    primary: ReadBack,
    /// The read-back of the replica, once it is copied (a second location configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replica: Option<ReadBack>,
    /// The copy into the AIP's place, while it is under way across invocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    copying: Option<ComposeProgress>,
    /// The copy into the second location, while it is under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replica_copying: Option<ComposeProgress>,
}

/// How far one copy of the AIP has been read back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ReadBack {
    /// The next package part to read back.
    next_part: usize,
    verifier: BagVerifier,
    /// (path, sha256) of the payload entries read back that are files of the transfer.
    found: DigestSum,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Copied {
    key: String,
    space: String,
    identifier: String,
    version: u32,
    /// Each part's size, in order: where each begins in the stored AIP.
    part_sizes: Vec<u64>,
    /// The package's parts in the working area (for the replica's copy).
    #[serde(default)]
    parts: Vec<String>,
    /// Whether the package was written in slices: then each part is read back by an
    /// invocation of its own.
    #[serde(default)]
    sliced: bool,
}

/// Copies the package's parts into the AIP's place, by the store's own copy, going on from
/// `progress`; None when the deadline cut it (the progress says how far it came). A
/// redelivered message finds the copy already made.
fn copy(
    p: &Store<'_>,
    transfer: &Transfer,
    progress: &mut ComposeProgress,
    ctx: &StageContext,
) -> StageResult<Option<Copied>> {
    let profile = p.flow.profile(transfer)?;
    let identifier = transfer.identifiers.external_identifier().ok_or_else(|| {
        StageError::Failed("the transfer has no catalogue identifier or accession number to file the AIP under".into())
    })?;
    if let Some(problem) = crate::record::aip::identifier_storage_problem(&identifier) {
        return Err(StageError::Failed(format!("{problem}: correct metadata.csv")));
    }
    let space = p.flow.config.storage_space(&profile, &identifier);
    let version = p.flow.register.assign_aip_version(transfer.id, &space, &identifier)?;
    let key = aip_key(&space, &identifier, version, transfer, package_extension(&profile));
    let (_, packaged) = PackageCheckpoint::load(p.flow.jobs, transfer.id)?;
    if packaged.parts.is_empty() {
        return Err(StageError::Transient("the package has no parts yet".into()));
    }
    let mut part_sizes = Vec::with_capacity(packaged.parts.len());
    for part in &packaged.parts {
        let meta = p.flow.working.head(part)?;
        part_sizes.push(meta.ok_or_else(|| StageError::Transient(format!("the package part {part} is missing")))?.size);
    }
    let size: u64 = part_sizes.iter().sum();
    if p.aips.head(&key)?.map(|m| m.size) != Some(size) {
        let out_of_time = || ctx.should_yield();
        let working = p.flow.working.as_ref();
        let Some(stored) = p.aips.compose_within(&key, working, &packaged.parts, progress, &out_of_time)? else {
            return Ok(None);
        };
        if stored.size != size {
            return Err(StageError::Transient(format!("the copy of {key} has {} bytes, not {size}", stored.size)));
        }
    }
    let sliced = packaged.slices.is_some();
    Ok(Some(Copied { key, space, identifier, version, part_sizes, parts: packaged.parts.clone(), sliced }))
}

/// The bag is valid and holds exactly the files the state store recorded, with their
/// digests.
fn verified(p: &Store<'_>, transfer: &Transfer, copied: &Copied, cp: &StoreCheckpoint) -> StageResult<BagSummary> {
    let (summary, mut problems) = match cp.primary.verifier.clone().finish() {
        Ok(summary) => (Some(summary), Vec::new()),
        Err(problems) => (None, problems),
    };
    let recorded = cp.recorded.clone().unwrap_or_default();
    if cp.primary.found.count != recorded.count {
        problems.push(format!(
            "the stored AIP holds {} of the transfer's files, but {} were recorded",
            cp.primary.found.count, recorded.count
        ));
    } else if cp.primary.found != recorded {
        problems.push("the stored AIP's files do not match the sha256 digests recorded for them".into());
    }
    match summary {
        Some(summary) if problems.is_empty() => Ok(summary),
        _ => Err(failed_verification(p, transfer, copied, problems)),
    }
}

/// Ends the transfer over a stored AIP that failed verification (kept as evidence), naming
/// the files at fault where the AIP is small enough to read again.
fn failed_verification(p: &Store<'_>, transfer: &Transfer, copied: &Copied, problems: Vec<String>) -> StageError {
    let key = &copied.key;
    let size: u64 = copied.part_sizes.iter().sum();
    let named = if size <= NAMED_DIAGNOSIS_LIMIT {
        match verify_stored(p, transfer, key) {
            Err(e) if e.class() == ErrorClass::Fail => Some(e.to_string()),
            _ => None,
        }
    } else {
        None
    };
    named.map(StageError::Failed).unwrap_or_else(|| {
        StageError::Failed(format!(
            "the stored AIP {key} failed verification and was kept as evidence: {}",
            problems.join("; ")
        ))
    })
}

fn finish(p: &Store<'_>, transfer: &Transfer, copied: &Copied, report: &BagSummary) -> StageResult<Progress> {
    let Copied { key, space, identifier, version, .. } = copied.clone();
    let identifier_for_log = identifier.clone();
    let verified_here = |location: &str| {
        PremisEvent::new(
            transfer.id,
            None,
            EventType::FixityCheck,
            p.flow.clock.now(),
            format!("{}; stored AIP {key} read back and verified in {location}", by_vellum()),
            EventOutcome::Pass,
            format!("{} payload files, {} bytes, every sha256 matches", report.payload_files, report.payload_bytes),
            p.flow.agents(),
        )
    };
    let replica = p.replica.as_ref().map(|r| r.bucket().to_string());
    let mut verified = vec![verified_here(p.aips.bucket())];
    verified.extend(replica.as_deref().map(|location| {
        // An event of its own: one subject's events are otherwise one a type.
        let mut event = verified_here(location);
        event.uuid = crate::model::derived_id(transfer.id, "event/fixity check/replica");
        event
    }));
    p.events.record_events(&verified)?;
    let dip = store_dip(p, transfer)?;
    // Published before the transfer is marked complete: a crash in between publishes again
    // (receivers key on the AIP UUID) rather than never.
    p.notifier.publish(&AipStored {
        identifier,
        space: space.clone(),
        version,
        aip_uuid: transfer.aip_uuid,
        transfer_id: transfer.id,
        origin: "vellum".into(),
        time_sent: p.flow.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        replica: replica.clone(),
        dip: dip.clone(),
    })?;
    // The upload's one final answer, written before the transfer is COMPLETE: a crash in
    // between writes it again (the same key), never leaves a COMPLETE transfer without it.
    let mut answer =
        crate::intake::feedback::stored_log(transfer, &key, &space, &identifier_for_log, version, report.payload_files);
    if let Some(location) = &replica {
        answer.push_str(&format!("A second copy is stored in {location}, read back and verified the same way.\n"));
    }
    // Named one by one only when the METS stage counted any: the names cost a read of every event.
    let not_normalized = match transfer.files_not_normalized {
        Some(n) if n > 0 => crate::record::normalization::not_normalized_paths(p.events, p.files, transfer.id)?,
        _ => Vec::new(),
    };
    if !not_normalized.is_empty() {
        answer.push_str(&format!(
            "No copy could be made of {} file(s), kept as they are (the normalization events in the METS say why): {}\n",
            not_normalized.len(),
            not_normalized.join(", ")
        ));
    }
    if let (Some(dip), Some(dips)) = (&dip, p.dips) {
        answer.push_str(&format!(
            "Its DIP (access copies, thumbnails and the METS) is stored in {} as {dip}.\n",
            dips.bucket()
        ));
    }
    crate::intake::feedback::write_log(
        p.uploads.as_ref(),
        transfer,
        crate::record::keys::LogOutcome::Success,
        &answer,
    )?;
    // A transfer retried after it failed ends with one answer too: the earlier failure's
    // log goes (its reason stays in the record's PREMIS events and the transfer's history).
    let failed_log = crate::record::keys::log_key(transfer, crate::record::keys::LogOutcome::Failed);
    if p.uploads.head(&failed_log)?.is_some() {
        p.uploads.delete(&failed_log)?;
    }
    p.flow.register.complete_transfer(transfer.id, &StoredAip { key: key.clone(), version, space, dip })?;
    p.flow.finish_job(transfer.id, Stage::Store)?;
    tracing::info!(aip = %key, "AIP stored and verified");
    clean_working_area(p, transfer);
    Ok(Progress::Done)
}

/// The DIP, as Archivematica lays one out, `<name>-<sip-uuid>/`: the access copies and
/// thumbnails normalization left in the working area, and the AIP's METS as
/// `METS.<sip-uuid>.xml`. Copied again whole when a message is delivered again (the same
/// keys). None when the profile stores no DIP.
fn store_dip(p: &Store<'_>, transfer: &Transfer) -> StageResult<Option<String>> {
    let profile = p.flow.profile(transfer)?;
    if !profile.store_dip {
        return Ok(None);
    }
    let dips = p.dips.as_ref().ok_or_else(|| {
        StageError::Failed(format!(
            "the processing profile {} stores a DIP, but this deployment has no DIP location (VELLUM_DIPS_BUCKET)",
            profile.name
        ))
    })?;
    let folder = format!("{}/", dip_name(transfer));
    let prefix = dip_prefix(transfer.id);
    for object in p.flow.working.list(&prefix)? {
        let path = object.key.strip_prefix(&prefix).unwrap_or(&object.key);
        dips.compose(&format!("{folder}{path}"), p.flow.working.as_ref(), std::slice::from_ref(&object.key))?;
    }
    let mets = working_mets_key(transfer);
    dips.compose(&format!("{folder}METS.{}.xml", transfer.sip_uuid), p.flow.working.as_ref(), &[mets])?;
    tracing::info!(dip = %folder, "DIP stored");
    Ok(Some(folder))
}

/// Reads the stored AIP back in one go, to name what is wrong with it: the bag must be
/// valid and every original's digest must match what the checksum stage recorded.
fn verify_stored(p: &Store<'_>, transfer: &Transfer, key: &str) -> StageResult<crate::record::bagit::BagReport> {
    crate::record::aip_check::read_back(p.files, p.aips.as_ref(), transfer, key)?.map_err(|problems| {
        StageError::Failed(format!(
            "the stored AIP {key} failed verification and was kept as evidence: {}",
            problems.join("; ")
        ))
    })
}

/// The AIP holds everything now; the working copies go. Best effort: a leftover is
/// harmless and the monitor's clean-up finds it.
fn clean_working_area(p: &Store<'_>, transfer: &Transfer) {
    if let Err(e) = p.flow.working.delete_prefix(&working_prefix(transfer.id)) {
        tracing::warn!(error = %e, "could not clean the working area");
    }
}
