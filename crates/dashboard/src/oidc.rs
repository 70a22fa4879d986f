//! Signing people in through an OpenID Connect provider (Azure AD as Wellcome uses it, any
//! OIDC provider in general): the authorization code flow with PKCE, and the provider's
//! signed tokens checked against its published keys.
//!
//! Nothing is kept on the server between the two legs: the state, the nonce, the PKCE
//! verifier and where to go next travel in a short-lived HttpOnly cookie, so any dashboard
//! instance (any Lambda) can finish a sign-in another began.

use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The provider the stack names, and this dashboard as its client.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    /// A confidential client's secret; a public client signs in with PKCE alone.
    pub client_secret: Option<String>,
    /// Where the provider sends people back; without it, this site's `/sign-in/callback`.
    pub redirect_uri: Option<String>,
}

impl OidcSettings {
    /// From `VELLUM_OIDC_ISSUER`, `VELLUM_OIDC_CLIENT_ID` and, when set,
    /// `VELLUM_OIDC_CLIENT_SECRET` and `VELLUM_OIDC_REDIRECT_URI`; None without the first two.
    pub fn from_env() -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        Some(Self {
            issuer: var("VELLUM_OIDC_ISSUER")?,
            client_id: var("VELLUM_OIDC_CLIENT_ID")?,
            client_secret: var("VELLUM_OIDC_CLIENT_SECRET"),
            redirect_uri: var("VELLUM_OIDC_REDIRECT_URI"),
        })
    }
}

/// Why a sign-in or a token was refused, said to the person (no secret in it).
#[derive(Debug)]
pub struct OidcRefusal(pub String);

impl std::fmt::Display for OidcRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn refuse<T>(why: impl Into<String>) -> Result<T, OidcRefusal> {
    Err(OidcRefusal(why.into()))
}

