//! Where an operator's command acts: the embedded data folder, or (with `--aws-endpoint`)
//! the stack whose names the environment gives (`VELLUM_TABLE`, `VELLUM_QUEUE_PREFIX`, …).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use vellum_core::ports::{AccessStore, ObjectStore, Queue, StateStore};

#[derive(Args, Clone, Debug)]
pub struct Target {
    /// The data folder of `vellum serve` (its vellum.db holds state, queues and users).
    #[arg(long, default_value = "./vellum-data", env = "VELLUM_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The AWS endpoint of a stack (the emulator of `infra/local/up`, or AWS's own); the
    /// `VELLUM_*` variables name its table, buckets and queues.
    #[arg(long)]
    pub aws_endpoint: Option<String>,
    /// Print JSON instead of lines.
    #[arg(long)]
    pub json: bool,
}

pub fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).expect("JSON values serialize"));
}

fn database(target: &Target) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&target.data_dir)
        .with_context(|| format!("creating the data folder {}", target.data_dir.display()))?;
    Ok(target.data_dir.join("vellum.db"))
}

pub fn open_access(target: &Target) -> anyhow::Result<Arc<dyn AccessStore>> {
    match &target.aws_endpoint {
        Some(endpoint) => aws::access(endpoint),
        None => Ok(Arc::new(vellum_local::sqlite_access::SqliteAccessStore::open(&database(target)?)?)),
    }
}

/// The state and the queues.
pub fn open_records(target: &Target) -> anyhow::Result<(Arc<dyn StateStore>, Arc<dyn Queue>)> {
    match &target.aws_endpoint {
        Some(endpoint) => aws::records(endpoint),
        None => {
            let db = database(target)?;
            let state = vellum_local::sqlite_state::SqliteStateStore::open(&db)?;
            // The receive limit matters only to a consumer; an operator's command consumes nothing.
            let queue = vellum_local::sqlite_queue::SqliteQueue::open(&db, 5)?;
            Ok((Arc::new(state), Arc::new(queue)))
        }
    }
}

/// The uploads bucket (or folder).
pub fn open_uploads(target: &Target) -> anyhow::Result<Arc<dyn ObjectStore>> {
    match &target.aws_endpoint {
        Some(endpoint) => aws::uploads(endpoint),
        None => Ok(Arc::new(vellum_local::fs_store::FsObjectStore::new(
            target.data_dir.join("uploads"),
            vellum_local::embedded::UPLOADS_BUCKET,
        )?)),
    }
}

/// The state and the stored AIPs.
pub fn open_storage(target: &Target) -> anyhow::Result<(Arc<dyn StateStore>, Arc<dyn ObjectStore>)> {
    match &target.aws_endpoint {
        Some(endpoint) => aws::storage(endpoint),
        None => {
            let state = vellum_local::sqlite_state::SqliteStateStore::open(&database(target)?)?;
            let aips = vellum_local::fs_store::FsObjectStore::new(target.data_dir.join("aips"), "aips")?;
            Ok((Arc::new(state), Arc::new(aips)))
        }
    }
}

/// The stack's records at `endpoint` (its names from the `VELLUM_*` environment).
#[cfg(feature = "aws")]
pub fn aws_records(endpoint: &str) -> anyhow::Result<vellum_aws::app::Records> {
    aws::records_of(endpoint)
}

#[cfg(feature = "aws")]
mod aws {
    use super::*;

    pub fn records_of(endpoint: &str) -> anyhow::Result<vellum_aws::app::Records> {
        std::env::set_var("AWS_ENDPOINT_URL", endpoint);
        // The runtime lives as long as the command: leaked on purpose, the process ends soon.
        let rt =
            Box::leak(Box::new(tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?));
        let names = vellum_aws::app::Names::from_env().map_err(anyhow::Error::msg)?;
        vellum_aws::app::Records::new(&names, rt.handle().clone()).map_err(anyhow::Error::msg)
    }

    pub fn access(endpoint: &str) -> anyhow::Result<Arc<dyn AccessStore>> {
        Ok(records_of(endpoint)?.access)
    }

    pub fn records(endpoint: &str) -> anyhow::Result<(Arc<dyn StateStore>, Arc<dyn Queue>)> {
        let records = records_of(endpoint)?;
        Ok((records.state, records.queue))
    }

    pub fn storage(endpoint: &str) -> anyhow::Result<(Arc<dyn StateStore>, Arc<dyn ObjectStore>)> {
        let records = records_of(endpoint)?;
        Ok((records.state, records.aips))
    }

    pub fn uploads(endpoint: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
        Ok(records_of(endpoint)?.uploads)
    }
}

#[cfg(not(feature = "aws"))]
mod aws {
    use super::*;

    const NO_AWS: &str =
        "this vellum was built without AWS support: build it with `cargo build -p vellum-cli --features aws`";

    pub fn access(_endpoint: &str) -> anyhow::Result<Arc<dyn AccessStore>> {
        anyhow::bail!(NO_AWS)
    }

    pub fn records(_endpoint: &str) -> anyhow::Result<(Arc<dyn StateStore>, Arc<dyn Queue>)> {
        anyhow::bail!(NO_AWS)
    }

    pub fn storage(_endpoint: &str) -> anyhow::Result<(Arc<dyn StateStore>, Arc<dyn ObjectStore>)> {
        anyhow::bail!(NO_AWS)
    }

    pub fn uploads(_endpoint: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
        anyhow::bail!(NO_AWS)
    }
}
