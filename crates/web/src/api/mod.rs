//! The REST API under `/api/v2`, and its OpenAPI document generated from the
//! handlers themselves.

use axum::Router;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::AppState;

pub mod documents;
pub mod executions;
pub mod import_runs;
pub mod importers;
pub mod jobs;
pub mod mailbox;
pub mod oauth;
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
        import_runs::dry_run,
    ),
    components(schemas(crate::problem::Problem, domain::validation::FieldError)),
    modifiers(&BearerAuth),
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
}

async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
