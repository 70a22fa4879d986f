//! The AIP and its METS, judged by tools Vellum did not write: the METS, PREMIS and XLink
//! schemas and Archivematica's METS schematron (scripts/validate-mets.py, lxml), and
//! bagit-python; plus storage spaces, versions, verification and notices.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use vellum_contract::faults::{Faulty, Scripted};
use vellum_core::model::Stage;

use vellum_core::model::{Transfer, TransferStatus};
use vellum_core::ports::{EventLog, FileCatalogue, ObjectMeta, ObjectWriter, PortResult};
use vellum_tests::{bagit_validate, project_python, unpack_aip, Package, TestEnv};

/// PREMIS eventTypes of today's vocabulary that Archivematica's schematron (older) does not
/// know. Each is listed in docs/mets.md; any other schematron failure fails the test.
const NEWER_EVENT_TYPES: &[&str] = &["filename change", "registration", "metadata extraction", "transcription"];

fn ingest(t: &TestEnv, p: &Package, key: &str) -> Transfer {
    let event = t.upload(p, key);
    t.drive(|_, _| false);
    let transfer = t.transfer_for(&event).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{key}: {:?}", transfer.failure_reason);
    transfer
}

fn unpacked(t: &TestEnv, transfer: &Transfer) -> PathBuf {
    let dest = t.dir.path().join(format!("unpacked-{}", transfer.id));
    std::fs::create_dir_all(&dest).unwrap();
    unpack_aip(&t.env.aips.root().join(transfer.aip_key.as_ref().unwrap()), &dest)
}

fn aip_mets(bag: &Path, transfer: &Transfer) -> PathBuf {
    bag.join(format!("data/METS.{}.xml", transfer.aip_uuid))
}

fn transfer_mets(bag: &Path, transfer: &Transfer) -> PathBuf {
    bag.join("data/objects").join(vellum_core::record::aip::transfer_mets_path(transfer))
}

/// A package that exercises everything the METS carries: renamed files, rights of each
/// basis, Dublin Core beyond the fifteen elements.
fn rich_package(identifier: &str) -> Package {
    let mut p = Package::default();
    p.add(
        "metadata/metadata.csv",
        format!(
            "filename,dc.identifier,dc.title,dc.creator,dc.date,dc.description,dc.extent,dc.isPartOf\n\
             objects/,{identifier},\"Letters & papers <1901>\",A. Writer,1901,\"Quotes \"\"and\"\" ampersands &\",3 files,PP/ABC\n\
             objects/letter one.txt,,The first letter,,1901-03-04,,,\n"
        ),
    );
    p.add("objects/letter one.txt", "Dear sir,\n");
    p.add("objects/photo.png", include_bytes!("../../examples/PP-EXAMPLE.zip").to_vec());
    p.add("objects/Été/notes.txt", "notes\n");
    p.add(
        "metadata/rights.csv",
        "file,basis,status,jurisdiction,determination_date,note,terms,citation,start_date,end_date,grant_act,grant_restriction,grant_start_date,grant_end_date,grant_note,doc_id_type,doc_id_value,doc_id_role\n\
         objects/letter one.txt,copyright,copyrighted,GB,2020-01-01,In copyright,,,2020-01-01,,disseminate,disallow,2020-01-01,2090-01-01,Closed until 2090,agreement,A-17,deposit\n\
         objects/photo.png,license,,,,CC-BY,Reuse with attribution,,,,,,,,,,,\n\
         objects/Été/notes.txt,statute,,GB,,,,Data Protection Act 2018,,,use,conditional,,,,,,\n\
         objects/Été/notes.txt,donor,,,,Given by the family,,,,,,,,,,,,\n\
         objects,policy,,,,Open to all,,,1948-12-31,OPEN,,,,,,,,\n",
    );
    p
}

