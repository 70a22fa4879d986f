//! A gzip stream read from an object that can stop and start again in a later invocation,
//! without decompressing from the beginning: the way zlib's `zran` example reaches the
//! middle of a stream. At each deflate block boundary the reader notes a **point**: where
//! the next block starts in the object (a byte offset and the bits of the byte before it
//! still to be read), how many bytes were decompressed before it, the running CRC of the
//! member, and the last 32 KiB of output (the window the next blocks may refer back to). A
//! later reader primes a raw inflater with those bits and that window and carries on.
//!
//! zlib-rs (the same memory-safe zlib that flate2 uses here) is driven through its C API,
//! the one place in the core that needs `unsafe`: `inflatePrime` and `Z_BLOCK` are not in
//! its safe API.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use libz_rs_sys as z;
use serde::{Deserialize, Serialize};

use crate::ports::ObjectStore;

/// How far back deflate may refer: the window a point keeps.
const WINDOW: usize = 32 * 1024;
/// How much of the object one ranged read fetches.
const CHUNK: u64 = 4 << 20;

/// Where a gzip stream can be picked up again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GzipPoint {
    /// The object offset of the first byte not yet read by the inflater.
    pub input_offset: u64,
    /// Bits of the byte before `input_offset` still to be read (0 to 7), and that byte.
    pub bits: u8,
    pub last_byte: u8,
    /// Decompressed bytes before the point.
    pub output_offset: u64,
    /// The member's CRC-32 and length so far, to check its trailer.
    pub crc: u32,
    pub member_len: u64,
    /// The last (up to) 32 KiB of output before the point (hex in a checkpoint).
    #[serde(with = "hex_bytes")]
    pub window: Vec<u8>,
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

/// The latest points a reader passed, shared with whoever reads through it (a tar reader
/// owns the stream; its caller asks here where it could start again).
#[derive(Debug, Default)]
pub struct PointLog {
    points: VecDeque<GzipPoint>,
}

impl PointLog {
    /// Enough to find a point before the header a tar reader has just read past.
    const KEPT: usize = 16;

    fn push(&mut self, point: GzipPoint) {
        if self.points.len() == Self::KEPT {
            self.points.pop_front();
        }
        self.points.push_back(point);
    }

    /// The latest point at or before `offset` (decompressed), if one is still kept.
    pub fn at_or_before(&self, offset: u64) -> Option<GzipPoint> {
        self.points.iter().rev().find(|p| p.output_offset <= offset).cloned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Header,
    Deflate,
    Trailer,
    Done,
}

/// A raw inflater, owned, ended on drop.
struct Inflater(Box<z::z_stream>);

// SAFETY: the stream and its state are owned by this value alone and used by one thread at
// a time (through `&mut`); zlib-rs keeps no thread-local state.
unsafe impl Send for Inflater {}

impl Inflater {
    fn new() -> io::Result<Self> {
        let mut strm = Box::<z::z_stream>::default();
        // SAFETY: `strm` is a valid, default-initialized stream (allocators set), and the
        // version string is zlib-rs's own, NUL-terminated.
        let ret = unsafe {
            z::inflateInit2_(
                strm.as_mut(),
                -15,
                z::zlibVersion(),
                std::mem::size_of::<z::z_stream>() as std::ffi::c_int,
            )
        };
        if ret != z::Z_OK {
            return Err(io::Error::other(format!("the inflater could not start ({ret})")));
        }
        Ok(Self(strm))
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: the stream was initialized by `inflateInit2_` and is ended once.
        unsafe {
            z::inflateEnd(self.0.as_mut());
        }
    }
}

/// A gzip stream of an object, readable as its decompressed bytes, that notes points.
pub struct ResumableGz {
    store: Arc<dyn ObjectStore>,
    key: String,
    size: u64,
    input: Vec<u8>,
    input_pos: usize,
    /// The object offset of `input[0]`.
    input_offset: u64,
    inflater: Option<Inflater>,
    phase: Phase,
    crc: u32,
    member_len: u64,
    output_offset: u64,
    /// The last `WINDOW` bytes of output, oldest first.
    window: Vec<u8>,
    last_point: Option<GzipPoint>,
    log: Arc<Mutex<PointLog>>,
}

fn damaged(why: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("the gzip stream is damaged: {why}"))
}

