//! Helpers for Vellum's end-to-end tests: packages built on the fly, an embedded pipeline in
//! a temporary folder, a step-by-step driver that can redeliver messages, and the outside
//! tools (bagit-python) that judge the AIP.

pub mod bad_packages;
pub mod faults;
pub mod oidc_provider;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use vellum_core::analysis::pronom::FormatIdentifier;

use vellum_core::model::messages::UploadEvent;
use vellum_core::model::Stage;
use vellum_core::model::{Transfer, TransferStatus};
use vellum_core::ports::{FileCatalogue, ObjectStore, Queue, TransferRegister};
use vellum_core::{Outcome, StageContext};
use vellum_local::watcher::upload_event;
use vellum_local::{Embedded, EmbeddedOptions};

/// One entry of a test package.
pub struct Entry {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Builds zip packages the way archivists' tools do.
#[derive(Default)]
pub struct Package {
    pub entries: Vec<Entry>,
}

impl Package {
    /// A valid catalogued package with `n` small text files and the identifier given.
    pub fn catalogued(identifier: &str, n: usize) -> Self {
        let mut p = Self::default();
        p.add("metadata/metadata.csv", format!("filename,dc.identifier,dc.title\nobjects/,{identifier},Test papers\n"));
        for i in 0..n {
            p.add(
                &format!("objects/folder-{}/file-{i:05}.txt", i % 7),
                format!("file {i} of {identifier}\n").repeat(i % 13 + 1),
            );
        }
        p
    }

    pub fn add(&mut self, name: &str, bytes: impl Into<Vec<u8>>) -> &mut Self {
        self.entries.push(Entry { name: name.to_string(), bytes: bytes.into() });
        self
    }

    pub fn write_zip(&self, path: &Path) {
        self.write_zip_with(path, zip::CompressionMethod::Deflated);
    }

    pub fn write_zip_with(&self, path: &Path, method: zip::CompressionMethod) {
        let file = std::fs::File::create(path).expect("create the zip");
        let mut zip = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        for e in &self.entries {
            zip.start_file(e.name.as_str(), options).expect("start a zip entry");
            zip.write_all(&e.bytes).expect("write a zip entry");
        }
        zip.finish().expect("finish the zip");
    }
}

impl Package {
    /// The zip as a writer that cannot seek writes it (a stream): sizes and CRCs in data
    /// descriptors after each entry's data, zeros in its local header.
    pub fn streamed_zip(&self) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new_stream(Vec::new());
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for e in &self.entries {
            zip.start_file(e.name.as_str(), options).expect("start a zip entry");
            zip.write_all(&e.bytes).expect("write a zip entry");
        }
        zip.finish().expect("finish the zip").into_inner()
    }
}

/// A valid package whose stored entry `objects/damaged.txt` has one byte changed after
/// zipping, so its CRC no longer matches: intake (which reads only the index) accepts it,
/// extraction finds the damage.
pub fn write_damaged_zip(path: &Path, identifier: &str) {
    let mut p = Package::catalogued(identifier, 2);
    let content = "0123456789-this-content-is-damaged-after-zipping-".repeat(20);
    p.add("objects/damaged.txt", content.clone());
    p.write_zip_with(path, zip::CompressionMethod::Stored);
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.windows(content.len()).position(|w| w == content.as_bytes()).expect("the stored content") + 100;
    bytes[at] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

/// An embedded pipeline in its own temporary folder.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub env: Embedded,
}

impl TestEnv {
    /// An embedded pipeline with the project's clamd and PRONOM signatures (from
    /// `VELLUM_CLAMD`, which scripts/setup exports, and the built-in signatures).
    pub fn new(batch_size: u32) -> Self {
        let mut options = options();
        options.settings.batch_size = Some(batch_size);
        Self::with_options(options)
    }

