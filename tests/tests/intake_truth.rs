//! Intake that cannot be fooled: what is stored is exactly what was uploaded, file by file
//! and byte for byte, with every original name; whatever cannot be stored that way is
//! refused at intake with the true reason. One test per way a package tried to get past.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use vellum_core::model::{Transfer, TransferStatus};
use vellum_core::ports::{EventLog, FileCatalogue};
use vellum_tests::{raw_package, tar_gz, tools_required, with, Case, Package, RawEntry};

/// The stored bytes of the file whose original name is `original`.
fn stored(c: &Case, t: &Transfer, bag: &Path, original: &str) -> Vec<u8> {
    let files = c.t.env.state.all_files(t.id).unwrap();
    let f = files.iter().find(|f| f.original_path == original).unwrap_or_else(|| {
        panic!("no file recorded under {original:?}: {:?}", files.iter().map(|f| &f.original_path).collect::<Vec<_>>())
    });
    std::fs::read(bag.join("data").join(&f.current_path)).unwrap()
}

/// GNU tar, which writes the sparse members that archivists' tools make.
fn gnu_tar() -> &'static str {
    let ok = Command::new("tar")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("GNU tar"));
    assert!(ok, "this test needs GNU tar: run it through scripts/test, which installs it");
    "tar"
}

#[test]
#[ignore = "needs GNU tar and bagit-python; scripts/test runs it"]
fn sparse_tar_members_are_stored_as_the_files_they_stand_for() {
    let tar = gnu_tar();
    let src = tempfile::tempdir().unwrap();
    for folder in ["objects", "metadata"] {
        std::fs::create_dir_all(src.path().join(folder)).unwrap();
    }
    std::fs::write(src.path().join("metadata/metadata.csv"), "filename,dc.identifier\nobjects/,PP/SPARSE/1\n").unwrap();
    // 8 MiB with data in three places and holes between: a disk image, say.
    let mut image = vec![0u8; 8 << 20];
    image[1_000_000..1_000_005].copy_from_slice(b"hello");
    image[5_000_000..5_010_000].fill(0xA5);
    let n = image.len();
    image[n - 3..].copy_from_slice(b"end");
    {
        let mut f = std::fs::File::create(src.path().join("objects/sparse.img")).unwrap();
        // Written with seeks, so the file system holds it sparse and tar -S finds the holes.
        use std::io::{Seek, SeekFrom};
        for (at, bytes) in [
            (1_000_000u64, &image[1_000_000..1_000_005]),
            (5_000_000, &image[5_000_000..5_010_000]),
            (n as u64 - 3, &image[n - 3..]),
        ] {
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(bytes).unwrap();
        }
    }
    for (style, args) in [
        ("pax-1.0", vec!["--format=posix", "--sparse-version=1.0"]),
        ("pax-0.1", vec!["--format=posix", "--sparse-version=0.1"]),
        ("pax-0.0", vec!["--format=posix", "--sparse-version=0.0"]),
        ("gnu", vec!["--format=gnu"]),
    ] {
        let c = Case::new();
        let status = Command::new(tar)
            .args(&args)
            .args(["-S", "-cf"])
            .arg(&c.path)
            .arg("-C")
            .arg(src.path())
            .args(["metadata", "objects"])
            .status()
            .unwrap();
        assert!(status.success(), "{style}");
        let t = c.complete(&format!("born-digital/sparse-{style}.tar"));
        let bag = c.bag(&t);
        let got = stored(&c, &t, &bag, "objects/sparse.img");
        assert_eq!(got.len(), image.len(), "{style}: the real size, not the map's");
        assert!(got == image, "{style}: every byte as in the file");
        let names: Vec<String> = c.t.env.state.all_files(t.id).unwrap().into_iter().map(|f| f.original_path).collect();
        assert!(!names.iter().any(|n| n.contains("GNUSparseFile")), "{style}: {names:?}");
    }
}

