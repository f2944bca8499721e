//! Entra's error responses: the token endpoint's JSON and the HTML error page /authorize
//! shows when it cannot redirect back safely.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::json;

use crate::ids;

/// An AADSTS error.
#[derive(Debug, Clone)]
pub struct AadError {
    pub status: StatusCode,
    pub error: &'static str,
    pub code: u32,
    pub message: String,
    pub suberror: Option<&'static str>,
}

/// `2020-07-06 22:31:52Z`, the format of `timestamp` in Entra errors.
pub fn aad_timestamp(now: Timestamp) -> String {
    now.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}

impl AadError {
    pub fn new(error: &'static str, code: u32, message: impl Into<String>) -> Self {
        let status = if error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        AadError {
            status,
            error,
            code,
            message: message.into(),
            suberror: None,
        }
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn suberror(mut self, s: &'static str) -> Self {
        self.suberror = Some(s);
        self
    }

    pub fn missing(param: &str) -> Self {
        AadError::new(
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{param}'."),
        )
    }

    pub fn unknown_tenant(segment: &str) -> Self {
        AadError::new(
            "invalid_tenant",
            90002,
            format!(
                "Tenant '{segment}' not found. Check to make sure you have the correct tenant ID \
                 and are signing into the correct cloud. Check with your subscription administrator, \
                 this may happen if there are no active subscriptions for the tenant."
            ),
        )
    }

    pub fn unknown_client(client_id: &str, tenant: &str) -> Self {
        AadError::new(
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory \
                 '{tenant}'. This can happen if the application has not been installed by the \
                 administrator of the tenant or consented to by any user in the tenant. You may \
                 have sent your authentication request to the wrong tenant."
            ),
        )
    }

    /// The full `error_description`, with the trailer Entra appends.
    pub fn description(&self, trace_id: &str, correlation_id: &str, now: Timestamp) -> String {
        format!(
            "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {}",
            self.code,
            self.message,
            aad_timestamp(now)
        )
    }

    /// The JSON error response of the token endpoint.
    pub fn into_json(self, now: Timestamp, correlation_id: Option<&str>) -> Response {
        let trace_id = ids::new_guid();
        let correlation_id = correlation_id
            .map(str::to_string)
            .unwrap_or_else(ids::new_guid);
        let mut body = json!({
            "error": self.error,
            "error_description": self.description(&trace_id, &correlation_id, now),
            "error_codes": [self.code],
            "timestamp": aad_timestamp(now),
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        if let Some(s) = self.suberror {
            crate::json::set(&mut body, "suberror", json!(s));
        }
        let mut resp = (self.status, Json(body)).into_response();
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, no-cache"),
        );
        resp
    }

    /// The HTML page /authorize shows instead of redirecting (bad redirect URI, unknown app
    /// or tenant): redirecting would hand the error to a possibly hostile URI.
    pub fn into_page(self, now: Timestamp) -> Response {
        let trace_id = ids::new_guid();
        let correlation_id = ids::new_guid();
        let html = super::pages::error_page(
            self.code,
            &self.message,
            &trace_id,
            &correlation_id,
            &aad_timestamp(now),
        );
        (self.status, html).into_response()
    }
}
