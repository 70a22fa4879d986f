//! Who may use the dashboard and the API: registered users, each with API keys for
//! machines (Archivematica's `Authorization: ApiKey user:key`), and in embedded mode
//! sign-in sessions for people. Keys and session tokens are random, shown once, and stored
//! only as SHA-256 digests: a copy of the store gives no one a way in.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::model::Timestamp;
pub use crate::model::{ApiKey, Role, Session, User};
use crate::ports::{AccessStore, Clock, PortError, PortResult};

/// How long a sign-in lasts.
pub const SESSION_HOURS: i64 = 12;

pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh secret: 40 hex digits (160 bits) from two random UUIDs, the shape of
/// Archivematica's keys.
fn secret(clock: &dyn Clock) -> String {
    let mut h = Sha256::new();
    h.update(clock.new_id().as_bytes());
    h.update(clock.new_id().as_bytes());
    hex::encode(h.finalize())[..40].to_string()
}

/// A user name Vellum cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadUserName {
    #[error("a user name is 1 to 64 characters")]
    Length,
    #[error("a user name has letters, digits, '.', '_', '-' and '@' only, not {0:?}")]
    Character(char),
}

/// A user name is what `ApiKey user:key` carries: no colon, no space, not empty.
pub fn check_user_name(name: &str) -> Result<(), BadUserName> {
    if name.is_empty() || name.len() > 64 {
        return Err(BadUserName::Length);
    }
    if let Some(c) = name.chars().find(|c| !(c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))) {
        return Err(BadUserName::Character(c));
    }
    Ok(())
}

/// Registers a user; false when one of that name exists.
pub fn add_user(
    store: &dyn AccessStore,
    clock: &dyn Clock,
    name: &str,
    email: Option<&str>,
    role: Role,
    identity: Option<&str>,
) -> PortResult<bool> {
    check_user_name(name).map_err(|e| PortError::Refused(e.to_string()))?;
    let email = email.map(|e| e.trim().to_lowercase()).filter(|e| !e.is_empty());
    let identity = identity.map(str::trim).filter(|i| !i.is_empty()).map(str::to_string);
    if let Some(i) = &identity {
        if !i.contains('|') {
            return Err(PortError::Refused(format!("an identity is ISSUER|SUBJECT, not {i:?}")));
        }
    }
    store.add_user(&User { name: name.to_string(), email, created_at: clock.now(), role, identity })
}

/// A new key for `user`, returned once; only its digest is kept.
pub fn create_api_key(store: &dyn AccessStore, clock: &dyn Clock, user: &str) -> PortResult<(ApiKey, String)> {
    if store.user(user)?.is_none() {
        return Err(PortError::NotFound(format!("no user {user:?}: add the user first (vellum users add {user})")));
    }
    let key = secret(clock);
    let digest = digest(&key);
    let record = ApiKey {
        id: digest[..12].to_string(),
        user: user.to_string(),
        digest,
        created_at: clock.now(),
        revoked_at: None,
    };
    store.add_api_key(&record)?;
    Ok((record, key))
}

/// A new sign-in session for a user, bound to the API key it was opened with (revoking the
/// key ends it); the token goes in the cookie, once. Sessions already expired go.
pub fn start_session(
    store: &dyn AccessStore,
    clock: &dyn Clock,
    user: &str,
    key: Option<&str>,
) -> PortResult<(Session, String)> {
    let purged = store.purge_sessions(clock.now())?;
    if purged > 0 {
        tracing::info!(purged, "expired sign-in sessions removed");
    }
    let token = secret(clock);
    let session = Session {
        digest: digest(&token),
        user: user.to_string(),
        expires_at: clock.now() + chrono::Duration::hours(SESSION_HOURS),
        key_digest: key.map(digest),
    };
    store.add_session(&session)?;
    Ok((session, token))
}

/// What a request offers as proof of who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: ApiKey user:key`, or `username` and `api_key` in the query.
    ApiKey { user: String, key: String },
    /// A token's claims, verified by the edge (API Gateway's JWT authorizer).
    Claims(BTreeMap<String, String>),
    /// A sign-in session's token, from its cookie.
    Session(String),
}

/// Who a verified token says its bearer is: `ISSUER|SUBJECT`, the subject being Azure AD's
/// `oid` where there is one (the same person in every application of the tenant), else
/// `sub`. Never the email, which a directory can change or give to someone else.
pub fn identity_of(claims: &BTreeMap<String, String>) -> Option<String> {
    let issuer = claims.get("iss").map(|i| i.trim()).filter(|i| !i.is_empty())?;
    let subject = ["oid", "sub"].iter().filter_map(|c| claims.get(*c)).map(|s| s.trim()).find(|s| !s.is_empty())?;
    Some(format!("{issuer}|{subject}"))
}

/// The registered user a credential stands for, or None: a wrong or revoked key, an
/// expired session, a token for someone not registered, a user since removed.
pub fn authenticate(store: &dyn AccessStore, now: Timestamp, credential: &Credential) -> PortResult<Option<User>> {
    let name = match credential {
        Credential::ApiKey { user, key } => match store.api_key(&digest(key))? {
            Some(k) if k.revoked_at.is_none() && k.user == *user => k.user,
            _ => return Ok(None),
        },
        Credential::Session(token) => match store.session(&digest(token))? {
            Some(s) if s.expires_at > now => {
                // A session opened with a key lives only as long as the key does.
                if let Some(key) = &s.key_digest {
                    match store.api_key(key)? {
                        Some(k) if k.revoked_at.is_none() && k.user == s.user => {}
                        _ => return Ok(None),
                    }
                }
                s.user
            }
            _ => return Ok(None),
        },
        Credential::Claims(claims) => {
            let Some(identity) = identity_of(claims) else { return Ok(None) };
            return Ok(store.users()?.into_iter().find(|u| u.identity.as_deref() == Some(identity.as_str())));
        }
    };
    store.user(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_fit_the_api_key_header() {
        assert!(check_user_name("archivist").is_ok());
        assert!(check_user_name("a.b-c_d@example.org").is_ok());
        assert!(check_user_name("a:b").is_err());
        assert!(check_user_name("a b").is_err());
        assert!(check_user_name("").is_err());
    }

    #[test]
    fn digests_are_sha256_hex() {
        assert_eq!(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
