//! `vellum ingest`: upload a package into the embedded bucket, run the pipeline until the
//! transfer ends, show progress on stderr, and report the outcome.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;
use vellum_core::model::starts_a_transfer;
use vellum_core::model::Stage;
use vellum_core::model::{Transfer, TransferStatus};
use vellum_core::ports::{JobLedger, ObjectStore, Queue, TransferRegister};
use vellum_local::watcher::upload_event;
use vellum_local::{Embedded, Runner};

use crate::RunOptions;

#[derive(Args)]
pub struct IngestArgs {
    /// The transfer package: a zip, tar or tar.gz holding objects/ and metadata/metadata.csv.
    pub package: PathBuf,
    /// The key the package would have in the uploads bucket; its prefix chooses the
    /// processing profile. Default: born-digital/<file name>.
    #[arg(long)]
    pub key: Option<String>,
    /// Print one JSON object with the outcome on stdout at the end.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunOptions,
}

/// The `--json` report: field names are a contract scripts rely on.
#[derive(Serialize)]
struct Report {
    transfer_id: Option<uuid::Uuid>,
    sip_uuid: Option<uuid::Uuid>,
    aip_uuid: Option<uuid::Uuid>,
    name: Option<String>,
    status: String,
    /// The stored AIP file, or null.
    aip: Option<PathBuf>,
    aip_key: Option<String>,
    /// The stored DIP's folder, or null (the profile stores none, or the transfer ended
    /// before it).
    dip: Option<PathBuf>,
    reason: Option<String>,
    files: u64,
    /// Files whose virus check was not performed (null when the transfer ended before it
    /// was counted).
    files_not_scanned: Option<u64>,
    /// Originals a copy could not be made of (their `normalization` event failed, with the
    /// tool's words); null when the transfer ended before they were counted.
    files_not_normalized: Option<u64>,
    /// Their paths, for the closing line.
    #[serde(skip)]
    not_normalized: Vec<String>,
    /// How the files' validation statements came out (passed, failed, not performed); null
    /// when the transfer ended before they were counted.
    validation: Option<vellum_core::model::ValidationCounts>,
    seconds: f64,
    /// Seconds each stage's workers were busy, added across workers (absent when the
    /// pipeline never ran).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    stage_busy_seconds: BTreeMap<String, f64>,
}

/// A mistake in how `vellum ingest` was called: exit 2, with the fix.
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

pub fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    match ingest(&args, started) {
        Ok(report) => finish(&args, report),
        Err(e) => {
            let usage = e.downcast_ref::<Usage>().is_some();
            if args.json {
                let report = Report {
                    transfer_id: None,
                    sip_uuid: None,
                    aip_uuid: None,
                    name: None,
                    status: "ERROR".into(),
                    aip: None,
                    aip_key: None,
                    dip: None,
                    reason: Some(format!("{e:#}")),
                    files: 0,
                    files_not_scanned: None,
                    files_not_normalized: None,
                    not_normalized: Vec::new(),
                    validation: None,
                    seconds: started.elapsed().as_secs_f64(),
                    stage_busy_seconds: BTreeMap::new(),
                };
                let mut out = std::io::stdout().lock();
                serde_json::to_writer(&mut out, &report)?;
                writeln!(out)?;
            }
            eprintln!("vellum: {e:#}");
            Ok(ExitCode::from(if usage { 2 } else { 1 }))
        }
    }
}

/// Checks what was asked before anything is uploaded; a mistake is a `Usage` error.
fn check_usage(args: &IngestArgs) -> anyhow::Result<String> {
    let package = &args.package;
    if package.is_dir() {
        return Err(Usage(format!(
            "{} is a folder: zip the folder's contents, not the folder (cd \"{}\" && zip -r ../package.zip objects metadata), \
             and ingest the zip",
            package.display(),
            package.display()
        ))
        .into());
    }
    if !package.is_file() {
        return Err(Usage(format!(
            "{} does not exist: give the path of the package, a zip (or tar, tar.gz) holding objects/ and metadata/metadata.csv",
            package.display()
        ))
        .into());
    }
    let file_name = package
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Usage(format!("{} is not a file name Vellum can read", package.display())))?
        .to_string();
    let key = args.key.clone().unwrap_or_else(|| format!("born-digital/{file_name}"));
    let profiles = crate::load_config(args.run.config.as_deref())?;
    if profiles.profile_for_key(&key).is_none() {
        let prefixes: Vec<String> = profiles.profiles.iter().map(|p| p.prefix.clone()).collect();
        return Err(Usage(format!(
            "--key {key:?} is under no profile's prefix, so nothing would process it: start it with one of {}",
            prefixes.join(", ")
        ))
        .into());
    }
    Ok(key)
}

