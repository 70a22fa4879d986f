//! The storage service's read side: stored AIPs found by space and identifier, their
//! versions, one read back and judged (`aip_check`), one original file taken out of one.

use std::io::{BufReader, Read};

use flate2::read::MultiGzDecoder;
use serde::Serialize;

use crate::model::{Transfer, TransferStatus};
use crate::ports::{ObjectStore, PortResult, StateStore, TransferQuery};
use crate::record::aip_check::{mets_files, read_back};
use crate::record::keys::{parse_aip_key, AipKey};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredAipEntry {
    #[serde(flatten)]
    pub key: AipKey,
    pub size: u64,
    pub stored_at: Option<crate::model::Timestamp>,
}

/// Every stored AIP (in one space, of one identifier), by space, identifier and version.
pub fn list(aips: &dyn ObjectStore, space: Option<&str>, identifier: Option<&str>) -> PortResult<Vec<StoredAipEntry>> {
    let prefix = match (space, identifier) {
        (Some(s), Some(i)) => format!("{s}/{i}/"),
        (Some(s), None) => format!("{s}/"),
        _ => String::new(),
    };
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = aips.list_page(&prefix, after.as_deref(), 1000)?;
        for o in &page.items {
            let Some(key) = parse_aip_key(&o.key) else { continue };
            if identifier.is_some_and(|i| key.identifier != i) {
                continue;
            }
            out.push(StoredAipEntry { key, size: o.size, stored_at: o.last_modified });
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    out.sort_by(|a, b| {
        (&a.key.space, &a.key.identifier, a.key.version).cmp(&(&b.key.space, &b.key.identifier, b.key.version))
    });
    Ok(out)
}

/// The stored AIP at `key`, if it is there.
pub fn entry(aips: &dyn ObjectStore, key: &str) -> PortResult<Option<StoredAipEntry>> {
    let Some(parsed) = parse_aip_key(key) else { return Ok(None) };
    Ok(aips.head(key)?.map(|m| StoredAipEntry { key: parsed, size: m.size, stored_at: m.last_modified }))
}

/// One identifier's AIP: the version asked for, or the newest (in any space).
pub fn find(aips: &dyn ObjectStore, identifier: &str, version: Option<u32>) -> PortResult<Option<StoredAipEntry>> {
    Ok(list(aips, None, Some(identifier))?
        .into_iter()
        .filter(|e| version.is_none_or(|v| e.key.version == v))
        .max_by_key(|e| e.key.version))
}

/// The transfer that stored this AIP.
pub fn transfer_of(state: &dyn StateStore, entry: &StoredAipEntry) -> PortResult<Option<Transfer>> {
    for hidden in [false, true] {
        let mut after = None;
        loop {
            let page = state.list_transfers(&TransferQuery {
                status: Some(TransferStatus::Complete),
                hidden,
                after,
                limit: 500,
                ..Default::default()
            })?;
            if let Some(t) = page.items.into_iter().find(|t| t.aip_key.as_deref() == Some(entry.key.key.as_str())) {
                return Ok(Some(t));
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
    }
    Ok(None)
}

/// One check of a stored AIP, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: String,
    pub passed: bool,
    pub detail: String,
}

/// Reads a stored AIP back: its transfer on record, the bag valid with every digest as
/// recorded, the METS readable.
pub fn verify(state: &dyn StateStore, aips: &dyn ObjectStore, entry: &StoredAipEntry) -> PortResult<Vec<Check>> {
    let Some(transfer) = transfer_of(state, entry)? else {
        return Ok(vec![Check {
            check: "its transfer is on record".into(),
            passed: false,
            detail: format!("no COMPLETE transfer stored {}", entry.key.key),
        }]);
    };
    verify_transfer(state, aips, &transfer, &entry.key.key)
}

/// As `verify`, for a transfer already in hand and its AIP's key.
pub fn verify_transfer(
    state: &dyn StateStore,
    aips: &dyn ObjectStore,
    transfer: &Transfer,
    key: &str,
) -> PortResult<Vec<Check>> {
    let mut checks = Vec::new();
    if aips.head(key)?.is_none() {
        checks.push(Check {
            check: "the AIP is where it was stored".into(),
            passed: false,
            detail: format!("{key} is gone"),
        });
        return Ok(checks);
    }
    checks.push(Check { check: "its transfer is on record".into(), passed: true, detail: transfer.id.to_string() });
    checks.push(match read_back(state, aips, transfer, key)? {
        Ok(report) => Check {
            check: "the bag is valid and every digest is as recorded".into(),
            passed: true,
            detail: format!("{} payload files, {} bytes", report.payload_files, report.payload_bytes),
        },
        Err(problems) => Check {
            check: "the bag is valid and every digest is as recorded".into(),
            passed: false,
            detail: problems.join("; "),
        },
    });
    checks.push(match mets_files(aips, transfer, key)? {
        Ok(n) => Check {
            check: "the METS is readable".into(),
            passed: true,
            detail: format!("{n} files in its file section"),
        },
        Err(why) => Check { check: "the METS is readable".into(), passed: false, detail: why },
    });
    Ok(checks)
}

/// Streams one original file (its path under `objects/`) out of a stored AIP into `out`;
/// false when the AIP holds no such file.
pub fn extract_file(
    aips: &dyn ObjectStore,
    entry: &StoredAipEntry,
    path: &str,
    out: &mut dyn std::io::Write,
) -> PortResult<bool> {
    let raw = BufReader::with_capacity(1 << 20, aips.get(&entry.key.key)?);
    let reader: Box<dyn Read> =
        if entry.key.key.ends_with(".gz") { Box::new(MultiGzDecoder::new(raw)) } else { Box::new(raw) };
    let want =
        format!("{}/data/objects/{}", entry.key.bag, path.trim_start_matches('/').trim_start_matches("objects/"));
    let mut archive = tar::Archive::new(reader);
    for e in archive.entries()? {
        let mut e = e?;
        if e.path().ok().is_some_and(|p| p.to_string_lossy() == want) {
            std::io::copy(&mut e, out)?;
            return Ok(true);
        }
    }
    Ok(false)
}
