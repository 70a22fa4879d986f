//! The per-file microservices on real inputs: checksums and fixity, a real ClamAV daemon,
//! PRONOM identification measured against fido, characterization and validation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use vellum_core::model::Stage;

use vellum_core::model::{EventOutcome, Transfer, TransferStatus};
use vellum_core::ports::{EventLog, FileCatalogue, JobLedger, ObjectStore, TransferRegister};
use vellum_local::fs_store::FsObjectStore;
use vellum_tests::{made_by, project_python, Package, TestEnv};

const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

fn ingest(t: &TestEnv, p: &Package, key: &str) -> Transfer {
    let event = t.upload(p, key);
    t.drive(|_, _| false);
    t.transfer_for(&event).unwrap()
}

fn event_of<'a>(
    events: &'a [vellum_core::model::PremisEvent],
    file: uuid::Uuid,
    kind: &str,
) -> &'a vellum_core::model::PremisEvent {
    events
        .iter()
        .find(|e| e.file_uuid == Some(file) && e.event_type == kind)
        .unwrap_or_else(|| panic!("no {kind} event"))
}

/// A test environment with a running clamd (scripts/test starts one); without it the test
/// fails, so a test that calls this is ignored for a bare `cargo test`.
fn with_clamd() -> TestEnv {
    assert!(vellum_tests::scanner().is_some(), "this test needs clamd (VELLUM_CLAMD): run it through scripts/test");
    TestEnv::new(10)
}

#[test]
#[ignore = "needs clamd; scripts/test runs it"]
fn an_infected_file_fails_the_transfer_naming_file_and_signature() {
    let t = with_clamd();
    let mut p = Package::catalogued("PP/VIRUS/1", 3);
    p.add("objects/attachments/invoice.com", EICAR);
    let transfer = ingest(&t, &p, "born-digital/virus.zip");
    assert_eq!(transfer.status, TransferStatus::Failed);
    let reason = transfer.failure_reason.unwrap();
    assert!(reason.contains("objects/attachments/invoice.com") && reason.contains("EICAR"), "{reason}");
    assert!(t.stored_aips().is_empty(), "nothing is stored");
    let files = t.env.state.all_files(transfer.id).unwrap();
    let infected = files.iter().find(|f| f.original_path.ends_with("invoice.com")).unwrap();
    let events = t.env.state.all_events(transfer.id).unwrap();
    let e = event_of(&events, infected.uuid, "virus check");
    assert_eq!(e.outcome, EventOutcome::Fail);
    assert!(e.outcome_detail.contains("EICAR") && e.detail.contains("ClamAV"), "{e:?}");
    let clean = files.iter().find(|f| f.original_path.ends_with("file-00000.txt")).unwrap();
    assert_eq!(event_of(&events, clean.uuid, "virus check").outcome, EventOutcome::Pass);
}

#[test]
#[ignore = "needs clamd; scripts/test runs it"]
fn a_file_over_the_stream_limit_is_recorded_as_not_scanned_and_the_profile_decides() {
    let _ = with_clamd();
    // A second daemon with a 25 MB stream limit (the project's own is at clamd's ceiling);
    // zeros zip to nothing.
    let small = SmallClamd::start("25M");
    let mut p = Package::catalogued("PP/BIG/1", 1);
    p.add("objects/disk-image.bin", vec![0u8; 26 << 20]);
    let lenient = || {
        let mut options = vellum_tests::options();
        options.scanner = Some(Arc::new(vellum_clamd::Clamd::new(&small.addr)));
        options
    };
    let t = TestEnv::with_options(lenient());
    let transfer = ingest(&t, &p, "born-digital/big.zip");
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let big =
        t.env.state.all_files(transfer.id).unwrap().into_iter().find(|f| f.original_path.ends_with(".bin")).unwrap();
    let e = event_of(&t.env.state.all_events(transfer.id).unwrap(), big.uuid, "virus check").clone();
    assert_eq!(e.outcome, EventOutcome::NotPerformed);
    assert!(e.outcome_detail.contains("stream limit"), "{e:?}");
    assert_eq!(t.env.state.transfer(transfer.id).unwrap().unwrap().files_not_scanned, Some(1), "counted");

    let mut options = lenient();
    for profile in &mut options.config.profiles {
        profile.fail_unscanned = true;
    }
    let strict = TestEnv::with_options(options);
    let transfer = ingest(&strict, &p, "born-digital/big.zip");
    assert_eq!(transfer.status, TransferStatus::Failed);
    assert!(transfer.failure_reason.unwrap().contains("could not be scanned"));
}

