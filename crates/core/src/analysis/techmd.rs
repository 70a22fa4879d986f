//! Technical metadata and well-formedness, read in Rust from a file's first and last bytes
//! (and, where a fact needs it, one streamed pass): PNG, JPEG, GIF, TIFF and BMP dimensions
//! and depth; PDF version, page count and encryption; WAV channels, rate and duration;
//! text encoding.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek};

use crate::analysis::image_check;
use crate::analysis::pdf;
use crate::analysis::text::text_encoding;
use crate::analysis::verdict::Verdict;
use crate::model::{by_vellum, EventOutcome, File};

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
    Webp,
    Jp2,
    Pdf,
    Wav,
    Aiff,
    Zip,
    /// A ZIP that is a format's package, whose parts that format requires.
    ZipPackage(ZipPackage),
    Xml,
    Json,
    Text,
    Other,
}

/// Formats that are a ZIP of required parts, known by the file's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZipPackage {
    OfficeOpenXml,
    OpenDocument,
    Epub,
}

impl ZipPackage {
    fn named(file: &File) -> Option<Self> {
        Some(match ext(file).as_str() {
            "docx" | "docm" | "dotx" | "dotm" | "xlsx" | "xlsm" | "xltx" | "xltm" | "pptx" | "pptm" | "potx"
            | "potm" | "ppsx" | "ppsm" => Self::OfficeOpenXml,
            "odt" | "ods" | "odp" | "odg" | "odf" | "odc" | "odb" | "odm" | "ott" | "ots" | "otp" | "otg" => {
                Self::OpenDocument
            }
            "epub" => Self::Epub,
            _ => return None,
        })
    }