#[derive(Debug, Clone, Deserialize)]
struct Endpoints {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Jwk {
    #[serde(default)]
    kid: Option<String>,
    kty: String,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

/// What the first leg leaves in the browser for the second.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    next: String,
}

pub const PENDING_COOKIE: &str = "vellum_oidc";

pub struct Oidc {
    settings: OidcSettings,
    endpoints: Mutex<Option<Endpoints>>,
    keys: Mutex<Vec<Jwk>>,
}

/// Where to send the browser, and the cookie that carries the sign-in to its second leg.
pub struct Started {
    pub location: String,
    pub cookie_value: String,
}

fn random_token() -> String {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    B64.encode(bytes)
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", crate::http::percent_encode(v))).collect::<Vec<_>>().join("&")
}

impl Oidc {
    pub fn new(settings: OidcSettings) -> Self {
        Self { settings, endpoints: Mutex::new(None), keys: Mutex::new(Vec::new()) }
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, OidcRefusal> {
        let answer = ureq::get(url)
            .timeout(std::time::Duration::from_secs(10))
            .call()
            .or_else(|e| refuse(format!("the identity provider did not answer at {url}: {e}")))?;
        answer
            .into_json()
            .or_else(|e| refuse(format!("the identity provider's answer at {url} is not what OIDC says: {e}")))
    }

    /// The provider's endpoints, read once from its discovery document.
    fn endpoints(&self) -> Result<Endpoints, OidcRefusal> {
        let mut known = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = known.as_ref() {
            return Ok(e.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", self.settings.issuer.trim_end_matches('/'));
        let found: Endpoints = Self::get_json(&url)?;
        if found.issuer != self.settings.issuer {
            return refuse(format!(
                "the provider at {url} names itself {:?}, not {:?}",
                found.issuer, self.settings.issuer
            ));
        }
        *known = Some(found.clone());
        Ok(found)
    }

    /// The first leg: where the browser goes to sign in, with a fresh state, nonce and PKCE
    /// challenge (S256).
    pub fn start(&self, redirect_uri: &str, next: &str) -> Result<Started, OidcRefusal> {
        let endpoints = self.endpoints()?;
        let pending =
            Pending { state: random_token(), nonce: random_token(), verifier: random_token(), next: next.into() };
        let challenge = B64.encode(Sha256::digest(pending.verifier.as_bytes()));
        let query = form_encode(&[
            ("response_type", "code"),
            ("client_id", &self.settings.client_id),
            ("redirect_uri", redirect_uri),
            ("scope", "openid profile email"),
            ("state", &pending.state),
            ("nonce", &pending.nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]);
        let separator = if endpoints.authorization_endpoint.contains('?') { '&' } else { '?' };
        let cookie_value = B64.encode(serde_json::to_vec(&pending).expect("a pending sign-in serializes"));
        Ok(Started { location: format!("{}{separator}{query}", endpoints.authorization_endpoint), cookie_value })
    }

    /// The second leg: the code exchanged (with the PKCE verifier) for an ID token, whose
    /// signature, issuer, audience, expiry and nonce are checked. The token's claims, and
    /// where the person was going.
    pub fn finish(
        &self,
        redirect_uri: &str,
        code: &str,
        state: &str,
        cookie_value: &str,
    ) -> Result<(BTreeMap<String, String>, String), OidcRefusal> {
        let pending: Pending =
            B64.decode(cookie_value).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or_else(|| {
                OidcRefusal("this sign-in was not begun here (its cookie is missing or damaged)".into())
            })?;
        if pending.state != state {
            return refuse("this sign-in's state does not match the one begun here");
        }
        let endpoints = self.endpoints()?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", self.settings.client_id.as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ];
        if let Some(secret) = &self.settings.client_secret {
            form.push(("client_secret", secret));
        }
        let answer = ureq::post(&endpoints.token_endpoint)
            .timeout(std::time::Duration::from_secs(10))
            .send_form(&form)
            .or_else(|e| refuse(format!("the identity provider refused the code: {e}")))?;
        let tokens: serde_json::Value =
            answer.into_json().or_else(|e| refuse(format!("the token endpoint's answer is not JSON: {e}")))?;
        let Some(id_token) = tokens["id_token"].as_str() else { return refuse("the provider sent no ID token") };
        let claims = self.verify(id_token, &self.settings.client_id, Some(&pending.nonce))?;
        Ok((claims, pending.next))
    }

    /// A token signed by the provider (RS256, a key from its JWKS), issued by it, for
    /// `audience`, not expired, and carrying `nonce` when one is expected. Its claims as text.
    pub fn verify(
        &self,
        token: &str,
        audience: &str,
        nonce: Option<&str>,
    ) -> Result<BTreeMap<String, String>, OidcRefusal> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, signature] = parts[..] else { return refuse("a token has three parts") };
        let decode = |part: &str| B64.decode(part.trim_end_matches('=')).ok();
        let header: serde_json::Value = decode(header)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| OidcRefusal("a token's header is not base64url JSON".into()))?;
        if header["alg"] != "RS256" {
            return refuse(format!("a token signed with {} is not accepted (RS256 only)", header["alg"]));
        }
        let kid = header["kid"].as_str().map(str::to_string);
        let signature = decode(signature).ok_or_else(|| OidcRefusal("a token's signature is not base64url".into()))?;
        let signed = format!("{}.{}", parts[0], parts[1]);
        self.check_signature(kid.as_deref(), signed.as_bytes(), &signature)?;
        let claims: serde_json::Map<String, serde_json::Value> = decode(payload)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| OidcRefusal("a token's claims are not base64url JSON".into()))?;
        if claims.get("iss").and_then(|i| i.as_str()) != Some(self.settings.issuer.as_str()) {
            return refuse("a token from another issuer");
        }
        let for_us = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => a == audience,
            Some(serde_json::Value::Array(all)) => all.iter().any(|a| a == audience),
            _ => false,
        };
        if !for_us {
            return refuse("a token for another audience");
        }
        let now = chrono::Utc::now().timestamp();
        let skew = 60;
        match claims.get("exp").and_then(|e| e.as_i64()) {
            Some(exp) if exp + skew > now => {}
            _ => return refuse("an expired token"),
        }
        if claims.get("nbf").and_then(|n| n.as_i64()).is_some_and(|nbf| nbf - skew > now) {
            return refuse("a token not valid yet");
        }
        if let Some(expected) = nonce {
            if claims.get("nonce").and_then(|n| n.as_str()) != Some(expected) {
                return refuse("a token for another sign-in (its nonce)");
            }
        }
        Ok(claims
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, text)
            })
            .collect())
    }

    /// The signature checked with the key `kid` names; the provider's keys are fetched again
    /// once when it names a key not yet known (providers rotate them).
    fn check_signature(&self, kid: Option<&str>, signed: &[u8], signature: &[u8]) -> Result<(), OidcRefusal> {
        for fetch_again in [false, true] {
            let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            if fetch_again || keys.is_empty() {
                #[derive(Deserialize)]
                struct Set {
                    keys: Vec<Jwk>,
                }
                let set: Set = Self::get_json(&self.endpoints()?.jwks_uri)?;
                *keys = set.keys;
            }
            let key = keys.iter().find(|k| k.kty == "RSA" && (kid.is_none() || k.kid.as_deref() == kid));
            if let Some(Jwk { n: Some(n), e: Some(e), .. }) = key {
                let (Ok(n), Ok(e)) = (B64.decode(n), B64.decode(e)) else {
                    return refuse("the provider's key is malformed");
                };
                let public = ring::signature::RsaPublicKeyComponents { n: &n, e: &e };
                return public
                    .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, signed, signature)
                    .or_else(|_| refuse("a token whose signature does not match the provider's key"));
            }
        }
        refuse("a token signed with a key the provider does not publish")
    }
}
