//! The embedded adapters keep the ports' contracts.

use vellum_local::fs_store::FsObjectStore;
use vellum_local::sqlite_queue::SqliteQueue;
use vellum_local::sqlite_state::SqliteStateStore;

fn fresh_dir() -> std::path::PathBuf {
    tempfile::tempdir().expect("a temporary folder").keep()
}

mod object_store {
    use super::*;
    vellum_contract::object_store_contract!(|| {
        Box::new(FsObjectStore::new(fresh_dir(), "test").unwrap()) as Box<dyn vellum_core::ports::ObjectStore>
    });
}

mod state_store {
    use super::*;
    vellum_contract::state_store_contract!(|| {
        Box::new(SqliteStateStore::open(&fresh_dir().join("state.db")).unwrap())
            as Box<dyn vellum_core::ports::StateStore>
    });
}

mod queue {
    use super::*;
    vellum_contract::queue_contract!(|max_receives: u32| {
        Box::new(SqliteQueue::open(&fresh_dir().join("queue.db"), max_receives).unwrap())
            as Box<dyn vellum_core::ports::Queue>
    });
}

mod access_store {
    use super::*;
    vellum_contract::access_store_contract!(|| {
        Box::new(vellum_local::sqlite_access::SqliteAccessStore::open(&fresh_dir().join("state.db")).unwrap())
            as Box<dyn vellum_core::ports::AccessStore>
    });
}
