//! A browser's sign-in through an OpenID Connect provider, against a local provider that
//! signs real RS256 tokens with a key made for the run: the authorization code flow with
//! PKCE from the dashboard's first redirect to its session cookie, and what it refuses.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use vellum_dashboard::oidc::{Oidc, OidcSettings};
use vellum_dashboard::{Request, Response};
use vellum_tests::oidc_provider::{authorize, key_pair, query_of, sign};
use vellum_tests::TestEnv;

fn cookie(r: &Response, name: &str) -> String {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.split(';').next().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", r.headers))
}

#[test]
fn a_person_signs_in_through_the_oidc_provider_with_pkce_and_is_found_by_issuer_and_subject() {
    let provider = vellum_tests::oidc_provider::start("vellum-dashboard");
    let t = TestEnv::new(2);
    let identity = format!("{}|oid-42", provider.issuer);
    t.register_identity("curator", vellum_core::model::Role::Viewer, &identity);
    let mut d = t.dashboard(false);
    d.oidc = Some(Arc::new(Oidc::new(OidcSettings {
        issuer: provider.issuer.clone(),
        client_id: "vellum-dashboard".into(),
        client_secret: None,
        redirect_uri: None,
    })));
    let host = |r: Request| r.with_header("Host", "vellum.example");

    // A page sends the person to the provider, by way of the first leg.
    let page = d.handle(&host(Request::get("/?status=FAILED")));
    assert_eq!(page.status, 303);
    assert_eq!(page.header_value("Location"), Some("/sign-in/oidc?next=%2F"));
    let sign_in = |next: &str| {
        let started = d.handle(&host(Request::get(&format!("/sign-in/oidc?next={next}"))));
        assert_eq!(started.status, 303, "{}", String::from_utf8_lossy(&started.body));
        let to = started.header_value("Location").unwrap().to_string();
        assert!(to.starts_with(&format!("{}/authorize?", provider.issuer)), "{to}");
        let q = query_of(&to);
        assert_eq!(q["redirect_uri"], "http://vellum.example/sign-in/callback");
        assert!(q["code_challenge"].len() >= 43 && q["state"].len() >= 43 && q["nonce"].len() >= 43);
        (to, cookie(&started, "vellum_oidc"))
    };
    let (to, pending) = sign_in("%2Ftransfers");
    let back = authorize(&to);
    let callback = back.strip_prefix("http://vellum.example").unwrap().to_string();
    let finished = d.handle(&host(Request::get(&callback)).with_header("Cookie", &pending));
    assert_eq!(finished.status, 303, "{}", String::from_utf8_lossy(&finished.body));
    assert_eq!(finished.header_value("Location"), Some("/transfers"));
    let session = cookie(&finished, "vellum_session");
    assert_eq!(d.handle(&host(Request::get("/")).with_header("Cookie", &session)).status, 200, "signed in");
    // The code is spent: the same return again is refused by the provider.
    let replayed = d.handle(&host(Request::get(&callback)).with_header("Cookie", &pending));
    assert_eq!(replayed.status, 403);

    // A return with another sign-in's state, or without the cookie, is refused.
    let (to, pending) = sign_in("%2F");
    let (_, other) = sign_in("%2F");
    let callback = authorize(&to).strip_prefix("http://vellum.example").unwrap().to_string();
    let crossed = d.handle(&host(Request::get(&callback)).with_header("Cookie", &other));
    assert_eq!(crossed.status, 403, "another sign-in's cookie");
    assert!(String::from_utf8_lossy(&crossed.body).contains("state does not match"));
    assert_eq!(d.handle(&host(Request::get(&callback))).status, 403, "no cookie");
    let fine = d.handle(&host(Request::get(&callback)).with_header("Cookie", &pending));
    assert_eq!(fine.status, 303, "the right cookie still finishes it");

    // Someone the provider knows but Vellum does not is told how to be added; an email
    // they share with a registered user does not let them in.
    *provider.subject.lock().unwrap() = "oid-stranger".into();
    let (to, pending) = sign_in("%2F");
    let callback = authorize(&to).strip_prefix("http://vellum.example").unwrap().to_string();
    let stranger = d.handle(&host(Request::get(&callback)).with_header("Cookie", &pending));
    assert_eq!(stranger.status, 403);
    assert!(
        String::from_utf8_lossy(&stranger.body).contains("oid-stranger"),
        "{}",
        String::from_utf8_lossy(&stranger.body)
    );

    // A machine's bearer token on a route it shares with browsers is checked here.
    let now = chrono::Utc::now().timestamp();
    let claims =
        serde_json::json!({"iss": provider.issuer, "aud": "vellum-dashboard", "oid": "oid-42", "exp": now + 60});
    let bearer = |token: String| {
        d.handle(&Request::get("/api/transfers").with_header("Authorization", &format!("Bearer {token}"))).status
    };
    assert_eq!(bearer(sign(&provider.key, &claims)), 200);
    assert_eq!(bearer(sign(&key_pair(), &claims)), 403, "signed by another key");

    // A provider's error comes back said.
    let denied = d.handle(&host(Request::get("/sign-in/callback?error=access_denied")));
    assert_eq!(denied.status, 403);
    assert!(String::from_utf8_lossy(&denied.body).contains("access_denied"));
}

/// A token is taken only when the provider's published key signed it, for this audience,
/// from this issuer, unexpired and in RS256.
#[test]
fn only_an_unexpired_rs256_token_the_provider_signed_for_this_audience_is_taken() {
    let provider = vellum_tests::oidc_provider::start("vellum-dashboard");
    let oidc = Oidc::new(OidcSettings {
        issuer: provider.issuer.clone(),
        client_id: "vellum-dashboard".into(),
        client_secret: None,
        redirect_uri: None,
    });
    let now = chrono::Utc::now().timestamp();
    let claims = |aud: &str, iss: &str, exp: i64| serde_json::json!({"iss": iss, "aud": aud, "sub": "s", "oid": "o", "exp": exp, "nonce": "n"});
    let good = sign(&provider.key, &claims("vellum-dashboard", &provider.issuer, now + 60));
    let taken = oidc.verify(&good, "vellum-dashboard", Some("n")).expect("the provider's own token");
    assert_eq!(taken["oid"], "o");
    let refused = |token: &str, nonce: Option<&str>| oidc.verify(token, "vellum-dashboard", nonce).unwrap_err().0;
    assert!(refused(&good, Some("other")).contains("nonce"));
    let forged = sign(&key_pair(), &claims("vellum-dashboard", &provider.issuer, now + 60));
    assert!(refused(&forged, None).contains("signature"), "{}", refused(&forged, None));
    assert!(
        refused(&sign(&provider.key, &claims("someone-else", &provider.issuer, now + 60)), None).contains("audience")
    );
    assert!(refused(&sign(&provider.key, &claims("vellum-dashboard", "https://evil.example", now + 60)), None)
        .contains("issuer"));
    assert!(refused(&sign(&provider.key, &claims("vellum-dashboard", &provider.issuer, now - 600)), None)
        .contains("expired"));
    let unsigned = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none"}"#),
        B64.encode(claims("vellum-dashboard", &provider.issuer, now + 60).to_string())
    );
    assert!(refused(&unsigned, None).contains("RS256"));
    assert!(refused("not-a-token", None).contains("three parts"));
}
