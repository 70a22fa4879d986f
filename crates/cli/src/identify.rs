//! `vellum identify`: what the identify stage would call files on disk, without ingesting
//! them — for an archivist checking a folder, and for comparing Vellum's PRONOM matcher with
//! siegfried or DROID (`scripts/agreement.py`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use vellum_core::analysis::pronom::{identify_reader, FormatIdentifier};

#[derive(Args)]
pub struct IdentifyArgs {
    /// Files, or folders whose files (at any depth) are identified.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// A folder of PRONOM signature files to use instead of the built-in ones.
    #[arg(long, env = "VELLUM_SIGNATURES")]
    signatures: Option<PathBuf>,
    /// One JSON object a line: path, puid (null for UNKNOWN), format, version, basis,
    /// others, extension_mismatch, signatures.
    #[arg(long)]
    json: bool,
}

pub fn run(args: IdentifyArgs) -> anyhow::Result<ExitCode> {
    let identifier = match &args.signatures {
        Some(dir) => vellum_host::signatures::load_dir(dir).map_err(|e| anyhow::anyhow!(e))?,
        None => FormatIdentifier::builtin().map_err(|e| anyhow::anyhow!(e))?,
    };
    let mut out = std::io::stdout().lock();
    let mut unreadable = 0;
    for path in args.paths.iter().flat_map(|p| files_of(p)) {
        let path = match path {
            Ok(path) => path,
            Err(e) => {
                eprintln!("vellum: {e}");
                unreadable += 1;
                continue;
            }
        };
        let name = path.to_string_lossy().into_owned();
        let found = match identify_reader(&identifier, || std::fs::File::open(&path), &name) {
            Ok(found) => found,
            Err(e) => {
                eprintln!("vellum: {name}: {e}");
                unreadable += 1;
                continue;
            }
        };
        let format = found.format.as_ref();
        if args.json {
            let line = serde_json::json!({
                "path": name,
                "puid": format.map(|f| f.puid.as_str()),
                "format": format.map(|f| f.name.as_str()),
                "version": format.and_then(|f| f.version.as_deref()),
                "basis": found.basis,
                "others": found.others,
                "extension_mismatch": found.extension_mismatch,
                "signatures": identifier.version,
            });
            writeln!(out, "{line}")?;
        } else {
            writeln!(
                out,
                "{name}\t{}\t{}\t{}",
                format.map_or("UNKNOWN", |f| f.puid.as_str()),
                format.map_or("", |f| f.name.as_str()),
                found.basis
            )?;
        }
    }
    Ok(if unreadable == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The files under `path` in name order (the path itself when it is a file).
fn files_of(path: &Path) -> Vec<std::io::Result<PathBuf>> {
    if !path.is_dir() {
        return vec![Ok(path.to_path_buf())];
    }
    let mut entries = match std::fs::read_dir(path) {
        Ok(entries) => entries.map(|e| e.map(|e| e.path())).collect::<std::io::Result<Vec<_>>>(),
        Err(e) => return vec![Err(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))],
    };
    match &mut entries {
        Ok(entries) => {
            entries.sort();
            entries.iter().filter(|p| !p.is_symlink()).flat_map(|p| files_of(p)).collect()
        }
        Err(e) => vec![Err(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))],
    }
}