    /// The dashboard's router on this pipeline, as `vellum serve` builds it (`sign_in`) or
    /// as the Lambda behind API Gateway's JWT authorizer does.
    pub fn dashboard(&self, sign_in: bool) -> vellum_dashboard::Dashboard {
        vellum_dashboard::Dashboard {
            state: self.env.state.clone(),
            queue: self.env.queue.clone(),
            access: self.env.access.clone(),
            uploads: self.env.uploads.clone(),
            clock: self.env.pipeline.clock.clone(),
            config: self.env.pipeline.config.clone(),
            sign_in,
            aips: self.env.aips.clone(),
            links: None,
            dips: Some(self.env.dips.clone()),
            dip_links: None,
            // Tests read back at once what they changed underneath the dashboard.
            answers: vellum_dashboard::answer_cache::AnswerCache::new(std::time::Duration::ZERO),
            throttle: vellum_dashboard::throttle::Throttle::default(),
            oidc: vellum_dashboard::oidc::OidcSettings::from_env()
                .map(|s| std::sync::Arc::new(vellum_dashboard::oidc::Oidc::new(s))),
        }
    }

    /// Registers `name` as an operator and returns a new API key for them.
    pub fn api_key(&self, name: &str, email: Option<&str>) -> String {
        self.api_key_as(name, email, vellum_core::model::Role::Operator)
    }

    /// Registers `name` in `role` as the OIDC provider knows them (`ISSUER|SUBJECT`), with no key.
    pub fn register_identity(&self, name: &str, role: vellum_core::model::Role, identity: &str) {
        let clock = self.env.pipeline.clock.as_ref();
        vellum_core::operations::access::add_user(self.env.access.as_ref(), clock, name, None, role, Some(identity))
            .expect("add a user");
    }

    /// Registers `name` in `role` and returns a new API key for them.
    pub fn api_key_as(&self, name: &str, email: Option<&str>, role: vellum_core::model::Role) -> String {
        let clock = self.env.pipeline.clock.as_ref();
        vellum_core::operations::access::add_user(self.env.access.as_ref(), clock, name, email, role, None)
            .expect("add a user");
        vellum_core::operations::access::create_api_key(self.env.access.as_ref(), clock, name).expect("create a key").1
    }

