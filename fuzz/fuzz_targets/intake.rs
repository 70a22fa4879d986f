//! An upload's bytes through intake: the kind sniffed, the archive listed (zip or tar, plain
//! or gzipped), and every check of each shipped profile (Wellcome's packages, Archivematica's
//! standard transfers and bags) run on the listing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vellum_core::config::profile::Config;
use vellum_core::intake::{archive, rules as intake};
use vellum_fuzz::{OneObject, KEY};

fuzz_target!(|data: &[u8]| {
    let config = Config::builtin();
    if let Ok(listing) = archive::list(OneObject::store(data), KEY, data.len() as u64) {
        for profile in &config.profiles {
            let _ = intake::check_package(listing.clone(), profile);
        }
    }
});
