//! `/api/v2/importers/email`: e-mail importers of the caller's client.
//! Secrets are write-only: a response says whether one is set, never what it is.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use domain::importer::{
    AttachmentRules, Connection, Endpoints, ImapAuth, ImapLogin, ImapSecurity, ImporterInput,
    Protocol, SecretKind, ValidImporter,
};
use domain::validation::ValidationErrors;
use jiff::Timestamp;
use serde::Serialize;
use store::grants::{Grant, GrantState};
use store::importers::ImporterRecord;
use utoipa::ToSchema;

use crate::caller::Caller;
use crate::json_body::JsonBody;
use crate::problem::Problem;
use crate::{AppState, WebConfig};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/importers/email", get(list).post(create))
        .route(
            "/api/v2/importers/email/{id}",
            get(get_one).put(replace).delete(delete),
        )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FoldersView {
    pub inbox: String,
    pub exported: String,
    pub error: String,
}

/// Where documents go; the sink's own credential is write-only.
#[derive(Debug, Serialize, ToSchema)]
pub struct SinkView {
    #[serde(flatten)]
    pub settings: domain::sink::SinkSettings,
    /// Webhook only: a token is stored (it is never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_set: Option<bool>,
    /// S3 only: the secret access key is stored (it is never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key_set: Option<bool>,
}

/// An importer as the API shows it. Fields of other protocols are absent.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImporterView {
    pub id: String,
    pub name: String,
    pub protocol: Protocol,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_set: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<String>,
    /// Set when the app signs in with a certificate instead of a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<CertificateView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_private_key_set: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Empty: the authorizing user's own mailbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud: Option<domain::importer::Cloud>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Endpoints>,
    /// The URI to register under Authentication in the Azure app registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security: Option<ImapSecurity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_set: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<ImapAuth>,
    /// The CA or self-signed certificate trusted for this server, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_pem: Option<String>,
    pub folders: FoldersView,
    pub attachments: AttachmentRules,
    pub rules: domain::rules::ImportRules,
    pub sink: SinkView,
    /// Mails larger than this go to Error (`too_large`) without a download.
    pub max_mail_bytes: u64,
    /// Runs a mail may fail transiently in before it goes to Error.
    pub max_attempts: u32,
    /// Whether the body becomes part of the document.
    pub import_body: domain::importer::ImportBody,
    /// Sender patterns with a stored password for their encrypted ZIPs
    /// (the passwords are write-only), in the order they are tried.
    pub zip_passwords: Vec<ZipPasswordView>,
    /// Whether a ZIP attachment is kept beside the files taken from it.
    pub zip_keep_archive: bool,
    pub smime: SmimeView,
    /// True when a delegated importer has no usable grant (none, one
    /// Microsoft refused, one whose account cannot open the mailbox, or one
    /// without `Mail.ReadWrite.Shared` for a shared mailbox): press
    /// Authenticate (declining is fine; the importer just does not run until then).
    pub authentication_required: bool,
    /// Things that will break soon, with what to do (e.g. a client secret about to expire).
    pub warnings: Vec<String>,
    /// Set on a save that dropped the grant, or kept one that lacks
    /// `Mail.ReadWrite.Shared` for a shared mailbox, saying why and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication_notice: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ZipPasswordView {
    pub sender: String,
    pub password_set: bool,
}

/// S/MIME handling; the key and its password are write-only.
#[derive(Debug, Serialize, ToSchema)]
pub struct SmimeView {
    pub trusted_ca_pem: Option<String>,
    /// Whether the operating system's root CAs are trusted too.
    pub platform_roots: bool,
    pub on_bad_signature: domain::content::OnBadSignature,
    /// Whether a decryption key (PKCS#12) is stored.
    pub key_set: bool,
}

/// The app's certificate as shown (its private key is write-only).
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateView {
    pub subject: String,
    /// SHA-1, hex: the thumbprint the Azure portal lists under
    /// Certificates & secrets.
    pub thumbprint: String,
    /// SHA-256, hex (sent to Microsoft as `x5t#S256`).
    pub thumbprint_sha256: String,
    pub not_after: String,
    /// the certificate itself (public)
    pub pem: String,
}

