//! A PDF's structure, read as a reader does: `startxref`, the cross-reference sections (tables
//! and streams, with their `/Prev` chain), the trailer's `/Root`, and the page tree walked from
//! the catalog. The page count is the number of page leaves reached — not a `/Count` taken on
//! trust — and a tree that refers back to itself, a `/Count` that disagrees with the leaves, or
//! an object missing from where the cross-reference says it is makes the file not well-formed.
//!
//! Then every object the cross-reference names is read where it says, with the number it
//! says, and every stream's data is undone through its filters (Flate to its checksum, LZW,
//! ASCII85, ASCIIHex, RunLength; a JPEG image checked as a JPEG), each stream ending at its
//! /Length with `endstream`. What the pages draw (operators, fonts) is not interpreted, and
//! the verdict says so. Nesting, section chains and decoded sizes are bounded, so a hostile
//! file ends in an error, never in a stack overflow or an unbounded allocation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};

use crate::analysis::pdf_filters;
use crate::analysis::verdict::Verdict;

/// What the structure check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structure {
    pub verdict: Verdict,
    /// Page leaves in the page tree, when the tree could be walked.
    pub pages: Option<u64>,
    pub encrypted: bool,
}

const MAX_DEPTH: usize = 64;
const MAX_SECTIONS: usize = 4096;
const MAX_STREAM: u64 = 64 << 20;
const MAX_OBJECT: usize = 4 << 20;
/// Objects a file may name: far more than any real document holds.
const MAX_OBJECTS: usize = 4 << 20;
/// Bytes read and decoded from a file's streams in all; past it, streams are said not decoded.
const MAX_DECODED: u64 = 1 << 30;

/// What reading every object found.
#[derive(Default)]
struct AllObjects {
    objects: u64,
    streams: u64,
    /// JPEG (DCT) images checked.
    images: u64,
    /// Filters (or limits) behind which data was not decoded.
    not_undone: std::collections::BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Obj {
    Null,
    Bool,
    Int(i64),
    Real,
    Str,
    Name(Vec<u8>),
    Array(Vec<Obj>),
    Dict(BTreeMap<Vec<u8>, Obj>),
    Ref(u32),
    /// A stream: its dictionary and where its data starts in the file or object stream.
    Stream(BTreeMap<Vec<u8>, Obj>, u64),
}

impl Obj {
    fn dict(&self) -> Option<&BTreeMap<Vec<u8>, Obj>> {
        match self {
            Obj::Dict(d) | Obj::Stream(d, _) => Some(d),
            _ => None,
        }
    }
    fn int(&self) -> Option<i64> {
        match self {
            Obj::Int(i) => Some(*i),
            _ => None,
        }
    }
}

type Fail = String;

struct Lexer<'a> {
    b: &'a [u8],
    i: usize,
    /// The bytes are the whole input (an object stream, or the file's end): running off them
    /// ends the input rather than asking for more.
    complete: bool,
}

