//! PRONOM format identification from DROID's signature files, in Rust: internal signatures
//! (byte sequences anchored at the beginning or end of a file, or floating, with offsets,
//! wildcards and alternatives), priorities between formats, container signatures for
//! ZIP- and OLE2-based formats, and an extension-only guess marked tentative.
//!
//! Like DROID and fido, signatures are matched against a window of the file: its first and
//! last [`WINDOW`] bytes (the whole file when it is small).

mod error;

pub use error::SignatureError;

mod builtin;
pub mod container;
pub mod object;
pub mod pattern;

use std::collections::{BTreeSet, HashMap};

use regex::bytes::Regex;

pub use container::{ContainerKind, ContainerSource};
pub use object::{identify_object, identify_reader};

use crate::model::FormatId;

/// Bytes read from each end of a file for matching.
pub const WINDOW: usize = 128 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    Bof,
    Eof,
    Var,
}

#[derive(Debug)]
struct ByteSequence {
    anchor: Anchor,
    /// Bytes to skip from the anchor before the regex applies (the first subsequence's
    /// minimum offset).
    skip: u64,
    /// For a BOF sequence that may start anywhere in a range after `skip`: how far (None:
    /// anywhere). Its regex is then unanchored.
    lead: Option<Option<u64>>,
    /// Literal bytes the sequence must start (BOF) or end (EOF) with at exactly `skip`:
    /// checked before the regex, which most files then never reach.
    literal: Vec<u8>,
    regex: LazyRegex,
    /// The longest match the regex can make, when bounded: an anchored sequence is matched
    /// against only that many bytes from its anchor, not the whole window (an EOF regex
    /// would otherwise scan the whole tail forward to find its end).
    reach: Option<usize>,
    /// The fewest bytes a match needs after `skip` from its anchor (a floating sequence:
    /// anywhere): a file shorter than `skip + min_len` cannot match.
    min_len: usize,
    /// Bytes every match contains (from the literals a match must start with): a file
    /// without one of them cannot match.
    required: ByteSet,
    /// An EOF sequence with an unbounded gap before the end: its regex (without the gap) is
    /// searched for anywhere in the tail.
    open_ended: bool,
    /// For floating sequences and BOF sequences with an open gap: the index in the
    /// identifier's set of such patterns.
    set_index: Option<usize>,
}

/// A sequence's regex, compiled the first time a file gets past the sequence's prefilter
/// and literal to it. Compiled for every sequence at load, the ~2,000 regexes held most of
/// the ~76 MB the signatures took (the floor under every peak of an ingest), while a
/// transfer's files reach a few dozen of them. Each is still compiled once at load, and
/// dropped, so a signature that cannot be compiled is skipped and reported there, not
/// found out in the middle of a transfer.
#[derive(Debug)]
struct LazyRegex {
    pattern: String,
    compiled: std::sync::OnceLock<Regex>,
}

impl LazyRegex {
    /// A pattern that compiles.
    fn checked(pattern: String) -> Result<Self, regex::Error> {
        drop(Self::compile(&pattern)?);
        Ok(Self { pattern, compiled: std::sync::OnceLock::new() })
    }

    fn compile(pattern: &str) -> Result<Regex, regex::Error> {
        regex::bytes::RegexBuilder::new(pattern).size_limit(64 << 20).build()
    }

    fn get(&self) -> &Regex {
        self.compiled
            .get_or_init(|| Self::compile(&self.pattern).expect("a signature's regex compiled when it was loaded"))
    }

    fn is_match(&self, haystack: &[u8]) -> bool {
        self.get().is_match(haystack)
    }

    fn find<'h>(&self, haystack: &'h [u8]) -> Option<regex::bytes::Match<'h>> {
        self.get().find(haystack)
    }

    fn as_str(&self) -> &str {
        &self.pattern
    }
}

/// Sequences that scan the whole window, matched all at once so that a file is read once
/// for all of them instead of once each.
#[derive(Debug, Default)]
pub(crate) struct Sets {
    /// Floating sequences, searched for anywhere in the head and the tail.
    floating: Option<regex::bytes::RegexSet>,
    /// BOF sequences of unbounded length (a gap of any size within them), anchored at the
    /// beginning.
    open_bof: Option<regex::bytes::RegexSet>,
}

/// One file as the matcher sees it; floating sequences are searched for all at once, the
/// first time a signature needs one.
pub(crate) struct FileView<'a> {
    head: &'a [u8],
    tail: &'a [u8],
    whole: bool,
    var_hits: std::cell::OnceCell<Vec<bool>>,
    open_bof_hits: std::cell::OnceCell<Vec<bool>>,
}

