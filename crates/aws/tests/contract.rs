//! The AWS adapters keep the ports' contracts: the same checks as the embedded adapters, on
//! the local AWS emulator that the test command starts (`eval "$(infra/local/up)"`).

use std::sync::OnceLock;

use vellum_aws::{S3Store, SqsQueue};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime")
    })
}

fn config() -> &'static aws_config::SdkConfig {
    static CONFIG: OnceLock<aws_config::SdkConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        assert!(
            std::env::var_os("AWS_ENDPOINT_URL").is_some(),
            "these tests run against the local AWS emulator: eval \"$(infra/local/up)\" first (scripts/test does)"
        );
        vellum_aws::load_config(runtime().handle())
    })
}

/// A new, empty bucket.
fn fresh_bucket() -> S3Store {
    let client = vellum_aws::s3_client(config());
    let name = format!("vellum-contract-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let region = config().region().map(|r| r.to_string()).unwrap_or_else(|| "eu-west-1".into());
    let create = client.create_bucket().bucket(&name).create_bucket_configuration(
        aws_sdk_s3::types::CreateBucketConfiguration::builder()
            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region.as_str()))
            .build(),
    );
    runtime().block_on(create.send()).expect("create a bucket on the emulator");
    S3Store::new(client, &name, runtime().handle().clone())
}

mod object_store {
    use super::*;
    vellum_contract::object_store_contract!(|| Box::new(fresh_bucket()) as Box<dyn vellum_core::ports::ObjectStore>);
}

/// A new queue "a" and "b", each with its dead-letter queue, under a fresh prefix.
fn fresh_queues(max_receives: u32) -> SqsQueue {
    let client = aws_sdk_sqs::Client::new(config());
    let prefix = format!("vellum-contract-{}-", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let queues = SqsQueue::new(client, &prefix, runtime().handle().clone());
    for name in ["a", "b"] {
        queues.create(name, max_receives).expect("create a queue on the emulator");
    }
    queues
}

mod queue {
    use super::*;
    vellum_contract::queue_contract!(
        |max_receives: u32| Box::new(fresh_queues(max_receives)) as Box<dyn vellum_core::ports::Queue>
    );
}
