//! Who sent a request: an API key (Archivematica's header or query parameters), a token's
//! claims that the edge verified, or a sign-in session's cookie — and what a refusal says.

use vellum_core::operations::access::{authenticate, Credential, User};
use vellum_core::ports::PortResult;

use crate::http::{percent_encode, Request, Response};
use crate::pages::layout::visible;
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

/// The request's credential, with a bearer token checked here when the OIDC provider is set
/// and no edge checked it: the routes a browser shares with machines pass API Gateway
/// without its JWT authorizer (a cookie cannot pass it), so their tokens are checked by the
/// dashboard, against the same issuer's published keys and for the same audience. A token
/// that fails is a credential that stands for nobody.
pub fn credential_checked(d: &Dashboard, request: &Request) -> Option<Credential> {
    if request.claims.is_none() {
        if let (Some(oidc), Some(token)) = (&d.oidc, bearer(request)) {
            let audience = oidc.settings().client_id.clone();
            return Some(Credential::Claims(match oidc.verify(token, &audience, None) {
                Ok(claims) => claims,
                Err(why) => {
                    tracing::warn!(audit = "bad token", peer = request.peer.as_deref().unwrap_or("-"), why = %why, "a bearer token refused");
                    Default::default()
                }
            }));
        }
    }
    credential(request)
}

fn bearer(request: &Request) -> Option<&str> {
    let (scheme, token) = request.header("authorization")?.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// Whether a request's credential lets it in.
pub enum Admission {
    Admitted(User),
    /// No credential, or one that stands for nobody registered.
    Refused,
    /// Too many failures from this address (or for this user): wait this long.
    HeldBack(std::time::Duration),
}

/// The registered user behind `credential`, with guessing held back: an API key is not
/// looked at while its address (or its user, from an address that failed) is held back, and
/// a wrong one is counted and written to the audit log — who, from where, which route,
/// never the key.
pub fn admit(d: &Dashboard, request: &Request, credential: Option<&Credential>) -> PortResult<Admission> {
    let Some(credential) = credential else { return Ok(Admission::Refused) };
    let peer = request.peer.as_deref();
    let route = visible(&request.path);
    let route = route.as_ref();
    let name = match credential {
        Credential::ApiKey { user, .. } => Some(visible(user).into_owned()),
        _ => None,
    };
    if let Some(name) = &name {
        if let Some(wait) = d.throttle.hold(peer, name) {
            tracing::warn!(audit = "held back", user = %name, peer = peer.unwrap_or("-"), route, wait_ms = wait.as_millis() as u64,
                "a key refused unread: too many failures lately");
            return Ok(Admission::HeldBack(wait));
        }
    }
    Ok(match (authenticate(d.access.as_ref(), d.clock.now(), credential)?, name) {
        (Some(user), Some(_)) => {
            d.throttle.succeeded(&user.name);
            Admission::Admitted(user)
        }
        (Some(user), None) => Admission::Admitted(user),
        (None, Some(name)) => {
            d.throttle.failed(peer, &name);
            tracing::warn!(audit = "wrong key", user = %name, peer = peer.unwrap_or("-"), route,
                "a wrong, revoked or unknown key refused");
            Admission::Refused
        }
        (None, None) => Admission::Refused,
    })
}

/// Whole seconds to wait, rounded up, as `Retry-After` says them.
pub fn retry_after(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// Archivematica's and Vellum's answer to a request held back: 429, and when to come back.
pub fn held_back(wait: std::time::Duration) -> Response {
    let seconds = retry_after(wait);
    Response::error(429, format!("Too many wrong keys lately: try again in {seconds} s."))
        .header("Retry-After", &seconds.to_string())
}

/// Archivematica's refusal, word for word.
pub fn refused_api() -> Response {
    Response::error(403, "API key not valid.")
}

/// A refusal in the form the route's caller reads.
pub fn refused(d: &Dashboard, route: &Route, request: &Request) -> Response {
    if route.is_page() {
        if d.oidc.is_some() {
            let next = if request.path.starts_with('/') { request.path.as_str() } else { "/" };
            return Response::see_other(&format!("/sign-in/oidc?next={}", percent_encode(next)));
        }
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
        path = %visible(&request.path),
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
