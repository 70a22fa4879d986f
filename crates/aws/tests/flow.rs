//! The whole flow on the local AWS emulator: a package put into the uploads bucket with the
//! SDK reaches the start queue by S3's own notification, every stage runs through the
//! handler a function uses, and the AIP lands in the AIPs bucket under its storage space.

use std::sync::OnceLock;
use std::time::Duration;

use vellum_aws::app::{AwsApp, Names};
use vellum_core::model::{Transfer, TransferStatus};
use vellum_core::ports::{StateStore, TransferQuery};
use vellum_tests::Package;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

fn app() -> AwsApp {
    let names = Names::from_env()
        .unwrap_or_else(|e| panic!("{e}: these tests run on the local AWS emulator (eval \"$(infra/local/up)\")"));
    AwsApp::new(&names, runtime().handle().clone()).expect("the pipeline on the emulator")
}

fn transfer_of(app: &AwsApp, key: &str) -> Option<Transfer> {
    let page = app.state.list_transfers(&TransferQuery { limit: 50, ..Default::default() }).unwrap();
    page.items.into_iter().find(|t| t.source_key == key)
}

fn ingest(app: &AwsApp, package: &Package, key: &str) -> Transfer {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("package.zip");
    package.write_zip(&zip);
    app.pipeline.uploads.put(key, &std::fs::read(&zip).unwrap()).unwrap();
    vellum_aws::runner::drive(app, Duration::from_secs(600), Duration::from_secs(20), || {
        transfer_of(app, key).is_some_and(|t| t.status.is_terminal())
    })
    .unwrap();
    transfer_of(app, key).expect("the upload made a transfer")
}

#[test]
fn a_package_put_into_the_bucket_becomes_a_stored_verified_aip() {
    let app = app();
    let key = format!("born-digital/flow-{}.zip", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let identifier = format!("PP/FLOW/{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let transfer = ingest(&app, &Package::catalogued(&identifier, 3), &key);
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let aip_key = transfer.aip_key.clone().unwrap();
    assert!(aip_key.starts_with(&format!("born-digital/{identifier}/v1/")), "{aip_key}");
    assert!(app.pipeline.aips.head(&aip_key).unwrap().is_some_and(|m| m.size > 1000), "the AIP is in the AIPs bucket");
    let logs = app.pipeline.uploads.list(&format!("{key}.success.")).unwrap();
    assert_eq!(logs.len(), 1, "one success log beside the upload");
    let files = app.state.all_files(transfer.id).unwrap();
    assert_eq!(files.len(), 4, "three objects and metadata.csv");
    assert!(files.iter().all(|f| f.sha256().is_some() && f.format.is_some()), "checksummed and identified");
    let jobs = app.state.jobs(transfer.id).unwrap();
    assert_eq!(jobs.len(), vellum_core::messages::queues::ALL.len(), "a job per microservice");
}

#[test]
fn a_bad_package_is_refused_with_its_log() {
    let app = app();
    let key = format!("born-digital/stray-{}.zip", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut package = Package::catalogued("PP/STRAY/1", 1);
    package.add("README.txt", "outside the two folders");
    let transfer = ingest(&app, &package, &key);
    assert_eq!(transfer.status, TransferStatus::Rejected);
    assert!(
        transfer.failure_reason.as_deref().unwrap_or_default().contains("README.txt"),
        "{:?}",
        transfer.failure_reason
    );
    let logs = app.pipeline.uploads.list(&format!("{key}.failed.")).unwrap();
    assert_eq!(logs.len(), 1, "one failed log beside the upload");
}
