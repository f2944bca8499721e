//! Signing an importer in at Microsoft: `authenticate` (start: state + PKCE,
//! 302 to the authorize URL), `authenticate/end` (the redirect URI: code
//! exchange, the signed-in account and its mailbox access, a plain page
//! saying what happened), `authenticate/confirm` (the admin's second click
//! when another account signed in for an importer that reads its user's own
//! mailbox), and `status`.
//!
//! The callback has no caller: Microsoft's redirect carries no token. The
//! `state` alone says which client, importer and admin started the sign-in,
//! which is also what lets one central redirect URI serve every client. The
//! confirmation works the same way: its single-use token is the credential.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::importer::{DelegatedAccess, EntraApp, Protocol};
use jiff::Timestamp;
use microsoft::entra::account::{check_mailbox_access, signed_in_account};
use microsoft::entra::{
    Diagnosis, FixContext, HttpClient, IdentityClient, IdentityError, MicrosoftError, TokenSet,
    delegated_permissions,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use store::grants::{Confirmation, Grant, GrantState, NewPendingGrant};
use store::importers::ImporterRecord;
use store::oauth_states::{NewAuthorization, StateLookup};
use utoipa::ToSchema;

use crate::AppState;
use crate::caller::Caller;
use crate::problem::Problem;

/// Where the "Confirm the account change" page posts the admin's decision.
const CONFIRM_PATH: &str = "/api/v2/importers/email/authenticate/confirm";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/importers/email/authenticate/end", get(end))
        .route(CONFIRM_PATH, post(confirm))
        .route("/api/v2/importers/email/{id}/authenticate", get(start))
        .route("/api/v2/importers/email/{id}/status", get(status))
}

/// What signing in for an importer is about: the app it signs in with and
/// what the grant is for.
#[derive(Debug, Clone, Copy)]
struct SignIn<'a> {
    app: &'a EntraApp,
    access: DelegatedAccess,
}

impl SignIn<'_> {
    fn permissions(&self) -> Vec<String> {
        delegated_permissions(self.access)
    }

    fn fix_context<'a>(
        &'a self,
        redirect_uri: &'a str,
        permissions: &'a [String],
    ) -> FixContext<'a> {
        FixContext {
            redirect_uri,
            client_id: &self.app.client_id,
            tenant: self.app.tenant_id.as_str(),
            permissions,
            certificate: self.app.certificate.is_some(),
        }
    }
}

/// The importer's sign-in; `None` when nobody signs in for it (app-only,
/// IMAP with a password), e.g. once its settings changed to such.
fn sign_in_of(record: &ImporterRecord) -> Option<SignIn<'_>> {
    Some(SignIn {
        app: record.settings.entra_app()?,
        access: record.settings.delegated_access()?,
    })
}

fn delegated(record: &ImporterRecord) -> Result<SignIn<'_>, Problem> {
    if let Some(sign_in) = sign_in_of(record) {
        return Ok(sign_in);
    }
    Err(match record.settings.protocol {
        Protocol::GraphClientCredentials => Problem::new(
            StatusCode::CONFLICT,
            "this importer uses client credentials (the app's own identity): nobody signs in. A tenant administrator grants the application permission Mail.ReadWrite with admin consent in the Azure portal instead",
        ),
        _ => Problem::new(
            StatusCode::CONFLICT,
            "this IMAP importer logs in with its password: nobody signs in at Microsoft. For Microsoft 365's IMAP with OAuth, set auth `xoauth2` with the Azure app's client_id, tenant_id and client_secret",
        ),
    })
}

#[derive(Debug, Deserialize)]
pub struct StartQuery {
    /// Pre-fills the account at Microsoft's sign-in page.
    pub login_hint: Option<String>,
}

