//! Intake and extraction, one test per rule, on packages the tests build: each asserts how
//! the transfer ended and the words an archivist is told, beside the upload and on record.

use std::io::Write;
use std::path::Path;

use vellum_core::model::Stage;
use vellum_core::model::TransferStatus;
use vellum_core::ports::{EventLog, FileCatalogue, ObjectStore, Queue, TransferOversight, TransferQuery};
use vellum_tests::{raw_package, tar_gz, with, Case, Package, RawEntry, TestEnv};

/// Every bad package of the catalogue (zip slip, absolute paths and drive letters, links,
/// a missing, wrapped, extra, Latin-1, two-row or identifier-less metadata, a wrong prefix,
/// truncated or non-zip uploads, encrypted, duplicate, damaged and lying entries) ends as
/// described, its reason and its log in the words an archivist can act on, the upload
/// untouched and nothing stored.
#[test]
fn every_bad_package_ends_with_a_reason_an_archivist_can_act_on() {
    for bad in vellum_tests::bad_packages::bad_packages() {
        let c = Case::bytes(&bad.bytes);
        let log = match bad.status {
            TransferStatus::Rejected => c.refused(bad.key, bad.words),
            TransferStatus::Failed => {
                c.failed(bad.key, bad.words);
                c.log(bad.key, "failed")
            }
            other => panic!("{}: a bad package cannot end {other:?}", bad.name),
        };
        for w in bad.log_words {
            assert!(log.contains(w), "{}: the log lacks {w:?}: {log}", bad.name);
        }
    }
}

#[test]
fn a_byte_order_mark_in_metadata_csv_is_accepted() {
    let mut p = Package::default();
    p.add("metadata/metadata.csv", "\u{feff}filename,dc.identifier\nobjects/,PP/BOM/1\n").add("objects/a.txt", "a");
    let t = Case::zip(&p).complete("born-digital/bom.zip");
    assert_eq!(t.identifiers.catalogue_identifier.as_deref(), Some("PP/BOM/1"));
}

