//! The HTML dashboard: the transfer list and a transfer's page, rendered here with every
//! value that came from a package escaped; the one script (`static/dashboard.js`) only
//! refreshes what is shown and sends the buttons' requests. No external CDN, font or
//! inline script: the Content-Security-Policy forbids them.

pub mod layout;
mod timeline;

use std::fmt::Write;

use serde_json::Value;
use uuid::Uuid;
use vellum_core::model::{Role, Transfer, TransferStatus};
use vellum_core::operations::access::{authenticate, start_session, Credential, User};
use vellum_core::ports::{PortResult, TransferQuery};

use crate::api::json as json_api;
use crate::auth::{Admission, SESSION_COOKIE};
use crate::http::{percent_encode, Request, Response};
use crate::routes::Route;
use crate::Dashboard;
use layout::layout;
pub use layout::{asset, escape, not_registered};

/// Why a sign-in did not happen, as the page says it.
fn problem_html(problem: Option<&str>) -> String {
    problem.map(|p| format!("<p class=\"problem\" role=\"alert\">{}</p>", escape(p))).unwrap_or_default()
}

/// A sign-in page that says only why the sign-in stopped.
fn sign_in_problem(status: u16, why: &str) -> Response {
    Response::html(status, layout("Sign in", None, &format!("<h1>Sign in</h1>{}", problem_html(Some(why)))))
}

/// The session cookie a sign-in sets, whichever way it was made.
fn session_cookie(token: &str, request: &Request) -> String {
    let max_age = vellum_core::operations::access::SESSION_HOURS * 3600;
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}", secure(request))
}

pub fn sign_in_page(d: &Dashboard, request: &Request, problem: Option<&str>) -> Response {
    if d.oidc.is_some() && !d.sign_in {
        let next = safe_next(request.param("next"));
        let problem = problem_html(problem);
        let body = format!(
            "<h1>Sign in</h1>{problem}<p><a class=\"action\" href=\"/sign-in/oidc?next={}\">Sign in with your organisation's account</a></p>",
            escape(&percent_encode(&next))
        );
        return Response::html(200, layout("Sign in", None, &body));
    }
    if !d.sign_in {
        return Response::html(
            404,
            layout(
                "Sign in",
                None,
                "<h1>Sign in</h1><p>People sign in through the organisation's identity provider here.</p>",
            ),
        );
    }
    let next = safe_next(request.param("next").or_else(|| request.form().get("next").cloned()));
    let problem = problem_html(problem);
    let body = format!(
        "<h1>Sign in</h1>{problem}<form method=\"post\" action=\"/sign-in\" class=\"sign-in\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label>User name <input name=\"user\" autocomplete=\"username\" required></label>\
         <label>API key <input name=\"key\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\">Sign in</button></form>\
         <p class=\"hint\">An administrator gives you a user name and a key: <code>vellum users add NAME</code>, \
         then <code>vellum api-keys create --user NAME</code>.</p>",
        escape(&next)
    );
    Response::html(if problem.is_empty() { 200 } else { 403 }, layout("Sign in", None, &body))
}

/// Only a path on this site: never `//elsewhere` or a full URL.
/// Where a sign-in goes on to: a path on this site, or the front page. Control characters
/// (a header split), white space and backslashes (which browsers drop or read as `/`, so
/// `/\t/evil.example` is `//evil.example`) never pass.
fn safe_next(next: Option<String>) -> String {
    match next {
        Some(n)
            if n.starts_with('/') && !n.starts_with("//") && n.chars().all(|c| c.is_ascii_graphic() && c != '\\') =>
        {
            n
        }
        _ => "/".into(),
    }
}

pub fn sign_in(d: &Dashboard, request: &Request) -> PortResult<Response> {
    if !d.sign_in {
        return Ok(sign_in_page(d, request, None));
    }
    let form = request.form();
    let credential = Credential::ApiKey {
        user: form.get("user").cloned().unwrap_or_default(),
        key: form.get("key").cloned().unwrap_or_default(),
    };
    let user = match crate::auth::admit(d, request, Some(&credential))? {
        Admission::Admitted(user) => user,
        Admission::Refused => {
            return Ok(sign_in_page(d, request, Some("That user name and key do not match a registered user.")))
        }
        Admission::HeldBack(wait) => {
            let seconds = crate::auth::retry_after(wait);
            let why = format!("Too many failed sign-ins lately: try again in {seconds} s.");
            let mut page = sign_in_page(d, request, Some(&why));
            page.status = 429;
            return Ok(page.header("Retry-After", &seconds.to_string()));
        }
    };
    let key = match &credential {
        Credential::ApiKey { key, .. } => Some(key.as_str()),
        _ => None,
    };
    let (_session, token) = start_session(d.access.as_ref(), d.clock.as_ref(), &user.name, key)?;
    Ok(Response::see_other(&safe_next(form.get("next").cloned()))
        .header("Set-Cookie", &session_cookie(&token, request)))
}

