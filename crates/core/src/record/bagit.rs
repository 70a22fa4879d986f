//! BagIt 1.0 (RFC 8493): the tag files Vellum writes, and a verifier that checks a bag as a
//! stream of tar entries, the way a bag validator would, without unpacking it to disk.

use std::collections::BTreeMap;
use std::io::Read;

use sha2::{Digest, Sha256};

use crate::analysis::fixity::ManifestError;

pub const BAGIT_TXT: &str = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n";

/// A path as a manifest writes it: CR, LF and % are percent-encoded (RFC 8493 §2.1.3).
pub fn encode_path(path: &str) -> String {
    path.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

pub fn decode_path(path: &str) -> String {
    path.replace("%0D", "\r").replace("%0d", "\r").replace("%0A", "\n").replace("%0a", "\n").replace("%25", "%")
}

/// Manifest text for (path, digest) pairs, in the order given.
pub fn manifest<'a, D: AsRef<str>>(entries: impl IntoIterator<Item = (&'a str, D)>) -> String {
    let mut out = String::new();
    for (path, digest) in entries {
        out.push_str(digest.as_ref());
        out.push_str("  ");
        out.push_str(&encode_path(path));
        out.push('\n');
    }
    out
}

/// Parses a manifest into path → digest. Malformed lines are reported. As bagit-python
/// reads them: `*` before a path is `sha256sum -b`'s binary-mode marker, not part of the
/// name, and `#` starts a comment line.
pub fn parse_manifest(text: &str) -> Result<BTreeMap<String, String>, ManifestError> {
    let mut map = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (digest, path) = line.split_once([' ', '\t']).ok_or(ManifestError::NoPathInBag { line: n + 1 })?;
        let path = path.trim_start_matches([' ', '\t']).trim_start_matches('*');
        if map.insert(decode_path(path), digest.to_ascii_lowercase()).is_some() {
            return Err(ManifestError::Twice { path: path.to_string() });
        }
    }
    Ok(map)
}

/// `Bag-Size` as people read it.
pub fn human_size(bytes: u64) -> String {
    const UNITS: &[&str] = &["bytes", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A `bag-info.txt`'s fields in order, as BagIt 1.0 (RFC 8493 §2.2.2) writes them: `Label:
/// value` lines, a line starting with white space continuing the value before it.
pub fn parse_bag_info(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((label, value)) = line.split_once(':') {
            fields.push((label.trim().to_string(), value.trim().to_string()));
        }
    }
    fields
}

pub fn bag_info(fields: &[(&str, String)]) -> String {
    fields.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
}

/// What a verified bag held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BagReport {
    pub payload_files: u64,
    pub payload_bytes: u64,
    /// Payload path (`data/...`) → sha256, as computed from the bytes.
    pub payload: BTreeMap<String, String>,
}

