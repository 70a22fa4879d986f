//! The dashboard behind API Gateway: an HTTP API request, as `lambda_http` reads it, in the
//! router's terms, and the router's answer back. The JWT authorizer's claims come from the
//! request context API Gateway wrote, never from the caller's headers.

use std::collections::BTreeMap;

use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use vellum_dashboard::{Request, Response};

/// API Gateway's request as the router's.
pub fn request(event: &lambda_http::Request) -> Request {
    let claims = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| jwt.claims.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<BTreeMap<_, _>>()),
        _ => None,
    };
    let raw_path = event.raw_http_path();
    Request {
        method: event.method().as_str().to_string(),
        path: if raw_path.is_empty() { event.uri().path().to_string() } else { raw_path.to_string() },
        query: event.uri().query().map(str::to_string),
        headers: event
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
            .collect(),
        body: event.body().to_vec(),
        claims,
    }
}

/// What a Lambda may answer: API Gateway takes 6 MB; a larger body is a link's job.
const MAX_BODY: u64 = 5 << 20;

/// The router's answer as `lambda_http` sends it.
pub fn response(mut answer: Response) -> lambda_http::Response<Body> {
    if let Some(mut stream) = answer.stream.take() {
        if stream.len > MAX_BODY {
            answer = Response::json(
                502,
                &serde_json::json!({"message": "the answer is too large for API Gateway: ask for a download link", "error": true}),
            );
        } else {
            let mut body = Vec::with_capacity(stream.len as usize);
            if let Err(e) = std::io::Read::read_to_end(&mut stream.reader, &mut body) {
                answer = Response::json(
                    503,
                    &serde_json::json!({"message": format!("reading the answer: {e}"), "error": true}),
                );
            } else {
                answer.body = body;
            }
        }
    }
    let mut builder = lambda_http::Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(Body::Binary(answer.body)).unwrap_or_else(|e| {
        let mut failed = lambda_http::Response::new(Body::Text(format!("a response could not be built: {e}")));
        *failed.status_mut() = lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR;
        failed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> lambda_http::Request {
        let text = std::fs::read_to_string(format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        lambda_http::request::from_str(&text).unwrap()
    }

    #[test]
    fn api_gateway_requests_read_as_the_router_wants_them() {
        let status = request(&sample("apigw-status.json"));
        assert_eq!((status.method.as_str(), status.path.as_str()), ("GET", "/status"));
        assert_eq!(
            status.claims.as_ref().and_then(|c| c.get("email")).map(String::as_str),
            Some("archivist@example.org")
        );
        let keyed = request(&sample("apigw-api-key.json"));
        assert!(keyed.claims.is_none(), "no authorizer, no claims");
        assert_eq!(keyed.header("Authorization"), Some("ApiKey scripts:not-a-real-key"));
    }

    #[test]
    fn a_forged_claims_header_is_not_a_claim() {
        let mut event = sample("apigw-api-key.json");
        event.headers_mut().insert("x-jwt-claims", r#"{"email":"boss@example.org"}"#.parse().unwrap());
        assert!(request(&event).claims.is_none());
    }

    /// The sample events answered by the dashboard's router, as the function answers them:
    /// a token's claims admit only a registered user; a wrong key gets Archivematica's 403.
    #[test]
    fn the_router_answers_the_sample_events() {
        let t = vellum_tests::TestEnv::new(50);
        let dashboard = t.dashboard(false);
        let refused = response(dashboard.handle(&request(&sample("apigw-status.json"))));
        assert_eq!(refused.status(), 403, "a valid token of someone not registered");
        let body: serde_json::Value = serde_json::from_slice(refused.body()).unwrap();
        assert_eq!(body, serde_json::json!({"message": "API key not valid.", "error": true}));
        t.api_key("archivist", Some("Archivist@Example.org"));
        let status = response(dashboard.handle(&request(&sample("apigw-status.json"))));
        assert_eq!(status.status(), 200);
        let body: serde_json::Value = serde_json::from_slice(status.body()).unwrap();
        assert!(body["transfers"].is_array() && body["queues"]["store"]["messages"] == 0, "{body}");
        let missing = response(dashboard.handle(&request(&sample("apigw-transfer.json"))));
        assert_eq!(missing.status(), 404);
        assert_eq!(missing.headers()["content-type"], "application/json");
        assert!(missing.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
        let keyed = response(dashboard.handle(&request(&sample("apigw-api-key.json"))));
        assert_eq!(keyed.status(), 403, "a key that is not one");
    }
}