/// clamd stopped while a transfer is being scanned, and started again: the scan waits (its
/// messages come back) and the transfer completes with every file scanned once — never
/// "clean" without a scan, never "not performed" for a daemon that was only away.
#[test]
#[ignore = "needs clamd; scripts/test runs it"]
fn clamd_stopped_mid_transfer_and_started_again_the_transfer_waits_then_completes() {
    let _ = with_clamd();
    for attempt in 1..=3 {
        let daemon = SmallClamd::start("4000M");
        let mut options = vellum_tests::options();
        options.scanner = Some(Arc::new(vellum_clamd::Clamd::new(&daemon.addr)));
        options.max_receives = 12;
        options.settings.batch_size = Some(1);
        let t = TestEnv::with_options(options);
        let event = t.upload(&Package::catalogued("PP/CLAMD/1", 60), "born-digital/clamd.zip");
        let config = vellum_local::RunnerConfig {
            retry_delay: std::time::Duration::from_millis(50),
            idle_poll: std::time::Duration::from_millis(10),
            ..Default::default()
        };
        let runner = vellum_local::Runner::start(t.env.pipeline.clone(), t.env.queue.clone(), config);
        let scanned = |t: &TestEnv| {
            t.transfer_for(&event).and_then(|tr| t.env.state.job(tr.id, "scan").unwrap()).map_or(0, |j| j.batches_done)
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while scanned(&t) == 0 {
            assert!(std::time::Instant::now() < deadline, "scanning never started");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        daemon.run("stop", "4000M");
        let at_stop = scanned(&t);
        std::thread::sleep(std::time::Duration::from_secs(2));
        let transfer = t.transfer_for(&event).unwrap();
        if at_stop >= 61 || transfer.status != TransferStatus::Processing {
            runner.stop();
            eprintln!("attempt {attempt}: the scan finished before clamd stopped; again");
            continue;
        }
        let job = t.env.state.job(transfer.id, "scan").unwrap().unwrap();
        assert!(job.batches_done < 61, "scanning waits while clamd is away");
        let events = t.env.state.all_events(transfer.id).unwrap();
        assert!(
            events.iter().filter(|e| e.event_type == "virus check").all(|e| e.outcome == EventOutcome::Pass),
            "nothing is recorded clean or unscanned while the daemon is away"
        );
        daemon.run("start", "4000M");
        let transfer = loop {
            let tr = t.transfer_for(&event).unwrap();
            if tr.status.is_terminal() {
                break tr;
            }
            assert!(std::time::Instant::now() < deadline, "the transfer never ended");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        runner.stop();
        assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
        let files = t.env.state.all_files(transfer.id).unwrap();
        let events = t.env.state.all_events(transfer.id).unwrap();
        for f in &files {
            let checks: Vec<_> =
                events.iter().filter(|e| e.file_uuid == Some(f.uuid) && e.event_type == "virus check").collect();
            assert_eq!(checks.len(), 1, "{}: one virus check", f.original_path);
            assert_eq!(checks[0].outcome, EventOutcome::Pass, "{}", f.original_path);
        }
        eprintln!("clamd stopped after {at_stop} of 61 scan batches; all scanned once it was back");
        return;
    }
    panic!("the scan always finished before clamd could be stopped");
}

/// The project's clamd takes files up to its ceiling: EICAR 30 MB into a 40 MB file is found
/// (under a 25 MB default it was stored as "Not performed").
#[test]
#[ignore = "needs clamd; scripts/test runs it"]
fn a_virus_deep_in_a_large_file_is_found() {
    let _ = with_clamd();
    let mut big = vec![0u8; 40 << 20];
    big[30 << 20..(30 << 20) + EICAR.len()].copy_from_slice(EICAR.as_bytes());
    let mut p = Package::catalogued("PP/DEEP/1", 1);
    p.add("objects/disk-image.bin", big);
    let t = TestEnv::with_options(vellum_tests::options());
    let transfer = ingest(&t, &p, "born-digital/deep.zip");
    assert_eq!(transfer.status, TransferStatus::Failed, "{:?}", transfer.failure_reason);
    let reason = transfer.failure_reason.unwrap();
    assert!(reason.contains("disk-image.bin") && reason.contains("EICAR"), "{reason}");
}

/// A clamd of the test's own, on a free port with the stream limit given; stopped on drop.
struct SmallClamd {
    addr: String,
    dir: tempfile::TempDir,
    port: u16,
}

impl SmallClamd {
    fn start(limit: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let daemon = Self { addr: format!("127.0.0.1:{port}"), dir, port };
        daemon.run("start", limit);
        daemon
    }

    /// `scripts/clamd start` or `stop` on this daemon's folder and port.
    fn run(&self, what: &str, limit: &str) {
        let out = SmallClamd::script(self.dir.path(), self.port)
            .env("VELLUM_CLAMD_STREAM_MAX", limit)
            .arg(what)
            .output()
            .unwrap();
        assert!(out.status.success(), "clamd {what}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn script(dir: &Path, port: u16) -> Command {
        let mut c = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/clamd"));
        c.env("VELLUM_CLAMD_DIR", dir).env("VELLUM_CLAMD_PORT", port.to_string());
        c
    }
}

impl Drop for SmallClamd {
    fn drop(&mut self) {
        let _ = SmallClamd::script(self.dir.path(), self.port).arg("stop").output();
    }
}

#[test]
fn an_unreachable_daemon_is_retried_never_skipped() {
    let mut options = vellum_tests::options();
    options.scanner = Some(Arc::new(vellum_clamd::Clamd::new("127.0.0.1:9")));
    let t = TestEnv::with_options(options);
    t.upload(&Package::catalogued("PP/DOWN/1", 1), "born-digital/down.zip");
    let ctx = vellum_core::StageContext::with_budget(std::time::Duration::from_secs(10));
    let mut scan_outcomes = Vec::new();
    for _ in 0..20 {
        for q in Stage::ALL.map(Stage::name) {
            for d in vellum_core::ports::Queue::receive(t.env.queue.as_ref(), q, 10, std::time::Duration::from_secs(60))
                .unwrap()
            {
                let outcome = t.env.pipeline.handle_queue(q, &d.body, &ctx);
                if q == Stage::Scan.name() {
                    scan_outcomes.push(outcome.clone());
                }
                if outcome.acknowledges() {
                    vellum_core::ports::Queue::ack(t.env.queue.as_ref(), q, &d.receipt).unwrap();
                }
            }
        }
    }
    assert!(!scan_outcomes.is_empty());
    assert!(
        scan_outcomes.iter().all(|o| matches!(o, vellum_core::Outcome::Retry(e) if e.contains("cannot be reached"))),
        "{scan_outcomes:?}"
    );
}

#[test]
fn with_scanning_off_every_file_and_the_mets_say_not_scanned() {
    let mut options = vellum_tests::options();
    options.scanner = None;
    let t = TestEnv::with_options(options);
    let transfer = ingest(&t, &Package::catalogued("PP/OFF/1", 2), "born-digital/off.zip");
    assert_eq!(transfer.status, TransferStatus::Complete);
    let events = t.env.state.all_events(transfer.id).unwrap();
    let checks: Vec<_> = events.iter().filter(|e| e.event_type == "virus check").collect();
    assert_eq!(checks.len(), 3);
    assert!(checks
        .iter()
        .all(|e| e.outcome == EventOutcome::NotPerformed && e.outcome_detail.contains("--clamd none")));
    let dir = tempfile::tempdir().unwrap();
    let bag = vellum_tests::unpack_aip(&t.env.aips.root().join(transfer.aip_key.unwrap()), dir.path());
    let mets = std::fs::read_to_string(bag.join(format!("data/METS.{}.xml", transfer.aip_uuid))).unwrap();
    assert!(mets.contains("<premis:eventOutcome>Not performed</premis:eventOutcome>"));
}

#[test]
fn every_profile_algorithm_is_computed_and_supplied_checksums_are_verified() {
    let mut options = vellum_tests::options();
    for profile in &mut options.config.profiles {
        profile.checksum_algorithms = vec!["md5".into(), "sha1".into(), "sha256".into(), "sha512".into()];
        profile.supplied_checksums = true;
    }
    let t = TestEnv::with_options(options.clone());
    let mut p = Package::catalogued("PP/SUM/1", 2);
    let first_bytes = p.entries.iter().find(|e| e.name == "objects/folder-0/file-00000.txt").unwrap().bytes.clone();
    let (md5, _) = vellum_core::analysis::fixity::Digests::for_algorithms(&["md5"])
        .unwrap()
        .of_reader(&mut first_bytes.as_slice())
        .unwrap();
    p.add("metadata/checksum.md5", format!("{}  ../objects/folder-0/file-00000.txt\n", md5["md5"]));
    // And in Archivematica's form, the objects named as they sit in the transfer.
    let second_bytes = p.entries.iter().find(|e| e.name == "objects/folder-1/file-00001.txt").unwrap().bytes.clone();
    let (sha1, _) = vellum_core::analysis::fixity::Digests::for_algorithms(&["sha1"])
        .unwrap()
        .of_reader(&mut second_bytes.as_slice())
        .unwrap();
    p.add("metadata/checksum.sha1", format!("{}  folder-1/file-00001.txt\n", sha1["sha1"]));
    let transfer = ingest(&t, &p, "born-digital/sums.zip");
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let files = t.env.state.all_files(transfer.id).unwrap();
    let second = files.iter().find(|f| f.original_path == "objects/folder-1/file-00001.txt").unwrap();
    let all = t.env.state.all_events(transfer.id).unwrap();
    let second_check = event_of(&all, second.uuid, "fixity check");
    assert_eq!(second_check.outcome, EventOutcome::Pass, "{second_check:?}");
    let first = files.iter().find(|f| f.original_path == "objects/folder-0/file-00000.txt").unwrap();
    assert_eq!(first.checksums.keys().map(String::as_str).collect::<Vec<_>>(), ["md5", "sha1", "sha256", "sha512"]);
    let events = t.env.state.all_events(transfer.id).unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.file_uuid == Some(first.uuid) && e.event_type == "message digest calculation")
            .count(),
        4
    );
    assert_eq!(event_of(&events, first.uuid, "fixity check").outcome, EventOutcome::Pass);

    let t = TestEnv::with_options(options);
    let mut p = Package::catalogued("PP/SUM/2", 2);
    p.add("metadata/checksum.sha256", format!("{}  objects/folder-0/file-00000.txt\n", "0".repeat(64)));
    let transfer = ingest(&t, &p, "born-digital/bad-sums.zip");
    assert_eq!(transfer.status, TransferStatus::Failed);
    let reason = transfer.failure_reason.unwrap();
    assert!(reason.contains("objects/folder-0/file-00000.txt") && reason.contains(&"0".repeat(64)), "{reason}");
    let events = t.env.state.all_events(transfer.id).unwrap();
    assert!(
        events.iter().any(|e| e.event_type == "fixity check" && e.outcome == EventOutcome::Fail),
        "the failed check is kept"
    );
}

/// The corpus of real files, written once per test process by scripts/make-corpus.py.
fn corpus() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("vellum-corpus-{}", std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-corpus.py");
        let out = Command::new(project_python()).arg(script).arg(&dir).output().expect("run make-corpus.py");
        assert!(out.status.success(), "make-corpus.py: {}", String::from_utf8_lossy(&out.stderr));
        dir
    })
    .clone()
}

