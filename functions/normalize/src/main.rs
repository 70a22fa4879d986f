//! normalize ("Normalize", "Normalize for preservation"): the normalize queue's function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    vellum_aws::function::run_stage(vellum_core::model::Stage::Normalize).await
}
