//! The ports: small traits that stage logic talks to. AWS and embedded adapters implement
//! them, and `vellum-contract` holds the one test suite every adapter must pass.
//!
//! The ports are synchronous on purpose: stage logic streams bytes through `std::io`
//! readers and writers (zip, tar, gzip, digests all speak `std::io`), and an async adapter
//! bridges with its runtime's `block_on` inside a blocking task.
//!
//! One file a port: `objects` (ObjectStore), `state` (the state store, one trait a role),
//! `access` (AccessStore), `queue` (Queue), `scanner` (VirusScanner), `tools` (ToolRunner),
//! `notifier` (Notifier), `clock` (Clock). A new port is a new file here, re-exported below,
//! with an adapter in `vellum-local` and `vellum-aws` and a suite in `vellum-contract`.

mod access;
mod clock;
mod notifier;
mod objects;
mod queue;
mod scanner;
mod state;
mod tools;

pub use access::AccessStore;
pub use clock::{Clock, SystemClock};
pub use notifier::Notifier;
pub use objects::{delete_page_by_page, ComposeProgress, ComposedPiece, ObjectMeta, ObjectStore, ObjectWriter};
pub use queue::{DeadLetter, Delivery, Queue};
pub use scanner::{ScanVerdict, VirusScanner};
pub use state::{
    BatchRecorded, EventLog, ExtractCheckpoint, FileCatalogue, FilePages, JobLedger, JobSpec, StateStore,
    TransferOversight, TransferQuery, TransferRegister,
};
pub use tools::{Conversion, NoTools, OneProcessAFile, ToolCall, ToolOutput, ToolRunner, ToolSession};

/// Errors from adapters, each in its class, kept to the edge: only `Unavailable` is worth
/// trying again.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PortError {
    /// What was asked for is not there: retrying will not make it appear.
    #[error("not found: {0}")]
    NotFound(String),
    /// A condition failed: another delivery moved the state first.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored state that cannot be read back (a bad time, id, status or JSON value). It is
    /// never turned into a default: the record would lie.
    #[error("unreadable state: {0}")]
    Corrupt(String),
    /// The service refuses the request as it is (a key it cannot hold, too long a value):
    /// asking again the same way gets the same answer.
    #[error("refused: {0}")]
    Refused(String),
    /// Throttling, I/O, a busy database, a service that did not answer.
    #[error("{0}")]
    Unavailable(String),
}

impl From<std::io::Error> for PortError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound {
            PortError::NotFound(e.to_string())
        } else {
            PortError::Unavailable(e.to_string())
        }
    }
}

pub type PortResult<T> = Result<T, PortError>;

/// The most items one write may change at once: DynamoDB's transaction limit. A domain
/// operation that touches more writes its items idempotently first (derived ids), then
/// moves one conditional marker, its commit point.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// The most bytes a task's captured output may keep (stdout and stderr each), so that a
/// batch's records stay far below DynamoDB's 400 KB item limit; longer output is cut and
/// says so.
pub const MAX_TASK_OUTPUT: usize = 16 * 1024;

/// One page of a read that grows with a transfer, and the cursor for the next; `next` is
/// None on the last page. Cursors are opaque: pass them back as they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// How many items a caller asks for per page unless it has a reason to ask otherwise.
pub const PAGE_SIZE: usize = 500;
