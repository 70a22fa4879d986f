//! Fixity: the digests Vellum computes (md5, sha1, sha256, sha512, all in one pass over a
//! stream) and the checksum files a package may supply. Intake, extraction, the checksum
//! stage, METS and packaging all use them.

use std::collections::BTreeMap;
use std::io::Read;

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::error::{StageError, StageResult};

/// The algorithms Vellum computes, by their names in profiles and file names.
pub const ALGORITHMS: &[&str] = &["md5", "sha1", "sha256", "sha512"];

/// How many bytes a digest of `algorithm` has.
pub fn digest_len(algorithm: &str) -> StageResult<usize> {
    match algorithm {
        "md5" => Ok(<Md5 as Digest>::output_size()),
        "sha1" => Ok(<Sha1 as Digest>::output_size()),
        "sha256" => Ok(<Sha256 as Digest>::output_size()),
        "sha512" => Ok(<Sha512 as Digest>::output_size()),
        other => Err(StageError::Failed(format!(
            "{other} is not a checksum Vellum computes (it knows {})",
            ALGORITHMS.join(", ")
        ))),
    }
}

/// Digests of one stream, computed in one pass.
#[derive(Default)]
pub struct Digests {
    md5: Option<Md5>,
    sha1: Option<Sha1>,
    sha256: Option<Sha256>,
    sha512: Option<Sha512>,
}

impl Digests {
    /// sha256 always, plus whatever else is asked for.
    pub fn for_algorithms<S: AsRef<str>>(algorithms: &[S]) -> StageResult<Self> {
        let mut d = Self { sha256: Some(Sha256::new()), ..Default::default() };
        for a in algorithms {
            match a.as_ref() {
                "md5" => d.md5 = Some(Md5::new()),
                "sha1" => d.sha1 = Some(Sha1::new()),
                "sha256" => {}
                "sha512" => d.sha512 = Some(Sha512::new()),
                other => {
                    return Err(StageError::Failed(format!(
                    "the processing profile asks for the {other} checksum, which Vellum does not compute (it knows {})",
                    ALGORITHMS.join(", ")
                )))
                }
            }
        }
        Ok(d)
    }

    pub fn update(&mut self, bytes: &[u8]) {
        if let Some(h) = &mut self.md5 {
            h.update(bytes);
        }
        if let Some(h) = &mut self.sha1 {
            h.update(bytes);
        }
        if let Some(h) = &mut self.sha256 {
            h.update(bytes);
        }
        if let Some(h) = &mut self.sha512 {
            h.update(bytes);
        }
    }

    pub fn finish(self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(h) = self.md5 {
            out.insert("md5".into(), hex::encode(h.finalize()));
        }
        if let Some(h) = self.sha1 {
            out.insert("sha1".into(), hex::encode(h.finalize()));
        }
        if let Some(h) = self.sha256 {
            out.insert("sha256".into(), hex::encode(h.finalize()));
        }
        if let Some(h) = self.sha512 {
            out.insert("sha512".into(), hex::encode(h.finalize()));
        }
        out
    }

    /// Reads `reader` to its end, returning the digests and the byte count.
    pub fn of_reader(mut self, reader: &mut dyn Read) -> std::io::Result<(BTreeMap<String, String>, u64)> {
        let total = crate::io::scratch::pump(
            reader,
            |chunk| {
                self.update(chunk);
                Ok(())
            },
            |e| e,
        )?;
        Ok((self.finish(), total))
    }
}

/// The sha256 of a stream, as lowercase hex.
pub fn sha256_hex(reader: &mut dyn Read) -> std::io::Result<String> {
    let (digests, _) = Digests { sha256: Some(Sha256::new()), ..Default::default() }.of_reader(reader)?;
    Ok(digests["sha256"].clone())
}

/// A supplied checksum file's name for an algorithm.
pub fn supplied_manifest_path(algorithm: &str) -> String {
    format!("metadata/checksum.{algorithm}")
}

/// A checksum file (a package's own, or a bag's manifest) with a line that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("line {line} has no path after the digest")]
    NoPath { line: usize },
    #[error("line {line} has {digest:?} where a hexadecimal digest belongs")]
    NotHex { line: usize, digest: String },
    #[error("line {line} of a manifest has no path")]
    NoPathInBag { line: usize },
    #[error("the manifest lists {path:?} twice")]
    Twice { path: String },
}

/// Reads a supplied checksum file (`<digest>  <path>` per line, as md5sum and friends
/// write, paths relative to the package or, as Archivematica writes them, to `metadata/`).
pub fn parse_supplied_manifest(text: &str) -> Result<BTreeMap<String, String>, ManifestError> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (digest, path) = line.split_once(char::is_whitespace).ok_or(ManifestError::NoPath { line: n + 1 })?;
        let path = path.trim_start().trim_start_matches('*');
        let path = path.strip_prefix("../").or_else(|| path.strip_prefix("./")).unwrap_or(path);
        if !digest.chars().all(|c| c.is_ascii_hexdigit()) || digest.is_empty() {
            return Err(ManifestError::NotHex { line: n + 1, digest: digest.to_string() });
        }
        // Archivematica's checksum files name the transfer's files as they sit in it, the
        // objects' without `objects/` (`beihai.tif`); the package's own form names them with it.
        let path = if path.starts_with("objects/") || path.starts_with("metadata/") {
            path.to_string()
        } else {
            format!("objects/{path}")
        };
        out.insert(path, digest.to_ascii_lowercase());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_lengths_are_those_of_the_digests_computed() {
        let (digests, _) = Digests::for_algorithms(ALGORITHMS).unwrap().of_reader(&mut &b"vellum"[..]).unwrap();
        for a in ALGORITHMS {
            assert_eq!(digest_len(a).unwrap() * 2, digests[*a].len(), "{a}");
        }
        assert!(digest_len("crc32").is_err());
    }
}
