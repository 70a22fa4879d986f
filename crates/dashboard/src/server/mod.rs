//! The dashboard's HTTP stack, one for both worlds: an axum router on hyper and tokio that
//! reads each request within limits and hands it to [`Dashboard::handle`]. `vellum serve`
//! runs it on a socket ([`listen::serve`]); the dashboard Lambda runs the same router through
//! `lambda_http`. Limits are applied before anyone is authenticated, so a client nobody knows
//! can neither hold the others up nor make the server read a large body.

mod convert;
pub mod listen;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request as HttpRequest, State};
use axum::response::Response as HttpResponse;
use tokio::sync::Semaphore;

use crate::Dashboard;

/// The limits every request meets (documented in `docs/dashboard.md`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// The sign-in form's body: a user name and a key.
    pub sign_in_body: usize,
    /// Any other body (the JSON API's, Archivematica's forms).
    pub body: usize,
    /// The request line and headers together; more is answered 431 (or 414 for the line).
    pub header_bytes: usize,
    /// From a connection's first byte (or the end of the last answer, on a kept-alive
    /// connection) to the end of the headers; a slower or idle client is disconnected.
    pub header_read: Duration,
    /// The whole body; a slower one is answered 408.
    pub body_read: Duration,
    /// Requests handled at once; more wait their turn (the stores are the scarce part).
    pub in_flight: usize,
    /// Connections open at once; more wait in the listen backlog.
    pub connections: usize,
    /// The largest answer streamed whole (API Gateway takes 6 MB; beyond it, a link's job).
    pub streamed_answer: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            sign_in_body: 8 << 10,
            body: 1 << 20,
            header_bytes: 16 << 10,
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(10),
            in_flight: 32,
            connections: 1024,
            streamed_answer: None,
        }
    }
}

impl Limits {
    /// Behind API Gateway: its own limits hold the connection; an answer must fit its payload.
    pub fn behind_api_gateway() -> Self {
        Self { streamed_answer: Some(5 << 20), ..Self::default() }
    }

    /// The body limit of a request, by the route the dashboard's own table finds for it.
    fn body_for(&self, method: &str, path: &str) -> usize {
        let route = crate::routes::segments(path).map(|s| crate::routes::route(method, &s));
        if matches!(route, Ok(crate::routes::Route::SignIn)) {
            self.sign_in_body
        } else {
            self.body
        }
    }
}

/// A verified token's claims, put on the request by an edge that checked the token itself
/// (API Gateway's JWT authorizer); never read from the request's own headers.
#[derive(Debug, Clone)]
pub struct VerifiedClaims(pub std::collections::BTreeMap<String, String>);

/// Where a request came from, put on it by the edge.
#[derive(Debug, Clone)]
pub struct Peer(pub String);

/// The path exactly as the client sent it, when the edge's URI was rebuilt from it
/// (API Gateway's `rawPath`).
#[derive(Debug, Clone)]
pub struct RawPath(pub String);

struct App {
    dashboard: Arc<Dashboard>,
    limits: Limits,
    turns: Semaphore,
}

/// The router both worlds serve: every route goes through the dashboard's own route table
/// (`routes.rs`), after the request has been read within its limits.
pub fn router(dashboard: Arc<Dashboard>, limits: Limits) -> axum::Router {
    let app = Arc::new(App { turns: Semaphore::new(limits.in_flight.max(1)), dashboard, limits: limits.clone() });
    axum::Router::new()
        .fallback(answer)
        .with_state(app)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(limits.body_read))
        // Keys and cookies never reach a log line, whatever logs the request.
        .layer(tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
            axum::http::header::COOKIE,
        ]))
}

async fn answer(State(app): State<Arc<App>>, request: HttpRequest) -> HttpResponse {
    let limit = app.limits.body_for(request.method().as_str(), request.uri().path());
    let asked = match convert::request(request, limit).await {
        Ok(asked) => asked,
        Err(refusal) => return convert::response(refusal, None),
    };
    let Ok(_turn) = app.turns.acquire().await else {
        return convert::response(crate::Response::error(503, "The dashboard is shutting down."), None);
    };
    let dashboard = app.dashboard.clone();
    match tokio::task::spawn_blocking(move || dashboard.handle(&asked)).await {
        Ok(answer) => convert::response(answer, app.limits.streamed_answer),
        Err(e) => {
            tracing::error!(error = %e, "a dashboard request panicked");
            convert::response(crate::Response::error(500, "The request could not be answered."), None)
        }
    }
}
