//! `/api/v2/documents`: the documents imported for the caller's client,
//! newest first; each is its `metadata.json` plus where the sink put it.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use domain::document::DocumentMetadata;
use domain::validation::ValidationErrors;
use serde::Serialize;
use store::documents::DocumentRecord;
use utoipa::ToSchema;

use super::paging::Paging;
use crate::AppState;
use crate::caller::Caller;
use crate::problem::Problem;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/documents", get(list))
        .route("/api/v2/documents/{id}", get(get_one))
}

/// A document: the fields of its `metadata.json`, plus where it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentView {
    #[serde(flatten)]
    pub metadata: DocumentMetadata,
    /// `filesystem` or `webhook`.
    #[schema(example = "filesystem")]
    pub sink: String,
    /// The document folder, or the webhook URL it was delivered to.
    pub location: String,
}

impl From<DocumentRecord> for DocumentView {
    fn from(d: DocumentRecord) -> Self {
        Self {
            metadata: d.metadata,
            sink: d.sink,
            location: d.location,
        }
    }
}

/// The client's documents, newest first.
#[utoipa::path(get, path = "/api/v2/documents", tag = "documents",
    params(
        ("importer_id" = Option<String>, Query, description = "only this importer's documents"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "at most this many (1–1000, default 100)"),
        ("offset" = Option<u32>, Query, description = "skip this many (paging)"),
    ),
    responses((status = 200, body = [DocumentView]), (status = 422, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(mut query): Query<HashMap<String, String>>,
) -> Result<axum::Json<Vec<DocumentView>>, Problem> {
    let mut errors = ValidationErrors::default();
    let Paging { limit, offset } = Paging::take(&mut query, &mut errors);
    let mut importer = None;
    for (key, value) in query {
        match key.as_str() {
            "importer_id" => importer = Some(value),
            other => errors.add(
                other,
                "unknown filter: use importer_id, limit or offset".to_owned(),
            ),
        }
    }
    errors.into_result(())?;
    let documents = state
        .store
        .list_documents(&caller.client_id, importer.as_deref(), limit, offset)
        .await?;
    Ok(axum::Json(
        documents.into_iter().map(DocumentView::from).collect(),
    ))
}

/// One document: its `metadata.json` and location.
#[utoipa::path(get, path = "/api/v2/documents/{id}", tag = "documents", params(("id" = String, Path)),
    responses((status = 200, body = DocumentView), (status = 404, body = Problem), (status = 401, body = Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<DocumentView>, Problem> {
    let document = state
        .store
        .document(&caller.client_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("document"))?;
    Ok(axum::Json(document.into()))
}