impl ResumableGz {
    /// From the start of the object.
    pub fn open(store: Arc<dyn ObjectStore>, key: &str, size: u64) -> Self {
        Self {
            store,
            key: key.to_string(),
            size,
            input: Vec::new(),
            input_pos: 0,
            input_offset: 0,
            inflater: None,
            phase: Phase::Header,
            crc: 0,
            member_len: 0,
            output_offset: 0,
            window: Vec::new(),
            last_point: None,
            log: Arc::new(Mutex::new(PointLog::default())),
        }
    }

    /// The points this reader passes, as they are passed.
    pub fn point_log(&self) -> Arc<Mutex<PointLog>> {
        self.log.clone()
    }

    /// From a point a reader noted before.
    pub fn resume(store: Arc<dyn ObjectStore>, key: &str, size: u64, point: &GzipPoint) -> io::Result<Self> {
        let window = point.window.clone();
        let mut inflater = Inflater::new()?;
        if point.bits > 0 {
            let value = (point.last_byte >> (8 - point.bits)) as std::ffi::c_int;
            // SAFETY: the stream is initialized; priming adds bits to its bit buffer.
            let ret = unsafe { z::inflatePrime(inflater.0.as_mut(), point.bits as std::ffi::c_int, value) };
            if ret != z::Z_OK {
                return Err(damaged(format!("priming the inflater failed ({ret})")));
            }
        }
        if !window.is_empty() {
            // SAFETY: the pointer and length describe `window`, alive for the call.
            let ret = unsafe { z::inflateSetDictionary(inflater.0.as_mut(), window.as_ptr(), window.len() as z::uInt) };
            if ret != z::Z_OK {
                return Err(damaged(format!("setting the window failed ({ret})")));
            }
        }
        let mut reader = Self::open(store, key, size);
        reader.input_offset = point.input_offset;
        reader.inflater = Some(inflater);
        reader.phase = Phase::Deflate;
        reader.crc = point.crc;
        reader.member_len = point.member_len;
        reader.output_offset = point.output_offset;
        reader.window = window;
        reader.last_point = Some(point.clone());
        reader.log.lock().unwrap_or_else(|p| p.into_inner()).push(point.clone());
        Ok(reader)
    }

    /// The latest point passed: every byte before its `output_offset` has been read.
    pub fn last_point(&self) -> Option<&GzipPoint> {
        self.last_point.as_ref()
    }

