//! Packages as archivists' desktops make them: Finder's and Explorer's zips, Info-ZIP, 7-Zip
//! with each compression method, Python's zipfile; their clutter left out and recorded;
//! names as long as Windows allows.

use std::path::Path;
use std::process::Command;

use vellum_core::model::Transfer;
use vellum_core::ports::{EventLog, FileCatalogue};
use vellum_tests::{project_python, Case, Package, RawEntry};

const METADATA: &str = "filename,dc.identifier\nobjects/,PP/DESK/1\n";

/// The AIP's payload paths under data/objects/, and the left-out log.
fn aip_contents(c: &Case, t: &Transfer) -> (Vec<String>, Option<String>) {
    let bag = c.bag(t);
    let objects = bag.join("data/objects");
    let paths = vellum_tests::files_under(&objects)
        .into_iter()
        .map(|p| p.strip_prefix(&objects).unwrap().to_string_lossy().into_owned())
        .collect();
    (paths, std::fs::read_to_string(bag.join("data/logs/leftOut.log")).ok())
}

fn left_out_events(c: &Case, t: &Transfer) -> Vec<String> {
    c.t.env
        .state
        .transfer_events(t.id)
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "deletion")
        .map(|e| format!("{} | {}", e.outcome_detail, e.detail))
        .collect()
}

