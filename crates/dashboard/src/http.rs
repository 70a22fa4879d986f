//! A request and a response as the router sees them, whichever edge carried them, and the
//! small parsers the routes need (query strings, forms, cookies).

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
    /// Where the request came from (the socket's address, or the source IP API Gateway saw),
    /// for throttling and the audit log; None when not known.
    pub peer: Option<String>,
}

impl Request {
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    /// A request with this method and path (a query after `?`).
    pub fn new(method: &str, path: &str) -> Self {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (path, None),
        };
        Self { method: method.into(), path: path.into(), query, ..Default::default() }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The path with its query, as asked (HTTP's request target).
    pub fn target(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }

    /// The query's parameters, decoded; the first of a repeated name wins.
    pub fn params(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (k, v) in form_pairs(self.query.as_deref().unwrap_or_default()) {
            out.entry(k).or_insert(v);
        }
        out
    }

    pub fn param(&self, name: &str) -> Option<String> {
        self.params().remove(name)
    }

    /// A form body (`application/x-www-form-urlencoded`), decoded.
    pub fn form(&self) -> BTreeMap<String, String> {
        form_pairs(&String::from_utf8_lossy(&self.body)).into_iter().collect()
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("cookie")).find_map(|(_, v)| {
            v.split(';').filter_map(|c| c.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        })
    }
}

/// `a=1&b=x+y` as pairs, `+` a space and `%XX` a byte; what does not decode is kept as sent.
pub fn form_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_form(k), decode_form(v))
        })
        .collect()
}

fn decode_form(s: &str) -> String {
    percent_decode(&s.replace('+', " ")).unwrap_or_else(|| s.to_string())
}

/// `%XX` escapes decoded; None when an escape is malformed or the bytes are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `s` made safe inside a URL's query value or path segment.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// A body too large to hold (a stored AIP), read as it is sent; `body` is then empty.
    pub stream: Option<Stream>,
}

pub struct Stream {
    pub reader: Box<dyn std::io::Read + Send>,
    pub len: u64,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .field("stream", &self.stream.as_ref().map(|s| s.len))
            .finish()
    }
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::with_type(status, "application/json", serde_json::to_vec(value).expect("JSON values serialize"))
    }

    /// An error as every JSON answer gives one: `{"message": ..., "error": true}`.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self::json(status, &serde_json::json!({"message": message.into(), "error": true}))
    }

    pub fn with_type(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self { status, headers: vec![("Content-Type".into(), content_type.into())], body: body.into(), stream: None }
    }

    pub fn html(status: u16, body: String) -> Self {
        Self::with_type(status, "text/html; charset=utf-8", body)
    }

    /// A redirect after a form (303: the browser follows with a GET).
    pub fn see_other(location: &str) -> Self {
        Self::with_type(303, "text/plain; charset=utf-8", format!("See {location}")).header("Location", location)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json_body(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_forms_and_cookies_decode() {
        let r = Request::get("/a?username=me&api_key=k%2B1&q=a+b&q=second")
            .with_header("Cookie", "x=1; vellum_session=abc")
            .with_body("user=ann&key=%41");
        assert_eq!(r.param("api_key").as_deref(), Some("k+1"));
        assert_eq!(r.param("q").as_deref(), Some("a b"), "the first wins");
        assert_eq!(r.cookie("vellum_session").as_deref(), Some("abc"));
        assert_eq!(r.form().get("key").map(String::as_str), Some("A"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_encode("a b/é"), "a%20b%2F%C3%A9");
    }
}
