//! The bad packages of the intake tests, as bytes an archivist could upload: each with the
//! key it is uploaded under, how its transfer must end, and words its reason and log must
//! hold. The intake tests run them in embedded mode; the AWS flow tests run the same ones on
//! the emulator and compare the outcome and the log word for word.

use vellum_core::model::TransferStatus;

use crate::{raw_package, with, write_damaged_zip, write_raw_zip, Package, RawEntry};

pub struct BadPackage {
    pub name: &'static str,
    /// Where it is uploaded, under the uploads bucket.
    pub key: &'static str,
    pub bytes: Vec<u8>,
    pub status: TransferStatus,
    pub words: &'static [&'static str],
    /// Words the log beside the upload holds besides (the layout it shows, say).
    pub log_words: &'static [&'static str],
}

fn zip_of(package: &Package) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("p.zip");
    package.write_zip(&path);
    std::fs::read(path).expect("read the zip back")
}

fn raw_zip(entries: &[RawEntry]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("p.zip");
    write_raw_zip(&path, entries);
    std::fs::read(path).expect("read the zip back")
}

fn package(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut p = Package::default();
    for (name, bytes) in files {
        p.add(name, bytes.to_vec());
    }
    zip_of(&p)
}

fn refused(name: &'static str, key: &'static str, bytes: Vec<u8>, words: &'static [&'static str]) -> BadPackage {
    BadPackage { name, key, bytes, status: TransferStatus::Rejected, words, log_words: &[] }
}

fn failed(name: &'static str, key: &'static str, bytes: Vec<u8>, words: &'static [&'static str]) -> BadPackage {
    BadPackage { name, key, bytes, status: TransferStatus::Failed, words, log_words: &[] }
}

/// Every bad package, built afresh.
pub fn bad_packages() -> Vec<BadPackage> {
    let mut link = RawEntry::file("objects/passwords", "../../../../etc/passwd");
    link.unix_mode = 0o120777;
    let mut secret = RawEntry::file("objects/secret.txt", "scrambled bytes");
    secret.flags |= 1;
    let mut liar = RawEntry::file("objects/liar.txt", "x".repeat(5000));
    liar.deflate = true;
    liar.declared_size = Some(100);
    let truncated = {
        let whole = zip_of(&Package::catalogued("PP/1", 20));
        whole[..whole.len() / 2].to_vec()
    };
    let damaged = {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("damaged.zip");
        write_damaged_zip(&path, "PP/1");
        std::fs::read(path).expect("read the zip back")
    };
    let mut extra = Package::catalogued("PP/1", 1);
    extra.add("metadata/notes.docx", "notes");
    let mut stray = Package::catalogued("PP/2", 1);
    stray.add("notes.txt", "outside");
    vec![
        refused(
            "zip slip",
            "born-digital/slip.zip",
            raw_zip(&with(raw_package("PP/1"), RawEntry::file("objects/../../evil.txt", "x"))),
            &["objects/../../evil.txt", "leads out of its folder"],
        ),
        refused(
            "absolute path",
            "born-digital/absolute.zip",
            raw_zip(&with(raw_package("PP/1"), RawEntry::file("/etc/evil.txt", "x"))),
            &["/etc/evil.txt", "absolute path"],
        ),
        refused(
            "drive letter",
            "born-digital/drive.zip",
            raw_zip(&with(raw_package("PP/1"), RawEntry::file("C:\\Windows\\evil.txt", "x"))),
            &["C:/Windows/evil.txt", "drive letter"],
        ),
        refused(
            "link",
            "born-digital/link.zip",
            raw_zip(&with(raw_package("PP/1"), link)),
            &["objects/passwords", "links"],
        ),
        BadPackage {
            log_words: &["filename,dc.identifier,dc.title", "The layout Vellum expects"],
            ..refused(
                "no metadata",
                "born-digital/no-metadata.zip",
                package(&[("objects/a.txt", b"a")]),
                &["metadata/metadata.csv is missing"],
            )
        },
        refused(
            "wrapped in a folder",
            "born-digital/wrapped.zip",
            package(&[
                ("PP-1/metadata/metadata.csv", b"filename,dc.identifier\nobjects/,PP/1\n"),
                ("PP-1/objects/a.txt", b"a"),
            ]),
            &["inside the folder \"PP-1\""],
        ),
        refused(
            "extra metadata file",
            "born-digital/extra.zip",
            zip_of(&extra),
            &["metadata/notes.docx", "only metadata.csv and rights.csv"],
        ),
        refused(
            "stray file",
            "born-digital/stray.zip",
            zip_of(&stray),
            &["notes.txt", "outside objects/ and metadata/"],
        ),
        refused(
            "Latin-1 metadata.csv",
            "born-digital/latin1.zip",
            package(&[
                ("metadata/metadata.csv", b"filename,dc.identifier,dc.title\nobjects/,PP/1,Caf\xe9\n"),
                ("objects/a.txt", b"a"),
            ]),
            &["not UTF-8"],
        ),
        refused(
            "two metadata rows",
            "born-digital/two-rows.zip",
            package(&[
                ("metadata/metadata.csv", b"filename,dc.identifier\nobjects/,PP/1\nobjects/,PP/2\n"),
                ("objects/a.txt", b"a"),
            ]),
            &["exactly one row describing objects/", "it has 2"],
        ),
        refused(
            "no identifier",
            "born-digital/empty-id.zip",
            package(&[("metadata/metadata.csv", b"filename,dc.identifier\nobjects/,\n"), ("objects/a.txt", b"a")]),
            &["non-empty \"dc.identifier\""],
        ),
        refused(
            "accession without its fields",
            "born-digital-accessions/no-fields.zip",
            package(&[("metadata/metadata.csv", b"filename,dc.identifier\nobjects/,PP/1\n"), ("objects/a.txt", b"a")]),
            &["collection_reference", "accession_number"],
        ),
        refused(
            "wrong prefix",
            "uploads-by-mistake/p.zip",
            zip_of(&Package::catalogued("PP/1", 1)),
            &["not a known location", "born-digital/"],
        ),
        refused("no prefix", "p.zip", zip_of(&Package::catalogued("PP/1", 1)), &["not a known location"]),
        refused("truncated", "born-digital/truncated.zip", truncated, &["cannot be opened", "truncated"]),
        refused(
            "not a zip",
            "born-digital/not-a-zip.zip",
            b"Just a text file with a .zip name.\n".to_vec(),
            &["cannot be opened"],
        ),
        refused(
            "only metadata",
            "born-digital/only-metadata.zip",
            package(&[("metadata/metadata.csv", b"filename,dc.identifier\nobjects/,PP/1\n")]),
            &["no file under objects/"],
        ),
        refused(
            "encrypted entry",
            "born-digital/encrypted.zip",
            raw_zip(&with(raw_package("PP/1"), secret)),
            &["objects/secret.txt", "encrypted"],
        ),
        refused(
            "duplicate entry",
            "born-digital/dup.zip",
            raw_zip(&with(raw_package("PP/1"), RawEntry::file("objects/letter.txt", "a second copy"))),
            &["objects/letter.txt", "more than once"],
        ),
        failed("damaged entry", "born-digital/damaged.zip", damaged, &["objects/damaged.txt", "damaged"]),
        failed(
            "entry lying about its size",
            "born-digital/liar.zip",
            raw_zip(&with(raw_package("PP/1"), liar)),
            &["objects/liar.txt"],
        ),
    ]
}
