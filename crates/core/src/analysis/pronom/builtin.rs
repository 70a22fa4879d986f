//! The PRONOM signature files Vellum is built with, gzipped into the binary: identification
//! needs no Python, no fido and no files beside the binary. `scripts/refresh-signatures`
//! replaces them (from opf-fido's package or The National Archives' release); a run can
//! still choose newer files with `--signatures DIR`. The file names are the version
//! recorded in every identification event, so they are kept as published.

use std::io::Read;

use super::error::SignatureError;

const DROID_GZ: &[u8] = include_bytes!("../../../signatures/droid.xml.gz");
const CONTAINER_GZ: &[u8] = include_bytes!("../../../signatures/container.xml.gz");
/// `droid=<file name>` and `container=<file name>`: the names they were published under.
const VERSIONS: &str = include_str!("../../../signatures/versions.txt");

fn published_name(which: &'static str) -> Result<&'static str, SignatureError> {
    VERSIONS
        .lines()
        .find_map(|l| l.strip_prefix(which)?.strip_prefix('='))
        .map(str::trim)
        .ok_or(SignatureError::Unnamed(which))
}

fn gunzip(name: &str, bytes: &[u8]) -> Result<String, SignatureError> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .map_err(|source| SignatureError::Damaged { file: name.to_string(), source })?;
    Ok(text)
}

pub(super) fn droid() -> Result<(&'static str, String), SignatureError> {
    let name = published_name("droid")?;
    Ok((name, gunzip(name, DROID_GZ)?))
}

pub(super) fn container() -> Result<(&'static str, String), SignatureError> {
    let name = published_name("container")?;
    Ok((name, gunzip(name, CONTAINER_GZ)?))
}
