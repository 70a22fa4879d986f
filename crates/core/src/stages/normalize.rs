//! normalize ("Normalize", "Normalize for preservation"): a preservation copy of each
//! original whose format the rules (`config/fpr.json`, purpose `preservation`) name, made by
//! the rule's tool and put beside its original under `objects/`, named as Archivematica
//! names it (`<stem>-<uuid>.<ext>`). The copy is a file of the transfer like any other: its
//! digests, format identification, Vellum's own checks and the characterization rules'
//! tools (ExifTool, MediaInfo) are PREMIS events on it, and it names its original as its
//! source. The original gets a `normalization` event naming the
//! tool and its version. A copy that cannot be made leaves the original as it is, recorded
//! with the tool's words; a tool that hangs is stopped once and not run again in the batch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::analysis::fixity::Digests;
use crate::analysis::pronom::{identify_object, FormatIdentifier};
use crate::analysis::techmd;
use crate::config::fpr::{Purpose, Rule, Rules, Sessions};
use crate::config::profile::Profile;
use crate::error::StageResult;
use crate::model::messages::StageMessage;
use crate::model::{
    by_vellum, derived_id, preservation_copy_id, program_detail, EventOutcome, EventType, File, FileUse, PremisEvent,
    Stage, Transfer,
};
use crate::ports::{Conversion, FileCatalogue, FilePages, ToolOutput, ToolRunner};
use crate::record::keys::{dip_key, key_of, object_key};
use crate::stages::per_file::{run_batch, FileOutcome};
use crate::stages::stopped_tools::StoppedTools;
use crate::stages::tool_metadata::RuleTools;
use crate::stages::{Flow, LongJobs, Microservice, Progress, StageContext};

/// The normalize stage and what it uses beside its `Flow`: the files of its batch, the
/// format policy rules, the tools that make the copies, and the identifier the copies are
/// identified with.
pub struct Normalize<'a> {
    pub flow: Flow<'a>,
    pub files: &'a dyn FileCatalogue,
    pub fpr: &'a Arc<Rules>,
    pub tools: &'a Arc<dyn ToolRunner>,
    pub format_identifier: &'a Option<Arc<FormatIdentifier>>,
}

const STAGE: Stage = Stage::Normalize;

/// What the transfer's tries taught: rules whose tool ran past its timeout (not waited for
/// again), and where this runner's long jobs go.
struct Tried<'a> {
    stopped: StoppedTools<'a>,
    long_jobs: LongJobs,
    /// The characterization rules' sessions, for the copies.
    sessions: Sessions<'a>,
}

/// Whether the rule calls converting this file a long job.
fn is_long(rule: &Rule, file: &File) -> bool {
    rule.long_above_bytes.is_some_and(|limit| file.size > limit)
}

/// Where a preservation copy goes: beside its original, `<stem>-<uuid>.<ext>`.
pub fn preservation_copy_path(original: &File, copy: uuid::Uuid, extension: &str) -> String {
    let (folder, name) = match original.current_path.rsplit_once('/') {
        Some((folder, name)) => (format!("{folder}/"), name),
        None => (String::new(), original.current_path.as_str()),
    };
    let stem = match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    };
    format!("{folder}{}-{copy}.{extension}", fitted(stem, 38 + extension.len()))
}

/// A name part cut (at a character) so that, with `beside` bytes more, it makes a name a
/// file system takes: the copy of an original with a 250-byte name still has a name.
fn fitted(part: &str, beside: usize) -> &str {
    let mut end = crate::intake::sanitize::MAX_NAME_BYTES.saturating_sub(beside).min(part.len());
    while !part.is_char_boundary(end) {
        end -= 1;
    }
    &part[..end]
}

