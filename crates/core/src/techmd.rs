//! Technical metadata and well-formedness, read in Rust from a file's first and last bytes
//! (and, where a fact needs it, one streamed pass): PNG, JPEG, GIF, TIFF and BMP dimensions
//! and depth; PDF version, page count and encryption; WAV channels, rate and duration;
//! text encoding.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek};

use crate::model::File;

/// Bytes read from the start of a file for characterization.
pub const HEAD: usize = 256 * 1024;
/// Bytes read from the end (PDF trailers, GIF and JPEG ends).
pub const TAIL: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Png,
    Jpeg,
    Gif,
    Tiff,
    Bmp,
    Pdf,
    Wav,
    Zip,
    Xml,
    Json,
    Text,
    Other,
}

fn ext(file: &File) -> String {
    file.current_path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default()
}

fn skip_bom_ws(head: &[u8]) -> &[u8] {
    let h = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = h.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(h.len());
    &h[start..]
}

impl Kind {
    /// What a file is, by its magic bytes, its PRONOM identification and its name.
    pub fn of(file: &File, head: &[u8]) -> Self {
        let puid = file.format.as_ref().map(|f| f.puid.as_str()).unwrap_or("");
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Self::Png
        } else if head.starts_with(b"\xFF\xD8\xFF") {
            Self::Jpeg
        } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
            Self::Gif
        } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
            Self::Tiff
        } else if head.starts_with(b"BM")
            && head.len() >= 30
            && u32le(head, 14).is_some_and(|h| [12, 40, 52, 56, 108, 124].contains(&h))
        {
            Self::Bmp
        } else if head.starts_with(b"%PDF-") {
            Self::Pdf
        } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE" {
            Self::Wav
        } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
            Self::Zip
        } else if puid == "fmt/817" || ext(file) == "json" {
            Self::Json
        } else if puid == "fmt/101" || ext(file) == "xml" || skip_bom_ws(head).starts_with(b"<?xml") {
            Self::Xml
        } else if !head.is_empty() && text_encoding(head).is_some() {
            Self::Text
        } else {
            Self::Other
        }
    }

    pub fn needs_full_read(self) -> bool {
        self == Self::Pdf
    }

    /// The name of the well-formedness check this kind gets, if any.
    pub fn validator(self) -> Option<&'static str> {
        Some(match self {
            Self::Png => "PNG",
            Self::Jpeg => "JPEG",
            Self::Gif => "GIF",
            Self::Pdf => "PDF",
            Self::Xml => "XML",
            Self::Json => "JSON",
            Self::Zip => "ZIP",
            _ => return None,
        })
    }
}

fn u16be(b: &[u8], at: usize) -> Option<u32> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?) as u32)
}
fn u16le(b: &[u8], at: usize) -> Option<u32> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as u32)
}
fn u32be(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u32le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// `ascii`, `utf-8`, `utf-16le`/`utf-16be` (by byte-order mark), or None for binary.
pub fn text_encoding(sample: &[u8]) -> Option<&'static str> {
    if sample.starts_with(b"\xFF\xFE") {
        return Some("utf-16le");
    }
    if sample.starts_with(b"\xFE\xFF") {
        return Some("utf-16be");
    }
    if sample.iter().any(|&b| b == 0 || (b < 0x20 && !b"\t\n\r\x0c\x1b".contains(&b))) {
        return None;
    }
    if sample.is_ascii() {
        return Some("ascii");
    }
    // A sample may end inside a character: tolerate an incomplete last sequence.
    match std::str::from_utf8(sample) {
        Ok(_) => Some("utf-8"),
        Err(e) if e.error_len().is_none() => Some("utf-8"),
        Err(_) => None,
    }
}

fn put(m: &mut BTreeMap<String, String>, k: &str, v: impl ToString) {
    m.insert(k.to_string(), v.to_string());
}

