//! checksum ("Assign checksums and file sizes to objects"): every file of a batch is read
//! once, its digests computed in the same pass, and a PREMIS "message digest calculation"
//! event recorded for it.

use std::collections::BTreeMap;
use std::io::Read;

use sha2::{Digest, Sha256};

use crate::error::{StageError, StageResult};
use crate::messages::{queues, StageMessage};
use crate::model::{derived_id, EventOutcome, FilePatch, JobStatus, PremisEvent, Task};
use crate::pipeline::{Pipeline, Progress};
use crate::stages::{next_per_file_stage, working_key};

const STAGE: &str = queues::CHECKSUM;

/// Digests of one stream, computed in one pass: the algorithms a profile asks for.
pub struct Digests {
    sha256: Sha256,
}

impl Digests {
    /// Only sha256 is implemented so far; a profile asking for another algorithm is refused
    /// with that reason rather than silently given less.
    pub fn for_algorithms(algorithms: &[String]) -> StageResult<Self> {
        if let Some(other) = algorithms.iter().find(|a| a.as_str() != "sha256") {
            return Err(StageError::Failed(format!(
                "the processing profile asks for the {other} checksum, which this version of \
                 Vellum does not compute yet (only sha256)"
            )));
        }
        Ok(Self { sha256: Sha256::new() })
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
    }

    pub fn finish(self) -> BTreeMap<String, String> {
        BTreeMap::from([("sha256".to_string(), hex::encode(self.sha256.finalize()))])
    }

    /// Reads `reader` to its end, returning the digests and the byte count.
    pub fn of_reader(mut self, reader: &mut dyn Read) -> std::io::Result<(BTreeMap<String, String>, u64)> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.update(&buf[..n]);
            total += n as u64;
        }
        Ok((self.finish(), total))
    }
}

pub fn run(p: &Pipeline, msg: &StageMessage) -> StageResult<Progress> {
    let Some(transfer) = p.active_transfer(msg.transfer_id)? else {
        return Ok(Progress::Ignored);
    };
    let batch = msg.batch.ok_or_else(|| StageError::Transient("a checksum message without a batch".into()))?;
    let profile = p.profile(&transfer)?;
    let job = p.begin_job(transfer.id, STAGE)?;
    let files = p.state.batch_files(transfer.id, batch)?;
    let mut tasks = Vec::with_capacity(files.len());
    let mut events = Vec::with_capacity(files.len());
    let mut patches = Vec::with_capacity(files.len());
    for file in &files {
        let started = p.clock.now();
        let mut reader = p.working.get(&working_key(transfer.id, &file.current_path))?;
        let (digests, size) = Digests::for_algorithms(&profile.checksum_algorithms)?.of_reader(&mut reader)?;
        if size != file.size {
            return Err(StageError::Failed(format!(
                "{} has {size} bytes in the working area but {} were extracted: the working copy \
                 was changed during processing",
                file.original_path, file.size
            )));
        }
        let ended = p.clock.now();
        for (algorithm, digest) in &digests {
            events.push(PremisEvent::new(
                transfer.id,
                Some(file.uuid),
                "message digest calculation",
                ended,
                format!("program=\"Vellum\"; version=\"{}\"; algorithm=\"{algorithm}\"", crate::SOFTWARE_AGENT),
                EventOutcome::None,
                digest.clone(),
                p.agents(),
            ));
        }
        tasks.push(Task {
            uuid: derived_id(job.uuid, &format!("task/{}", file.uuid)),
            job_uuid: job.uuid,
            file_uuid: file.uuid,
            exit_code: 0,
            started_at: started,
            ended_at: ended,
            stdout: digests.get("sha256").cloned().unwrap_or_default(),
            stderr: String::new(),
        });
        patches.push(FilePatch { uuid: file.uuid, checksums: digests, size: Some(size), format: None });
    }
    let recorded = p.state.record_batch(transfer.id, STAGE, batch, &tasks, &events, &patches)?;
    hand_on(p, transfer.id, STAGE, batch, recorded.stage_complete)
}

/// Sends a batch to the next per-file stage, and fans in to METS when the last per-file
/// stage has finished every batch. Repeated on redelivery: the receivers are idempotent.
pub(crate) fn hand_on(
    p: &Pipeline,
    transfer_id: uuid::Uuid,
    stage: &str,
    batch: u32,
    stage_complete: bool,
) -> StageResult<Progress> {
    match next_per_file_stage(stage) {
        Some(next) => p.send(next, &[StageMessage::batch(transfer_id, batch)])?,
        None if stage_complete => p.send(queues::METS, &[StageMessage::transfer(transfer_id)])?,
        None => {}
    }
    if stage_complete {
        p.state.finish_job(transfer_id, stage, JobStatus::Completed)?;
    }
    Ok(Progress::Done)
}
