//! `vellum serve`: the local runner as a long-lived service, the uploads folder watched as
//! the bucket, and a minimal status endpoint.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use vellum_core::messages::queues;
use vellum_core::ports::{Queue, StateStore, TransferQuery};
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
    let server =
        tiny_http::Server::http(&args.listen).map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let _runner = Runner::start(env.pipeline.clone(), env.queue.clone(), args.run.runner_config());
    tracing::info!(
        data_dir = %env.data_dir.display(),
        listen = %args.listen,
        "serving: drop packages into {}/<prefix>/",
        env.uploads.root().display()
    );
    let watcher_env = env.clone();
    let interval = Duration::from_millis(args.scan_interval_ms.max(50));
    std::thread::Builder::new()
        .name("watcher".into())
        .spawn(move || {
            let mut watcher = Watcher::default();
            loop {
                if let Err(e) = watcher.scan(watcher_env.uploads.as_ref(), watcher_env.queue.as_ref()) {
                    tracing::warn!(error = %e, "could not scan the uploads folder");
                }
                std::thread::sleep(interval);
            }
        })
        .context("starting the uploads watcher")?;
    answer(&server, env.state.as_ref(), env.queue.as_ref());
    Ok(())
}

/// Answers status requests until the server stops.
fn answer(server: &tiny_http::Server, state: &dyn StateStore, queue: &dyn Queue) {
    for request in server.incoming_requests() {
        let (status, body) = route(state, queue, request.url());
        let response = tiny_http::Response::from_string(body.to_string())
            .with_status_code(status)
            .with_header("Content-Type: application/json".parse::<tiny_http::Header>().expect("a valid header"));
        if let Err(e) = request.respond(response) {
            tracing::warn!(error = %e, "could not answer a status request");
        }
    }
}

#[cfg(feature = "aws")]
fn run_aws(args: &ServeArgs, endpoint: &str) -> anyhow::Result<()> {
    // The SDK takes its endpoint from the standard configuration.
    std::env::set_var("AWS_ENDPOINT_URL", endpoint);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let names = vellum_aws::app::Names::from_env().map_err(anyhow::Error::msg)?;
    let app = Arc::new(vellum_aws::app::AwsApp::new(&names, rt.handle().clone()).map_err(anyhow::Error::msg)?);
    let server =
        tiny_http::Server::http(&args.listen).map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let budget = Duration::from_secs(args.run.budget_secs);
    let visibility = Duration::from_secs(args.run.visibility_secs.max(1));
    let runner = app.clone();
    std::thread::Builder::new()
        .name("aws-runner".into())
        .spawn(move || loop {
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
    answer(&server, app.state.as_ref(), app.queue.as_ref());
    Ok(())
}

#[cfg(not(feature = "aws"))]
fn run_aws(_args: &ServeArgs, _endpoint: &str) -> anyhow::Result<()> {
    anyhow::bail!("this vellum was built without AWS support: build it with `cargo build -p vellum-cli --features aws`")
}

fn route(state: &dyn StateStore, queue: &dyn Queue, url: &str) -> (u16, serde_json::Value) {
    let path = url.split('?').next().unwrap_or(url).trim_end_matches('/');
    let answer = match path {
        "" | "/status" => status(state, queue),
        p if p.starts_with("/api/transfers/") => transfer(state, &p["/api/transfers/".len()..]),
        _ => return (404, json!({"error": format!("no route {path}")})),
    };
    match answer {
        Ok(Some(v)) => (200, v),
        Ok(None) => (404, json!({"error": "no such transfer"})),
        Err(e) => (500, json!({"error": e.to_string()})),
    }
}

fn status(state: &dyn StateStore, queue: &dyn Queue) -> anyhow::Result<Option<serde_json::Value>> {
    let transfers = state.list_transfers(&TransferQuery { limit: 100, ..Default::default() })?.items;
    let mut depths = serde_json::Map::new();
    for q in queues::ALL {
        depths.insert(
            q.to_string(),
            json!({
                "messages": queue.depth(q)?,
                "dead_letters": queue.dead_letters(q)?.len(),
            }),
        );
    }
    Ok(Some(json!({ "transfers": transfers, "queues": depths })))
}

fn transfer(state: &dyn StateStore, id: &str) -> anyhow::Result<Option<serde_json::Value>> {
    let Ok(id) = uuid::Uuid::parse_str(id) else {
        return Ok(None);
    };
    let Some(t) = state.transfer(id)? else {
        return Ok(None);
    };
    let jobs = state.jobs(id)?;
    Ok(Some(json!({ "transfer": t, "jobs": jobs })))
}