fn is_white(c: u8) -> bool {
    matches!(c, 0 | b'\t' | b'\n' | 0x0c | b'\r' | b' ')
}
fn is_delim(c: u8) -> bool {
    matches!(c, b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%')
}

/// Parsing ran off the end of the bytes in hand: read more and try again.
const SHORT: &str = "\0short";

impl<'a> Lexer<'a> {
    fn new(b: &'a [u8], complete: bool) -> Self {
        Self { b, i: 0, complete }
    }

    /// True when the bytes in hand ran out and more could be read.
    fn short(&self) -> bool {
        self.i >= self.b.len() && !self.complete
    }

    fn skip(&mut self) {
        while self.i < self.b.len() {
            let c = self.b[self.i];
            if is_white(c) {
                self.i += 1;
            } else if c == b'%' {
                while self.i < self.b.len() && !matches!(self.b[self.i], b'\n' | b'\r') {
                    self.i += 1;
                }
            } else {
                break;
            }
        }
    }

    fn word(&mut self) -> &'a [u8] {
        self.skip();
        let start = self.i;
        while self.i < self.b.len() && !is_white(self.b[self.i]) && !is_delim(self.b[self.i]) {
            self.i += 1;
        }
        &self.b[start..self.i]
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip();
        self.b.get(self.i).copied()
    }

    fn expect(&mut self, word: &[u8]) -> Result<(), Fail> {
        let at = self.i;
        let got = self.word();
        if got == word {
            Ok(())
        } else if self.short() {
            Err(SHORT.into())
        } else {
            self.i = at;
            Err(format!("expected '{}', found '{}'", String::from_utf8_lossy(word), String::from_utf8_lossy(got)))
        }
    }

    fn object(&mut self, depth: usize) -> Result<Obj, Fail> {
        if depth > MAX_DEPTH {
            return Err(format!("objects are nested more than {MAX_DEPTH} deep"));
        }
        let Some(c) = self.peek() else { return Err(SHORT.into()) };
        match c {
            b'/' => {
                self.i += 1;
                let start = self.i;
                while self.i < self.b.len() && !is_white(self.b[self.i]) && !is_delim(self.b[self.i]) {
                    self.i += 1;
                }
                Ok(Obj::Name(self.b[start..self.i].to_vec()))
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    match self.peek() {
                        None => return Err(SHORT.into()),
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Obj::Array(items));
                        }
                        _ => items.push(self.object(depth + 1)?),
                    }
                }
            }
            b'<' if self.b.get(self.i + 1) == Some(&b'<') => {
                self.i += 2;
                let mut dict = BTreeMap::new();
                loop {
                    match self.peek() {
                        None => return Err(SHORT.into()),
                        Some(b'>') => {
                            if self.b.get(self.i + 1) != Some(&b'>') {
                                return Err(SHORT.into());
                            }
                            self.i += 2;
                            break;
                        }
                        Some(b'/') => {
                            let Obj::Name(key) = self.object(depth + 1)? else { unreachable!("a name") };
                            let value = self.object(depth + 1)?;
                            dict.insert(key, value);
                        }
                        Some(other) => return Err(format!("a dictionary key is not a name (byte {other:#04x})")),
                    }
                }
                // A stream follows its dictionary.
                let at = self.i;
                let next = self.word();
                if self.short() {
                    return Err(SHORT.into());
                }
                if next == b"stream" {
                    if self.b.get(self.i) == Some(&b'\r') {
                        self.i += 1;
                    }
                    if self.b.get(self.i) == Some(&b'\n') {
                        self.i += 1;
                    }
                    return Ok(Obj::Stream(dict, self.i as u64));
                }
                self.i = at;
                Ok(Obj::Dict(dict))
            }
            b'<' => {
                let end = memchr::memchr(b'>', &self.b[self.i..]).ok_or(SHORT)?;
                self.i += end + 1;
                Ok(Obj::Str)
            }
            b'(' => {
                let mut level = 0usize;
                while self.i < self.b.len() {
                    match self.b[self.i] {
                        b'\\' => self.i += 1,
                        b'(' => level += 1,
                        b')' => {
                            level -= 1;
                            if level == 0 {
                                self.i += 1;
                                return Ok(Obj::Str);
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
                Err(SHORT.into())
            }
            _ => {
                let at = self.i;
                let w = self.word();
                if self.short() {
                    return Err(SHORT.into());
                }
                match w {
                    b"null" => Ok(Obj::Null),
                    b"true" | b"false" => Ok(Obj::Bool),
                    _ => {
                        let text = std::str::from_utf8(w).unwrap_or("");
                        if let Ok(n) = text.parse::<i64>() {
                            // `N G R` is a reference.
                            let after = self.i;
                            let gen = self.word();
                            let is_ref = !gen.is_empty() && gen.iter().all(u8::is_ascii_digit) && self.word() == b"R";
                            if self.short() {
                                return Err(SHORT.into());
                            }
                            if is_ref {
                                return Ok(Obj::Ref(u32::try_from(n).map_err(|_| "a negative object number")?));
                            }
                            self.i = after;
                            Ok(Obj::Int(n))
                        } else if text.parse::<f64>().is_ok() || text.starts_with('.') || text.starts_with("-.") {
                            Ok(Obj::Real)
                        } else {
                            self.i = at;
                            Err(format!("unexpected '{}'", String::from_utf8_lossy(&w[..w.len().min(20)])))
                        }
                    }
                }
            }
        }
    }
}

type ObjectStream = (Vec<u8>, Vec<(u32, usize)>);

#[derive(Clone, Copy)]
enum Entry {
    At(u64),
    InStream(u32, u32),
}

struct Doc<R: Read + Seek> {
    r: R,
    size: u64,
    xref: HashMap<u32, Entry>,
    trailer: BTreeMap<Vec<u8>, Obj>,
    /// Object streams read so far: their data and (object, offset) index.
    streams: HashMap<u32, ObjectStream>,
}

/// The structure check: never panics, reads only what the structure needs.
pub fn check<R: Read + Seek>(r: R, size: u64) -> Structure {
    let mut doc = Doc { r, size, xref: HashMap::new(), trailer: BTreeMap::new(), streams: HashMap::new() };
    let mut s = Structure { verdict: Verdict::WellFormed, pages: None, encrypted: false };
    match doc.walk(&mut s) {
        Ok(()) => {}
        Err(why) if why == SHORT => s.verdict = Verdict::Invalid("an object runs past the end of the file".into()),
        Err(why) => s.verdict = Verdict::Invalid(why),
    }
    s
}

impl<R: Read + Seek> Doc<R> {
    fn read_at(&mut self, at: u64, len: usize) -> Result<Vec<u8>, Fail> {
        if at >= self.size {
            return Err(format!("offset {at} is past the end of the file ({} bytes)", self.size));
        }
        let len = len.min((self.size - at) as usize);
        let mut buf = vec![0u8; len];
        self.r.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
        self.r.read_exact(&mut buf).map_err(|e| e.to_string())?;
        Ok(buf)
    }

    /// Parses with `f` from `at`, reading more when the object runs past the bytes in hand.
    fn parse_at<T>(&mut self, at: u64, mut f: impl FnMut(&mut Lexer) -> Result<T, Fail>) -> Result<T, Fail> {
        let mut len = 4096usize;
        loop {
            let buf = self.read_at(at, len)?;
            let whole = buf.len() as u64 == self.size - at;
            match f(&mut Lexer::new(&buf, whole)) {
                Err(e) if e == SHORT && !whole && len < MAX_OBJECT => len *= 4,
                other => return other,
            }
        }
    }

    fn walk(&mut self, s: &mut Structure) -> Result<(), Fail> {
        let tail_at = self.size.saturating_sub(2048);
        let tail = self.read_at(tail_at, 2048)?;
        let Some(sx) = memchr::memmem::rfind(&tail, b"startxref") else {
            return Err("there is no startxref near its end".into());
        };
        if memchr::memmem::find(&tail[sx..], b"%%EOF").is_none() {
            return Err("there is no %%EOF marker after its startxref: it may be truncated".into());
        }
        let mut lx = Lexer::new(&tail[sx + 9..], true);
        let start: u64 = std::str::from_utf8(lx.word())
            .ok()
            .and_then(|w| w.parse().ok())
            .ok_or("startxref is not followed by an offset")?;
        self.sections(start)?;
        s.encrypted = self.trailer.contains_key(&b"Encrypt"[..]);
        let root = match self.trailer.get(&b"Root"[..]) {
            Some(Obj::Ref(n)) => *n,
            _ => return Err("its trailer has no /Root reference to a catalog".into()),
        };
        let catalog = self.object(root)?;
        let pages = match catalog.dict().and_then(|d| d.get(&b"Pages"[..])) {
            Some(Obj::Ref(n)) => *n,
            _ => return Err(format!("its catalog (object {root}) has no /Pages reference")),
        };
        let (leaves, declared) = match self.page_tree(pages) {
            Ok(found) => found,
            Err(why) if s.encrypted && why.contains("object stream") => {
                s.verdict = Verdict::Limited(
                    "the PDF's cross-reference and trailer were read; it is encrypted, so its page tree \
                     (in encrypted object streams) was not"
                        .into(),
                );
                return Ok(());
            }
            Err(why) => return Err(why),
        };
        if declared != Some(leaves) {
            let said = declared.map_or("no".to_string(), |d| d.to_string());
            return Err(format!("its page tree's root declares {said} pages (/Count) but holds {leaves}"));
        }
        s.pages = Some(leaves);
        let read = self.every_object(s.encrypted)?;
        let mut said = format!(
            "the PDF's cross-reference sections, trailer, catalog and page tree are consistent; its {} \
             objects are where the cross-reference says, with their numbers",
            read.objects
        );
        if s.encrypted {
            said.push_str("; it is encrypted, so its streams were not decoded");
        } else {
            said.push_str(&format!("; its {} streams decode through their filters", read.streams));
            if read.images > 0 {
                said.push_str(&format!(" and its {} JPEG images are well-formed", read.images));
            }
            if !read.not_undone.is_empty() {
                let names: Vec<&str> = read.not_undone.iter().map(String::as_str).collect();
                said.push_str(&format!(" (data behind /{} is not decoded here)", names.join(", /")));
            }
        }
        said.push_str("; what the pages draw (content operators, fonts) is not interpreted");
        s.verdict = Verdict::Limited(said);
        Ok(())
    }

    /// Every object the cross-reference names, read where it says with the number it says,
    /// and (unless the file is encrypted) every stream's data undone through its filters.
    fn every_object(&mut self, encrypted: bool) -> Result<AllObjects, Fail> {
        let mut entries: Vec<(u32, Entry)> = self.xref.iter().map(|(n, e)| (*n, *e)).collect();
        entries.sort_by_key(|(n, _)| *n);
        let mut read = AllObjects::default();
        if entries.len() > MAX_OBJECTS {
            return Err(format!("its cross-reference names more than {MAX_OBJECTS} objects"));
        }
        let mut decoded_bytes = 0u64;
        // Each object referred to, and the first object referring to it.
        let mut refs: BTreeMap<u32, u32> = BTreeMap::new();
        for (num, entry) in entries {
            read.objects += 1;
            let Entry::At(at) = entry else {
                let obj = self.object(num)?;
                referred_to(&obj, num, &mut refs);
                continue;
            };
            let (obj, _) = self.indirect_at(at, Some(num)).map_err(|e| match e {
                e if e == SHORT || e.contains("is not at the offset") => e,
                e => format!("object {num} cannot be read at the offset {at} its cross-reference gives: {e}"),
            })?;
            referred_to(&obj, num, &mut refs);
            let Obj::Stream(dict, rel) = obj else { continue };
            let data_at = at + rel;
            let len = self.stream_length(&dict)?;
            if data_at.saturating_add(len) > self.size {
                return Err(format!("stream object {num}'s /Length ({len}) runs past the end of the file"));
            }
            let after = self.read_at(data_at + len, 64).unwrap_or_default();
            let after = &after[after.iter().position(|c| !is_white(*c)).unwrap_or(after.len())..];
            if !after.starts_with(b"endstream") {
                return Err(format!("stream object {num}'s data does not end at its /Length ({len}) with endstream"));
            }
            if encrypted {
                continue;
            }
            read.streams += 1;
            if len > MAX_STREAM || decoded_bytes > MAX_DECODED {
                read.not_undone.insert("streams past the decoding budget".into());
                continue;
            }
            let raw = self.read_at(data_at, len as usize)?;
            decoded_bytes += len;
            self.undo_filters(num, &dict, raw, &mut read, &mut decoded_bytes)?;
        }
        if let Some((to, from)) = refs.iter().find(|(to, _)| !self.xref.contains_key(to)) {
            return Err(format!("object {from} refers to object {to}, which is not in the cross-reference"));
        }
        Ok(read)
    }

    /// A stream's data through its filter chain; an image it ends in is checked as one.
    fn undo_filters(
        &mut self,
        num: u32,
        dict: &BTreeMap<Vec<u8>, Obj>,
        raw: Vec<u8>,
        read: &mut AllObjects,
        decoded_bytes: &mut u64,
    ) -> Result<(), Fail> {
        let filters: Vec<Vec<u8>> = match dict.get(&b"Filter"[..]) {
            None | Some(Obj::Null) => return Ok(()),
            Some(Obj::Name(n)) => vec![n.clone()],
            Some(Obj::Array(a)) => a
                .iter()
                .map(|f| match f {
                    Obj::Name(n) => Ok(n.clone()),
                    _ => Err(format!("stream object {num}'s /Filter holds something that is not a name")),
                })
                .collect::<Result<_, _>>()?,
            Some(Obj::Ref(_)) => {
                read.not_undone.insert("filters given by reference".into());
                return Ok(());
            }
            _ => return Err(format!("stream object {num}'s /Filter is neither a name nor an array")),
        };
        let params: Vec<Option<&BTreeMap<Vec<u8>, Obj>>> = match dict.get(&b"DecodeParms"[..]) {
            Some(Obj::Dict(p)) => vec![Some(p)],
            Some(Obj::Array(a)) => a.iter().map(Obj::dict).collect(),
            _ => Vec::new(),
        };
        let mut data = raw;
        for (i, filter) in filters.iter().enumerate() {
            let early = params
                .get(i)
                .copied()
                .flatten()
                .and_then(|p| p.get(&b"EarlyChange"[..]))
                .and_then(Obj::int)
                .map(|e| pdf_filters::EarlyChange(e != 0));
            let name = String::from_utf8_lossy(filter).into_owned();
            match pdf_filters::undo(filter, early.as_ref(), &data, MAX_STREAM as usize)
                .map_err(|why| format!("stream object {num} (/{name}) does not decode: {why}"))?
            {
                pdf_filters::Undone::Bytes(out) => {
                    *decoded_bytes += out.len() as u64;
                    data = out;
                }
                pdf_filters::Undone::Image("DCT") => {
                    if let Verdict::Invalid(why) = crate::analysis::jpeg_scan::check(std::io::Cursor::new(&data)) {
                        return Err(format!("the JPEG image in stream object {num} is not well-formed: {why}"));
                    }
                    read.images += 1;
                    return Ok(());
                }
                pdf_filters::Undone::Image(_) => {
                    read.not_undone.insert(name);
                    return Ok(());
                }
                pdf_filters::Undone::NotUndone(filter) => {
                    read.not_undone.insert(filter);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn stream_length(&mut self, dict: &BTreeMap<Vec<u8>, Obj>) -> Result<u64, Fail> {
        let len = match dict.get(&b"Length"[..]) {
            Some(Obj::Int(n)) => *n,
            Some(Obj::Ref(r)) => self.object(*r)?.int().ok_or("a stream's /Length is not a number")?,
            _ => return Err("a stream has no /Length".into()),
        };
        u64::try_from(len).map_err(|_| "a negative stream /Length".into())
    }

    fn sections(&mut self, first: u64) -> Result<(), Fail> {
        let mut seen = HashSet::new();
        let mut next = vec![first];
        while let Some(at) = next.pop() {
            if !seen.insert(at) {
                continue;
            }
            if seen.len() > MAX_SECTIONS {
                return Err(format!("more than {MAX_SECTIONS} cross-reference sections"));
            }
            let trailer = self.section(at)?;
            if let Some(prev) = trailer.get(&b"Prev"[..]).and_then(Obj::int) {
                next.push(u64::try_from(prev).map_err(|_| "a negative /Prev offset")?);
            }
            // A hybrid file's table names a stream with the entries the table leaves out; it
            // comes before /Prev in precedence, so it is read next.
            if let Some(stm) = trailer.get(&b"XRefStm"[..]).and_then(Obj::int) {
                next.push(u64::try_from(stm).map_err(|_| "a negative /XRefStm offset")?);
            }
            for (k, v) in trailer {
                self.trailer.entry(k).or_insert(v);
            }
        }
        Ok(())
    }

    /// Reads one cross-reference section (table or stream); the newest entry for an object wins.
    fn section(&mut self, at: u64) -> Result<BTreeMap<Vec<u8>, Obj>, Fail> {
        let head = self.read_at(at, 64).map_err(|_| format!("its cross-reference offset {at} is outside the file"))?;
        let trimmed = &head[head.iter().position(|c| !is_white(*c)).unwrap_or(0)..];
        if trimmed.starts_with(b"xref") {
            return self.table(at);
        }
        let (obj, _) = self
            .indirect_at(at, None)
            .map_err(|e| format!("its cross-reference offset {at} points to neither a table nor a stream: {e}"))?;
        let Obj::Stream(dict, data_at) = obj else {
            return Err(format!("its cross-reference offset {at} points to an object that is not a stream"));
        };
        let data = self.stream_data(&dict, at + data_at)?;
        let w: Vec<usize> = match dict.get(&b"W"[..]) {
            Some(Obj::Array(a)) if a.len() == 3 => a
                .iter()
                .map(|v| v.int().and_then(|i| usize::try_from(i).ok()).filter(|&i| i <= 8))
                .collect::<Option<_>>(),
            _ => None,
        }
        .ok_or("a cross-reference stream has no valid /W")?;
        let row = w.iter().sum::<usize>().max(1);
        let index: Vec<i64> = match dict.get(&b"Index"[..]) {
            Some(Obj::Array(a)) => a.iter().map(Obj::int).collect::<Option<_>>().ok_or("a bad /Index")?,
            _ => vec![0, dict.get(&b"Size"[..]).and_then(Obj::int).ok_or("a cross-reference stream has no /Size")?],
        };
        let field = |r: &[u8], from: usize, width: usize, default: u64| {
            if width == 0 {
                default
            } else {
                r[from..from + width].iter().fold(0u64, |v, b| v << 8 | *b as u64)
            }
        };
        let mut rows = data.chunks_exact(row);
        for pair in index.chunks(2) {
            let [start, count] = pair else { return Err("an odd /Index".into()) };
            for n in 0..*count {
                let Some(r) = rows.next() else {
                    return Err("a cross-reference stream is shorter than its /Index".into());
                };
                let num = u32::try_from(start + n).map_err(|_| "an object number out of range")?;
                let (kind, a, b) = (field(r, 0, w[0], 1), field(r, w[0], w[1], 0), field(r, w[0] + w[1], w[2], 0));
                let entry = match kind {
                    1 => Entry::At(a),
                    2 => Entry::InStream(a as u32, b as u32),
                    _ => continue,
                };
                self.xref.entry(num).or_insert(entry);
            }
        }
        Ok(dict)
    }

    fn table(&mut self, at: u64) -> Result<BTreeMap<Vec<u8>, Obj>, Fail> {
        let mut found = Vec::new();
        let trailer = self.parse_at(at, |lx| {
            found.clear();
            lx.expect(b"xref")?;
            loop {
                let w = lx.word();
                if w == b"trailer" {
                    return match lx.object(0)? {
                        Obj::Dict(d) => Ok(d),
                        _ => Err("its trailer is not a dictionary".into()),
                    };
                }
                if lx.short() || w.is_empty() {
                    return Err(if lx.short() {
                        SHORT.into()
                    } else {
                        "its cross-reference table has no trailer".into()
                    });
                }
                let start: u32 = std::str::from_utf8(w)
                    .ok()
                    .and_then(|w| w.parse().ok())
                    .ok_or_else(|| format!("a cross-reference table line reads '{}'", String::from_utf8_lossy(w)))?;
                let count: u32 = std::str::from_utf8(lx.word()).ok().and_then(|w| w.parse().ok()).ok_or(SHORT)?;
                for n in 0..count {
                    let offset = lx.word();
                    let _gen = lx.word();
                    let kind = lx.word();
                    if lx.short() {
                        return Err(SHORT.into());
                    }
                    if kind == b"n" {
                        let offset = std::str::from_utf8(offset)
                            .ok()
                            .and_then(|o| o.parse::<u64>().ok())
                            .ok_or("a cross-reference entry has no offset")?;
                        found.push((start.saturating_add(n), offset));
                    } else if kind != b"f" {
                        return Err("a cross-reference entry is neither 'n' nor 'f'".into());
                    }
                }
            }
        })?;
        for (num, offset) in found {
            self.xref.entry(num).or_insert(Entry::At(offset));
        }
        Ok(trailer)
    }

    /// Parses `N G obj <object>` at `at`; checks the number when it is known.
    fn indirect_at(&mut self, at: u64, num: Option<u32>) -> Result<(Obj, u64), Fail> {
        self.parse_at(at, |lx| {
            let n = lx.word();
            let _gen = lx.word();
            lx.expect(b"obj")?;
            if let Some(want) = num {
                if n != want.to_string().as_bytes() {
                    return Err(format!("object {want} is not at the offset {at} its cross-reference gives"));
                }
            }
            lx.object(0)
        })
        .map(|obj| (obj, at))
    }

    fn stream_data(&mut self, dict: &BTreeMap<Vec<u8>, Obj>, at: u64) -> Result<Vec<u8>, Fail> {
        let len = self.stream_length(dict)?;
        if len > MAX_STREAM || at.saturating_add(len) > self.size {
            return Err(format!("a stream's /Length ({len}) runs past the end of the file"));
        }
        let raw = self.read_at(at, len as usize)?;
        let filter = match dict.get(&b"Filter"[..]) {
            None => return Ok(raw),
            Some(Obj::Name(n)) => n.clone(),
            Some(Obj::Array(a)) if a.len() == 1 => match &a[0] {
                Obj::Name(n) => n.clone(),
                _ => return Err("a stream's /Filter is not a name".into()),
            },
            _ => return Err("a structure stream uses a filter chain this check does not decode".into()),
        };
        if filter != b"FlateDecode" {
            return Err(format!(
                "a structure stream uses /{} (this check decodes /FlateDecode only)",
                String::from_utf8_lossy(&filter)
            ));
        }
        let mut data = Vec::new();
        flate2::read::ZlibDecoder::new(&raw[..])
            .take(MAX_STREAM + 1)
            .read_to_end(&mut data)
            .map_err(|e| format!("a structure stream does not inflate: {e}"))?;
        if data.len() as u64 > MAX_STREAM {
            return Err(format!("a structure stream inflates to more than {} MiB", MAX_STREAM >> 20));
        }
        let params = match dict.get(&b"DecodeParms"[..]) {
            Some(Obj::Dict(p)) => Some(p),
            Some(Obj::Array(a)) => a.first().and_then(Obj::dict),
            _ => None,
        };
        match params {
            Some(p) => unpredict(data, p),
            None => Ok(data),
        }
    }

    fn object(&mut self, num: u32) -> Result<Obj, Fail> {
        match self.xref.get(&num).copied() {
            None => Err(format!("object {num} is referenced but not in the cross-reference")),
            Some(Entry::At(at)) => Ok(self.indirect_at(at, Some(num))?.0),
            Some(Entry::InStream(stream, index)) => {
                if !self.streams.contains_key(&stream) {
                    let (obj, at) = match self.xref.get(&stream).copied() {
                        Some(Entry::At(at)) => self.indirect_at(at, Some(stream))?,
                        _ => return Err(format!("object stream {stream} is not in the cross-reference")),
                    };
                    let Obj::Stream(dict, rel) = obj else {
                        return Err(format!("object stream {stream} is not a stream"));
                    };
                    let data = self
                        .stream_data(&dict, at + rel)
                        .map_err(|e| format!("object stream {stream} cannot be read: {e}"))?;
                    let n = dict.get(&b"N"[..]).and_then(Obj::int).unwrap_or(0).clamp(0, 1 << 20) as usize;
                    let first = dict.get(&b"First"[..]).and_then(Obj::int).unwrap_or(0).max(0) as usize;
                    let mut lx = Lexer::new(&data, true);
                    let mut offsets = Vec::with_capacity(n.min(4096));
                    for _ in 0..n {
                        let (Some(o), Some(off)) = (lx.object(0)?.int(), lx.object(0)?.int()) else {
                            return Err(format!("object stream {stream}'s header is not number pairs"));
                        };
                        offsets.push((o as u32, first + off.max(0) as usize));
                    }
                    self.streams.insert(stream, (data, offsets));
                }
                let (data, offsets) = &self.streams[&stream];
                let (o, off) = *offsets
                    .get(index as usize)
                    .ok_or_else(|| format!("object {num} is not in object stream {stream}"))?;
                if o != num || off >= data.len() {
                    return Err(format!("object stream {stream} does not hold object {num} where it says"));
                }
                let mut lx = Lexer::new(&data[off..], true);
                lx.object(0).map_err(|e| if e == SHORT { format!("object {num} is cut short") } else { e })
            }
        }
    }

    /// Walks the tree from its root: (page leaves, the root's /Count).
    fn page_tree(&mut self, root: u32) -> Result<(u64, Option<u64>), Fail> {
        let mut seen = HashSet::new();
        let mut stack = vec![root];
        let mut leaves = 0u64;
        let mut declared = None;
        while let Some(num) = stack.pop() {
            if !seen.insert(num) {
                return Err(format!("its page tree refers back to object {num}: it is not a tree"));
            }
            let node = self.object(num)?;
            let dict = node.dict().ok_or_else(|| format!("page tree node {num} is not a dictionary"))?;
            let kind = match dict.get(&b"Type"[..]) {
                Some(Obj::Name(t)) => t.clone(),
                _ if dict.contains_key(&b"Kids"[..]) => b"Pages".to_vec(),
                _ => b"Page".to_vec(),
            };
            if num == root {
                declared = dict.get(&b"Count"[..]).and_then(Obj::int).and_then(|c| u64::try_from(c).ok());
            }
            match &kind[..] {
                b"Page" => leaves += 1,
                b"Pages" => {
                    let Some(Obj::Array(kids)) = dict.get(&b"Kids"[..]) else {
                        return Err(format!("page tree node {num} has no /Kids array"));
                    };
                    for kid in kids.iter().rev() {
                        match kid {
                            Obj::Ref(k) => stack.push(*k),
                            _ => return Err(format!("page tree node {num} has a kid that is not a reference")),
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "page tree node {num} is of /Type /{}, not /Pages or /Page",
                        String::from_utf8_lossy(other)
                    ))
                }
            }
        }
        Ok((leaves, declared))
    }
}

/// Notes every reference inside `obj` (object `from`), keeping the first referrer of each.
fn referred_to(obj: &Obj, from: u32, refs: &mut BTreeMap<u32, u32>) {
    match obj {
        Obj::Ref(to) => {
            refs.entry(*to).or_insert(from);
        }
        Obj::Array(items) => items.iter().for_each(|o| referred_to(o, from, refs)),
        Obj::Dict(d) | Obj::Stream(d, _) => d.values().for_each(|o| referred_to(o, from, refs)),
        _ => {}
    }
}

/// Undoes a PNG predictor (10–15), as cross-reference streams use.
fn unpredict(data: Vec<u8>, params: &BTreeMap<Vec<u8>, Obj>) -> Result<Vec<u8>, Fail> {
    let get = |k: &[u8], default: i64| params.get(k).and_then(Obj::int).unwrap_or(default);
    let predictor = get(b"Predictor", 1);
    if predictor < 10 {
        return if predictor == 1 { Ok(data) } else { Err(format!("predictor {predictor} is not decoded")) };
    }
    let (colors, bits, columns) = (get(b"Colors", 1), get(b"BitsPerComponent", 8), get(b"Columns", 1));
    let bpp = usize::try_from((colors * bits).div_euclid(8).max(1)).map_err(|_| "bad predictor parameters")?;
    let row = usize::try_from((colors * bits * columns + 7) / 8).map_err(|_| "bad predictor parameters")?;
    if row == 0 || row > 1 << 20 {
        return Err("bad predictor parameters".into());
    }
    let mut out = Vec::with_capacity(data.len());
    let mut prev = vec![0u8; row];
    for chunk in data.chunks(row + 1) {
        if chunk.len() < row + 1 {
            break;
        }
        let (filter, src) = (chunk[0], &chunk[1..]);
        let mut cur = src.to_vec();
        for i in 0..row {
            let left = if i >= bpp { cur[i - bpp] } else { 0 };
            let up = prev[i];
            let up_left = if i >= bpp { prev[i - bpp] } else { 0 };
            let add = match filter {
                0 => 0,
                1 => left,
                2 => up,
                3 => ((left as u16 + up as u16) / 2) as u8,
                4 => {
                    let p = left as i16 + up as i16 - up_left as i16;
                    let (pa, pb, pc) = ((p - left as i16).abs(), (p - up as i16).abs(), (p - up_left as i16).abs());
                    if pa <= pb && pa <= pc {
                        left
                    } else if pb <= pc {
                        up
                    } else {
                        up_left
                    }
                }
                f => return Err(format!("PNG predictor filter {f} in a structure stream")),
            };
            cur[i] = cur[i].wrapping_add(add);
        }
        out.extend_from_slice(&cur);
        prev = cur;
    }
    Ok(out)
}