fn validate(python: &Path, files: &[PathBuf]) -> Vec<serde_json::Value> {
    let schemas = std::env::var("VELLUM_SCHEMAS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/schemas"));
    let out = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/validate-mets.py"))
        .arg(&schemas)
        .args(files)
        .output()
        .expect("run validate-mets.py");
    assert!(out.status.success(), "validate-mets.py: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
#[ignore = "needs the project's Python with bagit-python and the METS/PREMIS schemas; scripts/test runs it"]
fn every_mets_is_valid_against_the_schemas_and_passes_the_schematron_but_for_newer_vocabulary() {
    let python = project_python();
    let t = TestEnv::new(4);
    let mut mets = Vec::new();
    let catalogued = ingest(&t, &rich_package("PP/RICH/1"), "born-digital/rich package.zip");
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/PP-EXAMPLE.zip")).unwrap();
    let event = t.upload_bytes(&bytes, "born-digital/PP-EXAMPLE.zip");
    t.drive(|_, _| false);
    let example = t.transfer_for(&event).unwrap();
    let mut acc = Package::default();
    acc.add(
        "metadata/metadata.csv",
        "filename,collection_reference,accession_number,dc.title\nobjects/,SA/TIH,2314_2,Accession\n",
    )
    .add("objects/a.txt", "a");
    let accession = ingest(&t, &acc, "born-digital-accessions/acc.zip");
    for transfer in [&catalogued, &example, &accession] {
        let bag = unpacked(&t, transfer);
        mets.push(aip_mets(&bag, transfer));
        mets.push(transfer_mets(&bag, transfer));
    }
    let reports = validate(&python, &mets);
    assert_eq!(reports.len(), mets.len());
    let mut exceptions = BTreeSet::new();
    for r in &reports {
        let errors = r["xsd_errors"].as_array().unwrap();
        assert!(errors.is_empty(), "{} is not valid METS/PREMIS: {errors:#?}", r["file"]);
        for f in r["schematron_failures"].as_array().unwrap() {
            let text = f["text"].as_str().unwrap();
            let newer = NEWER_EVENT_TYPES
                .iter()
                .find(|e| text.starts_with(&format!("A PREMIS event MUST be of a recognized eventType. ({e} is not")));
            match newer {
                Some(e) => {
                    exceptions.insert(*e);
                }
                None => panic!("{} fails Archivematica's schematron: {text}", r["file"]),
            }
        }
    }
    println!("schematron exceptions (newer PREMIS eventTypes): {exceptions:?}");
    assert!(exceptions.contains("filename change"), "the rich package renames files");
}

/// Text of the first descendant element with this local name.
fn text_of<'a>(n: roxmltree::Node<'a, 'a>, name: &str) -> Option<&'a str> {
    n.descendants().find(|d| d.is_element() && d.tag_name().name() == name).and_then(|d| d.text())
}

#[test]
fn the_mets_read_back_agrees_with_the_state_store_file_by_file() {
    let t = TestEnv::new(3);
    let transfer = ingest(&t, &rich_package("PP/BACK/1"), "born-digital/back.zip");
    let bag = unpacked(&t, &transfer);
    let text = std::fs::read_to_string(aip_mets(&bag, &transfer)).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let objects: Vec<roxmltree::Node> =
        doc.descendants().filter(|n| n.has_tag_name(("http://www.loc.gov/premis/v3", "object"))).collect();
    let files = t.env.state.all_files(transfer.id).unwrap();
    assert_eq!(objects.len(), files.len() + 1, "one PREMIS object per file, and the transfer METS");
    for f in &files {
        let object = objects
            .iter()
            .find(|o| text_of(**o, "objectIdentifierValue") == Some(&f.uuid.to_string()))
            .unwrap_or_else(|| panic!("no PREMIS object for {}", f.original_path));
        assert_eq!(text_of(*object, "messageDigest"), f.sha256(), "{}", f.original_path);
        assert_eq!(text_of(*object, "size"), Some(f.size.to_string().as_str()));
        assert_eq!(text_of(*object, "originalName"), Some(format!("%transferDirectory%{}", f.original_path).as_str()));
        let puid = f.format.as_ref().map(|x| x.puid.as_str());
        assert!(puid.is_some(), "{} was identified", f.original_path);
        assert_eq!(text_of(*object, "formatRegistryKey"), puid, "{}", f.original_path);
    }
    // Dublin Core, every dc.* column, escaped.
    assert!(text.contains("<dc:title>Letters &amp; papers &lt;1901&gt;</dc:title>"), "dc:title");
    assert!(
        text.contains("<dcterms:extent>3 files</dcterms:extent>")
            && text.contains("<dcterms:isPartOf>PP/ABC</dcterms:isPartOf>")
    );
    // A file described in metadata.csv has its own dmdSec, which its div names.
    let letter_div = doc
        .descendants()
        .find(|n| n.has_tag_name("div") && n.attribute("LABEL") == Some("letter_one.txt"))
        .expect("the letter's div");
    let dmdid = letter_div.attribute("DMDID").expect("the letter's div names its dmdSec");
    let dmd = doc.descendants().find(|n| n.has_tag_name("dmdSec") && n.attribute("ID") == Some(dmdid)).unwrap();
    assert_eq!(text_of(dmd, "title"), Some("The first letter"));
    assert_eq!(text_of(dmd, "date"), Some("1901-03-04"));
    // Rights: one statement per row, on the file it names.
    let statements: Vec<_> =
        doc.descendants().filter(|n| n.has_tag_name(("http://www.loc.gov/premis/v3", "rightsStatement"))).collect();
    assert_eq!(statements.len(), 4 + 3, "a statement a row, and the whole transfer's on each of the 3 files");
    let policies: Vec<_> = statements.iter().filter(|s| text_of(**s, "otherRightsBasis") == Some("Policy")).collect();
    assert_eq!(policies.len(), 3, "the row for objects on every file");
    assert!(policies.iter().all(|s| text_of(**s, "endDate") == Some("OPEN")), "an open end as Archivematica writes it");
    let letter = files.iter().find(|f| f.original_path == "objects/letter one.txt").unwrap();
    let copyright = statements.iter().find(|s| text_of(**s, "rightsBasis") == Some("Copyright")).unwrap();
    assert_eq!(text_of(*copyright, "linkingObjectIdentifierValue"), Some(letter.uuid.to_string().as_str()));
    assert_eq!(text_of(*copyright, "copyrightNote"), Some("In copyright"));
    assert_eq!(text_of(*copyright, "restriction"), Some("Disallow"));
    assert_eq!(text_of(*copyright, "rightsGrantedNote"), Some("Closed until 2090"));
    assert!(statements.iter().any(|s| text_of(*s, "otherRightsBasis") == Some("Donor")));
    assert!(statements.iter().any(|s| text_of(*s, "statuteCitation") == Some("Data Protection Act 2018")));
    // The file groups Archivematica uses.
    for group in ["original", "submissionDocumentation", "metadata"] {
        assert!(text.contains(&format!("<mets:fileGrp USE=\"{group}\">")), "{group}");
    }
    assert!(text.contains("LABEL=\"Archivematica default\""));
}

#[test]
fn an_accession_carries_its_accession_id() {
    let t = TestEnv::new(3);
    let mut acc = Package::default();
    acc.add("metadata/metadata.csv", "filename,collection_reference,accession_number\nobjects/,SA/TIH,2314_2\n")
        .add("objects/a.txt", "a");
    let transfer = ingest(&t, &acc, "born-digital-accessions/acc.zip");
    let bag = unpacked(&t, &transfer);
    let mets = std::fs::read_to_string(aip_mets(&bag, &transfer)).unwrap();
    assert!(mets.contains("<mets:altRecordID TYPE=\"Accession ID\">2314_2</mets:altRecordID>"));
    let info = std::fs::read_to_string(bag.join("bag-info.txt")).unwrap();
    assert!(info.contains("External-Identifier: SA/TIH/2314_2"), "{info}");
    assert!(transfer.aip_key.unwrap().starts_with("born-digital-accessions/SA/TIH/2314_2/v1/"));
}

#[test]
#[ignore = "needs the project's Python with bagit-python and the METS/PREMIS schemas; scripts/test runs it"]
fn the_bag_has_a_manifest_per_algorithm_its_logs_and_the_same_payload_for_the_same_package() {
    let mut options = vellum_tests::options();
    for profile in &mut options.config.profiles {
        profile.checksum_algorithms = vec!["md5".into(), "sha256".into(), "sha512".into()];
    }
    let t = TestEnv::with_options(options);
    let package = Package::catalogued("PP/BAG/1", 6);
    let first = ingest(&t, &package, "born-digital/bag.zip");
    let second = ingest(&t, &package, "born-digital/bag.zip");
    let (a, b) = (unpacked(&t, &first), unpacked(&t, &second));
    bagit_validate(&a).expect("bagit-python accepts a bag with md5, sha256 and sha512 manifests");
    for name in ["manifest-md5.txt", "manifest-sha256.txt", "manifest-sha512.txt", "tagmanifest-sha256.txt"] {
        assert!(a.join(name).is_file(), "{name}");
    }
    for log in ["filenameChanges.log", "fileFormatIdentification.log", "virusScan.log"] {
        assert!(a.join("data/logs").join(log).is_file(), "{log}");
    }
    // Every file of the transfer has its line in the identification and virus scan logs.
    let logged = |log: &str| std::fs::read_to_string(a.join("data/logs").join(log)).unwrap();
    let (identification, scan) = (logged("fileFormatIdentification.log"), logged("virusScan.log"));
    let files = t.env.state.all_files(first.id).unwrap();
    assert!(files.len() > 2);
    for f in &files {
        let line = format!("{}\t", f.current_path);
        assert_eq!(identification.lines().filter(|l| l.starts_with(&line)).count(), 1, "{line}");
        assert_eq!(scan.lines().filter(|l| l.starts_with(&line)).count(), 1, "{line}");
    }
    assert_eq!(identification.lines().count(), files.len() + 1, "a header and a line a file");
    let originals = |bag: &Path| -> Vec<String> {
        std::fs::read_to_string(bag.join("manifest-sha256.txt"))
            .unwrap()
            .lines()
            .filter(|l| l.contains("  data/objects/folder-"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(originals(&a), originals(&b), "the same package gives the same payload and manifest lines");
    assert_eq!((first.aip_version, second.aip_version), (Some(1), Some(2)), "a second ingest is a new version");
}

#[test]
fn a_profile_at_gzip_level_zero_stores_a_plain_tar() {
    let mut options = vellum_tests::options();
    for profile in &mut options.config.profiles {
        profile.gzip_level = 0;
    }
    let t = TestEnv::with_options(options);
    let transfer = ingest(&t, &Package::catalogued("PP/TAR/1", 2), "born-digital/plain.zip");
    let key = transfer.aip_key.unwrap();
    assert!(key.ends_with(".tar"), "{key}");
    let mut archive = tar::Archive::new(std::fs::File::open(t.env.aips.root().join(&key)).unwrap());
    assert!(archive.entries().unwrap().count() > 5, "a readable, uncompressed tar");
}

/// A writer that changes one byte of what it is given.
struct DamagingWriter {
    inner: Box<dyn ObjectWriter>,
    at: u64,
    seen: u64,
}

impl std::io::Write for DamagingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut owned = buf.to_vec();
        if self.seen <= self.at && self.at < self.seen + buf.len() as u64 {
            owned[(self.at - self.seen) as usize] ^= 0x01;
        }
        self.seen += buf.len() as u64;
        self.inner.write_all(&owned)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl ObjectWriter for DamagingWriter {
    fn commit(self: Box<Self>) -> PortResult<ObjectMeta> {
        self.inner.commit()
    }
}

#[test]
fn a_stored_aip_that_fails_verification_fails_the_transfer_and_is_kept_as_evidence() {
    let mut options = vellum_tests::options();
    for profile in &mut options.config.profiles {
        profile.gzip_level = 0;
    }
    let mut t = TestEnv::with_options(options);
    // The AIP store, damaging every AIP it is given: one byte of each is changed. A plain
    // tar (gzip level 0), so the damage lands in a file's bytes, not gzip's.
    let damaging = Scripted::wrapping_writers(|inner| Box::new(DamagingWriter { inner, at: 5000, seen: 0 }));
    t.env.pipeline.aips = Arc::new(Faulty::new(t.env.pipeline.aips.clone(), Arc::new(damaging)));
    let mut p = Package::catalogued("PP/DAMAGE/1", 0);
    p.add("objects/big.txt", "0123456789\n".repeat(2000));
    let event = t.upload(&p, "born-digital/damage.zip");
    t.drive(|_, _| false);
    let transfer = t.transfer_for(&event).unwrap();
    assert_eq!(transfer.status, TransferStatus::Failed);
    let reason = transfer.failure_reason.unwrap();
    assert!(reason.contains("failed verification") && reason.contains("kept as evidence"), "{reason}");
    assert_eq!(t.stored_aips().len(), 1, "the damaged AIP is kept");
    let notices = t.dir.path().join("notifications");
    assert!(!notices.exists() || std::fs::read_dir(&notices).unwrap().next().is_none(), "no notice for a failed AIP");
}

#[test]
fn each_stored_aip_is_announced_under_its_space_and_test_identifiers_go_to_testing() {
    let t = TestEnv::new(5);
    let real = ingest(&t, &Package::catalogued("PP/NOTE/1", 1), "born-digital/note.zip");
    let test = ingest(&t, &Package::catalogued("archivematica-dev/TEST-7", 1), "born-digital/test.zip");
    assert!(test.aip_key.as_ref().unwrap().starts_with("testing/archivematica-dev/TEST-7/v1/"), "{:?}", test.aip_key);
    for (transfer, space, identifier) in
        [(&real, "born-digital", "PP/NOTE/1"), (&test, "testing", "archivematica-dev/TEST-7")]
    {
        let path = t.dir.path().join(format!("notifications/{space}/{}.json", transfer.aip_uuid));
        let notice: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(notice["identifier"], identifier);
        assert_eq!(notice["space"], space);
        assert_eq!(notice["version"], 1);
        assert_eq!(notice["aip_uuid"], transfer.aip_uuid.to_string());
        assert_eq!(notice["transfer_id"], transfer.id.to_string());
        assert_eq!(notice["origin"], "vellum");
        assert!(notice["timeSent"].as_str().unwrap().ends_with('Z'));
    }
    let events = t.env.state.all_events(real.id).unwrap();
    let fixity = events.iter().find(|e| e.file_uuid.is_none() && e.event_type == "fixity check").unwrap();
    assert_eq!(fixity.outcome, vellum_core::model::EventOutcome::Pass, "an AIP-level fixity check is recorded");
}

#[test]
#[ignore = "needs the project's Python with bagit-python and the METS/PREMIS schemas; scripts/test runs it"]
fn a_bag_too_large_for_one_invocation_is_written_in_parts_and_joined_as_one_valid_aip() {
    let t = TestEnv::new(4);
    let mut p = Package::catalogued("PP/PARTS/1", 12);
    p.add("objects/a longer name that needs the gnu long-name extension in a tar header, being over a hundred bytes long.txt", "long");
    let event = t.upload(&p, "born-digital/parts.zip");
    // No time at all: every package invocation writes one entry and continues.
    let handled = t.drive_with_budget(std::time::Duration::ZERO, |_, _| false);
    let continued = vellum_tests::continued(&handled, Stage::Package);
    assert!(continued >= 10, "packaging continued {continued} times");
    let transfer = t.transfer_for(&event).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let aip = std::fs::read(t.env.aips.root().join(transfer.aip_key.as_ref().unwrap())).unwrap();
    let members = aip.windows(3).filter(|w| w == &[0x1f, 0x8b, 0x08]).count();
    assert!(members > 10, "the AIP is {members} concatenated gzip members");
    let bag = unpacked(&t, &transfer);
    bagit_validate(&bag).expect("bagit-python accepts the joined AIP");
    assert_eq!(
        std::fs::read_to_string(bag.join("data/objects/a_longer_name_that_needs_the_gnu_long-name_extension_in_a_tar_header__being_over_a_hundred_bytes_long.txt")).unwrap(),
        "long"
    );
}
