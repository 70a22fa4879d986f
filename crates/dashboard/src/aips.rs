//! The storage service's read side through the API, for registered users: the stored AIPs
//! (`GET /api/aips?space=&identifier=`), and one AIP to download
//! (`GET /api/aips/download?identifier=&version=`) — on AWS a link that expires, in
//! embedded mode the AIP streamed.

use std::time::Duration;

use serde_json::json;
use vellum_core::access::User;
use vellum_core::ports::PortResult;
use vellum_core::storage;

use crate::http::{Request, Response, Stream};
use crate::routes::Route;
use crate::Dashboard;

/// How long a download link lives.
pub const LINK_LIFETIME: Duration = Duration::from_secs(15 * 60);

fn error(status: u16, message: String) -> Response {
    Response::json(status, &json!({"message": message, "error": true}))
}

pub fn answer(d: &Dashboard, route: &Route, request: &Request, user: &User) -> PortResult<Response> {
    let params = request.params();
    let identifier = params.get("identifier").filter(|i| !i.is_empty());
    if *route == Route::Aips {
        let entries =
            storage::list(d.aips.as_ref(), params.get("space").map(String::as_str), identifier.map(String::as_str))?;
        return Ok(Response::json(200, &json!({ "aips": entries })));
    }
    let Some(identifier) = identifier else {
        return Ok(error(400, "name the AIP: ?identifier=<identifier>[&version=<n>]".into()));
    };
    let version = match params.get("version").map(|v| v.parse::<u32>()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return Ok(error(400, "version is a number".into())),
    };
    let Some(entry) = storage::find(d.aips.as_ref(), identifier, version)? else {
        return Ok(error(404, format!("no stored AIP of {identifier:?}")));
    };
    tracing::info!(user = %user.name, aip = %entry.key.key, "AIP download");
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