    /// Makes sure unread input is buffered; false at the end of the object.
    fn fill(&mut self) -> io::Result<bool> {
        if self.input_pos < self.input.len() {
            return Ok(true);
        }
        let next = self.input_offset + self.input.len() as u64;
        if next >= self.size {
            return Ok(false);
        }
        let bytes = self.store.get_range(&self.key, next, CHUNK.min(self.size - next)).map_err(io::Error::other)?;
        if bytes.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the object is shorter than its size"));
        }
        self.input_offset = next;
        self.input = bytes;
        self.input_pos = 0;
        Ok(true)
    }

    fn byte(&mut self) -> io::Result<u8> {
        if !self.fill()? {
            return Err(damaged("it ends inside a member's header or trailer"));
        }
        let b = self.input[self.input_pos];
        self.input_pos += 1;
        Ok(b)
    }

    fn skip_zero_terminated(&mut self) -> io::Result<()> {
        while self.byte()? != 0 {}
        Ok(())
    }

    /// Reads a member's header (RFC 1952); the inflater starts after it.
    fn header(&mut self) -> io::Result<()> {
        let (id1, id2, method, flags) = (self.byte()?, self.byte()?, self.byte()?, self.byte()?);
        if (id1, id2) != (0x1f, 0x8b) {
            return Err(damaged("a member does not start with the gzip magic"));
        }
        if method != 8 {
            return Err(damaged(format!("compression method {method} is not deflate")));
        }
        for _ in 0..6 {
            self.byte()?;
        }
        if flags & 0x04 != 0 {
            let len = self.byte()? as usize | (self.byte()? as usize) << 8;
            for _ in 0..len {
                self.byte()?;
            }
        }
        if flags & 0x08 != 0 {
            self.skip_zero_terminated()?;
        }
        if flags & 0x10 != 0 {
            self.skip_zero_terminated()?;
        }
        if flags & 0x02 != 0 {
            self.byte()?;
            self.byte()?;
        }
        self.inflater = Some(Inflater::new()?);
        self.crc = 0;
        self.member_len = 0;
        self.phase = Phase::Deflate;
        self.note_point(0, 0);
        Ok(())
    }

    fn trailer(&mut self) -> io::Result<()> {
        let mut t = [0u8; 8];
        for b in &mut t {
            *b = self.byte()?;
        }
        let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let len = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
        if crc != self.crc || len != self.member_len as u32 {
            return Err(damaged("a member's CRC-32 or length does not match its bytes"));
        }
        self.inflater = None;
        self.phase = if self.fill()? { Phase::Header } else { Phase::Done };
        Ok(())
    }

    fn note_point(&mut self, bits: u8, last_byte: u8) {
        let point = GzipPoint {
            input_offset: self.input_offset + self.input_pos as u64,
            bits,
            last_byte,
            output_offset: self.output_offset,
            crc: self.crc,
            member_len: self.member_len,
            window: self.window.clone(),
        };
        self.log.lock().unwrap_or_else(|p| p.into_inner()).push(point.clone());
        self.last_point = Some(point);
    }

    fn remember(&mut self, out: &[u8]) {
        // SAFETY: the pointer and length describe `out`.
        self.crc = unsafe { z::crc32(self.crc as z::uLong, out.as_ptr(), out.len() as z::uInt) } as u32;
        self.member_len += out.len() as u64;
        self.output_offset += out.len() as u64;
        if out.len() >= WINDOW {
            self.window.clear();
            self.window.extend_from_slice(&out[out.len() - WINDOW..]);
        } else {
            let keep = (WINDOW - out.len()).min(self.window.len());
            self.window.drain(..self.window.len() - keep);
            self.window.extend_from_slice(out);
        }
    }

    fn inflate(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.fill()? {
                return Err(damaged("it ends inside compressed data"));
            }
            let inflater = self.inflater.as_mut().expect("inflating has an inflater");
            let strm = inflater.0.as_mut();
            let avail_in = (self.input.len() - self.input_pos).min(u32::MAX as usize);
            strm.next_in = self.input[self.input_pos..].as_ptr();
            strm.avail_in = avail_in as z::uInt;
            let want = out.len().min(u32::MAX as usize);
            strm.next_out = out.as_mut_ptr();
            strm.avail_out = want as z::uInt;
            // SAFETY: next_in/avail_in describe unread input and next_out/avail_out the
            // caller's buffer, both alive for the call; Z_BLOCK stops at block boundaries.
            let ret = unsafe { z::inflate(strm, z::Z_BLOCK) };
            let used = avail_in - strm.avail_in as usize;
            let produced = want - strm.avail_out as usize;
            let data_type = strm.data_type;
            self.input_pos += used;
            self.remember(&out[..produced]);
            match ret {
                z::Z_STREAM_END => {
                    self.phase = Phase::Trailer;
                    return Ok(produced);
                }
                z::Z_OK | z::Z_BUF_ERROR => {}
                z::Z_NEED_DICT | z::Z_DATA_ERROR => return Err(damaged("its compressed data is invalid")),
                other => return Err(damaged(format!("inflate said {other}"))),
            }
            // At the end of a block that is not the last: a point to come back to.
            if data_type & 128 != 0 && data_type & 64 == 0 {
                let bits = (data_type & 7) as u8;
                let last = if self.input_pos > 0 { self.input[self.input_pos - 1] } else { 0 };
                self.note_point(bits, last);
            }
            if produced > 0 {
                return Ok(produced);
            }
            if used == 0 && ret == z::Z_BUF_ERROR && self.input_pos < self.input.len() {
                return Err(damaged("the inflater made no progress"));
            }
        }
    }
}

