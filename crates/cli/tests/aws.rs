//! `vellum serve --aws-endpoint` on the local AWS emulator: killed with SIGKILL in the middle
//! of a transfer and started again, it finishes the same transfer into one AIP. Built with
//! `--features aws` (the test command builds it so).
#![cfg(feature = "aws")]

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use vellum_aws::app::{AwsApp, Names};
use vellum_core::model::TransferStatus;
use vellum_core::ports::{EventLog, JobLedger, TransferOversight, TransferQuery, TransferRegister};
use vellum_tests::Package;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

/// A running `vellum serve`, killed (SIGKILL) and reaped when dropped; what it logged is
/// kept so a failing test can show it.
struct Served(Child, tempfile::NamedTempFile);

impl Served {
    /// The last lines `serve` logged.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.1.path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(endpoint: &str) -> Served {
    serve_scanning(endpoint, "none")
}

/// `serve --aws-endpoint` scanning with the clamd at `clamd` (or `none`). Its budget is
/// short enough that the METS of a test transfer continues in new messages, long enough
/// that each continuation writes more than one amdSec: on the emulator one invocation's
/// reads before the first amdSec take seconds (about 3 s under a full test run), and two
/// serves share the queues.
fn serve_scanning(endpoint: &str, clamd: &str) -> Served {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = tempfile::NamedTempFile::new().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_vellum"))
        .args(["serve", "--aws-endpoint", endpoint, "--budget-secs", "10", "--visibility-secs", "2", "--clamd", clamd])
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("start vellum serve --aws-endpoint");
    Served(child, log)
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
    let began = Instant::now();
    let deadline = began + Duration::from_secs(300);
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
    println!("killed {:.1} s after the upload", began.elapsed().as_secs_f64());

    // Its own time to finish: a serve started on an emulator a whole test run has used may
    // take minutes to reach the kill (CI saw 135 s), and that is not this half's to pay.
    let second = serve(&endpoint);
    let deadline = Instant::now() + Duration::from_secs(300);
    let finished = loop {
        let t = app.state.transfer(killed_at.id).unwrap().unwrap();
        if t.status.is_terminal() || Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    println!("ended {:.1} s after the upload", began.elapsed().as_secs_f64());
    if !finished.status.is_terminal() {
        let jobs = app.state.jobs(killed_at.id).unwrap();
        panic!("the transfer never ended: its jobs {jobs:#?}\nwhat serve logged last:\n{}", second.log_tail());
    }
    drop(second);
    assert_eq!(finished.status, TransferStatus::Complete, "{:?}", finished.failure_reason);
    assert_eq!(finished.file_count, 31);
    let stored = app.pipeline.aips.list(&format!("born-digital/{identifier}/")).unwrap();
    assert_eq!(stored.len(), 1, "one AIP: {stored:?}");
    let events = app.state.all_events(finished.id).unwrap();
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e.uuid).collect();
    assert_eq!(ids.len(), events.len(), "no event twice");
}

/// Users and keys on AWS live in the table: `vellum users add` and `vellum api-keys create
/// --aws-endpoint` register someone whom `serve --aws-endpoint`'s dashboard then admits —
/// and stops admitting once the key is revoked.
#[test]
fn the_dashboard_on_the_emulator_admits_a_user_registered_with_the_cli() {
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").expect("the emulator: eval \"$(infra/local/up)\" (scripts/test does)");
    let vellum = || Command::new(env!("CARGO_BIN_EXE_vellum"));
    let user = format!("aws-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let added = vellum().args(["users", "add", &user, "--aws-endpoint", &endpoint]).output().unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let created =
        vellum().args(["api-keys", "create", "--user", &user, "--aws-endpoint", &endpoint, "--json"]).output().unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let auth = format!("ApiKey {user}:{}", created["key"].as_str().unwrap());
    let listed = vellum().args(["users", "list", "--aws-endpoint", &endpoint, "--json"]).output().unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(listed.as_array().unwrap().iter().any(|u| u["name"] == user.as_str()), "{listed}");

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = tempfile::NamedTempFile::new().unwrap();
    let _served = Command::new(env!("CARGO_BIN_EXE_vellum"))
        .args(["serve", "--aws-endpoint", &endpoint, "--clamd", "none", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .map(|child| Served(child, log))
        .unwrap();
    let ask = |auth: Option<&str>| -> String {
        use std::io::{Read, Write};
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut stream = loop {
            match std::net::TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => panic!("serve --aws-endpoint never answered: {e}"),
            }
        };
        let header = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
        write!(stream, "GET /api/transfer/completed HTTP/1.1\r\nHost: x\r\n{header}Connection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    let admitted = ask(Some(&auth));
    assert!(admitted.starts_with("HTTP/1.1 200"), "{admitted}");
    assert!(admitted.contains("Fetched completed transfers successfully."), "{admitted}");
    assert!(ask(None).starts_with("HTTP/1.1 403"));
    let id = created["id"].as_str().unwrap();
    let revoked = vellum().args(["api-keys", "revoke", id, "--aws-endpoint", &endpoint]).output().unwrap();
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    assert!(ask(Some(&auth)).starts_with("HTTP/1.1 403"), "a revoked key is refused");
}

/// `vellum e2e --aws-endpoint` against the emulator while `serve --aws-endpoint` runs the
/// stages: the test transfer is stored in the testing space and passes every check.
#[test]
fn the_end_to_end_test_transfer_passes_on_the_emulator() {
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").expect("the emulator: eval \"$(infra/local/up)\" (scripts/test does)");
    let served = serve(&endpoint);
    let out = Command::new(env!("CARGO_BIN_EXE_vellum"))
        .args(["e2e", "--aws-endpoint", &endpoint, "--timeout-secs", "300", "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}\nwhat serve logged last:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            served.log_tail()
        )
    });
    // The emulator's serve scans nothing (--clamd none): that one check fails, and says so.
    let failed: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["every original passed the virus check"], "{report}");
    assert!(report["aip_key"].as_str().unwrap().starts_with("testing/"), "{report}");
    assert_eq!(out.status.code(), Some(1), "not every check passed");
}
