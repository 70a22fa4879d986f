//! The object store on S3. Reads stream (`GetObject`, ranged for the zip index); writes go
//! up a part at a time (a multipart upload of 8 MiB parts, aborted if the writer is dropped
//! uncommitted; a small object is one `PutObject`); `compose` copies inside S3
//! (`CopyObject`, or `UploadPartCopy` part by part) so the bytes never pass through the
//! function.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier, Tag, Tagging,
};
use aws_sdk_s3::Client;
use tokio::runtime::Handle;
use vellum_core::ports::{
    ComposeProgress, ComposedPiece, ObjectMeta, ObjectStore, ObjectWriter, Page, PortError, PortResult,
};

use crate::errors::port_error;

/// Every part but the last of a multipart upload is at least this big (S3's minimum is 5 MiB).
pub const PART_SIZE: usize = 8 << 20;

/// The size of a streamed upload's part `number` (from 1): 8 MiB for the first thousand
/// parts, doubling each thousand after up to 64 MiB, so S3's 10,000 parts hold about
/// 490 GiB (more than one invocation can write before its deadline) while a part in memory
/// never passes 64 MiB. 8 MiB parts alone would stop at 78 GiB.
pub fn part_size(number: usize) -> usize {
    PART_SIZE << (number.saturating_sub(1) / 1000).min(3)
}
/// S3 copies up to 5 GiB in one `CopyObject`.
const MAX_SINGLE_COPY: u64 = 5 << 30;
/// `UploadPartCopy` wants every part but the last to be at least 5 MiB.
const MIN_COPY_PART: u64 = 5 << 20;
/// How many part copies run at once: a terabyte in 5 GiB pieces is about 200 pieces, seven
/// waves (S3 copies each inside itself at some 150 MB/s).
const COPY_CONCURRENCY: usize = 32;

#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    rt: Handle,
    /// Part copies at once (COPY_CONCURRENCY unless a test asks for fewer).
    copy_concurrency: usize,
}

