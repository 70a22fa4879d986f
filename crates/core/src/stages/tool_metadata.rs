//! The characterization rules' tools (ExifTool, MediaInfo) run on one file: each answer
//! kept among the file's characteristics, and a PREMIS `metadata extraction` event a rule
//! naming the tool and its version. A tool that runs past its timeout is stopped for the
//! rest of the transfer. The characterize stage runs them on the originals; normalize on
//! the preservation copies it makes, which are files like any other.

use std::collections::BTreeMap;

use crate::config::fpr::{self, Rules, Sessions};
use crate::error::StageResult;
use crate::model::{derived_id, program_detail, EventOutcome, EventType, File, PremisEvent, Timestamp};
use crate::ports::{ObjectStore, ToolOutput, ToolRunner};
use crate::stages::stopped_tools::StoppedTools;
use crate::stages::Flow;

/// What the rules' tools said of a file.
#[derive(Default)]
pub struct ToolMetadata {
    /// An event a rule, its id derived from the file and the rule (a delivery again writes
    /// the same event).
    pub events: Vec<PremisEvent>,
    /// What went wrong, for the task's standard error.
    pub notes: Vec<String>,
}

/// The tools and what they have learnt in this batch: their sessions, and the rules
/// stopped in the transfer.
pub struct RuleTools<'a, 's> {
    pub rules: &'a Rules,
    pub tools: &'a dyn ToolRunner,
    pub sessions: &'s mut Sessions<'a>,
    pub stopped: &'s mut StoppedTools<'a>,
}

impl<'a> RuleTools<'a, '_> {
    /// Runs every characterization rule that applies to `file` (read at `key` in `source`),
    /// putting each answer into `traits`.
    pub fn extract(
        &mut self,
        flow: &Flow<'_>,
        source: &dyn ObjectStore,
        file: &File,
        key: &str,
        traits: &mut BTreeMap<String, String>,
        now: Timestamp,
    ) -> StageResult<ToolMetadata> {
        let mut out = ToolMetadata::default();
        for rule in self.rules.rules_for(fpr::Purpose::Characterization, file, self.tools) {
            let (session, version) = self.sessions.of(rule);
            let tool = program_detail(&rule.name, version.unwrap_or("unknown"));
            let answer = match self.stopped.why(&rule.name) {
                Some(why) => Err(why),
                None => Ok(session.run(source, key, &file.current_path)?),
            };
            let (outcome, note) = match answer {
                Err(why) => {
                    out.notes.push(why.clone());
                    (EventOutcome::NotPerformed, why)
                }
                Ok(ToolOutput::Output(output)) => {
                    let key = match rule.output {
                        fpr::RuleOutput::Xml => fpr::xml_key(&rule.name),
                        fpr::RuleOutput::Text => rule.name.clone(),
                    };
                    traits.insert(key, output);
                    (EventOutcome::Positive, format!("{} output recorded", rule.name))
                }
                Ok(ToolOutput::Cut { kept, total }) => {
                    // Cut output is not the tool's answer: kept as text (cut XML is not XML),
                    // marked where it stops, and the event says it is incomplete.
                    let why = format!(
                        "{} wrote {total} bytes; the first {} are recorded (the rule's max_output)",
                        rule.name,
                        kept.len()
                    );
                    traits.insert(rule.name.clone(), format!("{kept}\n[cut by Vellum: {why}]"));
                    out.notes.push(format!("{} output cut", rule.name));
                    (EventOutcome::PartialPass, format!("output cut: {why}"))
                }
                Ok(ToolOutput::Failed(why)) => {
                    out.notes.push(format!("{} failed: {why}", rule.name));
                    (EventOutcome::Fail, format!("{} failed: {why}", rule.name))
                }
                Ok(ToolOutput::TimedOut) => {
                    let why = format!(
                        "{} was stopped after {} seconds and gave no result; not run again in this transfer",
                        rule.name, rule.timeout_seconds
                    );
                    self.stopped.stop(&rule.name, &rule.command, rule.timeout_seconds, &file.current_path)?;
                    out.notes.push(why.clone());
                    (EventOutcome::Fail, why)
                }
            };
            let mut e = PremisEvent::new(
                file.transfer_id,
                Some(file.uuid),
                EventType::MetadataExtraction,
                now,
                tool,
                outcome,
                note,
                flow.agents(),
            );
            e.uuid = derived_id(file.uuid, &format!("event/metadata extraction/{}", rule.name));
            out.events.push(e);
        }
        Ok(out)
    }
}
