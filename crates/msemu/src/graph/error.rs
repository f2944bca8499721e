//! Graph's error shape: `{"error":{"code","message","innerError":{…}}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::json;

use crate::faults::retry_after_value;

#[derive(Debug, Clone)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<f64>,
    pub www_authenticate: Option<String>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        GraphError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            www_authenticate: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn not_found() -> Self {
        GraphError::new(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )
    }

    pub fn malformed_id() -> Self {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidIdMalformed",
            "Id is malformed.",
        )
    }

    pub fn access_denied() -> Self {
        GraphError::new(
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        )
    }

    pub fn retry_after(mut self, secs: f64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Renders the error; `innerError.date` has no zone suffix, as Graph sends it.
    pub fn render(self, now: Timestamp, request_id: &str, client_request_id: &str) -> Response {
        let date = now.strftime("%Y-%m-%dT%H:%M:%S").to_string();
        let mut inner = json!({
            "date": date,
            "request-id": request_id,
            "client-request-id": client_request_id,
        });
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            crate::json::set(&mut inner, "code", json!("429"));
            crate::json::set(&mut inner, "status", json!("429"));
        }
        let body =
            json!({"error": {"code": self.code, "message": self.message, "innerError": inner}});
        let mut resp = (self.status, Json(body)).into_response();
        let h = resp.headers_mut();
        if let Some(r) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&retry_after_value(r))
        {
            h.insert(header::RETRY_AFTER, v);
        }
        if let Some(w) = self.www_authenticate
            && let Ok(v) = HeaderValue::from_str(&w)
        {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}