impl<'a> FileView<'a> {
    fn new(head: &'a [u8], tail: &'a [u8], whole: bool) -> Self {
        Self { head, tail, whole, var_hits: std::cell::OnceCell::new(), open_bof_hits: std::cell::OnceCell::new() }
    }
}

impl ByteSequence {
    fn matches(&self, view: &FileView<'_>, sets: &Sets) -> bool {
        let skip = self.skip as usize;
        match self.anchor {
            Anchor::Bof => {
                let Some(rest) = view.head.get(skip..) else { return false };
                match self.lead {
                    None if !rest.starts_with(&self.literal) => false,
                    None => match (&sets.open_bof, self.set_index) {
                        (Some(set), Some(i)) => view.open_bof_hits.get_or_init(|| hits(set, view.head))[i],
                        _ => self.regex.is_match(self.near_start(rest)),
                    },
                    Some(None) => self.regex.is_match(rest),
                    // The leftmost match starts earliest: if it starts too late, all do.
                    // A match starting in range ends within `reach` of its start.
                    Some(Some(max)) => {
                        let last = (max as usize).min(rest.len());
                        let window = match self.reach {
                            Some(reach) => &rest[..last.saturating_add(reach).min(rest.len())],
                            None => rest,
                        };
                        self.regex.find(window).is_some_and(|m| m.start() <= last)
                    }
                }
            }
            Anchor::Eof => {
                let Some(rest) = view.tail.len().checked_sub(skip).map(|end| &view.tail[..end]) else { return false };
                if self.open_ended {
                    return self.regex.is_match(rest);
                }
                let near_end = match self.reach {
                    Some(reach) => &rest[rest.len().saturating_sub(reach)..],
                    None => rest,
                };
                rest.ends_with(&self.literal) && self.regex.is_match(near_end)
            }
            Anchor::Var => match (&sets.floating, self.set_index) {
                (Some(set), Some(i)) => view.var_hits.get_or_init(|| {
                    let mut found = hits(set, view.head);
                    if !view.whole {
                        for (f, t) in found.iter_mut().zip(hits(set, view.tail)) {
                            *f |= t;
                        }
                    }
                    found
                })[i],
                _ => self.regex.is_match(view.head) || (!view.whole && self.regex.is_match(view.tail)),
            },
        }
    }

    fn near_start<'h>(&self, rest: &'h [u8]) -> &'h [u8] {
        match self.reach {
            Some(reach) => &rest[..reach.min(rest.len())],
            None => rest,
        }
    }

    /// Cheapest first: a literal check, then anchored regexes, then floating ones.
    /// The shortest file this sequence can match in.
    fn shortest_file(&self) -> usize {
        (self.skip as usize).saturating_add(self.min_len)
    }

    fn cost(&self) -> u8 {
        match (self.anchor, self.literal.is_empty()) {
            (Anchor::Bof, false) => 0,
            (Anchor::Eof, false) => 1,
            (Anchor::Bof, true) => 2,
            (Anchor::Eof, true) => 3,
            (Anchor::Var, _) => 4,
        }
    }
}

/// A set of byte values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    fn of(bytes: &[u8]) -> Self {
        let mut set = Self::default();
        for &b in bytes {
            set.insert(b);
        }
        set
    }

    fn union(self, other: Self) -> Self {
        Self(std::array::from_fn(|i| self.0[i] | other.0[i]))
    }

    fn intersection(self, other: Self) -> Self {
        Self(std::array::from_fn(|i| self.0[i] & other.0[i]))
    }

    fn is_subset(&self, of: &Self) -> bool {
        self.0.iter().zip(&of.0).all(|(a, b)| a & !b == 0)
    }

    /// The bytes in every match of a pattern: a match starts with one of the prefix
    /// literals the pattern's syntax gives, so the bytes all of them share are in it.
    fn required_by(hir: &regex_syntax::hir::Hir) -> Self {
        let prefixes = regex_syntax::hir::literal::Extractor::new().extract(hir);
        match prefixes.literals() {
            Some(literals) if !literals.is_empty() => {
                literals.iter().map(|l| Self::of(l.as_bytes())).reduce(Self::intersection).unwrap_or_default()
            }
            // Infinite (no finite set of prefixes) or empty (matches nothing): no bytes known.
            _ => Self::default(),
        }
    }
}

fn hits(set: &regex::bytes::RegexSet, haystack: &[u8]) -> Vec<bool> {
    let mut found = vec![false; set.len()];
    for i in set.matches(haystack).iter() {
        found[i] = true;
    }
    found
}

