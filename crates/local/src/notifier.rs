//! "AIP stored" notices in embedded mode: one JSON file per AIP under
//! `notifications/<space>/`, so a consumer filters by space by choosing the folder.

use std::path::PathBuf;

use vellum_core::model::messages::AipStored;
use vellum_core::ports::{Notifier, PortResult};

pub struct FolderNotifier {
    dir: PathBuf,
}

impl FolderNotifier {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

impl Notifier for FolderNotifier {
    fn publish(&self, notice: &AipStored) -> PortResult<()> {
        let space: String = notice
            .space
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .collect();
        let dir = self.dir.join(space);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.json", notice.aip_uuid));
        // A name of its own: a duplicate delivery announcing at the same moment renames its
        // own file, never the other's.
        let tmp = path.with_extension(format!("json.{}.tmp", uuid::Uuid::new_v4().simple()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(notice).expect("notices serialize"))?;
        std::fs::rename(tmp, path)?;
        Ok(())
    }
}
