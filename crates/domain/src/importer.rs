//! An e-mail importer's configuration: what an admin submits
//! ([`ImporterInput`]), and the parsed, always-valid form the rest of
//! mailferry works with ([`ImporterSettings`]). Parse, don't validate: nothing
//! downstream re-checks a field.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::content::{
    ContentKeysChange, SmimeInput, SmimeSettings, ZipPasswordInput, ZipSettings, parse_smime,
    parse_zip_passwords,
};
use crate::credential::ClientCertificate;
use crate::folder::FolderSpec;
use crate::rules::{ImportRules, ImportRulesInput, Pattern, parse_patterns};
use crate::sink::{SinkInput, SinkSettings};
use crate::validation::ValidationErrors;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Microsoft Graph with a user's delegated grant (authorization code + refresh tokens).
    GraphDelegated,
    /// Microsoft Graph with the application's own identity (app-only).
    GraphClientCredentials,
    Imap,
}

impl Protocol {
    pub const ALL: [Self; 3] = [
        Self::GraphDelegated,
        Self::GraphClientCredentials,
        Self::Imap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::GraphDelegated => "graph_delegated",
            Self::GraphClientCredentials => "graph_client_credentials",
            Self::Imap => "imap",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }

    pub fn is_graph(self) -> bool {
        !matches!(self, Self::Imap)
    }
}

/// The Microsoft cloud an importer's tenant lives in; it decides the default
/// hosts and the resource that scopes name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Cloud {
    #[serde(rename = "global")]
    Global,
    #[serde(rename = "usgov")]
    UsGov,
    #[serde(rename = "usgov-dod")]
    UsGovDod,
    #[serde(rename = "china")]
    China,
}

impl Cloud {
    pub const ALL: [Self; 4] = [Self::Global, Self::UsGov, Self::UsGovDod, Self::China];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::UsGov => "usgov",
            Self::UsGovDod => "usgov-dod",
            Self::China => "china",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }

    pub fn default_endpoints(self) -> Endpoints {
        let (authority, graph) = match self {
            Self::Global => (
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
            ),
            Self::UsGov => (
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
            ),
            Self::UsGovDod => (
                "https://login.microsoftonline.us",
                "https://dod-graph.microsoft.us",
            ),
            Self::China => (
                "https://login.partner.microsoftonline.cn",
                "https://microsoftgraph.chinacloudapi.cn",
            ),
        };
        Endpoints {
            authority: authority.to_owned(),
            graph: graph.to_owned(),
        }
    }

    /// Scopes keep naming the cloud's own Graph resource even when another
    /// host (the emulator, a proxy) serves it.
    pub fn graph_resource(self) -> String {
        self.default_endpoints().graph
    }

    /// Exchange Online's resource in this cloud: IMAP's XOAUTH2 tokens are
    /// for it (`{resource}/IMAP.AccessAsUser.All`), never for Graph.
    pub fn outlook_resource(self) -> &'static str {
        match self {
            Self::Global => "https://outlook.office.com",
            Self::UsGov => "https://outlook.office365.us",
            Self::UsGovDod => "https://outlook-dod.office365.us",
            Self::China => "https://partner.outlook.cn",
        }
    }
}

/// Base URLs without a trailing slash: `authority` goes before
/// `/{tenant}/oauth2/v2.0/…`, `graph` before `/v1.0/…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Endpoints {
    pub authority: String,
    pub graph: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folders {
    pub inbox: FolderSpec,
    pub exported: FolderSpec,
    pub error: FolderSpec,
}

/// Which parts of a mail become documents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttachmentRules {
    /// MIME types (`application/pdf`) or families (`image/*`); empty allows all.
    pub allowed_types: Vec<String>,
    /// File extensions without the dot, lower case; empty allows all.
    pub allowed_extensions: Vec<String>,
    /// Inline parts (logos, signatures) are skipped unless this is set.
    pub include_inline: bool,
    /// Attachments smaller than this many bytes are skipped.
    pub min_size: u64,
    /// File-name patterns (`*` wildcards, case-insensitive), e.g.
    /// `*agb*.pdf`: a matching attachment is skipped.
    #[serde(default)]
    pub exclude_names: Vec<String>,
    /// File-name patterns; when not empty, only matching attachments are
    /// imported. Both lists are checked after the type and size rules.
    #[serde(default)]
    pub include_names: Vec<String>,
}

/// The tenant segment of the identity platform's URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `common`, `organizations` and `consumers` choose the tenant at sign-in;
    /// app-only tokens need the real tenant.
    pub fn is_multi_tenant_alias(&self) -> bool {
        matches!(self.0.as_str(), "common" | "organizations" | "consumers")
    }
}

/// The app registration in Microsoft Entra ID an importer signs in with:
/// for Graph, and for IMAP with XOAUTH2 at Exchange Online.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntraApp {
    pub client_id: String,
    pub tenant_id: TenantId,
    pub cloud: Cloud,
    pub endpoints: Endpoints,
    /// Entered by the admin from Azure, so mailferry can warn before it lapses.
    pub client_secret_expires_at: Option<Timestamp>,
    /// Set when the app signs in with a certificate instead of a secret
    /// (the private key is the sealed secret then).
    #[serde(default)]
    pub certificate: Option<Box<ClientCertificate>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphSettings {
    /// Flattened: the stored settings keep the fields at the top level.
    #[serde(flatten)]
    pub app: EntraApp,
    /// `None`: the authorizing user's own mailbox (`/me`).
    pub mailbox: Option<String>,
}

