//! A seekable reader over an object, built from ranged GETs with a read-ahead buffer, so a
//! zip's central directory (and only that) can be read without downloading the package.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use crate::ports::ObjectStore;

pub struct RangedReader {
    store: Arc<dyn ObjectStore>,
    key: String,
    size: u64,
    pos: u64,
    buf: Vec<u8>,
    buf_start: u64,
    chunk: u64,
    /// Bytes fetched so far: lets intake prove it read only the index.
    pub bytes_fetched: u64,
    /// The store's error, when a read failed: a caller that turns every I/O error into a
    /// verdict (a validator) asks this, so a store that did not answer is not taken for a
    /// damaged file.
    pub store_error: Option<crate::ports::PortError>,
}

impl RangedReader {
    pub fn new(store: Arc<dyn ObjectStore>, key: &str, size: u64, chunk: u64) -> Self {
        Self {
            store,
            key: key.to_string(),
            size,
            pos: 0,
            buf: Vec::new(),
            buf_start: 0,
            chunk: chunk.max(4096),
            bytes_fetched: 0,
            store_error: None,
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Read for RangedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || out.is_empty() {
            return Ok(0);
        }
        let buf_end = self.buf_start + self.buf.len() as u64;
        if self.pos < self.buf_start || self.pos >= buf_end {
            // Large reads skip the buffer: they are the file's bytes, read once.
            let want = (out.len() as u64).max(self.chunk).min(self.size - self.pos);
            let bytes = self.store.get_range(&self.key, self.pos, want).map_err(|e| {
                self.store_error = Some(e.clone());
                io::Error::other(e)
            })?;
            if bytes.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "object is shorter than its reported size"));
            }
            self.bytes_fetched += bytes.len() as u64;
            self.buf = bytes;
            self.buf_start = self.pos;
        }
        let offset = (self.pos - self.buf_start) as usize;
        let n = out.len().min(self.buf.len() - offset);
        out[..n].copy_from_slice(&self.buf[offset..offset + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangedReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => n as i128,
            SeekFrom::End(n) => self.size as i128 + n as i128,
            SeekFrom::Current(n) => self.pos as i128 + n as i128,
        };
        if target < 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before start"));
        }
        self.pos = target as u64;
        Ok(self.pos)
    }
}
