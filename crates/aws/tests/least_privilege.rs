//! Each function's own keys (`VELLUM_LOCAL_ROLES`, from infra/local/up) used against the
//! emulator with IAM enforced: what a role should not do is refused, and what it should do
//! is not (so a refusal is the policy's, not a bad key's).

use vellum_aws::app::Names;
use vellum_aws::roles::{config_as, DASHBOARD, MONITOR};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn names() -> Names {
    assert!(
        std::env::var("VELLUM_LOCAL_ROLES").is_ok(),
        "VELLUM_LOCAL_ROLES is not set: these probes run on the emulator with IAM enforced (eval \"$(infra/local/up)\")"
    );
    Names::from_env().unwrap()
}

/// Whether a call failed for want of a permission; any other outcome (a missing key or item
/// included) is the policy's yes.
fn refused<E: aws_sdk_s3::error::ProvideErrorMetadata, R>(result: Result<R, E>) -> bool {
    match result {
        Ok(_) => false,
        Err(e) => e.code().is_some_and(|c| c.starts_with("AccessDenied")),
    }
}

#[test]
fn each_role_is_refused_what_its_function_does_not_do() {
    let names = names();
    let rt = runtime();
    let as_function = |function: &str| config_as(rt.handle(), function).unwrap();
    let key = format!("probe/{}", uuid::Uuid::new_v4());
    let send_refused = |config: &aws_config::SdkConfig, stage: &str| {
        let admin = aws_sdk_sqs::Client::new(&vellum_aws::load_config(rt.handle()));
        let url = rt
            .block_on(admin.get_queue_url().queue_name(format!("{}{stage}", names.queue_prefix)).send())
            .unwrap()
            .queue_url
            .unwrap();
        refused(rt.block_on(aws_sdk_sqs::Client::new(config).send_message().queue_url(url).message_body("{}").send()))
    };

    // The dashboard reads AIPs and users, starts transfers; it deletes no AIP and feeds no stage.
    let dashboard = as_function(DASHBOARD);
    let s3 = vellum_aws::s3_client(&dashboard);
    assert!(refused(rt.block_on(s3.delete_object().bucket(&names.aips_bucket).key(&key).send())));
    assert!(refused(rt.block_on(s3.put_object().bucket(&names.aips_bucket).key(&key).send())));
    assert!(!refused(rt.block_on(s3.get_object().bucket(&names.aips_bucket).key(&key).send())), "downloads");
    assert!(send_refused(&dashboard, "checksum"), "the dashboard sends to no stage's queue");
    let access = aws_sdk_dynamodb::Client::new(&dashboard);
    let user_read_refused = |c: &aws_sdk_dynamodb::Client| {
        refused(
            rt.block_on(
                c.get_item()
                    .table_name(&names.access_table)
                    .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("ACCESS".into()))
                    .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("U#nobody".into()))
                    .send(),
            ),
        )
    };
    assert!(!user_read_refused(&access), "the dashboard reads users");

    // A per-file stage writes no AIP, reads no user or key, feeds only its next queue.
    let checksum = as_function(vellum_aws::roles::function_of(vellum_core::model::Stage::Checksum));
    let s3 = vellum_aws::s3_client(&checksum);
    assert!(refused(rt.block_on(s3.put_object().bucket(&names.aips_bucket).key(&key).send())));
    assert!(!refused(rt.block_on(s3.get_object().bucket(&names.working_bucket).key(&key).send())), "its own reads");
    assert!(user_read_refused(&aws_sdk_dynamodb::Client::new(&checksum)), "no stage touches users or keys");
    assert!(send_refused(&checksum, "store"), "checksum feeds scan, not store");
    // (Its yes is asked without sending: a stray message would reach the other tests' fleets.)
    let scan_queue = format!("{}scan", names.queue_prefix);
    let own = rt.block_on(aws_sdk_sqs::Client::new(&checksum).get_queue_url().queue_name(scan_queue).send());
    assert!(!refused(own), "checksum finds the scan queue it feeds");

    // Only store writes AIPs; the monitor audits them but deletes none.
    let monitor = vellum_aws::s3_client(&as_function(MONITOR));
    assert!(refused(rt.block_on(monitor.delete_object().bucket(&names.aips_bucket).key(&key).send())));
    assert!(refused(rt.block_on(monitor.put_object().bucket(&names.aips_bucket).key(&key).send())));
}
