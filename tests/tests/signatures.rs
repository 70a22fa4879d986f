//! Every signature Vellum ships compiles (the whole DROID byte-pattern syntax: multi-byte
//! ranges, bit masks), and the formats that need that syntax are identified, each from a
//! sample built by hand to the format's own layout.

use std::sync::Arc;

use vellum_core::analysis::pronom::{identify_object, FormatIdentifier};
use vellum_core::ports::ObjectStore;
use vellum_local::fs_store::FsObjectStore;

fn identify(name: &str, bytes: &[u8]) -> vellum_core::analysis::pronom::Identification {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), bytes).unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(FsObjectStore::new(dir.path(), "d").unwrap());
    identify_object(&vellum_tests::identifier(), &store, name, name, bytes.len() as u64).unwrap()
}

#[test]
fn no_shipped_signature_is_skipped() {
    let identifier = FormatIdentifier::builtin().unwrap();
    assert!(identifier.skipped.is_empty(), "skipped: {:?}", identifier.skipped);
}

/// A Windows Portable Executable: "MZ", the PE header at 0x80, its optional header's magic
/// (0x10B for 32 bit, 0x20B for 64), and a subsystem version within 0x0000–0x1000.
fn portable_executable(magic: [u8; 2]) -> Vec<u8> {
    let mut b = vec![0u8; 512];
    b[0..2].copy_from_slice(b"MZ");
    b[0x3C] = 0x80;
    b[0x80..0x84].copy_from_slice(b"PE\0\0");
    b[0x84..0x86].copy_from_slice(&[0x4C, 0x01]);
    b[0x98..0x9A].copy_from_slice(&magic);
    b[0xDC..0xDE].copy_from_slice(&[0x00, 0x06]);
    b
}

#[test]
fn portable_executables_are_told_apart_by_their_range_signatures() {
    let pe32 = identify("tool.exe", &portable_executable([0x0B, 0x01]));
    assert_eq!(pe32.format.map(|f| f.puid).as_deref(), Some("fmt/899"), "{:?}", pe32.others);
    let pe64 = identify("tool64.exe", &portable_executable([0x0B, 0x02]));
    assert_eq!(pe64.format.map(|f| f.puid).as_deref(), Some("fmt/900"), "{:?}", pe64.others);
}

#[test]
fn an_hfs_volume_is_identified_by_its_masked_signature() {
    // The volume header at 1024: "BD", then (12 bytes on) the block size's high half 0x0003,
    // then (6 on) a byte with bit 0 clear and a zero.
    let mut b = vec![0u8; 4096];
    b[1024..1026].copy_from_slice(b"BD");
    b[1038..1040].copy_from_slice(&[0x00, 0x03]);
    b[1046..1048].copy_from_slice(&[0x02, 0x00]);
    let hfs = identify("disk.img", &b);
    assert_eq!(hfs.format.map(|f| f.puid).as_deref(), Some("fmt/1105"), "{:?}", hfs.others);
}

#[test]
fn word_templates_and_protected_documents_are_identified_by_their_flag_bits() {
    let puid = |flags: [u8; 2]| {
        let id = identify("w.doc", &vellum_tests::word97(flags));
        assert_eq!(id.basis, "container", "{id:?}");
        id.format.map(|f| f.puid).unwrap_or_default()
    };
    assert_eq!(puid([0x00, 0x00]), "fmt/40", "a plain Word 97 document");
    assert_eq!(puid([0x01, 0x00]), "x-fmt/45", "a template (fDot)");
    assert_eq!(puid([0x00, 0x01]), "fmt/754", "password protected (fEncrypted)");
    assert_eq!(puid([0x01, 0x01]), "fmt/755", "a password-protected template");
}

/// The built-in signature files are today's PRONOM (newer than opf-fido's v109), and every
/// identification says which it used.
#[test]
fn the_built_in_signatures_are_newer_than_v109() {
    let identifier = vellum_tests::identifier();
    let version: u32 = identifier
        .version
        .split(';')
        .next()
        .unwrap()
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap();
    assert!(version > 109, "{}", identifier.version);
    assert!(identifier.version.contains("container-signature-2024"), "{}", identifier.version);
}

/// A file no signature matches, as siegfried calls it: a name is read only for a format
/// without signatures that alone claims its extension; else text is plain text (x-fmt/111)
/// in each encoding; else nothing is said.
#[test]
fn without_a_signature_text_is_plain_text_and_only_an_unambiguous_extension_is_read() {
    for (name, bytes) in [
        ("notes", &b"plain words\n"[..]),
        ("lettre", b"caf\xe9 au lait, fran\xe7ais\n"),
        ("menu", "café au lait\n".as_bytes()),
        ("wide", b"\xff\xfeh\x00i\x00\n\x00"),
    ] {
        let found = identify(name, bytes);
        assert_eq!(found.format.as_ref().map(|f| f.puid.as_str()), Some("x-fmt/111"), "{name}: {found:?}");
        assert_eq!(found.basis, "text", "{name}");
        assert!(found.format.unwrap().tentative, "{name}: a guess from the bytes, not a signature");
    }
    let noise = [0x13u8, 0x37, 0x00, 0x42, 0x99, 0x01];
    // A PDF would have matched PDF's signature: a .pdf without one is no PDF.
    let not_pdf = identify("scan.pdf", &noise);
    assert_eq!((not_pdf.format, not_pdf.basis), (None, "none"));
    // Several Word-processor formats without signatures share .doc: nothing is said, and
    // the candidates are listed.
    let ambiguous = identify("report.doc", &noise);
    assert_eq!((ambiguous.format.clone(), ambiguous.basis), (None, "none"), "{ambiguous:?}");
    assert!(ambiguous.others.len() > 1, "the candidates are listed: {:?}", ambiguous.others);
    // Markdown alone claims .md and has no signature: the name is read, tentatively.
    let markdown = identify("README.md", &noise);
    assert_eq!(markdown.format.as_ref().map(|f| f.puid.as_str()), Some("fmt/1149"), "{markdown:?}");
    assert_eq!(markdown.basis, "extension");
}

/// An OpenDocument file is told by what is inside it even though its own signature
/// outranks ZIP's: the container signatures run whenever a ZIP signature matched.
#[test]
fn an_opendocument_spreadsheet_is_told_by_its_container() {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("mimetype", stored).unwrap();
    zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet").unwrap();
    zip.start_file("META-INF/manifest.xml", stored).unwrap();
    zip.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\" manifest:version=\"1.3\"><manifest:file-entry manifest:full-path=\"/\" manifest:version=\"1.3\" manifest:media-type=\"application/vnd.oasis.opendocument.spreadsheet\"/></manifest:manifest>").unwrap();
    zip.start_file("content.xml", stored).unwrap();
    zip.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<office:document-content xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" office:version=\"1.3\"><office:body/></office:document-content>").unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    let found = identify("accounts.ods", &bytes);
    assert_eq!(found.format.as_ref().map(|f| f.puid.as_str()), Some("fmt/1755"), "{found:?}");
    assert_eq!(found.basis, "container");
}