/// Keys are checked at save, not at the first token request or the first
/// encrypted mail: a certificate's private key must be that certificate's,
/// and a PKCS#12 for S/MIME must open with its password and hold a key
/// with its certificate.
fn check_keys(valid: &ValidImporter) -> Result<(), ValidationErrors> {
    if let Some((SecretKind::ClientCertificate, domain::importer::SecretChange::Set(key))) =
        &valid.secret
        && let Some(cert) = valid
            .settings
            .entra_app()
            .and_then(|a| a.certificate.as_ref())
    {
        microsoft::entra::assertion::AssertionSigner::new(cert, key)
            .map_err(|m| ValidationErrors::single("client_private_key_pem", m))?;
    }
    let domain::content::KeyChange::Set {
        pkcs12_base64,
        password,
    } = &valid.content_keys.smime_key
    else {
        return Ok(());
    };
    import::smime::open_pkcs12(pkcs12_base64.as_str(), password.as_str())
        .map(|_| ())
        .map_err(|why| {
            let field = if why.starts_with("smime.pkcs12_password") {
                "smime.pkcs12_password"
            } else {
                "smime.key_pkcs12_base64"
            };
            ValidationErrors::single(field, why)
        })
}

fn rfc3339(ts: Timestamp) -> String {
    // Timestamp's Display is RFC 3339 in UTC with a `Z`.
    ts.to_string()
}

/// The grant of a delegated importer; other importers have none to show.
async fn delegated_grant(
    state: &AppState,
    record: &ImporterRecord,
) -> Result<Option<Grant>, Problem> {
    Ok(match record.settings.delegated_access() {
        Some(_) => state.store.grant(&record.id).await?,
        None => None,
    })
}

/// Why a kept grant cannot read the configured shared mailbox: it was
/// obtained for the user's own mailbox, without `Mail.ReadWrite.Shared`,
/// and Microsoft would refuse to add that permission on the next refresh.
fn missing_shared_permission(record: &ImporterRecord, grant: Option<&Grant>) -> Option<String> {
    let mailbox = record.settings.graph()?.mailbox.as_deref()?;
    // No scopes: Microsoft did not say what it granted, so nothing is known to lack.
    let grant = grant.filter(|g| !g.scopes.is_empty())?;
    (!reads_shared_mailboxes(&grant.scopes)).then(|| {
        format!(
            "the shared mailbox {mailbox} needs the permission Mail.ReadWrite.Shared, which the current authorization{} does not include: \
             press Authenticate and sign in as a user with Full Access to {mailbox}",
            grant.account.as_deref().map(|a| format!(" (as {a})")).unwrap_or_default()
        )
    })
}

/// Whether granted scopes include `Mail.ReadWrite.Shared`, named as Graph's
/// short name or as a full URI (`https://graph.microsoft.com/Mail.ReadWrite.Shared`),
/// in any case.
fn reads_shared_mailboxes(scopes: &[String]) -> bool {
    scopes.iter().any(|scope| {
        scope
            .rsplit('/')
            .next()
            .is_some_and(|name| name.eq_ignore_ascii_case("Mail.ReadWrite.Shared"))
    })
}

async fn view(
    state: &AppState,
    record: ImporterRecord,
    notice: Option<String>,
) -> Result<ImporterView, Problem> {
    let grant = delegated_grant(state, &record).await?;
    Ok(view_with_grant(state, record, grant.as_ref(), notice))
}

fn view_with_grant(
    state: &AppState,
    record: ImporterRecord,
    grant: Option<&Grant>,
    notice: Option<String>,
) -> ImporterView {
    let authentication_required = record.settings.delegated_access().is_some()
        && (!grant.is_some_and(|g| g.state == GrantState::Authorized)
            || missing_shared_permission(&record, grant).is_some());
    let warnings = record.settings.warnings(state.clock.now());
    let mut view = view_of(&state.config, record, authentication_required, notice);
    view.warnings = warnings;
    view
}