    /// The parts the format requires: (entry, must be the first and stored with this media
    /// type prefix).
    fn required(self) -> &'static [(&'static str, Option<&'static str>)] {
        match self {
            Self::OfficeOpenXml => &[("[Content_Types].xml", None), ("_rels/.rels", None)],
            Self::OpenDocument => {
                &[("mimetype", Some("application/vnd.oasis.opendocument.")), ("META-INF/manifest.xml", None)]
            }
            Self::Epub => &[("mimetype", Some("application/epub+zip")), ("META-INF/container.xml", None)],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::OfficeOpenXml => "Office Open XML",
            Self::OpenDocument => "OpenDocument",
            Self::Epub => "EPUB",
        }
    }
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
        if let Some(kind) = Self::by_magic(head) {
            match (kind, ZipPackage::named(file)) {
                (Self::Zip, Some(package)) => Self::ZipPackage(package),
                _ => kind,
            }
        } else if let Some(kind) = Self::by_name(file) {
            // Named as a format it does not start like: validated as what it claims to be, so
            // the record says it is not one.
            kind
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

    /// What the first bytes say the file is, if they say.
    fn by_magic(head: &[u8]) -> Option<Self> {
        Some(if head.starts_with(b"\x89PNG\r\n\x1a\n") {
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
        } else if crate::analysis::jp2::starts_like(head) {
            Self::Jp2
        } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
            Self::Webp
        } else if head.len() >= 12 && (&head[..4] == b"RIFF" || &head[..4] == b"RF64") && &head[8..12] == b"WAVE" {
            Self::Wav
        } else if crate::analysis::audio_chunks::is_aiff(head) {
            Self::Aiff
        } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
            Self::Zip
        } else {
            return None;
        })
    }

    fn by_name(file: &File) -> Option<Self> {
        Some(match ext(file).as_str() {
            "png" => Self::Png,
            "jpg" | "jpeg" | "jpe" | "jfif" => Self::Jpeg,
            "gif" => Self::Gif,
            "tif" | "tiff" => Self::Tiff,
            "bmp" => Self::Bmp,
            "webp" => Self::Webp,
            "jp2" | "jpx" | "jpf" | "j2k" | "j2c" | "jpc" => Self::Jp2,
            "pdf" => Self::Pdf,
            _ => return None,
        })
    }

    /// The format named in the validation event, if this kind gets one.
    pub fn validator(self) -> Option<&'static str> {
        Some(match self {
            Self::Png => "PNG",
            Self::Jpeg => "JPEG",
            Self::Gif => "GIF",
            Self::Tiff => "TIFF",
            Self::Bmp => "BMP",
            Self::Webp => "WebP",
            Self::Jp2 => "JPEG 2000",
            Self::Pdf => "PDF",
            Self::Wav => "WAV",
            Self::Aiff => "AIFF",
            Self::Xml => "XML",
            Self::Json => "JSON",
            Self::Zip => "ZIP",
            Self::ZipPackage(p) => p.name(),
            _ => return None,
        })
    }

    /// What the validation of this kind does, as the event's detail says it.
    pub fn validation_method(self) -> &'static str {
        match self {
            Self::Png => "every chunk's CRC and every row decoded (png crate, zlib Adler-32 checked)",
            Self::Jpeg => "markers, tables and every scan's Huffman data decoded to its last block",
            Self::Gif => "every frame decoded (gif crate)",
            Self::Tiff => "every strip or tile of every page decoded (tiff crate)",
            Self::Bmp => "header coherence and every pixel row present",
            Self::Webp => "every frame decoded (image-webp crate)",
            Self::Jp2 => "boxes, the codestream's main header (SIZ, COD, QCD), every tile-part's length, tile and part number, and EOC",
            Self::Pdf => "cross-reference sections, trailer, catalog and page tree read; every object at its offset and every stream decoded through its filters",
            Self::Wav => "the RIFF's size, every chunk within it, the fmt chunk coherent and before the data chunk, which holds whole frames",
            Self::Aiff => "the FORM's size, every chunk within it, COMM coherent and SSND holding its frames",
            Self::Xml => "well-formedness (quick-xml; no schema)",
            Self::Json => "syntax (serde_json)",
            Self::Zip => "central directory read and every entry inflated against its CRC-32",
            Self::ZipPackage(ZipPackage::OfficeOpenXml) => {
                "the ZIP's entries inflated against their CRC-32, and [Content_Types].xml and _rels/.rels present"
            }
            Self::ZipPackage(ZipPackage::OpenDocument) => {
                "the ZIP's entries inflated against their CRC-32, mimetype first and stored, META-INF/manifest.xml present"
            }
            Self::ZipPackage(ZipPackage::Epub) => {
                "the ZIP's entries inflated against their CRC-32, mimetype first and stored, META-INF/container.xml present"
            }
            _ => "none",
        }
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

fn put(m: &mut BTreeMap<String, String>, k: &str, v: impl ToString) {
    m.insert(k.to_string(), v.to_string());
}

/// What can be read from the first and last bytes.
pub fn characteristics(kind: Kind, head: &[u8], tail: &[u8], size: u64) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let binary = !matches!(kind, Kind::Text | Kind::Xml | Kind::Json | Kind::Other);
    if binary && Kind::by_magic(head) != Some(kind) {
        // Named as a format it is not: nothing of that format's can be read from it.
        return m;
    }
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
        Kind::Webp => webp(head, &mut m),
        Kind::Wav => wav(head, size, &mut m),
        Kind::Text | Kind::Xml | Kind::Json => {
            if let Some(enc) = text_encoding(&head[..head.len().min(64 * 1024)]) {
                put(&mut m, "text_encoding", enc);
            }
        }
        Kind::Jp2 | Kind::Aiff | Kind::Zip | Kind::ZipPackage(_) | Kind::Other => {}
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
        let (Some(tag), Some(kind), Some(values)) = (r16(e), r16(e + 2), r32(e + 4)) else { break };
        // SHORT (3) or LONG (4) values sit in the entry when they fit in its 4 bytes, and
        // elsewhere at the offset the entry holds: BitsPerSample of an RGB image is 3 SHORTs.
        let width = match kind {
            3 => 2,
            4 => 4,
            _ => continue,
        };
        let at = if values as usize * width <= 4 { Some(e + 8) } else { r32(e + 8).map(|o| o as usize) };
        let read: Vec<u32> = (0..values.min(16) as usize)
            .map_while(|i| {
                let at = at? + i * width;
                if width == 2 {
                    r16(at)
                } else {
                    r32(at)
                }
            })
            .collect();
        let Some(&first) = read.first() else { continue };
        match tag {
            256 => put(m, "width", first),
            257 => put(m, "height", first),
            258 => {
                // One depth when every sample has it (8 for 8,8,8), else each sample's.
                if read.iter().all(|&v| v == first) {
                    put(m, "bit_depth", first);
                } else {
                    put(m, "bit_depth", read.iter().map(u32::to_string).collect::<Vec<_>>().join(","));
                }
            }
            277 => put(m, "samples_per_pixel", first),
            _ => {}
        }
    }
    // The TIFF defaults where a writer leaves the tag out (Pillow does for greyscale).
    if m.contains_key("width") {
        m.entry("samples_per_pixel".into()).or_insert_with(|| "1".into());
        m.entry("bit_depth".into()).or_insert_with(|| "1".into());
    }
}

