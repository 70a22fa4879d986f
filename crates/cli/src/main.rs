//! `vellum`: ingest one package end to end, or serve the local runner and dashboard.

mod access;
mod aips;
mod config;
mod dlq;
mod e2e;
mod identify;
mod ingest;
mod monitor;
mod serve;
mod target;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "vellum", version, about = "Vellum: a digital-preservation ingest pipeline (embedded mode)")]
struct Cli {
    /// Log format on stderr: text or json.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest one transfer package end to end: upload, process, store and verify the AIP.
    ///
    /// Exit codes: 0 stored (COMPLETE), 3 refused at intake (REJECTED), 4 a later stage
    /// failed (FAILED), 1 an internal error, 2 a usage error.
    Ingest(ingest::IngestArgs),
    /// Run the pipeline as a service: watch DIR/uploads/<prefix>/ (born-digital/,
    /// born-digital-accessions/, standard/, bags/ — one per profile, created at start) for packages as if it were the uploads
    /// bucket, process them, and serve the dashboard on --listen: the sign-in page (/sign-in),
    /// the transfer list (/), the JSON API (/api/transfers, /api/aips; described at
    /// /api/openapi.json), Archivematica's API (/api/transfer/…, /api/ingest/…,
    /// /api/v2beta/…) and /health.
    Serve(serve::ServeArgs),
    /// Register, remove and list the people and scripts' owners who may use the dashboard.
    #[command(subcommand)]
    Users(access::UsersCommand),
    /// Create, revoke and list API keys (Archivematica's `Authorization: ApiKey user:key`).
    #[command(subcommand, name = "api-keys")]
    ApiKeys(access::KeysCommand),
    /// Dead-lettered messages: list them, send them back.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// The end-to-end test transfer: a small package of real formats into the testing
    /// space, checked from outside; exit 0 only when every check passes.
    E2e(e2e::E2eArgs),
    /// The monitor: stuck transfers and dead letters (check), the period report, the
    /// clean-up of stored uploads.
    Monitor(monitor::MonitorArgs),
    /// The configuration: show the one a run would use, or check a file.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Stored AIPs: list them, get one (or one original file), verify one.
    #[command(subcommand)]
    Aips(aips::AipsCommand),
    /// Identify files (or every file under folders) as the identify stage would: PRONOM
    /// PUID, format and how it was found, one line a file.
    Identify(identify::IdentifyArgs),
}

