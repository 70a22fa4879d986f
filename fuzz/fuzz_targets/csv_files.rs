//! metadata.csv for both kinds of package, and rights.csv (read, and checked against the
//! names the metadata.csv bytes list as if they were files).
#![no_main]
use libfuzzer_sys::fuzz_target;
use vellum_core::config::profile::PackageKind;
use vellum_core::intake::metadata;
use vellum_core::record::rights;

fuzz_target!(|data: &[u8]| {
    let _ = metadata::parse_metadata_csv(data, PackageKind::Catalogued);
    let _ = metadata::parse_metadata_csv(data, PackageKind::Accession);
    let _ = rights::rows_by_file(data, PackageKind::Bag);
    let text = String::from_utf8_lossy(data);
    let files: std::collections::BTreeSet<&str> = text.lines().take(64).collect();
    let _ = rights::check_rights_csv(data, &files, PackageKind::Bag);
});
