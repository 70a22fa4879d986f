//! normalize ("Normalize", "Normalize for preservation"): the normalize queue's function,
//! and, from the same image as a Fargate task (`VELLUM_WORKER=long-jobs`), the worker that
//! takes the long jobs the function hands to the `normalize-long` queue.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let stage = vellum_core::model::Stage::Normalize;
    match std::env::var("VELLUM_WORKER").as_deref() {
        Ok("long-jobs") => vellum_aws::function::run_long_jobs(stage).await,
        _ => vellum_aws::function::run_stage(stage).await,
    }
}
