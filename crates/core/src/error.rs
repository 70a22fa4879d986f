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
}

pub type StageResult<T> = Result<T, StageError>;

impl From<PortError> for StageError {
    fn from(e: PortError) -> Self {
        StageError::Transient(e.to_string())
    }
}

impl From<std::io::Error> for StageError {
    fn from(e: std::io::Error) -> Self {
        StageError::Transient(format!("I/O error: {e}"))
    }
}
