//! The dashboard's router, as `vellum serve` and the dashboard Lambda serve it: who may use
//! it (deny by default), Vellum's JSON API, Archivematica's API in its own words, and the
//! HTML pages with every package-supplied name escaped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;
use vellum_core::model::TransferStatus;
use vellum_core::ports::{
    AccessStore, EventLog, FileCatalogue, ObjectStore, PortResult, ScanVerdict, TransferOversight, TransferRegister,
    VirusScanner,
};
use vellum_dashboard::{Dashboard, Request, Response};
use vellum_tests::{Package, TestEnv};

fn ask(d: &Dashboard, method: &str, path: &str, auth: &str) -> Response {
    d.handle(&Request::new(method, path).with_header("Authorization", auth))
}

fn json(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&r.body)))
}

fn text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// A pipeline with one complete and one refused transfer, and a registered user's key.
fn with_transfers() -> (TestEnv, String, vellum_core::model::Transfer, vellum_core::model::Transfer) {
    let t = TestEnv::new(2);
    let good = t.upload(&Package::catalogued("PP/DASH/1", 3), "born-digital/good.zip");
    let mut bad = Package::default();
    bad.add("objects/a.txt", "a");
    let refused = t.upload(&bad, "born-digital/<script>alert(1)<script>.zip");
    t.drive(|_, _| false);
    let key = format!("ApiKey archivist:{}", t.api_key("archivist", Some("archivist@example.org")));
    let good = t.transfer_for(&good).unwrap();
    let refused = t.transfer_for(&refused).unwrap();
    assert_eq!(good.status, TransferStatus::Complete, "{:?}", good.failure_reason);
    assert_eq!(refused.status, TransferStatus::Rejected);
    (t, key, good, refused)
}

#[test]
fn nobody_gets_in_without_a_registered_user_or_a_valid_key() {
    let (t, key, good, _) = with_transfers();
    let mut d = t.dashboard(true);
    // Every refusal here, not the holding back of guesses (its own test below).
    d.throttle = vellum_dashboard::throttle::Throttle::new(vellum_dashboard::throttle::ThrottleLimits {
        free_per_user: 100,
        ..Default::default()
    });
    let detail = format!("/api/transfers/{}", good.id);
    let am = format!("/api/transfer/status/{}", good.id);
    for path in [detail.as_str(), am.as_str(), "/status", "/api/transfers", "/api/openapi.json", "/no/such/route"] {
        let r = d.handle(&Request::get(path));
        assert_eq!(r.status, 403, "{path} without credentials");
        assert_eq!(json(&r), serde_json::json!({"message": "API key not valid.", "error": true}), "{path}");
        let wrong = ask(&d, "GET", path, "ApiKey archivist:0000000000000000000000000000000000000000");
        assert_eq!(wrong.status, 403, "{path} with a wrong key");
    }
    assert_eq!(ask(&d, "GET", &detail, &key).status, 200);
    assert_eq!(ask(&d, "GET", "/no/such/route", &key).status, 404, "a route that is not one, once admitted");
    // The key in the query, as amclient sends it for some calls.
    let k = key.rsplit(':').next().unwrap();
    assert_eq!(d.handle(&Request::get(&format!("/api/transfer/completed?username=archivist&api_key={k}"))).status, 200);
    assert_eq!(d.handle(&Request::get(&format!("/api/transfer/completed?username=someone&api_key={k}"))).status, 403);
    // A page sends a person to sign in; the health check and the sign-in page are open.
    let page = d.handle(&Request::get(&format!("/transfers/{}", good.id)));
    assert_eq!(page.status, 303);
    assert!(page.header_value("Location").unwrap().starts_with("/sign-in?next=%2Ftransfers%2F"));
    assert_eq!(d.handle(&Request::get("/health")).status, 200);
    assert_eq!(d.handle(&Request::get("/sign-in")).status, 200);

    // A revoked key, and a removed user's key, stop working.
    let id = t.env.access.api_keys().unwrap()[0].id.clone();
    t.env.access.revoke_api_key(&id, chrono::Utc::now()).unwrap();
    assert_eq!(ask(&d, "GET", &detail, &key).status, 403, "revoked");
    let other = format!("ApiKey leaver:{}", t.api_key("leaver", None));
    assert_eq!(ask(&d, "GET", &detail, &other).status, 200);
    t.env.access.remove_user("leaver").unwrap();
    assert_eq!(ask(&d, "GET", &detail, &other).status, 403, "removed");
}

