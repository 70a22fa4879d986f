//! start-test-transfer: the end-to-end test transfer into the testing space, checked from
//! outside; on a schedule, and invoked after a deploy.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    vellum_aws::function::run_test_transfer().await
}