/// Vellum's identification of every corpus file, by path relative to the corpus.
fn vellum_identifies(dir: &Path) -> BTreeMap<String, vellum_core::analysis::pronom::Identification> {
    let identifier = vellum_tests::identifier();
    let store: Arc<dyn ObjectStore> = Arc::new(FsObjectStore::new(dir, "corpus").unwrap());
    let mut out = BTreeMap::new();
    for path in vellum_tests::files_under(dir) {
        let key = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        let size = std::fs::metadata(&path).unwrap().len();
        out.insert(
            key.clone(),
            vellum_core::analysis::pronom::identify_object(&identifier, &store, &key, &key, size).unwrap(),
        );
    }
    out
}

#[test]
#[ignore = "needs the project's Python with opf-fido, Pillow and bagit-python; scripts/test runs it"]
fn identification_agrees_with_fido_on_a_corpus_of_real_files() {
    let (dir, python) = (corpus(), project_python());
    let out = Command::new(&python)
        .args([
            "-m",
            "fido.fido",
            "-q",
            "-recurse",
            "-matchprintf",
            "OK\t%(info.filename)s\t%(info.puid)s\n",
            "-nomatchprintf",
            "KO\t%(info.filename)s\n",
        ])
        .arg(&dir)
        .output()
        .expect("run fido");
    let mut fido: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols[0] == "OK" && cols.len() == 3 {
            let rel =
                Path::new(cols[1]).strip_prefix(&dir).unwrap_or(Path::new(cols[1])).to_string_lossy().into_owned();
            fido.entry(rel).or_default().push(cols[2].to_string());
        }
    }
    let ours = vellum_identifies(&dir);
    let single: Vec<(&String, &String)> = fido.iter().filter(|(_, m)| m.len() == 1).map(|(f, m)| (f, &m[0])).collect();
    assert!(single.len() >= 50, "fido identified too few files with one match: {}", single.len());
    let mut disagreements = Vec::new();
    for (file, puid) in &single {
        let mine =
            ours.get(*file).and_then(|i| i.format.as_ref()).map(|f| f.puid.clone()).unwrap_or_else(|| "UNKNOWN".into());
        if mine != **puid {
            disagreements.push(format!("{file}: fido {puid}, vellum {mine}"));
        }
    }
    let agreement = 1.0 - disagreements.len() as f64 / single.len() as f64;
    println!(
        "fido and Vellum agree on {:.1}% of {} files fido identifies with one match",
        agreement * 100.0,
        single.len()
    );
    for d in &disagreements {
        println!("  disagreement: {d}");
    }
    assert!(agreement >= 0.95, "agreement {agreement:.3} is under 95%: {disagreements:#?}");
    // Containers: office documents are told apart by what is inside them.
    let puid_of = |suffix: &str| {
        ours.iter().find(|(k, _)| k.ends_with(suffix)).and_then(|(_, i)| i.format.as_ref()).map(|f| f.puid.clone())
    };
    assert_eq!(puid_of("letter-0.docx").as_deref(), Some("fmt/412"));
    assert_eq!(puid_of("accounts-0.xlsx").as_deref(), Some("fmt/214"));
    assert_eq!(puid_of("talk-0.pptx").as_deref(), Some("fmt/215"));
}

/// Siegfried (pygfried, with its own and newer PRONOM signatures) and Vellum on the same
/// real files: at least 97 % agreement over the files siegfried gives a PUID, as issue 31
/// sets; scripts/agreement.py measures any other corpus the same way.
#[test]
#[ignore = "needs the project's Python with pygfried and Pillow; scripts/test runs it"]
fn identification_agrees_with_siegfried_on_a_corpus_of_real_files() {
    let (dir, python) = (corpus(), project_python());
    let script = "import pygfried, sys, pathlib\n\
                  for p in sorted(pathlib.Path(sys.argv[1]).rglob('*')):\n\
                  \x20   if p.is_file() and '.vellum' not in p.parts:\n\
                  \x20       m = pygfried.identify(str(p), detailed=True)['files'][0]['matches'][0]\n\
                  \x20       print(str(p) + '\\t' + m['id'])\n";
    let out = Command::new(&python).args(["-c", script]).arg(&dir).output().expect("run siegfried");
    assert!(out.status.success(), "pygfried: {}", String::from_utf8_lossy(&out.stderr));
    let ours = vellum_identifies(&dir);
    let mut judged = 0;
    let mut disagreements = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (path, puid) = line.split_once('\t').expect("path and PUID");
        if puid == "UNKNOWN" {
            continue;
        }
        judged += 1;
        let rel = Path::new(path).strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
        let mine = ours.get(&rel).and_then(|i| i.format.as_ref()).map_or("UNKNOWN".to_string(), |f| f.puid.clone());
        if mine != puid {
            disagreements.push(format!("{rel}: siegfried {puid}, vellum {mine}"));
        }
    }
    assert!(judged >= 50, "siegfried identified too few files: {judged}");
    let agreement = 1.0 - disagreements.len() as f64 / judged as f64;
    println!("siegfried and Vellum agree on {:.1}% of {judged} files siegfried gives a PUID", agreement * 100.0);
    assert!(agreement >= 0.97, "agreement {agreement:.3} is under 97%: {disagreements:#?}");
}

#[test]
fn an_extension_guess_is_tentative_and_unknown_is_no_error() {
    let identifier = vellum_tests::identifier();
    let none = &mut vellum_core::analysis::pronom::container::NoContainer;
    let guess = identifier.identify(b"a,b\n1,2\n", b"a,b\n1,2\n", true, "table.csv", none);
    let f = guess.format.unwrap();
    assert!(f.tentative && guess.basis == "extension", "{f:?}");
    let noise = [0x13u8, 0x37, 0x42, 0x99, 0x00, 0x01];
    let unknown = identifier.identify(&noise, &noise, true, "mystery.zzz", none);
    assert!(unknown.format.is_none() && unknown.basis == "none");
    // A signature match outranks the extension: a PNG named .txt is a PNG.
    let real_png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde\0\0\0\x0cIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";
    let id = identifier.identify(real_png, real_png, true, "not-really.txt", none);
    let f = id.format.unwrap();
    assert_eq!(f.puid, "fmt/11");
    assert!(!f.tentative);
}

#[test]
fn ole2_documents_are_identified_by_their_streams() {
    let identifier = vellum_tests::identifier();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.doc");
    std::fs::write(&path, vellum_tests::word97([0, 0])).unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(FsObjectStore::new(dir.path(), "d").unwrap());
    let size = std::fs::metadata(&path).unwrap().len();
    let id =
        vellum_core::analysis::pronom::identify_object(&identifier, &store, "report.doc", "report.doc", size).unwrap();
    assert_eq!(id.basis, "container", "{id:?}");
    assert_eq!(id.format.unwrap().puid, "fmt/40", "Word 97");
}

