//! identify ("Identify file format"): each file's PRONOM format from its first and last
//! bytes (and, for ZIP and OLE2 containers, what is inside), recorded as a PREMIS "format
//! identification" event with the signature versions; the PUID goes on the file.

use crate::error::StageResult;
use crate::keys::working_key;
use crate::messages::{queues, StageMessage};
use crate::model::{EventOutcome, FilePatch};
use crate::per_file::{run_batch, FileOutcome};
use crate::pipeline::{Pipeline, Progress, StageContext};
use crate::pronom::identify_object;

const STAGE: &str = queues::IDENTIFY;

pub fn run(p: &Pipeline, msg: &StageMessage, ctx: &StageContext) -> StageResult<Progress> {
    run_batch(p, msg, STAGE, ctx, |transfer, profile, file| {
        let identifier = match (&p.identifier, profile.format_identification) {
            (Some(i), true) => i,
            (_, enabled) => {
                let why = if enabled {
                    "no PRONOM signature files are configured for this run".to_string()
                } else {
                    format!("the processing profile {} turns format identification off", profile.name)
                };
                return Ok(FileOutcome::not_performed(p, file, "format identification", "Vellum", why));
            }
        };
        let key = working_key(transfer.id, &file.current_path);
        let found = identify_object(identifier, &p.working, &key, file.size)?;
        let (outcome_detail, stdout) = match &found.format {
            Some(f) if f.tentative => {
                (format!("{} (extension only: tentative)", f.puid), format!("{} {}", f.puid, f.name))
            }
            Some(f) => (f.puid.clone(), format!("{} {}", f.puid, f.name)),
            None => ("UNKNOWN".to_string(), "UNKNOWN".to_string()),
        };
        let mut detail = format!(
            "program=\"Vellum PRONOM matcher\"; version=\"{}\"; signatures=\"{}\"; basis=\"{}\"",
            crate::SOFTWARE_AGENT,
            identifier.version,
            found.basis
        );
        if !found.others.is_empty() {
            detail.push_str(&format!("; also matched=\"{}\"", found.others.join(", ")));
        }
        let events = vec![p.file_event(file, "format identification", detail, EventOutcome::Positive, outcome_detail)];
        let patch = FilePatch { uuid: file.uuid, format: found.format.clone(), ..Default::default() };
        Ok(FileOutcome { events, patch: Some(patch), stdout, ..Default::default() })
    })
}
