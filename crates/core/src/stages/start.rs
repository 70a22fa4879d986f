//! start-transfer: an upload becomes a transfer, exactly once per S3 event, and the package
//! is checked from its zip index (ranged reads) before anything is extracted. A tar has no
//! index: it is listed in one pass over its headers, and a long one in parts, continued in
//! new messages from where the last invocation stopped (a tar position; for a gzipped tar
//! a deflate point), never from the start.

use crate::ports::ObjectStore;
use std::io::Write;
use std::sync::Arc;

use uuid::Uuid;

use crate::config::profile::Profile;
use crate::error::{StageError, StageResult};
use crate::intake::archive::{detect_kind, kind_note, list_tar_from, ArchiveKind, ListError, Listing, TarListingPart};
use crate::intake::feedback::{self, LogOutcome};
use crate::intake::rules::{accepted_log, check_package, failure_log, reason, Accepted, Problem};
use crate::io::tar_stream::TarPosition;
use crate::model::messages::{StageMessage, UploadEvent};
use crate::model::Stage;
use crate::model::{independent_id, Transfer};
use crate::record::keys::{listing_key, listing_part_key};
use crate::stages::{Flow, Microservice, Progress, StageContext};

use crate::model::starts_a_transfer;

/// The start stage (intake) and what it uses beside its `Flow`: the upload it checks.
pub struct Start<'a> {
    pub flow: Flow<'a>,
    pub uploads: &'a Arc<dyn ObjectStore>,
}

impl Microservice for Start<'_> {
    /// Intake's own continuation: the listing of a long tar goes on.
    fn run(&self, msg: &StageMessage, ctx: &StageContext) -> StageResult<Progress> {
        let Some(transfer) = self.flow.active_transfer(msg.transfer_id)? else {
            return Ok(Progress::Ignored);
        };
        let profile = self.flow.config.profile_for_key(&transfer.source_key);
        begin(self, &transfer, profile, ctx)
    }
}

impl Start<'_> {
    /// An upload event: the transfer it starts (or found started), and how intake went.
    pub fn start_transfer(&self, ev: &UploadEvent, ctx: &StageContext) -> (Option<Uuid>, StageResult<Progress>) {
        run(self, ev, ctx)
    }
}

fn run(p: &Start<'_>, ev: &UploadEvent, ctx: &StageContext) -> (Option<Uuid>, StageResult<Progress>) {
    if !starts_a_transfer(&ev.key) {
        tracing::info!(key = %ev.key, "ignored: not a transfer package");
        return (None, Ok(Progress::Ignored));
    }
    let now = p.flow.clock.now();
    let profile = p.flow.config.profile_for_key(&ev.key);
    // The ids follow from the upload event, so an event handled again — after a crash
    // before its transfer was written, or a fault — names the same transfer, SIP and AIP.
    let event_key = ev.idempotency_key();
    let base = Uuid::new_v5(&crate::model::VELLUM_NAMESPACE, event_key.as_bytes());
    let candidate = Transfer {
        source_event_time: ev.event_time.clone(),
        event_key,
        profile: profile.map(|p| p.name.clone()).unwrap_or_default(),
        ..Transfer::new(
            ev.transfer_id.unwrap_or_else(|| independent_id(base, "transfer")),
            independent_id(base, "sip"),
            independent_id(base, "aip"),
            &ev.bucket,
            &ev.key,
            now,
        )
    };
    let transfer = match p.flow.register.create_transfer(&candidate.event_key, &candidate) {
        Ok((t, _created)) => t,
        Err(e) => return (None, Err(e.into())),
    };
    let span = tracing::info_span!("stage", transfer_id = %transfer.id, stage = "start");
    let _guard = span.enter();
    if transfer.status.is_terminal() {
        return (Some(transfer.id), Ok(Progress::Ignored));
    }
    (Some(transfer.id), begin(p, &transfer, profile, ctx))
}

fn begin(p: &Start<'_>, transfer: &Transfer, profile: Option<&Profile>, ctx: &StageContext) -> StageResult<Progress> {
    p.flow.begin_job(transfer.id, Stage::Start)?;
    let Some(profile) = profile else {
        let known: Vec<&str> = p.flow.config.profiles.iter().map(|p| p.prefix.as_str()).collect();
        let problem = Problem {
            check: "location",
            message: format!(
                "the package was uploaded to {:?}, which is not a known location (packages go under {})",
                transfer.source_key,
                known.join(" or ")
            ),
            fix: "upload it again under one of those prefixes, which choose how Vellum processes it".into(),
            example: None,
            template: None,
            shows_layout: false,
        };
        return Err(refuse(p, transfer, &[problem]));
    };
    let key = &transfer.source_key;
    let meta = p.uploads.head(key)?.ok_or_else(|| {
        StageError::Rejected(format!("the upload {key:?} is no longer in the bucket: upload it again"))
    })?;
    let listed = match detect_kind(p.uploads.as_ref(), key, meta.size) {
        Ok(ArchiveKind::Zip) => crate::intake::archive::list(p.uploads.clone(), key, meta.size).map(Some),
        Ok(kind) => list_tar_in_parts(p, transfer, meta.size, kind, ctx),
        Err(e) => Err(e),
    };
    let listing = match listed {
        Ok(Some(l)) => l,
        Ok(None) => {
            p.flow.send(Stage::Start, &[StageMessage::transfer(transfer.id)])?;
            return Ok(Progress::Continued);
        }
        Err(ListError::Io(e)) => return Err(StageError::Transient(format!("reading {key}: {e}"))),
        Err(ListError::Unreadable(why)) => {
            let problem = Problem {
                check: "archive",
                message: format!("{key:?} cannot be opened: {}", why.0),
                fix: "it may be truncated (an interrupted upload) or not an archive at all: make the zip again and upload it".into(),
                example: None,
                template: None,
                shows_layout: false,
            };
            return Err(refuse(p, transfer, &[problem]));
        }
    };
    tracing::info!(entries = listing.entries.len(), bytes_read = listing.bytes_read, "package listed");
    let mut accepted = check_package(listing, profile).map_err(|problems| refuse(p, transfer, &problems))?;
    if profile.kind.is_archivematica_transfer() {
        accepted.identifiers.transfer_name = Some(filing_name(&transfer.name));
    }
    write_listing(p, transfer, &accepted)?;
    p.flow.register.set_identifiers(transfer.id, &accepted.identifiers)?;
    let mut accepted_transfer = transfer.clone();
    accepted_transfer.identifiers = accepted.identifiers.clone();
    feedback::write_log(
        p.uploads.as_ref(),
        &accepted_transfer,
        LogOutcome::Accepted,
        &accepted_log(key, &transfer.id.to_string(), &profile.name, &accepted),
    )?;
    feedback::tag_upload(p.uploads.as_ref(), &accepted_transfer)?;
    p.flow.finish_job(transfer.id, Stage::Start)?;
    p.flow.send(Stage::Extract, &[StageMessage::transfer(transfer.id)])?;
    Ok(Progress::Done)
}