/// The gap `pattern::gap` writes for "any number of bytes".
const OPEN_GAP: &str = "(?s:.)*?";

/// The bytes of a pattern that is nothing but hex, or None.
fn plain_hex(text: &str) -> Option<Vec<u8>> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.is_empty() || !digits.len().is_multiple_of(2) || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    (0..digits.len()).step_by(2).map(|i| u8::from_str_radix(&digits[i..i + 2], 16).ok()).collect()
}

#[derive(Debug)]
struct Format {
    id: u32,
    puid: String,
    name: String,
    version: Option<String>,
    extensions: Vec<String>,
    signatures: Vec<u32>,
    priority_over: Vec<u32>,
}

/// PRONOM's plain text, what a file of text no signature matched is.
const PLAIN_TEXT: &str = "x-fmt/111";

/// By extension: the formats with neither a byte nor a container signature that name it
/// (the only ones an extension may stand for), and every format that names it.
type ExtensionMap = HashMap<String, Vec<usize>>;
fn extension_maps(formats: &[Format], containers: &container::Containers) -> (ExtensionMap, ExtensionMap) {
    let contained: std::collections::HashSet<&str> = containers.puids().collect();
    let (mut unsigned, mut named) = (ExtensionMap::new(), ExtensionMap::new());
    for (i, f) in formats.iter().enumerate() {
        let signed = !f.signatures.is_empty() || contained.contains(f.puid.as_str());
        for e in &f.extensions {
            named.entry(e.clone()).or_default().push(i);
            if !signed {
                unsigned.entry(e.clone()).or_default().push(i);
            }
        }
    }
    (unsigned, named)
}

/// The outcome of identifying one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identification {
    /// The chosen format, or None for "UNKNOWN".
    pub format: Option<FormatId>,
    /// How it was found: `signature`, `container`, `extension`, `text` or `none`.
    pub basis: &'static str,
    /// Every candidate left after priorities, when more than one; with no match, the formats
    /// the extension could have meant.
    pub others: Vec<String>,
    /// For a signature or container match: the extensions the format is known by, when the
    /// file's own is not among them (siegfried's "extension mismatch").
    pub extension_mismatch: Option<Vec<String>>,
}

/// Which signatures a file can match at all, from a byte or two of it: most signatures start
/// with a literal at a fixed offset from the beginning or the end, so one byte there rules
/// out all but a handful, and only those are matched in full.
#[derive(Debug, Default)]
struct Prefilter {
    /// By offset from the beginning: the signatures whose literal starts there with each
    /// byte value.
    bof: Vec<(usize, Vec<Vec<usize>>)>,
    /// By offset from the end (0: the last byte): the signatures whose literal ends there
    /// with each byte value.
    eof: Vec<(usize, Vec<Vec<usize>>)>,
    /// Signatures no single byte decides, shortest file first: matched in full against
    /// every file long enough for them.
    always: Vec<usize>,
    /// The shortest file each of `always` can match.
    always_needs: Vec<usize>,
    /// By signature: bytes a file must contain for it to match.
    required: Vec<ByteSet>,
}

/// Files up to this many bytes are checked for the bytes each
/// signature requires: building the set costs about a nanosecond a byte.
const BYTE_CHECK_LIMIT: usize = 64 * 1024;

impl Prefilter {
    fn build(signatures: &[(u32, Vec<ByteSequence>)]) -> Self {
        let mut bof: std::collections::BTreeMap<usize, Vec<Vec<usize>>> = Default::default();
        let mut eof: std::collections::BTreeMap<usize, Vec<Vec<usize>>> = Default::default();
        let mut always = Vec::new();
        for (i, (_, seqs)) in signatures.iter().enumerate() {
            // Every sequence must match: any one with a placed literal decides.
            let placed = seqs.iter().find(|s| !s.literal.is_empty() && s.anchor != Anchor::Var && s.lead.is_none());
            match placed {
                Some(s) if s.anchor == Anchor::Bof => {
                    bof.entry(s.skip as usize).or_insert_with(|| vec![Vec::new(); 256])[s.literal[0] as usize].push(i)
                }
                Some(s) => eof.entry(s.skip as usize).or_insert_with(|| vec![Vec::new(); 256])
                    [*s.literal.last().expect("not empty") as usize]
                    .push(i),
                None => always.push(i),
            }
        }
        // Every sequence must match: the one needing the most bytes decides.
        let needs = |i: &usize| signatures[*i].1.iter().map(ByteSequence::shortest_file).max().unwrap_or(0);
        always.sort_by_key(needs);
        let always_needs = always.iter().map(needs).collect();
        let required = signatures
            .iter()
            .map(|(_, seqs)| seqs.iter().map(|s| s.required).fold(ByteSet::default(), ByteSet::union))
            .collect();
        Self { bof: bof.into_iter().collect(), eof: eof.into_iter().collect(), always, always_needs, required }
    }