/// A verified token admits the registered user whose identity is its issuer and subject
/// (Azure AD's `oid` before `sub`), never one whose email it merely carries.
#[test]
fn a_valid_token_admits_only_a_registered_user() {
    let (t, _key, good, _) = with_transfers();
    let issuer = "https://login.microsoftonline.com/tenant-1/v2.0";
    vellum_core::operations::access::add_user(
        t.env.access.as_ref(),
        t.env.pipeline.clock.as_ref(),
        "curator",
        Some("curator@example.org"),
        vellum_core::model::Role::Viewer,
        Some(&format!("{issuer}|oid-1234")),
    )
    .unwrap();
    let d = t.dashboard(false);
    let with_claims = |claims: &[(&str, &str)]| {
        let mut r = Request::get(&format!("/api/transfers/{}", good.id));
        r.claims = Some(claims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        d.handle(&r)
    };
    assert_eq!(with_claims(&[("iss", issuer), ("oid", "oid-1234"), ("sub", "pairwise-x")]).status, 200);
    assert_eq!(with_claims(&[("iss", issuer), ("sub", "oid-1234")]).status, 200, "sub where there is no oid");
    assert_eq!(
        with_claims(&[("iss", issuer), ("oid", "oid-9999"), ("email", "curator@example.org")]).status,
        403,
        "an email names nobody: a directory can give it to someone else"
    );
    assert_eq!(with_claims(&[("iss", "https://elsewhere.example"), ("oid", "oid-1234")]).status, 403, "another issuer");
    assert_eq!(with_claims(&[("email", "archivist@example.org")]).status, 403, "no issuer, no subject");
    let mut page = Request::get("/");
    page.claims = Some([("iss".to_string(), issuer.to_string()), ("sub".to_string(), "stranger".to_string())].into());
    let refused = d.handle(&page);
    assert_eq!(refused.status, 403);
    assert!(text(&refused).contains("You are not registered"), "people are told why");
    // A claim sent as a header by the caller is not a claim.
    let forged = d.handle(&Request::get("/status").with_header("x-jwt-claims", r#"{"iss":"x","sub":"y"}"#));
    assert_eq!(forged.status, 403);
}

#[test]
fn path_tricks_are_refused_and_routes_answer_with_or_without_their_slash() {
    let (t, key, good, _) = with_transfers();
    let d = t.dashboard(true);
    for path in [
        "/api/transfers/../status",
        "/api/%2e%2e/status",
        "/static/..%2fvellum.db",
        "/static/..%5cvellum.db",
        "/api/transfer%2Fstatus",
        "//status",
    ] {
        let r = ask(&d, "GET", path, &key);
        assert_eq!(r.status, 400, "{path}");
        assert!(!text(&r).contains("transfers\""), "{path} leaks nothing");
    }
    for path in [format!("/api/transfer/status/{}", good.id), format!("/api/transfer/status/{}/", good.id)] {
        assert_eq!(json(&ask(&d, "GET", &path, &key))["status"], "COMPLETE", "{path}");
    }
    let wrong = ask(&d, "POST", "/api/transfer/completed", &key);
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header_value("Allow"), Some("GET"));
}

#[test]
fn people_sign_in_with_a_key_and_get_a_strict_session_cookie() {
    let (t, key, _, _) = with_transfers();
    let d = t.dashboard(true);
    let k = key.rsplit(':').next().unwrap();
    let wrong = d.handle(&Request::new("POST", "/sign-in").with_body("user=archivist&key=nope&next=%2F"));
    assert_eq!(wrong.status, 403);
    assert!(text(&wrong).contains("do not match a registered user"));
    let signed = d
        .handle(&Request::new("POST", "/sign-in").with_body(format!("user=archivist&key={k}&next=%2F%2Fevil.example")));
    assert_eq!(signed.status, 303);
    assert_eq!(signed.header_value("Location"), Some("/"), "never sent elsewhere");
    // Nor off-site by what browsers drop or bend, nor into a second header.
    for next in ["%2F%09%2Fevil.example", "%2F%5C%2Fevil.example", "%2F%0D%0ASet-Cookie%3A%20x%3D1", "%2F%20%2Fx"] {
        let answer =
            d.handle(&Request::new("POST", "/sign-in").with_body(format!("user=archivist&key={k}&next={next}")));
        assert_eq!(answer.header_value("Location"), Some("/"), "next={next}");
    }
    let onward = d.handle(
        &Request::new("POST", "/sign-in")
            .with_body(format!("user=archivist&key={k}&next=%2Ftransfers%3Fstatus%3DFAILED")),
    );
    assert_eq!(onward.header_value("Location"), Some("/transfers?status=FAILED"), "a path of this site is kept");
    let cookie = signed.header_value("Set-Cookie").unwrap().to_string();
    for part in ["vellum_session=", "HttpOnly", "SameSite=Strict", "Max-Age=43200", "Path=/"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "over plain HTTP a Secure cookie would never come back: {cookie}");
    let behind_tls = d.handle(
        &Request::new("POST", "/sign-in")
            .with_header("X-Forwarded-Proto", "https")
            .with_body(format!("user=archivist&key={k}")),
    );
    assert!(behind_tls.header_value("Set-Cookie").unwrap().contains("; Secure"), "over TLS, Secure");
    let token = cookie.split(';').next().unwrap().to_string();
    let page = d.handle(&Request::get("/").with_header("Cookie", &token));
    assert_eq!(page.status, 200);
    assert!(text(&page).contains("good"));
    let from_here =
        |r: Request| r.with_header("Host", "vellum.example").with_header("Origin", "https://vellum.example");
    // A change with the cookie: only from this site's pages, and through the API only as JSON.
    let retry = format!("/api/transfers/{}/retry", uuid::Uuid::new_v4());
    let asked = |r: Request| d.handle(&r.with_header("Cookie", &token));
    for (request, why) in [
        (Request::new("POST", &retry).with_header("Host", "vellum.example"), "no Origin"),
        (
            Request::new("POST", &retry)
                .with_header("Host", "vellum.example")
                .with_header("Origin", "https://evil.example")
                .with_header("Content-Type", "application/json"),
            "another site",
        ),
        (from_here(Request::new("POST", &retry)).with_header("Content-Type", "text/plain"), "text/plain"),
        (Request::new("POST", "/sign-out").with_header("Host", "vellum.example"), "a sign-out from nowhere"),
    ] {
        let answer = asked(request);
        assert_eq!(answer.status, 403, "{why}: {}", text(&answer));
    }
    let same_site = asked(from_here(Request::new("POST", &retry)).with_header("Content-Type", "application/json"));
    assert_ne!(same_site.status, 403, "from this site, as JSON, the change is asked: {}", text(&same_site));
    let out = d.handle(&from_here(Request::new("POST", "/sign-out")).with_header("Cookie", &token));
    assert_eq!(out.status, 303);
    assert_eq!(d.handle(&Request::get("/").with_header("Cookie", &token)).status, 303, "signed out");
}

#[test]
fn a_session_ends_when_its_key_is_revoked_or_its_user_removed() {
    let (t, key, _, _) = with_transfers();
    let d = t.dashboard(true);
    let sign_in = |user: &str, k: &str| {
        let answer = d.handle(&Request::new("POST", "/sign-in").with_body(format!("user={user}&key={k}")));
        assert_eq!(answer.status, 303, "{}", text(&answer));
        answer.header_value("Set-Cookie").unwrap().split(';').next().unwrap().to_string()
    };
    let access = t.env.access.as_ref();
    let first = sign_in("archivist", key.rsplit(':').next().unwrap());
    let second_key =
        vellum_core::operations::access::create_api_key(access, t.env.pipeline.clock.as_ref(), "archivist").unwrap();
    let second = sign_in("archivist", &second_key.1);
    let page = |cookie: &str| d.handle(&Request::get("/").with_header("Cookie", cookie)).status;
    let api = |cookie: &str| d.handle(&Request::get("/api/transfers").with_header("Cookie", cookie)).status;
    assert_eq!((page(&first), api(&first)), (200, 200));
    assert_eq!((page(&second), api(&second)), (200, 200));

    // Revoking the first key ends the session it opened at once, and only that one.
    let first_id = access.api_keys().unwrap().into_iter().find(|k| k.id != second_key.0.id).unwrap().id;
    assert!(access.revoke_api_key(&first_id, t.env.pipeline.clock.now()).unwrap());
    assert_eq!(page(&first), 303, "the page sends the person to sign in again");
    assert_eq!(api(&first), 403, "as Archivematica answers a bad credential");
    assert_eq!((page(&second), api(&second)), (200, 200), "the other key's session goes on");

    // Removing the user ends the rest.
    assert!(access.remove_user("archivist").unwrap());
    assert_eq!((page(&second), api(&second)), (303, 403));

    // Expired sessions are purged when the next one starts.
    vellum_core::operations::access::add_user(
        access,
        t.env.pipeline.clock.as_ref(),
        "keeper",
        None,
        vellum_core::model::Role::Viewer,
        None,
    )
    .unwrap();
    let stale = vellum_core::model::Session {
        digest: "0".repeat(64),
        user: "keeper".into(),
        expires_at: t.env.pipeline.clock.now() - chrono::Duration::minutes(1),
        key_digest: None,
    };
    access.add_session(&stale).unwrap();
    let keeper_key =
        vellum_core::operations::access::create_api_key(access, t.env.pipeline.clock.as_ref(), "keeper").unwrap();
    sign_in("keeper", &keeper_key.1);
    assert!(access.session(&stale.digest).unwrap().is_none(), "the expired session is gone");
}

/// Roles: a viewer reads everything and changes nothing, in Vellum's API, Archivematica's
/// and the pages (which offer them no buttons); an operator changes the work; only an admin
/// reads who may use the dashboard, and never a key there.
#[test]
fn roles_decide_who_may_change_what_on_every_route() {
    use vellum_core::model::Role;
    let (t, operator, good, refused) = with_transfers();
    let viewer = format!("ApiKey reader:{}", t.api_key_as("reader", None, Role::Viewer));
    let admin_key = t.api_key_as("boss", None, Role::Admin);
    let admin = format!("ApiKey boss:{admin_key}");
    let d = t.dashboard(true);
    let transfer = format!("/api/transfers/{}", good.id);
    let page = format!("/transfers/{}", good.id);
    for path in
        [transfer.as_str(), "/api/transfers", "/status", "/api/transfer/completed", "/api/aips", page.as_str(), "/"]
    {
        assert_eq!(ask(&d, "GET", path, &viewer).status, 200, "a viewer reads {path}");
    }
    let changes = [
        ("POST", format!("/api/transfers/{}/retry", refused.id)),
        ("POST", format!("/api/transfers/{}/hide", good.id)),
        ("POST", "/api/transfers/hide-completed".to_string()),
        ("POST", "/api/transfers".to_string()),
        ("DELETE", format!("/api/transfer/{}/delete/", good.id)),
        ("DELETE", "/api/ingest/delete/".to_string()),
        ("POST", "/api/v2beta/package".to_string()),
    ];
    for (method, path) in &changes {
        let r = ask(&d, method, path, &viewer);
        assert_eq!(r.status, 403, "a viewer may not {method} {path}");
        let why = json(&r)["message"].as_str().unwrap().to_string();
        assert!(why.contains("reader is a viewer") && why.contains("operator role"), "{why}");
    }
    assert!(!t.env.state.transfer(good.id).unwrap().unwrap().hidden, "nothing was hidden by the viewer");
    // Routes that are not routes still say so to a viewer.
    assert_eq!(ask(&d, "POST", "/api/no-such", &viewer).status, 404);
    assert_eq!(ask(&d, "POST", &transfer, &viewer).status, 405);
    // The pages offer a viewer no buttons; an operator gets them.
    let html = |auth: &str, path: &str| text(&ask(&d, "GET", path, auth));
    assert!(!html(&viewer, "/").contains("data-post"), "{}", html(&viewer, "/"));
    assert!(html(&operator, "/").contains("/api/transfers/hide-completed"));
    assert!(!html(&viewer, &page).contains("data-post"));
    assert!(html(&operator, &page).contains(&format!("/api/transfers/{}/hide", good.id)));

    // An operator changes the work; only an admin reads the users.
    let hidden = ask(&d, "POST", &format!("/api/transfers/{}/hide", good.id), &operator);
    assert_eq!(hidden.status, 200, "{}", text(&hidden));
    assert_eq!(ask(&d, "DELETE", &format!("/api/transfer/{}/delete/", refused.id), &admin).status, 200);
    for who in [&viewer, &operator] {
        assert_eq!(ask(&d, "GET", "/api/users", who).status, 403);
    }
    let users = ask(&d, "GET", "/api/users", &admin);
    assert_eq!(users.status, 200, "{}", text(&users));
    let listed = json(&users);
    let roles: Vec<(String, String)> = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["name"].as_str().unwrap().to_string(), u["role"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        roles,
        [("archivist", "operator"), ("boss", "admin"), ("reader", "viewer")]
            .map(|(n, r)| (n.to_string(), r.to_string()))
    );
    assert_eq!(listed["users"][1]["api_keys"].as_array().unwrap().len(), 1);
    let digest = t.env.access.api_keys().unwrap().into_iter().find(|k| k.user == "boss").unwrap().digest;
    assert!(!text(&users).contains(&admin_key) && !text(&users).contains(&digest), "no key and no digest listed");
}

/// Guessing keys is held back per address and per user: past a few free failures, 429 with
/// `Retry-After` (the key not even looked at), in Vellum's API, Archivematica's and the
/// sign-in form alike; the right key gets in after the wait, and at once from an address
/// that never failed; `/status` counts what was refused.
#[test]
fn wrong_keys_are_held_back_per_address_and_per_user_and_the_right_key_gets_in_after_a_wait() {
    use std::time::Duration;
    use vellum_dashboard::throttle::{Throttle, ThrottleLimits};
    let (t, key, _, _) = with_transfers();
    let mut d = t.dashboard(true);
    let hold = Duration::from_millis(600);
    d.throttle = Throttle::new(ThrottleLimits {
        free_per_user: 3,
        free_per_address: 6,
        first_hold: hold,
        longest_hold: hold,
        ..ThrottleLimits::default()
    });
    let from = |address: &str, auth: &str, path: &str| {
        let mut r = Request::get(path).with_header("Authorization", auth);
        r.peer = Some(address.to_string());
        d.handle(&r)
    };
    let wrong = "ApiKey archivist:0123456789abcdef0123456789abcdef";
    for path in ["/api/transfers", "/api/transfer/completed", "/api/transfers", "/status"] {
        assert_eq!(from("10.0.0.7", wrong, path).status, 403, "free failures are answered as before");
    }
    for path in ["/api/transfers", "/api/transfer/completed"] {
        let held = from("10.0.0.7", &key, path);
        assert_eq!(held.status, 429, "held back, even with the right key: {}", text(&held));
        assert_eq!(held.header_value("Retry-After"), Some("1"));
        assert!(json(&held)["message"].as_str().unwrap().contains("try again in 1 s"));
    }
    let mut sign_in =
        Request::new("POST", "/sign-in").with_body(format!("user=archivist&key={}", key.rsplit(':').next().unwrap()));
    sign_in.peer = Some("10.0.0.7".into());
    let page = d.handle(&sign_in);
    assert_eq!(page.status, 429, "the sign-in form is held back too");
    assert_eq!(page.header_value("Retry-After"), Some("1"));
    assert!(text(&page).contains("Too many failed sign-ins lately"), "{}", text(&page));
    // The user, from an address that never failed, gets in, and that forgets the user's
    // failures (the address keeps its own).
    assert_eq!(from("10.0.0.8", &key, "/api/transfers").status, 200);

    std::thread::sleep(hold + Duration::from_millis(50));
    assert_eq!(from("10.0.0.7", &key, "/api/transfers").status, 200, "after the wait the right key gets in");
    assert_eq!(d.handle(&sign_in).status, 303, "and signs in");

    // Names guessed from one address hold the address for every name, the right one too.
    for n in 0..7 {
        assert_eq!(from("10.0.0.9", &format!("ApiKey guess{n}:{}", "0".repeat(32)), "/status").status, 403);
    }
    assert_eq!(from("10.0.0.9", &key, "/api/transfers").status, 429);
    let status = json(&from("10.0.0.8", &key, "/status"));
    assert_eq!(status["access"]["wrong_credentials"], 11, "{status}");
    assert_eq!(status["access"]["throttled"], 4, "{status}");
}

#[test]
fn the_json_api_lists_searches_pages_and_details_transfers() {
    let (t, key, good, refused) = with_transfers();
    let d = t.dashboard(true);
    let list = json(&ask(&d, "GET", "/api/transfers", &key));
    let names: Vec<&str> = list["transfers"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2);
    assert_eq!(list["next"], Value::Null);
    let page = json(&ask(&d, "GET", "/api/transfers?limit=1", &key));
    assert_eq!(page["transfers"].as_array().unwrap().len(), 1);
    let second = json(&ask(
        &d,
        "GET",
        &format!(
            "/api/transfers?limit=1&cursor={}",
            vellum_dashboard::http::percent_encode(page["next"].as_str().unwrap())
        ),
        &key,
    ));
    assert_ne!(second["transfers"][0]["id"], page["transfers"][0]["id"], "the cursor moves on");
    let complete = json(&ask(&d, "GET", "/api/transfers?status=complete", &key));
    assert_eq!(complete["transfers"][0]["id"], good.id.to_string());
    assert_eq!(complete["transfers"].as_array().unwrap().len(), 1);
    let searched = json(&ask(&d, "GET", "/api/transfers?q=pp%2Fdash", &key));
    assert_eq!(searched["transfers"][0]["identifier"], "PP/DASH/1");
    assert_eq!(searched["transfers"].as_array().unwrap().len(), 1);
    assert_eq!(ask(&d, "GET", "/api/transfers?status=LOST", &key).status, 400);

    let detail = json(&ask(&d, "GET", &format!("/api/transfers/{}", good.id), &key));
    assert_eq!(detail["summary"]["sip_uuid"], good.sip_uuid.to_string());
    let jobs = detail["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), vellum_core::model::Stage::ALL.len(), "a job per microservice");
    let checksum = jobs.iter().find(|j| j["stage"] == "checksum").unwrap();
    assert_eq!(checksum["tasks"]["total"], 4, "three objects and metadata.csv");
    assert!(checksum["duration_seconds"].as_f64().is_some());
    assert!(detail["progress"].as_array().unwrap().iter().all(|p| p["status"] == "COMPLETE"), "{detail}");
    let why = json(&ask(&d, "GET", &format!("/api/transfers/{}", refused.id), &key));
    assert!(why["failure_reason"].as_str().unwrap().contains("metadata/metadata.csv is missing"));

    let files = json(&ask(&d, "GET", &format!("/api/transfers/{}/files?limit=2", good.id), &key));
    assert_eq!(files["files"].as_array().unwrap().len(), 2);
    let f = &files["files"][0];
    assert_eq!(f["checksums"]["sha256"].as_str().unwrap().len(), 64);
    assert!(f["puid"].is_string() || f["puid"].is_null());
    assert!(f["scan"].as_str().is_some(), "the virus check's verdict: {f}");
    let rest = json(&ask(
        &d,
        "GET",
        &format!(
            "/api/transfers/{}/files?cursor={}",
            good.id,
            vellum_dashboard::http::percent_encode(files["next"].as_str().unwrap())
        ),
        &key,
    ));
    assert_eq!(rest["files"].as_array().unwrap().len(), 2);
    let events = json(&ask(&d, "GET", &format!("/api/transfers/{}/events?limit=500", good.id), &key));
    assert!(events["events"].as_array().unwrap().iter().any(|e| e["event_type"] == "message digest calculation"));
    let spec: Value = json(&ask(&d, "GET", "/api/openapi.json", &key));
    assert_eq!(spec["openapi"], "3.0.3");
    assert!(spec["paths"]["/api/transfers/{id}/retry"].is_object());
}

#[test]
fn ended_transfers_are_hidden_one_or_all() {
    let (t, key, good, refused) = with_transfers();
    let d = t.dashboard(true);
    let hide = ask(&d, "POST", &format!("/api/transfers/{}/hide", refused.id), &key);
    assert_eq!(json(&hide)["hidden"], true);
    assert_eq!(ask(&d, "POST", &format!("/api/transfers/{}/hide", refused.id), &key).status, 409, "once");
    let listed = json(&ask(&d, "GET", "/api/transfers", &key));
    assert_eq!(listed["transfers"].as_array().unwrap().len(), 1);
    let all = json(&ask(&d, "POST", "/api/transfers/hide-completed", &key));
    assert_eq!(all["hidden"], serde_json::json!([good.id]));
    assert!(json(&ask(&d, "GET", "/api/transfers", &key))["transfers"].as_array().unwrap().is_empty());
    let hidden = json(&ask(&d, "GET", "/api/transfers?hidden=true", &key));
    assert_eq!(hidden["transfers"].as_array().unwrap().len(), 2);
}

/// As served, `/status` and the list are read once a second for every reader; a change made
/// through the dashboard shows at once, one made by the pipeline within the second.
#[test]
fn status_and_the_list_are_read_once_a_second_and_a_change_through_the_dashboard_shows_at_once() {
    let (t, key, good, refused) = with_transfers();
    let mut d = t.dashboard(true);
    d.answers = vellum_dashboard::answer_cache::AnswerCache::new(std::time::Duration::from_secs(2));
    let names = |r: &Response| json(r)["transfers"].as_array().unwrap().len();
    assert_eq!(names(&ask(&d, "GET", "/api/transfers", &key)), 2);
    assert_eq!(names(&ask(&d, "GET", "/status", &key)), 2);
    let page = |d: &Dashboard| text(&ask(d, "GET", "/", &key));
    assert!(page(&d).contains(&refused.id.to_string()));
    // Hidden underneath, as the pipeline or another process would change the state.
    assert!(t.env.state.hide_transfer(refused.id).unwrap());
    assert_eq!(names(&ask(&d, "GET", "/api/transfers", &key)), 2, "the second's answer");
    assert_eq!(names(&ask(&d, "GET", "/status", &key)), 2, "the second's answer");
    assert!(page(&d).contains(&refused.id.to_string()), "the list page's second's answer");
    assert_eq!(names(&ask(&d, "GET", "/api/transfers?limit=10", &key)), 1, "another question is read afresh");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(names(&ask(&d, "GET", "/api/transfers", &key)), 1, "read again after the second");
    // Through the dashboard: the next read is fresh.
    assert_eq!(ask(&d, "POST", &format!("/api/transfers/{}/hide", good.id), &key).status, 200);
    assert_eq!(names(&ask(&d, "GET", "/api/transfers", &key)), 0);
    assert_eq!(names(&ask(&d, "GET", "/status", &key)), 0);
    assert!(!page(&d).contains(&good.id.to_string()) && !page(&d).contains(&refused.id.to_string()));
    // A refusal is not kept, and a reader without a key is refused, never answered from the cache.
    assert_eq!(ask(&d, "GET", "/api/transfers?limit=0", &key).status, 400);
    assert_eq!(ask(&d, "GET", "/status", "ApiKey archivist:wrong").status, 403);
}

/// A scanner that finds a virus in everything until told otherwise (a false positive, say,
/// fixed by new signatures).
struct Switch(AtomicBool);

impl VirusScanner for Switch {
    fn version(&self) -> PortResult<String> {
        Ok("switch 1".into())
    }
    fn scan(&self, data: &mut dyn std::io::Read) -> PortResult<ScanVerdict> {
        std::io::copy(data, &mut std::io::sink())?;
        Ok(if self.0.load(Ordering::SeqCst) {
            ScanVerdict::Infected("Test.False-Positive".into())
        } else {
            ScanVerdict::Clean
        })
    }
}

#[test]
fn a_failed_transfer_is_retried_from_its_failed_microservice_without_duplicates() {
    let switch = Arc::new(Switch(AtomicBool::new(true)));
    let mut options = vellum_tests::options();
    options.scanner = Some(switch.clone());
    options.settings.batch_size = Some(2);
    let t = TestEnv::with_options(options);
    let event = t.upload(&Package::catalogued("PP/RETRY/1", 5), "born-digital/retry.zip");
    t.drive(|_, _| false);
    let failed = t.transfer_for(&event).unwrap();
    assert_eq!(failed.status, TransferStatus::Failed, "{:?}", failed.failure_reason);
    let key = format!("ApiKey archivist:{}", t.api_key("archivist", None));
    let d = t.dashboard(true);
    assert_eq!(ask(&d, "POST", &format!("/api/transfers/{}/retry", Uuid::nil()), &key).status, 404);

    switch.0.store(false, Ordering::SeqCst);
    let retried = ask(&d, "POST", &format!("/api/transfers/{}/retry", failed.id), &key);
    assert_eq!(retried.status, 202, "{}", text(&retried));
    assert_eq!(json(&retried)["stage"], "scan");
    let again = ask(&d, "POST", &format!("/api/transfers/{}/retry", failed.id), &key);
    assert_eq!(again.status, 409, "a transfer already retrying is not retried twice");
    // The dashboard only asked, on the start queue: it sent nothing to a stage's queue.
    let scan = vellum_core::model::Stage::Scan.name();
    assert!(vellum_core::ports::Queue::receive(t.env.queue.as_ref(), scan, 10, std::time::Duration::ZERO)
        .unwrap()
        .is_empty());
    t.drive(|_, _| false);
    let done = t.env.state.transfer(failed.id).unwrap().unwrap();
    assert_eq!(done.status, TransferStatus::Complete, "{:?}", done.failure_reason);
    let files = t.env.state.all_files(done.id).unwrap();
    let events = t.env.state.all_events(done.id).unwrap();
    let digests = events.iter().filter(|e| e.event_type == "message digest calculation").count();
    assert_eq!(digests, files.len(), "nothing recorded twice");
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e.uuid).collect();
    assert_eq!(ids.len(), events.len());
    assert_eq!(
        ask(&d, "POST", &format!("/api/transfers/{}/retry", done.id), &key).status,
        409,
        "a stored AIP is not retried"
    );
}

#[test]
fn a_transfer_is_started_from_an_object_already_uploaded() {
    let t = TestEnv::new(10);
    let key = format!("ApiKey archivist:{}", t.api_key("archivist", None));
    let zip = t.dir.path().join("p.zip");
    Package::catalogued("PP/START/1", 2).write_zip(&zip);
    t.env.uploads.put("born-digital/started.zip", &std::fs::read(&zip).unwrap()).unwrap();
    let d = t.dashboard(true);
    let started = d.handle(
        &Request::new("POST", "/api/transfers")
            .with_header("Authorization", &key)
            .with_body(r#"{"key": "born-digital/started.zip"}"#),
    );
    assert_eq!(started.status, 202, "{}", text(&started));
    let id: Uuid = json(&started)["id"].as_str().unwrap().parse().unwrap();
    let missing = d.handle(
        &Request::new("POST", "/api/transfers")
            .with_header("Authorization", &key)
            .with_body(r#"{"key": "born-digital/none.zip"}"#),
    );
    assert_eq!(missing.status, 404);
    t.drive(|_, _| false);
    let transfer = t.env.state.transfer(id).unwrap().expect("the transfer has the id it was given");
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
}

#[test]
fn archivematicas_api_answers_in_its_own_words() {
    let (t, key, good, refused) = with_transfers();
    let d = t.dashboard(true);
    let status = json(&ask(&d, "GET", &format!("/api/transfer/status/{}/", good.id), &key));
    assert_eq!(status["status"], "COMPLETE");
    assert_eq!(status["sip_uuid"], good.sip_uuid.to_string());
    assert_eq!(status["type"], "transfer");
    assert_eq!(status["name"], "good");
    assert_eq!(status["directory"], format!("good-{}", good.id));
    assert_eq!(status["message"], format!("Fetched status for {} successfully.", good.id));
    for field in ["microservice", "path", "uuid"] {
        assert!(status[field].is_string(), "{field}: {status}");
    }
    let ingest = json(&ask(&d, "GET", &format!("/api/ingest/status/{}", good.sip_uuid), &key));
    assert_eq!((ingest["status"].as_str(), ingest["type"].as_str()), (Some("COMPLETE"), Some("SIP")));
    let unknown = ask(&d, "GET", &format!("/api/transfer/status/{}", Uuid::new_v4()), &key);
    assert_eq!(unknown.status, 400);
    assert!(json(&unknown)["message"].as_str().unwrap().starts_with("Cannot fetch unitTransfer with UUID"));
    let rejected = json(&ask(&d, "GET", &format!("/api/transfer/status/{}", refused.id), &key));
    assert_eq!(rejected["status"], "REJECTED");

    let completed = json(&ask(&d, "GET", "/api/transfer/completed", &key));
    assert_eq!(completed["results"], serde_json::json!([good.id]));
    assert_eq!(completed["message"], "Fetched completed transfers successfully.");
    assert_eq!(json(&ask(&d, "GET", "/api/ingest/completed", &key))["results"], serde_json::json!([good.sip_uuid]));
    assert_eq!(json(&ask(&d, "GET", "/api/transfer/unapproved", &key))["results"], serde_json::json!([]));

    let jobs = json(&ask(&d, "GET", &format!("/api/v2beta/jobs/{}", good.id), &key));
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), vellum_core::model::Stage::ALL.len(), "a job per microservice");
    for field in ["uuid", "name", "status", "microservice", "link_uuid", "tasks"] {
        assert!(!jobs[0][field].is_null(), "{field}: {}", jobs[0]);
    }
    let scan = jobs.iter().find(|j| j["name"] == "Scan for viruses").unwrap();
    let only = json(&ask(
        &d,
        "GET",
        &format!("/api/v2beta/jobs/{}?microservice=Microservice:%20Scan%20for%20viruses", good.id),
        &key,
    ));
    assert_eq!(only.as_array().unwrap().len(), 1);
    let by_name = json(&ask(
        &d,
        "GET",
        &format!("/api/v2beta/jobs/{}?name=Job:%20Scan%20for%20viruses&detailed", good.sip_uuid),
        &key,
    ));
    let task = &by_name[0]["tasks"][0];
    for field in ["file_uuid", "file_name", "time_created", "time_started", "time_ended", "duration"] {
        assert!(!task[field].is_null(), "{field}: {task}");
    }
    let by_link = json(&ask(
        &d,
        "GET",
        &format!("/api/v2beta/jobs/{}?link_uuid={}", good.id, scan["link_uuid"].as_str().unwrap()),
        &key,
    ));
    assert_eq!(by_link[0]["name"], "Scan for viruses");
    let one = json(&ask(&d, "GET", &format!("/api/v2beta/task/{}", task["uuid"].as_str().unwrap()), &key));
    assert_eq!(one["file_name"], task["file_name"]);
    assert_eq!(ask(&d, "GET", &format!("/api/v2beta/jobs/{}", Uuid::new_v4()), &key).status, 400);

    let configs = json(&ask(&d, "GET", "/api/processing-configuration/", &key));
    assert!(configs["processing_configurations"].as_array().unwrap().iter().any(|c| c == "born_digital"));
    let config = |name: &str, accept: &str| {
        d.handle(
            &Request::get(&format!("/api/processing-configuration/{name}"))
                .with_header("Authorization", &key)
                .with_header("Accept", accept),
        )
    };
    let xml = config("born_digital", "application/xml");
    assert_eq!(xml.status, 200);
    let xml_text = text(&xml);
    let doc = roxmltree::Document::parse(&xml_text).expect("well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "processingMCP");
    // Brought back in a transfer, the configuration means the profile's own switches.
    let profile = vellum_core::config::profile::Config::builtin().profile("born_digital").unwrap().clone();
    assert_eq!(vellum_core::intake::processing::choices(xml_text.as_bytes()).unwrap(), profile.switches());
    assert_eq!(config("born_digital", "application/json").status, 415);
    assert_eq!(config("nonesuch", "*/*").status, 404);

    let hidden = ask(&d, "DELETE", &format!("/api/transfer/{}/delete/", good.id), &key);
    assert_eq!(json(&hidden), serde_json::json!({"removed": true}));
    assert_eq!(ask(&d, "DELETE", &format!("/api/transfer/{}/delete/", good.id), &key).status, 409);
    assert_eq!(json(&ask(&d, "GET", "/api/transfer/completed", &key))["results"], serde_json::json!([]));
}

#[test]
fn package_names_are_shown_as_text_never_as_markup() {
    let (t, key, _, refused) = with_transfers();
    // A name that would read backwards: shown with its override written out.
    t.upload_bytes(b"not a zip", "born-digital/report\u{202E}txt.exe.zip");
    t.drive(|_, _| false);
    let d = t.dashboard(true);
    let k = key.rsplit(':').next().unwrap();
    let signed = d.handle(&Request::new("POST", "/sign-in").with_body(format!("user=archivist&key={k}")));
    let cookie = signed.header_value("Set-Cookie").unwrap().split(';').next().unwrap().to_string();
    for path in ["/".to_string(), format!("/transfers/{}", refused.id)] {
        let page = d.handle(&Request::get(&path).with_header("Cookie", &cookie));
        let html = text(&page);
        assert_eq!(page.status, 200, "{path}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;script&gt;"), "{path} shows the name as text");
        assert!(!html.contains("<script>alert"), "{path} never as markup");
        let csp = page.header_value("Content-Security-Policy").unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        assert!(!html.contains("<script>"), "no inline script at all");
    }
    let list = text(&d.handle(&Request::get("/").with_header("Cookie", &cookie)));
    assert!(list.contains("report[U+202E]txt.exe"), "the override is shown, not obeyed");
    assert!(!list.contains('\u{202E}'));
}

/// The storage read side through the API: the stored AIPs listed, one streamed (embedded
/// mode), for registered users only.
#[test]
fn stored_aips_are_listed_and_downloaded_through_the_api() {
    let (t, key, good, _) = with_transfers();
    let d = t.dashboard(true);
    assert_eq!(d.handle(&Request::get("/api/aips")).status, 403);
    let listed = json(&ask(&d, "GET", "/api/aips?identifier=PP%2FDASH%2F1", &key));
    let aips = listed["aips"].as_array().unwrap();
    assert_eq!(aips.len(), 1);
    assert_eq!(aips[0]["key"], good.aip_key.clone().unwrap());
    let mut download = ask(&d, "GET", "/api/aips/download?identifier=PP%2FDASH%2F1", &key);
    assert_eq!(download.status, 200);
    assert!(download.header_value("Content-Disposition").unwrap().starts_with("attachment; filename="));
    let mut stream = download.stream.take().expect("streamed, not held");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut stream.reader, &mut bytes).unwrap();
    assert_eq!(bytes.len() as u64, stream.len);
    assert_eq!(bytes, std::fs::read(t.env.aips.root().join(good.aip_key.unwrap())).unwrap());
    let file =
        ask(&d, "GET", "/api/aips/download?identifier=PP%2FDASH%2F1&file=objects%2Ffolder-0%2Ffile-00000.txt", &key);
    assert_eq!(file.status, 200, "{}", text(&file));
    assert_eq!(text(&file), "file 0 of PP/DASH/1\n", "one original, out of the AIP");
    assert_eq!(ask(&d, "GET", "/api/aips/download?identifier=PP%2FDASH%2F1&file=objects%2Fnone.txt", &key).status, 404);
    assert_eq!(ask(&d, "GET", "/api/aips/download?identifier=PP%2FNONE", &key).status, 404);
    assert_eq!(ask(&d, "GET", "/api/aips/download", &key).status, 400);
    // A storage space is named, never a path: one not configured is refused, and lists nothing.
    for space in ["%2Fusr", "..%2F..", "nowhere"] {
        let answer = ask(&d, "GET", &format!("/api/aips?space={space}"), &key);
        assert_eq!(answer.status, 400, "space={space}");
        assert!(text(&answer).contains("there is no storage space"), "{}", text(&answer));
    }
    assert_eq!(json(&ask(&d, "GET", "/api/aips?space=born-digital", &key))["aips"].as_array().unwrap().len(), 1);
}

/// A transfer is found by its own id, its SIP's or its AIP's, and its JSON uses the field
/// names of `vellum ingest --json`.
#[test]
fn a_transfer_is_found_by_any_of_its_ids() {
    let (t, key, good, _) = with_transfers();
    let d = t.dashboard(true);
    for id in [good.id, good.sip_uuid, good.aip_uuid] {
        let detail = json(&ask(&d, "GET", &format!("/api/transfers/{id}"), &key));
        assert_eq!(detail["summary"]["transfer_id"], good.id.to_string(), "by {id}");
    }
    let listed = json(&ask(&d, "GET", "/api/transfers", &key));
    for field in ["transfer_id", "sip_uuid", "aip_uuid", "reason", "name", "status"] {
        assert!(listed["transfers"][0].get(field).is_some(), "{field}: {listed}");
    }
}

/// Whatever a client puts in a query — a cursor, a limit, a status, an id — a bad value is
/// answered 4xx with a JSON error saying which, never 5xx. (A files cursor is a path: any
/// text is one, and the files after it are the answer.)
#[test]
fn bad_query_values_are_answered_4xx_never_5xx() {
    let (t, key, good, _) = with_transfers();
    let d = t.dashboard(true);
    for path in [
        "/api/transfers?cursor=garbage".to_string(),
        "/api/transfers?cursor=%00%FF".to_string(),
        "/api/transfers?limit=-1".to_string(),
        "/api/transfers?limit=many".to_string(),
        "/api/transfers?limit=99999999999999999999".to_string(),
        "/api/transfers?status=NOPE".to_string(),
        format!("/api/transfers/{}/events?cursor=garbage", good.id),
        format!("/api/transfers/{}/files?limit=0", good.id),
        "/api/transfers/not-a-uuid".to_string(),
        "/api/transfer/status/not-a-uuid".to_string(),
        "/api/aips/download?identifier=PP%2FDASH%2F1&version=-3".to_string(),
    ] {
        let answer = ask(&d, "GET", &path, &key);
        assert!((400..500).contains(&answer.status), "{path}: {} {}", answer.status, text(&answer));
        let said = json(&answer);
        assert_eq!(said["error"], true, "{path}: {said}");
    }
}

/// A transfer's page draws its microservices on one time axis: a bar for every job, in the
/// order they ran, each with its task count, so an operator sees what held the transfer.
#[test]
fn a_transfers_page_draws_its_microservices_as_a_timeline() {
    use vellum_core::ports::JobLedger;
    let (t, key, good, _) = with_transfers();
    let d = t.dashboard(true);
    let page = text(&ask(&d, "GET", &format!("/transfers/{}", good.id), &key));
    let svg = &page[page.find("<svg class=\"timeline\"").expect("a timeline")..];
    let svg = &svg[..svg.find("</svg>").unwrap()];
    let jobs = t.env.state.jobs(good.id).unwrap();
    assert!(jobs.len() > 5, "{jobs:?}");
    let mut at = 0;
    for job in &jobs {
        let bar =
            svg[at..].find(&format!("data-job=\"{}\"", job.uuid)).unwrap_or_else(|| panic!("no bar for {}", job.name));
        at += bar;
        let tasks = t.env.state.tasks(job.uuid).unwrap().len();
        let said = if tasks == 0 { "no tasks".to_string() } else { format!("{tasks} task") };
        let group = &svg[at..at + svg[at..].find("</g>").unwrap()];
        assert!(group.contains(&said) && group.contains("span-complete"), "{group}");
    }
    let checksum = jobs.iter().find(|j| j.stage == "checksum").unwrap();
    let tasks = t.env.state.tasks(checksum.uuid).unwrap().len();
    assert!(tasks >= 3 && tasks == good.file_count as usize, "a task a file: the bars count real tasks: {tasks}");
}
