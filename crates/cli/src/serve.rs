//! `vellum serve`: the local runner as a long-lived service, the uploads folder watched as
//! the bucket, and the dashboard's router answering on `--listen`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use vellum_dashboard::Dashboard;
use vellum_local::watcher::Watcher;
use vellum_local::Runner;

use crate::RunOptions;

#[derive(Args)]
pub struct ServeArgs {
    /// Address of the status endpoint.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Milliseconds between looks at the uploads folder.
    #[arg(long, default_value_t = 1000)]
    pub scan_interval_ms: u64,
    /// Seconds a package in the uploads folder must stay unchanged (and not open for
    /// writing) before it is announced.
    #[arg(long, default_value_t = 2)]
    pub settle_secs: u64,
    /// Seconds a zip or tar that does not end as its format ends waits (a copy from another
    /// machine, stalled) before intake judges it.
    #[arg(long, default_value_t = 600)]
    pub grace_secs: u64,
    /// Minutes without progress after which the monitor flags a transfer as stuck.
    #[arg(long, default_value_t = 60)]
    pub stuck_after_mins: i64,
    /// Delete an upload and its logs this many days after its AIP was stored and verified
    /// (off unless given; a failed or refused upload is never deleted).
    #[arg(long)]
    pub clean_up_after_days: Option<i64>,
    /// Read each stored AIP back at least this often (the fixity audit, a few a minute).
    #[arg(long, default_value_t = 90)]
    pub audit_every_days: i64,
    /// Post the report of the last 14 days to this Slack-style webhook every 7 days.
    #[arg(long)]
    pub report_webhook: Option<String>,
    /// prod or staging: the weekly report is worded for it.
    #[arg(long, default_value = "prod", value_parser = ["prod", "staging"])]
    pub environment: String,
    /// Run every stage against this AWS endpoint (the emulator `infra/local/up` starts;
    /// its exports name the buckets, table and queues) instead of the data folder: each
    /// queue is polled as Lambda's event-source mappings would, and the same handlers the
    /// functions use are called. Needs a vellum built with `--features aws`.
    #[arg(long)]
    pub aws_endpoint: Option<String>,
    #[command(flatten)]
    pub run: RunOptions,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    if let Some(endpoint) = args.aws_endpoint.clone() {
        return run_aws(&args, &endpoint);
    }
    let env = Arc::new(args.run.open()?);
    // The profile folders, there from the start: a person sees where packages go.
    let mut prefixes = Vec::new();
    for profile in &env.pipeline.config.profiles {
        let folder = env.uploads.root().join(profile.prefix.trim_end_matches('/'));
        std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
        prefixes.push(folder.display().to_string());
    }
    println!("Vellum is watching {} for packages (zip, tar, tar.gz).", prefixes.join(" and "));
    let server = listen(&args.listen)?;
    let _runner = Runner::start(env.pipeline.clone(), env.queue.clone(), args.run.runner_config());
    tracing::info!(
        data_dir = %env.data_dir.display(),
        listen = %args.listen,
        "serving: drop packages into {}/<prefix>/",
        env.uploads.root().display()
    );
    let watcher_env = env.clone();
    let interval = Duration::from_millis(args.scan_interval_ms.max(50));
    let (settle, grace) = (Duration::from_secs(args.settle_secs), Duration::from_secs(args.grace_secs));
    std::thread::Builder::new()
        .name("watcher".into())
        .spawn(move || {
            let mut watcher = Watcher::new(settle, grace);
            loop {
                if let Err(e) = watcher.scan(watcher_env.uploads.as_ref(), watcher_env.queue.as_ref()) {
                    tracing::warn!(error = %e, "could not scan the uploads folder");
                }
                std::thread::sleep(interval);
            }
        })
        .context("starting the uploads watcher")?;
    let org = &env.pipeline.config.organization;
    let agents = vellum_core::model::system_agents(&org.repository_code, &org.name);
    spawn_monitor(&args, env.state.clone(), Some(env.uploads.clone()), env.aips.clone(), agents)?;
    tracing::info!("sign in at http://{}/sign-in", args.listen);
    println!("Vellum is serving. Sign in at http://{}/sign-in", args.listen);
    let dashboard = Dashboard {
        state: env.state.clone(),
        queue: env.queue.clone(),
        access: env.access.clone(),
        uploads: env.uploads.clone(),
        clock: env.pipeline.clock.clone(),
        config: env.pipeline.config.clone(),
        sign_in: true,
        aips: env.aips.clone(),
        links: None,
        dips: Some(env.dips.clone()),
        dip_links: None,
        answers: vellum_dashboard::answer_cache::AnswerCache::for_serving(),
        throttle: vellum_dashboard::throttle::Throttle::default(),
        oidc: vellum_dashboard::oidc::OidcSettings::from_env()
            .map(|s| std::sync::Arc::new(vellum_dashboard::oidc::Oidc::new(s))),
    };
    answer(server, dashboard)
}