fn view_of(
    config: &WebConfig,
    record: ImporterRecord,
    authentication_required: bool,
    notice: Option<String>,
) -> ImporterView {
    let s = &record.settings;
    let secret_set = |kind| Some(record.stored_secret == Some(kind));
    let mut v = ImporterView {
        id: record.id.clone(),
        name: s.name.clone(),
        protocol: s.protocol,
        client_id: None,
        client_secret_set: None,
        client_secret_expires_at: None,
        client_certificate: None,
        client_private_key_set: None,
        tenant_id: None,
        mailbox: None,
        cloud: None,
        endpoints: None,
        redirect_uri: None,
        host: None,
        port: None,
        security: None,
        username: None,
        password_set: None,
        auth: None,
        tls_ca_pem: None,
        folders: FoldersView {
            inbox: s.folders.inbox.to_string(),
            exported: s.folders.exported.to_string(),
            error: s.folders.error.to_string(),
        },
        attachments: s.attachments.clone(),
        rules: s.rules.clone(),
        max_mail_bytes: s.limits.max_mail_bytes,
        max_attempts: s.limits.max_attempts,
        import_body: s.import_body,
        zip_passwords: s
            .zip
            .password_senders
            .iter()
            .map(|sender| ZipPasswordView {
                sender: sender.clone(),
                password_set: true,
            })
            .collect(),
        zip_keep_archive: s.zip.keep_archive,
        smime: SmimeView {
            trusted_ca_pem: s.smime.trusted_ca_pem.clone(),
            platform_roots: s.smime.platform_roots,
            on_bad_signature: s.smime.on_bad_signature,
            key_set: s.smime.key_set,
        },
        sink: SinkView {
            settings: s.sink.clone(),
            token_set: matches!(s.sink, domain::sink::SinkSettings::Webhook { .. })
                .then_some(record.sink_secret_set),
            secret_access_key_set: matches!(s.sink, domain::sink::SinkSettings::S3 { .. })
                .then_some(record.sink_secret_set),
        },
        authentication_required,
        warnings: Vec::new(),
        authentication_notice: notice,
        created_at: rfc3339(record.created_at),
        updated_at: rfc3339(record.updated_at),
    };
    if let Some(app) = s.entra_app() {
        v.client_id = Some(app.client_id.clone());
        match &app.certificate {
            Some(c) => {
                v.client_certificate = Some(CertificateView {
                    subject: c.subject.clone(),
                    thumbprint: c.thumbprint_sha1.clone(),
                    thumbprint_sha256: c.thumbprint_sha256(),
                    not_after: rfc3339(c.not_after),
                    pem: c.pem.clone(),
                });
                v.client_private_key_set = secret_set(SecretKind::ClientCertificate);
            }
            None => v.client_secret_set = secret_set(SecretKind::ClientSecret),
        }
        v.client_secret_expires_at = app.client_secret_expires_at.map(rfc3339);
        v.tenant_id = Some(app.tenant_id.as_str().to_owned());
        v.cloud = Some(app.cloud);
        v.endpoints = Some(app.endpoints.clone());
    }
    if s.delegated_access().is_some() {
        v.redirect_uri = Some(config.redirect_uri());
    }
    match &s.connection {
        Connection::Graph(g) => {
            v.mailbox = Some(g.mailbox.clone().unwrap_or_default());
        }
        Connection::Imap(i) => {
            v.host = Some(i.host.clone());
            v.port = Some(i.port);
            v.security = Some(i.security);
            v.username = Some(i.username.clone());
            v.auth = Some(i.auth.auth());
            v.tls_ca_pem = i.tls_ca_pem.clone();
            if i.auth == ImapLogin::Password {
                v.password_set = secret_set(SecretKind::Password);
            }
        }
    }
    v
}

