//! What the AWS model in docs/aws.md is built from: the requests each function makes per
//! file, counted by the emulator (every request it authorizes is logged with the user — here
//! a set of users made for this test alone, holding the template's policies). The counts of
//! a real run must agree with `infra/requests-per-file.json`, the model's inputs; with
//! `VELLUM_RECORD_REQUESTS=1` the run writes them there instead.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use vellum_aws::app::{AwsApp, Names};
use vellum_aws::runner::Fleet;
use vellum_core::model::TransferStatus;
use vellum_core::ports::{TransferOversight, TransferQuery};
use vellum_tests::Package;

mod support;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

/// Files in the counted package: several batches of the profile's 128.
const FILES: usize = 300;

#[test]
fn requests_per_file_agree_with_the_models_inputs() {
    let root = support::root();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("the emulator: eval \"$(infra/local/up)\"");
    let port = endpoint.rsplit(':').next().unwrap().trim_end_matches('/');
    let log = root.join(format!(".vellum-local/moto-{port}.log"));
    let dir = tempfile::tempdir().unwrap();
    let suffix = format!("-counted-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let roles = support::users_of_their_own(None, &suffix);
    let names = Names::from_env().unwrap();
    // Counted as deployed: every file scanned (the scan function reads each one).
    assert!(
        names.clamd.is_some(),
        "these counts are of a run with a virus scanner: VELLUM_CLAMD (scripts/test starts clamd)"
    );
    let fleet = Fleet::with_roles(&names, runtime().handle().clone(), Some(&roles)).unwrap();
    let app = AwsApp::new(&names, runtime().handle().clone()).unwrap();

    let logged_before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let key = format!("born-digital/counted-{}.zip", &suffix[9..]);
    let zip = dir.path().join("package.zip");
    Package::catalogued(&format!("PP/COUNT/{}", &suffix[9..]), FILES).write_zip(&zip);
    app.pipeline.uploads.put(&key, &std::fs::read(&zip).unwrap()).unwrap();
    let ended = || {
        app.state
            .list_transfers(&TransferQuery { limit: 200, ..Default::default() })
            .unwrap()
            .items
            .into_iter()
            .find(|t| t.source_key == key && t.status.is_terminal())
    };
    vellum_aws::runner::drive(&fleet, Duration::from_secs(600), Duration::from_secs(20), || ended().is_some()).unwrap();
    let transfer = ended().expect("the transfer ended");
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);

    // Every request this test's users made, by function and API operation.
    let text = std::fs::read(&log).unwrap();
    let text = String::from_utf8_lossy(&text[logged_before as usize..]);
    let mut counted: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    let files = (FILES + 1) as f64; // and metadata.csv
    for line in text.lines() {
        let Some(rest) = line.split("IAM request: arn:aws:iam::123456789012:user/").nth(1) else { continue };
        let mut words = rest.split_whitespace();
        let (Some(user), Some(operation)) = (words.next(), words.next()) else { continue };
        let Some(function) = user.strip_suffix(&suffix) else { continue };
        *counted.entry(function.to_string()).or_default().entry(operation.to_string()).or_default() += 1.0 / files;
    }
    assert!(counted.contains_key("StoreFunction"), "no request of this test's users was logged in {log:?}");
    let items = item_sizes(transfer.id);
    for kind in ["file", "event", "job", "transfer"] {
        assert!(items.get(kind).is_some_and(|(count, _)| *count > 0.0), "no {kind} item measured: {items:?}");
    }
    let path = root.join("infra/requests-per-file.json");
    if std::env::var("VELLUM_RECORD_REQUESTS").is_ok() {
        let rounded: BTreeMap<_, BTreeMap<_, f64>> = counted
            .iter()
            .map(|(f, a)| (f.clone(), a.iter().map(|(k, v)| (k.clone(), (v * 1000.0).round() / 1000.0)).collect()))
            .collect();
        let doc = serde_json::json!({
            "about": "Requests each function made per file (this package's files and metadata.csv), counted by the emulator: crates/aws/tests/requests.rs. The inputs of scripts/aws-model.",
            "files": files,
            "batch_size": 128,
            "per_file": rounded,
            "items": items.iter().map(|(kind, (count, bytes))| (kind.clone(), serde_json::json!({
                "per_file": (count / files * 1000.0).round() / 1000.0,
                "mean_bytes": bytes.round(),
            }))).collect::<serde_json::Map<_, _>>(),
        });
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
        return;
    }
    let model: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut wrong = Vec::new();
    let expected = model["per_file"].as_object().unwrap();
    for (function, actions) in expected {
        for (action, per_file) in actions.as_object().unwrap() {
            let want = per_file.as_f64().unwrap();
            let got = counted.get(function).and_then(|a| a.get(action)).copied().unwrap_or(0.0);
            // Retries and the order deliveries race in move a count a little, not more.
            if (got - want).abs() > 0.05 + want * 0.15 {
                wrong.push(format!("{function} {action}: {got:.3} a file, the model has {want:.3}"));
            }
        }
    }
    for (function, actions) in &counted {
        for (action, got) in actions {
            if expected.get(function).and_then(|a| a.get(action)).is_none() && *got > 0.05 {
                wrong.push(format!("{function} {action}: {got:.3} a file, not in the model"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the model's inputs are out of date (VELLUM_RECORD_REQUESTS=1 rewrites them):\n{}",
        wrong.join("\n")
    );
}

/// The transfer's items in the table, by kind: how many, and their mean size as DynamoDB
/// counts it (names and values), read with the operator's keys.
fn item_sizes(transfer_id: uuid::Uuid) -> BTreeMap<String, (f64, f64)> {
    use aws_sdk_dynamodb::types::AttributeValue;
    fn size(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.len().div_ceil(2) + 1,
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::M(m) => m.iter().map(|(k, v)| k.len() + size(v) + 1).sum::<usize>() + 3,
            AttributeValue::L(l) => l.iter().map(|v| size(v) + 1).sum::<usize>() + 3,
            AttributeValue::Ss(s) | AttributeValue::Ns(s) => s.iter().map(String::len).sum(),
            _ => 1,
        }
    }
    let client = aws_sdk_dynamodb::Client::new(&vellum_aws::load_config(runtime().handle()));
    let table = std::env::var("VELLUM_TABLE").unwrap();
    let mut sizes: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut start = None;
    loop {
        let call = client
            .query()
            .table_name(&table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("T#{transfer_id}")))
            .set_exclusive_start_key(start.take());
        let out = runtime().block_on(call.send()).unwrap();
        for item in out.items() {
            let sk = match item.get("sk") {
                Some(AttributeValue::S(sk)) => sk.clone(),
                _ => continue,
            };
            let kind = match sk.split('#').next().unwrap_or_default() {
                "F" => "file",
                "B" | "P" => "file pointer",
                "EV" => "event",
                "E" | "S" => "event copy",
                "JOB" => "job",
                "META" => "transfer",
                other => other,
            };
            let bytes: usize = item.iter().map(|(k, v)| k.len() + size(v)).sum();
            let entry = sizes.entry(kind.to_string()).or_default();
            entry.1 = (entry.1 * entry.0 + bytes as f64) / (entry.0 + 1.0);
            entry.0 += 1.0;
        }
        match out.last_evaluated_key {
            Some(k) => start = Some(k),
            None => return sizes,
        }
    }
}
