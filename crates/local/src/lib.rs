//! Vellum's embedded mode: the ports implemented on a folder and one SQLite file, and the
//! local runner that drives the core the way Lambda's event-source mappings do.

pub mod embedded;
pub mod fs_store;
pub mod lock_wait;
pub mod notifier;
pub mod open_files;
pub mod runner;
pub mod sqlite_access;
pub mod sqlite_pool;
pub mod sqlite_queue;
pub mod sqlite_state;
pub mod watcher;

pub use embedded::{Embedded, EmbeddedOptions};
pub use runner::{Runner, RunnerConfig};
