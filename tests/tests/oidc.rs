//! A browser's sign-in through an OpenID Connect provider, against a local provider that
//! signs real RS256 tokens with a key made for the run: the authorization code flow with
//! PKCE from the dashboard's first redirect to its session cookie, and what it refuses.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};
use vellum_dashboard::oidc::{Oidc, OidcSettings};
use vellum_dashboard::{Request, Response};
use vellum_tests::TestEnv;

/// What the provider remembers of an authorization: the PKCE challenge and the nonce.
type Grants = Arc<Mutex<HashMap<String, (String, String)>>>;

struct Provider {
    issuer: String,
    subject: Arc<Mutex<String>>,
    key: Arc<ring::signature::RsaKeyPair>,
}

fn query_of(target: &str) -> HashMap<String, String> {
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), vellum_dashboard::http::percent_decode(&v.replace('+', " ")).unwrap()))
        .collect()
}

fn key_pair() -> ring::signature::RsaKeyPair {
    let dir = tempfile::tempdir().unwrap();
    let (pem, der) = (dir.path().join("key.pem"), dir.path().join("key.der"));
    let openssl = |args: &[&std::ffi::OsStr]| {
        let made = std::process::Command::new("openssl").args(args).output().expect("openssl makes the provider's key");
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    openssl(&[os("genrsa"), os("-out"), pem.as_os_str(), os("2048")]);
    // PKCS#1, which ring reads.
    openssl(&[
        os("rsa"),
        os("-in"),
        pem.as_os_str(),
        os("-traditional"),
        os("-outform"),
        os("DER"),
        os("-out"),
        der.as_os_str(),
    ]);
    ring::signature::RsaKeyPair::from_der(&std::fs::read(&der).unwrap()).unwrap()
}

fn sign(key: &ring::signature::RsaKeyPair, claims: &serde_json::Value) -> String {
    let header = B64.encode(serde_json::json!({"alg": "RS256", "kid": "k1", "typ": "JWT"}).to_string());
    let body = B64.encode(claims.to_string());
    let input = format!("{header}.{body}");
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), input.as_bytes(), &mut signature)
        .unwrap();
    format!("{input}.{}", B64.encode(signature))
}

fn start_provider(client_id: &'static str) -> Provider {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let key = Arc::new(key_pair());
    let public: ring::rsa::PublicKeyComponents<Vec<u8>> = key.public().into();
    let jwks = serde_json::json!({"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
        "n": B64.encode(&public.n), "e": B64.encode(&public.e)}]});
    let grants: Grants = Arc::default();
    let subject = Arc::new(Mutex::new("oid-42".to_string()));
    let (iss, who, signer) = (issuer.clone(), subject.clone(), key.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let (method, target) = {
                let mut parts = line.split_whitespace();
                (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("/").to_string())
            };
            let mut length = 0;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap();
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let path = target.split('?').next().unwrap().to_string();
            let (status, location, answer) = match (method.as_str(), path.as_str()) {
                ("GET", "/.well-known/openid-configuration") => (
                    200,
                    None,
                    serde_json::json!({
                    "issuer": iss, "authorization_endpoint": format!("{iss}/authorize"),
                    "token_endpoint": format!("{iss}/token"), "jwks_uri": format!("{iss}/jwks")})
                    .to_string(),
                ),
                ("GET", "/jwks") => (200, None, jwks.to_string()),
                ("GET", "/authorize") => {
                    let q = query_of(&target);
                    assert_eq!(q["code_challenge_method"], "S256");
                    assert_eq!(q["client_id"], client_id);
                    let code = uuid::Uuid::new_v4().to_string();
                    grants.lock().unwrap().insert(code.clone(), (q["code_challenge"].clone(), q["nonce"].clone()));
                    let back = format!("{}?code={code}&state={}", q["redirect_uri"], q["state"]);
                    (302, Some(back), String::new())
                }
                ("POST", "/token") => {
                    let form = query_of(&format!("?{}", String::from_utf8_lossy(&body)));
                    let grant = grants.lock().unwrap().remove(&form["code"]);
                    match grant {
                        Some((challenge, nonce))
                            if B64.encode(Sha256::digest(form["code_verifier"].as_bytes())) == challenge =>
                        {
                            let now = chrono::Utc::now().timestamp();
                            let token = sign(
                                &signer,
                                &serde_json::json!({"iss": iss, "aud": client_id,
                                "sub": "pairwise-1", "oid": *who.lock().unwrap(), "email": "curator@example.org",
                                "iat": now, "exp": now + 300, "nonce": nonce}),
                            );
                            (200, None, serde_json::json!({"id_token": token, "token_type": "Bearer"}).to_string())
                        }
                        _ => (400, None, r#"{"error":"invalid_grant"}"#.to_string()),
                    }
                }
                _ => (404, None, String::new()),
            };
            let location = location.map(|l| format!("Location: {l}\r\n")).unwrap_or_default();
            let mut out = stream;
            let _ = write!(out, "HTTP/1.1 {status} X\r\n{location}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}", answer.len());
        }
    });
    Provider { issuer, subject, key }
}

/// The browser's visit to the provider's authorization page: where it is sent back.
fn authorize(location: &str) -> String {
    let rest = location.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(stream, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.lines().find_map(|l| l.strip_prefix("Location: ")).unwrap_or_else(|| panic!("{answer}")).to_string()
}

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
    let provider = start_provider("vellum-dashboard");
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
    let provider = start_provider("vellum-dashboard");
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
