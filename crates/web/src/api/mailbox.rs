//! The importer's mailbox as the admin sees it: the folder tree for the
//! folder picker (`GET …/{id}/folders`) and the Mail connection test
//! (`POST …/{id}/test`): token, mailbox, permissions, and each of the three
//! folders resolved to its full path, every check with a plain-words detail
//! and, when it failed, what to do.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use domain::importer::{GraphSettings, Protocol};
use domain::mailbox::{
    FolderNode, FolderRole, FolderTree, FoldersError, Mailbox, MailboxError, MailboxErrorKind,
    MatchedBy, resolve_folder,
};
use microsoft::graph::{TokenPermissions, token_permissions};
use runtime::mailbox::Patience;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use store::importers::ImporterRecord;
use utoipa::ToSchema;

use crate::AppState;
use crate::caller::Caller;
use crate::problem::Problem;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/importers/email/{id}/folders", get(folders))
        .route("/api/v2/importers/email/{id}/test", post(test))
}

/// One folder of the picker's tree.
#[derive(Debug, Serialize, ToSchema)]
pub struct FolderView {
    pub id: String,
    pub name: String,
    /// Full path from the top, e.g. `Inbox/Invoices`: what to put in a folder setting.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub well_known_name: Option<String>,
    pub hidden: bool,
    #[schema(no_recursion)]
    pub children: Vec<FolderView>,
}

fn nest(tree: &FolderTree, parent: Option<&str>) -> Vec<FolderView> {
    tree.children(parent)
        .map(|n: &FolderNode| FolderView {
            id: n.id.clone(),
            name: n.display_name.clone(),
            path: n.path_string(),
            well_known_name: n.well_known_name.clone(),
            hidden: n.hidden,
            children: nest(tree, Some(&n.id)),
        })
        .collect()
}

#[derive(Debug, Deserialize)]
pub struct FoldersQuery {
    #[serde(default)]
    pub include_hidden: bool,
}

/// The mailbox's folder tree, nested, for the folder picker.
#[utoipa::path(get, path = "/api/v2/importers/email/{id}/folders", tag = "importers",
    params(("id" = String, Path), ("include_hidden" = Option<bool>, Query, description = "also list hidden folders")),
    responses((status = 200, body = [FolderView]), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "the importer cannot reach its mailbox yet (not authorized, no secret)"),
        (status = 502, body = Problem, description = "the mailbox refused or failed")))]
pub async fn folders(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<FoldersQuery>,
) -> Result<axum::Json<Vec<FolderView>>, Problem> {
    let record = importer(&state, &caller, &id).await?;
    let mailbox = state
        .connector
        .mailbox(&record, Patience::Interactive)
        .await
        .map_err(|e| Problem::new(StatusCode::CONFLICT, e.to_string()))?;
    // Without a token a Graph request cannot start: say why up front.
    if record.settings.graph().is_some() {
        importer_token(&state, &record)
            .await
            .map_err(|t| Problem::new(StatusCode::CONFLICT, format!("{}; {}", t.detail, t.fix)))?;
    }
    let tree = mailbox
        .folder_tree(query.include_hidden)
        .await
        .map_err(mailbox_problem)?;
    Ok(axum::Json(nest(&tree, None)))
}

fn mailbox_problem(e: MailboxError) -> Problem {
    let status = match e.kind {
        MailboxErrorKind::Transient => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    Problem::new(status, e.to_string())
}

/// One check of the connection test.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// Stable identifier: `token`, `mailbox`, `permissions`, `inbox_folder`,
    /// `exported_folder`, `error_folder`, `distinct_folders`.
    pub id: String,
    /// What was checked, as the UI shows it.
    pub name: String,
    /// Whether the check passed (`false` when it failed and when it was
    /// not checked; `status` tells the two apart).
    pub ok: bool,
    pub status: CheckStatus,
    /// What was found, in plain words.
    pub detail: String,
    /// What to do when the check failed (or, not checked, which to fix first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// A check's outcome. A check that depends on one that failed is not run:
/// it is `not_checked`, which says nothing about whether it would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Passed,
    Failed,
    NotChecked,
}

