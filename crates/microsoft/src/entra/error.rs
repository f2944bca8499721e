//! Microsoft's error answers, and what they mean for the admin.
//!
//! Microsoft's docs say to branch on `error`, then on `error_codes`, and
//! never on `error_description`; the description is still what we show,
//! because it is the text the admin will find in Microsoft's docs.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::http::HttpFailure;

/// The token endpoint's JSON error, or the `error`/`error_description`
/// query parameters of a redirect to our callback.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MicrosoftError {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub error_codes: Vec<u64>,
    /// e.g. `consent_required`, `bad_token`.
    #[serde(default)]
    pub suberror: Option<String>,
    #[serde(default)]
    pub error_uri: Option<String>,
    #[serde(default)]
    pub trace_id: Option<String>,
    #[serde(default)]
    pub correlation_id: Option<String>,
}

impl oauth2::ErrorResponse for MicrosoftError {}

impl fmt::Display for MicrosoftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message() {
            Some(m) => write!(f, "{}: {m}", self.error),
            None => f.write_str(&self.error),
        }
    }
}

impl MicrosoftError {
    /// The AADSTS code: from `error_codes`, else from the description
    /// (a redirect carries only `error_description`).
    pub fn aadsts(&self) -> Option<u64> {
        self.error_codes.first().copied().or_else(|| {
            let d = self.error_description.as_deref()?;
            let start = d.find("AADSTS")? + "AADSTS".len();
            let digits: String = d[start..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
    }

    /// The description without Microsoft's trace trailer (`Trace ID: …`).
    pub fn message(&self) -> Option<&str> {
        let d = self.error_description.as_deref()?;
        let first = d
            .split(['\r', '\n'])
            .next()
            .unwrap_or(d)
            .trim()
            .trim_end_matches(" Trace ID:");
        (!first.is_empty()).then_some(first)
    }

    pub fn diagnosis(&self) -> Diagnosis {
        match self.aadsts() {
            Some(700082 | 50173 | 70008 | 54005 | 700084 | 70043) => Diagnosis::ReauthRequired,
            Some(7000215 | 7000222 | 7000218) => Diagnosis::UpdateClientSecret,
            Some(65001 | 65004) => Diagnosis::ConsentRequired,
            Some(90002) => Diagnosis::UnknownTenant,
            Some(50011) => Diagnosis::RedirectUriMismatch,
            Some(700016) => Diagnosis::UnknownApplication,
            _ if self.suberror.as_deref() == Some("consent_required")
                || self.error == "consent_required" =>
            {
                Diagnosis::ConsentRequired
            }
            _ if self.error == "invalid_tenant" => Diagnosis::UnknownTenant,
            _ if self.error == "invalid_client" => Diagnosis::UpdateClientSecret,
            _ if matches!(
                self.error.as_str(),
                "temporarily_unavailable" | "server_error"
            ) =>
            {
                Diagnosis::Transient
            }
            // Any other refusal of a grant: the tokens we hold are unusable.
            _ if self.error == "invalid_grant" || self.error == "interaction_required" => {
                Diagnosis::ReauthRequired
            }
            _ => Diagnosis::Other,
        }
    }
}

/// What an error means for the importer, which decides its state and the fix we show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diagnosis {
    /// The grant expired, was revoked, or the code was used: sign in again.
    ReauthRequired,
    /// The client secret is wrong or expired.
    UpdateClientSecret,
    /// The user (or an admin) has not consented to the permissions.
    ConsentRequired,
    /// The tenant does not exist in this cloud.
    UnknownTenant,
    /// The redirect URI is not registered on the app.
    RedirectUriMismatch,
    /// The client id names no app in the tenant.
    UnknownApplication,
    /// Network trouble, 5xx, throttling: try again later.
    Transient,
    Other,
}

/// What the fix texts need to be specific.
#[derive(Debug, Clone)]
pub struct FixContext<'a> {
    pub redirect_uri: &'a str,
    pub client_id: &'a str,
    pub tenant: &'a str,
    /// Short names of the delegated permissions mailferry asks for.
    pub permissions: &'a [String],
    /// The app signs in with a certificate, not a secret.
    pub certificate: bool,
}

impl Diagnosis {
    /// What the admin should do, in plain words.
    pub fn fix(self, cx: &FixContext<'_>) -> String {
        match self {
            Self::ReauthRequired => "the Microsoft authorization is no longer valid (expired, revoked, or the password changed): press Authenticate and sign in again".into(),
            Self::UpdateClientSecret if cx.certificate => format!(
                "the certificate is not accepted (not uploaded to the app, expired, or this machine's clock is off by minutes): in the Azure portal open the app registration {} → Certificates & secrets and upload the certificate whose thumbprint the importer page shows, or enter a new certificate and its key here; check the server's time",
                cx.client_id
            ),
            Self::UpdateClientSecret => format!(
                "the client secret is wrong or expired: in the Azure portal open the app registration {} → Certificates & secrets, create a new client secret, enter its Value (not its Secret ID) in this importer, save, and press Authenticate",
                cx.client_id
            ),
            Self::ConsentRequired => format!(
                "the permissions ({}) have not been consented to: press Authenticate and let the user accept them, or, when users may not consent in this tenant, have a tenant administrator grant admin consent (Azure portal → App registrations → {} → API permissions → Grant admin consent)",
                cx.permissions.join(", "),
                cx.client_id
            ),
            Self::UnknownTenant => format!(
                "the tenant `{}` does not exist in this Microsoft cloud: check the tenant id (Azure portal → Microsoft Entra ID → Overview → Tenant ID) and the cloud setting",
                cx.tenant
            ),
            Self::RedirectUriMismatch => format!(
                "register this exact redirect URI in the Azure app registration {} (Authentication → Add a platform → Web): {}",
                cx.client_id, cx.redirect_uri
            ),
            Self::UnknownApplication => format!(
                "no application with client id {} exists in tenant `{}`: check the client id (Application (client) ID on the app's Overview page) and the tenant",
                cx.client_id, cx.tenant
            ),
            Self::Transient => "Microsoft is temporarily unavailable: mailferry retries on its own; nothing to do unless this persists".into(),
            Self::Other => "see Microsoft's message above; the AADSTS code can be looked up at https://login.microsoftonline.com/error".into(),
        }
    }