    /// The signatures worth matching in full against this file, in no particular order.
    /// `whole`: head and tail are the whole file, so its length is known.
    fn candidates<'a>(&'a self, head: &'a [u8], tail: &'a [u8], whole: bool) -> impl Iterator<Item = usize> + 'a {
        let from_bof = self.bof.iter().filter_map(|(at, by)| head.get(*at).map(|&b| &by[b as usize]));
        let from_eof =
            self.eof.iter().filter_map(|(at, by)| tail.len().checked_sub(at + 1).map(|i| &by[tail[i] as usize]));
        let long_enough =
            if whole { self.always_needs.partition_point(|&n| n <= head.len()) } else { self.always.len() };
        // A file longer than the window is never that small: only whole files are checked.
        let seen = (whole && head.len() <= BYTE_CHECK_LIMIT).then(|| ByteSet::of(head));
        from_bof
            .chain(from_eof)
            .flatten()
            .chain(&self.always[..long_enough])
            .copied()
            .filter(move |&s| seen.as_ref().is_none_or(|seen| self.required[s].is_subset(seen)))
    }
}

#[derive(Debug)]
pub struct FormatIdentifier {
    formats: Vec<Format>,
    by_puid: HashMap<String, usize>,
    /// Each internal signature by its ID, with the formats it identifies.
    signatures: Vec<(u32, Vec<ByteSequence>)>,
    formats_of: Vec<Vec<usize>>,
    prefilter: Prefilter,
    by_extension: HashMap<String, Vec<usize>>,
    /// By extension, every format that names it (signatures or not).
    named_by_extension: HashMap<String, Vec<usize>>,
    containers: container::Containers,
    /// Every floating and open-ended sequence at once, so a file is searched for them in
    /// one pass.
    sets: Sets,
    /// `DROID_SignatureFile_V118.xml; container-signature-20240501.xml`.
    pub version: String,
    /// Signatures that could not be compiled (and so match nothing), with why: none, for
    /// the files Vellum is built with.
    pub skipped: Vec<String>,
}

fn attr_u64(n: roxmltree::Node<'_, '_>, name: &str) -> Option<u64> {
    n.attribute(name).and_then(|v| v.trim().parse().ok())
}

fn child<'a, 'i>(
    n: roxmltree::Node<'a, 'i>,
    name: &str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + use<'a, 'i> {
    let name = name.to_string();
    n.children().filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// The regex of one SubSequence: left fragments, the sequence, right fragments.
fn subsequence_regex(ss: roxmltree::Node<'_, '_>) -> Result<String, SignatureError> {
    let seq = child(ss, "Sequence").next().and_then(|s| s.text()).ok_or(SignatureError::NoSequence)?;
    let mut out = String::new();
    for (side, tag) in [(0, "LeftFragment"), (1, "RightFragment")] {
        let mut by_pos: std::collections::BTreeMap<u64, Vec<(String, u64, Option<u64>)>> = Default::default();
        for f in child(ss, tag) {
            let pos = attr_u64(f, "Position").unwrap_or(1);
            let re = pattern::to_regex(f.text().unwrap_or(""))?;
            by_pos.entry(pos).or_default().push((re, attr_u64(f, "MinOffset").unwrap_or(0), attr_u64(f, "MaxOffset")));
        }
        let alternatives = |frags: &Vec<(String, u64, Option<u64>)>| {
            let alts: Vec<&str> = frags.iter().map(|f| f.0.as_str()).collect();
            (format!("(?:{})", alts.join("|")), pattern::gap(frags[0].1, frags[0].2))
        };
        if side == 0 {
            for frags in by_pos.values().rev() {
                let (alt, gap) = alternatives(frags);
                out.push_str(&alt);
                out.push_str(&gap);
            }
            out.push_str(&pattern::to_regex(seq)?);
        } else {
            for frags in by_pos.values() {
                let (alt, gap) = alternatives(frags);
                out.push_str(&gap);
                out.push_str(&alt);
            }
        }
    }
    Ok(out)
}

/// An InternalSignature element compiled: its id and its byte sequences, or why one of them
/// could not be compiled (the signature is then skipped whole). None without an id.
fn compile_signature(sig: &roxmltree::Node<'_, '_>) -> Option<(u32, Result<Vec<ByteSequence>, SignatureError>)> {
    let id = attr_u64(*sig, "ID")? as u32;
    Some((id, child(*sig, "ByteSequence").map(byte_sequence).collect()))
}

/// `work` over `items` on every core, the answers in the items' order: compiling two thousand
/// signatures is most of what starting identification costs, and each is independent.
fn in_parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4);
    let chunk = items.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> =
            items.chunks(chunk).map(|part| scope.spawn(move || part.iter().map(work).collect::<Vec<_>>())).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    })
}

