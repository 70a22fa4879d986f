//! Processing profiles are data: the upload's prefix picks one, and it says what the
//! pipeline does (algorithms, scanning, identification, compression, storage space).

use serde::{Deserialize, Serialize};

/// The profiles Vellum ships with; a deployment may load its own file instead.
pub const DEFAULT_CONFIG: &str = include_str!("../../../../config/profiles.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageKind {
    /// Catalogued material: metadata.csv carries `dc.identifier`.
    Catalogued,
    /// Accessions: metadata.csv carries `collection_reference` and `accession_number`.
    Accession,
    /// An Archivematica standard transfer as archivists make them: the files at the top (or
    /// under `objects/`), optional `metadata/`, `submissionDocumentation/` and `logs/`; no
    /// identifier needed, the AIP is filed under the transfer's name.
    Standard,
    /// A zipped BagIt bag (with or without one wrapping folder): its payload is the
    /// transfer, `bag-info.txt` goes into the METS; filed under the transfer's name.
    Bag,
}

impl PackageKind {
    /// Whether the package follows Archivematica's transfer layouts (files anywhere, no
    /// metadata.csv needed) rather than Wellcome's package rule.
    pub fn is_archivematica_transfer(self) -> bool {
        matches!(self, Self::Standard | Self::Bag)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub prefix: String,
    pub kind: PackageKind,
    pub storage_space: String,
    pub checksum_algorithms: Vec<String>,
    pub virus_scan: bool,
    pub format_identification: bool,
    pub gzip_level: u32,
    pub batch_size: u32,
    /// Whether a file the scanner could not look at (too large) fails the transfer.
    #[serde(default)]
    pub fail_unscanned: bool,
    /// Whether packages may supply digests in `metadata/checksum.<algorithm>`.
    #[serde(default)]
    pub supplied_checksums: bool,
    /// Whether a file that fails validation fails the transfer.
    #[serde(default)]
    pub fail_invalid: bool,
    /// Whether originals whose format the rules name (`config/fpr.json`, purpose
    /// `preservation`) get a preservation copy in the AIP.
    #[serde(default)]
    pub normalize_for_preservation: bool,
    /// Whether originals get an access copy (purpose `access`) for the DIP.
    #[serde(default)]
    pub normalize_for_access: bool,
    /// Whether images and videos get a JPEG thumbnail (purpose `thumbnail`) for the DIP.
    #[serde(default)]
    pub thumbnails: bool,
    /// Whether a DIP (access copies, thumbnails, the METS) is stored beside every AIP.
    #[serde(default)]
    pub store_dip: bool,
    /// Whether images get their text read by OCR (purpose `transcription`), kept in the AIP.
    #[serde(default)]
    pub transcribe: bool,
    /// Whether packages inside the transfer (`.zip`, `.tar`, `.tar.gz`) are unpacked beside
    /// themselves, and how deep packages inside those are unpacked in turn.
    #[serde(default)]
    pub extract_packages: bool,
    #[serde(default = "default_package_depth")]
    pub package_depth: u32,
    #[serde(default)]
    pub limits: Limits,
    /// Desktop clutter left out of `objects/`, by name: a file so named, or anything in a
    /// folder so named (case is ignored). Each one left out is recorded; an empty list
    /// keeps everything.
    #[serde(default = "default_clutter")]
    pub clutter: Vec<String>,
}

fn default_package_depth() -> u32 {
    3
}

impl Profile {
    /// Whether the profile has copies made for this purpose.
    pub fn makes(&self, purpose: crate::config::fpr::Purpose) -> bool {
        use crate::config::fpr::Purpose;
        match purpose {
            Purpose::Preservation => self.normalize_for_preservation,
            Purpose::Access => self.normalize_for_access,
            Purpose::Thumbnail => self.thumbnails,
            Purpose::Transcription => self.transcribe,
            Purpose::Characterization | Purpose::Validation | Purpose::Extraction => false,
        }
    }
}

/// What Finder, Explorer and their kin leave in folders without being asked.
pub fn default_clutter() -> Vec<String> {
    [".DS_Store", "Thumbs.db", "ehthumbs.db", "desktop.ini", "Icon\r", ".Spotlight-V100", ".Trashes", ".fseventsd"]
        .map(String::from)
        .to_vec()
}

impl Profile {
    /// The switches a transfer's `processingMCP.xml` may set, by name: one list, read by
    /// `switches` and written by `with_choices`.
    fn switch_fields(&mut self) -> [(&'static str, &mut bool); 8] {
        [
            ("normalize_for_preservation", &mut self.normalize_for_preservation),
            ("normalize_for_access", &mut self.normalize_for_access),
            ("thumbnails", &mut self.thumbnails),
            ("store_dip", &mut self.store_dip),
            ("transcribe", &mut self.transcribe),
            ("extract_packages", &mut self.extract_packages),
            ("virus_scan", &mut self.virus_scan),
            ("format_identification", &mut self.format_identification),
        ]
    }

    /// The profile with a transfer's own choices (`intake::processing`) in place of its
    /// switches; unchanged (and not copied) when the transfer made none.
    pub fn with_choices(&self, choices: &std::collections::BTreeMap<String, bool>) -> std::borrow::Cow<'_, Profile> {
        if choices.is_empty() {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut p = self.clone();
        for (switch, field) in p.switch_fields() {
            if let Some(on) = choices.get(switch) {
                *field = *on;
            }
        }
        std::borrow::Cow::Owned(p)
    }

    /// The switches a transfer's `processingMCP.xml` may set, by name, as the profile has them.
    pub fn switches(&self) -> std::collections::BTreeMap<String, bool> {
        self.clone().switch_fields().into_iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    /// Whether a path under `objects/` is clutter the profile leaves out.
    pub fn is_clutter(&self, path: &str) -> bool {
        path.split('/').skip(1).any(|part| self.clutter.iter().any(|c| c.eq_ignore_ascii_case(part)))
    }
}

/// What a package may be, at most; intake names the limit a package exceeds. A zip bomb is
/// caught by what a bomb is — sizes declared past these limits (and each entry held to its
/// declared size while it inflates), entries that share their bytes, archives nested past
/// `package_depth` — not by how well one entry compresses: a file of zeros is a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    pub max_entries: u64,
    pub max_total_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_entries: 1_000_000, max_total_bytes: 5 * 1024 * 1024 * 1024 * 1024 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub repository_code: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestingSpace {
    pub space: String,
    pub identifier_prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub organization: Organization,
    pub testing_space: TestingSpace,
    pub profiles: Vec<Profile>,
    /// Which outside tool characterizes or validates which formats (`fpr.rs`); absent, the
    /// rules built in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_policy: Option<Vec<crate::config::fpr::Rule>>,
    /// A second storage location for every AIP, in embedded mode (on AWS the template's
    /// replica bucket, `VELLUM_REPLICA_BUCKET`): absent, one location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaLocation>,
}

/// Where embedded mode keeps the second copy of every AIP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaLocation {
    /// A folder: absolute, or relative to the data folder. Put it on another disk.
    pub folder: String,
}

impl Config {
    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    pub fn builtin() -> Self {
        let mut config = Self::parse(DEFAULT_CONFIG).expect("the built-in profiles file is valid");
        config.format_policy = Some(crate::config::fpr::Rules::builtin().rules);
        config
    }

