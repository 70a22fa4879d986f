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

    /// S3's copy really stops between its waves of part copies and goes on from the
    /// checkpoint: eleven pieces, eight at a time, take two calls.
    #[test]
    fn an_aip_copy_cut_by_its_deadline_goes_on_in_the_next_invocation() {
        let calls = vellum_contract::object_store::compose_within_goes_on_where_it_stopped(&|| {
            Box::new(fresh_bucket().with_copy_concurrency(8)) as Box<dyn vellum_core::ports::ObjectStore>
        });
        assert_eq!(calls, 2);
    }
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

/// A body over SQS's 256 KiB goes to S3, the message carries its key, and the handler's
/// reading gives back the body as sent; small ones in the same batch go as they are.
#[test]
fn a_body_too_large_for_sqs_travels_through_s3() {
    use std::sync::Arc;
    use vellum_core::ports::{ObjectStore, Queue};
    let bucket: Arc<dyn ObjectStore> = Arc::new(fresh_bucket());
    let queues = fresh_queues(5).with_overflow(bucket.clone());
    let large = format!("{{\"files\":\"{}\"}}", "é".repeat(200 * 1024));
    queues.send_batch("a", &["small".to_string(), large.clone()]).unwrap();
    let mut got = Vec::new();
    for _ in 0..20 {
        got.extend(queues.receive("a", 10, std::time::Duration::from_secs(30)).unwrap());
        if got.len() == 2 {
            break;
        }
    }
    let bodies: Vec<String> =
        got.iter().map(|d| vellum_aws::sqs::resolve_body(bucket.as_ref(), &d.body).unwrap()).collect();
    assert_eq!(bodies.len(), 2);
    assert!(bodies.contains(&"small".to_string()));
    assert!(bodies.contains(&large), "the large body comes back whole");
    assert!(got.iter().all(|d| d.body.len() < 1024), "what SQS carries is small");
    assert_eq!(bucket.list("queue-overflow/a/").unwrap().len(), 1);
    let lonely = fresh_queues(5);
    let refused = lonely.send_batch("a", &["x".repeat(300 * 1024)]).unwrap_err();
    assert!(refused.to_string().contains("over SQS's 256 KiB"), "{refused}");
}

/// A notice reaches a subscriber with its space as a message attribute, for filtering.
#[test]
fn aip_stored_notices_carry_their_space() {
    use vellum_core::ports::{Notifier, Queue};
    let rt = runtime();
    let sns = aws_sdk_sns::Client::new(config());
    let sqs = aws_sdk_sqs::Client::new(config());
    let topic = rt
        .block_on(sns.create_topic().name(format!("vellum-contract-{}", uuid::Uuid::new_v4().simple())).send())
        .unwrap()
        .topic_arn
        .unwrap();
    let listener = fresh_queues(5);
    let url = rt.block_on(sqs.get_queue_url().queue_name(format!("{}a", listener.prefix())).send()).unwrap();
    let url = url.queue_url().unwrap().to_string();
    let arn = rt
        .block_on(
            sqs.get_queue_attributes()
                .queue_url(&url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .send(),
        )
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    rt.block_on(sns.subscribe().topic_arn(&topic).protocol("sqs").endpoint(arn).send()).unwrap();
    let notifier = vellum_aws::SnsNotifier::new(sns, &topic, rt.handle().clone());
    let notice = vellum_core::model::messages::AipStored {
        identifier: "PP/NOTE/1".into(),
        space: "born-digital".into(),
        version: 2,
        aip_uuid: uuid::Uuid::new_v4(),
        transfer_id: uuid::Uuid::new_v4(),
        origin: "vellum".into(),
        time_sent: "2026-11-27T10:00:00.000Z".into(),
        replica: Some("vellum-local-aips-replica".into()),
        dip: Some("PP-NOTE-1-0b1d7d55-0000-4000-8000-000000000000/".into()),
    };
    notifier.publish(&notice).unwrap();
    let mut got = Vec::new();
    for _ in 0..50 {
        got = listener.receive("a", 1, std::time::Duration::from_secs(30)).unwrap();
        if !got.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let envelope: serde_json::Value = serde_json::from_str(&got.first().expect("the notice arrives").body).unwrap();
    let message: serde_json::Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(message["aip_uuid"], notice.aip_uuid.to_string());
    assert_eq!(message["timeSent"], "2026-11-27T10:00:00.000Z");
    assert_eq!(envelope["MessageAttributes"]["space"]["Value"], "born-digital");
}

/// A new table with the single-table layout and its indexes.
fn fresh_table() -> vellum_aws::DynamoState {
    let client = aws_sdk_dynamodb::Client::new(config());
    let name = format!("vellum-contract-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    vellum_aws::DynamoState::create_table(&client, &name, runtime().handle()).expect("create a table on the emulator");
    vellum_aws::DynamoState::new(
        client,
        &name,
        runtime().handle().clone(),
        std::sync::Arc::new(vellum_core::ports::SystemClock),
    )
}

mod state_store {
    use super::*;
    vellum_contract::state_store_contract!(|| Box::new(fresh_table()) as Box<dyn vellum_core::ports::StateStore>);
}

mod access_store {
    use super::*;
    vellum_contract::access_store_contract!(|| Box::new(fresh_table()) as Box<dyn vellum_core::ports::AccessStore>);
}

/// A download link for a stored object (S3's presigned GET) reads the object without any
/// other credentials.
#[test]
fn a_download_link_reads_the_object() {
    use vellum_core::ports::ObjectStore;
    use vellum_dashboard::AipLinks;
    let bucket = fresh_bucket();
    bucket.put("born-digital/PP/1/v1/a.tar.gz", b"the AIP's bytes").unwrap();
    let url = bucket.link("born-digital/PP/1/v1/a.tar.gz", std::time::Duration::from_secs(300)).unwrap();
    assert!(url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=300"), "{url}");
    let out = std::process::Command::new("curl").args(["--fail", "--silent", "--show-error", &url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"the AIP's bytes");
}

/// The configuration as an S3 object: read and checked at start; an unusable one refused
/// with its problems, never half-used.
#[test]
fn the_configuration_comes_from_an_s3_object() {
    use vellum_core::ports::ObjectStore;
    let bucket = fresh_bucket();
    let mut profiles = vellum_core::config::profile::Config::builtin();
    profiles.organization.name = "Test Archive".into();
    bucket.put("vellum.json", serde_json::to_string(&profiles).unwrap().as_bytes()).unwrap();
    let s3 = vellum_aws::s3_client(config());
    let uri = format!("s3://{}/vellum.json", vellum_core::ports::ObjectStore::bucket(&bucket));
    let loaded = vellum_aws::app::profiles_from(Some(&uri), &s3, runtime().handle()).unwrap();
    assert_eq!(loaded.organization.name, "Test Archive");
    profiles.profiles[0].gzip_level = 12;
    bucket.put("vellum.json", serde_json::to_string(&profiles).unwrap().as_bytes()).unwrap();
    let refused = vellum_aws::app::profiles_from(Some(&uri), &s3, runtime().handle()).unwrap_err();
    assert!(refused.contains("gzip_level is 0 (a plain tar) to 9, not 12"), "{refused}");
    assert!(vellum_aws::app::profiles_from(Some("not-a-uri"), &s3, runtime().handle()).is_err());
}