/// The name a standard transfer or a bag is filed under: its upload's name, made one plain
/// folder name (sanitized as file names are, and short enough to be one).
fn filing_name(name: &str) -> String {
    let mut plain = crate::intake::sanitize::sanitize_component(name);
    plain.truncate(200);
    plain
}

/// How far the listing of a tar has come: its parts so far, and where the next begins.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct ListingCheckpoint {
    parts: Vec<String>,
    next: Option<TarPosition>,
}

/// Lists a tar from where the last invocation stopped until it ends (the whole listing) or
/// time is up (None: the part is saved and a continuation is due).
fn list_tar_in_parts(
    p: &Start<'_>,
    transfer: &Transfer,
    size: u64,
    kind: ArchiveKind,
    ctx: &StageContext,
) -> Result<Option<Listing>, ListError> {
    let io = |e: crate::ports::PortError| ListError::Io(std::io::Error::other(e.to_string()));
    let key = &transfer.source_key;
    let text = p.flow.jobs.job_checkpoint(transfer.id, Stage::Start.name()).map_err(io)?;
    let mut cp: ListingCheckpoint = match &text {
        Some(t) => serde_json::from_str(t)
            .map_err(|e| ListError::Io(std::io::Error::other(format!("the listing checkpoint is unreadable: {e}"))))?,
        None => ListingCheckpoint::default(),
    };
    if text.is_none() || cp.next.is_some() {
        let part = list_tar_from(p.uploads.clone(), key, size, kind, cp.next.as_ref(), &|| ctx.should_yield())?;
        let part_key = listing_part_key(transfer.id, cp.parts.len(), p.flow.clock.new_id());
        p.flow.working.put(&part_key, &serde_json::to_vec(&part).expect("a listing part serializes")).map_err(io)?;
        cp.parts.push(part_key);
        cp.next = part.next;
        let json = serde_json::to_string(&cp).expect("a checkpoint serializes");
        // A lost race is another delivery's work; it carries the listing on.
        p.flow.jobs.set_job_checkpoint(transfer.id, Stage::Start.name(), text.as_deref(), &json).map_err(io)?;
        if let Some(next) = &cp.next {
            tracing::info!(next_entry = next.entry, offset = next.offset, "listing the tar continues in a new message");
            return Ok(None);
        }
    }
    let mut parts = Vec::with_capacity(cp.parts.len());
    for part_key in &cp.parts {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut p.flow.working.get(part_key).map_err(io)?, &mut bytes)
            .map_err(ListError::Io)?;
        let part: TarListingPart = serde_json::from_slice(&bytes)
            .map_err(|e| ListError::Io(std::io::Error::other(format!("a listing part is unreadable: {e}"))))?;
        parts.push(part);
    }
    let mut listing = Listing::from_tar_parts(kind, parts)?;
    listing.notes.extend(kind_note(key, kind));
    Ok(Some(listing))
}

/// Writes the failed log beside the upload and turns the problems into the rejection. A
/// log that cannot be written makes the whole message retry, so no refusal goes unsaid.
fn refuse(p: &Start<'_>, transfer: &Transfer, problems: &[Problem]) -> StageError {
    let text = failure_log(&transfer.source_key, &transfer.id.to_string(), problems);
    match feedback::write_log(p.uploads.as_ref(), transfer, LogOutcome::Failed, &text) {
        Ok(()) => StageError::Rejected(reason(problems)),
        Err(e) => StageError::Transient(format!("could not write the failed log: {e}")),
    }
}

fn write_listing(p: &Start<'_>, transfer: &Transfer, accepted: &Accepted) -> StageResult<()> {
    let mut out = std::io::BufWriter::new(p.flow.working.writer(&listing_key(transfer.id))?);
    for line in &accepted.lines {
        serde_json::to_writer(&mut out, line).map_err(|e| StageError::Transient(e.to_string()))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::transfer_name;

    #[test]
    fn names_and_endings() {
        assert!(starts_a_transfer("born-digital/A B.zip"));
        assert!(starts_a_transfer("born-digital/x.TGZ"));
        assert!(!starts_a_transfer("born-digital/x.zip.success.2026.abc.log"));
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
            transfer_id: None,
        };
        let mut other = ev.clone();
        other.sequencer = "02".into();
        assert_ne!(ev.idempotency_key(), other.idempotency_key());
        let mut later = ev.clone();
        later.event_time = "t2".into();
        assert_eq!(ev.idempotency_key(), later.idempotency_key(), "event time is not identity");
    }
}
