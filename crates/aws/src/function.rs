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

/// The adapters, built once: SDK clients acting as `role` (a stage's function, or its
/// long-job task), the signatures compiled, the pipeline wired.
async fn app(role: &'static str) -> Result<Arc<AwsApp>, Error> {
    init_tracing();
    let names = Names::from_env()?;
    let handle = tokio::runtime::Handle::current();
    let app = tokio::task::spawn_blocking(move || {
        let config = crate::roles::config_as(&handle, role)?;
        AwsApp::with_config(&names, handle, config, Arc::new(AwsApp::format_identifier()?))
    })
    .await??;
    Ok(Arc::new(app))
}

/// The records, built once, acting as `function`.
async fn records_as(function: &'static str) -> Result<Records, Error> {
    let names = Names::from_env()?;
    let handle = tokio::runtime::Handle::current();
    let records = tokio::task::spawn_blocking(move || {
        let config = crate::roles::config_as(&handle, function)?;
        Records::with_config(&names, handle, config)
    })
    .await??;
    Ok(records)
}

/// What is left of the invocation, less the margin.
fn budget(context: &lambda_runtime::Context) -> Duration {
    Duration::from_millis(context.deadline.saturating_sub(now_millis())).saturating_sub(MARGIN)
}

/// A stage's function: SQS batches from its queue, failures reported per message.
pub async fn run_stage(stage: vellum_core::model::Stage) -> Result<(), Error> {
    let app = app(crate::roles::function_of(stage)).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let app = app.clone();
        async move {
            let ctx = vellum_core::StageContext::with_budget(budget(&event.context)).with_long_jobs(app.long_jobs);
            let answer = tokio::task::spawn_blocking(move || {
                crate::lambda::handle_sqs(&app.pipeline, stage, &event.payload, ctx)
            })
            .await?;
            let now = now_millis();
            // Straight to standard output: CloudWatch reads the metric from the line itself.
            println!("{}", crate::lambda::batch_item_failures_metric(stage, &answer, now));
            Ok::<SqsBatchResponse, Error>(answer)
        }
    }))
    .await
}

/// A stage's long-job worker, run as a Fargate task from the stage's function's image
/// (`VELLUM_WORKER=long-jobs`): takes the stage's long-job queue until it is stopped.
pub async fn run_long_jobs(stage: vellum_core::model::Stage) -> Result<(), Error> {
    let role = crate::roles::long_jobs_role_of(stage).ok_or_else(|| format!("the {stage} stage has no long jobs"))?;
    let app = app(role).await?;
    tokio::task::spawn_blocking(move || crate::long_jobs::serve(&app, stage, Duration::from_secs(5))).await?
}

/// The records (built once, acting as `function`), and the report topic when
/// `VELLUM_REPORT_TOPIC_ARN` names one.
async fn records_and_reports(function: &'static str) -> Result<(Arc<Records>, Option<Arc<crate::SnsNotifier>>), Error> {
    init_tracing();
    let records = Arc::new(records_as(function).await?);
    let reports = std::env::var("VELLUM_REPORT_TOPIC_ARN").ok().filter(|t| !t.is_empty()).map(|topic| {
        Arc::new(crate::SnsNotifier::new(
            aws_sdk_sns::Client::new(&records.sdk),
            &topic,
            tokio::runtime::Handle::current(),
        ))
    });
    Ok((records, reports))
}

/// The monitor, on EventBridge's schedules. Every run: each dead-lettered message's
/// transfer ends FAILED with the reason (the messages stay for an operator to redrive),
/// stuck transfers are flagged once each, dead-letter depths logged. With `{"action":
/// "report"}` (the weekly schedule) the report of the last 14 days goes to
/// `VELLUM_REPORT_TOPIC_ARN`; with `{"action": "clean-up"}` uploads stored more than
/// `VELLUM_CLEAN_UP_AFTER_DAYS` ago are deleted (never without that setting); with
/// `{"action": "audit"}` (daily) the fixity audit reads back up to `VELLUM_AUDIT_MAX` AIPs
/// not checked for `VELLUM_AUDIT_EVERY_DAYS`, and a mismatch goes to the report topic.
pub async fn run_monitor() -> Result<(), Error> {
    let (records, reports) = records_and_reports(crate::roles::MONITOR).await?;
    lambda_runtime::run(service_fn(move |scheduled: LambdaEvent<serde_json::Value>| {
        let (records, reports) = (records.clone(), reports.clone());
        async move {
            let action = scheduled.payload.get("action").and_then(|a| a.as_str()).unwrap_or("check").to_string();
            let done =
                tokio::task::spawn_blocking(move || monitor_run(&records, reports.as_deref(), &action)).await??;
            Ok::<_, Error>(done)
        }
    }))
    .await
}