#[test]
fn accessions_need_their_fields_and_are_registered() {
    let mut p = Package::default();
    p.add("metadata/metadata.csv", "filename,collection_reference,accession_number\nobjects/,SA/TIH,2314_2\n")
        .add("objects/a.txt", "a");
    let c = Case::zip(&p);
    let t = c.complete("born-digital-accessions/acc.zip");
    assert_eq!(t.profile, "b_dig_accessions");
    let events = c.t.env.state.all_events(t.id).unwrap();
    assert!(events.iter().any(|e| e.event_type == "registration"), "accessions are registered");
    assert!(!events.iter().any(|e| e.event_type == "ingestion"));
    let tags = c.t.env.uploads.get_tags("born-digital-accessions/acc.zip").unwrap();
    assert_eq!(tags.get("AccessionNumber").map(String::as_str), Some("2314_2"));
    assert!(t.aip_key.unwrap().starts_with("born-digital-accessions/"));
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn deflate64_packages_are_extracted() {
    let c = Case::new();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/deflate64.zip"), &c.path).unwrap();
    let t = c.complete("born-digital/deflate64.zip");
    let bag = c.bag(&t);
    let report = std::fs::read(bag.join("data/objects/reports/annual-report.txt")).unwrap();
    assert_eq!(report.len(), 414_316);
    let notes = std::fs::read_to_string(bag.join("data/objects/notes.txt")).unwrap();
    assert_eq!(notes, "Deflate64 is what Windows writes for large archives.\n".repeat(200));
}

#[test]
fn cp437_names_are_decoded_not_dropped() {
    let mut legacy = RawEntry::file("", "from an old Windows zip tool");
    legacy.name = b"objects/caf\x82 na\x8fve.txt".to_vec();
    legacy.flags = 0;
    let c = Case::raw(&with(raw_package("PP/437"), legacy));
    let t = c.complete("born-digital/cp437.zip");
    let files = c.t.env.state.all_files(t.id).unwrap();
    let f = files.iter().find(|f| f.original_path.starts_with("objects/caf")).unwrap();
    assert_eq!(f.original_path, "objects/café naÅve.txt");
    assert_eq!(f.current_path, "objects/cafe_naAve.txt");
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn awkward_names_are_sanitized_recorded_and_nothing_is_lost() {
    let names = [
        "objects/a b.txt",
        "objects/a_b.txt",
        "objects/CON.txt",
        "objects/trailing.",
        "objects/日本語.txt",
        "objects/Ça/x.txt",
        "objects/Ca/x.txt",
        "objects/quote\"and*star?.txt",
    ];
    let mut p = Package::default();
    p.add("metadata/metadata.csv", "filename,dc.identifier\nobjects/,PP/NAMES/1\n");
    for n in names {
        p.add(n, format!("content of {n}"));
    }
    let c = Case::zip(&p);
    let t = c.complete("born-digital/awkward names.zip");
    let files = c.t.env.state.all_files(t.id).unwrap();
    let path_of = |orig: &str| files.iter().find(|f| f.original_path == orig).unwrap().current_path.clone();
    assert_eq!(path_of("objects/a_b.txt"), "objects/a_b.txt");
    assert_eq!(path_of("objects/a b.txt"), "objects/a_b_1.txt");
    assert_eq!(path_of("objects/CON.txt"), "objects/_CON.txt");
    assert_eq!(path_of("objects/trailing."), "objects/trailing_");
    assert_eq!(path_of("objects/Ca/x.txt"), "objects/Ca/x.txt");
    assert_eq!(path_of("objects/Ça/x.txt"), "objects/Ca_1/x.txt");
    assert!(path_of("objects/日本語.txt").is_ascii());
    let events = c.t.env.state.all_events(t.id).unwrap();
    let changes = events.iter().filter(|e| e.event_type == "filename change").count();
    assert_eq!(changes, 6, "one filename change event per renamed file");
    let bag = c.bag(&t);
    let log = std::fs::read_to_string(bag.join("data/logs/filenameChanges.log")).unwrap();
    for n in names.iter().filter(|n| path_of(n) != **n) {
        let data = std::fs::read_to_string(bag.join("data").join(path_of(n))).unwrap();
        assert_eq!(data, format!("content of {n}"), "{n} is in the AIP under its new name");
        assert!(log.contains(&format!("{n} -> {}", path_of(n))), "{log}");
    }
    let mets = std::fs::read_to_string(bag.join(format!("data/METS.{}.xml", t.aip_uuid))).unwrap();
    assert!(mets.contains("%transferDirectory%objects/a b.txt"), "the original name is on the PREMIS object");
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn a_nested_zip_is_kept_whole_and_unpacked_beside_itself() {
    let inner_path = std::env::temp_dir().join(format!("inner-{}.zip", std::process::id()));
    Package::catalogued("INNER/1", 3).write_zip(&inner_path);
    let inner = std::fs::read(&inner_path).unwrap();
    std::fs::remove_file(&inner_path).unwrap();
    let mut p = Package::catalogued("PP/NEST/1", 1);
    p.add("objects/inner.zip", inner.clone());
    let c = Case::zip(&p);
    let t = c.complete("born-digital/nested.zip");
    assert_eq!(t.file_count, 7, "metadata.csv, one file, the inner zip and the four files it holds");
    assert_eq!(std::fs::read(c.bag(&t).join("data/objects/inner.zip")).unwrap(), inner, "the container kept");
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn zero_byte_files_are_kept() {
    let mut p = Package::catalogued("PP/EMPTY/1", 1);
    p.add("objects/empty.bin", "");
    let c = Case::zip(&p);
    let t = c.complete("born-digital/empty.zip");
    let f =
        c.t.env.state.all_files(t.id).unwrap().into_iter().find(|f| f.original_path == "objects/empty.bin").unwrap();
    assert_eq!(f.size, 0);
    assert_eq!(f.sha256(), Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    assert_eq!(std::fs::metadata(c.bag(&t).join("data/objects/empty.bin")).unwrap().len(), 0);
}

#[test]
fn seventy_thousand_entries_are_extracted_through_zip64() {
    let c = Case::new();
    {
        let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(std::fs::File::create(&c.path).unwrap()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file("metadata/metadata.csv", options).unwrap();
        zip.write_all(b"filename,dc.identifier\nobjects/,PP/MANY/1\n").unwrap();
        for i in 0..70_000 {
            zip.start_file(format!("objects/{:02}/{i:05}.txt", i % 50), options).unwrap();
            zip.write_all(format!("{i}\n").as_bytes()).unwrap();
        }
        zip.finish().unwrap();
    }
    let bytes = std::fs::read(&c.path).unwrap();
    let event = c.t.upload_bytes(&bytes, "born-digital/many.zip");
    c.t.drive_stages(&[Stage::Start.name(), Stage::Extract.name()]);
    let t = c.t.transfer_for(&event).unwrap();
    assert_eq!(t.status, TransferStatus::Processing, "{:?}", t.failure_reason);
    assert_eq!(t.file_count, 70_001);
    assert_eq!(t.batch_count, 70_001u32.div_ceil(50));
    let cp = c.t.env.state.extract_checkpoint(t.id).unwrap();
    assert!(cp.done && cp.next_entry == 70_001, "{cp:?}");
    assert_eq!(c.t.env.queue.depth(Stage::Checksum.name()).unwrap(), t.batch_count as u64, "every batch fanned out");
}

#[test]
fn limits_come_from_the_profile_and_are_named() {
    let limited = |f: &dyn Fn(&mut vellum_core::config::profile::Limits)| {
        let mut options = vellum_tests::options();
        for p in &mut options.config.profiles {
            f(&mut p.limits);
        }
        Case::with_options(options)
    };
    let c = limited(&|l| l.max_entries = 3);
    Package::catalogued("PP/1", 5).write_zip(&c.path);
    c.refused("born-digital/many.zip", &["max_entries"]);
    let c = limited(&|l| l.max_total_bytes = 1000);
    let mut p = Package::catalogued("PP/1", 1);
    p.add("objects/big.bin", vec![7u8; 5000]);
    p.write_zip(&c.path);
    c.refused("born-digital/big.zip", &["max_total_bytes"]);
}

/// metadata.csv may describe single files beside the package, as Archivematica reads it; a
/// row for a file the package does not hold is refused naming it.
#[test]
fn metadata_rows_for_files_must_name_files_of_the_package() {
    let c = Case::new();
    let mut p = Package::default();
    p.add(
        "metadata/metadata.csv",
        "filename,dc.identifier,dc.title\nobjects/,PP/ROWS/1,Papers\nobjects/a.txt,,A\nobjects/absent.txt,,Gone\n",
    )
    .add("objects/a.txt", "a");
    p.write_zip(&c.path);
    c.refused("born-digital/rows.zip", &["describes files that are not in the package", "objects/absent.txt"]);
    let c = Case::new();
    let mut p = Package::default();
    p.add("metadata/metadata.csv", "filename,dc.identifier,dc.title\nobjects/,PP/ROWS/2,Papers\nobjects/a.txt,,A\n")
        .add("objects/a.txt", "a");
    p.write_zip(&c.path);
    c.complete("born-digital/rows-ok.zip");
}

/// A file of zeros compresses a thousandfold and is no bomb: it is accepted and kept byte
/// for byte, beside a package of such files that together expand as far.
#[test]
fn a_file_of_zeros_is_a_file_not_a_zip_bomb() {
    let c = Case::new();
    let mut p = Package::catalogued("PP/ZEROS/1", 1);
    p.add("objects/zeros.bin", vec![0u8; 4 << 20]);
    for i in 0..24 {
        p.add(&format!("objects/blank/zeros-{i}.bin"), vec![0u8; 512 * 1024]);
    }
    p.write_zip(&c.path);
    let stored = std::fs::metadata(&c.path).unwrap().len();
    assert!((16u64 << 20) / stored > 100, "the package expands more than a hundredfold: {stored} bytes zipped");
    let t = c.complete("born-digital/zeros.zip");
    let files = c.t.env.state.all_files(t.id).unwrap();
    let zeros = files.iter().find(|f| f.current_path == "objects/zeros.bin").expect("the zeros are a file of the AIP");
    assert_eq!(zeros.size, 4 << 20);
    assert_eq!(zeros.sha256(), Some(vellum_tests::sha256_hex(&vec![0u8; 4 << 20]).as_str()));
}

#[test]
fn success_is_logged_beside_the_upload_and_the_upload_tagged() {
    let c = Case::zip(&Package::catalogued("PP/OK/1", 2));
    let key = "born-digital/My Package.zip";
    let t = c.complete(key);
    let accepted = c.log(key, "accepted");
    assert!(accepted.contains(&t.id.to_string()) && accepted.contains("checks passed"), "{accepted}");
    assert!(accepted.contains("Processing has only begun"), "{accepted}");
    let log = c.log(key, "success");
    assert!(log.contains("Vellum stored born-digital/My Package.zip"), "{log}");
    assert!(
        log.contains("under identifier PP/OK/1, version 1") && log.contains(t.aip_key.as_deref().unwrap()),
        "{log}"
    );
    assert!(!log.contains("dashboard"), "the final answer sends no one elsewhere: {log}");
    let tags = c.t.env.uploads.get_tags(key).unwrap();
    assert_eq!(tags.get("TransferId"), Some(&t.id.to_string()));
    assert_eq!(tags.get("ProcessingConfig").map(String::as_str), Some("born_digital"));
    assert_eq!(tags.get("CatalogueIdentifier").map(String::as_str), Some("PP/OK/1"));
    assert_eq!(tags.get("S3EventTime"), Some(&t.source_event_time));
    let logs = c.t.env.uploads.list(&format!("{key}.success.")).unwrap();
    let name = &logs[0].key;
    assert!(name.ends_with(&format!(".{}.log", &t.event_key[..12])), "{name}");
}

#[test]
fn the_same_name_uploaded_again_later_is_a_new_transfer_that_collides_with_nothing() {
    let c = Case::zip(&Package::catalogued("PP/AGAIN/1", 2));
    let first = c.complete("born-digital/again.zip");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = c.complete("born-digital/again.zip");
    assert_ne!(first.id, second.id);
    assert_eq!((first.aip_version, second.aip_version), (Some(1), Some(2)));
    assert_eq!(c.t.env.uploads.list("born-digital/again.zip.success.").unwrap().len(), 2, "one log per upload");
}

/// One final answer per upload: a package accepted at intake that fails later gets its
/// acknowledgement and a failed log, and no success log.
#[test]
fn a_transfer_that_fails_after_intake_has_one_answer() {
    let c = Case::new();
    vellum_tests::write_damaged_zip(&c.path, "PP/ONE/1");
    let key = "born-digital/one-answer.zip";
    c.failed(key, &["objects/damaged.txt"]);
    assert!(c.log(key, "accepted").contains("Processing has only begun"));
    assert!(c.t.env.uploads.list(&format!("{key}.success.")).unwrap().is_empty(), "no success log for a failure");
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn tar_gz_transfers_are_streamed_and_checked_like_zips() {
    use tar::EntryType::{Regular, Symlink};
    let metadata: &[u8] = b"filename,dc.identifier\nobjects/,PP/TAR/1\n";
    let c = Case::new();
    let good = tar_gz(
        &[
            ("./metadata/metadata.csv", metadata, Regular),
            ("./objects/a b.txt", b"tar content", Regular),
            ("./objects/b.txt", b"", Regular),
        ],
        true,
    );
    std::fs::write(&c.path, &good).unwrap();
    let t = c.complete("born-digital/package.tar.gz");
    assert_eq!(t.file_count, 3);
    assert_eq!(std::fs::read(c.bag(&t).join("data/objects/a_b.txt")).unwrap(), b"tar content");

    let c = Case::new();
    std::fs::write(
        &c.path,
        tar_gz(&[("metadata/metadata.csv", metadata, Regular), ("objects/link", b"", Symlink)], true),
    )
    .unwrap();
    c.refused("born-digital/link.tgz", &["objects/link", "links"]);
    let c = Case::new();
    std::fs::write(
        &c.path,
        tar_gz(&[("metadata/metadata.csv", metadata, Regular), ("objects/../../x", b"x", Regular)], false),
    )
    .unwrap();
    c.refused("born-digital/slip.tar", &["leads out of its folder"]);
}

/// In a tar only `/` separates folders: a member named `report\2020.txt` is one file of that
/// name, sanitized for the AIP, its original name kept and recorded — not a folder.
#[test]
fn a_backslash_in_a_tar_member_name_is_part_of_the_name() {
    use tar::EntryType::Regular;
    let c = Case::new();
    let package = tar_gz(
        &[
            ("metadata/metadata.csv", b"filename,dc.identifier\nobjects/,PP/TARBS/1\n", Regular),
            ("objects/report\\2020.txt", b"one file, not a folder", Regular),
        ],
        true,
    );
    std::fs::write(&c.path, &package).unwrap();
    let t = c.complete("born-digital/backslash.tar.gz");
    let files = c.t.env.state.all_files(t.id).unwrap();
    let file = files.iter().find(|f| f.original_path == "objects/report\\2020.txt").expect("the member, by its name");
    assert!(
        file.current_path.starts_with("objects/report") && file.current_path.matches('/').count() == 1,
        "a file beside the others, not in a folder: {}",
        file.current_path
    );
    let events = c.t.env.state.all_events(t.id).unwrap();
    let change = events
        .iter()
        .find(|e| e.file_uuid == Some(file.uuid) && e.event_type == "filename change")
        .expect("the sanitized name recorded");
    assert!(change.outcome_detail.contains("report\\2020.txt"), "the original name kept: {}", change.outcome_detail);
}

#[test]
fn a_tar_gz_continues_across_invocations() {
    use tar::EntryType::Regular;
    let mut entries: Vec<(String, Vec<u8>)> =
        vec![("metadata/metadata.csv".into(), b"filename,dc.identifier\nobjects/,PP/TARC/1\n".to_vec())];
    for i in 0..12 {
        entries.push((format!("objects/f{i}.txt"), format!("file {i}").into_bytes()));
    }
    let refs: Vec<(&str, &[u8], tar::EntryType)> =
        entries.iter().map(|(n, d)| (n.as_str(), d.as_slice(), Regular)).collect();
    let t = TestEnv::new(5);
    let event = t.upload_bytes(&tar_gz(&refs, true), "born-digital/continued.tgz");
    let handled = t.drive_with_budget(std::time::Duration::ZERO, |_, _| false);
    let continued = vellum_tests::continued(&handled, Stage::Extract);
    assert!(continued >= 10, "{continued}");
    let transfer = t.transfer_for(&event).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    assert_eq!(transfer.file_count, 13);
    let mut names: Vec<String> =
        t.env.state.all_files(transfer.id).unwrap().into_iter().map(|f| f.original_path).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 13, "each entry once");
}

#[test]
fn logs_test_events_and_other_keys_start_nothing() {
    let t = TestEnv::new(10);
    for key in [
        "born-digital/PP.zip.failed.2026-01-01T00-00-00.000Z.0123456789ab.log",
        "born-digital/notes.txt",
        "born-digital/folder/",
    ] {
        let event = t.upload_bytes(b"not a package", key.trim_end_matches('/'));
        let mut event = event;
        event.key = key.to_string();
        let outcome = t.env.pipeline.handle(
            Stage::Start,
            &serde_json::to_string(&event).unwrap(),
            &vellum_core::StageContext::with_budget(std::time::Duration::from_secs(10)),
        );
        assert_eq!(outcome, vellum_core::Outcome::Ignored, "{key}");
    }
    t.drive(|_, _| false);
    assert!(
        t.env.state.list_transfers(&TransferQuery { limit: 10, ..Default::default() }).unwrap().items.is_empty(),
        "no transfer for a key that is no package"
    );
    let test_event =
        r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-26T10:00:00Z","Bucket":"vellum-uploads"}"#;
    assert!(vellum_core::model::messages::upload_events_from_s3(test_event).unwrap().is_empty());
}
