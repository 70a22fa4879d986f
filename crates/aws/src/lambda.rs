//! What a function does with the event Lambda hands it: an SQS batch handled message by
//! message, its failures reported by id (ReportBatchItemFailures), never the whole batch
//! failed for one message. On the start queue a message is S3's notification of uploads.

use std::time::Duration;

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use vellum_core::model::messages::UploadEvent;
use vellum_core::model::Stage;
use vellum_core::pipeline::retry_backoff;
use vellum_core::{Pipeline, StageContext};

/// An S3 notification's records as upload events. S3 sends keys URL-encoded (`+` for a
/// space); `aws_lambda_events` 1.x reads the record but leaves `url_decoded_key` empty, so
/// the core's decoder (with its tests) decodes the key. A test event holds none.
pub fn upload_events(event: &S3Event) -> Vec<UploadEvent> {
    event
        .records
        .iter()
        .filter_map(|r| {
            let object = &r.s3.object;
            Some(UploadEvent {
                bucket: r.s3.bucket.name.clone()?,
                key: match &object.url_decoded_key {
                    Some(decoded) => decoded.clone(),
                    None => vellum_core::model::messages::decode_s3_key(object.key.as_deref()?).ok()?,
                },
                event_name: r.event_name.clone().unwrap_or_default(),
                event_time: r.event_time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                sequencer: object.sequencer.clone().unwrap_or_default(),
                version_id: object.version_id.clone(),
                size: object.size.unwrap_or(0).max(0) as u64,
                transfer_id: None,
            })
        })
        .collect()
}

/// An S3 notification as `aws_lambda_events` reads it. S3 always sends a record's
/// `userIdentity`, `requestParameters` and `responseElements`; an emulator may leave them
/// out, and the type wants them, so absent ones are read as empty.
pub fn parse_s3_event(body: &str) -> Option<S3Event> {
    let mut value: serde_json::Value = serde_json::from_str(body).ok()?;
    for record in value.get_mut("Records")?.as_array_mut()? {
        let record = record.as_object_mut()?;
        for field in ["userIdentity", "requestParameters", "responseElements"] {
            record.entry(field).or_insert_with(|| serde_json::json!({}));
        }
    }
    serde_json::from_value(value).ok()
}

/// The bodies one SQS message stands for on `queue`: on the start queue, an S3 notification
/// (S3 → SQS) holds upload events; anything else is a stage message as it is.
fn bodies(queue: &str, body: &str) -> Vec<String> {
    if queue == Stage::Start.name() {
        if body.contains("\"s3:TestEvent\"") {
            return Vec::new();
        }
        if let Some(event) = parse_s3_event(body) {
            return upload_events(&event)
                .iter()
                .map(|u| serde_json::to_string(u).expect("upload events serialize"))
                .collect();
        }
    }
    vec![body.to_string()]
}

/// The first wait of a message that asked for a retry; each receive doubles it
/// (`retry_backoff`): 30 s, 1, 2, 4 minutes, then the dead-letter queue.
pub const FIRST_RETRY: Duration = Duration::from_secs(30);

/// A stage's SQS batch: every message handled within the invocation's time; those to
/// retry are named in the answer, so SQS gives back only them, each after its backoff (its
/// visibility changed, instead of the queue's whole visibility timeout).
pub fn handle_sqs(p: &Pipeline, stage: Stage, event: &SqsEvent, ctx: StageContext) -> SqsBatchResponse {
    let queue = stage.name();
    let mut response = SqsBatchResponse::default();
    for record in &event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let failed = match crate::sqs::resolve_body(p.working.as_ref(), record.body.as_deref().unwrap_or_default()) {
            Ok(body) => bodies(queue, &body)
                .iter()
                .map(|body| p.handle(stage, body, &ctx))
                .any(|outcome| !outcome.acknowledges()),
            Err(e) => {
                tracing::warn!(queue, error = %e, "a message's body could not be read back; retried");
                true
            }
        };
        if failed {
            if let Some(receipt) = record.receipt_handle.as_deref() {
                let count = record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
                let wait = retry_backoff(FIRST_RETRY, count);
                if let Err(e) = p.queue.nack(queue, receipt, wait, "the stage asked for a retry") {
                    // The message still comes back, after the queue's visibility timeout.
                    tracing::warn!(queue, error = %e, "a retried message's backoff could not be set");
                }
            }
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// The namespace of the metrics Vellum's functions emit.
pub const METRICS_NAMESPACE: &str = "Vellum";

/// One line of CloudWatch's embedded metric format: written to standard output, CloudWatch
/// Logs turns it into metrics in the `Vellum` namespace (no API call, no permission).
fn metric_line(dimension: (&str, &str), metrics: &[(&str, u64)], now_millis: u64) -> String {
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": now_millis,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [[dimension.0]],
                "Metrics": metrics.iter().map(|(name, _)| serde_json::json!({"Name": name, "Unit": "Count"})).collect::<Vec<_>>(),
            }],
        },
        dimension.0: dimension.1,
    });
    for (name, value) in metrics {
        line[*name] = serde_json::json!(value);
    }
    line.to_string()
}