fn monitor_run(
    records: &Records,
    reports: Option<&crate::SnsNotifier>,
    action: &str,
) -> Result<serde_json::Value, vellum_core::ports::PortError> {
    use vellum_core::operations::monitor;
    use vellum_core::ports::Clock;
    let now = vellum_core::ports::SystemClock.now();
    let (state, queue) = (records.state.as_ref(), records.queue.as_ref());
    let sweep = monitor::sweep_dead_letters(state, records.uploads.as_ref(), queue)?;
    let minutes = std::env::var("VELLUM_STUCK_AFTER_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(60);
    let stuck = monitor::stuck(state, now, chrono::Duration::minutes(minutes), false)?;
    for s in &stuck {
        tracing::error!(transfer_id = %s.transfer_id, microservice = %s.microservice, since = %s.since, retry = %s.retry, "a transfer is stuck");
    }
    let depths = monitor::dead_letter_depths(state, queue)?;
    for d in &depths {
        tracing::error!(stage = %d.stage, messages = d.messages, first = ?d.first_reason, "messages are in a dead-letter queue");
    }
    let mut out = serde_json::json!({"action": action, "failed_by_dead_letters": sweep.transfers, "stuck": stuck, "dead_letters": depths});
    match action {
        "report" => {
            let environment = std::env::var("VELLUM_ENVIRONMENT").unwrap_or_else(|_| "prod".into());
            let report = monitor::report(state, now, 14, &environment)?;
            match reports {
                Some(sns) => sns.publish_text(&format!("Vellum {environment}: the last 14 days"), &report.text())?,
                None => tracing::warn!("VELLUM_REPORT_TOPIC_ARN is not set: the report goes to the log only"),
            }
            tracing::info!(report = %report.text(), "the report");
            out["report"] = serde_json::to_value(&report).unwrap_or_default();
        }
        "audit" => {
            let days = std::env::var("VELLUM_AUDIT_EVERY_DAYS").ok().and_then(|d| d.parse().ok()).unwrap_or(90);
            let max = std::env::var("VELLUM_AUDIT_MAX").ok().and_then(|d| d.parse().ok()).unwrap_or(20);
            let org = &records.profiles.organization;
            let agents = vellum_core::model::system_agents(&org.repository_code, &org.name);
            let audited =
                monitor::fixity_audit(state, records.aips.as_ref(), now, chrono::Duration::days(days), max, &agents)?;
            let failed: Vec<_> = audited.iter().filter(|a| !a.passed).collect();
            if let (false, Some(sns)) = (failed.is_empty(), reports) {
                let text = failed
                    .iter()
                    .map(|a| format!("{} ({}): {}", a.aip_key, a.transfer_id, a.detail))
                    .collect::<Vec<_>>()
                    .join("\n");
                sns.publish_text("Vellum: a stored AIP failed its fixity audit", &text)?;
            }
            out["audited"] = serde_json::to_value(&audited).unwrap_or_default();
        }
        "clean-up" => {
            let days =
                std::env::var("VELLUM_CLEAN_UP_AFTER_DAYS").ok().and_then(|d| d.parse::<i64>().ok()).filter(|d| *d > 0);
            if let Some(days) = days {
                out["cleaned_up"] =
                    serde_json::to_value(monitor::clean_up(state, records.uploads.as_ref(), now, days)?)
                        .unwrap_or_default();
            }
        }
        _ => {}
    }
    Ok(out)
}

/// The end-to-end test transfer, on a schedule and after a deploy (invoked by hand): the
/// test package is uploaded, its transfer followed until it ends (or the invocation's time
/// runs out), and every check's result logged and returned; a failure goes to the report
/// topic (`VELLUM_REPORT_TOPIC_ARN`) and fails the invocation, so the Errors alarm sounds.
pub async fn run_test_transfer() -> Result<(), Error> {
    let (records, reports) = records_and_reports(crate::roles::TEST_TRANSFER).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let (records, reports) = (records.clone(), reports.clone());
        async move {
            let budget = budget(&event.context);
            tokio::task::spawn_blocking(move || test_transfer(&records, reports.as_deref(), budget)).await?
        }
    }))
    .await
}

