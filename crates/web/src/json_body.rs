//! A JSON body extractor whose rejections name the offending field
//! (`folders.inbox: invalid type …`) as problem+json, instead of axum's
//! plain-text messages.

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use bytes::Bytes;
use domain::validation::ValidationErrors;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim();
                v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
            });
        if !is_json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {e}"),
            )
        })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let parsed = serde_path_to_error::deserialize(&mut de);
        match parsed {
            Ok(value) => match de.end() {
                Ok(()) => Ok(Self(value)),
                Err(e) => Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not valid JSON: {e}"),
                )),
            },
            Err(err) => {
                let path = err.path().to_string();
                let inner = err.into_inner();
                if inner.is_syntax() || inner.is_eof() {
                    return Err(Problem::new(
                        StatusCode::BAD_REQUEST,
                        format!("the body is not valid JSON: {inner}"),
                    ));
                }
                let field = if path == "." { "body".to_owned() } else { path };
                Err(Problem::invalid(ValidationErrors::single(
                    field,
                    inner.to_string(),
                )))
            }
        }
    }
}
