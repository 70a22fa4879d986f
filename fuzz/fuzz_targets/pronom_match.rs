//! Identification of any bytes with the built-in signatures, containers included (a zip or
//! OLE2 file's entries are read through the store, as in production).
#![no_main]
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use vellum_core::analysis::pronom::{identify_object, FormatIdentifier};
use vellum_fuzz::{OneObject, KEY};

fuzz_target!(|data: &[u8]| {
    static SIGNATURES: OnceLock<Arc<FormatIdentifier>> = OnceLock::new();
    let identifier = SIGNATURES.get_or_init(|| Arc::new(FormatIdentifier::builtin().expect("the built-in signatures")));
    let _ = identify_object(identifier, &OneObject::store(data), KEY, KEY, data.len() as u64);
});
