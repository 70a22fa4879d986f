//! Vellum on AWS: the core's ports on S3, SQS, DynamoDB and SNS. Every call runs on a tokio
//! runtime handle, from the blocking task in which a function hands a record to the core;
//! the ports stay synchronous.

pub mod app;
pub mod dynamo;
mod dynamo_access;
pub mod errors;
#[cfg(feature = "lambda")]
pub mod function;
#[cfg(feature = "lambda")]
pub mod http_edge;
pub mod lambda;
pub mod long_jobs;
pub mod roles;
pub mod runner;
pub mod s3;
pub mod sns;
pub mod sqs;

pub use dynamo::DynamoState;
pub use s3::S3Store;
pub use sns::SnsNotifier;
pub use sqs::SqsQueue;

pub use errors::port_error;

/// The AWS configuration from the environment (`AWS_ENDPOINT_URL` points every client at an
/// emulator), loaded on `rt`.
pub fn load_config(rt: &tokio::runtime::Handle) -> aws_config::SdkConfig {
    rt.block_on(aws_config::defaults(aws_config::BehaviorVersion::latest()).load())
}

/// An S3 client; path-style addressing where the endpoint is overridden (an emulator has
/// no bucket subdomains).
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(config.endpoint_url().is_some()).build();
    aws_sdk_s3::Client::from_conf(s3)
}
