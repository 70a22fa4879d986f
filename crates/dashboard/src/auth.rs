//! Who sent a request: an API key (Archivematica's header or query parameters), a token's
//! claims that the edge verified, or a sign-in session's cookie — and what a refusal says.

use vellum_core::operations::access::{authenticate, Credential, User};
use vellum_core::ports::PortResult;

use crate::http::{percent_encode, Request, Response};
use crate::routes::Route;
use crate::Dashboard;

pub const SESSION_COOKIE: &str = "vellum_session";

/// The credential a request offers, in this order: the Authorization header, the query's
/// `username` and `api_key`, the edge's verified claims, the session cookie.
pub fn credential(request: &Request) -> Option<Credential> {
    if let Some(value) = request.header("authorization") {
        let (scheme, rest) = value.trim().split_once(' ')?;
        if scheme.eq_ignore_ascii_case("apikey") {
            let (user, key) = rest.trim().split_once(':')?;
            return Some(Credential::ApiKey { user: user.to_string(), key: key.to_string() });
        }
    }
    let params = request.params();
    if let (Some(user), Some(key)) = (params.get("username"), params.get("api_key")) {
        return Some(Credential::ApiKey { user: user.clone(), key: key.clone() });
    }
    if let Some(claims) = &request.claims {
        return Some(Credential::Claims(claims.clone()));
    }
    request.cookie(SESSION_COOKIE).map(Credential::Session)
}

/// The registered user behind the request, if any.
pub fn user(d: &Dashboard, request: &Request) -> PortResult<Option<User>> {
    match credential(request) {
        Some(c) => authenticate(d.access.as_ref(), d.clock.now(), &c),
        None => Ok(None),
    }
}

/// Archivematica's refusal, word for word.
pub fn refused_api() -> Response {
    Response::error(403, "API key not valid.")
}

/// A refusal in the form the route's caller reads.
pub fn refused(d: &Dashboard, route: &Route, request: &Request) -> Response {
    if route.is_page() {
        if d.sign_in {
            let next = if request.path.starts_with('/') { request.path.as_str() } else { "/" };
            return Response::see_other(&format!("/sign-in?next={}", percent_encode(next)));
        }
        return crate::pages::layout::not_registered();
    }
    refused_api()
}

/// A change asked by a browser with its session cookie must come from this site: its
/// `Origin` (or, without one, its `Referer`) names the host the request was sent to, and a
/// change through the JSON API says it sends JSON (a form or `text/plain` body, which any
/// page may post to another site, does not). SameSite cookies alone leave older browsers and
/// sibling subdomains; keys in headers are not sent by browsers on their own, so requests
/// with a key are not asked. None when the request may go on.
pub fn cross_site(route: &Route, request: &Request) -> Option<Response> {
    if matches!(request.method.as_str(), "GET" | "HEAD") || !matches!(credential(request), Some(Credential::Session(_)))
    {
        return None;
    }
    let refuse = |why: &str| Some(Response::error(403, why));
    let host = request.header("host").map(|h| h.trim().to_ascii_lowercase());
    let from = request.header("origin").or_else(|| request.header("referer"));
    let from_host = from
        .and_then(|f| f.split_once("://"))
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or_default().to_ascii_lowercase());
    match (host, from_host) {
        (Some(host), Some(from)) if host == from => {}
        _ => return refuse("a change made with a sign-in must come from this site's own pages (its Origin)"),
    }
    let json =
        request.header("content-type").is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("application/json"));
    if *route != Route::SignOut && !json {
        return refuse("a change made with a sign-in is sent as JSON (Content-Type: application/json)");
    }
    None
}

/// A refusal when the user's role does not reach what the route needs; None when it does.
pub fn beyond_role(route: &Route, request: &Request, user: &User) -> Option<Response> {
    let needed = route.needs();
    if user.role >= needed {
        return None;
    }
    tracing::warn!(
        audit = "refused",
        user = %user.name,
        role = user.role.name(),
        needed = needed.name(),
        method = %request.method,
        path = %crate::pages::layout::visible(&request.path),
        "a request beyond the user's role refused"
    );
    let message = format!(
        "{} is a {} and may not do this: it needs the {} role (vellum users add --role).",
        user.name,
        user.role.name(),
        needed.name()
    );
    Some(Response::error(403, message))
}
