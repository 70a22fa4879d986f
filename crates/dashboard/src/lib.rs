//! The dashboard: one router, served twice — by the `dashboard` Lambda behind API Gateway
//! and by `vellum serve`. Each edge turns its request into a [`Request`] and writes back the
//! [`Response`]; what is routed, and how, is decided here only.

pub mod http;
mod json_api;

use std::sync::Arc;

use vellum_core::ports::{Queue, StateStore};

pub use crate::http::{Request, Response};

/// What the dashboard reads: the state store and the queues.
pub struct Dashboard {
    pub state: Arc<dyn StateStore>,
    pub queue: Arc<dyn Queue>,
}

impl Dashboard {
    pub fn new(state: Arc<dyn StateStore>, queue: Arc<dyn Queue>) -> Self {
        Self { state, queue }
    }

    /// Answers one request.
    pub fn handle(&self, request: &Request) -> Response {
        let path = request.path.split('?').next().unwrap_or_default().trim_end_matches('/');
        let answer = match (request.method.as_str(), path) {
            ("GET", "" | "/status") => json_api::status(self),
            ("GET", p) if p.starts_with("/api/transfers/") => json_api::transfer(self, &p["/api/transfers/".len()..]),
            _ => return Response::json(404, &serde_json::json!({"error": format!("no route {path}")})),
        };
        match answer {
            Ok(Some(v)) => Response::json(200, &v),
            Ok(None) => Response::json(404, &serde_json::json!({"error": "no such transfer"})),
            Err(e) => {
                tracing::warn!(error = %e, path, "a dashboard request failed");
                Response::json(500, &serde_json::json!({"error": e.to_string()}))
            }
        }
    }
}
