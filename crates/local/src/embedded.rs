//! Embedded mode wired up: a data folder with the uploads "bucket", the working area, the
//! AIP store and one SQLite file for state and queues.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vellum_core::analysis::pronom::FormatIdentifier;
use vellum_core::config::profile::Config;
use vellum_core::config::Settings;
use vellum_core::ports::{Clock, PortResult, SystemClock, ToolRunner, VirusScanner};
use vellum_core::Pipeline;

use crate::fs_store::FsObjectStore;
use crate::sqlite_queue::SqliteQueue;
use crate::sqlite_state::SqliteStateStore;

/// The bucket name the uploads folder stands in for.
pub const UPLOADS_BUCKET: &str = "uploads";

#[derive(Clone)]
pub struct EmbeddedOptions {
    pub config: Config,
    pub settings: Settings,
    /// Receives before a message is dead-lettered.
    pub max_receives: u32,
    /// The virus scanner (clamd), or None to record files as not scanned.
    pub scanner: Option<Arc<dyn VirusScanner>>,
    /// The PRONOM identifier, or None to record identification as not performed.
    pub format_identifier: Option<Arc<FormatIdentifier>>,
    /// Where outside characterization tools run: child processes on this machine.
    pub tools: Arc<dyn ToolRunner>,
    /// Time and ids, for the pipeline and the state store alike (tests pin them).
    pub clock: Arc<dyn Clock>,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            config: Config::builtin(),
            settings: Settings::default(),
            max_receives: 5,
            scanner: None,
            format_identifier: None,
            tools: Arc::new(vellum_host::ProcessTools::new()),
            clock: Arc::new(SystemClock),
        }
    }
}

pub struct Embedded {
    pub data_dir: PathBuf,
    pub pipeline: Pipeline,
    pub uploads: Arc<FsObjectStore>,
    pub aips: Arc<FsObjectStore>,
    /// Stored DIPs, a folder each.
    pub dips: Arc<FsObjectStore>,
    pub state: Arc<SqliteStateStore>,
    pub queue: Arc<SqliteQueue>,
    /// Who may use the dashboard: users, API keys, sessions.
    pub access: Arc<crate::sqlite_access::SqliteAccessStore>,
}

impl Embedded {
    /// Opens (creating as needed) `DIR/uploads`, `DIR/working`, `DIR/aips`,
    /// `DIR/notifications`, `DIR/vellum.db`.
    pub fn open(data_dir: &Path, options: EmbeddedOptions) -> PortResult<Self> {
        std::fs::create_dir_all(data_dir)?;
        let uploads = Arc::new(FsObjectStore::new(data_dir.join("uploads"), UPLOADS_BUCKET)?);
        let working = Arc::new(FsObjectStore::new(data_dir.join("working"), "working")?.without_sync());
        let aips = Arc::new(FsObjectStore::new(data_dir.join("aips"), "aips")?);
        let dips = Arc::new(FsObjectStore::new(data_dir.join("dips"), "dips")?);
        let db = data_dir.join("vellum.db");
        let clock = options.clock;
        let state = Arc::new(SqliteStateStore::open_with_clock(&db, clock.clone())?);
        let queue = Arc::new(SqliteQueue::open(&db, options.max_receives)?);
        let access = Arc::new(crate::sqlite_access::SqliteAccessStore::open(&db)?);
        let replica = match &options.config.replica {
            Some(location) => Some(Arc::new(FsObjectStore::new(data_dir.join(&location.folder), "replica")?)
                as Arc<dyn vellum_core::ports::ObjectStore>),
            None => None,
        };
        let pipeline = Pipeline {
            uploads: uploads.clone(),
            working,
            aips: aips.clone(),
            replica,
            dips: Some(dips.clone() as Arc<dyn vellum_core::ports::ObjectStore>),
            state: state.clone(),
            queue: queue.clone(),
            clock,
            scanner: options.scanner,
            format_identifier: options.format_identifier,
            fpr: Arc::new(options.config.format_policy()),
            tools: options.tools,
            notifier: Arc::new(crate::notifier::FolderNotifier::new(data_dir.join("notifications"))),
            config: options.config,
            settings: options.settings,
        };
        Ok(Self { data_dir: data_dir.to_path_buf(), pipeline, uploads, aips, dips, state, queue, access })
    }
}
