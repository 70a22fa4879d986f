//! The access store's contract: users by name, keys and sessions by digest, revocation by
//! id, and removing a user taking their keys and sessions with them.

use chrono::{Duration, TimeZone, Utc};
use vellum_core::operations::access::{ApiKey, Session, User};
use vellum_core::ports::AccessStore;

/// Builds a fresh, empty access store.
pub type Make = dyn Fn() -> Box<dyn AccessStore>;

fn at(hour: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, hour, 0, 0).unwrap()
}

fn user(name: &str, email: Option<&str>) -> User {
    User {
        name: name.into(),
        email: email.map(str::to_string),
        created_at: at(9),
        role: vellum_core::model::Role::Viewer,
        identity: None,
    }
}

fn key(digest: &str, user: &str, hour: u32) -> ApiKey {
    ApiKey { id: digest[..12].into(), user: user.into(), digest: digest.into(), created_at: at(hour), revoked_at: None }
}

pub fn users_are_added_once_and_listed_by_name(make: &Make) {
    let s = make();
    assert!(s.add_user(&user("zoe", Some("zoe@example.org"))).unwrap());
    let admin = vellum_core::model::Role::Admin;
    let identity = Some("https://login.example/tenant/v2.0|00000000-aaaa".to_string());
    assert!(s.add_user(&User { role: admin, identity: identity.clone(), ..user("archivist", None) }).unwrap());
    assert!(!s.add_user(&user("zoe", Some("other@example.org"))).unwrap(), "a second add changes nothing");
    assert_eq!(s.user("zoe").unwrap().unwrap().email.as_deref(), Some("zoe@example.org"));
    assert_eq!(s.user("nobody").unwrap(), None);
    let roles: Vec<_> = s.users().unwrap().into_iter().map(|u| u.role.name()).collect();
    assert_eq!(roles, ["admin", "viewer"], "each user's role is kept");
    assert_eq!(s.user("archivist").unwrap().unwrap().identity, identity, "and their identity");
    let names: Vec<String> = s.users().unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(names, ["archivist", "zoe"]);
}

pub fn keys_are_found_by_digest_and_revoked_by_id(make: &Make) {
    let s = make();
    s.add_user(&user("scripts", None)).unwrap();
    let first = key("aaaaaaaaaaaaaaaa1111", "scripts", 10);
    let second = key("bbbbbbbbbbbbbbbb2222", "scripts", 11);
    s.add_api_key(&first).unwrap();
    s.add_api_key(&second).unwrap();
    assert_eq!(s.api_key(&first.digest).unwrap(), Some(first.clone()));
    assert_eq!(s.api_key("cccccccccccccccc").unwrap(), None);
    assert_eq!(s.api_keys().unwrap(), vec![first.clone(), second.clone()], "oldest first");
    assert!(s.revoke_api_key(&first.id, at(12)).unwrap());
    assert!(!s.revoke_api_key(&first.id, at(13)).unwrap(), "already revoked");
    assert!(!s.revoke_api_key("000000000000", at(13)).unwrap(), "no such key");
    assert_eq!(s.api_key(&first.digest).unwrap().unwrap().revoked_at, Some(at(12)), "the first revocation stands");
    assert_eq!(s.api_key(&second.digest).unwrap().unwrap().revoked_at, None);
}

pub fn sessions_are_found_and_removed(make: &Make) {
    let s = make();
    s.add_user(&user("archivist", None)).unwrap();
    let session = Session {
        digest: "d1".repeat(32),
        user: "archivist".into(),
        expires_at: at(9) + Duration::hours(12),
        key_digest: Some("k".repeat(64)),
    };
    s.add_session(&session).unwrap();
    assert_eq!(s.session(&session.digest).unwrap(), Some(session.clone()));
    s.remove_session(&session.digest).unwrap();
    assert_eq!(s.session(&session.digest).unwrap(), None);
    s.remove_session(&session.digest).unwrap();
    // Expired sessions are purged; one still running stays.
    let old = Session { digest: "e1".repeat(32), expires_at: at(5), ..session.clone() };
    let running = Session { digest: "e2".repeat(32), expires_at: at(23) + Duration::hours(7), ..session.clone() };
    s.add_session(&old).unwrap();
    s.add_session(&running).unwrap();
    assert_eq!(s.purge_sessions(at(10)).unwrap(), 1);
    assert_eq!(s.session(&old.digest).unwrap(), None);
    assert_eq!(s.session(&running.digest).unwrap(), Some(running));
}

pub fn removing_a_user_takes_their_keys_and_sessions(make: &Make) {
    let s = make();
    s.add_user(&user("leaver", None)).unwrap();
    s.add_user(&user("stayer", None)).unwrap();
    s.add_api_key(&key("dddddddddddddddd4444", "leaver", 10)).unwrap();
    s.add_api_key(&key("eeeeeeeeeeeeeeee5555", "stayer", 10)).unwrap();
    let session = Session { digest: "f".repeat(64), user: "leaver".into(), expires_at: at(20), key_digest: None };
    s.add_session(&session).unwrap();
    assert!(s.remove_user("leaver").unwrap());
    assert!(!s.remove_user("leaver").unwrap());
    assert_eq!(s.user("leaver").unwrap(), None);
    assert_eq!(s.api_key("dddddddddddddddd4444").unwrap(), None);
    assert_eq!(s.session(&session.digest).unwrap(), None);
    assert!(s.api_key("eeeeeeeeeeeeeeee5555").unwrap().is_some(), "another user's key stays");
}