#[test]
#[ignore = "needs the project's Python with Pillow (the corpus); scripts/test runs it"]
fn characterization_and_validation_are_recorded_and_only_fail_the_transfer_if_the_profile_says() {
    let dir = corpus();
    let mut p = Package::catalogued("PP/CHAR/1", 0);
    let read = |rel: &str| std::fs::read(dir.join(rel)).unwrap();
    p.add("objects/photo.png", read("img/photo-0.png"));
    p.add("objects/photo.jpg", read("img/photo-0.jpg"));
    p.add("objects/anim.gif", read("img/anim-0.gif"));
    p.add("objects/plain.tif", read("img/plain-0.tif"));
    p.add("objects/doc.pdf", read("pdf/doc-0-1.7.pdf"));
    p.add("objects/tone.wav", read("audio/tone-0-2-2-44100.wav"));
    p.add("objects/data.json", read("text/data-0.json"));
    p.add("objects/broken.json", "{\"unfinished\": [1, 2");
    let png = read("img/photo-0.png");
    p.add("objects/truncated.png", png[..png.len() / 2].to_vec());
    let t = TestEnv::new(20);
    let transfer = ingest(&t, &p, "born-digital/char.zip");
    assert_eq!(transfer.status, TransferStatus::Complete, "an invalid file does not fail the transfer by default");
    let files = t.env.state.all_files(transfer.id).unwrap();
    let events = t.env.state.all_events(transfer.id).unwrap();
    let file = |name: &str| files.iter().find(|f| f.original_path == format!("objects/{name}")).unwrap();
    let traits = |name: &str| file(name).characteristics.clone();
    assert_eq!(traits("photo.png").get("width").map(String::as_str), Some("64"));
    assert_eq!(traits("photo.png").get("height").map(String::as_str), Some("48"));
    assert_eq!(traits("photo.jpg").get("width").map(String::as_str), Some("64"));
    assert_eq!(traits("anim.gif").get("height").map(String::as_str), Some("48"));
    assert_eq!(traits("plain.tif").get("width").map(String::as_str), Some("64"));
    assert_eq!(traits("doc.pdf").get("pdf_version").map(String::as_str), Some("1.7"));
    assert_eq!(traits("doc.pdf").get("page_count").map(String::as_str), Some("1"));
    assert_eq!(traits("doc.pdf").get("encrypted").map(String::as_str), Some("false"));
    assert_eq!(traits("tone.wav").get("channels").map(String::as_str), Some("2"));
    assert_eq!(traits("tone.wav").get("sample_rate").map(String::as_str), Some("44100"));
    assert_eq!(traits("tone.wav").get("duration_seconds").map(String::as_str), Some("0.100"));
    for (name, outcome) in [
        ("photo.png", EventOutcome::Pass),
        // Structure only: the pages' contents are not decoded, and the outcome says so.
        ("doc.pdf", EventOutcome::PartialPass),
        ("data.json", EventOutcome::Pass),
        ("broken.json", EventOutcome::Fail),
        ("truncated.png", EventOutcome::Fail),
    ] {
        assert_eq!(event_of(&events, file(name).uuid, "validation").outcome, outcome, "{name}");
    }
    // The characteristics are in the METS.
    let dir = tempfile::tempdir().unwrap();
    let bag = vellum_tests::unpack_aip(&t.env.aips.root().join(transfer.aip_key.unwrap()), dir.path());
    let mets = std::fs::read_to_string(bag.join(format!("data/METS.{}.xml", transfer.aip_uuid))).unwrap();
    assert!(mets.contains("<premis:objectCharacteristicsExtension>"), "characteristics reach the METS");
    assert!(mets.contains("<premis:formatRegistryKey>fmt/11</premis:formatRegistryKey>"));

    let mut options = vellum_tests::options();
    for profile in &mut options.config.profiles {
        profile.fail_invalid = true;
    }
    let strict = TestEnv::with_options(options);
    let transfer = ingest(&strict, &p, "born-digital/char.zip");
    assert_eq!(transfer.status, TransferStatus::Failed);
    assert!(transfer.failure_reason.unwrap().contains("failed validation"));
}

#[test]
fn format_policy_rules_run_installed_tools_on_their_formats_with_bounded_output() {
    use vellum_core::config::fpr::{Purpose, Rules};
    use vellum_core::ports::{ToolOutput, ToolRunner};
    // `wc` stands in for ExifTool: present everywhere, and its output is known; `sleep`
    // for a tool that hangs on a damaged file.
    let rules = Rules::parse(
        r#"{"rules": [
            {"name": "wc", "purpose": "characterization", "puids": ["fmt/11"], "command": "wc", "args": ["-c", "{file}"], "max_output": 4},
            {"name": "absent", "purpose": "characterization", "puids": ["fmt/11"], "command": "no-such-tool-here", "args": [], "max_output": 10},
            {"name": "hangs", "purpose": "validation", "puids": ["fmt/11"], "command": "sleep", "args": ["30"], "max_output": 10, "timeout_seconds": 1}
        ]}"#,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let tools = vellum_host::ProcessTools::new().in_dir(scratch.path());
    let store = FsObjectStore::new(dir.path(), "w").unwrap();
    store.put("t/objects/a.png", &[7u8; 123456]).unwrap();
    let mut file = vellum_core::model::File {
        uuid: uuid::Uuid::nil(),
        transfer_id: uuid::Uuid::nil(),
        batch: 0,
        entry_index: 0,
        file_use: vellum_core::model::FileUse::Original,
        original_path: "objects/a.png".into(),
        current_path: "objects/a.png".into(),
        size: 123456,
        checksums: Default::default(),
        format: Some(vellum_core::model::FormatId {
            puid: "fmt/11".into(),
            name: "PNG".into(),
            version: None,
            tentative: false,
        }),
        modified: None,
        characteristics: Default::default(),
        source: None,
    };
    let chosen: Vec<_> = rules.rules_for(Purpose::Characterization, &file, &tools).collect();
    assert_eq!(chosen.len(), 1, "a rule whose command is not installed is left out");
    let output = tools.run(&chosen[0].call(), &store, "t/objects/a.png", "objects/a.png").unwrap();
    assert_eq!(
        output,
        ToolOutput::Cut { kept: "1234".into(), total: 13 },
        "wc's \"123456 a.png\", cut at max_output and said to be"
    );
    let mut wc = chosen[0].clone();
    wc.max_output = 100;
    let output = tools.run(&wc.call(), &store, "t/objects/a.png", "objects/a.png").unwrap();
    assert_eq!(output, ToolOutput::Output("123456 a.png\n".into()), "the tool is given the file under its own name");
    let hangs: Vec<_> = rules.rules_for(Purpose::Validation, &file, &tools).collect();
    let started = std::time::Instant::now();
    assert_eq!(tools.run(&hangs[0].call(), &store, "t/objects/a.png", "objects/a.png").unwrap(), ToolOutput::TimedOut);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "the hanging tool was stopped");
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0, "no temporary copy is left behind");
    file.format = None;
    assert_eq!(rules.rules_for(Purpose::Characterization, &file, &tools).count(), 0, "only for its formats");
}

/// What a test does to a bag after its manifests are made: payload, manifest, bag-info.
type Tamper = dyn Fn(&mut Vec<(String, Vec<u8>)>, &mut String, &mut String);

