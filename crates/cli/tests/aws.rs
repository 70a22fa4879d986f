//! `vellum serve --aws-endpoint` on the local AWS emulator: killed with SIGKILL in the middle
//! of a transfer and started again, it finishes the same transfer into one AIP. Built with
//! `--features aws` (the test command builds it so).
#![cfg(feature = "aws")]

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use vellum_aws::app::{AwsApp, Names};
use vellum_core::model::TransferStatus;
use vellum_core::ports::{StateStore, TransferQuery};
use vellum_tests::Package;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

/// A running `vellum serve`, killed (SIGKILL) and reaped when dropped.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(endpoint: &str) -> Served {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    Command::new(env!("CARGO_BIN_EXE_vellum"))
        .args(["serve", "--aws-endpoint", endpoint, "--budget-secs", "2", "--visibility-secs", "2", "--clamd", "none"])
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Served)
        .expect("start vellum serve --aws-endpoint")
}

#[test]
fn a_runner_killed_mid_transfer_on_aws_finishes_the_same_transfer_when_started_again() {
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").expect("the emulator: eval \"$(infra/local/up)\" (scripts/test does)");
    let names = Names::from_env().unwrap();
    let app = AwsApp::new(&names, runtime().handle().clone()).unwrap();
    let key = format!("born-digital/crash-{}.zip", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let identifier = format!("PP/CRASH/{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("crash.zip");
    Package::catalogued(&identifier, 30).write_zip(&zip);
    let find = || {
        app.state
            .list_transfers(&TransferQuery { limit: 100, ..Default::default() })
            .unwrap()
            .items
            .into_iter()
            .find(|t| t.source_key == key)
    };

    let first = serve(&endpoint);
    app.pipeline.uploads.put(&key, &std::fs::read(&zip).unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let killed_at = loop {
        assert!(Instant::now() < deadline, "the transfer never got going");
        if let Some(t) = find() {
            if app.state.job(t.id, "checksum").unwrap().is_some() {
                drop(first);
                break app.state.transfer(t.id).unwrap().unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(killed_at.status, TransferStatus::Processing, "killed mid-transfer, not after it");

    let second = serve(&endpoint);
    let finished = loop {
        let t = app.state.transfer(killed_at.id).unwrap().unwrap();
        if t.status.is_terminal() || Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(second);
    assert_eq!(finished.status, TransferStatus::Complete, "{:?}", finished.failure_reason);
    assert_eq!(finished.file_count, 31);
    let stored = app.pipeline.aips.list(&format!("born-digital/{identifier}/")).unwrap();
    assert_eq!(stored.len(), 1, "one AIP: {stored:?}");
    let events = app.state.all_events(finished.id).unwrap();
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e.uuid).collect();
    assert_eq!(ids.len(), events.len(), "no event twice");
}