    pub fn needs_reauthorization(self) -> bool {
        matches!(
            self,
            Self::ReauthRequired
                | Self::UpdateClientSecret
                | Self::ConsentRequired
                | Self::UnknownTenant
                | Self::UnknownApplication
                | Self::RedirectUriMismatch
        )
    }
}

/// A failed call to the identity platform.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Microsoft answered with an error: a definite refusal.
    #[error("Microsoft refused: {0}")]
    Microsoft(Box<MicrosoftError>),
    /// The request did not get through or Microsoft is busy: worth retrying.
    #[error("Microsoft is unreachable or busy: {detail}")]
    Unavailable {
        detail: String,
        status: Option<u16>,
        retry_after: Option<Duration>,
    },
    /// Microsoft's answer made no sense (not JSON, wrong token type, …).
    #[error("unexpected answer from Microsoft: {0}")]
    Protocol(String),
    /// The importer's endpoints do not form valid URLs.
    #[error("invalid endpoint configuration: {0}")]
    Config(String),
}

impl IdentityError {
    pub fn diagnosis(&self) -> Diagnosis {
        match self {
            Self::Microsoft(e) => e.diagnosis(),
            Self::Unavailable { .. } => Diagnosis::Transient,
            Self::Protocol(_) | Self::Config(_) => Diagnosis::Other,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.diagnosis() == Diagnosis::Transient
    }

    pub fn microsoft(&self) -> Option<&MicrosoftError> {
        match self {
            Self::Microsoft(e) => Some(e),
            _ => None,
        }
    }

    /// `Retry-After` Microsoft asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// One line for logs and the status: Microsoft's code and message.
    pub fn reason(&self) -> String {
        match self {
            Self::Microsoft(e) => match e.aadsts() {
                Some(code) => format!(
                    "AADSTS{code} ({}): {}",
                    e.error,
                    e.message().unwrap_or("no description")
                ),
                None => e.to_string(),
            },
            other => other.to_string(),
        }
    }
}

impl From<oauth2::RequestTokenError<HttpFailure, MicrosoftError>> for IdentityError {
    fn from(e: oauth2::RequestTokenError<HttpFailure, MicrosoftError>) -> Self {
        use oauth2::RequestTokenError as R;
        match e {
            R::ServerResponse(m) => Self::Microsoft(Box::new(m)),
            R::Request(HttpFailure::Unavailable {
                url,
                status,
                retry_after,
            }) => Self::Unavailable {
                detail: format!("{url} answered HTTP {status}"),
                status: Some(status),
                retry_after,
            },
            R::Request(f @ HttpFailure::Network { .. }) => Self::Unavailable {
                detail: f.to_string(),
                status: None,
                retry_after: None,
            },
            R::Request(HttpFailure::Build(m)) => Self::Config(m),
            R::Parse(err, body) => Self::Protocol(format!(
                "{err}; body starts with `{}`",
                String::from_utf8_lossy(body.get(..200).unwrap_or(&body))
            )),
            R::Other(m) => Self::Protocol(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> MicrosoftError {
        serde_json::from_str(json).expect("error JSON")
    }

    #[test]
    fn real_error_bodies_are_understood() {
        let e = parse(
            r#"{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2020-02-26T21:52:54.2810613Z and was inactive for 90.00:00:00.\r\nTrace ID: 6e94ade5\r\nCorrelation ID: 0e87b495\r\nTimestamp: 2020-07-06 22:31:52Z","error_codes":[700082],"timestamp":"2020-07-06 22:31:52Z","trace_id":"6e94ade5","correlation_id":"0e87b495","error_uri":"https://login.microsoftonline.com/error?code=700082"}"#,
        );
        assert_eq!(e.aadsts(), Some(700082));
        assert_eq!(e.diagnosis(), Diagnosis::ReauthRequired);
        assert!(
            e.message()
                .expect("message")
                .ends_with("inactive for 90.00:00:00.")
        );
        let e = parse(
            r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#,
        );
        assert_eq!(e.diagnosis(), Diagnosis::UpdateClientSecret);
        let e = parse(
            r#"{"error":"invalid_grant","error_description":"AADSTS65001: The user or administrator has not consented","error_codes":[65001],"suberror":"consent_required"}"#,
        );
        assert_eq!(e.diagnosis(), Diagnosis::ConsentRequired);
        let e = parse(
            r#"{"error":"invalid_request","error_description":"AADSTS90002: Tenant 'x' not found."}"#,
        );
        assert_eq!(e.aadsts(), Some(90002), "code read from the description");
        assert_eq!(e.diagnosis(), Diagnosis::UnknownTenant);
        let e = parse(r#"{"error":"invalid_tenant","error_codes":[]}"#);
        assert_eq!(e.diagnosis(), Diagnosis::UnknownTenant);
    }

    #[test]
    fn the_redirect_uri_fix_names_the_exact_uri() {
        let fix = Diagnosis::RedirectUriMismatch.fix(&FixContext {
            certificate: false,
            redirect_uri: "https://mf.example.com/api/v2/importers/email/authenticate/end",
            client_id: "app",
            tenant: "t",
            permissions: &[],
        });
        assert!(fix.ends_with(": https://mf.example.com/api/v2/importers/email/authenticate/end"));
    }
}
