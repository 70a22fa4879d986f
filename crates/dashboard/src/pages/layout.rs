//! What every page is drawn in: the layout, escaping, the static files, and the page a
//! signed-in person who is not registered sees.

use vellum_core::operations::access::User;

use crate::http::Response;

/// Text made safe inside HTML elements and quoted attributes (the XML escaping serves:
/// HTML5 reads its five entities).
pub fn escape(s: &str) -> String {
    vellum_core::record::xml::esc(s).into_owned()
}

pub fn asset(name: &str) -> Response {
    match name {
        "dashboard.css" => Response::with_type(200, "text/css; charset=utf-8", include_str!("static/dashboard.css")),
        "dashboard.js" => {
            Response::with_type(200, "text/javascript; charset=utf-8", include_str!("static/dashboard.js"))
        }
        "favicon.svg" => Response::with_type(200, "image/svg+xml", include_str!("static/favicon.svg")),
        _ => Response::json(404, &serde_json::json!({"message": "No such file.", "error": true})),
    }
}

pub(super) fn layout(title: &str, user: Option<&User>, body: &str) -> String {
    let who = match user {
        Some(u) => format!(
            "<form method=\"post\" action=\"/sign-out\" class=\"who\"><span>{}</span> <button type=\"submit\">Sign out</button></form>",
            escape(&u.name)
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Vellum</title><link rel=\"icon\" href=\"/static/favicon.svg\"><link rel=\"stylesheet\" href=\"/static/dashboard.css\">\
         <script src=\"/static/dashboard.js\" defer></script></head>\
         <body><header><a href=\"/\" class=\"brand\">Vellum</a><span class=\"tagline\">transfers and their AIPs</span>{who}</header>\
         <main>{body}</main></body></html>\n",
        escape(title)
    )
}

pub fn not_registered() -> Response {
    Response::html(
        403,
        layout(
            "Not registered",
            None,
            "<h1>You are not registered</h1><p>Your sign-in worked, but Vellum admits only the people \
             registered in it. Ask an administrator to add you (<code>vellum users add NAME --email EMAIL</code>).</p>",
        ),
    )
}
