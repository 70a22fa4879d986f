//! mets ("Generate METS.xml document"): once every batch has finished the per-file stages,
//! the transfer METS (kept as submission documentation) and the AIP METS are written from
//! the state store's files, events and the package's rights.csv.
//!
//! The files come a page at a time in path order, and their events a chunk of files at a
//! time (read 32 at once where the ledger is remote), so memory does not grow with
//! the transfer. The walk that writes the AIP METS also
//! writes the AIP's per-file logs (format identification, name changes, virus scan): each
//! file's events are read once. A METS too long for one invocation is written
//! in pieces: the head and as many amdSecs as time allows, then more amdSecs, and last the
//! fileSec, the structMap and the end. Each piece is an object named for its writer,
//! recorded by a compare-and-swap on the job's checkpoint, and the object store joins the
//! pieces into the document (a server-side copy), byte for byte what one go would write.

use crate::analysis::pronom::FormatIdentifier;
use crate::ports::EventLog;
use crate::ports::FileCatalogue;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufWriter, Read, Write};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::analysis::fixity::Digests;
use crate::config::profile::PackageKind;
use crate::error::{StageError, StageResult};
use crate::model::messages::StageMessage;
use crate::model::Stage;
use crate::model::{
    by_vellum, derived_id, EventOutcome, EventType, File, FileUse, FormatId, JobStatus, PremisEvent, Timestamp,
    Transfer,
};
use crate::ports::FilePages;
use crate::record::aip::{left_out_log, transfer_mets_path, FileLogLines, FILE_LOGS, LEFT_OUT_LOG};
use crate::record::keys::{
    listing_key, log_piece_key, mets_piece_key, named_key, working_log_key, working_mets_key, working_transfer_mets_key,
};
use crate::record::mets::{
    write_amd_sec_of, write_head, write_tail, EventsOf, FileSource, MetsDoc, MetsKind, TransferMetadata,
};
use crate::record::rights::{rows_by_file, RightsRow};
use crate::stages::{Flow, Microservice, Progress, StageContext};

/// The mets stage and what it uses beside its `Flow`: the file catalogue, the event log and
/// the format identifier (for the METS's own format).
pub struct Mets<'a> {
    pub flow: Flow<'a>,
    pub files: &'a dyn FileCatalogue,
    pub events: &'a dyn EventLog,
    pub format_identifier: &'a Option<Arc<FormatIdentifier>>,
}

impl Microservice for Mets<'_> {
    fn run(&self, msg: &StageMessage, ctx: &StageContext) -> StageResult<Progress> {
        let Some((transfer, job)) = self.flow.take_up(msg.transfer_id, Stage::Mets)? else {
            return Ok(Progress::Ignored);
        };
        if job.status != JobStatus::Completed {
            let kind = self.flow.profile(&transfer)?.kind;
            let (transfer_dc, file_dc) = load_descriptions(self, &transfer, kind)?;
            let left_out = crate::record::aip::left_out_events(self.events.transfer_events(transfer.id)?);
            let writer = Writer {
                p: self,
                transfer: &transfer,
                created: job.started_at,
                rights: load_rights(self, &transfer, kind)?,
                empty_folders: crate::record::aip::empty_folders(&left_out),
                left_out,
                file_dc,
                transfer_dc,
                transfer_md: transfer_metadata(self, &transfer)?,
                package_kind: kind,
                struct_map: read_named(self, &transfer, "metadata/mets_structmap.xml")?
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
                imported: imported_premis(self, &transfer)?,
            };
            loop {
                let text = self.flow.jobs.job_checkpoint(transfer.id, Stage::Mets.name())?;
                let checkpoint = match &text {
                    Some(t) => serde_json::from_str::<Checkpoint>(t).map_err(|e| {
                        StageError::Failed(format!(
                            "the METS checkpoint cannot be read back ({e}); write the METS again"
                        ))
                    })?,
                    None => Checkpoint::default(),
                };
                if checkpoint.finished() {
                    break;
                }
                let next = writer.step(checkpoint, ctx)?;
                let json = serde_json::to_string(&next).expect("a checkpoint serializes");
                self.flow.jobs.set_job_checkpoint(transfer.id, Stage::Mets.name(), text.as_deref(), &json)?;
                if !next.finished() && ctx.should_yield() {
                    tracing::info!(
                        document = next.document,
                        amd_secs = next.written,
                        "the METS continues in a new message"
                    );
                    self.flow.send(Stage::Mets, &[StageMessage::transfer(transfer.id)])?;
                    return Ok(Progress::Continued);
                }
            }
            self.flow.finish_job(transfer.id, Stage::Mets)?;
        }
        self.flow.send(Stage::Package, &[StageMessage::transfer(transfer.id)])?;
        Ok(Progress::Done)
    }
}

