//! The Microsoft identity platform v2.0: the authorize URL (state + PKCE
//! S256), the authorization-code exchange, refresh, and client credentials,
//! for any cloud and any authority base URL (the emulator, a proxy).
//!
//! Built on the `oauth2` crate over our own reqwest 0.13 transport
//! ([`http`]). Nothing here reads a clock: callers pass "now", so the
//! expiry arithmetic is pure UTC and testable.

pub mod account;
pub mod assertion;
pub mod error;
pub mod http;
pub mod token;

use std::borrow::Cow;

use domain::importer::{DelegatedAccess, EntraApp};
use jiff::Timestamp;
use oauth2::basic::{BasicRevocationErrorResponse, BasicTokenIntrospectionResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope,
    StandardRevocableToken, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};

pub use error::{Diagnosis, FixContext, IdentityError, MicrosoftError};
pub use http::{HttpClient, HttpFailure};
pub use token::{TokenSet, short_scope};

type OAuthClient = oauth2::Client<
    MicrosoftError,
    token::MicrosoftTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The delegated permissions mailferry asks for, as short names.
/// `Mail.ReadWrite.Shared` only when the importer reads another mailbox;
/// IMAP needs Exchange Online's one permission, and no Graph at all.
pub fn delegated_permissions(access: DelegatedAccess) -> Vec<String> {
    match access {
        DelegatedAccess::Graph { shared_mailbox } => {
            let mut p = vec!["User.Read".to_owned(), "Mail.ReadWrite".to_owned()];
            if shared_mailbox {
                p.push("Mail.ReadWrite.Shared".to_owned());
            }
            p
        }
        DelegatedAccess::Imap => vec!["IMAP.AccessAsUser.All".to_owned()],
    }
}

/// Where to send the user, and what to keep (sealed) until they come back.
#[derive(Debug)]
pub struct AuthorizeRequest {
    pub url: String,
    /// The random `state`; store only its hash.
    pub state: SecretString,
    pub pkce_verifier: SecretString,
}

/// How the app proves itself at the token endpoint.
#[derive(Debug, Clone)]
enum ClientCredential {
    /// A public client, or a confidential one whose secret is not at hand.
    None,
    Secret(SecretString),
    Certificate(std::sync::Arc<assertion::AssertionSigner>),
    /// The stored key does not fit the certificate: every token request
    /// fails with this, naming the fix.
    Unusable(String),
}

/// One importer's view of the identity platform.
#[derive(Debug, Clone)]
pub struct IdentityClient {
    http: HttpClient,
    client_id: String,
    credential: ClientCredential,
    tenant: String,
    authority: String,
    graph_resource: String,
    outlook_resource: &'static str,
}

impl IdentityClient {
    /// `secret` is the client secret, or the certificate's private key
    /// (PEM) when the app has a certificate.
    pub fn new(http: HttpClient, app: &EntraApp, secret: Option<SecretString>) -> Self {
        let credential = match (secret, &app.certificate) {
            (None, _) => ClientCredential::None,
            (Some(s), None) => ClientCredential::Secret(s),
            (Some(key), Some(cert)) => {
                match assertion::AssertionSigner::new(cert, key.expose_secret()) {
                    Ok(signer) => ClientCredential::Certificate(std::sync::Arc::new(signer)),
                    Err(m) => ClientCredential::Unusable(format!(
                        "the stored client_private_key_pem {m}: enter the certificate's key again"
                    )),
                }
            }
        };
        Self {
            http,
            client_id: app.client_id.clone(),
            credential,
            tenant: app.tenant_id.as_str().to_owned(),
            authority: app.endpoints.authority.trim_end_matches('/').to_owned(),
            graph_resource: app.cloud.graph_resource(),
            outlook_resource: app.cloud.outlook_resource(),
        }
    }

