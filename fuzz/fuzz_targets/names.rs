//! The name sanitizer: each line a path; every component sanitized, the whole set planned
//! under tight limits, and what the plan gives must be safe and unique.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vellum_core::intake::sanitize;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // One name once each, as intake lets through (it refuses duplicates before planning).
    let paths: Vec<&str> = text.lines().take(256).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    for p in &paths {
        for part in p.split('/') {
            let clean = sanitize::sanitize_component(part);
            assert!(sanitize::is_safe_component(&clean) || clean.is_empty(), "{part:?} -> {clean:?}");
        }
        let _ = vellum_core::intake::rules::unsafe_path_reason(p);
    }
    if let Ok(planned) = sanitize::plan(&paths, 40, 120) {
        let unique: std::collections::BTreeSet<&String> = planned.iter().collect();
        assert_eq!(unique.len(), planned.len(), "two paths planned to one name: {paths:?} -> {planned:?}");
    }
});