impl Check {
    fn pass(id: &str, name: &str, detail: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            ok: true,
            status: CheckStatus::Passed,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(id: &str, name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            ok: false,
            status: CheckStatus::Failed,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// Not run because an earlier check failed (`why`).
    fn not_checked(id: &str, name: &str, why: &str) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            ok: false,
            status: CheckStatus::NotChecked,
            detail: format!("not checked: {why}"),
            fix: Some("fix the failed check above first".into()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionTest {
    /// True when every check passed.
    pub ok: bool,
    pub checks: Vec<Check>,
}

/// Mail connection test: token, mailbox, permissions, and the three folders.
#[utoipa::path(post, path = "/api/v2/importers/email/{id}/test", tag = "importers", params(("id" = String, Path)),
    responses((status = 200, body = ConnectionTest), (status = 404, body = Problem)))]
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<ConnectionTest>, Problem> {
    let record = importer(&state, &caller, &id).await?;
    let checks = match record.settings.graph() {
        Some(graph) => graph_checks(&state, &record, graph).await,
        None => imap_checks(&state, &record).await,
    };
    Ok(axum::Json(ConnectionTest {
        ok: checks.iter().all(|c| c.ok),
        checks,
    }))
}

const TOKEN: (&str, &str) = ("token", "Access token");
const CONNECTION: (&str, &str) = ("connection", "Server, TLS and login");
const MOVE: (&str, &str) = ("move", "Moving mail (MOVE or UIDPLUS)");
const MAILBOX: (&str, &str) = ("mailbox", "Mailbox reachable");
const PERMISSIONS: (&str, &str) = ("permissions", "Permissions");
const DISTINCT: (&str, &str) = ("distinct_folders", "Three different folders");

fn folder_check_id(role: FolderRole) -> (String, String) {
    (
        format!("{}_folder", role.as_str()),
        format!("{} folder", role.label()),
    )
}

/// Marks every check after a failed one as not checked, saying why.
fn not_checked(checks: &mut Vec<Check>, rest: &[(&str, &str)], why: &str) {
    let mut names: Vec<(String, String)> = rest
        .iter()
        .map(|(id, name)| ((*id).to_owned(), (*name).to_owned()))
        .collect();
    names.extend(FolderRole::ALL.map(folder_check_id));
    for (id, name) in names {
        checks.push(Check::not_checked(&id, &name, why));
    }
}

/// The IMAP connection test: connect with TLS as configured and log in,
/// the capability to move mail safely, then the folders as for Graph.
async fn imap_checks(state: &AppState, record: &ImporterRecord) -> Vec<Check> {
    let mut checks = Vec::new();
    let mailbox = match state.connector.mailbox(record, Patience::Interactive).await {
        Ok(m) => m,
        Err(e) => {
            checks.push(Check::fail(
                CONNECTION.0,
                CONNECTION.1,
                e.to_string(),
                "complete the importer's IMAP settings and save",
            ));
            not_checked(&mut checks, &[MOVE], "there is no connection");
            return checks;
        }
    };
    let Some(imap) = mailbox.as_imap() else {
        return checks;
    };
    let config = imap.config();
    let how = match config.security {
        imap::Security::Tls => "TLS",
        imap::Security::StartTls => "STARTTLS",
        imap::Security::None => "no encryption (the password is sent in clear)",
    };
    let capabilities = match imap.capabilities().await {
        Ok(c) => {
            checks.push(Check::pass(
                CONNECTION.0,
                CONNECTION.1,
                format!(
                    "logged in to {}:{} as {} with {how}",
                    config.host, config.port, config.username
                ),
            ));
            c
        }
        Err(e) => {
            checks.push(Check::fail(CONNECTION.0, CONNECTION.1, e.message, e.fix));
            not_checked(&mut checks, &[MOVE], "there is no connection");
            return checks;
        }
    };
    checks.push(if capabilities.r#move {
        Check::pass(MOVE.0, MOVE.1, "the server has MOVE: mails are moved with UID MOVE")
    } else if capabilities.uidplus {
        Check::pass(
            MOVE.0,
            MOVE.1,
            "the server has UIDPLUS: mails are copied, then exactly that UID is expunged",
        )
    } else {
        Check::fail(
            MOVE.0,
            MOVE.1,
            "the server has neither MOVE nor UIDPLUS, so a mail cannot be moved without risking mails others marked deleted",
            "ask the server's administrator to enable MOVE (RFC 6851) or UIDPLUS (RFC 4315)",
        )
    });
    match mailbox.folder_tree(false).await {
        Ok(tree) => checks.extend(folder_checks(&tree, &record.settings.folders)),
        Err(e) => {
            for (id, name) in FolderRole::ALL.map(folder_check_id) {
                checks.push(Check::fail(&id, &name, e.message.clone(), e.fix.clone()));
            }
        }
    }
    checks
}

async fn graph_checks(
    state: &AppState,
    record: &ImporterRecord,
    graph: &GraphSettings,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let token = match importer_token(state, record).await {
        Ok(t) => t,
        Err(t) => {
            checks.push(Check::fail(TOKEN.0, TOKEN.1, t.detail, t.fix));
            not_checked(
                &mut checks,
                &[MAILBOX, PERMISSIONS],
                "there is no access token",
            );
            return checks;
        }
    };
    checks.push(Check::pass(TOKEN.0, TOKEN.1, token.description.clone()));
    let permissions = token_permissions(&token.secret);
    let mailbox = match state.connector.mailbox(record, Patience::Interactive).await {
        Ok(m) => m,
        // Without it the test must not pass on the token alone.
        Err(e) => {
            checks.push(Check::fail(
                MAILBOX.0,
                MAILBOX.1,
                e.to_string(),
                "complete the importer's settings and save",
            ));
            not_checked(
                &mut checks,
                &[PERMISSIONS],
                "the mailbox could not be opened",
            );
            return checks;
        }
    };
    let label = mailbox
        .as_graph()
        .map_or_else(String::new, |g| g.config().mailbox_label());

    let tree = match mailbox.folder_tree(false).await {
        Ok(tree) => {
            checks.push(Check::pass(
                MAILBOX.0,
                MAILBOX.1,
                format!("{label} answered and has {} folders", tree.len()),
            ));
            checks.push(permissions_check(record, graph, permissions.as_ref()));
            Some(tree)
        }
        Err(e) if e.kind == MailboxErrorKind::Permission => {
            checks.push(Check::pass(
                MAILBOX.0,
                MAILBOX.1,
                format!("{label} exists and Microsoft answered"),
            ));
            checks.push(Check::fail(PERMISSIONS.0, PERMISSIONS.1, e.message, e.fix));
            None
        }
        Err(e) => {
            checks.push(Check::fail(MAILBOX.0, MAILBOX.1, e.message, e.fix));
            checks.push(Check::not_checked(
                PERMISSIONS.0,
                PERMISSIONS.1,
                "the mailbox could not be read",
            ));
            None
        }
    };
    let Some(tree) = tree else {
        not_checked(&mut checks, &[], "the mailbox's folders could not be read");
        return checks;
    };
    checks.extend(folder_checks(&tree, &record.settings.folders));
    checks
}

/// Each folder resolved to its full path, then whether they are three.
fn folder_checks(tree: &FolderTree, folders: &domain::importer::Folders) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut all_resolved = true;
    for role in FolderRole::ALL {
        let spec = match role {
            FolderRole::Inbox => &folders.inbox,
            FolderRole::Exported => &folders.exported,
            FolderRole::Error => &folders.error,
        };
        let (id, name) = folder_check_id(role);
        match resolve_folder(tree, spec) {
            Ok(found) => {
                let how = match found.matched_by {
                    MatchedBy::Path => String::new(),
                    MatchedBy::DisplayName => " (the only folder of that name)".to_owned(),
                    MatchedBy::WellKnownName => " (found by its well-known name)".to_owned(),
                };
                checks.push(Check::pass(
                    &id,
                    &name,
                    format!("`{spec}` is `{}`{how}", found.path),
                ));
            }
            Err(e) => {
                all_resolved = false;
                checks.push(Check::fail(&id, &name, e.detail(), e.fix()));
            }
        }
    }
    if all_resolved {
        match domain::mailbox::resolve_folders(tree, folders) {
            Ok(_) => checks.push(Check::pass(
                DISTINCT.0,
                DISTINCT.1,
                "Inbox, Exported and Error are three different folders",
            )),
            Err(e @ FoldersError::NotDistinct { .. }) => checks.push(Check::fail(
                DISTINCT.0,
                DISTINCT.1,
                e.to_string(),
                "name three different folders for Inbox, Exported and Error",
            )),
            Err(e) => checks.push(Check::fail(
                DISTINCT.0,
                DISTINCT.1,
                e.to_string(),
                "correct the folder settings",
            )),
        }
    }
    checks
}