/// A ByteSequence element (of the signature file or a container signature) compiled.
fn byte_sequence(bs: roxmltree::Node<'_, '_>) -> Result<ByteSequence, SignatureError> {
    let anchor = match bs.attribute("Reference") {
        Some("BOFoffset") => Anchor::Bof,
        Some("EOFoffset") => Anchor::Eof,
        _ => Anchor::Var,
    };
    let mut subs: Vec<(u64, roxmltree::Node<'_, '_>)> =
        child(bs, "SubSequence").map(|s| (attr_u64(s, "Position").unwrap_or(1), s)).collect();
    subs.sort_by_key(|(p, _)| *p);
    let mut parts = Vec::new();
    let mut skip = 0;
    let mut lead = None;
    for (i, (_, ss)) in subs.iter().enumerate() {
        let min = attr_u64(*ss, "SubSeqMinOffset").unwrap_or(0);
        let max = attr_u64(*ss, "SubSeqMaxOffset");
        let gap = if i == 0 && anchor == Anchor::Bof && max != Some(min) {
            // A leading gap is searched for, not spelled out: an unanchored search uses
            // the regex's literal prefilter, and the match start is checked after.
            skip = min;
            lead = Some(max.map(|m| m - min.min(m)));
            String::new()
        } else if i == 0 && anchor != Anchor::Var {
            skip = min;
            pattern::gap(0, max.map(|m| m.saturating_sub(min)))
        } else if anchor == Anchor::Var && i == 0 {
            String::new()
        } else {
            pattern::gap(min, max)
        };
        parts.push((subsequence_regex(*ss)?, gap));
    }
    let body = match anchor {
        Anchor::Bof | Anchor::Var => parts.iter().map(|(re, gap)| format!("{gap}{re}")).collect::<String>(),
        // Position 1 is nearest the end; each gap lies between a subsequence and the end.
        Anchor::Eof => parts.iter().rev().map(|(re, gap)| format!("{re}{gap}")).collect::<String>(),
    };
    // An EOF sequence that may lie any distance from the end is one found anywhere before
    // it: searched for, not matched to the end of the window.
    let open_ended = anchor == Anchor::Eof && body.ends_with(OPEN_GAP);
    let anchored = match anchor {
        // A leading gap is searched for; the match's start is checked after.
        Anchor::Bof if lead.is_some() => format!("(?-u){body}"),
        Anchor::Bof => format!("(?-u)\\A{body}"),
        Anchor::Eof if open_ended => format!("(?-u){}", &body[..body.len() - OPEN_GAP.len()]),
        Anchor::Eof => format!("(?-u){body}\\z"),
        Anchor::Var => format!("(?-u){body}"),
    };
    let regex = LazyRegex::checked(anchored.clone())?;
    // A first subsequence with no fragments on its anchored side and a plain-hex sequence
    // gives a literal to look for first (at `skip` exactly, or within a leading gap).
    let literal = subs
        .first()
        .filter(|_| anchor != Anchor::Var)
        .filter(|(_, ss)| {
            let (min, max) = (attr_u64(*ss, "SubSeqMinOffset").unwrap_or(0), attr_u64(*ss, "SubSeqMaxOffset"));
            let near = if anchor == Anchor::Bof { "LeftFragment" } else { "RightFragment" };
            let placed = max == Some(min) || (anchor == Anchor::Bof && max.is_some());
            placed && child(*ss, near).next().is_none()
        })
        .and_then(|(_, ss)| child(*ss, "Sequence").next().and_then(|n| n.text()).and_then(plain_hex))
        .unwrap_or_default();
    let hir = regex_syntax::ParserBuilder::new().utf8(false).build().parse(&anchored).ok();
    let reach = hir.as_ref().and_then(|hir| hir.properties().maximum_len());
    let min_len = hir.as_ref().and_then(|hir| hir.properties().minimum_len()).unwrap_or(0);
    let required = hir.as_ref().map(ByteSet::required_by).unwrap_or_default();
    Ok(ByteSequence { anchor, skip, lead, literal, regex, reach, min_len, required, open_ended, set_index: None })
}