/// How many of a batch's messages the handler gave back: the metric
/// `Vellum/BatchItemFailures` with the dimension `Stage`. Lambda's own `Errors` metric does
/// not count these: the invocation succeeded.
pub fn batch_item_failures_metric(stage: Stage, response: &SqsBatchResponse, now_millis: u64) -> String {
    metric_line(
        ("Stage", stage.name()),
        &[("BatchItemFailures", response.batch_item_failures.len() as u64)],
        now_millis,
    )
}

/// The dashboard's wrong keys and held-back requests since its last line:
/// `Vellum/RefusedCredentials` and `Vellum/ThrottledRequests`, dimension `Function`.
pub fn refused_credentials_metric(refused: vellum_dashboard::throttle::Refusals, now_millis: u64) -> String {
    metric_line(
        ("Function", "dashboard"),
        &[("RefusedCredentials", refused.wrong_credentials), ("ThrottledRequests", refused.throttled)],
        now_millis,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metric line is CloudWatch's embedded metric format: the namespace, the dimension
    /// and the count where CloudWatch reads them.
    #[test]
    fn batch_item_failures_are_a_metric_in_the_embedded_format() {
        let mut response = SqsBatchResponse::default();
        for id in ["a", "b"] {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id.into();
            response.batch_item_failures.push(failure);
        }
        let line: serde_json::Value =
            serde_json::from_str(&batch_item_failures_metric(Stage::Scan, &response, 1_700_000_000_000)).unwrap();
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Vellum");
        assert_eq!(directive["Dimensions"][0][0], "Stage");
        assert_eq!(directive["Metrics"][0]["Name"], "BatchItemFailures");
        assert_eq!(line["Stage"], "scan");
        assert_eq!(line["BatchItemFailures"], 2);
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000u64);
    }

    #[test]
    fn refused_credentials_are_metrics_in_the_embedded_format() {
        let refused = vellum_dashboard::throttle::Refusals { wrong_credentials: 7, throttled: 3 };
        let line: serde_json::Value = serde_json::from_str(&refused_credentials_metric(refused, 5)).unwrap();
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Dimensions"][0][0], "Function");
        let names: Vec<&str> =
            directive["Metrics"].as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap()).collect();
        assert_eq!(names, ["RefusedCredentials", "ThrottledRequests"]);
        assert_eq!((line["RefusedCredentials"].as_u64(), line["ThrottledRequests"].as_u64()), (Some(7), Some(3)));
        assert_eq!(line["Function"], "dashboard");
    }

    /// As moto's S3 sends it to a queue: the key URL-encoded, `/` included.
    const NOTIFICATION: &str = r#"{"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1", "eventTime": "2026-11-27T19:41:56.426Z", "eventName": "ObjectCreated:Put", "s3": {"s3SchemaVersion": "1.0", "configurationId": "c", "bucket": {"name": "vellum-local-uploads", "arn": "arn:aws:s3:::vellum-local-uploads"}, "object": {"key": "born-digital%2FA+B%C3%A9.zip", "size": 1, "eTag": "9dd4"}}}]}"#;

    fn sample(name: &str) -> String {
        std::fs::read_to_string(format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    /// The sample events in `events/` are what the functions read.
    #[test]
    fn the_sample_events_read_as_the_functions_read_them() {
        let s3: S3Event = serde_json::from_str(&sample("s3-object-created.json")).unwrap();
        let uploads = upload_events(&s3);
        assert_eq!(uploads[0].key, "born-digital/PP ABC (draft)/Café.zip");
        assert_eq!(uploads[0].version_id.as_deref(), Some("096fKKXTRTtl3on89fVO.nfljtsv6qko"));
        assert!(bodies(Stage::Start.name(), &sample("s3-test-event.json")).is_empty());
        for queue in Stage::ALL.map(Stage::name) {
            let event: SqsEvent = serde_json::from_str(&sample(&format!("sqs-{queue}.json"))).unwrap();
            assert!(!event.records.is_empty(), "{queue}");
            for record in &event.records {
                for body in bodies(queue, record.body.as_deref().unwrap()) {
                    let readable = serde_json::from_str::<UploadEvent>(&body).is_ok()
                        || serde_json::from_str::<vellum_core::model::messages::StageMessage>(&body).is_ok();
                    assert!(readable, "{queue}: {body}");
                }
            }
        }
    }

    #[test]
    fn notification_keys_are_decoded() {
        let found = bodies(Stage::Start.name(), NOTIFICATION);
        assert_eq!(found.len(), 1);
        let upload: UploadEvent = serde_json::from_str(&found[0]).unwrap();
        assert_eq!(upload.key, "born-digital/A Bé.zip");
        assert_eq!(upload.bucket, "vellum-local-uploads");
        assert_eq!(upload.event_time, "2026-11-27T19:41:56.426Z");
        assert!(
            bodies(Stage::Start.name(), r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#).is_empty(),
            "a test event starts nothing"
        );
    }
}
