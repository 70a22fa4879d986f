//! The storage service's read side through the API, for registered users: the stored AIPs
//! (`GET /api/aips?space=&identifier=`), one AIP to download
//! (`GET /api/aips/download?identifier=&version=`) — on AWS a link that expires, in
//! embedded mode the AIP streamed — and a transfer's DIP, its files listed or one of them
//! downloaded (`GET /api/transfers/{id}/dip[?file=objects/…]`) the same way.

use std::time::Duration;

use serde_json::json;
use vellum_core::operations::access::User;
use vellum_core::operations::storage;
use vellum_core::ports::PortResult;

use crate::http::{Request, Response, Stream};
use crate::routes::Route;
use crate::Dashboard;

/// The largest original taken out of an AIP through the API (held while it is sent);
/// larger ones with `vellum aips get --file`.
pub const MAX_FILE: u64 = 256 << 20;

/// How long a download link lives.
pub const LINK_LIFETIME: Duration = Duration::from_secs(15 * 60);

pub fn answer(d: &Dashboard, route: &Route, request: &Request, user: &User) -> PortResult<Response> {
    let params = request.params();
    let identifier = params.get("identifier").filter(|i| !i.is_empty());
    if *route == Route::Aips {
        // A space is one of the configured spaces, by name: never a path.
        let space = params.get("space").filter(|s| !s.is_empty());
        if let Some(space) = space {
            let spaces = d.config.storage_spaces();
            if !spaces.contains(space) {
                return Ok(Response::error(
                    400,
                    format!("there is no storage space {space:?}; the spaces are {}", spaces.join(", ")),
                ));
            }
        }
        let entries = storage::list(d.aips.as_ref(), space.map(String::as_str), identifier.map(String::as_str))?;
        return Ok(Response::json(200, &json!({ "aips": entries })));
    }
    let Some(identifier) = identifier else {
        return Ok(Response::error(400, "name the AIP: ?identifier=<identifier>[&version=<n>]"));
    };
    let version = match params.get("version").map(|v| v.parse::<u32>()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return Ok(Response::error(400, "version is a number")),
    };
    let Some(entry) = storage::find(d.aips.as_ref(), identifier, version)? else {
        return Ok(Response::error(404, format!("no stored AIP of {identifier:?}")));
    };
    tracing::info!(user = %user.name, aip = %entry.key.key, file = ?params.get("file"), "AIP download");
    if let Some(path) = params.get("file").filter(|f| !f.is_empty()) {
        if d.links.is_some() {
            return Ok(Response::error(
                501,
                "on AWS a download link is for the whole AIP; take one file out with `vellum aips get IDENTIFIER --file PATH`"
                    ,
            ));
        }
        let mut bytes = CappedWriter { bytes: Vec::new(), over: false };
        let taken = storage::extract_file(d.aips.as_ref(), &entry, path, &mut bytes);
        if bytes.over {
            return Ok(Response::error(
                413,
                format!(
                    "the file is over {} MiB: take it out with `vellum aips get IDENTIFIER --file PATH`",
                    MAX_FILE >> 20
                ),
            ));
        }
        return Ok(match taken {
            Ok(true) => {
                let name = path.rsplit('/').next().unwrap_or("file").replace('"', "");
                Response::with_type(200, "application/octet-stream", bytes.bytes)
                    .header("Content-Disposition", &format!("attachment; filename=\"{name}\""))
            }
            Ok(false) => Response::error(404, format!("the AIP {} holds no file objects/{path}", entry.key.key)),
            Err(e) => return Err(e),
        });
    }
    if let Some(links) = &d.links {
        let url = links.link(&entry.key.key, LINK_LIFETIME)?;
        return Ok(Response::json(
            200,
            &json!({"aip": entry, "url": url, "expires_in_seconds": LINK_LIFETIME.as_secs()}),
        ));
    }
    let file = entry.key.key.rsplit('/').next().unwrap_or("aip").replace('"', "");
    let mut response = Response::with_type(200, "application/octet-stream", Vec::new())
        .header("Content-Disposition", &format!("attachment; filename=\"{file}\""));
    response.stream = Some(Stream { reader: d.aips.get(&entry.key.key)?, len: entry.size });
    Ok(response)
}

/// Holds a file taken out of an AIP, refusing one over `MAX_FILE`.
struct CappedWriter {
    bytes: Vec<u8>,
    over: bool,
}

impl std::io::Write for CappedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() as u64 + buf.len() as u64 > MAX_FILE {
            self.over = true;
            return Err(std::io::Error::other("over the API's file size"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A transfer's stored DIP: its files (path and size), or one of them by its path in the
/// DIP — a path of plain parts under the DIP's folder, never one that climbs out of it.
pub fn dip(d: &Dashboard, id: uuid::Uuid, request: &Request, user: &User) -> PortResult<Response> {
    let Some(transfer) = d.state.transfer(id)? else {
        return Ok(Response::error(404, "no such transfer"));
    };
    let (Some(folder), Some(dips)) = (transfer.dip_key.as_deref(), d.dips.as_ref()) else {
        return Ok(Response::error(404, "this transfer has no stored DIP"));
    };
    let Some(wanted) = request.param("file").filter(|f| !f.is_empty()) else {
        let listed = dips.list(folder)?;
        let files: Vec<_> = listed
            .iter()
            .map(|m| json!({"path": m.key.strip_prefix(folder).unwrap_or(&m.key), "size": m.size}))
            .collect();
        return Ok(Response::json(200, &json!({"dip": folder, "files": files})));
    };
    // One file looked up by its key, not the whole DIP listed: a path of plain parts only.
    let plain = wanted.split('/').all(|part| {
        !part.is_empty() && part != "." && part != ".." && !part.contains(|c: char| c == '\\' || c.is_control())
    });
    let found = if plain { dips.head(&format!("{folder}{wanted}"))? } else { None };
    let Some(object) = found else {
        return Ok(Response::error(404, format!("the DIP {folder} holds no file {wanted}")));
    };
    let (path, size) = (wanted.as_str(), object.size);
    let key = format!("{folder}{path}");
    tracing::info!(user = %user.name, dip = %folder, file = %path, "DIP download");
    if let Some(links) = &d.dip_links {
        let url = links.link(&key, LINK_LIFETIME)?;
        return Ok(Response::json(
            200,
            &json!({"file": path, "url": url, "expires_in_seconds": LINK_LIFETIME.as_secs()}),
        ));
    }
    let name = path.rsplit('/').next().unwrap_or("file").replace('"', "");
    let mut response = Response::with_type(200, "application/octet-stream", Vec::new())
        .header("Content-Disposition", &format!("attachment; filename=\"{name}\""));
    response.stream = Some(Stream { reader: dips.get(&key)?, len: size });
    Ok(response)
}