fn webp(head: &[u8], m: &mut BTreeMap<String, String>) {
    let u24 = |at: usize| Some(u16le(head, at)? | (*head.get(at + 2)? as u32) << 16);
    let size = match head.get(12..16) {
        Some(b"VP8X") => u24(24).zip(u24(27)).map(|(w, h)| (w + 1, h + 1)),
        Some(b"VP8L") if head.get(20) == Some(&0x2f) => {
            u32le(head, 21).map(|bits| ((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
        }
        Some(b"VP8 ") if head.get(23..26) == Some(&[0x9d, 0x01, 0x2a]) => {
            u16le(head, 26).zip(u16le(head, 28)).map(|(w, h)| (w & 0x3fff, h & 0x3fff))
        }
        _ => None,
    };
    if let Some((w, h)) = size {
        put(m, "width", w);
        put(m, "height", h);
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

/// Validates a file by kind and adds the facts the check learned (a PDF's page count).
/// `reader` is the whole file, seekable; only `WellFormed` claims validity.
pub fn validate<R: Read + Seek>(kind: Kind, mut reader: R, size: u64, facts: &mut BTreeMap<String, String>) -> Verdict {
    let buffered = |r: R| io::BufReader::with_capacity(64 * 1024, r);
    let json_or_xml = |r: Result<(), String>| r.map_or_else(Verdict::Invalid, |()| Verdict::WellFormed);
    match kind {
        Kind::Png => image_check::png(buffered(reader)),
        Kind::Jpeg => {
            let (verdict, frame) = crate::analysis::jpeg_scan::check_sized(buffered(reader));
            // A frame header past the head (behind a large Exif or ICC segment) is found here.
            if let (Some(f), false) = (frame, facts.contains_key("width")) {
                put(facts, "bit_depth", f.precision);
                put(facts, "height", f.height);
                put(facts, "width", f.width);
                put(facts, "components", f.components);
            }
            verdict
        }
        Kind::Gif => image_check::gif(buffered(reader)),
        Kind::Tiff => image_check::tiff(buffered(reader)),
        Kind::Bmp => image_check::bmp(buffered(reader), size),
        Kind::Webp => image_check::webp(buffered(reader)),
        Kind::Jp2 => crate::analysis::jp2::check(buffered(reader), size),
        Kind::Wav => crate::analysis::audio_chunks::check_wav(buffered(reader), size),
        Kind::Aiff => crate::analysis::audio_chunks::check_aiff(buffered(reader), size),
        Kind::Pdf => {
            let found = pdf::check(buffered(reader), size);
            if let Some(pages) = found.pages {
                put(facts, "page_count", pages);
            }
            if found.encrypted {
                put(facts, "encrypted", true);
            }
            found.verdict
        }
        Kind::Json => json_or_xml(
            serde_json::from_reader::<_, serde::de::IgnoredAny>(buffered(reader))
                .map(|_| ())
                .map_err(|e| e.to_string()),
        ),
        Kind::Xml => json_or_xml(validate_xml(&mut reader)),
        Kind::Zip => validate_zip(reader, None).unwrap_or_else(Verdict::Invalid),
        Kind::ZipPackage(p) => validate_zip(reader, Some(p)).unwrap_or_else(Verdict::Invalid),
        _ => Verdict::Limited("no validator for this format".into()),
    }
}

/// Well-formed, or why not: the reason is the validation event's outcome detail, a finding
/// about the file rather than a fault of Vellum's.
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

/// A zip is well-formed when its index reads and every entry inflates to its CRC; encrypted
/// entries cannot be inflated, and the verdict says how many were left. The error is the
/// index that cannot be read, in the words the validation event records.
pub fn validate_zip<R: Read + Seek>(reader: R, package: Option<ZipPackage>) -> Result<Verdict, String> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| e.to_string())?;
    if let Some(package) = package {
        for (part, first_with) in package.required() {
            let Some(index) = zip.index_for_name(part) else {
                return Ok(Verdict::Invalid(format!("{} requires the part {part}, which it lacks", package.name())));
            };
            let Some(media_type) = first_with else { continue };
            let mut entry = zip.by_index(index).map_err(|e| format!("{part}: {e}"))?;
            if index != 0 || entry.compression() != zip::CompressionMethod::Stored {
                return Ok(Verdict::Invalid(format!("{}'s {part} is not its first entry, stored", package.name())));
            }
            let mut said = String::new();
            (&mut entry).take(256).read_to_string(&mut said).map_err(|e| format!("{part}: {e}"))?;
            if !said.starts_with(media_type) {
                return Ok(Verdict::Invalid(format!(
                    "{}'s {part} says '{}', not {media_type}",
                    package.name(),
                    said.escape_debug()
                )));
            }
        }
    }
    let mut encrypted = 0;
    for i in 0..zip.len() {
        let mut entry = zip.by_index_raw(i).map_err(|e| format!("entry {i}: {e}"))?;
        if entry.encrypted() {
            encrypted += 1;
            continue;
        }
        drop(entry);
        entry = zip.by_index(i).map_err(|e| format!("entry {i}: {e}"))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().map(|n| n.to_string()).unwrap_or_default();
        io::copy(&mut entry, &mut io::sink()).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(if encrypted == 0 {
        Verdict::WellFormed
    } else {
        Verdict::Limited(format!(
            "the ZIP's index and its other entries were checked; {encrypted} encrypted entries were not inflated"
        ))
    })
}

/// What Vellum reads of a stored file itself: its properties, how many of them came before
/// any check, and its validator's verdict where its kind has one.
pub struct Examined {
    pub kind: Kind,
    pub traits: BTreeMap<String, String>,
    /// Properties read from the head and tail (a validator may add more, such as a PDF's
    /// page count from its page tree).
    pub own_properties: usize,
    pub verdict: Option<Verdict>,
}

impl Examined {
    /// The validation event every file gets: the validator's verdict where Vellum validates
    /// the file's kind, else "not performed", saying which format nothing validated. Its
    /// outcome, its detail (program and validator) and its note.
    pub fn validation_statement(&self, file: &File) -> (EventOutcome, String, String) {
        match (self.kind.validator(), &self.verdict) {
            (Some(validator), Some(verdict)) => {
                let (outcome, note) = match verdict {
                    Verdict::WellFormed => (EventOutcome::Pass, format!("well-formed {validator}")),
                    Verdict::Limited(what) => (EventOutcome::PartialPass, format!("limited check: {what}")),
                    Verdict::Invalid(why) => (EventOutcome::Fail, format!("not a well-formed {validator}: {why}")),
                };
                (
                    outcome,
                    format!("{}; validator=\"{validator}: {}\"", by_vellum(), self.kind.validation_method()),
                    note,
                )
            }
            _ => {
                let what = match &file.format {
                    Some(f) if !f.name.is_empty() => format!("{} ({})", f.name, f.puid),
                    Some(f) => f.puid.clone(),
                    None => "a file of no identified format".into(),
                };
                let note = format!("not performed: nothing validates {what}; Vellum validates {VALIDATED}");
                (EventOutcome::NotPerformed, format!("{}; validator=\"none\"", by_vellum()), note)
            }
        }
    }
}

/// The kinds Vellum's own validators read, as a "not performed" note names them.
const VALIDATED: &str =
    "PNG, JPEG, GIF, TIFF, BMP, WebP, JPEG 2000, PDF, WAV, AIFF, XML, JSON and ZIP (with the parts Office Open XML, OpenDocument and EPUB require)";

/// Reads the file's head and tail from the store for its properties, then validates it
/// where its kind has a validator, reading only what the check needs. A store that does not
/// answer is an error, never a verdict on the file.
pub fn examine(
    store: &std::sync::Arc<dyn crate::ports::ObjectStore>,
    key: &str,
    file: &File,
) -> crate::ports::PortResult<Examined> {
    let head = store.get_range(key, 0, HEAD as u64)?;
    let tail_start = file.size.saturating_sub(TAIL as u64);
    let tail = if tail_start == 0 { head.clone() } else { store.get_range(key, tail_start, TAIL as u64)? };
    let kind = Kind::of(file, &head);
    let mut traits = characteristics(kind, &head, &tail, file.size);
    let own_properties = traits.len();
    let verdict = match kind.validator() {
        Some(_) => {
            let mut reader = crate::io::ranged::RangedReader::new(store.clone(), key, file.size, 1 << 20);
            let verdict = validate(kind, &mut reader, file.size, &mut traits);
            if let Some(e) = reader.store_error.take() {
                return Err(e);
            }
            Some(verdict)
        }
        None => None,
    };
    Ok(Examined { kind, traits, own_properties, verdict })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file named as a format it is not (an empty `.pdf`, `GIF` and nothing more) is read
    /// without a panic: found by the random-tree intake test once kinds came from names.
    #[test]
    fn short_and_misnamed_files_are_read_without_panics() {
        let kinds = [
            Kind::Png,
            Kind::Jpeg,
            Kind::Gif,
            Kind::Tiff,
            Kind::Bmp,
            Kind::Webp,
            Kind::Jp2,
            Kind::Pdf,
            Kind::Wav,
            Kind::Aiff,
            Kind::Zip,
            Kind::ZipPackage(ZipPackage::OfficeOpenXml),
            Kind::ZipPackage(ZipPackage::Epub),
            Kind::Xml,
            Kind::Json,
            Kind::Text,
            Kind::Other,
        ];
        let heads: [&[u8]; 10] = [
            b"",
            b"\0\0\0\x0CjP  \r\n\x87\n\0\0\0\x14ftyp",
            b"\xFF\x4F\xFF\x51\0\x29",
            b"GIF",
            b"GIF89a",
            b"%PDF-",
            b"\x89PNG\r\n\x1a\n",
            b"\xFF\xD8\xFF",
            b"II*\0\xff\xff\xff\xff",
            b"RIFF\0\0\0\0WEBPVP8X",
        ];
        for kind in kinds {
            for head in heads {
                characteristics(kind, head, head, head.len() as u64);
                validate(kind, io::Cursor::new(head), head.len() as u64, &mut BTreeMap::new());
            }
        }
    }

    fn verdict(kind: Kind, bytes: &[u8]) -> Verdict {
        validate(kind, io::Cursor::new(bytes), bytes.len() as u64, &mut BTreeMap::new())
    }

    #[test]
    fn xml_and_json_well_formedness() {
        assert_eq!(verdict(Kind::Xml, b"<?xml version='1.0'?><a><b/></a>"), Verdict::WellFormed);
        assert!(matches!(verdict(Kind::Xml, b"<a><b></a>"), Verdict::Invalid(_)));
        assert!(matches!(verdict(Kind::Xml, b"<a/><b/>"), Verdict::Invalid(_)));
        assert_eq!(verdict(Kind::Json, b"{\"a\": [1, 2]}"), Verdict::WellFormed);
        assert!(matches!(verdict(Kind::Json, b"{\"a\": [1, 2}"), Verdict::Invalid(_)));
    }
}
