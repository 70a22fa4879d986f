//! package ("Compress AIP"): the AIP is written as a BagIt 1.0 bag inside a `.tar.gz`,
//! streamed in sorted order into the working area. A bag too large for one invocation is
//! written in parts, each whole gzip members holding whole tar entries, continued in new
//! messages from a checkpoint; the store stage joins the parts (concatenated gzip members
//! are one valid gzip stream), as an S3 multipart upload joins its parts. Within a part the
//! members are compressed on every core (`parallel_gzip.rs`).
//!
//! A transfer of more than eight batches is written in slices instead, by many invocations
//! at once, each slice one part (`slices.rs`); the joined parts are the same tar.

mod slices;

use crate::ports::FileCatalogue;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufWriter, Read, Write};

use crate::analysis::fixity::{self, sha256_hex};
use crate::error::{StageError, StageResult};
use crate::io::open_ahead::each_opened;
use crate::io::parallel_gzip::{self, ParallelGzip};
use crate::model::messages::StageMessage;
use crate::model::Stage;
use crate::model::{FileUse, JobStatus, Transfer};
use crate::ports::FilePages;
use crate::record::aip::{
    bag_name, mets_name, payload_path, transfer_mets_path, GeneratedEntry, PackageCheckpoint, FILE_LOGS, LEFT_OUT_LOG,
};
use crate::record::bagit::{bag_info, human_size, manifest, BAGIT_TXT};
use crate::record::keys::{
    key_of, object_key, package_part_key, working_log_key, working_mets_key, working_transfer_mets_key,
};
use crate::stages::{Flow, Microservice, Progress, StageContext};

/// The package stage and what it uses beside its `Flow`: the file catalogue.
pub struct Package<'a> {
    pub flow: Flow<'a>,
    pub files: &'a dyn FileCatalogue,
}

impl Microservice for Package<'_> {
    fn run(&self, msg: &StageMessage, ctx: &StageContext) -> StageResult<Progress> {
        let Some((transfer, job)) = self.flow.take_up(msg.transfer_id, Stage::Package)? else {
            return Ok(Progress::Ignored);
        };
        if let Some(slice) = msg.batch {
            return slices::write_slice(self, &transfer, job.status, job.started_at, slice, ctx);
        }
        if job.status != JobStatus::Completed {
            let profile = self.flow.profile(&transfer)?;
            let (seen, mut checkpoint) = PackageCheckpoint::load(self.flow.jobs, transfer.id)?;
            if let Some(count) = checkpoint.slices {
                // The plan is fixed; its slices' messages may not all have been sent.
                return slices::send_slices(self, &transfer, count);
            }
            let entries = bag_entries(self, &transfer, job.started_at, &mut checkpoint)?;
            let fresh = checkpoint.parts.is_empty() && checkpoint.next_entry == 0;
            if fresh && slices::worth_slicing(&transfer, self.flow.batch_size(&profile)) {
                let planned =
                    slices::plan(self, &transfer, job.started_at, &entries, (seen.clone(), checkpoint.clone()))?;
                if let Some(count) = planned.and_then(|cp| cp.slices) {
                    return slices::send_slices(self, &transfer, count);
                }
            }
            if !write_part(self, &transfer, &profile, job.started_at, entries, (seen, checkpoint), ctx)? {
                self.flow.send(Stage::Package, &[StageMessage::transfer(transfer.id)])?;
                return Ok(Progress::Continued);
            }
            self.flow.finish_job(transfer.id, Stage::Package)?;
        }
        self.flow.send(Stage::Store, &[StageMessage::transfer(transfer.id)])?;
        Ok(Progress::Done)
    }
}

/// Where an entry's bytes come from.
enum Source {
    Bytes(Vec<u8>),
    Working {
        key: String,
        size: u64,
        mtime: u64,
    },
    /// An original file, whose working key follows from its UUID and bag path (`data/` and
    /// its current path): no key string kept for each of 100,000 files.
    Original {
        uuid: uuid::Uuid,
        size: u64,
        mtime: u64,
    },
}

/// The working-area key of an original file at `path` in the bag.
fn original_key(transfer: &Transfer, uuid: uuid::Uuid, path: &str) -> String {
    object_key(transfer.id, uuid, path.strip_prefix("data/").unwrap_or(path))
}

