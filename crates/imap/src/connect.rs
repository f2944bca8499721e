//! One IMAP session: TCP with a time-out, implicit TLS, STARTTLS or plain,
//! certificates checked against the platform's roots or exactly one CA the
//! admin gave (never "accept anything"), then LOGIN or XOAUTH2.

use std::sync::Arc;
use std::time::Duration;

use async_imap::{Client, Session};
use domain::mailbox::{AccessTokenSource, MailboxError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

use crate::error::ImapError;

/// What a session runs over.
pub type Stream = Either<TlsStream<TcpStream>, TcpStream>;
pub type ImapSession = Session<Stream>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (port 993).
    Tls,
    /// Plain, upgraded with STARTTLS before anything is sent.
    StartTls,
    /// No encryption: the password crosses the network in clear.
    None,
}

/// How the session logs in.
#[derive(Clone)]
pub enum Credential {
    Password(SecretString),
    /// OAuth access tokens for the IMAP resource (never Graph's), asked for
    /// at each login: a token lasts about an hour, a run or a reconnect may
    /// come later.
    XOAuth2(Arc<dyn AccessTokenSource>),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Password(_) => "Password(..)",
            Self::XOAuth2(_) => "XOAuth2(..)",
        })
    }
}

/// What one login sends: the password, or a token obtained just before.
pub(crate) enum Login {
    Password(SecretString),
    XOAuth2(SecretString),
}

impl Credential {
    pub(crate) async fn login(&self) -> Result<Login, MailboxError> {
        Ok(match self {
            Self::Password(p) => Login::Password(p.clone()),
            Self::XOAuth2(source) => Login::XOAuth2(source.access_token(false).await?),
        })
    }
}

#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// Trust exactly this CA (or self-signed certificate) instead of the
    /// platform's roots.
    pub tls_ca_pem: Option<String>,
    pub username: String,
    /// Bounds connecting, the TLS handshake and logging in.
    pub connect_timeout: Duration,
    /// Bounds each command and its answer.
    pub command_timeout: Duration,
}

impl ImapConfig {
    pub fn new(
        host: impl Into<String>,
        port: u16,
        security: Security,
        username: impl Into<String>,
    ) -> Self {
        Self {
            host: host.into(),
            port,
            security,
            tls_ca_pem: None,
            username: username.into(),
            connect_timeout: Duration::from_secs(20),
            command_timeout: Duration::from_secs(60),
        }
    }
}

fn tls_connector(config: &ImapConfig) -> Result<TlsConnector, ImapError> {
    let mut roots = rustls::RootCertStore::empty();
    match &config.tls_ca_pem {
        Some(pem) => {
            let mut found = 0;
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| ImapError::Tls(format!(
                    "the importer's tls_ca_pem is not a PEM certificate ({e}): paste the CA or server certificate as -----BEGIN CERTIFICATE-----"
                )))?;
                roots.add(cert).map_err(|e| {
                    ImapError::Tls(format!("the importer's tls_ca_pem cannot be used: {e}"))
                })?;
                found += 1;
            }
            if found == 0 {
                return Err(ImapError::Tls(
                    "the importer's tls_ca_pem holds no certificate: paste the CA or server certificate as -----BEGIN CERTIFICATE-----".to_owned(),
                ));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                // One unusable platform certificate must not stop the others.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(ImapError::Tls(
                    "the system has no trusted CA certificates: install the ca-certificates package, or set tls_ca_pem on the importer".to_owned(),
                ));
            }
        }
    }
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(tls)))
}

/// `future`, or a time-out naming `what` after `limit`.
pub(crate) async fn within<T>(
    limit: Duration,
    what: &str,
    future: impl std::future::Future<Output = Result<T, ImapError>>,
) -> Result<T, ImapError> {
    tokio::time::timeout(limit, future)
        .await
        .map_err(|_| ImapError::Timeout(format!("{what} took longer than {} s", limit.as_secs())))?
}

/// Connects and logs in.
pub(crate) async fn open(
    config: &ImapConfig,
    credential: &Login,
) -> Result<ImapSession, ImapError> {
    within(config.connect_timeout, "connecting and logging in", async {
        let client = connect(config).await?;
        login(client, config, credential).await
    })
    .await
}

async fn connect(config: &ImapConfig) -> Result<Client<Stream>, ImapError> {
    let tcp = TcpStream::connect((config.host.as_str(), config.port))
        .await
        .map_err(|e| ImapError::Connect(format!("{}:{}: {e}", config.host, config.port)))?;
    let name = || {
        ServerName::try_from(config.host.clone()).map_err(|e| {
            ImapError::Tls(format!(
                "`{}` is not a host name TLS can check: {e}",
                config.host
            ))
        })
    };
    match config.security {
        Security::Tls => {
            let tls = tls_connector(config)?
                .connect(name()?, tcp)
                .await
                .map_err(|e| {
                    ImapError::Tls(format!(
                        "TLS with {}:{} failed: {e}",
                        config.host, config.port
                    ))
                })?;
            greeted(Client::new(Either::Left(tls))).await
        }
        Security::None => greeted(Client::new(Either::Right(tcp))).await,
        Security::StartTls => {
            let mut plain = greeted(Client::new(tcp)).await?;
            plain
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(|e| ImapError::Tls(format!("the server refused STARTTLS ({e}): use security `tls` on port 993, or ask the administrator to enable STARTTLS")))?;
            let tcp = plain.into_inner();
            let tls = tls_connector(config)?
                .connect(name()?, tcp)
                .await
                .map_err(|e| {
                    ImapError::Tls(format!(
                        "TLS after STARTTLS with {}:{} failed: {e}",
                        config.host, config.port
                    ))
                })?;
            Ok(Client::new(Either::Left(tls)))
        }
    }
}

/// Reads the server's greeting, which every session starts with.
async fn greeted<T>(mut client: Client<T>) -> Result<Client<T>, ImapError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    match client.read_response().await {
        Ok(Some(_)) => Ok(client),
        Ok(None) => Err(ImapError::Connect(
            "the server closed the connection before greeting".to_owned(),
        )),
        Err(e) => Err(ImapError::Connect(format!(
            "no greeting from the server: {e}"
        ))),
    }
}

/// SASL XOAUTH2: `user=…^Aauth=Bearer …^A^A`; on failure the server sends
/// a JSON error as a challenge, answered with an empty line to get its NO.
struct XOAuth2<'a> {
    user: &'a str,
    token: &'a str,
    sent: bool,
}

impl async_imap::Authenticator for XOAuth2<'_> {
    type Response = String;

    fn process(&mut self, _challenge: &[u8]) -> String {
        if self.sent {
            return String::new();
        }
        self.sent = true;
        format!("user={}\x01auth=Bearer {}\x01\x01", self.user, self.token)
    }
}

async fn login(
    client: Client<Stream>,
    config: &ImapConfig,
    credential: &Login,
) -> Result<ImapSession, ImapError> {
    let result = match credential {
        Login::Password(password) => client
            .login(&config.username, password.expose_secret())
            .await
            .map_err(|(e, _)| e),
        Login::XOAuth2(token) => client
            .authenticate(
                "XOAUTH2",
                XOAuth2 {
                    user: &config.username,
                    token: token.expose_secret(),
                    sent: false,
                },
            )
            .await
            .map_err(|(e, _)| e),
    };
    result.map_err(|e| match e {
        async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text) => {
            ImapError::Login(crate::error::server_text(&text))
        }
        other => ImapError::Connect(format!("logging in failed: {other}")),
    })
}
