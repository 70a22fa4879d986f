//! DROID byte-sequence syntax to a regular expression: any text, never a panic, and what
//! compiles is a regex the matcher accepts.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(pattern) = std::str::from_utf8(data) else { return };
    if let Ok(re) = vellum_core::analysis::pronom::pattern::to_regex(pattern) {
        let _ = regex::bytes::RegexBuilder::new(&re).size_limit(1 << 22).build();
    }
});