    /// Whether the app proves itself with a certificate (client assertions).
    pub fn uses_certificate(&self) -> bool {
        matches!(
            self.credential,
            ClientCredential::Certificate(_) | ClientCredential::Unusable(_)
        )
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn graph_resource(&self) -> &str {
        &self.graph_resource
    }

    fn endpoint(&self, leaf: &str) -> String {
        format!("{}/{}/oauth2/v2.0/{leaf}", self.authority, self.tenant)
    }

    fn oauth(&self) -> Result<OAuthClient, IdentityError> {
        let auth = AuthUrl::new(self.endpoint("authorize"))
            .map_err(|e| IdentityError::Config(format!("authority: {e}")))?;
        let token = TokenUrl::new(self.endpoint("token"))
            .map_err(|e| IdentityError::Config(format!("authority: {e}")))?;
        let mut client = oauth2::Client::new(ClientId::new(self.client_id.clone()))
            .set_auth_uri(auth)
            .set_token_uri(token)
            // Microsoft documents the secret in the body; Basic works too,
            // but the body form is what every Entra sample uses.
            .set_auth_type(AuthType::RequestBody);
        if let ClientCredential::Secret(secret) = &self.credential {
            client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
        }
        Ok(client)
    }

    /// The `client_assertion` form fields a certificate credential adds to
    /// a token request (none for a secret, which `oauth()` sets).
    fn assertion_params(
        &self,
        now: Timestamp,
    ) -> Result<Vec<(&'static str, String)>, IdentityError> {
        match &self.credential {
            ClientCredential::Certificate(signer) => {
                let jwt = signer
                    .assertion(&self.client_id, &self.endpoint("token"), now)
                    .map_err(|_| {
                        IdentityError::Config(
                            "the client assertion could not be signed with client_private_key_pem"
                                .to_owned(),
                        )
                    })?;
                Ok(vec![
                    (
                        "client_assertion_type",
                        assertion::ASSERTION_TYPE.to_owned(),
                    ),
                    ("client_assertion", jwt),
                ])
            }
            ClientCredential::Unusable(m) => Err(IdentityError::Config(m.clone())),
            ClientCredential::None | ClientCredential::Secret(_) => Ok(Vec::new()),
        }
    }

    /// The resource a delegated grant's tokens are for: a Graph token is
    /// never sent to IMAP, nor an Exchange Online token to Graph.
    pub fn resource(&self, access: DelegatedAccess) -> &str {
        match access {
            DelegatedAccess::Graph { .. } => &self.graph_resource,
            DelegatedAccess::Imap => self.outlook_resource,
        }
    }

    /// Delegated scopes as full URIs of the resource, plus `offline_access`.
    pub fn delegated_scopes(&self, access: DelegatedAccess) -> Vec<String> {
        let resource = self.resource(access);
        std::iter::once("offline_access".to_owned())
            .chain(
                delegated_permissions(access)
                    .into_iter()
                    .map(|p| format!("{resource}/{p}")),
            )
            .collect()
    }

    /// The URL to send the admin's browser to. `prompt=select_account`
    /// because a browser already signed in as someone else is the most
    /// common way to authorize the wrong mailbox.
    pub fn authorize_url(
        &self,
        redirect_uri: &str,
        access: DelegatedAccess,
        login_hint: Option<&str>,
    ) -> Result<AuthorizeRequest, IdentityError> {
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| IdentityError::Config(format!("redirect URI: {e}")))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256_len(48);
        let client = self.oauth()?;
        let mut request = client
            .authorize_url(|| CsrfToken::new_random_len(32))
            .set_redirect_uri(Cow::Owned(redirect))
            .add_scopes(self.delegated_scopes(access).into_iter().map(Scope::new))
            .set_pkce_challenge(challenge)
            .add_extra_param("prompt", "select_account");
        if let Some(hint) = login_hint {
            request = request.add_extra_param("login_hint", hint.to_owned());
        }
        let (url, state) = request.url();
        Ok(AuthorizeRequest {
            url: url.to_string(),
            state: SecretString::from(state.into_secret()),
            pkce_verifier: SecretString::from(verifier.into_secret()),
        })
    }

