//! The admin UI: a sign-in page (session cookie) and one page application
//! that drives the same REST API as every other client, so the UI can do
//! nothing the API cannot, and the API is exercised by every click.
//! Assets and templates are compiled into the binary; nothing is loaded
//! from elsewhere. The sign-in page is an askama template (auto-escaped);
//! the application's shell `app.html` is a static asset like its script.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::AppState;
use crate::caller::{SESSION_COOKIE, cookie_value};
use crate::problem::Problem;

mod sign_in_throttle;

const APP_HTML: &str = include_str!("../../assets/app.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/logout", axum::routing::post(logout))
        .route("/ui/session", get(session_info))
        .route(
            "/ui/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/ui/assets/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route("/ui/", get(app))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The sign-in page, saying what went wrong on the last try (if anything).
#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    message: &'a str,
}

async fn login_page() -> LoginPage<'static> {
    LoginPage { message: "" }
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

fn host_of(headers: &HeaderMap) -> &str {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, Problem> {
    let now = state.clock.now();
    let Some(client) = state.store.client_for_host(host_of(&headers)).await? else {
        let message = "No client answers this host name: ask the administrator to add it with `mailferry client add NAME --host HOST`.";
        return Ok((StatusCode::NOT_FOUND, LoginPage { message }).into_response());
    };
    if let Some(wait) = sign_in_throttle::locked_for(&client.id, &form.email, now) {
        let minutes = (wait.as_secs() + 59) / 60;
        tracing::warn!(client = %client.name, "sign-in refused: too many failures");
        audit_sign_in_failure(
            &state,
            &client.id,
            &form.email,
            "signin.refused",
            "locked for a while after repeated failures",
        )
        .await;
        return Ok((
            StatusCode::TOO_MANY_REQUESTS,
            LoginPage {
                message: &format!(
                    "Too many failed sign-ins for this account: try again in {minutes} minute(s), or ask an administrator."
                ),
            },
        )
            .into_response());
    }
    let password = SecretString::from(form.password);
    let Some(user) = state
        .store
        .verify_user(&client.id, &form.email, &password)
        .await?
    else {
        sign_in_throttle::record_failure(&client.id, &form.email, now);
        tracing::info!(client = %client.name, "failed sign-in");
        audit_sign_in_failure(
            &state,
            &client.id,
            &form.email,
            "signin.failed",
            "wrong password",
        )
        .await;
        return Ok((
            StatusCode::UNAUTHORIZED,
            LoginPage {
                message: "Wrong e-mail address or password.",
            },
        )
            .into_response());
    };
    sign_in_throttle::clear(&client.id, &form.email);
    crate::api::audit::record(
        &state,
        &client.id,
        &format!("user:{}", user.id),
        "signin.succeeded",
        None,
        "",
    )
    .await;
    let session = state
        .store
        .create_session(&user.id, &client.id, now)
        .await?;
    let secure = if state.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    // Lax, not Strict: the admin returns from Microsoft's sign-in by a
    // top-level navigation and should still be signed in.
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{secure}",
        session.expose_secret(),
        store::sessions::SESSION_LIFETIME.as_secs()
    );
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/ui/")).into_response())
}

/// A failed or refused sign-in of one of the client's users goes to the
/// audit log under that user. Addresses that are no user's are not
/// recorded: anyone can type them (a flood would fill the log for a
/// year), and a password typed into the address field must not be kept.
async fn audit_sign_in_failure(
    state: &AppState,
    client_id: &str,
    email: &str,
    action: &str,
    detail: &str,
) {
    match state.store.user_id_by_email(client_id, email).await {
        Ok(Some(user_id)) => {
            crate::api::audit::record(
                state,
                client_id,
                &format!("user:{user_id}"),
                action,
                None,
                detail,
            )
            .await;
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "a failed sign-in could not be checked for the audit log")
        }
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    if let Some(cookie) = cookie_value(&headers, SESSION_COOKIE) {
        state.store.delete_session(cookie).await?;
    }
    let clear = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0");
    Ok(([(header::SET_COOKIE, clear)], Redirect::to("/ui/login")).into_response())
}

async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<store::sessions::Session>, Problem> {
    match cookie_value(headers, SESSION_COOKIE) {
        Some(cookie) => Ok(state.store.session(cookie, state.clock.now()).await?),
        None => Ok(None),
    }
}

/// What the page needs to act: who is signed in and the CSRF token.
async fn session_info(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Some(session) = current_session(&state, &headers).await? else {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "not signed in: go to /ui/login",
        ));
    };
    let client = state
        .store
        .client_by_id(&session.client_id)
        .await?
        .map(|c| c.name)
        .unwrap_or_default();
    Ok(axum::Json(serde_json::json!({
        "email": session.email,
        "client": client,
        "csrf_token": session.csrf_token,
        "expires_at": session.expires_at.to_string(),
    }))
    .into_response())
}

async fn app(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    if current_session(&state, &headers).await?.is_none() {
        return Ok(Redirect::to("/ui/login").into_response());
    }
    Ok(Html(APP_HTML).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_in_message_is_escaped() {
        let page = LoginPage {
            message: "<script>alert(1)</script> & more",
        }
        .render()
        .expect("render");
        assert!(
            page.contains(
                "<p class=\"error\" role=\"alert\">&#60;script&#62;alert(1)&#60;/script&#62; &#38; more</p>"
            ),
            "{page}"
        );
    }
}