/// Start signing in: 302 to Microsoft's authorize URL with a fresh state
/// (single use, 10 minutes, bound to this importer and admin) and PKCE S256.
#[utoipa::path(get, path = "/api/v2/importers/email/{id}/authenticate", tag = "authorization",
    params(("id" = String, Path), ("login_hint" = Option<String>, Query, description = "account to pre-fill at Microsoft")),
    responses((status = 302, description = "to Microsoft's authorize URL"), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<StartQuery>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let record = state
        .store
        .importer(&caller.client_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("importer"))?;
    let sign_in = delegated(&record)?;
    if record.stored_secret.is_none() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "the importer has no client secret: enter the client secret Value from the Azure app registration (Certificates & secrets), save, then authenticate",
        ));
    }
    let redirect_uri = state.config.redirect_uri();
    let identity = IdentityClient::new(state.tokens.http().clone(), sign_in.app, None);
    // An unknown tenant would only surface on Microsoft's own error page.
    if let Err(e) = identity.check_tenant().await
        && !e.is_transient()
    {
        let permissions = sign_in.permissions();
        let fix = e
            .diagnosis()
            .fix(&sign_in.fix_context(&redirect_uri, &permissions));
        let detail = format!("{}. Fix: {fix}", e.reason());
        return Ok(if wants_html(&headers) {
            page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Microsoft does not know this tenant",
                &[("Microsoft said", e.reason()), ("What to do", fix)],
            )
        } else {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail).into_response()
        });
    }
    // IMAP logs in as its username: the account to sign in with, unless
    // the admin names another (one with Full Access to that mailbox).
    let login_hint = query
        .login_hint
        .as_deref()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| record.settings.imap().map(|i| i.username.as_str()));
    let request = identity
        .authorize_url(&redirect_uri, sign_in.access, login_hint)
        .map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    state
        .store
        .create_oauth_state(
            NewAuthorization {
                state: &request.state,
                client_id: &caller.client_id,
                importer_id: &record.id,
                started_by: &caller.principal,
                pkce_verifier: &request.pkce_verifier,
                redirect_uri: &redirect_uri,
            },
            state.clock.now(),
        )
        .await?;
    tracing::info!(importer = %record.id, by = %caller.principal, "sign-in at Microsoft started");
    // 302, as the contract says (axum's `Redirect::to` is a 303).
    Ok((StatusCode::FOUND, [(header::LOCATION, request.url)]).into_response())
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// What came back from Microsoft.
#[derive(Debug, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub error_uri: Option<String>,
}

/// The redirect URI: finishes the sign-in and shows what happened.
#[utoipa::path(get, path = "/api/v2/importers/email/authenticate/end", tag = "authorization",
    params(("code" = Option<String>, Query), ("state" = Option<String>, Query), ("error" = Option<String>, Query), ("error_description" = Option<String>, Query)),
    responses((status = 200, description = "authorized (HTML page)", body = String, content_type = "text/html"),
        (status = 400, description = "refused, tampered, replayed or expired (HTML page naming the fix)", body = String, content_type = "text/html")),
    security(()))]
pub async fn end(
    State(state): State<AppState>,
    Query(raw): Query<HashMap<String, String>>,
) -> Response {
    let cb = Callback {
        code: raw.get("code").cloned(),
        state: raw.get("state").cloned(),
        error: raw.get("error").cloned(),
        error_description: raw.get("error_description").cloned(),
        error_uri: raw.get("error_uri").cloned(),
    };
    match finish(&state, cb).await {
        Ok(page) | Err(page) => page,
    }
}

