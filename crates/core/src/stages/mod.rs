//! One module per microservice stage. Each reads its message, does one job, records what
//! happened, and sends the next stage its messages. All are safe to run twice.

pub mod characterize;
pub mod checksum;
pub mod extract;
pub mod identify;
pub mod mets;
pub mod package;
pub mod per_file;
pub mod scan;
pub mod start;
pub mod store;