    pub fn with_options(options: EmbeddedOptions) -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let env = Embedded::open(dir.path(), options).expect("open the embedded mode");
        Self { dir, env }
    }

    /// Puts a package into the uploads folder and queues its ObjectCreated event.
    pub fn upload(&self, package: &Package, key: &str) -> UploadEvent {
        let zip = self.dir.path().join("package.zip");
        package.write_zip(&zip);
        let bytes = std::fs::read(&zip).expect("read the zip");
        let meta = self.env.uploads.put(key, &bytes).expect("upload");
        let event = upload_event(self.env.uploads.bucket(), &meta);
        self.env.queue.send(Stage::Start.name(), &serde_json::to_string(&event).unwrap()).unwrap();
        event
    }

    /// Puts bytes into the uploads folder under `key` and queues their ObjectCreated event.
    pub fn upload_bytes(&self, bytes: &[u8], key: &str) -> UploadEvent {
        let meta = self.env.uploads.put(key, bytes).expect("upload");
        let event = upload_event(self.env.uploads.bucket(), &meta);
        self.env.queue.send(Stage::Start.name(), &serde_json::to_string(&event).unwrap()).unwrap();
        event
    }

    /// Uploads a file, runs the whole pipeline, and returns how its transfer ended.
    pub fn ingest_file(&self, path: &Path, key: &str) -> vellum_core::model::Transfer {
        let event = self.upload_bytes(&std::fs::read(path).expect("read the package"), key);
        self.drive(|_, _| false);
        self.transfer_for(&event).expect("the upload made a transfer")
    }

    /// Runs only the given stages' queues until they are empty.
    pub fn drive_stages(&self, stages: &[&str]) {
        let ctx = StageContext::with_budget(Duration::from_secs(600));
        loop {
            let mut any = false;
            for q in stages {
                for d in self.env.queue.receive(q, 10, Duration::from_secs(600)).unwrap() {
                    any = true;
                    let outcome = self.env.pipeline.handle_queue(q, &d.body, &ctx);
                    assert!(outcome.acknowledges(), "{q}: {outcome:?}");
                    self.env.queue.ack(q, &d.receipt).unwrap();
                }
            }
            if !any {
                return;
            }
        }
    }

    pub fn transfer_for(&self, event: &UploadEvent) -> Option<vellum_core::model::Transfer> {
        let id = self.env.state.transfer_for_event(&event.idempotency_key()).unwrap()?;
        self.env.state.transfer(id).unwrap()
    }

    /// Delivers every queued message, stage by stage, until all queues are empty. For each
    /// delivery `redeliver` says whether the same message is delivered a second time, right
    /// after the first (as SQS may).
    /// Returns the messages handled per queue.
    pub fn drive(&self, redeliver: impl FnMut(&str, &str) -> bool) -> Vec<(String, String, Outcome)> {
        self.drive_with_budget(Duration::from_secs(600), redeliver)
    }

    /// As `drive`, with each invocation given `budget` before it must checkpoint.
    pub fn drive_with_budget(
        &self,
        budget: Duration,
        redeliver: impl FnMut(&str, &str) -> bool,
    ) -> Vec<(String, String, Outcome)> {
        self.drive_with_budgets(|_| budget, redeliver)
    }

    /// As `drive`, with each stage's invocations given the budget `budget(queue)`.
    pub fn drive_with_budgets(
        &self,
        budget: impl Fn(&str) -> Duration,
        mut redeliver: impl FnMut(&str, &str) -> bool,
    ) -> Vec<(String, String, Outcome)> {
        let mut handled = Vec::new();
        loop {
            let mut any = false;
            for q in Stage::ALL.map(Stage::name) {
                for d in self.env.queue.receive(q, 10, Duration::from_secs(600)).unwrap() {
                    any = true;
                    let ctx = StageContext::with_budget(budget(q));
                    let outcome = self.env.pipeline.handle_queue(q, &d.body, &ctx);
                    assert!(outcome.acknowledges(), "{q} message {} was not handled: {outcome:?}", d.body);
                    self.env.queue.ack(q, &d.receipt).unwrap();
                    handled.push((q.to_string(), d.body.clone(), outcome));
                    if redeliver(q, &d.body) {
                        let again = self.env.pipeline.handle_queue(q, &d.body, &ctx);
                        assert!(again.acknowledges(), "{q} message {} redelivered: {again:?}", d.body);
                        handled.push((q.to_string(), d.body.clone(), again));
                    }
                }
            }
            if !any {
                return handled;
            }
        }
    }

    /// Every object in the AIP store.
    pub fn stored_aips(&self) -> Vec<String> {
        self.env.aips.list("").unwrap().into_iter().map(|m| m.key).collect()
    }
}

/// How many of the messages a drive handled were `stage`'s that continued in a new message.
pub fn continued(handled: &[(String, String, Outcome)], stage: Stage) -> usize {
    handled.iter().filter(|(q, _, o)| q == stage.name() && *o == Outcome::Continued).count()
}

/// Embedded options with the outside tools this machine has: clamd and the PRONOM
/// signatures. Where one is missing the stages record "not performed" — and in CI, or with
/// VELLUM_REQUIRE_TOOLS set, a missing tool fails the test instead.
pub fn options() -> EmbeddedOptions {
    EmbeddedOptions { scanner: scanner(), format_identifier: Some(identifier()), ..Default::default() }
}

/// clamd at `VELLUM_CLAMD`, or at the CLI's default address when that answers.
pub fn scanner() -> Option<Arc<dyn vellum_core::ports::VirusScanner>> {
    let addr = std::env::var("VELLUM_CLAMD").unwrap_or_else(|_| "127.0.0.1:3310".into());
    let clamd = vellum_clamd::Clamd::new(&addr);
    if clamd.ping() {
        return Some(Arc::new(clamd));
    }
    assert!(!tools_required(), "clamd does not answer at {addr}: run the tests through scripts/test");
    eprintln!("NOTE: no clamd at {addr}; files are recorded as not scanned (scripts/clamd start)");
    None
}