/// What can be read from the first and last bytes.
pub fn characteristics(kind: Kind, head: &[u8], tail: &[u8], size: u64) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    match kind {
        Kind::Png => {
            if let (Some(w), Some(h)) = (u32be(head, 16), u32be(head, 20)) {
                put(&mut m, "width", w);
                put(&mut m, "height", h);
                if let (Some(&depth), Some(&colour)) = (head.get(24), head.get(25)) {
                    let channels = match colour {
                        0 => 1,
                        2 => 3,
                        3 => 1,
                        4 => 2,
                        6 => 4,
                        _ => 0,
                    };
                    put(&mut m, "bit_depth", depth);
                    put(&mut m, "bits_per_pixel", depth as u32 * channels);
                }
            }
        }
        Kind::Jpeg => {
            let mut i = 2;
            while i + 9 < head.len() {
                if head[i] != 0xFF {
                    break;
                }
                let marker = head[i + 1];
                if marker == 0xFF {
                    i += 1;
                    continue;
                }
                let len = u16be(head, i + 2).unwrap_or(0) as usize;
                if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
                    put(&mut m, "bit_depth", head[i + 4]);
                    put(&mut m, "height", u16be(head, i + 5).unwrap_or(0));
                    put(&mut m, "width", u16be(head, i + 7).unwrap_or(0));
                    put(&mut m, "components", head[i + 9]);
                    break;
                }
                if len < 2 {
                    break;
                }
                i += 2 + len;
            }
        }
        Kind::Gif => {
            put(&mut m, "version", String::from_utf8_lossy(&head[3..6]));
            if let (Some(w), Some(h)) = (u16le(head, 6), u16le(head, 8)) {
                put(&mut m, "width", w);
                put(&mut m, "height", h);
                if let Some(&packed) = head.get(10) {
                    put(&mut m, "bit_depth", (packed & 0x07) + 1);
                }
            }
        }
        Kind::Bmp => {
            if let (Some(w), Some(h), Some(bpp)) = (u32le(head, 18), u32le(head, 22), u16le(head, 28)) {
                put(&mut m, "width", w as i32);
                put(&mut m, "height", (h as i32).unsigned_abs());
                put(&mut m, "bits_per_pixel", bpp);
            }
        }
        Kind::Tiff => tiff(head, &mut m),
        Kind::Pdf => {
            let version: String =
                head[5..].iter().take_while(|b| b.is_ascii_digit() || **b == b'.').map(|&b| b as char).collect();
            put(&mut m, "pdf_version", version);
            let trailer = String::from_utf8_lossy(tail);
            put(
                &mut m,
                "encrypted",
                trailer.contains("/Encrypt") || String::from_utf8_lossy(head).contains("/Encrypt"),
            );
        }
        Kind::Wav => wav(head, size, &mut m),
        Kind::Text | Kind::Xml | Kind::Json => {
            if let Some(enc) = text_encoding(&head[..head.len().min(64 * 1024)]) {
                put(&mut m, "text_encoding", enc);
            }
        }
        Kind::Zip | Kind::Other => {}
    }
    m
}

fn tiff(head: &[u8], m: &mut BTreeMap<String, String>) {
    let le = head.starts_with(b"II");
    let r16 = |at: usize| if le { u16le(head, at) } else { u16be(head, at) };
    let r32 = |at: usize| if le { u32le(head, at) } else { u32be(head, at) };
    let Some(ifd) = r32(4).map(|v| v as usize) else { return };
    let Some(count) = r16(ifd) else { return };
    for n in 0..count as usize {
        let e = ifd + 2 + n * 12;
        let (Some(tag), Some(kind)) = (r16(e), r16(e + 2)) else { break };
        let value = if kind == 3 { r16(e + 8) } else { r32(e + 8) };
        let Some(value) = value else { break };
        match tag {
            256 => put(m, "width", value),
            257 => put(m, "height", value),
            258 => put(m, "bit_depth", value),
            277 => put(m, "samples_per_pixel", value),
            _ => {}
        }
    }
}

fn wav(head: &[u8], size: u64, m: &mut BTreeMap<String, String>) {
    let mut i = 12;
    let mut byte_rate = 0u32;
    while i + 8 <= head.len() {
        let id = &head[i..i + 4];
        let len = u32le(head, i + 4).unwrap_or(0) as usize;
        if id == b"fmt " {
            let channels = u16le(head, i + 10).unwrap_or(0);
            let rate = u32le(head, i + 12).unwrap_or(0);
            byte_rate = u32le(head, i + 16).unwrap_or(0);
            put(m, "channels", channels);
            put(m, "sample_rate", rate);
            put(m, "bits_per_sample", u16le(head, i + 22).unwrap_or(0));
        } else if id == b"data" {
            let data = (len as u64).min(size.saturating_sub(i as u64 + 8));
            if byte_rate > 0 {
                put(m, "duration_seconds", format!("{:.3}", data as f64 / byte_rate as f64));
            }
            break;
        }
        i += 8 + len + (len & 1);
    }
}

/// Facts that need the whole file: a PDF's page count (the largest `/Count` of a
/// `/Type /Pages` node, as the page tree root holds the total).
pub fn full_read(kind: Kind, reader: &mut dyn Read, m: &mut BTreeMap<String, String>) -> io::Result<()> {
    if kind != Kind::Pdf {
        return Ok(());
    }
    let re = regex::bytes::Regex::new(
        r"(?-u)/Type\s*/Pages\b[^>]{0,200}?/Count\s+(\d+)|/Count\s+(\d+)[^>]{0,200}?/Type\s*/Pages\b",
    )
    .expect("a valid regex");
    let mut buf = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::new();
    let mut pages: Option<u64> = None;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        carry.extend_from_slice(&buf[..n]);
        for c in re.captures_iter(&carry) {
            let v = c.get(1).or(c.get(2)).and_then(|g| std::str::from_utf8(g.as_bytes()).ok()?.parse().ok());
            pages = pages.max(v);
        }
        // Keep a little overlap so a dictionary split across reads is still seen.
        let keep = carry.len().min(512);
        carry.drain(..carry.len() - keep);
    }
    if let Some(p) = pages {
        put(m, "page_count", p);
    }
    Ok(())
}

