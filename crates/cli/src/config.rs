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
    /// Check a configuration file (profiles, or format policy rules like config/fpr.json):
    /// every problem, in words; exit 1 when there is one.
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
            // A rules file is an object with "rules"; anything else is read as profiles.
            let is_rules = serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v.get("rules").is_some());
            if is_rules {
                return Ok(check_rules(&file, &text));
            }
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

/// A format policy rules file: each rule's problems, or what it holds by purpose.
fn check_rules(file: &std::path::Path, text: &str) -> ExitCode {
    let problems = match vellum_core::config::fpr::Rules::parse(text) {
        Ok(rules) => match rules.problems() {
            problems if problems.is_empty() => {
                let mut by_purpose = std::collections::BTreeMap::<&str, usize>::new();
                for rule in &rules.rules {
                    *by_purpose.entry(rule.purpose.as_str()).or_default() += 1;
                }
                let counts: Vec<String> = by_purpose.iter().map(|(p, n)| format!("{n} {p}")).collect();
                println!("{}: usable — {} rule(s): {}", file.display(), rules.rules.len(), counts.join(", "));
                return ExitCode::SUCCESS;
            }
            problems => problems,
        },
        Err(e) => vec![format!("not a rules file: {e}")],
    };
    println!("{}: not usable:", file.display());
    for p in problems {
        println!("  - {p}");
    }
    ExitCode::from(1)
}