/// A package that is itself a BagIt bag, as bag tools write it; `tamper` edits the files
/// after the manifests are made.
fn bag_package(tamper: &Tamper) -> Package {
    let mut payload: Vec<(String, Vec<u8>)> = vec![
        ("data/metadata/metadata.csv".into(), b"filename,dc.identifier\nobjects/,PP/BAG/1\n".to_vec()),
        ("data/objects/letter.txt".into(), b"Dear archivist,\n".to_vec()),
        ("data/objects/photos/one.txt".into(), b"a photograph, described\n".to_vec()),
    ];
    let manifest_of = |files: &[(String, Vec<u8>)]| -> String {
        files.iter().map(|(n, b)| format!("{}  {n}\n", vellum_tests::sha256_hex(b))).collect()
    };
    let mut manifest = manifest_of(&payload);
    let bytes: usize = payload.iter().map(|(_, b)| b.len()).sum();
    let mut info = format!("Bagging-Date: 2026-11-26\nPayload-Oxum: {bytes}.{}\n", payload.len());
    tamper(&mut payload, &mut manifest, &mut info);
    let bagit = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n";
    let tagmanifest: String =
        [("bagit.txt", bagit), ("bag-info.txt", info.as_str()), ("manifest-sha256.txt", manifest.as_str())]
            .iter()
            .map(|(n, t)| format!("{}  {n}\n", vellum_tests::sha256_hex(t.as_bytes())))
            .collect();
    let mut p = Package::default();
    p.add("bagit.txt", bagit)
        .add("bag-info.txt", info)
        .add("manifest-sha256.txt", manifest)
        .add("tagmanifest-sha256.txt", tagmanifest);
    for (n, b) in payload {
        p.add(&n, b);
    }
    p
}

#[test]
#[ignore = "needs the project's Python with opf-fido, Pillow and bagit-python; scripts/test runs it"]
fn a_bagit_package_is_verified_as_a_bag_verifier_would() {
    let t = TestEnv::new(10);
    let transfer = ingest(&t, &bag_package(&|_, _, _| {}), "born-digital/bag.zip");
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let files = t.env.state.all_files(transfer.id).unwrap();
    let events = t.env.state.all_events(transfer.id).unwrap();
    for f in files.iter().filter(|f| f.original_path.starts_with("data/")) {
        let check = event_of(&events, f.uuid, "fixity check");
        assert_eq!(check.outcome, EventOutcome::Pass, "{}", f.original_path);
        assert!(check.detail.contains("manifest-sha256.txt"), "{check:?}");
    }
    let letter = files.iter().find(|f| f.original_path == "data/objects/letter.txt").unwrap();
    assert_eq!(letter.current_path, "objects/letter.txt", "the payload is the package");
    let dir = tempfile::tempdir().unwrap();
    let bag = vellum_tests::unpack_aip(&t.env.aips.root().join(transfer.aip_key.unwrap()), dir.path());
    assert!(
        bag.join("data/objects/submissionDocumentation/bag/manifest-sha256.txt").is_file(),
        "the bag's tag files are kept"
    );
    assert_eq!(std::fs::read(bag.join("data/objects/letter.txt")).unwrap(), b"Dear archivist,\n");
    // The payload moving out of the bag's data/ is where the bag keeps it, not a new name.
    assert!(
        !events.iter().any(|e| e.file_uuid == Some(letter.uuid) && e.event_type == "filename change"),
        "no filename change for data/objects/letter.txt"
    );
    let renames = std::fs::read_to_string(bag.join("data/logs/filenameChanges.log")).unwrap();
    assert!(!renames.contains("letter.txt"), "{renames}");

    // Manifests as `sha256sum -b` writes them (`*` marks binary mode) are the same bag, as
    // bagit-python reads it.
    let starred = bag_package(&|_, manifest, _| *manifest = manifest.replace("  data/", " *data/"));
    {
        let dir = tempfile::tempdir().unwrap();
        for e in &starred.entries {
            let path = dir.path().join(&e.name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, &e.bytes).unwrap();
        }
        vellum_tests::bagit_validate(dir.path()).expect("bagit-python accepts the starred bag");
    }
    let t = TestEnv::new(10);
    let transfer = ingest(&t, &starred, "born-digital/starred.zip");
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);

    // A payload file changed after bagging: its digest no longer matches.
    let t = TestEnv::new(10);
    let transfer = ingest(
        &t,
        &bag_package(&|payload, _, _| payload[1].1 = b"Dear archivisT,\n".to_vec()),
        "born-digital/changed.zip",
    );
    assert_eq!(transfer.status, TransferStatus::Failed);
    let reason = transfer.failure_reason.unwrap();
    assert!(reason.contains("data/objects/letter.txt") && reason.contains("manifest-sha256.txt"), "{reason}");

    // Refused at intake, from the index and tag files alone.
    let cases: Vec<(&str, Box<Tamper>, &str)> = vec![
        (
            "unlisted.zip",
            Box::new(|p, _, _| p.push(("data/objects/extra.txt".into(), b"x".to_vec()))),
            "are not in manifest-sha256.txt",
        ),
        (
            "missing.zip",
            Box::new(|p, _, _| {
                p.remove(2);
            }),
            "lists files that are not in the bag",
        ),
        ("oxum.zip", Box::new(|_, _, info| *info = info.replace("Payload-Oxum: ", "Payload-Oxum: 9")), "Payload-Oxum"),
    ];
    for (key, tamper, words) in cases {
        let t = TestEnv::new(10);
        let transfer = ingest(&t, &bag_package(tamper.as_ref()), &format!("born-digital/{key}"));
        assert_eq!(transfer.status, TransferStatus::Rejected, "{key}");
        let reason = transfer.failure_reason.unwrap();
        assert!(reason.contains(words), "{key}: {reason}");
        // A bag problem gets a bag's advice, not a plain package's.
        let logs = t.env.uploads.list(&format!("born-digital/{key}.failed.")).unwrap();
        let mut log = String::new();
        std::io::Read::read_to_string(&mut t.env.uploads.get(&logs[0].key).unwrap(), &mut log).unwrap();
        assert!(log.contains("bag tool"), "{key}: {log}");
        assert!(!log.contains("metadata.csv"), "{key}: advice about metadata.csv for a bag problem: {log}");
    }
    // A tag manifest that does not match its tag files.
    let mut p = bag_package(&|_, _, _| {});
    for e in &mut p.entries {
        if e.name == "bag-info.txt" {
            e.bytes.extend_from_slice(b"Contact-Name: changed after bagging\n");
        }
    }
    let t = TestEnv::new(10);
    let transfer = ingest(&t, &p, "born-digital/tags.zip");
    assert_eq!(transfer.status, TransferStatus::Rejected);
    assert!(transfer.failure_reason.unwrap().contains("does not match tagmanifest-sha256.txt"));
}

