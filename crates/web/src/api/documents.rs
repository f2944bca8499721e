//! `/api/v2/documents`: the documents imported for the caller's client,
//! newest first; each is its `metadata.json` plus where the sink put it;
//! and each document's files for download.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use domain::document::DocumentMetadata;
use domain::validation::ValidationErrors;
use serde::Serialize;
use store::documents::{DocumentQuery, DocumentRecord};
use utoipa::ToSchema;

use super::paging::Paging;
use crate::AppState;
use crate::caller::Caller;
use crate::problem::Problem;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/documents", get(list))
        .route("/api/v2/documents/{id}", get(get_one))
        .route("/api/v2/documents/{id}/files/{*file}", get(file))
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

/// The client's documents, newest first; the filters given must all match.
#[utoipa::path(get, path = "/api/v2/documents", tag = "documents",
    params(
        ("importer_id" = Option<String>, Query, description = "only this importer's documents"),
        ("subject" = Option<String>, Query, description = "the subject contains this, in any case"),
        ("sender" = Option<String>, Query, description = "the sender (name or address) contains this, in any case"),
        ("since" = Option<String>, Query, description = "received at or after: an RFC 3339 instant (`2026-03-01T00:00:00Z`) or a date (`2026-03-01`, from 00:00 UTC)"),
        ("until" = Option<String>, Query, description = "received before: an RFC 3339 instant, or a date (up to the end of that day, UTC)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "at most this many (1–1000, default 100)"),
        ("offset" = Option<u32>, Query, description = "skip this many (paging)"),
    ),
    responses((status = 200, body = [DocumentView]), (status = 422, body = Problem, content_type = "application/problem+json", description = "a parameter is unknown or not valid; `errors` names it"), (status = 401, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(mut query): Query<HashMap<String, String>>,
) -> Result<axum::Json<Vec<DocumentView>>, Problem> {
    let mut errors = ValidationErrors::default();
    let Paging { limit, offset } = Paging::take(&mut query, &mut errors);
    let mut search = DocumentQuery {
        limit,
        offset,
        ..DocumentQuery::default()
    };
    // Empty text filters are no filter: a search form sends every field.
    let text = |value: String| Some(value.trim().to_owned()).filter(|v| !v.is_empty());
    for (key, value) in query {
        match key.as_str() {
            "importer_id" => search.importer_id = text(value),
            "subject" => search.subject_contains = text(value),
            "sender" => search.sender_contains = text(value),
            "since" => search.since = instant("since", &value, false, &mut errors),
            "until" => search.until = instant("until", &value, true, &mut errors),
            other => errors.add(
                other,
                "unknown filter: use importer_id, subject, sender, since, until, limit or offset"
                    .to_owned(),
            ),
        }
    }
    if let (Some(since), Some(until)) = (search.since, search.until)
        && until <= since
    {
        errors.add(
            "until",
            format!("must be after since ({since}): the range is empty"),
        );
    }
    errors.into_result(())?;
    let documents = state
        .store
        .search_documents(&caller.client_id, &search)
        .await?;
    Ok(axum::Json(
        documents.into_iter().map(DocumentView::from).collect(),
    ))
}

/// `since`/`until`: an RFC 3339 instant, or a date in UTC (`until` a date
/// means the end of that day); empty is no bound.
fn instant(
    field: &str,
    raw: &str,
    end_of_day: bool,
    errors: &mut ValidationErrors,
) -> Option<jiff::Timestamp> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    if let Ok(t) = raw.parse::<jiff::Timestamp>() {
        return Some(t);
    }
    let day = raw
        .parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| {
            if end_of_day {
                d.tomorrow().ok()
            } else {
                Some(d)
            }
        })
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok());
    if day.is_none() {
        errors.add(
            field,
            format!("`{raw}` is neither a date (2026-03-01) nor an RFC 3339 instant (2026-03-01T00:00:00Z)"),
        );
    }
    day.map(|z| z.timestamp())
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

/// Types a browser may show in place: they cannot run script.
const SHOWN_INLINE: [&str; 5] = [
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
];

