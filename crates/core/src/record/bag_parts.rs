//! A bag verified a part at a time. A stored AIP is a tar stream written in parts (each a
//! whole gzip member of whole tar entries), so it can be read part by part, across as many
//! invocations as it takes. What must be remembered between parts is small enough for a
//! checkpoint: counts, order-free sums of (path, digest) pairs and the tag files' digests,
//! never one entry per payload file.
//!
//! A sum is SHA-256 of each pair taken as a 256-bit number, added modulo 2^256: two sets of
//! pairs have equal sums (and counts) only if they are the same set, whatever order they
//! were read in. It says that something differs, not what: a failed check is then named
//! file by file with `bagit::verify_tar` where the AIP is small enough to read in one go.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::record::bagit::{decode_path, parse_manifest};

/// An order-free sum of (path, digest) pairs, and how many were added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestSum {
    /// Hex, big-endian.
    sum: String,
    pub count: u64,
}

impl DigestSum {
    pub fn add(&mut self, path: &str, digest: &str) {
        let mut h = Sha256::new();
        h.update(path.as_bytes());
        h.update([0]);
        h.update(digest.to_ascii_lowercase().as_bytes());
        let term: [u8; 32] = h.finalize().into();
        self.add_number(&term);
        self.count += 1;
    }

    /// Adds another sum's pairs: the sum of the union, read in any order or anywhere.
    pub fn merge(&mut self, other: &DigestSum) {
        if !other.sum.is_empty() {
            let mut term = [0u8; 32];
            hex::decode_to_slice(&other.sum, &mut term).expect("a sum is 64 hex digits");
            self.add_number(&term);
        }
        self.count += other.count;
    }

    fn add_number(&mut self, term: &[u8; 32]) {
        let mut sum = [0u8; 32];
        if !self.sum.is_empty() {
            hex::decode_to_slice(&self.sum, &mut sum).expect("a sum is 64 hex digits");
        }
        let mut carry = 0u16;
        for i in (0..32).rev() {
            let total = sum[i] as u16 + term[i] as u16 + carry;
            sum[i] = total as u8;
            carry = total >> 8;
        }
        self.sum = hex::encode(sum);
    }
}

/// Where a bag's verification stands between parts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BagVerifier {
    pub payload_bytes: u64,
    /// The payload as read: (path, sha256) of every `data/` entry.
    pub payload: DigestSum,
    /// manifest-sha256.txt's lines, once read.
    manifest: Option<DigestSum>,
    /// sha256 of every tag file read.
    tag_digests: BTreeMap<String, String>,
    bagit_version: bool,
    oxum: Option<String>,
    tagmanifest: Option<BTreeMap<String, String>>,
    problems: Vec<String>,
}

/// What a verified bag held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BagSummary {
    pub payload_files: u64,
    pub payload_bytes: u64,
}

const MANIFEST: &str = "manifest-sha256.txt";
const TAGMANIFEST: &str = "tagmanifest-sha256.txt";

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