impl FormatIdentifier {
    /// The signature files built into Vellum (see `builtin.rs`), so that identification
    /// needs nothing but the binary.
    pub fn builtin() -> Result<Self, SignatureError> {
        let (droid_name, droid) = builtin::droid()?;
        let (container_name, container) = builtin::container()?;
        Self::parse(droid_name, &droid, Some((container_name, &container)))
    }

    /// Compiles a DROID signature file and (optionally) a container signature file, each
    /// given by its file name (recorded as the signatures' version) and its text.
    pub fn parse(droid_name: &str, droid_xml: &str, container: Option<(&str, &str)>) -> Result<Self, SignatureError> {
        let doc = roxmltree::Document::parse_with_options(
            droid_xml,
            roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() },
        )
        .map_err(|source| SignatureError::Xml { file: droid_name.to_string(), source })?;
        let nodes: Vec<_> = doc.descendants().filter(|n| n.has_tag_name((NS, "InternalSignature"))).collect();
        let mut signatures = HashMap::new();
        let mut skipped = Vec::new();
        for (id, compiled) in in_parallel(&nodes, compile_signature).into_iter().flatten() {
            match compiled {
                Ok(seqs) if !seqs.is_empty() => {
                    signatures.insert(id, seqs);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(signature = id, error = %e, "a PRONOM signature could not be compiled and is skipped");
                    skipped.push(format!("signature {id}: {e}"));
                }
            }
        }
        let (mut patterns, mut open_bof) = (Vec::new(), Vec::new());
        let mut signatures: Vec<(u32, Vec<ByteSequence>)> = signatures.into_iter().collect();
        signatures.sort_by_key(|(id, _)| *id);
        for (_, seqs) in signatures.iter_mut() {
            seqs.sort_by_key(ByteSequence::cost);
            for s in seqs.iter_mut() {
                if s.anchor == Anchor::Var {
                    s.set_index = Some(patterns.len());
                    patterns.push(s.regex.as_str().to_string());
                } else if s.anchor == Anchor::Bof && s.lead.is_none() && s.reach.is_none() {
                    // Anchored at the beginning of the head, after the sequence's offset.
                    let body = s.regex.as_str().strip_prefix("(?-u)\\A").expect("a BOF regex is anchored");
                    s.set_index = Some(open_bof.len());
                    open_bof.push(format!("(?-u)\\A(?s:.){{{}}}{body}", s.skip));
                }
            }
        }
        let set = |patterns: &[String], what: &str| {
            // The lazy DFA's cache is per thread: bounded, it is cleared and rebuilt when full.
            regex::bytes::RegexSetBuilder::new(patterns)
                .size_limit(256 << 20)
                .dfa_size_limit(8 << 20)
                .build()
                .map_err(|e| tracing::warn!(error = %e, "{what} signatures are matched one by one"))
                .ok()
        };
        // The two sets are the largest compilations: one on each core.
        let sets = std::thread::scope(|scope| {
            let floating = scope.spawn(|| set(&patterns, "floating"));
            let open_bof = set(&open_bof, "open-ended");
            Sets { floating: floating.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), open_bof }
        });
        let mut formats = Vec::new();
        for f in doc.descendants().filter(|n| n.has_tag_name((NS, "FileFormat"))) {
            formats.push(Format {
                id: attr_u64(f, "ID").unwrap_or(0) as u32,
                puid: f.attribute("PUID").unwrap_or("").to_string(),
                name: f.attribute("Name").unwrap_or("").to_string(),
                version: f.attribute("Version").filter(|v| !v.is_empty()).map(str::to_string),
                extensions: child(f, "Extension").filter_map(|e| e.text()).map(|e| e.to_ascii_lowercase()).collect(),
                signatures: child(f, "InternalSignatureID").filter_map(|e| e.text()?.trim().parse().ok()).collect(),
                priority_over: child(f, "HasPriorityOverFileFormatID")
                    .filter_map(|e| e.text()?.trim().parse().ok())
                    .collect(),
            });
        }
        let by_puid = formats.iter().enumerate().map(|(i, f)| (f.puid.clone(), i)).collect();
        let mut formats_of = vec![Vec::new(); signatures.len()];
        for (i, f) in formats.iter().enumerate() {
            for sid in &f.signatures {
                if let Ok(s) = signatures.binary_search_by_key(sid, |(id, _)| *id) {
                    formats_of[s].push(i);
                }
            }
        }
        let prefilter = Prefilter::build(&signatures);
        let mut version = droid_name.to_string();
        let containers = match container {
            Some((name, text)) => {
                version.push_str("; ");
                version.push_str(name);
                container::Containers::parse(name, text)?
            }
            None => container::Containers::default(),
        };
        skipped.extend(containers.skipped.iter().cloned());
        let (by_extension, named_by_extension) = extension_maps(&formats, &containers);
        Ok(Self {
            formats,
            by_puid,
            signatures,
            formats_of,
            prefilter,
            by_extension,
            named_by_extension,
            containers,
            sets,
            version,
            skipped,
        })
    }

    pub fn format_count(&self) -> usize {
        self.formats.len()
    }

    fn format_id(&self, i: usize) -> FormatId {
        let f = &self.formats[i];
        FormatId { puid: f.puid.clone(), name: f.name.clone(), version: f.version.clone(), tentative: false }
    }

    /// Formats whose internal signatures match, with priorities applied.
    #[cfg(test)]
    fn signature_matches(&self, head: &[u8], tail: &[u8], whole: bool) -> Vec<usize> {
        self.apply_priorities(self.raw_signature_matches(head, tail, whole))
    }

    /// Every format a signature of matched, before priorities.
    fn raw_signature_matches(&self, head: &[u8], tail: &[u8], whole: bool) -> Vec<usize> {
        let view = FileView::new(head, tail, whole);
        let mut matched: Vec<usize> = self
            .prefilter
            .candidates(head, tail, whole)
            .filter(|&s| self.signatures[s].1.iter().all(|seq| seq.matches(&view, &self.sets)))
            .flat_map(|s| self.formats_of[s].iter().copied())
            .collect();
        matched.sort_unstable();
        matched.dedup();
        matched
    }

    /// A file no signature matched, as siegfried calls it: the one format without signatures
    /// its extension names; else plain text, when the bytes are text and the name claims no
    /// other format (a `.pdf` of text is no PDF, and no plain text either); else nothing,
    /// the formats the extension names listed as `others`. A format with a signature is never
    /// guessed from a name: had the file been one, the signature would have matched.
    fn without_signature(&self, head: &[u8], extension: &str) -> Identification {
        let guesses = self.by_extension.get(extension).map_or(&[][..], Vec::as_slice);
        if let [only] = guesses {
            let mut f = self.format_id(*only);
            f.tentative = true;
            return Identification {
                format: Some(f),
                basis: "extension",
                others: Vec::new(),
                extension_mismatch: None,
            };
        }
        let named = self.named_by_extension.get(extension).map_or(&[][..], Vec::as_slice);
        let is_text = !head.is_empty() && crate::analysis::text::text_encoding(head).is_some();
        let text = self.by_puid.get(PLAIN_TEXT).copied();
        if let Some(text) = text.filter(|t| is_text && (named.is_empty() || named.contains(t))) {
            let mut f = self.format_id(text);
            f.tentative = true;
            return Identification { format: Some(f), basis: "text", others: Vec::new(), extension_mismatch: None };
        }
        let others = named.iter().map(|&i| self.formats[i].puid.clone()).collect();
        Identification { format: None, basis: "none", others, extension_mismatch: None }
    }

    /// Every format's every signature matched in full, without the prefilter: what the
    /// prefilter must agree with.
    #[cfg(test)]
    fn signature_matches_unfiltered(&self, head: &[u8], tail: &[u8], whole: bool) -> Vec<usize> {
        let view = FileView::new(head, tail, whole);
        let matched: Vec<usize> = (0..self.formats.len())
            .filter(|&i| {
                self.formats[i].signatures.iter().any(|sid| {
                    self.signatures
                        .binary_search_by_key(sid, |(id, _)| *id)
                        .is_ok_and(|s| self.signatures[s].1.iter().all(|seq| seq.matches(&view, &self.sets)))
                })
            })
            .collect();
        self.apply_priorities(matched)
    }

    fn apply_priorities(&self, matched: Vec<usize>) -> Vec<usize> {
        let outranked: BTreeSet<u32> =
            matched.iter().flat_map(|&i| self.formats[i].priority_over.iter().copied()).collect();
        matched.into_iter().filter(|&i| !outranked.contains(&self.formats[i].id)).collect()
    }

    /// Identifies a file from its first and last bytes (`head` and `tail`, the same slice
    /// when the file fits the window), its name, and — when the internal match points to
    /// a ZIP or OLE2 container — its container contents.
    pub fn identify(
        &self,
        head: &[u8],
        tail: &[u8],
        whole: bool,
        name: &str,
        container: &mut dyn ContainerSource,
    ) -> Identification {
        let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
        let matched = self.raw_signature_matches(head, tail, whole);
        // A container is opened when any signature of its trigger (ZIP, OLE2) matched, even one
        // a more specific format outranks (an ODF's own signature over ZIP's), as siegfried does.
        let trigger = matched.iter().find_map(|&i| self.containers.trigger(&self.formats[i].puid));
        let mut candidates = self.apply_priorities(matched);
        let mut basis = "signature";
        if let Some(kind) = trigger {
            let puids = self.containers.identify(kind, container);
            let found: Vec<usize> = puids.iter().filter_map(|p| self.by_puid.get(p).copied()).collect();
            if !found.is_empty() {
                candidates = self.apply_priorities(found);
                basis = "container";
            }
        }
        if candidates.len() > 1 {
            // Between equal signature matches, the one the extension names wins, as in DROID.
            let by_ext: Vec<usize> =
                candidates.iter().copied().filter(|&i| self.formats[i].extensions.contains(&extension)).collect();
            if !by_ext.is_empty() {
                candidates = by_ext;
            }
        }
        if candidates.is_empty() {
            return self.without_signature(head, &extension);
        }
        candidates.sort_by_key(|&i| self.formats[i].id);
        let known_by = &self.formats[candidates[0]].extensions;
        Identification {
            format: Some(self.format_id(candidates[0])),
            basis,
            others: candidates.iter().skip(1).map(|&i| self.formats[i].puid.clone()).collect(),
            extension_mismatch: (!extension.is_empty() && !known_by.is_empty() && !known_by.contains(&extension))
                .then(|| known_by.clone()),
        }
    }

    /// The format a PUID names, if the signature file knows it.
    pub fn format_by_puid(&self, puid: &str) -> Option<FormatId> {
        self.by_puid.get(puid).map(|&i| self.format_id(i))
    }
}

