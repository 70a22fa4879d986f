//! Archivematica's own command-line client, amclient (PyPI), against `vellum serve`: it
//! follows a transfer to COMPLETE with its SIP, the ingest to COMPLETE, lists the jobs, the
//! completed transfers, and closes them. amclient exits 0 even on errors, so what it prints
//! is read.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use vellum_tests::Package;

mod common;
use common::{get, registered, serve, wait_until_up};

fn amclient() -> PathBuf {
    let python = std::env::var("VELLUM_PYTHON").expect("VELLUM_PYTHON: run the tests through scripts/test");
    let amclient = Path::new(&python).with_file_name("amclient");
    assert!(amclient.exists(), "amclient is not in the project's venv: scripts/setup installs it");
    amclient
}

/// Runs an amclient subcommand; what it printed, parsed as JSON when it is.
fn am(port: u16, user: &str, args: &[&str]) -> (String, Value) {
    let out = Command::new(amclient())
        .arg(args[0])
        .args(["--am-user-name", user, "--am-url", &format!("http://127.0.0.1:{port}")])
        .args(&args[1..])
        .output()
        .expect("run amclient");
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let value = serde_json::from_str(&printed).unwrap_or(Value::Null);
    (printed, value)
}

#[test]
fn amclient_follows_a_transfer_to_its_aip_and_closes_it() {
    let data = tempfile::tempdir().unwrap();
    let served = serve(data.path());
    wait_until_up(&served);
    let auth = registered(data.path(), "amuser");
    let key = auth.rsplit(':').next().unwrap().to_string();
    let uploads = data.path().join("uploads/born-digital");
    std::fs::create_dir_all(&uploads).unwrap();
    let staging = data.path().join("am.zip");
    Package::catalogued("PP/AM/1", 3).write_zip(&staging);
    std::fs::rename(&staging, uploads.join("am.zip")).unwrap();

    let deadline = Instant::now() + Duration::from_secs(240);
    let id = loop {
        assert!(Instant::now() < deadline, "no transfer appeared");
        let (_, list) = get(served.1, "/api/transfers", Some(&auth));
        if let Some(id) = list["transfers"][0]["id"].as_str() {
            break id.to_string();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let status = loop {
        let (printed, status) = am(served.1, "amuser", &["get-transfer-status", &id, &key]);
        if status["status"] == "COMPLETE" {
            break status;
        }
        assert!(status["status"] == "PROCESSING", "amclient said: {printed}");
        assert!(Instant::now() < deadline, "the transfer never completed: {printed}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let sip = status["sip_uuid"].as_str().expect("a COMPLETE transfer names its SIP").to_string();
    assert_eq!(status["type"], "transfer");
    assert_eq!(status["name"], "am");

    let (printed, ingest) = am(served.1, "amuser", &["get-ingest-status", &sip, &key]);
    assert_eq!(ingest["status"], "COMPLETE", "{printed}");
    assert_eq!(ingest["uuid"], sip);

    let (printed, jobs) = am(served.1, "amuser", &["get-jobs", &key, &id]);
    let names: Vec<&str> =
        jobs.as_array().unwrap_or_else(|| panic!("{printed}")).iter().filter_map(|j| j["name"].as_str()).collect();
    assert_eq!(names.len(), vellum_core::model::Stage::ALL.len(), "a job per microservice: {printed}");
    assert!(names.contains(&"Normalize for preservation"), "{names:?}");
    assert!(names.contains(&"Scan for viruses"), "{names:?}");

    let (printed, completed) = am(served.1, "amuser", &["completed-transfers", &key]);
    assert_eq!(completed["results"], serde_json::json!([id]), "{printed}");
    let (printed, closed) = am(served.1, "amuser", &["close-completed-transfers", &key]);
    assert_eq!(closed["close_succeeded"], serde_json::json!([id]), "{printed}");
    let (printed, after) = am(served.1, "amuser", &["completed-transfers", &key]);
    assert_eq!(after["results"], serde_json::json!([]), "closed transfers are no longer listed: {printed}");

    // A wrong key gets nothing: amclient exits 0 and prints its error.
    let (printed, refused) =
        am(served.1, "amuser", &["get-transfer-status", &id, "0000000000000000000000000000000000000000"]);
    assert_ne!(refused["status"], "COMPLETE", "{printed}");
    assert!(!printed.contains(&sip), "nothing about the transfer: {printed}");
}