async fn finish(state: &AppState, cb: Callback) -> Result<Response, Response> {
    let now = state.clock.now();
    let Some(raw_state) = cb.state.as_deref().filter(|s| !s.is_empty()) else {
        return Err(page(
            StatusCode::BAD_REQUEST,
            "Sign-in not recognised",
            &[("Problem", "the request carries no `state`, so it did not come from a sign-in mailferry started. Nothing was stored.".into()),
              ("What to do", "open the importer and press Authenticate".into())],
        ));
    };
    let pending = match state.store.consume_oauth_state(raw_state, now).await {
        Ok(StateLookup::Valid(p)) => p,
        Ok(StateLookup::Unknown) => return Err(page(
            StatusCode::BAD_REQUEST,
            "Sign-in not recognised",
            &[("Problem", "the `state` is unknown: it was altered, or it belongs to another mailferry installation or a deleted importer. Nothing was stored.".into()),
              ("What to do", "open the importer and press Authenticate".into())],
        )),
        Ok(StateLookup::AlreadyUsed { used_at }) => return Err(page(
            StatusCode::BAD_REQUEST,
            "This sign-in was already completed",
            &[("Problem", format!("this sign-in link was already used at {used_at}; each can be used once (a reload or the back button repeats it). Nothing was changed.")),
              ("What to do", "check the importer's status; to sign in again, press Authenticate".into())],
        )),
        Ok(StateLookup::Expired { expired_at }) => return Err(page(
            StatusCode::BAD_REQUEST,
            "The sign-in took too long",
            &[("Problem", format!("the sign-in expired at {expired_at} (10 minutes after Authenticate was pressed). Nothing was stored.")),
              ("What to do", "open the importer and press Authenticate again".into())],
        )),
        Err(e) => return Err(internal(&e)),
    };
    let record = importer_of(state, &pending.client_id, &pending.importer_id).await?;
    let sign_in = sign_in_of(&record).ok_or_else(no_longer_delegated)?;
    let permissions = sign_in.permissions();
    let fixes = sign_in.fix_context(&pending.redirect_uri, &permissions);
    if let Some(error) = cb.error {
        let ms = MicrosoftError {
            error,
            error_description: cb.error_description,
            error_uri: cb.error_uri,
            ..MicrosoftError::default()
        };
        tracing::warn!(importer = %record.id, error = %ms, "Microsoft refused the sign-in");
        return Err(microsoft_error_page(
            &record.settings.name,
            &IdentityError::Microsoft(Box::new(ms)),
            &fixes,
        ));
    }
    let Some(code) = cb.code.filter(|c| !c.is_empty()) else {
        return Err(page(
            StatusCode::BAD_REQUEST,
            "Sign-in incomplete",
            &[
                (
                    "Problem",
                    "Microsoft sent neither a code nor an error. Nothing was stored.".into(),
                ),
                ("What to do", "press Authenticate again".into()),
            ],
        ));
    };
    let secret = state
        .store
        .importer_secret(&record.client_id, &record.id)
        .await
        .map_err(|e| internal(&e))?;
    let http = state.tokens.http();
    let identity = IdentityClient::new(http.clone(), sign_in.app, secret);
    let tokens = identity
        .exchange_code(
            &code,
            &pending.pkce_verifier,
            &pending.redirect_uri,
            sign_in.access,
            now,
        )
        .await
        .map_err(|e| {
            tracing::warn!(importer = %record.id, error = %e.reason(), "code exchange failed");
            microsoft_error_page(&record.settings.name, &e, &fixes)
        })?;
    let Some(refresh_token) = tokens.refresh_token.clone() else {
        return Err(page(
            StatusCode::BAD_GATEWAY,
            "No refresh token",
            &[("Problem", "Microsoft granted access without offline access (no refresh token), so mailferry could not keep the importer running. Nothing was stored.".into()),
              ("What to do", "make sure the app registration allows the offline_access permission, then press Authenticate again".into())],
        ));
    };
    let check = match record.settings.graph() {
        Some(graph) => {
            account_check(
                http,
                &graph.app.endpoints.graph,
                graph.mailbox.as_deref(),
                &tokens.access_token,
            )
            .await
        }
        None => imap_login_check(state, &record, &tokens.access_token).await,
    };
    let grant = signed_in_grant(&record.id, &tokens, refresh_token, check, now);
    // For an importer of its user's own mailbox, the account decides whose
    // mail is imported; a browser still signed in as someone else is the
    // usual way to switch it by mistake. A shared mailbox (and IMAP's
    // username) is fixed by the settings, so there any account with access
    // will do.
    if reads_own_mailbox(sign_in)
        && let Some(previous) = state
            .store
            .grant(&record.id)
            .await
            .map_err(|e| internal(&e))?
            .and_then(|g| g.account)
        && !grant
            .account
            .as_deref()
            .is_some_and(|now_signed_in| same_account(&previous, now_signed_in))
    {
        let confirmation = state
            .store
            .create_pending_grant(
                NewPendingGrant {
                    client_id: &record.client_id,
                    started_by: &pending.started_by,
                    previous_account: &previous,
                    grant: &grant,
                },
                now,
            )
            .await
            .map_err(|e| internal(&e))?;
        tracing::info!(importer = %record.id, from = %previous, to = grant.account.as_deref().unwrap_or("?"), started_by = %pending.started_by, "account change awaits confirmation");
        return Ok(confirm_switch_page(
            &record,
            &previous,
            &grant,
            &confirmation,
        ));
    }
    store_grant(state, &record, &pending.started_by, &grant).await
}