impl Microservice for Normalize<'_> {
    fn run(&self, msg: &StageMessage, ctx: &StageContext) -> StageResult<Progress> {
        if ctx.long_jobs == LongJobs::HandOff {
            if let Some(long) = self.long_job_in(msg)? {
                let body = serde_json::to_string(msg).map_err(|e| crate::error::StageError::Failed(e.to_string()))?;
                // Its consumer (a Fargate task on AWS) runs this stage on the same message.
                let queue = STAGE.long_jobs_queue().expect("normalize has a long-job queue");
                self.flow.queue.send(queue, &body)?;
                tracing::info!(transfer = %msg.transfer_id, batch = ?msg.batch, file = %long,
                    "a long job: the batch is handed to the long-job queue");
                return Ok(Progress::Continued);
            }
        }
        // Rules whose tool ran past its timeout in this transfer: not waited for again.
        let stopped = StoppedTools::of_transfer(self.flow.working.as_ref(), msg.transfer_id)?;
        let mut tried = Tried { stopped, long_jobs: ctx.long_jobs, sessions: Sessions::new(self.tools.as_ref()) };
        // What an earlier delivery of this batch made and recorded: kept, not made again (a
        // tool run twice need not write the same bytes, and the record holds the first's).
        let made_before: BTreeSet<uuid::Uuid> = match msg.batch {
            Some(batch) => FilePages::of_batch(self.files, msg.transfer_id, batch)
                .filter_map(|f| f.map(|f| f.source.map(|_| f.uuid)).transpose())
                .collect::<Result<_, _>>()?,
            None => BTreeSet::new(),
        };
        run_batch(&self.flow, self.files, msg, STAGE, ctx, |transfer, profile, file| {
            if file.file_use != FileUse::Original || file.source.is_some() {
                return Ok(FileOutcome { not_a_task: true, ..Default::default() });
            }
            let mut out = FileOutcome::default();
            let mut said = Vec::new();
            for purpose in [Purpose::Preservation, Purpose::Access, Purpose::Thumbnail, Purpose::Transcription] {
                if !profile.makes(purpose) {
                    continue;
                }
                let Some(rule) = self.fpr.maker_for(purpose, file) else {
                    let puid = file.format.as_ref().map_or("no identified format", |f| f.puid.as_str());
                    said.push(format!("no {} rule for {puid}", purpose.as_str()));
                    continue;
                };
                let made = match purpose {
                    Purpose::Preservation | Purpose::Transcription => {
                        self.keep_in_aip(transfer, profile, file, rule, &mut tried, &made_before)?
                    }
                    _ => self.for_the_dip(transfer, file, purpose, rule, &mut tried)?,
                };
                out.events.extend(made.events);
                out.new_files.extend(made.new_files);
                out.exit_code = out.exit_code.max(made.exit_code);
                said.extend([made.stdout].into_iter().filter(|s| !s.is_empty()));
                if !made.stderr.is_empty() {
                    out.stderr =
                        if out.stderr.is_empty() { made.stderr } else { format!("{}; {}", out.stderr, made.stderr) };
                }
            }
            out.stdout = said.join("; ");
            Ok(out)
        })
    }
}