/// One end-to-end test transfer, followed for at most `budget`: the report, or why it failed.
pub fn test_transfer(
    records: &Records,
    reports: Option<&crate::SnsNotifier>,
    budget: Duration,
) -> Result<serde_json::Value, Error> {
    use vellum_core::operations::test_transfer;
    use vellum_core::ports::{Clock, ObjectStore};
    let started = std::time::Instant::now();
    let (identifier, key) = test_transfer::names(vellum_core::ports::SystemClock.now());
    records.uploads.put(&key, &test_transfer::package(&identifier)?)?;
    tracing::info!(%key, %identifier, "the end-to-end test transfer is uploaded");
    let transfer = loop {
        if let Some(t) = records.ended_transfer_of(&key)? {
            break t;
        }
        if started.elapsed() > budget {
            let why = format!("the end-to-end test transfer {key} did not end within {} s", budget.as_secs());
            if let Some(sns) = reports {
                sns.publish_text("Vellum: the end-to-end test transfer did not finish", &why)?;
            }
            return Err(why.into());
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    let checks = test_transfer::judge(&transfer, records.state.as_ref(), records.aips.as_ref())?;
    for c in &checks {
        tracing::info!(check = %c.check, passed = c.passed, detail = %c.detail, "end-to-end check");
    }
    let passed = checks.iter().all(|c| c.passed);
    let report = serde_json::json!({"identifier": identifier, "key": key, "transfer_id": transfer.id, "checks": checks, "passed": passed});
    if !passed {
        let text = checks
            .iter()
            .map(|c| format!("{} {}: {}", if c.passed { "PASS" } else { "FAIL" }, c.check, c.detail))
            .collect::<Vec<_>>()
            .join("\n");
        if let Some(sns) = reports {
            sns.publish_text("Vellum: the end-to-end test transfer FAILED", &text)?;
        }
        return Err(format!("the end-to-end test transfer failed: {text}").into());
    }
    Ok(report)
}

/// The dashboard behind API Gateway's HTTP API: every request through the same router as
/// `vellum serve`'s.
fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

pub async fn run_dashboard() -> Result<(), Error> {
    init_tracing();
    let records = records_as(crate::roles::DASHBOARD).await?;
    // API Gateway's JWT authorizer stands in front: people do not sign in here.
    let dashboard = Arc::new(vellum_dashboard::Dashboard {
        state: records.state.clone(),
        queue: records.queue,
        access: records.access,
        uploads: records.uploads,
        clock: Arc::new(vellum_core::ports::SystemClock),
        config: records.profiles,
        sign_in: false,
        aips: records.aips.clone(),
        links: Some(records.aips),
        dips: records.dips.clone().map(|d| d as Arc<dyn vellum_core::ports::ObjectStore>),
        dip_links: records.dips.map(|d| d as Arc<dyn vellum_dashboard::AipLinks>),
        answers: vellum_dashboard::answer_cache::AnswerCache::for_serving(),
        throttle: vellum_dashboard::throttle::Throttle::default(),
        oidc: vellum_dashboard::oidc::OidcSettings::from_env()
            .map(|s| std::sync::Arc::new(vellum_dashboard::oidc::Oidc::new(s))),
    });
    // The router `vellum serve` serves, with the limits that hold behind API Gateway.
    let router =
        vellum_dashboard::server::router(dashboard.clone(), vellum_dashboard::server::Limits::behind_api_gateway());
    lambda_http::run(lambda_http::service_fn(move |event: lambda_http::Request| {
        let (router, dashboard) = (router.clone(), dashboard.clone());
        async move {
            use tower::ServiceExt;
            let answer = router.oneshot(crate::http_edge::request(event)).await;
            let refused = dashboard.throttle.unreported();
            if refused != Default::default() {
                println!("{}", crate::lambda::refused_credentials_metric(refused, now_millis()));
            }
            answer
        }
    }))
    .await
}