/// The grant a completed sign-in stores, whether at once or once the admin
/// confirmed an account change.
fn signed_in_grant(
    importer_id: &str,
    tokens: &TokenSet,
    refresh_token: SecretString,
    check: AccountCheck,
    now: Timestamp,
) -> Grant {
    Grant {
        importer_id: importer_id.to_owned(),
        state: check.state,
        account: check.account,
        scopes: tokens.scopes.clone(),
        access_token: Some(tokens.access_token.clone()),
        access_token_expires_at: Some(tokens.expires_at),
        refresh_token: Some(refresh_token),
        refresh_token_issued_at: Some(now),
        last_refresh_at: None,
        last_error: check.note,
        consecutive_failures: 0,
        version: 1,
        updated_at: now,
    }
}

/// Stores a signed-in grant, replacing the importer's previous one, and
/// says so.
async fn store_grant(
    state: &AppState,
    record: &ImporterRecord,
    started_by: &str,
    grant: &Grant,
) -> Result<Response, Response> {
    let previous = state
        .store
        .grant(&record.id)
        .await
        .map_err(|e| internal(&e))?;
    state
        .store
        .put_grant(grant)
        .await
        .map_err(|e| internal(&e))?;
    tracing::info!(importer = %record.id, account = grant.account.as_deref().unwrap_or("?"), state = grant.state.as_str(), %started_by, "importer authorized");
    let action = if previous.is_some() {
        "grant.reauthorized"
    } else {
        "grant.authorized"
    };
    super::audit::record(
        state,
        &record.client_id,
        started_by,
        action,
        Some(&record.id),
        &format!(
            "`{}` as {} ({})",
            record.settings.name,
            grant.account.as_deref().unwrap_or("an unnamed account"),
            grant.state.as_str()
        ),
    )
    .await;
    Ok(authorized_page(record, started_by, grant))
}

/// User principal names compare without regard to case, as Entra ID does.
fn same_account(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// The importer a sign-in (or a confirmation) is for, or the page saying it is gone.
async fn importer_of(
    state: &AppState,
    client_id: &str,
    importer_id: &str,
) -> Result<ImporterRecord, Response> {
    match state.store.importer(client_id, importer_id).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(page(
            StatusCode::NOT_FOUND,
            "Importer not found",
            &[(
                "Problem",
                "the importer this sign-in was for has been deleted. Nothing was stored.".into(),
            )],
        )),
        Err(e) => Err(internal(&e)),
    }
}

/// Whether whoever signs in decides whose mail is imported.
fn reads_own_mailbox(sign_in: SignIn<'_>) -> bool {
    sign_in.access
        == DelegatedAccess::Graph {
            shared_mailbox: false,
        }
}

fn no_longer_delegated() -> Response {
    page(
        StatusCode::CONFLICT,
        "Importer changed",
        &[(
            "Problem",
            "nobody signs in for the importer any more (it now uses client credentials or an IMAP password). Nothing was stored.".into(),
        )],
    )
}

/// The form the "Confirm the account change" page posts.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ConfirmSwitch {
    /// The single-use token from the page (valid 10 minutes).
    pub token: String,
}

/// The admin's second click: switch an importer that reads its user's own
/// mailbox to the account that just signed in. The token (single use, 10
/// minutes) is the credential, as the `state` is for `authenticate/end`.
#[utoipa::path(post, path = "/api/v2/importers/email/authenticate/confirm", tag = "authorization", operation_id = "confirm_account_change",
    request_body(content = ConfirmSwitch, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "switched: the new account is authorized (HTML page)", body = String, content_type = "text/html"),
        (status = 400, description = "unknown, used or expired confirmation; nothing changed (HTML page)", body = String, content_type = "text/html"),
        (status = 404, description = "the importer was deleted (HTML page)", body = String, content_type = "text/html"),
        (status = 409, description = "the importer or its authorization changed meanwhile; nothing changed (HTML page)", body = String, content_type = "text/html")),
    security(()))]
pub async fn confirm(
    State(state): State<AppState>,
    form: Result<Form<ConfirmSwitch>, FormRejection>,
) -> Response {
    // A malformed form is answered with a page like any other refusal:
    // whoever sees it came from a browser, not an API client.
    let token = form.ok().map(|Form(f)| f.token).filter(|t| !t.is_empty());
    match confirm_switch(&state, token.as_deref()).await {
        Ok(page) | Err(page) => page,
    }
}