impl Normalize<'_> {
    /// The first original of the batch that one of the rules the profile runs calls a long
    /// job (by its size), if any.
    fn long_job_in(&self, msg: &StageMessage) -> StageResult<Option<String>> {
        let (Some(batch), Some(transfer)) = (msg.batch, self.flow.active_transfer(msg.transfer_id)?) else {
            return Ok(None);
        };
        let profile = self.flow.profile(&transfer)?;
        for file in FilePages::of_batch(self.files, transfer.id, batch) {
            let file = file?;
            if file.file_use != FileUse::Original || file.source.is_some() {
                continue;
            }
            let long = [Purpose::Preservation, Purpose::Access, Purpose::Thumbnail, Purpose::Transcription]
                .into_iter()
                .filter(|p| profile.makes(*p))
                .filter_map(|p| self.fpr.maker_for(p, &file))
                .any(|rule| is_long(rule, &file));
            if long {
                return Ok(Some(file.current_path));
            }
        }
        Ok(None)
    }

    /// The rule's tool run on the original, its file put at `key`: the file's size and what
    /// the tool said, or why nothing was made. A tool that hung on an earlier file of the
    /// batch is not run again.
    fn make(
        &self,
        original: &File,
        rule: &Rule,
        key: &str,
        tried: &mut Tried<'_>,
    ) -> StageResult<Result<(u64, String), String>> {
        if tried.long_jobs == LongJobs::NotRun && is_long(rule, original) {
            return Ok(Err(format!(
                "not run: {} bytes is a long job for {} (over {} bytes), and this runner (a Lambda) has no \
                 long-job worker to hand it to (template parameters LongJobsImageUri and LongJobsSubnetIds)",
                original.size,
                rule.command,
                rule.long_above_bytes.unwrap_or_default()
            )));
        }
        if let Some(why) = tried.stopped.why(&rule.name) {
            return Ok(Err(why));
        }
        if let Some(missing) = rule.commands().find(|c| !self.tools.installed(c)) {
            return Ok(Err(format!("{missing} is not installed where Vellum runs")));
        }
        let extension = rule.output_extension.as_deref().unwrap_or("bin");
        let made = self.tools.convert(
            &rule.call(),
            self.flow.working.as_ref(),
            &key_of(original),
            &original.current_path,
            &format!("{}.{extension}", rule.purpose.as_str()),
            self.flow.working.as_ref(),
            key,
        )?;
        Ok(match made {
            // An empty transcription is an answer (no words); an empty copy is not a copy.
            Conversion::Made { size: 0, said } if rule.purpose != Purpose::Transcription => {
                Err(if said.is_empty() { "made an empty file".into() } else { format!("made an empty file: {said}") })
            }
            Conversion::Made { size, said } => Ok((size, said)),
            Conversion::Failed(why) => Err(why),
            Conversion::TimedOut => {
                tried.stopped.stop(&rule.name, &rule.command, rule.timeout_seconds, &original.current_path)?;
                Err(format!("{} was stopped after {} seconds and made nothing", rule.command, rule.timeout_seconds))
            }
        })
    }

    /// The program the events name: the rule, its command and the command's version.
    fn program(&self, rule: &Rule) -> String {
        let version = self.tools.version(&rule.command, &rule.version_args);
        program_detail(&format!("{} ({})", rule.name, rule.command), version.as_deref().unwrap_or("unknown"))
    }

    /// An access copy or a thumbnail, for the DIP: kept in the working area until the DIP is
    /// stored; not a file of the AIP.
    fn for_the_dip(
        &self,
        transfer: &Transfer,
        original: &File,
        purpose: Purpose,
        rule: &Rule,
        tried: &mut Tried<'_>,
    ) -> StageResult<FileOutcome> {
        let extension = rule.output_extension.as_deref().unwrap_or("bin");
        let path = dip_path(original, purpose, extension);
        match self.make(original, rule, &dip_key(transfer.id, &path), tried)? {
            Ok((_, said)) => Ok(FileOutcome {
                stdout: format!("{} copy {path}", purpose.as_str()),
                stderr: said,
                ..Default::default()
            }),
            Err(why) => Ok(self.not_normalized(original, &self.program(rule), rule, why)),
        }
    }

    /// A file made of the original that the AIP keeps — a preservation copy beside it, or a
    /// transcription under `objects/metadata/OCRfiles/` — digested, identified and checked
    /// like any file, with the event that made it on the original and its creation on itself.
    fn keep_in_aip<'a>(
        &'a self,
        transfer: &Transfer,
        profile: &Profile,
        original: &File,
        rule: &Rule,
        tried: &mut Tried<'a>,
        made_before: &BTreeSet<uuid::Uuid>,
    ) -> StageResult<FileOutcome> {
        let extension = rule.output_extension.as_deref().unwrap_or("bin");
        let (copy_id, copy_path, file_use, event_type, what) = match rule.purpose {
            Purpose::Transcription => {
                let id = derived_id(original.uuid, "transcription");
                (
                    id,
                    transcription_path(original, extension),
                    FileUse::Transcription,
                    EventType::Transcription,
                    "the text",
                )
            }
            _ => {
                let id = preservation_copy_id(original.uuid);
                let path = preservation_copy_path(original, id, extension);
                (id, path, FileUse::Preservation, EventType::Normalization, "a preservation copy")
            }
        };
        let copy_key = object_key(transfer.id, copy_id, &copy_path);
        let program = self.program(rule);
        let earlier = match made_before.contains(&copy_id) {
            true => self.flow.working.head(&copy_key)?,
            false => None,
        };
        let (size, said) = match earlier {
            // Its events are written again from the same bytes: the same ids, the same words.
            Some(object) => (object.size, String::new()),
            None => match self.make(original, rule, &copy_key, tried)? {
                Ok(made) => made,
                Err(why) => return Ok(self.not_normalized(original, &program, rule, why)),
            },
        };
        let mut copy = File {
            uuid: copy_id,
            transfer_id: transfer.id,
            batch: original.batch,
            // After every original of the batch, in the same order as theirs.
            entry_index: match file_use {
                FileUse::Transcription => TRANSCRIPTION_ENTRIES,
                _ => COPY_ENTRIES,
            } + original.entry_index,
            file_use,
            original_path: copy_path.clone(),
            current_path: copy_path.clone(),
            size,
            checksums: BTreeMap::new(),
            format: None,
            modified: Some(self.flow.clock.now()),
            characteristics: BTreeMap::new(),
            source: Some(original.uuid),
        };
        let mut events = vec![self.flow.file_event(
            original,
            event_type,
            format!("{program}; purpose=\"{}\"", rule.purpose.as_str()),
            EventOutcome::Positive,
            match (file_use, size) {
                (FileUse::Transcription, 0) => format!("{copy_path}: no text found"),
                _ => format!("{copy_path} ({})", rule.output_format.as_deref().unwrap_or("")),
            },
        )];
        let (checksums, read) =
            Digests::for_algorithms(&profile.checksum_algorithms)?.of_reader(&mut self.flow.working.get(&copy_key)?)?;
        copy.checksums = checksums;
        copy.size = read;
        events.push(self.flow.file_event(
            &copy,
            EventType::Creation,
            format!("{program}; {what} of {}", original.current_path),
            EventOutcome::Positive,
            String::new(),
        ));
        events.push(self.flow.file_event(
            &copy,
            EventType::MessageDigestCalculation,
            by_vellum(),
            EventOutcome::Positive,
            copy.checksums.iter().map(|(a, d)| format!("{a}:{d}")).collect::<Vec<_>>().join(" "),
        ));
        if let (Some(identifier), true) = (self.format_identifier, profile.format_identification) {
            let found = identify_object(identifier, self.flow.working, &copy_key, &copy.current_path, copy.size)?;
            let expected = rule.output_format.as_deref();
            let (outcome, note) = match &found.format {
                Some(f) if Some(f.puid.as_str()) == expected || expected.is_none() => {
                    (EventOutcome::Positive, f.puid.clone())
                }
                Some(f) => {
                    (EventOutcome::Positive, format!("{} (the rule expected {})", f.puid, expected.unwrap_or_default()))
                }
                None => (EventOutcome::NoMatch, "UNKNOWN: no signature matched the copy".to_string()),
            };
            copy.format = found.format.clone();
            events.push(self.flow.file_event(
                &copy,
                EventType::FormatIdentification,
                format!(
                    "{}; signatures=\"{}\"; basis=\"{}\"",
                    program_detail("Vellum PRONOM matcher", crate::SOFTWARE_AGENT),
                    identifier.version,
                    found.basis
                ),
                outcome,
                note,
            ));
        }
        let examined = techmd::examine(self.flow.working, &copy_key, &copy)?;
        // A statement for the copy: Vellum's verdict, or, where a rule's tool checks the
        // copy's format instead (MediaConch), that tool's; "not performed" only where
        // nothing does.
        let (outcome, detail, note) = examined.validation_statement(&copy);
        let checked_by_a_rule = self.fpr.rules_for(Purpose::Validation, &copy, self.tools.as_ref()).next().is_some();
        if outcome != EventOutcome::NotPerformed || !checked_by_a_rule {
            events.push(self.flow.file_event(&copy, EventType::Validation, detail, outcome, note));
        }
        // Characterized like an original: the rules' tools (ExifTool, MediaInfo) on it too.
        let mut traits = examined.traits;
        let mut rule_tools = RuleTools {
            rules: self.fpr,
            tools: self.tools.as_ref(),
            sessions: &mut tried.sessions,
            stopped: &mut tried.stopped,
        };
        let extracted = rule_tools.extract(
            &self.flow,
            self.flow.working.as_ref(),
            &copy,
            &copy_key,
            &mut traits,
            self.flow.clock.now(),
        )?;
        events.extend(extracted.events);
        copy.characteristics = traits;
        events.extend(self.policy_checks(&copy, &copy_key, &mut tried.stopped)?);
        let stderr = [said].into_iter().chain(extracted.notes).filter(|s| !s.is_empty()).collect::<Vec<_>>().join("; ");
        Ok(FileOutcome {
            events,
            stdout: format!("{} -> {copy_path}", original.current_path),
            stderr,
            new_files: vec![copy],
            ..Default::default()
        })
    }

    /// The copy checked against the policies the rules hold for its format (MediaConch on
    /// FFV1 in Matroska), each a `validation` event on the copy with the tool's report.
    fn policy_checks(&self, copy: &File, key: &str, stopped: &mut StoppedTools<'_>) -> StageResult<Vec<PremisEvent>> {
        let mut events = Vec::new();
        for rule in self.fpr.rules_for(Purpose::Validation, copy, self.tools.as_ref()) {
            let program = self.program(rule);
            let answer = match stopped.why(&rule.name) {
                // A checker that hung once in this transfer is not waited for again.
                Some(why) => Err(why),
                None => Ok(self.tools.run(&rule.call(), self.flow.working.as_ref(), key, &copy.current_path)?),
            };
            let (outcome, note) = match answer {
                Err(why) => (EventOutcome::NotPerformed, why),
                Ok(output) => match output {
                    ToolOutput::Output(report) => {
                        let report = report.trim().to_string();
                        if report.is_empty() {
                            // Neither a pass nor a failure of the copy: the checker said nothing.
                            (EventOutcome::NotPerformed, format!("{} ended without a report", rule.command))
                        } else if report.starts_with("pass!") {
                            (EventOutcome::Pass, report)
                        } else {
                            (EventOutcome::Fail, report)
                        }
                    }
                    ToolOutput::Cut { kept, total } => {
                        (EventOutcome::Fail, format!("a report of {total} bytes, cut: {kept}"))
                    }
                    ToolOutput::Failed(why) => (EventOutcome::Fail, format!("{} failed: {why}", rule.command)),
                    ToolOutput::TimedOut => {
                        stopped.stop(&rule.name, &rule.command, rule.timeout_seconds, &copy.current_path)?;
                        (
                            EventOutcome::Fail,
                            format!(
                                "{} was stopped after {} seconds; not run again in this transfer",
                                rule.command, rule.timeout_seconds
                            ),
                        )
                    }
                },
            };
            let policy = rule.policy.as_deref().unwrap_or_default();
            let mut event = self.flow.file_event(
                copy,
                EventType::Validation,
                format!("{program}; policy=\"{policy}\""),
                outcome,
                note,
            );
            // Beside Vellum's own validation of the copy: one event a rule.
            event.uuid = derived_id(copy.uuid, &format!("event/validation/{}", rule.name));
            events.push(event);
        }
        Ok(events)
    }

    /// The original stays as it is; its record says why no copy was made.
    fn not_normalized(&self, original: &File, program: &str, rule: &Rule, why: String) -> FileOutcome {
        let event_type = match rule.purpose {
            Purpose::Transcription => EventType::Transcription,
            _ => EventType::Normalization,
        };
        let mut event = self.flow.file_event(
            original,
            event_type,
            format!("{program}; purpose=\"{}\"", rule.purpose.as_str()),
            EventOutcome::Fail,
            why.clone(),
        );
        // One normalization event a purpose: the preservation one keeps the plain id.
        if matches!(rule.purpose, Purpose::Access | Purpose::Thumbnail) {
            event.uuid = derived_id(original.uuid, &format!("event/normalization/{}", rule.purpose.as_str()));
        }
        FileOutcome { events: vec![event], exit_code: 1, stderr: format!("{}: {why}", rule.name), ..Default::default() }
    }
}

