//! Container signatures: formats recognised by what is inside a ZIP (OOXML, ODF, EPUB, …)
//! or an OLE2 compound file (Word 97, Excel, PowerPoint, …).

use super::error::SignatureError;

use std::collections::HashMap;

use super::{byte_sequence, child, ByteSequence, WINDOW};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerKind {
    Zip,
    Ole2,
}

/// Access to a file's container contents, opened only when a signature asks.
pub trait ContainerSource {
    /// The entry names (ZIP paths, or OLE2 stream paths with control characters removed),
    /// or None when the file is not such a container after all.
    fn entries(&mut self, kind: ContainerKind) -> Option<Vec<String>>;
    /// Up to [`WINDOW`] bytes from the start of an entry.
    fn read(&mut self, kind: ContainerKind, name: &str) -> Option<Vec<u8>>;
}

/// A container source that has no container: for callers without one.
pub struct NoContainer;

impl ContainerSource for NoContainer {
    fn entries(&mut self, _: ContainerKind) -> Option<Vec<String>> {
        None
    }
    fn read(&mut self, _: ContainerKind, _: &str) -> Option<Vec<u8>> {
        None
    }
}

#[derive(Debug)]
struct FileRule {
    path: String,
    /// Any one of these signatures must match the entry (none: it need only exist).
    signatures: Vec<Vec<ByteSequence>>,
}

#[derive(Debug)]
struct ContainerSignature {
    kind: ContainerKind,
    files: Vec<FileRule>,
    puids: Vec<String>,
}

#[derive(Debug, Default)]
pub(super) struct Containers {
    signatures: Vec<ContainerSignature>,
    triggers: HashMap<String, ContainerKind>,
    /// Container signatures that could not be compiled, with why.
    pub(super) skipped: Vec<String>,
}

/// OLE2 names start with control characters (`\u{1}CompObj`); signatures omit them.
pub fn normalize_ole2_name(name: &str) -> String {
    name.split('/').map(|part| part.trim_start_matches(|c: char| c < ' ')).collect::<Vec<_>>().join("/")
}

impl Containers {
    pub(super) fn parse(name: &str, text: &str) -> Result<Self, SignatureError> {
        let doc = roxmltree::Document::parse(text)
            .map_err(|source| SignatureError::Xml { file: name.to_string(), source })?;
        let kind_of = |s: Option<&str>| match s {
            Some("OLE2") => Some(ContainerKind::Ole2),
            Some("ZIP") => Some(ContainerKind::Zip),
            _ => None,
        };
        let mut mappings: HashMap<u64, Vec<String>> = HashMap::new();
        for m in doc.descendants().filter(|n| n.has_tag_name("FileFormatMapping")) {
            if let (Some(id), Some(puid)) =
                (m.attribute("signatureId").and_then(|v| v.parse().ok()), m.attribute("Puid"))
            {
                mappings.entry(id).or_default().push(puid.to_string());
            }
        }
        let mut signatures = Vec::new();
        let mut skipped = Vec::new();
        for cs in doc.descendants().filter(|n| n.has_tag_name("ContainerSignature")) {
            let Some(kind) = kind_of(cs.attribute("ContainerType")) else { continue };
            let Some(id) = cs.attribute("Id").and_then(|v| v.parse::<u64>().ok()) else { continue };
            let mut files = Vec::new();
            let mut ok = true;
            for f in cs.descendants().filter(|n| n.has_tag_name("File")) {
                let path = child(f, "Path").next().and_then(|p| p.text()).unwrap_or("").trim().to_string();
                let mut sigs = Vec::new();
                for sig in f.descendants().filter(|n| n.has_tag_name("InternalSignature")) {
                    let seqs: Result<Vec<ByteSequence>, SignatureError> =
                        child(sig, "ByteSequence").map(byte_sequence).collect();
                    match seqs {
                        Ok(seqs) if !seqs.is_empty() => sigs.push(seqs),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(container_signature = id, error = %e, "a container signature could not be compiled and is skipped");
                            skipped.push(format!("container signature {id}: {e}"));
                            ok = false;
                        }
                    }
                }
                let path = if kind == ContainerKind::Ole2 { normalize_ole2_name(&path) } else { path };
                files.push(FileRule { path, signatures: sigs });
            }
            if ok && !files.is_empty() {
                signatures.push(ContainerSignature { kind, files, puids: mappings.remove(&id).unwrap_or_default() });
            }
        }
        let mut triggers = HashMap::new();
        for t in doc.descendants().filter(|n| n.has_tag_name("TriggerPuid")) {
            if let (Some(kind), Some(puid)) = (kind_of(t.attribute("ContainerType")), t.attribute("Puid")) {
                triggers.insert(puid.to_string(), kind);
            }
        }
        Ok(Self { signatures, triggers, skipped })
    }

    /// The container kind an internal match calls for, if any.
    /// Every PUID a container signature names.
    pub(super) fn puids(&self) -> impl Iterator<Item = &str> {
        self.signatures.iter().flat_map(|s| s.puids.iter().map(String::as_str))
    }

    pub(super) fn trigger(&self, puid: &str) -> Option<ContainerKind> {
        self.triggers.get(puid).copied()
    }

    /// The PUIDs of every container signature the contents satisfy.
    pub(super) fn identify(&self, kind: ContainerKind, source: &mut dyn ContainerSource) -> Vec<String> {
        let Some(entries) = source.entries(kind) else { return Vec::new() };
        let present: std::collections::HashSet<&str> = entries.iter().map(String::as_str).collect();
        let mut cache: HashMap<String, Option<Vec<u8>>> = HashMap::new();
        let mut out = Vec::new();
        for sig in self.signatures.iter().filter(|s| s.kind == kind) {
            let all = sig.files.iter().all(|rule| {
                if !present.contains(rule.path.as_str()) {
                    return false;
                }
                if rule.signatures.is_empty() {
                    return true;
                }
                let bytes = cache.entry(rule.path.clone()).or_insert_with(|| source.read(kind, &rule.path));
                let Some(bytes) = bytes else { return false };
                let whole = bytes.len() < WINDOW;
                let view = super::FileView::new(bytes, bytes, whole);
                rule.signatures.iter().any(|seqs| seqs.iter().all(|s| s.matches(&view, &super::Sets::default())))
            });
            if all {
                out.extend(sig.puids.iter().cloned());
            }
        }
        out.sort();
        out.dedup();
        out
    }
}
