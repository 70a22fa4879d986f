//! The BagIt readers: a manifest's lines and their percent-encoded paths, and a bag read
//! from a tar stream (bagit.txt, bag-info.txt, manifests, payload digests).
#![no_main]
use libfuzzer_sys::fuzz_target;
use vellum_core::record::bagit;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(entries) = bagit::parse_manifest(&text) {
        for path in entries.keys() {
            let _ = bagit::decode_path(&bagit::encode_path(path));
        }
    }
    let _ = bagit::verify_tar(data, "bag");
});