fn timestamp(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<vellum_core::model::Timestamp> {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

/// `CopySource` is `bucket/key` with the key URL-encoded.
fn copy_source(bucket: &str, key: &str) -> String {
    let mut out = format!("{bucket}/");
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl S3Store {
    /// The store of one bucket. Its calls run on `rt`: call them from outside that runtime's
    /// own tasks (a blocking task, or a plain thread), as the ports are synchronous.
    pub fn new(client: Client, bucket: &str, rt: Handle) -> Self {
        Self { client, bucket: bucket.to_string(), rt, copy_concurrency: COPY_CONCURRENCY }
    }

    /// The same store copying `n` parts at once (tests: a copy of a few parts in waves).
    pub fn with_copy_concurrency(mut self, n: usize) -> Self {
        self.copy_concurrency = n.max(1);
        self
    }

    fn run<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Copies `parts` of `source` (another bucket of this account) into `key` inside S3,
    /// going on from `progress` and stopping between waves of part copies when
    /// `out_of_time()` says so (None).
    fn copy_in(
        &self,
        key: &str,
        source: &S3Store,
        parts: &[String],
        progress: &mut ComposeProgress,
        out_of_time: &dyn Fn() -> bool,
    ) -> PortResult<Option<ObjectMeta>> {
        let mut sizes = Vec::with_capacity(parts.len());
        for part in parts {
            let meta = source.head(part)?.ok_or_else(|| PortError::NotFound(format!("{}/{part}", source.bucket)))?;
            sizes.push(meta.size);
        }
        if let [only] = parts {
            if sizes[0] <= MAX_SINGLE_COPY {
                self.run(
                    self.client
                        .copy_object()
                        .bucket(&self.bucket)
                        .key(key)
                        .copy_source(copy_source(&source.bucket, only))
                        // S3 keeps the copy's SHA-256; a bucket under Object Lock with a
                        // default retention takes a write only with a checksum named.
                        .checksum_algorithm(ChecksumAlgorithm::Sha256)
                        .customize()
                        .mutate_request(|r| {
                            r.headers_mut().insert("x-amz-sdk-checksum-algorithm", "SHA256");
                        })
                        .send(),
                )
                .map_err(|e| port_error(&format!("copying {only} to {key}"), e))?;
                return self
                    .head(key)?
                    .map(Some)
                    .ok_or_else(|| PortError::Unavailable(format!("{key} is not there after its copy")));
            }
        }
        // An upload this call started is aborted if the call fails; one it went on with is
        // kept for the next attempt (the bucket's lifecycle rule ends one left for good).
        let started_here = progress.upload.is_none();
        if started_here {
            let upload = self
                .run(
                    self.client
                        .create_multipart_upload()
                        .bucket(&self.bucket)
                        .key(key)
                        .checksum_algorithm(ChecksumAlgorithm::Sha256)
                        .send(),
                )
                .map_err(|e| port_error(&format!("starting the copy to {key}"), e))?;
            progress.upload = Some(upload.upload_id().unwrap_or_default().to_string());
            progress.pieces.clear();
        }
        let upload_id = progress.upload.clone().unwrap_or_default();
        let fail = |progress: &mut ComposeProgress, e: PortError| -> PortResult<Option<ObjectMeta>> {
            if started_here {
                let _ = self.run(
                    self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(&upload_id).send(),
                );
                *progress = ComposeProgress::default();
            }
            Err(e)
        };
        // Every range to copy, in order: each part of the package in ranges of at most
        // 5 GiB, so 5 TB is about 1,000 pieces of S3's 10,000.
        let mut ranges: Vec<(i32, &String, Option<String>)> = Vec::new();
        for (part, size) in parts.iter().zip(&sizes) {
            let mut offset = 0;
            while offset < *size || (*size == 0 && offset == 0) {
                let len = (size - offset).min(MAX_SINGLE_COPY);
                let range = (*size > 0).then(|| format!("bytes={offset}-{}", offset + len - 1));
                ranges.push((ranges.len() as i32 + 1, part, range));
                offset += len.max(1);
            }
        }
        let done: std::collections::BTreeSet<u32> = progress.pieces.iter().map(|p| p.number).collect();
        let todo: Vec<_> = ranges.iter().filter(|(number, _, _)| !done.contains(&(*number as u32))).collect();
        // Copied copy_concurrency at a time: S3 copies each inside itself, so the time is
        // that of the slowest of a wave, not of every part one after another.
        for (i, wave) in todo.chunks(self.copy_concurrency).enumerate() {
            if i > 0 && out_of_time() {
                return Ok(None);
            }
            let calls: Vec<_> = wave
                .iter()
                .map(|(number, part, range)| {
                    let call = self
                        .client
                        .upload_part_copy()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(&upload_id)
                        .part_number(*number)
                        .copy_source(copy_source(&source.bucket, part))
                        .set_copy_source_range(range.clone());
                    self.rt.spawn(call.send())
                })
                .collect();
            for ((number, part, _), call) in wave.iter().zip(calls) {
                let answer = self.run(call).map_err(|e| PortError::Unavailable(format!("copying {part}: {e}")));
                let out = match answer {
                    Ok(Ok(out)) => out,
                    Ok(Err(e)) => return fail(progress, port_error(&format!("copying {part} into {key}"), e)),
                    Err(e) => return fail(progress, e),
                };
                let result = out.copy_part_result();
                progress.pieces.push(ComposedPiece {
                    number: *number as u32,
                    etag: result.and_then(|r| r.e_tag()).unwrap_or_default().to_string(),
                    sha256: result.and_then(|r| r.checksum_sha256()).map(str::to_string),
                });
            }
        }
        let mut pieces = progress.pieces.clone();
        pieces.sort_by_key(|p| p.number);
        let completed: Vec<CompletedPart> = pieces
            .into_iter()
            .map(|p| {
                CompletedPart::builder()
                    .part_number(p.number as i32)
                    .e_tag(p.etag)
                    .set_checksum_sha256(p.sha256)
                    .build()
            })
            .collect();
        let done = self.run(
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
                .send(),
        );
        if let Err(e) = done {
            let e = port_error(&format!("finishing the copy to {key}"), e);
            if !started_here {
                // The upload went (aborted by the lifecycle rule, or completed by a delivery
                // that lost its answer): the next attempt starts the copy afresh.
                *progress = ComposeProgress::default();
            }
            return fail(progress, e);
        }
        *progress = ComposeProgress::default();
        self.head(key)?.map(Some).ok_or_else(|| PortError::Unavailable(format!("{key} is not there after its copy")))
    }
}

/// A streamed `GetObject` body, read a chunk at a time on the runtime.
struct Body {
    stream: ByteStream,
    rt: Handle,
    chunk: bytes::Bytes,
}

impl Read for Body {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rt.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(io::Error::other(format!("reading an S3 object: {e}"))),
            }
        }
        let n = out.len().min(self.chunk.len());
        out[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}

/// A multipart upload in the making, a part at a time.
struct S3Writer {
    store: S3Store,
    key: String,
    buffer: Vec<u8>,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    committed: bool,
}

impl S3Writer {
    fn upload_part(&mut self) -> io::Result<()> {
        let s = &self.store;
        if self.upload_id.is_none() {
            let out = s
                .run(s.client.create_multipart_upload().bucket(&s.bucket).key(&self.key).send())
                .map_err(|e| io::Error::other(port_error(&format!("starting the upload of {}", self.key), e)))?;
            self.upload_id = Some(out.upload_id().unwrap_or_default().to_string());
        }
        let number = self.parts.len() as i32 + 1;
        let body = std::mem::take(&mut self.buffer);
        let out = s
            .run(
                s.client
                    .upload_part()
                    .bucket(&s.bucket)
                    .key(&self.key)
                    .upload_id(self.upload_id.as_deref().unwrap_or_default())
                    .part_number(number)
                    .body(ByteStream::from(body))
                    .send(),
            )
            .map_err(|e| io::Error::other(port_error(&format!("uploading part {number} of {}", self.key), e)))?;
        self.parts.push(CompletedPart::builder().part_number(number).e_tag(out.e_tag().unwrap_or_default()).build());
        self.buffer = Vec::with_capacity(part_size(self.parts.len() + 1));
        Ok(())
    }
}

impl Write for S3Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let size = part_size(self.parts.len() + 1);
        let n = buf.len().min(size - self.buffer.len());
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() == size {
            self.upload_part()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for S3Writer {
    fn commit(mut self: Box<Self>) -> PortResult<ObjectMeta> {
        let s = self.store.clone();
        match &self.upload_id {
            None => {
                let body = std::mem::take(&mut self.buffer);
                let size = body.len() as u64;
                s.run(s.client.put_object().bucket(&s.bucket).key(&self.key).body(ByteStream::from(body)).send())
                    .map_err(|e| port_error(&format!("writing {}", self.key), e))?;
                self.committed = true;
                // S3 has it once PutObject answers (strong read-after-write consistency): no
                // HeadObject after every small write, which was a request a file.
                return Ok(ObjectMeta { key: self.key.clone(), size, last_modified: None });
            }
            Some(_) => {
                if !self.buffer.is_empty() {
                    self.upload_part()?;
                }
                let parts = std::mem::take(&mut self.parts);
                s.run(
                    s.client
                        .complete_multipart_upload()
                        .bucket(&s.bucket)
                        .key(&self.key)
                        .upload_id(self.upload_id.as_deref().unwrap_or_default())
                        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                        .send(),
                )
                .map_err(|e| port_error(&format!("finishing the upload of {}", self.key), e))?;
            }
        }
        self.committed = true;
        s.head(&self.key)?.ok_or_else(|| PortError::Unavailable(format!("{} is not there after its upload", self.key)))
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        if let (false, Some(id)) = (self.committed, &self.upload_id) {
            let s = &self.store;
            // Best effort: the bucket's lifecycle rule aborts what this misses.
            let _ = s.run(s.client.abort_multipart_upload().bucket(&s.bucket).key(&self.key).upload_id(id).send());
        }
    }
}

impl ObjectStore for S3Store {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn head(&self, key: &str) -> PortResult<Option<ObjectMeta>> {
        match self.run(self.client.head_object().bucket(&self.bucket).key(key).send()) {
            Ok(out) => Ok(Some(ObjectMeta {
                key: key.to_string(),
                size: out.content_length().unwrap_or(0).max(0) as u64,
                last_modified: timestamp(out.last_modified()),
            })),
            Err(e) => match port_error(&format!("looking at {key}"), e) {
                PortError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    fn get(&self, key: &str) -> PortResult<Box<dyn Read + Send>> {
        let out = self
            .run(self.client.get_object().bucket(&self.bucket).key(key).send())
            .map_err(|e| port_error(&format!("reading {key}"), e))?;
        Ok(Box::new(Body { stream: out.body, rt: self.rt.clone(), chunk: bytes::Bytes::new() }))
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> PortResult<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let range = format!("bytes={offset}-{}", offset + len - 1);
        let out = match self.run(self.client.get_object().bucket(&self.bucket).key(key).range(range).send()) {
            Ok(out) => out,
            Err(e) => {
                // A range that starts at the end is S3's 416: nothing to read there.
                if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) {
                    return Ok(Vec::new());
                }
                return Err(port_error(&format!("reading {key} from {offset}"), e));
            }
        };
        let bytes = self
            .run(out.body.collect())
            .map_err(|e| PortError::Unavailable(format!("reading {key} from {offset}: {e}")))?;
        Ok(bytes.into_bytes().to_vec())
    }

    fn writer(&self, key: &str) -> PortResult<Box<dyn ObjectWriter>> {
        Ok(Box::new(S3Writer {
            store: self.clone(),
            key: key.to_string(),
            buffer: Vec::with_capacity(PART_SIZE),
            upload_id: None,
            parts: Vec::new(),
            committed: false,
        }))
    }

    fn list_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> PortResult<Page<ObjectMeta>> {
        let limit = limit.clamp(1, 1000);
        let mut call = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).max_keys(limit as i32);
        if let Some(after) = after {
            call = call.start_after(after);
        }
        let out = self.run(call.send()).map_err(|e| port_error(&format!("listing {prefix}"), e))?;
        let items: Vec<ObjectMeta> = out
            .contents()
            .iter()
            .map(|o| ObjectMeta {
                key: o.key().unwrap_or_default().to_string(),
                size: o.size().unwrap_or(0).max(0) as u64,
                last_modified: timestamp(o.last_modified()),
            })
            .collect();
        let next = if out.is_truncated().unwrap_or(false) { items.last().map(|m| m.key.clone()) } else { None };
        Ok(Page { items, next })
    }

    fn put_tags(&self, key: &str, tags: &BTreeMap<String, String>) -> PortResult<()> {
        let set: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<_, _>>()
            .map_err(|e| PortError::Refused(format!("a tag of {key}: {e}")))?;
        let tagging = Tagging::builder()
            .set_tag_set(Some(set))
            .build()
            .map_err(|e| PortError::Refused(format!("tags of {key}: {e}")))?;
        self.run(self.client.put_object_tagging().bucket(&self.bucket).key(key).tagging(tagging).send())
            .map_err(|e| port_error(&format!("tagging {key}"), e))?;
        Ok(())
    }

    fn get_tags(&self, key: &str) -> PortResult<BTreeMap<String, String>> {
        let out = self
            .run(self.client.get_object_tagging().bucket(&self.bucket).key(key).send())
            .map_err(|e| port_error(&format!("reading the tags of {key}"), e))?;
        Ok(out.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect())
    }

    fn delete(&self, key: &str) -> PortResult<()> {
        self.run(self.client.delete_object().bucket(&self.bucket).key(key).send())
            .map_err(|e| port_error(&format!("deleting {key}"), e))?;
        Ok(())
    }

    /// A thousand keys a request (DeleteObjects), not one: a transfer's working area holds a
    /// copy of every file.
    fn delete_prefix(&self, prefix: &str) -> PortResult<()> {
        loop {
            let page = self.list_page(prefix, None, 1000)?;
            if page.items.is_empty() {
                return Ok(());
            }
            let objects: Vec<ObjectIdentifier> = page
                .items
                .iter()
                .map(|m| ObjectIdentifier::builder().key(&m.key).build())
                .collect::<Result<_, _>>()
                .map_err(|e| PortError::Refused(e.to_string()))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| PortError::Refused(e.to_string()))?;
            let out = self
                .run(self.client.delete_objects().bucket(&self.bucket).delete(delete).send())
                .map_err(|e| port_error(&format!("deleting under {prefix}"), e))?;
            if let Some(e) = out.errors().first() {
                return Err(PortError::Unavailable(format!(
                    "deleting {} under {prefix}: {}",
                    e.key().unwrap_or_default(),
                    e.message().unwrap_or_default()
                )));
            }
            if page.next.is_none() {
                return Ok(());
            }
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn compose(&self, key: &str, source: &dyn ObjectStore, parts: &[String]) -> PortResult<ObjectMeta> {
        let composed = self.compose_within(key, source, parts, &mut ComposeProgress::default(), &|| false)?;
        composed.ok_or_else(|| PortError::Unavailable(format!("the copy to {key} stopped with time left")))
    }

    fn compose_within(
        &self,
        key: &str,
        source: &dyn ObjectStore,
        parts: &[String],
        progress: &mut ComposeProgress,
        out_of_time: &dyn Fn() -> bool,
    ) -> PortResult<Option<ObjectMeta>> {
        if let Some(s3) = source.as_any().downcast_ref::<S3Store>() {
            // UploadPartCopy needs every part but the last to be at least 5 MiB; smaller
            // parts (a small package, a short METS piece) come through the function.
            let mut sizes = Vec::with_capacity(parts.len());
            for part in parts {
                sizes.push(s3.head(part)?.map_or(0, |m| m.size));
            }
            let copyable = sizes.iter().rev().skip(1).all(|s| *s >= MIN_COPY_PART);
            if copyable {
                return self.copy_in(key, s3, parts, progress, out_of_time);
            }
        }
        let mut writer = self.writer(key)?;
        for part in parts {
            io::copy(&mut source.get(part)?, &mut writer)?;
        }
        writer.commit().map(Some)
    }
}

/// Links to stored AIPs that expire: S3's presigned GET.
impl vellum_dashboard::AipLinks for S3Store {
    fn link(&self, key: &str, expires: std::time::Duration) -> PortResult<String> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires)
            .map_err(|e| PortError::Refused(format!("a link lifetime of {expires:?}: {e}")))?;
        let request = self
            .rt
            .block_on(self.client.get_object().bucket(&self.bucket).key(key).presigned(config))
            .map_err(|e| port_error(&format!("a download link for {key}"), e))?;
        Ok(request.uri().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_thousand_parts_hold_more_than_an_invocation_writes_and_none_is_large() {
        let total: u64 = (1..=10_000).map(|n| part_size(n) as u64).sum();
        assert!(total > 480 << 30, "{} GiB", total >> 30);
        assert_eq!(part_size(1), 8 << 20);
        assert_eq!(part_size(1000), 8 << 20);
        assert_eq!(part_size(1001), 16 << 20);
        assert!((1..=10_000).all(|n| part_size(n) <= 64 << 20 && part_size(n) >= 5 << 20));
        // A 5 TB AIP is copied in pieces of at most 5 GiB: within S3's 10,000.
        assert!((5u64 << 40).div_ceil(MAX_SINGLE_COPY) <= 10_000);
    }
}
