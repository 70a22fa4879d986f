//! The record tells the truth: what a PREMIS event and a file's characteristics say is held to
//! files made by real tools (Pillow, ImageMagick, Ghostscript) with known properties, and to
//! broken copies of them that a check reading only headers and trailers would call valid.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use vellum_core::model::{File, PremisEvent, Transfer, TransferStatus};
use vellum_core::ports::{EventLog, FileCatalogue};
use vellum_tests::{project_python, Package, TestEnv};

/// Runs scripts/make-truth-files.py into `dir` (the project's Python with Pillow,
/// ImageMagick and Ghostscript: scripts/test installs them).
fn truth_files(dir: &Path) -> serde_json::Value {
    let python = project_python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-truth-files.py");
    let out = Command::new(python).arg(script).arg(dir).output().expect("run make-truth-files.py");
    assert!(out.status.success(), "make-truth-files.py: {}", String::from_utf8_lossy(&out.stderr));
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let missing = expected["missing_tools"].as_array().unwrap();
    assert!(missing.is_empty(), "required to build the truth files: {missing:?} (scripts/test installs them)");
    expected
}

fn ingest(t: &TestEnv, p: &Package, key: &str) -> Transfer {
    let event = t.upload(p, key);
    t.drive(|_, _| false);
    t.transfer_for(&event).expect("a transfer")
}

fn files_and_events(t: &TestEnv, transfer: &Transfer) -> (Vec<File>, Vec<PremisEvent>) {
    (t.env.state.all_files(transfer.id).unwrap(), t.env.state.all_events(transfer.id).unwrap())
}

fn event_of<'a>(events: &'a [PremisEvent], file: &File, kind: &str) -> Vec<&'a PremisEvent> {
    events.iter().filter(|e| e.file_uuid == Some(file.uuid) && e.event_type == kind).collect()
}

#[test]
#[ignore = "needs the project's Python with Pillow, ImageMagick and Ghostscript; scripts/test runs it"]
fn validation_and_characterization_match_files_made_by_real_tools() {
    let t = TestEnv::new(50);
    let made = t.dir.path().join("made");
    let expected = truth_files(&made);
    let mut p = Package::default();
    p.add("metadata/metadata.csv", "filename,dc.identifier,dc.title\nobjects/,PP/TRUTH/1,Files of known truth\n");
    let cases = expected["files"].as_array().unwrap();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        p.add(&format!("objects/{name}"), std::fs::read(made.join(name)).unwrap());
    }
    let transfer = ingest(&t, &p, "born-digital/truth.zip");
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let (files, events) = files_and_events(&t, &transfer);
    let mut wrong = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let file = files.iter().find(|f| f.original_path == format!("objects/{name}")).expect("the file is recorded");
        let made_by = case["made_by"].as_str().unwrap();
        let validation = event_of(&events, file, "validation");
        let outcome = validation.first().map(|e| (e.outcome.as_str(), e.outcome_detail.clone()));
        // null: a format with no validator, so a validation "not performed".
        let want = Some(case["validation"].as_str().unwrap_or("Not performed"));
        if outcome.as_ref().map(|o| o.0) != want {
            wrong.push(format!("{name} ({made_by}): validation {outcome:?}, want {want:?}"));
        }
        let props: BTreeMap<String, String> = serde_json::from_value(case["properties"].clone()).unwrap();
        for (k, v) in &props {
            if file.characteristics.get(k) != Some(v) {
                wrong.push(format!("{name} ({made_by}): {k} = {:?}, want {v}", file.characteristics.get(k)));
            }
        }
        for k in case["absent"].as_array().unwrap() {
            let k = k.as_str().unwrap();
            if let Some(v) = file.characteristics.get(k) {
                wrong.push(format!("{name} ({made_by}): {k} = {v}, which the file does not support"));
            }
        }
    }
    assert!(wrong.is_empty(), "{} of {} files recorded wrongly:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
}

