//! dashboard: the JSON API behind API Gateway's HTTP API (and its JWT authorizer).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    vellum_aws::function::run_dashboard().await
}
