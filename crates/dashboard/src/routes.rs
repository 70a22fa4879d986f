//! Which route a request is for. A path is taken apart strictly before anything else: an
//! encoded slash or backslash, a `.` or `..` segment (encoded or not), or a malformed escape
//! is refused outright, so no route is reached by a path that means something else. A
//! route answers with and without its trailing slash.

use uuid::Uuid;
use vellum_core::model::Role;

/// The two kinds of unit Archivematica's API speaks of: a transfer and its SIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Transfer,
    Ingest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    // Open to anyone.
    Health,
    SignInPage,
    SignIn,
    /// The first leg of a sign-in through the OIDC provider, and its return.
    OidcStart,
    OidcCallback,
    Asset(&'static str),
    // People.
    SignOut,
    TransferList,
    TransferPage(Uuid),
    // The JSON API.
    Status,
    OpenApi,
    Transfers,
    StartTransfer,
    Transfer(Uuid),
    TransferFiles(Uuid),
    TransferEvents(Uuid),
    /// A transfer's stored DIP: its files, or one of them (`?file=`).
    TransferDip(Uuid),
    Retry(Uuid),
    Hide(Uuid),
    HideCompleted,
    Aips,
    AipDownload,
    /// Who may use the dashboard, and their keys (ids only): an admin's.
    Users,
    // Archivematica's API.
    AmStatus(Unit, Uuid),
    AmCompleted(Unit),
    AmUnapproved,
    AmWaiting,
    AmHide(Unit, Uuid),
    AmHideCompleted(Unit),
    AmJobs(Uuid),
    AmTask(Uuid),
    AmProcessingConfigurations,
    AmProcessingConfiguration(String),
    AmPackage,
    /// A path no route has; `allowed` is set when the path is a route's but not the method.
    NotFound,
    WrongMethod(&'static [&'static str]),
}

/// The static files, by name.
pub const ASSETS: &[&str] = &["dashboard.css", "dashboard.js", "favicon.svg"];

impl Route {
    /// Routes anyone may reach: nothing in them reads a record.
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            Route::Health
                | Route::SignInPage
                | Route::SignIn
                | Route::OidcStart
                | Route::OidcCallback
                | Route::Asset(_)
        )
    }

    /// Routes of Archivematica's API, which answer a refusal in its words.
    pub fn is_archivematica(&self) -> bool {
        matches!(
            self,
            Route::AmStatus(..)
                | Route::AmCompleted(_)
                | Route::AmUnapproved
                | Route::AmWaiting
                | Route::AmHide(..)
                | Route::AmHideCompleted(_)
                | Route::AmJobs(_)
                | Route::AmTask(_)
                | Route::AmProcessingConfigurations
                | Route::AmProcessingConfiguration(_)
                | Route::AmPackage
        )
    }

    /// The role a route needs. Reading is a viewer's; what changes the work (start, retry,
    /// hide, Archivematica's hide and package) an operator's; who may use it an admin's.
    /// A route that is not one needs nothing beyond being signed in, so it still answers
    /// 404 or 405.
    pub fn needs(&self) -> Role {
        match self {
            Route::StartTransfer
            | Route::Retry(_)
            | Route::Hide(_)
            | Route::HideCompleted
            | Route::AmHide(..)
            | Route::AmHideCompleted(_)
            | Route::AmPackage => Role::Operator,
            Route::Users => Role::Admin,
            _ => Role::Viewer,
        }
    }

    /// Routes people's browsers ask for: a refusal sends them to sign in.
    pub fn is_page(&self) -> bool {
        matches!(self, Route::TransferList | Route::TransferPage(_) | Route::SignOut)
    }
}