async fn confirm_switch(state: &AppState, token: Option<&str>) -> Result<Response, Response> {
    let now = state.clock.now();
    let Some(token) = token else {
        return Err(page(
            StatusCode::BAD_REQUEST,
            "Account change not recognised",
            &[("Problem", "the request carries no confirmation token, so it did not come from a page mailferry showed. Nothing was changed.".into()),
              ("What to do", "open the importer and press Authenticate".into())],
        ));
    };
    let pending = match state.store.consume_pending_grant(token, now).await {
        Ok(StateLookup::Valid(p)) => p,
        Ok(StateLookup::Unknown) => return Err(page(
            StatusCode::BAD_REQUEST,
            "Account change not recognised",
            &[("Problem", "the confirmation is unknown: it was altered, or it belongs to another mailferry installation or a deleted importer. Nothing was changed.".into()),
              ("What to do", "check the importer's status; to change the account, press Authenticate".into())],
        )),
        Ok(StateLookup::AlreadyUsed { used_at }) => return Err(page(
            StatusCode::BAD_REQUEST,
            "This account change was already decided",
            &[("Problem", format!("this confirmation was already used at {used_at}; each can be used once (a reload or the back button repeats it). Nothing was changed.")),
              ("What to do", "check the importer's status".into())],
        )),
        Ok(StateLookup::Expired { expired_at }) => return Err(page(
            StatusCode::BAD_REQUEST,
            "The confirmation took too long",
            &[("Problem", format!("the confirmation expired at {expired_at} (10 minutes after signing in). Nothing was changed.")),
              ("What to do", "open the importer and press Authenticate again".into())],
        )),
        Err(e) => return Err(internal(&e)),
    };
    let record = importer_of(state, &pending.client_id, &pending.grant.importer_id).await?;
    // The admin compared two accounts for an importer of its user's own
    // mailbox, authorized as `previous_account`; if either changed since,
    // the answer was to another question.
    let sign_in = sign_in_of(&record).ok_or_else(no_longer_delegated)?;
    if !reads_own_mailbox(sign_in) {
        let mailbox = record.settings.source_mailbox();
        return Err(page(
            StatusCode::CONFLICT,
            "Importer changed",
            &[
                (
                    "Problem",
                    format!(
                        "the importer now reads the mailbox {mailbox}, so it no longer reads the signed-in account's own mailbox. Nothing was changed."
                    ),
                ),
                (
                    "What to do",
                    "press Authenticate and sign in as a user with Full Access to that mailbox"
                        .into(),
                ),
            ],
        ));
    }
    let current = state
        .store
        .grant(&record.id)
        .await
        .map_err(|e| internal(&e))?
        .and_then(|g| g.account);
    if !current
        .as_deref()
        .is_some_and(|c| same_account(c, &pending.previous_account))
    {
        return Err(page(
            StatusCode::CONFLICT,
            "The authorization changed meanwhile",
            &[
                (
                    "Problem",
                    format!(
                        "when you signed in, this importer was authorized as {}; now it is {}. Nothing was changed.",
                        pending.previous_account,
                        current.as_deref().map_or_else(
                            || "not authorized".to_owned(),
                            |c| format!("authorized as {c}")
                        ),
                    ),
                ),
                (
                    "What to do",
                    "check the importer's status; to change the account, press Authenticate again"
                        .into(),
                ),
            ],
        ));
    }
    tracing::info!(importer = %record.id, from = %pending.previous_account, to = pending.grant.account.as_deref().unwrap_or("?"), "account change confirmed");
    store_grant(state, &record, &pending.started_by, &pending.grant).await
}

/// What the callback found out about the account that signed in.
struct AccountCheck {
    account: Option<String>,
    /// `MailboxDenied` when Graph refused to open the mailbox.
    state: GrantState,
    /// The refusal with its fix, or why the check could not be made.
    note: Option<String>,
}

