//! A local OpenID Connect provider for the sign-in tests, in both worlds: discovery, a JWKS,
//! an authorization endpoint that approves at once (checking PKCE's method and the client),
//! and a token endpoint that checks the code verifier and signs a real RS256 ID token with a
//! key made for the run (by OpenSSL).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};

/// What the provider remembers of an authorization: the PKCE challenge and the nonce.
type Grants = Arc<Mutex<HashMap<String, (String, String)>>>;

pub struct Provider {
    /// `http://127.0.0.1:<port>`: the issuer its tokens name.
    pub issuer: String,
    /// The `oid` its next token carries (`oid-42` until changed).
    pub subject: Arc<Mutex<String>>,
    pub key: Arc<ring::signature::RsaKeyPair>,
}

/// A target's query parameters, decoded.
pub fn query_of(target: &str) -> HashMap<String, String> {
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), vellum_dashboard::http::percent_decode(&v.replace('+', " ")).unwrap()))
        .collect()
}

/// A fresh 2048-bit RSA key, made by OpenSSL (which the test script installs).
pub fn key_pair() -> ring::signature::RsaKeyPair {
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

/// A compact JWS of `claims`, RS256 with key id `k1`.
pub fn sign(key: &ring::signature::RsaKeyPair, claims: &serde_json::Value) -> String {
    let header = B64.encode(serde_json::json!({"alg": "RS256", "kid": "k1", "typ": "JWT"}).to_string());
    let body = B64.encode(claims.to_string());
    let input = format!("{header}.{body}");
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), input.as_bytes(), &mut signature)
        .unwrap();
    format!("{input}.{}", B64.encode(signature))
}

/// The provider on a free loopback port, for the client `client_id`, until the process ends.
pub fn start(client_id: &'static str) -> Provider {
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

/// A browser's visit to the provider's authorization page: where it is sent back.
pub fn authorize(location: &str) -> String {
    let rest = location.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(stream, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.lines().find_map(|l| l.strip_prefix("Location: ")).unwrap_or_else(|| panic!("{answer}")).to_string()
}
