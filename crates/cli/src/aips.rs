//! `vellum aips`: the storage service's read side — what is stored, one AIP or one original
//! file out of it, and an AIP read back and verified.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use vellum_core::operations::storage;

use crate::target::{open_storage, print_json, Target};

#[derive(Subcommand)]
pub enum AipsCommand {
    /// The stored AIPs, by space, identifier and version.
    List {
        #[arg(long)]
        space: Option<String>,
        #[arg(long)]
        identifier: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Copy an AIP (the newest version unless --version) into --out, or with --file one
    /// original file (its path under objects/) out of it.
    Get {
        identifier: String,
        #[arg(long)]
        version: Option<u32>,
        #[arg(long, default_value = ".")]
        out: PathBuf,
        #[arg(long)]
        file: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Read an AIP back: its transfer on record, the bag valid with every digest as recorded,
    /// the METS readable. Exit 0 only when every check passes.
    Verify {
        identifier: String,
        #[arg(long)]
        version: Option<u32>,
        #[command(flatten)]
        target: Target,
    },
}

pub fn run(command: AipsCommand) -> anyhow::Result<ExitCode> {
    match command {
        AipsCommand::List { space, identifier, target } => {
            let (_, aips) = open_storage(&target)?;
            let entries = storage::list(aips.as_ref(), space.as_deref(), identifier.as_deref())?;
            if target.json {
                print_json(&entries);
            } else if entries.is_empty() {
                println!("no stored AIPs");
            } else {
                for e in entries {
                    println!(
                        "{}\t{}\tv{}\t{}\t{} bytes",
                        e.key.space, e.key.identifier, e.key.version, e.key.aip_uuid, e.size
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AipsCommand::Get { identifier, version, out, file, target } => {
            let (_, aips) = open_storage(&target)?;
            let entry = storage::find(aips.as_ref(), &identifier, version)?.with_context(|| {
                format!(
                    "no stored AIP of {identifier:?}{}",
                    version.map(|v| format!(" version {v}")).unwrap_or_default()
                )
            })?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let written = match &file {
                Some(path) => {
                    let name = path.rsplit('/').next().unwrap_or(path);
                    let dest = out.join(name);
                    let mut f = std::fs::File::create(&dest).with_context(|| format!("creating {}", dest.display()))?;
                    if !storage::extract_file(aips.as_ref(), &entry, path, &mut f)? {
                        drop(f);
                        let _ = std::fs::remove_file(&dest);
                        anyhow::bail!("the AIP {} holds no file objects/{path}", entry.key.key);
                    }
                    dest
                }
                None => {
                    let name = entry.key.key.rsplit('/').next().unwrap_or(&entry.key.key).to_string();
                    let dest = out.join(name);
                    let mut f = std::fs::File::create(&dest).with_context(|| format!("creating {}", dest.display()))?;
                    std::io::copy(&mut aips.get(&entry.key.key)?, &mut f)?;
                    dest
                }
            };
            if target.json {
                print_json(&serde_json::json!({"aip": entry, "written": written}));
            } else {
                println!("{}", written.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        AipsCommand::Verify { identifier, version, target } => {
            let (state, aips) = open_storage(&target)?;
            let entry = storage::find(aips.as_ref(), &identifier, version)?
                .with_context(|| format!("no stored AIP of {identifier:?}"))?;
            let checks = storage::verify(state.as_ref(), aips.as_ref(), &entry)?;
            let passed = checks.iter().all(|c| c.passed);
            if target.json {
                print_json(&serde_json::json!({"aip": entry, "checks": checks, "passed": passed}));
            } else {
                println!("{} (v{}, {})", entry.key.identifier, entry.key.version, entry.key.key);
                for c in &checks {
                    println!("  {} {}: {}", if c.passed { "PASS" } else { "FAIL" }, c.check, c.detail);
                }
                println!("{}", if passed { "verified" } else { "NOT verified" });
            }
            Ok(if passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}
