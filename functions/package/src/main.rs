//! package ("Compress AIP"): the package queue's function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    vellum_aws::function::run_stage(vellum_core::model::Stage::Package).await
}