/// The PRONOM identifier Vellum is built with, compiled once per test process (~2,000
/// signatures).
pub fn identifier() -> Arc<FormatIdentifier> {
    static LOADED: OnceLock<Arc<FormatIdentifier>> = OnceLock::new();
    LOADED.get_or_init(|| Arc::new(FormatIdentifier::builtin().expect("the built-in signatures load"))).clone()
}

/// The project's Python, where the test command installed bagit-python, opf-fido, Pillow
/// and amclient. A test that calls this is `#[ignore = "needs …; scripts/test runs it"]`:
/// scripts/test installs them and runs it, and without them it fails, never passes.
pub fn project_python() -> PathBuf {
    if let Ok(p) = std::env::var("VELLUM_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.exists(),
        "this test needs the project's Python (.venv): run it through scripts/test, which installs it"
    );
    venv
}

/// Whether a missing clamd fails the run (CI) rather than leaving files recorded as not
/// scanned, said aloud.
pub fn tools_required() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") || std::env::var("VELLUM_REQUIRE_TOOLS").is_ok()
}

/// Runs bagit-python's validator on an unpacked bag (it needs the project's Python: the
/// calling test is ignored for a bare `cargo test`).
pub fn bagit_validate(bag: &Path) -> Result<(), String> {
    let out =
        Command::new(project_python()).args(["-m", "bagit", "--validate"]).arg(bag).output().expect("run bagit.py");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

/// Unpacks a stored `.tar.gz` AIP into `dest`; returns the bag folder.
/// What `scripts/validate-mets.py` says of one METS document: its XSD errors
/// (`xsd_errors`) and the schematron's failures, as JSON.
pub fn validate_mets(mets: &Path) -> serde_json::Value {
    let schemas = std::env::var("VELLUM_SCHEMAS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/schemas"));
    let out = Command::new(project_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/validate-mets.py"))
        .arg(&schemas)
        .arg(mets)
        .output()
        .expect("run validate-mets.py");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

pub fn unpack_aip(aip: &Path, dest: &Path) -> PathBuf {
    let file = std::fs::File::open(aip).expect("open the AIP");
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(file));
    archive.unpack(dest).expect("unpack the AIP");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dest).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(dirs.len(), 1, "the AIP holds one bag folder: {dirs:?}");
    dirs.remove(0)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// One entry of a hand-made zip, for the packages no well-behaved zip writer makes:
/// encrypted flags, links, CP437 names, sizes that lie, duplicate names.
pub struct RawEntry {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
    /// Deflate the data (method 8) instead of storing it (method 0).
    pub deflate: bool,
    /// General-purpose flags: bit 0 encrypted, bit 11 UTF-8 names.
    pub flags: u16,
    /// Unix mode in the upper half of the external attributes (0 for none).
    pub unix_mode: u32,
    /// The uncompressed size to declare, if not the true one.
    pub declared_size: Option<u32>,
    /// The compression method to declare, if not stored or deflated (the data is then
    /// written as it is).
    pub method: Option<u16>,
}

impl RawEntry {
    pub fn file(name: &str, data: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.as_bytes().to_vec(),
            data: data.into(),
            deflate: false,
            flags: 1 << 11,
            unix_mode: 0o100644,
            declared_size: None,
            method: None,
        }
    }
}

