//! start-transfer ("Verify transfer compliance"): S3's notifications of uploads become transfers.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    vellum_aws::function::run_start().await
}
