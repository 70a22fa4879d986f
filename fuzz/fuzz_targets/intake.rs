//! An upload's bytes through intake: the kind sniffed, the archive listed (zip or tar, plain
//! or gzipped), and every check of the born-digital profile run on the listing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vellum_core::config::profile::Config;
use vellum_core::intake::{archive, rules as intake};
use vellum_fuzz::{OneObject, KEY};

fuzz_target!(|data: &[u8]| {
    let config = Config::builtin();
    let profile = config.profile_for_key(KEY).expect("the born-digital profile");
    if let Ok(listing) = archive::list(OneObject::store(data), KEY, data.len() as u64) {
        let _ = intake::check_package(listing, profile);
    }
});