/// Writes a zip byte by byte (no zip64), exactly as the entries say.
pub fn write_raw_zip(path: &Path, entries: &[RawEntry]) {
    let mut out: Vec<u8> = Vec::new();
    let mut central: Vec<u8> = Vec::new();
    for e in entries {
        let crc = {
            let mut h = flate2::Crc::new();
            h.update(&e.data);
            h.sum()
        };
        let body = if e.deflate {
            let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&e.data).unwrap();
            enc.finish().unwrap()
        } else {
            e.data.clone()
        };
        let method: u16 = e.method.unwrap_or(if e.deflate { 8 } else { 0 });
        let size = e.declared_size.unwrap_or(e.data.len() as u32);
        let offset = out.len() as u32;
        let mut local = Vec::new();
        local.extend_from_slice(&0x04034b50u32.to_le_bytes());
        local.extend_from_slice(&20u16.to_le_bytes());
        local.extend_from_slice(&e.flags.to_le_bytes());
        local.extend_from_slice(&method.to_le_bytes());
        local.extend_from_slice(&0u16.to_le_bytes()); // time
        local.extend_from_slice(&0x5821u16.to_le_bytes()); // date: 2024-01-01
        local.extend_from_slice(&crc.to_le_bytes());
        local.extend_from_slice(&(body.len() as u32).to_le_bytes());
        local.extend_from_slice(&size.to_le_bytes());
        local.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        local.extend_from_slice(&0u16.to_le_bytes());
        local.extend_from_slice(&e.name);
        out.extend_from_slice(&local);
        out.extend_from_slice(&body);
        central.extend_from_slice(&0x02014b50u32.to_le_bytes());
        central.extend_from_slice(&(0x0300u16 | 20).to_le_bytes()); // made by Unix
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&e.flags.to_le_bytes());
        central.extend_from_slice(&method.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0x5821u16.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&(body.len() as u32).to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0u8; 4]); // extra, comment lengths
        central.extend_from_slice(&[0u8; 4]); // disk, internal attributes
        central.extend_from_slice(&(e.unix_mode << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(&e.name);
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x06054b50u32.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    std::fs::write(path, out).unwrap();
}

/// A valid package's entries, for raw zips to add to.
pub fn raw_package(identifier: &str) -> Vec<RawEntry> {
    vec![
        RawEntry::file("metadata/metadata.csv", format!("filename,dc.identifier\nobjects/,{identifier}\n")),
        RawEntry::file("objects/letter.txt", "Dear archivist,\n"),
    ]
}

/// Every file has exactly one event of each kind the per-file stages record, and the
/// transfer one AIP fixity check: nothing lost, nothing doubled.
pub fn assert_every_file_has_its_events(
    events: &[vellum_core::model::PremisEvent],
    files: &[vellum_core::model::File],
) {
    use std::collections::BTreeMap;
    let mut per: BTreeMap<(Option<uuid::Uuid>, &str), usize> = BTreeMap::new();
    for e in events {
        *per.entry((e.file_uuid, e.event_type.as_str())).or_default() += 1;
    }
    let doubled: Vec<_> = per.iter().filter(|(_, &n)| n > 1).collect();
    assert!(doubled.is_empty(), "events recorded twice: {doubled:?}");
    for f in files {
        for kind in ["message digest calculation", "virus check", "format identification", "validation"] {
            assert!(per.contains_key(&(Some(f.uuid), kind)), "{} has no {kind} event", f.original_path);
        }
        assert!(
            per.contains_key(&(Some(f.uuid), "ingestion")) || per.contains_key(&(Some(f.uuid), "registration")),
            "{} has no ingestion event",
            f.original_path
        );
    }
    assert_eq!(per.get(&(None, "fixity check")), Some(&1), "one AIP fixity check");
}

/// Every file below a folder (Vellum's own `.vellum` folder left out), sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().is_some_and(|n| n == ".vellum") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// One package through the embedded pipeline, with the assertions intake tests make.
pub struct Case {
    pub t: TestEnv,
    pub path: PathBuf,
}

impl Default for Case {
    fn default() -> Self {
        Self::new()
    }
}

impl Case {
    /// A case in an embedded pipeline built with these options (a profile changed, say).
    pub fn with_options(options: EmbeddedOptions) -> Self {
        let t = TestEnv::with_options(options);
        let path = t.dir.path().join("package.bin");
        Self { t, path }
    }

    pub fn new() -> Self {
        let t = TestEnv::new(50);
        let path = t.dir.path().join("package.bin");
        Self { t, path }
    }

    pub fn zip(package: &Package) -> Self {
        let c = Self::new();
        package.write_zip(&c.path);
        c
    }

    pub fn raw(entries: &[RawEntry]) -> Self {
        let c = Self::new();
        write_raw_zip(&c.path, entries);
        c
    }

    /// An upload of exactly these bytes.
    pub fn bytes(bytes: &[u8]) -> Self {
        let c = Self::new();
        std::fs::write(&c.path, bytes).expect("write the upload");
        c
    }

    pub fn ingest(&self, key: &str) -> Transfer {
        self.t.ingest_file(&self.path, key)
    }

    /// The text of the one log of this outcome beside the upload.
    pub fn log(&self, key: &str, outcome: &str) -> String {
        let logs: Vec<String> = self
            .t
            .env
            .uploads
            .list(&format!("{key}.{outcome}."))
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .filter(|k| k.ends_with(".log"))
            .collect();
        assert_eq!(logs.len(), 1, "one {outcome} log beside {key}: {logs:?}");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut self.t.env.uploads.get(&logs[0]).unwrap(), &mut text).unwrap();
        text
    }

    /// Asserts a refusal at intake: REJECTED, the words in the reason and the failed log,
    /// nothing extracted or stored, the upload untouched.
    pub fn refused(&self, key: &str, words: &[&str]) -> String {
        let before = std::fs::read(&self.path).unwrap();
        let transfer = self.ingest(key);
        assert_eq!(transfer.status, TransferStatus::Rejected, "{key}: {:?}", transfer.failure_reason);
        let reason = transfer.failure_reason.clone().unwrap();
        let log = self.log(key, "failed");
        for w in words {
            assert!(reason.contains(w), "{key}: reason lacks {w:?}: {reason}");
            assert!(log.contains(w), "{key}: log lacks {w:?}: {log}");
        }
        assert!(log.contains("How to fix"), "{log}");
        assert!(self.t.env.state.all_files(transfer.id).unwrap().is_empty(), "nothing extracted");
        assert!(self.t.stored_aips().is_empty());
        assert_eq!(std::fs::read(self.t.dir.path().join("uploads").join(key)).unwrap(), before, "upload untouched");
        log
    }

    pub fn failed(&self, key: &str, words: &[&str]) -> Transfer {
        let transfer = self.ingest(key);
        assert_eq!(transfer.status, TransferStatus::Failed, "{key}: {:?}", transfer.failure_reason);
        let reason = transfer.failure_reason.clone().unwrap();
        let log = self.log(key, "failed");
        for w in words {
            assert!(reason.contains(w), "{key}: reason lacks {w:?}: {reason}");
            assert!(log.contains(w), "{key}: log lacks {w:?}: {log}");
        }
        assert!(self.t.stored_aips().is_empty());
        transfer
    }

    pub fn complete(&self, key: &str) -> Transfer {
        let transfer = self.ingest(key);
        assert_eq!(transfer.status, TransferStatus::Complete, "{key}: {:?}", transfer.failure_reason);
        transfer
    }

    /// The stored AIP, unpacked; returns the bag folder.
    pub fn bag(&self, transfer: &Transfer) -> PathBuf {
        let dest = self.t.dir.path().join("unpacked");
        std::fs::create_dir_all(&dest).unwrap();
        let bag = unpack_aip(&self.t.env.aips.root().join(transfer.aip_key.as_ref().unwrap()), &dest);
        bagit_validate(&bag).expect("bagit-python accepts the AIP");
        bag
    }
}

