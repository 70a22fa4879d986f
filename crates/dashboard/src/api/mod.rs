//! The APIs machines use: Vellum's JSON API (`json`, described by `openapi.json`),
//! Archivematica's API with its paths, fields and status words (`archivematica`), and the
//! storage service's read side for stored AIPs (`aips`).

pub mod aips;
pub mod archivematica;
pub mod json;