/// Well-formedness: Ok, or what is wrong. `reader` yields the whole file.
pub fn validate(kind: Kind, reader: &mut dyn Read, head: &[u8], tail: &[u8]) -> Result<(), String> {
    let trimmed_tail = {
        let end = tail.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
        &tail[..end]
    };
    match kind {
        Kind::Png => validate_png(reader),
        Kind::Jpeg => {
            if tail.ends_with(b"\xFF\xD9") || trimmed_tail.ends_with(b"\xFF\xD9") {
                Ok(())
            } else {
                Err("it does not end with the JPEG end-of-image marker (FFD9): it may be truncated".into())
            }
        }
        Kind::Gif => {
            if head.len() >= 13 && trimmed_tail.last() == Some(&0x3B) {
                Ok(())
            } else {
                Err("it does not end with the GIF trailer (3B): it may be truncated".into())
            }
        }
        Kind::Pdf => {
            let t = String::from_utf8_lossy(tail);
            if !t.contains("%%EOF") {
                Err("there is no %%EOF marker near its end: it may be truncated".into())
            } else if !t.contains("startxref") {
                Err("there is no startxref near its end".into())
            } else {
                Ok(())
            }
        }
        Kind::Json => serde_json::from_reader::<_, serde::de::IgnoredAny>(io::BufReader::new(reader))
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Kind::Xml => validate_xml(reader),
        _ => Ok(()),
    }
}

fn validate_png(reader: &mut dyn Read) -> Result<(), String> {
    let mut r = io::BufReader::new(reader);
    let mut sig = [0u8; 8];
    r.read_exact(&mut sig).map_err(|e| e.to_string())?;
    let mut saw_end = false;
    let mut buf = vec![0u8; 64 * 1024];
    while !saw_end {
        let mut hdr = [0u8; 8];
        r.read_exact(&mut hdr).map_err(|_| "it ends before its IEND chunk: it is truncated".to_string())?;
        let len = u32::from_be_bytes(hdr[..4].try_into().unwrap()) as u64;
        let kind = [hdr[4], hdr[5], hdr[6], hdr[7]];
        let mut crc = flate2::Crc::new();
        crc.update(&kind);
        let mut left = len;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            r.read_exact(&mut buf[..n]).map_err(|_| "a chunk is cut short: the file is truncated".to_string())?;
            crc.update(&buf[..n]);
            left -= n as u64;
        }
        let mut want = [0u8; 4];
        r.read_exact(&mut want).map_err(|_| "a chunk's CRC is missing: the file is truncated".to_string())?;
        if crc.sum() != u32::from_be_bytes(want) {
            return Err(format!("the {} chunk's CRC does not match its data", String::from_utf8_lossy(&kind)));
        }
        saw_end = &kind == b"IEND";
    }
    Ok(())
}

fn validate_xml(reader: &mut dyn Read) -> Result<(), String> {
    let mut xml = quick_xml::Reader::from_reader(io::BufReader::new(reader));
    xml.config_mut().check_end_names = true;
    let mut buf = Vec::new();
    let mut depth = 0i64;
    let mut roots = 0;
    loop {
        match xml.read_event_into(&mut buf) {
            Ok(quick_xml::events::Event::Start(_)) => {
                if depth == 0 {
                    roots += 1;
                }
                depth += 1;
            }
            Ok(quick_xml::events::Event::Empty(_)) if depth == 0 => roots += 1,
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("at byte {}: {e}", xml.buffer_position())),
        }
        buf.clear();
    }
    match (depth, roots) {
        (0, 1) => Ok(()),
        (0, 0) => Err("there is no root element".into()),
        (0, _) => Err("there is more than one root element".into()),
        _ => Err("elements are left open at the end".into()),
    }
}

/// A zip is well-formed when its index reads and every entry inflates to its CRC.
pub fn validate_zip<R: Read + Seek>(reader: R) -> Result<(), String> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| e.to_string())?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| format!("entry {i}: {e}"))?;
        if entry.encrypted() || entry.is_dir() {
            continue;
        }
        let name = entry.name().map(|n| n.to_string()).unwrap_or_default();
        io::copy(&mut entry, &mut io::sink()).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_encodings() {
        assert_eq!(text_encoding(b"plain"), Some("ascii"));
        assert_eq!(text_encoding("café".as_bytes()), Some("utf-8"));
        assert_eq!(text_encoding(b"caf\xc3"), Some("utf-8"), "a sample cut inside a character");
        assert_eq!(text_encoding(b"caf\xe9 au lait"), None);
        assert_eq!(text_encoding(b"\x00\x01"), None);
    }

    #[test]
    fn xml_and_json_well_formedness() {
        assert!(validate(Kind::Xml, &mut &b"<?xml version='1.0'?><a><b/></a>"[..], b"", b"").is_ok());
        assert!(validate(Kind::Xml, &mut &b"<a><b></a>"[..], b"", b"").is_err());
        assert!(validate(Kind::Xml, &mut &b"<a/><b/>"[..], b"", b"").is_err());
        assert!(validate(Kind::Json, &mut &b"{\"a\": [1, 2]}"[..], b"", b"").is_ok());
        assert!(validate(Kind::Json, &mut &b"{\"a\": [1, 2}"[..], b"", b"").is_err());
    }
}