fn ingest(args: &IngestArgs, started: Instant) -> anyhow::Result<Report> {
    let key = check_usage(args)?;
    if !starts_a_transfer(&key) {
        return Ok(Report {
            transfer_id: None,
            sip_uuid: None,
            aip_uuid: None,
            name: None,
            status: TransferStatus::Rejected.as_str().into(),
            aip: None,
            aip_key: None,
            dip: None,
            reason: Some(format!(
                "the key {key:?} does not end in .zip, .tar.gz, .tgz or .tar, so an upload there would start nothing"
            )),
            files: 0,
            files_not_scanned: None,
            files_not_normalized: None,
            not_normalized: Vec::new(),
            validation: None,
            seconds: started.elapsed().as_secs_f64(),
            stage_busy_seconds: BTreeMap::new(),
        });
    }
    let env = args.run.open()?;
    let event = upload(&env, &args.package, &key)?;
    let idem = event.idempotency_key();
    let runner = Runner::start(env.pipeline.clone(), env.queue.clone(), args.run.runner_config());
    env.queue.send(Stage::Start.name(), &serde_json::to_string(&event)?)?;
    eprintln!("vellum: uploaded {} as {key}", args.package.display());
    let outcome = watch(&env, &idem, &event);
    let busy = runner.stop();
    let transfer = outcome?;
    let aip = transfer.aip_key.as_ref().map(|k| env.aips.root().join(k));
    // Named one by one only when there are any: reading them costs a read of every event.
    let not_normalized = match transfer.files_not_normalized {
        Some(n) if n > 0 => vellum_core::record::normalization::not_normalized_paths(
            env.state.as_ref(),
            env.state.as_ref(),
            transfer.id,
        )?,
        _ => Vec::new(),
    };
    // A refused package has no SIP and no AIP: none is reported.
    let refused = transfer.status == TransferStatus::Rejected;
    Ok(Report {
        transfer_id: Some(transfer.id),
        sip_uuid: (!refused).then_some(transfer.sip_uuid),
        aip_uuid: (!refused).then_some(transfer.aip_uuid),
        name: Some(transfer.name.clone()),
        status: transfer.status.as_str().into(),
        aip: aip.map(|p| fs::canonicalize(&p).unwrap_or(p)),
        aip_key: transfer.aip_key.clone(),
        dip: transfer.dip_key.as_ref().map(|k| {
            let p = env.dips.root().join(k);
            fs::canonicalize(&p).unwrap_or(p)
        }),
        reason: transfer.failure_reason.clone(),
        files: transfer.file_count,
        files_not_scanned: transfer.files_not_scanned,
        files_not_normalized: transfer.files_not_normalized,
        not_normalized,
        validation: transfer.validation,
        seconds: started.elapsed().as_secs_f64(),
        stage_busy_seconds: busy.into_iter().map(|(stage, d)| (stage.to_string(), d.as_secs_f64())).collect(),
    })
}

fn finish(args: &IngestArgs, report: Report) -> anyhow::Result<ExitCode> {
    let code = match report.status.as_str() {
        "COMPLETE" => 0,
        "REJECTED" => 3,
        "FAILED" => 4,
        _ => 1,
    };
    match (&report.aip, &report.reason) {
        (Some(aip), _) => {
            let not_scanned = match report.files_not_scanned {
                Some(n) if n > 0 => format!(" ({n} NOT scanned for viruses: see virusScan.log in the AIP)"),
                _ => String::new(),
            };
            if !report.not_normalized.is_empty() {
                eprintln!(
                    "vellum: no preservation copy could be made of {} file(s) (their normalization events say why): {}",
                    report.not_normalized.len(),
                    report.not_normalized.join(", ")
                );
            }
            if let Some(v) = report.validation {
                eprintln!(
                    "vellum: validation: {} passed, {} failed, {} not performed (nothing validates their format)",
                    v.passed, v.failed, v.not_performed
                );
            }
            // The status line stays the last line: scripts read it as the outcome.
            eprintln!(
                "vellum: {} — {} files stored and verified{not_scanned} in {:.1}s",
                report.status, report.files, report.seconds
            );
            if !args.json {
                println!("AIP stored at {}", aip.display());
            }
        }
        (None, Some(reason)) => eprintln!("vellum: {}: {reason}", report.status),
        (None, None) => eprintln!("vellum: {}", report.status),
    }
    if args.json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    }
    Ok(ExitCode::from(code))
}

