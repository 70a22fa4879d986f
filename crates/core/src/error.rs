//! The one error type of stage logic. An error keeps its cause (a port's error, an I/O
//! error) or, where stage logic judged it, the reason in words an archivist can act on; it
//! is classified once, at the edge (`StageError::class`, called by the pipeline's `settle`):
//! refused, failed for good, retried, or superseded by another delivery.

use crate::ports::PortError;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// Intake refused the package: the transfer ends REJECTED with this reason.
    #[error("{0}")]
    Rejected(String),
    /// A later microservice failed for good: the transfer ends FAILED with this reason.
    #[error("{0}")]
    Failed(String),
    /// Throttling, a service that did not answer, state not there yet: retry the message.
    #[error("{0}")]
    Transient(String),
    /// Another delivery of the same message moved the state first (a checkpoint or marker
    /// was no longer where this one expected it): that delivery carries the work on, so
    /// this one is done and must not be retried into a dead-letter queue.
    #[error("{0}")]
    Superseded(String),
    /// A port's error, kept as the adapter gave it; its class decides at the edge.
    #[error("{}", port_reason(.0))]
    Port(#[from] PortError),
    /// An I/O error outside any port: transient.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// What the edge does with a stage's error: the one place an error is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The package is refused: the transfer ends REJECTED.
    Refuse,
    /// The transfer ends FAILED with the reason; retrying would change nothing.
    Fail,
    /// Give the message back; it is delivered again (and dead-lettered after the queue's
    /// receive limit).
    Retry,
    /// Another delivery carries the work on: acknowledge this one.
    Superseded,
}

impl StageError {
    /// A port's error keeps its class: only an unavailable service is worth a retry.
    /// Something missing or unreadable will not mend by being asked again, so the transfer
    /// fails with the reason (and its record stays, readable); a lost race is another
    /// delivery's work.
    pub fn class(&self) -> ErrorClass {
        match self {
            StageError::Rejected(_) => ErrorClass::Refuse,
            StageError::Failed(_) => ErrorClass::Fail,
            StageError::Transient(_) | StageError::Io(_) => ErrorClass::Retry,
            StageError::Superseded(_) => ErrorClass::Superseded,
            StageError::Port(e) => match e {
                PortError::Unavailable(_) => ErrorClass::Retry,
                PortError::Conflict(_) => ErrorClass::Superseded,
                PortError::NotFound(_) | PortError::Refused(_) | PortError::Corrupt(_) => ErrorClass::Fail,
            },
        }
    }
}

/// The words a port's error is told in, on the transfer's record and in the logs.
fn port_reason(e: &PortError) -> String {
    match e {
        PortError::Unavailable(_) | PortError::Conflict(_) => e.to_string(),
        PortError::NotFound(what) => {
            format!("something this step needs is missing ({what}); the upload is untouched")
        }
        PortError::Refused(what) => format!("the store refused a write: {what}"),
        PortError::Corrupt(what) => format!(
            "the state store holds a record that cannot be read back ({what}); it was left as it is for an operator \
             to inspect"
        ),
    }
}

pub type StageResult<T> = Result<T, StageError>;

/// Reading a package failed. A store's error carried through `std::io` (a reader over an
/// object wraps it with `io::Error::other`) keeps its class — S3 throttling mid-read is
/// retried, not blamed on the package; any other I/O error is the package's own fault
/// (`damaged` says how).
pub fn read_failure(e: std::io::Error, damaged: impl FnOnce(std::io::Error) -> String) -> StageError {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<PortError>()) {
        Some(port) => StageError::Port(port.clone()),
        None => StageError::Failed(damaged(e)),
    }
}

/// The same for a zip reader's error, whose I/O errors are the reader's.
pub fn zip_read_failure(e: zip::result::ZipError, damaged: impl FnOnce(String) -> String) -> StageError {
    match e {
        zip::result::ZipError::Io(io) => read_failure(io, |io| damaged(io.to_string())),
        other => StageError::Failed(damaged(other.to_string())),
    }
}