/// A zip as macOS Finder's "Compress" makes it: a folder entry for each folder, and beside
/// objects/ and metadata/ a `__MACOSX/` tree of AppleDouble `._` files; `.DS_Store` where
/// Finder showed a folder.
fn finder_zip(path: &Path) {
    let mut p = Package::default();
    let apple_double = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ".to_vec();
    p.add("metadata/", "")
        .add("metadata/metadata.csv", METADATA)
        .add("objects/", "")
        .add("objects/letter.txt", "Dear archivist,\n")
        .add("objects/.DS_Store", vec![0u8, 0, 0, 1, b'B', b'u', b'd', b'1'])
        .add("__MACOSX/", "")
        .add("__MACOSX/._metadata", apple_double.clone())
        .add("__MACOSX/metadata/._metadata.csv", apple_double.clone())
        .add("__MACOSX/objects/._letter.txt", apple_double.clone())
        .add("objects/._letter.txt", apple_double);
    p.write_zip(path);
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn a_finder_zip_is_accepted_without_its_mac_metadata_and_clutter() {
    let c = Case::new();
    finder_zip(&c.path);
    let key = "born-digital/Finder.zip";
    let t = c.complete(key);
    let success = c.log(key, "accepted");
    assert!(success.contains("5 entries of Mac metadata (__MACOSX/ and ._ files) left out"), "{success}");
    assert!(success.contains("1 file(s) of desktop clutter"), "{success}");
    let (paths, left_out) = aip_contents(&c, &t);
    assert!(paths.contains(&"letter.txt".to_string()), "{paths:?}");
    assert!(!paths.iter().any(|p| p.contains("MACOSX") || p.contains("._") || p.contains("DS_Store")), "{paths:?}");
    let left_out = left_out.expect("logs/leftOut.log");
    let ds = left_out.lines().find(|l| l.starts_with("objects/.DS_Store\t")).expect("the clutter is listed");
    let fields: Vec<&str> = ds.split('\t').collect();
    assert_eq!(fields[1], "8", "its size");
    assert_eq!(fields[2], vellum_tests::sha256_hex(&[0, 0, 0, 1, b'B', b'u', b'd', b'1']), "its digest");
    assert!(fields[3].contains("desktop clutter"), "{ds}");
    // The Mac metadata too, each entry with its size and digest where it is a file.
    for name in ["__MACOSX", "__MACOSX/._metadata", "__MACOSX/objects/._letter.txt", "objects/._letter.txt"] {
        let line = left_out
            .lines()
            .find(|l| l.starts_with(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("{name}: {left_out}"));
        assert!(line.contains("Mac metadata"), "{line}");
        if name != "__MACOSX" {
            assert!(line.contains("\t24\t"), "its size: {line}");
        }
    }
    let events = left_out_events(&c, &t);
    assert_eq!(events.len(), 6, "the clutter and five entries of Mac metadata: {events:?}");
    assert!(events.iter().any(|e| e.contains("objects/.DS_Store") && e.contains("size=8")), "{events:?}");
    let mets_path = c.bag(&t).join(format!("data/METS.{}.xml", t.aip_uuid));
    let mets = std::fs::read_to_string(&mets_path).unwrap();
    assert!(
        !mets.contains("<premis:originalName>%transferDirectory%objects/.DS_Store"),
        "no PREMIS object for what is not kept"
    );
    // Each is an event on the transfer, in its own amdSec, which the transfer's div names.
    let transfer_amd = mets.split("<mets:amdSec ID=\"amdSec_transfer\">").nth(1).expect("the transfer's amdSec");
    let transfer_amd = transfer_amd.split("</mets:amdSec>").next().unwrap();
    assert_eq!(transfer_amd.matches("<premis:eventType>deletion</premis:eventType>").count(), 6, "{transfer_amd}");
    for name in ["objects/.DS_Store", "objects/._letter.txt", "__MACOSX/metadata/._metadata.csv"] {
        assert!(transfer_amd.contains(&format!("%transferDirectory%{name}")), "{name}: {transfer_amd}");
    }
    assert!(mets.contains("ADMID=\"amdSec_transfer\""), "the transfer's div names its amdSec");
    let report = vellum_tests::validate_mets(&mets_path);
    assert_eq!(report["xsd_errors"], serde_json::json!([]), "the METS is valid METS/PREMIS");
}

/// A zip as Windows Explorer's "Send to > Compressed folder" makes it: no folder entries,
/// names in code page 437 without the UTF-8 flag, Thumbs.db and desktop.ini beside photos.
#[test]
fn an_explorer_zip_is_accepted_without_its_clutter() {
    let mut entries = vec![RawEntry::file("metadata/metadata.csv", METADATA)];
    for (name, data) in [
        (&b"objects/Photos/caf\x82.jpg"[..], &b"jpeg bytes"[..]),
        (b"objects/Photos/Thumbs.db", b"thumbnail cache"),
        (b"objects/desktop.ini", b"[.ShellClassInfo]\r\n"),
        (b"objects/Photos/Icon\r", b""),
    ] {
        let mut e = RawEntry::file("", data);
        e.name = name.to_vec();
        e.flags = 0;
        e.unix_mode = 0;
        e.deflate = true;
        entries.push(e);
    }
    let c = Case::raw(&entries);
    let t = c.complete("born-digital/Explorer.zip");
    let files = c.t.env.state.all_files(t.id).unwrap();
    assert!(files.iter().any(|f| f.original_path == "objects/Photos/café.jpg"), "CP437 decoded");
    let (paths, left_out) = aip_contents(&c, &t);
    assert_eq!(
        paths.iter().filter(|p| !p.starts_with("metadata/") && !p.starts_with("submissionDocumentation/")).count(),
        1,
        "{paths:?}"
    );
    let left_out = left_out.unwrap();
    for name in ["objects/Photos/Thumbs.db", "objects/desktop.ini", "objects/Photos/Icon\\r"] {
        assert!(left_out.contains(&format!("{name}\t")), "{name} in {left_out}");
    }
    assert_eq!(left_out_events(&c, &t).len(), 3);
}

#[test]
fn the_clutter_list_is_the_profiles_and_may_be_turned_off() {
    let mut options = vellum_tests::options();
    for p in &mut options.config.profiles {
        p.clutter.clear();
    }
    let c = Case::with_options(options);
    let mut p = Package::catalogued("PP/KEEP/1", 1);
    p.add("objects/.DS_Store", "kept on purpose");
    p.write_zip(&c.path);
    let t = c.complete("born-digital/keep.zip");
    let (paths, left_out) = aip_contents(&c, &t);
    assert!(paths.contains(&".DS_Store".to_string()), "{paths:?}");
    assert!(left_out.is_none());

    let mut options = vellum_tests::options();
    for p in &mut options.config.profiles {
        p.clutter.push("Scratch".into());
    }
    let c = Case::with_options(options);
    let mut p = Package::catalogued("PP/MORE/1", 1);
    p.add("objects/Scratch/notes.txt", "a folder on the list");
    p.write_zip(&c.path);
    let t = c.complete("born-digital/more.zip");
    assert!(aip_contents(&c, &t).1.unwrap().contains("objects/Scratch/notes.txt\t"));
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn a_package_of_nothing_but_clutter_is_refused() {
    let mut p = Package::default();
    p.add("metadata/metadata.csv", METADATA).add("objects/.DS_Store", "x").add("objects/sub/Thumbs.db", "y");
    Case::zip(&p).refused("born-digital/clutter.zip", &["nothing but desktop clutter", "objects/.DS_Store"]);
}

/// Runs an archiver archivists pack with (scripts/test installs them; a test that calls
/// this is ignored for a bare `cargo test`).
fn run(program: &str, args: &[&str], dir: &Path) {
    let out =
        Command::new(program).args(args).current_dir(dir).output().unwrap_or_else(|e| {
            panic!("this test needs {program} ({e}): run it through scripts/test, which installs it")
        });
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A package folder on disk, as an archivist has it before zipping.
fn package_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("metadata")).unwrap();
    std::fs::create_dir_all(d.join("objects/Correspondence 1990")).unwrap();
    std::fs::write(d.join("metadata/metadata.csv"), METADATA).unwrap();
    std::fs::write(d.join("objects/numbers.txt"), (1..20_000).map(|i| format!("{i}\n")).collect::<String>()).unwrap();
    std::fs::write(d.join("objects/Correspondence 1990/lettre à Zoë.txt"), "Chère Zoë,\n".repeat(500)).unwrap();
    std::fs::write(d.join("objects/empty.dat"), "").unwrap();
    dir
}

/// The package folder's files and bytes, by path under objects/.
fn expected_objects(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let objects = dir.join("objects");
    vellum_tests::files_under(&objects)
        .into_iter()
        .map(|p| {
            (format!("objects/{}", p.strip_prefix(&objects).unwrap().to_string_lossy()), std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Ingests the zip a tool made of the package folder and checks every file came through
/// whole under its original name.
fn ingest_tool_zip(c: &Case, key: &str, dir: &Path) {
    let t = c.complete(key);
    let bag = c.bag(&t);
    let files = c.t.env.state.all_files(t.id).unwrap();
    for (name, bytes) in expected_objects(dir) {
        let f = files.iter().find(|f| f.original_path == name).unwrap_or_else(|| panic!("{key}: {name} recorded"));
        assert_eq!(std::fs::read(bag.join("data").join(&f.current_path)).unwrap(), bytes, "{key}: {name}");
    }
}

#[test]
#[ignore = "needs Info-ZIP zip; scripts/test runs it"]
fn info_zip_packages_are_read() {
    let dir = package_folder();
    let c = Case::new();
    run("zip", &["-q", "-r", c.path.to_str().unwrap(), "objects", "metadata"], dir.path());
    ingest_tool_zip(&c, "born-digital/info-zip.zip", dir.path());
}

#[test]
#[ignore = "needs 7-Zip; scripts/test runs it"]
fn seven_zip_packages_are_read_with_every_method_it_writes() {
    let dir = package_folder();
    for method in ["Copy", "Deflate", "Deflate64", "BZip2", "LZMA", "XZ", "PPMd"] {
        let c = Case::new();
        let out = format!("{}.zip", c.path.display());
        run("7zz", &["a", "-tzip", "-bso0", &format!("-mm={method}"), &out, "objects", "metadata"], dir.path());
        std::fs::rename(&out, &c.path).unwrap();
        ingest_tool_zip(&c, &format!("born-digital/7z-{method}.zip"), dir.path());
    }
}

#[test]
fn zstandard_and_xz_zips_are_read() {
    let dir = package_folder();
    for (name, method) in [("zstd", zip::CompressionMethod::Zstd), ("xz", zip::CompressionMethod::Xz)] {
        let c = Case::new();
        let mut p = Package::default();
        p.add("metadata/metadata.csv", METADATA);
        for (path, bytes) in expected_objects(dir.path()) {
            p.add(&path, bytes);
        }
        p.write_zip_with(&c.path, method);
        ingest_tool_zip(&c, &format!("born-digital/{name}.zip"), dir.path());
    }
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn python_zipfile_packages_are_read() {
    let python = project_python();
    let dir = package_folder();
    for method in ["ZIP_STORED", "ZIP_DEFLATED", "ZIP_BZIP2", "ZIP_LZMA"] {
        let c = Case::new();
        let script = format!(
            "import os, sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[1], 'w', zipfile.{method}) as z:\n\
             \x20   for top in ('metadata', 'objects'):\n\
             \x20       for root, dirs, files in os.walk(top):\n\
             \x20           for f in files: z.write(os.path.join(root, f))\n"
        );
        let status = Command::new(&python).args(["-c", &script]).arg(&c.path).current_dir(dir.path()).status().unwrap();
        assert!(status.success());
        ingest_tool_zip(&c, &format!("born-digital/python-{method}.zip"), dir.path());
    }
}

#[test]
fn a_method_vellum_cannot_read_is_refused_at_intake_naming_entry_and_method() {
    let mut entries = vellum_tests::raw_package("PP/METHOD/1");
    let mut wavpack = RawEntry::file("objects/recording.wav", "not really WavPack data");
    wavpack.method = Some(97);
    entries.push(wavpack);
    let c = Case::raw(&entries);
    let log = c.refused("born-digital/wavpack.zip", &["objects/recording.wav", "method 97", "cannot read"]);
    assert!(log.contains("make the zip again with Deflate"), "how to re-zip: {log}");
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn names_as_long_as_windows_allows_are_shortened_and_recorded() {
    // 255 UTF-16 characters, 755 bytes in UTF-8, and longer still transliterated.
    let long = format!("objects/{}.docx", "日".repeat(250));
    let deep = format!("objects/{}/leaf.txt", vec!["Folder with a rather long name for its level"; 15].join("/"));
    let mut p = Package::catalogued("PP/LONG/1", 1);
    p.add(&long, "long-named").add(&deep, "deep, and still fits");
    let c = Case::zip(&p);
    let t = c.complete("born-digital/long.zip");
    let files = c.t.env.state.all_files(t.id).unwrap();
    let f = files.iter().find(|f| f.original_path == long).expect("the original name on record");
    let name = f.current_path.rsplit('/').next().unwrap();
    assert!(name.len() <= 255 && name.ends_with(".docx"), "{name}");
    let bag = c.bag(&t);
    assert_eq!(std::fs::read(bag.join("data").join(&f.current_path)).unwrap(), b"long-named");
    let d = files.iter().find(|f| f.original_path == deep).expect("the deep file on record");
    assert_eq!(std::fs::read(bag.join("data").join(&d.current_path)).unwrap(), b"deep, and still fits");
    let events = c.t.env.state.file_events(t.id, f.uuid).unwrap();
    let change = events.iter().find(|e| e.event_type == "filename change").expect("a filename change event");
    assert!(change.detail.contains("shortened"), "{}", change.detail);
    let mets = std::fs::read_to_string(bag.join(format!("data/METS.{}.xml", t.aip_uuid))).unwrap();
    assert!(mets.contains(&format!("%transferDirectory%{long}")), "the original name on the PREMIS object");

    // A path that cannot fit even with every name shortened (past POSIX's 4,096 bytes) is
    // refused at intake.
    let too_deep = format!("objects/{}/leaf.txt", vec!["f"; 2100].join("/"));
    let mut p = Package::catalogued("PP/LONG/2", 1);
    p.add(&too_deep, "x");
    Case::zip(&p).refused("born-digital/too-deep.zip", &["too long to store"]);
}

/// A deep folder tree whose paths pass 1 KB, valid on Linux and Windows, is stored whole:
/// working copies are keyed by file, not path, so S3's 1,024-byte keys do not limit it; and
/// a tree nineteen hundred folders deep (as deep as 4,096 bytes can nest) is stored too.
#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn a_tree_whose_paths_pass_one_kilobyte_is_stored() {
    let deep = format!("objects/{}/minutes.txt", vec!["Committee papers 1950-1959"; 60].join("/"));
    assert!(deep.len() > 1600, "{}", deep.len());
    let mut p = Package::catalogued("PP/DEEP/1", 1);
    p.add(&deep, "at the bottom of the tree");
    let c = Case::zip(&p);
    let t = c.complete("born-digital/deep-tree.zip");
    let files = c.t.env.state.all_files(t.id).unwrap();
    let f = files.iter().find(|f| f.original_path == deep).expect("the deep file on record");
    assert!(f.current_path.len() > 1600, "its path kept as deep: {}", f.current_path.len());
    let bag = c.bag(&t);
    assert_eq!(std::fs::read(bag.join("data").join(&f.current_path)).unwrap(), b"at the bottom of the tree");

    // bagit-python walks folders by recursion and stops at Python's thousand: the bag is
    // checked here against its own manifest instead.
    let deepest = format!("objects/{}/x", vec!["f"; 1900].join("/"));
    let mut p = Package::catalogued("PP/DEEP/2", 1);
    p.add(&deepest, "deeper still");
    let c = Case::zip(&p);
    let t = c.complete("born-digital/deepest-tree.zip");
    let files = c.t.env.state.all_files(t.id).unwrap();
    let d = files.iter().find(|f| f.original_path == deepest).expect("the deepest file on record");
    assert_eq!(d.current_path, deepest);
    // Read from the AIP as it is stored (unpacking it checks every folder above every entry,
    // nineteen hundred times over).
    let aip = std::fs::File::open(c.t.env.aips.root().join(t.aip_key.as_ref().unwrap())).unwrap();
    let (mut content, mut manifest) = (None, String::new());
    for entry in tar::Archive::new(flate2::read::MultiGzDecoder::new(aip)).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if name.ends_with(&format!("/data/{}", d.current_path)) {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
            content = Some(text);
        } else if name.ends_with("/manifest-sha256.txt") {
            std::io::Read::read_to_string(&mut entry, &mut manifest).unwrap();
        }
    }
    assert_eq!(content.as_deref(), Some("deeper still"), "the deepest file in the AIP");
    let line = format!("{}  data/{}", vellum_tests::sha256_hex(b"deeper still"), d.current_path);
    assert!(manifest.lines().any(|l| l == line), "the manifest lists it with its digest");
}

#[test]
fn a_finder_zip_made_by_ditto_style_tools_is_the_same_package() {
    // The same package zipped twice, once with Finder's extras: the same files are stored.
    let c = Case::new();
    finder_zip(&c.path);
    let with_extras = c.complete("born-digital/a.zip");
    let c2 = Case::new();
    let mut plain = Package::default();
    plain.add("metadata/metadata.csv", METADATA).add("objects/letter.txt", "Dear archivist,\n");
    plain.write_zip(&c2.path);
    let without = c2.complete("born-digital/b.zip");
    let digests = |c: &Case, t: &Transfer| {
        let mut d: Vec<(String, Option<String>)> =
            c.t.env
                .state
                .all_files(t.id)
                .unwrap()
                .into_iter()
                .map(|f| (f.original_path.clone(), f.sha256().map(str::to_string)))
                .collect();
        d.sort();
        d
    };
    assert_eq!(digests(&c, &with_extras), digests(&c2, &without));
}