/// Who signed in, and whether that account can open the mailbox.
async fn account_check(
    http: &HttpClient,
    graph_base: &str,
    mailbox: Option<&str>,
    token: &secrecy::SecretString,
) -> AccountCheck {
    let account = match signed_in_account(http, graph_base, token).await {
        Ok(a) => Some(a.user_principal_name),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the signed-in account");
            None
        }
    };
    let who = account.as_deref().unwrap_or("the signed-in account");
    let Err(e) = check_mailbox_access(http, graph_base, token, mailbox).await else {
        return AccountCheck {
            account,
            state: GrantState::Authorized,
            note: None,
        };
    };
    // Graph not answering says nothing about access: the grant is kept as
    // authorized, and the next Graph call (or the connection test) tells.
    if !e.is_refusal() {
        let note = format!(
            "mailferry could not check whether {who} can open {} ({e}); run the Mail connection test",
            mailbox.unwrap_or("its own mailbox")
        );
        return AccountCheck {
            account,
            state: GrantState::Authorized,
            note: Some(note),
        };
    }
    let note = match mailbox {
        Some(mailbox) => format!(
            "{who} cannot open the mailbox {mailbox} ({e}). Fix: sign in (press Authenticate) as a user with Full Access to {mailbox}, or have an Exchange administrator grant {who} Full Access to it"
        ),
        None => format!(
            "{who} cannot open its own mailbox ({e}). Fix: make sure the account has an Exchange Online mailbox (license), or sign in as the mailbox's user"
        ),
    };
    AccountCheck {
        account,
        state: GrantState::MailboxDenied,
        note: Some(note),
    }
}

/// IMAP's account check: an Exchange Online token cannot ask Graph who
/// signed in, so the IMAP server itself is asked to log in the importer's
/// username with it. A refusal means the account that signed in may not
/// open that mailbox.
async fn imap_login_check(
    state: &AppState,
    record: &ImporterRecord,
    token: &SecretString,
) -> AccountCheck {
    let username = record.settings.source_mailbox();
    let refusal = match state
        .connector
        .check_imap_login(record, token.clone())
        .await
    {
        Ok(()) => {
            return AccountCheck {
                account: Some(username),
                state: GrantState::Authorized,
                note: None,
            };
        }
        Err(runtime::CheckLoginError::Mailbox(e))
            if e.kind == domain::mailbox::MailboxErrorKind::Token =>
        {
            e
        }
        Err(e) => {
            return AccountCheck {
                account: None,
                state: GrantState::Authorized,
                note: Some(format!(
                    "mailferry could not check the IMAP login as {username} ({e}); run the Mail connection test"
                )),
            };
        }
    };
    AccountCheck {
        account: None,
        state: GrantState::MailboxDenied,
        note: Some(format!(
            "the IMAP server refused to log in {username} with the signed-in account's token ({}). Fix: press Authenticate and sign in as {username}, or as a user with Full Access to that mailbox",
            refusal.message
        )),
    }
}

fn internal(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "sign-in could not be completed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Sign-in could not be completed",
        &[
            (
                "Problem",
                format!("mailferry failed: {e}. Nothing was stored."),
            ),
            (
                "What to do",
                "check the server log, then press Authenticate again".into(),
            ),
        ],
    )
}