/// List the client's importers.
#[utoipa::path(get, path = "/api/v2/importers/email", tag = "importers",
    responses((status = 200, body = [ImporterView]), (status = 401, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<ImporterView>>, Problem> {
    let mut views = Vec::new();
    for record in state.store.list_importers(&caller.client_id).await? {
        views.push(view(&state, record, None).await?);
    }
    Ok(axum::Json(views))
}

/// Create an importer.
#[utoipa::path(post, path = "/api/v2/importers/email", tag = "importers", request_body = ImporterInput,
    responses((status = 201, body = ImporterView), (status = 422, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<ImporterInput>,
) -> Result<(StatusCode, axum::Json<ImporterView>), Problem> {
    let valid = input.validate(None)?;
    valid.check_kept_secrets(None, false)?;
    check_keys(&valid)?;
    let record = state
        .store
        .create_importer(&caller.client_id, &valid, state.clock.now())
        .await?;
    tracing::info!(importer = %record.id, protocol = record.settings.protocol.as_str(), "importer created");
    super::audit::record(
        &state,
        &caller.client_id,
        &caller.principal,
        "importer.created",
        Some(&record.id),
        &format!(
            "`{}` ({})",
            record.settings.name,
            record.settings.protocol.as_str()
        ),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        axum::Json(view(&state, record, None).await?),
    ))
}

/// One importer.
#[utoipa::path(get, path = "/api/v2/importers/email/{id}", tag = "importers", params(("id" = String, Path)),
    responses((status = 200, body = ImporterView), (status = 404, body = Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<ImporterView>, Problem> {
    let record = state
        .store
        .importer(&caller.client_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("importer"))?;
    Ok(axum::Json(view(&state, record, None).await?))
}

/// Replace an importer's configuration. Omit `client_secret`/`password` to
/// keep the stored one. The grant survives unless the application, tenant,
/// cloud, protocol or secret changed.
#[utoipa::path(put, path = "/api/v2/importers/email/{id}", tag = "importers", params(("id" = String, Path)), request_body = ImporterInput,
    responses((status = 200, body = ImporterView), (status = 404, body = Problem), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ImporterInput>,
) -> Result<axum::Json<ImporterView>, Problem> {
    let existing = state
        .store
        .importer(&caller.client_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("importer"))?;
    let valid = input.validate(existing.stored_secret)?;
    valid.check_kept_secrets(Some(&existing.settings), existing.sink_secret_set)?;
    check_keys(&valid)?;
    let saved = state
        .store
        .update_importer(&caller.client_id, &id, &valid, state.clock.now())
        .await?;
    let mut changed = super::audit::changed_fields(
        &serde_json::to_value(&existing.settings).unwrap_or_default(),
        &serde_json::to_value(&saved.record.settings).unwrap_or_default(),
    );
    if let Some((kind, domain::importer::SecretChange::Set(_))) = &valid.secret {
        changed.push(format!("{} (replaced)", kind.field()));
    }
    if let (domain::sink::SinkSecretChange::Set(_), Some(field)) =
        (&valid.sink_secret, valid.settings.sink.secret_field())
    {
        changed.push(format!("{field} (replaced)"));
    }
    for (sender, password) in &valid.content_keys.zip_passwords {
        if password.is_some() {
            changed.push(format!("zip_passwords[{sender}] (replaced)"));
        }
    }
    match &valid.content_keys.smime_key {
        domain::content::KeyChange::Set { .. } => changed.push("smime.key (replaced)".to_owned()),
        domain::content::KeyChange::Clear if existing.settings.smime.key_set => {
            changed.push("smime.key (removed)".to_owned());
        }
        _ => {}
    }
    let detail = if changed.is_empty() {
        format!("`{}`: saved without changes", saved.record.settings.name)
    } else {
        format!(
            "`{}`: changed {}",
            saved.record.settings.name,
            changed.join(", ")
        )
    };
    super::audit::record(
        &state,
        &caller.client_id,
        &caller.principal,
        "importer.updated",
        Some(&id),
        &detail,
    )
    .await;
    let grant = delegated_grant(&state, &saved.record).await?;
    let notice = if saved.grant_dropped {
        Some(
            "the change (application, tenant, cloud, protocol or secret) made the Microsoft authorization invalid: \
             press Authenticate to authorize again"
                .to_owned(),
        )
    } else {
        // The grant survives a new mailbox, but one for the user's own
        // mailbox lacks what a shared one needs.
        missing_shared_permission(&saved.record, grant.as_ref())
    };
    Ok(axum::Json(view_with_grant(
        &state,
        saved.record,
        grant.as_ref(),
        notice,
    )))
}

/// Delete an importer and its authorization.
#[utoipa::path(delete, path = "/api/v2/importers/email/{id}", tag = "importers", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let record = state.store.importer(&caller.client_id, &id).await?;
    if let Some(record) = &record
        && let Err(e) = state.connector.end_subscription(record).await
    {
        tracing::warn!(error = %e, importer = %id, "could not end the importer's Inbox subscription at Microsoft Graph; Graph drops it when it expires");
    }
    if state.store.delete_importer(&caller.client_id, &id).await? {
        // The audit log outlives the importer: it keeps its name.
        let detail = record.map_or_else(String::new, |r| format!("`{}`", r.settings.name));
        super::audit::record(
            &state,
            &caller.client_id,
            &caller.principal,
            "importer.deleted",
            Some(&id),
            &detail,
        )
        .await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("importer"))
    }
}

#[cfg(test)]
mod tests {
    use super::reads_shared_mailboxes;

    fn scopes(names: &[&str]) -> Vec<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    #[test]
    fn the_shared_permission_is_found_by_its_last_segment_in_any_case() {
        assert!(reads_shared_mailboxes(&scopes(&[
            "User.Read",
            "Mail.ReadWrite.Shared"
        ])));
        assert!(reads_shared_mailboxes(&scopes(&[
            "https://graph.microsoft.com/mail.readwrite.shared"
        ])));
        assert!(reads_shared_mailboxes(&scopes(&[
            "https://microsoftgraph.chinacloudapi.cn/Mail.ReadWrite.Shared"
        ])));
        assert!(!reads_shared_mailboxes(&scopes(&[
            "Mail.ReadWrite",
            "https://graph.microsoft.com/Mail.Read.Shared",
            "offline_access"
        ])));
        assert!(!reads_shared_mailboxes(&[]));
    }
}