/// How much lower than the pipeline's the dashboard's threads run (nice 10: about a tenth of
/// a core's share while stages compete for it). Readers of the status page must not slow the
/// ingest they watch; when the stages wait, the readers have the cores.
const DASHBOARD_NICENESS: libc::c_int = 10;

/// Lowers the calling thread's priority (Linux's nice is per thread, and threads it starts
/// inherit it). Failing to is no reason not to serve.
fn lower_priority() {
    // SAFETY: plain system calls on the calling thread; no memory is shared.
    let done = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, DASHBOARD_NICENESS)
    };
    if done != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "the dashboard runs at the pipeline's priority");
    }
}

/// Binds the dashboard's address now, so that a taken port is said before anything starts.
fn listen(address: &str) -> anyhow::Result<std::net::TcpListener> {
    std::net::TcpListener::bind(address).with_context(|| format!("cannot listen on {address}"))
}

/// Serves the dashboard until the process ends: the stack both worlds share
/// (`vellum_dashboard::server`), on its own two threads at the dashboard's lower priority.
fn answer(server: std::net::TcpListener, dashboard: Dashboard) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("dashboard")
        .on_thread_start(lower_priority)
        .enable_all()
        .build()
        .context("starting the dashboard's server")?;
    let limits = vellum_dashboard::server::Limits::default();
    let router = vellum_dashboard::server::router(Arc::new(dashboard), limits.clone());
    rt.block_on(vellum_dashboard::server::listen::serve(server, router, limits)).context("serving the dashboard")
}

const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often the monitor's timer runs in `serve`.
const MONITOR_EVERY: Duration = Duration::from_secs(60);

