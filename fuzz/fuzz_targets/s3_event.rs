//! An S3 notification as SQS or EventBridge delivers it, and the URL-encoded keys in it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vellum_core::model::messages;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else { return };
    if let Ok(events) = messages::upload_events_from_s3(json) {
        for e in events {
            let _ = e.idempotency_key();
        }
    }
    let _ = messages::decode_s3_key(json);
});