/// A zip whose central directory names `copies` entries that all point at one local
/// header of a megabyte of zeros: 213 KB that would write gigabytes.
fn overlapping_zip(path: &Path, copies: usize) {
    let mut entries = raw_package("PP/OVERLAP/1");
    let mut zeros = RawEntry::file("objects/zeros.bin", vec![0u8; 1 << 20]);
    zeros.deflate = true;
    entries.push(zeros);
    vellum_tests::write_raw_zip(path, &entries);
    let mut bytes = std::fs::read(path).unwrap();
    // The central directory record of objects/zeros.bin, copied under new names.
    let cd_sig = [0x50u8, 0x4b, 0x01, 0x02];
    let eocd = bytes.windows(4).rposition(|w| w == [0x50, 0x4b, 0x05, 0x06]).unwrap();
    let cd_start = u32::from_le_bytes(bytes[eocd + 16..eocd + 20].try_into().unwrap()) as usize;
    let records: Vec<usize> = (cd_start..eocd).filter(|&i| bytes[i..i + 4] == cd_sig).collect();
    let last = *records.last().unwrap();
    let template = bytes[last..eocd].to_vec();
    let mut extra = Vec::new();
    for i in 0..copies {
        let name = format!("objects/copy-{i:03}.bin");
        let mut rec = template[..46].to_vec();
        rec[28..30].copy_from_slice(&(name.len() as u16).to_le_bytes());
        rec.extend_from_slice(name.as_bytes());
        extra.extend_from_slice(&rec);
    }
    let mut eocd_rec = bytes[eocd..].to_vec();
    let count = (records.len() + copies) as u16;
    eocd_rec[8..10].copy_from_slice(&count.to_le_bytes());
    eocd_rec[10..12].copy_from_slice(&count.to_le_bytes());
    let cd_size = (eocd - cd_start + extra.len()) as u32;
    eocd_rec[12..16].copy_from_slice(&cd_size.to_le_bytes());
    bytes.truncate(eocd);
    bytes.extend_from_slice(&extra);
    bytes.extend_from_slice(&eocd_rec);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn entries_that_share_their_bytes_are_refused_before_anything_is_extracted() {
    let c = Case::new();
    overlapping_zip(&c.path, 30);
    c.refused("born-digital/overlap.zip", &["share their bytes", "objects/copy-000.bin"]);
    let working = c.t.dir.path().join("working");
    let written: u64 = vellum_tests::files_under(&working).iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    assert!(written < 1 << 20, "nothing extracted: {written} bytes in the working area");
}

#[test]
fn two_spellings_of_one_path_are_refused_at_intake() {
    let spellings: [(&str, RawEntry); 3] = [
        ("backslash", RawEntry::file("objects\\letter.txt", "another letter")),
        ("dot-step", RawEntry::file("objects/./letter.txt", "another letter")),
        ("empty-step", RawEntry::file("objects//letter.txt", "another letter")),
    ];
    for (style, entry) in spellings {
        let c = Case::raw(&with(raw_package("PP/TWICE/1"), entry));
        c.refused(&format!("born-digital/{style}.zip"), &["objects/letter.txt", "more than once"]);
    }
    // One name in UTF-8 (flagged) and the same name in code page 437 (not flagged).
    let mut entries = raw_package("PP/TWICE/2");
    entries.push(RawEntry::file("objects/café.txt", "utf-8"));
    let mut cp437 = RawEntry::file("", "cp437");
    cp437.name = b"objects/caf\x82.txt".to_vec();
    cp437.flags = 0;
    entries.push(cp437);
    Case::raw(&entries).refused("born-digital/encodings.zip", &["objects/café.txt", "more than once"]);
}

#[test]
fn dot_and_empty_steps_invent_no_folders() {
    let mut entries = raw_package("PP/STEPS/1");
    entries.push(RawEntry::file("objects/./a/.//b.txt", "b"));
    let c = Case::raw(&entries);
    let t = c.complete("born-digital/steps.zip");
    let files = c.t.env.state.all_files(t.id).unwrap();
    let b = files.iter().find(|f| f.original_path == "objects/a/b.txt").expect("recorded under its one path");
    assert_eq!(b.current_path, "objects/a/b.txt", "no `_` folders");
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn windows_backslashes_are_folders_everywhere() {
    // As PowerShell's Compress-Archive writes a package.
    let entries = vec![
        RawEntry::file("metadata\\metadata.csv", "filename,dc.identifier\nobjects/,PP/PS/1\n"),
        RawEntry::file("objects\\reports\\2024.txt", "annual report"),
    ];
    let c = Case::raw(&entries);
    let t = c.complete("born-digital/compress-archive.zip");
    assert_eq!(t.identifiers.catalogue_identifier.as_deref(), Some("PP/PS/1"));
    assert_eq!(stored(&c, &t, &c.bag(&t), "objects/reports/2024.txt"), b"annual report");
}

#[test]
fn every_refusal_names_its_reason() {
    // metadata.csv is there, but cannot be read from the index: encrypted.
    let mut entries = raw_package("PP/1");
    entries[0].flags |= 1;
    let log = Case::raw(&entries).refused("born-digital/secret-metadata.zip", &["metadata/metadata.csv"]);
    assert!(!log.contains("0 check(s) failed"), "{log}");
}

#[test]
fn identifiers_that_name_no_safe_place_are_refused_at_intake() {
    for (n, identifier) in ["../../../tmp/x", "/tmp/x", "PP//1", "PP/./1"].iter().enumerate() {
        let mut p = Package::catalogued(identifier, 1);
        p.entries[0].bytes = format!("filename,dc.identifier\nobjects/,{identifier}\n").into_bytes();
        let c = Case::zip(&p);
        c.refused(&format!("born-digital/id-{n}.zip"), &["cannot name a storage location"]);
    }
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn names_cannot_forge_log_lines() {
    let evil = "objects/report\n2026-01-01 objects/x -> objects/forged.txt";
    let mut p = Package::catalogued("PP/FORGE/1", 1);
    p.add(evil, "bytes");
    let c = Case::zip(&p);
    let t = c.complete("born-digital/forge.zip");
    let bag = c.bag(&t);
    let log = std::fs::read_to_string(bag.join("data/logs/filenameChanges.log")).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 1, "one renamed file, one line: {log}");
    assert!(lines[0].starts_with("objects/report\\n2026-01-01"), "the newline is written as an escape: {log}");
    assert_eq!(stored(&c, &t, &bag, evil), b"bytes", "the original name is on record as it was");

    // The refused side: a name with a carriage return in a failed log.
    let c = Case::raw(&with(raw_package("PP/1"), RawEntry::file("/abs\rolute.txt", "x")));
    let log = c.refused("born-digital/forge-failed.zip", &["absolute path"]);
    assert!(!log.contains('\r'), "{log:?}");
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn tar_names_that_are_not_utf8_keep_their_bytes() {
    use tar::EntryType::Regular;
    let c = Case::new();
    let metadata: &[u8] = b"filename,dc.identifier\nobjects/,PP/LATIN/1\n";
    std::fs::write(
        &c.path,
        tar_gz(
            &[("metadata/metadata.csv", metadata, Regular), ("objects/caf\u{e9}.txt", b"latin-1 name", Regular)],
            false,
        ),
    )
    .unwrap();
    // tar_gz writes names as UTF-8: make this one the single Latin-1 byte é is.
    let mut bytes = std::fs::read(&c.path).unwrap();
    let at = bytes.windows(11).position(|w| w == "objects/caf".as_bytes()).unwrap() + 11;
    assert_eq!(&bytes[at..at + 2], "é".as_bytes());
    bytes.remove(at + 1);
    bytes[at] = 0xE9;
    bytes.insert(at + 5 + 90, 0); // keep the header's 100-byte name field the same length
                                  // The header checksum covers the name: recompute it.
    let header_start = at - 11 - (at - 11) % 512;
    let header = &mut bytes[header_start..header_start + 512];
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| b as u32).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    std::fs::write(&c.path, &bytes).unwrap();
    let t = c.complete("born-digital/latin1.tar");
    let bag = c.bag(&t);
    assert_eq!(stored(&c, &t, &bag, "objects/caf%E9.txt"), b"latin-1 name", "the byte is kept, percent-encoded");
    let mets = std::fs::read_to_string(bag.join(format!("data/METS.{}.xml", t.aip_uuid))).unwrap();
    assert!(mets.contains("%transferDirectory%objects/caf%E9.txt"), "on the PREMIS object");
    assert!(!mets.contains('\u{fffd}'), "no replacement character anywhere");
}

/// The div of `parent` labelled `label`.
fn div<'a, 'i>(parent: roxmltree::Node<'a, 'i>, label: &str) -> Option<roxmltree::Node<'a, 'i>> {
    parent.children().find(|n| n.has_tag_name("div") && n.attribute("LABEL") == Some(label))
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn empty_folders_are_recorded_as_left_out() {
    let mut p = Package::catalogued("PP/EMPTY/2", 1);
    p.add("objects/empty/", "").add("objects/nested/deeper/", "");
    let c = Case::zip(&p);
    let t = c.complete("born-digital/empty-folders.zip");
    let success = c.log("born-digital/empty-folders.zip", "accepted");
    assert!(success.contains("empty folder(s) left out"), "{success}");
    let events = c.t.env.state.transfer_events(t.id).unwrap();
    let left: Vec<&str> =
        events.iter().filter(|e| e.event_type == "deletion").map(|e| e.outcome_detail.as_str()).collect();
    assert_eq!(left.len(), 2, "objects/empty and objects/nested/deeper, the folder entries: {left:?}");
    let bag = c.bag(&t);
    let log = std::fs::read_to_string(bag.join("data/logs/leftOut.log")).unwrap();
    for folder in ["objects/empty\t", "objects/nested/deeper\t"] {
        assert!(log.contains(folder) && log.contains("an empty folder"), "{log}");
    }
    // The METS keeps them where they were, as empty divs of its structMap.
    let mets = std::fs::read_to_string(bag.join(format!("data/METS.{}.xml", t.aip_uuid))).unwrap();
    let doc = roxmltree::Document::parse(&mets).unwrap();
    let root = doc.descendants().find(|n| n.has_tag_name("structMap")).unwrap().first_element_child().unwrap();
    let objects = div(root, "objects").expect("the objects div");
    let empty = div(objects, "empty").expect("objects/empty as a div");
    assert_eq!(empty.attribute("TYPE"), Some("Directory"));
    assert_eq!(empty.children().filter(|n| n.is_element()).count(), 0, "with nothing in it");
    let deeper = div(div(objects, "nested").expect("objects/nested"), "deeper").expect("objects/nested/deeper");
    assert_eq!(deeper.children().filter(|n| n.is_element()).count(), 0);
}

#[test]
fn spreadsheet_csvs_are_read_as_saved_or_refused_for_the_real_cause() {
    let with_metadata = |bytes: Vec<u8>| {
        let mut p = Package::default();
        p.add("metadata/metadata.csv", bytes).add("objects/a.txt", "a");
        Case::zip(&p)
    };
    let t = with_metadata(b"Filename,DC.Identifier,DC.Title\r\nobjects/,PP/XL/1,Excel\r\n".to_vec())
        .complete("born-digital/excel-case.zip");
    assert_eq!(t.identifiers.catalogue_identifier.as_deref(), Some("PP/XL/1"));
    assert_eq!(t.identifiers.dublin_core.get("title").map(String::as_str), Some("Excel"));
    let mut utf16 = vec![0xFF, 0xFE];
    for u in "filename\tdc.identifier\r\nobjects/\tPP/XL/2\r\n".encode_utf16() {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    let t = with_metadata(utf16).complete("born-digital/unicode-text.zip");
    assert_eq!(t.identifiers.catalogue_identifier.as_deref(), Some("PP/XL/2"));
    let t = with_metadata(b"sep=;\r\nfilename;dc.identifier\r\nobjects/;PP/XL/3\r\n".to_vec())
        .complete("born-digital/sep.zip");
    assert_eq!(t.identifiers.catalogue_identifier.as_deref(), Some("PP/XL/3"));
    with_metadata(b"filename;dc.identifier\r\nobjects/;PP/XL/4\r\n".to_vec())
        .refused("born-digital/semicolons.zip", &["separated by semicolons"]);
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn the_format_comes_from_the_bytes_not_the_extension() {
    use tar::EntryType::Regular;
    let entries: &[(&str, &[u8], tar::EntryType)] = &[
        ("metadata/metadata.csv", b"filename,dc.identifier\nobjects/,PP/EXT/1\n", Regular),
        ("objects/a.txt", b"a", Regular),
    ];
    for (key, gzip, said) in [
        ("born-digital/plain.tgz", false, "a plain (uncompressed) tar"),
        ("born-digital/zipped.tar", true, "a gzipped tar"),
    ] {
        let c = Case::new();
        std::fs::write(&c.path, tar_gz(entries, gzip)).unwrap();
        let t = c.complete(key);
        assert_eq!(stored(&c, &t, &c.bag(&t), "objects/a.txt"), b"a");
        let log = c.log(key, "accepted");
        assert!(log.contains(said), "{log}");
    }
    // A zip named .tar.gz.
    let c = Case::zip(&Package::catalogued("PP/EXT/2", 2));
    c.complete("born-digital/really-a-zip.tar.gz");
}

// ---- The property: random trees, packed as the usual tools pack them ----

/// A small deterministic generator, so a failing tree can be made again from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const NAME_PARTS: &[&str] = &[
    "report",
    "Letter to A. B.",
    "café",
    "Cafe\u{301}",
    "日本語",
    "naïve résumé",
    "CON",
    "trailing.",
    "a b",
    "a_b",
    "quote\"star*",
    "emoji 📁",
    "x",
    "Ünïcödé",
    ".hidden",
    "semi;colon",
    "percent%41",
    "tab\there",
    "long",
];
const EXTENSIONS: &[&str] = &[".txt", ".pdf", ".docx", "", ".tar.gz", ".JPG"];

/// A random tree: relative paths under objects/ and their bytes. No path is both a file
/// and a folder.
fn random_tree(rng: &mut Rng) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..1 + rng.below(10) {
        let depth = rng.below(4);
        let mut parts: Vec<String> = (0..depth).map(|_| rng.pick(NAME_PARTS).to_string()).collect();
        let mut name = rng.pick(NAME_PARTS).to_string();
        if name == "long" {
            name = "long name ".repeat(20 + rng.below(20));
        }
        name.push_str(&format!(" {i}{}", rng.pick(EXTENSIONS)));
        parts.push(name);
        let size = [0, 1, 100, 5000, 70_000][rng.below(5)];
        let bytes: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
        files.push((format!("objects/{}", parts.join("/")), bytes));
    }
    let folders: std::collections::BTreeSet<String> = files
        .iter()
        .flat_map(|(p, _)| p.match_indices('/').map(|(i, _)| p[..i].to_string()).collect::<Vec<_>>())
        .collect();
    files.retain(|(p, _)| !folders.contains(p));
    files
}

fn write_with_tool(style: &str, dir: &Path, out: &Path, tree: &[(String, Vec<u8>)], metadata: &[u8]) -> bool {
    let mut all: Vec<(String, Vec<u8>)> = vec![("metadata/metadata.csv".into(), metadata.to_vec())];
    all.extend(tree.iter().cloned());
    match style {
        "zip-crate" => {
            let mut p = Package::default();
            for (n, b) in &all {
                p.add(n, b.clone());
            }
            p.write_zip(out);
        }
        "tar" | "tar.gz" => {
            let mut builder = tar::Builder::new(Vec::new());
            for (n, b) in &all {
                let mut h = tar::Header::new_gnu();
                h.set_size(b.len() as u64);
                h.set_mode(0o644);
                builder.append_data(&mut h, n, b.as_slice()).unwrap();
            }
            let bytes = builder.into_inner().unwrap();
            let bytes = if style == "tar" {
                bytes
            } else {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&bytes).unwrap();
                gz.finish().unwrap()
            };
            std::fs::write(out, bytes).unwrap();
        }
        "info-zip" | "7-zip" => {
            for (n, b) in &all {
                let p = dir.join(n);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, b).unwrap();
            }
            let (program, args): (&str, &[&str]) =
                if style == "info-zip" { ("zip", &["-q", "-r"]) } else { ("7zz", &["a", "-tzip", "-bso0"]) };
            let Ok(status) =
                Command::new(program).args(args).arg(out).args(["metadata", "objects"]).current_dir(dir).status()
            else {
                assert!(!tools_required(), "{program} is required (scripts/setup installs it)");
                return false;
            };
            assert!(status.success(), "{program} made the zip");
        }
        other => unreachable!("{other}"),
    }
    true
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn random_trees_are_stored_byte_for_byte_with_every_original_name_or_refused() {
    let styles = ["zip-crate", "tar", "tar.gz", "info-zip", "7-zip"];
    for seed in 1..=15u64 {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let tree = random_tree(&mut rng);
        let style = styles[(seed as usize) % styles.len()];
        let c = Case::new();
        let dir = tempfile::tempdir().unwrap();
        let metadata = format!("filename,dc.identifier\nobjects/,PP/PROP/{seed}\n");
        if !write_with_tool(style, dir.path(), &c.path, &tree, metadata.as_bytes()) {
            continue;
        }
        let ext = if style.starts_with("tar") { style } else { "zip" };
        let t = c.ingest(&format!("born-digital/prop-{seed}.{ext}"));
        let names: Vec<&String> = tree.iter().map(|(n, _)| n).collect();
        match t.status {
            TransferStatus::Complete => {
                let bag = c.bag(&t);
                for (name, bytes) in &tree {
                    let got = stored(&c, &t, &bag, name);
                    assert!(
                        got == *bytes,
                        "seed {seed} ({style}): {name:?} differs ({} vs {} bytes)",
                        got.len(),
                        bytes.len()
                    );
                }
                let recorded = c.t.env.state.all_files(t.id).unwrap().len();
                assert_eq!(
                    recorded,
                    tree.len() + 1,
                    "seed {seed} ({style}): every file and metadata.csv, once: {names:?}"
                );
            }
            TransferStatus::Rejected => {
                let reason = t.failure_reason.clone().unwrap_or_default();
                assert!(reason.len() > "the package was refused: ".len(), "seed {seed} ({style}): {reason:?}");
                eprintln!("seed {seed} ({style}) refused: {reason}");
            }
            other => panic!(
                "seed {seed} ({style}): {other:?}, {:?} — never FAILED for what the index shows: {names:?}",
                t.failure_reason
            ),
        }
    }
}

#[test]
fn devices_and_pipes_are_refused() {
    let mut fifo = RawEntry::file("objects/pipe", "");
    fifo.unix_mode = 0o010644;
    Case::raw(&with(raw_package("PP/1"), fifo)).refused("born-digital/fifo.zip", &["objects/pipe", "devices, pipes"]);
}

#[test]
fn archives_vellum_does_not_read_are_named_for_what_they_are() {
    for (name, bytes, said) in [
        ("seven.zip", b"7z\xbc\xaf\x27\x1c\x00\x04rest of a 7z archive".to_vec(), "a 7-Zip (.7z) archive"),
        ("bzipped.tar.gz", b"BZh91AY&SYrest of a bzip2 stream".to_vec(), "compressed with bzip2"),
        ("rar.zip", b"Rar!\x1a\x07\x01\x00rest".to_vec(), "a RAR archive"),
    ] {
        let c = Case::new();
        std::fs::write(&c.path, bytes).unwrap();
        c.refused(&format!("born-digital/{name}"), &[said, "make a .zip"]);
    }
}