/// Copies the package into the uploads folder under `key`, as an S3 PUT would.
fn upload(env: &Embedded, package: &Path, key: &str) -> anyhow::Result<vellum_core::model::messages::UploadEvent> {
    env.uploads.path_of(key).map_err(|e| anyhow::anyhow!("the key {key:?} cannot be used: {e}"))?;
    let mut source = fs::File::open(package).with_context(|| format!("opening {}", package.display()))?;
    let mut writer = env.uploads.writer(key)?;
    std::io::copy(&mut source, &mut writer)?;
    let meta = writer.commit()?;
    Ok(upload_event(env.uploads.bucket(), &meta))
}

/// Follows the transfer until it ends, printing each job as it starts and finishes.
pub(crate) fn watch(
    env: &Embedded,
    idem: &str,
    event: &vellum_core::model::messages::UploadEvent,
) -> anyhow::Result<Transfer> {
    let mut progress = Progress::new(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let Some(id) = env.state.transfer_for_event(idem)? else {
            if env.queue.dead_letters(Stage::Start.name())?.iter().any(|d| d.body.contains(&event.sequencer)) {
                bail!("the start microservice kept failing and its message was dead-lettered (see the log)");
            }
            continue;
        };
        let transfer = env.state.transfer(id)?.context("the transfer vanished from the state store")?;
        progress.show(&transfer, &env.state.jobs(id)?);
        if transfer.status.is_terminal() {
            progress.done();
            return Ok(transfer);
        }
    }
}

/// How often, at most, a progress line goes to a file or a pipe.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Progress on stderr. At a terminal: one line per stage, redrawn in place, with counts and
/// rate. To a file or a pipe: a line when a stage starts or ends, and at most one line of
/// batch counts every few seconds.
struct Progress {
    live: bool,
    started: Instant,
    announced: bool,
    /// stage → its status word, as last written.
    status: BTreeMap<String, String>,
    /// stage → batches done, as last written.
    counts: BTreeMap<String, u32>,
    last_count_line: Option<Instant>,
    drawn: usize,
}

impl Progress {
    fn new(live: bool) -> Self {
        Self {
            live,
            started: Instant::now(),
            announced: false,
            status: BTreeMap::new(),
            counts: BTreeMap::new(),
            last_count_line: None,
            drawn: 0,
        }
    }

    fn line(&self, job: &vellum_core::model::Job, transfer: &Transfer) -> String {
        let per_file = job.stage.parse::<Stage>().is_ok_and(Stage::is_per_file) && transfer.batch_count > 0;
        let counts = if per_file {
            let seconds = (job.ended_at.unwrap_or_else(chrono::Utc::now) - job.started_at).num_milliseconds().max(1)
                as f64
                / 1000.0;
            format!(
                " {}/{} batches, {:.1} batches/s",
                job.batches_done,
                transfer.batch_count,
                job.batches_done as f64 / seconds
            )
        } else {
            String::new()
        };
        format!("  {:<34} {:<44} {}{counts}", job.microservice_group, job.name, job.status.as_str())
    }

    fn show(&mut self, transfer: &Transfer, jobs: &[vellum_core::model::Job]) {
        if !self.announced {
            eprintln!("vellum: transfer {} ({}), profile {}", transfer.id, transfer.name, transfer.profile);
            self.announced = true;
        }
        if self.live {
            let lines: Vec<String> = jobs.iter().map(|j| self.line(j, transfer)).collect();
            let mut err = std::io::stderr().lock();
            if self.drawn > 0 {
                let _ = write!(err, "\x1b[{}A", self.drawn);
            }
            for l in &lines {
                let _ = writeln!(err, "\x1b[2K{l}");
            }
            self.drawn = lines.len();
            return;
        }
        let mut counts_changed = false;
        for job in jobs {
            let word = job.status.as_str().to_string();
            if self.status.get(&job.stage) != Some(&word) {
                eprintln!(
                    "  [{:>6.1}s] {}",
                    self.started.elapsed().as_secs_f64(),
                    self.line(job, transfer).trim_start_matches(' ')
                );
                self.status.insert(job.stage.clone(), word);
                self.counts.insert(job.stage.clone(), job.batches_done);
            } else if self.counts.get(&job.stage) != Some(&job.batches_done) {
                counts_changed = true;
            }
        }
        let due = self.last_count_line.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
        if counts_changed && due {
            let running: Vec<String> = jobs
                .iter()
                .filter(|j| j.status == vellum_core::model::JobStatus::Processing && j.batches_done > 0)
                .map(|j| format!("{} {}/{}", j.name, j.batches_done, transfer.batch_count))
                .collect();
            if !running.is_empty() {
                eprintln!("  [{:>6.1}s] progress: {}", self.started.elapsed().as_secs_f64(), running.join("; "));
            }
            for job in jobs {
                self.counts.insert(job.stage.clone(), job.batches_done);
            }
            self.last_count_line = Some(Instant::now());
        }
    }

    fn done(&mut self) {
        self.drawn = 0;
    }
}