/// What a user's delegated grant is for; it decides the scopes asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelegatedAccess {
    /// Graph mail; `shared_mailbox` adds `Mail.ReadWrite.Shared`.
    Graph { shared_mailbox: bool },
    /// Exchange Online's IMAP (`IMAP.AccessAsUser.All`).
    Imap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImapSecurity {
    Tls,
    Starttls,
    None,
}

/// The `auth` field of the API: how an IMAP importer logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImapAuth {
    Password,
    Xoauth2,
}

/// How an IMAP importer logs in, with what that needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImapLogin {
    /// LOGIN with the sealed password.
    Password,
    /// SASL XOAUTH2 with an access token of the importer's grant, which an
    /// admin obtains by signing in at Microsoft with this app.
    Xoauth2(EntraApp),
}

impl ImapLogin {
    pub fn auth(&self) -> ImapAuth {
        match self {
            Self::Password => ImapAuth::Password,
            Self::Xoauth2(_) => ImapAuth::Xoauth2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub security: ImapSecurity,
    pub username: String,
    pub auth: ImapLogin,
    /// Trust exactly this CA or self-signed certificate (PEM) instead of
    /// the platform's roots.
    #[serde(default)]
    pub tls_ca_pem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Connection {
    Graph(GraphSettings),
    Imap(ImapSettings),
}

/// A valid importer configuration, secrets excluded (they are sealed apart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImporterSettings {
    pub name: String,
    pub protocol: Protocol,
    pub connection: Connection,
    pub folders: Folders,
    pub attachments: AttachmentRules,
    /// Absent in settings saved before rules existed: allow everything.
    #[serde(default)]
    pub rules: ImportRules,
    /// Absent in settings saved before sinks existed: the spool.
    #[serde(default)]
    pub sink: SinkSettings,
    /// Absent in settings saved before limits existed: the defaults.
    #[serde(default)]
    pub limits: ImportLimits,
    /// Absent in settings saved before it existed: `never`.
    #[serde(default)]
    pub import_body: ImportBody,
    #[serde(default)]
    pub zip: ZipSettings,
    #[serde(default)]
    pub smime: SmimeSettings,
}

/// Whether the mail's body (its text and HTML parts) becomes part of the
/// document, as `body.txt` and `body.html`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportBody {
    /// Only attachments: a mail without one goes to Error.
    #[default]
    Never,
    /// The body is the document when no attachment passes the rules.
    WhenNoAttachment,
    /// The body beside the attachments, always.
    Always,
}

impl ImportBody {
    pub const ALL: [Self; 3] = [Self::Never, Self::WhenNoAttachment, Self::Always];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::WhenNoAttachment => "when_no_attachment",
            Self::Always => "always",
        }
    }
}

/// When a mail is given up on instead of being fetched again every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportLimits {
    /// A larger mail goes to Error (`too_large`), decided from the size the
    /// mailbox reports before downloading it.
    pub max_mail_bytes: u64,
    /// A mail whose import failed transiently in this many runs goes to
    /// Error (`retries_exhausted`) with the last error.
    pub max_attempts: u32,
}

/// Graph refuses messages above 150 MB, so a larger one cannot be a mail
/// Exchange delivered whole.
pub const DEFAULT_MAX_MAIL_BYTES: u64 = 150 * 1024 * 1024;
/// Twelve runs: an hour of five-minute runs, long enough for an outage.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 12;
const MAX_MAX_ATTEMPTS: u32 = 1000;
const MIN_MAX_MAIL_BYTES: u64 = 1024;