    /// The format policy the configuration gives, or the one built in.
    pub fn format_policy(&self) -> crate::config::fpr::Rules {
        match &self.format_policy {
            Some(rules) => crate::config::fpr::Rules { rules: rules.clone() },
            None => crate::config::fpr::Rules::builtin(),
        }
    }

    /// A configuration file, read and checked: the configuration, or every problem with it
    /// (where it is, and what is wrong), so that a deployment never runs a half-read one.
    pub fn load(text: &str) -> Result<Self, Vec<String>> {
        let config: Self =
            serde_json::from_str(text).map_err(|e| vec![format!("line {}, column {}: {e}", e.line(), e.column())])?;
        config.check()?;
        Ok(config)
    }

    /// What makes a configuration unusable, each in words.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let plain = |s: &str| !s.is_empty() && s.split('/').all(crate::intake::sanitize::is_safe_component);
        if self.organization.repository_code.trim().is_empty() {
            problems
                .push("organization.repository_code is empty: it names the repository in every PREMIS agent".into());
        }
        if self.organization.name.trim().is_empty() {
            problems.push("organization.name is empty: it is the bag's Source-Organization".into());
        }
        if !plain(&self.testing_space.space) {
            problems.push(format!("testing_space.space {:?} cannot name a storage space", self.testing_space.space));
        }
        if self.profiles.is_empty() {
            problems.push("there is no profile: every upload would be refused".into());
        }
        for (i, p) in self.profiles.iter().enumerate() {
            let at = format!("profile {:?}", p.name);
            if self.profiles[..i].iter().any(|q| q.name == p.name) {
                problems.push(format!("{at} is named twice"));
            }
            if !p.prefix.ends_with('/') || p.prefix.len() < 2 || !plain(p.prefix.trim_end_matches('/')) {
                problems.push(format!("{at}: the prefix {:?} must be a folder name ending in \"/\"", p.prefix));
            }
            if let Some(q) =
                self.profiles[..i].iter().find(|q| q.prefix.starts_with(&p.prefix) || p.prefix.starts_with(&q.prefix))
            {
                problems
                    .push(format!("{at}: the prefix {:?} overlaps profile {:?}'s {:?}", p.prefix, q.name, q.prefix));
            }
            if !plain(&p.storage_space) {
                problems.push(format!("{at}: the storage space {:?} cannot name a folder", p.storage_space));
            }
            if p.checksum_algorithms.is_empty() {
                problems.push(format!("{at}: no checksum algorithm (give sha256)"));
            }
            for a in &p.checksum_algorithms {
                if !["md5", "sha1", "sha256", "sha512"].contains(&a.as_str()) {
                    problems.push(format!("{at}: the checksum algorithm {a:?} is not md5, sha1, sha256 or sha512"));
                }
            }
            if !p.checksum_algorithms.iter().any(|a| a == "sha256") {
                problems.push(format!("{at}: sha256 is needed (the bag's manifest and the fixity checks use it)"));
            }
            if p.gzip_level > 9 {
                problems.push(format!("{at}: gzip_level is 0 (a plain tar) to 9, not {}", p.gzip_level));
            }
            if p.batch_size == 0 {
                problems.push(format!("{at}: batch_size is at least 1"));
            }
        }
        if let Some(rules) = &self.format_policy {
            let rules = crate::config::fpr::Rules { rules: rules.clone() };
            problems.extend(rules.problems().into_iter().map(|p| format!("format policy: {p}")));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The profile whose prefix the key starts with.
    pub fn profile_for_key(&self, key: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| key.starts_with(&p.prefix))
    }

    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// Every storage space an AIP can be stored in: each profile's, and the testing space.
    pub fn storage_spaces(&self) -> Vec<String> {
        let mut spaces: Vec<String> = self.profiles.iter().map(|p| p.storage_space.clone()).collect();
        spaces.push(self.testing_space.space.clone());
        spaces.sort();
        spaces.dedup();
        spaces
    }

    /// The storage space an AIP goes to: test identifiers go to the testing space.
    pub fn storage_space(&self, profile: &Profile, identifier: &str) -> String {
        if identifier.starts_with(&self.testing_space.identifier_prefix) {
            self.testing_space.space.clone()
        } else {
            profile.storage_space.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_choose_profiles_and_test_identifiers_go_to_testing() {
        let c = Config::builtin();
        let bd = c.profile_for_key("born-digital/PP/ABC.zip").unwrap();
        assert_eq!(bd.name, "born_digital");
        let acc = c.profile_for_key("born-digital-accessions/x.zip").unwrap();
        assert_eq!(acc.name, "b_dig_accessions");
        assert!(c.profile_for_key("elsewhere/x.zip").is_none());
        assert_eq!(c.storage_space(bd, "PP/ABC/1"), "born-digital");
        assert_eq!(c.storage_space(bd, "archivematica-dev/TEST-1"), "testing");
    }
}
