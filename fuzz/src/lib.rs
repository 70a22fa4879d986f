//! What the fuzz targets share: an object store holding one object in memory, so intake and
//! identification read fuzzed bytes through the same ports as in production.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::sync::Arc;

use vellum_core::ports::{ObjectMeta, ObjectStore, ObjectWriter, Page, PortError, PortResult};

pub const KEY: &str = "born-digital/fuzzed.zip";

pub struct OneObject(pub Vec<u8>);

impl OneObject {
    pub fn store(bytes: &[u8]) -> Arc<dyn ObjectStore> {
        Arc::new(OneObject(bytes.to_vec()))
    }
}

impl ObjectStore for OneObject {
    fn bucket(&self) -> &str {
        "fuzz"
    }
    fn head(&self, key: &str) -> PortResult<Option<ObjectMeta>> {
        Ok((key == KEY).then(|| ObjectMeta { key: key.into(), size: self.0.len() as u64, last_modified: None }))
    }
    fn get(&self, _: &str) -> PortResult<Box<dyn Read + Send>> {
        Ok(Box::new(Cursor::new(self.0.clone())))
    }
    fn get_range(&self, _: &str, offset: u64, len: u64) -> PortResult<Vec<u8>> {
        let start = (offset as usize).min(self.0.len());
        let end = start.saturating_add(len as usize).min(self.0.len());
        Ok(self.0[start..end].to_vec())
    }
    fn writer(&self, _: &str) -> PortResult<Box<dyn ObjectWriter>> {
        Err(PortError::Unavailable("the fuzz store is read-only".into()))
    }
    fn list_page(&self, _: &str, _: Option<&str>, _: usize) -> PortResult<Page<ObjectMeta>> {
        Ok(Page { items: Vec::new(), next: None })
    }
    fn put_tags(&self, _: &str, _: &BTreeMap<String, String>) -> PortResult<()> {
        Ok(())
    }
    fn get_tags(&self, _: &str) -> PortResult<BTreeMap<String, String>> {
        Ok(BTreeMap::new())
    }
    fn delete(&self, _: &str) -> PortResult<()> {
        Ok(())
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
