//! Processing profiles are data: the upload's prefix picks one, and it says what the
//! pipeline does (algorithms, scanning, identification, compression, storage space).

use serde::{Deserialize, Serialize};

/// The profiles Vellum ships with; a deployment may load its own file instead.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/profiles.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageKind {
    /// Catalogued material: metadata.csv carries `dc.identifier`.
    Catalogued,
    /// Accessions: metadata.csv carries `collection_reference` and `accession_number`.
    Accession,
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
    #[serde(default)]
    pub limits: Limits,
    /// Desktop clutter left out of `objects/`, by name: a file so named, or anything in a
    /// folder so named (case is ignored). Each one left out is recorded; an empty list
    /// keeps everything.
    #[serde(default = "default_clutter")]
    pub clutter: Vec<String>,
}

/// What Finder, Explorer and their kin leave in folders without being asked.
pub fn default_clutter() -> Vec<String> {
    [".DS_Store", "Thumbs.db", "ehthumbs.db", "desktop.ini", "Icon\r", ".Spotlight-V100", ".Trashes", ".fseventsd"]
        .map(String::from)
        .to_vec()
}

impl Profile {
    /// Whether a path under `objects/` is clutter the profile leaves out.
    pub fn is_clutter(&self, path: &str) -> bool {
        path.split('/').skip(1).any(|part| self.clutter.iter().any(|c| c.eq_ignore_ascii_case(part)))
    }
}

/// What a package may be, at most; intake names the limit a package exceeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    pub max_entries: u64,
    pub max_total_bytes: u64,
    /// Uncompressed size over compressed size, for entries of at least
    /// `ratio_checked_above` bytes (small files compress well without being bombs), and for
    /// the package as a whole once it unpacks to more than that.
    pub max_compression_ratio: u64,
    pub ratio_checked_above: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 1_000_000,
            max_total_bytes: 5 * 1024 * 1024 * 1024 * 1024,
            max_compression_ratio: 1000,
            ratio_checked_above: 1024 * 1024,
        }
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
}

impl Config {
    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    pub fn builtin() -> Self {
        Self::parse(DEFAULT_CONFIG).expect("the built-in profiles file is valid")
    }

    /// The profile whose prefix the key starts with.
    pub fn profile_for_key(&self, key: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| key.starts_with(&p.prefix))
    }

    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
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