/// Why a path was refused before routing.
#[derive(Debug, PartialEq, Eq)]
pub struct BadPath(pub &'static str);

/// The path's segments, decoded, or why it is refused.
pub fn segments(raw: &str) -> Result<Vec<String>, BadPath> {
    if !raw.starts_with('/') {
        return Err(BadPath("a path starts with /"));
    }
    let lower = raw.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || raw.contains('\\') || lower.contains("%00") {
        return Err(BadPath("an encoded slash, a backslash or a NUL in the path"));
    }
    let trimmed = raw.strip_suffix('/').unwrap_or(raw);
    let mut out = Vec::new();
    for (i, segment) in trimmed.split('/').enumerate().skip(1) {
        let decoded = crate::http::percent_decode(segment).ok_or(BadPath("a malformed escape in the path"))?;
        if decoded == "." || decoded == ".." {
            return Err(BadPath("a . or .. segment in the path"));
        }
        if segment.is_empty() && i > 0 {
            return Err(BadPath("an empty segment (//) in the path"));
        }
        out.push(decoded);
    }
    Ok(out)
}

fn id(s: &str) -> Option<Uuid> {
    // Archivematica's routes take the hyphenated form only.
    (s.len() == 36).then(|| Uuid::parse_str(s).ok()).flatten()
}

/// The route for a method and a path's segments.
pub fn route(method: &str, segments: &[String]) -> Route {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (get, post, delete) = (method == "GET" || method == "HEAD", method == "POST", method == "DELETE");
    let only = |ok: bool, route: Route, allowed: &'static [&'static str]| {
        if ok {
            route
        } else {
            Route::WrongMethod(allowed)
        }
    };
    const GET: &[&str] = &["GET"];
    const POST: &[&str] = &["POST"];
    const DELETE: &[&str] = &["DELETE"];
    match s.as_slice() {
        [] => only(get, Route::TransferList, GET),
        ["health"] => only(get, Route::Health, GET),
        ["sign-in"] if post => Route::SignIn,
        ["sign-in", "oidc"] => only(get, Route::OidcStart, GET),
        ["sign-in", "callback"] => only(get, Route::OidcCallback, GET),
        ["sign-in"] => only(get, Route::SignInPage, &["GET", "POST"]),
        ["sign-out"] => only(post, Route::SignOut, POST),
        ["static", name] => match ASSETS.iter().find(|a| *a == name) {
            Some(a) => only(get, Route::Asset(a), GET),
            None => Route::NotFound,
        },
        ["transfers", t] => match id(t) {
            Some(t) => only(get, Route::TransferPage(t), GET),
            None => Route::NotFound,
        },
        ["status"] => only(get, Route::Status, GET),
        ["api", "openapi.json"] => only(get, Route::OpenApi, GET),
        ["api", "transfers"] if post => Route::StartTransfer,
        ["api", "transfers"] => only(get, Route::Transfers, &["GET", "POST"]),
        ["api", "transfers", "hide-completed"] => only(post, Route::HideCompleted, POST),
        ["api", "aips"] => only(get, Route::Aips, GET),
        ["api", "users"] => only(get, Route::Users, GET),
        ["api", "aips", "download"] => only(get, Route::AipDownload, GET),
        ["api", "transfers", t, rest @ ..] => match (id(t), rest) {
            (Some(t), []) => only(get, Route::Transfer(t), GET),
            (Some(t), ["files"]) => only(get, Route::TransferFiles(t), GET),
            (Some(t), ["events"]) => only(get, Route::TransferEvents(t), GET),
            (Some(t), ["dip"]) => only(get, Route::TransferDip(t), GET),
            (Some(t), ["retry"]) => only(post, Route::Retry(t), POST),
            (Some(t), ["hide"]) => only(post, Route::Hide(t), POST),
            _ => Route::NotFound,
        },
        ["api", kind @ ("transfer" | "ingest"), rest @ ..] => {
            let unit = if *kind == "transfer" { Unit::Transfer } else { Unit::Ingest };
            match rest {
                ["status", u] => id(u).map_or(Route::NotFound, |u| only(get, Route::AmStatus(unit, u), GET)),
                ["completed"] => only(get, Route::AmCompleted(unit), GET),
                ["unapproved"] if unit == Unit::Transfer => only(get, Route::AmUnapproved, GET),
                ["waiting"] if unit == Unit::Ingest => only(get, Route::AmWaiting, GET),
                ["delete"] => only(delete, Route::AmHideCompleted(unit), DELETE),
                [u, "delete"] => id(u).map_or(Route::NotFound, |u| only(delete, Route::AmHide(unit, u), DELETE)),
                _ => Route::NotFound,
            }
        }
        ["api", "v2beta", "jobs", u] => id(u).map_or(Route::NotFound, |u| only(get, Route::AmJobs(u), GET)),
        ["api", "v2beta", "task", u] => id(u).map_or(Route::NotFound, |u| only(get, Route::AmTask(u), GET)),
        ["api", "v2beta", "package"] => only(post, Route::AmPackage, &["GET", "POST"]),
        ["api", "processing-configuration"] => only(get, Route::AmProcessingConfigurations, GET),
        ["api", "processing-configuration", name] => only(get, Route::AmProcessingConfiguration(name.to_string()), GET),
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(method: &str, path: &str) -> Result<Route, BadPath> {
        segments(path).map(|s| route(method, &s))
    }

    #[test]
    fn routes_answer_with_and_without_their_slash() {
        let u = "6f1c1a4e-2f5b-4d7e-9a51-3c8e2b7d9f10";
        let id = Uuid::parse_str(u).unwrap();
        assert_eq!(of("GET", &format!("/api/transfer/status/{u}")), Ok(Route::AmStatus(Unit::Transfer, id)));
        assert_eq!(of("GET", &format!("/api/transfer/status/{u}/")), Ok(Route::AmStatus(Unit::Transfer, id)));
        assert_eq!(of("DELETE", &format!("/api/ingest/{u}/delete/")), Ok(Route::AmHide(Unit::Ingest, id)));
        assert_eq!(of("GET", "/api/transfer/completed"), Ok(Route::AmCompleted(Unit::Transfer)));
        assert_eq!(of("GET", "/"), Ok(Route::TransferList));
        assert_eq!(of("POST", "/api/transfer/completed"), Ok(Route::WrongMethod(&["GET"])));
        assert_eq!(of("GET", "/api/transfer/status/not-a-uuid"), Ok(Route::NotFound));
    }

    #[test]
    fn path_tricks_are_refused_before_routing() {
        for bad in [
            "/api/transfers/../status",
            "/api/%2e%2e/status",
            "/api/transfers%2Fx",
            "/static/..%5cvellum.db",
            "/static/.",
            "//status",
            "/api/%zz",
            "status",
        ] {
            assert!(segments(bad).is_err(), "{bad} was let through");
        }
        assert_eq!(of("GET", "/static/../../etc/passwd").ok(), None);
        assert_eq!(of("GET", "/static/dashboard.css"), Ok(Route::Asset("dashboard.css")));
        assert_eq!(of("GET", "/static/vellum.db"), Ok(Route::NotFound));
    }
}
