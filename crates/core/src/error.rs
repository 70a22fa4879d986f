//! The one error type of stage logic. Each error is classified where it arises, once:
//! bad input ends the transfer with a reason an archivist can act on; anything else is
//! transient and the message comes back.

use crate::ports::PortError;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// Intake refused the package: the transfer ends REJECTED with this reason.
    #[error("{0}")]
    Rejected(String),
    /// A later microservice failed for good: the transfer ends FAILED with this reason.
    #[error("{0}")]
    Failed(String),
    /// Throttling, I/O, a service that did not answer: retry the message.
    #[error("{0}")]
    Transient(String),
    /// Another delivery of the same message moved the state first (a checkpoint or marker
    /// was no longer where this one expected it): that delivery carries the work on, so
    /// this one is done and must not be retried into a dead-letter queue.
    #[error("{0}")]
    Superseded(String),
}

pub type StageResult<T> = Result<T, StageError>;

/// Reading a package failed. A store's error carried through `std::io` (a reader over an
/// object wraps it with `io::Error::other`) keeps its class — S3 throttling mid-read is
/// retried, not blamed on the package; any other I/O error is the package's own fault
/// (`damaged` says how).
pub fn read_failure(e: std::io::Error, damaged: impl FnOnce(std::io::Error) -> String) -> StageError {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<PortError>()) {
        Some(port) => StageError::from(port.clone()),
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

/// A port's error keeps its class: only an unavailable service is worth a retry. Something
/// missing or unreadable will not mend by being asked again, so the transfer fails with
/// the reason (and its record stays, readable); a lost race is another delivery's work.
impl From<PortError> for StageError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::Unavailable(_) => StageError::Transient(e.to_string()),
            PortError::Conflict(_) => StageError::Superseded(e.to_string()),
            PortError::NotFound(what) => {
                StageError::Failed(format!("something this step needs is missing ({what}); the upload is untouched"))
            }
            PortError::Refused(what) => StageError::Failed(format!("the store refused a write: {what}")),
            PortError::Corrupt(what) => StageError::Failed(format!(
                "the state store holds a record that cannot be read back ({what}); it was left as it is for an \
                 operator to inspect"
            )),
        }
    }
}

impl From<std::io::Error> for StageError {
    fn from(e: std::io::Error) -> Self {
        StageError::Transient(format!("I/O error: {e}"))
    }
}