fn microsoft_error_page(importer: &str, e: &IdentityError, fixes: &FixContext<'_>) -> Response {
    let diagnosis = e.diagnosis();
    let status = if diagnosis == Diagnosis::Transient {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut rows = vec![("Importer", importer.to_owned())];
    match e.microsoft() {
        Some(ms) => {
            rows.push(("Microsoft's error", ms.error.clone()));
            if let Some(code) = ms.aadsts() {
                rows.push(("AADSTS code", format!("AADSTS{code}")));
            }
            rows.push((
                "Microsoft said",
                ms.message().unwrap_or("(no description)").to_owned(),
            ));
        }
        None => rows.push(("Problem", e.to_string())),
    }
    rows.push(("What to do", diagnosis.fix(fixes)));
    rows.push((
        "Stored",
        "nothing: the importer's authorization is unchanged".into(),
    ));
    page(status, "Microsoft did not authorize mailferry", &rows)
}

fn authorized_page(record: &ImporterRecord, started_by: &str, grant: &Grant) -> Response {
    let mut rows = vec![
        ("Importer", record.settings.name.clone()),
        ("Signed in as", account_name(grant).to_owned()),
        (
            "Access token valid until",
            grant
                .access_token_expires_at
                .map_or_else(|| "unknown".to_owned(), |t| t.to_string()),
        ),
        ("Kept fresh by", "the refresh-tokens script".to_owned()),
    ];
    let title = match (grant.state, grant.last_error.clone()) {
        (GrantState::MailboxDenied, note) => {
            rows.push((
                "Problem",
                note.unwrap_or_else(|| "the account cannot open the mailbox".into()),
            ));
            rows.push((
                "Imports",
                "do not start until the account can open the mailbox".into(),
            ));
            "Signed in, but mailferry cannot open the mailbox"
        }
        (_, Some(note)) => {
            rows.push(("Warning", note));
            "mailferry is authorized"
        }
        (_, None) => "mailferry is authorized",
    };
    rows.push(("Started by", started_by.to_owned()));
    page(StatusCode::OK, title, &rows)
}

fn account_name(grant: &Grant) -> &str {
    grant
        .account
        .as_deref()
        .unwrap_or("an account mailferry could not identify")
}

/// Another account signed in for an importer of its user's own mailbox:
/// nothing is stored until the admin confirms with a second click.
fn confirm_switch_page(
    record: &ImporterRecord,
    previous: &str,
    grant: &Grant,
    confirmation: &Confirmation,
) -> Response {
    let new = account_name(grant);
    let mut rows = vec![
        ("Importer", record.settings.name.clone()),
        ("Authorized before", previous.to_owned()),
        ("Signed in now", new.to_owned()),
        (
            "What would change",
            format!(
                "This importer was authorized as {previous}; you signed in as {new}. mailferry would read {new}'s mailbox from now on."
            ),
        ),
    ];
    if let Some(note) = &grant.last_error {
        rows.push(("Warning", note.clone()));
    }
    rows.push((
        "Stored",
        format!("nothing yet: the importer stays authorized as {previous} unless you switch"),
    ));
    rows.push(("Decide by", confirmation.expires_at.to_string()));
    no_store(
        StatusCode::OK,
        ConfirmPage {
            title: "Confirm the account change",
            rows: &rows,
            action: CONFIRM_PATH,
            token: confirmation.token.expose_secret(),
            importer_id: &record.id,
            new_account: new,
            previous_account: previous,
        },
    )
}

/// A label and its value: one row of a page's table.
type Row<'a> = (&'a str, String);

/// How a sign-in or an account change ended, with a link back to mailferry.
#[derive(Template, WebTemplate)]
#[template(path = "oauth/outcome.html")]
struct OutcomePage<'a> {
    title: &'a str,
    rows: &'a [Row<'a>],
}

/// Another account signed in: switch to it (posting the single-use token),
/// or keep the one authorized before.
#[derive(Template, WebTemplate)]
#[template(path = "oauth/confirm.html")]
struct ConfirmPage<'a> {
    title: &'a str,
    rows: &'a [Row<'a>],
    action: &'a str,
    token: &'a str,
    importer_id: &'a str,
    new_account: &'a str,
    previous_account: &'a str,
}

/// A plain page: a title, label/value rows and a link back to mailferry.
fn page(status: StatusCode, title: &str, rows: &[Row<'_>]) -> Response {
    no_store(status, OutcomePage { title, rows })
}

/// Never cached: a page may carry a token, and each tells one sign-in.
fn no_store(status: StatusCode, page: impl IntoResponse) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], page).into_response()
}

/// Where an importer's Microsoft authorization stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthState {
    Unauthenticated,
    Authorized,
    ReauthRequired,
    MailboxDenied,
    NotApplicable,
}

impl From<GrantState> for AuthState {
    fn from(state: GrantState) -> Self {
        match state {
            GrantState::Authorized => Self::Authorized,
            GrantState::ReauthRequired => Self::ReauthRequired,
            GrantState::MailboxDenied => Self::MailboxDenied,
        }
    }
}

/// The authorization part of an importer's status.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthStatus {
    /// `unauthenticated` (nobody signed in yet), `authorized`,
    /// `reauth_required` (Microsoft refused the tokens), `mailbox_denied`
    /// (signed in, but the account cannot open the configured mailbox; the
    /// tokens are kept fresh, imports do not start) or `not_applicable` (no
    /// user signs in); `last_error` says what to do.
    pub state: AuthState,
    pub account: Option<String>,
    pub access_token_expires_at: Option<String>,
    pub last_refresh_at: Option<String>,
    /// Microsoft's reason and the fix, or a note about mailbox access.
    pub last_error: Option<String>,
    /// When the refresh token was last used (Microsoft drops it after 90 idle days).
    pub refresh_token_last_used_at: Option<String>,
    pub consecutive_failures: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImporterStatus {
    pub auth: AuthStatus,
    /// The importer's last import run and its ledger's totals; `null`
    /// until one ran.
    pub last_import: Option<crate::api::import_runs::LastImport>,
    /// Things that will break soon, each with what to do.
    pub warnings: Vec<String>,
}

