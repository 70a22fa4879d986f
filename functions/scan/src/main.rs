//! scan ("Scan for viruses"): the scan queue's function; clamd is reached over TCP.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    vellum_aws::function::run_stage(vellum_core::model::Stage::Scan).await
}