impl Read for ResumableGz {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match self.phase {
                Phase::Done => return Ok(0),
                Phase::Header => self.header()?,
                Phase::Trailer => self.trailer()?,
                Phase::Deflate => {
                    let n = self.inflate(out)?;
                    if n > 0 {
                        return Ok(n);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::sync::Mutex;

    use crate::ports::{ObjectMeta, ObjectWriter, Page, PortResult};

    /// Just enough of a store for ranged reads of one object.
    struct Bytes(Mutex<Vec<u8>>);

    impl ObjectStore for Bytes {
        fn bucket(&self) -> &str {
            "b"
        }
        fn head(&self, _: &str) -> PortResult<Option<ObjectMeta>> {
            unimplemented!()
        }
        fn get(&self, _: &str) -> PortResult<Box<dyn Read + Send>> {
            unimplemented!()
        }
        fn get_range(&self, _: &str, offset: u64, len: u64) -> PortResult<Vec<u8>> {
            let b = self.0.lock().unwrap();
            let start = (offset as usize).min(b.len());
            let end = (start + len as usize).min(b.len());
            Ok(b[start..end].to_vec())
        }
        fn writer(&self, _: &str) -> PortResult<Box<dyn ObjectWriter>> {
            unimplemented!()
        }
        fn list_page(&self, _: &str, _: Option<&str>, _: usize) -> PortResult<Page<ObjectMeta>> {
            unimplemented!()
        }
        fn put_tags(&self, _: &str, _: &BTreeMap<String, String>) -> PortResult<()> {
            unimplemented!()
        }
        fn get_tags(&self, _: &str) -> PortResult<BTreeMap<String, String>> {
            unimplemented!()
        }
        fn delete(&self, _: &str) -> PortResult<()> {
            unimplemented!()
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    fn gzip(data: &[u8], members: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in data.chunks(data.len().div_ceil(members)) {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            gz.write_all(chunk).unwrap();
            out.extend(gz.finish().unwrap());
        }
        out
    }

    /// Text that deflate compresses with back-references across blocks.
    fn sample() -> Vec<u8> {
        let mut s = Vec::new();
        let mut x: u32 = 7;
        for i in 0..60_000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            s.extend_from_slice(format!("line {i} of the package, value {}\n", x % 1000).as_bytes());
        }
        s
    }

    #[test]
    fn reads_what_it_was_given_and_resumes_from_any_point() {
        let data = sample();
        for members in [1, 3] {
            let gz = gzip(&data, members);
            let store: Arc<dyn ObjectStore> = Arc::new(Bytes(Mutex::new(gz.clone())));
            let size = gz.len() as u64;
            let mut whole = Vec::new();
            ResumableGz::open(store.clone(), "k", size).read_to_end(&mut whole).unwrap();
            assert!(whole == data, "{members} members: one pass reads the data");

            // Stop every so often, and start a new reader from the last point each time.
            let mut out = Vec::new();
            let mut reader = ResumableGz::open(store.clone(), "k", size);
            let mut resumes = 0;
            let mut resumed_at = 0;
            loop {
                let mut buf = vec![0u8; 7000];
                let n = reader.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
                let point = reader.last_point().unwrap().clone();
                if point.output_offset > resumed_at && out.len() % 3 == 0 {
                    resumed_at = point.output_offset;
                    out.truncate(point.output_offset as usize);
                    let json = serde_json::to_string(&point).unwrap();
                    reader =
                        ResumableGz::resume(store.clone(), "k", size, &serde_json::from_str(&json).unwrap()).unwrap();
                    resumes += 1;
                }
            }
            assert!(resumes > 3, "{members} members: resumed {resumes} times");
            assert!(out == data, "{members} members: resumed reads give the same data");
        }
    }

    #[test]
    fn damage_is_an_error_not_a_short_read() {
        let data = sample();
        let mut gz = gzip(&data, 1);
        let at = gz.len() - 6;
        gz[at] ^= 0xff;
        let size = gz.len() as u64;
        let store: Arc<dyn ObjectStore> = Arc::new(Bytes(Mutex::new(gz)));
        let mut out = Vec::new();
        let err = ResumableGz::open(store.clone(), "k", size).read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        let mut cut = gzip(&data, 1);
        cut.truncate(cut.len() / 2);
        let size = cut.len() as u64;
        let store: Arc<dyn ObjectStore> = Arc::new(Bytes(Mutex::new(cut)));
        assert!(ResumableGz::open(store, "k", size).read_to_end(&mut out).is_err(), "a truncated stream");
    }
}
