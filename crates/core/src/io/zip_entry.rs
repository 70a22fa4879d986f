//! A zip entry opened where it lies: its local header read at the offset the central
//! directory gave, its data inflated and its CRC-32 checked, with no central directory in
//! memory. What lets one invocation extract a range of a large zip's entries after another
//! invocation read the directory once.

use std::io::{self, Read, Seek, SeekFrom};

use serde::{Deserialize, Serialize};

/// Where an entry lies in its zip and how to read it, as the central directory says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZipAt {
    /// The offset of the entry's local header.
    #[serde(rename = "h")]
    pub header: u64,
    /// The bytes its data takes in the zip.
    #[serde(rename = "c")]
    pub compressed: u64,
    /// Stored (0) or deflated (8): the methods read here.
    #[serde(rename = "m")]
    pub method: u16,
    pub crc32: u32,
    /// Its last modification, as MS-DOS date and time parts.
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub dos_time: Option<[u16; 2]>,
}

impl ZipAt {
    /// Whether an entry of this method can be opened where it lies.
    pub fn readable(method: u16) -> bool {
        matches!(method, STORED | DEFLATED)
    }
}

const STORED: u16 = 0;
const DEFLATED: u16 = 8;
const LOCAL_HEADER_SIGNATURE: u32 = 0x0403_4b50;
const LOCAL_HEADER_BYTES: usize = 30;

/// The entry's bytes, read from `zip` (positioned anywhere). Reading them fails with
/// `InvalidData` when the local header is not one, or when the bytes do not match the
/// CRC-32 the central directory declared.
pub fn open_at<'a, R: Read + Seek>(zip: &'a mut R, at: &ZipAt) -> io::Result<Box<dyn Read + 'a>> {
    let damaged = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    zip.seek(SeekFrom::Start(at.header))?;
    let mut header = [0u8; LOCAL_HEADER_BYTES];
    zip.read_exact(&mut header)?;
    if u32::from_le_bytes(header[0..4].try_into().expect("four bytes")) != LOCAL_HEADER_SIGNATURE {
        return Err(damaged("no local file header where the central directory points"));
    }
    let name_len = u16::from_le_bytes([header[26], header[27]]) as i64;
    let extra_len = u16::from_le_bytes([header[28], header[29]]) as i64;
    zip.seek(SeekFrom::Current(name_len + extra_len))?;
    let data = zip.take(at.compressed);
    let inflated: Box<dyn Read + 'a> = match at.method {
        STORED => Box::new(data),
        DEFLATED => Box::new(flate2::read::DeflateDecoder::new(data)),
        other => return Err(damaged(&format!("compression method {other} is not read where it lies"))),
    };
    Ok(Box::new(CrcChecked { inner: inflated, hasher: crc32fast::Hasher::new(), expected: at.crc32 }))
}

/// Passes bytes through, and at their end fails unless their CRC-32 is the expected one.
struct CrcChecked<R> {
    inner: R,
    hasher: crc32fast::Hasher,
    expected: u32,
}

impl<R: Read> Read for CrcChecked<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        if n == 0 && !out.is_empty() {
            let found = self.hasher.clone().finalize();
            if found != self.expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("CRC-32 {found:08x} does not match the {:08x} the zip declares", self.expected),
                ));
            }
        }
        self.hasher.update(&out[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    fn zip_of(entries: &[(&str, &[u8], zip::CompressionMethod)]) -> Vec<u8> {
        let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes, method) in entries {
            out.start_file(*name, zip::write::SimpleFileOptions::default().compression_method(*method)).unwrap();
            out.write_all(bytes).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    #[allow(deprecated)]
    fn locations(bytes: &[u8]) -> Vec<ZipAt> {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        (0..zip.len())
            .map(|i| {
                let e = zip.by_index_raw(i).unwrap();
                ZipAt {
                    header: e.header_start(),
                    compressed: e.compressed_size(),
                    method: e.compression().to_u16(),
                    crc32: e.crc32(),
                    dos_time: None,
                }
            })
            .collect()
    }

    #[test]
    fn stored_and_deflated_entries_read_as_written() {
        let long = b"an archivist's note ".repeat(500);
        let bytes = zip_of(&[
            ("a.txt", b"stored bytes", zip::CompressionMethod::Stored),
            ("b.txt", &long, zip::CompressionMethod::Deflated),
        ]);
        let at = locations(&bytes);
        let mut cursor = Cursor::new(bytes);
        let mut out = Vec::new();
        open_at(&mut cursor, &at[1]).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, long);
        out.clear();
        open_at(&mut cursor, &at[0]).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, b"stored bytes");
    }

    #[test]
    fn a_changed_byte_fails_the_crc_and_a_wrong_offset_is_no_header() {
        let mut bytes = zip_of(&[("a.txt", b"stored bytes", zip::CompressionMethod::Stored)]);
        let at = locations(&bytes)[0];
        let data = bytes.windows(12).position(|w| w == b"stored bytes").unwrap();
        bytes[data] = b'S';
        let err = open_at(&mut Cursor::new(bytes.clone()), &at).unwrap().read_to_end(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("CRC-32"), "{err}");
        let shifted = ZipAt { header: at.header + 1, ..at };
        let err = open_at(&mut Cursor::new(bytes), &shifted).err().expect("no header there");
        assert!(err.to_string().contains("no local file header"), "{err}");
    }
}
