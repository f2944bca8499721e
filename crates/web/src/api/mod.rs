//! The REST API under `/api/v2`, and its OpenAPI document generated from the
//! handlers themselves.

use axum::Router;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

use crate::AppState;

pub mod alerts;
pub mod audit;
pub mod documents;
pub mod executions;
pub mod import_runs;
pub mod importers;
pub mod jobs;
pub mod mailbox;
pub mod mails;
pub mod oauth;
pub mod overview;
mod paging;
pub mod scripts;

#[derive(OpenApi)]
#[openapi(
    info(title = "mailferry", description = "Imports e-mail from Microsoft 365 and IMAP mailboxes into documents."),
    paths(
        crate::observability::healthz,
        crate::observability::metrics,
        importers::list,
        importers::create,
        importers::get_one,
        importers::replace,
        importers::delete,
        oauth::start,
        oauth::end,
        oauth::confirm,
        oauth::status,
        jobs::list,
        jobs::create,
        jobs::get_one,
        jobs::replace,
        jobs::delete,
        jobs::next_runs,
        scripts::list,
        scripts::run,
        executions::list,
        executions::get_one,
        mailbox::folders,
        mailbox::test,
        documents::list,
        documents::get_one,
        documents::file,
        import_runs::dry_run,
        import_runs::list_runs,
        mails::list_mails,
        mails::reprocess_mail,
        audit::list,
        alerts::list,
        alerts::get_settings,
        alerts::put_settings,
        alerts::test,
        overview::overview,
    ),
    components(schemas(crate::problem::Problem, domain::validation::FieldError)),
    modifiers(&BearerAuth, &SharedProblems, &UnsignedFormats, &UniqueOperationIds),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The problems every handler can answer through the extractors they all
/// share, declared here once so that no handler's documentation can forget
/// them: any `Problem` is `application/problem+json` (see `problem.rs`), not
/// `application/json`; an operation behind the bearer scheme answers 401
/// without a valid token (`Caller`); one with a JSON body answers 415 for
/// another content type, 400 for malformed JSON and 422 for bad fields
/// (`JsonBody`).
struct SharedProblems;

impl SharedProblems {
    const PROBLEM_REF: &str = "#/components/schemas/Problem";
    const PROBLEM_JSON: &str = "application/problem+json";

    fn problem(description: &str) -> Response {
        ResponseBuilder::new()
            .description(description)
            .content(
                Self::PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::new(Self::PROBLEM_REF)))
                    .build(),
            )
            .build()
    }

    fn declare(operation: &mut Operation, status: &str, description: &str) {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(Self::problem(description)));
    }

    /// `changes`: the method changes something (not GET/HEAD/OPTIONS).
    fn fix(operation: &mut Operation, global_security: bool, changes: bool) {
        for response in operation.responses.responses.values_mut() {
            let RefOr::T(response) = response else {
                continue;
            };
            let is_problem = response.content.get("application/json").is_some_and(
                |c| matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location == Self::PROBLEM_REF),
            );
            if is_problem && let Some(content) = response.content.shift_remove("application/json") {
                response
                    .content
                    .insert(Self::PROBLEM_JSON.to_owned(), content);
            }
        }
        let secured = match &operation.security {
            None => global_security,
            Some(requirements) => requirements
                .iter()
                .any(|r| *r != SecurityRequirement::default()),
        };
        if secured {
            Self::declare(
                operation,
                "401",
                "missing or unknown API token (or session)",
            );
            if changes {
                Self::declare(
                    operation,
                    "403",
                    "a UI session's change without its `X-CSRF-Token` header",
                );
            }
        }
        if operation.request_body.is_some() {
            Self::declare(operation, "400", "the body is not valid JSON");
            Self::declare(
                operation,
                "415",
                "the body is not sent as `application/json`",
            );
            Self::declare(
                operation,
                "422",
                "fields of the body are invalid; `errors` names each",
            );
        }
    }
}

impl utoipa::Modify for SharedProblems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let global_security = openapi
            .security
            .as_ref()
            .is_some_and(|s| s.iter().any(|r| *r != SecurityRequirement::default()));
        for item in openapi.paths.paths.values_mut() {
            for (operation, changes) in [
                (&mut item.get, false),
                (&mut item.put, true),
                (&mut item.post, true),
                (&mut item.delete, true),
                (&mut item.options, false),
                (&mut item.head, false),
                (&mut item.patch, true),
                (&mut item.trace, false),
            ] {
                if let Some(operation) = operation {
                    Self::fix(operation, global_security, changes);
                }
            }
        }
    }
}

/// Unsigned integers are documented as `uint8`…`uint64` (the workspace
/// enables utoipa's `non_strict_integers`: by default a `u32` would claim
/// `int32`, whose range stops at 2^31-1 although the API accepts up to
/// 2^32-1). utoipa spells those formats `u-int32`; this gives them their
/// registered names.
struct UnsignedFormats;

impl UnsignedFormats {
    fn rename(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(format)) = map.get_mut("format")
                    && let Some(bits) = format.strip_prefix("u-int")
                {
                    *format = format!("uint{bits}");
                }
                map.values_mut().for_each(Self::rename);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(Self::rename),
            _ => {}
        }
    }
}

impl utoipa::Modify for UnsignedFormats {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Ok(mut value) = serde_json::to_value(&*openapi) else {
            return;
        };
        Self::rename(&mut value);
        if let Ok(renamed) = serde_json::from_value(value) {
            *openapi = renamed;
        }
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/openapi.json", get(openapi))
        .merge(importers::routes())
        .merge(oauth::routes())
        .merge(jobs::routes())
        .merge(scripts::routes())
        .merge(executions::routes())
        .merge(mailbox::routes())
        .merge(documents::routes())
        .merge(import_runs::routes())
        .merge(mails::routes())
        .merge(audit::routes())
        .merge(alerts::routes())
        .merge(overview::routes())
}

async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

/// utoipa names an operation after its handler, and several modules have a
/// `list` or `get_one`; client generators need unique ids, so an id is
/// prefixed with its resource, the first segment after `/api/v2/`
/// (`importers_list`, `jobs_list`, `executions_list`).
struct UniqueOperationIds;

impl utoipa::Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let Some(resource) = path
                .strip_prefix("/api/v2/")
                .and_then(|rest| rest.split('/').next())
                .map(|r| r.replace('-', "_"))
            else {
                continue;
            };
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                if let Some(id) = operation.operation_id.as_mut()
                    && !id.starts_with(&format!("{resource}_"))
                {
                    *id = format!("{resource}_{id}");
                }
            }
        }
    }
}
