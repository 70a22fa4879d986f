//! The notifier's port: "AIP stored" notices for downstream systems.

use super::PortResult;

/// Tells downstream systems (IIIF builders, catalogues) that an AIP is stored. Delivery is
/// at least once: receivers key on `aip_uuid`.
pub trait Notifier: Send + Sync {
    fn publish(&self, notice: &crate::model::messages::AipStored) -> PortResult<()>;
}
