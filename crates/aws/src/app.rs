//! The pipeline on AWS, built once per cold start (or once for the local runner) from the
//! environment the template (or `infra/local/up`) sets.

use std::sync::Arc;

use tokio::runtime::Handle;
use vellum_core::analysis::pronom::FormatIdentifier;
use vellum_core::config::profile::Config;
use vellum_core::config::Settings;
use vellum_core::ports::{SystemClock, VirusScanner};
use vellum_core::Pipeline;

use crate::{s3_client, DynamoState, S3Store, SnsNotifier, SqsQueue};

/// Where everything is, by name, as the environment gives it.
#[derive(Debug, Clone)]
pub struct Names {
    pub uploads_bucket: String,
    pub working_bucket: String,
    pub aips_bucket: String,
    pub table: String,
    /// Users, API keys and sessions: a table only the dashboard's role reaches.
    pub access_table: String,
    /// The second storage location of every AIP (None: one location).
    pub replica_bucket: Option<String>,
    /// Where DIPs are stored (None: no DIP location).
    pub dips_bucket: Option<String>,
    pub queue_prefix: String,
    pub topic_arn: String,
    /// clamd's HOST:PORT, or None when scanning is off.
    pub clamd: Option<String>,
    /// Whether a runner without Lambda's time limit takes the long-job queues
    /// (`VELLUM_LONG_JOBS=fargate`): then a function hands its long jobs to them.
    pub long_jobs_elsewhere: bool,
}

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set: the template (or infra/local/up) sets it"))
}

impl Names {
    pub fn from_env() -> Result<Self, String> {
        Ok(Self {
            uploads_bucket: var("VELLUM_UPLOADS_BUCKET")?,
            working_bucket: var("VELLUM_WORKING_BUCKET")?,
            aips_bucket: var("VELLUM_AIPS_BUCKET")?,
            table: var("VELLUM_TABLE")?,
            access_table: var("VELLUM_ACCESS_TABLE")?,
            replica_bucket: std::env::var("VELLUM_REPLICA_BUCKET").ok().filter(|b| !b.trim().is_empty()),
            dips_bucket: std::env::var("VELLUM_DIPS_BUCKET").ok().filter(|b| !b.trim().is_empty()),
            queue_prefix: var("VELLUM_QUEUE_PREFIX")?,
            topic_arn: var("VELLUM_TOPIC_ARN")?,
            clamd: std::env::var("VELLUM_CLAMD").ok().filter(|c| !c.is_empty() && c != "none"),
            long_jobs_elsewhere: std::env::var("VELLUM_LONG_JOBS").is_ok_and(|w| w == "fargate"),
        })
    }
}

/// What the dashboard and the monitor read: the state in DynamoDB and the queues, without
/// the pipeline's scanner, signatures and tools.
pub struct Records {
    pub state: Arc<DynamoState>,
    /// Users, API keys and sessions (the access table).
    pub access: Arc<DynamoState>,
    pub queue: Arc<SqsQueue>,
    pub uploads: Arc<S3Store>,
    pub working: Arc<S3Store>,
    pub aips: Arc<S3Store>,
    /// The AIPs' second location, where one is named.
    pub replica: Option<Arc<S3Store>>,
    /// The DIPs' location, where one is named.
    pub dips: Option<Arc<S3Store>>,
    pub profiles: Config,
    /// The SDK configuration the clients were built from, for any other client.
    pub sdk: aws_config::SdkConfig,
}

impl Records {
    /// Every client, built once: S3, DynamoDB, SQS (large bodies through the working
    /// bucket), and the configuration read and checked.
    pub fn new(names: &Names, rt: Handle) -> Result<Self, String> {
        let config = crate::load_config(&rt);
        Self::with_config(names, rt, config)
    }

    /// The same, acting with `config`'s credentials (a function's, see `roles`).
    pub fn with_config(names: &Names, rt: Handle, config: aws_config::SdkConfig) -> Result<Self, String> {
        let s3 = s3_client(&config);
        let profiles = profiles(&s3, &rt)?;
        let working = Arc::new(S3Store::new(s3.clone(), &names.working_bucket, rt.clone()));
        Ok(Self {
            uploads: Arc::new(S3Store::new(s3.clone(), &names.uploads_bucket, rt.clone())),
            aips: Arc::new(S3Store::new(s3.clone(), &names.aips_bucket, rt.clone())),
            replica: names.replica_bucket.as_ref().map(|b| Arc::new(S3Store::new(s3.clone(), b, rt.clone()))),
            dips: names.dips_bucket.as_ref().map(|b| Arc::new(S3Store::new(s3, b, rt.clone()))),
            profiles,
            state: Arc::new(DynamoState::new(
                aws_sdk_dynamodb::Client::new(&config),
                &names.table,
                rt.clone(),
                Arc::new(SystemClock),
            )),
            access: Arc::new(DynamoState::new(
                aws_sdk_dynamodb::Client::new(&config),
                &names.access_table,
                rt.clone(),
                Arc::new(SystemClock),
            )),
            queue: Arc::new(
                SqsQueue::new(aws_sdk_sqs::Client::new(&config), &names.queue_prefix, rt)
                    .with_overflow(working.clone()),
            ),
            working,
            sdk: config,
        })
    }

