//! characterize ("Characterize and extract metadata", "Validate formats"): technical
//! metadata read in Rust where it is cheap (image dimensions and depth, PDF version, pages
//! and encryption, WAV channels, rate and duration, text encoding), a well-formedness check
//! for PNG, JPEG, GIF, PDF, XML, JSON and ZIP recorded as a PREMIS "validation" event, and
//! the format policy rules (`config/fpr.json`) that run ExifTool or MediaInfo where
//! installed: ExifTool as one process a batch, its XML recorded as XML, and a PREMIS event
//! a tool naming it and its version as the program.

use crate::config::fpr::Rules;
use crate::ports::FileCatalogue;
use crate::ports::ToolRunner;
use std::sync::Arc;

use crate::analysis::techmd;
use crate::analysis::verdict::Verdict;
use crate::config::fpr;
use crate::error::StageResult;
use crate::model::messages::StageMessage;
use crate::model::Stage;
use crate::model::{by_vellum, EventOutcome, EventType, File, FilePatch, PremisEvent};
use crate::ports::FilePages;
use crate::record::keys::key_of;
use crate::stages::per_file::{run_batch, FileOutcome};
use crate::stages::stopped_tools::StoppedTools;
use crate::stages::tool_metadata::{RuleTools, ToolMetadata};
use crate::stages::{Flow, Microservice, Progress, StageContext};

/// The characterize stage and what it uses beside its `Flow`: the files of its batch, the
/// format policy rules and the outside tools.
pub struct Characterize<'a> {
    pub flow: Flow<'a>,
    pub files: &'a dyn FileCatalogue,
    pub fpr: &'a Arc<Rules>,
    pub tools: &'a Arc<dyn ToolRunner>,
}

impl Microservice for Characterize<'_> {
    fn run(&self, msg: &StageMessage, ctx: &StageContext) -> StageResult<Progress> {
        let mut sessions = fpr::Sessions::new(self.tools.as_ref());
        let mut stopped = StoppedTools::of_transfer(self.flow.working.as_ref(), msg.transfer_id)?;
        // Tools that take a batch in one call (MediaInfo) run once, before the first file.
        if let Some(batch) = msg.batch {
            let files: Vec<File> = FilePages::of_batch(self.files, msg.transfer_id, batch)
                .after(msg.resume_after.clone())
                .collect::<Result<_, _>>()?;
            let working = self.flow.working.as_ref();
            let purpose = fpr::Purpose::Characterization;
            sessions.prepare(self.fpr, purpose, &files, working, key_of, |r| stopped.why(&r.name).is_some())?;
        }
        run_batch(&self.flow, self.files, msg, STAGE, ctx, |_, profile, file| {
            let key = key_of(file);
            // The store's answer is awaited before any tool: a validator's verdict on a file
            // the store did not give is no verdict (the batch is tried again).
            let mut examined = techmd::examine(self.flow.working, &key, file)?;
            let (mut traits, own_properties) = (std::mem::take(&mut examined.traits), examined.own_properties);
            let mut out = FileOutcome::default();
            let now = self.flow.clock.now();
            let program = by_vellum();
            let mut rule_tools = RuleTools {
                rules: self.fpr,
                tools: self.tools.as_ref(),
                sessions: &mut sessions,
                stopped: &mut stopped,
            };
            let ToolMetadata { events: tool_events, notes: tool_notes } =
                rule_tools.extract(&self.flow, self.flow.working.as_ref(), file, &key, &mut traits, now)?;
            if own_properties > 0 {
                out.events.push(event(
                    self,
                    file,
                    EventType::MetadataExtraction,
                    format!("{program}; extracted technical metadata"),
                    EventOutcome::Positive,
                    format!("{own_properties} properties"),
                    now,
                ));
            }
            out.events.extend(tool_events);
            // Every file gets a statement: a verdict, or why there is none.
            let (outcome, detail, note) = examined.validation_statement(file);
            out.events.push(event(self, file, EventType::Validation, detail, outcome, note.clone(), now));
            if let Some(Verdict::Invalid(_)) = examined.verdict {
                out.stderr = note.clone();
                if profile.fail_invalid {
                    out.exit_code = 1;
                    out.fails_transfer = Some(format!("{} failed validation: {note}", file.original_path));
                }
            }
            if !tool_notes.is_empty() {
                let notes = tool_notes.join("; ");
                out.stderr = if out.stderr.is_empty() { notes } else { format!("{}; {notes}", out.stderr) };
            }
            out.stdout = traits.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
            out.patch = Some(FilePatch { uuid: file.uuid, characteristics: traits, ..Default::default() });
            Ok(out)
        })
    }
}

const STAGE: Stage = Stage::Characterize;

fn event(
    p: &Characterize<'_>,
    file: &File,
    kind: EventType,
    detail: String,
    outcome: EventOutcome,
    note: String,
    now: crate::model::Timestamp,
) -> PremisEvent {
    PremisEvent::new(file.transfer_id, Some(file.uuid), kind, now, detail, outcome, note, p.flow.agents())
}