pub fn with(mut entries: Vec<RawEntry>, more: RawEntry) -> Vec<RawEntry> {
    entries.push(more);
    entries
}

/// A tar (gzipped or not) written header by header, so hostile names reach it as they are.
pub fn tar_gz(entries: &[(&str, &[u8], tar::EntryType)], gzip: bool) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data, kind) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(if *kind == tar::EntryType::Regular { data.len() as u64 } else { 0 });
        if *kind == tar::EntryType::Symlink {
            h.set_link_name("../../etc/passwd").unwrap();
        }
        // Written raw so that hostile names reach the archive as they are.
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        let body: &[u8] = if *kind == tar::EntryType::Regular { data } else { &[] };
        builder.append(&h, body).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    if !gzip {
        return tar;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// A Word 97 document whose FIB flags (bytes 10 and 11 of WordDocument) are as given.
pub fn word97(flags: [u8; 2]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.doc");
    {
        let mut cf = cfb::create(&path).unwrap();
        let mut compobj = vec![1u8, 0, 0xFE, 0xFF, 3, 0x0A, 0, 0];
        compobj.extend_from_slice(&[0xFF; 4]);
        compobj.extend_from_slice(&[0u8; 16]);
        compobj.extend_from_slice(&[0x20, 0, 0, 0]);
        compobj.extend_from_slice(b"Microsoft Office Word 97 Document\0");
        compobj.extend_from_slice(&[0x0A, 0, 0, 0]);
        compobj.extend_from_slice(b"MSWordDoc\0");
        compobj.extend_from_slice(&[0x10, 0, 0, 0]);
        compobj.extend_from_slice(b"Word.Document.8\0");
        std::io::Write::write_all(&mut cf.create_stream("/\u{1}CompObj").unwrap(), &compobj).unwrap();
        let mut fib = vec![0xEC, 0xA5, 0xC1, 0x00, 0, 0, 0, 0, 0, 0];
        fib.extend_from_slice(&flags);
        fib.extend_from_slice(&[0u8; 20]);
        std::io::Write::write_all(&mut cf.create_stream("/WordDocument").unwrap(), &fib).unwrap();
        std::io::Write::write_all(&mut cf.create_stream("/1Table").unwrap(), &[0u8; 16]).unwrap();
        cf.flush().unwrap();
    }
    std::fs::read(path).unwrap()
}

/// A 1×1 PNG, built byte by byte (signature, IHDR, IDAT, IEND with their CRCs).
pub fn tiny_png() -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(&out[start..]);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut z, &[0, 255, 0, 0]).unwrap();
    chunk(&mut png, b"IDAT", &z.finish().unwrap());
    chunk(&mut png, b"IEND", b"");
    png
}

