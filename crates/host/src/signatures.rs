//! Newer PRONOM signature files than the built-in ones, read from a folder (fido's `conf/`,
//! or The National Archives' downloads): the newest `DROID_SignatureFile*.xml` and
//! `container-signature-*.xml` there.

use std::path::{Path, PathBuf};

use vellum_core::analysis::pronom::FormatIdentifier;

/// The newest file in `dir` whose name starts with `prefix` and ends `.xml`, by the number
/// in its name.
fn newest(dir: &Path, prefix: &str) -> Result<Option<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix) && n.ends_with(".xml"))
        })
        .collect();
    found.sort_by_key(|p| {
        let digits: String =
            p.file_name().and_then(|n| n.to_str()).unwrap_or("").chars().filter(char::is_ascii_digit).collect();
        (digits.len(), digits)
    });
    Ok(found.pop())
}

fn read(path: &Path) -> Result<(String, String), String> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((name, text))
}

/// Loads the newest signature files of a folder.
pub fn load_dir(dir: &Path) -> Result<FormatIdentifier, String> {
    if !dir.is_dir() {
        return Err(format!(
            "the signature folder {} does not exist: pass --signatures a folder holding DROID_SignatureFile*.xml \
             (and container-signature-*.xml), or leave it out to use the signature files built in",
            dir.display()
        ));
    }
    let droid = newest(dir, "DROID_SignatureFile")?.ok_or_else(|| {
        format!(
            "no DROID_SignatureFile*.xml in {}: download one from The National Archives (scripts/refresh-signatures) \
                 or leave --signatures out to use the signature files built in",
            dir.display()
        )
    })?;
    let (droid_name, droid_text) = read(&droid)?;
    let container = newest(dir, "container-signature")?.map(|p| read(&p)).transpose()?;
    FormatIdentifier::parse(&droid_name, &droid_text, container.as_ref().map(|(n, t)| (n.as_str(), t.as_str())))
        .map_err(|e| e.to_string())
}
