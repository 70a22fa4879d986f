//! identify ("Identify file format"): the identify queue's function; the signatures are built in.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    vellum_aws::function::run_stage(vellum_core::model::Stage::Identify).await
}