/// Where an importer's authorization stands, with early warnings.
#[utoipa::path(get, path = "/api/v2/importers/email/{id}/status", tag = "authorization", params(("id" = String, Path)),
    responses((status = 200, body = ImporterStatus), (status = 404, body = Problem)))]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<ImporterStatus>, Problem> {
    let record = state
        .store
        .importer(&caller.client_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("importer"))?;
    let context = runtime::health::HealthContext::load(&state.store, &caller.client_id).await?;
    let health =
        runtime::health::importer_health(&state.store, record.clone(), &context, state.clock.now())
            .await?;
    let mut auth = AuthStatus {
        state: AuthState::NotApplicable,
        account: None,
        access_token_expires_at: None,
        last_refresh_at: None,
        last_error: None,
        refresh_token_last_used_at: None,
        consecutive_failures: 0,
    };
    if health.delegated {
        match health.grant {
            None => auth.state = AuthState::Unauthenticated,
            Some(g) => {
                auth = AuthStatus {
                    state: g.state.into(),
                    account: g.account,
                    access_token_expires_at: g.access_token_expires_at.map(|t| t.to_string()),
                    last_refresh_at: g.last_refresh_at.map(|t| t.to_string()),
                    last_error: g.last_error,
                    refresh_token_last_used_at: g.refresh_token_last_used_at.map(|t| t.to_string()),
                    consecutive_failures: g.consecutive_failures,
                };
            }
        }
    }
    let warnings = health.warnings;
    Ok(axum::Json(ImporterStatus {
        auth,
        last_import: crate::api::import_runs::last_import(
            &state.store,
            &caller.client_id,
            &record.id,
        )
        .await?,
        warnings,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "<script>alert(1)</script>";
    const ESCAPED: &str = "&#60;script&#62;alert(1)&#60;/script&#62;";

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        String::from_utf8(bytes.to_vec()).expect("UTF-8")
    }

    #[tokio::test]
    async fn microsofts_words_and_the_importer_name_are_escaped_on_the_error_page() {
        let ms = MicrosoftError {
            error: "access_denied".into(),
            error_description: Some(format!("AADSTS65004: {HOSTILE}")),
            ..MicrosoftError::default()
        };
        let fixes = FixContext {
            redirect_uri: "http://127.0.0.1:8080/api/v2/importers/email/authenticate/end",
            client_id: "00000000-0000-0000-0000-000000000001",
            tenant: "contoso.example",
            permissions: &[],
            certificate: false,
        };
        let response = microsoft_error_page(
            &format!("Invoices & {HOSTILE}"),
            &IdentityError::Microsoft(Box::new(ms)),
            &fixes,
        );
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let page = body(response).await;
        assert!(!page.contains("<script"), "{page}");
        assert!(
            page.contains(&format!("<td>AADSTS65004: {ESCAPED}</td>")),
            "{page}"
        );
        assert!(
            page.contains(&format!("<td>Invoices &#38; {ESCAPED}</td>")),
            "{page}"
        );
        assert!(
            page.contains("<h1>Microsoft did not authorize mailferry</h1>"),
            "{page}"
        );
    }

    #[test]
    fn account_names_cannot_break_out_of_the_confirmation_form() {
        let rows = [("Signed in now", HOSTILE.to_owned())];
        let page = ConfirmPage {
            title: "Confirm the account change",
            rows: &rows,
            action: CONFIRM_PATH,
            token: "t\"><script>alert(1)</script>",
            importer_id: "imp\" onclick=\"alert(1)",
            new_account: HOSTILE,
            previous_account: "o'brien@contoso.example",
        }
        .render()
        .expect("render");
        assert!(!page.contains("<script"), "{page}");
        assert!(
            page.contains(&format!("name=\"token\" value=\"t&#34;&#62;{ESCAPED}\">")),
            "{page}"
        );
        assert!(
            page.contains("href=\"/ui/#/importers/imp&#34; onclick=&#34;alert(1)\">"),
            "{page}"
        );
        assert!(
            page.contains(&format!("Switch to {ESCAPED}</button>")),
            "{page}"
        );
        assert!(
            page.contains("Keep o&#39;brien@contoso.example</a>"),
            "{page}"
        );
        assert!(page.contains(&format!("<td>{ESCAPED}</td>")), "{page}");
    }
}
