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
    identify_object(&FormatIdentifier::builtin().unwrap(), &store, name, name, bytes.len() as u64).unwrap()
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
