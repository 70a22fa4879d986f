//! A request and a response as the router sees them, whichever edge carried them.

use std::collections::BTreeMap;

/// A request: the path as sent (still percent-encoded), header names in lower case.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// A verified token's claims: set only by an edge that checked the token itself (API
    /// Gateway's JWT authorizer); never read from the request's own headers.
    pub claims: Option<BTreeMap<String, String>>,
}

impl Request {
    pub fn get(path: &str) -> Self {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (path, None),
        };
        Self { method: "GET".into(), path: path.into(), query, ..Default::default() }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec(value).expect("JSON values serialize"),
        }
    }
}
