//! identify ("Identify file format"): each file's PRONOM format from its first and last
//! bytes (and, for ZIP and OLE2 containers, what is inside), recorded as a PREMIS "format
//! identification" event with the signature versions; the PUID goes on the file.

use crate::analysis::pronom::identify_object;
use crate::analysis::pronom::FormatIdentifier;
use crate::error::StageResult;
use crate::model::messages::StageMessage;
use crate::model::Stage;
use crate::model::{program_detail, EventOutcome, EventType, FilePatch};
use crate::ports::FileCatalogue;
use crate::record::keys::key_of;
use crate::stages::per_file::{run_batch, FileOutcome};
use crate::stages::{Flow, Microservice, Progress, StageContext};
use std::sync::Arc;

/// The identify stage and what it uses beside its `Flow`: the files of its batch and the
/// PRONOM format identifier.
pub struct Identify<'a> {
    pub flow: Flow<'a>,
    pub files: &'a dyn FileCatalogue,
    pub format_identifier: &'a Option<Arc<FormatIdentifier>>,
}

impl Microservice for Identify<'_> {
    fn run(&self, msg: &StageMessage, ctx: &StageContext) -> StageResult<Progress> {
        run_batch(&self.flow, self.files, msg, STAGE, ctx, |_, profile, file| {
            let identifier = match (&self.format_identifier, profile.format_identification) {
                (Some(i), true) => i,
                (_, enabled) => {
                    let why = if enabled {
                        "no PRONOM signature files are configured for this run".to_string()
                    } else {
                        format!("the processing profile {} turns format identification off", profile.name)
                    };
                    return Ok(FileOutcome::not_performed(
                        &self.flow,
                        file,
                        EventType::FormatIdentification,
                        "Vellum",
                        why,
                    ));
                }
            };
            let key = key_of(file);
            let mut found = identify_object(identifier, self.flow.working, &key, &file.current_path, file.size)?;
            if file.size == 0 {
                // An empty file has no format, whatever its name says (siegfried: "empty source").
                found = crate::analysis::pronom::Identification {
                    format: None,
                    basis: "none",
                    others: Vec::new(),
                    extension_mismatch: None,
                };
            }
            let extension = file.current_path.rsplit_once('.').map(|(_, e)| e).filter(|e| !e.contains('/'));
            // The outcome says how sure the identification is; only a signature or container
            // match that the name agrees with is "positive".
            let (outcome, outcome_detail, stdout) = match &found.format {
                Some(f) if f.tentative && found.basis == "text" => (
                    EventOutcome::TextOnly,
                    format!(
                        "{}: text only (no signature matched; the bytes are text, and the name says no other format)",
                        f.puid
                    ),
                    format!("{} {}", f.puid, f.name),
                ),
                Some(f) if f.tentative => (
                    EventOutcome::ExtensionOnly,
                    format!(
                        "{}: extension only (no signature matched; .{} is one of this format's extensions)",
                        f.puid,
                        extension.unwrap_or_default()
                    ),
                    format!("{} {}", f.puid, f.name),
                ),
                Some(f) => match &found.extension_mismatch {
                    Some(known) => (
                        EventOutcome::ExtensionMismatch,
                        format!(
                            "{}: extension mismatch (matched by {}; its extension .{} is not this format's: {})",
                            f.puid,
                            found.basis,
                            extension.unwrap_or_default(),
                            known.iter().map(|e| format!(".{e}")).collect::<Vec<_>>().join(", ")
                        ),
                        format!("{} {}", f.puid, f.name),
                    ),
                    None => (EventOutcome::Positive, f.puid.clone(), format!("{} {}", f.puid, f.name)),
                },
                None => {
                    let why = if file.size == 0 {
                        "the file is empty (0 bytes): there is nothing to identify".to_string()
                    } else {
                        match extension {
                            Some(e) if !found.others.is_empty() => format!(
                                "no signature matched, and the extension .{e} proves nothing: the formats it names \
                                 have signatures this file does not match, or are several"
                            ),
                            Some(e) => format!("no signature matched and no format is known by the extension .{e}"),
                            None => "no signature matched and the file has no extension".to_string(),
                        }
                    };
                    (EventOutcome::NoMatch, format!("UNKNOWN: no match ({why})"), "UNKNOWN".to_string())
                }
            };
            let mut detail = format!(
                "{}; signatures=\"{}\"; basis=\"{}\"",
                program_detail("Vellum PRONOM matcher", crate::SOFTWARE_AGENT),
                identifier.version,
                found.basis
            );
            if !found.others.is_empty() {
                // With no format found, they are what the extension could have meant.
                let label = if found.format.is_none() { "possibilities by extension" } else { "also matched" };
                detail.push_str(&format!("; {label}=\"{}\"", found.others.join(", ")));
            }
            let events =
                vec![self.flow.file_event(file, EventType::FormatIdentification, detail, outcome, outcome_detail)];
            let patch = FilePatch { uuid: file.uuid, format: found.format.clone(), ..Default::default() };
            Ok(FileOutcome { events, patch: Some(patch), stdout, ..Default::default() })
        })
    }
}

const STAGE: Stage = Stage::Identify;
