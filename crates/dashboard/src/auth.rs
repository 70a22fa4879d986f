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
    Response::json(403, &serde_json::json!({"message": "API key not valid.", "error": true}))
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
