//! `vellum e2e`: the end-to-end test transfer. A small package of real formats (a PNG, a
//! PDF in a nested folder, a text file whose name is sanitized, nothing infected) goes in
//! with an identifier starting `archivematica-dev/TEST`, so that its AIP is stored in the
//! testing space, never beside real ones; the outcome is checked from outside the pipeline
//! (the AIP read back, its bag, digests and METS), one line per check and a verdict. Exit 0
//! only when every check passes.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use vellum_core::model::{EventOutcome, Transfer, TransferStatus};
use vellum_core::ports::{ObjectStore, Queue, StateStore};
use vellum_core::storage::{self, Check};

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

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d,
    0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

const PDF: &str =
    "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n\
trailer << /Root 1 0 R >>\n%%EOF\n";

/// The test package, as zip bytes.
fn package(identifier: &str) -> anyhow::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let metadata = format!("filename,dc.identifier,dc.title\nobjects/,{identifier},Vellum end-to-end test\n");
    let files: [(&str, &[u8]); 4] = [
        ("metadata/metadata.csv", metadata.as_bytes()),
        ("objects/images/plan.png", PNG),
        ("objects/letters/1901/letter.pdf", PDF.as_bytes()),
        ("objects/notes: draft?.txt", b"A note whose name needs sanitizing.\n"),
    ];
    for (name, bytes) in files {
        zip.start_file(name, options)?;
        zip.write_all(bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// The ended transfer, and where to read its records and its AIP.
type Ended = (Transfer, Arc<dyn StateStore>, Arc<dyn ObjectStore>);

fn check(name: &str, passed: bool, detail: impl Into<String>) -> Check {
    Check { check: name.into(), passed, detail: detail.into() }
}

pub fn run(args: E2eArgs) -> anyhow::Result<ExitCode> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%3f");
    let identifier = format!("archivematica-dev/TEST-{stamp}");
    let key = format!("born-digital/vellum-e2e-{stamp}.zip");
    let bytes = package(&identifier)?;
    let timeout = Duration::from_secs(args.timeout_secs);
    let (transfer, state, aips) = match &args.aws_endpoint {
        Some(endpoint) => aws(endpoint, &key, &bytes, timeout)?,
        None => {
            let env = args.run.open()?;
            let meta = env.uploads.put(&key, &bytes)?;
            let event = vellum_local::watcher::upload_event(env.uploads.bucket(), &meta);
            let runner = vellum_local::Runner::start(env.pipeline.clone(), env.queue.clone(), args.run.runner_config());
            env.queue.send(vellum_core::messages::queues::START, &serde_json::to_string(&event)?)?;
            let outcome = crate::ingest::watch(&env, &event.idempotency_key(), &event);
            runner.stop();
            (outcome?, env.state.clone() as Arc<dyn StateStore>, env.aips.clone() as Arc<dyn ObjectStore>)
        }
    };
    let checks = judge(&transfer, state.as_ref(), aips.as_ref())?;
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

/// Every check of the outcome, from the records and the stored AIP.
fn judge(t: &Transfer, state: &dyn StateStore, aips: &dyn ObjectStore) -> anyhow::Result<Vec<Check>> {
    let mut checks = vec![check(
        "the transfer is COMPLETE",
        t.status == TransferStatus::Complete,
        match &t.failure_reason {
            Some(r) => format!("{}: {r}", t.status.as_str()),
            None => t.status.as_str().to_string(),
        },
    )];
    let Some(aip_key) = &t.aip_key else {
        checks.push(check("the AIP is stored", false, "no AIP was stored"));
        return Ok(checks);
    };
    checks.push(check("the AIP is in the testing space", aip_key.starts_with("testing/"), aip_key.clone()));
    let files = state.all_files(t.id)?;
    let events = state.all_events(t.id)?;
    let originals: Vec<_> = files.iter().filter(|f| f.current_path.starts_with("objects/")).collect();
    let unidentified: Vec<&str> =
        originals.iter().filter(|f| f.format.is_none()).map(|f| f.current_path.as_str()).collect();
    checks.push(check(
        "every original has a format",
        unidentified.is_empty() && originals.len() == 3,
        if unidentified.is_empty() {
            originals
                .iter()
                .map(|f| format!("{} {}", f.current_path, f.format.as_ref().map_or("", |x| x.puid.as_str())))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            format!("not identified: {}", unidentified.join(", "))
        },
    ));
    let scanned = originals
        .iter()
        .filter(|f| {
            events.iter().any(|e| {
                e.file_uuid == Some(f.uuid) && e.event_type == "virus check" && e.outcome == EventOutcome::Pass
            })
        })
        .count();
    checks.push(check(
        "every original passed the virus check",
        scanned == originals.len(),
        format!("{scanned} of {} scanned clean", originals.len()),
    ));
    let renamed = files.iter().filter(|f| f.original_path != f.current_path).count();
    checks.push(check(
        "the awkward name was sanitized and its original kept",
        renamed >= 1,
        format!("{renamed} renamed"),
    ));
    match storage::find(aips, &t.identifiers.external_identifier().unwrap_or_default(), t.aip_version)? {
        Some(entry) => checks.extend(storage::verify(state, aips, &entry)?),
        None => checks.push(check("the stored AIP is found by its identifier", false, aip_key.clone())),
    }
    Ok(checks)
}

#[cfg(feature = "aws")]
fn aws(endpoint: &str, key: &str, bytes: &[u8], timeout: Duration) -> anyhow::Result<Ended> {
    use std::time::Instant;
    use vellum_core::ports::TransferQuery;
    std::env::set_var("AWS_ENDPOINT_URL", endpoint);
    let rt = Box::leak(Box::new(tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?));
    let names = vellum_aws::app::Names::from_env().map_err(anyhow::Error::msg)?;
    let records = vellum_aws::app::Records::new(&names, rt.handle().clone());
    records.uploads.put(key, bytes)?;
    eprintln!("vellum: uploaded {key} to {}; waiting for the stack to process it", names.uploads_bucket);
    let deadline = Instant::now() + timeout;
    loop {
        let found = records
            .state
            .list_transfers(&TransferQuery { limit: 100, ..Default::default() })?
            .items
            .into_iter()
            .find(|t| t.source_key == key);
        if let Some(t) = found.filter(|t| t.status.is_terminal()) {
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