/// Files read from the catalogue at a time, and how many of their events are read at once
/// (a wave) just before those files are written.
const EVENTS_CHUNK: usize = 256;
const EVENTS_AHEAD: usize = 32;
/// Threads that render a chunk's amdSecs, at most: the stage runs alone at this point of a
/// transfer, with every core to itself.
const MAX_RENDERERS: usize = 4;
/// About what an amdSec of a file with a handful of events takes.
const AMD_SEC_BYTES: usize = 16 * 1024;

/// The events of each of `files`, read EVENTS_AHEAD at a time.
fn events_ahead(
    events: &dyn EventLog,
    transfer_id: uuid::Uuid,
    files: &[File],
) -> StageResult<HashMap<uuid::Uuid, Vec<PremisEvent>>> {
    let mut out = HashMap::with_capacity(files.len());
    for wave in files.chunks(EVENTS_AHEAD) {
        let read: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> =
                wave.iter().map(|f| scope.spawn(move || (f.uuid, events.file_events(transfer_id, f.uuid)))).collect();
            handles.into_iter().map(|h| h.join()).collect()
        });
        for answer in read {
            let (uuid, events) =
                answer.map_err(|_| StageError::Transient("a read of a file's events panicked".into()))?;
            out.insert(uuid, events?);
        }
    }
    Ok(out)
}

/// Log lines are written out in pieces of about this many bytes.
const LOG_PIECE_BYTES: usize = 1 << 20;

/// How far the METS stage has come.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Checkpoint {
    /// 0: the transfer METS; 1: the AIP METS; 2: both written.
    document: u8,
    /// The pieces of the document in the making, in order.
    pieces: Vec<String>,
    /// amdSecs written so far in this document.
    written: usize,
    /// The path of the last file written (the file cursor), if any.
    after: Option<String>,
    /// The transfer METS as a file of the AIP, once it is written and read back.
    documentation: Option<Documentation>,
    /// The per-file logs' pieces, written beside the AIP METS's.
    #[serde(default)]
    log_pieces: Vec<String>,
}

impl Checkpoint {
    fn finished(&self) -> bool {
        self.document >= 2
    }
}

/// What the AIP METS says of the transfer METS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Documentation {
    size: u64,
    checksums: BTreeMap<String, String>,
}

struct Writer<'a> {
    p: &'a Mets<'a>,
    transfer: &'a Transfer,
    /// Dated by the job, not the clock: every piece, and a duplicate message writing at
    /// the same time, writes the same bytes.
    created: Timestamp,
    rights: BTreeMap<String, Vec<RightsRow>>,
    empty_folders: Vec<String>,
    /// The upload's entries left out of the AIP, each a PREMIS event on the transfer.
    left_out: Vec<PremisEvent>,
    file_dc: BTreeMap<String, BTreeMap<String, String>>,
    transfer_dc: BTreeMap<String, String>,
    transfer_md: Vec<TransferMetadata>,
    package_kind: PackageKind,
    struct_map: Option<String>,
    imported: Option<crate::record::premis_import::ImportedPremis>,
}

