//! `vellum dlq`: the messages a stage gave up on, and sending them back.

use clap::Subcommand;
use vellum_core::model::Stage;

use crate::target::{open_records, print_json, Target};

#[derive(Subcommand)]
pub enum DlqCommand {
    /// Each dead-lettered message: its stage, transfer, receive count and last error.
    List {
        /// Only this stage's (start, extract, checksum, scan, identify, characterize, mets,
        /// package, store).
        #[arg(long)]
        stage: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Send dead-lettered messages back to their stage; a transfer the monitor had failed
    /// for the message is reopened, and finishes without duplicating what was done.
    Redrive {
        #[arg(long)]
        stage: Option<String>,
        #[command(flatten)]
        target: Target,
    },
}

fn check_stage(stage: &Option<String>) -> anyhow::Result<Option<Stage>> {
    match stage {
        None => Ok(None),
        Some(s) => match s.parse() {
            Ok(stage) => Ok(Some(stage)),
            Err(_) => anyhow::bail!("no stage {s:?}: the stages are {}", Stage::ALL.map(Stage::name).join(", ")),
        },
    }
}

pub fn run(command: DlqCommand) -> anyhow::Result<()> {
    match command {
        DlqCommand::List { stage, target } => {
            let stage = check_stage(&stage)?;
            let (state, queue) = open_records(&target)?;
            let letters = vellum_core::operations::monitor::dead_letters(state.as_ref(), queue.as_ref(), stage)?;
            if target.json {
                print_json(&letters);
            } else if letters.is_empty() {
                println!("no dead-lettered messages");
            } else {
                for l in letters {
                    let subject = match (l.transfer_id, &l.upload_key) {
                        (Some(id), _) => format!("transfer {id}"),
                        (None, Some(key)) => format!("upload {key}"),
                        (None, None) => "an unreadable message".into(),
                    };
                    println!(
                        "{}\t{subject}\treceived {} times\t{}",
                        l.stage,
                        l.receive_count,
                        l.last_error.as_deref().unwrap_or("no error recorded")
                    );
                }
            }
        }
        DlqCommand::Redrive { stage, target } => {
            let stage = check_stage(&stage)?;
            let (state, queue) = open_records(&target)?;
            let moved = vellum_core::operations::monitor::redrive(state.as_ref(), queue.as_ref(), stage)?;
            if target.json {
                print_json(
                    &moved.iter().map(|(s, n)| serde_json::json!({"stage": s, "redriven": n})).collect::<Vec<_>>(),
                );
            } else if moved.is_empty() {
                println!("no dead-lettered messages to redrive");
            } else {
                for (stage, n) in moved {
                    println!("{stage}: {n} message(s) sent back");
                }
            }
        }
    }
    Ok(())
}