#[test]
fn identification_says_when_it_found_nothing_guessed_or_disagrees_with_the_name() {
    let t = TestEnv::new(50);
    let png = vellum_tests::tiny_png();
    let mut p = Package::default();
    p.add("metadata/metadata.csv", "filename,dc.identifier,dc.title\nobjects/,PP/IDENT/1,Identification cases\n");
    p.add("objects/empty.txt", "");
    p.add("objects/README", "Plain words with no extension to go by.\n");
    p.add("objects/picture.pdf", png.clone());
    p.add("objects/picture.png", png);
    p.add("objects/header-only.pdf", "%PDF-1.7\n");
    let transfer = ingest(&t, &p, "born-digital/ident.zip");
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let (files, events) = files_and_events(&t, &transfer);
    let said = |name: &str| {
        let file = files.iter().find(|f| f.original_path == format!("objects/{name}")).unwrap();
        let e = event_of(&events, file, "format identification");
        assert_eq!(e.len(), 1, "{name}: one identification event");
        (e[0].outcome.as_str().to_string(), e[0].outcome_detail.clone())
    };
    let (outcome, note) = said("empty.txt");
    assert_eq!(outcome, "no match", "{note}");
    assert!(note.contains("empty"), "{note}");
    // Text no signature matches, named as nothing else: plain text, as siegfried says.
    let (outcome, note) = said("README");
    assert_eq!(outcome, "text only", "{note}");
    assert!(note.starts_with("x-fmt/111"), "{note}");
    let (outcome, note) = said("picture.pdf");
    assert_eq!(outcome, "extension mismatch", "{note}");
    assert!(note.starts_with("fmt/11") && note.contains(".pdf") && note.contains(".png"), "{note}");
    let (outcome, note) = said("picture.png");
    assert_eq!((outcome.as_str(), note.as_str()), ("positive", "fmt/11"));
    // A PDF's header without the rest of a PDF is no PDF, whatever its name says (siegfried
    // says nothing of it either); the formats .pdf names are in the event as possibilities.
    let (outcome, note) = said("header-only.pdf");
    assert_eq!(outcome, "no match", "{note}");
    assert!(note.contains("no signature matched") && note.contains(".pdf proves nothing"), "{note}");
    let file = files.iter().find(|f| f.original_path == "objects/header-only.pdf").unwrap();
    let detail = &event_of(&events, file, "format identification")[0].detail;
    assert!(detail.contains("possibilities by extension=\"") && detail.contains("fmt/276"), "{detail}");
}

#[test]
fn cut_tool_output_is_marked_and_its_event_does_not_say_positive() {
    // `seq` stands in for a tool whose answer runs past the rule's max_output.
    let mut options = vellum_tests::options();
    let mut rules = vellum_core::config::fpr::Rules::builtin().rules;
    rules.retain(|r| r.name == "exiftool");
    rules[0].command = "seq".into();
    rules[0].args = vec!["100000".into()];
    rules[0].stay_open = false;
    rules[0].max_output = 1000;
    rules[0].output = vellum_core::config::fpr::RuleOutput::Xml;
    options.config.format_policy = Some(rules);
    let t = TestEnv::with_options(options);
    let mut p = Package::default();
    p.add("metadata/metadata.csv", "filename,dc.identifier,dc.title\nobjects/,PP/CUT/1,Cut output\n");
    p.add("objects/picture.png", vellum_tests::tiny_png());
    let transfer = ingest(&t, &p, "born-digital/cut.zip");
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let (files, events) = files_and_events(&t, &transfer);
    let file = files.iter().find(|f| f.original_path == "objects/picture.png").unwrap();
    let extraction: Vec<_> = event_of(&events, file, "metadata extraction")
        .into_iter()
        .filter(|e| e.detail.contains("program=\"exiftool\""))
        .collect();
    assert_eq!(extraction.len(), 1, "{:#?}", event_of(&events, file, "metadata extraction"));
    assert_eq!(extraction[0].outcome.as_str(), "partial pass", "{}", extraction[0].outcome_detail);
    assert!(
        extraction[0].outcome_detail.contains("588895 bytes") && extraction[0].outcome_detail.contains("first 1000"),
        "{}",
        extraction[0].outcome_detail
    );
    let kept = file.characteristics.get("exiftool").expect("the cut output is kept as text, not as XML");
    assert!(kept.ends_with("the rule's max_output)]"), "{kept}");
    assert!(!file.characteristics.contains_key("exiftool.xml"), "cut XML is not recorded as XML");
}
