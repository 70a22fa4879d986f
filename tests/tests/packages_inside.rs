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

/// 7-Zip's own archives, made by 7-Zip: solid, in folders, an empty file among them.
fn seven_zip(dir: &std::path::Path, name: &str, switches: &[&str], files: &[(&str, &[u8])]) -> Vec<u8> {
    let src = dir.join(format!("{name}-src"));
    for (path, bytes) in files {
        let at = src.join(path);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(at, bytes).unwrap();
    }
    let out = dir.join(name);
    let made = std::process::Command::new("7zz")
        .args(["a", "-t7z", "-bso0", "-bsp0"])
        .args(switches)
        .arg(&out)
        .arg(".")
        .current_dir(&src)
        .output()
        .expect("this test needs 7-Zip (7zz): run it through scripts/test, which installs it");
    assert!(made.status.success(), "7zz: {}", String::from_utf8_lossy(&made.stderr));
    std::fs::read(out).unwrap()
}

#[test]
fn a_7z_inside_is_unpacked_and_one_with_a_link_or_a_password_is_kept_whole_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let solid = seven_zip(
        dir.path(),
        "letters.7z",
        &["-ms=on", "-mx=9"],
        &[("1901/a.txt", b"a letter of 1901\n"), ("1902/b.txt", b"a letter of 1902\n"), ("empty.txt", b"")],
    );
    let locked = seven_zip(dir.path(), "locked.7z", &["-psecret", "-mhe=on"], &[("c.txt", b"secret\n")]);
    let linked = {
        let src = dir.path().join("linked-src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("real.txt"), b"real\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("link.txt")).unwrap();
        let out = dir.path().join("linked.7z");
        let made = std::process::Command::new("7zz")
            .args(["a", "-t7z", "-bso0", "-bsp0", "-snl"])
            .arg(&out)
            .arg(".")
            .current_dir(&src)
            .output()
            .expect("7zz");
        assert!(made.status.success(), "7zz: {}", String::from_utf8_lossy(&made.stderr));
        std::fs::read(out).unwrap()
    };
    let mut package = Package::default();
    package
        .add("metadata/metadata.csv", "filename,dc.identifier,dc.title\nobjects/,PP/SEVEN/1,7-Zip inside\n")
        .add("objects/letters.7z", solid.clone())
        .add("objects/locked.7z", locked.clone())
        .add("objects/linked.7z", linked.clone());
    let mut options = vellum_tests::options();
    for profile in &mut options.config.profiles {
        profile.extract_packages = true;
    }
    let t = TestEnv::with_options(options);
    let event = t.upload(&package, "born-digital/seven.zip");
    t.drive(|_, _| false);
    let transfer = t.transfer_for(&event).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let state = t.env.state.as_ref();
    let files = state.all_files(transfer.id).unwrap();
    let events = state.all_events(transfer.id).unwrap();
    let by_path = |path: &str| files.iter().find(|f| f.current_path == path);
    let container = by_path("objects/letters.7z").expect("the container is kept");
    let folder = format!("objects/letters-{}", container.uuid);
    for (path, bytes) in
        [("1901/a.txt", &b"a letter of 1901\n"[..]), ("1902/b.txt", b"a letter of 1902\n"), ("empty.txt", b"")]
    {
        let member = by_path(&format!("{folder}/{path}")).unwrap_or_else(|| panic!("{path} unpacked: {files:#?}"));
        assert_eq!((member.source, member.size), (Some(container.uuid), bytes.len() as u64));
        assert!(
            events.iter().any(|e| e.file_uuid == Some(member.uuid) && e.event_type == "unpacking"),
            "{path}: an unpacking event"
        );
        assert!(member.sha256().is_some(), "{path} went through the per-file stages");
    }
    for (name, why) in [("objects/locked.7z", "encrypted"), ("objects/linked.7z", "symbolic link")] {
        let kept = by_path(name).unwrap();
        let refused = events
            .iter()
            .find(|e| e.file_uuid == Some(kept.uuid) && e.event_type == "unpacking")
            .unwrap_or_else(|| panic!("{name}: the refusal recorded"));
        assert_eq!(refused.outcome, EventOutcome::Fail, "{name}");
        assert!(refused.outcome_detail.contains(why), "{name}: {}", refused.outcome_detail);
        assert!(!files.iter().any(|f| f.source == Some(kept.uuid)), "{name}: nothing of it taken out");
    }
    // The unpacked letters and the containers, byte for byte, in the AIP.
    let dest = t.dir.path().join("unpacked");
    std::fs::create_dir_all(&dest).unwrap();
    let bag = unpack_aip(&t.env.aips.root().join(transfer.aip_key.as_ref().unwrap()), &dest);
    let data = bag.join("data");
    assert_eq!(std::fs::read(data.join("objects/letters.7z")).unwrap(), solid);
    assert_eq!(std::fs::read(data.join(format!("{folder}/1902/b.txt"))).unwrap(), b"a letter of 1902\n");
}

#[test]
fn the_rules_choose_which_package_formats_are_unpacked() {
    let mut package = Package::default();
    package
        .add("metadata/metadata.csv", "filename,dc.identifier,dc.title\nobjects/,PP/RULES/1,Rules decide\n")
        .add("objects/kept.zip", zip_of(&[("a.txt", b"stays inside\n")]))
        .add("objects/backup.tgz", tgz_of(&[("old/c.txt", b"from a tar\n")]));
    let mut options = vellum_tests::options();
    for profile in &mut options.config.profiles {
        profile.extract_packages = true;
    }
    let rules = options.config.format_policy().rules.into_iter().filter(|r| r.name != "unpack-zip").collect();
    options.config.format_policy = Some(rules);
    let t = TestEnv::with_options(options);
    let event = t.upload(&package, "born-digital/rules.zip");
    t.drive(|_, _| false);
    let transfer = t.transfer_for(&event).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let files = t.env.state.all_files(transfer.id).unwrap();
    assert!(!files.iter().any(|f| f.current_path.ends_with("/a.txt")), "no extraction rule names ZIP: kept whole");
    assert!(files.iter().any(|f| f.current_path.ends_with("/old/c.txt")), "the tar is still unpacked");
}