    /// The transfer of the upload at `key` (among the newest), once it has ended.
    pub fn ended_transfer_of(&self, key: &str) -> vellum_core::ports::PortResult<Option<vellum_core::model::Transfer>> {
        use vellum_core::ports::{TransferOversight, TransferQuery};
        Ok(self
            .state
            .list_transfers(&TransferQuery { limit: 100, ..Default::default() })?
            .items
            .into_iter()
            .find(|t| t.source_key == key && t.status.is_terminal()))
    }
}

/// The configuration: the S3 object `VELLUM_CONFIG` names (`s3://bucket/key`), checked —
/// an unreadable or unusable one fails the start loudly — or the one built in, with the
/// organisation's repository code from `VELLUM_REPOSITORY_CODE`.
pub fn profiles(s3: &aws_sdk_s3::Client, rt: &Handle) -> Result<Config, String> {
    let named = std::env::var("VELLUM_CONFIG").ok().filter(|c| !c.trim().is_empty());
    profiles_from(named.as_deref(), s3, rt)
}

/// The configuration at `uri` (`s3://bucket/key`), or the one built in when there is none.
pub fn profiles_from(uri: Option<&str>, s3: &aws_sdk_s3::Client, rt: &Handle) -> Result<Config, String> {
    let Some(uri) = uri else {
        let mut profiles = Config::builtin();
        if let Ok(code) = std::env::var("VELLUM_REPOSITORY_CODE") {
            profiles.organization.repository_code = code;
        }
        return Ok(profiles);
    };
    let (bucket, key) = uri
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .ok_or_else(|| format!("VELLUM_CONFIG {uri:?} is not s3://bucket/key"))?;
    let text = rt.block_on(async {
        let out = s3.get_object().bucket(bucket).key(key).send().await.map_err(|e| format!("reading {uri}: {e}"))?;
        let bytes = out.body.collect().await.map_err(|e| format!("reading {uri}: {e}"))?.into_bytes();
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{uri} is not UTF-8 text"))
    })?;
    Config::load(&text).map_err(|problems| format!("the configuration {uri} is not usable: {}", problems.join("; ")))
}

/// The pipeline wired to S3, SQS, DynamoDB and SNS, and the queues for a runner.
#[derive(Clone)]
pub struct AwsApp {
    pub pipeline: Pipeline,
    pub queue: Arc<SqsQueue>,
    pub state: Arc<DynamoState>,
    /// The AIPs bucket as S3 itself (for download links), beside the pipeline's port.
    pub aips_store: Arc<S3Store>,
    /// Where a function's long jobs (a long video's conversion) go: to the stage's long-job
    /// queue when a Fargate task takes it, else not run (recorded), never into the Lambda's
    /// time limit.
    pub long_jobs: vellum_core::LongJobs,
}

impl AwsApp {
    /// Builds every client once. `rt` runs the SDK's futures; the pipeline is then called
    /// from blocking tasks.
    pub fn new(names: &Names, rt: Handle) -> Result<Self, String> {
        let config = crate::load_config(&rt);
        Self::with_config(names, rt, config, Arc::new(Self::format_identifier()?))
    }

    /// PRONOM's signatures compiled (once: every stage's pipeline can share them).
    pub fn format_identifier() -> Result<FormatIdentifier, String> {
        FormatIdentifier::builtin().map_err(|e| e.to_string())
    }

    /// The pipeline acting with `config`'s credentials (a function's, see `roles`).
    pub fn with_config(
        names: &Names,
        rt: Handle,
        config: aws_config::SdkConfig,
        identifier: Arc<FormatIdentifier>,
    ) -> Result<Self, String> {
        let records = Records::with_config(names, rt.clone(), config)?;
        let sns = aws_sdk_sns::Client::new(&records.sdk);
        let scanner: Option<Arc<dyn VirusScanner>> =
            names.clamd.as_deref().map(|addr| Arc::new(vellum_clamd::Clamd::new(addr)) as Arc<dyn VirusScanner>);
        let pipeline = Pipeline {
            uploads: records.uploads,
            working: records.working,
            aips: records.aips.clone(),
            replica: records.replica.clone().map(|r| r as Arc<dyn vellum_core::ports::ObjectStore>),
            dips: records.dips.clone().map(|r| r as Arc<dyn vellum_core::ports::ObjectStore>),
            state: records.state.clone(),
            queue: records.queue.clone(),
            clock: Arc::new(SystemClock),
            scanner,
            format_identifier: Some(identifier),
            notifier: Arc::new(SnsNotifier::new(sns, &names.topic_arn, rt)),
            fpr: Arc::new(records.profiles.format_policy()),
            tools: Arc::new(vellum_host::ProcessTools::new()),
            config: records.profiles,
            settings: Settings::default(),
        };
        Ok(Self {
            pipeline,
            queue: records.queue,
            state: records.state,
            aips_store: records.aips,
            long_jobs: if names.long_jobs_elsewhere {
                vellum_core::LongJobs::HandOff
            } else {
                vellum_core::LongJobs::NotRun
            },
        })
    }
}