impl BagVerifier {
    /// Reads one part's tar entries (`<bag>/...`). `on_payload` is told each payload path
    /// (`data/...`) and its sha256 as read. An error is a part that cannot be read at all:
    /// a finding about the bag, in the words the verification report gives, not a fault.
    pub fn read_part(
        &mut self,
        reader: impl Read,
        bag: &str,
        on_payload: &mut dyn FnMut(&str, &str),
    ) -> Result<(), String> {
        let mut archive = tar::Archive::new(reader);
        let prefix = format!("{bag}/");
        let entries = archive.entries().map_err(|e| format!("the AIP cannot be read as a tar: {e}"))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("the AIP's tar stream is damaged: {e}"))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry
                .path()
                .map_err(|e| format!("an entry has an unreadable path: {e}"))?
                .to_string_lossy()
                .into_owned();
            let Some(rel) = path.strip_prefix(&prefix).map(str::to_string) else {
                self.problem(format!("{path:?} is outside the bag folder {bag:?}"));
                continue;
            };
            let mut hashing = Hashing { inner: entry, hasher: Sha256::new(), size: 0 };
            let read = |e: std::io::Error| format!("reading {rel:?} from the AIP: {e}");
            let mut kept = Vec::new();
            if rel == MANIFEST {
                let mut lines = DigestSum::default();
                let mut buffered = BufReader::with_capacity(256 * 1024, &mut hashing);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    if buffered.read_until(b'\n', &mut line).map_err(read)? == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches(['\n', '\r']);
                    if text.trim().is_empty() {
                        continue;
                    }
                    match text.split_once([' ', '\t']) {
                        Some((digest, p)) => lines.add(&decode_path(p.trim_start_matches([' ', '\t'])), digest),
                        None => self.problem(format!("{MANIFEST} has a line with no path: {text:?}")),
                    }
                }
                self.manifest = Some(lines);
            } else if rel.starts_with("data/") || rel.starts_with("manifest-") {
                std::io::copy(&mut hashing, &mut std::io::sink()).map_err(read)?;
            } else {
                // The small tag files are kept to be read: bagit.txt, bag-info.txt, the tag manifest.
                hashing.read_to_end(&mut kept).map_err(read)?;
            }
            let digest = hex::encode(hashing.hasher.finalize());
            if rel.starts_with("data/") {
                self.payload.add(&rel, &digest);
                self.payload_bytes += hashing.size;
                on_payload(&rel, &digest);
                continue;
            }
            let text = String::from_utf8_lossy(&kept);
            match rel.as_str() {
                "bagit.txt" => self.bagit_version = text.contains("BagIt-Version:"),
                "bag-info.txt" => {
                    self.oxum = text.lines().find_map(|l| l.strip_prefix("Payload-Oxum:")).map(|v| v.trim().to_string())
                }
                TAGMANIFEST => match parse_manifest(&text) {
                    Ok(m) => self.tagmanifest = Some(m),
                    Err(e) => self.problem(format!("{TAGMANIFEST}: {e}")),
                },
                _ => {}
            }
            self.tag_digests.insert(rel, digest);
        }
        Ok(())
    }

    /// Takes in what another verifier read of other parts of the same bag (parts read by
    /// invocations of their own): afterwards this one stands as if it had read them too.
    pub fn merge(&mut self, other: BagVerifier) {
        self.payload_bytes += other.payload_bytes;
        self.payload.merge(&other.payload);
        if let Some(manifest) = other.manifest {
            if self.manifest.is_some() {
                self.problem(format!("{MANIFEST} is in the bag twice"));
            }
            self.manifest = Some(manifest);
        }
        self.tag_digests.extend(other.tag_digests);
        self.bagit_version |= other.bagit_version;
        self.oxum = other.oxum.or(self.oxum.take());
        self.tagmanifest = other.tagmanifest.or(self.tagmanifest.take());
        for p in other.problems {
            self.problem(p);
        }
    }

    fn problem(&mut self, p: String) {
        // Enough to act on; a broken bag could otherwise fill a checkpoint.
        if self.problems.len() < 20 {
            self.problems.push(p);
        }
    }

    /// The bag as a whole, once every part is read.
    pub fn finish(mut self) -> Result<BagSummary, Vec<String>> {
        if !self.bagit_version {
            self.problem("bagit.txt is missing or has no BagIt-Version".into());
        }
        match &self.manifest {
            None => self.problem(format!("{MANIFEST} is missing")),
            Some(m) if m.count != self.payload.count => self.problem(format!(
                "{MANIFEST} lists {} files, but the bag's payload holds {}",
                m.count, self.payload.count
            )),
            Some(m) if *m != self.payload => {
                self.problem(format!("the payload's sha256 digests do not match {MANIFEST}"))
            }
            Some(_) => {}
        }
        if let Some(tagmanifest) = self.tagmanifest.take() {
            for (path, want) in &tagmanifest {
                match self.tag_digests.get(path) {
                    Some(got) if got == want => {}
                    Some(got) => {
                        self.problem(format!("tag file {path} has sha256 {got}, but the tag manifest says {want}"))
                    }
                    None => self.problem(format!("tag file {path} is in the tag manifest but not in the bag")),
                }
            }
        }
        let oxum = format!("{}.{}", self.payload_bytes, self.payload.count);
        match self.oxum.take() {
            Some(v) if v == oxum => {}
            Some(v) => self.problem(format!("Payload-Oxum says {v}, but the payload is {oxum}")),
            None => self.problem("bag-info.txt has no Payload-Oxum".into()),
        }
        if self.problems.is_empty() {
            Ok(BagSummary { payload_files: self.payload.count, payload_bytes: self.payload_bytes })
        } else {
            Err(self.problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_order_free_and_tell_sets_apart() {
        let mut a = DigestSum::default();
        let mut b = DigestSum::default();
        a.add("data/x", "01");
        a.add("data/y", "02");
        b.add("data/y", "02");
        b.add("data/x", "01");
        assert_eq!(a, b);
        let mut c = DigestSum::default();
        c.add("data/x", "02");
        c.add("data/y", "01");
        assert_ne!(a, c, "the same digests on other paths");
        assert_eq!(a.count, 2);
        let (mut x, mut y) = (DigestSum::default(), DigestSum::default());
        x.add("data/x", "01");
        y.add("data/y", "02");
        x.merge(&y);
        assert_eq!(x, a, "a merged sum is the sum of the union");
    }

    /// A bag of three parts read by one verifier, and by three merged: the same verdict, and
    /// a damaged part found either way.
    #[test]
    fn parts_read_apart_and_merged_verify_as_one_reading() {
        let payload: Vec<(String, Vec<u8>)> =
            (0..6).map(|i| (format!("data/objects/f{i}.txt"), format!("file {i}\n").into_bytes())).collect();
        let manifest: String = payload
            .iter()
            .map(|(p, b)| format!("{}  {p}\n", crate::analysis::fixity::sha256_hex(&mut &b[..]).unwrap()))
            .collect();
        let bagit = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n".to_vec();
        let info = format!("Payload-Oxum: {}.6\n", payload.iter().map(|(_, b)| b.len()).sum::<usize>()).into_bytes();
        let tar_of = |entries: &[(String, Vec<u8>)]| -> Vec<u8> {
            let mut b = tar::Builder::new(Vec::new());
            for (path, bytes) in entries {
                let mut h = tar::Header::new_gnu();
                h.set_size(bytes.len() as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, format!("bag/{path}"), &bytes[..]).unwrap();
            }
            b.into_inner().unwrap()
        };
        let parts = [
            tar_of(&[("bag-info.txt".into(), info), ("bagit.txt".into(), bagit)]),
            tar_of(&payload[..3]),
            tar_of(&[payload[3..].to_vec(), vec![("manifest-sha256.txt".to_string(), manifest.into_bytes())]].concat()),
        ];
        let mut one = BagVerifier::default();
        let mut merged = BagVerifier::default();
        for part in &parts {
            one.read_part(&part[..], "bag", &mut |_, _| {}).unwrap();
            let mut apart = BagVerifier::default();
            apart.read_part(&part[..], "bag", &mut |_, _| {}).unwrap();
            merged.merge(apart);
        }
        assert_eq!(merged, one);
        assert!(merged.finish().is_ok());
        let mut damaged = parts[1].clone();
        let at = damaged.windows(6).position(|w| w == b"file 1").unwrap();
        damaged[at] = b'F';
        let mut merged = BagVerifier::default();
        for part in [&parts[0], &damaged, &parts[2]] {
            let mut apart = BagVerifier::default();
            apart.read_part(&part[..], "bag", &mut |_, _| {}).unwrap();
            merged.merge(apart);
        }
        let problems = merged.finish().unwrap_err();
        assert!(problems.iter().any(|p| p.contains("do not match")), "{problems:?}");
    }
}
