//! The archival record Vellum writes and reads back: the AIP's layout (`aip`, `keys`), its
//! METS/PREMIS (`mets`, `rights`, `xml`), the BagIt bag (`bagit`, `bag_parts`) and the check
//! of a stored AIP against the record (`aip_check`), and what normalization left undone
//! (`normalization`).

pub mod aip;
pub mod aip_check;
pub mod bag_parts;
pub mod bagit;
pub mod keys;
pub mod mets;
pub mod normalization;
pub mod premis_import;
pub mod rights;
pub mod structmap;
pub mod xml;