/// Where the provider sends people back: as configured, else this site's own callback.
fn oidc_redirect_uri(oidc: &crate::oidc::Oidc, request: &Request) -> String {
    if let Some(uri) = &oidc.settings().redirect_uri {
        return uri.clone();
    }
    let scheme = if over_tls(request) { "https" } else { "http" };
    let host = request.header("host").unwrap_or("localhost");
    format!("{scheme}://{host}/sign-in/callback")
}

/// The first leg of a sign-in through the OIDC provider: off to the provider, with the
/// pending sign-in in a cookie that only `/sign-in` sees, for ten minutes.
pub fn oidc_start(d: &Dashboard, request: &Request) -> Response {
    let Some(oidc) = &d.oidc else { return Response::error(404, "No OIDC provider is set for this dashboard.") };
    let next = safe_next(request.param("next"));
    match oidc.start(&oidc_redirect_uri(oidc, request), &next) {
        Ok(started) => Response::see_other(&started.location).header(
            "Set-Cookie",
            &format!(
                "{}={}; Path=/sign-in; HttpOnly; SameSite=Lax; Max-Age=600{}",
                crate::oidc::PENDING_COOKIE,
                started.cookie_value,
                secure(request)
            ),
        ),
        Err(why) => {
            tracing::warn!(error = %why, "an OIDC sign-in could not begin");
            sign_in_problem(503, &why.0)
        }
    }
}

/// The provider's return: the code exchanged and the ID token checked, the person found by
/// the token's issuer and subject, and a session begun as a key's would be.
pub fn oidc_callback(d: &Dashboard, request: &Request) -> PortResult<Response> {
    let Some(oidc) = &d.oidc else { return Ok(Response::error(404, "No OIDC provider is set for this dashboard.")) };
    let refused = |why: &str| {
        tracing::warn!(
            audit = "oidc sign-in refused",
            peer = request.peer.as_deref().unwrap_or("-"),
            why,
            "an OIDC sign-in refused"
        );
        sign_in_problem(403, why)
    };
    if let Some(error) = request.param("error") {
        return Ok(refused(&format!("The identity provider said: {error}")));
    }
    let (Some(code), Some(state), Some(pending)) =
        (request.param("code"), request.param("state"), request.cookie(crate::oidc::PENDING_COOKIE))
    else {
        return Ok(refused("This sign-in was not begun here: start again."));
    };
    let (claims, next) = match oidc.finish(&oidc_redirect_uri(oidc, request), &code, &state, &pending) {
        Ok(done) => done,
        Err(why) => return Ok(refused(&why.0)),
    };
    let Some(user) = authenticate(d.access.as_ref(), d.clock.now(), &Credential::Claims(claims.clone()))? else {
        let who = vellum_core::operations::access::identity_of(&claims).unwrap_or_default();
        return Ok(refused(&format!(
            "You ({who}) are not registered here. Ask an administrator: vellum users add NAME --identity '{who}'."
        )));
    };
    let (_session, token) = start_session(d.access.as_ref(), d.clock.as_ref(), &user.name, None)?;
    tracing::info!(audit = "signed in", user = %user.name, peer = request.peer.as_deref().unwrap_or("-"), "an OIDC sign-in");
    Ok(Response::see_other(&safe_next(Some(next)))
        .header("Set-Cookie", &session_cookie(&token, request))
        .header("Set-Cookie", &format!("{}=; Path=/sign-in; HttpOnly; Max-Age=0", crate::oidc::PENDING_COOKIE)))
}

pub fn sign_out(d: &Dashboard, request: &Request) -> Response {
    if let Some(token) = request.cookie(SESSION_COOKIE) {
        if let Err(e) = d.access.remove_session(&vellum_core::operations::access::digest(&token)) {
            tracing::warn!(error = %e, "a session could not be removed");
        }
    }
    Response::see_other("/sign-in")
        .header("Set-Cookie", &format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"))
}

/// `; Secure` when the request came over TLS: a reverse proxy in front that says so
/// (`X-Forwarded-Proto: https`, as API Gateway says too). A client that says it falsely only
/// makes its own cookie stricter.
fn secure(request: &Request) -> &'static str {
    if over_tls(request) {
        "; Secure"
    } else {
        ""
    }
}

