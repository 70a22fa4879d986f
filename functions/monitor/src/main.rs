//! monitor: on EventBridge's schedule, dead-lettered messages' transfers are ended as FAILED
//! with their reason, and what was found is logged.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    vellum_aws::function::run_monitor().await
}