/// Runs `program` in `dir` to make `name` there (a file the field's tools made), and gives
/// its bytes.
pub fn made_by(dir: &Path, name: &str, program: &str, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} makes {name} ({e}): scripts/test installs it"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(dir.join(name)).unwrap()
}

/// The test options with every profile's copies (preservation, access, thumbnails, OCR, the
/// DIP) switched `on` or off.
pub fn options_with_copies(on: bool) -> EmbeddedOptions {
    let mut options = options();
    for profile in &mut options.config.profiles {
        profile.normalize_for_preservation = on;
        profile.normalize_for_access = on;
        profile.thumbnails = on;
        profile.store_dip = on;
        profile.transcribe = on;
    }
    options
}

/// A format policy rule that runs `program` on `{file}` for `purpose`: output kept to 1,000
/// bytes, a 2 s timeout, no version command; a test sets what it needs beside.
pub fn rule_running(
    name: &str,
    purpose: vellum_core::config::fpr::Purpose,
    program: &Path,
) -> vellum_core::config::fpr::Rule {
    vellum_core::config::fpr::Rule {
        name: name.into(),
        purpose,
        puids: vec![],
        command: program.to_string_lossy().into_owned(),
        args: vec!["{file}".into()],
        max_output: 1000,
        timeout_seconds: 2,
        stay_open: false,
        per_batch: false,
        version_args: vec![],
        output: Default::default(),
        output_extension: None,
        output_format: None,
        policy: None,
        before: Vec::new(),
        long_above_bytes: None,
    }
}
