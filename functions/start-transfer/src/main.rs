//! start-transfer ("Verify transfer compliance"): the start queue's function. S3 notifies
//! the queue of each upload (the queue keeps and retries what a failed invocation leaves),
//! and a long tar's listing continues through the same queue.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    vellum_aws::function::run_stage(vellum_core::model::Stage::Start).await
}