/// One file of a document, as the sink keeps it: `message.eml` or an
/// attachment's `file` from the metadata. Saved as a download unless
/// `inline=true` asks to show a PDF or an image.
#[utoipa::path(get, path = "/api/v2/documents/{id}/files/{file}", tag = "documents",
    params(("id" = String, Path),
        ("file" = String, Path, description = "`message.eml`, or an attachment's `file` from the metadata, e.g. `attachments/invoice.pdf`"),
        ("inline" = Option<bool>, Query, description = "show a PDF or an image in the browser")),
    responses((status = 200, description = "the file's bytes, with its content type", content_type = "application/octet-stream"),
        (status = 404, body = Problem, description = "no such document or file"),
        (status = 409, body = Problem, description = "the document was handed to a webhook: mailferry keeps no copy"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "an unknown parameter, or `inline` neither true nor false"),
        (status = 401, body = Problem)))]
pub async fn file(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, file)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    let mut errors = ValidationErrors::default();
    let mut wants_inline = false;
    for (key, value) in query {
        match (key.as_str(), value.as_str()) {
            ("inline", "true") => wants_inline = true,
            ("inline", "false") => {}
            ("inline", other) => {
                errors.add("inline", format!("`{other}` is neither true nor false"))
            }
            (other, _) => errors.add(other, "unknown parameter: use inline".to_owned()),
        }
    }
    errors.into_result(())?;
    let document = state
        .store
        .document(&caller.client_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("document"))?;
    let attachments = &document.metadata.attachments;
    let content_type = if file == sinks::document::MESSAGE_FILE {
        "message/rfc822".to_owned()
    } else {
        attachments
            .iter()
            .find(|a| a.file == file)
            .map(|a| a.content_type.clone())
            .ok_or_else(|| {
                let known: Vec<&str> = std::iter::once(sinks::document::MESSAGE_FILE)
                    .chain(attachments.iter().map(|a| a.file.as_str()))
                    .collect();
                Problem::new(
                    StatusCode::NOT_FOUND,
                    format!(
                        "document {id} has no file `{file}`: its files are {}",
                        known.join(", ")
                    ),
                )
            })?
    };
    let sink = state
        .connector
        .keeping_sink(&document.client_id, &document.importer_id, &document.sink)
        .await
        .map_err(|why| Problem::new(StatusCode::CONFLICT, format!("document {id}: {why}")))?
        .ok_or_else(|| {
            Problem::new(
                StatusCode::CONFLICT,
                format!(
                    "document {id} was handed to the webhook {}; mailferry keeps no copy: fetch it from there",
                    document.location
                ),
            )
        })?;
    let bytes = sink
        .read(&document.location, &file)
        .await
        .map_err(|e| Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.message))?
        .ok_or_else(|| {
            Problem::new(
                StatusCode::NOT_FOUND,
                format!(
                    "the file `{file}` of document {id} is no longer in the spool ({}): it was purged or deleted by hand",
                    document.location
                ),
            )
        })?;
    let inline = wants_inline && SHOWN_INLINE.contains(&content_type.as_str());
    // A file opened in the browser runs nothing and loads nothing. Shown
    // inline, the UI's own pages may frame it (the Documents page's
    // preview), no one else's. Chromium refuses to show a PDF in a
    // sandboxed document, so a PDF shown inline is not sandboxed: its
    // viewer runs no page script, and `default-src 'none'` still holds.
    let (policy, framing) = match (inline, content_type.as_str()) {
        (true, "application/pdf") => (
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'",
            "SAMEORIGIN",
        ),
        (true, _) => (
            "sandbox; default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'",
            "SAMEORIGIN",
        ),
        (false, _) => (
            "sandbox; default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            "DENY",
        ),
    };
    let name = file.rsplit('/').next().unwrap_or(&file);
    let disposition = format!(
        "{}; filename=\"{}\"; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        name.chars()
            .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            })
            .collect::<String>(),
        percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
    );
    let content_type = HeaderValue::from_str(&content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let disposition =
        HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment"));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(policy),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static(framing)),
            (header::CACHE_CONTROL, HeaderValue::from_static("private")),
        ],
        bytes,
    )
        .into_response())
}
