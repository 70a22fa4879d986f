//! The dashboard behind API Gateway: an HTTP API request, as `lambda_http` reads it, handed
//! to the router `vellum serve` serves too (`vellum_dashboard::server`). The JWT authorizer's
//! claims and the caller's address come from the request context API Gateway wrote, never
//! from the caller's headers.

use std::collections::BTreeMap;

use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use vellum_dashboard::server::{Peer, RawPath, VerifiedClaims};

/// API Gateway's request as the router takes it.
pub fn request(event: lambda_http::Request) -> axum::http::Request<axum::body::Body> {
    let context = event.request_context_ref();
    let (claims, peer) = match context {
        Some(RequestContext::ApiGatewayV2(context)) => (
            context
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .map(|jwt| jwt.claims.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<BTreeMap<_, _>>()),
            context.http.source_ip.clone(),
        ),
        _ => (None, None),
    };
    let raw_path = event.raw_http_path().to_string();
    let (parts, body) = event.into_parts();
    let mut request = axum::http::Request::from_parts(parts, axum::body::Body::from(body.to_vec()));
    if let Some(claims) = claims {
        request.extensions_mut().insert(VerifiedClaims(claims));
    }
    if let Some(peer) = peer {
        request.extensions_mut().insert(Peer(peer));
    }
    request.extensions_mut().insert(RawPath(raw_path));
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    use tower::ServiceExt;

    fn sample(name: &str) -> lambda_http::Request {
        let text = std::fs::read_to_string(format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        lambda_http::request::from_str(&text).unwrap()
    }

    fn claims(request: &axum::http::Request<axum::body::Body>) -> Option<&BTreeMap<String, String>> {
        request.extensions().get::<VerifiedClaims>().map(|c| &c.0)
    }

    #[test]
    fn api_gateway_requests_read_as_the_router_wants_them() {
        let status = request(sample("apigw-status.json"));
        assert_eq!((status.method().as_str(), status.uri().path()), ("GET", "/status"));
        assert_eq!(claims(&status).and_then(|c| c.get("email")).map(String::as_str), Some("archivist@example.org"));
        assert!(status.extensions().get::<Peer>().is_some_and(|p| !p.0.is_empty()), "the source IP API Gateway saw");
        let keyed = request(sample("apigw-api-key.json"));
        assert!(claims(&keyed).is_none(), "no authorizer, no claims");
        assert_eq!(keyed.headers()["authorization"], "ApiKey scripts:not-a-real-key");
    }

    #[test]
    fn a_forged_claims_header_is_not_a_claim() {
        let mut event = sample("apigw-api-key.json");
        event.headers_mut().insert("x-jwt-claims", r#"{"email":"boss@example.org"}"#.parse().unwrap());
        assert!(claims(&request(event)).is_none());
    }

    async fn ask(router: &axum::Router, name: &str) -> (u16, axum::http::HeaderMap, serde_json::Value) {
        let answer = router.clone().oneshot(request(sample(name))).await.unwrap();
        let (parts, body) = answer.into_parts();
        let bytes = http_body_util::BodyExt::collect(body).await.unwrap().to_bytes();
        (parts.status.as_u16(), parts.headers, serde_json::from_slice(&bytes).unwrap())
    }

    /// The sample events answered by the router the function serves: a token's claims admit
    /// only the user registered with its issuer and subject; a wrong key gets Archivematica's 403.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_router_answers_the_sample_events() {
        let t = vellum_tests::TestEnv::new(50);
        let router = vellum_dashboard::server::router(
            std::sync::Arc::new(t.dashboard(false)),
            vellum_dashboard::server::Limits::behind_api_gateway(),
        );
        let (status, _, body) = ask(&router, "apigw-status.json").await;
        assert_eq!(status, 403, "a valid token of someone not registered");
        assert_eq!(body, serde_json::json!({"message": "API key not valid.", "error": true}));
        // Found by the token's issuer and Azure's object id, not by the email it carries.
        t.api_key("archivist", Some("archivist@example.org"));
        let (status, _, _) = ask(&router, "apigw-status.json").await;
        assert_eq!(status, 403, "an email names nobody");
        let identity = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0|11111111-2222-3333-4444-555555555555";
        t.register_identity("curator", vellum_core::model::Role::Viewer, identity);
        let (status, _, body) = ask(&router, "apigw-status.json").await;
        assert_eq!(status, 200);
        assert!(body["transfers"].is_array() && body["queues"]["store"]["messages"] == 0, "{body}");
        let (status, headers, _) = ask(&router, "apigw-transfer.json").await;
        assert_eq!(status, 404);
        assert_eq!(headers["content-type"], "application/json");
        assert!(headers["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
        let (status, _, _) = ask(&router, "apigw-api-key.json").await;
        assert_eq!(status, 403, "a key that is not one");
    }
}