    /// Redeems the code from the callback. `redirect_uri` must be the one
    /// sent to /authorize.
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &SecretString,
        redirect_uri: &str,
        access: DelegatedAccess,
        now: Timestamp,
    ) -> Result<TokenSet, IdentityError> {
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| IdentityError::Config(format!("redirect URI: {e}")))?;
        let client = self.oauth()?;
        let mut request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(
                pkce_verifier.expose_secret().to_owned(),
            ))
            .set_redirect_uri(Cow::Owned(redirect));
        for (name, value) in self.assertion_params(now)? {
            request = request.add_extra_param(name, value);
        }
        let response = request.request_async(&self.http).await?;
        TokenSet::from_response(response, now, self.resource(access))
    }

    /// Redeems a refresh token. Microsoft answers with a new refresh token
    /// that replaces the old one: persist it before using the access token.
    pub async fn refresh(
        &self,
        refresh_token: &SecretString,
        access: DelegatedAccess,
        now: Timestamp,
    ) -> Result<TokenSet, IdentityError> {
        let client = self.oauth()?;
        let rt = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let mut request = client
            .exchange_refresh_token(&rt)
            .add_scopes(self.delegated_scopes(access).into_iter().map(Scope::new));
        for (name, value) in self.assertion_params(now)? {
            request = request.add_extra_param(name, value);
        }
        let response = request.request_async(&self.http).await?;
        TokenSet::from_response(response, now, self.resource(access))
    }

    /// Asks the tenant's OpenID discovery document whether the tenant exists
    /// in this cloud, so an unknown tenant (AADSTS90002) is reported here
    /// rather than on a Microsoft error page mid-sign-in. Unreachable or
    /// busy is not a verdict: the caller goes ahead.
    pub async fn check_tenant(&self) -> Result<(), IdentityError> {
        let url = format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            self.authority, self.tenant
        );
        let response =
            self.http
                .reqwest()
                .get(&url)
                .send()
                .await
                .map_err(|e| IdentityError::Unavailable {
                    detail: format!("could not reach {url}: {e}"),
                    status: None,
                    retry_after: None,
                })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(IdentityError::Unavailable {
                detail: format!("{url} answered HTTP {status}"),
                status: Some(status.as_u16()),
                retry_after: http::retry_after(response.headers()),
            });
        }
        let body = response.bytes().await.unwrap_or_default();
        match serde_json::from_slice::<MicrosoftError>(&body) {
            Ok(e) => Err(IdentityError::Microsoft(Box::new(e))),
            Err(_) => Err(IdentityError::Protocol(format!(
                "{url} answered HTTP {status} without an error document"
            ))),
        }
    }

    /// An app-only token for `{graph}/.default` on the importer's tenant.
    pub async fn client_credentials(&self, now: Timestamp) -> Result<TokenSet, IdentityError> {
        let client = self.oauth()?;
        let mut request = client
            .exchange_client_credentials()
            .add_scope(Scope::new(format!("{}/.default", self.graph_resource)));
        for (name, value) in self.assertion_params(now)? {
            request = request.add_extra_param(name, value);
        }
        let response = request.request_async(&self.http).await?;
        TokenSet::from_response(response, now, &self.graph_resource)
    }
}

#[cfg(test)]
mod send_check {
    fn is_send<T: Send>(_: T) {}

    #[expect(dead_code, reason = "a compile-time check: type-checked, never called")]
    fn futures_are_send(c: &super::IdentityClient, t: &secrecy::SecretString) {
        let access = domain::importer::DelegatedAccess::Imap;
        is_send(c.refresh(t, access, jiff::Timestamp::UNIX_EPOCH));
        is_send(c.exchange_code("c", t, "r", access, jiff::Timestamp::UNIX_EPOCH));
        is_send(c.client_credentials(jiff::Timestamp::UNIX_EPOCH));
    }
}
