//! `vellum config`: the configuration a run uses (organization, testing space, profiles), as
//! data — shown, or a file checked before it is deployed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the configuration a run would use: --config (or VELLUM_CONFIG), else the one
    /// built in. Edit it and pass it back with --config.
    Show {
        #[arg(long, env = "VELLUM_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Check a configuration file: every problem, in words; exit 1 when there is one.
    Check { file: PathBuf },
}

pub fn run(command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Show { config } => {
            let config = crate::load_config(config.as_deref())?;
            println!("{}", serde_json::to_string_pretty(&config)?);
            Ok(ExitCode::SUCCESS)
        }
        ConfigCommand::Check { file } => {
            let text =
                std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            match vellum_core::config::profile::Config::load(&text) {
                Ok(config) => {
                    println!(
                        "{}: usable — {} profile(s): {}",
                        file.display(),
                        config.profiles.len(),
                        config
                            .profiles
                            .iter()
                            .map(|p| format!("{} ({})", p.name, p.prefix))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(problems) => {
                    println!("{}: not usable:", file.display());
                    for p in problems {
                        println!("  - {p}");
                    }
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}
