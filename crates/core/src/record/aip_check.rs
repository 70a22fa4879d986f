//! A stored AIP read back and judged against the record: the bag is valid (every manifest
//! entry present and matching, Payload-Oxum right), every original's digest is the one the
//! checksum stage recorded, nothing is there that the transfer did not hold, and its METS
//! reads as XML. Used by the store stage (whose failure names the files at fault), by the
//! end-to-end test transfer, by `vellum aips verify` and by the fixity audit.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};

use flate2::read::MultiGzDecoder;

use crate::model::Transfer;
use crate::ports::{FileCatalogue, FilePages, ObjectStore, PortResult};
use crate::record::aip::{bag_name, is_generated_payload, mets_name, payload_path};
use crate::record::bagit::{verify_tar, BagReport};

fn open(aips: &dyn ObjectStore, key: &str) -> PortResult<Box<dyn Read>> {
    let raw = BufReader::with_capacity(1 << 20, aips.get(key)?);
    Ok(if key.ends_with(".gz") { Box::new(MultiGzDecoder::new(raw)) } else { Box::new(raw) })
}

/// Reads the AIP at `key` once: the bag report, or every problem found.
pub fn read_back(
    files: &dyn FileCatalogue,
    aips: &dyn ObjectStore,
    transfer: &Transfer,
    key: &str,
) -> PortResult<Result<BagReport, Vec<String>>> {
    let report = match verify_tar(open(aips, key)?, &bag_name(transfer)) {
        Ok(r) => r,
        Err(problems) => return Ok(Err(problems)),
    };
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for f in FilePages::new(files, transfer.id) {
        let f = f?;
        expected.insert(format!("data/{}", payload_path(transfer, &f)), f.sha256().unwrap_or_default().to_string());
    }
    let mut problems = Vec::new();
    for (path, want) in &expected {
        match report.payload.get(path) {
            None => problems.push(format!("{path} is missing from the stored AIP")),
            Some(got) if got != want => {
                problems.push(format!("{path} has sha256 {got} in the stored AIP, but {want} was recorded"))
            }
            _ => {}
        }
    }
    for path in report.payload.keys() {
        if !expected.contains_key(path) && !is_generated_payload(transfer, path) {
            problems.push(format!("{path} is in the stored AIP but is no file of the transfer"));
        }
    }
    Ok(if problems.is_empty() { Ok(report) } else { Err(problems) })
}

/// Reads the AIP's METS as XML, streaming (a METS of 100,000 files is hundreds of MB):
/// the number of files its file section lists, or why it cannot be read (a finding in the
/// report's words; only the store's error is an error).
pub fn mets_files(aips: &dyn ObjectStore, transfer: &Transfer, key: &str) -> PortResult<Result<usize, String>> {
    let want = format!("{}/data/{}", bag_name(transfer), mets_name(transfer));
    let mut archive = tar::Archive::new(open(aips, key)?);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => return Ok(Err(format!("the AIP cannot be read as a tar: {e}"))),
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => return Ok(Err(format!("the AIP's tar stream is damaged: {e}"))),
        };
        if entry.path().ok().is_none_or(|p| p.to_string_lossy() != want) {
            continue;
        }
        let mut reader = quick_xml::Reader::from_reader(BufReader::new(entry));
        let mut buf = Vec::new();
        let mut files = 0;
        loop {
            match reader.read_event_into(&mut buf) {
                Ok(quick_xml::events::Event::Eof) => return Ok(Ok(files)),
                Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e))
                    if e.name().as_ref() == b"mets:file" =>
                {
                    files += 1
                }
                Ok(_) => {}
                Err(e) => return Ok(Err(format!("the METS is not readable XML: {e}"))),
            }
            buf.clear();
        }
    }
    Ok(Err(format!("the AIP holds no METS at {want}")))
}