/// Verifies a bag stored as a tar stream whose entries are `<bag>/...`: bagit.txt is there,
/// every manifest and tag manifest entry is present and matches, no payload file is missing
/// from the manifest, and Payload-Oxum agrees. Returns every problem found.
pub fn verify_tar(reader: impl Read, bag: &str) -> Result<BagReport, Vec<String>> {
    let mut archive = tar::Archive::new(reader);
    let mut digests: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let mut tag_text: BTreeMap<String, String> = BTreeMap::new();
    let prefix = format!("{bag}/");
    let mut problems = Vec::new();
    let entries = archive.entries().map_err(|e| vec![format!("the AIP cannot be read as a tar: {e}")])?;
    for entry in entries {
        let mut entry = entry.map_err(|e| vec![format!("the AIP's tar stream is damaged: {e}")])?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| vec![format!("an entry has an unreadable path: {e}")])?
            .to_string_lossy()
            .into_owned();
        let Some(rel) = path.strip_prefix(&prefix) else {
            problems.push(format!("{path:?} is outside the bag folder {bag:?}"));
            continue;
        };
        let rel = rel.to_string();
        let is_tag = !rel.starts_with("data/");
        let mut hasher = Sha256::new();
        let mut kept = Vec::new();
        let size = crate::io::scratch::pump(
            &mut entry,
            |chunk| {
                hasher.update(chunk);
                if is_tag {
                    kept.extend_from_slice(chunk);
                }
                Ok(())
            },
            |e| vec![format!("reading {rel:?} from the AIP: {e}")],
        )?;
        if is_tag {
            tag_text.insert(rel.clone(), String::from_utf8_lossy(&kept).into_owned());
        }
        digests.insert(rel, (hex::encode(hasher.finalize()), size));
    }
    if tag_text.get("bagit.txt").map(|t| t.contains("BagIt-Version:")) != Some(true) {
        problems.push("bagit.txt is missing or has no BagIt-Version".into());
    }
    let check = |name: &str, problems: &mut Vec<String>| -> Option<BTreeMap<String, String>> {
        let text = tag_text.get(name)?;
        match parse_manifest(text) {
            Ok(m) => Some(m),
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                None
            }
        }
    };
    let Some(manifest) = check("manifest-sha256.txt", &mut problems) else {
        problems.push("manifest-sha256.txt is missing".into());
        return Err(problems);
    };
    for (path, want) in &manifest {
        match digests.get(path) {
            None => problems.push(format!("{path} is in the manifest but not in the bag")),
            Some((got, _)) if got != want => {
                problems.push(format!("{path} has sha256 {got}, but the manifest says {want}"))
            }
            _ => {}
        }
    }
    let payload: BTreeMap<String, String> =
        digests.iter().filter(|(p, _)| p.starts_with("data/")).map(|(p, (d, _))| (p.clone(), d.clone())).collect();
    for path in payload.keys() {
        if !manifest.contains_key(path) {
            problems.push(format!("{path} is in the bag but not in the manifest"));
        }
    }
    if let Some(tagmanifest) = check("tagmanifest-sha256.txt", &mut problems) {
        for (path, want) in &tagmanifest {
            match digests.get(path) {
                Some((got, _)) if got == want => {}
                Some((got, _)) => {
                    problems.push(format!("tag file {path} has sha256 {got}, but the tag manifest says {want}"))
                }
                None => problems.push(format!("tag file {path} is in the tag manifest but not in the bag")),
            }
        }
    }
    let payload_bytes: u64 = digests.iter().filter(|(p, _)| p.starts_with("data/")).map(|(_, (_, s))| s).sum();
    let oxum = format!("{payload_bytes}.{}", payload.len());
    match tag_text.get("bag-info.txt").and_then(|t| t.lines().find_map(|l| l.strip_prefix("Payload-Oxum:"))) {
        Some(v) if v.trim() == oxum => {}
        Some(v) => problems.push(format!("Payload-Oxum says {}, but the payload is {oxum}", v.trim())),
        None => problems.push("bag-info.txt has no Payload-Oxum".into()),
    }
    if problems.is_empty() {
        Ok(BagReport { payload_files: payload.len() as u64, payload_bytes, payload })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_round_trip_with_awkward_characters() {
        let text = manifest([("data/a b%.txt", "ab"), ("data/line\nbreak", "cd")]);
        assert_eq!(text, "ab  data/a b%25.txt\ncd  data/line%0Abreak\n");
        let parsed = parse_manifest(&text).unwrap();
        assert_eq!(parsed.get("data/a b%.txt").map(String::as_str), Some("ab"));
        assert_eq!(parsed.get("data/line\nbreak").map(String::as_str), Some("cd"));
    }

    #[test]
    fn bag_info_fields_in_order_with_continued_values() {
        let text =
            "Source-Organization: Wellcome\r\nExternal-Description: A long\n  description\nBagging-Date: 2026-12-07\n";
        assert_eq!(
            parse_bag_info(text),
            [
                ("Source-Organization".to_string(), "Wellcome".to_string()),
                ("External-Description".to_string(), "A long description".to_string()),
                ("Bagging-Date".to_string(), "2026-12-07".to_string()),
            ]
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(12), "12 bytes");
        assert_eq!(human_size(2_500_000), "2.5 MB");
    }
}
