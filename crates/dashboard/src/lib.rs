//! The dashboard: one router, served twice — by the `dashboard` Lambda behind API Gateway
//! and by `vellum serve`. Each edge turns its request into a [`Request`] and writes back the
//! [`Response`]; what is routed, who may use it and how are decided here only.
//!
//! Deny by default: every route but the health check, the sign-in page and the static
//! files needs a registered user (a valid API key, a verified token of a registered user, or
//! a sign-in session).

pub mod answer_cache;
mod api;
mod auth;
pub mod http;
pub mod oidc;
pub mod pages;
pub mod routes;
pub mod server;
pub mod throttle;

use std::sync::Arc;

use vellum_core::config::profile::Config;
use vellum_core::ports::{AccessStore, Clock, ObjectStore, Queue, StateStore};

pub use crate::http::{Request, Response};
use crate::routes::Route;

/// What the dashboard reads and changes.
pub struct Dashboard {
    pub state: Arc<dyn StateStore>,
    pub queue: Arc<dyn Queue>,
    pub access: Arc<dyn AccessStore>,
    /// The uploads bucket: a transfer is started from an object already there.
    pub uploads: Arc<dyn ObjectStore>,
    pub clock: Arc<dyn Clock>,
    /// The profiles, shown as Archivematica's processing configurations.
    pub config: Config,
    /// Whether people sign in here (embedded mode) rather than through an OIDC provider
    /// in front (API Gateway's JWT authorizer).
    pub sign_in: bool,
    /// The stored AIPs, for the storage service's read side.
    pub aips: Arc<dyn ObjectStore>,
    /// Download links that expire (S3's presigned URLs); without them (embedded mode) an
    /// AIP is streamed through the dashboard.
    pub links: Option<Arc<dyn AipLinks>>,
    /// The stored DIPs, where the deployment has a DIP location, and links to their files
    /// (on AWS; in embedded mode a DIP's file is streamed).
    pub dips: Option<Arc<dyn ObjectStore>>,
    pub dip_links: Option<Arc<dyn AipLinks>>,
    /// What many readers poll (`/status`, the list, a transfer's detail), read at most once a
    /// second for all of them.
    pub answers: answer_cache::AnswerCache,
    /// Failed sign-ins and wrong keys, counted to hold guessing back.
    pub throttle: throttle::Throttle,
    /// The OIDC provider people sign in through, when one is set (`VELLUM_OIDC_*`).
    pub oidc: Option<Arc<oidc::Oidc>>,
}

/// A link to a stored AIP that anyone holding it may use until it expires.
pub trait AipLinks: Send + Sync {
    fn link(&self, key: &str, expires: std::time::Duration) -> vellum_core::ports::PortResult<String>;
}

impl Dashboard {
    /// Answers one request.
    pub fn handle(&self, request: &Request) -> Response {
        let mut response = self.answer(request);
        security_headers(&mut response);
        response
    }

    fn answer(&self, request: &Request) -> Response {
        let segments = match routes::segments(&request.path) {
            Ok(s) => s,
            Err(routes::BadPath(why)) => return Response::error(400, format!("Not a valid path: {why}.")),
        };
        let route = routes::route(&request.method, &segments);
        if route.is_open() {
            return self.open(&route, request);
        }
        let credential = auth::credential_checked(self, request);
        let user = match auth::admit(self, request, credential.as_ref()) {
            Ok(auth::Admission::Admitted(user)) => user,
            Ok(auth::Admission::Refused) => return auth::refused(self, &route, request),
            Ok(auth::Admission::HeldBack(wait)) => return auth::held_back(wait),
            Err(e) => return failed(&e),
        };
        if let Some(refusal) = auth::cross_site(&route, request) {
            tracing::warn!(user = %user.name, path = %request.path, "a cross-site change refused");
            return refusal;
        }
        if let Some(refusal) = auth::beyond_role(&route, request, &user) {
            return refusal;
        }
        let answer = match &route {
            Route::NotFound => Ok(Response::error(404, "No such route.")),
            Route::WrongMethod(allowed) => {
                Ok(Response::with_type(405, "text/plain; charset=utf-8", "Method not allowed")
                    .header("Allow", &allowed.join(", ")))
            }
            Route::SignOut => Ok(pages::sign_out(self, request)),
            Route::TransferList | Route::TransferPage(_) => pages::page(self, &route, request, &user),
            r if r.is_archivematica() => api::archivematica::answer(self, r, request, &user),
            Route::Aips | Route::AipDownload => api::aips::answer(self, &route, request, &user),
            Route::TransferDip(id) => api::aips::dip(self, *id, request, &user),
            r => api::json::answer(self, r, request, &user),
        };
        if !matches!(request.method.as_str(), "GET" | "HEAD") {
            self.answers.forget();
        }
        answer.unwrap_or_else(|e| failed(&e))
    }

    fn open(&self, route: &Route, request: &Request) -> Response {
        match route {
            Route::Health => Response::json(200, &serde_json::json!({"status": "ok"})),
            Route::Asset(name) => pages::asset(name),
            Route::SignInPage => pages::sign_in_page(self, request, None),
            Route::SignIn => pages::sign_in(self, request).unwrap_or_else(|e| failed(&e)),
            Route::OidcStart => pages::oidc_start(self, request),
            Route::OidcCallback => pages::oidc_callback(self, request).unwrap_or_else(|e| failed(&e)),
            _ => Response::error(404, "No such route."),
        }
    }
}

/// A failure of the stores behind the dashboard: logged, and said plainly. What the
/// request asked wrongly (a value the store refuses, a thing not there, a change another
/// made first) is the client's 4xx; only the stores' own trouble is 5xx.
fn failed(e: &vellum_core::ports::PortError) -> Response {
    use vellum_core::ports::PortError;
    tracing::warn!(error = %e, "a dashboard request failed");
    let status = match e {
        PortError::Refused(_) => 400,
        PortError::NotFound(_) => 404,
        PortError::Conflict(_) => 409,
        PortError::Unavailable(_) => 503,
        PortError::Corrupt(_) => 500,
    };
    Response::error(status, e.to_string())
}

/// What every answer carries: no inline script from anywhere, no framing, no sniffing.
pub(crate) fn security_headers(response: &mut Response) {
    for (name, value) in [
        (
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        ("X-Content-Type-Options", "nosniff"),
        // Same-origin only: a change from these pages then carries its real Origin (with
        // no-referrer browsers send `Origin: null`, which the cross-site rule refuses).
        ("Referrer-Policy", "same-origin"),
        ("Cache-Control", "no-store"),
    ] {
        if response.header_value(name).is_none() {
            response.headers.push((name.into(), value.into()));
        }
    }
}
