//! mets ("Generate METS.xml document"): once every batch has finished the per-file stages,
//! the AIP METS is written from the state store's files and events.

use std::io::{BufWriter, Write};

use crate::aip::working_mets_key;
use crate::error::StageResult;
use crate::messages::{queues, StageMessage};
use crate::model::JobStatus;
use crate::pipeline::{Pipeline, Progress};

pub fn run(p: &Pipeline, msg: &StageMessage) -> StageResult<Progress> {
    let Some(transfer) = p.active_transfer(msg.transfer_id)? else {
        return Ok(Progress::Ignored);
    };
    let job = p.begin_job(transfer.id, queues::METS)?;
    if job.status != JobStatus::Completed {
        let mut files = p.state.files(transfer.id)?;
        files.sort_by(|a, b| a.current_path.cmp(&b.current_path));
        let events = p.state.events(transfer.id)?;
        let writer = p.working.writer(&working_mets_key(&transfer))?;
        let mut out = BufWriter::with_capacity(256 * 1024, writer);
        // Dated by the job, not the clock: a duplicate message writing at the same time
        // writes the same bytes, so a reader never sees a METS that differs from its digest.
        crate::mets::write_aip_mets(&mut out, &transfer, &files, &events, job.started_at)?;
        out.flush()?;
        let writer = out.into_inner().map_err(|e| e.into_error())?;
        writer.commit()?;
        p.state.finish_job(transfer.id, queues::METS, JobStatus::Completed)?;
    }
    p.send(queues::PACKAGE, &[StageMessage::transfer(transfer.id)])?;
    Ok(Progress::Done)
}
