//! The HTML a browser sees during sign-in: plain forms, no script, so a headless browser or
//! a test client can fill them.

use axum::response::Html;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title></head><body>\n<h1>{}</h1>\n{body}\n\
         <p><small>Microsoft emulator (msemu) — not a Microsoft service.</small></p>\
         </body></html>\n",
        esc(title),
        esc(title)
    ))
}

pub fn login_page(
    tenant: &str,
    flow: &str,
    app_name: &str,
    login_hint: &str,
    error: Option<&str>,
) -> Html<String> {
    let err = error
        .map(|e| format!("<p id=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    page(
        "Sign in",
        &format!(
            "<p>to continue to {app}</p>{err}\
             <form method=\"post\" action=\"/{tenant}/oauth2/v2.0/login\">\
             <input type=\"hidden\" name=\"flow\" value=\"{flow}\">\
             <label>Email <input type=\"email\" name=\"login\" id=\"login\" value=\"{hint}\" autocomplete=\"username\"></label>\
             <label>Password <input type=\"password\" name=\"passwd\" id=\"passwd\" autocomplete=\"current-password\"></label>\
             <button type=\"submit\" id=\"signin\">Sign in</button></form>",
            app = esc(app_name),
            tenant = esc(tenant),
            flow = esc(flow),
            hint = esc(login_hint),
        ),
    )
}

pub fn consent_page(
    tenant: &str,
    flow: &str,
    app_name: &str,
    upn: &str,
    scopes: &[String],
) -> Html<String> {
    let items: String = scopes
        .iter()
        .map(|s| format!("<li>{}</li>", esc(s)))
        .collect();
    page(
        "Permissions requested",
        &format!(
            "<p>{app} wants to access resources of {upn}:</p><ul id=\"scopes\">{items}</ul>\
             <form method=\"post\" action=\"/{tenant}/oauth2/v2.0/consent\">\
             <input type=\"hidden\" name=\"flow\" value=\"{flow}\">\
             <button type=\"submit\" name=\"decision\" value=\"accept\" id=\"accept\">Accept</button>\
             <button type=\"submit\" name=\"decision\" value=\"cancel\" id=\"cancel\">Cancel</button></form>",
            app = esc(app_name),
            upn = esc(upn),
            tenant = esc(tenant),
            flow = esc(flow),
        ),
    )
}

pub fn account_picker(tenant: &str, flow: &str, accounts: &[(String, String)]) -> Html<String> {
    let buttons: String = accounts
        .iter()
        .map(|(upn, name)| {
            format!(
                "<button type=\"submit\" name=\"account\" value=\"{}\">{} ({})</button>",
                esc(upn),
                esc(name),
                esc(upn)
            )
        })
        .collect();
    page(
        "Pick an account",
        &format!(
            "<form method=\"post\" action=\"/{tenant}/oauth2/v2.0/select_account\">\
             <input type=\"hidden\" name=\"flow\" value=\"{flow}\">{buttons}\
             <button type=\"submit\" name=\"account\" value=\"\" id=\"other\">Use another account</button></form>",
            tenant = esc(tenant),
            flow = esc(flow),
        ),
    )
}

pub fn error_page(
    code: u32,
    message: &str,
    trace_id: &str,
    correlation_id: &str,
    timestamp: &str,
) -> Html<String> {
    page(
        "Sorry, but we're having trouble signing you in.",
        &format!(
            "<p id=\"error\">AADSTS{code}: {}</p>\
             <dl><dt>Trace ID</dt><dd>{}</dd><dt>Correlation ID</dt><dd>{}</dd>\
             <dt>Timestamp</dt><dd>{}</dd></dl>",
            esc(message),
            esc(trace_id),
            esc(correlation_id),
            esc(timestamp)
        ),
    )
}

/// The auto-submitting form of `response_mode=form_post`.
pub fn form_post(action: &str, fields: &[(&str, String)]) -> Html<String> {
    let inputs: String = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(k),
                esc(v)
            )
        })
        .collect();
    Html(format!(
        "<!DOCTYPE html><html><head><title>Working...</title></head>\
         <body onload=\"document.forms[0].submit()\"><form method=\"POST\" action=\"{}\">{inputs}\
         <noscript><button type=\"submit\">Continue</button></noscript></form></body></html>",
        esc(action)
    ))
}