/// The files of a METS: the state store's, in path order, and for the AIP the transfer
/// METS last.
struct StateFiles<'a> {
    files: &'a dyn FileCatalogue,
    transfer_id: uuid::Uuid,
    last: Option<File>,
}

impl FileSource for StateFiles<'_> {
    fn each(&self, f: &mut dyn FnMut(&File) -> io::Result<()>) -> io::Result<()> {
        for file in FilePages::new(self.files, self.transfer_id) {
            f(&file.map_err(|e| io::Error::other(e.to_string()))?)?;
        }
        self.last.as_ref().map_or(Ok(()), f)
    }
}

impl Writer<'_> {
    /// Writes the next piece of the document in the making, or, when its last piece is
    /// written, joins the pieces; returns the checkpoint after it.
    fn step(&self, mut cp: Checkpoint, ctx: &StageContext) -> StageResult<Checkpoint> {
        let p = self.p;
        let (kind, name, key) = match cp.document {
            0 => (MetsKind::Transfer, "transfer", working_transfer_mets_key(self.transfer)),
            _ => (MetsKind::Aip, "aip", working_mets_key(self.transfer)),
        };
        let last = match kind {
            MetsKind::Transfer => None,
            MetsKind::Aip => Some(self.documentation_file(cp.documentation.as_ref())?),
        };
        let files = StateFiles { files: p.files, transfer_id: self.transfer.id, last };
        // Where the working area is remote so is the ledger, and each file's query waits on
        // the network: they go EVENTS_AHEAD at a time. On this machine's SQLite they do not.
        let remote = p.flow.working.local_path(&listing_key(self.transfer.id)).is_none();
        let mut log_lines = FileLogLines::default();
        let no_events = |_: &File| -> io::Result<Vec<PremisEvent>> {
            Err(io::Error::other("the head and the tail of a METS read no file's events"))
        };
        let doc = self.doc(kind, &files, &no_events);

        let piece = mets_piece_key(self.transfer.id, name, cp.pieces.len() as u32, p.flow.clock.new_id());
        let mut out = BufWriter::with_capacity(256 * 1024, p.flow.working.writer(&piece)?);
        if cp.pieces.is_empty() {
            write_head(&mut out, &doc)?;
        }
        let mut complete = true;
        let mut n = cp.written;
        let mut after = cp.after.clone();
        let mut pages = FilePages::new(p.files, self.transfer.id).after(cp.after.clone());
        loop {
            let chunk = pages.by_ref().take(EVENTS_CHUNK).collect::<Result<Vec<File>, _>>()?;
            if chunk.is_empty() {
                break;
            }
            // At least one amdSec a piece, so that every invocation makes progress.
            if n > cp.written && ctx.should_yield() {
                complete = false;
                break;
            }
            // Rendered a chunk at a time, written a file at a time: out of time, the piece
            // ends after the file it has written, as it would one file at a time.
            let rendered = self.render_amd_secs(kind, &files, &chunk, n + 1, remote)?;
            for (file, (amd_sec, events)) in chunk.into_iter().zip(rendered) {
                if n > cp.written && ctx.should_yield() {
                    complete = false;
                    break;
                }
                n += 1;
                out.write_all(&amd_sec)?;
                if kind == MetsKind::Aip {
                    log_lines.add(&file, &events);
                    // A megabyte of log lines at a time, so memory does not grow with the transfer.
                    if log_lines.len() > LOG_PIECE_BYTES {
                        cp.log_pieces.push(self.write_log_piece(cp.log_pieces.len(), &std::mem::take(&mut log_lines))?);
                    }
                }
                after = Some(file.current_path);
            }
            if !complete {
                break;
            }
        }
        if complete {
            if let Some(last) = &files.last {
                let own_events = |f: &File| p.events.file_events(self.transfer.id, f.uuid).map_err(io::Error::other);
                write_amd_sec_of(&mut out, &self.doc(kind, &files, &own_events), n + 1, last)?;
            }
            write_tail(&mut out, &doc)?;
        }
        out.flush()?;
        out.into_inner().map_err(|e| e.into_error())?.commit()?;
        cp.pieces.push(piece);
        if kind == MetsKind::Aip {
            cp.log_pieces.push(self.write_log_piece(cp.log_pieces.len(), &log_lines)?);
        }
        cp.written = n;
        cp.after = after;
        if !complete {
            return Ok(cp);
        }
        // The pieces stay until the working area is cleaned: a duplicate delivery may be
        // joining them at this moment.
        p.flow.working.compose(&key, p.flow.working.as_ref(), &cp.pieces)?;
        match kind {
            MetsKind::Transfer => cp.documentation = Some(self.record_documentation(&key)?),
            MetsKind::Aip => self.write_logs(&cp.log_pieces)?,
        }
        cp.document += 1;
        cp.pieces.clear();
        cp.written = 0;
        cp.after = None;
        Ok(cp)
    }

    fn doc<'d>(&'d self, kind: MetsKind, files: &'d StateFiles<'d>, events: EventsOf<'d>) -> MetsDoc<'d> {
        MetsDoc {
            kind,
            transfer: self.transfer,
            files,
            events,
            rights: &self.rights,
            empty_folders: &self.empty_folders,
            file_dc: &self.file_dc,
            transfer_dc: &self.transfer_dc,
            transfer_md: &self.transfer_md,
            package_kind: self.package_kind,
            struct_map: self.struct_map.as_deref(),
            imported: self.imported.as_ref(),
            transfer_events: &self.left_out,
            created: self.created,
        }
    }

    /// The amdSecs of `chunk` (numbered from `first`), rendered on every core: each worker
    /// reads the events of its share of the files and formats them, and the amdSecs come
    /// back in order, each with its file's events for the AIP's logs (none for the
    /// transfer METS, which writes no logs).
    fn render_amd_secs(
        &self,
        kind: MetsKind,
        files: &StateFiles<'_>,
        chunk: &[File],
        first: usize,
        remote: bool,
    ) -> StageResult<Vec<(Vec<u8>, Vec<PremisEvent>)>> {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_RENDERERS);
        let share = chunk.len().div_ceil(workers).max(1);
        let transfer_id = self.transfer.id;
        let render = |start: usize, part: &[File]| -> StageResult<Vec<(Vec<u8>, Vec<PremisEvent>)>> {
            let ahead =
                RefCell::new(if remote { events_ahead(self.p.events, transfer_id, part)? } else { HashMap::new() });
            let fetched: RefCell<Vec<PremisEvent>> = RefCell::new(Vec::new());
            let events = |f: &File| -> io::Result<Vec<PremisEvent>> {
                let events = match ahead.borrow_mut().remove(&f.uuid) {
                    Some(events) => events,
                    None => self.p.events.file_events(transfer_id, f.uuid).map_err(io::Error::other)?,
                };
                if kind == MetsKind::Aip {
                    fetched.replace(events.clone());
                }
                Ok(events)
            };
            let doc = self.doc(kind, files, &events);
            let mut out = Vec::with_capacity(part.len());
            for (i, file) in part.iter().enumerate() {
                let mut amd_sec = Vec::with_capacity(AMD_SEC_BYTES);
                write_amd_sec_of(&mut amd_sec, &doc, start + i, file)?;
                out.push((amd_sec, fetched.take()));
            }
            Ok(out)
        };
        let parts: Vec<StageResult<_>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .chunks(share)
                .enumerate()
                .map(|(k, part)| {
                    let render = &render;
                    scope.spawn(move || render(first + k * share, part))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(StageError::Transient("rendering amdSecs panicked".into()))))
                .collect()
        });
        let mut rendered = Vec::with_capacity(chunk.len());
        for part in parts {
            rendered.extend(part?);
        }
        Ok(rendered)
    }

    fn write_log_piece(&self, n: usize, lines: &FileLogLines) -> StageResult<String> {
        let key = log_piece_key(self.transfer.id, n, self.p.flow.clock.new_id());
        self.p.flow.working.put(&key, &serde_json::to_vec(lines).expect("log lines serialize"))?;
        Ok(key)
    }

    /// The AIP's logs, from the pieces the AIP METS's walk wrote, and the left-out log from
    /// the transfer's own events.
    fn write_logs(&self, pieces: &[String]) -> StageResult<()> {
        let p = self.p;
        let mut not_scanned = 0;
        let mut not_normalized = 0;
        let mut validation = crate::model::ValidationCounts::default();
        for (i, (name, header)) in FILE_LOGS.iter().enumerate() {
            let mut out =
                BufWriter::with_capacity(256 * 1024, p.flow.working.writer(&working_log_key(self.transfer.id, name))?);
            out.write_all(header.as_bytes())?;
            for piece in pieces {
                let mut bytes = Vec::new();
                p.flow.working.get(piece)?.read_to_end(&mut bytes)?;
                let lines: FileLogLines = serde_json::from_slice(&bytes)
                    .map_err(|e| StageError::Failed(format!("a piece of the AIP's logs cannot be read back: {e}")))?;
                out.write_all(lines.lines[i].as_bytes())?;
                if i == 0 {
                    not_scanned += lines.not_scanned;
                    not_normalized += lines.not_normalized;
                    validation.merge(&lines.validation);
                }
            }
            out.flush()?;
            out.into_inner().map_err(|e| e.into_error())?.commit()?;
        }
        // Counted once for the whole transfer, so the success log and the reports can say it.
        p.flow.register.set_files_not_scanned(self.transfer.id, not_scanned)?;
        p.flow.register.set_files_not_normalized(self.transfer.id, not_normalized)?;
        p.flow.register.set_validation_counts(self.transfer.id, validation)?;
        if let Some(left_out) = left_out_log(&self.left_out) {
            p.flow.working.put(&working_log_key(self.transfer.id, LEFT_OUT_LOG), left_out.as_bytes())?;
        }
        Ok(())
    }

    /// The transfer METS is a file of the AIP: it gets digests and a creation event.
    fn record_documentation(&self, key: &str) -> StageResult<Documentation> {
        let profile = self.p.flow.profile(self.transfer)?;
        let (checksums, size) =
            Digests::for_algorithms(&profile.checksum_algorithms)?.of_reader(&mut self.p.flow.working.get(key)?)?;
        let documentation = Documentation { size, checksums };
        let file = self.documentation_file(Some(&documentation))?;
        let creation = PremisEvent::new(
            self.transfer.id,
            Some(file.uuid),
            EventType::Creation,
            self.created,
            format!("{}; the transfer METS", by_vellum()),
            EventOutcome::None,
            String::new(),
            self.p.flow.agents(),
        );
        self.p.events.record_events(std::slice::from_ref(&creation))?;
        Ok(documentation)
    }

    fn documentation_file(&self, documentation: Option<&Documentation>) -> StageResult<File> {
        let documentation = documentation.ok_or_else(|| {
            StageError::Failed("the METS checkpoint reached the AIP METS without the transfer METS's digests".into())
        })?;
        let transfer = self.transfer;
        let path = transfer_mets_path(transfer);
        Ok(File {
            uuid: derived_id(transfer.id, "submission-documentation/transfer-mets"),
            transfer_id: transfer.id,
            batch: u32::MAX,
            entry_index: u64::MAX,
            file_use: FileUse::SubmissionDocumentation,
            original_path: path.clone(),
            current_path: path,
            size: documentation.size,
            checksums: documentation.checksums.clone(),
            format: self.p.format_identifier.as_ref().and_then(|i| i.format_by_puid("fmt/101")).or(Some(FormatId {
                puid: "fmt/101".into(),
                name: "Extensible Markup Language".into(),
                version: Some("1.0".into()),
                tentative: false,
            })),
            modified: Some(self.created),
            characteristics: Default::default(),
            source: None,
        })
    }
}