/// ExifTool as Archivematica users have it installed: one process for batch after batch
/// (counted by a wrapper that logs each start), its XML recorded as XML in the METS, naming
/// the file, and a PREMIS event naming ExifTool and its version.
#[test]
#[ignore = "needs ExifTool and the project's Python with Pillow (the corpus); scripts/test runs it"]
fn exiftool_runs_once_a_batch_and_its_xml_is_recorded_as_xml_in_the_mets() {
    let scratch = tempfile::tempdir().unwrap();
    let ((wrapper, log), dir) = (logging_wrapper("exiftool", scratch.path()), corpus());
    let t = with_only_rule("exiftool", &wrapper, 2);
    let mut p = Package::catalogued("PP/EXIF/1", 0);
    let read = |rel: &str| std::fs::read(dir.join(rel)).unwrap();
    for name in ["img/photo-0.png", "img/photo-0.jpg", "img/anim-0.gif", "img/plain-0.tif", "img/grey-1.jpg"] {
        p.add(&format!("objects/{}", name.replace("img/", "")), read(name));
    }
    let transfer = ingest(&t, &p, "born-digital/exif.zip");
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let starts = std::fs::read_to_string(&log).unwrap();
    let batch_runs = starts.lines().filter(|l| l.contains("-stay_open True")).count();
    assert_eq!(batch_runs, 1, "one ExifTool process for the five images' batches: {starts}");
    assert_eq!(starts.lines().count(), 2, "and one to ask its version: {starts}");
    let version = String::from_utf8(Command::new(&wrapper).arg("-ver").output().unwrap().stdout).unwrap();
    let files = t.env.state.all_files(transfer.id).unwrap();
    let events = t.env.state.all_events(transfer.id).unwrap();
    for name in ["photo-0.png", "photo-0.jpg", "anim-0.gif", "plain-0.tif", "grey-1.jpg"] {
        let file = files.iter().find(|f| f.original_path == format!("objects/{name}")).unwrap();
        let xml = file.characteristics.get("exiftool.xml").unwrap_or_else(|| panic!("{name}: no ExifTool output"));
        let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{name}: {e}\n{xml}"));
        assert_eq!(doc.root_element().tag_name().name(), "RDF", "{name}");
        assert!(xml.contains(&format!("rdf:about='{name}'")), "{name}: ExifTool names the file itself:\n{xml}");
        assert!(!xml.contains("vellum-tool"), "{name}: no temporary path in the record");
        assert!(xml.contains("ImageWidth"), "{name}: {xml}");
        let tool_event = events
            .iter()
            .find(|e| e.file_uuid == Some(file.uuid) && e.detail.starts_with("program=\"exiftool\""))
            .unwrap_or_else(|| panic!("{name}: no ExifTool event"));
        assert_eq!(tool_event.event_type, "metadata extraction");
        assert_eq!(tool_event.detail, format!("program=\"exiftool\"; version=\"{}\"", version.trim()));
        assert_eq!(tool_event.outcome, EventOutcome::Positive);
    }
    let aip = t.env.aips.root().join(transfer.aip_key.unwrap());
    let unpacked = tempfile::tempdir().unwrap();
    let bag = vellum_tests::unpack_aip(&aip, unpacked.path());
    let mets_path = std::fs::read_dir(bag.join("data"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("METS."))
        .unwrap();
    let mets = std::fs::read_to_string(mets_path).unwrap();
    assert_eq!(
        mets.matches("<premis:objectCharacteristicsExtension><rdf:RDF").count(),
        5,
        "ExifTool's RDF inside objectCharacteristicsExtension, once an image"
    );
    roxmltree::Document::parse(&mets).expect("the METS stays well-formed");
}

/// A pipeline whose only format policy rule is the built-in one named `rule`, run by
/// `command`, in batches of `batch_size`.
fn with_only_rule(rule: &str, command: &Path, batch_size: u32) -> TestEnv {
    let mut options = vellum_tests::options();
    let mut rules = vellum_core::config::fpr::Rules::builtin().rules;
    rules.retain(|r| r.name == rule);
    rules[0].command = command.to_string_lossy().into_owned();
    options.config.format_policy = Some(rules);
    options.settings.batch_size = Some(batch_size);
    TestEnv::with_options(options)
}

/// A wrapper around an installed tool that logs each start's arguments, or None (skipped,
/// or failing in CI) where the tool is not installed.
fn logging_wrapper(tool: &str, scratch: &Path) -> (PathBuf, PathBuf) {
    let real = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file()))
        .unwrap_or_else(|| panic!("this test needs {tool}: run it through scripts/test, which installs it"));
    let log = scratch.join(format!("{tool}.log"));
    let wrapper = scratch.join(tool);
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n", log.display(), real.display()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (wrapper, log)
}

/// MediaInfo as Archivematica users have it: one call for a batch's recordings (two where
/// two share a name), its XML split into one document a file, recorded as XML.
#[test]
#[ignore = "needs MediaInfo and the project's Python with Pillow (the corpus); scripts/test runs it"]
fn mediainfo_runs_once_a_batch_and_each_file_gets_its_own_document() {
    let scratch = tempfile::tempdir().unwrap();
    let ((wrapper, log), dir) = (logging_wrapper("mediainfo", scratch.path()), corpus());
    let t = with_only_rule("mediainfo", &wrapper, 20);
    let mut p = Package::catalogued("PP/MEDIA/1", 0);
    let read = |rel: &str| std::fs::read(dir.join(rel)).unwrap();
    p.add("objects/tone.wav", read("audio/tone-0-1-2-8000.wav"));
    p.add("objects/side b/tone.wav", read("audio/tone-0-2-2-44100.wav"));
    p.add("objects/voice.wav", read("audio/tone-0-1-1-22050.wav"));
    let transfer = ingest(&t, &p, "born-digital/media.zip");
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let calls: Vec<String> = std::fs::read_to_string(&log).unwrap().lines().map(str::to_string).collect();
    let batch_calls: Vec<&String> = calls.iter().filter(|l| l.starts_with("--Output=XML")).collect();
    assert_eq!(batch_calls.len(), 2, "one call, and one more for the second tone.wav: {calls:?}");
    assert_eq!(batch_calls.iter().map(|c| c.matches(".wav").count()).sum::<usize>(), 3);
    let files = t.env.state.all_files(transfer.id).unwrap();
    for (path, rate) in
        [("objects/tone.wav", "8000"), ("objects/side b/tone.wav", "44100"), ("objects/voice.wav", "22050")]
    {
        let file = files.iter().find(|f| f.original_path == path).unwrap();
        let xml = file.characteristics.get("mediainfo.xml").unwrap_or_else(|| panic!("{path}: no MediaInfo output"));
        let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{path}: {e}\n{xml}"));
        let media: Vec<_> = doc.descendants().filter(|n| n.tag_name().name() == "media").collect();
        assert_eq!(media.len(), 1, "{path}: one file's document");
        assert_eq!(media[0].attribute("ref"), path.rsplit('/').next(), "{path}");
        let sampling = doc.descendants().find(|n| n.tag_name().name() == "SamplingRate").and_then(|n| n.text());
        assert_eq!(sampling, Some(rate), "{path}: its own recording's answer");
    }
}

/// A `-stay_open` tool that hangs on one file is stopped after the rule's timeout, that file
/// gets no result, and a new process takes the next file: one damaged file never holds a
/// batch forever.
#[test]
fn a_stay_open_tool_that_hangs_on_a_file_is_restarted_for_the_next() {
    use vellum_core::ports::{ToolOutput, ToolRunner};
    let scratch = tempfile::tempdir().unwrap();
    let (tool, log) = fake_stay_open_tool(scratch.path());
    let dir = tempfile::tempdir().unwrap();
    let store = FsObjectStore::new(dir.path(), "w").unwrap();
    for name in ["a.png", "hang.png", "b.png"] {
        store.put(&format!("t/{name}"), b"bytes").unwrap();
    }
    let tools = vellum_host::ProcessTools::new().in_dir(scratch.path());
    let rule = fake_rule(&tool);
    let mut session = tools.session(rule.call());
    let started = std::time::Instant::now();
    let answers: Vec<ToolOutput> = ["a.png", "hang.png", "b.png"]
        .iter()
        .map(|name| session.run(&store, &format!("t/{name}"), &format!("objects/{name}")).unwrap())
        .collect();
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "the hanging file was given up on");
    assert_eq!(
        answers,
        vec![
            ToolOutput::Output("<file name='a.png'/>\n".into()),
            ToolOutput::TimedOut,
            ToolOutput::Output("<file name='b.png'/>\n".into()),
        ]
    );
    drop(session);
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2, "a new process after the stuck one");
}

