//! The Lambda side of every function: JSON logs, the AWS adapters built once per cold start,
//! and each event handed to the core in a blocking task with the invocation's remaining
//! time, less a margin, as the stage's deadline. A function's `main.rs` calls one of these.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};

use crate::app::{AwsApp, Names, Records};

/// Time kept back from the invocation's deadline: to record a checkpoint, send the
/// continuation and answer.
const MARGIN: Duration = Duration::from_secs(20);

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VELLUM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().json().with_env_filter(filter).with_current_span(true).try_init();
}

/// The adapters, built once: SDK clients, the signatures compiled, the pipeline wired.
async fn app() -> Result<Arc<AwsApp>, Error> {
    init_tracing();
    let names = Names::from_env()?;
    let handle = tokio::runtime::Handle::current();
    let app = tokio::task::spawn_blocking(move || AwsApp::new(&names, handle)).await??;
    Ok(Arc::new(app))
}

/// What is left of the invocation, less the margin.
fn budget(context: &lambda_runtime::Context) -> Duration {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    Duration::from_millis(context.deadline.saturating_sub(now)).saturating_sub(MARGIN)
}

/// A stage's function: SQS batches from its queue, failures reported per message.
pub async fn run_stage(stage: &'static str) -> Result<(), Error> {
    let app = app().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let app = app.clone();
        async move {
            let budget = budget(&event.context);
            let answer = tokio::task::spawn_blocking(move || {
                crate::lambda::handle_sqs(&app.pipeline, stage, &event.payload, budget)
            })
            .await?;
            Ok::<SqsBatchResponse, Error>(answer)
        }
    }))
    .await
}

/// The monitor, on EventBridge's schedule: each dead-lettered message's transfer ends as
/// FAILED with the reason (the messages stay for an operator to redrive), and what was
/// found is logged and returned.
pub async fn run_monitor() -> Result<(), Error> {
    init_tracing();
    let names = Names::from_env()?;
    let handle = tokio::runtime::Handle::current();
    let records = Arc::new(tokio::task::spawn_blocking(move || Records::new(&names, handle)).await?);
    lambda_runtime::run(service_fn(move |_scheduled: LambdaEvent<serde_json::Value>| {
        let records = records.clone();
        async move {
            let sweep = tokio::task::spawn_blocking(move || {
                vellum_core::monitor::sweep_dead_letters(records.state.as_ref(), records.queue.as_ref())
            })
            .await??;
            for (stage, count) in &sweep.per_stage {
                tracing::error!(stage, count, "messages are in a dead-letter queue");
            }
            Ok::<_, Error>(serde_json::to_value(&sweep)?)
        }
    }))
    .await
}

/// The dashboard behind API Gateway's HTTP API: every request through the same router as
/// `vellum serve`'s.
pub async fn run_dashboard() -> Result<(), Error> {
    init_tracing();
    let names = Names::from_env()?;
    let handle = tokio::runtime::Handle::current();
    let records = tokio::task::spawn_blocking(move || Records::new(&names, handle)).await?;
    // API Gateway's JWT authorizer stands in front: people do not sign in here.
    let dashboard = Arc::new(vellum_dashboard::Dashboard {
        state: records.state.clone(),
        queue: records.queue,
        access: records.state,
        uploads: records.uploads,
        clock: Arc::new(vellum_core::ports::SystemClock),
        config: records.profiles,
        sign_in: false,
    });
    lambda_http::run(lambda_http::service_fn(move |event: lambda_http::Request| {
        let dashboard = dashboard.clone();
        async move {
            let request = crate::http_edge::request(&event);
            let answer = tokio::task::spawn_blocking(move || dashboard.handle(&request)).await?;
            Ok::<_, Error>(crate::http_edge::response(answer))
        }
    }))
    .await
}