type Digests = BTreeMap<String, String>;

/// The bag's entries, sorted: tag files and payload. Everything is fixed by the state store
/// and `bagged` (the job's start), so every invocation sees the same list.
fn bag_entries(
    p: &Package<'_>,
    transfer: &Transfer,
    bagged: crate::model::Timestamp,
    checkpoint: &mut PackageCheckpoint,
) -> StageResult<Vec<(String, Source)>> {
    let profile = p.flow.profile(transfer)?;
    let algorithms: BTreeSet<String> =
        profile.checksum_algorithms.iter().cloned().chain(std::iter::once("sha256".to_string())).collect();
    let algorithms: Vec<String> = algorithms.into_iter().collect();
    let digest_of = |reader: &mut dyn Read| -> StageResult<Digests> {
        Ok(fixity::Digests::for_algorithms(&algorithms)?.of_reader(reader)?.0)
    };
    // A page of file records at a time: each becomes its bag entry, and the record goes.
    // Each entry keeps its digests as bytes, one after another in the algorithms' order,
    // not the record's map of hex strings: a map node a file was half a kilobyte, 50 MB at
    // 100,000 files, and hex strings in a box another 10 MB.
    let lengths: Vec<usize> = algorithms.iter().map(|a| fixity::digest_len(a)).collect::<StageResult<_>>()?;
    let in_order = |digests: &Digests, path: &str| -> StageResult<Box<[u8]>> {
        let mut bytes = Vec::with_capacity(lengths.iter().sum());
        for (a, len) in algorithms.iter().zip(&lengths) {
            let hex =
                digests.get(a).ok_or_else(|| StageError::Failed(format!("{path} has no {a} checksum recorded")))?;
            match hex::decode(hex) {
                Ok(d) if d.len() == *len => bytes.extend_from_slice(&d),
                _ => return Err(StageError::Failed(format!("{path}'s recorded {a} checksum {hex:?} is not one"))),
            }
        }
        Ok(bytes.into_boxed_slice())
    };
    let mut payload: Vec<(String, Box<[u8]>, Source)> = Vec::new();
    for f in FilePages::new(p.files, transfer.id) {
        let f = f?;
        let digests = in_order(&f.checksums, &f.original_path)?;
        let mtime = f.modified.map_or(0, |t| t.timestamp().max(0) as u64);
        let path = format!("data/{}", payload_path(transfer, &f));
        // The package's own entries are read from the upload; what was unpacked from a
        // package inside it (its `source`), from the working area.
        let source = if f.file_use == FileUse::Original && f.source.is_none() {
            Source::Original { uuid: f.uuid, size: f.size, mtime }
        } else {
            Source::Working { key: key_of(&f), size: f.size, mtime }
        };
        payload.push((path, digests, source));
    }
    if checkpoint.generated.is_empty() {
        checkpoint.generated = generated_entries(p, transfer, &digest_of)?;
    }
    for g in &checkpoint.generated {
        let source = Source::Working { key: g.key.clone(), size: g.size, mtime: bagged.timestamp().max(0) as u64 };
        payload.push((g.path.clone(), in_order(&g.digests, &g.path)?, source));
    }
    payload.sort_by(|a, b| a.0.cmp(&b.0));

    let payload_bytes: u64 = payload
        .iter()
        .map(|(_, _, s)| match s {
            Source::Working { size, .. } | Source::Original { size, .. } => *size,
            Source::Bytes(b) => b.len() as u64,
        })
        .sum();
    let external = transfer.identifiers.external_identifier().unwrap_or_default();
    let info = bag_info(&[
        ("Bagging-Date", bagged.format("%Y-%m-%d").to_string()),
        ("Bag-Size", human_size(payload_bytes)),
        ("External-Identifier", external),
        ("Internal-Sender-Identifier", transfer.aip_uuid.to_string()),
        ("Payload-Oxum", format!("{payload_bytes}.{}", payload.len())),
        ("Source-Organization", p.flow.config.organization.name.clone()),
    ]);
    let mut tag_files = vec![("bag-info.txt".to_string(), info), ("bagit.txt".to_string(), BAGIT_TXT.to_string())];
    let mut offset = 0;
    for (a, len) in algorithms.iter().zip(&lengths) {
        let text = manifest(payload.iter().map(|(path, d, _)| (path.as_str(), hex::encode(&d[offset..offset + len]))));
        tag_files.push((format!("manifest-{a}.txt"), text));
        offset += len;
    }
    let sha = |b: &str| -> StageResult<String> { Ok(sha256_hex(&mut b.as_bytes())?) };
    let tag_digests: Vec<(String, String)> =
        tag_files.iter().map(|(n, t)| Ok((n.clone(), sha(t)?))).collect::<StageResult<_>>()?;
    let tagmanifest = manifest(tag_digests.iter().map(|(n, d)| (n.as_str(), d.as_str())));

    let mut entries: Vec<(String, Source)> = tag_files
        .into_iter()
        .map(|(n, t)| (n, Source::Bytes(t.into_bytes())))
        .chain(std::iter::once(("tagmanifest-sha256.txt".to_string(), Source::Bytes(tagmanifest.into_bytes()))))
        .chain(payload.into_iter().map(|(path, _, s)| (path, s)))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

/// The files Vellum wrote for the bag (the two METS, the logs), read and digested: once per
/// AIP, on the first invocation, then kept in the checkpoint.
fn generated_entries(
    p: &Package<'_>,
    transfer: &Transfer,
    digest_of: &dyn Fn(&mut dyn Read) -> StageResult<Digests>,
) -> StageResult<Vec<GeneratedEntry>> {
    let mut generated = vec![
        (format!("data/{}", mets_name(transfer)), working_mets_key(transfer)),
        (format!("data/objects/{}", transfer_mets_path(transfer)), working_transfer_mets_key(transfer)),
    ];
    // The logs the METS stage wrote; the left-out log only where something was left out.
    for name in FILE_LOGS.iter().map(|(name, _)| *name).chain(std::iter::once(LEFT_OUT_LOG)) {
        let key = working_log_key(transfer.id, name);
        if name != LEFT_OUT_LOG || p.flow.working.head(&key)?.is_some() {
            generated.push((format!("data/logs/{name}"), key));
        }
    }
    let mut out = Vec::with_capacity(generated.len());
    for (path, key) in generated {
        let meta = p
            .flow
            .working
            .head(&key)?
            .ok_or_else(|| StageError::Transient(format!("{key} is not in the working area yet")))?;
        let digests = digest_of(&mut p.flow.working.get(&key)?)?;
        out.push(GeneratedEntry { path, key, size: meta.size, digests });
    }
    Ok(out)
}

/// How many of the working area's files are opened ahead of the one being packaged, where
/// it is remote (each open waits for S3's first byte).
const OPEN_AHEAD: usize = 16;

/// Writes the next part of the bag, from the checkpoint until the entries or the time run
/// out; returns whether the bag is complete.
fn write_part(
    p: &Package<'_>,
    transfer: &Transfer,
    profile: &crate::config::profile::Profile,
    bagged: crate::model::Timestamp,
    entries: Vec<(String, Source)>,
    (seen, mut checkpoint): (Option<String>, PackageCheckpoint),
    ctx: &StageContext,
) -> StageResult<bool> {
    let start = checkpoint.next_entry;
    if start >= entries.len() && !checkpoint.parts.is_empty() {
        // Every entry is in a part already (the job was not marked complete before a fault):
        // another part would add a second end-of-archive to the AIP.
        return Ok(true);
    }
    let key = package_part_key(transfer.id, start, p.flow.clock.new_id());
    let total = entries.len();
    let remaining: Vec<(String, Source)> = entries.into_iter().skip(start).collect();
    let mut keep_going = |written: usize| !(ctx.should_yield() && start + written < total);
    let written =
        write_entries(p, transfer, profile, bagged, &key, &remaining, &mut keep_going, |n| start + n == total)?;
    let next = start + written;
    let done = next == total;
    checkpoint.next_entry = next;
    checkpoint.parts.push(key);
    let text = serde_json::to_string(&checkpoint).expect("a checkpoint serializes");
    p.flow.jobs.set_job_checkpoint(transfer.id, Stage::Package.name(), seen.as_deref(), &text)?;
    if !done {
        tracing::info!(
            next_entry = next,
            total,
            parts = checkpoint.parts.len(),
            "packaging continues in a new message"
        );
    }
    Ok(done)
}

/// Writes `entries` as one part of the bag at `key`, while `keep_going(written so far)`
/// says so; the part ends the tar when `ends_tar(written)` says it is the last. Returns how
/// many entries it holds.
#[allow(clippy::too_many_arguments)]
fn write_entries(
    p: &Package<'_>,
    transfer: &Transfer,
    profile: &crate::config::profile::Profile,
    bagged: crate::model::Timestamp,
    key: &str,
    entries: &[(String, Source)],
    keep_going: &mut dyn FnMut(usize) -> bool,
    ends_tar: impl FnOnce(usize) -> bool,
) -> StageResult<usize> {
    let writer = BufWriter::with_capacity(1 << 20, p.flow.working.writer(key)?);
    // Level 0 stores a plain tar; any other level gzips it, one gzip member per part.
    let sink = if profile.gzip_level == 0 {
        Sink::Plain(writer)
    } else {
        Sink::Gzip(Box::new(ParallelGzip::new(writer, profile.gzip_level, parallel_gzip::threads())))
    };
    let bag = bag_name(transfer);
    let mut tar = tar::Builder::new(Part { sink, discard: false });
    let wanted: Vec<Option<(String, u64)>> = entries
        .iter()
        .map(|(path, source)| match source {
            Source::Bytes(_) => None,
            Source::Working { key, size, .. } => Some((key.clone(), *size)),
            Source::Original { uuid, size, .. } => Some((original_key(transfer, *uuid, path), *size)),
        })
        .collect();
    // A remote store's files are opened ahead, several at once; files on this disk are not
    // worth a thread each.
    let remote = wanted.iter().flatten().next().is_some_and(|(key, _)| p.flow.working.local_path(key).is_none());
    let ahead = if remote { OPEN_AHEAD } else { 1 };
    let mut written = 0;
    each_opened(p.flow.working.as_ref(), &wanted, ahead, |i, opened| -> StageResult<bool> {
        let (path, source) = &entries[i];
        let full = format!("{bag}/{path}");
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        match source {
            Source::Bytes(bytes) => {
                header.set_size(bytes.len() as u64);
                header.set_mtime(bagged.timestamp().max(0) as u64);
                tar.append_data(&mut header, &full, bytes.as_slice())?;
            }
            Source::Working { size, mtime, .. } | Source::Original { size, mtime, .. } => {
                let opened =
                    opened.ok_or_else(|| StageError::Failed(format!("{path}: its bytes were never opened")))?;
                header.set_size(*size);
                header.set_mtime(*mtime);
                let mut counted = Counted { inner: opened?.into_reader().take(*size), n: 0 };
                tar.append_data(&mut header, &full, &mut counted)?;
                if counted.n != *size {
                    let key = wanted[i].as_ref().map_or("", |(key, _)| key.as_str());
                    return Err(StageError::Failed(format!(
                        "{key} had {} bytes when packaged but {size} were recorded",
                        counted.n
                    )));
                }
            }
        }
        written += 1;
        Ok(written < entries.len() && keep_going(written))
    })?;
    // Only the last part ends the tar: the end-of-archive blocks of the others are dropped.
    tar.get_mut().discard = !ends_tar(written);
    tar.into_inner()?.sink.commit()?;
    Ok(written)
}

/// One part's writer for the tar builder; it can be told to drop what is written.
struct Part {
    sink: Sink,
    discard: bool,
}

impl Write for Part {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.discard {
            return Ok(buf.len());
        }
        self.sink.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }
}

/// The package's bytes on their way to the object store, gzipped or not.
enum Sink {
    Plain(BufWriter<Box<dyn crate::ports::ObjectWriter>>),
    Gzip(Box<ParallelGzip<BufWriter<Box<dyn crate::ports::ObjectWriter>>>>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
        }
    }
}

impl Sink {
    /// Ends the gzip stream, if any, and makes the object visible.
    fn commit(self) -> StageResult<()> {
        let buffered = match self {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish()?,
        };
        let mut writer = buffered.into_inner().map_err(|e| e.into_error())?;
        writer.flush()?;
        writer.commit()?;
        Ok(())
    }
}

struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}