/// Whether the request came over TLS, as a reverse proxy in front (or API Gateway) says.
fn over_tls(request: &Request) -> bool {
    request
        .header("X-Forwarded-Proto")
        .is_some_and(|p| p.split(',').next().is_some_and(|first| first.trim().eq_ignore_ascii_case("https")))
}

pub fn page(d: &Dashboard, route: &Route, request: &Request, user: &User) -> PortResult<Response> {
    match route {
        Route::TransferPage(id) => transfer_page(d, *id, request, user),
        _ => list_page(d, request, user),
    }
}

fn status_badge(status: &str) -> String {
    format!(
        "<span class=\"status status-{}\" data-field=\"status\">{}</span>",
        escape(&status.to_lowercase()),
        escape(status)
    )
}

fn progress_cells(progress: &[Value]) -> String {
    let mut out = String::from("<span class=\"stages\" data-field=\"progress\">");
    for p in progress {
        let status = p["status"].as_str().unwrap_or("WAITING");
        let title = match (p["batches_done"].as_u64(), p["batches"].as_u64()) {
            (Some(done), Some(all)) => {
                format!("{}: {status}, {done} of {all} batches", p["microservice"].as_str().unwrap_or(""))
            }
            _ => format!("{}: {status}", p["microservice"].as_str().unwrap_or("")),
        };
        let _ = write!(
            out,
            "<span class=\"stage stage-{}\" title=\"{}\" data-stage=\"{}\"></span>",
            escape(&status.to_lowercase()),
            escape(&title),
            escape(p["stage"].as_str().unwrap_or(""))
        );
    }
    out.push_str("</span>");
    out
}

fn list_page(d: &Dashboard, request: &Request, user: &User) -> PortResult<Response> {
    // The list is the same for everyone of a role (only the layout names who is signed in):
    // read once a second for every reader, as the JSON list is.
    let question = format!("the list page for a {} {}", user.role.name(), request.target());
    let operator = user.role >= Role::Operator;
    Ok(
        match d
            .answers
            .answer_unless(&question, || PortResult::Ok(list_body(d, request, operator)?.map(String::into_bytes)))?
        {
            Ok(body) => Response::html(200, layout("Transfers", Some(user), &String::from_utf8_lossy(&body))),
            Err(elsewhere) => elsewhere,
        },
    )
}

/// The list page's content, or where to go instead (a cursor that is not one).
fn list_body(d: &Dashboard, request: &Request, operator: bool) -> PortResult<Result<String, Response>> {
    let params = request.params();
    let q = params.get("q").cloned().unwrap_or_default();
    let status = params.get("status").cloned().unwrap_or_default();
    let cursor = params.get("cursor").cloned().filter(|c| !c.is_empty());
    let status_filter = TransferStatus::parse(&status.to_uppercase());
    let page = match d.state.list_transfers(&TransferQuery {
        status: status_filter,
        search: Some(q.trim().to_string()).filter(|s| !s.is_empty()),
        after: cursor.clone(),
        limit: 25,
        hidden: false,
    }) {
        Err(vellum_core::ports::PortError::Refused(_)) => return Ok(Err(Response::see_other("/"))),
        other => other?,
    };
    let mut rows = String::new();
    for t in &page.items {
        rows.push_str(&row(d, t)?);
    }
    if page.items.is_empty() {
        rows.push_str("<tr><td colspan=\"6\" class=\"empty\">No transfers here yet. Drop a package into the uploads folder (or bucket) under <code>born-digital/</code>.</td></tr>");
    }
    let options: String = ["", "PROCESSING", "COMPLETE", "FAILED", "REJECTED"]
        .iter()
        .map(|s| {
            let label = if s.is_empty() { "Any status" } else { s };
            let selected = if status.eq_ignore_ascii_case(s) { " selected" } else { "" };
            format!("<option value=\"{s}\"{selected}>{label}</option>")
        })
        .collect();
    let older = match &page.next {
        Some(n) => format!(
            "<a class=\"older\" href=\"/?q={}&amp;status={}&amp;cursor={}\">Older transfers →</a>",
            percent_encode(&q),
            percent_encode(&status),
            percent_encode(n)
        ),
        None => String::new(),
    };
    let newest = if cursor.is_some() { "<a href=\"/\">← Newest</a> ".to_string() } else { String::new() };
    // A viewer is not offered what they may not do.
    let hide_all = if operator {
        "<button type=\"button\" class=\"action\" data-post=\"/api/transfers/hide-completed\" \
         data-confirm=\"Hide every ended transfer from this list?\">Hide completed</button>"
    } else {
        ""
    };
    let body = format!(
        "<div class=\"bar\"><h1>Transfers</h1>\
         <form class=\"filters\" method=\"get\" action=\"/\" role=\"search\">\
         <input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"Name or identifier\" aria-label=\"Search by name or identifier\">\
         <select name=\"status\" aria-label=\"Status\">{options}</select><button type=\"submit\">Search</button></form>\
         {hide_all}</div>\
         <table class=\"transfers\" data-live=\"list\"><thead><tr><th>Transfer</th><th>Identifier</th><th>Status</th>\
         <th>Microservice</th><th>Progress</th><th>Updated</th></tr></thead><tbody>{rows}</tbody></table>\
         <nav class=\"pages\">{newest}{older}</nav>",
        escape(&q)
    );
    Ok(Ok(body))
}

