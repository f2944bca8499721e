//! Graph's error answers (`{"error":{"code","message"}}`) turned into
//! [`MailboxError`]s that say what happened and what to do, in the words of
//! the importer's own setup (delegated or app-only, own or shared mailbox).

use domain::mailbox::{MailboxError, MailboxErrorKind};
use reqwest::StatusCode;
use serde::Deserialize;

use super::{AuthMode, GraphConfig};

/// The `error` object of a Graph error answer.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct GraphErrorBody {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Deserialize)]
struct Envelope {
    error: GraphErrorBody,
}

impl GraphErrorBody {
    /// Reads an error answer; a body that is not Graph's shape (a proxy's
    /// HTML page) keeps its first characters as the message.
    pub fn parse(body: &[u8]) -> Self {
        serde_json::from_slice::<Envelope>(body)
            .map(|e| e.error)
            .unwrap_or_else(|_| GraphErrorBody {
                code: String::new(),
                message: String::from_utf8_lossy(body.get(..200).unwrap_or(body)).into_owned(),
            })
    }
}

/// What was being done, for the message.
#[derive(Debug, Clone, Copy)]
pub enum Operation<'a> {
    Folders,
    Messages,
    Mime(&'a str),
    Move(&'a str),
    Locate(&'a str),
    Categories(&'a str),
    Subscription,
}

impl Operation<'_> {
    pub fn describe(&self) -> String {
        match self {
            Self::Folders => "reading the folders".to_owned(),
            Self::Messages => "listing messages".to_owned(),
            Self::Mime(id) => format!("downloading message `{id}`"),
            Self::Move(id) => format!("moving message `{id}`"),
            Self::Locate(id) => format!("looking up the folder of message `{id}`"),
            Self::Categories(id) => format!("setting the categories of message `{id}`"),
            Self::Subscription => {
                "managing the Inbox's change-notification subscription".to_owned()
            }
        }
    }
}

fn access_denied(config: &GraphConfig) -> MailboxError {
    let label = config.mailbox_label();
    match (config.auth, &config.mailbox) {
        (AuthMode::Delegated, None) => MailboxError::new(
            MailboxErrorKind::Permission,
            format!("Microsoft denied access to {label}"),
            "give the Azure app the delegated permission Mail.ReadWrite (Microsoft Graph), then press Authenticate to authorize again",
        ),
        (AuthMode::Delegated, Some(mailbox)) => MailboxError::new(
            MailboxErrorKind::Permission,
            format!("Microsoft denied the authorizing account access to the mailbox `{mailbox}`"),
            format!(
                "give the Azure app the delegated permission Mail.ReadWrite.Shared (Microsoft Graph) and authorize again, \
                 and give the authorizing account Full Access to `{mailbox}` in Exchange \
                 (Exchange admin center → Recipients → Mailboxes → {mailbox} → Delegation → Read and manage)"
            ),
        ),
        (AuthMode::AppOnly, _) => MailboxError::new(
            MailboxErrorKind::Permission,
            format!("Microsoft denied the application access to {label}"),
            format!(
                "give the Azure app the application permission Mail.ReadWrite (Microsoft Graph) with admin consent, \
                 and make sure no Exchange application access policy or RBAC for Applications scope excludes {label}"
            ),
        ),
    }
}

/// Maps a final (not retried) Graph error answer.
pub fn map(
    config: &GraphConfig,
    op: Operation<'_>,
    status: StatusCode,
    body: &GraphErrorBody,
) -> MailboxError {
    let label = config.mailbox_label();
    let what = op.describe();
    let said = if body.code.is_empty() {
        format!("{status}: {}", body.message)
    } else {
        format!("{status} {}: {}", body.code, body.message)
    };
    match body.code.as_str() {
        "InvalidAuthenticationToken" => MailboxError::new(
            MailboxErrorKind::Token,
            format!(
                "Microsoft refused the access token while {what} ({})",
                body.message
            ),
            match config.auth {
                AuthMode::Delegated => "press Authenticate to authorize the importer again",
                AuthMode::AppOnly => {
                    "check the importer's client id, client secret, tenant and cloud; the secret may have expired"
                }
            },
        ),
        "ErrorAccessDenied" | "AccessDenied" | "Authorization_RequestDenied" => {
            let mut e = access_denied(config);
            e.message = format!("{} while {what}", e.message);
            e
        }
        "ErrorItemNotFound" | "ErrorFolderNotFound" => MailboxError::new(
            MailboxErrorKind::NotFound,
            format!(
                "{} no longer exists in {label} ({said})",
                match op {
                    Operation::Mime(_)
                    | Operation::Move(_)
                    | Operation::Locate(_)
                    | Operation::Categories(_) => "the message",
                    _ => "the folder",
                }
            ),
            "nothing to fix if it was moved or deleted meanwhile; otherwise check the folder settings",
        ),
        "MailboxNotEnabledForRESTAPI" | "MailboxNotSupportedForRESTAPI" => MailboxError::new(
            MailboxErrorKind::MailboxUnavailable,
            format!(
                "{label} cannot be reached through Microsoft Graph ({})",
                body.message
            ),
            "use an Exchange Online mailbox with a license; on-premises, inactive and soft-deleted mailboxes are not reachable",
        ),
        "ErrorInvalidUser" | "Request_ResourceNotFound" | "ResourceNotFound"
            if matches!(op, Operation::Folders) =>
        {
            MailboxError::new(
                MailboxErrorKind::MailboxUnavailable,
                format!("the mailbox {label} does not exist in the importer's tenant ({said})"),
                "check the importer's mailbox address and tenant",
            )
        }
        "BadRequest" if body.message.contains("/me request is only valid") => MailboxError::new(
            MailboxErrorKind::Permanent,
            "an app-only token cannot address the signed-in user's mailbox (/me)",
            "set the importer's mailbox to the address of the mailbox to import from",
        ),
        "ErrorInvalidIdMalformed" => MailboxError::new(
            MailboxErrorKind::Permanent,
            format!("Microsoft did not accept an id while {what} ({said})"),
            "this is a bug in mailferry: report it with the server log",
        ),
        _ => MailboxError::new(
            MailboxErrorKind::Permanent,
            format!("Microsoft Graph refused {what} in {label}: {said}"),
            "check the importer's settings; if they are right, the server log has the request id for Microsoft support",
        ),
    }
}