/// The monitor's schedule, as a timer: stuck transfers flagged (once each, in the log), and
/// the clean-up when it is asked for. Dead letters are the runner's (embedded) or the
/// sweep's (AWS).
fn spawn_monitor(
    args: &ServeArgs,
    state: std::sync::Arc<dyn vellum_core::ports::StateStore>,
    uploads: Option<std::sync::Arc<dyn vellum_core::ports::ObjectStore>>,
    aips: std::sync::Arc<dyn vellum_core::ports::ObjectStore>,
    agents: Vec<vellum_core::model::Agent>,
) -> anyhow::Result<()> {
    use vellum_core::ports::Clock;
    let stuck_after = chrono::Duration::minutes(args.stuck_after_mins.max(1));
    let clean_up = args.clean_up_after_days;
    let audit_every = chrono::Duration::days(args.audit_every_days.max(1));
    let (webhook, environment) = (args.report_webhook.clone(), args.environment.clone());
    let mut last_report = std::time::Instant::now();
    std::thread::Builder::new()
        .name("monitor".into())
        .spawn(move || loop {
            std::thread::sleep(MONITOR_EVERY);
            let now = vellum_core::ports::SystemClock.now();
            match vellum_core::operations::monitor::stuck(state.as_ref(), now, stuck_after, false) {
                Ok(stuck) => {
                    for s in stuck {
                        tracing::warn!(transfer_id = %s.transfer_id, microservice = %s.microservice, since = %s.since, retry = %s.retry, "a transfer is stuck");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "the monitor could not look for stuck transfers"),
            }
            if let Err(e) = vellum_core::operations::monitor::fixity_audit(state.as_ref(), aips.as_ref(), now, audit_every, 3, &agents) {
                tracing::warn!(error = %e, "the fixity audit could not run");
            }
            if let Some(url) = webhook.as_deref().filter(|_| last_report.elapsed() >= WEEK) {
                last_report = std::time::Instant::now();
                let posted = vellum_core::operations::monitor::report(state.as_ref(), now, 14, &environment)
                    .map_err(anyhow::Error::from)
                    .and_then(|report| crate::monitor::post_report(url, &report));
                if let Err(e) = posted {
                    tracing::warn!(error = %e, "the weekly report could not be posted");
                }
            }
            if let (Some(days), Some(uploads)) = (clean_up, uploads.as_ref()) {
                if let Err(e) = vellum_core::operations::monitor::clean_up(state.as_ref(), uploads.as_ref(), now, days) {
                    tracing::warn!(error = %e, "the clean-up failed");
                }
            }
        })
        .context("starting the monitor")?;
    Ok(())
}

/// How often `serve --aws-endpoint` looks at the dead-letter queues, as the monitor does.
#[cfg(feature = "aws")]
const SWEEP_EVERY: Duration = Duration::from_secs(30);

#[cfg(feature = "aws")]
fn run_aws(args: &ServeArgs, endpoint: &str) -> anyhow::Result<()> {
    // The SDK takes its endpoint from the standard configuration.
    std::env::set_var("AWS_ENDPOINT_URL", endpoint);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut names = vellum_aws::app::Names::from_env().map_err(anyhow::Error::msg)?;
    // --clamd (or VELLUM_CLAMD) decides here as in embedded mode; `none` scans nothing.
    names.clamd = (args.run.clamd != "none").then(|| args.run.clamd.clone());
    // Each function acts with its own credentials (VELLUM_LOCAL_ROLES), as on Lambda.
    let handle = rt.handle().clone();
    let fleet = Arc::new(vellum_aws::runner::Fleet::from_env(&names, handle.clone()).map_err(anyhow::Error::msg)?);
    let records_as = |function: &str| -> anyhow::Result<vellum_aws::app::Records> {
        let config = vellum_aws::roles::config_as(&handle, function).map_err(anyhow::Error::msg)?;
        vellum_aws::app::Records::with_config(&names, handle.clone(), config).map_err(anyhow::Error::msg)
    };
    let monitor = Arc::new(records_as(vellum_aws::roles::MONITOR)?);
    let people = records_as(vellum_aws::roles::DASHBOARD)?;
    let server = listen(&args.listen)?;
    let budget = Duration::from_secs(args.run.budget_secs);
    let visibility = Duration::from_secs(args.run.visibility_secs.max(1));
    let org = &people.profiles.organization;
    let agents = vellum_core::model::system_agents(&org.repository_code, &org.name);
    spawn_monitor(args, monitor.state.clone(), Some(monitor.uploads.clone()), monitor.aips.clone(), agents)?;
    let runner = fleet.clone();
    let mut last_sweep = std::time::Instant::now();
    std::thread::Builder::new()
        .name("aws-runner".into())
        .spawn(move || loop {
            // The monitor function's schedule, here a timer.
            if last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = std::time::Instant::now();
                if let Err(e) = vellum_core::operations::monitor::sweep_dead_letters(
                    monitor.state.as_ref(),
                    monitor.uploads.as_ref(),
                    monitor.queue.as_ref(),
                ) {
                    tracing::warn!(error = %e, "could not look at the dead-letter queues");
                }
            }
            match vellum_aws::runner::poll_once(&runner, budget, visibility, Duration::from_secs(1)) {
                Ok(0) => std::thread::sleep(Duration::from_millis(200)),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "polling the queues failed; trying again");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        })
        .context("starting the runner")?;
    tracing::info!(%endpoint, listen = %args.listen, uploads = %names.uploads_bucket, "serving against AWS");
    println!("Vellum is serving against {endpoint}. Sign in at http://{}/sign-in", args.listen);
    let dashboard = Dashboard {
        state: people.state.clone(),
        queue: people.queue.clone(),
        access: people.access.clone(),
        uploads: people.uploads.clone(),
        clock: Arc::new(vellum_core::ports::SystemClock),
        config: people.profiles.clone(),
        sign_in: true,
        aips: people.aips.clone(),
        // S3's links, as on AWS (the emulator's URL).
        links: Some(people.aips.clone()),
        dips: people.dips.clone().map(|d| d as Arc<dyn vellum_core::ports::ObjectStore>),
        dip_links: people.dips.clone().map(|d| d as Arc<dyn vellum_dashboard::AipLinks>),
        answers: vellum_dashboard::answer_cache::AnswerCache::for_serving(),
        throttle: vellum_dashboard::throttle::Throttle::default(),
        oidc: vellum_dashboard::oidc::OidcSettings::from_env()
            .map(|s| std::sync::Arc::new(vellum_dashboard::oidc::Oidc::new(s))),
    };
    answer(server, dashboard)
}

#[cfg(not(feature = "aws"))]
fn run_aws(_args: &ServeArgs, _endpoint: &str) -> anyhow::Result<()> {
    anyhow::bail!("this vellum was built without AWS support: build it with `cargo build -p vellum-cli --features aws`")
}
