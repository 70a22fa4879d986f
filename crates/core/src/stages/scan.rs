//! scan ("Scan for viruses"): every file is streamed to clamd. An infected file fails the
//! transfer, naming the file and the signature; nothing is stored. A daemon that cannot be
//! reached is a transient error (retry, then dead-letter), never a silent pass. When the
//! profile or the run turns scanning off, each file's record says it was not scanned.

use crate::error::StageResult;
use crate::model::messages::StageMessage;
use crate::model::Stage;
use crate::model::{program_detail, EventOutcome, EventType};
use crate::ports::FileCatalogue;
use crate::ports::ScanVerdict;
use crate::ports::VirusScanner;
use crate::record::keys::key_of;
use crate::stages::per_file::{run_batch, FileOutcome};
use crate::stages::{Flow, Microservice, Progress, StageContext};
use std::sync::Arc;

/// The scan stage and what it uses beside its `Flow`: the files of its batch and the virus
/// scanner.
pub struct Scan<'a> {
    pub flow: Flow<'a>,
    pub files: &'a dyn FileCatalogue,
    pub scanner: &'a Option<Arc<dyn VirusScanner>>,
}

impl Microservice for Scan<'_> {
    fn run(&self, msg: &StageMessage, ctx: &StageContext) -> StageResult<Progress> {
        let mut version: Option<String> = None;
        run_batch(&self.flow, self.files, msg, STAGE, ctx, |_, profile, file| {
            let scanner = match (&self.scanner, profile.virus_scan) {
                (Some(s), true) => s,
                (_, enabled) => {
                    let why = if enabled {
                        "virus scanning was turned off for this run (--clamd none)".to_string()
                    } else {
                        format!("the processing profile {} turns virus scanning off", profile.name)
                    };
                    return Ok(FileOutcome::not_performed(&self.flow, file, EventType::VirusCheck, "ClamAV", why));
                }
            };
            let version = match &version {
                Some(v) => v.clone(),
                None => version.insert(scanner.version()?).clone(),
            };
            let detail = program_detail("ClamAV (clamd)", &version);
            let mut reader = self.flow.working.get(&key_of(file))?;
            let check = |outcome, note| vec![self.flow.file_event(file, EventType::VirusCheck, detail, outcome, note)];
            Ok(match scanner.scan(&mut reader)? {
                ScanVerdict::Clean => FileOutcome {
                    events: check(EventOutcome::Pass, String::new()),
                    stdout: "OK".into(),
                    ..Default::default()
                },
                ScanVerdict::Infected(signature) => FileOutcome {
                    events: check(EventOutcome::Fail, signature.clone()),
                    exit_code: 1,
                    stdout: format!("{signature} FOUND"),
                    fails_transfer: Some(format!(
                        "{} is infected with {signature}: the transfer was stopped and nothing was stored",
                        file.original_path
                    )),
                    ..Default::default()
                },
                ScanVerdict::NotScanned(why) => FileOutcome {
                    events: check(EventOutcome::NotPerformed, why.clone()),
                    exit_code: if profile.fail_unscanned { 1 } else { 0 },
                    stderr: why.clone(),
                    fails_transfer: profile
                        .fail_unscanned
                        .then(|| format!("{} could not be scanned for viruses: {why}", file.original_path)),
                    ..Default::default()
                },
            })
        })
    }
}

const STAGE: Stage = Stage::Scan;