/// Which permission the importer needs, judged from the token's claims when
/// the token is a readable JWT; reading already worked when this is called.
fn permissions_check(
    record: &ImporterRecord,
    graph: &GraphSettings,
    permissions: Option<&TokenPermissions>,
) -> Check {
    let shared = graph.mailbox.is_some();
    let (needed, kind) = match (record.settings.protocol, shared) {
        (Protocol::GraphClientCredentials, _) => ("Mail.ReadWrite", "application permission"),
        (_, true) => ("Mail.ReadWrite.Shared", "delegated permission"),
        (_, false) => ("Mail.ReadWrite", "delegated permission"),
    };
    let Some(p) = permissions else {
        return Check::pass(
            PERMISSIONS.0,
            PERMISSIONS.1,
            "the folders can be read; whether mail may be moved shows on the first import (the token's permissions are not readable)",
        );
    };
    // Own mailbox: Mail.ReadWrite.Shared covers it too.
    let has = p.has(needed) || (!shared && p.has("Mail.ReadWrite.Shared"));
    if has {
        let granted = if p.roles.is_empty() {
            &p.scopes
        } else {
            &p.roles
        };
        Check::pass(
            PERMISSIONS.0,
            PERMISSIONS.1,
            format!(
                "the folders can be read and the {kind} {needed} lets mailferry move mail (granted: {})",
                granted.join(", ")
            ),
        )
    } else {
        let granted: Vec<&String> = p.scopes.iter().chain(&p.roles).collect();
        Check::fail(
            PERMISSIONS.0,
            PERMISSIONS.1,
            format!(
                "the folders can be read, but the token lacks the {kind} {needed}, so mail cannot be moved (granted: {})",
                granted
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!(
                "add the {kind} {needed} (Microsoft Graph) to the Azure app{}",
                if record.settings.protocol == Protocol::GraphDelegated {
                    " and press Authenticate to authorize again"
                } else {
                    " and grant admin consent"
                }
            ),
        )
    }
}

async fn importer(state: &AppState, caller: &Caller, id: &str) -> Result<ImporterRecord, Problem> {
    state
        .store
        .importer(&caller.client_id, id)
        .await?
        .ok_or_else(|| Problem::not_found("importer"))
}

/// An access token and how to describe it.
struct ImporterToken {
    secret: SecretString,
    description: String,
}

/// Why there is no token, with the fix.
struct NoToken {
    detail: String,
    fix: String,
}

/// The access token for an importer, from the shared token provider: a
/// delegated grant is refreshed on demand, an app-only token is cached.
async fn importer_token(
    state: &AppState,
    record: &ImporterRecord,
) -> Result<ImporterToken, NoToken> {
    let secret = state
        .tokens
        .for_importer(&state.store, state.clock.as_ref(), record)
        .await
        .map_err(|e| no_token(state, record, e))?;
    let app = record.settings.entra_app();
    let description = match record.settings.protocol {
        Protocol::GraphDelegated => {
            let grant = state.store.grant(&record.id).await.ok().flatten();
            let account = grant.as_ref().and_then(|g| g.account.clone());
            let expires = grant.and_then(|g| g.access_token_expires_at);
            let description = format!(
                "authorized as {}; the access token is valid until {}",
                account.as_deref().unwrap_or("an unknown account"),
                expires.map_or_else(|| "an unknown time".to_owned(), |t| t.to_string())
            );
            return Ok(ImporterToken {
                secret,
                description,
            });
        }
        _ => format!(
            "the application {} obtained an app-only token from tenant {}",
            app.map_or("?", |a| a.client_id.as_str()),
            app.map_or("?", |a| a.tenant_id.as_str())
        ),
    };
    Ok(ImporterToken {
        secret,
        description,
    })
}

fn no_token(state: &AppState, record: &ImporterRecord, error: grants::TokenError) -> NoToken {
    NoToken {
        fix: error.fix(record, &state.config.redirect_uri()),
        detail: error.to_string(),
    }
}