/// Options every command that runs the pipeline shares.
#[derive(Args, Clone, Debug)]
pub struct RunOptions {
    /// The data folder: uploads/, working/, aips/ and vellum.db live here.
    #[arg(long, default_value = "./vellum-data", env = "VELLUM_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Messages in flight per stage.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Files per batch, overriding the profile (smaller batches spread work more).
    #[arg(long)]
    pub batch_size: Option<u32>,
    /// Seconds one stage invocation may run before it checkpoints and continues.
    #[arg(long, default_value_t = 300)]
    pub budget_secs: u64,
    /// Seconds a received message stays hidden before another worker may take it.
    #[arg(long, default_value_t = 30)]
    pub visibility_secs: u64,
    /// Receives before a message goes to its dead-letter queue.
    #[arg(long, default_value_t = 5)]
    pub max_receives: u32,
    /// The ClamAV daemon to scan with (HOST:PORT), or `none` to record every file as not
    /// scanned.
    #[arg(long, env = "VELLUM_CLAMD", default_value = "127.0.0.1:3310")]
    pub clamd: String,
    /// A folder of newer PRONOM signature files (DROID_SignatureFile*.xml and
    /// container-signature-*.xml, as The National Archives publishes them, or opf-fido's
    /// `conf/`), or `none` to record identification as not performed. Default: the
    /// signature files built into Vellum.
    #[arg(long, env = "VELLUM_SIGNATURES")]
    pub signatures: Option<String>,
    /// The configuration file: the organization, the testing space and the processing
    /// profiles (prefixes, checksums, scanning, limits, storage spaces), as `vellum config
    /// show` prints them. Default: the configuration built in.
    #[arg(long, env = "VELLUM_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The configuration a run uses: the file given, checked, or the built-in one.
pub fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<vellum_core::config::profile::Config> {
    let Some(path) = path else {
        return Ok(vellum_core::config::profile::Config::builtin());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading the configuration {}: {e}", path.display()))?;
    vellum_core::config::profile::Config::load(&text).map_err(|problems| {
        anyhow::anyhow!("the configuration {} is not usable: {}", path.display(), problems.join("; "))
    })
}

impl RunOptions {
    pub fn open(&self) -> anyhow::Result<vellum_local::Embedded> {
        let mut options = vellum_local::EmbeddedOptions {
            max_receives: self.max_receives,
            config: load_config(self.config.as_deref())?,
            ..Default::default()
        };
        options.settings.batch_size = self.batch_size;
        options.scanner = self.scanner()?;
        options.format_identifier = self.identifier()?;
        Ok(vellum_local::Embedded::open(&self.data_dir, options)?)
    }

    fn scanner(&self) -> anyhow::Result<Option<std::sync::Arc<dyn vellum_core::ports::VirusScanner>>> {
        if self.clamd == "none" {
            return Ok(None);
        }
        let clamd = vellum_clamd::Clamd::new(&self.clamd);
        if !clamd.ping() {
            anyhow::bail!(
                "clamd does not answer at {}: start it (scripts/clamd start), point --clamd (or VELLUM_CLAMD) at yours, \
                 or pass --clamd none to record files as not scanned",
                self.clamd
            );
        }
        Ok(Some(std::sync::Arc::new(clamd)))
    }

    fn identifier(&self) -> anyhow::Result<Option<std::sync::Arc<vellum_core::analysis::pronom::FormatIdentifier>>> {
        let identifier = match self.signatures.as_deref() {
            Some("none") => return Ok(None),
            Some(dir) => vellum_host::signatures::load_dir(&PathBuf::from(dir)).map_err(|e| anyhow::anyhow!(e))?,
            None => vellum_core::analysis::pronom::FormatIdentifier::builtin().map_err(|e| anyhow::anyhow!(e))?,
        };
        tracing::info!(signatures = %identifier.version, formats = identifier.format_count(), "PRONOM signatures loaded");
        Ok(Some(std::sync::Arc::new(identifier)))
    }

    pub fn runner_config(&self) -> vellum_local::RunnerConfig {
        vellum_local::RunnerConfig {
            workers_per_stage: self.workers.max(1),
            visibility: std::time::Duration::from_secs(self.visibility_secs.max(1)),
            budget: std::time::Duration::from_secs(self.budget_secs),
            ..Default::default()
        }
    }
}

/// fido's signature folder in the project's venv, looked for from the working folder up.
fn init_tracing(format: &str, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VELLUM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colour only for a person at a terminal: a log file or a pipe gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if format == "json" {
        builder.json().with_current_span(true).init();
    } else {
        builder.with_target(false).init();
    }
}

/// glibc gives each thread that allocates an arena of its own (up to eight a core) and
/// raises its mmap threshold after large blocks are freed, so the buffers of a dozen stage
/// workers stay resident long after use: with two arenas and a fixed threshold, large
/// buffers go back to the system when freed (peak RSS 250 → 160 MB on 10,000 files;
/// docs/performance.md).
fn keep_memory_near_the_live_set() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

fn main() -> ExitCode {
    keep_memory_near_the_live_set();
    let cli = Cli::parse();
    // A service says what it is doing; a command says only what goes wrong.
    let level = if matches!(cli.command, Command::Serve(_)) { "info" } else { "warn" };
    init_tracing(&cli.log_format, level);
    let done = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
    let result = match cli.command {
        Command::Ingest(args) => ingest::run(args),
        Command::Serve(args) => done(serve::run(args)),
        Command::Users(command) => done(access::users(command)),
        Command::ApiKeys(command) => done(access::api_keys(command)),
        Command::Dlq(command) => done(dlq::run(command)),
        Command::E2e(args) => e2e::run(args),
        Command::Monitor(args) => monitor::run(args),
        Command::Config(command) => config::run(command),
        Command::Aips(command) => aips::run(command),
        Command::Identify(args) => identify::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vellum: {e:#}");
            ExitCode::from(1)
        }
    }
}
