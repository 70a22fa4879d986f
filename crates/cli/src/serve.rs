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
use vellum_local::{Embedded, Runner};

use crate::RunOptions;

#[derive(Args)]
pub struct ServeArgs {
    /// Address of the status endpoint.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Milliseconds between looks at the uploads folder.
    #[arg(long, default_value_t = 1000)]
    pub scan_interval_ms: u64,
    #[command(flatten)]
    pub run: RunOptions,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
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
    for request in server.incoming_requests() {
        let (status, body) = route(&env, request.url());
        let response = tiny_http::Response::from_string(body.to_string())
            .with_status_code(status)
            .with_header("Content-Type: application/json".parse::<tiny_http::Header>().expect("a valid header"));
        if let Err(e) = request.respond(response) {
            tracing::warn!(error = %e, "could not answer a status request");
        }
    }
    Ok(())
}

fn route(env: &Embedded, url: &str) -> (u16, serde_json::Value) {
    let path = url.split('?').next().unwrap_or(url).trim_end_matches('/');
    let answer = match path {
        "" | "/status" => status(env),
        p if p.starts_with("/api/transfers/") => transfer(env, &p["/api/transfers/".len()..]),
        _ => return (404, json!({"error": format!("no route {path}")})),
    };
    match answer {
        Ok(Some(v)) => (200, v),
        Ok(None) => (404, json!({"error": "no such transfer"})),
        Err(e) => (500, json!({"error": e.to_string()})),
    }
}

fn status(env: &Embedded) -> anyhow::Result<Option<serde_json::Value>> {
    let transfers = env.state.list_transfers(&TransferQuery { limit: 100, ..Default::default() })?.items;
    let mut depths = serde_json::Map::new();
    for q in queues::ALL {
        depths.insert(
            q.to_string(),
            json!({
                "messages": env.queue.depth(q)?,
                "dead_letters": env.queue.dead_letters(q)?.len(),
            }),
        );
    }
    Ok(Some(json!({ "transfers": transfers, "queues": depths })))
}

fn transfer(env: &Embedded, id: &str) -> anyhow::Result<Option<serde_json::Value>> {
    let Ok(id) = uuid::Uuid::parse_str(id) else {
        return Ok(None);
    };
    let Some(t) = env.state.transfer(id)? else {
        return Ok(None);
    };
    let jobs = env.state.jobs(id)?;
    Ok(Some(json!({ "transfer": t, "jobs": jobs })))
}