fn row(d: &Dashboard, t: &Transfer) -> PortResult<String> {
    let jobs = d.state.jobs(t.id)?;
    let progress = json_api::progress(&jobs, t);
    let reason = match &t.failure_reason {
        Some(r) => format!("<div class=\"reason\">{}</div>", escape(r)),
        None => String::new(),
    };
    Ok(format!(
        "<tr data-id=\"{id}\"><td><a href=\"/transfers/{id}\">{name}</a>{reason}</td><td>{identifier}</td><td>{status}</td>\
         <td data-field=\"microservice\">{microservice}</td><td>{progress}</td><td data-field=\"updated\">{updated}</td></tr>",
        id = t.id,
        name = escape(&t.name),
        identifier = escape(&t.identifiers.external_identifier().unwrap_or_default()),
        status = status_badge(t.status.as_str()),
        microservice = escape(t.current_microservice.as_deref().unwrap_or("")),
        progress = progress_cells(&progress),
        updated = t.updated_at.format("%Y-%m-%d %H:%M:%S UTC"),
    ))
}

fn transfer_page(d: &Dashboard, id: Uuid, request: &Request, user: &User) -> PortResult<Response> {
    let Some(t) = d.state.transfer(id)? else {
        return Ok(Response::html(
            404,
            layout("Not found", Some(user), "<h1>No such transfer</h1><p><a href=\"/\">All transfers</a></p>"),
        ));
    };
    let jobs = d.state.jobs(id)?;
    let progress = json_api::progress(&jobs, &t);
    let params = request.params();
    let mut body = format!(
        "<p><a href=\"/\">← All transfers</a></p><div class=\"bar\"><h1>{}</h1>{}</div>",
        escape(&t.name),
        status_badge(t.status.as_str())
    );
    body.push_str("<div data-live=\"transfer\" data-id=\"");
    body.push_str(&t.id.to_string());
    body.push_str("\">");
    if let Some(reason) = &t.failure_reason {
        let _ = write!(
            body,
            "<section class=\"failure\" role=\"alert\"><h2>Why it stopped</h2><p>{}</p></section>",
            escape(reason)
        );
    }
    let mut actions = String::new();
    let operator = user.role >= Role::Operator;
    if operator && t.status == TransferStatus::Failed {
        let _ = write!(actions, "<button type=\"button\" class=\"action\" data-post=\"/api/transfers/{id}/retry\">Retry from the failed microservice</button>");
    }
    if operator && t.status != TransferStatus::Processing && !t.hidden {
        let _ = write!(actions, "<button type=\"button\" class=\"action\" data-post=\"/api/transfers/{id}/hide\">Hide from the list</button>");
    }
    if !actions.is_empty() {
        let _ = write!(body, "<div class=\"actions\">{actions}</div>");
    }
    let _ = write!(
        body,
        "<dl class=\"facts\"><dt>Identifier</dt><dd>{}</dd><dt>Upload</dt><dd>{}/{}</dd><dt>Transfer</dt><dd>{}</dd>\
         <dt>SIP</dt><dd>{}</dd><dt>Files</dt><dd>{}</dd><dt>Started</dt><dd>{}</dd><dt>AIP</dt><dd>{}</dd>{}</dl>",
        escape(&t.identifiers.external_identifier().unwrap_or_default()),
        escape(&t.source_bucket),
        escape(&t.source_key),
        t.id,
        t.sip_uuid,
        t.file_count,
        t.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        escape(t.aip_key.as_deref().unwrap_or("not stored yet")),
        t.dip_key
            .as_deref()
            .map(|dip| format!("<dt>DIP</dt><dd><a href=\"/api/transfers/{}/dip\">{}</a></dd>", t.id, escape(dip)))
            .into_iter()
            .chain(t.files_not_normalized.filter(|n| *n > 0).map(|n| {
                format!(
                    "<dt>Not normalized</dt><dd>{n} file(s): no copy could be made (their normalization events say why)</dd>"
                )
            }))
            .collect::<String>()
    );
    let _ = write!(body, "<h2>Progress</h2>{}", progress_cells(&progress));
    let counted = jobs
        .iter()
        .map(|j| {
            let tasks = d.state.tasks(j.uuid)?;
            Ok((tasks.len(), tasks.iter().filter(|t| t.exit_code != 0).count()))
        })
        .collect::<PortResult<Vec<_>>>()?;
    let bars: Vec<_> =
        jobs.iter().zip(&counted).map(|(job, &(tasks, failed))| timeline::Bar { job, tasks, failed }).collect();
    let _ = write!(body, "<h2>Timeline</h2>{}", timeline::svg(&bars, chrono::Utc::now()));
    body.push_str("<h2>Jobs</h2><table class=\"jobs\"><thead><tr><th>Microservice</th><th>Job</th><th>Status</th><th>Started</th><th>Took</th><th>Tasks</th></tr></thead><tbody>");
    for (j, &(tasks, failed)) in jobs.iter().zip(&counted) {
        let took = j
            .ended_at
            .map(|e| format!("{:.1} s", (e - j.started_at).num_milliseconds() as f64 / 1000.0))
            .unwrap_or_default();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{took}</td><td>{}{}</td></tr>",
            escape(&j.microservice_group),
            escape(&j.name),
            status_badge(j.status.as_str()),
            j.started_at.format("%H:%M:%S"),
            tasks,
            if failed > 0 { format!(" ({failed} failed)") } else { String::new() }
        );
    }
    body.push_str("</tbody></table>");
    let files = json_api::files(d, &t, params.get("files").map(String::as_str), 50)?;
    body.push_str("<h2>Files</h2><table class=\"files\"><thead><tr><th>Name</th><th>Original name</th><th>Size</th><th>SHA-256</th><th>Format</th><th>Virus check</th></tr></thead><tbody>");
    for f in files["files"].as_array().into_iter().flatten() {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"digest\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(f["name"].as_str().unwrap_or("")),
            escape(f["original_name"].as_str().unwrap_or("")),
            f["size"],
            escape(f["checksums"]["sha256"].as_str().unwrap_or("")),
            escape(&format!("{} {}", f["puid"].as_str().unwrap_or(""), f["format"].as_str().unwrap_or(""))),
            escape(f["scan"].as_str().unwrap_or(""))
        );
    }
    body.push_str("</tbody></table>");
    if let Some(next) = files["next"].as_str() {
        let _ = write!(body, "<p><a href=\"/transfers/{id}?files={}\">More files →</a></p>", percent_encode(next));
    }
    let events = d.state.events(id, params.get("events").map(String::as_str), 100)?;
    body.push_str("<h2>PREMIS events</h2><table class=\"events\"><thead><tr><th>When</th><th>Event</th><th>File</th><th>Outcome</th><th>Detail</th></tr></thead><tbody>");
    for e in &events.items {
        let outcome = json_api::outcome_word(e);
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.date_time.format("%H:%M:%S"),
            escape(e.event_type.as_str()),
            e.file_uuid.map(|f| f.to_string()).unwrap_or_else(|| "transfer".into()),
            escape(&outcome),
            escape(if e.outcome_detail.is_empty() { &e.detail } else { &e.outcome_detail })
        );
    }
    body.push_str("</tbody></table>");
    if let Some(next) = events.next {
        let _ = write!(body, "<p><a href=\"/transfers/{id}?events={}\">More events →</a></p>", percent_encode(&next));
    }
    body.push_str("</div>");
    Ok(Response::html(200, layout(&t.name, Some(user), &body)))
}
