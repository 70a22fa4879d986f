//! What Vellum takes from the machine it runs on, in either world (a Lambda function's
//! sandbox or an archivist's laptop): outside tools run as child processes with a timeout,
//! and PRONOM signature files read from a folder. The core does neither itself.

pub mod signatures;
pub mod tools;

pub use tools::ProcessTools;
