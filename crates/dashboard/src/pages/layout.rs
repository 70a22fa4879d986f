//! What every page is drawn in: the layout, escaping, the static files, and the page a
//! signed-in person who is not registered sees.

use vellum_core::operations::access::User;

use crate::http::Response;

/// Text made safe inside HTML elements and quoted attributes (the XML escaping serves:
/// HTML5 reads its five entities), with every control and bidirectional-override character
/// shown as its code point: a name with U+202E would otherwise read backwards on the page
/// (`txt.exe` shown as `exe.txt`), and a control character is invisible.
pub fn escape(s: &str) -> String {
    vellum_core::record::xml::esc(&visible(s)).into_owned()
}

/// The text with its invisible and direction-changing characters written out (`[U+202E]`).
pub fn visible(s: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) {
            out.push_str(&format!("[U+{:04X}]", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

pub fn asset(name: &str) -> Response {
    match name {
        "dashboard.css" => Response::with_type(200, "text/css; charset=utf-8", include_str!("static/dashboard.css")),
        "dashboard.js" => {
            Response::with_type(200, "text/javascript; charset=utf-8", include_str!("static/dashboard.js"))
        }
        "favicon.svg" => Response::with_type(200, "image/svg+xml", include_str!("static/favicon.svg")),
        _ => Response::error(404, "No such file."),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_overrides_and_controls_are_shown_not_obeyed() {
        assert_eq!(escape("report\u{202E}txt.exe"), "report[U+202E]txt.exe");
        assert_eq!(escape("a\u{2067}b\u{0007}<c>"), "a[U+2067]b[U+0007]&lt;c&gt;");
        assert_eq!(escape("two\nlines"), "two\nlines", "a line break is text, shown as such");
        assert!(matches!(visible("plain é"), std::borrow::Cow::Borrowed(_)));
    }
}