/// A metadata file the package has, read by its name from the working area.
fn read_named(p: &Mets<'_>, transfer: &Transfer, name: &str) -> StageResult<Option<Vec<u8>>> {
    let key = named_key(transfer.id, name);
    if p.flow.working.head(&key)?.is_none() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    p.flow.working.get(&key)?.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// The transfer's Dublin Core and each described file's or folder's: metadata.csv's
/// `objects/` row (read at intake) and its rows for single files, then what metadata.json
/// adds — where both describe one thing, metadata.csv's fields stand.
fn load_descriptions(p: &Mets<'_>, transfer: &Transfer, kind: PackageKind) -> StageResult<(Dc, BTreeMap<String, Dc>)> {
    let mut transfer_dc = transfer.identifiers.dublin_core.clone();
    let mut file_dc = BTreeMap::new();
    let mut add = |rows: BTreeMap<String, Dc>| {
        for (name, dc) in rows {
            let target = if name == "objects/" { &mut transfer_dc } else { file_dc.entry(name).or_default() };
            for (term, value) in dc {
                target.entry(term).or_insert(value);
            }
        }
    };
    if let Some(csv) = read_named(p, transfer, "metadata/metadata.csv")? {
        add(crate::intake::metadata::file_rows(&csv, kind));
    }
    if let Some(json) = read_named(p, transfer, "metadata/metadata.json")? {
        // Archivematica reads what it can of a damaged metadata.json, and so does Vellum:
        // the file itself is kept in the AIP either way.
        match crate::intake::metadata::json_rows(&json, kind) {
            Ok(rows) => add(rows),
            Err(why) => tracing::warn!(transfer_id = %transfer.id, %why, "metadata.json is not used"),
        }
    }
    Ok((transfer_dc, file_dc))
}

/// Dublin Core, by term.
type Dc = BTreeMap<String, String>;

/// What the transfer's own premis.xml recorded of its files; a file that is not PREMIS is
/// kept in the AIP, not used (as Archivematica's importer passes it by).
fn imported_premis(
    p: &Mets<'_>,
    transfer: &Transfer,
) -> StageResult<Option<crate::record::premis_import::ImportedPremis>> {
    let Some(bytes) = read_named(p, transfer, "metadata/premis.xml")? else { return Ok(None) };
    match crate::record::premis_import::read(&String::from_utf8_lossy(&bytes)) {
        Ok(premis) => Ok(Some(premis)),
        Err(why) => {
            tracing::warn!(transfer_id = %transfer.id, %why, "metadata/premis.xml is not used");
            Ok(None)
        }
    }
}

/// The transfer's descriptive metadata that is not Dublin Core: a bag's `bag-info.txt`, and
/// the choices the transfer's own `processingMCP.xml` made.
fn transfer_metadata(p: &Mets<'_>, transfer: &Transfer) -> StageResult<Vec<TransferMetadata>> {
    let mut out = Vec::new();
    let bag_info = crate::intake::rules::bag_tag_path("bag-info.txt");
    if let Some(bytes) = read_named(p, transfer, &bag_info)? {
        let fields = crate::record::bagit::parse_bag_info(&String::from_utf8_lossy(&bytes));
        out.push(TransferMetadata { id: "sourceMD_1", kind: "BagIt", source: true, fields });
    }
    let choices = &transfer.identifiers.processing_choices;
    if !choices.is_empty() {
        let fields = choices.iter().map(|(switch, on)| (switch.clone(), on.to_string())).collect();
        out.push(TransferMetadata { id: "dmdSec_processing", kind: "processingMCP", source: false, fields });
    }
    Ok(out)
}

/// rights.csv, where the package has one: its working copy is read, not its file record.
fn load_rights(p: &Mets<'_>, transfer: &Transfer, kind: PackageKind) -> StageResult<BTreeMap<String, Vec<RightsRow>>> {
    Ok(read_named(p, transfer, "metadata/rights.csv")?.map(|bytes| rows_by_file(&bytes, kind)).unwrap_or_default())
}