/// Copies are listed in their batch after its originals: their entry index is this plus
/// their original's (an archive has far fewer entries).
pub const COPY_ENTRIES: u64 = 1 << 62;

/// Transcriptions are listed after the copies, the same way.
pub const TRANSCRIPTION_ENTRIES: u64 = (1 << 62) + (1 << 61);

/// Where an access copy or a thumbnail goes in the DIP, as Archivematica lays a DIP out:
/// `objects/<file-uuid>-<stem>.<ext>`, `thumbnails/<file-uuid>.jpg`.
pub fn dip_path(original: &File, purpose: Purpose, extension: &str) -> String {
    match purpose {
        Purpose::Thumbnail => format!("thumbnails/{}.{extension}", original.uuid),
        _ => {
            let name = original.current_path.rsplit('/').next().unwrap_or(&original.current_path);
            let stem = match name.rsplit_once('.') {
                Some((stem, _)) if !stem.is_empty() => stem,
                _ => name,
            };
            format!("objects/{}-{}.{extension}", original.uuid, fitted(stem, 38 + extension.len()))
        }
    }
}

/// Where an original's transcription goes, as Archivematica keeps OCR output:
/// `objects/metadata/OCRfiles/<name>-<file-uuid>.txt`.
pub fn transcription_path(original: &File, extension: &str) -> String {
    let name = original.current_path.rsplit('/').next().unwrap_or(&original.current_path);
    format!("objects/metadata/OCRfiles/{}-{}.{extension}", fitted(name, 38 + extension.len()), original.uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn original(path: &str) -> File {
        File::for_test(path, path)
    }

    #[test]
    fn copies_are_named_as_archivematica_names_them_and_fit_a_file_system() {
        let id = uuid::Uuid::nil();
        let f = original("objects/letters/1901.letter.jpg");
        assert_eq!(preservation_copy_path(&f, id, "tif"), format!("objects/letters/1901.letter-{id}.tif"));
        assert_eq!(dip_path(&f, Purpose::Access, "jpg"), format!("objects/{id}-1901.letter.jpg"));
        assert_eq!(dip_path(&f, Purpose::Thumbnail, "jpg"), format!("thumbnails/{id}.jpg"));
        assert_eq!(transcription_path(&f, "txt"), format!("objects/metadata/OCRfiles/1901.letter.jpg-{id}.txt"));
        // A 250-byte name of two-byte letters: every name made of it is cut at a letter.
        let long = original(&format!("objects/{}.png", "é".repeat(123)));
        for made in [
            preservation_copy_path(&long, id, "tif"),
            dip_path(&long, Purpose::Access, "jpg"),
            transcription_path(&long, "txt"),
        ] {
            let name = made.rsplit('/').next().unwrap();
            assert!(name.len() <= crate::intake::sanitize::MAX_NAME_BYTES, "{} bytes: {name}", name.len());
            assert!(name.contains(&id.to_string()), "{name}");
        }
    }
}
