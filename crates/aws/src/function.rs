//! The Lambda side of every function: JSON logs, the AWS adapters built once per cold start,
//! and each event handed to the core in a blocking task with the invocation's remaining
//! time, less a margin, as the stage's deadline. A function's `main.rs` calls one of these.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};

use crate::app::{AwsApp, Names};

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
