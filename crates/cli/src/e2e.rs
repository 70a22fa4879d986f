//! `vellum e2e`: the end-to-end test transfer. A small package of real formats (a PNG, a
//! PDF in a nested folder, a text file whose name is sanitized, nothing infected) goes in
//! with an identifier starting `archivematica-dev/TEST`, so that its AIP is stored in the
//! testing space, never beside real ones; the outcome is checked from outside the pipeline
//! (the AIP read back, its bag, digests and METS), one line per check and a verdict. Exit 0
//! only when every check passes.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use vellum_core::model::Stage;

use clap::Args;
use vellum_core::model::Transfer;
use vellum_core::operations::test_transfer;
use vellum_core::ports::{ObjectStore, Queue, StateStore};

use crate::target::print_json;
use crate::RunOptions;

#[derive(Args)]
pub struct E2eArgs {
    /// Run against this AWS endpoint's stack (its functions, or `serve --aws-endpoint`,
    /// process the transfer) instead of the data folder, where this command runs the
    /// pipeline itself.
    #[arg(long)]
    pub aws_endpoint: Option<String>,
    /// How long to wait for the transfer to end.
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
    /// Print JSON instead of lines.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunOptions,
}

/// The ended transfer, and where to read its records and its AIP.
type Ended = (Transfer, Arc<dyn StateStore>, Arc<dyn ObjectStore>);

pub fn run(args: E2eArgs) -> anyhow::Result<ExitCode> {
    let (identifier, key) = test_transfer::names(chrono::Utc::now());
    let bytes = test_transfer::package(&identifier).map_err(|e| anyhow::anyhow!("building the test package: {e}"))?;
    let timeout = Duration::from_secs(args.timeout_secs);
    let (transfer, state, aips) = match &args.aws_endpoint {
        Some(endpoint) => aws(endpoint, &key, &bytes, timeout)?,
        None => {
            let env = args.run.open()?;
            let meta = env.uploads.put(&key, &bytes)?;
            let event = vellum_local::watcher::upload_event(env.uploads.bucket(), &meta);
            let runner = vellum_local::Runner::start(env.pipeline.clone(), env.queue.clone(), args.run.runner_config());
            env.queue.send(Stage::Start.name(), &serde_json::to_string(&event)?)?;
            let outcome = crate::ingest::watch(&env, &event.idempotency_key(), &event);
            runner.stop();
            (outcome?, env.state.clone() as Arc<dyn StateStore>, env.aips.clone() as Arc<dyn ObjectStore>)
        }
    };
    let checks = test_transfer::judge(&transfer, state.as_ref(), aips.as_ref())?;
    let passed = checks.iter().all(|c| c.passed);
    if args.json {
        print_json(&serde_json::json!({
            "identifier": identifier, "key": key, "transfer_id": transfer.id,
            "aip_key": transfer.aip_key, "checks": checks, "passed": passed,
        }));
    } else {
        println!("end-to-end test transfer {identifier} ({key}), transfer {}", transfer.id);
        for c in &checks {
            println!("  {} {}: {}", if c.passed { "PASS" } else { "FAIL" }, c.check, c.detail);
        }
        println!("e2e: {}", if passed { "PASS" } else { "FAIL" });
    }
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

#[cfg(feature = "aws")]
fn aws(endpoint: &str, key: &str, bytes: &[u8], timeout: Duration) -> anyhow::Result<Ended> {
    use std::time::Instant;
    let records = crate::target::aws_records(endpoint)?;
    records.uploads.put(key, bytes)?;
    eprintln!("vellum: uploaded {key} to {}; waiting for the stack to process it", records.uploads.bucket());
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(t) = records.ended_transfer_of(key)? {
            return Ok((t, records.state.clone(), records.aips.clone()));
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "the test transfer did not end within {} s: is the stack (or serve --aws-endpoint) running?",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[cfg(not(feature = "aws"))]
fn aws(_endpoint: &str, _key: &str, _bytes: &[u8], _timeout: Duration) -> anyhow::Result<Ended> {
    anyhow::bail!("this vellum was built without AWS support: build it with `cargo build -p vellum-cli --features aws`")
}