/// Every file gets a validation statement: a verdict where Vellum validates its format,
/// else "not performed" naming the format nothing validates; the transfer counts each
/// kind, and the success log says them.
#[test]
fn every_file_gets_a_validation_statement_and_the_transfer_counts_them() {
    let t = TestEnv::with_options(vellum_tests::options_with_copies(false));
    let mut p = Package::catalogued("PP/STATEMENT/1", 0);
    p.add("objects/good.png", vellum_tests::tiny_png());
    let mut broken = vellum_tests::tiny_png();
    let last = broken.len() - 1;
    broken[last - 8] ^= 0xFF;
    p.add("objects/broken.png", broken);
    p.add("objects/notes.txt", "plain words\n");
    p.add("objects/mystery.qqq", vec![0x13u8, 0x37, 0x00, 0x42, 0x99]);
    let transfer = ingest(&t, &p, "born-digital/statement.zip");
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let files = t.env.state.all_files(transfer.id).unwrap();
    let events = t.env.state.all_events(transfer.id).unwrap();
    let statement = |path: &str| {
        let file = files.iter().find(|f| f.original_path == path).unwrap_or_else(|| panic!("{path}"));
        let found: Vec<_> =
            events.iter().filter(|e| e.file_uuid == Some(file.uuid) && e.event_type == "validation").collect();
        assert_eq!(found.len(), 1, "{path}: one statement: {found:#?}");
        found[0].clone()
    };
    assert_eq!(statement("objects/good.png").outcome, EventOutcome::Pass);
    assert_eq!(statement("objects/broken.png").outcome, EventOutcome::Fail);
    let text = statement("objects/notes.txt");
    assert_eq!(text.outcome, EventOutcome::NotPerformed);
    assert!(text.outcome_detail.contains("nothing validates Plain Text File (x-fmt/111)"), "{}", text.outcome_detail);
    assert!(text.detail.contains("validator=\"none\""), "{}", text.detail);
    let unknown = statement("objects/mystery.qqq");
    assert_eq!(unknown.outcome, EventOutcome::NotPerformed);
    assert!(unknown.outcome_detail.contains("a file of no identified format"), "{}", unknown.outcome_detail);
    let csv = statement("metadata/metadata.csv");
    assert_eq!(csv.outcome, EventOutcome::NotPerformed, "{csv:#?}");
    let counts = transfer.validation.expect("counted by the METS stage");
    assert_eq!(
        counts,
        vellum_core::model::ValidationCounts { passed: 1, failed: 1, not_performed: 3 },
        "the two PNGs, and the text, the unknown file and metadata.csv"
    );
    let success = t
        .env
        .uploads
        .list("born-digital/")
        .unwrap()
        .into_iter()
        .find(|m| m.key.contains(".success."))
        .expect("a success log");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut t.env.uploads.get(&success.key).unwrap(), &mut text).unwrap();
    assert!(text.contains("Validation: 1 file(s) passed, 1 failed, 3 not performed"), "{text}");
}

/// A Word document as small as Word opens: the content types, the package's relationship
/// to the document, and one paragraph.
fn minimal_docx() -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let parts = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#,
        ),
        (
            "word/document.xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Dear archivist</w:t></w:r></w:p></w:body></w:document>"#,
        ),
    ];
    for (name, text) in parts {
        zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Characterization as docs/mets.md says, row for row, on files the field's tools made:
/// MediaInfo's XML for every common audio and video container, ExifTool's for images, PDF
/// and office documents — with the shipped rules, as identified from the files' bytes.
#[test]
#[ignore = "needs FFmpeg, ImageMagick, Ghostscript, MediaInfo and ExifTool; scripts/test runs it"]
fn every_common_container_gets_mediainfo_and_images_pdf_and_office_files_get_exiftool() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let video = ["-f", "lavfi", "-i", "testsrc=duration=1:size=64x48:rate=5"];
    let mpeg_video = ["-f", "lavfi", "-i", "testsrc=duration=1:size=64x48:rate=25"];
    let mxf_video = ["-f", "lavfi", "-i", "testsrc=duration=1:size=720x576:rate=25"];
    let audio = ["-f", "lavfi", "-i", "sine=duration=1:sample_rate=8000"];
    let ffmpeg = |name: &str, inputs: &[&[&str]], codecs: &[&str]| {
        let mut args = vec!["-v", "error", "-y"];
        for input in inputs {
            args.extend_from_slice(input);
        }
        args.extend_from_slice(codecs);
        args.push(name);
        made_by(d, name, "ffmpeg", &args)
    };
    let recordings = [
        ("QuickTime", "clip.mov", ffmpeg("clip.mov", &[&video, &audio], &["-c:v", "mpeg4", "-c:a", "aac"])),
        ("MP4", "clip.mp4", ffmpeg("clip.mp4", &[&video, &audio], &["-c:v", "mpeg4", "-c:a", "aac"])),
        ("M4A", "tone.m4a", ffmpeg("tone.m4a", &[&audio], &["-c:a", "aac"])),
        ("AVI", "clip.avi", ffmpeg("clip.avi", &[&video, &audio], &["-c:v", "mpeg4", "-c:a", "pcm_s16le"])),
        ("Matroska", "clip.mkv", ffmpeg("clip.mkv", &[&video, &audio], &["-c:v", "ffv1", "-c:a", "flac"])),
        ("WebM", "clip.webm", ffmpeg("clip.webm", &[&video, &audio], &["-c:v", "libvpx", "-c:a", "libvorbis"])),
        ("Ogg", "tone.ogg", ffmpeg("tone.ogg", &[&audio], &["-c:a", "libvorbis"])),
        ("Opus", "tone.opus", ffmpeg("tone.opus", &[&audio], &["-c:a", "libopus", "-ar", "48000"])),
        ("AIFF", "tone.aiff", ffmpeg("tone.aiff", &[&audio], &["-c:a", "pcm_s16be"])),
        ("WAV", "tone.wav", ffmpeg("tone.wav", &[&audio], &["-c:a", "pcm_s16le"])),
        ("MP3", "tone.mp3", ffmpeg("tone.mp3", &[&audio], &["-c:a", "libmp3lame"])),
        ("FLAC", "tone.flac", ffmpeg("tone.flac", &[&audio], &["-c:a", "flac"])),
        (
            "MPEG",
            "clip.mpg",
            ffmpeg("clip.mpg", &[&mpeg_video, &audio], &["-c:v", "mpeg1video", "-c:a", "mp2", "-ar", "44100"]),
        ),
        (
            "MXF",
            "clip.mxf",
            ffmpeg("clip.mxf", &[&mxf_video, &audio], &["-c:v", "mpeg2video", "-c:a", "pcm_s16le", "-ar", "48000"]),
        ),
    ];
    let documents = [
        ("JPEG", "red.jpg", made_by(d, "red.jpg", "convert", &["-size", "16x16", "xc:red", "red.jpg"])),
        ("PNG", "blue.png", made_by(d, "blue.png", "convert", &["-size", "16x16", "xc:blue", "blue.png"])),
        ("TIFF", "green.tif", made_by(d, "green.tif", "convert", &["-size", "16x16", "xc:green", "green.tif"])),
        ("GIF", "grey.gif", made_by(d, "grey.gif", "convert", &["-size", "16x16", "xc:grey", "grey.gif"])),
        ("BMP", "white.bmp", made_by(d, "white.bmp", "convert", &["-size", "16x16", "xc:white", "white.bmp"])),
        (
            "PDF",
            "letter.pdf",
            made_by(
                d,
                "letter.pdf",
                "gs",
                &[
                    "-q",
                    "-sDEVICE=pdfwrite",
                    "-o",
                    "letter.pdf",
                    "-c",
                    "/Helvetica findfont 12 scalefont setfont 72 720 moveto (Dear archivist) show showpage",
                ],
            ),
        ),
        ("Word", "letter.docx", minimal_docx()),
    ];
    let t = TestEnv::with_options(vellum_tests::options_with_copies(false));
    let mut p = Package::catalogued("PP/CHARACTERIZED/1", 0);
    for (_, name, bytes) in recordings.iter().chain(&documents) {
        p.add(&format!("objects/{name}"), bytes.clone());
    }
    let transfer = ingest(&t, &p, "born-digital/characterized.zip");
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let files = t.env.state.all_files(transfer.id).unwrap();
    let expect = recordings
        .iter()
        .map(|(kind, name, _)| (kind, name, "mediainfo.xml"))
        .chain(documents.iter().map(|(kind, name, _)| (kind, name, "exiftool.xml")));
    let mut missing = Vec::new();
    for (kind, name, key) in expect {
        let path = format!("objects/{name}");
        let file = files.iter().find(|f| f.original_path == path).unwrap();
        let puid = file.format.as_ref().map_or("none".to_string(), |f| f.puid.clone());
        match file.characteristics.get(key) {
            Some(xml) => {
                roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{kind}: {key} is not XML ({e})"));
            }
            None => missing.push(format!("{kind} ({path}, {puid}): no {key}")),
        }
    }
    assert!(missing.is_empty(), "characterized as docs/mets.md says: {missing:#?}");
}