const NS: &str = "http://www.nationalarchives.gov.uk/pronom/SignatureFile";

#[cfg(test)]
mod tests {
    use super::*;

    /// Files that start (or end) with each signature's literal, which the prefilter sends
    /// to their signatures' buckets, and files that match nothing: the prefiltered match
    /// must be the full match every time.
    #[test]
    fn the_prefilter_rules_out_only_signatures_that_cannot_match() {
        let id = FormatIdentifier::builtin().unwrap();
        let always = id.prefilter.always.len();
        assert!(
            always * 3 < id.signatures.len(),
            "{always} of {} signatures always matched in full",
            id.signatures.len()
        );
        let mut rnd = 12345u64;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    rnd = rnd.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (rnd >> 56) as u8
                })
                .collect()
        };
        let mut inputs: Vec<Vec<u8>> = vec![Vec::new(), b"plain text\n".to_vec(), noise(4096)];
        // Each sequence's start: its literal, or the literals its regex must start with
        // (which decide the bytes a file must hold), with more noise and less.
        let starts = |s: &ByteSequence| -> Vec<Vec<u8>> {
            if !s.literal.is_empty() {
                return vec![s.literal.clone()];
            }
            let hir = regex_syntax::ParserBuilder::new().utf8(false).build().parse(s.regex.as_str()).unwrap();
            let prefixes = regex_syntax::hir::literal::Extractor::new().extract(&hir);
            prefixes.literals().unwrap_or_default().iter().take(2).map(|l| l.as_bytes().to_vec()).collect()
        };
        for (n, (_, seqs)) in
            id.signatures.iter().enumerate().filter(|(n, _)| n % 3 == 0 || id.prefilter.always.contains(n))
        {
            for s in seqs {
                for start in starts(s) {
                    let noise_len = if n % 2 == 0 { 200 } else { 24 };
                    let mut file = vec![0u8; s.skip as usize];
                    match s.anchor {
                        Anchor::Eof => {
                            file = noise(noise_len);
                            file.extend(&start);
                            file.extend(vec![0u8; s.skip as usize]);
                        }
                        _ => {
                            file.extend(&start);
                            file.extend(noise(noise_len));
                        }
                    }
                    inputs.push(file);
                }
            }
        }
        let mut matched = 0;
        for file in &inputs {
            let fast = id.signature_matches(file, file, true);
            assert_eq!(fast, id.signature_matches_unfiltered(file, file, true), "{:?}", &file[..file.len().min(64)]);
            matched += usize::from(!fast.is_empty());
        }
        // Starting with a prefix is often not enough to match: a third do.
        assert!(matched * 3 > inputs.len(), "{matched} of {} files matched something", inputs.len());
    }
}
