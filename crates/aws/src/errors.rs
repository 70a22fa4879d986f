//! AWS errors, classified once, at the edge of the SDK: a throttle, a 5xx or a timeout is
//! worth a retry; a missing key or item is `NotFound`; a failed condition is `Conflict`;
//! anything else the service refused as asked.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use vellum_core::ports::PortError;

const TRANSIENT_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

const NOT_FOUND_CODES: &[&str] = &[
    "NoSuchKey",
    "NotFound",
    "NoSuchBucket",
    "ResourceNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
];

const CONFLICT_CODES: &[&str] =
    &["ConditionalCheckFailedException", "PreconditionFailed", "TransactionCanceledException"];

/// The port's class of an SDK error, with what was being done.
pub fn port_error<E>(doing: &str, e: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status_code = e.raw_response().map(|r| r.status().as_u16());
    let code = e.code().map(str::to_string);
    let text = match (&code, e.message()) {
        (Some(c), Some(m)) => format!("{doing}: {c}: {m}"),
        (Some(c), None) => format!("{doing}: {c}"),
        _ => format!("{doing}: {}", aws_smithy_error_text(&e)),
    };
    match (&e, code.as_deref(), status_code) {
        (SdkError::ServiceError(_), Some(c), _) if NOT_FOUND_CODES.contains(&c) => PortError::NotFound(text),
        (SdkError::ServiceError(_), Some(c), _) if CONFLICT_CODES.contains(&c) => PortError::Conflict(text),
        (SdkError::ServiceError(_), Some(c), _) if TRANSIENT_CODES.contains(&c) => PortError::Unavailable(text),
        (SdkError::ServiceError(_), _, Some(404)) => PortError::NotFound(text),
        (SdkError::ServiceError(_), _, Some(412)) => PortError::Conflict(text),
        (SdkError::ServiceError(_), _, Some(s)) if s >= 500 || s == 429 => PortError::Unavailable(text),
        (SdkError::ServiceError(_), _, _) => PortError::Refused(text),
        // Timeouts, connections that failed, responses that could not be read.
        _ => PortError::Unavailable(text),
    }
}

fn aws_smithy_error_text<E: std::error::Error + 'static>(e: &SdkError<E, HttpResponse>) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}
