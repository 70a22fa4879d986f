//! `vellum monitor`: the monitor's duties, on demand — what `vellum serve` does on a timer
//! and the `monitor` function on its schedule.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use vellum_core::operations::monitor;
use vellum_core::ports::{Clock, SystemClock};

use crate::target::{open_records, open_uploads, print_json, Target};

#[derive(Args)]
pub struct MonitorArgs {
    #[command(subcommand)]
    pub command: Option<MonitorCommand>,
    #[command(flatten)]
    pub check: CheckArgs,
}

#[derive(Args, Clone)]
pub struct CheckArgs {
    /// Minutes without progress after which a PROCESSING transfer is stuck.
    #[arg(long, default_value_t = 60)]
    pub stuck_after_mins: i64,
    /// List every stuck transfer, not only those not flagged before.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Subcommand)]
pub enum MonitorCommand {
    /// Dead letters end their transfers with the reason; stuck transfers are flagged (once
    /// each); dead-letter depths are shown with the first message's reason. The default.
    Check(CheckArgs),
    /// The transfers that ended in the last days: stored, and failed with their reasons.
    Report {
        #[arg(long, default_value_t = 14)]
        days: i64,
        /// prod or staging: the report is worded for it.
        #[arg(long, default_value = "prod", value_parser = ["prod", "staging"])]
        environment: String,
        /// A Slack-style incoming webhook to post the report to (with curl).
        #[arg(long)]
        webhook: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// The fixity audit: read back the stored AIPs not checked for --every-days (at most
    /// --max this run), record each result as a PREMIS event; exit 1 if one does not match.
    Audit {
        #[arg(long, default_value_t = 90)]
        every_days: i64,
        #[arg(long, default_value_t = 10)]
        max: usize,
        #[command(flatten)]
        target: Target,
    },
    /// Delete the uploads (and their logs) of transfers whose AIP was stored and verified
    /// more than --after-days ago. A failed or refused upload is never deleted.
    CleanUp {
        #[arg(long)]
        after_days: i64,
        #[command(flatten)]
        target: Target,
    },
}

pub fn run(args: MonitorArgs) -> anyhow::Result<ExitCode> {
    match args.command.unwrap_or(MonitorCommand::Check(args.check)) {
        MonitorCommand::Check(check) => {
            let (state, queue) = open_records(&check.target)?;
            let uploads = crate::target::open_uploads(&check.target)?;
            let swept = monitor::sweep_dead_letters(state.as_ref(), uploads.as_ref(), queue.as_ref())?;
            let stuck = monitor::stuck(
                state.as_ref(),
                SystemClock.now(),
                chrono::Duration::minutes(check.stuck_after_mins),
                check.all,
            )?;
            let depths = monitor::dead_letter_depths(state.as_ref(), queue.as_ref())?;
            if check.target.json {
                print_json(
                    &serde_json::json!({"stuck": stuck, "dead_letters": depths, "failed_by_dead_letters": swept.transfers}),
                );
            } else {
                if stuck.is_empty() && depths.is_empty() {
                    println!("nothing stuck, nothing dead-lettered");
                }
                for s in &stuck {
                    println!(
                        "STUCK {} ({}) in \"{}\" since {}; to start it again: {}",
                        s.transfer_id,
                        s.name,
                        s.microservice,
                        s.since.to_rfc3339(),
                        s.retry
                    );
                }
                for d in &depths {
                    println!(
                        "DEAD LETTERS {}: {} message(s); first: {}",
                        d.stage,
                        d.messages,
                        d.first_reason.as_deref().unwrap_or("no error recorded")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        MonitorCommand::Report { days, environment, webhook, target } => {
            let (state, _) = open_records(&target)?;
            let report = monitor::report(state.as_ref(), SystemClock.now(), days, &environment)?;
            if target.json {
                print_json(&report);
            } else {
                print!("{}", report.text());
            }
            if let Some(url) = webhook {
                post_report(&url, &report)?;
                eprintln!("vellum: the report was posted to the webhook");
            }
            Ok(ExitCode::SUCCESS)
        }
        MonitorCommand::Audit { every_days, max, target } => {
            let (state, aips) = crate::target::open_storage(&target)?;
            let org = vellum_core::config::profile::Config::builtin().organization;
            let agents = vellum_core::model::system_agents(&org.repository_code, &org.name);
            let audited = monitor::fixity_audit(
                state.as_ref(),
                aips.as_ref(),
                SystemClock.now(),
                chrono::Duration::days(every_days),
                max,
                &agents,
            )?;
            let passed = audited.iter().all(|a| a.passed);
            if target.json {
                print_json(&audited);
            } else if audited.is_empty() {
                println!("no stored AIP is due for its fixity audit");
            } else {
                for a in &audited {
                    println!(
                        "{} {} ({}): {}",
                        if a.passed { "PASS" } else { "FAIL" },
                        a.aip_key,
                        a.transfer_id,
                        a.detail
                    );
                }
            }
            Ok(if passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        MonitorCommand::CleanUp { after_days, target } => {
            anyhow::ensure!(after_days >= 1, "--after-days is at least 1");
            let (state, _) = open_records(&target)?;
            let uploads = open_uploads(&target)?;
            let cleaned = monitor::clean_up(state.as_ref(), uploads.as_ref(), SystemClock.now(), after_days)?;
            if target.json {
                print_json(&cleaned);
            } else if cleaned.is_empty() {
                println!("nothing to clean up");
            } else {
                for c in cleaned {
                    println!("deleted {} and {} log(s): transfer {} is stored", c.key, c.logs, c.transfer_id);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Posts the report to a Slack-style incoming webhook (with curl, which every machine that
/// runs Vellum has; the default build carries no TLS client of its own).
pub fn post_report(url: &str, report: &monitor::Report) -> anyhow::Result<()> {
    let body = serde_json::to_string(&report.webhook_body())?;
    let posted = std::process::Command::new("curl")
        .args(["--fail", "--silent", "--show-error", "-X", "POST", "-H", "Content-Type: application/json"])
        .args(["--data-binary", &body, url])
        .output()
        .map_err(|e| anyhow::anyhow!("running curl to post the report: {e}"))?;
    if !posted.status.success() {
        anyhow::bail!("the webhook refused the report: {}", String::from_utf8_lossy(&posted.stderr).trim());
    }
    Ok(())
}
