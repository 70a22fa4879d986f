//! Packages inside packages: a zip among the objects is unpacked beside itself and what it
//! holds goes through every per-file stage into the AIP, a zip inside it too, each file with
//! an `unpacking` event naming its container; a zip that would write outside its folder is
//! kept whole with the reason; a document that is a zip inside (a .docx) is left whole.

use std::io::Write;

use vellum_core::model::{EventOutcome, FileUse, TransferStatus};
use vellum_core::ports::{EventLog, FileCatalogue};
use vellum_tests::{bagit_validate, unpack_aip, Package, TestEnv};

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    for (name, bytes) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    out.into_inner()
}

fn tgz_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, *bytes).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

#[test]
#[ignore = "needs the project's Python (bagit-python); scripts/test runs it"]
fn a_zip_inside_is_unpacked_beside_itself_and_its_files_reach_the_aip_with_unpacking_events() {
    let deeper = zip_of(&[("b.txt", b"deeper letter\n")]);
    let inner = zip_of(&[
        ("a.txt", b"inner letter\n"),
        ("photos/note: draft?.txt", b"a name to sanitize\n"),
        ("deeper.zip", &deeper),
    ]);
    let escaping = zip_of(&[("../../outside.txt", b"nowhere to go\n")]);
    let document = zip_of(&[("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w/>")]);
    let mut package = Package::default();
    package
        .add("metadata/metadata.csv", "filename,dc.identifier,dc.title\nobjects/,PP/INNER/1,Packages inside\n")
        .add("objects/mail/inner.zip", inner.clone())
        .add("objects/escaping.zip", escaping.clone())
        .add("objects/report.docx", document.clone())
        .add("objects/backup.tgz", tgz_of(&[("old/c.txt", b"from a tar\n")]));
    let mut options = vellum_tests::options();
    for profile in &mut options.config.profiles {
        profile.extract_packages = true;
        profile.package_depth = 3;
    }
    options.settings.batch_size = Some(2);
    let t = TestEnv::with_options(options);
    let event = t.upload(&package, "born-digital/inside.zip");
    t.drive(|_, _| false);
    let transfer = t.transfer_for(&event).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);

    let state = t.env.state.as_ref();
    let files = state.all_files(transfer.id).unwrap();
    let events = state.all_events(transfer.id).unwrap();
    let by_path = |path: &str| files.iter().find(|f| f.current_path == path);
    let container = by_path("objects/mail/inner.zip").expect("the container is kept");
    let folder = format!("objects/mail/inner-{}", container.uuid);
    let a = by_path(&format!("{folder}/a.txt")).unwrap_or_else(|| panic!("a.txt unpacked into {folder}: {files:#?}"));
    assert_eq!((a.file_use, a.source), (FileUse::Original, Some(container.uuid)));
    assert!(a.sha256().is_some() && a.format.is_some(), "through the per-file stages: {a:?}");
    let sanitized = files
        .iter()
        .find(|f| f.current_path.starts_with(&format!("{folder}/photos/")))
        .expect("the oddly named file, under a sanitized name");
    assert!(!sanitized.current_path.contains(':') && !sanitized.current_path.contains('?'));
    let deeper_zip = by_path(&format!("{folder}/deeper.zip")).expect("the zip inside the zip, kept");
    let b = by_path(&format!("{folder}/deeper-{}/b.txt", deeper_zip.uuid)).expect("unpacked in turn");
    assert_eq!(b.source, Some(deeper_zip.uuid));
    for member in [a, b] {
        let unpacking = events
            .iter()
            .find(|e| e.file_uuid == Some(member.uuid) && e.event_type == "unpacking")
            .expect("an unpacking event");
        assert_eq!(unpacking.outcome, EventOutcome::Positive);
        let from = files.iter().find(|f| Some(f.uuid) == member.source).unwrap();
        assert!(unpacking.detail.contains(&from.current_path), "names its container: {}", unpacking.detail);
        let scanned = events.iter().any(|e| e.file_uuid == Some(member.uuid) && e.event_type == "virus check");
        assert!(scanned, "{} was scanned", member.current_path);
    }
    let backup = by_path("objects/backup.tgz").unwrap();
    let c = by_path(&format!("objects/backup-{}/old/c.txt", backup.uuid)).expect("a gzipped tar unpacked too");
    assert_eq!(c.source, Some(backup.uuid));
    // Kept whole: a zip that would write outside its folder (with the reason), a document.
    let escaping_file = by_path("objects/escaping.zip").unwrap();
    let refused = events
        .iter()
        .find(|e| e.file_uuid == Some(escaping_file.uuid) && e.event_type == "unpacking")
        .expect("the refusal recorded on the container");
    assert_eq!(refused.outcome, EventOutcome::Fail);
    assert!(refused.outcome_detail.contains("would leave its folder"), "{}", refused.outcome_detail);
    assert!(!files.iter().any(|f| f.current_path.contains("outside")), "nothing of it taken out");
    assert!(!files.iter().any(|f| f.source.is_some() && f.current_path.contains("report")), "the .docx left whole");

    // The AIP: a valid bag holding the containers and what came out of them, byte for byte.
    let dest = t.dir.path().join("unpacked");
    std::fs::create_dir_all(&dest).unwrap();
    let bag = unpack_aip(&t.env.aips.root().join(transfer.aip_key.as_ref().unwrap()), &dest);
    bagit_validate(&bag).expect("the AIP is a valid bag");
    let data = bag.join("data");
    assert_eq!(std::fs::read(data.join("objects/mail/inner.zip")).unwrap(), inner);
    assert_eq!(std::fs::read(data.join(&a.current_path)).unwrap(), b"inner letter\n");
    assert_eq!(std::fs::read(data.join(&b.current_path)).unwrap(), b"deeper letter\n");
    assert_eq!(std::fs::read(data.join("objects/report.docx")).unwrap(), document);
}