impl Default for ImportLimits {
    fn default() -> Self {
        Self {
            max_mail_bytes: DEFAULT_MAX_MAIL_BYTES,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

impl ImporterSettings {
    pub fn graph(&self) -> Option<&GraphSettings> {
        match &self.connection {
            Connection::Graph(g) => Some(g),
            Connection::Imap(_) => None,
        }
    }

    /// What the admin should know about these settings: a client secret
    /// about to expire, a password sent in clear.
    pub fn warnings(&self, now: Timestamp) -> Vec<String> {
        let mut warnings: Vec<String> = self
            .entra_app()
            .and_then(|app| match &app.certificate {
                Some(c) => c.expiry_warning(now),
                None => app.secret_expiry_warning(now),
            })
            .into_iter()
            .collect();
        if let Connection::Imap(i) = &self.connection
            && i.security == ImapSecurity::None
        {
            let what = match i.auth {
                ImapLogin::Password => "the password",
                ImapLogin::Xoauth2(_) => "the access token",
            };
            warnings.push(format!(
                "security is `none`: {what} to {} crosses the network in clear; use `tls` (port 993) or `starttls` if the server offers it",
                i.host
            ));
        }
        warnings
    }

    /// Where the importer's secret is sent: the client secret only ever goes
    /// to the authority's token endpoint (another tenant there is still
    /// Microsoft), the password to the IMAP server.
    fn secret_destination(&self) -> String {
        match (self.entra_app(), &self.connection) {
            (Some(app), _) => app.endpoints.authority.clone(),
            (None, Connection::Imap(i)) => format!("{}:{}", i.host, i.port),
            (None, Connection::Graph(_)) => String::new(),
        }
    }

    /// What identifies the mailbox the importer reads, so two importers of
    /// one mailbox never run at once: the server and the mailbox (for a
    /// delegated importer of the user's own mailbox, the signed-in
    /// `account`). `None` when it cannot be known yet (no account).
    pub fn mailbox_key(&self, account: Option<&str>) -> Option<String> {
        let key = match &self.connection {
            Connection::Graph(g) => {
                let who = g.mailbox.as_deref().or(account)?;
                format!(
                    "graph:{}/{}:{who}",
                    g.app.endpoints.graph.trim_end_matches('/'),
                    g.app.tenant_id.as_str()
                )
            }
            Connection::Imap(i) => format!("imap:{}:{}:{}", i.host, i.port, i.username),
        };
        Some(key.to_lowercase())
    }

    /// The Entra app the importer signs in with, if it uses one.
    pub fn entra_app(&self) -> Option<&EntraApp> {
        match &self.connection {
            Connection::Graph(g) => Some(&g.app),
            Connection::Imap(ImapSettings {
                auth: ImapLogin::Xoauth2(app),
                ..
            }) => Some(app),
            Connection::Imap(_) => None,
        }
    }

    /// What a user signing in for this importer grants; `None` when nobody
    /// signs in (app-only, IMAP with a password).
    pub fn delegated_access(&self) -> Option<DelegatedAccess> {
        match (&self.connection, self.protocol) {
            (Connection::Graph(g), Protocol::GraphDelegated) => Some(DelegatedAccess::Graph {
                shared_mailbox: g.mailbox.is_some(),
            }),
            (Connection::Graph(_), _) => None,
            (Connection::Imap(i), _) => {
                matches!(i.auth, ImapLogin::Xoauth2(_)).then_some(DelegatedAccess::Imap)
            }
        }
    }

    /// The mailbox as a document's `source.mailbox` names it: the address,
    /// or `me` for the authorizing user's own mailbox.
    pub fn source_mailbox(&self) -> String {
        match &self.connection {
            Connection::Graph(g) => g.mailbox.clone().unwrap_or_else(|| "me".to_owned()),
            Connection::Imap(i) => i.username.clone(),
        }
    }

    pub fn imap(&self) -> Option<&ImapSettings> {
        match &self.connection {
            Connection::Imap(i) => Some(i),
            Connection::Graph(_) => None,
        }
    }

    /// The secret an importer needs: the Entra app's client secret (Graph,
    /// IMAP with XOAUTH2) or the IMAP password.
    pub fn secret_kind(&self) -> SecretKind {
        match self.entra_app() {
            Some(EntraApp {
                certificate: Some(_),
                ..
            }) => SecretKind::ClientCertificate,
            Some(_) => SecretKind::ClientSecret,
            None => SecretKind::Password,
        }
    }

    /// Whether a grant obtained under `self` is still valid under `next`.
    /// Only what identifies the application, the tenant or the cloud makes
    /// Microsoft's tokens unusable; a new mailbox or folder does not, so
    /// saving such a change keeps the user authorized.
    pub fn grant_survives_change_to(&self, next: &Self, secret_changed: bool) -> bool {
        if secret_changed || self.protocol != next.protocol {
            return false;
        }
        // IMAP's access token goes to the IMAP server: a grant kept across
        // a change of server would send the user's Exchange token to
        // whatever server an editor of the importer named.
        if let (Some(a), Some(b)) = (self.imap(), next.imap())
            && (&a.host, a.port) != (&b.host, b.port)
        {
            return false;
        }
        match (self.entra_app(), next.entra_app()) {
            (Some(a), Some(b)) => {
                a.client_id == b.client_id
                    && a.tenant_id == b.tenant_id
                    && a.cloud == b.cloud
                    && a.endpoints.authority == b.endpoints.authority
                    && (self.graph().is_none() || a.endpoints == b.endpoints)
            }
            (None, None) => true,
            _ => false,
        }
    }
}

impl EntraApp {
    /// A warning while the client secret the admin said expires on a date
    /// is within 30 days of expiring (or expired): Azure secrets lapse
    /// silently, and the importer then stops with AADSTS7000222.
    pub fn secret_expiry_warning(&self, now: Timestamp) -> Option<String> {
        let expires_at = self.client_secret_expires_at?;
        let remaining = expires_at.duration_since(now);
        let date = expires_at.strftime("%Y-%m-%d %H:%M UTC");
        if remaining <= jiff::SignedDuration::ZERO {
            Some(format!(
                "the client secret expired on {date}: create a new secret in the Azure app registration (Certificates & secrets) and enter it here"
            ))
        } else if remaining < jiff::SignedDuration::from_hours(24 * 30) {
            let days = remaining.as_secs() / 86_400;
            Some(format!(
                "the client secret expires on {date} (in {days} days): create a new secret in the Azure app registration and enter it here before then"
            ))
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    ClientSecret,
    Password,
    /// The private key of the app's certificate.
    #[serde(rename = "client_private_key_pem")]
    ClientCertificate,
}

impl SecretKind {
    pub fn field(self) -> &'static str {
        match self {
            Self::ClientSecret => "client_secret",
            Self::Password => "password",
            Self::ClientCertificate => "client_private_key_pem",
        }
    }
}

/// What an admin submits to create or replace an importer (the contract's
/// importer body). Every field is optional here so that validation can name
/// each missing one instead of failing on the first.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImporterInput {
    // Optional in Rust so that validation can name every missing field at
    // once; required in the API's contract.
    #[schema(required = true)]
    pub name: Option<String>,
    #[schema(value_type = Option<Protocol>, required = true)]
    pub protocol: Option<String>,
    pub client_id: Option<String>,
    /// Write-only; omit on update to keep the stored one.
    pub client_secret: Option<String>,
    /// When the client secret expires in Azure (RFC 3339, or a date meaning 00:00 UTC).
    pub client_secret_expires_at: Option<String>,
    /// Instead of `client_secret`: the app's certificate (PEM) …
    pub client_certificate_pem: Option<String>,
    /// … and its private key (PEM, PKCS#8 or PKCS#1 RSA). Write-only.
    pub client_private_key_pem: Option<String>,
    pub tenant_id: Option<String>,
    pub mailbox: Option<String>,
    #[schema(required = true)]
    pub folders: Option<FoldersInput>,
    #[schema(value_type = Option<Cloud>)]
    pub cloud: Option<String>,
    pub endpoints: Option<EndpointsInput>,
    pub attachments: Option<AttachmentRulesInput>,
    /// Sender allow-list and subject block-list; absent allows every mail.
    pub rules: Option<ImportRulesInput>,
    /// Where documents go: `{"kind": "spool"}` (default) or
    /// `{"kind": "webhook", "url": …, "timeout_secs": 30, "attempts": 3}`.
    pub sink: Option<SinkInput>,
    /// Mails larger than this many bytes go to Error (`too_large`) without
    /// being downloaded; default 150 MB (Graph's own ceiling).
    #[schema(minimum = 1024)]
    pub max_mail_bytes: Option<u64>,
    /// Runs in which a mail may fail transiently before it goes to Error
    /// (`retries_exhausted`); default 12.
    #[schema(minimum = 1, maximum = 1000)]
    pub max_attempts: Option<u32>,
    /// Whether the mail's body becomes part of the document (`body.txt`,
    /// `body.html`): `never` (default), `when_no_attachment` or `always`.
    #[schema(value_type = Option<ImportBody>)]
    pub import_body: Option<String>,
    /// Sender patterns with the password their encrypted ZIPs open with
    /// (passwords write-only), tried in order.
    pub zip_passwords: Option<Vec<ZipPasswordInput>>,
    /// Keep a ZIP attachment beside the files taken from it (default true).
    pub zip_keep_archive: Option<bool>,
    pub smime: Option<SmimeInput>,
    pub host: Option<String>,
    pub port: Option<u32>,
    #[schema(value_type = Option<ImapSecurity>)]
    pub security: Option<String>,
    pub username: Option<String>,
    /// Write-only; omit on update to keep the stored one.
    pub password: Option<String>,
    #[schema(value_type = Option<ImapAuth>)]
    pub auth: Option<String>,
    /// IMAP only: trust exactly this CA or self-signed certificate (PEM)
    /// instead of the platform's roots; never "accept any certificate".
    pub tls_ca_pem: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FoldersInput {
    #[schema(required = true)]
    pub inbox: Option<String>,
    #[schema(required = true)]
    pub exported: Option<String>,
    #[schema(required = true)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointsInput {
    pub authority: Option<String>,
    pub graph: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRulesInput {
    pub allowed_types: Option<Vec<String>>,
    pub allowed_extensions: Option<Vec<String>>,
    pub include_inline: Option<bool>,
    pub min_size: Option<u64>,
    /// File-name patterns (`*` wildcards, case-insensitive) to skip, e.g. `*agb*.pdf`.
    pub exclude_names: Option<Vec<String>>,
    /// File-name patterns; when given, only matching attachments are imported.
    pub include_names: Option<Vec<String>>,
}

/// What the submitted document says about the importer's secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretChange {
    Keep,
    Set(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidImporter {
    pub settings: ImporterSettings,
    /// Which secret the settings need, and whether the input replaces it.
    pub secret: Option<(SecretKind, SecretChange)>,
    /// The sink's own credential (a webhook's token).
    pub sink_secret: crate::sink::SinkSecretChange,
    /// ZIP passwords and the S/MIME key.
    pub content_keys: ContentKeysChange,
}

const MAX_NAME_CHARS: usize = 200;

impl ValidImporter {
    /// A stored secret kept (omitted on update) only goes where it went
    /// before: when the server it is sent to changes (the IMAP host or port,
    /// Microsoft's authority or tenant, the webhook's origin), it must be
    /// entered again, or anyone allowed to edit the importer could have it
    /// sent to a server of theirs.
    pub fn check_kept_secrets(
        &self,
        before: Option<&ImporterSettings>,
        sink_secret_stored: bool,
    ) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let stored_senders = before
            .map(|b| b.zip.password_senders.as_slice())
            .unwrap_or_default();
        for (i, (sender, password)) in self.content_keys.zip_passwords.iter().enumerate() {
            if password.is_none() && !stored_senders.contains(sender) {
                errors.add(
                    format!("zip_passwords[{i}].password"),
                    format!("is required: no password is stored for `{sender}` yet (it is write-only: omit it only to keep a stored one)"),
                );
            }
        }
        let Some(before) = before else {
            if self.sink_secret == crate::sink::SinkSecretChange::Keep
                && self.settings.sink.secret_field() == Some("sink.secret_access_key")
            {
                errors.add("sink.secret_access_key", MISSING_S3_SECRET);
            }
            return errors.into_result(());
        };
        let certificate = |s: &ImporterSettings| s.entra_app().and_then(|a| a.certificate.clone());
        if let Some((SecretKind::ClientCertificate, SecretChange::Keep)) = &self.secret
            && certificate(before).map(|c| c.pem) != certificate(&self.settings).map(|c| c.pem)
        {
            errors.add(
                "client_private_key_pem",
                "is required again: the certificate changed, and the stored key belongs to the old one",
            );
        }
        if let Some((kind, SecretChange::Keep)) = &self.secret {
            let moved = before.secret_destination() != self.settings.secret_destination();
            if moved {
                errors.add(
                    kind.field(),
                    "is required again: the server it is sent to changed, and a stored secret only goes to the server it was entered for",
                );
            }
        }
        if self.sink_secret == crate::sink::SinkSecretChange::Keep
            && let Some(field) = self.settings.sink.secret_field()
        {
            if sink_secret_stored
                && before.sink.secret_destination() != self.settings.sink.secret_destination()
            {
                errors.add(
                    field,
                    "is required again: the sink's server or key changed, and a stored secret only goes where it was entered for",
                );
            } else if !sink_secret_stored && field == "sink.secret_access_key" {
                errors.add(field, MISSING_S3_SECRET);
            }
        }
        errors.into_result(())
    }
}

const MISSING_S3_SECRET: &str =
    "is required: the secret of sink.access_key_id (write-only: omit it only to keep a stored one)";

impl ImporterInput {
    /// Parses the input into valid settings, collecting every problem.
    /// `stored_secret` is the kind of secret already sealed for this
    /// importer (on update), which lets the admin omit it.
    pub fn validate(
        &self,
        stored_secret: Option<SecretKind>,
    ) -> Result<ValidImporter, ValidationErrors> {
        let mut errors = ValidationErrors::default();

        let name = match self.name.as_deref().map(str::trim) {
            None | Some("") => {
                errors.add("name", "is required: a label such as `Invoices`");
                None
            }
            Some(n) if n.chars().count() > MAX_NAME_CHARS => {
                errors.add(
                    "name",
                    format!("may have at most {MAX_NAME_CHARS} characters"),
                );
                None
            }
            Some(n) => Some(n.to_owned()),
        };

        let protocol = match self.protocol.as_deref() {
            None => {
                errors.add("protocol", one_of_message("is required", &protocol_names()));
                None
            }
            Some(raw) => Protocol::parse(raw).or_else(|| {
                errors.add(
                    "protocol",
                    one_of_message(&format!("`{raw}` is not a protocol"), &protocol_names()),
                );
                None
            }),
        };

        // Errors come in the order of the contract's document: connection, then folders.
        let connection = protocol.and_then(|p| match p {
            Protocol::Imap => self.parse_imap(&mut errors).map(Connection::Imap),
            _ => self.parse_graph(p, &mut errors).map(Connection::Graph),
        });
        if let Some(p) = protocol {
            self.reject_fields_of_other_protocols(p, &mut errors);
        }
        let folders = self.parse_folders(&mut errors);
        let attachments = self.parse_attachments(&mut errors);
        let rules = self.rules.clone().unwrap_or_default().parse(&mut errors);
        let sink = self.sink.clone().unwrap_or_default().parse(&mut errors);
        let limits = self.parse_limits(&mut errors);
        let import_body = match self.import_body.as_deref() {
            None => Some(ImportBody::Never),
            Some(raw) => ImportBody::ALL
                .into_iter()
                .find(|b| b.as_str() == raw)
                .or_else(|| {
                    let names: Vec<&str> = ImportBody::ALL.iter().map(|b| b.as_str()).collect();
                    errors.add(
                        "import_body",
                        one_of_message(&format!("`{raw}` is not a body choice"), &names),
                    );
                    None
                }),
        };

        let (password_senders, zip_passwords) =
            parse_zip_passwords(self.zip_passwords.as_ref(), &mut errors);
        let smime = parse_smime(self.smime.as_ref(), &mut errors);

        let (
            Some(name),
            Some(protocol),
            Some(connection),
            Some(folders),
            Some(attachments),
            Some(rules),
            Some(sink),
            Some(limits),
            Some(import_body),
            Some((smime, smime_key)),
        ) = (
            name,
            protocol,
            connection,
            folders,
            attachments,
            rules,
            sink,
            limits,
            import_body,
            smime,
        )
        else {
            return Err(errors);
        };
        let settings = ImporterSettings {
            name,
            protocol,
            connection,
            folders,
            attachments,
            rules,
            sink,
            limits,
            import_body,
            zip: ZipSettings {
                password_senders,
                keep_archive: self.zip_keep_archive.unwrap_or(true),
            },
            smime,
        };
        let secret = Some(settings.secret_kind()).and_then(|kind| {
            let submitted = match kind {
                SecretKind::ClientSecret => self.client_secret.as_deref(),
                SecretKind::Password => self.password.as_deref(),
                SecretKind::ClientCertificate => self.client_private_key_pem.as_deref(),
            };
            match submitted {
                Some(s) if !s.is_empty() => Some((kind, SecretChange::Set(s.to_owned()))),
                _ if stored_secret == Some(kind) => Some((kind, SecretChange::Keep)),
                _ => {
                    errors.add(
                        kind.field(),
                        "is required (it is write-only: it is never shown again once saved)",
                    );
                    None
                }
            }
        });
        let sink_secret = self.sink.clone().unwrap_or_default().secret_change();
        errors.into_result(ValidImporter {
            settings,
            secret,
            sink_secret,
            content_keys: ContentKeysChange {
                zip_passwords,
                smime_key,
            },
        })
    }

    fn parse_folders(&self, errors: &mut ValidationErrors) -> Option<Folders> {
        let input = self.folders.clone().unwrap_or_default();
        let mut parse = |field: &str, raw: Option<&str>| match raw {
            None => {
                errors.add(format!("folders.{field}"), "is required");
                None
            }
            Some(raw) => FolderSpec::parse(raw)
                .map_err(|m| errors.add(format!("folders.{field}"), m))
                .ok(),
        };
        let inbox = parse("inbox", input.inbox.as_deref());
        let exported = parse("exported", input.exported.as_deref());
        let error = parse("error", input.error.as_deref());
        let (inbox, exported, error) = (inbox?, exported?, error?);
        let mut distinct = true;
        for (field, a, other_name, b) in [
            ("exported", &exported, "inbox", &inbox),
            ("error", &error, "inbox", &inbox),
            ("error", &error, "exported", &exported),
        ] {
            if a.same_as(b) {
                distinct = false;
                errors.add(
                    format!("folders.{field}"),
                    format!("must differ from folders.{other_name} (both are `{a}`): a mail would be moved into the folder it came from"),
                );
            }
        }
        distinct.then_some(Folders {
            inbox,
            exported,
            error,
        })
    }

    fn parse_limits(&self, errors: &mut ValidationErrors) -> Option<ImportLimits> {
        let mut limits = ImportLimits::default();
        let mut ok = true;
        match self.max_mail_bytes {
            Some(n) if n < MIN_MAX_MAIL_BYTES => {
                ok = false;
                errors.add(
                    "max_mail_bytes",
                    format!("must be at least {MIN_MAX_MAIL_BYTES} bytes; omit it for the default of {DEFAULT_MAX_MAIL_BYTES} (150 MB)"),
                );
            }
            Some(n) => limits.max_mail_bytes = n,
            None => {}
        }
        match self.max_attempts {
            Some(n) if !(1..=MAX_MAX_ATTEMPTS).contains(&n) => {
                ok = false;
                errors.add(
                    "max_attempts",
                    format!("must be between 1 and {MAX_MAX_ATTEMPTS} runs; omit it for the default of {DEFAULT_MAX_ATTEMPTS}"),
                );
            }
            Some(n) => limits.max_attempts = n,
            None => {}
        }
        ok.then_some(limits)
    }

    fn parse_attachments(&self, errors: &mut ValidationErrors) -> Option<AttachmentRules> {
        let input = self.attachments.clone().unwrap_or_default();
        let before = errors.errors.len();
        let mut allowed_types = Vec::new();
        for (i, raw) in input.allowed_types.unwrap_or_default().iter().enumerate() {
            let t = raw.trim().to_ascii_lowercase();
            if is_media_range(&t) {
                allowed_types.push(t);
            } else {
                errors.add(
                    format!("attachments.allowed_types[{i}]"),
                    format!("`{raw}` is not a MIME type: write `type/subtype` or `type/*`, e.g. `application/pdf` or `image/*`"),
                );
            }
        }
        let mut allowed_extensions = Vec::new();
        for (i, raw) in input
            .allowed_extensions
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let e = raw.trim().trim_start_matches('.').to_ascii_lowercase();
            if !e.is_empty() && e.len() <= 16 && e.chars().all(|c| c.is_ascii_alphanumeric()) {
                allowed_extensions.push(e);
            } else {
                errors.add(
                    format!("attachments.allowed_extensions[{i}]"),
                    format!("`{raw}` is not a file extension: letters and digits only, e.g. `pdf`"),
                );
            }
        }
        let names = |field: &str, raw: Option<&Vec<String>>, errors: &mut ValidationErrors| {
            parse_patterns(&format!("attachments.{field}"), raw, Pattern::Text, errors)
        };
        let exclude_names = names("exclude_names", input.exclude_names.as_ref(), errors);
        let include_names = names("include_names", input.include_names.as_ref(), errors);
        (errors.errors.len() == before).then_some(AttachmentRules {
            allowed_types,
            allowed_extensions,
            include_inline: input.include_inline.unwrap_or(false),
            min_size: input.min_size.unwrap_or(0),
            exclude_names,
            include_names,
        })
    }

    fn parse_graph(
        &self,
        protocol: Protocol,
        errors: &mut ValidationErrors,
    ) -> Option<GraphSettings> {
        let app = self.parse_entra_app(protocol, errors);
        let mailbox = match self.mailbox.as_deref().map(str::trim) {
            None | Some("") if protocol == Protocol::GraphClientCredentials => {
                errors.add("mailbox", "is required with graph_client_credentials: an app-only token has no mailbox of its own; name the address to import from");
                None
            }
            None | Some("") => Some(None),
            Some(m) if is_mailbox_address(m) || is_guid(m) => Some(Some(m.to_owned())),
            Some(m) => {
                errors.add(
                    "mailbox",
                    format!("`{m}` is not an e-mail address (or a user id GUID)"),
                );
                None
            }
        };
        Some(GraphSettings {
            app: app?,
            mailbox: mailbox?,
        })
    }

    /// The app registration's fields, shared by Graph and IMAP's XOAUTH2.
    fn parse_entra_app(
        &self,
        protocol: Protocol,
        errors: &mut ValidationErrors,
    ) -> Option<EntraApp> {
        let client_id = match self.client_id.as_deref().map(str::trim) {
            None | Some("") => {
                errors.add(
                    "client_id",
                    "is required: the Application (client) ID from the app registration in Azure",
                );
                None
            }
            Some(id) if is_guid(id) => Some(id.to_ascii_lowercase()),
            Some(id) => {
                errors.add("client_id", format!("`{id}` is not an Application (client) ID: Azure shows it as a GUID like 00000000-0000-0000-0000-000000000000 on the app's Overview page"));
                None
            }
        };
        let tenant_id = match self.tenant_id.as_deref().map(str::trim) {
            None | Some("") => {
                errors.add("tenant_id", "is required: the Directory (tenant) ID, a GUID, or a domain such as contoso.onmicrosoft.com");
                None
            }
            Some(t) => parse_tenant(t, protocol)
                .map_err(|m| errors.add("tenant_id", m))
                .ok(),
        };
        let cloud = match self.cloud.as_deref() {
            None => Some(Cloud::Global),
            Some(raw) => Cloud::parse(raw).or_else(|| {
                let names: Vec<&str> = Cloud::ALL.iter().map(|c| c.as_str()).collect();
                errors.add(
                    "cloud",
                    one_of_message(&format!("`{raw}` is not a cloud"), &names),
                );
                None
            }),
        };
        let endpoints = cloud.and_then(|cloud| {
            let defaults = cloud.default_endpoints();
            let input = self.endpoints.clone().unwrap_or_default();
            let authority = parse_base_url(
                "endpoints.authority",
                input.authority,
                defaults.authority,
                errors,
            );
            let graph = parse_base_url("endpoints.graph", input.graph, defaults.graph, errors);
            Some(Endpoints {
                authority: authority?,
                graph: graph?,
            })
        });
        let client_secret_expires_at = match self.client_secret_expires_at.as_deref().map(str::trim)
        {
            None | Some("") => Some(None),
            Some(raw) => parse_instant(raw)
                .map(Some)
                .map_err(|m| errors.add("client_secret_expires_at", m))
                .ok(),
        };
        let certificate = match self.client_certificate_pem.as_deref().map(str::trim) {
            None | Some("") => Some(None),
            Some(_) if self.client_secret.is_some() => {
                errors.add(
                    "client_secret",
                    "does not go with client_certificate_pem: the app signs in with either a secret or a certificate; remove one",
                );
                None
            }
            Some(pem) => ClientCertificate::parse(pem)
                .map(|p| Some(Box::new(p.certificate)))
                .map_err(|m| errors.add("client_certificate_pem", m))
                .ok(),
        };
        if self.client_private_key_pem.is_some() && self.client_certificate_pem.is_none() {
            errors.add(
                "client_certificate_pem",
                "is required with client_private_key_pem: the certificate uploaded to the app registration, as PEM",
            );
        }
        Some(EntraApp {
            client_id: client_id?,
            tenant_id: tenant_id?,
            cloud: cloud?,
            endpoints: endpoints?,
            client_secret_expires_at: client_secret_expires_at?,
            certificate: certificate?,
        })
    }

    fn parse_imap(&self, errors: &mut ValidationErrors) -> Option<ImapSettings> {
        let host = match self.host.as_deref().map(str::trim) {
            None | Some("") => {
                errors.add(
                    "host",
                    "is required: the IMAP server's name, e.g. imap.example.com",
                );
                None
            }
            Some(h)
                if h.chars().any(|c| c.is_whitespace() || c == '/' || c == ':')
                    && !h.starts_with('[') =>
            {
                errors.add(
                    "host",
                    format!(
                        "`{h}` is not a host name: give the name alone, without scheme or port"
                    ),
                );
                None
            }
            Some(h) => Some(h.to_owned()),
        };
        let security = match self.security.as_deref() {
            None | Some("tls") => Some(ImapSecurity::Tls),
            Some("starttls") => Some(ImapSecurity::Starttls),
            Some("none") => Some(ImapSecurity::None),
            Some(other) => {
                errors.add(
                    "security",
                    one_of_message(
                        &format!("`{other}` is not a security mode"),
                        &["tls", "starttls", "none"],
                    ),
                );
                None
            }
        };
        let port = match self.port {
            None => security.map(|s| if s == ImapSecurity::Tls { 993 } else { 143 }),
            Some(p) => match u16::try_from(p) {
                Ok(p) if p > 0 => Some(p),
                _ => {
                    errors.add("port", format!("{p} is not a TCP port: use 1–65535 (IMAP usually 993 with tls, 143 otherwise)"));
                    None
                }
            },
        };
        let username = match self.username.as_deref() {
            None | Some("") => {
                errors.add("username", "is required: the login name of the mailbox");
                None
            }
            Some(u) => Some(u.to_owned()),
        };
        let auth = match self.auth.as_deref() {
            None | Some("password") => Some(ImapLogin::Password),
            Some("xoauth2") => self
                .parse_entra_app(Protocol::Imap, errors)
                .map(ImapLogin::Xoauth2),
            Some(other) => {
                errors.add(
                    "auth",
                    one_of_message(
                        &format!("`{other}` is not an IMAP authentication"),
                        &["password", "xoauth2"],
                    ),
                );
                None
            }
        };
        let tls_ca_pem = match self.tls_ca_pem.as_deref().map(str::trim) {
            None | Some("") => Some(None),
            Some(pem)
                if pem.contains("-----BEGIN CERTIFICATE-----")
                    && pem.contains("-----END CERTIFICATE-----") =>
            {
                Some(Some(pem.to_owned()))
            }
            Some(_) => {
                errors.add(
                    "tls_ca_pem",
                    "is not a PEM certificate: paste the CA (or the server's self-signed certificate) from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----",
                );
                None
            }
        };
        Some(ImapSettings {
            host: host?,
            port: port?,
            security: security?,
            username: username?,
            auth: auth?,
            tls_ca_pem: tls_ca_pem?,
        })
    }

    /// A field of another protocol is most likely a mistake (a protocol
    /// switched in the form but not the fields); saying so beats silently
    /// dropping what the admin typed.
    fn reject_fields_of_other_protocols(&self, protocol: Protocol, errors: &mut ValidationErrors) {
        let graph_fields = [
            ("client_id", self.client_id.is_some()),
            ("client_secret", self.client_secret.is_some()),
            (
                "client_certificate_pem",
                self.client_certificate_pem.is_some(),
            ),
            (
                "client_private_key_pem",
                self.client_private_key_pem.is_some(),
            ),
            ("tenant_id", self.tenant_id.is_some()),
            ("cloud", self.cloud.is_some()),
            ("endpoints", self.endpoints.is_some()),
            (
                "client_secret_expires_at",
                self.client_secret_expires_at.is_some(),
            ),
        ];
        let imap_fields = [
            ("host", self.host.is_some()),
            ("port", self.port.is_some()),
            ("security", self.security.is_some()),
            ("username", self.username.is_some()),
            ("password", self.password.is_some()),
            ("auth", self.auth.is_some()),
            ("tls_ca_pem", self.tls_ca_pem.is_some()),
        ];
        let password_field = [("password", self.password.is_some())];
        let xoauth2 = protocol == Protocol::Imap && self.auth.as_deref() == Some("xoauth2");
        let (foreign, context): (&[(&str, bool)], &str) = if protocol.is_graph() {
            (&imap_fields, "")
        } else if xoauth2 {
            // The app's fields sign in at Microsoft; no password is involved.
            (&password_field, " with auth `xoauth2`")
        } else {
            (
                &graph_fields,
                " with auth `password` (the app's fields are for auth `xoauth2`)",
            )
        };
        for (field, present) in foreign {
            if *present {
                errors.add(
                    *field,
                    format!(
                        "does not apply to protocol `{}`{context}: remove it",
                        protocol.as_str()
                    ),
                );
            }
        }
        if protocol == Protocol::Imap && self.mailbox.is_some() {
            errors.add(
                "mailbox",
                "does not apply to protocol `imap`: the username names the mailbox",
            );
        }
    }
}

fn protocol_names() -> Vec<&'static str> {
    Protocol::ALL.iter().map(|p| p.as_str()).collect()
}

fn one_of_message(lead: &str, options: &[&str]) -> String {
    let options: Vec<String> = options.iter().map(|o| format!("`{o}`")).collect();
    format!("{lead}: use one of {}", options.join(", "))
}

fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_domain(s: &str) -> bool {
    s.contains('.')
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn is_mailbox_address(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !local.contains(char::is_whitespace)
                && !domain.contains('@')
                && is_domain(domain)
        }
        None => false,
    }
}

fn is_media_range(s: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
    };
    match s.split_once('/') {
        Some(("*", "*")) => true,
        Some((ty, "*")) => token(ty),
        Some((ty, sub)) => token(ty) && token(sub),
        None => false,
    }
}

fn parse_tenant(raw: &str, protocol: Protocol) -> Result<TenantId, String> {
    let lower = raw.to_ascii_lowercase();
    let tenant = TenantId(lower.clone());
    if tenant.is_multi_tenant_alias() {
        return if protocol == Protocol::GraphClientCredentials {
            Err(format!(
                "`{raw}` cannot be used with graph_client_credentials: an app-only token needs the tenant's own ID (GUID) or domain"
            ))
        } else {
            Ok(tenant)
        };
    }
    if is_guid(&lower) || is_domain(&lower) {
        Ok(tenant)
    } else {
        Err(format!(
            "`{raw}` is not a tenant: use the Directory (tenant) ID (a GUID from the app's Overview page in Azure) or a domain such as contoso.onmicrosoft.com"
        ))
    }
}

fn parse_base_url(
    field: &str,
    raw: Option<String>,
    default: String,
    errors: &mut ValidationErrors,
) -> Option<String> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Some(default);
    };
    let trimmed = raw.trim().trim_end_matches('/');
    match url::Url::parse(trimmed) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.query().is_none()
                && u.fragment().is_none() =>
        {
            Some(trimmed.to_owned())
        }
        _ => {
            errors.add(field, format!("`{raw}` is not a base URL: give scheme and host, e.g. https://login.microsoftonline.com, without query or fragment"));
            None
        }
    }
}

/// Parses an instant an admin typed: RFC 3339 with an offset (kept exact,
/// stored in UTC) or a bare date, taken as 00:00 UTC so the result does not
/// depend on the server's time zone.
pub fn parse_instant(raw: &str) -> Result<Timestamp, String> {
    if let Ok(ts) = raw.parse::<Timestamp>() {
        return Ok(ts);
    }
    raw.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| format!("`{raw}` is not a date or an instant: write 2026-05-31 or 2026-05-31T00:00:00Z (an offset such as +02:00 is fine)"))
}

#[cfg(test)]
mod tests;
