//! Vellum's core: the domain model in Archivematica's vocabulary, the ports that stage
//! logic talks to, and the stages themselves. Nothing in here knows about AWS or SQLite;
//! adapters in other crates implement the ports. `docs/architecture.md` draws the floors;
//! each folder here is one of its rooms, and dependencies point down:
//!
//! - `pipeline`: the one place that names every stage and turns results into outcomes;
//! - `stages`: one file a microservice stage, each with its whole flow;
//! - `intake`, `analysis`, `record`, `io`: the domain a stage is made of;
//! - `operations`: what operators and the dashboard do beside the flow;
//! - `config`, `model`, `ports`, `error`: what everything above speaks.

pub mod analysis;
pub mod config;
pub mod error;
pub mod intake;
pub mod io;
pub mod model;
pub mod operations;
pub mod pipeline;
pub mod ports;
pub mod record;
pub mod stages;

pub use error::{StageError, StageResult};
pub use pipeline::{Outcome, Pipeline};
pub use stages::{LongJobs, StageContext};

/// The software agent recorded on every PREMIS event Vellum writes.
pub const SOFTWARE_AGENT: &str = concat!("Vellum-", env!("CARGO_PKG_VERSION"));
