//! The HTML dashboard in a real browser: Debian's chromium, driven by playwright-core (both
//! installed by the test command), against `vellum serve` with a completed, a failed and a
//! refused transfer — the last named with `<script>`. The browser is sent to sign in, sees
//! the list, opens the failed transfer and reads why it failed; the name shows as text and
//! no script of it runs. A screenshot goes to target/test-output/dashboard.png.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use vellum_tests::Package;

mod common;
use common::{get, registered, serve, wait_until_up};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Chromium and playwright-core (scripts/test installs both); a missing one fails the
/// test, which a bare `cargo test` therefore ignores.
fn browser() -> PathBuf {
    let chromium = PathBuf::from(std::env::var("VELLUM_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    let driver = workspace().join("tests/browser/node_modules/playwright-core");
    let missing = if !chromium.exists() {
        Some(format!("no chromium at {}", chromium.display()))
    } else if !driver.exists() {
        Some("playwright-core is not installed in tests/browser (scripts/test installs it)".to_string())
    } else {
        None
    };
    if let Some(why) = missing {
        panic!("this test needs a browser: {why}; run it through scripts/test");
    }
    chromium
}

fn drop_in(data: &Path, name: &str, bytes: &[u8]) {
    let staging = data.join("staging.bin");
    std::fs::write(&staging, bytes).unwrap();
    std::fs::rename(&staging, data.join("uploads/born-digital").join(name)).unwrap();
}

#[test]
#[ignore = "needs Chromium and playwright-core; scripts/test runs it"]
fn a_person_signs_in_sees_the_transfers_and_reads_why_one_failed() {
    let chromium = browser();
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("uploads/born-digital")).unwrap();
    let served = serve(data.path());
    wait_until_up(&served);
    let auth = registered(data.path(), "archivist");
    let key = auth.rsplit(':').next().unwrap().to_string();

    let zip = data.path().join("p.zip");
    Package::catalogued("PP/WEB/1", 3).write_zip(&zip);
    drop_in(data.path(), "letters.zip", &std::fs::read(&zip).unwrap());
    vellum_tests::write_damaged_zip(&zip, "PP/WEB/2");
    drop_in(data.path(), "damaged.zip", &std::fs::read(&zip).unwrap());
    let mut sneaky = Package::default();
    sneaky.add("objects/a.txt", "a");
    sneaky.write_zip(&zip);
    drop_in(data.path(), "<script>window.__vellumInjected=1<script>.zip", &std::fs::read(&zip).unwrap());

    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let (_, list) = get(served.1, "/api/transfers", Some(&auth));
        let ended =
            list["transfers"].as_array().map_or(0, |t| t.iter().filter(|t| t["status"] != "PROCESSING").count());
        if ended == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the three transfers never ended: {list}");
        std::thread::sleep(Duration::from_millis(300));
    }

    let out_dir = workspace().join("target/test-output");
    std::fs::create_dir_all(&out_dir).unwrap();
    let screenshot = out_dir.join("dashboard.png");
    let out = Command::new("node")
        .arg(workspace().join("tests/browser/dashboard.mjs"))
        .arg(format!("http://127.0.0.1:{}", served.1))
        .args(["archivist", &key])
        .arg(&screenshot)
        .env("VELLUM_CHROMIUM", &chromium)
        .output()
        .expect("run node");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the browser script failed: {}\n{printed}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_str(printed.lines().last().unwrap_or_default()).expect("the script's JSON");
    println!("the browser saw: {seen}");

    assert_eq!(seen["sentToSignIn"], true, "no session, sent to sign in");
    let rows = seen["rows"].as_array().unwrap();
    let status_of =
        |name: &str| rows.iter().find(|r| r["name"] == name).map(|r| r["status"].as_str().unwrap().to_string());
    assert_eq!(status_of("letters").as_deref(), Some("COMPLETE"), "{rows:?}");
    assert_eq!(status_of("damaged").as_deref(), Some("FAILED"), "{rows:?}");
    assert_eq!(
        status_of("<script>window.__vellumInjected=1<script>").as_deref(),
        Some("REJECTED"),
        "the name is shown as the text it is: {rows:?}"
    );
    assert_eq!(seen["failedPage"], "damaged");
    let reason = seen["reason"].as_str().unwrap();
    assert!(reason.contains("objects/damaged.txt") && reason.contains("damaged"), "the reason in words: {reason}");
    assert!(seen["jobRows"].as_u64().unwrap() >= 2 && seen["fileRows"].as_u64().is_some());
    assert_eq!(seen["scriptFromPage"], "undefined", "no script from a package name ran");
    assert_eq!(seen["dialogs"], serde_json::json!([]));
    assert_eq!(seen["errors"], serde_json::json!([]), "no script errors, no CSP violations");
    let cookie = &seen["cookie"][0];
    assert_eq!((cookie["httpOnly"].as_bool(), cookie["sameSite"].as_str()), (Some(true), Some("Strict")));
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000, "a screenshot at {}", screenshot.display());
    println!("screenshot: {}", screenshot.display());
}
