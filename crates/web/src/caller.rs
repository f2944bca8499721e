//! Who is calling, and for which client: an API token (`Authorization:
//! Bearer …`) or an admin UI session cookie. Nothing else grants access.
//! Cookie-authenticated changes must echo the session's CSRF token in
//! `X-CSRF-Token`, so another site cannot make a logged-in browser act.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};

use crate::AppState;
use crate::problem::Problem;

pub const SESSION_COOKIE: &str = "mf_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: String,
    /// Who started an action (`token:ID` or `user:ID`), for audit and OAuth state binding.
    pub principal: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let now = state.clock.now();
        if let Some(token) = bearer_token(&parts.headers) {
            let owner = state
                .store
                .token_owner(token, now)
                .await?
                .ok_or_else(Problem::unauthorized)?;
            return Ok(Self {
                client_id: owner.client_id,
                principal: format!("token:{}", owner.token_id),
            });
        }
        let Some(cookie) = cookie_value(&parts.headers, SESSION_COOKIE) else {
            return Err(Problem::unauthorized());
        };
        let session = state.store.session(cookie, now).await?.ok_or_else(|| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "your session has ended: sign in again at /ui/login",
            )
        })?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let csrf_ok = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == session.csrf_token);
        if !safe && !csrf_ok {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "missing or wrong X-CSRF-Token header: reload the page and try again",
            ));
        }
        Ok(Self {
            client_id: session.client_id,
            principal: format!("user:{}", session.user_id),
        })
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}