/// A characterization tool that stops answering is stopped at its rule's timeout once in a
/// transfer: every later file, in that batch and in every other, is recorded "not
/// performed" with the reason, and the tool is never started again.
#[test]
fn a_characterization_tool_that_hangs_is_stopped_once_for_the_whole_transfer() {
    let scratch = tempfile::tempdir().unwrap();
    let (tool, log) = fake_stay_open_tool(scratch.path());
    let mut options = vellum_tests::options();
    let mut rule = fake_rule(&tool);
    rule.puids = vec!["fmt/11".into(), "fmt/12".into(), "fmt/13".into()];
    rule.timeout_seconds = 2;
    options.config.format_policy = Some(vec![rule]);
    options.settings.batch_size = Some(2);
    let t = TestEnv::with_options(options);
    let mut package = Package::catalogued("PP/HUNG/1", 0);
    for i in 0..9 {
        package.add(&format!("objects/hang-{i}.png"), vellum_tests::tiny_png());
    }
    let event = t.upload(&package, "born-digital/hung.zip");
    t.drive(|_, _| false);
    let transfer = t.transfer_for(&event).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    assert!(transfer.batch_count >= 5, "the files are spread over batches: {}", transfer.batch_count);
    let tool_events: Vec<_> = t
        .env
        .state
        .all_events(transfer.id)
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "metadata extraction" && e.detail.starts_with("program=\"fake\""))
        .collect();
    assert_eq!(tool_events.len(), 9, "one event a file: {tool_events:#?}");
    let stopped: Vec<_> = tool_events.iter().filter(|e| e.outcome == EventOutcome::Fail).collect();
    assert_eq!(stopped.len(), 1, "{tool_events:#?}");
    assert!(stopped[0].outcome_detail.contains("was stopped after 2 seconds"), "{}", stopped[0].outcome_detail);
    for e in tool_events.iter().filter(|e| e.outcome != EventOutcome::Fail) {
        assert_eq!(e.outcome, EventOutcome::NotPerformed, "{e:#?}");
        assert!(e.outcome_detail.starts_with("not performed: "), "{}", e.outcome_detail);
        assert!(e.outcome_detail.contains("stopped responding (stopped after 2 seconds on objects/hang-"));
        assert!(e.outcome_detail.ends_with("not run again in this transfer"), "{}", e.outcome_detail);
    }
    let starts = std::fs::read_to_string(&log).unwrap();
    assert_eq!(starts.lines().count(), 1, "the tool was started once, and never after it hung: {starts}");
}

/// A tool that speaks ExifTool's `-stay_open` protocol (arguments a line each, `-execute`
/// ends a file's, `-stay_open False` ends it, the end of its input does not), answers
/// `<file name='NAME'/>`, hangs on a file whose name has "hang" in it, and logs its process
/// id at each start.
fn fake_stay_open_tool(dir: &Path) -> (PathBuf, PathBuf) {
    let log = dir.join("starts.log");
    let tool = dir.join("fake-exiftool");
    std::fs::write(
        &tool,
        format!(
            "#!/bin/sh\necho $$ >> '{}'\nlast=''\nwhile IFS= read -r line; do\n  case \"$line\" in\n    \
             -execute) case \"$last\" in *hang*) sleep 30;; esac; echo \"<file name='$last'/>\"; echo '{{ready}}';;\n    \
             -stay_open) read -r flag; [ \"$flag\" = False ] && exit 0;;\n    \
             True|-@|-) ;;\n    *) last=\"$line\";;\n  esac\ndone\n\
             # Like ExifTool, an input that ends is no reason to stop.\nwhile true; do sleep 1; done\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (tool, log)
}

fn fake_rule(tool: &Path) -> vellum_core::config::fpr::Rule {
    vellum_core::config::fpr::Rule {
        timeout_seconds: 1,
        stay_open: true,
        output: vellum_core::config::fpr::RuleOutput::Xml,
        ..vellum_tests::rule_running("fake", vellum_core::config::fpr::Purpose::Characterization, tool)
    }
}

/// ExifTool in `-stay_open` mode does not end when its input closes: if Vellum is killed
/// (SIGKILL, a Lambda timeout) the kernel must end it too. This test runs itself as the
/// parent, kills that parent, and looks for the tool.
#[test]
fn a_stay_open_tool_dies_with_a_killed_vellum() {
    const AS_PARENT: &str = "VELLUM_TEST_STAY_OPEN_PARENT";
    if let Ok(dir) = std::env::var(AS_PARENT) {
        let dir = PathBuf::from(dir);
        let (tool, _) = fake_stay_open_tool(&dir);
        let store = FsObjectStore::new(dir.join("store"), "w").unwrap();
        store.put("t/a.png", b"bytes").unwrap();
        let tools = vellum_host::ProcessTools::new().in_dir(&dir);
        let rule = fake_rule(&tool);
        let mut session = vellum_core::ports::ToolRunner::session(&tools, rule.call());
        session.run(&store, "t/a.png", "objects/a.png").unwrap();
        std::fs::write(dir.join("ready"), b"").unwrap();
        std::thread::sleep(std::time::Duration::from_secs(120));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut parent = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_stay_open_tool_dies_with_a_killed_vellum", "--nocapture"])
        .env(AS_PARENT, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !dir.path().join("ready").exists() {
        assert!(std::time::Instant::now() < deadline, "the parent never ran the tool");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid: u32 = std::fs::read_to_string(dir.path().join("starts.log")).unwrap().trim().parse().unwrap();
    let alive = || {
        Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ")
    };
    assert!(alive(), "the tool runs while its parent does");
    parent.kill().unwrap();
    parent.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while alive() {
        assert!(std::time::Instant::now() < deadline, "the tool (pid {pid}) outlived the killed parent");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
