//! "The right account": after the callback, who signed in (`/me`), and
//! whether that account can open the importer's mailbox: its own, or the
//! shared one it names.

use serde::Deserialize;

use super::http::HttpClient;
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedInAccount {
    pub user_principal_name: String,
    pub display_name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("Graph answered HTTP {status} {code}: {message}")]
    Graph {
        status: u16,
        code: String,
        message: String,
    },
    #[error("could not reach Graph: {0}")]
    Network(String),
    #[error("invalid Graph URL: {0}")]
    Config(String),
}

impl AccountError {
    /// Whether Graph refused the request (no access, no such mailbox), as
    /// opposed to not answering it (network, throttling, 5xx) or rejecting
    /// the token itself (401): only a refusal says something about the mailbox.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Graph { status, .. }
            if (400..500).contains(status) && !matches!(status, 401 | 408 | 429))
    }
}

#[derive(Deserialize)]
struct GraphErrorBody {
    error: GraphErrorInner,
}

#[derive(Deserialize)]
struct GraphErrorInner {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Me {
    user_principal_name: String,
    #[serde(default)]
    display_name: Option<String>,
}

/// `{graph}/v1.0/{segments…}` with each segment percent-encoded.
fn url(graph_base: &str, segments: &[&str]) -> Result<url::Url, AccountError> {
    let mut url = url::Url::parse(&format!("{}/v1.0", graph_base.trim_end_matches('/')))
        .map_err(|e| AccountError::Config(format!("{graph_base}: {e}")))?;
    url.path_segments_mut()
        .map_err(|()| AccountError::Config(format!("{graph_base} cannot be a base")))?
        .extend(segments);
    Ok(url)
}

async fn get<T: serde::de::DeserializeOwned>(
    http: &HttpClient,
    url: url::Url,
    token: &SecretString,
) -> Result<T, AccountError> {
    let response = http
        .reqwest()
        .get(url)
        .bearer_auth(token.expose_secret())
        .send()
        .await
        .map_err(|e| AccountError::Network(e.to_string()))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| AccountError::Network(e.to_string()))?;
    if !status.is_success() {
        let (code, message) = serde_json::from_slice::<GraphErrorBody>(&body)
            .map(|b| (b.error.code, b.error.message))
            .unwrap_or_else(|_| (String::new(), String::from_utf8_lossy(&body).into_owned()));
        return Err(AccountError::Graph {
            status: status.as_u16(),
            code,
            message,
        });
    }
    serde_json::from_slice(&body).map_err(|e| AccountError::Graph {
        status: status.as_u16(),
        code: "unreadable".into(),
        message: e.to_string(),
    })
}

/// Who the delegated token belongs to.
pub async fn signed_in_account(
    http: &HttpClient,
    graph_base: &str,
    token: &SecretString,
) -> Result<SignedInAccount, AccountError> {
    let me: Me = get(http, url(graph_base, &["me"])?, token).await?;
    Ok(SignedInAccount {
        user_principal_name: me.user_principal_name,
        display_name: me.display_name,
    })
}

/// Opens the mailbox's Inbox: `/me` when `mailbox` is `None`, else
/// `/users/{mailbox}` (a shared mailbox needs Exchange rights and the
/// `.Shared` permission).
pub async fn check_mailbox_access(
    http: &HttpClient,
    graph_base: &str,
    token: &SecretString,
    mailbox: Option<&str>,
) -> Result<(), AccountError> {
    let segments: Vec<&str> = match mailbox {
        None => vec!["me", "mailFolders", "inbox"],
        Some(m) => vec!["users", m, "mailFolders", "inbox"],
    };
    let _: serde_json::Value = get(http, url(graph_base, &segments)?, token).await?;
    Ok(())
}
